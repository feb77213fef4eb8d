"""Interaction logs: what a recommender would have recorded, collected on the simulator.

The policies that log, and :func:`recenv.offline.logging_policies.make_logs` (the logs recenv
trains on), are in :mod:`recenv.offline.logging_policies`.

:func:`collect_logs` runs a behaviour policy on a :class:`recenv.simulator.UserSimulator` built from
an :class:`recenv.EnvConfig`, with the vector environment's rules (sessions truncated at the
config's horizon; a user whose session ended is replaced on the next step, as Gymnasium's next-step
autoreset does), so a log is the same whichever way it is collected, and the offline tooling needs
no environment.

A log is one row per shown item: ``user`` (one id per session: a user who leaves and the fresh
user who takes the slot are different users), ``step`` (session step; the warm-up past a user
arrived with has negative steps −W..−1), ``slot`` (the item's position on the screen: 0 for one
item per step; a policy that returns slates ``(B, k)`` logs k rows per step, slots 0..k−1, click 1
on the chosen one), ``item``, ``click``, ``propensity`` (probability with which the behaviour
policy showed that item, in that slot; NaN where unknown, e.g. for the warm-up), and
``click_probability`` (the simulator's true P(click) of the shown item, of a slate's item P(it is
chosen) — ground truth, for evaluating predictors only; NaN for warm-up rows). Rows are sorted by
(user, step, slot).

On disk (``.npz``, :meth:`InteractionLog.save` / :meth:`InteractionLog.load`): one array per
column plus ``metadata``, a JSON string with the catalog fingerprint, preset, parameters,
behaviour policy, seed and format version.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium.utils.seeding import np_random as seeded_np_random
from tqdm.auto import tqdm

from recenv.config import EnvConfig
from recenv.simulator import UserSimulator

__all__ = [
    "BehaviourPolicy",
    "InteractionLog",
    "LoggedSessions",
    "LoggingView",
    "collect_logs",
]

LOG_FORMAT_VERSION = 2  # 2: the slot column (version 1 files, from before slates, are read with slot 0)
_COLUMNS = {
    "user": np.int64,
    "step": np.int32,
    "item": np.int32,
    "click": np.int8,
    "propensity": np.float32,
    "click_probability": np.float32,
    "slot": np.int16,
}

class LoggingView:
    """What a deployed recommender knows about the users it is logging, and nothing else.

    :attr:`recent_items` ``(B, K)`` and :attr:`recent_clicks` ``(B, K)`` (its own record of what it
    showed and what was clicked, the warm-up past included; −1 before a user's past began),
    :attr:`session_steps` and :attr:`session_clicks` ``(B,)`` (the session clock), the catalog's
    public side (:attr:`item_embeddings` ``(N, D)``, :attr:`topics` ``(N,)``), :attr:`num_users`
    and :attr:`num_items`. No click probability, user state, quality or clickbait: reading them
    raises ``AttributeError``, because they are not here.
    """

    __slots__ = ("_simulator",)

    def __init__(self, simulator: UserSimulator):
        self._simulator = simulator

    @property
    def num_users(self) -> int:
        return self._simulator.num_users

    @property
    def num_items(self) -> int:
        return self._simulator.catalog.num_items

    @property
    def recent_items(self) -> torch.Tensor:
        return self._simulator.recent_items

    @property
    def recent_clicks(self) -> torch.Tensor:
        return self._simulator.recent_clicks

    @property
    def session_steps(self) -> torch.Tensor:
        return self._simulator.session_steps()

    @property
    def session_clicks(self) -> torch.Tensor:
        return self._simulator.session_clicks

    @property
    def item_embeddings(self) -> np.ndarray:
        return self._simulator.catalog.embeddings

    @property
    def topics(self) -> np.ndarray:
        return self._simulator.catalog.topics


BehaviourPolicy = Callable[[LoggingView], tuple[np.ndarray, np.ndarray | None]]
"""``policy(view) -> (actions (N,), propensities (N,) or None)``.

A policy sees a :class:`LoggingView`: what a deployed recommender knows. A policy that declares
``privileged = True`` (a reference for experiments, never the default) is given the
:class:`recenv.simulator.UserSimulator` itself instead, true click probabilities and all."""


@dataclass
class LoggedSessions:
    """Logged sessions as padded sequences, oldest interaction first.

    :param items: ``(U, L)`` int64 item ids, −1 after a session's end.
    :param clicks: ``(U, L)`` float32 0/1.
    :param mask: ``(U, L)`` bool, True where there is an interaction.
    :param steps: ``(U, L)`` int32 session steps (negative for the warm-up).
    :param users: ``(U,)`` the user id of each row.
    :param click_probability: ``(U, L)`` the simulator's true P(click) (NaN for warm-up and padding).
    :param propensity: ``(U, L)`` the behaviour policy's probability of each shown item (NaN where
        unknown: warm-up, padding, policies that do not report it).
    :param slots: ``(U, L)`` each interaction's slot on its screen (0 for one item per step and on padding).
    """

    items: np.ndarray
    clicks: np.ndarray
    mask: np.ndarray
    steps: np.ndarray
    users: np.ndarray
    click_probability: np.ndarray
    propensity: np.ndarray
    slots: np.ndarray

    def __len__(self) -> int:
        return len(self.users)

    def select(self, index: np.ndarray) -> LoggedSessions:
        return LoggedSessions(self.items[index], self.clicks[index], self.mask[index], self.steps[index], self.users[index],
                              self.click_probability[index], self.propensity[index], self.slots[index])


@dataclass
class InteractionLog:
    """A table of logged interactions (see the module docstring for the columns)."""

    user: np.ndarray
    step: np.ndarray
    item: np.ndarray
    click: np.ndarray
    propensity: np.ndarray
    click_probability: np.ndarray
    slot: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.user)
        if self.slot is None:  # one item per step
            self.slot = np.zeros(n, dtype=np.int16)
        for name, dtype in _COLUMNS.items():
            column = np.asarray(getattr(self, name))
            if column.ndim != 1 or len(column) != n:
                raise ValueError(f"log column {name!r} has shape {column.shape}; expected ({n},)")
            setattr(self, name, column.astype(dtype, copy=False))

    def __len__(self) -> int:
        return len(self.user)

    @property
    def num_users(self) -> int:
        return len(np.unique(self.user))

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = {name: getattr(self, name) for name in _COLUMNS}
        metadata = {**self.metadata, "format_version": LOG_FORMAT_VERSION}
        np.savez_compressed(path, metadata=np.array(json.dumps(metadata)), **columns)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> InteractionLog:
        """Read a log written by :meth:`save`; errors name the file and what is wrong."""
        try:
            with np.load(path, allow_pickle=False) as stored:
                metadata = json.loads(str(stored["metadata"])) if "metadata" in stored else {}
                version = metadata.get("format_version")
                expected = [name for name in _COLUMNS if version != 1 or name != "slot"]
                missing = [name for name in (*expected, "metadata") if name not in stored]
                if missing:
                    raise ValueError(f"interaction log {path} lacks column(s) {missing}")
                columns = {name: stored[name] for name in expected}
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"interaction log {path} is unreadable ({error})") from error
        if version not in (1, LOG_FORMAT_VERSION):
            raise ValueError(f"interaction log {path} has format version {version}; this recenv reads 1 and {LOG_FORMAT_VERSION}")
        if version == 1:  # before slates: one item per step
            columns["slot"] = np.zeros(len(columns["user"]), dtype=np.int16)
        return cls(**columns, metadata=metadata)

    @staticmethod
    def concatenate(logs: list[InteractionLog]) -> InteractionLog:
        """One log of several (rounds of logging): user ids of each log are shifted past the
        previous ones'; ``metadata`` is the first log's, with ``rounds``: every log's metadata and
        its range of user ids."""
        columns: dict[str, list[np.ndarray]] = {name: [] for name in _COLUMNS}
        rounds, offset = [], 0
        for log in logs:
            for name in _COLUMNS:
                values = getattr(log, name)
                columns[name].append(values + offset if name == "user" else values)
            count = int(log.user.max()) + 1 if len(log) else 0
            rounds.append({"first_user": offset, "users": count, **log.metadata})
            offset += count
        metadata = {**logs[0].metadata, "rounds": rounds}
        metadata["policy"] = " then ".join(str(r.get("policy")) for r in rounds)
        return InteractionLog(**{name: np.concatenate(values) for name, values in columns.items()}, metadata=metadata)

    def select_users(self, users: np.ndarray) -> InteractionLog:
        """The rows of the given users."""
        keep = np.isin(self.user, users)
        return InteractionLog(**{name: getattr(self, name)[keep] for name in _COLUMNS}, metadata=dict(self.metadata))

    def sessions(self) -> LoggedSessions:
        """The log as padded per-user sequences (rows must be sorted by user, then step)."""
        users, starts, lengths = np.unique(self.user, return_index=True, return_counts=True)
        width = int(lengths.max()) if len(lengths) else 0
        position = np.arange(len(self.user)) - np.repeat(starts, lengths)
        row = np.repeat(np.arange(len(users)), lengths)
        items = np.full((len(users), width), -1, dtype=np.int64)
        clicks = np.zeros((len(users), width), dtype=np.float32)
        steps = np.zeros((len(users), width), dtype=np.int32)
        mask = np.zeros((len(users), width), dtype=bool)
        probability = np.full((len(users), width), np.nan, dtype=np.float32)
        propensity = np.full((len(users), width), np.nan, dtype=np.float32)
        slots = np.zeros((len(users), width), dtype=np.int64)
        slots[row, position] = self.slot
        items[row, position] = self.item
        clicks[row, position] = self.click
        steps[row, position] = self.step
        mask[row, position] = True
        probability[row, position] = self.click_probability
        propensity[row, position] = self.propensity
        return LoggedSessions(items, clicks, mask, steps, users, probability, propensity, slots)


def collect_logs(
    config: EnvConfig,
    policy: BehaviourPolicy,
    num_users: int,
    seed: int = 0,
    concurrent_users: int = 512,
    progress: bool = True,
    max_steps: int | None = None,
) -> InteractionLog:
    """Run ``policy`` on simulated users until ``num_users`` sessions have ended.

    :param config: what is simulated (catalog, preset, parameters, warm-up, horizon, device; the
        observation settings play no part).
    :param policy: a :data:`BehaviourPolicy`; it is given a :class:`LoggingView`, or the simulator
        if it declares ``privileged = True``.
    :param num_users: completed sessions to log (sessions still running at the end are dropped).
    :param seed: decides the users and every random draw (as ``envs.reset(seed=seed)`` would).
    :param concurrent_users: users simulated at once (at most ``num_users``).
    :param max_steps: stop after this many batch steps even if fewer sessions ended.
    """
    n = min(concurrent_users, num_users)
    simulator = UserSimulator(config, n)
    simulator.seed_from(seeded_np_random(seed)[0])
    rows: dict[str, list[np.ndarray]] = {name: [] for name in _COLUMNS}

    def add(users, steps, slots, items, clicks, propensity, probability) -> None:
        for name, values in zip(_COLUMNS, (users, steps, items, clicks, propensity, probability, slots)):
            rows[name].append(np.asarray(values).reshape(-1))

    def add_warmups(warmup_items: np.ndarray, warmup_clicks: np.ndarray, which: np.ndarray) -> None:
        width = warmup_items.shape[1]
        users = np.repeat(session[which], width)
        steps = np.tile(np.arange(-width, 0), len(which))
        nan = np.full(len(users), np.nan, dtype=np.float32)
        add(users, steps, np.zeros(len(users)), warmup_items, warmup_clicks, nan, nan)

    policy_input = simulator if getattr(policy, "privileged", False) else LoggingView(simulator)
    with torch.inference_mode():
        warmup = simulator.reset()
        session = np.arange(n, dtype=np.int64)  # the id of each slot's current session
        next_session = n
        add_warmups(warmup.items.cpu().numpy(), warmup.clicks.cpu().numpy(), np.arange(n))
        session_step = np.zeros(n, dtype=np.int32)
        needs_reset = np.zeros(n, dtype=bool)  # ended last step: replaced in this one (next-step autoreset)
        finished: list[int] = []
        bar = tqdm(total=num_users, desc="logging sessions", unit="user", disable=not progress)
        batch_steps = 0
        while len(finished) < num_users and (max_steps is None or batch_steps < max_steps):
            actions, propensity = policy(policy_input)
            actions = np.asarray(actions, dtype=np.int64)
            outcome = simulator.step(torch.from_numpy(actions).to(simulator.device))
            batch_steps += 1
            terminated = outcome.terminated.cpu().numpy()
            truncated = (simulator.state.step >= config.max_episode_steps).cpu().numpy() & ~terminated
            stepped = np.flatnonzero(~needs_reset)
            if len(stepped):
                # One row per shown item: (B, 1) for one item per step, (B, k) for a slate.
                shown = actions.reshape(n, -1)
                width = shown.shape[1]
                if outcome.chosen_slot is None:
                    click = outcome.click.cpu().numpy()[:, None]
                    probability = outcome.click_probability.cpu().numpy()[:, None]
                else:
                    click = (np.arange(width) == outcome.chosen_slot.cpu().numpy()[:, None]).astype(np.float32)
                    probability = outcome.slot_click_probability.cpu().numpy()
                prop = (np.full((n, width), np.nan, dtype=np.float32) if propensity is None
                        else np.asarray(propensity, np.float32).reshape(n, width))
                add(np.repeat(session[stepped], width), np.repeat(session_step[stepped], width),
                    np.tile(np.arange(width), len(stepped)), shown[stepped], click[stepped], prop[stepped],
                    probability[stepped])
                session_step[stepped] += 1
            if needs_reset.any():
                which = np.flatnonzero(needs_reset)
                warmup = simulator.reset(torch.as_tensor(which, device=simulator.device))
                terminated, truncated = terminated & ~needs_reset, truncated & ~needs_reset
                session[which] = np.arange(next_session, next_session + len(which))
                next_session += len(which)
                session_step[which] = 0
                add_warmups(warmup.items.cpu().numpy(), warmup.clicks.cpu().numpy(), which)
            needs_reset = terminated | truncated
            ended = np.flatnonzero(needs_reset)
            finished.extend(session[ended].tolist())
            bar.update(min(len(ended), max(0, num_users - bar.n)))
        bar.close()
    columns = {name: np.concatenate(values) for name, values in rows.items()}
    keep = np.isin(columns["user"], np.array(finished[:num_users], dtype=np.int64))
    order = np.lexsort((columns["slot"][keep], columns["step"][keep], columns["user"][keep]))
    columns = {name: values[keep][order] for name, values in columns.items()}
    metadata = {
        "catalog_fingerprint": simulator.catalog.fingerprint,
        "model_id": simulator.catalog.model_id,
        "preset": config.preset,
        "params": simulator.user_model.to_dict(),
        "policy": getattr(policy, "name", type(policy).__name__),
        "policy_privileged": bool(getattr(policy, "privileged", False)),
        "seed": seed,
        "num_envs": n,
        "warmup_steps": config.warmup_steps,
        "max_episode_steps": config.max_episode_steps,
    }
    if config.history_record is not None:
        metadata["history"] = config.history_record
    return InteractionLog(**columns, metadata=metadata)
