"""PopularityAgent: the same ranking of most-clicked items for everyone (a static, global model)."""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import BaseAgent
from recenv.offline.click_predictors import item_clicks_and_shows

__all__ = ["PopularityAgent"]


class PopularityAgent(BaseAgent):
    """Shows the most-clicked items of the training logs, walking down the ranking.

    The ranking is global and never changes. Each user is shown the ``top_k`` most-clicked items
    in turn (one per step, then from the top again), because showing only the single most popular
    item would bore every user at once. The position in the ranking is the per-user ``state``
    (SB3's recurrent state), reset when ``episode_start`` is True.

    :param env: the env it acts in.
    :param top_k: how far down the ranking it goes.
    """

    def __init__(self, env: Any, top_k: int = 20):
        super().__init__(env)
        if not 1 <= top_k <= self.num_items:
            raise ValueError(f"top_k = {top_k} is not allowed; expected 1..{self.num_items}")
        self.top_k = top_k
        self.ranking: np.ndarray | None = None

    def fit(self, log: Any) -> PopularityAgent:
        """Rank items by clicks in an :class:`recenv.offline.logs.InteractionLog` (session rows)."""
        clicks, _ = item_clicks_and_shows(log, self.num_items)
        self.ranking = np.argsort(-clicks, kind="stable")
        return self

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        if self.ranking is None:
            raise RuntimeError("PopularityAgent needs fit(log) with training logs first")
        batch, single = self._as_batch(observation)
        position = np.zeros(len(batch), dtype=np.int64) if state is None else np.asarray(state, dtype=np.int64).copy()
        if episode_start is not None:
            position[np.asarray(episode_start, dtype=bool).reshape(-1)] = 0
        actions = self.ranking[position % self.top_k]
        return self._result(actions, single), position + 1
