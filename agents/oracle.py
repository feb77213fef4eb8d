"""OracleAgent: privileged and myopic — an upper reference, not a deployable recommender."""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import BaseAgent

__all__ = ["OracleAgent"]


class OracleAgent(BaseAgent):
    """Greedy on the *true* click probability, read from the simulator.

    PRIVILEGED: it reads hidden user state through the env's documented privileged accessor
    (``env.click_probabilities()``). It maximises the immediate click probability only, so it
    is the myopic ceiling — a far-sighted agent can beat it over a session (it ignores patience).

    :param env: the env it acts in (also bound to it).
    """

    privileged = True

    def __init__(self, env: Any):
        super().__init__(env)
        self.bind(env)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        env = self._bound_users(len(batch))
        probabilities = np.atleast_2d(env.click_probabilities())
        return self._result(probabilities.argmax(1), single), state
