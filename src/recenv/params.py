"""Parameters of the simulated users, and the named presets.

Everything that shapes a user's behaviour lives in one frozen dataclass, :class:`UserModelParams`,
so that an experiment is described by one value that can be printed, compared, hashed and saved.
The equations these numbers enter are written out in :mod:`recenv.dynamics`.

The named presets are in :mod:`recenv.presets`. A parameter file (:func:`save_params_file`,
:func:`load_params_file`) holds every field as JSON, beside whatever the writer adds about where the
numbers came from (the MovieLens fit writes ``recenv/assets/ml100k_params.json`` this way).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["UserModelParams", "load_params_file", "save_params_file"]


@dataclass(frozen=True)
class UserModelParams:
    """Parameters of the user model (``docs/model.md``). All defaults are the ``mixed`` preset.

    Click model, ``u_i = β·<θ, z_i> − η·max(0, <s, z_i>) + κ·c_i + β0`` and ``P(click) = σ(u_i)``:

    :param affinity_weight: β ≥ 0, weight of the cosine between interest θ and item latent z_i.
    :param satiation_weight: η ≥ 0, how strongly satiation with similar items suppresses a click.
    :param clickbait_weight: κ ≥ 0, extra pull of clickbait (c_i ∈ [0, 1]) on the click.
    :param click_bias: β0, logit of a click on an item orthogonal to the user's interest.

    State updates after the response y ∈ {0, 1}:

    :param satiation_decay: ρ ∈ [0, 1), ``s ← ρ·s + (y + ι·(1 − y))·z_i``.
    :param impression_fatigue_weight: ι ≥ 0, how much an impression that was *not* clicked satiates,
        relative to a click (which satiates by 1): re-showing an ignored item wears it out.
    :param consumption_drift_rate: α ∈ [0, 1], ``θ ← normalize(θ + α·(z_i − θ))`` after a click.
    :param exogenous_drift_scale: σ ≥ 0, ``θ ← normalize(θ + σ·ε)``, ``ε ~ N(0, I/k)`` every step.
    :param regime_shift_prob: h ∈ [0, 1], per-step probability that θ is redrawn from the prior.
    :param no_click_patience_cost: δ ≥ 0, extra patience lost on a step without a click.
    :param quality_patience_gain: g ≥ 0, ``b ← b − 1 − δ·(1−y) + y·g·(q_i − c_i)``.
    :param initial_patience: b0 > 0, patience at the start of a session (in steps without reward).

    Population prior (initial interest, and the target of a regime shift):

    :param min_topics_per_user: each user favours between this many ...
    :param max_topics_per_user: ... and this many topics (inclusive), chosen uniformly.
    :param prior_noise_scale: τ ≥ 0, ``θ0 = normalize(Σ_j w_j·μ_topic_j + τ·ε)``, ``w ~ Dirichlet(1)``,
        ``ε ~ N(0, I/k)``; μ_topic is the normalised mean latent of the topic's items.

    Switches (each turns one mechanism off entirely, whatever its numbers say):

    :param satiation: (1) satiation accumulates and suppresses clicks.
    :param consumption_drift: (2) interests move toward clicked items.
    :param exogenous_drift: (3) interests follow a slow random walk.
    :param regime_shifts: (4) interests are occasionally redrawn from the prior ("life events").
        Satiation is kept through a shift (``docs/model.md`` §2 says why).
    :param impression_fatigue: an impression without a click adds ι·z_i to satiation. Off (or
        ``satiation`` off): only clicks satiate.
    :param clickbait: clickbait lures clicks (κ term) and costs patience (c_i in the patience
        update). Off: every item behaves as if ``c_i = 0``.
    :param patience: users leave when patience runs out. Off: sessions end only at the horizon.
    """

    affinity_weight: float = 4.0
    satiation_weight: float = 2.0
    clickbait_weight: float = 1.5
    click_bias: float = -1.5

    satiation_decay: float = 0.85
    impression_fatigue_weight: float = 0.1
    consumption_drift_rate: float = 0.1
    exogenous_drift_scale: float = 0.15
    regime_shift_prob: float = 0.02
    no_click_patience_cost: float = 0.3
    quality_patience_gain: float = 1.5
    initial_patience: float = 30.0

    min_topics_per_user: int = 1
    max_topics_per_user: int = 3
    prior_noise_scale: float = 0.3

    satiation: bool = True
    consumption_drift: bool = True
    exogenous_drift: bool = True
    regime_shifts: bool = True
    clickbait: bool = True
    patience: bool = True
    impression_fatigue: bool = True

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type in ("bool", bool):
                if not isinstance(value, bool):
                    raise TypeError(f"UserModelParams.{field.name} must be a bool, got {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"UserModelParams.{field.name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"UserModelParams.{field.name} must be finite, got {value!r}")
        _check_range("affinity_weight", self.affinity_weight, low=0.0)
        _check_range("satiation_weight", self.satiation_weight, low=0.0)
        _check_range("clickbait_weight", self.clickbait_weight, low=0.0)
        _check_range("satiation_decay", self.satiation_decay, low=0.0, high=1.0, high_open=True)
        _check_range("impression_fatigue_weight", self.impression_fatigue_weight, low=0.0)
        _check_range("consumption_drift_rate", self.consumption_drift_rate, low=0.0, high=1.0)
        _check_range("exogenous_drift_scale", self.exogenous_drift_scale, low=0.0)
        _check_range("regime_shift_prob", self.regime_shift_prob, low=0.0, high=1.0)
        _check_range("no_click_patience_cost", self.no_click_patience_cost, low=0.0)
        _check_range("quality_patience_gain", self.quality_patience_gain, low=0.0)
        _check_range("initial_patience", self.initial_patience, low=0.0, low_open=True)
        _check_range("prior_noise_scale", self.prior_noise_scale, low=0.0)
        for name in ("min_topics_per_user", "max_topics_per_user"):
            if not isinstance(getattr(self, name), int):
                raise TypeError(f"UserModelParams.{name} must be an int, got {getattr(self, name)!r}")
        if not 1 <= self.min_topics_per_user <= self.max_topics_per_user:
            raise ValueError(
                "UserModelParams needs 1 <= min_topics_per_user <= max_topics_per_user, got "
                f"{self.min_topics_per_user} and {self.max_topics_per_user}"
            )

    def replace(self, **changes: Any) -> UserModelParams:
        """A copy with ``changes`` applied; unknown names are refused with the list of known ones."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            known = ", ".join(f.name for f in fields(self))
            raise TypeError(f"unknown UserModelParams field(s) {unknown}; known fields: {known}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_range(
    name: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        allowed = f"{left}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{right}"
        raise ValueError(f"UserModelParams.{name} = {value!r} is out of range; allowed: {allowed}")


def save_params_file(path: str | os.PathLike[str], params: UserModelParams, **metadata: Any) -> Path:
    """Write ``params`` (every field) and ``metadata`` (what they were fitted to, how well) as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"params": params.to_dict(), **metadata}
    path.write_text(json.dumps(document, indent=2, sort_keys=False, default=_json_default) + "\n", encoding="utf-8")
    return path


def load_params_file(path: str | os.PathLike[str]) -> UserModelParams:
    """Read parameters written by :func:`save_params_file`.

    :raises ValueError: naming the file, if it is not such a file.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return UserModelParams(**document["params"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a file of recenv parameters ({type(error).__name__}: {error})") from error


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
