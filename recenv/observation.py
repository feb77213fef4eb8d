"""What an agent sees: observation builders, one per ``obs_mode``.

All observations are flat 1-D arrays so that any agent (an SB3 ``MlpPolicy`` included) can take
them as they are; the layouts below say how to read them back.

``"history"``: ``(K·(D+2),)`` float32, the last K interactions oldest first, each row
    ``[e_item (D), click, valid]``; ``valid`` is 0 for padding rows (before the user's history
    began), whose other entries are 0. :func:`unflatten_history` gives the ``(K, D+2)`` view.
``"ids"``: ``(2K,)`` int64, ``[item ids (K), clicks (K)]`` oldest first, −1 for padding.
``"encoded"``: ``(H,)`` float32 in (−1, 1), the hidden state of the next-click LSTM
    (:mod:`recenv.encoder`) after the user's warm-up past and every interaction since, advanced by
    one LSTM step per env step.

A builder is told about resets and steps (``reset``/``step``) so that stateful encoders (the LSTM
state encoder) can update incrementally; ``observe`` then returns the batch ``(B, ...)`` tensor.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from recenv.encoder import NextClickLSTM
from recenv.simulator import UserSimulator, Warmup

__all__ = [
    "EncodedObservation",
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

    def observe(self, simulator: UserSimulator, out: Tensor | None = None) -> Tensor:
        """The current observations, ``(B, *space.shape)``, written into ``out`` when given."""


class HistoryObservation:
    """``obs_mode="history"``: the last K ``[embedding, click, valid]`` rows, flattened."""

    def __init__(self, simulator: UserSimulator):
        k = simulator.history_length
        embeddings = simulator.items.embeddings
        n, d = embeddings.shape
        self.history_length, self.row_size = k, d + 2
        self.space = spaces.Box(low=-1.0, high=1.0, shape=(k * (d + 2),), dtype=np.float32)
        # Rows [e_i, 0, 1] for items and an all-zero padding row N: one index_select builds every
        # row but its click, which is written afterwards (one pass over the output's memory).
        table = torch.zeros((n + 1, d + 2), device=embeddings.device)
        table[:n, :d] = embeddings
        table[:n, d + 1] = 1.0
        self._rows = table
        self._padding = n

    def reset(self, index: Tensor, warmup: Warmup) -> None:
        pass

    def step(self, item_ids: Tensor, clicks: Tensor) -> None:
        pass

    def observe(self, simulator: UserSimulator, out: Tensor | None = None) -> Tensor:
        ids = simulator.recent_items
        batch, k = ids.shape
        index = torch.where(ids >= 0, ids, self._padding).reshape(-1)
        if out is None:
            rows = torch.index_select(self._rows, 0, index)
        else:
            rows = torch.index_select(self._rows, 0, index, out=out.view(batch * k, self.row_size))
        rows = rows.view(batch, k, self.row_size)
        rows[:, :, self.row_size - 2] = simulator.recent_clicks
        return rows.view(batch, -1)


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

    def observe(self, simulator: UserSimulator, out: Tensor | None = None) -> Tensor:
        ids = simulator.recent_items
        clicks = torch.where(ids >= 0, simulator.recent_clicks.long(), -1)
        return torch.cat([ids, clicks], 1, out=out)


class EncodedObservation:
    """``obs_mode="encoded"``: the LSTM state encoder's hidden state ``h``, updated incrementally.

    At a reset the LSTM reads the user's warm-up past (one batched call for all reset users); at
    every step it reads one ``[embedding, click]`` pair — the whole history is never re-run.
    """

    def __init__(self, simulator: UserSimulator, encoder: NextClickLSTM):
        self.encoder = encoder
        hidden = encoder.hidden_size
        self.space = spaces.Box(low=-1.0, high=1.0, shape=(hidden,), dtype=np.float32)
        self._embeddings = simulator.items.embeddings
        self._hidden, self._cell = encoder.initial_state(simulator.num_users, simulator.device)

    def reset(self, index: Tensor, warmup: Warmup) -> None:
        if warmup.items.shape[1] == 0:
            hidden, cell = self.encoder.initial_state(len(index), self._hidden.device)
        else:
            _, (hidden, cell) = self.encoder.encode(self._embeddings[warmup.items], warmup.clicks)
        self._hidden[index], self._cell[index] = hidden, cell

    def step(self, item_ids: Tensor, clicks: Tensor) -> None:
        self._hidden, self._cell = self.encoder.step(self._embeddings[item_ids], clicks, (self._hidden, self._cell))

    def observe(self, simulator: UserSimulator, out: Tensor | None = None) -> Tensor:
        return self._hidden.clone() if out is None else out.copy_(self._hidden)


def unflatten_history(observation: np.ndarray | Tensor, history_length: int) -> np.ndarray | Tensor:
    """``"history"`` observations ``(..., K·(D+2))`` → ``(..., K, D+2)`` (a view, no copy)."""
    size = observation.shape[-1]
    if size % history_length:
        raise ValueError(f"an observation of size {size} is not K·(D+2) for K = {history_length}")
    return observation.reshape(*observation.shape[:-1], history_length, size // history_length)


OBSERVATION_BUILDERS = {"encoded": EncodedObservation, "history": HistoryObservation, "ids": IdsObservation}
"""obs_mode name → builder class."""
