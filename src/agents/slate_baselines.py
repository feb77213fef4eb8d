"""Slate baselines: the reference agents of :mod:`agents`, each showing a slate of k items per step.

With ``EnvConfig(slate_size=k)`` the action is a slate ``(i_0, …, i_{k−1})`` and the user picks at
most one of its items by a conditional logit with a no-click option and a position effect that
lowers later slots (``docs/model.md`` §2, "Slates"). Every agent here reads k from the env it is
made for (``env.config.slate_size``) and answers SB3's ``predict()`` (:mod:`agents.base`) with
``(B, k)`` int64 slates for a batch of observations, ``(k,)`` for one. Each slate holds k
**distinct** items, best first where the agent ranks (the first slot is the one the user favours).

For k = 1 an agent returns one item per user, ``(B,)`` (a scalar for one observation), as the
one-item agents do, so it also acts in one-item envs; there it is the one-item agent it generalises
(:class:`StaticProfileSlateAgent` with k = 1 shows what :class:`agents.StaticProfileAgent` shows).

========================================  ==========================================  ==============
agent                                     slate                                       reads
========================================  ==========================================  ==============
:class:`RandomSlateAgent`                 k distinct uniformly random items           nothing
:class:`GreedySlateAgent`                 the next-click LSTM's top k unshown items   observations
:class:`StaticProfileSlateAgent`          the next k items of the static profile's    logged past
                                          ranking, walking down its top list
:class:`OracleSlateAgent` (privileged)    the k items of highest true utility         true P(click)
:class:`FarsightedOracleSlateAgent` (pr.) the far-sighted index's top k               true P(click),
                                                                                      patience, q, c
========================================  ==========================================  ==============

The shared pieces: :func:`top_k_items` (the k best items of each row, best first) and
:func:`choose_unshown_slates` (the same among the items not shown earlier in the session, with the
no-repeat memory of :func:`agents.supervised_lstm.session_memory`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import BaseAgent
from agents.farsighted_oracle import FARSIGHTED_RULES, FarsightedOracleAgent
from agents.oracle import OracleAgent
from agents.static_profile import StaticProfileAgent
from agents.supervised_lstm import SupervisedLSTMAgent, session_memory

__all__ = [
    "FarsightedOracleSlateAgent",
    "GreedySlateAgent",
    "OracleSlateAgent",
    "RandomSlateAgent",
    "StaticProfileSlateAgent",
    "choose_unshown_slates",
    "top_k_items",
]


def top_k_items(scores: np.ndarray, k: int) -> np.ndarray:
    """The k items of highest score in each row, best first: ``(B, N)`` → ``(B, k)`` int64, k
    distinct items per row. Deterministic: the same scores always give the same slate (tied items
    within it in the order of their index)."""
    scores = np.asarray(scores, dtype=np.float64)
    num_items = scores.shape[1]
    if not 1 <= k <= num_items:
        raise ValueError(f"a slate of {k} distinct items needs 1 <= k <= {num_items} (the number of items)")
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < num_items else np.tile(np.arange(num_items),
                                                                                       (len(scores), 1))
    # Sort by (score descending, index ascending): within the chosen k, stable on the index order.
    top.sort(axis=1)
    order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
    return np.take_along_axis(top, order, 1).astype(np.int64)


def choose_unshown_slates(scores: np.ndarray, shown: np.ndarray, k: int) -> np.ndarray:
    """The k best items of each user among those not in ``shown``, best first, ``(B, k)`` int64;
    ``shown`` is then updated in place with them (the slate generalisation of
    :func:`agents.supervised_lstm.choose_unshown`, argmax only).

    A user with fewer than k unshown items left starts over: the memory is cleared and every item is
    allowed again (only on catalogs smaller than k times the session's steps).

    :param scores: ``(B, N)`` scores (higher is better).
    :param shown: ``(B, N)`` bool, the session memory of :func:`agents.supervised_lstm.session_memory`.
    """
    scores = np.asarray(scores, dtype=np.float64)
    exhausted = (~shown).sum(1) < k
    shown[exhausted] = False
    slates = top_k_items(np.where(shown, -np.inf, scores), k)
    shown[np.arange(len(slates))[:, None], slates] = True
    return slates


def _slate_size(agent: BaseAgent) -> int:
    """k of the env the agent was made for; refused if the catalog cannot fill a slate of distinct items."""
    k = agent.env_config.slate_size
    if k > agent.num_items:
        raise ValueError(f"a slate of {k} distinct items cannot be filled from {agent.num_items} items")
    return k


def _slate_result(slates: np.ndarray, single: bool) -> np.ndarray:
    """``(B, k)`` slates as the agent's action: ``(B, k)`` / ``(k,)``, or for k = 1 one item per
    user, ``(B,)`` / a scalar, the one-item envs' action."""
    slates = np.asarray(slates, dtype=np.int64)
    if slates.shape[1] == 1:
        slates = slates[:, 0]
    return slates[0] if single else slates


class RandomSlateAgent(BaseAgent):
    """k distinct items drawn uniformly at random for every user, in a random order: the floor.

    Every ordered slate of k distinct items is equally likely (each user draws N uniform keys and
    shows the k items of smallest key, smallest first). Its own generator (``seed``); the global
    RNG is never used, so the same seed and the same calls give the same slates. It reads nothing.

    :param env: the env it acts in (scalar or vector); k is its ``config.slate_size``.
    :param seed: seed of its own generator.
    """

    def __init__(self, env: Any, seed: int = 0):
        super().__init__(env)
        self.slate_size = _slate_size(self)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        keys = self.rng.random((len(batch), self.num_items))
        return _slate_result(top_k_items(-keys, self.slate_size), single), state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_items={self.num_items}, slate_size={self.slate_size}, seed={self.seed})"


class GreedySlateAgent(BaseAgent):
    """The greedy supervised slate: the k items of highest predicted P(click), best first, among
    those not shown earlier in the session.

    P(click | history, item) is the next-click LSTM's (:mod:`recenv.encoder`, the env's public
    ``encoder``), scored from the ``"encoded"`` observation exactly as :class:`agents.SupervisedLSTMAgent`
    scores it; this agent is that one with k slots. The model predicts the click on one item shown
    alone (with ``slate_history="shown"``, the item's appeal with the position effect trained out,
    ``docs/model.md`` §2), so the slate is ranked item by item, best first (the first slot has the
    strongest position); it does no reinforcement learning.

    **No repeats.** Its per-user memory of the items shown this session (every slot of every
    slate) is SB3's recurrent ``state``: a ``(B, N)`` bool array returned by :meth:`predict`, to be
    passed back on the next call (``state=None``: every user fresh; ``episode_start[i]`` True
    clears user ``i``'s memory). A user with fewer than k unshown items left starts over
    (:func:`choose_unshown_slates`). Deterministic: ``deterministic`` plays no part.

    It reads only observations and the env's public encoder and catalog (not privileged).

    :param env: an env with ``obs_mode="encoded"``; k is its ``config.slate_size``.
    :param encoder: the model to score with (default: the env's own encoder).
    """

    def __init__(self, env: Any, encoder: Any = None):
        super().__init__(env)
        if self.obs_mode != "encoded":
            raise ValueError(f"GreedySlateAgent reads LSTM states: use obs_mode='encoded', not {self.obs_mode!r}")
        self.slate_size = _slate_size(self)
        #: The one-item supervised agent whose scores this one ranks.
        self.next_click = SupervisedLSTMAgent(env, encoder=encoder)

    def click_logits(self, observation: Any) -> np.ndarray:
        """Logit of the P(click) the LSTM predicts for every item, ``(B, N)`` (or ``(N,)``)."""
        return self.next_click.click_logits(observation)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        shown = session_memory(state, episode_start, len(batch), self.num_items)
        slates = choose_unshown_slates(np.atleast_2d(self.click_logits(batch)), shown, self.slate_size)
        return _slate_result(slates, single), shown

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_items={self.num_items}, slate_size={self.slate_size})"


class StaticProfileSlateAgent(StaticProfileAgent):
    """The static profile's ranking as slates: each step shows the next k items of the user's
    ranking, walking down its ``top_k`` best items and starting over at the top.

    The profile and ranking are :class:`agents.StaticProfileAgent`'s (cosine between item
    embeddings and the mean embedding of the user's clicked warm-up items, built once from the
    logged past, ``env.warmup_history()``; not privileged) and never learn from the session. Where
    the one-item agent shows ranking position ``t mod top_k`` at its t-th step, this one shows
    positions ``(t·k + j) mod top_k``, j = 0..k−1, in that order: a screen of the ranking per
    step, each of the ``top_k`` items shown once per ``top_k / k`` steps (k = 1: the one-item
    agent). Its per-user step count is SB3's recurrent ``state``, ``(B,)`` int64
    (``episode_start[i]`` resets user ``i``'s).

    :param env: the env it acts in (also bound to it); k is its ``config.slate_size``.
    :param top_k: how far down each user's ranking it goes; at least k (the slate's items are distinct).
    """

    def __init__(self, env: Any, top_k: int = 20):
        super().__init__(env, top_k=top_k)
        self.slate_size = _slate_size(self)
        if not self.slate_size <= top_k <= self.num_items:
            raise ValueError(f"top_k = {top_k} must be in [slate_size, num_items] = [{self.slate_size}, {self.num_items}]")

    def ranking(self) -> np.ndarray:
        """Every bound user's ``top_k`` items by cosine to their profile, best first, ``(users, top_k)``."""
        similarity = self.profiles() @ self.embeddings.T  # (users, items)
        return top_k_items(similarity, self.top_k)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        self._bound_users(len(batch))
        steps = np.zeros(len(batch), dtype=np.int64) if state is None else np.asarray(state, dtype=np.int64).copy()
        if episode_start is not None:
            steps[np.asarray(episode_start, dtype=bool).reshape(-1)] = 0
        k = self.slate_size
        positions = (steps[:, None] * k + np.arange(k)) % self.top_k
        slates = np.take_along_axis(self.ranking(), positions, 1)
        return _slate_result(slates, single), steps + 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_items={self.num_items}, slate_size={self.slate_size}, top_k={self.top_k})"


class OracleSlateAgent(OracleAgent):
    """The best slate under the true choice model, myopic: the k items of highest true utility,
    highest first.

    PRIVILEGED: it reads the true P(click) of every item (``env.click_probabilities()``, σ(u), as
    :class:`agents.OracleAgent` does); ranking by σ(u) is ranking by u. A slate's P(click) is
    ``S / (1 + S)`` with ``S = Σ_j exp(u_j − λ·log2(1 + j))``, largest for the k items of highest
    utility in decreasing order, so its P(click) is ``info["best_click_probability"]`` (the myopic
    ceiling, ``docs/model.md`` §2). Like the one-item oracle it ignores patience, satiation and
    what a click does next.

    :param env: the env it acts in (also bound to it); k is its ``config.slate_size``.
    """

    def __init__(self, env: Any):
        super().__init__(env)
        self.slate_size = _slate_size(self)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        slates = top_k_items(np.atleast_2d(self.click_probabilities(batch)), self.slate_size)
        return _slate_result(slates, single), state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_items={self.num_items}, slate_size={self.slate_size})"


class FarsightedOracleSlateAgent(FarsightedOracleAgent):
    """The far-sighted oracle's k best items by its index, best first.

    PRIVILEGED: it reads what :class:`agents.FarsightedOracleAgent` reads (the true P(click), the
    patience and step, the catalog's quality and clickbait, the user model) and ranks items by the
    same index (:func:`agents.farsighted_oracle.farsighted_index`). The index prices one item shown
    alone (its P(click) and its expected patience cost); on a slate the user picks at most one item
    and pays one unit of patience per screen, so the slate of the k best indices is a heuristic
    reference here, not the far-sighted optimum.

    :param env: the env it acts in (also bound to it); k is its ``config.slate_size``.
    :param rule: one of :data:`agents.farsighted_oracle.FARSIGHTED_RULES`.
    """

    def __init__(self, env: Any, rule: str = FARSIGHTED_RULES[0]):
        super().__init__(env, rule=rule)
        self.slate_size = _slate_size(self)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        slates = top_k_items(np.atleast_2d(self.scores(batch)), self.slate_size)
        return _slate_result(slates, single), state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_items={self.num_items}, slate_size={self.slate_size}, rule={self.rule!r})"
