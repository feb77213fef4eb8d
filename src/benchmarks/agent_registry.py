"""The agents the comparison knows: the reference agents by name, and yours by import path.

An agent enters the comparison as a factory, ``factory(context) -> agent``, that builds it on the
training env and, if it learns, trains it there for its share of the :class:`Budget`
(:class:`Context`). A factory's context holds the public views of the training env and logs
(:mod:`recenv.public_view`) unless the factory is declared privileged (:func:`privileged`): only
the references that must read the simulator's hidden side are.

:data:`REFERENCE_AGENTS` show one item per step; :data:`SLATE_AGENTS` show a slate of k items (the
scenarios of ``recenv compare --slate-size k``), k read from the training env's
``config.slate_size``.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from agents import (
    DQNAgent,
    DQNConfig,
    FarsightedOracleAgent,
    FarsightedOracleSlateAgent,
    GreedySlateAgent,
    GRU4RecAgent,
    GRU4RecConfig,
    LongTermValueAgent,
    LongTermValueConfig,
    OracleAgent,
    OracleSlateAgent,
    PopularityAgent,
    PPOAgent,
    PPOConfig,
    QLearningAgent,
    QLearningConfig,
    RandomAgent,
    RandomSlateAgent,
    SB3DQNAgent,
    SB3DQNConfig,
    SB3PPOAgent,
    SB3PPOConfig,
    StaticProfileAgent,
    StaticProfileSlateAgent,
    SupervisedLSTMAgent,
)
from agents.recurrent_dqn import RecurrentDQNAgent, RecurrentDQNConfig
from agents.slate_q import SlateQAgent, SlateQConfig
from agents.topic_q_learning import TopicQLearningAgent, TopicQLearningConfig, TopicRankerAgent
from recenv import DriftingUserVectorEnv


@dataclass(frozen=True)
class Budget:
    """How much each learner trains (user-steps; its factory reads its own field) and how many users
    are logged (for the models that learn from logs: the popularity ranking, GRU4Rec) and
    evaluated, per training seed."""

    q_learning: int
    dqn: int
    sb3_dqn: int
    custom: int
    logged_users: int
    eval_users: int
    recurrent_dqn: int
    long_term_value: int
    ppo: int
    sb3_ppo: int
    topic_q_learning: int
    slate_q: int = 0  # slate scenarios only (SlateQ); 0 where a budget predates slates


@dataclass
class Context:
    """What an agent factory gets: the training env and logs (their public views, unless the factory
    is privileged), the seed, the budget, the device."""

    train_env: DriftingUserVectorEnv
    train_log: Any
    seed: int
    budget: Budget
    device: str
    progress: bool


AgentFactory = Callable[[Context], Any]
"""``factory(context) -> agent``: builds, and trains if it learns, one agent."""


def privileged(factory: AgentFactory) -> AgentFactory:
    """Declare that ``factory`` builds a privileged reference: its context holds the env and logs
    themselves, and the tables mark it."""
    factory.privileged = True  # type: ignore[attr-defined]
    return factory


def is_privileged(factory: AgentFactory) -> bool:
    """Whether ``factory`` was declared privileged (:func:`privileged`)."""
    return bool(getattr(factory, "privileged", False))


def reads_budget(*fields: str) -> Callable[[AgentFactory], AgentFactory]:
    """Declare the :class:`Budget` fields a factory reads (none for an agent that neither learns
    nor reads logs). A stored comparison part keeps an agent whose fields are unchanged when
    another field changes (:func:`benchmarks.protocol.run_part`)."""
    unknown = set(fields) - {f.name for f in dataclasses.fields(Budget)}
    if unknown:
        raise ValueError(f"unknown budget field(s) {sorted(unknown)}")

    def declare(factory: AgentFactory) -> AgentFactory:
        factory.budget_fields = tuple(fields)  # type: ignore[attr-defined]
        return factory

    return declare


def budget_fields(factory: AgentFactory) -> tuple[str, ...]:
    """The budget fields ``factory`` reads: as declared (:func:`reads_budget`), else every field."""
    declared = getattr(factory, "budget_fields", None)
    return tuple(f.name for f in dataclasses.fields(Budget) if f.name != "eval_users") if declared is None else declared


def agent_budget(factory: AgentFactory, budget: Budget) -> dict[str, int]:
    """The part of ``budget`` that ``factory`` reads."""
    return {name: getattr(budget, name) for name in budget_fields(factory)}


@reads_budget("q_learning")
def _q_learning(ctx: Context) -> Any:
    agent = QLearningAgent(ctx.train_env, QLearningConfig(seed=ctx.seed))
    return agent.learn(ctx.train_env, ctx.budget.q_learning, progress=ctx.progress)


def _dqn(head: str) -> AgentFactory:
    @reads_budget("dqn")
    def factory(ctx: Context) -> Any:
        agent = DQNAgent(ctx.train_env, DQNConfig(head=head, seed=ctx.seed), device=ctx.device)
        return agent.learn(ctx.train_env, ctx.budget.dqn, progress=ctx.progress)

    return factory


@reads_budget("recurrent_dqn")
def _recurrent_dqn(ctx: Context) -> Any:
    agent = RecurrentDQNAgent(ctx.train_env, RecurrentDQNConfig(seed=ctx.seed), device=ctx.device)
    return agent.learn(ctx.train_env, ctx.budget.recurrent_dqn, progress=ctx.progress)


@reads_budget("dqn")
def _dqn_warm_start(ctx: Context) -> Any:
    config = DQNConfig(head="embedding", warm_start=True, gamma=0.99, seed=ctx.seed)
    return DQNAgent(ctx.train_env, config, device=ctx.device).learn(ctx.train_env, ctx.budget.dqn, progress=ctx.progress)


@reads_budget("slate_q")
def _slate_q(ctx: Context) -> Any:
    agent = SlateQAgent(ctx.train_env, SlateQConfig(seed=ctx.seed), device=ctx.device)
    return agent.learn(ctx.train_env, ctx.budget.slate_q, progress=ctx.progress)


@reads_budget("long_term_value")
def _long_term_value(ctx: Context) -> Any:
    agent = LongTermValueAgent(ctx.train_env, LongTermValueConfig(seed=ctx.seed), device=ctx.device)
    return agent.learn(ctx.train_env, ctx.budget.long_term_value, progress=ctx.progress)


@reads_budget("ppo")
def _ppo(ctx: Context) -> Any:
    agent = PPOAgent(ctx.train_env, PPOConfig(seed=ctx.seed), device=ctx.device)
    return agent.learn(ctx.train_env, ctx.budget.ppo, progress=ctx.progress)


@reads_budget("sb3_ppo")
def _sb3_ppo(ctx: Context) -> Any:
    agent = SB3PPOAgent(ctx.train_env, replace(SB3PPOConfig(), seed=ctx.seed), device=ctx.device)
    return agent.learn(ctx.train_env, ctx.budget.sb3_ppo, progress=False)


@reads_budget("topic_q_learning")
def _topic_q_learning(ctx: Context) -> Any:
    agent = TopicQLearningAgent(ctx.train_env, TopicQLearningConfig(seed=ctx.seed))
    return agent.learn(ctx.train_env, ctx.budget.topic_q_learning, progress=ctx.progress)


@reads_budget("logged_users")
def _gru4rec(ctx: Context) -> Any:
    agent = GRU4RecAgent(ctx.train_env, GRU4RecConfig(seed=ctx.seed))
    return agent.fit(ctx.train_log, progress=ctx.progress)


@reads_budget("sb3_dqn")
def _sb3_dqn(ctx: Context) -> Any:
    agent = SB3DQNAgent(ctx.train_env, replace(SB3DQNConfig(), seed=ctx.seed), device=ctx.device)
    return agent.learn(ctx.train_env, ctx.budget.sb3_dqn, progress=False)


_no_budget = reads_budget()

REFERENCE_AGENTS: dict[str, AgentFactory] = {
    "Random": _no_budget(lambda ctx: RandomAgent(ctx.train_env, seed=ctx.seed)),
    "Popularity": reads_budget("logged_users")(lambda ctx: PopularityAgent(ctx.train_env).fit(ctx.train_log)),
    "StaticProfile": _no_budget(lambda ctx: StaticProfileAgent(ctx.train_env)),
    "SupervisedLSTM": _no_budget(lambda ctx: SupervisedLSTMAgent(ctx.train_env)),
    "SupervisedLSTM-softmax": _no_budget(lambda ctx: SupervisedLSTMAgent(ctx.train_env, temperature=0.1, seed=ctx.seed)),
    "GRU4Rec": _gru4rec,
    "Oracle": privileged(_no_budget(lambda ctx: OracleAgent(ctx.train_env))),
    "FarsightedOracle": privileged(_no_budget(lambda ctx: FarsightedOracleAgent(ctx.train_env))),
    "QLearning": _q_learning,
    "TopicRanker": _no_budget(lambda ctx: TopicRankerAgent(ctx.train_env, TopicQLearningConfig(seed=ctx.seed))),
    "TopicQLearning": _topic_q_learning,
    "DQN-mlp": _dqn("mlp"),
    "DQN-embedding": _dqn("embedding"),
    "DQN-embedding-warm": _dqn_warm_start,
    "RecurrentDQN": _recurrent_dqn,
    "LongTermValue": _long_term_value,
    "PPO": _ppo,
    "SB3-DQN": _sb3_dqn,
    "SB3-PPO": _sb3_ppo,
}
"""The reference agents by name; :func:`benchmarks.protocol.compare` takes any dict of this shape."""

SLATE_AGENTS: dict[str, AgentFactory] = {
    "RandomSlate": _no_budget(lambda ctx: RandomSlateAgent(ctx.train_env, seed=ctx.seed)),
    "GreedySlate": _no_budget(lambda ctx: GreedySlateAgent(ctx.train_env)),
    "StaticProfileSlate": _no_budget(lambda ctx: StaticProfileSlateAgent(ctx.train_env)),
    "OracleSlate": privileged(_no_budget(lambda ctx: OracleSlateAgent(ctx.train_env))),
    "FarsightedOracleSlate": privileged(_no_budget(lambda ctx: FarsightedOracleSlateAgent(ctx.train_env))),
    "SlateQ": _slate_q,
}
"""The slate baselines by name (:mod:`agents.slate_baselines`), for scenarios with ``slate_size`` > 1:
none of them learns or reads the logs. ``"GreedySlate"`` is the slate comparison's default reference
(:data:`benchmarks.protocol.SLATE_REFERENCE`)."""


def agent_from_import_path(path: str) -> AgentFactory:
    """``"package.module:ClassName"`` → a factory that builds ``ClassName(train_env)`` and, if it has
    ``learn``, trains it for the ``custom`` budget. It gets the public views unless the class
    declares ``privileged = True``."""
    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"--agent takes 'package.module:ClassName', got {path!r}")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot import agent {path!r}: {error}") from error

    @reads_budget("custom")
    def factory(ctx: Context) -> Any:
        agent = cls(ctx.train_env)
        if hasattr(agent, "learn"):
            agent.learn(ctx.train_env, ctx.budget.custom)
        return agent

    if getattr(cls, "privileged", False):
        privileged(factory)
    return factory
