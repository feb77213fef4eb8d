"""What is simulated: the catalog and the user-model parameters that a preset stands for.

The synthetic presets (``none | smooth | abrupt | mixed``) run on any catalog, the default one unless
another is given. Presets fitted to real data bring their own catalog and need the data's path:

- ``ml100k``: the 1,682 movies of MovieLens-100K as the catalog (:mod:`recenv.data.movielens`), and
  the user model fitted to its users' drift (:mod:`recenv.drift_fit`), shipped as
  ``recenv/assets/ml100k_params.json`` (derived numbers, no data; ``python -m benchmarks.realism``
  recomputes it). The data path comes from ``data_path=`` or ``$RECENV_ML100K``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

from recenv.catalog import Catalog, default_catalog
from recenv.data.movielens import DATA_PATH_VARIABLE, load_movielens_100k, resolve_data_path
from recenv.drift_fit import load_fitted_params
from recenv.params import PRESETS, UserModelParams, make_params

__all__ = ["KNOWN_PRESETS", "ML100K_PARAMS_FILE", "REAL_DATA_PRESETS", "ml100k_params", "resolve_scenario"]

REAL_DATA_PRESETS: tuple[str, ...] = ("ml100k",)
"""Presets fitted to real data: they bring their own catalog and need ``data_path``."""

KNOWN_PRESETS: tuple[str, ...] = tuple(PRESETS) + REAL_DATA_PRESETS
"""Every preset name an environment accepts."""

ML100K_PARAMS_FILE = "ml100k_params.json"
"""The parameters fitted to MovieLens-100K, in ``recenv/assets``."""


def ml100k_params() -> UserModelParams:
    """The user model fitted to MovieLens-100K (the shipped ``recenv/assets/ml100k_params.json``)."""
    with resources.as_file(resources.files("recenv") / "assets" / ML100K_PARAMS_FILE) as path:
        if not path.exists():
            raise FileNotFoundError(
                f"the fitted parameters of preset 'ml100k' are missing ({path}); reinstall recenv or recompute "
                "them with `python -m benchmarks.realism --data PATH --write-params`"
            )
        return load_fitted_params(path)


@lru_cache(maxsize=2)
def _movielens_catalog(folder: str, files_stamp: tuple[tuple[str, int, int], ...]) -> Catalog:
    # Reading 100,000 ratings and building the catalog take seconds (minutes on a cold embedding
    # cache); one catalog per data folder and file version serves every env of a process.
    del files_stamp  # part of the cache key only: a changed file is read again
    return load_movielens_100k(folder).to_catalog()


def _files_stamp(folder: os.PathLike[str]) -> tuple[tuple[str, int, int], ...]:
    stamp = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_file():
            info = entry.stat()
            stamp.append((entry.name, info.st_size, info.st_mtime_ns))
    return tuple(stamp)


def _with_overrides(
    base: UserModelParams, preset: str, params: UserModelParams | Mapping[str, Any] | None
) -> UserModelParams:
    if params is None:
        return base
    if isinstance(params, UserModelParams):
        return params
    if isinstance(params, Mapping):
        return base.replace(**dict(params))
    raise TypeError(
        f"params must be None, a mapping of overrides of preset {preset!r} or a UserModelParams, "
        f"got {type(params).__name__}"
    )


def resolve_scenario(
    catalog: Catalog | None,
    preset: str,
    params: UserModelParams | Mapping[str, Any] | None,
    data_path: str | os.PathLike[str] | None = None,
) -> tuple[Catalog, UserModelParams]:
    """The catalog and parameters of an environment.

    :param catalog: a catalog, or ``None`` for the preset's own (the default catalog for the
        synthetic presets, the data's items for a real-data preset).
    :param preset: one of :data:`KNOWN_PRESETS`.
    :param params: overrides of the preset's parameters (see :func:`recenv.params.make_params`).
    :param data_path: the data a real-data preset is fitted to and draws its catalog from
        (default for ``ml100k``: ``$RECENV_ML100K``).
    """
    if not isinstance(preset, str) or preset not in KNOWN_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; allowed: {sorted(KNOWN_PRESETS)}")
    if preset in REAL_DATA_PRESETS:
        if catalog is not None:
            raise ValueError(
                f"preset {preset!r} brings its own catalog (the MovieLens-100K movies its users were fitted "
                "to); pass catalog=None, or use a synthetic preset with your catalog"
            )
        if data_path is None and not os.environ.get(DATA_PATH_VARIABLE):
            raise ValueError(
                f"preset {preset!r} needs the MovieLens-100K data: pass data_path=<folder with u.data and u.item, "
                f"or ml-100k.inter and ml-100k.item> or set ${DATA_PATH_VARIABLE} (see recenv.data.movielens "
                "for how to get it)"
            )
        folder = resolve_data_path(data_path)
        catalog = _movielens_catalog(str(folder.resolve()), _files_stamp(folder))
        return catalog, _with_overrides(ml100k_params(), preset, params)
    if data_path is not None:
        raise ValueError(f"data_path is only used by presets fitted to real data; preset {preset!r} does not take one")
    if catalog is None:
        catalog = default_catalog()
    elif not isinstance(catalog, Catalog):
        raise TypeError(f"catalog must be a recenv.Catalog or None, got {type(catalog).__name__}")
    return catalog, make_params(preset, params)
