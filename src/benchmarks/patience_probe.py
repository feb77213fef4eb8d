"""How much of a user's remaining patience the encoded observation reveals: a linear probe.

    python -m benchmarks.patience_probe

Users of preset ``mixed`` are shown uniformly random items; every step's observation is paired with
the user's patience after it (``info["patience"]``, ground truth, for this measurement only). A
least-squares fit on half of the rows is scored (R²) on the other half, for the LSTM state alone,
the session clock alone and the whole observation.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from recenv import DriftingUserVectorEnv
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args(argv)
    envs = DriftingUserVectorEnv(num_envs=args.users, preset="mixed", device="cpu")
    envs.reset(seed=args.seed)
    rng = np.random.default_rng(args.seed)
    observations, patience = [], []
    for _ in range(args.steps):
        obs, _, _, _, info = envs.step(rng.integers(envs.catalog.num_items, size=args.users))
        stepped = info["_patience"]  # users reset in this step have no patience to report
        observations.append(obs[stepped])
        patience.append(info["patience"][stepped])
    x, y = np.concatenate(observations), np.concatenate(patience)
    state, clock = x[:, :-SESSION_CONTEXT_SIZE], x[:, -SESSION_CONTEXT_SIZE:]
    print(f"{len(y)} user-steps; held-out R² of remaining patience: LSTM state {r_squared(state, y):.3f}, "
          f"session clock {r_squared(clock, y):.3f}, whole observation {r_squared(x, y):.3f}")


if __name__ == "__main__":
    main()
