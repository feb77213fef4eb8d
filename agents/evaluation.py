"""Evaluate any agent on held-out simulated users and record what happened, step by step.

:func:`run_sessions` puts ``num_users`` users in a vector env with autoreset disabled and plays one
session for each: the users (their interests and the past they arrive with) depend only on the
seed, and so do the random draws of every user-step, so two agents evaluated with the same seed
meet exactly the same users under the same luck (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from recenv import DriftingUserVectorEnv, EnvConfig

__all__ = ["SessionRecords", "run_sessions"]


@dataclass
class SessionRecords:
    """Traces of finished sessions, one array per session and quantity (length = session length).

    :param clicks: 0/1 responses.
    :param click_probability: true P(click) of each shown item.
    :param best_click_probability: the best P(click) any item had at that step.
    :param items: the shown items.
    :param topics: topic of each shown item.
    :param regime_shift: whether the user's interest was redrawn at that step.
    :param left: per session, True if the user left (patience ran out), False if truncated.
    """

    clicks: list[np.ndarray] = field(default_factory=list)
    click_probability: list[np.ndarray] = field(default_factory=list)
    best_click_probability: list[np.ndarray] = field(default_factory=list)
    items: list[np.ndarray] = field(default_factory=list)
    topics: list[np.ndarray] = field(default_factory=list)
    regime_shift: list[np.ndarray] = field(default_factory=list)
    left: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.clicks)

    @property
    def returns(self) -> np.ndarray:
        """Clicks per session."""
        return np.array([c.sum() for c in self.clicks], dtype=np.float64)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(c) for c in self.clicks], dtype=np.float64)

    @property
    def ctr(self) -> np.ndarray:
        """Click-through rate of each session."""
        return self.returns / np.maximum(self.lengths, 1)

    @property
    def regret(self) -> np.ndarray:
        """Dynamic regret to the myopic oracle: Σ_t (best P(click) − P(click) of the shown item)."""
        return np.array([(b - p).sum() for b, p in zip(self.best_click_probability, self.click_probability)])

    def topic_entropy(self) -> np.ndarray:
        """Shannon entropy (bits) of the topics recommended in each session: 0 = one topic only."""
        out = np.zeros(len(self))
        for index, topics in enumerate(self.topics):
            counts = np.unique(topics, return_counts=True)[1]
            share = counts / counts.sum()
            out[index] = float(-(share * np.log2(share)).sum())
        return out

    def share_of_shown(self, flags: np.ndarray) -> np.ndarray:
        """Per session, the share of shown items for which ``flags[item]`` is true, e.g.
        ``records.share_of_shown(env.catalog.clickbait > 0.5)``."""
        flags = np.asarray(flags, dtype=bool)
        return np.array([flags[items].mean() if len(items) else 0.0 for items in self.items])

    def extend(self, other: SessionRecords) -> None:
        for name in ("clicks", "click_probability", "best_click_probability", "items", "topics", "regime_shift", "left"):
            getattr(self, name).extend(getattr(other, name))


def run_sessions(
    agent: Any,
    num_users: int,
    seed: int,
    config: EnvConfig | None = None,
    batch_size: int = 1024,
    deterministic: bool = True,
    progress: bool = True,
) -> SessionRecords:
    """Play one session for each of ``num_users`` held-out users and record it.

    :param agent: anything with SB3's ``predict()`` (an SB3 model works as it is). If it has
        ``bind(env)``, it is bound to each evaluation env first.
    :param seed: decides the users; evaluation seeds must differ from training seeds.
    :param config: the settings of the evaluation envs (default: ``EnvConfig()``); e.g. the training
        env's ``env.config``, or ``agent.env_config``.
    :param batch_size: users simulated at once (users are split into batches with seeds
        ``seed, seed + 1, ...``).
    """
    records = SessionRecords()
    bar = tqdm(total=num_users, desc=f"evaluating {type(agent).__name__}", unit="user", disable=not progress)
    for batch_index, start in enumerate(range(0, num_users, batch_size)):
        n = min(batch_size, num_users - start)
        envs = DriftingUserVectorEnv(num_envs=n, config=config, autoreset_mode="disabled", array_type="numpy")
        if hasattr(agent, "bind"):
            agent.bind(envs)
        observation, _ = envs.reset(seed=seed + batch_index)
        state, episode_start = None, np.ones(n, dtype=bool)
        active = np.ones(n, dtype=bool)
        traces: dict[str, list[np.ndarray]] = {k: [] for k in ("clicks", "click_probability", "best_click_probability", "items", "topics", "regime_shift")}
        ended_at = np.full(n, -1)
        left = np.zeros(n, dtype=bool)
        step = 0
        while active.any():
            actions, state = agent.predict(observation, state=state, episode_start=episode_start, deterministic=deterministic)
            actions = np.asarray(actions, dtype=np.int64).reshape(n)
            observation, reward, terminated, truncated, info = envs.step(actions)
            traces["clicks"].append(reward)
            traces["items"].append(actions)
            for key in ("click_probability", "best_click_probability", "topic", "regime_shift"):
                traces["topics" if key == "topic" else key].append(info[key])
            done = active & (terminated | truncated)
            ended_at[done] = step
            left[done] = terminated[done]
            active &= ~done
            episode_start = np.zeros(n, dtype=bool)
            step += 1
        stacked = {k: np.stack(v, 1) for k, v in traces.items()}
        for user in range(n):
            length = ended_at[user] + 1
            for key, values in stacked.items():
                getattr(records, key).append(values[user, :length].copy())
            records.left.append(bool(left[user]))
        bar.update(n)
        envs.close()
    bar.close()
    return records
