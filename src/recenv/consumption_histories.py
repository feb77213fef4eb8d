"""What many users consumed, each a sequence of item indices in the order consumed.

One type for real logs (a MovieLens user's ratings, oldest first) and for simulated users (the
items a simulated user chose and clicked), so that :mod:`recenv.offline.drift_statistics` measures
both with the same code. Histories differ in length; they are stored flat (CSR style) and padded on
demand. (Logged recommendations with their clicks are :class:`recenv.offline.logs.InteractionLog`.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ConsumptionHistories"]


@dataclass(frozen=True, eq=False)
class ConsumptionHistories:
    """The histories of U users, concatenated.

    :param items: ``(E,)`` int64 item indices (into a catalog), user after user, oldest first.
    :param offsets: ``(U + 1,)`` int64; user ``u`` consumed ``items[offsets[u]:offsets[u + 1]]``.
    """

    items: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        items = np.array(self.items, dtype=np.int64)
        offsets = np.array(self.offsets, dtype=np.int64)
        if items.ndim != 1 or offsets.ndim != 1 or len(offsets) < 1:
            raise ValueError(
                f"items must be 1-D and offsets 1-D and non-empty, got shapes {items.shape}, {offsets.shape}"
            )
        if offsets[0] != 0 or offsets[-1] != len(items) or np.any(np.diff(offsets) < 0):
            raise ValueError("offsets must start at 0, never decrease, and end at len(items)")
        if len(items) and items.min() < 0:
            raise ValueError(f"item indices must be >= 0, got {int(items.min())}")
        for array in (items, offsets):
            array.setflags(write=False)
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "offsets", offsets)

    @classmethod
    def from_sequences(cls, sequences: Sequence[Sequence[int]]) -> ConsumptionHistories:
        """From one sequence of item indices per user."""
        lengths = np.array([len(sequence) for sequence in sequences], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences]) if len(sequences) else np.zeros(0)
        return cls(items, offsets)

    @classmethod
    def from_padded(cls, items: np.ndarray, lengths: np.ndarray) -> ConsumptionHistories:
        """From ``(U, L)`` item indices of which the first ``lengths[u]`` of row ``u`` count."""
        items, lengths = np.asarray(items), np.asarray(lengths, dtype=np.int64)
        shaped = items.ndim == 2 and lengths.shape == (len(items),)
        if not shaped or np.any((lengths < 0) | (lengths > items.shape[-1])):
            raise ValueError(f"expected (U, L) items and (U,) lengths in [0, L], got {items.shape} and {lengths.shape}")
        keep = np.arange(items.shape[1])[None, :] < lengths[:, None]
        return cls(items[keep], np.concatenate([[0], np.cumsum(lengths)]))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """``(U,)`` number of interactions of each user."""
        return np.diff(self.offsets)

    def user(self, index: int) -> np.ndarray:
        """The history of user ``index``, ``(length,)``."""
        return self.items[self.offsets[index]:self.offsets[index + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.user(u) for u in range(len(self)))

    def truncated(self, max_length: int) -> ConsumptionHistories:
        """Each history cut to its first ``max_length`` interactions."""
        if max_length < 0:
            raise ValueError(f"max_length must be >= 0, got {max_length}")
        return ConsumptionHistories.from_sequences([history[:max_length] for history in self])

    def padded(self, fill: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """``(U, L_max)`` item indices, ``fill`` after each history's end, and the ``(U,)`` lengths."""
        lengths = self.lengths
        width = int(lengths.max()) if len(lengths) else 0
        padded = np.full((len(self), width), fill, dtype=np.int64)
        padded[np.arange(width)[None, :] < lengths[:, None]] = self.items
        return padded, lengths
