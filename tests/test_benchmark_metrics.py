"""The comparison's metrics, each on hand-built sessions whose values are worked out by hand.

Probabilities are multiples of 1/8 (exact in binary floating point), so most expected values are
exact and asserted with ``==``; only those with a square root are compared to a tolerance.
"""

import math

import numpy as np
import pytest

from agents import SessionRecords
from benchmarks.metrics import (
    PRE_SHIFT_STEPS,
    SHIFT_WINDOW,
    recovery_steps,
    shift_effect,
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
    assert summarise([records])["regret_per_session"] == 0.5
    oracle = sessions({"clicks": [1, 0], "shown": [0.75, 0.25], "best": [0.75, 0.25]})
    assert summarise([oracle])["regret_per_step"] == 0.0


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


def test_regret_per_step_is_the_mean_over_the_session_not_the_sum():
    # A: best − shown = 0 1/4 0 1/4 → 1/8 per step (1/2 in all); B: 1/2 0 → 1/4 per step (1/2 in all).
    records = sessions(USER_A, USER_B)
    assert records.regret_per_step.tolist() == [0.125, 0.25]
    row = summarise([records])
    assert row["regret_per_step"] == 0.1875 and row["regret_per_session"] == 0.5
    # The same per-step regret over a session twice as long: the per-session sum doubles, the per-step one not.
    longer = {**USER_B, "clicks": [0, 1] * 2, "shown": [0.5, 0.75] * 2, "best": [1.0, 0.75] * 2, "items": [3] * 4,
              "topics": [0, 1] * 2}
    assert sessions(longer).regret_per_step.tolist() == [0.25] and sessions(longer).regret.tolist() == [1.0]


def test_repeat_share_counts_items_already_shown_in_the_session():
    records = sessions(USER_A, USER_B)  # A: items 1 1 0 2 (one repeat in four); B: 3 3 (one in two)
    assert records.repeat_share().tolist() == [0.25, 0.5]
    assert summarise([records])["repeat_share"] == 0.375


def shift_pair(factual: dict, counterfactual: dict) -> tuple[dict, dict]:
    return factual, {**counterfactual, "shifts": [False] * len(counterfactual["clicks"])}


# Counterfactual sessions (the same user with the first regime shift scripted off), expected clicks
# P(click) of the shown items, worked out by hand:
#   X: shift drawn at step 1 → onset 2. factual .5 .5 .25 .25 .5 .5, counterfactual .5 everywhere (6
#      steps): differences from the onset −1/4 −1/4 0 0 (then both sessions are over: 0); total −1/2.
#   W: shift drawn at step 0 → onset 1; the factual user leaves after step 2 (.5 .5 .25), the
#      counterfactual stays four steps (.5 × 4): from the onset 0, −1/4, then −1/2 (gone: 0 clicks
#      against 1/2), then 0; total (1/2 + 1/4) − 3/2 = −3/4.
#   Z: shift drawn at its last step: no step left to affect → not an event.
#   Y: no shift, the same session in both runs → a placebo onset, difference 0.
# Mean over the events X, W: −1/8, −1/4, −1/4, then 0; clicks from a shift (−1/2 − 3/4) / 2 = −5/8.
X = shift_pair({"clicks": [0] * 6, "shown": [0.5, 0.5, 0.25, 0.25, 0.5, 0.5], "shifts": np.arange(6) == 1},
               {"clicks": [0] * 6, "shown": [0.5] * 6})
W = shift_pair({"clicks": [0] * 3, "shown": [0.5, 0.5, 0.25], "shifts": np.arange(3) == 0, "left": True},
               {"clicks": [0] * 4, "shown": [0.5] * 4})
Z = ({"clicks": [0] * 6, "shifts": np.arange(6) == 5}, {"clicks": [0] * 6})
Y = ({"clicks": [0] * 4}, {"clicks": [0] * 4})


def test_shift_effect_against_hand_built_counterfactuals():
    assert (SHIFT_WINDOW, PRE_SHIFT_STEPS) == (15, 5)  # the hand-worked numbers below assume these
    factual, counterfactual = sessions(X[0], W[0], Z[0], Y[0]), sessions(X[1], W[1], Z[1], Y[1])
    effect = shift_effect([factual], [counterfactual])
    assert effect["shift_events"] == 2
    assert effect["shift_curve"] == [-0.125, -0.25, -0.25] + [0.0] * (SHIFT_WINDOW - 3)
    assert effect["shift_clicks"] == -0.625
    # Bootstrap over the four users: the drawn events are X and W, only W (−3/4) or only X (−1/2).
    assert (effect["shift_clicks_low"], effect["shift_clicks_high"]) == (-0.75, -0.5)
    assert effect["placebo_events"] == 1 and effect["placebo_clicks"] == 0.0
    assert effect["placebo_curve"] == [0.0] * SHIFT_WINDOW
    assert effect["coupling_error"] == 0.0


def test_the_placebo_catches_counterfactual_runs_that_are_not_coupled():
    # Y's counterfactual differs although nothing was scripted off (e.g. an agent's randomness was
    # not rewound): the placebo is no longer 0, and the coupling error says by how much.
    leaky = {"clicks": [0] * 4, "shown": [0.25] * 4}
    effect = shift_effect([sessions(X[0], Y[0])], [sessions(X[1], leaky)])
    assert effect["placebo_clicks"] > 0  # 1/4 more at each of the steps from the placebo onset
    assert effect["coupling_error"] == 0.25


def test_the_naive_before_after_estimator_is_biased_where_the_counterfactual_one_is_not():
    # Expected CTR falls by 1/64 a step in every session, with or without a shift: the naive
    # before/after difference at shift-free placebo onsets is negative, the counterfactual one 0.
    falling = {"clicks": [0] * 30, "shown": 0.5 - np.arange(30) / 64}
    effect = shift_effect([sessions(*[falling] * 40)], [sessions(*[falling] * 40)])
    assert effect["placebo_events"] == 40 and effect["placebo_clicks"] == 0.0
    # After minus before: the window after starts 0 steps, the one before ends 1 step, from the
    # onset: a gap of (SHIFT_WINDOW − 1)/2 + (PRE_SHIFT_STEPS + 1)/2 = 10 steps of −1/64.
    assert effect["naive_placebo_drop"] == pytest.approx(-10 / 64)


@pytest.mark.parametrize(
    ("curves", "expected"),
    [
        ([[-0.5] * 3 + [0.0] * 12] * 4, 3.0),  # the same loss for three steps in every event, then none
        ([[-1.0] * 15, [0.5] * 15], 0.0),  # a mean of −1/4 whose interval covers 0: no measurable effect
        ([[-0.5] * 15, [np.nan] * 15, [-0.5] * 15], math.nan),  # users without an event do not count
        ([[-0.5] * 15] * 3, math.nan),  # never level within the window
        ([[-0.5] * 15], math.nan),  # one event: no interval
    ],
)
def test_recovery_steps(curves, expected):
    result = recovery_steps(np.array(curves)[None])  # one seed
    assert result == expected or (math.isnan(expected) and math.isnan(result))


def test_summary_row_over_two_seeds_of_three_users():
    # Clicks per session, users 0 1 2:  seed 0: 2 4 0 (mean 2);  seed 1: 4 4 1 (mean 3).
    # clicks_per_session: the mean of all six, 15/6 = 2.5; its interval comes from the bootstrap
    #   over users and seeds (tested in test_statistics.py) and contains it.
    # seed_std: sample standard deviation of the seed means 2 and 3: √(1/2).
    # session_length: seed 0 (4 + 4 + 2) / 3, seed 1 (4 + 8 + 2) / 3 → mean 4.
    # ctr: seed 0 (1/2 + 1 + 0) / 3 = 1/2, seed 1 (1 + 1/2 + 1/2) / 3 = 2/3 → mean 7/12.
    # users_left_share: seed 0 1/3, seed 1 2/3 → mean 1/2.
    seed_0 = sessions({"clicks": [1, 1, 0, 0], "left": True}, {"clicks": [1, 1, 1, 1]}, {"clicks": [0, 0]})
    seed_1 = sessions({"clicks": [1, 1, 1, 1], "left": True}, {"clicks": [1, 1, 1, 1, 0, 0, 0, 0], "left": True},
                      {"clicks": [1, 0]})
    row = summarise([seed_0, seed_1])
    assert row["clicks_per_session"] == 2.5
    assert row["clicks_low"] < 2.5 < row["clicks_high"]
    assert row["clicks_ci95"] == (row["clicks_high"] - row["clicks_low"]) / 2
    assert row["seed_means"] == [2.0, 3.0]
    assert row["seed_std"] == pytest.approx(math.sqrt(0.5), rel=1e-12)
    assert row["session_length"] == 4.0
    assert row["ctr"] == pytest.approx(7 / 12, rel=1e-12)
    assert row["users_left_share"] == 0.5
    assert row["regret_per_step"] == 0.0  # every shown P(click) is the best
    assert row["topic_entropy_bits"] == 0.0
    assert row["seeds"] == 2 and row["eval_users"] == 3
    assert "shift_events" not in row  # no counterfactual runs, no shift effect


def test_one_seed_has_no_seed_spread():
    assert summarise([sessions(USER_A, USER_B)])["seed_std"] == 0.0


def test_summary_row_fills_every_results_csv_column_but_the_labels_and_the_protocols_own():
    records = sessions(USER_A, USER_B)
    row = summarise([records], clickbait=CLICKBAIT, counterfactual=[records])
    curves = {"seed_means", "shift_curve", "shift_curve_low", "shift_curve_high", "placebo_curve", "clicks_ci95"}
    protocol_columns = {"preset", "agent", "privileged", "train_seconds", "train_steps", "train_steps_per_second",
                        "share_of_best_reference", "best_reference"}
    assert set(row) - curves == set(_COLUMNS) - protocol_columns


def test_session_records_survive_flattening():
    records = sessions(USER_A, USER_B, {"clicks": [1], "shifts": [True]})
    back = SessionRecords.from_arrays(records.to_arrays("p/"), "p/")
    assert back.left == records.left
    for name in ("clicks", "click_probability", "best_click_probability", "items", "topics", "regime_shift"):
        assert [a.tolist() for a in getattr(back, name)] == [a.tolist() for a in getattr(records, name)], name
