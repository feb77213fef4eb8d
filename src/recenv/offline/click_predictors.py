"""Reference click predictors and the metrics that compare them with the next-click LSTM.

Every predictor answers the same question on logged data: for each session interaction of a
held-out user, P(click | what is known before it). The references are deliberately static:

- :class:`PopularityPredictor` — the item's click-through rate in the training logs (smoothed),
  the same for every user at every step.
- :class:`StaticProfilePredictor` — the cosine between the item's embedding and the mean embedding
  of the user's first interactions (the warm-up past: clicked items, or all shown items if none
  was clicked), never updated; mapped to a probability by a logistic fit on the training logs.
"""

from __future__ import annotations

import numpy as np

from recenv.offline.logs import InteractionLog, LoggedSessions

__all__ = [
    "PopularityPredictor",
    "StaticProfilePredictor",
    "auc",
    "brier",
    "item_clicks_and_shows",
    "log_loss",
    "profiles_from_past",
    "screen_auc",
    "static_profiles",
]


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney; ties count one half)."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both clicks and non-clicks")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # Average ranks within ties.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def screen_auc(scores: np.ndarray, log: InteractionLog) -> float:
    """Within-screen AUC on a log of slates: over every screen (one user's session step) with a
    click, the share of (chosen item, item shown and skipped) pairs in which the chosen item scored
    higher (ties count one half). Skipped items equal to the chosen one (repeats) are left out.

    Unlike :func:`auc` over all rows, it compares only items shown together, so what differs from
    screen to screen (how many items, how likely a click at all) plays no part: it measures how
    well ``scores`` rank the items of one screen.

    :param scores: ``(R,)`` one score per row of ``log`` (its order).
    :raises ValueError: no screen with a click and a skipped item.
    """
    scores = np.asarray(scores, dtype=np.float64)
    session = np.flatnonzero(log.step >= 0)
    users, steps = log.user[session], log.step[session]
    screen = np.concatenate([[0], np.cumsum((users[1:] != users[:-1]) | (steps[1:] != steps[:-1]))])
    clicked = log.click[session] > 0
    chosen_row = np.full(screen[-1] + 1 if len(screen) else 0, -1)
    chosen_row[screen[clicked]] = session[clicked]
    has_choice = chosen_row[screen] >= 0
    partner = chosen_row[screen]
    skipped = has_choice & ~clicked & (log.item[session] != log.item[np.maximum(partner, 0)])
    if not skipped.any():
        raise ValueError("screen AUC needs screens with a click and a skipped item")
    chosen_score, skipped_score = scores[partner[skipped]], scores[session[skipped]]
    wins = (chosen_score > skipped_score).sum() + 0.5 * (chosen_score == skipped_score).sum()
    return float(wins / skipped.sum())


def log_loss(probabilities: np.ndarray, labels: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy (nats)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def brier(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """Mean squared error between predicted probabilities and targets (clicks, or true P(click))."""
    return float(np.mean((np.asarray(probabilities, dtype=np.float64) - np.asarray(targets, dtype=np.float64)) ** 2))


def item_clicks_and_shows(log: InteractionLog, num_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Clicks and shows of each item in the log's session rows (not the warm-up), ``(N,)`` float64 each."""
    session = log.step >= 0
    shows = np.bincount(log.item[session], minlength=num_items).astype(np.float64)
    clicks = np.bincount(log.item[session], weights=log.click[session], minlength=num_items)
    return clicks, shows


class PopularityPredictor:
    """P(click | item) = (clicks + a) / (shows + a + b) over the training logs' session rows.

    :param prior_shows: a + b, pseudo-shows of the Beta prior, whose mean a / (a + b) is the
        overall click rate.
    """

    def __init__(self, prior_shows: float = 10.0):
        self.prior_shows = prior_shows
        self.rates: np.ndarray | None = None

    def fit(self, log: InteractionLog, num_items: int) -> PopularityPredictor:
        clicks, shows = item_clicks_and_shows(log, num_items)
        overall = clicks.sum() / max(shows.sum(), 1.0)
        self.rates = (clicks + self.prior_shows * overall) / (shows + self.prior_shows)
        return self

    def predict(self, items: np.ndarray) -> np.ndarray:
        if self.rates is None:
            raise RuntimeError("fit() the predictor first")
        return self.rates[items]


def profiles_from_past(items: np.ndarray, clicks: np.ndarray, past: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Each user's static profile: the mean embedding of the past items they clicked (of all their
    past items if they clicked none), normalised; computed in ``embeddings.dtype``.

    :param items: ``(U, L)`` item ids; :param clicks: ``(U, L)`` 0/1;
    :param past: ``(U, L)`` bool, which entries are the user's past (others are ignored);
    :param embeddings: ``(N, D)`` item embeddings.
    :return: ``(U, D)`` unit rows.
    """
    # Only the columns up to the last one that holds a past (the warm-up leads each logged session):
    # gathering every column's embeddings would take U·L·D floats (32 GB for 24,000 sessions of slates).
    used = np.flatnonzero(past.any(0))
    width = int(used[-1]) + 1 if len(used) else 0
    items, clicks, past = items[:, :width], clicks[:, :width], past[:, :width]
    clicked = past & (clicks > 0.5)
    weights = np.where(clicked.any(1, keepdims=True), clicked, past).astype(embeddings.dtype)
    profile = np.einsum("ul,uld->ud", weights, embeddings[np.where(past, items, 0)])
    return profile / np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-12)


def static_profiles(sessions: LoggedSessions, embeddings: np.ndarray) -> np.ndarray:
    """:func:`profiles_from_past` of each logged user's warm-up past: ``(U, D)`` float64."""
    warmup = sessions.mask & (sessions.steps < 0)
    return profiles_from_past(sessions.items, sessions.clicks, warmup, np.asarray(embeddings, dtype=np.float64))


class StaticProfilePredictor:
    """σ(a·cos(e_item, profile_user) + b), the profile frozen after the user's warm-up."""

    def __init__(self, embeddings: np.ndarray):
        self.embeddings = np.asarray(embeddings, dtype=np.float64)
        self.coefficients = np.zeros(2)

    def scores(self, sessions: LoggedSessions) -> np.ndarray:
        """Cosine of every interaction's item to its user's profile, ``(U, L)``."""
        profiles = static_profiles(sessions, self.embeddings)
        items = np.where(sessions.mask, sessions.items, 0)
        out = np.empty(items.shape, dtype=np.float64)
        for start in range(0, len(items), 256):  # 256 users at a time: U·L·D floats at once can take tens of GB
            rows = slice(start, start + 256)
            out[rows] = np.einsum("uld,ud->ul", self.embeddings[items[rows]], profiles[rows])
        return out

    def fit(self, sessions: LoggedSessions) -> StaticProfilePredictor:
        rows = sessions.mask & (sessions.steps >= 0)
        x, y = self.scores(sessions)[rows], sessions.clicks[rows].astype(np.float64)
        design = np.stack([x, np.ones_like(x)], 1)
        w = np.zeros(2)
        for _ in range(50):  # Newton's method for a two-parameter logistic regression
            p = 1 / (1 + np.exp(-design @ w))
            gradient = design.T @ (p - y)
            hessian = design.T @ (design * (p * (1 - p))[:, None]) + 1e-6 * np.eye(2)
            step = np.linalg.solve(hessian, gradient)
            w -= step
            if np.abs(step).max() < 1e-9:
                break
        self.coefficients = w
        return self

    def predict(self, sessions: LoggedSessions) -> np.ndarray:
        """P(click) for every interaction, ``(U, L)``."""
        a, b = self.coefficients
        return 1 / (1 + np.exp(-(a * self.scores(sessions) + b)))
