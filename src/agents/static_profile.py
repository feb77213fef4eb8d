"""StaticProfileAgent: a user profile built once from the user's past and never updated.

This is the "static interest model" of the original write-up, which drifting users defeat: the
profile is the mean embedding of the items the user clicked in the past they arrived with (their
warm-up history; all shown items if they clicked none), and the agent recommends the items most
similar to it. It does not learn from the session's feedback.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import BaseAgent
from recenv.offline.click_predictors import profiles_from_past

__all__ = ["StaticProfileAgent"]


class StaticProfileAgent(BaseAgent):
    """Recommends by cosine between item embeddings and the user's warm-up profile (the profile of
    :class:`recenv.offline.click_predictors.StaticProfilePredictor`, from the same function).

    Like :class:`agents.PopularityAgent` it walks down its (per-user) ranking, ``top_k`` items deep,
    so it does not show one item forever. It reads the users' logged past from the env it is bound
    to (``env.warmup_history()``; not privileged information).

    :param env: the env it acts in (also bound to it).
    :param top_k: how far down each user's ranking it goes.
    """

    def __init__(self, env: Any, top_k: int = 20):
        super().__init__(env)
        self.top_k = top_k
        self.embeddings = np.asarray(self.catalog.embeddings, dtype=np.float32)
        self.bind(env)

    def profiles(self) -> np.ndarray:
        """Unit profile of every user of the bound env, ``(users, D)``."""
        items, clicks = self.env.warmup_history()
        items, clicks = np.atleast_2d(items), np.atleast_2d(clicks)
        return profiles_from_past(items, clicks, items >= 0, self.embeddings)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        self._bound_users(len(batch))
        position = np.zeros(len(batch), dtype=np.int64) if state is None else np.asarray(state, dtype=np.int64).copy()
        if episode_start is not None:
            position[np.asarray(episode_start, dtype=bool).reshape(-1)] = 0
        similarity = self.profiles() @ self.embeddings.T  # (users, items)
        top = np.argpartition(-similarity, self.top_k - 1, axis=1)[:, : self.top_k]
        order = np.take_along_axis(top, np.argsort(-np.take_along_axis(similarity, top, 1), axis=1), 1)
        actions = order[np.arange(len(batch)), position % self.top_k]
        return self._result(actions, single), position + 1
