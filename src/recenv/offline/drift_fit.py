"""Fit the drift of simulated users, and the population prior they start from, to real histories.

What is fitted (everything else in :class:`recenv.UserModelParams` keeps its value):

- the drift parameters σ (``exogenous_drift_scale``), α (``consumption_drift_rate``) and h
  (``regime_shift_prob``);
- the population prior of initial interests: τ (``prior_noise_scale``) and the largest number of
  favoured topics (``max_topics_per_user``; the smallest stays 1).

How: simulated histories are organic browsing (:mod:`recenv.offline.organic_histories`), ``replicas`` per
real user (default 1), each as long as that user's history, always from the same seed (common
random numbers: the distance then changes with the parameters, not with the draw; it is still rough
at fine scales, since a regime shift happens or not). Both are measured by
:func:`recenv.offline.drift_statistics.drift_statistics` and compared by
:func:`recenv.offline.drift_statistics.statistics_distance` (gaps in units of sampling noise, weighted by
the covariance of the statistics).

1. *Prior, from early histories*: grid search of (τ, max topics) minimising the distance on the
   statistics of the first ``early_length`` interactions (early concentration and early genre
   entropy), with the drift parameters as they stand. Only early histories are simulated, so this
   is cheap.
2. *Drift*: a coarse grid over (σ, α, h), then Nelder–Mead (scipy) from the best grid points, on the
   drift statistics (drift curve, window concentration, abrupt-shift rate, genre divergence), with
   the prior of step 1.
3. Repeat for ``rounds`` rounds (the early histories the prior is fitted to drift too, and regime
   shifts draw from the prior); later rounds skip the grid and start Nelder–Mead where the last
   round ended. The result is the last drift step's.

How well it can work: σ, α and h are fitted back within about 40 % from 1,000 simulated users
(``tests/test_drift_fit.py``); with fewer users, less smooth drift plus more regime shifts can look
like the truth within noise, so the separate values carry that uncertainty.

Genre run lengths are measured and reported but not fitted: they are a satiation signal, and
satiation (η, ρ) is not among the fitted parameters; letting them into the distance would bend the
drift parameters to make up for satiation.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from recenv.catalog import Catalog
from recenv.offline.drift_statistics import DriftStatistics, DriftStatisticsConfig, drift_statistics, statistics_distance
from recenv.consumption_histories import ConsumptionHistories
from recenv.offline.organic_histories import simulate_organic_histories
from recenv.params import UserModelParams, save_params_file
from recenv.dynamics import ItemTable

__all__ = [
    "DRIFT_FIELDS",
    "DRIFT_STATISTICS",
    "FitConfig",
    "FitResult",
    "PRIOR_FIELDS",
    "PRIOR_STATISTICS",
    "fit_drift",
    "fit_prior",
    "fit_user_model",
    "save_fitted_params",
    "simulated_statistics",
]

DRIFT_FIELDS: tuple[str, ...] = ("exogenous_drift_scale", "consumption_drift_rate", "regime_shift_prob")
"""σ, α, h: the drift parameters that are fitted."""
PRIOR_FIELDS: tuple[str, ...] = ("prior_noise_scale", "max_topics_per_user")
"""τ and the largest number of favoured topics: the population prior that is fitted."""
DRIFT_STATISTICS: tuple[str, ...] = ("drift_curve", "window_concentration", "shift_rate", "genre_divergence")
"""What the drift parameters are fitted to."""
PRIOR_STATISTICS: tuple[str, ...] = ("early_concentration", "early_genre_entropy")
"""What the population prior is fitted to."""


@dataclass(frozen=True)
class FitConfig:
    """How the fit searches (see the module docstring).

    :param statistics: how histories are measured.
    :param seed: seed of every simulation (common random numbers).
    :param replicas: simulated users per real user (more: less simulation noise, slower).
    :param drift_upper: upper bounds of (σ, α, h); the lower bounds are 0.
    :param drift_grid: the coarse grid per parameter, in unit coordinates ``u``: the value is
        ``upper · u²`` (the default grid: 2 %, 12 %, 30 % and 56 % of the upper bound).
    :param max_evaluations: simulations Nelder–Mead may spend after the grid (per round, all starts).
    :param starts: Nelder–Mead runs, from this many best grid points.
    :param simplex_step: size of Nelder–Mead's first simplex, in unit coordinates.
    :param rounds: rounds of (prior, drift).
    :param prior_noise_grid: values of τ tried.
    :param max_topics_grid: values of the largest number of favoured topics tried.
    :param device: where users are simulated.
    """

    statistics: DriftStatisticsConfig = field(default_factory=DriftStatisticsConfig)
    seed: int = 0
    replicas: int = 1
    drift_upper: tuple[float, float, float] = (1.0, 0.5, 0.1)
    drift_grid: tuple[tuple[float, ...], ...] = ((0.15, 0.35, 0.55, 0.75),) * 3
    max_evaluations: int = 60
    starts: int = 3
    simplex_step: float = 0.15
    rounds: int = 2
    prior_noise_grid: tuple[float, ...] = (0.0, 0.15, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
    max_topics_grid: tuple[int, ...] = (1, 2, 3, 4)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.replicas < 1 or self.max_evaluations < 0 or self.rounds < 1 or self.starts < 1:
            raise ValueError(
                f"replicas and rounds must be >= 1 and max_evaluations >= 0, got {self.replicas}, {self.rounds} "
                f"and {self.max_evaluations}"
            )
        if len(self.drift_upper) != 3 or len(self.drift_grid) != 3:
            raise ValueError("drift_upper and drift_grid need one entry per drift parameter (σ, α, h)")


@dataclass(frozen=True)
class FitResult:
    """What a fit found.

    :param params: the fitted parameters (the start with the fitted fields replaced).
    :param distance: drift-statistics distance of ``params`` to the real histories.
    :param prior_distance: early-statistics distance of the last round's prior (under the drift it
        was chosen with).
    :param real: statistics of the real histories.
    :param simulated: statistics of histories simulated with ``params``.
    :param evaluations: every simulation run: the fields tried and the distance it scored.
    """

    params: UserModelParams
    distance: float
    prior_distance: float
    real: DriftStatistics
    simulated: DriftStatistics
    evaluations: tuple[dict[str, Any], ...]


def simulated_statistics(
    catalog: Catalog | ItemTable,
    latents: np.ndarray,
    topics: np.ndarray,
    params: UserModelParams,
    lengths: np.ndarray,
    config: FitConfig,
) -> DriftStatistics:
    """Statistics of organic histories of ``params``, ``config.replicas`` per entry of ``lengths``,
    always drawn from ``config.seed``."""
    generator = torch.Generator(device=config.device).manual_seed(config.seed)
    wanted = np.tile(np.minimum(lengths, config.statistics.max_length), config.replicas)
    histories = simulate_organic_histories(catalog, params, wanted, generator)
    return drift_statistics(histories, latents, topics, config.statistics)


class _Objective:
    """Distance of simulated to real statistics as a function of some parameter fields; remembers every call."""

    def __init__(
        self, catalog: Catalog, real: DriftStatistics, lengths: np.ndarray, groups: Sequence[str], config: FitConfig
    ):
        self.items = ItemTable.from_catalog(catalog, config.device)
        self.latents, self.topics = catalog.latents, catalog.topics
        self.real, self.lengths, self.groups, self.config = real, lengths, tuple(groups), config
        self.evaluations: list[dict[str, Any]] = []

    def __call__(self, params: UserModelParams, stage: str) -> tuple[float, DriftStatistics]:
        simulated = simulated_statistics(self.items, self.latents, self.topics, params, self.lengths, self.config)
        distance = statistics_distance(self.real, simulated, self.groups)
        fields = {name: getattr(params, name) for name in DRIFT_FIELDS + PRIOR_FIELDS}
        self.evaluations.append({"stage": stage, **fields, "distance": distance})
        return distance, simulated


def fit_prior(
    catalog: Catalog,
    real: ConsumptionHistories,
    start: UserModelParams,
    config: FitConfig = FitConfig(),
    progress: bool = True,
    _evaluations: list | None = None,
) -> tuple[UserModelParams, float]:
    """Step 1: the (τ, max topics) of the grid whose early histories best match the real ones.

    :return: ``start`` with the best prior, and its early-statistics distance.
    """
    early = dataclasses.replace(config.statistics, max_length=config.statistics.early_length)
    early_config = dataclasses.replace(config, statistics=early)
    real_statistics = drift_statistics(real, catalog.latents, catalog.topics, early)
    objective = _Objective(catalog, real_statistics, real.lengths, PRIOR_STATISTICS, early_config)
    best = (np.inf, start)
    grid = list(itertools.product(config.prior_noise_grid, config.max_topics_grid))
    for noise, topics in tqdm(grid, desc="fit prior", disable=not progress, leave=False):
        candidate = start.replace(
            prior_noise_scale=float(noise), max_topics_per_user=int(topics), min_topics_per_user=1
        )
        distance, _ = objective(candidate, "prior")
        if distance < best[0]:
            best = (distance, candidate)
    if _evaluations is not None:
        _evaluations.extend(objective.evaluations)
    return best[1], float(best[0])


def fit_drift(
    catalog: Catalog,
    real: ConsumptionHistories,
    start: UserModelParams,
    config: FitConfig = FitConfig(),
    progress: bool = True,
    search_grid: bool = True,
    _evaluations: list | None = None,
) -> tuple[UserModelParams, float, DriftStatistics, DriftStatistics]:
    """Step 2: (σ, α, h) minimising the drift-statistics distance: coarse grid, then Nelder–Mead
    from each of the ``config.starts`` best grid points.

    The search runs in unit coordinates ``u ∈ [0, 1]³`` with ``value = upper · u²``, which spends
    its resolution on small values, where drift that is visible but not overwhelming lives.

    :param search_grid: ``False``: no grid; one Nelder–Mead run starts from the drift of ``start``.
    :return: ``start`` with the fitted drift, its distance, the real and the simulated statistics.
    """
    from scipy.optimize import minimize  # only fitting needs scipy; `import recenv` stays light

    real_statistics = drift_statistics(real, catalog.latents, catalog.topics, config.statistics)
    objective = _Objective(catalog, real_statistics, real.lengths, DRIFT_STATISTICS, config)
    upper = np.array(config.drift_upper, dtype=np.float64)
    # Every mechanism stays switched on: a value of 0 turns it off, and the random stream (common
    # random numbers) stays the same for every candidate.
    base = start.replace(exogenous_drift=True, consumption_drift=True, regime_shifts=True)

    def with_drift(unit: np.ndarray) -> UserModelParams:
        values = upper * np.clip(unit, 0.0, 1.0) ** 2
        return base.replace(**{name: float(value) for name, value in zip(DRIFT_FIELDS, values)})

    cache: dict[tuple[float, ...], tuple[float, DriftStatistics]] = {}
    grid = list(itertools.product(*config.drift_grid)) if search_grid else []
    bar = tqdm(desc="fit drift", total=len(grid) + config.max_evaluations, disable=not progress, leave=False)

    def evaluate(unit: np.ndarray) -> float:
        key = tuple(np.round(np.clip(unit, 0.0, 1.0), 6))
        if key not in cache:
            cache[key] = objective(with_drift(np.array(key)), "drift")
            bar.update(1)
            bar.set_postfix(distance=f"{min(d for d, _ in cache.values()):.3g}")
        return cache[key][0]

    if search_grid:
        for point in grid:
            evaluate(np.array(point))
        starts = [np.array(k) for k in sorted(cache, key=lambda k: cache[k][0])[: config.starts]]
    else:
        starts = [np.sqrt(np.clip([getattr(start, name) for name in DRIFT_FIELDS] / upper, 0.0, 1.0))]
    # The distance is rough at fine scales (a regime shift happens or not), so Nelder–Mead starts
    # from a simplex wider than that roughness, from more than one point, each with its share of
    # the evaluations.
    budget = config.max_evaluations // len(starts)
    for point in starts if budget > 0 else []:
        step = config.simplex_step
        # Step up each coordinate, or down where stepping up would leave the box.
        directions = np.where(point + step <= 1.0, 1.0, -1.0)
        corners = [np.clip(point + step * directions[i] * np.eye(3)[i], 0.0, 1.0) for i in range(3)]
        simplex = np.vstack([point, *corners])
        minimize(
            evaluate, point, method="Nelder-Mead", bounds=[(0.0, 1.0)] * 3,
            options={"initial_simplex": simplex, "maxfev": budget, "xatol": 0.01, "fatol": 1e-3},
        )
    bar.close()
    best = min(cache, key=lambda k: cache[k][0])
    distance, simulated = cache[best]
    if _evaluations is not None:
        _evaluations.extend(objective.evaluations)
    return with_drift(np.array(best)), float(distance), real_statistics, simulated


def fit_user_model(
    catalog: Catalog,
    real: ConsumptionHistories,
    start: UserModelParams = UserModelParams(),
    config: FitConfig = FitConfig(),
    progress: bool = True,
) -> FitResult:
    """The fit of the module docstring: ``config.rounds`` rounds of (prior, drift).

    :param catalog: the items the real histories refer to.
    :param real: the real histories (item indices into ``catalog``).
    :param start: the parameters not fitted, and the starting drift.
    """
    evaluations: list[dict[str, Any]] = []
    params = start
    for round_index in tqdm(range(config.rounds), desc="fit rounds", disable=not progress):
        params, prior_distance = fit_prior(catalog, real, params, config, progress, evaluations)
        params, distance, real_statistics, simulated = fit_drift(
            catalog, real, params, config, progress, search_grid=round_index == 0, _evaluations=evaluations
        )
    return FitResult(
        params=params,
        distance=distance,
        prior_distance=prior_distance,
        real=real_statistics,
        simulated=simulated,
        evaluations=tuple(evaluations),
    )


def save_fitted_params(path: str | os.PathLike[str], params: UserModelParams, **metadata: Any) -> Path:
    """Write fitted ``params`` with the names of the fitted fields and ``metadata`` (read back with
    :func:`recenv.params.load_params_file`)."""
    return save_params_file(path, params, fitted_fields=list(DRIFT_FIELDS + PRIOR_FIELDS), **metadata)
