"""Drift statistics on hand-made histories, and the organic histories they are compared with."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from recenv.catalog import Catalog
from recenv.offline.drift_statistics import (
    DriftStatisticsConfig,
    covariance_of_means,
    drift_curve_gap,
    drift_statistics,
    statistics_distance,
)
from recenv.consumption_histories import ConsumptionHistories
from recenv.offline.organic_histories import simulate_organic_histories
from recenv.presets import SYNTHETIC_PRESETS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# Four items on the unit circle: 0 → (1, 0) and 1 → (0, 1) are the ones used; topics 0, 1, 0, 1.
LATENTS = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
TOPICS = np.array([0, 1, 0, 1])
CONFIG = DriftStatisticsConfig(window=2, max_lag=2, shift_threshold=0.5, early_length=4, max_length=100)
HISTORIES = ConsumptionHistories.from_sequences([
    [0, 0, 1, 1, 0, 0],  # A: windows (1,0) (0,1) (1,0)
    [0, 0, 0, 0],  # B: windows (1,0) (1,0)
    [0, 0, 0, 1, 1, 1],  # C: windows (1,0) (½,½)/‖·‖ (0,1)
])


def test_statistics_of_hand_made_histories_match_hand_derived_values():
    stats = drift_statistics(HISTORIES, LATENTS, TOPICS, CONFIG)
    r = 1 / math.sqrt(2)
    # Lag 1: A → mean(0, 0) = 0; B → 1; C → mean(r, r) = r. Lag 2: A → 1, C → 0 (B has 2 windows only).
    np.testing.assert_allclose(stats.drift_curve, [(0 + 1 + r) / 3, (1 + 0) / 2])
    np.testing.assert_array_equal(stats.drift_curve_users, [3, 2])
    np.testing.assert_allclose(stats.drift_curve_se[0], np.std([0, 1, r], ddof=1) / math.sqrt(3))
    # Adjacent cosines below 0.5: A 2 of 2, B 0 of 1, C 0 of 2 (r > 0.5).
    assert stats.shift_rate == pytest.approx((1 + 0 + 0) / 3)
    # Window norms before normalising: 1 everywhere except C's middle window, √½.
    assert stats.window_concentration == pytest.approx((1 + 1 + (2 + r) / 3) / 3)
    # Halves of A: topics {0,0,1} and {1,0,0} (same mix, JS 0); B: 0; C: {0,0,0} vs {1,1,1}, JS 1 bit.
    assert stats.genre_divergence == pytest.approx(1 / 3)
    # Runs: A 0 0|1 1|0 0 → 2; B → 4; C 0 0 0|1 1 1 → 3.
    assert stats.genre_run_length == pytest.approx(3.0)
    # First 4 items: A mean (½,½), B (1,0), C (¾,¼); topic entropies 1, 0, H(¾,¼) bits.
    assert stats.early_concentration == pytest.approx((r + 1 + math.sqrt(0.625)) / 3)
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert stats.early_genre_entropy == pytest.approx((1 + 0 + h) / 3)
    assert stats.num_users == 3
    # Every statistic is the mean of the users' own values, kept for the covariance of the distance.
    np.testing.assert_allclose(np.nanmean(stats.per_user, 0), stats.moments())


def test_histories_are_cut_to_max_length_before_measuring():
    short = drift_statistics(HISTORIES, LATENTS, TOPICS, dataclasses.replace(CONFIG, max_length=4))
    # C cut to 0 0 0 1: windows (1,0) (½,½); lag 1 cosine r; no lag 2 for anyone but A... A cut to 0 0 1 1: cosine 0.
    np.testing.assert_allclose(short.drift_curve[0], (0 + 1 + 1 / math.sqrt(2)) / 3)
    assert np.isnan(short.drift_curve[1]) and short.drift_curve_users[1] == 0


def test_diagonal_distance_is_the_mean_squared_gap_in_noise_units():
    stats = drift_statistics(HISTORIES, LATENTS, TOPICS, CONFIG)
    assert statistics_distance(stats, stats, weighting="diagonal") == 0.0
    assert statistics_distance(stats, stats) == 0.0
    noise = math.hypot(stats.shift_rate_se, stats.shift_rate_se)
    moved = dataclasses.replace(stats, shift_rate=stats.shift_rate + 2 * noise)
    assert statistics_distance(stats, moved, ("shift_rate",), weighting="diagonal") == pytest.approx(4.0)
    # One number alone: the covariance weighting is the same z².
    assert statistics_distance(stats, moved, ("shift_rate",)) == pytest.approx(4.0)
    # The drift curve counts one number per lag: a gap on one of two lags of 2 noise units → mean z² = 2.
    curve = stats.drift_curve.copy()
    curve[0] += 2 * math.hypot(stats.drift_curve_se[0], stats.drift_curve_se[0])
    shifted = dataclasses.replace(stats, drift_curve=curve)
    assert statistics_distance(stats, shifted, ("drift_curve",), weighting="diagonal") == pytest.approx(2.0)
    assert drift_curve_gap(stats, shifted) == pytest.approx(curve[0] - stats.drift_curve[0])
    with pytest.raises(ValueError, match="unknown statistic 'clicks'"):
        statistics_distance(stats, stats, ("clicks",))
    with pytest.raises(ValueError, match="unknown weighting"):
        statistics_distance(stats, stats, weighting="euclid")


def test_covariance_weighting_does_not_count_numbers_that_move_together_twice():
    rng = np.random.default_rng(0)
    base = drift_statistics(HISTORIES, LATENTS, TOPICS, CONFIG)
    signal = rng.normal(size=400)
    # Two lags whose per-user values are the same numbers: one piece of evidence, not two.
    per_user = np.full((400, base.per_user.shape[1]), np.nan)
    per_user[:, 0] = per_user[:, 1] = signal
    se = signal.std(ddof=1) / math.sqrt(400)
    real = dataclasses.replace(base, per_user=per_user, drift_curve=np.array([0.0, 0.0]), drift_curve_se=np.array([se, se]))
    moved = dataclasses.replace(real, drift_curve=np.array([1.0, 1.0]) * 2 * math.sqrt(2) * se)
    # Each lag alone is 2 noise units off: diagonal mean z² = 4; counted once and spread over 2 numbers: 2.
    assert statistics_distance(real, moved, ("drift_curve",), weighting="diagonal") == pytest.approx(4.0)
    assert statistics_distance(real, moved, ("drift_curve",)) == pytest.approx(2.0, rel=1e-4)


def test_covariance_of_means_matches_numpy_and_handles_missing_values():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 3))
    np.testing.assert_allclose(covariance_of_means(values), np.cov(values.T) / 50)
    values[:10, 2] = np.nan  # the first 10 users do not enter column 2
    covariance = covariance_of_means(values)
    assert covariance[2, 2] == pytest.approx(np.var(values[10:, 2], ddof=1) / 40)
    pair = values[10:, [0, 2]]
    assert covariance[0, 2] == pytest.approx(np.cov(pair.T)[0, 1] * 40 / (50 * 40))


def test_histories_round_trip_through_padding():
    items, lengths = HISTORIES.padded()
    assert items.shape == (3, 6) and list(lengths) == [6, 4, 6] and list(items[1, 4:]) == [-1, -1]
    again = ConsumptionHistories.from_padded(items, lengths)
    np.testing.assert_array_equal(again.items, HISTORIES.items)
    assert [list(h) for h in HISTORIES.truncated(3)] == [[0, 0, 1], [0, 0, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="offsets"):
        ConsumptionHistories(np.array([0, 1]), np.array([0, 3]))


def _topic_catalog(num_topics=6, per_topic=12, spread=0.8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_topics, 32))
    embeddings = np.repeat(centres, per_topic, 0) + spread * rng.normal(size=(num_topics * per_topic, 32))
    topics = np.repeat(np.arange(num_topics), per_topic)
    return Catalog.from_embeddings(embeddings, [f"item {i}" for i in range(len(topics))], topics=topics, latent_dim=8)


def test_organic_histories_have_the_asked_lengths_and_repeat_with_the_seed():
    catalog = _topic_catalog()
    lengths = np.array([5, 30, 0, 12])
    first = simulate_organic_histories(catalog, SYNTHETIC_PRESETS["mixed"], lengths, torch.Generator().manual_seed(1))
    again = simulate_organic_histories(catalog, SYNTHETIC_PRESETS["mixed"], lengths, torch.Generator().manual_seed(1))
    other = simulate_organic_histories(catalog, SYNTHETIC_PRESETS["mixed"], lengths, torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(first.lengths, lengths)
    np.testing.assert_array_equal(first.items, again.items)
    assert not np.array_equal(first.items, other.items)
    assert first.items.min() >= 0 and first.items.max() < catalog.num_items


def test_organic_users_choose_what_they_like_and_drift_shows_in_the_curve():
    catalog = _topic_catalog()
    lengths = np.full(200, 80)
    config = DriftStatisticsConfig(window=10, max_lag=6)

    def measure(params):
        histories = simulate_organic_histories(catalog, params, lengths, torch.Generator().manual_seed(0))
        return drift_statistics(histories, catalog.latents, catalog.topics, config)

    still = measure(SYNTHETIC_PRESETS["none"])
    random_items = ConsumptionHistories.from_padded(np.random.default_rng(0).integers(catalog.num_items, size=(200, 80)), lengths)
    random_stats = drift_statistics(random_items, catalog.latents, catalog.topics, config)
    # Self-chosen items are far more alike than random ones, and without drift they stay alike at every lag.
    assert still.drift_curve.min() > random_stats.drift_curve.max() + 0.3
    assert still.drift_curve[-1] > still.drift_curve[0] - 0.05
    # Strong exogenous drift makes windows far apart less alike than adjacent ones.
    drifting = measure(SYNTHETIC_PRESETS["none"].replace(exogenous_drift=True, exogenous_drift_scale=0.15))
    assert drifting.drift_curve[0] > drifting.drift_curve[-1] + 0.2
    assert drifting.drift_curve[-1] < still.drift_curve[-1] - 0.2
    # Regime shifts show up as abrupt shifts.
    shifting = measure(SYNTHETIC_PRESETS["none"].replace(regime_shifts=True, regime_shift_prob=0.05))
    assert shifting.shift_rate > still.shift_rate + 0.05
