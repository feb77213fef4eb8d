"""Your own agent, evaluated next to the references — the whole protocol is one predict() method.

    python examples/custom_agent.py
"""

import numpy as np

from agents import RandomAgent, SupervisedLSTMAgent, run_sessions
from recenv import DriftingUserVectorEnv


class FreshTopicAgent:
    """Greedy on the supervised LSTM's click scores, but never the same topic twice in a row."""

    def __init__(self, env):
        self.scorer = SupervisedLSTMAgent(env)
        self.topics = env.catalog.topics

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        scores = np.atleast_2d(self.scorer.click_probabilities(observation))
        last_topic = np.full(len(scores), -1) if state is None else state
        same = self.topics[None, :] == last_topic[:, None]
        actions = np.where(same, -np.inf, scores).argmax(1)
        return actions, self.topics[actions]


env = DriftingUserVectorEnv(num_envs=8, device="cpu")
evaluation = dict(num_users=500, seed=10_000, config=env.config, progress=False)
for agent in (RandomAgent(env), SupervisedLSTMAgent(env), FreshTopicAgent(env)):
    records = run_sessions(agent, **evaluation)
    print(f"{type(agent).__name__:20s} clicks/session {records.returns.mean():6.2f}  "
          f"CTR {records.ctr.mean():.3f}  topic entropy {records.topic_entropy().mean():.2f} bits")
