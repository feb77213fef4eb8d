"""Why greedy click prediction loses sessions: clickbait shown, the winner's curse, and what the
same agents get when clickbait is taken off their menu.

    recenv clickbait-diagnostic --quick
    recenv clickbait-diagnostic            # 2,000 users, DQN 500,000 user-steps: results/clickbait-diagnostic

For each preset, on the same held-out users as ``recenv compare`` (the evaluation seed and
protocol of :mod:`benchmarks.protocol`): clicks per session, session length, CTR and the share of
shown items that are clickbait, for the static profile, the supervised LSTM, the myopic oracle and
DQN (embedding head, trained like in the comparison, seed 0). Two diagnostic variants, which are
*not* deployable agents — they are told which items are clickbait — show what the myopic agents
lose to clickbait: the LSTM and the oracle, each greedy over non-clickbait items only. For the
supervised LSTM it also reports the winner's curse: the mean predicted P(click) of the items it
chose against their true P(click).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from agents import DQNAgent, DQNConfig, OracleAgent, StaticProfileAgent, SupervisedLSTMAgent, run_sessions
from agents.base import BaseAgent
from benchmarks.environment_info import hardware_and_versions, markdown_header
from benchmarks.metrics import CLICKBAIT_THRESHOLD
from benchmarks.protocol import EVALUATION_SEED, TRAINING_USERS, prepare_encoders
from recenv import DriftingUserVectorEnv, EnvConfig


class SkipClickbait(BaseAgent):
    """Diagnostic only: greedy on ``scorer.click_probabilities`` over the items that are not
    clickbait. Privileged: it is told which items are clickbait."""

    privileged = True

    def __init__(self, env: Any, scorer: SupervisedLSTMAgent | OracleAgent):
        super().__init__(env)
        self.scorer = scorer
        self.allowed = np.asarray(self.catalog.clickbait) <= CLICKBAIT_THRESHOLD

    def bind(self, env: Any) -> None:
        self.scorer.bind(env)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        scores = np.atleast_2d(self.scorer.click_probabilities(batch))
        return self._result(np.where(self.allowed[None, :], scores, -np.inf).argmax(1), single), state


class _WinnersCurse:
    """Wraps the supervised LSTM agent (as it acts: no repeats within a session) and records the
    predicted P(click) of what it shows."""

    def __init__(self, agent: SupervisedLSTMAgent):
        self.agent, self.predicted = agent, []

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        actions, state = self.agent.predict(observation, state, episode_start, deterministic)
        scores = np.atleast_2d(self.agent.click_probabilities(observation))
        shown = np.atleast_1d(actions)
        self.predicted.append(scores[np.arange(len(shown)), shown])
        return actions, state


def diagnose(preset: str, eval_users: int, dqn_steps: int, device: str, bar: Any) -> list[dict[str, Any]]:
    config = EnvConfig(preset=preset, device=device)
    train_env = DriftingUserVectorEnv(num_envs=TRAINING_USERS, config=config)
    clickbait = np.asarray(train_env.catalog.clickbait) > CLICKBAIT_THRESHOLD
    lstm = SupervisedLSTMAgent(train_env)
    curse = _WinnersCurse(lstm)
    agents: dict[str, Any] = {
        "StaticProfile": StaticProfileAgent(train_env),
        "SupervisedLSTM": curse,
        "SupervisedLSTM, no clickbait (diagnostic)": SkipClickbait(train_env, lstm),
        "Oracle": OracleAgent(train_env),
        "Oracle, no clickbait (diagnostic)": SkipClickbait(train_env, OracleAgent(train_env)),
    }
    if dqn_steps:
        bar.set_description(f"clickbait diagnostic [{preset}] training DQN")
        agents["DQN-embedding"] = DQNAgent(train_env, DQNConfig(head="embedding", seed=0), device=device).learn(
            train_env, dqn_steps, progress=False)
    rows = []
    for name, agent in agents.items():
        bar.set_description(f"clickbait diagnostic [{preset}] {name}")
        records = run_sessions(agent, eval_users, seed=EVALUATION_SEED, config=config, progress=False)
        row = {"preset": preset, "agent": name, "clicks_per_session": float(records.returns.mean()),
               "session_length": float(records.lengths.mean()), "ctr": float(records.ctr.mean()),
               "clickbait_share": float(records.share_of_shown(clickbait).mean())}
        if agent is curse:
            row["predicted_click_probability"] = float(np.concatenate(curse.predicted).mean())
            row["true_click_probability"] = float(np.concatenate(records.click_probability).mean())
        rows.append(row)
        bar.update(1)
    return rows


def write_report(out: Path, command: str, presets: Sequence[str] = ("none", "mixed"), quick: bool = False,
                 eval_users: int | None = None, dqn_steps: int | None = None, device: str = "cpu") -> str:
    """:func:`diagnose` each preset (held-out users: 2,000, quick 200; DQN user-steps: 500,000,
    quick 20,000, 0 skips it), written to ``out`` as ``diagnostic.md`` and ``.json``; returns the
    Markdown."""
    eval_users = eval_users or (200 if quick else 2_000)
    dqn_steps = dqn_steps if dqn_steps is not None else (20_000 if quick else 500_000)
    prepare_encoders({preset: EnvConfig(preset=preset, device=device) for preset in presets})
    started = time.perf_counter()
    bar = tqdm(total=len(presets) * (5 + bool(dqn_steps)), desc="clickbait diagnostic", unit="agent")
    rows = [row for preset in presets for row in diagnose(preset, eval_users, dqn_steps, device, bar)]
    bar.close()
    info = hardware_and_versions()
    lines = [markdown_header("Clickbait and myopia diagnostic", info, command).rstrip(),
             f"- Wall time: {(time.perf_counter() - started) / 60:.1f} min; {eval_users} held-out users; "
             f"DQN {dqn_steps:,} user-steps, seed 0", "",
             "| preset | agent | clicks / session | session length | CTR | clickbait shown |",
             "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['preset']} | {r['agent']} | {r['clicks_per_session']:.2f} | {r['session_length']:.1f} | "
              f"{r['ctr']:.3f} | {r['clickbait_share']:.0%} |" for r in rows]
    curse = [r for r in rows if "predicted_click_probability" in r]
    lines += ["", "Winner's curse of the greedy LSTM (mean over shown items):", ""]
    lines += [f"- {r['preset']}: predicted P(click) {r['predicted_click_probability']:.3f}, "
              f"true P(click) {r['true_click_probability']:.3f}" for r in curse]
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "diagnostic.md").write_text(text, encoding="utf-8")
    (out / "diagnostic.json").write_text(json.dumps({"command": command, "environment": info, "rows": rows}, indent=2))
    return text
