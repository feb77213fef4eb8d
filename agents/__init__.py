"""Reference agents for DriftingUser-v0, all behind SB3's ``predict()`` (see :mod:`agents.base`).

Baselines: :class:`RandomAgent`, :class:`PopularityAgent`, :class:`StaticProfileAgent`,
:class:`SupervisedLSTMAgent`, and the privileged :class:`OracleAgent`. Learners:
:class:`QLearningAgent`, :class:`DQNAgent`, :class:`SB3DQNAgent`. :func:`run_sessions` evaluates
any of them — or any SB3 model — on held-out users.
"""

from agents.base import Agent, BaseAgent
from agents.dqn import DQNAgent, DQNConfig
from agents.evaluation import SessionRecords, run_sessions
from agents.oracle import OracleAgent
from agents.popularity import PopularityAgent
from agents.q_learning import QLearningAgent, QLearningConfig
from agents.random_agent import RandomAgent
from agents.sb3_dqn import SB3DQNAgent, SB3DQNConfig
from agents.static_profile import StaticProfileAgent
from agents.supervised_lstm import SupervisedLSTMAgent

__all__ = [
    "Agent",
    "BaseAgent",
    "DQNAgent",
    "DQNConfig",
    "OracleAgent",
    "PopularityAgent",
    "QLearningAgent",
    "QLearningConfig",
    "RandomAgent",
    "SB3DQNAgent",
    "SB3DQNConfig",
    "SessionRecords",
    "StaticProfileAgent",
    "SupervisedLSTMAgent",
    "run_sessions",
]
