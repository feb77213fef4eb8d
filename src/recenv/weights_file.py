"""Reading weight files safely: ``torch.load(..., weights_only=True)`` cannot run code from a file,
and any failure becomes an error that names the file."""

from __future__ import annotations

import os
from typing import Any

import torch

__all__ = ["read_weights_file"]


def read_weights_file(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The dict stored in ``path`` (tensors, numbers, strings, lists, dicts only).

    :param what: what the file should be, for the error message (e.g. ``"encoder"``).
    :raises FileNotFoundError: no such file.
    :raises ValueError: the file is corrupt, not a torch file, or holds anything but a dict.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises several types for a corrupt or foreign file
        raise ValueError(f"{what} file {path} is unreadable ({type(error).__name__}: {error})") from error
    if not isinstance(payload, dict):
        raise ValueError(f"{what} file {path} holds a {type(payload).__name__}, not a recenv {what} file")
    return payload
