"""What an agent sees: observation builders, one per ``obs_mode``.

All observations are flat 1-D arrays so that any agent (an SB3 ``MlpPolicy`` included) can take
them as they are; the layouts below say how to read them back.

``"history"``: ``(K·(D+2),)`` float32, the last K interactions oldest first, each row
    ``[e_item (D), click, valid]``; ``valid`` is 0 for padding rows (before the user's history
    began), whose other entries are 0. :func:`unflatten_history` gives the ``(K, D+2)`` view.
``"ids"``: ``(2K,)`` int64, ``[item ids (K), clicks (K)]`` oldest first, −1 for padding.

A builder is told about resets and steps (``reset``/``step``) so that stateful encoders (the LSTM
state encoder) can update incrementally; ``observe`` then returns the batch ``(B, ...)`` tensor.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from recenv.simulator import UserSimulator, Warmup

__all__ = [
    "HistoryObservation",
    "IdsObservation",
    "ObservationBuilder",
    "unflatten_history",
]


class ObservationBuilder(Protocol):
    """How an ``obs_mode`` turns the simulator's record of interactions into observations."""

    space: spaces.Box

    def reset(self, index: Tensor, warmup: Warmup) -> None:
        """Users at ``index`` were replaced by fresh users who arrived with ``warmup``."""

    def step(self, item_ids: Tensor, clicks: Tensor) -> None:
        """Every user was shown ``item_ids`` ``(B,)`` and responded ``clicks`` ``(B,)``."""

    def observe(self, simulator: UserSimulator) -> Tensor:
        """The current observations, ``(B, *space.shape)``."""


class HistoryObservation:
    """``obs_mode="history"``: the last K ``[embedding, click, valid]`` rows, flattened."""

    def __init__(self, simulator: UserSimulator):
        k = simulator.history_length
        d = simulator.items.embeddings.shape[1]
        self.history_length, self.row_size = k, d + 2
        self.space = spaces.Box(low=-1.0, high=1.0, shape=(k * (d + 2),), dtype=np.float32)
        # Row N of the padded table is the all-zero padding row, so one gather builds everything.
        embeddings = simulator.items.embeddings
        self._padded_embeddings = torch.cat([embeddings, torch.zeros(1, d, device=embeddings.device)])

    def reset(self, index: Tensor, warmup: Warmup) -> None:
        pass

    def step(self, item_ids: Tensor, clicks: Tensor) -> None:
        pass

    def observe(self, simulator: UserSimulator) -> Tensor:
        ids = simulator.history_items
        valid = ids >= 0
        rows = self._padded_embeddings[torch.where(valid, ids, self._padded_embeddings.shape[0] - 1)]
        extra = torch.stack([simulator.history_clicks, valid.to(rows.dtype)], -1)
        return torch.cat([rows, extra], -1).reshape(ids.shape[0], -1)


class IdsObservation:
    """``obs_mode="ids"``: ``[item ids (K), clicks (K)]`` as int64, −1 for padding."""

    def __init__(self, simulator: UserSimulator):
        k, n = simulator.history_length, simulator.items.num_items
        high = np.concatenate([np.full(k, n - 1), np.ones(k)]).astype(np.int64)
        self.space = spaces.Box(low=-1, high=high, shape=(2 * k,), dtype=np.int64)

    def reset(self, index: Tensor, warmup: Warmup) -> None:
        pass

    def step(self, item_ids: Tensor, clicks: Tensor) -> None:
        pass

    def observe(self, simulator: UserSimulator) -> Tensor:
        ids = simulator.history_items
        clicks = torch.where(ids >= 0, simulator.history_clicks.long(), -1)
        return torch.cat([ids, clicks], 1)


def unflatten_history(observation: np.ndarray | Tensor, history_length: int) -> np.ndarray | Tensor:
    """``"history"`` observations ``(..., K·(D+2))`` → ``(..., K, D+2)`` (a view, no copy)."""
    size = observation.shape[-1]
    if size % history_length:
        raise ValueError(f"an observation of size {size} is not K·(D+2) for K = {history_length}")
    return observation.reshape(*observation.shape[:-1], history_length, size // history_length)


OBSERVATION_BUILDERS = {"history": HistoryObservation, "ids": IdsObservation}
"""obs_mode name → builder class."""
