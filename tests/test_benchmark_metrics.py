"""The comparison's metrics, each on hand-built sessions whose values are worked out by hand.

Probabilities are multiples of 1/8 (exact in binary floating point), so most expected values are
exact and asserted with ``==``; only those with a square root are compared to a tolerance.
"""

import math

import numpy as np
import pytest

from agents import SessionRecords
from benchmarks.metrics import (
    RECOVERY_WINDOW,
    SHIFT_AFTER,
    SHIFT_BEFORE,
    ci95,
    recovery_time,
    shift_curve,
    summarise,
)
from benchmarks.report import _COLUMNS


def sessions(*traces: dict) -> SessionRecords:
    """SessionRecords from one dict per session: ``clicks`` is required; the shown and the best
    P(click) default to 1/2, items and topics to 0, regime shifts to none, ``left`` to False."""
    records = SessionRecords()
    for trace in traces:
        clicks = np.asarray(trace["clicks"], dtype=np.float32)
        n = len(clicks)
        records.clicks.append(clicks)
        records.click_probability.append(np.asarray(trace.get("shown", [0.5] * n), dtype=np.float64))
        records.best_click_probability.append(np.asarray(trace.get("best", [0.5] * n), dtype=np.float64))
        records.items.append(np.asarray(trace.get("items", [0] * n), dtype=np.int64))
        records.topics.append(np.asarray(trace.get("topics", [0] * n), dtype=np.int64))
        records.regime_shift.append(np.asarray(trace.get("shifts", [False] * n), dtype=bool))
        records.left.append(trace.get("left", False))
    return records


# Two users, one seed:
#   A: clicks 1 0 1 1 → 3 clicks in 4 steps, CTR 3/4; shown P(click) 1/2 1/4 1/2 1/4 under a best of
#      1/2 each step → regret 1/4 + 1/4 = 1/2; always topic 2 → 0 bits; items 1 1 0 2 of which only
#      item 1 is clickbait → clickbait share 2/4; left.
#   B: clicks 0 1 → 1 click in 2 steps, CTR 1/2; shown 1/2 3/4 under best 1 3/4 → regret 1/2; topics
#      0 1, each half the time → 1 bit; items 3 3 → clickbait share 0; truncated.
# Means over the users: clicks 2, CTR 5/8, length 3, regret 1/2, entropy 1/2 bit, clickbait 1/4,
# users left 1/2.
USER_A = {"clicks": [1, 0, 1, 1], "shown": [0.5, 0.25, 0.5, 0.25], "best": [0.5] * 4, "topics": [2, 2, 2, 2],
          "items": [1, 1, 0, 2], "left": True}
USER_B = {"clicks": [0, 1], "shown": [0.5, 0.75], "best": [1.0, 0.75], "topics": [0, 1], "items": [3, 3]}
CLICKBAIT = np.array([False, True, False, False])


def test_clicks_ctr_and_length_per_session():
    records = sessions(USER_A, USER_B)
    assert records.returns.tolist() == [3.0, 1.0]
    assert records.ctr.tolist() == [0.75, 0.5]
    assert records.lengths.tolist() == [4.0, 2.0]
    row = summarise([records])
    assert row["clicks_per_session"] == 2.0
    assert row["ctr"] == 0.625
    assert row["session_length"] == 3.0
    assert row["seeds"] == 1 and row["eval_users"] == 2


def test_dynamic_regret_is_best_minus_shown_probability_summed_over_the_session():
    records = sessions(USER_A, USER_B)
    assert records.regret.tolist() == [0.5, 0.5]
    assert summarise([records])["regret"] == 0.5
    oracle = sessions({"clicks": [1, 0], "shown": [0.75, 0.25], "best": [0.75, 0.25]})
    assert summarise([oracle])["regret"] == 0.0


def test_topic_entropy_in_bits():
    records = sessions(USER_A, USER_B)
    assert records.topic_entropy().tolist() == [0.0, 1.0]  # one topic; two topics shown equally often
    assert summarise([records])["topic_entropy_bits"] == 0.5
    # Four topics, each shown once: log2(4) = 2 bits.
    assert sessions({"clicks": [0] * 4, "topics": [0, 1, 2, 3]}).topic_entropy().tolist() == [2.0]


def test_clickbait_share_of_shown_items():
    records = sessions(USER_A, USER_B)
    assert records.share_of_shown(CLICKBAIT).tolist() == [0.5, 0.0]
    assert summarise([records], clickbait=CLICKBAIT)["clickbait_share"] == 0.25
    assert math.isnan(summarise([records])["clickbait_share"])  # no flags, no share


def test_share_of_users_who_left():
    assert summarise([sessions(USER_A, USER_B)])["users_left_share"] == 0.5
    assert summarise([sessions(USER_B, USER_B)])["users_left_share"] == 0.0


def test_ci95_is_1_96_standard_errors_of_the_mean():
    # [1, 2, 3, 4]: sample variance (ddof 1) = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3; SE = √(5/3) / 2.
    assert ci95(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(1.96 * math.sqrt(5 / 3) / 2, rel=1e-12)
    # [3, 1]: sample variance 2, SE = √2 / √2 = 1.
    assert ci95(np.array([3.0, 1.0])) == pytest.approx(1.96, rel=1e-12)
    assert ci95(np.array([2.0, 2.0, 2.0])) == 0.0
    assert math.isnan(ci95(np.array([5.0])))  # one value: no spread to estimate


def test_shift_curve_aligns_windows_at_the_shift_and_skips_shifts_near_either_end():
    assert (SHIFT_BEFORE, SHIFT_AFTER, RECOVERY_WINDOW) == (5, 10, 3)  # the windows below assume these
    steps = np.arange(16) / 16
    # Seed 0, user 1: 15 steps, shift at step 5: exactly SHIFT_BEFORE steps before it and SHIFT_AFTER from it
    # to the end → window = P(click) of steps 0..14. User 2: shifts at step 4 (too early) and step 6 (6 + 10 >
    # 15: too late) → no window.
    # Seed 1, user 1: 16 steps, shift at step 6 → window = steps 1..15.
    # Mean of the two windows at index i: (i/16 + (i + 1)/16) / 2 = (i + 1/2) / 16; two events.
    first = {"clicks": [0] * 15, "shown": steps[:15], "shifts": np.arange(15) == 5}
    too_near_the_ends = {"clicks": [0] * 15, "shown": steps[:15], "shifts": np.isin(np.arange(15), [4, 6])}
    second = {"clicks": [0] * 16, "shown": steps, "shifts": np.arange(16) == 6}
    curve, events = shift_curve([sessions(first, too_near_the_ends), sessions(second)])
    assert events == 2
    assert curve.shape == (SHIFT_BEFORE + SHIFT_AFTER,)
    assert curve.tolist() == ((np.arange(15) + 0.5) / 16).tolist()


def test_shift_curve_without_a_usable_shift_is_all_nan():
    too_near_the_ends = {"clicks": [0] * 15, "shifts": np.isin(np.arange(15), [4, 6])}
    curve, events = shift_curve([sessions(too_near_the_ends, USER_A)])
    assert events == 0
    assert curve.shape == (SHIFT_BEFORE + SHIFT_AFTER,) and np.isnan(curve).all()


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ([0.5] * 10, 0.0),  # never dropped: recovered at once
        ([0.125] * 3 + [0.5] * 7, 3.0),  # 3-step means from step k: 1/8, 1/4, 3/8, then 1/2 at k = 3
        ([0.0] * 7 + [0.5] * 3, 7.0),  # the last window that fits
        ([0.0, 0.0, 1.0] + [0.0] * 7, math.nan),  # one step above 1/2, but no 3-step mean reaches it
        ([0.25] * 10, math.nan),  # never back
    ],
)
def test_recovery_time(after, expected):
    curve = np.array([0.5] * SHIFT_BEFORE + after)  # pre-shift mean 1/2
    result = recovery_time(curve)
    assert result == expected or (math.isnan(expected) and math.isnan(result))


def test_recovery_time_of_an_all_nan_curve_is_nan():
    assert math.isnan(recovery_time(np.full(SHIFT_BEFORE + SHIFT_AFTER, np.nan)))


def test_summary_row_over_two_seeds_of_three_users():
    # Clicks per session, users 0 1 2:  seed 0: 2 4 0 (mean 2);  seed 1: 4 4 1 (mean 3).
    # clicks_per_session: the mean of all six, 15/6 = 2.5.
    # clicks_ci95: over the per-user means over seeds, 3 4 1/2 (mean 2.5): deviations 1/2 3/2 −2, sample
    #   variance (1/4 + 9/4 + 4) / 2 = 13/4 → 1.96 √(13/4) / √3.
    # seed_std: sample standard deviation of the seed means 2 and 3: √(1/2).
    # session_length: seed 0 (4 + 4 + 2) / 3, seed 1 (4 + 8 + 2) / 3 → mean 4.
    # ctr: seed 0 (1/2 + 1 + 0) / 3 = 1/2, seed 1 (1 + 1/2 + 1/2) / 3 = 2/3 → mean 7/12.
    # users_left_share: seed 0 1/3, seed 1 2/3 → mean 1/2.
    seed_0 = sessions({"clicks": [1, 1, 0, 0], "left": True}, {"clicks": [1, 1, 1, 1]}, {"clicks": [0, 0]})
    seed_1 = sessions({"clicks": [1, 1, 1, 1], "left": True}, {"clicks": [1, 1, 1, 1, 0, 0, 0, 0], "left": True},
                      {"clicks": [1, 0]})
    row = summarise([seed_0, seed_1])
    assert row["clicks_per_session"] == 2.5
    assert row["clicks_ci95"] == pytest.approx(1.96 * math.sqrt(13 / 4) / math.sqrt(3), rel=1e-12)
    assert row["seed_std"] == pytest.approx(math.sqrt(0.5), rel=1e-12)
    assert row["session_length"] == 4.0
    assert row["ctr"] == pytest.approx(7 / 12, rel=1e-12)
    assert row["users_left_share"] == 0.5
    assert row["regret"] == 0.0  # every shown P(click) is the best
    assert row["topic_entropy_bits"] == 0.0
    assert row["seeds"] == 2 and row["eval_users"] == 3
    assert row["shift_events"] == 0 and math.isnan(row["recovery_steps"])
    assert len(row["_shift_curve"]) == SHIFT_BEFORE + SHIFT_AFTER and np.isnan(row["_shift_curve"]).all()


def test_one_seed_has_no_seed_spread():
    assert summarise([sessions(USER_A, USER_B)])["seed_std"] == 0.0


def test_summary_row_fills_every_results_csv_column_but_the_labels_and_timing():
    row = summarise([sessions(USER_A, USER_B)], clickbait=CLICKBAIT)
    assert set(row) - {"_shift_curve"} == set(_COLUMNS) - {"preset", "agent", "train_seconds"}


def test_summary_row_recovery_comes_from_the_shift_curve():
    # One shift at step 5 of 15 steps: expected CTR 1/2 before, 1/8 for three steps, then 1/2 → recovered at 3.
    shown = [0.5] * 5 + [0.125] * 3 + [0.5] * 7
    row = summarise([sessions({"clicks": [0] * 15, "shown": shown, "best": shown, "shifts": np.arange(15) == 5})])
    assert row["shift_events"] == 1
    assert row["recovery_steps"] == 3.0
    assert row["_shift_curve"] == shown
