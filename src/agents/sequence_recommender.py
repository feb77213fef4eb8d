"""GRU4RecAgent: a session-based next-item recommender (GRU4Rec-style) trained on deployable logs.

GRU4Rec (Hidasi et al., 2016, https://arxiv.org/abs/1511.06939) reads a user's interactions with a
GRU and scores every item of the catalog as the next one. Here, over the whole catalog:

- **Input** at each interaction: the shown item's vector ``x_i = A·e_i + r_i`` (a projection of its
  text embedding ``e_i`` plus a learned per-item residual, zero at the start), split by the
  response as the env's encoder does, ``[x_i·y, x_i·(1−y), y, warm-up flag]`` (what was clicked
  and what was ignored enter on separate channels; the flag marks the past the user arrived with,
  which another policy logged).
- **GRU** over the user's whole record: the warm-up past, then the session.
- **Two heads** on the GRU state ``h``, each with item vectors ``B·e_i + o_i`` (projection plus
  learned residual) and a learned per-item bias:

  * the *next-click* head, ``softmax_i(⟨U·h, B·e_i + o_i⟩ + b_i)``: which item will be clicked
    next, trained with cross-entropy over all N items at every position followed by a click;
  * the *click* head, ``σ(⟨U'·h, B'·e_i + o'_i⟩ + b'_i + w·h)``: P(click) of the next shown
    item, trained with binary cross-entropy on every next interaction.

  Both are trained together (Adam, sessions batched by length); by default the click head ranks
  items when acting, the next-click objective shaping the GRU's state
  (:attr:`GRU4RecConfig.scoring`). The default training reads a log of 5,000 sessions (its
  time, and the scoring heads compared: ``docs/results/tuning-notes.md``).

Training data is an :class:`recenv.offline.logs.InteractionLog` from
:func:`recenv.offline.logging_policies.make_logs`, of which it reads the ``user``, ``step``,
``item`` and ``click`` columns only — never the ground-truth ``click_probability`` (nor
``propensity``, nor :meth:`InteractionLog.sessions`, which copies both).

Acting, the agent keeps each user's GRU state in SB3's recurrent ``state``: at ``episode_start`` it
reads the user's logged past (``env.warmup_history()``, public), and at every later step it feeds
the item it showed last (remembered in the state) with the response, decoded from the session
clock every observation ends with (a click happened iff the session's click count rose). It uses
nothing else of the observation, so it acts the same in every ``obs_mode``.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from agents.base import BaseAgent, episode_starts
from agents.persistence import load_agent_file, save_agent_file
from agents.supervised_lstm import check_temperature, choose_unshown, session_memory
from agents.training_log import work_bar
from recenv.observation import session_clock

__all__ = ["GRU4RecAgent", "GRU4RecConfig", "GRU4RecNetwork", "GRU4RecState"]

SCORINGS = ("next_click", "click", "both")


@dataclass(frozen=True)
class GRU4RecConfig:
    """Hyper-parameters of :class:`GRU4RecAgent`.

    :param embedding_size: d, size of the item vectors (input and output).
    :param hidden_size: size of the GRU state.
    :param epochs: passes over the log.
    :param batch_size: sessions per gradient step (batches are formed from sessions of similar
        length, so little is padding, and visited in a shuffled order).
    :param learning_rate: Adam's step size.
    :param weight_decay: Adam's L2 penalty.
    :param next_click_loss_weight: weight of the next-click head's cross-entropy (over all items,
        at every position followed by a click).
    :param click_loss_weight: weight of the click head's binary cross-entropy (at every position
        followed by an interaction). Both heads share the GRU; each weight may be 0, not both.
    :param warmup_targets: also learn to predict the interactions of the warm-up past (logged by
        another policy: organic browsing), not only the session's.
    :param scoring: what ranks items when acting: ``"click"`` (logit of the click head's
        P(click)), ``"next_click"`` (log-softmax of the next-click head) or ``"both"`` (their sum).
        ``"click"`` ranked best when the defaults were chosen on ``mixed``: the next-click softmax
        also learns what the logging policy chose to show. Training the click head alone
        (``next_click_loss_weight=0``) did worse: the next-click objective helps the GRU's state.
        GRU4Rec's clicks against the other agents: ``docs/results/learners-mixed.md``; the heads
        compared when the default was chosen: ``docs/results/tuning-notes.md``.
    :param max_grad_norm: gradient clipping threshold.
    :param seed: seeds the network's initialisation, the batch order and the sampling of a
        softmax agent.
    """

    embedding_size: int = 64
    hidden_size: int = 128
    epochs: int = 12
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    next_click_loss_weight: float = 1.0
    click_loss_weight: float = 1.0
    warmup_targets: bool = True
    scoring: str = "click"
    max_grad_norm: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.scoring not in SCORINGS:
            raise ValueError(f"unknown scoring {self.scoring!r}; allowed: {list(SCORINGS)}")
        for name in ("embedding_size", "hidden_size", "epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        weights = (self.next_click_loss_weight, self.click_loss_weight)
        if min(weights) < 0 or max(weights) == 0:
            raise ValueError(f"loss weights must be >= 0 and not both 0, got {weights}")


class GRU4RecNetwork(nn.Module):
    """The GRU and its two heads (see the module docstring); items through their text embeddings."""

    def __init__(self, item_embeddings: Tensor, embedding_size: int, hidden_size: int):
        super().__init__()

        num_items, text_size = item_embeddings.shape
        self.register_buffer("text", item_embeddings.clone().float())
        self.input_projection = nn.Linear(text_size, embedding_size, bias=False)
        self.input_residual = nn.Parameter(torch.zeros(num_items, embedding_size))
        self.gru = nn.GRU(2 * embedding_size + 2, hidden_size, batch_first=True)
        # Next-click head.
        self.user_projection = nn.Linear(hidden_size, embedding_size)
        self.output_projection = nn.Linear(text_size, embedding_size, bias=False)
        self.output_residual = nn.Parameter(torch.zeros(num_items, embedding_size))
        self.output_bias = nn.Parameter(torch.zeros(num_items))
        # Click head.
        self.click_user_projection = nn.Linear(hidden_size, embedding_size)
        self.click_item_projection = nn.Linear(text_size, embedding_size, bias=False)
        self.click_residual = nn.Parameter(torch.zeros(num_items, embedding_size))
        self.click_bias = nn.Parameter(torch.zeros(num_items))
        self.click_user_bias = nn.Linear(hidden_size, 1)

    @property
    def hidden_size(self) -> int:
        return self.gru.hidden_size

    def inputs(self, items: Tensor, clicks: Tensor, warmup: Tensor) -> Tensor:
        """``(B, L)`` item ids (≥ 0), clicks and warm-up flags → GRU inputs ``(B, L, 2d + 2)``."""
        vectors = (self.input_projection(self.text) + self.input_residual)[items]
        y = clicks.unsqueeze(-1).to(vectors.dtype)
        return torch.cat([vectors * y, vectors * (1.0 - y), y, warmup.unsqueeze(-1).to(vectors.dtype)], -1)

    def forward(self, items: Tensor, clicks: Tensor, warmup: Tensor, hidden: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """GRU states after each interaction ``(B, L, H)`` and the last one ``(B, H)``."""
        inputs = self.inputs(items, clicks, warmup)
        outputs, last = self.gru(inputs, None if hidden is None else hidden.unsqueeze(0).contiguous())
        return outputs, last[0]

    def next_click_logits(self, hidden: Tensor) -> Tensor:
        """``(..., H)`` → ``(..., N)`` logits of which item is clicked next."""
        items = self.output_projection(self.text) + self.output_residual
        return self.user_projection(hidden) @ items.T + self.output_bias

    def click_logits(self, hidden: Tensor) -> Tensor:
        """``(..., H)`` → ``(..., N)`` logits of P(click) of each item if shown next."""
        items = self.click_item_projection(self.text) + self.click_residual
        return self.click_user_projection(hidden) @ items.T + self.click_bias + self.click_user_bias(hidden)

    def scores(self, hidden: Tensor, scoring: str) -> Tensor:
        """What ranks items when acting (:attr:`GRU4RecConfig.scoring`), ``(B, N)``."""
        if scoring == "next_click":
            return torch.log_softmax(self.next_click_logits(hidden), -1)
        if scoring == "click":
            return self.click_logits(hidden)
        return torch.log_softmax(self.next_click_logits(hidden), -1) + nn.functional.logsigmoid(self.click_logits(hidden))


class GRU4RecState(NamedTuple):
    """The per-user memory :meth:`GRU4RecAgent.predict` returns as SB3's recurrent ``state``."""

    hidden: np.ndarray  #: (B, H) float32, the GRU state after everything fed so far
    last_action: np.ndarray  #: (B,) int64, the item shown last (−1: none yet)
    last_clicks: np.ndarray  #: (B,) int64, the session's click count when it was shown
    shown: np.ndarray  #: (B, N) bool, the items shown this session


def _log_sequences(log: Any, num_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The log as padded per-user sequences, from its ``user``, ``step``, ``item`` and ``click``
    columns only: items ``(U, L)`` int64 (0 in padding), clicks ``(U, L)`` float32, warm-up flags
    ``(U, L)`` bool, lengths ``(U,)``."""
    user, step = np.asarray(log.user), np.asarray(log.step)
    item, click = np.asarray(log.item, dtype=np.int64), np.asarray(log.click, dtype=np.float32)
    if len(user) == 0:
        raise ValueError("the log is empty")
    if item.min() < 0 or item.max() >= num_items:
        raise ValueError(f"the log names items outside 0..{num_items - 1}: was it logged on another catalog?")
    order = np.lexsort((step, user))
    user, step, item, click = user[order], step[order], item[order], click[order]
    _, starts, lengths = np.unique(user, return_index=True, return_counts=True)
    width = int(lengths.max())
    row = np.repeat(np.arange(len(lengths)), lengths)
    position = np.arange(len(user)) - np.repeat(starts, lengths)
    items = np.zeros((len(lengths), width), dtype=np.int64)
    clicks = np.zeros((len(lengths), width), dtype=np.float32)
    warmup = np.zeros((len(lengths), width), dtype=bool)
    items[row, position], clicks[row, position], warmup[row, position] = item, click, step < 0
    return items, clicks, warmup, lengths


class GRU4RecAgent(BaseAgent):
    """Recommends the best item by a GRU4Rec-style model of the user's record, never an item twice
    in a session.

    Train it with :meth:`fit` on logs; then it acts in any env of the same catalog, whatever the
    ``obs_mode``, once bound to it (:meth:`bind`; the evaluation harness binds it). Its per-user
    memory is a :class:`GRU4RecState` passed as SB3's recurrent ``state`` (``state=None``: every
    user is fresh; ``episode_start[i]`` True: user ``i`` is, and its logged past is read).

    **Argmax or softmax**, as :class:`agents.SupervisedLSTMAgent`: without ``temperature`` the best
    unshown item; with one, an item drawn from ``softmax(score / temperature)`` over the unshown
    items, with the agent's own generator (seeded by ``config.seed``). The softmax is that agent's
    policy, so it samples whatever ``deterministic`` says; ``deterministic`` plays no part.

    It reads no ground truth: of the log, user, step, item and click; of the env, the observations'
    session clock, ``warmup_history()`` and its config's horizon.

    :param env: an env of the catalog it recommends from (also bound to it).
    :param config: hyper-parameters (:class:`GRU4RecConfig`).
    :param temperature: ``None`` (argmax) or > 0: softmax sampling at this temperature.
    :param device: where the network lives (``"cpu"``, ``"cuda"``, ``"auto"``).
    """

    def __init__(self, env: Any, config: GRU4RecConfig = GRU4RecConfig(), temperature: float | None = None,
                 device: str = "cpu"):
        super().__init__(env)
        from recenv.simulator import resolve_device

        self.config = config
        self.temperature = check_temperature(temperature)
        self.device = resolve_device(device)
        self.rng = np.random.default_rng(config.seed)
        self.network = self._make_network()
        self.fitted = False
        #: Mean training loss of each epoch (next-click cross-entropy + weighted click BCE).
        self.losses: list[float] = []
        self.bind(env)

    def _make_network(self) -> GRU4RecNetwork:
        torch.manual_seed(self.config.seed)  # network initialisation (nn.Module init draws from the global torch RNG)
        embeddings = torch.as_tensor(np.array(self.catalog.embeddings, dtype=np.float32))
        return GRU4RecNetwork(embeddings, self.config.embedding_size, self.config.hidden_size).to(self.device)

    # ---------------------------------------------------------------- training

    def _batch_loss(self, items: Tensor, clicks: Tensor, warmup: Tensor, valid: Tensor) -> tuple[Tensor, float]:
        c = self.config
        outputs, _ = self.network(items, clicks, warmup)
        before, target, target_click = outputs[:, :-1], items[:, 1:], clicks[:, 1:]
        has_next = valid[:, 1:]
        if not c.warmup_targets:
            has_next = has_next & ~warmup[:, 1:]
        clicked = has_next & (target_click > 0)
        loss = before.new_zeros(())
        if c.next_click_loss_weight > 0 and clicked.any():
            logits = self.network.next_click_logits(before[clicked])
            loss = c.next_click_loss_weight * nn.functional.cross_entropy(logits, target[clicked])
        if c.click_loss_weight > 0 and has_next.any():
            hidden, shown = before[has_next], target[has_next]
            head = self.network
            item_vectors = (head.click_item_projection(head.text) + head.click_residual)[shown]
            logit = ((head.click_user_projection(hidden) * item_vectors).sum(-1) + head.click_bias[shown]
                     + head.click_user_bias(hidden)[:, 0])
            loss = loss + c.click_loss_weight * nn.functional.binary_cross_entropy_with_logits(logit, target_click[has_next])
        return loss, float(loss.detach())

    def fit(self, log: Any, progress: bool = False) -> GRU4RecAgent:
        """Train on an :class:`recenv.offline.logs.InteractionLog` (its user, step, item and click
        columns; the warm-up rows included). Each call trains a freshly initialised network."""
        fingerprint = (getattr(log, "metadata", None) or {}).get("catalog_fingerprint")
        if fingerprint is not None and fingerprint != self.catalog.fingerprint:
            raise ValueError("the log was recorded on another catalog than this agent's")
        c = self.config
        items, clicks, warmup, lengths = _log_sequences(log, self.num_items)
        order = np.argsort(lengths, kind="stable")
        batches = [order[i:i + c.batch_size] for i in range(0, len(order), c.batch_size)]
        self.network = self._make_network()
        optimizer = torch.optim.Adam(self.network.parameters(), lr=c.learning_rate, weight_decay=c.weight_decay)
        shuffle = np.random.default_rng(c.seed)
        self.losses = []
        started = time.perf_counter()
        bar = work_bar(c.epochs * len(batches), "GRU4Rec", "batch", progress)
        self.network.train()
        for _ in range(c.epochs):
            total, weight = 0.0, 0
            for index in shuffle.permutation(len(batches)):
                rows = batches[index]
                width = int(lengths[rows].max())
                batch = [torch.as_tensor(array[rows, :width], dtype=dtype, device=self.device)
                         for array, dtype in ((items, torch.int64), (clicks, torch.float32), (warmup, torch.bool))]
                valid = torch.as_tensor(np.arange(width)[None, :] < lengths[rows, None], device=self.device)
                loss, value = self._batch_loss(*batch, valid)
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.network.parameters(), c.max_grad_norm)
                optimizer.step()
                total, weight = total + value * len(rows), weight + len(rows)
                bar.update(1)
            self.losses.append(total / weight)
            bar.set_postfix(loss=f"{self.losses[-1]:.3f}", seconds=f"{time.perf_counter() - started:.0f}")
        bar.close()
        self.network.eval()
        self.fitted = True
        return self

    # ---------------------------------------------------------------- acting

    @torch.no_grad()
    def _read_past(self, items: np.ndarray, clicks: np.ndarray) -> np.ndarray:
        """GRU states after the logged pasts ``(B, W)`` (−1 items: no interaction, skipped)."""
        items, clicks = np.atleast_2d(items), np.atleast_2d(clicks)
        hidden = torch.zeros((len(items), self.network.hidden_size), device=self.device)
        if items.shape[1] == 0:
            return hidden.cpu().numpy()
        valid = items >= 0
        ids = torch.as_tensor(np.where(valid, items, 0), dtype=torch.int64, device=self.device)
        y = torch.as_tensor(clicks, dtype=torch.float32, device=self.device)
        flags = torch.ones_like(y, dtype=torch.bool)
        if valid.all():
            return self.network(ids, y, flags)[1].cpu().numpy()
        valid_t = torch.as_tensor(valid, device=self.device)
        for t in range(items.shape[1]):
            _, stepped = self.network(ids[:, t:t + 1], y[:, t:t + 1], flags[:, t:t + 1], hidden)
            hidden = torch.where(valid_t[:, t:t + 1], stepped, hidden)
        return hidden.cpu().numpy()

    @torch.no_grad()
    def _feed(self, hidden: np.ndarray, items: np.ndarray, clicks: np.ndarray) -> np.ndarray:
        """One session interaction per user: GRU states ``(B, H)`` → the next ones."""
        ids = torch.as_tensor(items, dtype=torch.int64, device=self.device)[:, None]
        y = torch.as_tensor(clicks, dtype=torch.float32, device=self.device)[:, None]
        _, new = self.network(ids, y, torch.zeros_like(ids, dtype=torch.bool), torch.as_tensor(hidden, device=self.device))
        return new.cpu().numpy()

    @torch.no_grad()
    def scores(self, hidden: np.ndarray) -> np.ndarray:
        """The scores items are ranked by (:attr:`GRU4RecConfig.scoring`), ``(B, N)``, for GRU states ``(B, H)``."""
        return self.network.scores(torch.as_tensor(hidden, device=self.device), self.config.scoring).cpu().numpy()

    def _initial_state(self, batch: int) -> GRU4RecState:
        return GRU4RecState(np.zeros((batch, self.network.hidden_size), dtype=np.float32),
                            np.full(batch, -1, dtype=np.int64), np.zeros(batch, dtype=np.int64), None)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        if not self.fitted:
            raise RuntimeError("GRU4RecAgent needs fit(log) with training logs first (or load(path))")
        batch, single = self._as_batch(observation)
        n = len(batch)
        env = self._bound_users(n)
        clicks_so_far = session_clock(batch, env.config.max_episode_steps)[:, 1]
        if state is None:
            previous, start = self._initial_state(n), np.ones(n, dtype=bool)
        else:
            previous = GRU4RecState(*state)
            if previous.hidden.shape != (n, self.network.hidden_size):
                raise ValueError(f"state for {previous.hidden.shape[0]} users given with {n} observations")
            start = episode_starts(episode_start, n).copy()
        shown = session_memory(None if state is None else previous.shown, start, n, self.num_items)
        hidden = np.array(previous.hidden, dtype=np.float32, copy=True)
        # The response to the item shown last: the session's click count rose.
        go_on = ~start & (previous.last_action >= 0)
        if go_on.any():
            clicked = (clicks_so_far[go_on] > previous.last_clicks[go_on]).astype(np.float32)
            hidden[go_on] = self._feed(hidden[go_on], previous.last_action[go_on], clicked)
        if start.any():
            past_items, past_clicks = env.warmup_history()
            hidden[start] = self._read_past(np.atleast_2d(past_items)[start], np.atleast_2d(past_clicks)[start])
        actions = choose_unshown(self.scores(hidden), shown, self.temperature, self.rng)
        return self._result(actions, single), GRU4RecState(hidden, actions.astype(np.int64), clicks_so_far.astype(np.int64), shown)

    # ---------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Weights, config and the catalog they belong to (safe to load)."""
        state = {name: tensor.detach().cpu() for name, tensor in self.network.state_dict().items()}
        return save_agent_file(path, "GRU4RecAgent", self.catalog, self.observation_space.shape, self.env_config,
                               config=asdict(self.config), state_dict=state)

    def load(self, path: str | os.PathLike[str]) -> GRU4RecAgent:
        payload = load_agent_file(path, "GRU4RecAgent", self.catalog, self.observation_space.shape)
        self.config = GRU4RecConfig(**payload["config"])
        self.rng = np.random.default_rng(self.config.seed)
        self.network = self._make_network()
        self.network.load_state_dict(payload["state_dict"])
        self.network.eval()
        self.fitted = True
        return self

    def __repr__(self) -> str:
        extra = "" if self.temperature is None else f", temperature={self.temperature}"
        return f"{type(self).__name__}(num_items={self.num_items}, obs_mode={self.obs_mode!r}, scoring={self.config.scoring!r}{extra})"
