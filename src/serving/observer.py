"""A served session's observation, computed from its logged history exactly as the env computes it.

The env builds observations from the simulator's record of a user (:mod:`recenv.observation`); a
service has no simulator, only what it was told: the user's past (item ids and clicks it arrived
with) and this session's feedback. :class:`HistoryObserver` turns that into the same observation
the env would give for the same history, in every ``obs_mode``:

- ``"encoded"``: the next-click LSTM's state after the past (run from the zero state, as the env
  encodes a warm-up), then advanced one LSTM step per feedback (as the env steps);
- ``"history"`` / ``"ids"``: the last K interactions, past and session together, oldest first,
  padded at the front;

each followed by the session context (steps and clicks since the session began; the past does not
count), scaled as in :func:`recenv.observation.scale_session_context`. ``tests/test_serving_observer.py``
replays env sessions through it and compares with the env's observations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from recenv.observation import scale_session_context

__all__ = ["HistoryObserver", "ObserverState"]


@dataclass
class ObserverState:
    """What the observer keeps per session: the LSTM state ``(h, c)``, each ``(1, H)`` (encoded
    mode only; ``None`` otherwise)."""

    lstm: tuple[Tensor, Tensor] | None = None


class HistoryObserver:
    """Observations of one served user from the interactions logged for them.

    :param obs_mode: the served agent's ``obs_mode``.
    :param item_embeddings: ``(N, D)`` the catalog's text embeddings (its public side).
    :param horizon: the env's ``max_episode_steps``, which scales the session context.
    :param history_length: K, for ``"history"`` and ``"ids"``.
    :param encoder: the next-click LSTM, for ``"encoded"`` (its state is also the service's estimate
        of the user's interest by topic, so it is used in every mode when given).
    """

    def __init__(self, obs_mode: str, item_embeddings: np.ndarray, horizon: int, history_length: int,
                 encoder: Any = None):
        if obs_mode == "encoded" and encoder is None:
            raise ValueError("obs_mode='encoded' needs the encoder")
        self.obs_mode = obs_mode
        self.horizon = horizon
        self.history_length = history_length
        self.encoder = encoder
        self.embeddings = torch.tensor(np.asarray(item_embeddings, dtype=np.float32))
        self.num_items = self.embeddings.shape[0]
        if encoder is not None:
            self.device = next(encoder.parameters()).device
            with torch.no_grad():  # the catalog projected once, as the env does
                self._projected = encoder.project_items(self.embeddings.to(self.device))
                self._all_embeddings = self.embeddings.to(self.device)

    def start(self, items: list[int], clicks: list[int]) -> ObserverState:
        """The state after a user's past (item ids and 0/1 clicks, oldest first)."""
        if self.encoder is None:
            return ObserverState()
        with torch.no_grad():
            if not items:
                return ObserverState(self.encoder.initial_state(1, self.device))
            ids = torch.as_tensor(items, dtype=torch.int64, device=self.device)[None]
            responses = torch.as_tensor(clicks, dtype=torch.float32, device=self.device)[None]
            _, lstm = self.encoder.encode_projected(self._projected[ids], responses)
        return ObserverState(lstm)

    def advance(self, state: ObserverState, item: int, click: int) -> ObserverState:
        """The state after one more interaction (the env's step)."""
        if state.lstm is None:
            return state
        with torch.no_grad():
            ids = torch.tensor([item], dtype=torch.int64, device=self.device)
            response = torch.tensor([float(click)], device=self.device)
            _, lstm = self.encoder.encode_projected(self._projected[ids].unsqueeze(1), response.unsqueeze(1), state.lstm)
        return ObserverState(lstm)

    def observe(self, state: ObserverState, items: list[int], clicks: list[int], session_steps: int,
                session_clicks: int) -> np.ndarray:
        """The observation, 1-D, as the env's ``observation_space`` shapes it.

        :param items: / :param clicks: the whole history, past then session, oldest first.
        :param session_steps: / :param session_clicks: interactions and clicks since the session began.
        """
        if self.obs_mode == "encoded":
            own = state.lstm[0][0].cpu()
        else:
            k = self.history_length
            recent_items = np.full(k, -1, dtype=np.int64)
            recent_clicks = np.zeros(k, dtype=np.float32)
            n = min(k, len(items))
            if n:
                recent_items[k - n:] = items[-n:]
                recent_clicks[k - n:] = clicks[-n:]
            if self.obs_mode == "ids":
                counts = np.clip([session_steps, session_clicks], 0, self.horizon)
                ids_clicks = np.where(recent_items >= 0, recent_clicks.astype(np.int64), -1)
                return np.concatenate([recent_items, ids_clicks, counts]).astype(np.int64)
            d = self.embeddings.shape[1]
            rows = torch.zeros((k, d + 2))
            valid = torch.as_tensor(recent_items >= 0)
            rows[valid, :d] = self.embeddings[torch.as_tensor(recent_items[recent_items >= 0])]
            rows[valid, d + 1] = 1.0
            rows[:, d] = torch.as_tensor(recent_clicks)
            own = rows.reshape(-1)
        counts = torch.tensor([float(session_steps), float(session_clicks)])
        context = scale_session_context(counts, self.horizon)
        return torch.cat([own, context]).numpy().astype(np.float32)

    def click_probabilities(self, state: ObserverState) -> np.ndarray | None:
        """The encoder's P(click) for every item ``(N,)`` from this state; ``None`` without an encoder."""
        if state.lstm is None:
            return None
        with torch.no_grad():
            logits = self.encoder.click_logits_all(state.lstm[0], self._all_embeddings)
        return torch.sigmoid(logits)[0].cpu().numpy()
