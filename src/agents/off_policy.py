"""OffPolicyLearner: the training loop of the replay-based learners, written once.

Stable-Baselines3's split (``OffPolicyAlgorithm.collect_rollouts`` in the base class, ``train()``
per algorithm): :meth:`OffPolicyLearner.learn` runs the loop that :class:`agents.DQNAgent`,
:class:`agents.recurrent_dqn.RecurrentDQNAgent`, :class:`agents.LongTermValueAgent` and
:class:`agents.slate_q.SlateQAgent` share, read top to bottom::

    reset the vector env (seed = config.seed)
    while fewer than total_timesteps user-steps were made:
        ε = linear schedule from start_epsilon to end_epsilon over exploration_fraction of the budget
        actions = _act(env, observation, ε)                 # the algorithm's ε-greedy behaviour
        step the env; mask the reset step of a finished user (next-step autoreset: no transition)
        _store(...)                                         # the algorithm's replay (and per-user memory)
        every train_frequency vector steps, once learning_starts user-steps were made:
            gradient_steps × train_step(ε)                  # the algorithm's loss and update
            every target_update_interval gradient steps: _update_target()
        log (progress bar, history, TensorBoard) every log.every user-steps and at the end
        save a checkpoint (the agent file of save()) every checkpoint_every user-steps

What an algorithm supplies: ``_setup_learning`` (its replay, optimisers and per-user memory),
``_act``, ``_store``, ``train_step`` and ``_networks`` (online and target network), and optionally
``_start_collection``, ``_env_actions``, ``_check_training_env``, ``_ready_to_train``,
``_initial_scalars`` and ``_progress_scalars``. Its ``config`` is an :class:`OffPolicyConfig` (the fields the loop reads).

:class:`TransitionRing` is the ring-buffer arithmetic the replay buffers share.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from agents.base import LearningAgent, require_vector_env
from agents.training_log import TrainingRun, linear_schedule

__all__ = ["OffPolicyConfig", "OffPolicyLearner", "TransitionRing"]


@dataclass(frozen=True)
class OffPolicyConfig:
    """The hyper-parameters of :class:`OffPolicyLearner`'s loop; each learner's config extends it
    (and may set other defaults).

    :param learning_starts: user-steps of experience before the first gradient step.
    :param train_frequency: gradient steps are taken every this many vector steps ...
    :param gradient_steps: ... this many at a time.
    :param target_update_interval: gradient steps between copies of the online network into the
        target network.
    :param start_epsilon: exploration rate at the start ...
    :param end_epsilon: ... decayed linearly to this (also the rate of ``predict(deterministic=False)``) ...
    :param exploration_fraction: ... over this share of the training user-steps.
    :param max_grad_norm: gradient-norm clipping threshold of each gradient step.
    :param seed: seeds initialisation, exploration and replay sampling.
    """

    learning_starts: int = 5_000
    train_frequency: int = 1
    gradient_steps: int = 2
    target_update_interval: int = 2_000
    start_epsilon: float = 1.0
    end_epsilon: float = 0.05
    exploration_fraction: float = 0.05
    max_grad_norm: float = 10.0
    seed: int = 0


class TransitionRing:
    """Where the next transitions of a ring buffer of ``capacity`` go, and uniform draws of stored
    ones: the arithmetic every replay buffer here shares (the tensors are the subclass's)."""

    def __init__(self, capacity: int):
        self.capacity, self.size, self.position = capacity, 0, 0

    def _advance(self, count: int, device: torch.device) -> Tensor:
        """The ``(count,)`` slots the next ``count`` transitions take (the oldest are overwritten)."""
        index = (self.position + torch.arange(count, device=device)) % self.capacity
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)
        return index

    def _draw(self, batch_size: int, generator: torch.Generator, device: torch.device) -> Tensor:
        """``(batch_size,)`` stored slots, uniformly with replacement, drawn from ``generator``."""
        return torch.randint(self.size, (batch_size,), generator=generator, device=generator.device).to(device)


class OffPolicyLearner(LearningAgent):
    """A learner trained by :meth:`learn`'s off-policy loop (see the module docstring); a subclass
    supplies its replay, behaviour, loss and update.

    :param env: the env it is made for (fixes observation space and catalog).
    :param config: hyper-parameters, an :class:`OffPolicyConfig`; its ``seed`` also seeds
        :attr:`rng`, which exploration draws from.
    :param device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    """

    def __init__(self, env: Any, config: Any, device: str = "auto"):
        super().__init__(env, config, device)
        self.rng = np.random.default_rng(config.seed)

    #: The progress bar's label.
    progress_label: str = "off-policy learner"

    def learn(self, env: Any, total_timesteps: int, progress: bool = True, tensorboard_dir: str | None = None,
              checkpoint_every: int | None = None, checkpoint_dir: str | os.PathLike[str] | None = None) -> Any:
        """Train on a vector env (``gym.make_vec`` or its public view, next-step autoreset) for
        ``total_timesteps`` user-steps.

        :param progress: show a progress bar.
        :param tensorboard_dir: also write the training curves there (TensorBoard).
        :param checkpoint_every: save the agent (:meth:`save`) into ``checkpoint_dir`` as
            ``<class>-<user-steps>.pt`` the first time the user-steps made reach each multiple of
            this; None: no checkpoints. A checkpoint is an agent file: :meth:`load` it into an agent
            made for the same env to act with those weights or to train on from them (the replay,
            the optimiser's moments and the ε schedule are not in it: training on starts them afresh).
        """
        num_envs = require_vector_env(env, type(self).__name__)
        self._check_training_env(env)
        checkpoints = _Checkpoints(checkpoint_every, checkpoint_dir, type(self).__name__)
        c = self.config
        self._setup_learning(env, num_envs)
        observation, _ = env.reset(seed=c.seed)
        self._start_collection(env, observation, num_envs)
        run = TrainingRun(self.log, num_envs, total_timesteps, self.progress_label, progress, tensorboard_dir)
        scalars = self._initial_scalars()
        gradient_steps = 0
        while run.running:
            # 1. Act: the algorithm's ε-greedy behaviour.
            epsilon = linear_schedule(c.start_epsilon, c.end_epsilon, c.exploration_fraction, run.steps,
                                      total_timesteps)
            actions = self._act(env, observation, epsilon)
            next_observation, reward, terminated, truncated, info = env.step(self._env_actions(actions))

            # 2. Store the transitions. A user reset in this step (next-step autoreset) made none.
            valid = run.step(reward, terminated, truncated)
            self._store(observation, actions, reward, next_observation, terminated, truncated, info, valid)
            observation = next_observation

            # 3. Learn from replayed transitions; 4. refresh the target network on its schedule.
            if run.steps >= c.learning_starts and self._ready_to_train() and run.vector_steps % c.train_frequency == 0:
                for _ in range(c.gradient_steps):
                    last = self.train_step(epsilon)
                    gradient_steps += 1
                    if gradient_steps % c.target_update_interval == 0:
                        self._update_target()
                scalars.update({name: float(value) for name, value in last.items()})
            run.record_when_due(epsilon=epsilon, **scalars, **self._progress_scalars())
            checkpoints.save_when_due(self, run.steps)
        run.close()
        return self

    # ---------------------------------------------------------------- what an algorithm supplies

    def _check_training_env(self, env: Any) -> None:
        """Refuse a training env that does not fit this agent (beyond :func:`require_vector_env`)."""

    def _setup_learning(self, env: Any, num_envs: int) -> None:
        """Make the replay buffer, the optimisers and what else one call of :meth:`learn` keeps."""
        raise NotImplementedError

    def _start_collection(self, env: Any, observation: Any, num_envs: int) -> None:
        """Per-user memory from the reset's first observations; none by default."""

    def _act(self, env: Any, observation: Any, epsilon: float) -> np.ndarray:
        """The behaviour policy's actions for one vector step (ε-greedy at ``epsilon``)."""
        raise NotImplementedError

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        """What :meth:`_act`'s actions are passed to ``env.step`` as (the same by default)."""
        return actions

    def _store(self, observation: Any, actions: np.ndarray, reward: Any, next_observation: Any, terminated: Any,
               truncated: Any, info: dict[str, Any], valid: np.ndarray) -> None:
        """Keep the transitions of the users that made one (``valid``, ``(N,)``)."""
        raise NotImplementedError

    def _ready_to_train(self) -> bool:
        """Whether the replay holds something to learn from (checked with ``learning_starts``)."""
        return True

    def train_step(self, epsilon: float) -> dict[str, Any]:
        """One gradient step on a replayed batch; returns the scalars to log (floats or 0-d
        tensors: only the last gradient step's are read, after the loop)."""
        raise NotImplementedError

    def _networks(self) -> tuple[nn.Module, nn.Module]:
        """``(online, target)``: :meth:`_update_target` copies the first into the second."""
        raise NotImplementedError

    def _update_target(self) -> None:
        """Copy the online network's weights into the target network."""
        online, target = self._networks()
        target.load_state_dict(online.state_dict())

    def _initial_scalars(self) -> dict[str, float]:
        """The logged scalars before the first gradient step."""
        return {"loss": float("nan")}

    def _progress_scalars(self) -> dict[str, float]:
        """More scalars to log at every point of the curve; none by default."""
        return {}


class _Checkpoints:
    """Saves an agent file every ``every`` user-steps (see :meth:`OffPolicyLearner.learn`)."""

    def __init__(self, every: int | None, folder: str | os.PathLike[str] | None, name: str):
        if every is not None and (every < 1 or folder is None):
            raise ValueError(f"checkpoint_every must be ≥ 1 and come with a checkpoint_dir, got {every} and {folder!r}")
        self.every, self.name = every, name
        self.folder = None if folder is None else Path(folder)
        self.next = every

    def save_when_due(self, agent: Any, steps: int) -> Path | None:
        if self.every is None or steps < self.next:
            return None
        while self.next <= steps:
            self.next += self.every
        return agent.save(self.folder / f"{self.name}-{steps}.pt")
