"""The comparison's bootstrap: paired differences and means over (training seeds, users), on hand-built arrays."""

import json
import time

import numpy as np
import pytest

from benchmarks.statistics import BootstrapInterval, PairedDifference, bootstrap_mean, paired_difference, verdict


def _clicks(seeds=5, users=200, seed=0):
    """Clicks-like values, (seeds, users): a user effect shared by every seed, plus noise."""
    rng = np.random.default_rng(seed)
    return rng.poisson(12, size=(1, users)) + rng.normal(0, 2, size=(seeds, users))


def test_identical_agents_differ_by_exactly_zero():
    a = _clicks()
    difference = paired_difference(a, a.copy())
    assert isinstance(difference, PairedDifference)
    assert (difference.mean, difference.low, difference.high) == (0.0, 0.0, 0.0)
    assert difference.seed_means == [0.0] * 5 and difference.seed_std == 0.0
    assert not difference.excludes_zero and verdict(difference) == "not resolved"


def test_a_constant_gap_has_a_point_interval():
    # Every resample averages cells that are all exactly 1 (the counts are summed exactly).
    r = np.floor(_clicks())
    difference = paired_difference(r + 1.0, r)
    assert (difference.mean, difference.low, difference.high) == (1.0, 1.0, 1.0)
    assert difference.excludes_zero and verdict(difference) == "better"
    assert verdict(paired_difference(r, r + 1.0)) == "worse"


def test_seeds_that_disagree_leave_the_difference_unresolved_where_a_user_only_bootstrap_would_not():
    # Per-cell differences: 0.1 + a seed offset (+1, −1, +1, −1, 0: the training seeds disagree
    # strongly) + a little user noise (sd 0.1: every user agrees within a seed). The mean gap is 0.1.
    rng = np.random.default_rng(3)
    offsets = np.array([1.0, -1.0, 1.0, -1.0, 0.0])[:, None]
    r = _clicks(seed=1)
    a = r + 0.1 + offsets + rng.normal(0, 0.1, size=r.shape)
    two_way = paired_difference(a, r, seed=0)
    users_only = paired_difference(a, r, seed=0, resample_seeds=False)
    assert two_way.mean == pytest.approx(0.1, abs=0.02) and users_only.mean == two_way.mean
    assert two_way.low < 0 < two_way.high and verdict(two_way) == "not resolved"
    assert users_only.excludes_zero and users_only.low > 0.05 and verdict(users_only) == "better"
    assert two_way.resample_seeds and not users_only.resample_seeds
    assert two_way.seed_std == pytest.approx(np.std(two_way.seed_means, ddof=1)) and two_way.seed_std > 0.8


def test_a_large_clear_gap_excludes_zero():
    r = _clicks(seed=2)
    a = r + 3.0 + np.random.default_rng(4).normal(0, 2, size=r.shape)
    difference = paired_difference(a, r)
    assert difference.low > 2.5 and difference.high < 3.5 and verdict(difference) == "better"
    assert verdict(difference, better_is="lower") == "worse"  # e.g. for regret
    with pytest.raises(ValueError, match="better_is"):
        verdict(difference, better_is="more")


def test_the_interval_covers_a_known_difference_about_as_often_as_it_says():
    # 200 simulated comparisons of 5 seeds × 40 users with a true mean difference of 0.5: each cell
    # is 0.5 + a seed effect (sd 0.3) + a user effect (sd 0.5) + noise (sd 1). The two-way interval
    # covers 0.5 in about 95 % of them; the user-only one, blind to the seed effect, much less often.
    rng = np.random.default_rng(2024)
    covered = {True: 0, False: 0}
    datasets = 200
    for index in range(datasets):
        cells = (0.5 + rng.normal(0, 0.3, size=(5, 1)) + rng.normal(0, 0.5, size=(1, 40))
                 + rng.normal(0, 1.0, size=(5, 40)))
        for resample_seeds in (True, False):
            interval = paired_difference(cells, np.zeros_like(cells), resamples=400, seed=index,
                                         resample_seeds=resample_seeds)
            covered[resample_seeds] += interval.low <= 0.5 <= interval.high
    assert 0.88 <= covered[True] / datasets <= 0.99
    assert covered[False] / datasets < 0.88


def test_the_same_seed_gives_the_same_interval_and_another_seed_another():
    a, r = _clicks(seed=5), _clicks(seed=6)
    first, again = paired_difference(a, r, seed=7), paired_difference(a, r, seed=7)
    assert first == again
    other = paired_difference(a, r, seed=8)
    assert (other.low, other.high) != (first.low, first.high) and other.mean == first.mean
    # No global state: numpy's global generator is neither read nor advanced.
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    paired_difference(a, r, seed=7)
    assert (np.random.get_state()[1] == before).all()


def test_one_seed_resamples_users_only():
    a, r = _clicks(seeds=1, seed=9), _clicks(seeds=1, seed=10)
    one = paired_difference(a[0], r[0], seed=1)  # (users,) is one seed
    assert one == paired_difference(a, r, seed=1)
    assert not one.resample_seeds and one.seed_std == 0.0 and len(one.seed_means) == 1
    assert one.low < one.mean < one.high


def test_a_reference_that_is_the_same_in_every_seed_is_broadcast():
    a = _clicks(seed=11)
    reference = np.floor(_clicks(seeds=1, seed=12))
    broadcast = paired_difference(a, reference[0], seed=3)
    stacked = paired_difference(a, np.repeat(reference, 5, axis=0), seed=3)
    assert broadcast == stacked
    with pytest.raises(ValueError, match="same"):
        paired_difference(a, reference[:, :-1])
    with pytest.raises(ValueError, match="NaN"):
        paired_difference(a, np.full(a.shape, np.nan))


def test_bootstrap_mean_of_one_agent():
    a = _clicks(seed=13)
    interval = bootstrap_mean(a, seed=0)
    assert isinstance(interval, BootstrapInterval) and not isinstance(interval, PairedDifference)
    assert interval.mean == pytest.approx(a.mean()) and interval.low < interval.mean < interval.high
    assert interval.seed_means == pytest.approx(list(a.mean(1)))
    # The values themselves carry the users' spread (Poisson(12) between users): much wider than
    # the paired difference of two agents that share those users.
    paired = paired_difference(a, _clicks(seed=13) + 0.1)
    assert interval.high - interval.low > 5 * (paired.high - paired.low)
    assert bootstrap_mean(np.full((3, 10), 4.0)).to_record()["low"] == 4.0


def test_the_record_is_plain_json():
    record = paired_difference(_clicks(seed=14), _clicks(seed=15), resamples=100, level=0.9).to_record()
    assert set(record) == {"mean", "low", "high", "seed_means", "seed_std", "resamples", "level", "resample_seeds",
                           "excludes_zero"}
    assert record["resamples"] == 100 and record["level"] == 0.9
    assert json.loads(json.dumps(record)) == record


def test_bad_arguments_are_refused():
    a = _clicks(seeds=2, users=5)
    for kwargs in ({"resamples": 0}, {"level": 1.0}, {"level": 0.0}):
        with pytest.raises(ValueError):
            paired_difference(a, a, **kwargs)
    with pytest.raises(ValueError, match="seeds, users"):
        bootstrap_mean(np.zeros((2, 3, 4)))


def test_two_thousand_resamples_of_five_seeds_by_two_thousand_users_are_quick():
    a, r = _clicks(seeds=5, users=2000, seed=16), _clicks(seeds=5, users=2000, seed=17)
    paired_difference(a, r, resamples=10)  # warm up
    start = time.perf_counter()
    paired_difference(a, r, resamples=2000)
    assert time.perf_counter() - start < 1.0  # about 0.1 s; generous for a shared machine


def test_event_mean_over_seeds_and_users_ignores_cells_without_an_event():
    from benchmarks.statistics import bootstrap_event_mean

    assert all(np.isnan(bootstrap_event_mean(np.full((2, 3), np.nan))))
    mean, low, high = bootstrap_event_mean(np.array([[np.nan, 2.0, 2.0], [2.0, np.nan, np.nan]]))
    assert (mean, low, high) == (2.0, 2.0, 2.0)  # every event the same: no spread
    mean, low, high = bootstrap_event_mean(np.array([[1.0, np.nan]]))
    assert mean == 1.0 and np.isnan(low) and np.isnan(high)  # one event: no interval


def test_event_mean_does_not_count_one_users_event_once_per_seed():
    # An agent that does not depend on the seed meets each user's shift identically in every seed.
    # The interval must be that of the users alone, not √S narrower as if the copies were new events.
    from benchmarks.statistics import bootstrap_event_mean

    events = np.random.default_rng(3).normal(size=200)
    _, low_one, high_one = bootstrap_event_mean(events[None], seed=1)
    _, low_five, high_five = bootstrap_event_mean(np.tile(events, (5, 1)), seed=1)
    assert abs((high_five - low_five) / (high_one - low_one) - 1) < 0.15
    pooled_width = 2 * 1.96 * events.std(ddof=1) / np.sqrt(5 * len(events))  # five copies as independent
    assert high_five - low_five > 1.8 * pooled_width
