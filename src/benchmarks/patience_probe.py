"""How much of a user's remaining patience the encoded observation reveals: a linear probe.

    recenv patience-probe      # writes results/patience-probe/patience_probe.md

Users of preset ``mixed`` are shown uniformly random items; every step's observation is paired with
the user's patience after it (``info["patience"]``, ground truth, for this measurement only). A
least-squares fit on half of the rows is scored (R²) on the other half, for the LSTM state alone,
the session clock alone and the whole observation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from benchmarks.protocol import prepare_encoders
from recenv import DriftingUserVectorEnv, EnvConfig
from recenv.observation import SESSION_CONTEXT_SIZE


def r_squared(features: np.ndarray, target: np.ndarray, seed: int = 1) -> float:
    """Held-out R² of a linear fit (with intercept) trained on a random half of the rows."""
    n = len(target)
    order = np.random.default_rng(seed).permutation(n)
    train, test = order[: n // 2], order[n // 2:]
    design = np.c_[features, np.ones(n)]
    weights, *_ = np.linalg.lstsq(design[train], target[train], rcond=None)
    residual = target[test] - design[test] @ weights
    return float(1 - (residual**2).sum() / ((target[test] - target[test].mean()) ** 2).sum())


def probe(users: int = 500, steps: int = 40, seed: int = 123) -> dict[str, float]:
    """``users`` users of preset ``mixed`` shown uniformly random items for ``steps`` steps; the
    held-out R² of their remaining patience from the LSTM state, the session clock and the whole
    observation, and the user-steps the fit saw."""
    config = EnvConfig(preset="mixed", device="cpu")
    prepare_encoders({"mixed": config})
    envs = DriftingUserVectorEnv(num_envs=users, config=config)
    envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    observations, patience = [], []
    for _ in tqdm(range(steps), desc="patience probe", unit="step"):
        obs, _, _, _, info = envs.step(rng.integers(envs.catalog.num_items, size=users))
        stepped = info["_patience"]  # users reset in this step have no patience to report
        observations.append(obs[stepped])
        patience.append(info["patience"][stepped])
    x, y = np.concatenate(observations), np.concatenate(patience)
    state, clock = x[:, :-SESSION_CONTEXT_SIZE], x[:, -SESSION_CONTEXT_SIZE:]
    return {"user_steps": len(y), "lstm_state": r_squared(state, y), "session_clock": r_squared(clock, y),
            "whole_observation": r_squared(x, y)}


def write_report(out: Path, command: str, users: int = 500, steps: int = 40, seed: int = 123) -> str:
    """:func:`probe`, written to ``out`` as ``patience_probe.md`` and ``.json``; returns the Markdown."""
    result = probe(users, steps, seed)
    text = (f"{result['user_steps']} user-steps; held-out R² of remaining patience: LSTM state "
            f"{result['lstm_state']:.3f}, session clock {result['session_clock']:.3f}, whole observation "
            f"{result['whole_observation']:.3f}\n\nCommand: `{command}`\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / "patience_probe.md").write_text(text, encoding="utf-8")
    (out / "patience_probe.json").write_text(json.dumps({"command": command, **result}, indent=2))
    return text
