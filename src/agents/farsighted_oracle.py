"""FarsightedOracleAgent: privileged, and aware of patience — a far-sighted upper reference.

The myopic :class:`agents.OracleAgent` shows whatever has the highest true P(click). Clickbait has
the highest P(click) often, and it drains patience, so users leave early. This agent reads the same true click probabilities and
also what each item will cost the user's patience (``docs/model.md`` §2, update 5)::

    b ← b − 1 − δ·(1 − y) + y·g·(q_i − c_i)

so the expected patience an impression of item ``i`` spends, with ``p_i`` its P(click), is::

    cost_i = 1 + δ·(1 − p_i) − p_i·g·(q_i − c_i)          (c_i taken as 0 with the clickbait switch off)

Patience is the budget a session spends. It is an index policy (a greedy knapsack rule), not a
planner: it ignores what a click does to satiation and interest. :func:`farsighted_index` is the
index, with three rules. At the default horizon (T = 200) sessions end by patience long before
it, so the three rules choose alike; with a short horizon they differ, and ``"budget"``, the
default, did best there. A harsher price on patience (``p / cost**k``) was tried and not kept.
The clicks this agent gets against the myopic oracle and the learners are measured on
``docs/results/comparison.md``; the rules' own measurements (by preset and horizon, and the
harsher prices tried) are on ``docs/results/tuning-notes.md``.

- ``"ratio"``: greedy on ``p_i / cost_i`` (clicks per unit of patience); items with
  ``cost_i ≤ 0`` gain patience in expectation and come first, ranked by ``p_i``.
- ``"ratio+horizon"``: as ``"ratio"``, but myopic (argmax ``p_i``) once patience no longer binds:
  when the steps left before the horizon, ``T − t``, are no more than ``b / cost`` of the myopic
  choice (showing it every remaining step would not exhaust the user).
- ``"budget"`` (the default): greedy on the expected clicks if the item were shown for the rest of
  the session, ``p_i · min(T − t, b / cost_i)`` (``T − t`` where ``cost_i ≤ 0``). Far from the
  horizon it ranks as ``"ratio"``; close to it, every item that patience can afford ties on
  ``T − t`` and the best ``p_i`` wins.

With the ``patience`` switch off nobody leaves, and every rule is the myopic oracle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import BaseAgent
from recenv import UserModelParams

__all__ = ["FARSIGHTED_RULES", "FarsightedOracleAgent", "farsighted_actions", "farsighted_index", "patience_cost"]

FARSIGHTED_RULES: tuple[str, ...] = ("budget", "ratio", "ratio+horizon")
"""The index rules :func:`farsighted_index` knows; the first is the default."""


def patience_cost(p: np.ndarray, quality: np.ndarray, clickbait: np.ndarray, params: UserModelParams) -> np.ndarray:
    """Expected patience spent by one impression: ``1 + δ·(1 − p) − p·g·(q − c)``, shape of ``p``
    (broadcast: ``p`` ``(B, N)``, ``quality`` and ``clickbait`` ``(N,)``). ``c`` is taken as 0 when
    the ``clickbait`` switch is off. Meaningless (and unused) when the ``patience`` switch is off."""
    p = np.asarray(p, dtype=np.float64)
    clickbait = np.asarray(clickbait, dtype=np.float64) if params.clickbait else 0.0
    gain = params.quality_patience_gain * (np.asarray(quality, dtype=np.float64) - clickbait)
    return 1.0 + params.no_click_patience_cost * (1.0 - p) - p * gain


def farsighted_index(
    p: np.ndarray,
    quality: np.ndarray,
    clickbait: np.ndarray,
    params: UserModelParams,
    patience: np.ndarray | float | None = None,
    steps_left: np.ndarray | float | None = None,
    rule: str = FARSIGHTED_RULES[0],
) -> np.ndarray:
    """The score of every item for every user, ``(B, N)`` (``(N,)`` for a 1-D ``p``): the agent
    shows the argmax of each row.

    :param p: true click probabilities, ``(B, N)`` or ``(N,)``.
    :param quality: ``(N,)`` q; :param clickbait: ``(N,)`` c.
    :param params: the user model (δ, g and the ``patience``/``clickbait`` switches).
    :param patience: b per user, ``(B,)`` or a scalar; needed by ``"budget"`` and ``"ratio+horizon"``.
    :param steps_left: ``T − t`` per user, ``(B,)`` or a scalar; needed as ``patience`` is.
    :param rule: one of :data:`FARSIGHTED_RULES` (module docstring).

    Scores are comparable within a row only. Under ``"ratio"`` an item scores ``p / cost``; items
    with ``cost ≤ 0`` (they gain patience in expectation) rank above every other item of the row,
    among themselves by ``p`` (they score ``max ratio of the row + 1 + p``). Under ``"budget"`` they
    score ``p·(T − t)``. With the ``patience`` switch off the score is ``p`` itself.
    """
    if rule not in FARSIGHTED_RULES:
        raise ValueError(f"unknown rule {rule!r}; allowed: {list(FARSIGHTED_RULES)}")
    p = np.asarray(p, dtype=np.float64)
    if not params.patience:
        return p.copy()
    single = p.ndim == 1
    p2 = np.atleast_2d(p)
    cost = patience_cost(p2, quality, clickbait, params)
    free = cost <= 0.0
    if rule == "budget":
        if patience is None or steps_left is None:
            raise ValueError("rule 'budget' needs patience= and steps_left=")
        b = np.broadcast_to(np.asarray(patience, dtype=np.float64), p2.shape[:1])[:, None]
        left = np.broadcast_to(np.asarray(steps_left, dtype=np.float64), p2.shape[:1])[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            affordable = np.where(free, np.inf, np.maximum(b, 0.0) / np.where(free, 1.0, cost))
        score = p2 * np.minimum(left, affordable)
    else:
        ratio = np.where(free, 0.0, p2 / np.where(free, 1.0, cost))
        top = ratio.max(1, keepdims=True)  # ≥ 0; the free items go above it, in the order of p
        score = np.where(free, top + 1.0 + p2, ratio)
        if rule == "ratio+horizon":
            if patience is None or steps_left is None:
                raise ValueError("rule 'ratio+horizon' needs patience= and steps_left=")
            b = np.broadcast_to(np.asarray(patience, dtype=np.float64), p2.shape[:1])
            left = np.broadcast_to(np.asarray(steps_left, dtype=np.float64), p2.shape[:1])
            myopic = p2.argmax(1)
            myopic_cost = cost[np.arange(len(p2)), myopic]
            safe = (myopic_cost <= 0.0) | (left * myopic_cost <= b)  # left ≤ b / cost, without dividing
            score = np.where(safe[:, None], p2, score)
    return score[0] if single else score


def farsighted_actions(
    p: np.ndarray,
    quality: np.ndarray,
    clickbait: np.ndarray,
    params: UserModelParams,
    patience: np.ndarray | float | None = None,
    steps_left: np.ndarray | float | None = None,
    rule: str = FARSIGHTED_RULES[0],
) -> np.ndarray:
    """The argmax of :func:`farsighted_index` per user: ``(B,)`` int64 (a scalar for a 1-D ``p``)."""
    score = farsighted_index(p, quality, clickbait, params, patience, steps_left, rule)
    return np.asarray(score.argmax(-1), dtype=np.int64)


class FarsightedOracleAgent(BaseAgent):
    """Greedy on the true P(click) per unit of expected patience cost, read from the simulator.

    PRIVILEGED: it reads the env's privileged accessors — ``env.click_probabilities()`` and
    ``env.user_state()`` (patience b and step t) — and the catalog's hidden ``quality`` and
    ``clickbait``, the user model ``env.user_model`` and the horizon ``env.config.max_episode_steps``.
    It is an upper reference, not a deployable recommender; see :mod:`agents.farsighted_oracle`
    for the index and its rules.

    :param env: the env it acts in (also bound to it).
    :param rule: one of :data:`FARSIGHTED_RULES`.
    """

    privileged = True

    def __init__(self, env: Any, rule: str = FARSIGHTED_RULES[0]):
        if rule not in FARSIGHTED_RULES:
            raise ValueError(f"unknown rule {rule!r}; allowed: {list(FARSIGHTED_RULES)}")
        super().__init__(env)
        self.rule = rule
        self.quality = np.asarray(self.catalog.quality, dtype=np.float64)
        self.clickbait = np.asarray(self.catalog.clickbait, dtype=np.float64)
        self.bind(env)

    def scores(self, observation: Any) -> np.ndarray:
        """:func:`farsighted_index` for the bound env's users: ``(N,)`` for one observation,
        ``(B, N)`` for a batch."""
        batch, single = self._as_batch(observation)
        env = self._bound_users(len(batch))
        p = np.atleast_2d(env.click_probabilities())
        params = env.user_model
        patience = steps_left = None
        if params.patience and self.rule != "ratio":
            state = env.user_state()
            patience = np.atleast_1d(state["patience"]).astype(np.float64)
            steps_left = env.config.max_episode_steps - np.atleast_1d(state["step"]).astype(np.float64)
        score = farsighted_index(p, self.quality, self.clickbait, params, patience, steps_left, self.rule)
        return score[0] if single else score

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        return self._result(np.atleast_2d(self.scores(batch)).argmax(1), single), state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_items={self.num_items}, rule={self.rule!r})"
