"""What is simulated: the catalog and the user-model parameters that a preset stands for.

The synthetic presets (``none | smooth | abrupt | mixed``) run on any catalog, the default one unless
another is given. Presets fitted to real data bring their own catalog and need the data's path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from recenv.catalog import Catalog, default_catalog
from recenv.params import PRESETS, UserModelParams, make_params

__all__ = ["KNOWN_PRESETS", "resolve_scenario"]

KNOWN_PRESETS: tuple[str, ...] = tuple(PRESETS)
"""Every preset name an environment accepts."""


def resolve_scenario(
    catalog: Catalog | None,
    preset: str,
    params: UserModelParams | Mapping[str, Any] | None,
    data_path: str | os.PathLike[str] | None = None,
) -> tuple[Catalog, UserModelParams]:
    """The catalog and parameters of an environment.

    :param catalog: a catalog, or ``None`` for the preset's own (the default catalog for the
        synthetic presets).
    :param preset: one of :data:`KNOWN_PRESETS`.
    :param params: overrides of the preset's parameters (see :func:`recenv.params.make_params`).
    :param data_path: the data a real-data preset is fitted to and draws its catalog from.
    """
    if not isinstance(preset, str) or preset not in KNOWN_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; allowed: {sorted(KNOWN_PRESETS)}")
    if data_path is not None:
        raise ValueError(f"data_path is only used by presets fitted to real data; preset {preset!r} does not take one")
    if catalog is None:
        catalog = default_catalog()
    elif not isinstance(catalog, Catalog):
        raise TypeError(f"catalog must be a recenv.Catalog or None, got {type(catalog).__name__}")
    return catalog, make_params(preset, params)
