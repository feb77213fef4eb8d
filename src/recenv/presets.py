"""The named presets, in one place: what each one simulates (its catalog and user-model parameters).

The synthetic presets differ only in which *drift* mechanisms are on; satiation and the
clickbait/patience trade-off are on in every preset, since they are part of how users respond
rather than of how their interests move. They run on any catalog, the default one unless another
is given:

========  ================  ==================  =============
preset    consumption drift  exogenous drift    regime shifts
========  ================  ==================  =============
none      off               off                 off
smooth    on                on                  off
abrupt    off               off                 on
mixed     on                on                  on
========  ================  ==================  =============

Presets fitted to real data bring their own catalog and need the data's path:

- ``ml100k``: the 1,682 movies of MovieLens-100K as the catalog (:mod:`recenv.data.movielens`), and
  the user model fitted to its users' drift (:mod:`recenv.offline.drift_fit`), shipped as
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
from recenv.params import UserModelParams, load_params_file

__all__ = [
    "DEFAULT_PRESET",
    "ML100K_PARAMS_FILE",
    "PRESET_NAMES",
    "REAL_DATA_PRESETS",
    "SYNTHETIC_PRESETS",
    "make_params",
    "ml100k_params",
    "preset_catalog",
]

_DEFAULT = UserModelParams()

SYNTHETIC_PRESETS: dict[str, UserModelParams] = {
    "none": _DEFAULT.replace(consumption_drift=False, exogenous_drift=False, regime_shifts=False),
    "smooth": _DEFAULT.replace(regime_shifts=False),
    "abrupt": _DEFAULT.replace(consumption_drift=False, exogenous_drift=False),
    "mixed": _DEFAULT,
}
"""The synthetic presets: which drift mechanisms are on (see the module docstring)."""

REAL_DATA_PRESETS: tuple[str, ...] = ("ml100k",)
"""Presets fitted to real data: they bring their own catalog and need ``data_path``."""

PRESET_NAMES: tuple[str, ...] = tuple(SYNTHETIC_PRESETS) + REAL_DATA_PRESETS
"""Every preset name an environment accepts."""

DEFAULT_PRESET = "mixed"

ML100K_PARAMS_FILE = "ml100k_params.json"
"""The parameters fitted to MovieLens-100K, in ``recenv/assets``."""


def _check_preset(preset: Any) -> str:
    if not isinstance(preset, str) or preset not in PRESET_NAMES:
        raise ValueError(f"unknown preset {preset!r}; allowed: {sorted(PRESET_NAMES)}")
    return preset


def ml100k_params() -> UserModelParams:
    """The user model fitted to MovieLens-100K (the shipped ``recenv/assets/ml100k_params.json``)."""
    with resources.as_file(resources.files("recenv") / "assets" / ML100K_PARAMS_FILE) as path:
        if not path.exists():
            raise FileNotFoundError(
                f"the fitted parameters of preset 'ml100k' are missing ({path}); reinstall recenv or recompute "
                "them with `python -m benchmarks.realism --data PATH --write-params`"
            )
        return load_params_file(path)


def make_params(
    preset: str = DEFAULT_PRESET, params: UserModelParams | Mapping[str, Any] | None = None
) -> UserModelParams:
    """The user-model parameters of an environment: a preset, with overrides.

    The one place where overrides are merged into a preset.

    :param preset: one of :data:`PRESET_NAMES`.
    :param params: ``None`` for the preset as it is; a mapping of field overrides applied on top of
        the preset (e.g. ``{"regime_shift_prob": 0.1}``); or a full :class:`UserModelParams`, which
        is used as given (the preset then only names the experiment and, for a real-data preset,
        chooses the catalog).
    """
    _check_preset(preset)
    if params is None or isinstance(params, Mapping):
        base = ml100k_params() if preset == "ml100k" else SYNTHETIC_PRESETS[preset]
        return base if params is None else base.replace(**dict(params))
    if isinstance(params, UserModelParams):
        return params
    raise TypeError(
        f"params must be None, a mapping of overrides of preset {preset!r} or a UserModelParams, "
        f"got {type(params).__name__}"
    )


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


def preset_catalog(
    catalog: Catalog | None, preset: str, data_path: str | os.PathLike[str] | None = None
) -> Catalog:
    """The catalog an environment of ``preset`` runs on, from the fields of a validated
    :class:`recenv.EnvConfig` (which checks them: use :meth:`recenv.EnvConfig.resolved_catalog`).

    :param catalog: a catalog, or ``None`` for the preset's own (the default catalog for the
        synthetic presets, the data's items for a real-data preset).
    :param preset: one of :data:`PRESET_NAMES`.
    :param data_path: the data a real-data preset is fitted to and draws its catalog from
        (default for ``ml100k``: ``$RECENV_ML100K``).
    :raises ValueError: a real-data preset without its data.
    """
    if catalog is not None:
        return catalog
    if _check_preset(preset) not in REAL_DATA_PRESETS:
        return default_catalog()
    if data_path is None and not os.environ.get(DATA_PATH_VARIABLE):
        raise ValueError(
            f"preset {preset!r} needs the MovieLens-100K data: pass data_path=<folder with u.data and u.item, "
            f"or ml-100k.inter and ml-100k.item> or set ${DATA_PATH_VARIABLE} (see recenv.data.movielens "
            "for how to get it)"
        )
    folder = resolve_data_path(data_path)
    return _movielens_catalog(str(folder.resolve()), _files_stamp(folder))
