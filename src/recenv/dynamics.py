"""The user model (``docs/model.md``), as pure batch-first tensor functions.

Every function here works on a leading user axis ``B`` (torch, CPU or CUDA) and takes its
randomness as *explicit pre-drawn variates* (:class:`StepNoise`, :class:`PriorNoise`), in the
spirit of gymnax: a transition is a pure function of ``(state, action, noise, params)``. The
variates are drawn by :func:`sample_step_noise` / :func:`sample_prior_noise` from a
``torch.Generator`` that the caller owns. This makes every equation testable by hand and keeps
the scalar and the vector environment on exactly the same code.

Click on recommended item ``i`` (``z_i`` latent, ``c_i`` clickbait)::

    u_i      = β·<θ, z_i> − η·max(0, <s, z_i>) + κ·c_i + β0
    P(click) = σ(u_i)

After the response ``y``, in this order::

    1. satiation          s ← ρ·s + (y + ι·(1 − y))·z_i      (ι: impression fatigue)
    2. consumption drift  if y: θ ← normalize(θ + α·(z_i − θ))
    3. exogenous drift    θ ← normalize(θ + σ·ε),  ε ~ N(0, I/k)
    4. regime shift       with probability h: θ ← θ' ~ population prior  (satiation is kept)
    5. patience           b ← b − 1 − δ·(1 − y) + y·g·(q_i − c_i);  leaves when b ≤ 0

A slate ``(i_0, …, i_{k−1})`` (``slate_size=k``): the user picks at most one item by a conditional
logit over the slate and a no-click option of utility 0, with a position effect::

    u_j           = u_{i_j} − λ·log2(1 + j)         (−∞ for an item repeated from an earlier slot)
    P(choose j)   = exp(u_j) / (1 + Σ_j' exp(u_j'))       P(no click) = 1 / (1 + Σ_j' exp(u_j'))

then responds as above to the chosen item (y = 1), or with y = 0 to the top item when none was
chosen, except that step 1 adds ``y·z_chosen + (ι/k)·Σ z_j`` over the other distinct slate items.
For k = 1 this is exactly the one-item model. The myopic oracle's value is the best slate's
``P(click) = σ(logsumexp_j(top-k u sorted + position effect_j))``.

Browsing on their own (the warm-up's organic steps, and the organic histories that are compared with
real logs): the user sees a page of items, opens one drawn with probability ∝ exp(u) over the page
(the softmax of their click logits), clicks it with P = σ(u) and responds as above
(:func:`browse_page`).

Population prior: a user favours m ~ U{m_min..m_max} distinct topics, chosen uniformly;
``θ0 = normalize(Σ_j w_j·μ_j + τ·ε)`` with ``w ~ Dirichlet(1, ..., 1)`` over the chosen topics and
``ε ~ N(0, I/k)``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from recenv.catalog import Catalog
from recenv.params import UserModelParams

__all__ = [
    "ItemTable",
    "PriorNoise",
    "StepNoise",
    "UserState",
    "apply_response",
    "best_slate_click_probability",
    "browse_page",
    "click_logits",
    "click_logits_all",
    "interest_from_prior",
    "normalize",
    "repeated_in_slate",
    "sample_categorical",
    "sample_click",
    "sample_prior_noise",
    "sample_slate_choice",
    "sample_step_noise",
    "slate_choice_logits",
    "slate_choice_probabilities",
    "slate_position_effects",
    "slate_satiation_increment",
    "take_rows",
]

_EPS = 1e-8


def take_rows(table: Tensor, ids: Tensor) -> Tensor:
    """``table[ids]`` for ids in ``[0, len(table))``: the rows of a per-item (or per-topic) table,
    shaped ``ids.shape + table.shape[1:]``.

    The same values as advanced indexing (both copy rows), by ``index_select``, which is faster on
    CPU for a page of items per user (``(B, 50)`` ids into ``(N, k)`` latents; measured:
    docs/results/throughput.md, the timings themselves docs/results/tuning-notes.md), and the
    warm-up of every new user gathers such a page at each of its steps."""
    return torch.index_select(table, 0, ids.reshape(-1)).view(*ids.shape, *table.shape[1:])


@dataclass(frozen=True)
class ItemTable:
    """The catalog as tensors on one device; what the dynamics read about items.

    :param latents: ``(N, k)`` unit-norm item latents z.
    :param quality: ``(N,)`` q ∈ [0, 1].
    :param clickbait: ``(N,)`` c ∈ [0, 1].
    :param topics: ``(N,)`` int64 topic index.
    :param embeddings: ``(N, D)`` unit-norm text embeddings e (for observations).
    :param topic_centroids: ``(T, k)`` unit-norm topic centroids μ (for the population prior).
    """

    latents: Tensor
    quality: Tensor
    clickbait: Tensor
    topics: Tensor
    embeddings: Tensor
    topic_centroids: Tensor

    @classmethod
    def from_catalog(cls, catalog: Catalog, device: torch.device | str = "cpu") -> ItemTable:
        """The table of ``catalog`` on ``device``; shared by every env on the same catalog and device
        (it is read-only), so a thousand scalar envs do not hold a thousand copies."""
        device = torch.device(device)
        per_device = _ITEM_TABLES.setdefault(catalog, {})
        if device not in per_device:
            per_device[device] = cls._build(catalog, device)
        return per_device[device]

    @classmethod
    def _build(cls, catalog: Catalog, device: torch.device) -> ItemTable:
        def to(array: np.ndarray, dtype: torch.dtype) -> Tensor:
            return torch.as_tensor(np.array(array), dtype=dtype, device=device)

        return cls(
            latents=to(catalog.latents, torch.float32),
            quality=to(catalog.quality, torch.float32),
            clickbait=to(catalog.clickbait, torch.float32),
            topics=to(catalog.topics, torch.int64),
            embeddings=to(catalog.embeddings, torch.float32),
            topic_centroids=to(catalog.topic_centroids, torch.float32),
        )

    @property
    def num_items(self) -> int:
        return int(self.latents.shape[0])

    @property
    def latent_dim(self) -> int:
        return int(self.latents.shape[1])

    @property
    def num_topics(self) -> int:
        return int(self.topic_centroids.shape[0])


_ITEM_TABLES: weakref.WeakKeyDictionary[Catalog, dict[torch.device, ItemTable]] = weakref.WeakKeyDictionary()


@dataclass
class UserState:
    """The hidden state of B users. Never shown to agents (except the privileged oracle).

    :param interest: θ, ``(B, k)`` unit-norm.
    :param satiation: s, ``(B, k)``.
    :param patience: b, ``(B,)``; the user leaves when it reaches 0.
    :param step: t, ``(B,)`` int64, steps since the session started.
    """

    interest: Tensor
    satiation: Tensor
    patience: Tensor
    step: Tensor

    @classmethod
    def start(cls, interest: Tensor, params: UserModelParams) -> UserState:
        """Fresh users with interest θ0 = ``interest``, no satiation, full patience, t = 0."""
        batch = interest.shape[0]
        return cls(
            interest=interest,
            satiation=torch.zeros_like(interest),
            patience=torch.full((batch,), float(params.initial_patience), device=interest.device),
            step=torch.zeros(batch, dtype=torch.int64, device=interest.device),
        )

    def __len__(self) -> int:
        return int(self.interest.shape[0])

    def select(self, index: Tensor | slice) -> UserState:
        """The users at ``index`` (a copy)."""
        return UserState(**{f.name: getattr(self, f.name)[index].clone() for f in fields(self)})

    def assign(self, index: Tensor, other: UserState) -> None:
        """Overwrite the users at ``index`` with ``other`` in place."""
        for f in fields(self):
            getattr(self, f.name)[index] = getattr(other, f.name)

    @staticmethod
    def concat(states: list[UserState]) -> UserState:
        return UserState(**{f.name: torch.cat([getattr(s, f.name) for s in states]) for f in fields(UserState)})



@dataclass
class PriorNoise:
    """Variates for B draws from the population prior.

    :param topic_keys: ``(B, T)`` uniforms; the m smallest keys pick the favoured topics.
    :param count_uniform: ``(B,)`` uniform; picks m ∈ {m_min, ..., m_max}.
    :param weights: ``(B, m_max)`` Exp(1) variates; normalised over the first m → Dirichlet(1).
    :param normal: ``(B, k)`` standard normal, scaled by τ/√k.
    """

    topic_keys: Tensor
    count_uniform: Tensor
    weights: Tensor
    normal: Tensor

    def select(self, index: Tensor) -> PriorNoise:
        """The variates of the users at ``index``."""
        return PriorNoise(self.topic_keys[index], self.count_uniform[index], self.weights[index], self.normal[index])


@dataclass
class StepNoise:
    """Variates for one step of B users.

    :param click_uniform: ``(B,)``; click iff ``click_uniform < P(click)``.
    :param drift_normal: ``(B, k)`` standard normal; ε = drift_normal/√k.
    :param shift_uniform: ``(B,)``; regime shift iff ``shift_uniform < h``.
    :param prior: a prior draw per user, used where a regime shift happens (``None`` if h is off).
    """

    click_uniform: Tensor
    drift_normal: Tensor
    shift_uniform: Tensor
    prior: PriorNoise | None


def normalize(vectors: Tensor, fallback: Tensor | None = None) -> Tensor:
    """Rows scaled to unit norm; rows of (near) zero norm are replaced by ``fallback`` rows."""
    norms = torch.linalg.vector_norm(vectors, dim=-1, keepdim=True)
    unit = vectors / norms.clamp_min(_EPS)
    if fallback is None:
        return unit
    return torch.where(norms > 1e-6, unit, fallback)


def click_logits(state: UserState, item_ids: Tensor, items: ItemTable, params: UserModelParams) -> Tensor:
    """u_i for items shown to each user: ``item_ids`` ``(B,)`` or ``(B, P)`` → same shape."""
    latents = take_rows(items.latents, item_ids)
    shape = (item_ids.shape[0],) + (1,) * (item_ids.dim() - 1) + (items.latent_dim,)
    interest, satiation = state.interest.view(shape), state.satiation.view(shape)
    logits = params.affinity_weight * (interest * latents).sum(-1) + params.click_bias
    if params.satiation:
        logits = logits - params.satiation_weight * (satiation * latents).sum(-1).clamp_min(0.0)
    if params.clickbait:
        logits = logits + params.clickbait_weight * take_rows(items.clickbait, item_ids)
    return logits


def click_logits_all(state: UserState, items: ItemTable, params: UserModelParams,
                     workspace: list[Tensor] | None = None) -> Tensor:
    """u for every (user, item) pair → ``(B, N)``. σ of it is the privileged click probability.

    :param workspace: two ``(B, N)`` buffers to compute in, made on first use and reused while B
        stays (the returned tensor is then one of them: valid until the next call); None: fresh ones.
        At large B, fresh ``(B, N)`` temporaries every step cost more in page faults than in arithmetic.
    """
    shape = (state.interest.shape[0], items.latents.shape[0])
    if workspace is None:
        workspace = []
    if not workspace or workspace[0].shape != shape:
        workspace[:] = [torch.empty(shape, device=state.interest.device) for _ in range(2)]
    logits, satiated = workspace
    torch.mm(state.interest, items.latents.T, out=logits)
    logits.mul_(params.affinity_weight).add_(params.click_bias)
    if params.satiation:
        torch.mm(state.satiation, items.latents.T, out=satiated)
        logits.sub_(satiated.clamp_min_(0.0).mul_(params.satiation_weight))
    if params.clickbait:
        logits.add_(params.clickbait_weight * items.clickbait)
    return logits


def sample_click(logits: Tensor, click_uniform: Tensor) -> Tensor:
    """y = 1 iff ``click_uniform < σ(u)``; returns a float tensor of 0/1, shape of ``logits``."""
    return (click_uniform < torch.sigmoid(logits)).to(logits.dtype)


def sample_categorical(logits: Tensor, uniform: Tensor) -> Tensor:
    """One index per row of ``logits`` ``(B, N)``, drawn ∝ softmax, by inverting the CDF at
    ``uniform`` ``(B,)`` (much faster than ``torch.multinomial`` on CPU)."""
    cdf = torch.softmax(logits, dim=1).cumsum(dim=1)
    index = torch.searchsorted(cdf, (uniform * cdf[:, -1])[:, None].contiguous())[:, 0]
    return index.clamp_max(logits.shape[1] - 1)


def slate_position_effects(slate_size: int, position_decay: float, device: torch.device | str | None = None) -> Tensor:
    """``(k,)``: ``−λ·log2(1 + j)`` for slots j = 0..k−1, added to each slot's utility (0 for the first)."""
    slots = torch.arange(slate_size, dtype=torch.float32, device=device)
    return -position_decay * torch.log2(1.0 + slots)


def repeated_in_slate(slates: Tensor) -> Tensor:
    """``(B, k)`` bool: the slot shows an item already shown in an earlier slot of the same slate
    (such a slot is empty: it cannot be chosen and does not satiate)."""
    k = slates.shape[1]
    earlier = torch.ones(k, k, dtype=torch.bool, device=slates.device).tril(-1)  # [j, j'] = j' < j
    return ((slates[:, :, None] == slates[:, None, :]) & earlier).any(2)


def slate_choice_logits(state: UserState, slates: Tensor, items: ItemTable, params: UserModelParams,
                        position_effects: Tensor) -> Tensor:
    """Utilities of the slots of each user's slate ``(B, k)``: ``u_i + position effect``, −inf for
    a repeated item (``docs/model.md`` §2, "Slates")."""
    logits = click_logits(state, slates, items, params) + position_effects
    return logits.masked_fill(repeated_in_slate(slates), float("-inf"))


def slate_choice_probabilities(logits: Tensor) -> Tensor:
    """The conditional logit over a slate and a no-click option of utility 0: ``(B, k)`` slot
    utilities → ``P(slot j chosen) = exp(u_j) / (1 + Σ_j' exp(u_j'))`` ``(B, k)`` (the rest, to 1,
    is no click). For k = 1 it is σ(u), the click model of one item."""
    with_no_click = torch.cat([torch.zeros_like(logits[:, :1]), logits], 1)
    return torch.softmax(with_no_click, 1)[:, 1:]


def sample_slate_choice(probabilities: Tensor, uniform: Tensor) -> Tensor:
    """The chosen slot of each user, ``(B,)`` int64, −1 for no click: the first slot whose
    cumulative probability exceeds ``uniform`` ``(B,)`` (so for k = 1: a click iff ``uniform < σ(u)``)."""
    chosen = (probabilities.cumsum(1) <= uniform[:, None]).sum(1)
    return torch.where(chosen == probabilities.shape[1], -1, chosen)


def best_slate_click_probability(all_logits: Tensor, position_effects: Tensor) -> Tensor:
    """The myopic oracle's value: the highest P(a click) any slate of k distinct items gives, ``(B,)``.

    ``P(click) = S / (1 + S)`` with ``S = Σ_j exp(u_j + position effect_j)`` grows with S, and S is
    largest with the k items of highest utility, the best in the first slot (the effects decrease
    with the slot): ``σ(logsumexp_j(top-k u sorted + effects))``. For k = 1 it is ``σ(max u)``.
    """
    top = torch.topk(all_logits, position_effects.shape[0], dim=1).values  # sorted, highest first
    return torch.sigmoid(torch.logsumexp(top + position_effects, 1))


def interest_from_prior(noise: PriorNoise, items: ItemTable, params: UserModelParams) -> Tensor:
    """θ drawn from the population prior, from its variates → ``(B, k)`` unit-norm."""
    num_topics = items.num_topics
    most = min(params.max_topics_per_user, num_topics)
    fewest = min(params.min_topics_per_user, most)
    chosen = torch.topk(noise.topic_keys, most, dim=1, largest=False).indices  # (B, most) distinct topics
    count = fewest + torch.floor(noise.count_uniform * (most - fewest + 1)).long().clamp_max(most - fewest)
    keep = torch.arange(most, device=count.device)[None, :] < count[:, None]
    weights = noise.weights[:, :most] * keep
    weights = weights / weights.sum(1, keepdim=True)
    mixture = (weights[:, :, None] * take_rows(items.topic_centroids, chosen)).sum(1)
    scale = params.prior_noise_scale / np.sqrt(items.latent_dim)
    return normalize(mixture + scale * noise.normal, fallback=take_rows(items.topic_centroids, chosen[:, 0]))


def sample_prior_noise(generator: torch.Generator, batch: int, items: ItemTable, params: UserModelParams) -> PriorNoise:
    device = items.latents.device
    return PriorNoise(
        topic_keys=torch.rand(batch, items.num_topics, generator=generator, device=device),
        count_uniform=torch.rand(batch, generator=generator, device=device),
        weights=torch.empty(batch, params.max_topics_per_user, device=device).exponential_(generator=generator),
        normal=torch.randn(batch, items.latent_dim, generator=generator, device=device),
    )


def sample_step_noise(generator: torch.Generator, batch: int, items: ItemTable, params: UserModelParams) -> StepNoise:
    device = items.latents.device
    click_uniform = torch.rand(batch, generator=generator, device=device)
    if params.exogenous_drift:
        drift_normal = torch.randn(batch, items.latent_dim, generator=generator, device=device)
    else:
        drift_normal = torch.zeros(batch, items.latent_dim, device=device)
    if params.regime_shifts:
        shift_uniform = torch.rand(batch, generator=generator, device=device)
        prior = sample_prior_noise(generator, batch, items, params)
    else:
        shift_uniform = torch.ones(batch, device=device)
        prior = None
    return StepNoise(click_uniform, drift_normal, shift_uniform, prior)


def apply_response(
    state: UserState,
    item_ids: Tensor,
    clicks: Tensor,
    noise: StepNoise,
    items: ItemTable,
    params: UserModelParams,
    satiation_increment: Tensor | None = None,
) -> tuple[UserState, Tensor]:
    """Steps 1–5 above for users shown ``item_ids`` ``(B,)`` who responded ``clicks`` ``(B,)`` (0/1).

    :param satiation_increment: ``(B, k)`` what this step adds to satiation, in place of
        ``(y + ι·(1−y))·z_i`` (a slate's: :func:`slate_satiation_increment`; ``item_ids`` is then
        the item the user chose, or any shown item where there was no click).
    :return: the new state (a new object; the input is not modified) and the ``(B,)`` bool mask of
        users whose interest was redrawn by a regime shift.
    """
    latents = take_rows(items.latents, item_ids)
    clicked = clicks[:, None] > 0.5
    interest, satiation, patience = state.interest, state.satiation, state.patience

    if params.satiation:
        if satiation_increment is None:
            worn = clicks
            if params.impression_fatigue:
                worn = clicks + params.impression_fatigue_weight * (1.0 - clicks)
            satiation_increment = worn[:, None] * latents
        satiation = params.satiation_decay * satiation + satiation_increment
    if params.consumption_drift:
        pulled = normalize(interest + params.consumption_drift_rate * (latents - interest), fallback=interest)
        interest = torch.where(clicked, pulled, interest)
    if params.exogenous_drift:
        step = params.exogenous_drift_scale / np.sqrt(items.latent_dim)
        interest = normalize(interest + step * noise.drift_normal, fallback=interest)
    if params.regime_shifts and noise.prior is not None:
        shifted = noise.shift_uniform < params.regime_shift_prob
        # The prior draw is only worth computing when someone shifts (rare: h is small). Its
        # variates were drawn either way, so the random stream never depends on the outcome.
        if bool(shifted.any()):
            movers = shifted.nonzero()[:, 0]
            interest = interest.index_put((movers,), interest_from_prior(noise.prior.select(movers), items, params))
    else:
        shifted = torch.zeros_like(clicked[:, 0])
    if params.patience:
        clickbait = take_rows(items.clickbait, item_ids) if params.clickbait else 0.0
        gain = params.quality_patience_gain * (take_rows(items.quality, item_ids) - clickbait)
        patience = patience - 1.0 - params.no_click_patience_cost * (1.0 - clicks) + clicks * gain
    return UserState(interest, satiation, patience, state.step + 1), shifted


def slate_satiation_increment(slates: Tensor, chosen: Tensor, items: ItemTable, params: UserModelParams) -> Tensor:
    """What a slate adds to satiation, ``(B, k_latent)``: ``y·z_chosen + (ι/k)·Σ z_j`` over the
    slate's other (distinct) items — a screen of k impressions wears like one impression, spread
    over what it showed. For k = 1: ``(y + ι·(1−y))·z``, as one item.

    :param chosen: ``(B,)`` the chosen slot, −1 for none.
    """
    k = slates.shape[1]
    weights = torch.zeros(slates.shape, device=slates.device)
    if params.impression_fatigue:
        weights = weights + params.impression_fatigue_weight / k
        weights = weights.masked_fill(repeated_in_slate(slates), 0.0)
    clicked = chosen >= 0
    rows = torch.arange(len(chosen), device=slates.device)
    weights[rows[clicked], chosen[clicked]] = 1.0
    return (weights[:, :, None] * take_rows(items.latents, slates)).sum(1)


def browse_page(
    state: UserState,
    page: Tensor,
    page_logits: Tensor,
    choice_uniform: Tensor,
    noise: StepNoise,
    items: ItemTable,
    params: UserModelParams,
    browsing: Tensor | None = None,
) -> tuple[Tensor, Tensor, UserState]:
    """One step of users browsing on their own: each sees ``page`` ``(B, P)`` (with its click logits
    ``page_logits`` ``(B, P)``), opens the item drawn ∝ softmax of the logits at ``choice_uniform``
    ``(B,)``, clicks it with P = σ(u) and responds (steps 1–5).

    :param browsing: ``(B,)`` bool; users where it is False are shown the page's first item instead
        of choosing (the warm-up's uniformly random item). ``None``: everyone browses.
    :return: the shown item ids ``(B,)``, the clicks ``(B,)`` (0/1) and the new state.
    """
    choice = sample_categorical(page_logits, choice_uniform)
    if browsing is not None:
        choice = torch.where(browsing, choice, torch.zeros_like(choice))
    shown = page.gather(1, choice[:, None])[:, 0]
    click = sample_click(page_logits.gather(1, choice[:, None])[:, 0], noise.click_uniform)
    new_state, _ = apply_response(state, shown, click, noise, items, params)
    return shown, click, new_state
