"""SlateQAgent: item-level long-term values combined under the user's choice model (SlateQ).

**What SlateQ is.** Ie et al. 2019, *SlateQ: A Tractable Decomposition for Reinforcement Learning
with Recommendation Sets* (https://arxiv.org/abs/1905.12767). With slates of k items out of N the
action space has N!/(N−k)! elements (about 10²⁷ for k = 10 of 500): no Q-network can score them one
by one. SlateQ assumes the user consumes at most one item of the slate, and that what happens next
depends on the slate only through the item consumed (or none). The slate's value then decomposes
into **item-level** values weighted by the choice model::

    Q(s, A) = Σ_j P(j | s, A)·Q̄(s, i_j) + P(⊥ | s, A)·Q̄(s, ⊥)

so only Q̄(s, i), one value per item, is learnt, and the best slate is a small combinatorial
problem over N item scores instead of a search over slates.

**The choice model the agent assumes** is the env's own form (``docs/model.md`` §2, "Slates"), a
conditional logit over the slate and a no-click option of utility 0, with the position effect
``−λ·log2(1 + j)`` of slot j (λ = ``env.config.slate_position_decay``, public config)::

    P(j | s, A) = exp(v(s, i_j) − λ·log2(1 + j)) / (1 + Σ_j' exp(v(s, i_j') − λ·log2(1 + j')))

with item utilities v(s, i) = the click logit of the public next-click LSTM (the env's public
``encoder``, read on the hidden-state part of the observation as :mod:`agents.long_term_value`
does). For k = 1 it is σ(v), the one-item click model. The click head is fine-tuned (optional, on by
default) by maximum likelihood of the observed choice ``info["chosen_slot"]`` given the slate shown,
a k + 1-way cross-entropy over (no click, slot 0, …, slot k − 1): public data, a deployed system
logs which item of its slate was clicked.

**Item-level values** are afterstate values, as in :mod:`agents.long_term_value` (and the same
network, :class:`agents.long_term_value.AfterstateValues`, with SlateQ's item-independent null
value)::

    Q̄(s, i) = 1 + γ·W1(s, i)          the chosen item: its click, then the session after it
    Q̄(s, ⊥) = γ·W0(s)                  no click: the session after an ignored slate

``W_y = E[V(s′) | s, response y]``; ``W1(s, i) = f_1(s)·g_1(e_i) + v_1(s)`` reads the item through its
text embedding (what is learnt about one clickbait title carries over to the others), ``W0(s) =
v_0(s)``. The state features are the observation and a **session memory** ``Σ_clicked M·e_i`` of
the items clicked this session (see :class:`SlateSessionMemory`; patience moves with the quality
and clickbait of the clicked items, which the LSTM state has no reason to keep). W starts at 0, so
a fresh (or γ = 0) agent's slate is the click model's top k: ``Q(s, A) = P(a click | s, A)``.

**Learning** (in the loop of :class:`agents.off_policy.OffPolicyLearner`, like :mod:`agents.dqn` and
:mod:`agents.long_term_value`): ε-greedy
slates in the native vector env (each slot, with probability ε, replaced by a uniformly random item
neither in the slate nor, with ``no_repeats``, shown earlier in the session; next-step autoreset: the reset step of a finished user is no transition),
transitions ``(s, slate, chosen slot, s′, terminated)`` in a replay buffer (the click is
``chosen slot ≥ 0``), and for the **observed** response only (W1 of the chosen item, or W0 after
no click)::

    W_y(s, ·) ← (1 − terminated)·V̄(s′),     V̄(s′) = Q_target(s′, A*(s′)),  A*(s′) = argmax_A Q(s′, A)

— SlateQ's Q-learning variant, with the double-Q split (the online network picks the slate A*, the
target network, refreshed every ``target_update_interval`` gradient steps, values it; the choice
probabilities are the current click model's: supervised, not bootstrapped). Q-learning rather than
the paper's SARSA variant because the deployed policy is the greedy one (SARSA would value the
ε-greedy slates, and need the next slate stored with each transition); for the one-item
decomposition :mod:`agents.long_term_value` offers both (``bootstrap``). Huber loss, clipped gradients.

**Slate optimisation** (``slate_optimizer``), given v, Q̄ and Q̄(⊥) for every item; with the
position weights ``w_j = exp(−λ·log2(1 + j))`` (decreasing) and ``a_i = exp(v(s, i))`` the slate
value is ``(Q̄(⊥) + Σ_j w_j·a_{i_j}·Q̄_{i_j}) / (1 + Σ_j w_j·a_{i_j})``:

- ``"topk"``: the paper's top-k heuristic: rank items by ``a_i·Q̄(s, i)``, best first into the slots.
- ``"greedy"``: the paper's greedy method: fill slots 0, 1, … in turn, each with the item that
  maximises the value of the slate so far.
- ``"exact"``: the exact optimum under this choice model, by Dinkelbach's method for fractional
  programs. For a number μ, ``max_A [numerator − μ·denominator] = Q̄(⊥) − μ + max_A Σ_j w_j·a_{i_j}·(Q̄_{i_j} − μ)``
  is solved exactly by the top k of ``a_i·(Q̄_i − μ)`` sorted into the decreasing w_j (rearrangement
  inequality); iterating μ ← Q(s, A) from the top-k heuristic's slate (μ = 0) climbs to the
  optimum in a few steps (it stops when the slate no longer changes) and never ends below it. The
  top-k heuristic ranks by ``a·Q̄``, in which an item's *advantage* over no click,
  ``Q̄_i − Q̄(⊥)``, is small beside the common level of ``Q̄`` once values are large (about
  ``1 + γ·W`` with W ≈ the clicks still to come): it then ranks almost by a alone, like the click
  model.

With ``W ≡ 0`` the three give the click model's top k, best first (the myopic optimum).

**No repeats** (``no_repeats``, on by default): the slates hold only items not shown earlier in the
session (every slot counts; a user with fewer than k unshown items left starts over), when acting,
exploring and in the bootstrap target's slate, as :class:`agents.slate_baselines.GreedySlateAgent`
does. A constraint, not something learnt: with the default ``slate_history="chosen"`` the click
model sees only the item the history records, so it cannot see the impression fatigue of showing
the same slate again, and the values would have to learn it from TD errors alone (with
``"shown"`` the history holds every item shown, but the rule stays, so that the two compare). The items shown are the agent's own actions, kept in its
session memory.

**What the agent reads** (non-privileged, ``docs/model.md`` §5): observations (``obs_mode="encoded"``:
the LSTM state and the session clock), rewards, termination flags, public step info
(``chosen_slot``), the catalog's text embeddings, the env's public encoder and config; in
:meth:`SlateQAgent.predict`, which item of its last slate was clicked comes from the session clock
(whether a click happened) and the bound env's ``recent_items()`` (which item the history
recorded: public, it is what the recommender showed; with ``slate_history="shown"`` also
``recent_clicks()``, which of the slate's items was clicked). Never ground truth.

What SlateQ achieves with slates of 10 on ``mixed`` (and on ``mixed-slate10-shown``) against the
slate baselines, with intervals over training seeds, is measured on ``docs/results/slates.md``;
the tuning runs behind its defaults (γ = 0, the slate optimisers, repeats, predicted against
realised values) are on ``docs/results/tuning-notes.md``.

Observations must be ``obs_mode="encoded"``. k = 1 works too (``Discrete`` actions): it is the
one-item decomposition of :mod:`agents.long_term_value` with W0 item-independent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from agents.base import episode_starts, unwrap_env
from agents.long_term_value import AfterstateValues, ClickModelValueAgent
from agents.off_policy import OffPolicyConfig, TransitionRing
from recenv.dynamics import slate_choice_probabilities, slate_position_effects
from recenv.observation import SESSION_CONTEXT_SIZE, session_clock

__all__ = ["SLATE_OPTIMIZERS", "SlateQAgent", "SlateQConfig", "SlateSessionMemory", "optimise_slates", "slate_value"]

SLATE_OPTIMIZERS = ("topk", "greedy", "exact")
"""The slate optimisers of :func:`optimise_slates` (see the module docstring)."""

_DINKELBACH_ITERATIONS = 10
"""At most this many improvement steps of the exact optimiser (it stops earlier when no slate changes)."""


@dataclass(frozen=True)
class SlateQConfig(OffPolicyConfig):
    """Hyper-parameters of :class:`SlateQAgent` (the learning ones as :class:`agents.LongTermValueConfig`'s,
    which were tuned on the one-item decomposition).

    The other fields of the loop (``learning_starts`` … ``seed``) are
    :class:`agents.off_policy.OffPolicyConfig`'s, with its defaults.

    :param gamma: discount per step (0.99: sessions last 20–40 steps and patience pays off over all
        of them; 0: the myopic click model, ``Q(s, A) = P(a click | s, A)``).
    :param hidden_size: width of the state MLP of W.
    :param item_size: size of f_1(s) and g_1(e).
    :param memory_size: size of the session memory ``Σ_clicked M·e_i`` W reads (0: none).
    :param no_repeats: never show an item twice in a session (every slot of every slate counts as
        shown; a user with fewer than k unshown items left starts over), as
        :class:`agents.slate_baselines.GreedySlateAgent` does; also in the bootstrap target's
        slate. The click model cannot see repeats coming: the history records one item per step,
        not the slate, so it misses the impression fatigue of the items shown and skipped
        (measured: ``docs/results/tuning-notes.md``).
    :param slate_optimizer: ``"topk"`` (the paper's top-k heuristic), ``"greedy"`` (the paper's
        add-one-item-at-a-time method) or ``"exact"`` (Dinkelbach's method, exact under the choice
        model); used to act and for the bootstrap target. See the module docstring (the top-k
        heuristic ranks almost like the click model once values are large; the three compared:
        ``docs/results/tuning-notes.md``).
    :param learning_rate: Adam's step size for W.
    :param buffer_size: transitions kept in the replay buffer.
    :param batch_size: transitions per gradient step.
    :param target_update_interval: gradient steps between copies of W into its target network
        (values propagate one bootstrap step per copy; sessions are 20–40 steps long).
    :param start_epsilon: (and ``end_epsilon``) ε is per slot here: each slot of a slate is explored
        on its own.
    :param fine_tune_click_model: also train the click head by maximum likelihood of the observed
        choice given the replayed slate ...
    :param click_learning_rate: ... with Adam at this step size.
    """

    gamma: float = 0.99
    hidden_size: int = 128
    item_size: int = 32
    memory_size: int = 16
    no_repeats: bool = True
    slate_optimizer: str = "exact"
    learning_rate: float = 1e-3
    buffer_size: int = 200_000
    batch_size: int = 256
    target_update_interval: int = 100
    fine_tune_click_model: bool = True
    click_learning_rate: float = 1e-4

    def __post_init__(self) -> None:
        if self.slate_optimizer not in SLATE_OPTIMIZERS:
            raise ValueError(f"unknown slate_optimizer {self.slate_optimizer!r}; allowed: {', '.join(map(repr, SLATE_OPTIMIZERS))}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.memory_size < 0:
            raise ValueError(f"memory_size must be ≥ 0, got {self.memory_size}")


# ---------------------------------------------------------------- the decomposition


def slate_value(choice_logits: Tensor, click_values: Tensor, no_click_value: Tensor) -> Tensor:
    """``Q(s, A) = Σ_j P(j | s, A)·Q̄(s, i_j) + P(⊥ | s, A)·Q̄(s, ⊥)`` under the conditional logit.

    :param choice_logits: ``(B, k)`` slot utilities ``v(s, i_j) + position effect_j`` (−inf: an
        empty slot).
    :param click_values: ``(B, k)`` ``Q̄(s, i_j) = 1 + γ·W1(s, i_j)``.
    :param no_click_value: ``(B,)`` ``Q̄(s, ⊥) = γ·W0(s)``.
    :returns: ``(B,)``.
    """
    probabilities = slate_choice_probabilities(choice_logits)
    return (probabilities * click_values).sum(1) + (1.0 - probabilities.sum(1)) * no_click_value


def optimise_slates(utilities: Tensor, click_values: Tensor, no_click_value: Tensor, position_effects: Tensor,
                    method: str = "exact", allowed: Tensor | None = None) -> Tensor:
    """The slate of k distinct items (k = ``len(position_effects)``) of highest value under the
    decomposition, ``(B, k)`` int64 item ids, slot 0 first (see the module docstring).

    :param utilities: ``(B, N)`` v(s, i), the choice model's item utilities (click logits).
    :param click_values: ``(B, N)`` Q̄(s, i).
    :param no_click_value: ``(B,)`` Q̄(s, ⊥).
    :param position_effects: ``(k,)`` the utilities' position effects (decreasing, 0 first).
    :param method: ``"topk"``, ``"greedy"`` or ``"exact"``.
    :param allowed: ``(B, N)`` bool, the items a slate may hold (None: all); at least k per row.
    """
    if method not in SLATE_OPTIMIZERS:
        raise ValueError(f"unknown slate optimiser {method!r}; allowed: {', '.join(map(repr, SLATE_OPTIMIZERS))}")
    k = position_effects.shape[0]
    # Scale the attractions a_i = exp(v_i) by exp(−m) (m ≥ 0 the row's largest utility): the
    # rankings and values below do not change, and nothing overflows. The no-click option's
    # attraction, 1, scales to exp(−m).
    shift = utilities.max(1, keepdim=True).values.clamp(min=0.0)
    attraction = torch.exp(utilities - shift)
    null_attraction = torch.exp(-shift[:, 0])
    weights = torch.exp(position_effects)
    barred = None if allowed is None else ~allowed

    def best_k(scores: Tensor) -> Tensor:
        return torch.topk(scores if barred is None else scores.masked_fill(barred, float("-inf")), k, dim=1).indices

    def value(slates: Tensor) -> Tensor:
        a = attraction.gather(1, slates) * weights
        return ((no_click_value * null_attraction + (a * click_values.gather(1, slates)).sum(1))
                / (null_attraction + a.sum(1)))

    if method == "greedy":
        numerator, denominator = no_click_value * null_attraction, null_attraction
        taken = torch.zeros_like(utilities, dtype=torch.bool) if barred is None else barred.clone()
        slots = []
        for j in range(k):
            a = attraction * weights[j]
            candidate = (numerator[:, None] + a * click_values) / (denominator[:, None] + a)
            best = candidate.masked_fill(taken, float("-inf")).argmax(1)
            slots.append(best)
            taken[torch.arange(len(best), device=best.device), best] = True
            chosen_a = a.gather(1, best[:, None])[:, 0]
            numerator = numerator + chosen_a * click_values.gather(1, best[:, None])[:, 0]
            denominator = denominator + chosen_a
        return torch.stack(slots, 1)

    slates = best_k(attraction * click_values)  # the paper's top-k heuristic
    if method == "topk":
        return slates
    level = value(slates)
    for _ in range(_DINKELBACH_ITERATIONS):
        better = best_k(attraction * (click_values - level[:, None]))
        better_level = value(better)
        improved = better_level > level  # strictly: a tie keeps the slate it has
        if not bool(improved.any()):
            break
        slates = torch.where(improved[:, None], better, slates)
        level = torch.where(improved, better_level, level)
    return slates


class SlateSessionMemory(NamedTuple):
    """What :meth:`SlateQAgent.predict` remembers of each user's session (SB3's recurrent
    ``state``; pass it back on the next call).

    :param clicked: ``(B, N)`` float32, how often each item was clicked in the session so far.
    :param last_slate: ``(B, k)`` the slate shown last (−1: none yet).
    :param last_clicks: ``(B,)`` the session's clicks when it was shown (from the session clock),
        so the next observation's count says whether an item of it was clicked.
    :param last_choice: ``(B, k)`` the choice model's ``P(slot j | s, A, a click)`` for that slate:
        how a click is spread over its items when the bound env cannot say which one was chosen.
    :param shown: ``(B, N)`` bool, the items shown this session, that slate's included (what
        ``no_repeats`` keeps out of the next slates).
    """

    clicked: np.ndarray
    last_slate: np.ndarray
    last_clicks: np.ndarray
    last_choice: np.ndarray
    shown: np.ndarray


class _SlateReplayBuffer(TransitionRing):
    """A ring buffer of ``(s, memory, shown, slate, chosen slot, s′, terminated)`` on the training
    device; the memories after the step are the ones before plus the chosen item (the click counts)
    and the slate (the items shown), so they are stored once."""

    def __init__(self, capacity: int, observation_size: int, slate_size: int, num_items: int, memory: bool,
                 shown: bool, device: torch.device):
        super().__init__(capacity)
        self.observations = torch.zeros((capacity, observation_size), device=device)
        self.next_observations = torch.zeros((capacity, observation_size), device=device)
        self.slates = torch.zeros((capacity, slate_size), dtype=torch.int64, device=device)
        self.chosen = torch.zeros(capacity, dtype=torch.int64, device=device)
        self.terminated = torch.zeros(capacity, device=device)
        self.clicked = torch.zeros((capacity, num_items), dtype=torch.uint8, device=device) if memory else None
        self.shown = torch.zeros((capacity, num_items), dtype=torch.bool, device=device) if shown else None

    def add(self, observation: Tensor, clicked: Tensor, shown: Tensor, slates: Tensor, chosen: Tensor,
            next_observation: Tensor, terminated: Tensor) -> None:
        index = self._advance(len(chosen), chosen.device)
        self.observations[index], self.next_observations[index] = observation, next_observation
        self.slates[index], self.chosen[index], self.terminated[index] = slates, chosen, terminated
        if self.clicked is not None:
            self.clicked[index] = clicked.clamp(max=255).to(torch.uint8)
        if self.shown is not None:
            self.shown[index] = shown

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor | None, ...]:
        """``(s, memory, slate, chosen slot, item, s′, memory′, shown′, terminated)``: ``item`` the
        chosen item (the first slot's after no click); ``shown′`` the items shown in the session
        after the step; the memories are None without one."""
        index = self._draw(batch_size, generator, self.chosen.device)
        slates, chosen = self.slates[index], self.chosen[index]
        item = slates.gather(1, chosen.clamp(min=0)[:, None])[:, 0]
        clicked = next_clicked = None
        if self.clicked is not None:
            clicked = self.clicked[index].float()
            next_clicked = clicked.scatter_add(1, item[:, None], (chosen >= 0).float()[:, None])
        next_shown = None
        if self.shown is not None:
            next_shown = self.shown[index].scatter(1, slates, True)
        return (self.observations[index], clicked, slates, chosen, item, self.next_observations[index], next_clicked,
                next_shown, self.terminated[index])


class SlateQAgent(ClickModelValueAgent):
    """SlateQ: greedy slates under ``Q(s, A) = Σ_j P(j | s, A)·Q̄(s, i_j) + P(⊥ | s, A)·Q̄(s, ⊥)``
    (see the module docstring).

    :meth:`predict` returns ``(B, k)`` distinct items (one observation: ``(k,)``; k = 1: ``(B,)``
    and a scalar, the ``Discrete`` action) and keeps each user's session memory in SB3's recurrent
    ``state`` (a :class:`SlateSessionMemory`; ``state=None``: every user is fresh).

    :param env: the env it is made for (``obs_mode="encoded"``; its public ``encoder`` gives the
        click model, copied so that fine-tuning leaves the env's alone; its config the slate size
        and the position effect).
    :param config: hyper-parameters (:class:`SlateQConfig`).
    :param device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    """

    kind = "SlateQAgent"
    config_class = SlateQConfig

    def __init__(self, env: Any, config: SlateQConfig = SlateQConfig(), device: str = "auto"):
        super().__init__(env, config, device)

    def _check_env(self) -> None:
        self.slate_size = int(self.env_config.slate_size)
        if self.num_items < self.slate_size:
            raise ValueError(f"a slate of {self.slate_size} distinct items needs at least as many items, got {self.num_items}")

    def _value_options(self) -> dict[str, bool]:
        return {"item_no_click_value": False, "item_bias": False}  # SlateQ's item-independent null value

    def _build(self) -> None:
        """A fresh click model (a copy of the env's encoder), fresh W networks, the position effects."""
        super()._build()
        self.position_effects = slate_position_effects(self.slate_size, self.env_config.slate_position_decay, self.device)

    # ---------------------------------------------------------------- the decomposition

    def _item_values(self, observation: Tensor, clicked: Tensor | None, values: AfterstateValues,
                     item_features: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(Q̄(s, ·) (B, N), Q̄(s, ⊥) (B,))`` from the W network ``values``."""
        w = values(observation, clicked, item_features)
        gamma = self.config.gamma
        return 1.0 + gamma * w[:, 1], gamma * w[:, 0, 0]

    def _slate_logits(self, utilities: Tensor, slates: Tensor) -> Tensor:
        """Slot utilities ``v(s, i_j) + position effect_j`` of ``(B, k)`` slates from ``(B, N)`` utilities."""
        return utilities.gather(1, slates) + self.position_effects

    def _allowed(self, shown: Tensor | None) -> Tensor | None:
        """The items the next slate may hold, ``(B, N)`` bool (None: all): with ``no_repeats``, those
        not shown this session; all again for users with fewer than k of them left."""
        if shown is None or not self.config.no_repeats:
            return None
        allowed = ~shown
        return allowed | (allowed.sum(1, keepdim=True) < self.slate_size)

    def _greedy(self, observation: Tensor, clicked: Tensor | None, utilities: Tensor | None = None,
                allowed: Tensor | None = None) -> Tensor:
        if utilities is None:
            utilities = self.click_logits(observation)
        click_values, no_click_value = self._item_values(observation, clicked, self.values)
        return optimise_slates(utilities, click_values, no_click_value, self.position_effects, self.config.slate_optimizer,
                               allowed)

    def item_values(self, observation: Any, state: SlateSessionMemory | None = None) -> dict[str, np.ndarray]:
        """The parts of the decomposition, for diagnostics: ``utility`` v(s, i) and ``click_value``
        Q̄(s, i) = 1 + γ·W1(s, i), each ``(B, N)``, and ``no_click_value`` Q̄(s, ⊥) = γ·W0(s), ``(B,)``
        (one observation: ``(N,)`` and a scalar). ``state``: the session memory that
        :meth:`predict` returned with this observation's slate (None: none yet)."""
        batch, single = self._as_batch(observation)
        with torch.no_grad():
            x = self._tensor(batch)
            clicked = None if state is None else self._tensor(SlateSessionMemory(*state).clicked)
            click_values, no_click_value = self._item_values(x, clicked, self.values)
            parts = {"utility": self.click_logits(x), "click_value": click_values, "no_click_value": no_click_value}
        return {name: (v.cpu().numpy()[0] if single else v.cpu().numpy()) for name, v in parts.items()}

    def slate_values(self, observation: Any, slates: Any, state: SlateSessionMemory | None = None) -> np.ndarray:
        """``Q(s, A)`` of the given slates ``(B, k)`` (one observation: ``(k,)`` → a scalar); a
        repeated item's slot is empty, as in the env."""
        from recenv.dynamics import repeated_in_slate

        batch, single = self._as_batch(observation)
        slates = torch.as_tensor(np.asarray(slates), dtype=torch.int64, device=self.device).reshape(len(batch), -1)
        with torch.no_grad():
            x = self._tensor(batch)
            clicked = None if state is None else self._tensor(SlateSessionMemory(*state).clicked)
            click_values, no_click_value = self._item_values(x, clicked, self.values)
            logits = self._slate_logits(self.click_logits(x), slates).masked_fill(repeated_in_slate(slates), float("-inf"))
            values = slate_value(logits, click_values.gather(1, slates), no_click_value).cpu().numpy()
        return values[0] if single else values

    # ---------------------------------------------------------------- acting

    def _explore(self, slates: np.ndarray, epsilon: float, rng: np.random.Generator,
                 barred: np.ndarray | None = None) -> np.ndarray:
        """Each slot's item replaced, with probability ε, by a uniformly random item not in the
        slate (distinct replacements: the slate stays k distinct items) nor in ``barred`` ``(B, N)``
        (the items shown this session, with ``no_repeats``)."""
        if epsilon <= 0.0:
            return slates
        batch, k = slates.shape
        explore = rng.random((batch, k)) < epsilon
        if not explore.any():
            return slates
        keys = rng.random((batch, self.num_items))
        if barred is not None:
            keys[barred] = 2.0
        keys[np.arange(batch)[:, None], slates] = 2.0  # the slate's own (and barred) items come last
        candidates = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < self.num_items else np.argsort(keys, 1)[:, :k]
        fresh = np.take_along_axis(keys, candidates, 1) < 2.0  # fewer than k items left: keep the rest
        return np.where(explore & fresh, candidates, slates)

    def _recorded_items(self, batch: int) -> np.ndarray | None:
        """The item each user chose in the last slate, if any, from the bound env's public history:
        the last item ``recent_items()`` recorded, or with ``slate_history="shown"`` (the whole slate
        recorded) the one of its last k that ``recent_clicks()`` marks clicked (−1 for none); None
        when no env of this many users is bound."""
        if self.env is None or getattr(self.env, "num_envs", 1) != batch:
            return None
        items = np.atleast_2d(np.asarray(self.env.recent_items()))
        if getattr(self.env.config, "slate_history", "chosen") != "shown":
            return items[:, -1]
        clicks = np.atleast_2d(np.asarray(self.env.recent_clicks()))[:, -self.slate_size:]
        last = items[:, -self.slate_size:]
        return np.where(clicks.max(1) > 0, last[np.arange(len(last)), clicks.argmax(1)], -1)

    def _recall(self, state: Any, episode_start: Any, clicks_so_far: np.ndarray) -> np.ndarray:
        """The session click counts ``(B, N)`` before this step's slate: the previous ones plus the
        item of the last slate that was clicked, if any; zeros for users whose session starts.

        Whether the last slate got a click is in the session clock; which item it was, in the bound
        env's ``recent_items()`` (the history records the chosen item). Without a bound env (or if
        its item is not in the slate) the click is spread over the slate's items by the choice
        model's ``P(slot | a click)``."""
        n = len(clicks_so_far)
        if state is None:
            return np.zeros((n, self.num_items), dtype=np.float32)
        previous = SlateSessionMemory(*state)
        clicked = np.array(previous.clicked, dtype=np.float32, copy=True)
        if clicked.shape != (n, self.num_items):
            raise ValueError(f"state of shape {clicked.shape} is not this agent's memory of {n} users × {self.num_items} items")
        start = episode_starts(episode_start, n)
        last_slate = np.asarray(previous.last_slate).reshape(n, -1)
        users = np.flatnonzero(~start & (last_slate[:, 0] >= 0) & (clicks_so_far > np.asarray(previous.last_clicks)))
        if len(users):
            recorded = self._recorded_items(n)
            known = np.zeros(len(users), dtype=bool)
            if recorded is not None:
                known = (last_slate[users] == recorded[users, None]).any(1)
                clicked[users[known], recorded[users[known]]] += 1.0
            spread = users[~known]
            clicked[spread[:, None], last_slate[spread]] += np.asarray(previous.last_choice, dtype=np.float32).reshape(n, -1)[spread]
        clicked[start] = 0.0
        return clicked

    def _shown(self, state: Any, episode_start: Any, batch: int) -> np.ndarray:
        """The items shown this session before this step, ``(B, N)`` bool (a fresh copy): cleared for
        users whose session starts and, with ``no_repeats``, for those with fewer than k unshown left."""
        start = episode_starts(episode_start, batch)
        shown = (np.zeros((batch, self.num_items), dtype=bool) if state is None
                 else np.array(SlateSessionMemory(*state).shown, dtype=bool, copy=True).reshape(batch, self.num_items))
        shown[start] = False
        if self.config.no_repeats:
            shown[(~shown).sum(1) < self.slate_size] = False
        return shown

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        clicks_so_far = session_clock(batch, self.env_config.max_episode_steps)[:, 1]
        clicked = self._recall(state, episode_start, clicks_so_far)
        shown = self._shown(state, episode_start, len(batch))
        barred = shown if self.config.no_repeats else None
        with torch.no_grad():
            x = self._tensor(batch)
            utilities = self.click_logits(x)
            allowed = None if barred is None else torch.as_tensor(~barred, device=self.device)
            slates = self._greedy(x, self._tensor(clicked), utilities, allowed).cpu().numpy()
            if not deterministic:
                slates = self._explore(slates, self.config.end_epsilon, self.rng, barred)
            choice = slate_choice_probabilities(self._slate_logits(utilities, torch.as_tensor(slates, device=self.device)))
            choice = (choice / choice.sum(1, keepdim=True).clamp(min=1e-12)).cpu().numpy()
        shown[np.arange(len(batch))[:, None], slates] = True
        memory = SlateSessionMemory(clicked, slates.astype(np.int64), clicks_so_far, choice.astype(np.float32), shown)
        actions = slates[:, 0] if self.slate_size == 1 else slates
        return self._result(actions, single), memory

    # ---------------------------------------------------------------- learning

    # ---------------------------------------------------------------- learning (OffPolicyLearner's loop)

    progress_label = "SlateQ"

    def _check_training_env(self, env: Any) -> None:
        env_slate_size = int(unwrap_env(env).config.slate_size)
        if env_slate_size != self.slate_size:
            raise ValueError(f"this agent makes slates of {self.slate_size} items; the env shows {env_slate_size}")

    def _make_replay(self) -> _SlateReplayBuffer:
        c = self.config
        return _SlateReplayBuffer(c.buffer_size, self.observation_size, self.slate_size, self.num_items,
                                  c.memory_size > 0, c.no_repeats, self.device)

    def _start_collection(self, env: Any, observation: Any, num_envs: int) -> None:
        self._session_shown = torch.zeros((num_envs, self.num_items), dtype=torch.bool, device=self.device)  # items shown this session

    def _act(self, env: Any, observation: Any, epsilon: float) -> np.ndarray:
        """The greedy slate, each slot explored with probability ε."""
        shown = self._session_shown
        if self.config.no_repeats:
            shown[(~shown).sum(1) < self.slate_size] = False  # fewer than k unshown items left: start over
        with torch.no_grad():
            greedy = self._greedy(self._tensor(observation), self._clicked, allowed=self._allowed(shown)).cpu().numpy()
        return self._explore(greedy, epsilon, self.rng, shown.cpu().numpy() if self.config.no_repeats else None)

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        return actions if self.slate_size > 1 else actions[:, 0]

    def _store(self, observation, actions, reward, next_observation, terminated, truncated, info, valid) -> None:
        """Transitions ``(s, memory, shown, slate, chosen slot, s′, terminated)`` (public: the chosen
        slot, −1 for none); a user reset in this step made none and their memory starts over."""
        clicked, shown = self._clicked, self._session_shown
        chosen = np.asarray(info["chosen_slot"]) if self.slate_size > 1 else np.where(np.asarray(reward) > 0, 0, -1)
        keep = torch.as_tensor(valid, device=self.device)
        slate_tensor = torch.as_tensor(actions, device=self.device)
        chosen_tensor = torch.as_tensor(chosen, dtype=torch.int64, device=self.device)
        if valid.any():
            self._replay.add(self._tensor(observation)[keep], clicked[keep], shown[keep], slate_tensor[keep],
                             chosen_tensor[keep], self._tensor(next_observation)[keep], self._tensor(terminated)[keep, 0])
        rows = torch.arange(len(valid), device=self.device)
        click = keep & (chosen_tensor >= 0)
        if click.any():
            items = slate_tensor[rows[click], chosen_tensor[click]]
            clicked[rows[click], items] += 1.0
        shown[rows[:, None], slate_tensor] = True
        clicked[~keep], shown[~keep] = 0.0, False

    def _responses(self, batch):
        s, m, _, slot, item, _, _, _, term = batch
        return s, m, item, (slot >= 0).long(), term

    def _next_value(self, batch, epsilon: float) -> Tensor:
        """The target network's value of the online network's best slate at s′."""
        _, _, _, _, _, s_next, m_next, shown_next, _ = batch
        target_items = self._target_item_features()
        utilities = self.click_logits(s_next)
        best = self._greedy(s_next, m_next, utilities, self._allowed(shown_next))
        click_values, no_click_value = self._item_values(s_next, m_next, self.target_values, target_items)
        return slate_value(self._slate_logits(utilities, best), click_values.gather(1, best), no_click_value)

    def _click_loss(self, batch) -> Tensor:
        """Maximum likelihood of the choice (no click or a slot) given the replayed slate."""
        s, _, slate, slot, *_ = batch
        hidden = s[:, None, :-SESSION_CONTEXT_SIZE].expand(-1, self.slate_size, -1)
        logits = self.click_model.click_logits(hidden, self.item_embeddings[slate]) + self.position_effects
        logits = torch.cat([torch.zeros_like(logits[:, :1]), logits], 1)
        return nn.functional.cross_entropy(logits, slot + 1)

    # ---------------------------------------------------------------- persistence

    def _file_extras(self) -> dict[str, Any]:
        return {"slate_size": self.slate_size}

    def _check_file(self, path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
        if int(payload["slate_size"]) != self.slate_size:
            raise ValueError(f"{path} makes slates of {payload['slate_size']} items; this agent's env shows {self.slate_size}")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_items={self.num_items}, slate_size={self.slate_size}, "
                f"gamma={self.config.gamma}, slate_optimizer={self.config.slate_optimizer!r})")
