"""TopicQLearningAgent: tabular Q-learning whose actions are "the user's r-th best topic, in text
style v"; a fixed public ranker turns the action into an item.

:class:`agents.QLearningAgent` learns a table of 64 k-means states × 500 items, each pair seen a
handful of times in a training budget, and ends level with random play. Here the table is small
(96 states × 6 actions) and every entry is visited often enough to be estimated.

**Actions** ``(r, v)``. ``r`` runs over the ``topic_ranks`` topics the ranker scores best for this
user at this step (ranks relative to the user, so what one user teaches the table carries over to
the next; catalog topics as actions cannot personalise, see below); ``v`` over ``num_styles`` text
styles: the k-means clusters of the catalog's embeddings once each topic's mean embedding is taken
out (:func:`text_styles`), i.e. how an item is written rather than what it is about. The styles
come from public text alone and carry no label; which style costs patience is for the table to
find out. (On the default catalog the two styles are the sober and the sensational titles: checked
*outside* the agent against the hidden clickbait flags, the split matches all 500 items.)

**The ranker** (fixed, public, not learnt) scores item ``i`` for a user as::

    score_i = ⟨p, z_i⟩ − w·max(0, ⟨ŝ, z_i⟩)

``z_i`` is the item's public latent; ``p`` the user's profile: the mean latent of the items they
clicked in the past they arrived with (``env.warmup_history()``; all their past items if they
clicked none), moved toward each item clicked in the session at rate ``profile_rate`` (interests
drift); ``ŝ`` the agent's own record of what the user has just consumed, over the warm-up and the
session, ``ŝ ← ρ̂·ŝ + (y + ι̂·(1 − y))·z_i``. That is the shape of the documented click model
(``docs/model.md`` §2) with the interest replaced by an estimate; the satiation term makes the
ranker rotate among the user's topics instead of wearing one out (``w`` = 1.5 was chosen for the
best fixed action on users other than the evaluation's). A topic scores its best unshown
item; the action shows the best unshown item of the chosen topic and style (of the topic if the
style has none left), so no item is shown twice in a session. The other candidate, the next-click
LSTM's logits (``env.encoder``), ranked worse in this frame and would tie the agent to
``obs_mode="encoded"``; the profile ranker works in every mode.

**State**: buckets of public session counts: the misses so far (``t − n`` from the observation's
session clock, ``recenv.session_clock``) and, per text style, the clicks so far on items of that
style. Patience falls by ``1 + δ`` per miss and by ``1 − g·(q − c)`` per click (``docs/model.md``
§2, update 5), so these counts are what a table can know of the patience left; counting clicks per
style lets it see what one style's clicks cost. 6 × 4 × 4 = 96 states (misses in a row, an
optional fourth feature, did not help).

**Learning**: Watkins' Q-learning (Watkins & Dayan, 1992, https://doi.org/10.1007/BF00992698),
ε-greedy, on the vector env with next-step autoreset, read top to bottom in :meth:`TopicQLearningAgent.learn`::

    s = buckets(session counts);  a = ε-greedy(Q[s]);  item = ranker(a)
    Q[s, a] += α·(r + γ·(1 − terminated)·max Q[s'] − Q[s, a])       α = max(0.02, 1/visits(s, a))

``γ = 0.99``: a clickbait click costs patience that is paid at the session's end, tens of steps
later; a smaller γ discounts that cost away.

What the table adds, honestly: most of the gain is the abstraction and its ranker. On ``mixed`` the
learned table is level with uniformly random actions over the same abstraction
(:class:`TopicRankerAgent`); both, and the other agents, are measured with intervals over training
seeds on ``docs/results/learners-mixed.md``. The measurements behind the ranker's weight ``w``,
the state, γ and the table's tuning are on ``docs/results/tuning-notes.md``. The loop's
bookkeeping (progress bar, log, TensorBoard) is :class:`agents.training_log.TrainingRun`, shared
with the other learners.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.base import BaseAgent, episode_starts, require_vector_env
from agents.persistence import load_agent_file, save_agent_file
from agents.training_log import TrainingLog, TrainingRun, linear_schedule
from recenv.clustering import kmeans
from recenv.observation import session_clock

__all__ = ["SessionMemory", "TopicQLearningAgent", "TopicQLearningConfig", "TopicRankerAgent", "text_styles"]


@dataclass(frozen=True)
class TopicQLearningConfig:
    """Hyper-parameters of :class:`TopicQLearningAgent`.

    Actions:

    :param topic_ranks: R, how many of the user's best topics (by the ranker) the actions cover.
    :param num_styles: S, text-style clusters of the catalog (1: no style choice).

    The fixed ranker ``⟨p, z⟩ − w·max(0, ⟨ŝ, z⟩)``:

    :param profile_rate: how far the profile ``p`` moves toward each item clicked in the session.
    :param satiation_weight: ``w``, the weight of the consumption record ``ŝ``.
    :param satiation_decay: ``ρ̂``, per step decay of ``ŝ`` (the presets' ρ, ``docs/model.md`` §2).
    :param impression_weight: ``ι̂``, what an ignored impression adds to ``ŝ``, a click adding 1 (the presets' ι).

    State (bucket edges: a count ``x`` falls in bucket ``#{edges ≤ x}``):

    :param miss_edges: of the misses so far in the session.
    :param click_edges: of the clicks so far on items of each style (one count per style).
    :param miss_run_edges: of the misses in a row.

    Learning:

    :param learning_rate: α: the n-th update of a pair steps ``max(α, 1/n)`` toward its target, so
        a pair holds the mean of its first ``1/α`` targets, then a recency-weighted mean (the
        targets move as the policy and the next states' values improve).
    :param gamma: discount per step.
    :param start_epsilon: exploration rate at the start ...
    :param end_epsilon: ... decayed linearly to this ...
    :param exploration_fraction: ... over this share of the training steps.
    :param seed: seeds exploration, the style clustering and the env's reset in :meth:`TopicQLearningAgent.learn`.
    """

    topic_ranks: int = 3
    num_styles: int = 2
    profile_rate: float = 0.3
    satiation_weight: float = 1.5
    satiation_decay: float = 0.85
    impression_weight: float = 0.1
    miss_edges: tuple[int, ...] = (4, 8, 12, 16, 20)
    click_edges: tuple[int, ...] = (1, 2, 4)
    miss_run_edges: tuple[int, ...] = ()
    learning_rate: float = 0.02
    gamma: float = 0.99
    start_epsilon: float = 1.0
    end_epsilon: float = 0.05
    exploration_fraction: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("miss_edges", "click_edges", "miss_run_edges"):
            edges = tuple(int(e) for e in getattr(self, name))
            if any(b <= a for a, b in pairwise(edges)) or any(e < 1 for e in edges):  # () is one bucket
                raise ValueError(f"{name} must be increasing positive counts, got {edges}")
            object.__setattr__(self, name, edges)
        if self.topic_ranks < 1 or self.num_styles < 1:
            raise ValueError("topic_ranks and num_styles must be at least 1")
        if not (0.0 <= self.profile_rate <= 1.0 and 0.0 <= self.satiation_decay < 1.0 and 0.0 < self.gamma <= 1.0
                and 0.0 < self.learning_rate <= 1.0):
            raise ValueError("expected profile_rate in [0, 1], satiation_decay in [0, 1), gamma and learning_rate in (0, 1]")

    @property
    def num_states(self) -> int:
        return int(np.prod(self.state_sizes))

    @property
    def state_sizes(self) -> tuple[int, ...]:
        """Buckets of each state feature: misses, clicks on style 0..S−1, misses in a row."""
        return (len(self.miss_edges) + 1, *(len(self.click_edges) + 1,) * self.num_styles, len(self.miss_run_edges) + 1)

    @property
    def num_actions(self) -> int:
        return self.topic_ranks * self.num_styles


def text_styles(embeddings: np.ndarray, topics: np.ndarray, num_styles: int, seed: int = 0) -> np.ndarray:
    """A style label per item, ``(N,)`` in ``0..num_styles−1``: k-means of the embeddings with
    each topic's mean embedding subtracted, so the clusters follow how items are written rather
    than what they are about. Labels are ordered by cluster size, largest first (style 0)."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    topics = np.asarray(topics, dtype=np.int64)
    if num_styles == 1:
        return np.zeros(len(embeddings), dtype=np.int64)
    means = np.zeros((topics.max() + 1, embeddings.shape[1]))
    np.add.at(means, topics, embeddings)
    means /= np.maximum(np.bincount(topics, minlength=len(means)), 1)[:, None]
    _, labels = kmeans(embeddings - means[topics], num_styles, seed=seed)
    by_size = np.argsort(-np.bincount(labels, minlength=num_styles), kind="stable")
    return np.argsort(by_size)[labels]


@dataclass
class SessionMemory:
    """What the agent remembers of each user's session (SB3's recurrent ``state``), ``B`` users.

    :param shown: ``(B, N)`` items shown this session.
    :param profile: ``(B, k)`` unit profile ``p``.
    :param satiation: ``(B, k)`` consumption record ``ŝ``.
    :param last_item: ``(B,)`` the item shown at the previous step (−1: none yet).
    :param clicks: ``(B,)`` the clicks so far when that item was shown (a click shows as one more).
    :param style_clicks: ``(B, S)`` the clicks so far on items of each style.
    :param miss_run: ``(B,)`` misses in a row.
    """

    shown: np.ndarray
    profile: np.ndarray
    satiation: np.ndarray
    last_item: np.ndarray
    clicks: np.ndarray
    style_clicks: np.ndarray
    miss_run: np.ndarray

    def copy(self) -> SessionMemory:
        return SessionMemory(*(np.array(getattr(self, name), copy=True) for name in self.__dataclass_fields__))


class TopicQLearningAgent(BaseAgent):
    """Tabular Q-learning on session-count buckets; actions are (topic rank, text style).

    It reads the users' logged past (``env.warmup_history()``, not privileged) from the env it is
    bound to; :meth:`learn` binds it to the training env, the evaluation harness to its own.

    :param env: the env (or its public view) it is made for.
    :param config: hyper-parameters.
    """

    def __init__(self, env: Any, config: TopicQLearningConfig = TopicQLearningConfig()):
        super().__init__(env)
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.latents = np.asarray(self.catalog.latents, dtype=np.float64)
        self.topics = np.asarray(self.catalog.topics, dtype=np.int64)
        self.styles = text_styles(self.catalog.embeddings, self.topics, config.num_styles, seed=config.seed)
        if config.topic_ranks > self.topics.max() + 1:
            raise ValueError(f"topic_ranks = {config.topic_ranks} but the catalog has {self.topics.max() + 1} topics")
        # members[t]: topic t's items, padded with −1 to the largest topic's size.
        sizes = np.bincount(self.topics)
        self.members = np.full((len(sizes), sizes.max()), -1, dtype=np.int64)
        for topic in range(len(sizes)):
            self.members[topic, : sizes[topic]] = np.flatnonzero(self.topics == topic)
        self.q_table = np.zeros((config.num_states, config.num_actions))
        self.visits = np.zeros((config.num_states, config.num_actions), dtype=np.int64)
        self.log = TrainingLog()

    # ---------------------------------------------------------------- the user's session

    def start_sessions(self, memory: SessionMemory | None, users: np.ndarray, batch: int) -> SessionMemory:
        """A fresh memory for ``users`` (indices into the batch), from the past they arrived with."""
        c, k = self.config, self.latents.shape[1]
        if memory is None:
            memory = SessionMemory(np.zeros((batch, self.num_items), dtype=bool), np.zeros((batch, k)),
                                   np.zeros((batch, k)), np.full(batch, -1), np.zeros(batch, dtype=np.int64),
                                   np.zeros((batch, c.num_styles), dtype=np.int64), np.zeros(batch, dtype=np.int64))
        if len(users) == 0:
            return memory
        items, clicks = (np.atleast_2d(a)[users] for a in self._bound_users(batch).warmup_history())
        past = items >= 0
        clicked = past & (clicks > 0.5)
        weights = np.where(clicked.any(1, keepdims=True), clicked, past).astype(np.float64)
        profile = np.einsum("ul,uld->ud", weights, self.latents[np.where(past, items, 0)])
        satiation = np.zeros((len(users), k))
        for column in range(items.shape[1]):  # the warm-up, oldest first
            consumed = np.where(past[:, column], clicks[:, column] + c.impression_weight * (1 - clicks[:, column]), 0.0)
            satiation = c.satiation_decay * satiation + consumed[:, None] * self.latents[np.where(past[:, column], items[:, column], 0)]
        memory.shown[users] = False
        memory.profile[users] = profile / np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-12)
        memory.satiation[users] = satiation
        memory.last_item[users], memory.clicks[users], memory.style_clicks[users], memory.miss_run[users] = -1, 0, 0, 0
        return memory

    def observe(self, memory: SessionMemory, observation: np.ndarray) -> np.ndarray:
        """Take in the previous step's response (a click shows in the session clock of
        ``observation``) and return each user's tabular state, ``(B,)``."""
        c = self.config
        steps, clicks = session_clock(observation, self.env_config.max_episode_steps).T
        acted = memory.last_item >= 0
        click = acted & (clicks > memory.clicks)
        item = np.where(acted, memory.last_item, 0)
        consumed = np.where(acted, click + c.impression_weight * ~click, 0.0)
        decay = np.where(acted, c.satiation_decay, 1.0)[:, None]
        memory.satiation[:] = decay * memory.satiation + consumed[:, None] * self.latents[item]
        moved = memory.profile + c.profile_rate * (self.latents[item] - memory.profile)
        moved /= np.maximum(np.linalg.norm(moved, axis=1, keepdims=True), 1e-12)
        memory.profile[click] = moved[click]
        memory.miss_run[:] = np.where(click, 0, memory.miss_run + acted)
        np.add.at(memory.style_clicks, (np.flatnonzero(click), self.styles[item[click]]), 1)
        memory.clicks[:] = clicks
        memory.last_item[:] = -1
        return self.states(steps - clicks, memory.style_clicks, memory.miss_run)

    def states(self, misses: np.ndarray, style_clicks: np.ndarray, miss_run: np.ndarray) -> np.ndarray:
        """The tabular state of session counts, ``(B,)`` in ``0..num_states−1``: the buckets of the
        misses so far ``(B,)``, of the clicks on each style ``(B, S)`` and of the misses in a row ``(B,)``."""
        c = self.config
        digits = [np.searchsorted(c.miss_edges, misses, side="right")]
        digits += [np.searchsorted(c.click_edges, style_clicks[:, v], side="right") for v in range(c.num_styles)]
        digits.append(np.searchsorted(c.miss_run_edges, miss_run, side="right"))
        return np.ravel_multi_index(tuple(digits), c.state_sizes)

    def scores(self, memory: SessionMemory) -> np.ndarray:
        """The ranker's score of every item for every user, ``(B, N)``; −inf for items shown this session."""
        c = self.config
        memory.shown[memory.shown.all(1)] = False  # a user who has seen every item starts over
        score = memory.profile @ self.latents.T - c.satiation_weight * np.maximum(memory.satiation @ self.latents.T, 0.0)
        return np.where(memory.shown, -np.inf, score)

    def items_for(self, memory: SessionMemory, actions: np.ndarray) -> np.ndarray:
        """The ranker: the item each abstract action ``(rank, style)`` shows, ``(B,)``; marks it shown."""
        c, batch = self.config, len(actions)
        rank, style = np.divmod(actions, c.num_styles)
        score = self.scores(memory)
        member_score = np.where(self.members >= 0, score[:, self.members], -np.inf)  # (B, T, M)
        topic = np.argsort(-member_score.max(2), axis=1, kind="stable")[np.arange(batch), rank]
        candidates = self.members[topic]  # (B, M)
        in_topic = member_score[np.arange(batch), topic]
        of_style = np.where(self.styles[np.maximum(candidates, 0)] == style[:, None], in_topic, -np.inf)
        pick = np.where(np.isfinite(of_style).any(1), of_style.argmax(1), in_topic.argmax(1))
        items = candidates[np.arange(batch), pick]
        exhausted = ~np.isfinite(in_topic).any(1)  # nothing unshown in the topic (fewer topics left than ranks)
        items[exhausted] = score[exhausted].argmax(1)
        memory.shown[np.arange(batch), items] = True
        memory.last_item[:] = items
        return items

    # ---------------------------------------------------------------- acting

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        if state is not None and not isinstance(state, SessionMemory):
            raise ValueError(f"state must be the SessionMemory this agent returned, got {type(state).__name__}")
        memory = None if state is None else state.copy()
        if memory is not None and len(memory.last_item) != len(batch):
            raise ValueError(f"state holds {len(memory.last_item)} users but got {len(batch)} observations")
        starting = np.ones(len(batch), dtype=bool) if memory is None else np.zeros(len(batch), dtype=bool)
        starting |= episode_starts(episode_start, len(batch))
        memory = self.start_sessions(memory, np.flatnonzero(starting), len(batch))
        states = self.observe(memory, batch)
        actions = self._actions(states, deterministic)
        return self._result(self.items_for(memory, actions), single), memory

    def _actions(self, states: np.ndarray, deterministic: bool) -> np.ndarray:
        """The table's greedy action per state (ε-greedy unless ``deterministic``)."""
        actions = self.q_table[states].argmax(1)  # ties: the lowest action, the best topic's first style
        if not deterministic:
            actions = self._epsilon_greedy(actions, self.config.end_epsilon, self.rng, self.config.num_actions)
        return actions

    # ---------------------------------------------------------------- learning

    def learn(self, env: Any, total_timesteps: int, progress: bool = True, tensorboard_dir: str | None = None) -> TopicQLearningAgent:
        """Q-learning on a vector env (or its public view; next-step autoreset) for ``total_timesteps`` user-steps."""
        num_envs = require_vector_env(env, "TopicQLearningAgent")
        c = self.config
        self.bind(env)
        observation, _ = env.reset(seed=c.seed)
        memory = self.start_sessions(None, np.arange(num_envs), num_envs)
        state = self.observe(memory, observation)
        run = TrainingRun(self.log, num_envs, total_timesteps, "topic Q-learning", progress, tensorboard_dir)
        while run.running:
            # 1. ε-greedy over the abstract actions; the ranker turns them into items
            epsilon = linear_schedule(c.start_epsilon, c.end_epsilon, c.exploration_fraction, run.steps, total_timesteps)
            actions = self._epsilon_greedy(self.q_table[state].argmax(1), epsilon, self.rng, c.num_actions)
            items = self.items_for(memory, actions)
            observation, reward, terminated, truncated, _ = env.step(items)
            # 2. users whose session ended last step were reset by this one: no transition, fresh memory
            valid = run.step(reward, terminated, truncated)
            memory = self.start_sessions(memory, np.flatnonzero(~valid), num_envs)
            next_state = self.observe(memory, observation)
            # 3. Watkins' update on the real transitions (truncation at the horizon bootstraps)
            target = reward + c.gamma * (1.0 - terminated) * self.q_table[next_state].max(1)
            self.update(state[valid], actions[valid], target[valid])
            state = next_state
            run.record_when_due(epsilon=epsilon)
        run.close()
        return self

    def update(self, states: np.ndarray, actions: np.ndarray, targets: np.ndarray) -> None:
        """Move ``Q[s, a]`` toward the targets of one vector step. The ``m`` targets a pair got in
        this step are averaged and move it ``m`` steps at once, ``min(1, m·max(α, 1/n))`` of the way
        with ``n`` its visits so far (this step's included): exactly the running mean while ``1/n ≥ α``."""
        c = self.config
        pairs, inverse, counts = np.unique(states * c.num_actions + actions, return_inverse=True, return_counts=True)
        s, a = np.divmod(pairs, c.num_actions)
        self.visits[s, a] += counts
        step = np.minimum(1.0, counts * np.maximum(c.learning_rate, 1.0 / self.visits[s, a]))
        mean_target = np.bincount(inverse, weights=targets, minlength=len(pairs)) / counts
        self.q_table[s, a] += step * (mean_target - self.q_table[s, a])

    # ---------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Q-table, visit counts, config and the catalog they belong to (safe to load)."""
        config = asdict(self.config)
        config.update({name: list(config[name]) for name in ("miss_edges", "click_edges", "miss_run_edges")})
        return save_agent_file(path, "TopicQLearningAgent", self.catalog, self.observation_space.shape, self.env_config,
                               config=config, q_table=torch.as_tensor(self.q_table), visits=torch.as_tensor(self.visits))

    def load(self, path: str | os.PathLike[str]) -> TopicQLearningAgent:
        payload = load_agent_file(path, "TopicQLearningAgent", self.catalog, self.observation_space.shape)
        config = TopicQLearningConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload["config"].items()})
        if (config.num_styles, config.seed) != (self.config.num_styles, self.config.seed):
            self.styles = text_styles(self.catalog.embeddings, self.topics, config.num_styles, seed=config.seed)
        self.config = config
        self.q_table = payload["q_table"].numpy().copy()
        self.visits = payload["visits"].numpy().copy()
        return self


class TopicRankerAgent(TopicQLearningAgent):
    """The abstraction of :class:`TopicQLearningAgent` without its table: each step a uniformly
    random action (topic rank, text style), the item chosen by the same fixed public ranker. The
    comparison's baseline for what the table learns (measured: ``docs/results/learners-mixed.md``;
    in the table's tuning: ``docs/results/tuning-notes.md``)."""

    def _actions(self, states: np.ndarray, deterministic: bool) -> np.ndarray:
        return self.rng.integers(self.config.num_actions, size=len(states))

    def learn(self, env: Any, total_timesteps: int, progress: bool = True, tensorboard_dir: str | None = None) -> TopicRankerAgent:
        raise TypeError("TopicRankerAgent is a fixed policy: it does not learn (TopicQLearningAgent does)")
