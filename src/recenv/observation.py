"""What an agent sees: observation builders, one per ``obs_mode``.

All observations are flat 1-D arrays so that any agent (an SB3 ``MlpPolicy`` included) can take
them as they are; the layouts below say how to read them back. Every mode ends with the same two
entries, the **session context** (:data:`SESSION_CONTEXT_SIZE`): the steps t since the session
began and the clicks so far, which any recommender knows (``docs/model.md`` §4).

``"history"``: ``(K·(D+2) + 2,)`` float32, the last K interactions oldest first, each row
    ``[e_item (D), click, valid]``; ``valid`` is 0 for padding rows (before the user's history
    began), whose other entries are 0. :func:`unflatten_history` gives the ``(K, D+2)`` view.
``"ids"``: ``(2K + 2,)`` int64, ``[item ids (K), clicks (K)]`` oldest first, −1 for padding.
``"encoded"``: ``(H + 2,)`` float32 in [−1, 1], the hidden state of the next-click LSTM
    (:mod:`recenv.encoder`) after the user's warm-up past and every interaction since, advanced by
    one LSTM step per env step.

The session context is ``[log(1 + t), log(1 + clicks)] / log(1 + T)`` in the float modes (T the
horizon ``max_episode_steps``; both in [0, 1], with most resolution over the first steps, where
sessions end) and the plain counts ``[t, clicks]`` in ``"ids"``; both are capped at T.
:func:`split_session_context` separates it from the rest and :func:`session_clock` reads the counts
back.

A builder is told about resets and steps (``reset``/``step``) so that stateful encoders (the LSTM
state encoder) can update incrementally; ``observe`` then returns the batch ``(B, ...)`` tensor.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from recenv.dynamics import take_rows
from recenv.encoder import NextClickLSTM
from recenv.simulator import UserSimulator, Warmup

__all__ = [
    "SESSION_CONTEXT_SIZE",
    "EncodedObservation",
    "HistoryObservation",
    "IdsObservation",
    "ObservationBuilder",
    "scale_session_context",
    "session_clock",
    "split_session_context",
    "unflatten_history",
]

SESSION_CONTEXT_SIZE = 2
"""Entries at the end of every observation: ``[session step, session clicks]`` (scaled, see above)."""


def scale_session_context(counts: Tensor, horizon: int) -> Tensor:
    """``(…, 2)`` float session step and clicks so far → the session context of float observations,
    ``log1p(x) / log1p(T)`` with ``x`` capped at the horizon T (:func:`session_clock` inverts it)."""
    return torch.log1p(counts.clamp(0.0, float(horizon))) / float(np.log1p(horizon))


def _scaled_context(simulator: UserSimulator, horizon: int) -> Tensor:
    counts = torch.stack([simulator.session_steps().to(torch.float32), simulator.session_clicks], 1)
    return scale_session_context(counts, horizon)


def _count_context(simulator: UserSimulator, horizon: int) -> Tensor:
    counts = torch.stack([simulator.session_steps(), simulator.session_clicks.round().long()], 1)
    return counts.clamp(0, horizon)


class ObservationBuilder(Protocol):
    """How an ``obs_mode`` turns the simulator's record of interactions into observations."""

    space: spaces.Box

    def reset(self, index: Tensor, warmup: Warmup) -> None:
        """Users at ``index`` were replaced by fresh users who arrived with ``warmup``."""

    def step(self, item_ids: Tensor, clicks: Tensor) -> None:
        """Every user's history got the interactions ``item_ids`` with ``clicks``, ``(B,)`` or
        ``(B, r)`` oldest first (r = k with ``slate_history="shown"``: the slate)."""

    def observe(self, simulator: UserSimulator, out: Tensor | None = None) -> Tensor:
        """The current observations, ``(B, *space.shape)``, written into ``out`` when given."""


class HistoryObservation:
    """``obs_mode="history"``: the last K ``[embedding, click, valid]`` rows, flattened."""

    def __init__(self, simulator: UserSimulator, horizon: int):
        k = simulator.history_length
        embeddings = simulator.items.embeddings
        n, d = embeddings.shape
        self.history_length, self.row_size, self.horizon = k, d + 2, horizon
        self.space = spaces.Box(low=-1.0, high=1.0, shape=(k * (d + 2) + SESSION_CONTEXT_SIZE,), dtype=np.float32)
        # Rows [e_i, 0, 1] for items and an all-zero padding row N: one index_select builds every
        # row but its click, which is written afterwards; the rows are then copied into the output
        # beside the session context (index_select cannot write into that strided view).
        table = torch.zeros((n + 1, d + 2), device=embeddings.device)
        table[:n, :d] = embeddings
        table[:n, d + 1] = 1.0
        self._rows = table
        self._padding = n
        self._gathered: Tensor | None = None  # the (B·K, D+2) rows of the last step, reused: no 16 MB per step

    def reset(self, index: Tensor, warmup: Warmup) -> None:
        pass

    def step(self, item_ids: Tensor, clicks: Tensor) -> None:
        pass

    def observe(self, simulator: UserSimulator, out: Tensor | None = None) -> Tensor:
        ids = simulator.recent_items
        batch, k = ids.shape
        if out is None:
            out = torch.empty((batch, self.space.shape[0]), device=ids.device)
        index = torch.where(ids >= 0, ids, self._padding).reshape(-1)
        if self._gathered is None or self._gathered.shape[0] != index.shape[0]:
            self._gathered = torch.empty((index.shape[0], self.row_size), device=ids.device)
        rows = torch.index_select(self._rows, 0, index, out=self._gathered).view(batch, k, self.row_size)
        rows[:, :, self.row_size - 2] = simulator.recent_clicks
        out[:, : k * self.row_size] = rows.view(batch, -1)
        out[:, k * self.row_size:] = _scaled_context(simulator, self.horizon)
        return out


class IdsObservation:
    """``obs_mode="ids"``: ``[item ids (K), clicks (K)]`` as int64, −1 for padding."""

    def __init__(self, simulator: UserSimulator, horizon: int):
        k, n = simulator.history_length, simulator.items.num_items
        self.horizon = horizon
        high = np.concatenate([np.full(k, n - 1), np.ones(k), np.full(SESSION_CONTEXT_SIZE, horizon)]).astype(np.int64)
        low = np.concatenate([np.full(2 * k, -1), np.zeros(SESSION_CONTEXT_SIZE)]).astype(np.int64)
        self.space = spaces.Box(low=low, high=high, shape=(2 * k + SESSION_CONTEXT_SIZE,), dtype=np.int64)

    def reset(self, index: Tensor, warmup: Warmup) -> None:
        pass

    def step(self, item_ids: Tensor, clicks: Tensor) -> None:
        pass

    def observe(self, simulator: UserSimulator, out: Tensor | None = None) -> Tensor:
        ids = simulator.recent_items
        clicks = torch.where(ids >= 0, simulator.recent_clicks.long(), -1)
        return torch.cat([ids, clicks, _count_context(simulator, self.horizon)], 1, out=out)


class EncodedObservation:
    """``obs_mode="encoded"``: the LSTM state encoder's hidden state ``h``, updated incrementally.

    The LSTM reads each user's warm-up past once, when the simulator draws a batch of fresh users
    into its pool (one call for the whole batch, :attr:`UserSimulator.summarize_warmup`), and at
    every step the interactions the step recorded (one ``[embedding, click]`` pair, or a slate's
    k with ``slate_history="shown"``) — the whole history is never re-run.
    """

    def __init__(self, simulator: UserSimulator, horizon: int, encoder: NextClickLSTM):
        self.encoder = encoder
        self.horizon = horizon
        hidden = encoder.hidden_size
        self.space = spaces.Box(low=-1.0, high=1.0, shape=(hidden + SESSION_CONTEXT_SIZE,), dtype=np.float32)
        with torch.no_grad():  # the catalog projected once: steps gather rows instead of projecting
            self._items = encoder.project_items(simulator.items.embeddings)
        self._hidden, self._cell = encoder.initial_state(simulator.num_users, simulator.device)
        simulator.summarize_warmup = self._encode_pasts

    def _encode_pasts(self, warmup: Warmup) -> Tensor:
        """The LSTM state ``(n, 2, H)`` (h, c) after each user's past."""
        if warmup.items.shape[1] == 0:
            hidden, cell = self.encoder.initial_state(warmup.items.shape[0], self._hidden.device)
        else:
            with torch.no_grad():
                _, (hidden, cell) = self.encoder.encode_projected(take_rows(self._items, warmup.items), warmup.clicks)
        return torch.stack([hidden, cell], 1)

    def reset(self, index: Tensor, warmup: Warmup) -> None:
        # Users from the pool arrive with their past encoded (in the pool's batch); others are encoded now.
        summary = warmup.summary if warmup.summary is not None else self._encode_pasts(warmup)
        self._hidden[index], self._cell[index] = summary[:, 0], summary[:, 1]

    @property
    def hidden(self) -> Tensor:
        """The LSTM state ``h`` of every user, ``(B, H)`` (the observation without its session context)."""
        return self._hidden

    def step(self, item_ids: Tensor, clicks: Tensor) -> None:
        if item_ids.dim() == 1:
            item_ids, clicks = item_ids.unsqueeze(1), clicks.unsqueeze(1)
        _, (self._hidden, self._cell) = self.encoder.encode_projected(
            take_rows(self._items, item_ids), clicks, (self._hidden, self._cell)
        )

    def observe(self, simulator: UserSimulator, out: Tensor | None = None) -> Tensor:
        if out is None:
            out = torch.empty((self._hidden.shape[0], self.space.shape[0]), device=self._hidden.device)
        hidden = self._hidden.shape[1]
        out[:, :hidden] = self._hidden
        out[:, hidden:] = _scaled_context(simulator, self.horizon)
        return out


def split_session_context(observation: np.ndarray | Tensor) -> tuple[np.ndarray | Tensor, np.ndarray | Tensor]:
    """Any mode's observations ``(..., S)`` → (the mode's own part ``(..., S − 2)``: the LSTM state,
    the history rows or the ids; the session context ``(..., 2)``), both views."""
    return observation[..., :-SESSION_CONTEXT_SIZE], observation[..., -SESSION_CONTEXT_SIZE:]


def session_clock(observation: np.ndarray | Tensor, max_episode_steps: int) -> np.ndarray:
    """The session step t and the clicks so far that observations carry, ``(..., 2)`` int64
    (capped at ``max_episode_steps``, the env's horizon T, which the float scaling uses)."""
    context = np.asarray(split_session_context(observation)[1])
    if context.dtype.kind in "iu":
        return context.astype(np.int64)
    return np.rint(np.expm1(context.astype(np.float64) * np.log1p(max_episode_steps))).astype(np.int64)


def unflatten_history(observation: np.ndarray | Tensor, history_length: int) -> np.ndarray | Tensor:
    """``"history"`` observations ``(..., K·(D+2) + 2)`` → their interaction rows ``(..., K, D+2)``
    (a view, no copy; :func:`split_session_context` gives the session context)."""
    observation = split_session_context(observation)[0]
    size = observation.shape[-1]
    if size % history_length:
        raise ValueError(f"an observation of size {size} is not K·(D+2) for K = {history_length}")
    return observation.reshape(*observation.shape[:-1], history_length, size // history_length)


OBSERVATION_BUILDERS = {"encoded": EncodedObservation, "history": HistoryObservation, "ids": IdsObservation}
"""obs_mode name → builder class."""
