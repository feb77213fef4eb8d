"""Reference agents for DriftingUser-v0, all behind SB3's ``predict()`` (see :mod:`agents.base`).

Baselines: :class:`RandomAgent`, :class:`PopularityAgent`, :class:`StaticProfileAgent`,
:class:`SupervisedLSTMAgent` (the next-click LSTM, no repeats within a session, argmax or
softmax), :class:`GRU4RecAgent` (a GRU4Rec-style next-item model trained on the logs, configured
by :class:`GRU4RecConfig`), and the privileged references :class:`OracleAgent` (myopic) and
:class:`FarsightedOracleAgent` (greedy on clicks per unit of patience). Slate baselines, for
``EnvConfig(slate_size=k)`` (:mod:`agents.slate_baselines`, k distinct items per step):
:class:`RandomSlateAgent`, :class:`GreedySlateAgent`, :class:`StaticProfileSlateAgent` and the
privileged :class:`OracleSlateAgent` and :class:`FarsightedOracleSlateAgent`. Learners:
:class:`QLearningAgent`, :class:`TopicQLearningAgent`, :class:`DQNAgent`, :class:`RecurrentDQNAgent`, :class:`PPOAgent`, :class:`SB3DQNAgent`, :class:`SB3PPOAgent` (the SB3
learners train on the native vector env through :class:`recenv.sb3.SB3VecEnv`), and for slates
:class:`SlateQAgent` (SlateQ: item-level long-term values combined under the choice model). :func:`run_sessions`
evaluates any of them — or any SB3 model — on held-out users (non-privileged ones through the env's
public view); :func:`run_counterfactual_sessions` replays the same users with their first regime
shift scripted off.

The off-policy learners (DQN, RecurrentDQN, LongTermValue, SlateQ) train in one loop,
:class:`OffPolicyLearner` (:mod:`agents.off_policy`: collection, replay cadence, ε schedule, target
refreshes, logging, checkpoints), each supplying its replay, behaviour and loss; write your own by
subclassing it with an :class:`OffPolicyConfig`.
"""

from agents.base import Agent, BaseAgent
from agents.dqn import DQNAgent, DQNConfig
from agents.evaluation import SessionRecords, first_shift_steps, run_counterfactual_sessions, run_sessions
from agents.farsighted_oracle import FarsightedOracleAgent
from agents.long_term_value import LongTermValueAgent, LongTermValueConfig
from agents.off_policy import OffPolicyConfig, OffPolicyLearner
from agents.oracle import OracleAgent
from agents.popularity import PopularityAgent
from agents.ppo import PPOAgent, PPOConfig
from agents.q_learning import QLearningAgent, QLearningConfig
from agents.random_agent import RandomAgent
from agents.recurrent_dqn import RecurrentDQNAgent, RecurrentDQNConfig
from agents.sb3_dqn import SB3DQNAgent, SB3DQNConfig
from agents.sb3_ppo import SB3PPOAgent, SB3PPOConfig
from agents.sequence_recommender import GRU4RecAgent, GRU4RecConfig
from agents.slate_baselines import (
    FarsightedOracleSlateAgent,
    GreedySlateAgent,
    OracleSlateAgent,
    RandomSlateAgent,
    StaticProfileSlateAgent,
)
from agents.slate_q import SlateQAgent, SlateQConfig
from agents.static_profile import StaticProfileAgent
from agents.supervised_lstm import SupervisedLSTMAgent
from agents.topic_q_learning import TopicQLearningAgent, TopicQLearningConfig, TopicRankerAgent

__all__ = [
    "Agent",
    "BaseAgent",
    "DQNAgent",
    "DQNConfig",
    "FarsightedOracleAgent",
    "FarsightedOracleSlateAgent",
    "GRU4RecAgent",
    "GRU4RecConfig",
    "GreedySlateAgent",
    "LongTermValueAgent",
    "LongTermValueConfig",
    "OffPolicyConfig",
    "OffPolicyLearner",
    "OracleAgent",
    "OracleSlateAgent",
    "PPOAgent",
    "PPOConfig",
    "PopularityAgent",
    "QLearningAgent",
    "QLearningConfig",
    "RandomAgent",
    "RandomSlateAgent",
    "RecurrentDQNAgent",
    "RecurrentDQNConfig",
    "SB3DQNAgent",
    "SB3DQNConfig",
    "SB3PPOAgent",
    "SB3PPOConfig",
    "SessionRecords",
    "SlateQAgent",
    "SlateQConfig",
    "StaticProfileAgent",
    "StaticProfileSlateAgent",
    "SupervisedLSTMAgent",
    "TopicQLearningAgent",
    "TopicQLearningConfig",
    "TopicRankerAgent",
    "first_shift_steps",
    "run_counterfactual_sessions",
    "run_sessions",
]
