"""The numbers the agent comparison reports, computed from evaluated sessions (:class:`agents.SessionRecords`).

Every metric is a pure function of the sessions that :func:`agents.run_sessions` recorded: one
:class:`~agents.SessionRecords` per training seed, with the same held-out users, in the same order,
in every seed.

Statistics. Clicks per session is reported as mean ± 95 % confidence interval over evaluation
users: each user's clicks are first averaged over the training seeds (the users are the same in
every seed), and the interval is ±1.96 standard errors of those per-user means. The spread of the
per-seed means (``seed_std``) is reported beside it. Regret is the dynamic regret to the myopic
oracle, Σ_t (best P(click) − P(click) of the shown item). Recovery after a regime shift: the
expected CTR (true P(click) of the shown items) averaged over all shifts that happen at least
``SHIFT_BEFORE`` steps into a session and ``SHIFT_AFTER`` steps before its end, aligned at the
shift; the recovery time is the first step after the shift at which its ``RECOVERY_WINDOW``-step
mean is back at the pre-shift mean (NaN if it never is within the window). Topic diversity is
the entropy (bits) of the topics recommended within a session; clickbait shown, the share of
shown items that are clickbait (score above ``CLICKBAIT_THRESHOLD``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents import SessionRecords

SHIFT_BEFORE, SHIFT_AFTER, RECOVERY_WINDOW = 5, 10, 3
"""The regime-shift window, in steps: ``SHIFT_BEFORE`` steps before the shift, the shift step and
``SHIFT_AFTER − 1`` after it; recovery is judged on means over ``RECOVERY_WINDOW`` steps."""
CLICKBAIT_THRESHOLD = 0.5
"""Items with clickbait score c above this count as clickbait (the default catalog's are ≥ 0.6, the rest ≤ 0.15)."""


def ci95(values: np.ndarray) -> float:
    """Half-width of the normal 95 % confidence interval of the mean of ``values`` (shape ``(n,)``):
    1.96 sample standard deviations (ddof 1) / √n, in the units of ``values``; NaN if n < 2."""
    values = np.asarray(values, dtype=np.float64)
    return float(1.96 * values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def shift_curve(records: Sequence[SessionRecords]) -> tuple[np.ndarray, int]:
    """Mean expected CTR around regime shifts, and how many shifts it averages.

    :param records: evaluated sessions, e.g. one :class:`~agents.SessionRecords` per seed.
    :returns: the curve, shape ``(SHIFT_BEFORE + SHIFT_AFTER,)``: at index ``i``, the true P(click)
        of the shown item ``i − SHIFT_BEFORE`` steps from a shift (index ``SHIFT_BEFORE`` is the
        step the interest was redrawn), averaged over every shift with at least ``SHIFT_BEFORE``
        steps before it and ``SHIFT_AFTER`` steps from it to the session's end, all NaN if there is
        none; and the number of those shifts.
    """
    windows = []
    for run in records:
        for probability, shifted in zip(run.click_probability, run.regime_shift):
            for step in np.flatnonzero(shifted):
                if step >= SHIFT_BEFORE and step + SHIFT_AFTER <= len(probability):
                    windows.append(probability[step - SHIFT_BEFORE : step + SHIFT_AFTER])
    if not windows:
        return np.full(SHIFT_BEFORE + SHIFT_AFTER, np.nan), 0
    return np.mean(windows, axis=0), len(windows)


def recovery_time(curve: np.ndarray) -> float:
    """Steps from the shift until the expected CTR is back at its pre-shift level.

    :param curve: a :func:`shift_curve`, shape ``(SHIFT_BEFORE + SHIFT_AFTER,)``.
    :returns: the first ``k ≥ 0`` at which the mean of ``RECOVERY_WINDOW`` steps starting ``k``
        steps after the shift reaches the mean of the ``SHIFT_BEFORE`` steps before it; NaN if none
        does (at most ``SHIFT_AFTER − RECOVERY_WINDOW``) or the curve is all NaN (no shift).
    """
    if np.isnan(curve).all():
        return float("nan")
    before = curve[:SHIFT_BEFORE].mean()
    after = curve[SHIFT_BEFORE:]
    for k in range(len(after) - RECOVERY_WINDOW + 1):
        if after[k : k + RECOVERY_WINDOW].mean() >= before:
            return float(k)
    return float("nan")


def summarise(runs: Sequence[SessionRecords], clickbait: np.ndarray | None = None) -> dict[str, Any]:
    """One agent's metrics over its evaluations, one per training seed, of the same held-out users.

    :param runs: per training seed, the sessions of the same ``eval_users`` users in the same order.
    :param clickbait: per item, shape ``(num_items,)``, whether it is clickbait; without it
        ``clickbait_share`` is NaN.
    :returns: a dict of

        - ``clicks_per_session``: mean over seeds and users;
        - ``clicks_ci95``: :func:`ci95` of the per-user means over seeds;
        - ``seed_std``: standard deviation (ddof 1) of the per-seed means, 0 for one seed;
        - ``ctr`` (clicks per step), ``session_length`` (steps), ``regret`` (expected clicks per
          session lost to the myopic oracle), ``topic_entropy_bits``, ``clickbait_share`` (share of
          shown items) and ``users_left_share`` (share of users who left before the time limit):
          means over users, then over seeds;
        - ``recovery_steps``, ``shift_events``: :func:`recovery_time`, :func:`shift_curve` over all seeds;
        - ``seeds``, ``eval_users``: the sample sizes;
        - ``_shift_curve``: the :func:`shift_curve` as a list (the underscore: not a table column).
    """
    returns = np.stack([r.returns for r in runs])  # (seeds, users)
    curve, events = shift_curve(runs)
    clickbait_share = (float(np.mean([r.share_of_shown(clickbait).mean() for r in runs]))
                       if clickbait is not None else float("nan"))
    return {
        "clicks_per_session": float(returns.mean()),
        "clicks_ci95": ci95(returns.mean(0)),
        "seed_std": float(returns.mean(1).std(ddof=1)) if len(runs) > 1 else 0.0,
        "ctr": float(np.mean([r.ctr.mean() for r in runs])),
        "session_length": float(np.mean([r.lengths.mean() for r in runs])),
        "regret": float(np.mean([r.regret.mean() for r in runs])),
        "recovery_steps": recovery_time(curve),
        "shift_events": events,
        "topic_entropy_bits": float(np.mean([r.topic_entropy().mean() for r in runs])),
        "clickbait_share": clickbait_share,
        "users_left_share": float(np.mean([np.mean(r.left) for r in runs])),
        "seeds": len(runs),
        "eval_users": int(returns.shape[1]),
        "_shift_curve": curve.tolist(),
    }
