"""What training loops report: steps per second, episode returns, losses — on the progress bar,
in a history list, and optionally in TensorBoard."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from recenv.threads import cap_torch_threads

__all__ = ["TrainingEpisodes", "TrainingLog", "TrainingRun", "linear_schedule", "work_bar"]


def work_bar(total: int, desc: str, unit: str, progress: bool = True) -> tqdm:
    """The progress bar of a training or evaluation loop. First caps torch's threads at the cores
    this process gets (:func:`recenv.threads.cap_torch_threads`) and says on the bar how many it
    uses, so that a slow run on a shared machine shows why."""
    threads = cap_torch_threads()
    return tqdm(total=total, desc=f"{desc} [{threads} torch thread{'s' if threads > 1 else ''}]", unit=unit,
                disable=not progress)


def linear_schedule(start: float, end: float, fraction: float, steps: int, total: int) -> float:
    """From ``start`` to ``end`` linearly over the first ``fraction`` of ``total`` steps, then ``end``."""
    return end + (start - end) * max(0.0, 1.0 - steps / max(fraction * total, 1e-9))


class TrainingLog:
    """Collects episode returns and scalars; :meth:`record` every ``every`` steps.

    :param every: user-steps between two records.
    :param window: episodes averaged in the reported return.
    """

    def __init__(self, every: int = 5_000, window: int = 100):
        self.every, self.window = every, window
        self.history: list[dict[str, float]] = []
        self._returns: deque[float] = deque(maxlen=window)
        self._lengths: deque[float] = deque(maxlen=window)
        self._next = every
        self._writer: Any = None

    def start(self, tensorboard_dir: str | None = None) -> None:
        self._next = self.every
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(tensorboard_dir)

    def episode(self, episode_return: float, length: float) -> None:
        self._returns.append(float(episode_return))
        self._lengths.append(float(length))

    def due(self, steps: int) -> bool:
        return steps >= self._next

    def record(self, steps: int, started: float, bar: Any = None, **scalars: float) -> dict[str, float]:
        while self._next <= steps:
            self._next += self.every
        row = {"steps": float(steps), "steps_per_second": steps / max(time.perf_counter() - started, 1e-9)}
        if self._returns:
            row["episode_return"] = sum(self._returns) / len(self._returns)
            row["episode_length"] = sum(self._lengths) / len(self._lengths)
        row.update({name: float(value) for name, value in scalars.items()})
        self.history.append(row)
        if self._writer is not None:
            for name, value in row.items():
                if name != "steps":
                    self._writer.add_scalar(f"train/{name}", value, steps)
        if bar is not None:
            bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k != "steps"})
        return row

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class TrainingEpisodes:
    """The episodes of each user while training on a vector env with next-step autoreset.

    A user whose session ended in one step is reset in the next, which returns their first
    observation and ignores their action: that step is no transition. :meth:`update` says which
    users made a real transition and reports every finished session's return to ``log``.
    """

    def __init__(self, num_envs: int, log: TrainingLog):
        self.log = log
        self.previous_done = np.zeros(num_envs, dtype=bool)
        self.returns, self.lengths = np.zeros(num_envs), np.zeros(num_envs)

    def update(self, reward: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
        """Account for one vector step; returns the ``(N,)`` mask of users that made a transition."""
        valid = ~self.previous_done
        self.returns += np.where(valid, reward, 0.0)
        self.lengths += valid
        done = (terminated | truncated) & valid
        for user in np.flatnonzero(done):
            self.log.episode(self.returns[user], self.lengths[user])
        self.returns[done], self.lengths[done] = 0.0, 0.0
        self.previous_done = terminated | truncated
        return valid


class TrainingRun:
    """The bookkeeping of one training loop over a vector env with next-step autoreset, written
    once for every learner: the log (started, with TensorBoard when ``tensorboard_dir`` is given),
    the episodes of each user, the user-steps and vector steps made, the progress bar.

    :param log: the agent's :class:`TrainingLog`.
    :param num_envs: users of the vector env.
    :param total_timesteps: user-steps to train for (:attr:`running` until they are made).
    :param desc: the progress bar's label.
    """

    def __init__(self, log: TrainingLog, num_envs: int, total_timesteps: int, desc: str, progress: bool = True,
                 tensorboard_dir: str | None = None):
        self.log, self.total_timesteps = log, total_timesteps
        log.start(tensorboard_dir)
        self.episodes = TrainingEpisodes(num_envs, log)
        self.steps, self.vector_steps = 0, 0
        self.started = time.perf_counter()
        self.bar = work_bar(total_timesteps, desc, "step", progress)

    @property
    def running(self) -> bool:
        """Whether fewer than ``total_timesteps`` user-steps were made."""
        return self.steps < self.total_timesteps

    def step(self, reward: Any, terminated: Any, truncated: Any) -> np.ndarray:
        """Account for one vector step (:meth:`TrainingEpisodes.update`); returns the ``(N,)`` mask
        of users that made a transition."""
        valid = self.episodes.update(reward, terminated, truncated)
        made = int(valid.sum())
        self.steps += made
        self.vector_steps += 1
        self.bar.update(made)
        return valid

    def record(self, **scalars: float) -> None:
        """A point of the learning curve now (:meth:`TrainingLog.record`)."""
        self.log.record(self.steps, self.started, bar=self.bar, **scalars)

    def record_when_due(self, **scalars: float) -> None:
        """:meth:`record` every ``log.every`` user-steps and at the last step, which closes the curve."""
        if self.log.due(self.steps) or not self.running:
            self.record(**scalars)

    def close(self) -> None:
        self.bar.close()
        self.log.close()
