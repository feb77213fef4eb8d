"""QLearningAgent: tabular Q-learning over k-means states of the observations.

Watkins' Q-learning (Watkins & Dayan, 1992, https://doi.org/10.1007/BF00992698) needs a finite
state set; the observations (by default the LSTM-encoded user state) are continuous, so they are
discretised by k-means into ``num_states`` clusters, fitted on logged observations. Actions are
the items. Written to be read top to bottom:

    s = nearest centroid(obs);  a = ε-greedy(Q[s]);  Q[s, a] += α·(r + γ·(1 − terminated)·max Q[s'] − Q[s, a])
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.base import BaseAgent, require_vector_env
from agents.persistence import load_agent_file, save_agent_file
from agents.training_log import TrainingLog, TrainingRun, linear_schedule
from recenv.clustering import assign, kmeans

__all__ = ["QLearningAgent", "QLearningConfig"]


@dataclass(frozen=True)
class QLearningConfig:
    """Hyper-parameters of :class:`QLearningAgent`.

    :param num_states: k-means clusters of observations (the tabular states).
    :param learning_rate: α, step size of the tabular update.
    :param gamma: discount per step (sessions last tens to hundreds of steps).
    :param start_epsilon: exploration rate at the start ...
    :param end_epsilon: ... decayed linearly to this ...
    :param exploration_fraction: ... over this share of the training steps.
    :param state_fit_steps: user-steps of random play collected to fit the k-means states when
        they were not fitted from logs beforehand.
    :param seed: seeds exploration and k-means.
    """

    num_states: int = 64
    learning_rate: float = 0.1
    gamma: float = 0.9
    start_epsilon: float = 1.0
    end_epsilon: float = 0.05
    exploration_fraction: float = 0.5
    state_fit_steps: int = 20_000
    seed: int = 0


class QLearningAgent(BaseAgent):
    """Tabular Q-learning on k-means-discretised observations; actions are items.

    :param env: the env it is made for (fixes observation space and catalog).
    :param config: hyper-parameters.
    """

    def __init__(self, env: Any, config: QLearningConfig = QLearningConfig()):
        super().__init__(env)
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.centroids: np.ndarray | None = None
        self.q_table = np.zeros((config.num_states, self.num_items))
        self.log = TrainingLog()

    # ---------------------------------------------------------------- states

    def fit_states(self, observations: np.ndarray) -> QLearningAgent:
        """k-means of observations ``(n, obs_dim)`` into ``num_states`` tabular states."""
        observations = np.asarray(observations, dtype=np.float64).reshape(len(observations), -1)
        self.centroids, _ = kmeans(observations, self.config.num_states, seed=self.config.seed)
        return self

    def states(self, observations: np.ndarray) -> np.ndarray:
        if self.centroids is None:
            raise RuntimeError("QLearningAgent has no states yet: call fit_states(observations) or learn(env, ...)")
        return assign(np.asarray(observations, dtype=np.float64).reshape(len(observations), -1), self.centroids)

    # ---------------------------------------------------------------- acting

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        q = self.q_table[self.states(batch)]
        # Ties (e.g. unvisited items) are broken at random, not toward item 0.
        noise = self.rng.random(q.shape) * 1e-9
        actions = (q + noise).argmax(1)
        if not deterministic:
            actions = self._epsilon_greedy(actions, self.config.end_epsilon, self.rng)
        return self._result(actions, single), state

    # ---------------------------------------------------------------- learning

    def learn(self, env: Any, total_timesteps: int, progress: bool = True, tensorboard_dir: str | None = None) -> QLearningAgent:
        """Q-learning on a vector env (``gym.make_vec``, next-step autoreset) for ``total_timesteps`` user-steps."""
        num_envs = require_vector_env(env, "QLearningAgent")
        c = self.config
        observation, _ = env.reset(seed=c.seed)
        if self.centroids is None:
            observation = self._fit_states_by_random_play(env, observation)
        state = self.states(observation)
        run = TrainingRun(self.log, num_envs, total_timesteps, "Q-learning", progress, tensorboard_dir)
        while run.running:
            epsilon = linear_schedule(c.start_epsilon, c.end_epsilon, c.exploration_fraction, run.steps, total_timesteps)
            greedy = (self.q_table[state] + self.rng.random((num_envs, self.num_items)) * 1e-9).argmax(1)
            actions = self._epsilon_greedy(greedy, epsilon, self.rng)
            observation, reward, terminated, truncated, _ = env.step(actions)
            next_state = self.states(observation)
            valid = run.step(reward, terminated, truncated)
            target = reward + c.gamma * (1.0 - terminated) * self.q_table[next_state].max(1)
            s, a = state[valid], actions[valid]
            np.add.at(self.q_table, (s, a), c.learning_rate * (target[valid] - self.q_table[s, a]))
            state = next_state
            run.record_when_due(epsilon=epsilon)
        run.close()
        return self

    def _fit_states_by_random_play(self, env: Any, observation: np.ndarray) -> np.ndarray:
        seen = [observation]
        for _ in range(max(1, self.config.state_fit_steps // env.num_envs)):
            observation, *_ = env.step(self.rng.integers(self.num_items, size=env.num_envs))
            seen.append(observation)
        self.fit_states(np.concatenate(seen))
        return observation

    # ---------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Q-table, centroids, config and the catalog they belong to (safe to load)."""
        centroids = None if self.centroids is None else torch.as_tensor(self.centroids)
        return save_agent_file(path, "QLearningAgent", self.catalog, self.observation_space.shape, self.env_config,
                               config=asdict(self.config), q_table=torch.as_tensor(self.q_table), centroids=centroids)

    def load(self, path: str | os.PathLike[str]) -> QLearningAgent:
        payload = load_agent_file(path, "QLearningAgent", self.catalog, self.observation_space.shape)
        self.config = QLearningConfig(**payload["config"])
        self.q_table = payload["q_table"].numpy().copy()
        self.centroids = None if payload["centroids"] is None else payload["centroids"].numpy().copy()
        return self
