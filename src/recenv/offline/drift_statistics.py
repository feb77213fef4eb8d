"""How users' interests drift, measured on interaction histories: one definition for real logs and
simulated users alike.

Every statistic is computed per user, then averaged over users (each user counts once), with the
standard error of that mean. ConsumptionHistories are first cut to their first ``max_length`` interactions.
Items are represented by the catalog's latents ``z`` (unit-norm, centred by the PCA), in which the
user model lives; ``z`` is centred, so two windows of random items have cosine ≈ 0.

- **Drift curve** ``C(L)``: a user's history is cut into consecutive windows of ``window`` items;
  ``m_j`` is the mean latent of window ``j``. ``C(L)`` is the mean over users of the mean over ``j``
  of ``cos(m_j, m_{j+L})``, for lags ``L = 1..max_lag`` (in windows; users with fewer than
  ``L + 1`` windows do not enter ``C(L)``). High and flat: stable interests; falling with ``L``: drift.
- **Window concentration**: the mean over windows of ``‖m_j‖`` before normalising (1: the items of a
  window all alike; ≈ 1/√window: unrelated). How focused a user's choices are at any one time; an
  interest that wanders off the items' directions (exogenous drift) makes choices less focused, one
  pulled toward consumed items (consumption drift) keeps them focused.
- **Abrupt-shift rate**: the share of adjacent windows with ``cos(m_j, m_{j+1}) < shift_threshold``
  (default 0: less alike than two windows of random items are on average).
- **Genre divergence**: Jensen–Shannon divergence (bits, in [0, 1]) between the topic distribution
  of the first half of a user's history and that of the second half (both halves have ⌊n/2⌋ items).
- **Genre run length**: the mean length of maximal runs of consecutive items of the same topic.
  Satiation shortens runs; a user locked into one genre lengthens them.
- **Early concentration**: the norm of the mean latent of the first ``early_length`` items (1: all
  alike; ≈ 1/√n: unrelated). With the early genre entropy below, it describes where users *start*,
  which is what the population prior of initial interests must reproduce.
- **Early genre entropy**: entropy (bits) of the topic distribution of the first ``early_length`` items.

Each statistic has its own function, which returns every user's value (:func:`drift_curve`,
:func:`window_concentration`, :func:`shift_rate`, :func:`genre_divergence`, :func:`genre_run_length`,
:func:`early_concentration`, :func:`early_genre_entropy`); the three window statistics read the windows
of :func:`window_means`. :func:`drift_statistics` pads the histories once (:class:`PaddedHistories`),
calls each function and averages over users.

Statistics of finite samples are biased (JS divergence of two small samples is positive even for the
same user); comparing real and simulated histories of the *same lengths* cancels that bias, which is
why :func:`recenv.offline.organic_histories.simulate_organic_histories` takes the real lengths.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from recenv.consumption_histories import ConsumptionHistories

__all__ = [
    "DISTANCE_GROUPS",
    "DriftStatistics",
    "DriftStatisticsConfig",
    "PaddedHistories",
    "SCALAR_STATISTICS",
    "Windows",
    "covariance_of_means",
    "drift_curve",
    "drift_curve_gap",
    "drift_statistics",
    "early_concentration",
    "early_genre_entropy",
    "genre_divergence",
    "genre_run_length",
    "shift_rate",
    "statistics_distance",
    "window_concentration",
    "window_means",
]

SCALAR_STATISTICS: tuple[str, ...] = (
    "window_concentration",
    "shift_rate",
    "genre_divergence",
    "genre_run_length",
    "early_concentration",
    "early_genre_entropy",
)
"""Names of the one-number statistics of :class:`DriftStatistics` (beside the drift curve)."""


@dataclass(frozen=True)
class DriftStatisticsConfig:
    """How histories are measured (see the module docstring).

    :param window: interactions per window of the drift curve.
    :param max_lag: largest lag of the drift curve, in windows.
    :param shift_threshold: adjacent windows less similar than this (cosine) count as an abrupt shift.
    :param early_length: interactions that make a user's early history.
    :param max_length: histories are cut to their first this many interactions.
    """

    window: int = 10
    max_lag: int = 10
    shift_threshold: float = 0.0
    early_length: int = 20
    max_length: int = 200

    def __post_init__(self) -> None:
        for name in ("window", "max_lag", "early_length", "max_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DriftStatisticsConfig.{name} must be an int >= 1, got {value!r}")
        if not -1.0 <= self.shift_threshold <= 1.0:
            raise ValueError(
                f"DriftStatisticsConfig.shift_threshold must be a cosine in [-1, 1], got {self.shift_threshold!r}"
            )


@dataclass(frozen=True)
class DriftStatistics:
    """The statistics of a set of histories; each ``*_se`` is the standard error of the mean over users.

    :param lags: ``(L,)`` lags of the drift curve, in windows.
    :param drift_curve: ``(L,)`` mean cosine between windows ``L`` apart (NaN where no user has them).
    :param drift_curve_se: ``(L,)`` its standard errors.
    :param drift_curve_users: ``(L,)`` users that enter each lag.
    :param num_users: users measured.
    :param per_user: ``(U, M)`` each user's value of every number in :meth:`moments` (NaN where a
        user does not enter it); what the statistics are means of, and what their covariance comes from.
    """

    lags: np.ndarray
    drift_curve: np.ndarray
    drift_curve_se: np.ndarray
    drift_curve_users: np.ndarray
    window_concentration: float
    window_concentration_se: float
    shift_rate: float
    shift_rate_se: float
    genre_divergence: float
    genre_divergence_se: float
    genre_run_length: float
    genre_run_length_se: float
    early_concentration: float
    early_concentration_se: float
    early_genre_entropy: float
    early_genre_entropy_se: float
    num_users: int
    config: DriftStatisticsConfig = field(default_factory=DriftStatisticsConfig)
    per_user: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)

    def to_dict(self) -> dict:
        """Plain JSON-ready values (arrays as lists; the per-user values are left out)."""
        out = asdict(self)
        del out["per_user"]
        for name in ("lags", "drift_curve", "drift_curve_se", "drift_curve_users"):
            out[name] = np.asarray(out[name]).tolist()
        return out

    def moment_columns(self, groups: tuple[str, ...]) -> np.ndarray:
        """Columns of :attr:`per_user` (and entries of :meth:`moments`) that the statistics ``groups`` make up."""
        columns = []
        for group in groups:
            if group == "drift_curve":
                columns.extend(range(len(self.lags)))
            elif group in SCALAR_STATISTICS:
                columns.append(len(self.lags) + SCALAR_STATISTICS.index(group))
            else:
                raise ValueError(f"unknown statistic {group!r}; allowed: {['drift_curve', *SCALAR_STATISTICS]}")
        return np.array(columns, dtype=np.int64)

    def moments(self) -> np.ndarray:
        """All the numbers compared: the drift curve, then the statistics of :data:`SCALAR_STATISTICS`."""
        return np.concatenate([self.drift_curve, [getattr(self, name) for name in SCALAR_STATISTICS]])

    def standard_errors(self) -> np.ndarray:
        """The standard errors of :meth:`moments`, in the same order."""
        return np.concatenate([self.drift_curve_se, [getattr(self, f"{name}_se") for name in SCALAR_STATISTICS]])


def _mean_and_se(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    if len(values) == 1:
        return float(values[0]), float("nan")
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def _entropy_bits(counts: np.ndarray) -> np.ndarray:
    """Entropy in bits of each row of non-negative counts ``(U, T)``."""
    totals = counts.sum(-1, keepdims=True)
    p = counts / np.maximum(totals, 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(p), 0.0)
    return terms.sum(-1)


def _topic_counts(topics: np.ndarray, mask: np.ndarray, num_topics: int) -> np.ndarray:
    """``(U, T)`` counts of topics ``(U, n)`` where ``mask`` ``(U, n)`` holds."""
    counts = np.zeros((topics.shape[0], num_topics))
    rows = np.broadcast_to(np.arange(topics.shape[0])[:, None], topics.shape)
    np.add.at(counts, (rows[mask], topics[mask]), 1.0)
    return counts


@dataclass(frozen=True)
class PaddedHistories:
    """ConsumptionHistories as the padded arrays every statistic reads, built once by :meth:`build`.

    :param items: ``(U, L)`` item indices, oldest first; after a history's end, the padding index ``N``.
    :param lengths: ``(U,)`` interactions of each user (after the cut to ``max_length``).
    :param latents: ``(N + 1, k)`` item latents and, in row ``N``, a zero row for the padding index.
    :param item_topics: ``(U, L)`` topic of each interaction, −1 after a history's end.
    :param num_topics: T, topics in the catalog (one more than the largest topic index).
    """

    items: np.ndarray
    lengths: np.ndarray
    latents: np.ndarray
    item_topics: np.ndarray
    num_topics: int

    @classmethod
    def build(cls, histories: ConsumptionHistories, latents: np.ndarray, topics: np.ndarray, max_length: int) -> PaddedHistories:
        """``histories`` cut to their first ``max_length`` interactions and padded.

        :param latents: ``(N, k)`` unit-norm item latents.
        :param topics: ``(N,)`` int topic of each item.
        """
        latents = np.asarray(latents, dtype=np.float64)
        topics = np.asarray(topics, dtype=np.int64)
        if len(histories) == 0:
            raise ValueError("drift statistics need at least one history")
        if len(histories.items) and histories.items.max() >= len(latents):
            raise ValueError(
                f"histories refer to item {int(histories.items.max())} but only {len(latents)} latents were given"
            )
        items, lengths = histories.truncated(max_length).padded(fill=len(latents))
        # A zero latent and topic −1 for the padding index, so that gathers over padding are harmless.
        padded_latents = np.vstack([latents, np.zeros((1, latents.shape[1]))])
        padded_topics = np.concatenate([topics, [-1]])
        return cls(items, lengths, padded_latents, padded_topics[items], int(topics.max()) + 1)

    @property
    def num_users(self) -> int:
        return len(self.lengths)


@dataclass(frozen=True)
class Windows:
    """Each user's history cut into consecutive windows of ``window`` interactions (a partial last
    window is dropped). J is the most windows any user has; window ``j`` of user ``u`` exists when
    ``j < counts[u]``, and the entries of windows that do not exist mean nothing.

    :param means: ``(U, J, k)`` the mean latent ``m_j`` of each window, normalised to unit norm.
    :param norms: ``(U, J)`` ``‖m_j‖`` before normalising (1: the window's items all alike).
    :param counts: ``(U,)`` windows of each user.
    """

    means: np.ndarray
    norms: np.ndarray
    counts: np.ndarray

    @property
    def widest(self) -> int:
        """J, the most windows any user has."""
        return self.norms.shape[1]


def window_means(padded: PaddedHistories, window: int) -> Windows:
    """The windows of ``window`` interactions of each user, and their mean latents."""
    num_users, latent_dim = padded.num_users, padded.latents.shape[1]
    counts = padded.lengths // window
    widest = int(counts.max())
    # The latent size spelled out, not −1: when no user has a full window the array is empty and −1 is ambiguous.
    means = padded.latents[padded.items[:, : widest * window]].reshape(num_users, widest, window, latent_dim).mean(2)
    norms = np.linalg.norm(means, axis=-1)
    means /= np.maximum(norms[..., None], 1e-12)
    return Windows(means, norms, counts)


def window_concentration(windows: Windows) -> np.ndarray:
    """``(U,)`` the mean over a user's windows of ``‖m_j‖`` (NaN for a user without a window)."""
    present = np.arange(windows.widest)[None, :] < windows.counts[:, None]
    total = (windows.norms * present).sum(1)
    return np.where(windows.counts > 0, total / np.maximum(windows.counts, 1), np.nan)


def _lagged_cosines(windows: Windows, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """``cos(m_j, m_{j+lag})`` ``(U, J − lag)``, and where both windows exist ``(U, J − lag)``;
    needs ``J > lag``."""
    cosines = np.sum(windows.means[:, :-lag] * windows.means[:, lag:], -1)
    exists = np.arange(windows.widest - lag)[None, :] + lag < windows.counts[:, None]
    return cosines, exists


def drift_curve(windows: Windows, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Each user's drift curve: the mean over ``j`` of ``cos(m_j, m_{j+L})`` for ``L = 1..max_lag``.

    :return: ``(U, max_lag)`` the users' values (NaN where a user has fewer than ``L + 1`` windows),
        and ``(max_lag,)`` how many users enter each lag.
    """
    per_user = np.full((len(windows.counts), max_lag), np.nan)
    users = np.zeros(max_lag, dtype=np.int64)
    for column, lag in enumerate(range(1, max_lag + 1)):
        if windows.widest <= lag:
            continue
        cosines, exists = _lagged_cosines(windows, lag)
        pairs = exists.sum(1)
        per_user[:, column] = np.where(pairs > 0, (cosines * exists).sum(1) / np.maximum(pairs, 1), np.nan)
        users[column] = int((pairs > 0).sum())
    return per_user, users


def shift_rate(windows: Windows, shift_threshold: float) -> np.ndarray:
    """``(U,)`` the share of a user's adjacent windows with ``cos(m_j, m_{j+1}) < shift_threshold``
    (NaN for a user with fewer than two windows)."""
    if windows.widest <= 1:
        return np.full(len(windows.counts), np.nan)
    cosines, exists = _lagged_cosines(windows, 1)
    pairs = exists.sum(1)
    shifts = ((cosines < shift_threshold) & exists).sum(1)
    return np.where(pairs > 0, shifts / np.maximum(pairs, 1), np.nan)


def genre_divergence(padded: PaddedHistories) -> np.ndarray:
    """``(U,)`` Jensen–Shannon divergence (bits, in [0, 1]) between the topic distributions of the
    first ⌊n/2⌋ and the last ⌊n/2⌋ interactions of a user (NaN for a user with fewer than 2)."""
    lengths, item_topics = padded.lengths, padded.item_topics
    positions = np.arange(item_topics.shape[1])[None, :]
    half = lengths // 2
    first = _topic_counts(item_topics, positions < half[:, None], padded.num_topics)
    in_second_half = (positions >= (lengths - half)[:, None]) & (positions < lengths[:, None])
    second = _topic_counts(item_topics, in_second_half, padded.num_topics)
    p, q = first / np.maximum(half[:, None], 1), second / np.maximum(half[:, None], 1)
    return np.where(half > 0, _entropy_bits((p + q) / 2) - (_entropy_bits(p) + _entropy_bits(q)) / 2, np.nan)


def genre_run_length(padded: PaddedHistories) -> np.ndarray:
    """``(U,)`` the mean length, in interactions, of a user's maximal runs of consecutive items of
    one topic (NaN for an empty history)."""
    lengths, item_topics = padded.lengths, padded.item_topics
    positions = np.arange(item_topics.shape[1])[None, :]
    changes = (item_topics[:, 1:] != item_topics[:, :-1]) & (positions[:, 1:] < lengths[:, None])
    runs = 1 + changes.sum(1)
    return np.where(lengths > 0, lengths / runs, np.nan)


def early_concentration(padded: PaddedHistories, early_length: int) -> np.ndarray:
    """``(U,)`` the norm of the mean latent of a user's first ``early_length`` interactions (NaN for a
    user with fewer)."""
    has_early = padded.lengths >= early_length
    values = np.full(padded.num_users, np.nan)
    if has_early.any():  # a mean over no items would warn
        values[has_early] = np.linalg.norm(padded.latents[padded.items[has_early, :early_length]].mean(1), axis=-1)
    return values


def early_genre_entropy(padded: PaddedHistories, early_length: int) -> np.ndarray:
    """``(U,)`` the entropy (bits) of the topic distribution of a user's first ``early_length``
    interactions (NaN for a user with fewer)."""
    has_early = padded.lengths >= early_length
    early_topics = padded.item_topics[has_early, :early_length]
    values = np.full(padded.num_users, np.nan)
    values[has_early] = _entropy_bits(_topic_counts(early_topics, np.ones(early_topics.shape, bool), padded.num_topics))
    return values


def drift_statistics(
    histories: ConsumptionHistories,
    latents: np.ndarray,
    topics: np.ndarray,
    config: DriftStatisticsConfig = DriftStatisticsConfig(),
) -> DriftStatistics:
    """Measure ``histories`` (see the module docstring): each statistic per user, then its mean over users.

    :param histories: item indices per user, oldest first.
    :param latents: ``(N, k)`` unit-norm item latents (e.g. ``catalog.latents``).
    :param topics: ``(N,)`` int topic of each item (e.g. ``catalog.topics``).
    :param config: window, lags, thresholds.
    """
    padded = PaddedHistories.build(histories, latents, topics, config.max_length)
    windows = window_means(padded, config.window)
    curve_per_user, curve_users = drift_curve(windows, config.max_lag)
    per_user_scalars = {
        "window_concentration": window_concentration(windows),
        "shift_rate": shift_rate(windows, config.shift_threshold),
        "genre_divergence": genre_divergence(padded),
        "genre_run_length": genre_run_length(padded),
        "early_concentration": early_concentration(padded, config.early_length),
        "early_genre_entropy": early_genre_entropy(padded, config.early_length),
    }
    curve_moments = [_mean_and_se(curve_per_user[:, column]) for column in range(config.max_lag)]
    scalars = {}
    for name in SCALAR_STATISTICS:
        scalars[name], scalars[f"{name}_se"] = _mean_and_se(per_user_scalars[name])
    return DriftStatistics(
        lags=np.arange(1, config.max_lag + 1),
        drift_curve=np.array([mean for mean, _ in curve_moments]),
        drift_curve_se=np.array([se for _, se in curve_moments]),
        drift_curve_users=curve_users,
        **scalars,
        num_users=padded.num_users,
        config=config,
        per_user=np.column_stack([curve_per_user] + [per_user_scalars[name] for name in SCALAR_STATISTICS]),
    )


def drift_curve_gap(real: DriftStatistics, simulated: DriftStatistics) -> float:
    """max over lags of ``|C_real(L) − C_sim(L)|`` (lags where both are defined)."""
    gaps = np.abs(real.drift_curve - simulated.drift_curve)
    gaps = gaps[np.isfinite(gaps)]
    return float(gaps.max()) if len(gaps) else float("nan")


DISTANCE_GROUPS: tuple[str, ...] = ("drift_curve", *SCALAR_STATISTICS)


def covariance_of_means(per_user: np.ndarray) -> np.ndarray:
    """``(M, M)`` covariance of the column means of ``per_user`` ``(U, M)`` (NaN: user not in that
    column), from pairwise-complete sample covariances: ``Cov(x̄_i, x̄_j) = S_ij · n_ij / (n_i · n_j)``."""
    present = np.isfinite(per_user)
    counts = present.sum(0).astype(np.float64)
    means = np.where(counts > 0, np.nansum(np.where(present, per_user, 0.0), 0) / np.maximum(counts, 1), 0.0)
    centred = np.where(present, per_user - means, 0.0)
    pairs = present.T.astype(np.float64) @ present
    sample = (centred.T @ centred) / np.maximum(pairs - 1, 1)
    return sample * pairs / np.maximum(np.outer(counts, counts), 1)


def statistics_distance(
    real: DriftStatistics,
    simulated: DriftStatistics,
    groups: tuple[str, ...] = DISTANCE_GROUPS,
    weighting: str = "covariance",
) -> float:
    """How far simulated statistics are from real ones, in units of their sampling noise.

    The numbers compared are those of the statistics named in ``groups`` (every lag of the drift
    curve is one number, each other statistic one). With ``d`` their differences (simulated − real)
    and ``Σ = Σ_real + Σ_sim`` the covariance of the two estimates (from the users' own values, see
    :func:`covariance_of_means`), the distance is ``dᵀ Σ⁻¹ d / m`` over the ``m`` numbers defined
    on both sides: a method-of-simulated-moments criterion. The covariance matters because the lags
    of the drift curve move together: weighted as independent, ten of them would drown the one number
    that tells abrupt shifts from smooth drift. ``weighting="diagonal"`` ignores it (mean of
    ``z² = d² / (se_real² + se_sim²)``). 0 is a perfect match; about 1 means gaps no larger than the
    noise of measuring them.
    """
    if weighting not in ("covariance", "diagonal"):
        raise ValueError(f"unknown weighting {weighting!r}; allowed: 'covariance', 'diagonal'")
    columns = real.moment_columns(tuple(groups))
    difference = simulated.moments()[columns] - real.moments()[columns]
    defined = np.isfinite(difference)
    if not defined.any():
        return float("nan")
    columns, difference = columns[defined], difference[defined]
    if weighting == "diagonal" or real.per_user.size == 0 or simulated.per_user.size == 0:
        noise = np.hypot(real.standard_errors()[columns], simulated.standard_errors()[columns])
        z = difference / np.maximum(np.nan_to_num(noise, nan=np.inf), 1e-12)
        return float(np.mean(z**2))
    covariance = covariance_of_means(real.per_user[:, columns]) + covariance_of_means(simulated.per_user[:, columns])
    # Pairwise-complete estimates need not be positive definite; floor the spectrum before inverting.
    values, vectors = np.linalg.eigh(covariance)
    values = np.maximum(values, 1e-6 * max(values.max(), 1e-12))
    projected = vectors.T @ difference
    return float(np.sum(projected**2 / values) / len(difference))
