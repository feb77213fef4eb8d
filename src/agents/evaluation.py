"""Evaluate any agent on held-out simulated users and record what happened, step by step.

:func:`run_sessions` puts ``num_users`` users in a vector env with autoreset disabled and plays one
session for each: the users (their interests and the past they arrive with) depend only on the
seed, and so do the random draws of every user-step, so two agents evaluated with the same seed
meet exactly the same users under the same luck (common random numbers).

The harness enforces the information policy (``docs/model.md`` §5): an agent that does not
declare ``privileged = True`` is bound to the env's public view (:func:`recenv.public_view.public_view`),
so reaching for the clickbait scores, the quality, the true click probabilities or the user state
raises :class:`recenv.public_view.InformationPolicyError`.

:func:`run_counterfactual_sessions` plays the same users again with each user's first regime shift
scripted off, the agent's random generators rewound: the two runs differ only through that shift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from agents.training_log import work_bar
from recenv import DriftingUserVectorEnv, EnvConfig
from recenv.public_view import public_view

__all__ = ["SessionRecords", "first_shift_steps", "run_counterfactual_sessions", "run_sessions"]


@dataclass
class SessionRecords:
    """Traces of finished sessions, one array per session and quantity (length = session length).

    :param clicks: 0/1 responses.
    :param click_probability: true P(click) of each shown item.
    :param best_click_probability: the best P(click) any item had at that step.
    :param items: the shown items (with slates: the item the user chose, or the top one without a
        click — what the history records).
    :param topics: topic of each shown item.
    :param regime_shift: whether the user's interest was redrawn at that step (after its click was
        drawn: the first step a shift at ``t`` affects is ``t + 1``).
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
        """Dynamic regret to the myopic oracle summed over the session: Σ_t (best P(click) − P(click)
        of the shown item). It grows with the session's length; :attr:`regret_per_step` does not."""
        return np.array([(b - p).sum() for b, p in zip(self.best_click_probability, self.click_probability)])

    @property
    def regret_per_step(self) -> np.ndarray:
        """Per session, the mean over its steps of (best P(click) − P(click) of the shown item)."""
        return np.array([(b - p).mean() if len(p) else 0.0
                         for b, p in zip(self.best_click_probability, self.click_probability)])

    def repeat_share(self) -> np.ndarray:
        """Per session, the share of shown items that had already been shown earlier in it."""
        return np.array([1.0 - len(np.unique(items)) / len(items) if len(items) else 0.0 for items in self.items])

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

    _TRACES: ClassVar[dict[str, type]] = {"clicks": np.int8, "click_probability": np.float32,
                                          "best_click_probability": np.float32, "items": np.int32,
                                          "topics": np.int32, "regime_shift": np.bool_}
    """The per-step traces and the dtypes they are stored with (:meth:`to_arrays`)."""

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Flat arrays (for ``np.savez``): ``lengths``, ``left`` and one concatenated array per
        trace, names prefixed by ``prefix``; :meth:`from_arrays` reads them back."""
        arrays = {f"{prefix}lengths": np.array([len(c) for c in self.clicks], dtype=np.int32),
                  f"{prefix}left": np.array(self.left, dtype=np.bool_)}
        for name, dtype in self._TRACES.items():
            values = getattr(self, name)
            arrays[prefix + name] = np.concatenate(values).astype(dtype) if values else np.zeros(0, dtype)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str = "") -> SessionRecords:
        """The records :meth:`to_arrays` flattened (probabilities come back as float32)."""
        lengths = np.asarray(arrays[f"{prefix}lengths"])
        records = cls(left=[bool(v) for v in arrays[f"{prefix}left"]])
        if len(lengths):  # np.split of no sessions would give one empty session
            for name in cls._TRACES:
                setattr(records, name, np.split(np.asarray(arrays[prefix + name]), np.cumsum(lengths)[:-1]))
        return records

    def add_batch(self, traces: dict[str, list[np.ndarray]], ended_at: np.ndarray, left: np.ndarray) -> None:
        """Append a batch of B sessions from their per-step traces (field name → one ``(B,)`` array
        per step): user u's session is its first ``ended_at[u] + 1`` steps; ``left[u]``: it ended
        because the user left."""
        stacked = {key: np.stack(values, 1) for key, values in traces.items()}
        for user in range(len(ended_at)):
            length = ended_at[user] + 1
            for key, values in stacked.items():
                getattr(self, key).append(values[user, :length].copy())
            self.left.append(bool(left[user]))

    def extend(self, other: SessionRecords) -> None:
        for name in (*self._TRACES, "left"):
            getattr(self, name).extend(getattr(other, name))


def run_sessions(
    agent: Any,
    num_users: int,
    seed: int,
    config: EnvConfig | None = None,
    batch_size: int = 1024,
    deterministic: bool = True,
    progress: bool = True,
    suppressed_shift_steps: np.ndarray | None = None,
    generator_states: list[dict[str, Any]] | None = None,
) -> SessionRecords:
    """Play one session for each of ``num_users`` held-out users and record it.

    :param agent: anything with SB3's ``predict()`` (an SB3 model works as it is). If it has
        ``bind(env)``, it is bound to each evaluation env first: to the env itself if the agent
        declares ``privileged = True``, else to its public view.
    :param seed: decides the users; evaluation seeds must differ from training seeds.
    :param config: the settings of the evaluation envs (default: ``EnvConfig()``); e.g. the training
        env's ``env.config``, or ``agent.env_config``.
    :param batch_size: users simulated at once (users are split into batches with seeds
        ``seed, seed + 1, ...``).
    :param generator_states: the states of the agent's random generators at the start of each
        batch: an empty list is filled (one entry per batch); a filled one is restored at the start
        of each batch. :func:`run_counterfactual_sessions` replays the factual run's, so that a
        batch's draws do not depend on how many steps the batches before it took.
    :param suppressed_shift_steps: ``(num_users,)``: the session step whose random regime shift
        does not happen for each user (−1: none); see :func:`run_counterfactual_sessions`.
    """
    records = SessionRecords()
    bar = work_bar(num_users, f"evaluating {type(agent).__name__}", "user", progress)
    for batch_index, start in enumerate(range(0, num_users, batch_size)):
        n = min(batch_size, num_users - start)
        envs = DriftingUserVectorEnv(num_envs=n, config=config, autoreset_mode="disabled", array_type="numpy")
        if generator_states is not None:
            if batch_index < len(generator_states):
                _restore_generator_states(agent, generator_states[batch_index])
            else:
                generator_states.append(_generator_states(agent))
        if hasattr(agent, "bind"):
            agent.bind(envs if getattr(agent, "privileged", False) else public_view(envs))
        observation, _ = envs.reset(seed=seed + batch_index)
        if suppressed_shift_steps is not None:
            envs.suppress_regime_shifts(np.asarray(suppressed_shift_steps)[start : start + n])
        state, episode_start = None, np.ones(n, dtype=bool)
        active = np.ones(n, dtype=bool)
        traces: dict[str, list[np.ndarray]] = {k: [] for k in ("clicks", "click_probability", "best_click_probability", "items", "topics", "regime_shift")}
        ended_at = np.full(n, -1)
        left = np.zeros(n, dtype=bool)
        step = 0
        slate_size = envs.config.slate_size
        while active.any():
            actions, state = agent.predict(observation, state=state, episode_start=episode_start, deterministic=deterministic)
            actions = np.asarray(actions, dtype=np.int64).reshape((n,) if slate_size == 1 else (n, slate_size))
            observation, reward, terminated, truncated, info = envs.step(actions)
            traces["clicks"].append(reward)
            # With slates, the item the user chose (or the top one, without a click): what the history records.
            traces["items"].append(actions if slate_size == 1 else info["recorded_item"])
            for key in ("click_probability", "best_click_probability", "topic", "regime_shift"):
                traces["topics" if key == "topic" else key].append(info[key])
            done = active & (terminated | truncated)
            ended_at[done] = step
            left[done] = terminated[done]
            active &= ~done
            episode_start = np.zeros(n, dtype=bool)
            step += 1
        records.add_batch(traces, ended_at, left)
        bar.update(n)
        envs.close()
    bar.close()
    return records


def first_shift_steps(records: SessionRecords) -> np.ndarray:
    """Per session, the step of its first regime shift, −1 if it had none."""
    return np.array([int(np.flatnonzero(shifted)[0]) if shifted.any() else -1 for shifted in records.regime_shift])


def _generator_states(agent: Any) -> dict[str, Any]:
    """The states of the numpy and torch generators among the agent's attributes."""
    states: dict[str, Any] = {}
    for name, value in vars(agent).items() if hasattr(agent, "__dict__") else ():
        if isinstance(value, np.random.Generator):
            states[name] = value.bit_generator.state
        elif isinstance(value, torch.Generator):
            states[name] = value.get_state()
    return states


def _restore_generator_states(agent: Any, states: dict[str, Any]) -> None:
    for name, state in states.items():
        generator = getattr(agent, name)
        if isinstance(generator, np.random.Generator):
            generator.bit_generator.state = state
        else:
            generator.set_state(state)


def run_counterfactual_sessions(
    agent: Any,
    num_users: int,
    seed: int,
    config: EnvConfig | None = None,
    batch_size: int = 1024,
    deterministic: bool = True,
    progress: bool = True,
) -> tuple[SessionRecords, SessionRecords]:
    """The sessions of :func:`run_sessions`, and the same users' sessions with each user's first
    regime shift scripted off.

    The second run uses the same seed (so the same users and the same random draws, the suppressed
    shift's included) and starts the agent's random generators (its ``numpy`` and ``torch``
    generator attributes) at each batch where the first run started them at that batch, so it
    differs from the first only through the shift. An agent with randomness kept elsewhere is not rewound: the placebo of
    :func:`benchmarks.metrics.shift_effect` shows such a leak as a gap at shift-free steps.

    :returns: ``(factual, counterfactual)``; users without a shift are replayed unchanged.
    """
    # The agent's generators as they were at the start of each batch of the factual run: the
    # replay restores them batch by batch (a batch runs until its last user leaves, and that can
    # change with a suppressed shift: without this, a random agent's later batches would draw
    # other numbers in the replay, and differ before any shift).
    states: list[dict[str, Any]] = []
    factual = run_sessions(agent, num_users, seed, config, batch_size, deterministic, progress,
                           generator_states=states)
    counterfactual = run_sessions(agent, num_users, seed, config, batch_size, deterministic, progress,
                                  generator_states=states,
                                  suppressed_shift_steps=first_shift_steps(factual))
    return factual, counterfactual
