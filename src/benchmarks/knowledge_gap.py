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

    recenv knowledge-gap --presets mixed --eval-users 1000    # measured: docs/results/knowledge-gap.md
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from agents import FarsightedOracleAgent, OracleAgent, SupervisedLSTMAgent, run_sessions
from agents.farsighted_oracle import farsighted_index
from agents.supervised_lstm import choose_unshown, session_memory
from benchmarks.protocol import prepare_encoders
from benchmarks.statistics import bootstrap_mean, paired_difference
from recenv import DriftingUserVectorEnv, EnvConfig

EVALUATION_SEED = 2_000_000
"""Seed of the held-out users (apart from the comparison's)."""


class ClickModelWithItemCosts(SupervisedLSTMAgent):
    """PRIVILEGED diagnostic: the next-click LSTM's P(click), ranked by the far-sighted ``"ratio"``
    index with the catalog's true quality and clickbait (no repeats within a session)."""

    privileged = True

    def __init__(self, env: Any):
        super().__init__(env)
        self.params = env.user_model

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


def write_report(out: Path, command: str, presets: Sequence[str] = ("mixed",), users: int = 1000) -> str:
    """:func:`measure` each preset (its encoder prepared first), written to ``out`` as
    ``knowledge_gap.md`` and ``.json``; returns the Markdown."""
    prepare_encoders({preset: EnvConfig(preset=preset) for preset in presets})
    rows = [row for preset in tqdm(presets, desc="knowledge gap", unit="preset") for row in measure(preset, users)]
    text = f"{table(rows)}\n\n{users} held-out users per preset. Command: `{command}`\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "knowledge_gap.md").write_text(text, encoding="utf-8")
    (out / "knowledge_gap.json").write_text(json.dumps({"command": command, "users": users, "rows": rows}, indent=2))
    return text
