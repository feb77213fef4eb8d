"""Bootstrap intervals for the comparison: one agent's mean clicks, and paired differences between agents.

The comparison evaluates every agent on the same held-out users after every training seed, so each
agent's clicks per session form an array of shape ``(seeds, users)``: cell ``(s, u)`` is user
``u``'s session with the agent trained with seed ``s``. Two sources of chance are in that array:

- **users**: the held-out users are a sample of the population; another sample would give other means;
- **training seeds**: a learner trained again with another seed is another agent; the seeds are a
  sample of the agents the training recipe produces.

The question the comparison asks is about the *recipe* on the *population* ("does training DQN this
way beat the reference on users like these?"), so an interval must carry both. The users are crossed
with the seeds (the same users in every seed), so neither can be averaged away first: averaging each
user over the seeds and bootstrapping users (what a user-only bootstrap does) treats the seeds as
fixed, and with a few seeds that disagree it reports a confident answer that another set of seeds
would overturn.

**What is resampled.** :func:`paired_difference` and :func:`bootstrap_mean` use the two-way
("pigeonhole", Owen 2007) bootstrap for crossed factors. Each resample draws ``S`` seed indices with
replacement from the ``S`` seeds and, independently, ``U`` user indices with replacement from the
``U`` users, and takes the mean of the values over all ``S × U`` drawn (seed, user) cells — the same
drawn users for every drawn seed, so the pairing of users across seeds is kept, and for a
difference the pairing of the two agents on each (seed, user) cell is kept too (the difference is
taken per cell first). The interval is the percentile interval of those resampled means. The
two-way bootstrap is known to be mildly conservative (its variance estimate counts the
seed × user interaction a little more than once), which is the safe side for a verdict.

**One seed.** With ``S = 1`` every seed draw is that seed: only users are resampled, and the interval
carries the users' sampling alone — nothing about what another training seed would do.
``resample_seeds=False`` does the same for any ``S`` (the user-only bootstrap, kept to show what
ignoring the seeds does). A deterministic reference evaluated once per seed is an ordinary
``(seeds, users)`` array (identical rows); a 1-D ``(users,)`` or ``(1, users)`` reference is
broadcast to every seed.

Every function takes its randomness from one ``np.random.Generator(PCG64(seed))`` made from the
``seed`` argument, so the same inputs and seed give the same interval; no global state is used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np

__all__ = ["BootstrapInterval", "PairedDifference", "bootstrap_event_mean", "bootstrap_mean", "paired_difference",
           "verdict"]

_CELLS_PER_BLOCK = 1 << 22
"""Resamples are processed in blocks of about this many (resample, user) cells, to bound memory."""


@dataclass(frozen=True)
class BootstrapInterval:
    """A mean over ``(seeds, users)`` and its bootstrap interval.

    :param mean: the mean over every seed and user.
    :param low: lower end of the percentile interval.
    :param high: upper end.
    :param seed_means: the mean over users of each seed, in seed order.
    :param seed_std: standard deviation (ddof 1) of ``seed_means``; 0 for one seed.
    :param resamples: bootstrap resamples the interval comes from.
    :param level: the interval's coverage (0.95: a 95 % interval).
    :param resample_seeds: whether seeds were resampled (False: users only, or there was one seed).
    """

    mean: float
    low: float
    high: float
    seed_means: list[float]
    seed_std: float
    resamples: int
    level: float
    resample_seeds: bool

    @property
    def excludes_zero(self) -> bool:
        """Whether 0 lies outside the interval (``low > 0`` or ``high < 0``)."""
        return self.low > 0.0 or self.high < 0.0

    def to_record(self) -> dict[str, Any]:
        """The fields as plain JSON-ready values, and ``excludes_zero``."""
        return {**asdict(self), "excludes_zero": self.excludes_zero}


@dataclass(frozen=True)
class PairedDifference(BootstrapInterval):
    """The mean of ``a − r`` over the same ``(seed, user)`` cells, and its bootstrap interval
    (:func:`paired_difference`). ``seed_means`` are the per-seed mean differences."""


def _as_cells(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{name} must be (seeds, users) or (users,) with at least one of each, "
                         f"got shape {np.shape(values)}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} has NaN or infinite values")
    return array


def _check(resamples: int, level: float) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 1:
        raise ValueError(f"resamples must be a positive int, got {resamples!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")


def _resampled_means(cells: np.ndarray, resamples: int, rng: np.random.Generator, resample_seeds: bool) -> np.ndarray:
    """``resamples`` bootstrap means of ``cells`` ``(S, U)``: per resample, S seeds and U users drawn
    with replacement (seeds kept as they are when ``resample_seeds`` is False or S = 1), the mean
    over the S × U drawn cells. Vectorised through draw counts: the mean over the drawn grid is
    ``seed_counts @ cells @ user_counts / (S·U)``."""
    seeds, users = cells.shape
    resample_seeds = resample_seeds and seeds > 1
    block = max(1, min(resamples, _CELLS_PER_BLOCK // users))
    out = np.empty(resamples)
    for start in range(0, resamples, block):
        n = min(block, resamples - start)
        if resample_seeds:
            seed_counts = _draw_counts(rng, n, seeds)
            by_user = seed_counts @ cells  # (n, U): per resample, the sum over its drawn seeds
        else:
            by_user = np.broadcast_to(cells.sum(0), (n, users))
        user_counts = _draw_counts(rng, n, users)
        out[start : start + n] = np.einsum("ij,ij->i", by_user, user_counts) / (seeds * users)
    return out


def _draw_counts(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``(n, size)`` float counts: how often each of ``size`` indices is drawn in each of ``n``
    rounds of ``size`` draws with replacement."""
    draws = rng.integers(size, size=(n, size)) + (np.arange(n) * size)[:, None]
    return np.bincount(draws.ravel(), minlength=n * size).reshape(n, size).astype(np.float64)


def _interval(cells: np.ndarray, resamples: int, seed: int, level: float, resample_seeds: bool,
              kind: type[BootstrapInterval]) -> BootstrapInterval:
    _check(resamples, level)
    rng = np.random.Generator(np.random.PCG64(seed))
    means = _resampled_means(cells, resamples, rng, resample_seeds)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    seed_means = cells.mean(1)
    return kind(
        mean=float(cells.mean()),
        low=float(low),
        high=float(high),
        seed_means=[float(m) for m in seed_means],
        seed_std=float(seed_means.std(ddof=1)) if len(seed_means) > 1 else 0.0,
        resamples=int(resamples),
        level=float(level),
        resample_seeds=bool(resample_seeds and cells.shape[0] > 1),
    )


def paired_difference(
    a: Any,
    r: Any,
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    resample_seeds: bool = True,
) -> PairedDifference:
    """Agent ``a`` minus reference ``r`` on the same users, with a two-way bootstrap interval.

    :param a: clicks per session of the agent, ``(seeds, users)`` (``(users,)``: one seed).
    :param r: the reference's, the same shape, or ``(users,)`` / ``(1, users)`` for a reference that
        is the same in every seed (broadcast). Cell ``(s, u)`` of both must be the same user.
    :param resamples: bootstrap resamples.
    :param seed: seed of the bootstrap's generator.
    :param level: coverage of the interval.
    :param resample_seeds: True (default): resample seeds and users (module docstring); False:
        users only, the seeds held fixed — an interval that ignores training-seed variance.
    :returns: the mean of the per-cell differences ``a − r`` and its percentile interval; the
        per-seed mean differences and their spread.
    """
    a_cells = _as_cells(a, "a")
    r_cells = _as_cells(r, "r")
    if r_cells.shape[0] == 1 and a_cells.shape[0] > 1 and r_cells.shape[1] == a_cells.shape[1]:
        r_cells = np.broadcast_to(r_cells, a_cells.shape)
    if r_cells.shape != a_cells.shape:
        raise ValueError(f"a and r must cover the same (seeds, users), got shapes {np.shape(a)} and {np.shape(r)}")
    return cast(PairedDifference, _interval(a_cells - r_cells, resamples, seed, level, resample_seeds, PairedDifference))


def bootstrap_mean(
    a: Any,
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    resample_seeds: bool = True,
) -> BootstrapInterval:
    """One agent's mean clicks per session over ``a`` ``(seeds, users)`` and its two-way bootstrap
    interval (the same resampling as :func:`paired_difference`, on the values themselves).

    It answers "what would this recipe get on the population", so it is wide when the seeds
    disagree; to compare two agents use :func:`paired_difference`, which removes what the users
    share between agents and is much narrower.
    """
    return _interval(_as_cells(a, "a"), resamples, seed, level, resample_seeds, BootstrapInterval)


def bootstrap_event_mean(
    cells: Any,
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """The mean over the events in ``cells`` ``(seeds, users)`` — NaN where a (seed, user) had no
    event — and its two-way bootstrap interval.

    Events are not independent across seeds: a user's regime shift falls at the same step in every
    seed (common random numbers), and an agent that does not depend on the seed meets it identically
    each time. Pooling events over seeds as if independent would shrink the interval by up to √S, so
    the resampling is the same as :func:`bootstrap_mean`'s — seeds and users drawn with replacement
    — and each resample's statistic is the ratio (sum over drawn cells with an event) / (number of
    drawn cells with an event).

    :returns: ``(mean, low, high)``; all NaN if there is no event, the interval NaN if there is one.
    """
    _check(resamples, level)
    array = np.asarray(cells, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"cells must be (seeds, users), got shape {array.shape}")
    present = ~np.isnan(array)
    count = int(present.sum())
    if count == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(array[present].mean())
    if count == 1:
        return mean, float("nan"), float("nan")
    values = np.where(present, array, 0.0)
    weights = present.astype(np.float64)
    seeds, users = array.shape
    rng = np.random.Generator(np.random.PCG64(seed))
    seed_counts = _draw_counts(rng, resamples, seeds) if seeds > 1 else np.ones((resamples, 1))
    user_counts = _draw_counts(rng, resamples, users)
    totals = np.einsum("ru,ru->r", seed_counts @ values, user_counts)
    numbers = np.einsum("ru,ru->r", seed_counts @ weights, user_counts)
    ratios = totals[numbers > 0] / numbers[numbers > 0]
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return mean, float(low), float(high)


def verdict(difference: BootstrapInterval, better_is: str = "higher") -> str:
    """``"better"`` or ``"worse"`` when the interval excludes 0, by the sign of the difference;
    ``"not resolved"`` when it contains 0.

    :param better_is: ``"higher"`` (clicks: a positive difference is better) or ``"lower"``
        (regret: a negative difference is better).
    """
    if better_is not in ("higher", "lower"):
        raise ValueError(f"better_is must be 'higher' or 'lower', got {better_is!r}")
    if not difference.excludes_zero:
        return "not resolved"
    above = difference.low > 0.0
    return "better" if above == (better_is == "higher") else "worse"
