"""Where the gap to the far-sighted reference lies: knowing the user, or knowing the items.

Two things separate a deployable recommender from :class:`agents.FarsightedOracleAgent`: it does not
know the user's click probabilities (it must estimate them from a short history), and it does not
know what an item does to the user's patience (quality and clickbait are hidden; they must be
learned from how sessions go). This script crosses the two on the same held-out users:

====================  ==============================================  ===============================================
                      items unknown (rank by P(click))                items known (rank by P / expected patience cost)
====================  ==============================================  ===============================================
P estimated           ``SupervisedLSTMAgent`` (the next-click LSTM,    the same P, ranked by the far-sighted ``"ratio"``
                      no repeats: the fair supervised baseline)        index with the true q and c (privileged)
P true                ``OracleAgent`` (myopic)                         ``FarsightedOracleAgent(rule="ratio")``
====================  ==============================================  ===============================================

The off-diagonal cells are privileged diagnostics, never agents: they bound what a learner can win
by learning only the items (top right) or only the user (bottom left).

    python -m benchmarks.knowledge_gap --preset mixed --users 1000
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np

from agents import FarsightedOracleAgent, OracleAgent, SupervisedLSTMAgent, run_sessions
from agents.farsighted_oracle import farsighted_index
from agents.supervised_lstm import choose_unshown, session_memory
from benchmarks.environment_info import command_line
from benchmarks.statistics import bootstrap_mean, paired_difference
from recenv import DriftingUserVectorEnv, EnvConfig
from recenv.presets import SYNTHETIC_PRESETS
from recenv.threads import choose_torch_threads

EVALUATION_SEED = 2_000_000
"""Seed of the held-out users (apart from the comparison's)."""


class ClickModelWithItemCosts(SupervisedLSTMAgent):
    """PRIVILEGED diagnostic: the next-click LSTM's P(click), ranked by the far-sighted ``"ratio"``
    index with the catalog's true quality and clickbait (no repeats within a session)."""

    privileged = True

    def __init__(self, env: Any):
        super().__init__(env)
        self.params = env.params

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        p = np.atleast_2d(self.click_probabilities(batch))
        score = farsighted_index(p, self.catalog.quality, self.catalog.clickbait, self.params, rule="ratio")
        shown = session_memory(state, episode_start, len(batch), self.num_items)
        return self._result(choose_unshown(score, shown, None, self.rng), single), shown


def measure(preset: str, users: int) -> list[dict[str, Any]]:
    """The four cells on ``users`` held-out users of ``preset``: clicks per session [95% CI] and
    session length, and each cell's paired difference to the fair supervised baseline."""
    config = EnvConfig(preset=preset)
    env = DriftingUserVectorEnv(num_envs=1, config=config)
    cells = {
        ("estimated", "unknown"): SupervisedLSTMAgent(env),
        ("estimated", "known"): ClickModelWithItemCosts(env),
        ("true", "unknown"): OracleAgent(env),
        ("true", "known"): FarsightedOracleAgent(env, rule="ratio"),
    }
    runs = {key: run_sessions(agent, users, seed=EVALUATION_SEED, config=config, progress=False)
            for key, agent in cells.items()}
    baseline = runs[("estimated", "unknown")].returns[None]
    rows = []
    for (user, items), run in runs.items():
        mean = bootstrap_mean(run.returns[None], resample_seeds=False)
        gain = paired_difference(run.returns[None], baseline, resample_seeds=False)
        rows.append({"preset": preset, "p_click": user, "item_effects": items, "agent": type(cells[user, items]).__name__,
                     "clicks_per_session": mean.mean, "low": mean.low, "high": mean.high,
                     "gain": gain.mean, "gain_low": gain.low, "gain_high": gain.high,
                     "session_length": float(run.lengths.mean())})
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| preset | P(click) | item effects | clicks / session [95% CI] | vs the click model alone | session length |",
             "|---|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['preset']}` | {r['p_click']} | {r['item_effects']} | {r['clicks_per_session']:.2f} "
                     f"[{r['low']:.2f}, {r['high']:.2f}] | {r['gain']:+.2f} [{r['gain_low']:+.2f}, {r['gain_high']:+.2f}] "
                     f"| {r['session_length']:.1f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", nargs="+", default=["mixed"], choices=tuple(SYNTHETIC_PRESETS))
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--torch-threads", type=int, default=None)
    args = parser.parse_args(argv)
    print(choose_torch_threads(args.torch_threads).describe(), flush=True)
    rows = [row for preset in args.preset for row in measure(preset, args.users)]
    text = f"{table(rows)}\n\nCommand: `{command_line('benchmarks.knowledge_gap', argv)}`"
    print(text)
    return text


if __name__ == "__main__":
    main()
