"""The numbers the agent comparison reports, computed from evaluated sessions (:class:`agents.SessionRecords`).

Every metric is a pure function of the sessions that :func:`agents.run_sessions` recorded: one
:class:`~agents.SessionRecords` per training seed, with the same held-out users, in the same order,
in every seed. Each is tested on hand-built sessions in ``tests/test_benchmark_metrics.py``.

- **Clicks per session** (the primary figure): mean over seeds and users, with a bootstrap interval
  over users *and* training seeds (:func:`benchmarks.statistics.bootstrap_mean`) and the spread of
  the per-seed means. Comparisons between agents are paired per user
  (:func:`benchmarks.statistics.paired_difference`; the protocol computes them).
- **Regret per step** to the myopic oracle: per session, the mean over its steps of (best P(click)
  any item had − P(click) of the shown item); then the mean over users and seeds. Unlike the sum
  over the session it does not reward short sessions.
- **Shift effect** (:func:`shift_effect`): what a regime shift costs the agent, against the same
  user's counterfactual session with that shift scripted off (common random numbers:
  :func:`agents.run_counterfactual_sessions`), aligned at the first step the shift affects, with a
  placebo at shift-free steps.
- Topic diversity (entropy in bits of the topics shown in a session), clickbait shown (share of
  shown items whose score is above ``CLICKBAIT_THRESHOLD``; measurement reads the catalog's hidden
  side, agents do not), repeats (share of shown items already shown in the session), CTR, session
  length, users who left.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents import SessionRecords, first_shift_steps
from benchmarks.statistics import bootstrap_event_mean, bootstrap_mean

SHIFT_WINDOW = 15
"""Steps after a regime shift's onset over which the factual and counterfactual sessions are compared."""
RECOVERY_WINDOW = 3
"""Recovery is judged on means over this many steps."""
PRE_SHIFT_STEPS = 5
"""The naive before/after estimator compares this many steps before an onset with the window after it."""
CLICKBAIT_THRESHOLD = 0.5
"""Items with clickbait score c above this count as clickbait (the default catalog's are ≥ 0.6, the rest ≤ 0.15)."""


def _expected_clicks(probability: np.ndarray, start: int, width: int) -> np.ndarray:
    """P(click) of the shown items at steps ``start .. start + width − 1``; 0 after the session ended
    (a user who is gone clicks nothing)."""
    out = np.zeros(width)
    part = probability[start : start + width]
    out[: len(part)] = part
    return out


def _effect_curves(factual: SessionRecords, counterfactual: SessionRecords, onsets: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, float]:
    """Per user: factual − counterfactual expected clicks at the ``SHIFT_WINDOW`` steps from the
    onset ``(U, SHIFT_WINDOW)`` and over the rest of the session ``(U,)`` — NaN for users without
    an event (``onsets[u] < 0``) — and the largest difference before any onset (0 when the two runs
    are coupled)."""
    curves = np.full((len(onsets), SHIFT_WINDOW), np.nan)
    totals = np.full(len(onsets), np.nan)
    coupling = 0.0
    for user, (onset, pf, pc) in enumerate(zip(onsets, factual.click_probability, counterfactual.click_probability)):
        if onset < 0:
            continue
        before = min(onset, len(pf), len(pc))
        coupling = max(coupling, float(np.abs(pf[:before] - pc[:before]).max(initial=0.0)))
        curves[user] = _expected_clicks(pf, onset, SHIFT_WINDOW) - _expected_clicks(pc, onset, SHIFT_WINDOW)
        totals[user] = float(pf[onset:].sum() - pc[onset:].sum())
    return curves, totals, coupling


def _naive_drops(factual: SessionRecords, onsets: np.ndarray) -> np.ndarray:
    """The before/after estimator (the one this protocol used to report): per event with
    ``PRE_SHIFT_STEPS`` steps before its onset and ``SHIFT_WINDOW`` in the session after it, the
    mean P(click) over the window after the onset minus that over the steps before it."""
    drops = []
    for onset, probability in zip(onsets, factual.click_probability):
        if onset >= PRE_SHIFT_STEPS and onset + SHIFT_WINDOW <= len(probability):
            drops.append(probability[onset : onset + SHIFT_WINDOW].mean() - probability[onset - PRE_SHIFT_STEPS : onset].mean())
    return np.array(drops)


def recovery_steps(curves: np.ndarray, seed: int = 0) -> float:
    """Steps from a shift's onset until the agent is back level with the counterfactual.

    :param curves: factual − counterfactual expected clicks from the onset, ``(seeds, users, W)``,
        NaN for (seed, user) cells without an event.
    :returns: the first ``k ≥ 0`` at which the 95 % interval (:func:`bootstrap_event_mean`, over
        seeds and users) of the mean difference over steps ``k .. k + RECOVERY_WINDOW − 1``
        contains 0 — 0 when the shift makes no measurable difference at all; NaN if that never
        happens within the window or there are fewer than two events.
    """
    for k in range(curves.shape[2] - RECOVERY_WINDOW + 1):
        _, low, high = bootstrap_event_mean(curves[:, :, k : k + RECOVERY_WINDOW].mean(2), resamples=500, seed=seed)
        if low <= 0.0 <= high:
            return float(k)
    return float("nan")


def shift_effect(factual: Sequence[SessionRecords], counterfactual: Sequence[SessionRecords],
                 placebo_seed: int = 0) -> dict[str, Any]:
    """What regime shifts cost an agent, measured against counterfactual sessions.

    An event is a user's first regime shift, drawn at step ``t`` (``regime_shift[t]``, after that
    step's click was drawn), so its **onset**, the first step it affects, is ``t + 1``; events whose
    onset is after both sessions ended have no effect by construction and are left out. For each,
    the difference between the factual and the counterfactual session (the same user with that
    shift scripted off) in expected clicks (true P(click) of the shown item, 0 once a user has
    left) at steps ``onset + k``, ``k = 0 .. SHIFT_WINDOW − 1``, and summed over the rest of the
    sessions. Before the onset the two sessions are the same (``coupling_error`` says by how much
    they are not). Means are over events; intervals come from the two-way bootstrap over seeds and
    users (:func:`benchmarks.statistics.bootstrap_event_mean`), since a user's shift falls at the
    same step in every seed.

    **Placebo.** Users whose session had no shift at all get a placebo onset, drawn uniformly in
    ``1 .. length − 1`` (one generator, ``placebo_seed``); the same estimator there must give 0,
    since nothing was scripted off: a non-zero placebo means the two runs were not coupled (e.g. an
    agent's randomness was not rewound). ``naive_placebo_drop`` is the before/after estimator this
    protocol used to report (:func:`_naive_drops`), at the same placebo onsets: it is not 0,
    because expected CTR changes within a session with or without a shift.

    :param factual: per training seed, the evaluated sessions.
    :param counterfactual: per training seed, the same users with their first shift scripted off.
    :returns: ``shift_events``; ``shift_curve`` with ``shift_curve_low`` / ``shift_curve_high``
        (per step from the onset); ``shift_clicks`` with ``shift_clicks_low`` / ``shift_clicks_high``
        (expected clicks gained, negative: lost, over the rest of the session); ``recovery_steps``
        (:func:`recovery_steps`); ``placebo_events``, ``placebo_curve``, ``placebo_clicks`` with
        ``placebo_clicks_low`` / ``placebo_clicks_high``; ``naive_shift_drop`` and
        ``naive_placebo_drop`` (means of the before/after estimator at real and placebo onsets);
        ``coupling_error``.
    """
    if len(factual) != len(counterfactual):
        raise ValueError("one counterfactual run per factual run is needed")
    rng = np.random.default_rng(placebo_seed)
    curves, totals, placebo_curves, placebo_totals, naive, naive_placebo, coupling = [], [], [], [], [], [], 0.0
    for run, twin in zip(factual, counterfactual):
        if len(run) != len(twin):
            raise ValueError("the counterfactual run must have the same users as the factual one")
        # The event is the shift the counterfactual run scripted off (the same definition).
        first = first_shift_steps(run)
        onsets, placebo = np.full(len(run), -1), np.full(len(run), -1)
        draws = rng.random(len(run))  # one draw per user, whether used or not
        for user, probability in enumerate(run.click_probability):
            if first[user] >= 0:
                onset = first[user] + 1
                if onset < max(len(probability), len(twin.click_probability[user])):
                    onsets[user] = onset
            elif len(probability) > 1:
                placebo[user] = 1 + int(draws[user] * (len(probability) - 1))
        event_curves, event_totals, error = _effect_curves(run, twin, onsets)
        fake_curves, fake_totals, fake_error = _effect_curves(run, twin, placebo)
        curves.append(event_curves), totals.append(event_totals)
        placebo_curves.append(fake_curves), placebo_totals.append(fake_totals)
        naive.append(_naive_drops(run, onsets)), naive_placebo.append(_naive_drops(run, placebo))
        coupling = max(coupling, error, fake_error)
    curves_all, totals_all = np.stack(curves), np.stack(totals)  # (S, U, W), (S, U)
    placebo_all, placebo_totals_all = np.stack(placebo_curves), np.stack(placebo_totals)
    naive_all, naive_placebo_all = np.concatenate(naive), np.concatenate(naive_placebo)

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if len(values) else float("nan")

    def curve(cells: np.ndarray) -> tuple[list[float], list[float], list[float]]:
        points = [bootstrap_event_mean(cells[:, :, k], resamples=500, seed=placebo_seed) for k in range(SHIFT_WINDOW)]
        return [p[0] for p in points], [p[1] for p in points], [p[2] for p in points]

    shift_curve, shift_low, shift_high = curve(curves_all)
    placebo_curve, _, _ = curve(placebo_all)
    shift_clicks = bootstrap_event_mean(totals_all, seed=placebo_seed)
    placebo_clicks = bootstrap_event_mean(placebo_totals_all, seed=placebo_seed)
    return {
        "shift_events": int((~np.isnan(totals_all)).sum()),
        "shift_curve": shift_curve,
        "shift_curve_low": shift_low,
        "shift_curve_high": shift_high,
        "shift_clicks": shift_clicks[0],
        "shift_clicks_low": shift_clicks[1],
        "shift_clicks_high": shift_clicks[2],
        "recovery_steps": recovery_steps(curves_all, seed=placebo_seed),
        "placebo_events": int((~np.isnan(placebo_totals_all)).sum()),
        "placebo_curve": placebo_curve,
        "placebo_clicks": placebo_clicks[0],
        "placebo_clicks_low": placebo_clicks[1],
        "placebo_clicks_high": placebo_clicks[2],
        "naive_shift_drop": mean(naive_all),
        "naive_placebo_drop": mean(naive_placebo_all),
        "coupling_error": coupling,
    }


def summarise(runs: Sequence[SessionRecords], clickbait: np.ndarray | None = None,
              counterfactual: Sequence[SessionRecords] | None = None, seed: int = 0) -> dict[str, Any]:
    """One agent's metrics over its evaluations, one per training seed, of the same held-out users.

    :param runs: per training seed, the sessions of the same ``eval_users`` users in the same order.
    :param clickbait: per item, shape ``(num_items,)``, whether it is clickbait; without it
        ``clickbait_share`` is NaN.
    :param counterfactual: per training seed, the same sessions with each user's first regime shift
        scripted off (:func:`agents.run_counterfactual_sessions`); without them the shift-effect
        keys are absent.
    :param seed: seed of the bootstrap and of the placebo onsets.
    :returns: a dict of

        - ``clicks_per_session``: mean over seeds and users; ``clicks_low`` / ``clicks_high``: its
          95 % bootstrap interval over users and seeds; ``clicks_ci95``: half the interval's width;
        - ``seed_means`` (per seed), ``seed_std`` (ddof 1; 0 for one seed);
        - ``ctr`` (clicks per step), ``session_length`` (steps), ``regret_per_step``,
          ``regret_per_session`` (the sum over the session, for reference), ``topic_entropy_bits``,
          ``clickbait_share``, ``repeat_share`` and ``users_left_share``: means over users, then seeds;
        - with ``counterfactual``: the keys of :func:`shift_effect`;
        - ``seeds``, ``eval_users``: the sample sizes.
    """
    returns = np.stack([r.returns for r in runs])  # (seeds, users)
    interval = bootstrap_mean(returns, seed=seed)
    clickbait_share = (float(np.mean([r.share_of_shown(clickbait).mean() for r in runs]))
                       if clickbait is not None else float("nan"))
    seed_means = returns.mean(1)
    row: dict[str, Any] = {
        "clicks_per_session": float(returns.mean()),
        "clicks_low": interval.low,
        "clicks_high": interval.high,
        "clicks_ci95": (interval.high - interval.low) / 2,
        "seed_means": seed_means.tolist(),
        "seed_std": float(seed_means.std(ddof=1)) if len(runs) > 1 else 0.0,
        "ctr": float(np.mean([r.ctr.mean() for r in runs])),
        "session_length": float(np.mean([r.lengths.mean() for r in runs])),
        "regret_per_step": float(np.mean([r.regret_per_step.mean() for r in runs])),
        "regret_per_session": float(np.mean([r.regret.mean() for r in runs])),
        "topic_entropy_bits": float(np.mean([r.topic_entropy().mean() for r in runs])),
        "clickbait_share": clickbait_share,
        "repeat_share": float(np.mean([r.repeat_share().mean() for r in runs])),
        "users_left_share": float(np.mean([np.mean(r.left) for r in runs])),
        "seeds": len(runs),
        "eval_users": int(returns.shape[1]),
    }
    if counterfactual is not None:
        row.update(shift_effect(runs, counterfactual, placebo_seed=seed))
    return row
