"""Behaviour policies that log interactions, and :func:`make_logs`, the logs recenv trains on.

A log that trains anything an agent uses must be one a deployed recommender could have recorded.
The policies here (except the declared privileged one) therefore receive a
:class:`recenv.offline.logs.LoggingView` from :func:`recenv.offline.logs.collect_logs`: the users'
record of shown items and clicks, the session clock and the catalog's public side; no click
probability, no user state, no quality or clickbait. Every policy reports the exact probability
with which it showed each item (its *propensity*), so training can weight by inverse propensity.

:func:`make_logs` is how a recommender's logs come about, in two rounds (``docs/model.md`` §5):

1. **Exploration** (``EXPLORATION_SHARE`` of the users): :class:`DeployedPolicy` without a model or
   counts: a uniformly random item 70 % of the time, otherwise one of the user's last
   ``REPEAT_WINDOW`` items again.
2. **Deployment** (the rest): :class:`DeployedPolicy` with popularity taken from the click counts
   of round 1 and a first model — the content profile (:class:`ContentProfileScorer`, cosine
   between an item's embedding and the mean embedding of the user's recent clicks), which needs no
   training: 30 % random, 20 % popular, 20 % repeat, 30 % the model's greedy choice (an
   ε-greedy deployment of the model with ε = 0.7, spread over three exploration sources).

:class:`MixedBehaviourPolicy`, the policy recenv's logs came from before, reads the simulator's
true click probabilities (``privileged = True``); it is kept to measure what such logs do to a
model, never used by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from recenv.config import EnvConfig
from recenv.encoder import NextClickLSTM
from recenv.offline.logs import InteractionLog, LoggingView, collect_logs
from recenv.simulator import UserSimulator

__all__ = [
    "EXPLORATION_SHARE",
    "REPEAT_WINDOW",
    "ContentProfileScorer",
    "DeployedPolicy",
    "LSTMScorer",
    "MixedBehaviourPolicy",
    "UniformRandomPolicy",
    "click_counts",
    "make_logs",
]

REPEAT_WINDOW = 5
"""How far back the repeat behaviour looks: one of the user's last five items, uniformly."""

EXPLORATION_SHARE = 0.2
"""Share of :func:`make_logs`' users logged in its first round (exploration, no counts, no model)."""


def _draw_repeats(recent_items: Tensor, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The repeat behaviour's draw: each user's last :data:`REPEAT_WINDOW` items ``(B, R)`` (−1
    before the history began), how many of them exist ``(B,)``, and one of them drawn uniformly
    ``(B,)`` (meaningless for a user with none; one uniform per user either way)."""
    recent = recent_items[:, -REPEAT_WINDOW:].cpu().numpy()
    count = (recent >= 0).sum(1)
    pick = np.minimum((rng.random(len(recent)) * np.maximum(count, 1)).astype(np.int64), np.maximum(count - 1, 0))
    column = np.minimum(recent.shape[1] - count + pick, recent.shape[1] - 1)
    return recent, count, recent[np.arange(len(recent)), column]


class UniformRandomPolicy:
    """A uniformly random item for every user (``slate_size`` k > 1: k of them, each slot drawn
    independently); propensity 1/N."""

    privileged = False

    def __init__(self, seed: int = 0, slate_size: int = 1):
        self.rng = np.random.default_rng(seed)
        self.slate_size = slate_size
        self.name = "uniform random" if slate_size == 1 else f"uniform random slates of {slate_size}"

    def __call__(self, view: LoggingView) -> tuple[np.ndarray, np.ndarray]:
        shape = view.num_users if self.slate_size == 1 else (view.num_users, self.slate_size)
        actions = self.rng.integers(view.num_items, size=shape)
        return actions, np.full(shape, 1.0 / view.num_items, dtype=np.float32)


class ContentProfileScorer:
    """A first model that needs no training: an item's score is the cosine between its embedding
    and the mean embedding of the user's clicked items among the recent ones (all recent items if
    none was clicked)."""

    name = "content profile"

    def __init__(self, item_embeddings: np.ndarray):
        self._embeddings = torch.tensor(np.array(item_embeddings, dtype=np.float32))

    def scores(self, view: LoggingView) -> Tensor:
        items, clicks = view.recent_items.cpu(), view.recent_clicks.cpu()
        valid = (items >= 0).float()
        vectors = self._embeddings[items.clamp_min(0)]  # (B, K, D)
        clicked = valid * clicks
        weights = torch.where(clicked.sum(1, keepdim=True) > 0, clicked, valid)
        profile = (weights[:, :, None] * vectors).sum(1)
        profile = profile / torch.linalg.vector_norm(profile, dim=1, keepdim=True).clamp_min(1e-8)
        return profile @ self._embeddings.T


class LSTMScorer:
    """A previous next-click LSTM as the deployed model: its predicted click logit of every item,
    from the LSTM run over the user's recent interactions (the window the view holds)."""

    name = "next-click LSTM"

    def __init__(self, model: NextClickLSTM, item_embeddings: np.ndarray):
        self.model = model
        device = next(model.parameters()).device
        self._embeddings = torch.tensor(np.array(item_embeddings, dtype=np.float32), device=device)

    def scores(self, view: LoggingView) -> Tensor:
        device = self._embeddings.device
        items = view.recent_items.to(device)
        with torch.no_grad():
            # Padding (−1, before a user's past began) is read as the first item, unclicked: the
            # window is full whenever the warm-up is at least as long, as it is by default.
            _, (hidden, _) = self.model.encode(self._embeddings[items.clamp_min(0)], view.recent_clicks.to(device))
            return self.model.click_logits_all(hidden, self._embeddings).cpu()


@dataclass(frozen=True)
class _Shares:
    random: float
    popular: float
    repeat: float
    model: float


class DeployedPolicy:
    """What a deployed recommender logs: a mixture, drawn per user and step, of

    - ``random_share``: a uniformly random item (exploration);
    - ``popular_share``: an item drawn ∝ its click count in earlier logs (``popularity``, +1 each);
    - ``repeat_share``: one of the user's last :data:`REPEAT_WINDOW` items again, uniformly
      (deployed systems re-show items all the time; a log without repeats could not teach a model
      that users tire of them);
    - ``model_share``: the item a model (``scorer``) ranks first for this user.

    A share whose source is missing (no ``popularity``, no ``scorer``, an empty history) goes to
    the random item. Propensities are exact.

    **Slates** (``slate_size`` k > 1): each slot is filled by its own draw of the mixture, the
    model's source putting its j-th ranked item in slot j (so a screen of model slots is the
    model's top k); an item may then appear twice in a slate (a repeat is an empty slot,
    ``docs/model.md`` §2). Each logged row's propensity is the probability of that item in that slot.

    :param popularity: ``(N,)`` click counts of every item in earlier logs, or ``None``.
    :param scorer: a :class:`ContentProfileScorer`, an :class:`LSTMScorer` or anything with
        ``scores(view) -> (B, N)``; or ``None``.
    """

    privileged = False

    def __init__(
        self,
        num_items: int,
        random_share: float = 0.3,
        popular_share: float = 0.2,
        repeat_share: float = 0.2,
        model_share: float = 0.3,
        popularity: np.ndarray | None = None,
        scorer: ContentProfileScorer | LSTMScorer | None = None,
        seed: int = 0,
        slate_size: int = 1,
    ):
        if isinstance(slate_size, bool) or not isinstance(slate_size, int) or not 1 <= slate_size <= num_items:
            raise ValueError(f"slate_size must be an int in [1, {num_items}], got {slate_size!r}")
        self.slate_size = slate_size
        shares = (random_share, popular_share, repeat_share, model_share)
        if min(shares) < 0 or abs(sum(shares) - 1.0) > 1e-9:
            raise ValueError(f"the four shares must be >= 0 and sum to 1, got {shares}")
        if popularity is not None:
            popularity = np.asarray(popularity, dtype=np.float64)
            if popularity.shape != (num_items,) or (popularity < 0).any():
                raise ValueError(f"popularity must be {num_items} non-negative counts, got shape {popularity.shape}")
        self.num_items = num_items
        self.shares = _Shares(*shares)
        self.popularity = None if popularity is None else (popularity + 1.0) / (popularity + 1.0).sum()
        self.scorer = scorer
        self.rng = np.random.default_rng(seed)
        parts = [f"random={random_share}", f"repeat={repeat_share}"]
        if popularity is not None:
            parts.append(f"popular={popular_share}")
        if scorer is not None:
            parts.append(f"{scorer.name}={model_share}")
        if slate_size > 1:
            parts.append(f"slates of {slate_size}")
        self.name = f"deployed({', '.join(parts)})"

    def __call__(self, view: LoggingView) -> tuple[np.ndarray, np.ndarray]:
        if self.slate_size > 1:
            return self._slates(view)
        n_users, n_items = view.num_users, self.num_items
        random_share, popular_share, _ = self._shares_in_use()

        recent, recent_count, repeated = _draw_repeats(view.recent_items, self.rng)
        has_past = recent_count > 0
        uniform = self.rng.integers(n_items, size=n_users)
        popular = (self.rng.choice(n_items, size=n_users, p=self.popularity) if self.popularity is not None
                   else uniform)
        greedy = self.scorer.scores(view).argmax(1).numpy() if self.scorer is not None else uniform

        edges = np.cumsum([random_share, popular_share, self.shares.repeat])
        behaviour = np.searchsorted(edges, self.rng.random(n_users), side="right")
        # Repeat without a past: the random item instead.
        behaviour = np.where((behaviour == 2) & ~has_past, 0, behaviour)
        candidates = np.stack([uniform, popular, np.where(has_past, repeated, uniform), greedy])
        actions = candidates[behaviour, np.arange(n_users)]

        repeat_probability = (recent == actions[:, None]).sum(1) / np.maximum(recent_count, 1)
        return actions, self._propensity(actions, greedy, has_past, repeat_probability)

    def _shares_in_use(self) -> tuple[float, float, float]:
        """The random, popular and model shares, a missing source's share given to the random item."""
        random_share, popular_share, model_share = self.shares.random, self.shares.popular, self.shares.model
        if self.popularity is None:
            random_share, popular_share = random_share + popular_share, 0.0
        if self.scorer is None:
            random_share, model_share = random_share + model_share, 0.0
        return random_share, popular_share, model_share

    def _propensity(self, actions: np.ndarray, model_choice: np.ndarray, has_past: np.ndarray,
                    repeat_probability: np.ndarray) -> np.ndarray:
        """The probability with which the mixture shows ``actions`` (any shape; slates: per slot):
        each source's share times its probability of that item."""
        random_share, popular_share, model_share = self._shares_in_use()
        propensity = (
            (random_share + np.where(has_past, 0.0, self.shares.repeat)) / self.num_items
            + np.where(has_past, self.shares.repeat * repeat_probability, 0.0)
            + (popular_share * self.popularity[actions] if self.popularity is not None else 0.0)
            + model_share * (actions == model_choice)
        )
        return propensity.astype(np.float32)

    def _slates(self, view: LoggingView) -> tuple[np.ndarray, np.ndarray]:
        """``(B, k)`` slates, one draw of the mixture per slot, and each slot's propensity."""
        n_users, n_items, k = view.num_users, self.num_items, self.slate_size
        random_share, popular_share, _ = self._shares_in_use()

        recent = view.recent_items[:, -REPEAT_WINDOW:].cpu().numpy()  # (B, R), −1 before the history began
        count = (recent >= 0).sum(1)
        has_past = (count > 0)[:, None]
        pick = np.minimum((self.rng.random((n_users, k)) * np.maximum(count, 1)[:, None]).astype(np.int64),
                          np.maximum(count - 1, 0)[:, None])
        repeated = np.take_along_axis(recent, np.minimum(recent.shape[1] - count[:, None] + pick, recent.shape[1] - 1), 1)
        uniform = self.rng.integers(n_items, size=(n_users, k))
        popular = (self.rng.choice(n_items, size=(n_users, k), p=self.popularity) if self.popularity is not None
                   else uniform)
        if self.scorer is not None:
            scores = self.scorer.scores(view)
            ranked = torch.topk(scores, k, dim=1).indices.numpy()  # slot j: the model's j-th best item
        else:
            ranked = uniform

        edges = np.cumsum([random_share, popular_share, self.shares.repeat])
        behaviour = np.searchsorted(edges, self.rng.random((n_users, k)), side="right")
        behaviour = np.where((behaviour == 2) & ~has_past, 0, behaviour)
        candidates = np.stack([uniform, popular, np.where(has_past, repeated, uniform), ranked])  # (4, B, k)
        actions = np.take_along_axis(candidates, behaviour[None], 0)[0]

        repeat_probability = (recent[:, None, :] == actions[:, :, None]).sum(2) / np.maximum(count, 1)[:, None]
        return actions, self._propensity(actions, ranked, has_past, repeat_probability)


class MixedBehaviourPolicy:
    """**Privileged**: the logging policy of recenv before matched encoders — 30 % random, 20 %
    popular by the population's mean *true* P(click), 30 % repeat, 20 % the user's true best item
    (an ε-oracle). No deployed system could log this way; kept only to measure what such logs do
    to a model. Propensities are exact."""

    privileged = True

    def __init__(self, random_share: float = 0.3, popular_share: float = 0.2, repeat_share: float = 0.3, seed: int = 0):
        shares = (random_share, popular_share, repeat_share)
        if min(shares) < 0 or sum(shares) > 1:
            raise ValueError(f"shares must be >= 0 and sum to <= 1, got {shares}")
        self.random_share, self.popular_share, self.repeat_share = shares
        self.oracle_share = 1.0 - sum(shares)
        self.rng = np.random.default_rng(seed)
        self.name = (f"mixed(random={random_share}, popular={popular_share}, repeat={repeat_share}, "
                     f"oracle={self.oracle_share:.2f})")

    def __call__(self, simulator: UserSimulator) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            probabilities = simulator.click_probabilities().cpu().numpy()  # (N, I)
        n_users, n_items = probabilities.shape
        popularity = probabilities.mean(0)
        popularity = popularity / popularity.sum()
        best = probabilities.argmax(1)
        recent, recent_count, repeated = _draw_repeats(simulator.recent_items, self.rng)
        candidates = np.stack([
            self.rng.integers(n_items, size=n_users),
            self.rng.choice(n_items, size=n_users, p=popularity),
            np.where(recent_count > 0, repeated, best),
            best,
        ])
        edges = np.cumsum([self.random_share, self.popular_share, self.repeat_share])
        behaviour = np.searchsorted(edges, self.rng.random(n_users), side="right")
        actions = candidates[behaviour, np.arange(n_users)]
        repeat_probability = np.where(recent_count > 0, (recent == actions[:, None]).sum(1) / np.maximum(recent_count, 1),
                                      actions == best)
        propensity = (self.random_share / n_items + self.popular_share * popularity[actions]
                      + self.repeat_share * repeat_probability + self.oracle_share * (actions == best))
        return actions, propensity.astype(np.float32)


def click_counts(log: InteractionLog, num_items: int) -> np.ndarray:
    """Clicks per item in the session rows of ``log`` (what a deployed system counts), ``(N,)``."""
    rows = log.step >= 0
    return np.bincount(log.item[rows], weights=log.click[rows].astype(np.float64), minlength=num_items)


def make_logs(
    config: EnvConfig, num_users: int, seed: int, concurrent_users: int = 512, progress: bool = True
) -> InteractionLog:
    """Log ``num_users`` sessions the way a deployed recommender would (the two rounds of the module
    docstring), on the CPU whatever ``config.device`` says (so a log is the same on every machine).

    The users of round 1 get ids ``0..n1−1``, those of round 2 follow; ``metadata["rounds"]`` says
    which policy logged which.

    With ``slate_history="shown"`` the recommender shows slates of ``config.slate_size`` items and
    logs them (k rows per step, the policies' slate form); otherwise one item per step, whatever
    ``slate_size`` says (the users and their dynamics are the same: a slate env whose history
    records only the chosen item observes through the one-item encoder)."""
    config = config.replace(device="cpu")
    slate_size = config.slate_size if config.history_record is not None else 1
    explored_users = max(1, round(EXPLORATION_SHARE * num_users)) if num_users > 1 else num_users
    catalog = config.resolved_catalog()
    first = collect_logs(config, DeployedPolicy(catalog.num_items, random_share=0.7, popular_share=0.0,
                                                repeat_share=0.3, model_share=0.0, seed=seed, slate_size=slate_size),
                         explored_users, seed=seed, concurrent_users=concurrent_users, progress=progress)
    if explored_users == num_users:
        return first
    policy = DeployedPolicy(catalog.num_items, popularity=click_counts(first, catalog.num_items),
                            scorer=ContentProfileScorer(catalog.embeddings), seed=seed + 1, slate_size=slate_size)
    second = collect_logs(config, policy, num_users - explored_users, seed=seed + 1,
                          concurrent_users=concurrent_users, progress=progress)
    return InteractionLog.concatenate([first, second])
