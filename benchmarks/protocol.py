"""The comparison protocol: train the learning agents on training users, evaluate every agent on the
same held-out users, over several training seeds, for each preset.

For each preset and training seed ``s``: a training env (a vector env of ``TRAINING_USERS`` = 64
users) is reset with seed ``s``; sessions logged there by the default behaviour policy train the
popularity ranking; the learners (tabular Q-learning, DQN with either head, SB3's DQN) train by
interacting with it for their budget of user-steps (:class:`Budget`). Every agent is then evaluated
on the same ``eval_users`` held-out users (evaluation seed ``EVALUATION_SEED``, disjoint from
training seeds), one session each, with common random numbers (:func:`agents.run_sessions`). The
agents come from :mod:`benchmarks.agent_registry`; their sessions are summarised by
:func:`benchmarks.metrics.summarise`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from agents import SessionRecords, run_sessions
from benchmarks.agent_registry import REFERENCE_AGENTS, AgentFactory, Budget, Context
from benchmarks.metrics import CLICKBAIT_THRESHOLD, summarise
from recenv import DriftingUserVectorEnv, EnvConfig
from recenv.offline.logging_policies import make_logs
from recenv.presets import SYNTHETIC_PRESETS

EVALUATION_SEED = 1_000_000
"""Seed of the held-out users, far from the training seeds (0, 1, 2 by default)."""
TRAINING_USERS = 64
"""Users (parallel envs) of the training vector env."""


QUICK = Budget(q_learning=40_000, dqn=40_000, sb3_dqn=15_000, custom=40_000, logged_users=1_000, eval_users=300)
FULL = Budget(q_learning=400_000, dqn=500_000, sb3_dqn=100_000, custom=500_000, logged_users=5_000, eval_users=2_000)
"""The protocol's two sizes: ``QUICK`` (``--quick``, a few minutes on 2 CPU cores) and ``FULL`` (the README tables)."""


@dataclass
class Comparison:
    """Everything a run produced: summary rows, per-seed rows, learning curves, configuration."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    per_seed: list[dict[str, Any]] = field(default_factory=list)
    learning_curves: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def compare(
    agents: Mapping[str, AgentFactory] | None = None,
    presets: Sequence[str] | Mapping[str, EnvConfig] = tuple(SYNTHETIC_PRESETS),
    seeds: Sequence[int] = (0, 1, 2),
    budget: Budget = FULL,
    device: str = "cpu",
    progress: bool = True,
) -> Comparison:
    """Run the comparison (see the module docstring) and return its numbers.

    :param agents: name → factory; default :data:`~benchmarks.agent_registry.REFERENCE_AGENTS`. Add
        your own: ``compare({**REFERENCE_AGENTS, "Mine": lambda ctx: MyAgent(ctx.train_env)})``.
    :param presets: preset names, or scenarios: name → :class:`recenv.EnvConfig`, as the ablation
        uses. Results are labelled by these names. Every env of a scenario (training env, logs,
        evaluation envs) is built from its config, with ``device`` in place of the config's.
    :returns: one row per preset and agent (``preset``, ``agent``, the metrics of
        :func:`~benchmarks.metrics.summarise` and ``train_seconds``, the mean over seeds), one
        per-seed row per preset, agent and seed, and the learners' training histories keyed
        ``"preset/agent/seedN"``.
    """
    agents = dict(REFERENCE_AGENTS if agents is None else agents)
    if isinstance(presets, Mapping):
        scenarios = {name: config.replace(device=device) for name, config in presets.items()}
    else:
        scenarios = {name: EnvConfig(preset=name, device=device) for name in presets}
    result = Comparison(config={"presets": {name: config.to_record() for name, config in scenarios.items()},
                                "seeds": list(seeds),
                                "budget": asdict(budget), "device": device, "agents": list(agents),
                                "evaluation_seed": EVALUATION_SEED, "training_users": TRAINING_USERS})
    total = len(scenarios) * len(seeds) * len(agents)
    bar = tqdm(total=total, desc="compare", unit="agent", disable=not progress)
    for preset, config in scenarios.items():
        runs: dict[str, list[SessionRecords]] = {name: [] for name in agents}
        seconds: dict[str, list[float]] = {name: [] for name in agents}
        for seed in seeds:
            train_env = DriftingUserVectorEnv(num_envs=TRAINING_USERS, config=config)
            train_log = make_logs(config, budget.logged_users, seed=seed, progress=False)
            for name, factory in agents.items():
                bar.set_description(f"compare [{preset}, seed {seed}] {name}")
                started = time.perf_counter()
                # progress=False: the comparison's one bar is enough
                agent = factory(Context(train_env, train_log, seed, budget, device, progress=False))
                seconds[name].append(time.perf_counter() - started)
                records = run_sessions(agent, budget.eval_users, seed=EVALUATION_SEED, config=config, progress=False)
                runs[name].append(records)
                result.per_seed.append({"preset": preset, "agent": name, "seed": seed,
                                        "clicks_per_session": float(records.returns.mean()),
                                        "train_seconds": seconds[name][-1]})
                log = getattr(agent, "log", None)
                if log is not None and getattr(log, "history", None):
                    result.learning_curves[f"{preset}/{name}/seed{seed}"] = list(log.history)
                bar.update(1)
        for name in agents:
            metrics = summarise(runs[name], clickbait=train_env.catalog.clickbait > CLICKBAIT_THRESHOLD)
            result.rows.append({"preset": preset, "agent": name, **metrics,
                                "train_seconds": float(np.mean(seconds[name]))})
    bar.close()
    return result
