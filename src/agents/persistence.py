"""Agent files: weights, the facts that tie them to a catalog and an observation shape, and the
config of the env they were made for (:meth:`recenv.EnvConfig.to_record`), from which that env can
be rebuilt (:func:`saved_env_config`).

Written with ``torch.save`` as plain tensors, numbers and strings; read with
``torch.load(..., weights_only=True)``, which cannot run code from the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from recenv import Catalog, EnvConfig
from recenv.weights_file import read_weights_file

__all__ = ["load_agent_file", "save_agent_file", "saved_env_config"]


def save_agent_file(
    path: str | os.PathLike[str],
    kind: str,
    catalog: Any,
    observation_shape: tuple[int, ...],
    env_config: EnvConfig,
    **payload: Any,
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"agent": kind, "catalog_fingerprint": catalog.fingerprint, "observation_shape": list(observation_shape),
         "env_config": env_config.to_record(), **payload},
        path,
    )
    return path


def saved_env_config(path: str | os.PathLike[str], catalog: Catalog | None = None, encoder: Any = None) -> EnvConfig:
    """The config of the env an agent file was made for, to rebuild that env
    (``catalog``/``encoder``: see :meth:`recenv.EnvConfig.from_record`)."""
    payload = read_weights_file(path, "agent")
    if "env_config" not in payload:
        raise ValueError(f"agent file {path} records no env config")
    return EnvConfig.from_record(payload["env_config"], catalog=catalog, encoder=encoder)


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
