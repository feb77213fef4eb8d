"""Ablations: the agent comparison on the ``mixed`` preset with each mechanism switched off in turn.

    recenv ablation --quick     # one seed, small budgets
    recenv ablation             # every scenario, 5 seeds (measured: docs/results/ablations.md)

Scenarios: every mechanism on (``mixed``), then one switch off at a time — exogenous drift,
consumption drift, regime shifts, satiation, impression fatigue, clickbait (it neither lures clicks
nor costs patience; users still leave when bored) and patience (users never leave; sessions run
to the horizon). Each scenario observes through the encoder trained on its own dynamics (shipped,
cached, or trained once before the cells start: :func:`benchmarks.protocol.prepare_encoders`). Same
protocol, statistics and outputs as ``recenv compare`` (:mod:`benchmarks.protocol`,
:mod:`benchmarks.metrics`, :mod:`benchmarks.report`; the ``preset`` column names the scenario),
written to ``results/ablation`` (``--quick``: ``results/ablation-quick``) by default.
"""

from __future__ import annotations

from recenv import EnvConfig

SCENARIOS: dict[str, EnvConfig] = {
    "mixed (all on)": EnvConfig(preset="mixed"),
    "no exogenous drift": EnvConfig(preset="mixed", params={"exogenous_drift": False}),
    "no consumption drift": EnvConfig(preset="mixed", params={"consumption_drift": False}),
    "no regime shifts": EnvConfig(preset="mixed", params={"regime_shifts": False}),
    "no satiation": EnvConfig(preset="mixed", params={"satiation": False}),
    "no impression fatigue": EnvConfig(preset="mixed", params={"impression_fatigue": False}),
    "no clickbait": EnvConfig(preset="mixed", params={"clickbait": False}),
    "no patience": EnvConfig(preset="mixed", params={"patience": False}),
}
"""Scenario name → the config of its envs (the comparison sets the device)."""
