"""RandomAgent: a uniformly random item for every user — the floor every agent must clear."""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import BaseAgent

__all__ = ["RandomAgent"]


class RandomAgent(BaseAgent):
    """Recommends a uniformly random item.

    :param env: the env it acts in (scalar or vector).
    :param seed: seed of its own generator.
    """

    def __init__(self, env: Any, seed: int = 0):
        super().__init__(env)
        self.rng = np.random.default_rng(seed)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        return self._result(self.rng.integers(self.num_items, size=len(batch)), single), state
