"""LongTermValueAgent: a click model joined with a learned continuation value (SlateQ spirit).

**Why a click model alone is myopic.** The supervised next-click model (the click head of
:class:`recenv.encoder.NextClickLSTM`) estimates ``P(click | s, i)`` and a recommender greedy on it
maximises the click of *this* step only. It cannot see what a click does to the rest of the
session, and on ``DriftingUser-v0`` clicks differ in what they leave behind: a click on a
clickbait item (its title reads like clickbait, which the item's text embedding shows) costs the
user patience and ends sessions early, a click on a high-quality item restores patience and makes
them longer (``docs/model.md`` §2, update 5). Clickbait is also *more* clickable (the κ·c term of
the click logit), so ranking by P alone shows it first: the greedy click model spends the session
on the items that end it soonest.

**What the decomposition adds.** Following Ie et al. 2019, *SlateQ: A Tractable Decomposition for
Reinforcement Learning with Recommendation Sets* (https://arxiv.org/abs/1905.12767), the value of
showing item i is split by the user's response y ∈ {0, 1} (one item per step: the slate is one
item, "no click" the null choice)::

    Q(s, i) = P(click | s, i)·(1 + γ·W1(s, i)) + (1 − P(click | s, i))·γ·W0(s, i)

``P`` is the supervised click model (the env's public encoder's head, read on the hidden-state
part of the observation, optionally fine-tuned with binary cross-entropy on the agent's own
clicks); ``W_y(s, i) = E[V(s′) | s, i, y]`` are **afterstate values**: how much the session is worth
after item i was shown and the user responded y. So the learned part is not the click rate (which
the supervised model knows from far more data) but what a click on *this* item, or an ignored
impression of it, does to the future — ``W1(s, i) − W0(s, i)`` is the long-term price or reward of
the click, and it depends on the item through its text embedding. With ``W ≡ 0`` (or ``γ = 0``)
``Q = P``: the agent ranks exactly like the click model, which is where training starts.

``W_y(s, i) = f_y(s)·g_y(e_i) + b_y,i + v_y(s)``: f_y an MLP of the state features, g_y a linear
map of the item's text embedding (what is learnt about one clickbait title carries over to the
others), b_y,i an optional per-item bias, v_y(s) a state value; by default W0 keeps only v_0(s),
SlateQ's item-independent value of the null choice (an ignored impression changes little but
satiation). f_y, v_y and b_y start at zero, so ``W ≡ 0`` at the start.

**State features: the observation and a session memory.** The observation is the LSTM state and
the session clock (steps and clicks so far, which say much about the remaining patience). But a
TD target can only show that a clickbait click cost patience if the state *after* it shows it:
``W1(s, i) ← V̄(s′)`` gives clickbait and good items the same target when s′ looks the same after
either click — and the next-click LSTM, trained to predict clicks, has no reason to keep which
clicked items were clickbait (patience never changes the click probability). Patience is
``b0 − Σ_t (1 + δ·(1 − y_t)) + g·Σ_clicked (q_i − c_i)``: the clock gives the first sum, and the
second is a sum over the items clicked this session. So the agent keeps, per user, how often it
saw each item clicked this session (from its own actions and the click count of the session clock)
and W reads it through the text embeddings, ``m = Σ_clicked M·e_i`` (M learnt, ``memory_size``
values), beside the observation. The memory is SB3's recurrent ``state`` of
:meth:`LongTermValueAgent.predict` (:class:`SessionMemory`), as for the session-aware agents.

**Learning** (in the loop of :class:`agents.off_policy.OffPolicyLearner`, like :mod:`agents.dqn`):
ε-greedy on Q in the native vector env (next-step autoreset: the reset step of a finished user is
no transition), transitions
``(s, i, y, s′, terminated)`` (s with its session memory; the reward is the click y) in a replay
buffer, and for the **observed** response y the TD target::

    W_y(s, i) ← (1 − terminated)·V̄(s′),     V̄(s′) = Q_target(s′, argmax_j Q(s′, j))

with a target copy of the W network refreshed every ``target_update_interval`` gradient steps,
Huber loss and clipped gradients. Only W_y of the response that happened is trained by a
transition: the click itself is the click model's business (the reward 1 of the click is inside Q,
not inside W), which keeps the click noise out of the TD targets. P in the target is the current
click model's: it is supervised, not bootstrapped, so it needs no target copy.

V̄ is the greedy value (double Q-learning: the online network picks the item, the target network
values it): the deployed policy is the greedy one (:meth:`predict` with ``deterministic=True``).
Expected SARSA under the ε-greedy behaviour (``bootstrap="expected"``) would value a policy that
is never deployed, for little less variance at ε = 0.05. ``bootstrap="sarsa"`` values the item
actually shown next instead — no maximum over 500 noisy estimates, and a cheaper target (one item
of s′ instead of all of them, twice). What matters most is the pace of value learning (see
:class:`LongTermValueConfig`): with too few, too small steps and a target refreshed too seldom,
max_j Q(s, j) over-estimates the clicks still to come, and the agent, trusting long sessions,
avoids clickbait for fewer clicks than the click model alone; the defaults (step size 10⁻³, the
target refreshed every 100 gradient steps) were chosen so that predicted and realised values
agree (the measurements behind them, the targets compared and the memory and item parts:
``docs/results/tuning-notes.md``).

What this agent achieves on ``mixed`` against the other learners, with intervals over training
seeds, and what the decomposition adds over the click model alone (γ = 0) are measured on
``docs/results/learners-mixed.md``.

Observations must be ``obs_mode="encoded"`` (the LSTM state and the session context).
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from agents.base import episode_starts, unwrap_env
from agents.off_policy import OffPolicyConfig, OffPolicyLearner, TransitionRing
from agents.persistence import load_agent_file, save_agent_file
from recenv.observation import SESSION_CONTEXT_SIZE, session_clock

__all__ = ["AfterstateValues", "ClickModelValueAgent", "LongTermValueAgent", "LongTermValueConfig", "SessionMemory", "long_term_q"]

_CLICK_HEAD = ("user_projection", "item_projection", "item_bias", "user_bias")
"""The parts of the next-click LSTM that score items (the LSTM itself stays in the env)."""

MEMORY_SCALE = 10.0
"""The session memory Σ_clicked M·e_i is divided by this (sessions have about 10 clicks)."""


@dataclass(frozen=True)
class LongTermValueConfig(OffPolicyConfig):
    """Hyper-parameters of :class:`LongTermValueAgent`.

    The other fields of the loop (``learning_starts`` … ``seed``) are
    :class:`agents.off_policy.OffPolicyConfig`'s, with its defaults. What these defaults were
    measured against: ``docs/results/tuning-notes.md``.

    :param gamma: discount per step. Sessions last 20–40 steps and patience pays off over all of
        them, so 0.99 (0 gives the myopic click model: ``Q = P``).
    :param hidden_size: width of the state MLP of W (128 and ``item_size`` 32, smaller than DQN's
        256 and 64, to train faster on CPU).
    :param item_size: size of f_y(s) and g_y(e).
    :param memory_size: size of the session memory ``Σ_clicked M·e_i`` W reads; 0: no memory (W
        reads the observation only, and cannot tell which clicked items cost patience).
    :param item_bias: W has a free per-item bias b_y,i; False: W reads items through their text
        embeddings only (one free bias per item is one more noisy estimate per item for the TD
        target to maximise over).
    :param item_no_click_value: W0 depends on the item (``f_0(s)·g_0(e_i) + b_0,i + v_0(s)``);
        False: ``W0(s, i) = v_0(s)``, SlateQ's item-independent value of the null choice (an item
        part of W0 moves the ranking by its estimation noise, γ·W0(s, i), whatever P says).
    :param learning_rate: Adam's step size for W (10⁻³ with 2 gradient steps per vector step and
        the target refreshed every 100: slower paces over-estimated the values; see the module
        docstring).
    :param buffer_size: transitions kept in the replay buffer.
    :param batch_size: transitions per gradient step.
    :param gradient_steps: (the loop's default, 2 of 256 per 64 user-steps: each transition is
        replayed about 8 times, as in DQN).
    :param target_update_interval: gradient steps between copies of W into its target network.
        Values propagate one bootstrap step per copy and a session is 20–40 steps long, so far
        more often than DQN's 2,000: 100.
    :param bootstrap: ``"max"``: V̄(s′) the (double-Q) greedy value; ``"expected"``: expected SARSA
        under the ε-greedy behaviour policy at the current ε; ``"sarsa"``: Q_target(s′, i′) of the
        item i′ actually shown next (no maximum over items, so no maximisation bias).
    :param fine_tune_click_model: also train the click head by binary cross-entropy on the replayed
        (state, item, click) triples ...
    :param click_learning_rate: ... with Adam at this step size.
    """

    gamma: float = 0.99
    hidden_size: int = 128
    item_size: int = 32
    memory_size: int = 16
    item_bias: bool = False
    item_no_click_value: bool = False
    learning_rate: float = 1e-3
    buffer_size: int = 200_000
    batch_size: int = 256
    target_update_interval: int = 100
    bootstrap: str = "max"
    fine_tune_click_model: bool = True
    click_learning_rate: float = 1e-4

    def __post_init__(self) -> None:
        if self.bootstrap not in ("max", "expected", "sarsa"):
            raise ValueError(f"unknown bootstrap {self.bootstrap!r}; allowed: 'max', 'expected', 'sarsa'")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.memory_size < 0:
            raise ValueError(f"memory_size must be ≥ 0, got {self.memory_size}")


def long_term_q(click_probability: Tensor, value_click: Tensor, value_no_click: Tensor, gamma: float) -> Tensor:
    """``Q = P·(1 + γ·W1) + (1 − P)·γ·W0``, elementwise (any broadcastable shapes)."""
    return click_probability * (1.0 + gamma * value_click) + (1.0 - click_probability) * gamma * value_no_click


class SessionMemory(NamedTuple):
    """What :meth:`LongTermValueAgent.predict` remembers of each user's session (SB3's recurrent
    ``state``; pass it back on the next call).

    :param clicked: ``(B, N)`` float32, how often each item was clicked in the session so far.
    :param last_action: ``(B,)`` the item shown last (−1: none yet).
    :param last_clicks: ``(B,)`` the session's clicks when it was shown (from the session clock),
        so the next observation's count says whether it was clicked.
    """

    clicked: np.ndarray
    last_action: np.ndarray
    last_clicks: np.ndarray


class AfterstateValues(nn.Module):
    """``W_y(s, i) = f_y(s)·g_y(e_i) + b_y,i + v_y(s)`` for y = 0 (no click) and y = 1 (click).

    f_y(s) and v_y(s) share an MLP trunk over the state features: the observation and, with
    ``memory_size > 0``, the session memory ``Σ_clicked M·e_i / MEMORY_SCALE`` (computed from the
    ``(B, N)`` click counts). g_y(e) is linear in the item's text embedding. Without
    ``item_no_click_value`` W0 has no item part (``W0 = v_0(s)``); without ``item_bias`` b_y stays
    0. f_y, v_y and b_y start at zero, so W ≡ 0 (g_y starts random: with both factors at zero the
    product would get no gradient).
    """

    def __init__(self, observation_size: int, item_embeddings: Tensor, hidden_size: int, item_size: int,
                 memory_size: int = 0, item_no_click_value: bool = True, item_bias: bool = True):
        super().__init__()
        self.item_size, self.memory_size = item_size, memory_size
        self.trunk = nn.Sequential(
            nn.Linear(observation_size + memory_size, hidden_size), nn.ReLU(),
            nn.Linear(hidden_size, hidden_size), nn.ReLU(),
        )
        self.user = nn.Linear(hidden_size, 2 * item_size)
        self.state_value = nn.Linear(hidden_size, 2)
        self.item_network = nn.Linear(item_embeddings.shape[1], 2 * item_size, bias=False)
        self.item_bias = nn.Parameter(torch.zeros(2, item_embeddings.shape[0]), requires_grad=item_bias)
        self.memory_items = nn.Linear(item_embeddings.shape[1], memory_size, bias=False) if memory_size else None
        self.register_buffer("item_embeddings", item_embeddings.clone())
        # 1 where W_y has an item part: both y, or only y = 1 (W0 = v_0(s)).
        self.register_buffer("item_part", torch.tensor([[float(item_no_click_value)], [1.0]]))
        for layer in (self.user, self.state_value):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _state(self, observation: Tensor, clicked: Tensor | None) -> tuple[Tensor, Tensor]:
        if self.memory_items is not None:
            if clicked is None:
                clicked = observation.new_zeros((len(observation), self.item_embeddings.shape[0]))
            memory = clicked @ self.memory_items(self.item_embeddings) / MEMORY_SCALE
            observation = torch.cat([observation, memory], 1)
        features = self.trunk(observation)
        return self.user(features).view(-1, 2, self.item_size), self.state_value(features)

    def item_features(self) -> Tensor:
        """g_y(e_i) of every item, ``(2, P, N)``."""
        return self.item_network(self.item_embeddings).T.reshape(2, self.item_size, -1)

    def forward(self, observation: Tensor, clicked: Tensor | None = None, item_features: Tensor | None = None) -> Tensor:
        """W for every item: ``(B, 2, N)``, ``[:, 0]`` after no click, ``[:, 1]`` after a click.

        :param clicked: ``(B, N)`` session click counts (the memory); None: none yet.
        :param item_features: :meth:`item_features`, when the caller has them at hand.
        """
        user, value = self._state(observation, clicked)
        items = self.item_features() if item_features is None else item_features
        item_part = (user.transpose(0, 1) @ items).transpose(0, 1) + self.item_bias
        return item_part * self.item_part + value[:, :, None]

    def of_items(self, observation: Tensor, clicked: Tensor | None, items: Tensor) -> Tensor:
        """W of one item per state: ``(B, S)`` states, ``(B,)`` item ids → ``(B, 2)``."""
        user, value = self._state(observation, clicked)
        embedded = self.item_network(self.item_embeddings[items]).view(-1, 2, self.item_size)
        return ((user * embedded).sum(-1) + self.item_bias[:, items].T) * self.item_part.T + value


class _ReplayBuffer(TransitionRing):
    """A ring buffer of transitions ``(s, memory, i, y, s′, terminated)`` on the training device.
    The memory after the step is the one before plus the click, so it is stored once (as counts)."""

    def __init__(self, capacity: int, observation_size: int, num_items: int, memory: bool, device: torch.device):
        super().__init__(capacity)
        self.observations = torch.zeros((capacity, observation_size), device=device)
        self.next_observations = torch.zeros((capacity, observation_size), device=device)
        self.actions = torch.zeros(capacity, dtype=torch.int64, device=device)
        self.next_actions = torch.zeros(capacity, dtype=torch.int64, device=device)
        self.clicks = torch.zeros(capacity, device=device)
        self.terminated = torch.zeros(capacity, device=device)
        self.clicked = torch.zeros((capacity, num_items), dtype=torch.uint8, device=device) if memory else None

    def add(self, observation: Tensor, clicked: Tensor, action: Tensor, click: Tensor, next_observation: Tensor,
            terminated: Tensor, next_action: Tensor | None = None) -> None:
        index = self._advance(len(action), action.device)
        self.observations[index], self.actions[index], self.clicks[index] = observation, action, click
        self.next_actions[index] = 0 if next_action is None else next_action
        self.next_observations[index], self.terminated[index] = next_observation, terminated
        if self.clicked is not None:
            self.clicked[index] = clicked.clamp(max=255).to(torch.uint8)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor | None, ...]:
        """``(s, memory, i, y, s′, memory′, terminated, i′)``; the memories are None without one."""
        index = self._draw(batch_size, generator, self.actions.device)
        action, click = self.actions[index], self.clicks[index]
        clicked = next_clicked = None
        if self.clicked is not None:
            clicked = self.clicked[index].float()
            next_clicked = clicked.scatter_add(1, action[:, None], click[:, None])
        return (self.observations[index], clicked, action, click, self.next_observations[index], next_clicked,
                self.terminated[index], self.next_actions[index])


class ClickModelValueAgent(OffPolicyLearner):
    """What :class:`LongTermValueAgent` and :class:`agents.slate_q.SlateQAgent` share: a copy of the
    env's public next-click LSTM as the click model (its head optionally fine-tuned, the LSTM
    frozen), :class:`AfterstateValues` W and their target copy, and the agent file holding both.

    A subclass sets ``kind`` (its file's ``agent``), ``config_class``, and the W options of
    :meth:`_value_options`; it may check more of the env in :meth:`_check_env` (called before
    anything is built).
    """

    kind: str
    config_class: type

    def __init__(self, env: Any, config: Any, device: str = "auto"):
        super().__init__(env, config, device)
        if self.obs_mode != "encoded":
            raise ValueError(f"{type(self).__name__} reads LSTM states: use obs_mode='encoded', not {self.obs_mode!r}")
        self._check_env()
        self._env_encoder = unwrap_env(env).encoder
        if self._env_encoder.hidden_size + SESSION_CONTEXT_SIZE != self.observation_size:
            raise ValueError("observations must be the encoder's hidden state followed by the session context")
        self._item_embeddings = torch.as_tensor(np.array(self.catalog.embeddings), dtype=torch.float32)
        torch.manual_seed(config.seed)  # network initialisation (nn.Module init draws from the global torch RNG)
        self._build()

    def _check_env(self) -> None:
        """More checks of the env the agent is made for (``self.env_config``); none by default."""

    def _value_options(self) -> dict[str, bool]:
        """``item_no_click_value`` and ``item_bias`` of :class:`AfterstateValues`."""
        raise NotImplementedError

    def _build(self) -> None:
        """A fresh click model (a copy of the env's encoder) and fresh W networks."""
        c = self.config
        self.click_model = copy.deepcopy(self._env_encoder).to(self.device)
        self.click_model.requires_grad_(False)
        for name in _CLICK_HEAD:  # the LSTM stays frozen: the env, not the agent, runs it
            getattr(self.click_model, name).requires_grad_(c.fine_tune_click_model)
        self.item_embeddings = self._item_embeddings.to(self.device)
        self.values = AfterstateValues(self.observation_size, self._item_embeddings, c.hidden_size, c.item_size,
                                       c.memory_size, **self._value_options()).to(self.device)
        self.target_values = copy.deepcopy(self.values)

    def _tensor(self, array: Any) -> Tensor:
        return torch.as_tensor(np.asarray(array), dtype=torch.float32, device=self.device).reshape(len(array), -1)

    def click_logits(self, observation: Tensor) -> Tensor:
        """Logit of P(click) for every item (SlateQ's item utilities v(s, ·)), ``(B, N)``, from the
        hidden-state part of observations."""
        return self.click_model.click_logits_all(observation[:, :-SESSION_CONTEXT_SIZE], self.item_embeddings)

    def _click_head_parameters(self) -> list[nn.Parameter]:
        return [p for name in _CLICK_HEAD for p in getattr(self.click_model, name).parameters()]

    # ---------------------------------------------------------------- learning (OffPolicyLearner's loop)

    def _setup_learning(self, env: Any, num_envs: int) -> None:
        c = self.config
        self._replay = self._make_replay()
        self._generator = torch.Generator(device=self.device).manual_seed(c.seed)
        self._optimizer = torch.optim.Adam(self.values.parameters(), lr=c.learning_rate)
        head = self._click_head_parameters()
        self._click_optimizer = torch.optim.Adam(head, lr=c.click_learning_rate) if c.fine_tune_click_model else None
        self._target_items: Tensor | None = None  # g_y(e) of the target network, fixed until its next refresh
        self._clicked = torch.zeros((num_envs, self.num_items), device=self.device)  # the session memory of each user

    def _make_replay(self) -> Any:
        """The replay buffer of one call of :meth:`learn`."""
        raise NotImplementedError

    def _responses(self, batch: tuple[Any, ...]) -> tuple[Tensor, Tensor | None, Tensor, Tensor, Tensor]:
        """``(s, memory, item, response y (int64), terminated)`` of a replayed batch: whose W_y is trained."""
        raise NotImplementedError

    def _next_value(self, batch: tuple[Any, ...], epsilon: float) -> Tensor:
        """``(B,)`` V̄(s′) of a replayed batch, the bootstrap of the TD target (under ``no_grad``)."""
        raise NotImplementedError

    def _click_loss(self, batch: tuple[Any, ...]) -> Tensor:
        """The supervised loss of the click head on a replayed batch."""
        raise NotImplementedError

    def _target_item_features(self) -> Tensor:
        if self._target_items is None:
            self._target_items = self.target_values.item_features()
        return self._target_items

    def train_step(self, epsilon: float) -> dict[str, Tensor]:
        """TD for the afterstate value of the observed response, ``W_y(s, i) ← (1 − terminated)·V̄(s′)``
        (Huber loss, clipped gradients), then the click model supervised on the same replayed batch."""
        c = self.config
        batch = self._replay.sample(c.batch_size, self._generator)
        s, m, item, y, term = self._responses(batch)
        with torch.no_grad():
            next_value = self._next_value(batch, epsilon)
            target = (1.0 - term) * next_value
        w = self.values.of_items(s, m, item).gather(1, y[:, None])[:, 0]
        loss = nn.functional.smooth_l1_loss(w, target)
        self._optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.values.parameters(), c.max_grad_norm)
        self._optimizer.step()
        scalars = {"loss": loss.detach(), "value": next_value.mean()}
        if self._click_optimizer is not None:
            click_loss = self._click_loss(batch)
            self._click_optimizer.zero_grad()
            click_loss.backward()
            self._click_optimizer.step()
            scalars["click_loss"] = click_loss.detach()
        return scalars

    def _networks(self) -> tuple[nn.Module, nn.Module]:
        return self.values, self.target_values

    def _update_target(self) -> None:
        super()._update_target()
        self._target_items = None

    def _initial_scalars(self) -> dict[str, float]:
        return {"loss": float("nan"), "click_loss": float("nan"), "value": float("nan")}

    # ---------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str]) -> Path:
        """W's weights, the (possibly fine-tuned) click head, config and catalog (safe to load)."""
        values = {name: tensor.detach().cpu() for name, tensor in self.values.state_dict().items()}
        head = {name: tensor.detach().cpu() for name, tensor in self.click_model.state_dict().items()
                if name.split(".")[0] in _CLICK_HEAD}
        return save_agent_file(path, self.kind, self.catalog, self.observation_space.shape, self.env_config,
                               config=asdict(self.config), values=values, click_head=head, **self._file_extras())

    def _file_extras(self) -> dict[str, Any]:
        """More fields of the agent file (checked by :meth:`_check_file`)."""
        return {}

    def _check_file(self, path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
        """Refuse a file that does not fit this agent beyond its kind, catalog and observations."""

    def load(self, path: str | os.PathLike[str]) -> Any:
        payload = load_agent_file(path, self.kind, self.catalog, self.observation_space.shape)
        self._check_file(path, payload)
        self.config = self.config_class(**payload["config"])
        self.rng = np.random.default_rng(self.config.seed)
        self._build()
        self.values.load_state_dict(payload["values"])
        self.target_values = copy.deepcopy(self.values)
        missing, unexpected = self.click_model.load_state_dict(payload["click_head"], strict=False)
        if unexpected or any(name.split(".")[0] in _CLICK_HEAD for name in missing):
            raise ValueError(f"{path}: the click head does not fit the env's encoder")
        return self


class LongTermValueAgent(ClickModelValueAgent):
    """Greedy on ``Q(s, i) = P(click)·(1 + γ·W1) + (1 − P(click))·γ·W0`` (see the module docstring).

    :meth:`predict` keeps each user's session memory in SB3's recurrent ``state`` (a
    :class:`SessionMemory`, returned and to be passed back with ``episode_start``; ``state=None``:
    every user is fresh). It learns whether its last item was clicked from the session clock of the
    next observation.

    :param env: the env it is made for (``obs_mode="encoded"``; its public ``encoder`` gives the
        click model, copied so that fine-tuning leaves the env's alone).
    :param config: hyper-parameters (:class:`LongTermValueConfig`).
    :param device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    """

    kind = "LongTermValueAgent"
    config_class = LongTermValueConfig

    def __init__(self, env: Any, config: LongTermValueConfig = LongTermValueConfig(), device: str = "auto"):
        super().__init__(env, config, device)

    def _value_options(self) -> dict[str, bool]:
        return {"item_no_click_value": self.config.item_no_click_value, "item_bias": self.config.item_bias}

    # ---------------------------------------------------------------- the decomposition

    def _q(self, observation: Tensor, clicked: Tensor | None, values: AfterstateValues,
           click_probability: Tensor | None = None, item_features: Tensor | None = None) -> Tensor:
        if click_probability is None:
            click_probability = torch.sigmoid(self.click_logits(observation))
        w = values(observation, clicked, item_features)
        return long_term_q(click_probability, w[:, 1], w[:, 0], self.config.gamma)

    def q_values(self, observations: Any, clicked: Any = None) -> Tensor:
        """Q(s, ·) for a batch of observations (and their session click counts ``(B, N)``; None:
        none yet) → ``(B, N)`` on the agent's device."""
        return self._q(self._tensor(observations), None if clicked is None else self._tensor(clicked), self.values)

    def decompose(self, observation: Any, state: SessionMemory | None = None) -> dict[str, np.ndarray]:
        """The parts of Q for every item, for diagnostics: ``click_probability`` (P),
        ``value_click`` (W1), ``value_no_click`` (W0) and ``q``, each ``(B, N)`` (``(N,)`` for one
        observation). ``state``: the session memory that :meth:`predict` returned with this
        observation's action (None: none yet)."""
        batch, single = self._as_batch(observation)
        with torch.no_grad():
            x = self._tensor(batch)
            p = torch.sigmoid(self.click_logits(x))
            w = self.values(x, None if state is None else self._tensor(SessionMemory(*state).clicked))
            parts = {"click_probability": p, "value_click": w[:, 1], "value_no_click": w[:, 0],
                     "q": long_term_q(p, w[:, 1], w[:, 0], self.config.gamma)}
        return {name: (v.cpu().numpy()[0] if single else v.cpu().numpy()) for name, v in parts.items()}

    def _recall(self, state: Any, episode_start: Any, clicks_so_far: np.ndarray) -> np.ndarray:
        """The session click counts ``(B, N)`` before this step's action: the previous ones plus the
        click, if any, on the item shown last; zeros for users whose session starts."""
        n = len(clicks_so_far)
        if state is None:
            return np.zeros((n, self.num_items), dtype=np.float32)
        previous = SessionMemory(*state)
        clicked = np.array(previous.clicked, dtype=np.float32, copy=True)
        if clicked.shape != (n, self.num_items):
            raise ValueError(f"state of shape {clicked.shape} is not this agent's memory of {n} users × {self.num_items} items")
        start = episode_starts(episode_start, n)
        users = np.flatnonzero(~start & (np.asarray(previous.last_action) >= 0))
        clicked[users, previous.last_action[users]] += clicks_so_far[users] > previous.last_clicks[users]
        clicked[start] = 0.0
        return clicked

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        clicks_so_far = session_clock(batch, self.env_config.max_episode_steps)[:, 1]
        clicked = self._recall(state, episode_start, clicks_so_far)
        with torch.no_grad():
            actions = self.q_values(batch, clicked).argmax(1).cpu().numpy()
        if not deterministic:
            actions = self._epsilon_greedy(actions, self.config.end_epsilon, self.rng)
        return self._result(actions, single), SessionMemory(clicked, actions.astype(np.int64), clicks_so_far)

    # ---------------------------------------------------------------- learning

    progress_label = "long-term value"

    def _make_replay(self) -> _ReplayBuffer:
        c = self.config
        return _ReplayBuffer(c.buffer_size, self.observation_size, self.num_items, c.memory_size > 0, self.device)

    def _start_collection(self, env: Any, observation: Any, num_envs: int) -> None:
        # bootstrap="sarsa": each user's last transition, waiting for the item shown next.
        clicked = self._clicked
        self._pending = tuple(torch.zeros_like(part) for part in (
            self._tensor(observation), clicked, torch.zeros(num_envs, dtype=torch.int64, device=self.device),
            clicked[:, 0], self._tensor(observation), clicked[:, 0]))
        self._waiting = torch.zeros(num_envs, dtype=torch.bool, device=self.device)

    def _act(self, env: Any, observation: Any, epsilon: float) -> np.ndarray:
        with torch.no_grad():
            greedy = self._q(self._tensor(observation), self._clicked, self.values).argmax(1).cpu().numpy()
        return self._epsilon_greedy(greedy, epsilon, self.rng)

    def _store(self, observation, actions, reward, next_observation, terminated, truncated, info, valid) -> None:
        """Transitions ``(s, memory, i, y, s′, terminated)``, the reward being the click y; a user
        reset in this step made none and their memory starts over."""
        c, clicked, buffer = self.config, self._clicked, self._replay
        keep = torch.as_tensor(valid, device=self.device)
        action, click = torch.as_tensor(actions, device=self.device), self._tensor(reward)[:, 0]
        now = (self._tensor(observation), clicked.clone(), action, click, self._tensor(next_observation),
               self._tensor(terminated)[:, 0])
        if c.bootstrap != "sarsa":
            if valid.any():
                buffer.add(*(part[keep] for part in now))
        else:  # a transition waits for the item shown next (a session's last one, for nothing)
            ready = self._waiting & keep
            if ready.any():
                buffer.add(*(part[ready] for part in self._pending), next_action=action[ready])
            last = keep & (now[5] > 0)
            if last.any():
                buffer.add(*(part[last] for part in now))
            self._waiting = keep & (now[5] == 0)  # a truncated session's last transition is dropped
            self._pending = tuple(torch.where(self._waiting.view(-1, *[1] * (new.ndim - 1)), new, old)
                                  for new, old in zip(now, self._pending))
        clicked[keep] = clicked[keep].scatter_add(1, action[keep, None], click[keep, None])
        clicked[~keep] = 0.0

    def _responses(self, batch):
        s, m, a, y, _, _, term, _ = batch
        return s, m, a, y.long(), term

    def _next_value(self, batch, epsilon: float) -> Tensor:
        """``"sarsa"``: Q_target of the item shown next; else the double-Q greedy value (the online
        network picks, the target values), mixed with the mean under ε for ``"expected"``."""
        c = self.config
        _, _, _, _, s_next, m_next, _, a_next = batch
        if c.bootstrap == "sarsa":
            w_next = self.target_values.of_items(s_next, m_next, a_next)
            p_next = torch.sigmoid(self.click_model.click_logits(
                s_next[:, :-SESSION_CONTEXT_SIZE], self.item_embeddings[a_next]))
            return long_term_q(p_next, w_next[:, 1], w_next[:, 0], c.gamma)
        target_items = self._target_item_features()
        p_next = torch.sigmoid(self.click_logits(s_next))
        next_q = self._q(s_next, m_next, self.target_values, p_next, target_items)
        best = self._q(s_next, m_next, self.values, p_next).argmax(1, keepdim=True)  # online picks
        next_value = next_q.gather(1, best)[:, 0]
        if c.bootstrap == "expected":
            next_value = (1.0 - epsilon) * next_value + epsilon * next_q.mean(1)
        return next_value

    def _click_loss(self, batch) -> Tensor:
        """Binary cross-entropy of P(click) on the replayed (state, item, click) triples."""
        s, _, a, y, *_ = batch
        logits = self.click_model.click_logits(s[:, :-SESSION_CONTEXT_SIZE], self.item_embeddings[a])
        return nn.functional.binary_cross_entropy_with_logits(logits, y)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_items={self.num_items}, gamma={self.config.gamma})"
