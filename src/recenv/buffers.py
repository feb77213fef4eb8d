"""Output arrays recycled only once nobody holds them any more.

A vector env returns a fresh observation array every step (the caller may keep it). At N = 1024
users a history observation is 16 MB; allocating that anew every step makes glibc map and unmap
the memory each time, and the page faults cost more than building the observation. This pool
hands back an array only when its reference count shows that the caller has dropped every
reference to it (a view, or a tensor made with ``torch.from_numpy``, counts as a reference), so a
returned array is never overwritten while anyone can still see it.
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["RecycledArrays"]

# References held while we test one: the pool's list, the loop variable, getrefcount's argument.
_UNREFERENCED = 3


class RecycledArrays:
    """A small pool of numpy arrays of one shape and dtype.

    :param shape: shape of every array.
    :param dtype: numpy dtype.
    :param capacity: at most this many arrays are kept for reuse.
    """

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype | type, capacity: int = 4):
        self.shape, self.dtype, self.capacity = tuple(shape), np.dtype(dtype), capacity
        self._arrays: list[np.ndarray] = []

    def take(self) -> np.ndarray:
        """An array nobody else references (contents undefined)."""
        for array in self._arrays:
            if sys.getrefcount(array) <= _UNREFERENCED:
                return array
        array = np.empty(self.shape, self.dtype)
        if len(self._arrays) < self.capacity:
            self._arrays.append(array)
        return array
