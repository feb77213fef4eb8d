"""Offline tooling: what trains and calibrates the simulator, never needed to run it.

``import recenv`` loads none of this. Modules, from the bottom up:

- :mod:`recenv.offline.logs` — interaction logs collected on the simulator by a behaviour policy,
  which sees only what a deployed recommender knows (:class:`recenv.offline.logs.LoggingView`).
- :mod:`recenv.offline.logging_policies` — behaviour policies that read nothing privileged, and
  ``make_logs``, the two rounds of logging that every log recenv trains on comes from.
- :mod:`recenv.offline.click_predictors` — reference click predictors (popularity, static profile)
  and the metrics that compare them with the next-click LSTM.
- :mod:`recenv.offline.encoder_training` — training and evaluation of the next-click LSTM
  (``python -m recenv.offline.encoder_training --help``), and :func:`prepare_encoder`, which trains
  and caches the encoder that new dynamics need before environments of them are built.
- :mod:`recenv.offline.organic_histories` — histories of users browsing on their own, comparable
  with real logs.
- :mod:`recenv.offline.drift_statistics` — how fast and how a set of histories drifts.
- :mod:`recenv.offline.drift_fit` — the user model's drift and prior fitted to real histories.
"""

from recenv.offline.encoder_training import prepare_encoder

__all__ = ["prepare_encoder"]
