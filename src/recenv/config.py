"""Every setting of an environment, in one frozen value: :class:`EnvConfig`.

Both environments take the same keywords (the fields below) or a ready ``config=``, and expose the
result as ``env.config``. Whatever rebuilds an environment (an SB3 adapter, the evaluation harness,
the comparison, a saved agent) rebuilds it from that value, so no setting is lost on the way::

    env = gym.make("DriftingUser-v0", preset="smooth", history_length=5)
    twin = recenv.DriftingUserVectorEnv(num_envs=64, config=env.unwrapped.config)

What the user model does with the numbers is in ``docs/model.md``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

import torch

from recenv.catalog import Catalog
from recenv.params import UserModelParams
from recenv.presets import DEFAULT_PRESET, PRESET_NAMES, REAL_DATA_PRESETS, make_params, preset_catalog

__all__ = ["DEFAULT_MAX_EPISODE_STEPS", "OBS_MODES", "SLATE_HISTORIES", "EnvConfig"]

OBS_MODES: tuple[str, ...] = ("encoded", "history", "ids")
"""The observation modes (see :mod:`recenv.observation`); the first is the default."""

DEFAULT_MAX_EPISODE_STEPS = 200
"""The horizon T of ``DriftingUser-v0``: sessions are truncated after this many steps."""

DEFAULT_SLATE_POSITION_DECAY = 0.5
"""λ of the slate position effect: slot j's utility is lowered by ``λ·log2(1 + j)`` (slot 9: by 1.66)."""

SLATE_HISTORIES: tuple[str, ...] = ("chosen", "shown")
"""What the history records of a slate (``slate_history``); the first is the default."""


@dataclass(frozen=True)
class EnvConfig:
    """What an environment simulates and how it shows it. Frozen; every field is validated here, on
    construction, and nowhere else (the simulator and the observations take the config as it is).

    What is simulated:

    :param catalog: a :class:`recenv.Catalog`, or ``None`` for the preset's own (the generated
        500-item catalog for the synthetic presets, the data's items for a real-data preset).
    :param preset: ``"none" | "smooth" | "abrupt" | "mixed"`` (which drift mechanisms are on) or
        ``"ml100k"`` (MovieLens-100K, needs ``data_path``); see :mod:`recenv.presets`.
    :param params: the user-model overrides: ``None`` (the preset's parameters), a mapping of
        overrides of them, or a full :class:`recenv.UserModelParams`. :attr:`user_model` is the
        resolved user model (``env.user_model`` on an environment).
    :param data_path: the data a real-data preset draws on (default for ``ml100k``: ``$RECENV_ML100K``).
    :param max_episode_steps: the horizon T; sessions are truncated after this many steps.
    :param slate_size: k ≥ 1, items shown per step. 1 (default): one item, ``Discrete(N)``
        actions and the click model of ``docs/model.md`` §2. k > 1: a slate, ``MultiDiscrete([N] * k)``
        actions; the user picks at most one of its items by a conditional logit with a no-click
        option (``docs/model.md`` §2, "Slates").
    :param slate_position_decay: λ ≥ 0, the position effect: the item in slot j (0-based) has its
        utility lowered by ``λ·log2(1 + j)`` (the first slot by 0, so k = 1 is unaffected).
    :param slate_history: what the history (every observation mode) records of a slate, k > 1
        only: ``"chosen"`` (default) one interaction per step, the chosen item with click 1 or the
        first slot's with click 0; ``"shown"`` the whole slate, k interactions per step in slot
        order, click 1 on the chosen slot and 0 on the items shown and skipped. With ``"shown"``,
        ``"encoded"`` observes through an encoder trained on logs of such slates
        (``docs/model.md`` §2, "Slates").

    A user's past (the warm-up, ``docs/model.md`` §3):

    :param warmup_steps: W ≥ 0, interactions each fresh user arrives with.
    :param warmup_organic_share: ∈ [0, 1], share of warm-up steps in which the user browses a page
        and picks an item; the other steps show one uniformly random item.
    :param warmup_page_size: items on the page a browsing user chooses from (≥ 1).
    :param user_pool_size: fresh users simulated per batch (their warm-up is batched); ``None``:
        the number of users, within [32, 1024]. Part of the random stream: a different pool size
        gives different users for the same seed.

    What the agent sees:

    :param obs_mode: ``"encoded"`` (default), ``"history"`` or ``"ids"``.
    :param history_length: K ≥ 1, interactions in the ``"history"`` and ``"ids"`` observations.
    :param encoder: for ``"encoded"`` only: ``None`` (the encoder matched to this catalog and user
        model: shipped for the named presets; for other dynamics, trained once and cached by
        :func:`recenv.offline.prepare_encoder` — building an env without it raises
        :class:`recenv.encoder.MissingEncoderWeights` naming the command),
        a weights path (refused if made for other dynamics), or a
        :class:`recenv.encoder.NextClickLSTM` (checked the same way if read from a file).

    Where it runs:

    :param device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. The
        scalar env passes ``"cpu"`` unless told otherwise (one user is too small a batch for a GPU).
    """

    catalog: Catalog | None = None
    preset: str = DEFAULT_PRESET
    params: UserModelParams | Mapping[str, Any] | None = None
    data_path: str | os.PathLike[str] | None = None
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS
    slate_size: int = 1
    slate_position_decay: float = DEFAULT_SLATE_POSITION_DECAY
    slate_history: str = SLATE_HISTORIES[0]
    warmup_steps: int = 20
    warmup_organic_share: float = 0.5
    warmup_page_size: int = 50
    user_pool_size: int | None = None
    obs_mode: str = OBS_MODES[0]
    history_length: int = 10
    encoder: Any = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.preset, str) or self.preset not in PRESET_NAMES:
            raise ValueError(f"unknown preset {self.preset!r}; allowed: {sorted(PRESET_NAMES)}")
        if self.catalog is not None and not isinstance(self.catalog, Catalog):
            raise TypeError(f"catalog must be a recenv.Catalog or None, got {type(self.catalog).__name__}")
        if self.catalog is not None and self.preset in REAL_DATA_PRESETS:
            raise ValueError(
                f"preset {self.preset!r} brings its own catalog (the MovieLens-100K movies its users were fitted "
                "to); pass catalog=None, or use a synthetic preset with your catalog"
            )
        if isinstance(self.params, Mapping):
            object.__setattr__(self, "params", dict(self.params))  # a private copy: the config is frozen
        if self.data_path is not None:
            if self.preset not in REAL_DATA_PRESETS:
                raise ValueError(
                    f"data_path is only used by presets fitted to real data; preset {self.preset!r} does not take one"
                )
            object.__setattr__(self, "data_path", os.fspath(self.data_path))
        if not isinstance(self.obs_mode, str) or self.obs_mode not in OBS_MODES:
            raise ValueError(f"unknown obs_mode {self.obs_mode!r}; allowed: {list(OBS_MODES)}")
        if self.encoder is not None:
            if self.obs_mode != "encoded":
                raise ValueError(f"encoder= is only used with obs_mode='encoded', not {self.obs_mode!r}")
            if not isinstance(self.encoder, (str, os.PathLike, torch.nn.Module)):
                raise TypeError(
                    f"encoder must be None, a weights path or a NextClickLSTM, got {type(self.encoder).__name__}"
                )
        _check_int("history_length", self.history_length, low=1)
        _check_int("warmup_steps", self.warmup_steps, low=0)
        _check_int("warmup_page_size", self.warmup_page_size, low=1)
        _check_int("max_episode_steps", self.max_episode_steps, low=1)
        _check_int("slate_size", self.slate_size, low=1)
        decay = self.slate_position_decay
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay < float("inf"):
            raise ValueError(f"slate_position_decay = {decay!r} is not allowed; expected a finite number >= 0")
        if not isinstance(self.slate_history, str) or self.slate_history not in SLATE_HISTORIES:
            raise ValueError(f"unknown slate_history {self.slate_history!r}; allowed: {list(SLATE_HISTORIES)}")
        if self.slate_history == "shown" and self.slate_size == 1:
            raise ValueError("slate_history='shown' needs slate_size > 1: with one item per step the history "
                             "already records every item shown, clicked or not")
        if self.user_pool_size is not None:
            _check_int("user_pool_size", self.user_pool_size, low=1)
        share = self.warmup_organic_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
            raise ValueError(f"warmup_organic_share = {share!r} is not allowed; expected a number in [0, 1]")
        if not isinstance(self.device, (str, torch.device)):
            raise TypeError(f"device must be a string such as 'cpu', 'cuda' or 'auto', got {self.device!r}")
        self.user_model  # noqa: B018 - bad overrides fail here, naming the field, not at the first reset

    @property
    def history_record(self) -> dict[str, Any] | None:
        """What the history records, when it is not one interaction per step: ``None`` for one
        item or ``slate_history="chosen"`` (the history the shipped encoders were trained on), else
        ``{"slate_history": "shown", "slate_size": k, "slate_position_decay": λ}`` — the slates
        whose logs an encoder of these observations must be trained on (:func:`recenv.encoder.dynamics_key`)."""
        if self.slate_history == SLATE_HISTORIES[0]:
            return None
        return {"slate_history": self.slate_history, "slate_size": self.slate_size,
                "slate_position_decay": float(self.slate_position_decay)}

    @cached_property
    def user_model(self) -> UserModelParams:
        """The user model an environment of this config simulates: the preset's parameters with the
        overrides :attr:`params` applied (or :attr:`params` itself when it is a full model)."""
        return make_params(self.preset, self.params)

    def resolved_catalog(self) -> Catalog:
        """The items an environment of this config shows: :attr:`catalog`, or the preset's own when it
        is None (a real-data preset's is read from :attr:`data_path`; catalogs are cached per process).

        :raises ValueError: a real-data preset without its data (no ``data_path``, no ``$RECENV_ML100K``).
        """
        return preset_catalog(self.catalog, self.preset, self.data_path)

    def replace(self, **changes: Any) -> EnvConfig:
        """A copy with ``changes`` applied; unknown names are refused with the list of known ones."""
        return EnvConfig.build(self, **changes)

    @classmethod
    def build(cls, config: EnvConfig | None = None, **settings: Any) -> EnvConfig:
        """``config`` (default: all defaults) with ``settings`` applied: what the envs' keywords do.

        :raises TypeError: for a name that is not a field, listing the fields.
        """
        if config is not None and not isinstance(config, EnvConfig):
            raise TypeError(f"config must be a recenv.EnvConfig, got {type(config).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise TypeError(f"unknown environment setting(s) {unknown}; known settings: {', '.join(known)}")
        if config is None:
            return cls(**settings)
        return dataclasses.replace(config, **settings) if settings else config

    def settings(self) -> dict[str, Any]:
        """The fields as keywords: ``EnvConfig(**config.settings()) == config``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_record(self) -> dict[str, Any]:
        """The settings as plain JSON values, for files (agent files keep the config of their env).

        The catalog is recorded by fingerprint (``None``: the preset's own) and an encoder given as a
        model by ``None`` (a weights path is kept); :meth:`from_record` takes both back as arguments.
        """
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("catalog", "encoder", "params")}
        if self.slate_size == 1 and self.slate_position_decay == DEFAULT_SLATE_POSITION_DECAY:
            # One item per step: the slate settings play no part, and records (agent files, the
            # comparison's cell keys) stay those written before slates existed.
            del record["slate_size"], record["slate_position_decay"]
        if self.slate_history == SLATE_HISTORIES[0]:
            del record["slate_history"]  # likewise: records from before the option read the same
        record["device"] = str(self.device)
        record["catalog_fingerprint"] = None if self.catalog is None else self.catalog.fingerprint
        if isinstance(self.params, UserModelParams):
            record["params"] = {"full": self.params.to_dict()}
        else:
            record["params"] = None if self.params is None else {"overrides": dict(self.params)}
        record["encoder"] = os.fspath(self.encoder) if isinstance(self.encoder, (str, os.PathLike)) else None
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any], catalog: Catalog | None = None, encoder: Any = None) -> EnvConfig:
        """The config :meth:`to_record` wrote. ``catalog``: the catalog it names by fingerprint (a
        clear error if it is another one); ``encoder``: a model to use where the record has none."""
        record = dict(record)
        fingerprint = record.pop("catalog_fingerprint")
        if (catalog is None) != (fingerprint is None) or (catalog is not None and catalog.fingerprint != fingerprint):
            have = None if catalog is None else catalog.fingerprint
            raise ValueError(f"the recorded config names catalog {fingerprint!r} (None: the preset's own); got {have!r}")
        params = record.pop("params")
        if params is not None:
            params = UserModelParams(**params["full"]) if "full" in params else dict(params["overrides"])
        recorded_encoder = record.pop("encoder")
        return cls(**record, catalog=catalog, params=params, encoder=recorded_encoder or encoder)


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} = {value!r} is not allowed; expected an int >= {low}")
