"""A batch of simulated users: their hidden state, recent history, warm-up, and one generator.

:class:`UserSimulator` is the engine under both :class:`recenv.env.DriftingUserEnv` (B = 1) and
:class:`recenv.vector_env.DriftingUserVectorEnv` (B = num_envs), and under the offline log
collection (:mod:`recenv.offline.logs`): the environments differ only in how they validate input
and present output, never in the dynamics.

Warm-up (``docs/model.md`` §3): a fresh user arrives with a short past (``warmup_steps``
interactions) generated through the same dynamics by a logging policy that, with probability
``warmup_organic_share``, lets the user browse on their own (:func:`recenv.dynamics.browse_page`: a
page of ``warmup_page_size`` random items, one opened ∝ exp(u)) and otherwise shows a uniformly
random item. After the warm-up the session starts: patience is refilled to ``b0`` and ``t = 0``;
satiation and any drift that happened during the warm-up carry over.

Fresh users come from a *pool* generated in batches (at least ``pool_size`` at a time), because
simulating the warm-up of one user at a time costs as much as that of a hundred. The pool is drawn
from the simulator's own generator, so a seed still fixes everything. An observation builder that
summarizes the past (the LSTM encoder) does so for the whole batch when it is drawn
(:attr:`UserSimulator.summarize_warmup`), for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from recenv.catalog import Catalog
from recenv.config import EnvConfig
from recenv.dynamics import (
    ItemTable,
    UserState,
    apply_response,
    best_slate_click_probability,
    browse_page,
    click_logits,
    click_logits_all,
    interest_from_prior,
    sample_click,
    sample_prior_noise,
    sample_slate_choice,
    sample_step_noise,
    slate_choice_logits,
    slate_choice_probabilities,
    slate_position_effects,
    slate_satiation_increment,
    take_rows,
)
from recenv.params import UserModelParams

__all__ = ["StepOutcome", "UserSimulator", "Warmup", "resolve_device"]


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA if available, else CPU; anything else is checked to exist."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {device!r}; allowed: 'cpu', 'cuda', 'cuda:N' or 'auto'") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available here; use 'cpu' or 'auto'")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported; allowed: 'cpu', 'cuda', 'cuda:N' or 'auto'")
    return resolved


@dataclass
class Warmup:
    """The past interactions of freshly reset users: ``items`` ``(n, W)`` int64, ``clicks`` ``(n, W)``.

    ``summary``: what :attr:`UserSimulator.summarize_warmup` made of these pasts when the pool was
    filled (the LSTM encoder's state, ``(n, ...)``), or None (no summarizer, or users not from the
    pool: a persona's)."""

    items: Tensor
    clicks: Tensor
    summary: Tensor | None = None

    def rows(self, rows: slice) -> Warmup:
        return Warmup(self.items[rows], self.clicks[rows], None if self.summary is None else self.summary[rows])

    @staticmethod
    def concat(parts: Sequence[Warmup]) -> Warmup:
        summaries = [p.summary for p in parts]
        summary = None if any(s is None for s in summaries) else torch.cat(summaries)
        return Warmup(torch.cat([p.items for p in parts]), torch.cat([p.clicks for p in parts]), summary)


@dataclass
class StepOutcome:
    """What one step produced, per user (all ``(B,)``).

    :param click: 1.0 if the user clicked the shown item, else 0.0 (the reward).
    :param click_probability: P(click) of the shown item, before the response.
    :param best_click_probability: max over items of P(click) at this step (the myopic oracle).
    :param regime_shift: whether the user's interest was redrawn (or a scripted shift applied).
    :param topic: topic index of the shown item.
    :param patience: patience after the step.
    :param terminated: the user left (patience ran out).
    :param recorded_item: the item the history records: the shown item; of a slate, the chosen one,
        or the first slot's when none was chosen.
    :param chosen_slot: slates only: the chosen slot, −1 for no click (``None`` for one item).
    :param slot_click_probability: slates only: ``(B, k)`` P(each slot is chosen) under the choice model.
    :param history_items: ``(B, r)`` the interactions this step appended to the history, oldest
        first: ``recorded_item`` (r = 1), or with ``slate_history="shown"`` the slate (r = k).
    :param history_clicks: ``(B, r)`` their clicks (1 on the chosen slot).

    With a slate, ``click_probability`` is P(a click on the slate) and ``best_click_probability``
    the best slate's; ``topic`` is the recorded item's.
    """

    click: Tensor
    click_probability: Tensor
    best_click_probability: Tensor
    regime_shift: Tensor
    topic: Tensor
    patience: Tensor
    terminated: Tensor
    recorded_item: Tensor
    history_items: Tensor
    history_clicks: Tensor
    chosen_slot: Tensor | None = None
    slot_click_probability: Tensor | None = None


@dataclass
class _FreshUsers:
    state: UserState
    warmup: Warmup

    def __len__(self) -> int:
        return len(self.state)

    def split(self, n: int) -> tuple[_FreshUsers, _FreshUsers]:
        head = _FreshUsers(self.state.select(slice(0, n)), self.warmup.rows(slice(0, n)))
        tail = _FreshUsers(self.state.select(slice(n, None)), self.warmup.rows(slice(n, None)))
        return head, tail

    @staticmethod
    def concat(parts: list[_FreshUsers]) -> _FreshUsers:
        return _FreshUsers(
            UserState.concat([p.state for p in parts]),
            Warmup.concat([p.warmup for p in parts]),
        )


class UserSimulator:
    """B users simulated as one batch of tensors, as an :class:`recenv.EnvConfig` describes them.

    :param config: what is simulated (validated there): the catalog (:meth:`recenv.EnvConfig.resolved_catalog`),
        the user model (:attr:`recenv.EnvConfig.user_model`), the warm-up, the history kept
        (``history_length``, ``slate_history``), the slates, the pool of fresh users and the device.
    :param num_users: B ≥ 1.

    Resolved from ``config`` once: :attr:`catalog`, :attr:`user_model`, :attr:`device` and
    :attr:`pool_size` (``config.user_pool_size``, default B within [32, 1024]).
    """

    def __init__(self, config: EnvConfig, num_users: int):
        if isinstance(num_users, bool) or not isinstance(num_users, int) or num_users < 1:
            raise ValueError(f"num_users = {num_users!r} is not allowed; expected an int >= 1")
        self.config = config
        self.catalog: Catalog = config.resolved_catalog()
        self.user_model: UserModelParams = config.user_model
        self.num_users = num_users
        self.history_length = history_length = config.history_length
        self.device = resolve_device(config.device)
        # Warm-ups cost least per user in batches of about a thousand (measured on CPU).
        self.pool_size = config.user_pool_size if config.user_pool_size is not None else min(max(32, num_users), 1024)
        self.items = ItemTable.from_catalog(self.catalog, self.device)
        self.slate_size = config.slate_size
        self.records_shown = config.slate_history == "shown"
        self.position_effects = slate_position_effects(config.slate_size, config.slate_position_decay, self.device)
        self.generator = torch.Generator(device=self.device)
        self.state: UserState | None = None
        # The last K interactions of each user (the warm-up's, then the session's), oldest first.
        self.recent_items = torch.full((num_users, history_length), -1, dtype=torch.int64, device=self.device)
        self.recent_clicks = torch.zeros((num_users, history_length), device=self.device)
        # Clicks since the session began (the session step itself is ``state.step``): public, a
        # recommender counts them too.
        self.session_clicks = torch.zeros(num_users, device=self.device)
        self.warmup = Warmup(
            torch.full((num_users, config.warmup_steps), -1, dtype=torch.int64, device=self.device),
            torch.zeros((num_users, config.warmup_steps), device=self.device),
        )
        self._pool: _FreshUsers | None = None
        # Set by an observation builder that summarizes each user's past (the LSTM encoder): called
        # on every new batch of the pool, so that the pasts are encoded in large batches, not a few
        # users at a time as they are reset.
        self.summarize_warmup: Callable[[Warmup], Tensor] | None = None
        self._best_workspace: list[Tensor] = []  # the (B, N) buffers of the best P(click), reused every step
        self._shift_steps = torch.full((num_users, 0), -1, dtype=torch.int64, device=self.device)
        self._shift_interests = torch.zeros((num_users, 0, self.items.latent_dim), device=self.device)
        # Counterfactuals: the session step whose random regime shift does not happen, per user (−1: none).
        self._suppressed_shift_step = torch.full((num_users,), -1, dtype=torch.int64, device=self.device)

    # ---------------------------------------------------------------- seeding and resets

    def seed(self, seed: int) -> None:
        """Re-seed the generator; drops pooled users so the seed alone decides what follows."""
        self.generator.manual_seed(int(seed))
        self._pool = None

    def seed_from(self, np_random: np.random.Generator) -> None:
        """Seed from a numpy generator (an env's ``np_random``): one draw of it decides everything after."""
        self.seed(int(np_random.integers(2**63 - 1)))

    def _all_users(self) -> Tensor:
        return torch.arange(self.num_users, device=self.device)

    def reset(
        self,
        index: Tensor | None = None,
        persona: Tensor | None = None,
        shifts: Sequence[tuple[int, Tensor]] = (),
    ) -> Warmup:
        """Replace the users at ``index`` (default: all) with fresh ones.

        :param persona: ``(k,)`` initial interest for all of them instead of a prior draw.
        :param shifts: scripted shifts ``(step, interest (k,))``: at that session step the user's
            interest is set to the given latent.
        :return: the warm-up each of them arrived with.
        """
        index = self._all_users() if index is None else index
        n = int(index.shape[0])
        if persona is None:
            fresh = self._take_from_pool(n)
        else:
            interest = persona.to(self.device, torch.float32).expand(n, -1).clone()
            fresh = self._warm_up(interest)
        if self.state is None:
            if n != self.num_users:
                raise RuntimeError("the first reset must reset every user")
            self.state = fresh.state
        else:
            self.state.assign(index, fresh.state)
        self._set_history(index, fresh.warmup)
        self.session_clicks[index] = 0.0
        self.warmup.items[index], self.warmup.clicks[index] = fresh.warmup.items, fresh.warmup.clicks
        self._set_shifts(index, shifts)
        self._suppressed_shift_step[index] = -1
        return fresh.warmup

    def _take_from_pool(self, n: int) -> _FreshUsers:
        if self._pool is None or len(self._pool) < n:
            needed = n - (0 if self._pool is None else len(self._pool))
            batch = max(needed, self.pool_size)
            prior = sample_prior_noise(self.generator, batch, self.items, self.user_model)
            generated = self._warm_up(interest_from_prior(prior, self.items, self.user_model))
            if self.summarize_warmup is not None:  # e.g. the LSTM encoder: once for the whole batch
                generated.warmup.summary = self.summarize_warmup(generated.warmup)
            self._pool = generated if self._pool is None else _FreshUsers.concat([self._pool, generated])
        taken, self._pool = self._pool.split(n)
        return taken

    def _warm_up(self, interest: Tensor) -> _FreshUsers:
        """Run the logging policy for W steps from interest θ0; return the users at session start."""
        params, items = self.user_model, self.items
        n, w = int(interest.shape[0]), self.config.warmup_steps
        state = UserState.start(interest, params)
        shown = torch.empty((n, w), dtype=torch.int64, device=self.device)
        clicks = torch.empty((n, w), device=self.device)
        for t in range(w):
            browsing = torch.rand(n, generator=self.generator, device=self.device) < self.config.warmup_organic_share
            page = torch.randint(items.num_items, (n, self.config.warmup_page_size), generator=self.generator, device=self.device)
            choice_uniform = torch.rand(n, generator=self.generator, device=self.device)
            noise = sample_step_noise(self.generator, n, items, params)
            # The first slot of the page doubles as the random item shown to users who do not browse.
            item_ids, click, state = browse_page(
                state, page, click_logits(state, page, items, params), choice_uniform, noise, items, params, browsing
            )
            shown[:, t], clicks[:, t] = item_ids, click
        state.patience = torch.full_like(state.patience, float(params.initial_patience))
        state.step = torch.zeros_like(state.step)
        return _FreshUsers(state, Warmup(shown, clicks))

    def _set_history(self, index: Tensor, warmup: Warmup) -> None:
        k, w = self.history_length, self.config.warmup_steps
        n = int(index.shape[0])
        items = torch.full((n, k), -1, dtype=torch.int64, device=self.device)
        clicks = torch.zeros((n, k), device=self.device)
        keep = min(k, w)
        if keep:
            items[:, k - keep:] = warmup.items[:, w - keep:]
            clicks[:, k - keep:] = warmup.clicks[:, w - keep:]
        self.recent_items[index] = items
        self.recent_clicks[index] = clicks

    def _set_shifts(self, index: Tensor, shifts: Sequence[tuple[int, Tensor]]) -> None:
        count = len(shifts)
        if count > self._shift_steps.shape[1]:
            extra = count - self._shift_steps.shape[1]
            self._shift_steps = torch.cat(
                [self._shift_steps, torch.full((self.num_users, extra), -1, dtype=torch.int64, device=self.device)], 1
            )
            self._shift_interests = torch.cat(
                [self._shift_interests, torch.zeros((self.num_users, extra, self.items.latent_dim), device=self.device)], 1
            )
        if self._shift_steps.shape[1] == 0:
            return
        self._shift_steps[index] = -1
        for slot, (step, interest) in enumerate(shifts):
            self._shift_steps[index, slot] = int(step)
            self._shift_interests[index, slot] = interest.to(self.device, torch.float32)

    # ---------------------------------------------------------------- stepping

    def require_state(self) -> UserState:
        """The users' state; a clear error before the first reset."""
        if self.state is None:
            raise RuntimeError("the simulator has no users yet; call reset() first")
        return self.state

    def step(self, item_ids: Tensor, best_click_probability: bool = True) -> StepOutcome:
        """Show item ``item_ids[b]`` to user ``b`` (``(B,)`` int64, already validated), or, with
        slates, slate ``item_ids[b]`` (``(B, k)``).

        :param best_click_probability: also compute the best P(click) over all items (the myopic
            oracle's, for evaluation; a tenth of a step's cost at 500 items); False: NaN instead.
            No random draw depends on it."""
        state = self.require_state()
        params, items = self.user_model, self.items
        noise = sample_step_noise(self.generator, self.num_users, items, params)
        suppressed = self._suppressed_shift_step == state.step
        if bool(suppressed.any()):
            # The variates are drawn as always, so every later draw is the same as without suppression.
            noise.shift_uniform = torch.where(suppressed, torch.ones_like(noise.shift_uniform), noise.shift_uniform)
        chosen = slot_probability = increment = None
        if item_ids.dim() == 1:
            logits = click_logits(state, item_ids, items, params)
            click = sample_click(logits, noise.click_uniform)
            click_probability = torch.sigmoid(logits)
            recorded = item_ids
        else:  # a slate: the same uniform decides the choice (common random numbers across k)
            slot_probability = slate_choice_probabilities(
                slate_choice_logits(state, item_ids, items, params, self.position_effects))
            chosen = sample_slate_choice(slot_probability, noise.click_uniform)
            click = (chosen >= 0).to(slot_probability.dtype)
            click_probability = slot_probability.sum(1)
            recorded = item_ids.gather(1, chosen.clamp_min(0)[:, None])[:, 0]
            if params.satiation:
                increment = slate_satiation_increment(item_ids, chosen, items, params)
        if best_click_probability:
            all_logits = click_logits_all(state, items, params, self._best_workspace)
            if chosen is None:  # max σ(u) = σ(max u): one sigmoid per user instead of one per item.
                best = torch.sigmoid(all_logits.amax(1))
            else:
                best = best_slate_click_probability(all_logits, self.position_effects)
        else:
            best = torch.full_like(click, float("nan"))
        new_state, shifted = apply_response(state, recorded, click, noise, items, params, satiation_increment=increment)
        if self._shift_steps.shape[1]:
            due = self._shift_steps == new_state.step[:, None]  # (B, S)
            if bool(due.any()):
                hit = due.any(1)
                target = (due[:, :, None] * self._shift_interests).sum(1)
                new_state.interest = torch.where(hit[:, None], target, new_state.interest)
                shifted = shifted | hit
        self.state = new_state
        if chosen is not None and self.records_shown:  # the whole slate, click 1 on the chosen slot
            history_items = item_ids
            history_clicks = (torch.arange(item_ids.shape[1], device=self.device) == chosen[:, None]).to(click.dtype)
        else:
            history_items, history_clicks = recorded[:, None], click[:, None]
        self._append_history(history_items, history_clicks)
        self.session_clicks = self.session_clicks + click
        terminated = new_state.patience <= 0 if params.patience else torch.zeros_like(shifted)
        return StepOutcome(
            click=click,
            click_probability=click_probability,
            best_click_probability=best,
            regime_shift=shifted,
            topic=take_rows(items.topics, recorded),
            patience=new_state.patience.clone(),  # the state is updated in place on resets
            terminated=terminated,
            recorded_item=recorded,
            history_items=history_items,
            history_clicks=history_clicks,
            chosen_slot=chosen,
            slot_click_probability=slot_probability,
        )

    def _append_history(self, items: Tensor, clicks: Tensor) -> None:
        """Append ``(B, r)`` interactions to the last K (the oldest r drop out)."""
        r, k = items.shape[1], self.history_length
        if r >= k:
            self.recent_items, self.recent_clicks = items[:, r - k:].clone(), clicks[:, r - k:].clone()
        else:
            self.recent_items = torch.cat([self.recent_items[:, r:], items], 1)
            self.recent_clicks = torch.cat([self.recent_clicks[:, r:], clicks], 1)

    def suppress_regime_shifts(self, steps: Tensor) -> None:
        """Counterfactuals: user ``b``'s random regime shift at session step ``steps[b]`` (the
        ``step()`` call made at that step) does not happen; −1 suppresses nothing. Every random
        draw stays as it would have been, so the suppressed run differs from the factual one only
        through that shift (common random numbers). Cleared when the user is reset."""
        steps = torch.as_tensor(steps, dtype=torch.int64, device=self.device)
        if steps.shape != (self.num_users,):
            raise ValueError(f"steps must have shape ({self.num_users},), got {tuple(steps.shape)}")
        self._suppressed_shift_step = steps.clone()

    def session_steps(self) -> Tensor:
        """Steps since each user's session began, ``(B,)`` int64: public (the session clock)."""
        return self.require_state().step

    def click_probabilities(self) -> Tensor:
        """Privileged: the true P(click) of every item for every user now, ``(B, N)``."""
        return torch.sigmoid(click_logits_all(self.require_state(), self.items, self.user_model))
