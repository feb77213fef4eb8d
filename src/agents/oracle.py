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

    def click_probabilities(self, observation: Any) -> np.ndarray:
        """The true P(click) of every item for the bound env's users: ``(N,)`` for one observation,
        ``(B, N)`` for a batch (the same face as :meth:`SupervisedLSTMAgent.click_probabilities`)."""
        batch, single = self._as_batch(observation)
        probabilities = np.atleast_2d(self._bound_users(len(batch)).click_probabilities())
        return probabilities[0] if single else probabilities

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        return self._result(np.atleast_2d(self.click_probabilities(batch)).argmax(1), single), state
