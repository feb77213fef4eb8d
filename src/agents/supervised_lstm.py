"""SupervisedLSTMAgent: the next-click LSTM's best item among those not yet shown this session.

Also the two pieces every session-aware agent here shares (:class:`agents.GRU4RecAgent` uses them
too): :func:`session_memory`, the per-user record of the items shown in the session, kept in SB3's
recurrent ``state``; and :func:`choose_unshown`, argmax or softmax sampling over the items not in it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from agents.base import BaseAgent, episode_starts, unwrap_env
from recenv.observation import split_session_context

__all__ = ["SupervisedLSTMAgent", "choose_unshown", "session_memory"]


def session_memory(state: Any, episode_start: Any, batch: int, num_items: int) -> np.ndarray:
    """The items each user was shown this session, ``(B, N)`` bool (a fresh copy, to be updated).

    :param state: the mask returned by the previous call, or ``None`` (every user fresh).
    :param episode_start: ``(B,)`` (or one flag for all), True for users whose session just
        began: their memory is cleared.
    :raises ValueError: a state whose shape is not ``(B, N)``.
    """
    if state is None:
        return np.zeros((batch, num_items), dtype=bool)
    shown = np.array(state, dtype=bool, copy=True)
    if shown.shape != (batch, num_items):
        raise ValueError(f"state of shape {shown.shape} is not this agent's memory of {batch} users × {num_items} items")
    shown[episode_starts(episode_start, batch)] = False
    return shown


def choose_unshown(scores: np.ndarray, shown: np.ndarray, temperature: float | None,
                   rng: np.random.Generator) -> np.ndarray:
    """One item per user among those not in ``shown``, which is then updated in place.

    A user who has been shown every item starts over (all allowed again; only on catalogs smaller
    than the session). Without ``temperature`` the item of highest score; with it, an item drawn
    from ``softmax(scores / temperature)`` over the allowed items, with one uniform draw of ``rng``
    per user.

    :param scores: ``(B, N)`` logits (higher is better).
    :param shown: ``(B, N)`` bool, the session memory of :func:`session_memory`.
    """
    scores = np.asarray(scores, dtype=np.float64)
    exhausted = shown.all(1)
    shown[exhausted] = False
    masked = np.where(shown, -np.inf, scores)
    if temperature is None:
        actions = masked.argmax(1)
    else:
        z = masked / temperature
        weights = np.exp(z - z.max(1, keepdims=True))  # 0 for shown items
        cdf = weights.cumsum(1)
        threshold = rng.random(len(cdf)) * cdf[:, -1]
        actions = (cdf <= threshold[:, None]).sum(1)  # the first item whose cdf passes the draw
    shown[np.arange(len(actions)), actions] = True
    return actions


def check_temperature(temperature: float | None) -> float | None:
    if temperature is not None and not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number or None, got {temperature!r}")
    return None if temperature is None else float(temperature)


class SupervisedLSTMAgent(BaseAgent):
    """The supervised baseline: the item of highest ``P(click | history, item)`` not yet shown in
    the session.

    The probability comes from the next-click LSTM of :mod:`recenv.encoder` — the same network that
    encodes observations. With ``obs_mode="encoded"`` the observation *is* the LSTM state after the
    user's whole history, updated with each step's feedback, so the agent scores all items from it
    directly (the session context at the end of the observation plays no part). It predicts the next
    click only (myopic) and does no reinforcement learning.

    **No repeats.** It never shows an item twice in a session: greedy on P(click) alone kept
    re-showing items, and satiated users clicked less (measured: ``docs/results/tuning-notes.md``).
    Its per-user memory of the items shown this session is SB3's recurrent ``state``: a
    ``(B, N)`` bool array, returned by :meth:`predict` and to be passed back on the next call
    (``state=None``: every user is fresh; ``episode_start[i]`` True clears user ``i``'s memory).
    Once every item has been shown to a user (a catalog smaller than the session) all are allowed
    again.

    **Argmax or softmax.** Without ``temperature`` it shows the best unshown item. With one, it
    draws the item from ``softmax(logit P(click) / temperature)`` over the unshown items, with its
    own generator (``seed``; the global RNG is never used). The softmax *is* that agent's policy, so
    it samples whatever ``deterministic`` says (the evaluation harness passes
    ``deterministic=True``); ``deterministic`` plays no part for either kind. Reproducible runs: the
    same ``seed`` and the same calls give the same items.

    It reads neither ground truth nor its env beyond the observation.

    :param env: an env with ``obs_mode="encoded"``.
    :param encoder: the model to score with (default: the env's own encoder).
    :param temperature: ``None`` (argmax) or > 0: softmax sampling at this temperature.
    :param seed: seeds the sampling generator.
    """

    def __init__(self, env: Any, encoder: Any = None, temperature: float | None = None, seed: int = 0):
        super().__init__(env)
        inner = unwrap_env(env)
        if self.obs_mode != "encoded":
            raise ValueError(f"SupervisedLSTMAgent reads LSTM states: use obs_mode='encoded', not {self.obs_mode!r}")
        self.encoder = encoder if encoder is not None else inner.encoder
        self.device = next(self.encoder.parameters()).device
        self._item_embeddings = torch.as_tensor(np.array(self.catalog.embeddings), device=self.device)
        self.temperature = check_temperature(temperature)
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def _scores(self, observation: Any, squash: bool) -> np.ndarray:
        batch, single = self._as_batch(observation)
        with torch.no_grad():
            hidden = torch.as_tensor(split_session_context(batch)[0], dtype=torch.float32, device=self.device)
            logits = self.encoder.click_logits_all(hidden, self._item_embeddings)
            scores = (torch.sigmoid(logits) if squash else logits).cpu().numpy()
        return scores[0] if single else scores

    def click_logits(self, observation: Any) -> np.ndarray:
        """Logit of the P(click) the LSTM predicts for every item, ``(B, N)`` (or ``(N,)``)."""
        return self._scores(observation, squash=False)

    def click_probabilities(self, observation: Any) -> np.ndarray:
        """P(click) the LSTM predicts for every item, ``(B, N)`` (or ``(N,)`` for one observation)."""
        return self._scores(observation, squash=True)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        shown = session_memory(state, episode_start, len(batch), self.num_items)
        actions = choose_unshown(np.atleast_2d(self.click_logits(batch)), shown, self.temperature, self.rng)
        return self._result(actions, single), shown

    def __repr__(self) -> str:
        extra = "" if self.temperature is None else f", temperature={self.temperature}, seed={self.seed}"
        return f"{type(self).__name__}(num_items={self.num_items}, obs_mode={self.obs_mode!r}{extra})"
