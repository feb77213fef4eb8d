"""Agent files: weights and the facts that tie them to a catalog and an observation shape.

Written with ``torch.save`` as plain tensors, numbers and strings; read with
``torch.load(..., weights_only=True)``, which cannot run code from the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from recenv.weights_file import read_weights_file

__all__ = ["load_agent_file", "save_agent_file"]


def save_agent_file(path: str | os.PathLike[str], kind: str, catalog: Any, observation_shape: tuple[int, ...], **payload: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"agent": kind, "catalog_fingerprint": catalog.fingerprint, "observation_shape": list(observation_shape), **payload},
        path,
    )
    return path


def load_agent_file(path: str | os.PathLike[str], kind: str, catalog: Any, observation_shape: tuple[int, ...]) -> dict[str, Any]:
    """Read an agent file safely and check it belongs to this kind of agent, catalog and observation.

    :raises ValueError: naming the file and the mismatch.
    """
    payload = read_weights_file(path, "agent")
    if payload.get("agent") != kind:
        raise ValueError(f"{path} is not a {kind} file (it says {payload.get('agent')!r})")
    if payload["catalog_fingerprint"] != catalog.fingerprint:
        raise ValueError(
            f"agent file {path} was trained for another catalog (fingerprint {payload['catalog_fingerprint']}; "
            f"this env's is {catalog.fingerprint}): its actions would name other items"
        )
    if tuple(payload["observation_shape"]) != tuple(observation_shape):
        raise ValueError(
            f"agent file {path} expects observations of shape {tuple(payload['observation_shape'])}; "
            f"this env gives {tuple(observation_shape)} (check obs_mode)"
        )
    return payload
