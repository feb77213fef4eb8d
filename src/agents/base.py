"""The agent protocol: Stable-Baselines3's ``predict()`` as the common face of every recommender.

Any object with

    predict(observation, state=None, episode_start=None, deterministic=True) -> (action, state)

is an agent — an SB3 model (``stable_baselines3.DQN``, ...) included, unchanged. ``observation`` is
one observation of the env's ``single_observation_space`` (→ one action) or a batch ``(N, ...)``
from the vector env (→ ``N`` actions). ``state`` and ``episode_start`` are SB3's recurrent-policy
arguments: an agent that keeps per-user memory returns it as ``state`` and gets it back on the
next call; ``episode_start[i]`` says user ``i`` is new.

Optional methods, used when present:

- ``learn(env, total_timesteps)``: train by interacting with ``env``.
- ``save(path)`` / ``load(path)``: weights only, loaded safely (``torch.load(weights_only=True)``).
- ``bind(env)``: called by the evaluation harness with the env the agent will act in, for agents
  that read the users' logged past (``env.warmup_history()``) or, privileged, the simulator.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from recenv import DriftingUserEnv, DriftingUserVectorEnv, EnvConfig
from recenv.public_view import PublicEnv, PublicVectorEnv

from agents.training_log import TrainingLog

__all__ = ["Agent", "BaseAgent", "LearningAgent", "env_spaces", "episode_starts", "require_vector_env", "unwrap_env"]


@runtime_checkable
class Agent(Protocol):
    """What every agent provides (SB3's signature)."""

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]: ...


def unwrap_env(env: Any) -> DriftingUserEnv | DriftingUserVectorEnv | PublicEnv | PublicVectorEnv:
    """The recenv env under Gymnasium wrappers: a :class:`recenv.DriftingUserEnv` or
    :class:`recenv.DriftingUserVectorEnv`, or the public view of one (:mod:`recenv.public_view`:
    what a non-privileged agent is given); a clear error for anything else."""
    inner = getattr(env, "unwrapped", env)
    if not isinstance(inner, (DriftingUserEnv, DriftingUserVectorEnv, PublicEnv, PublicVectorEnv)):
        raise TypeError(f"expected a DriftingUser-v0 env (scalar or vector), got {type(inner).__name__}")
    return inner


def require_vector_env(env: Any, who: str) -> int:
    """The number of users of a vector env with next-step autoreset (what the native learners'
    ``learn`` trains on: :class:`agents.training_log.TrainingEpisodes` masks the reset step that
    follows a finished session); a clear error for anything else."""
    num_envs = getattr(env, "num_envs", None)
    mode = getattr(env, "metadata", {}).get("autoreset_mode")
    if num_envs is None or mode is None:
        raise TypeError(f"{who}.learn needs a vector env, e.g. gym.make_vec('DriftingUser-v0', num_envs=64)")
    if mode != gym.vector.AutoresetMode.NEXT_STEP:
        raise ValueError(f"{who}.learn needs next-step autoreset (the vector env's default), got {mode}: with "
                         "another mode it would drop real transitions and bootstrap from the next user")
    return int(num_envs)


def episode_starts(episode_start: Any, users: int) -> np.ndarray:
    """SB3's ``episode_start`` as a ``(users,)`` bool array (a scalar or one flag per user; None:
    no user starts). Read-only: copy it before writing."""
    if episode_start is None:
        return np.zeros(users, dtype=bool)
    return np.broadcast_to(np.asarray(episode_start, dtype=bool).reshape(-1), (users,))


def env_spaces(env: Any) -> tuple[gym.spaces.Box, int]:
    """The single-user observation space and the number of items of a scalar or vector env."""
    inner = unwrap_env(env)
    space = getattr(inner, "single_observation_space", inner.observation_space)
    return space, inner.catalog.num_items


class BaseAgent:
    """Shared plumbing: single vs batched observations, shape errors, binding to an env.

    :param env: the env (scalar or vector) the agent is made for; it fixes the observation space
        and the catalog.
    """

    #: Whether this agent reads privileged simulator state (the oracles do). The evaluation harness
    #: and the comparison give agents that do not declare it public views only
    #: (:mod:`recenv.public_view`), and mark those that do in every table.
    privileged: bool = False

    def __init__(self, env: Any):
        self.observation_space, self.num_items = env_spaces(env)
        inner = unwrap_env(env)
        self.catalog = inner.catalog
        #: The settings of the env the agent was made for; what it rebuilds envs from.
        self.env_config: EnvConfig = inner.config
        self.env: Any = None

    @property
    def obs_mode(self) -> str:
        return self.env_config.obs_mode

    def bind(self, env: Any) -> None:
        """Act in ``env`` from now on (agents that read the env use it; others ignore it)."""
        inner = unwrap_env(env)
        if inner.catalog.fingerprint != self.catalog.fingerprint:
            raise ValueError("this agent was made for another catalog than the env's")
        self.env = inner

    def _as_batch(self, observation: Any) -> tuple[np.ndarray, bool]:
        """``(observations (B, ...), was_single)``; a clear error for any other shape."""
        array = np.asarray(observation)
        shape = self.observation_space.shape
        if array.shape == shape:
            return array[None], True
        if array.ndim == len(shape) + 1 and array.shape[1:] == shape:
            return array, False
        raise ValueError(
            f"observation of shape {array.shape} does not fit this agent's observation space {shape} "
            f"(obs_mode={self.obs_mode!r}) or a batch (N, {', '.join(map(str, shape))})"
        )

    def _epsilon_greedy(self, greedy: np.ndarray, epsilon: float, rng: np.random.Generator,
                        num_actions: int | None = None) -> np.ndarray:
        """``greedy`` actions, each replaced with probability ε by a uniformly random action among
        ``num_actions`` (None: the items)."""
        explore = rng.random(len(greedy)) < epsilon
        return np.where(explore, rng.integers(self.num_items if num_actions is None else num_actions, size=len(greedy)),
                        greedy)

    @staticmethod
    def _result(actions: np.ndarray, single: bool) -> np.ndarray:
        actions = np.asarray(actions, dtype=np.int64)
        return actions[0] if single else actions

    def _bound_users(self, batch: int) -> Any:
        if self.env is None:
            raise RuntimeError(f"{type(self).__name__} reads its env: call agent.bind(env) (the harness does) first")
        users = getattr(self.env, "num_envs", 1)
        if users != batch:
            raise ValueError(f"got {batch} observations but the bound env has {users} users")
        return self.env

    def predict(self, observation, state=None, episode_start=None, deterministic=True) -> tuple[np.ndarray, Any]:
        """:meth:`Agent.predict`, which every agent supplies."""
        raise NotImplementedError(f"{type(self).__name__} does not implement predict(observation, state, "
                                  "episode_start, deterministic)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_items={self.num_items}, obs_mode={self.obs_mode!r})"


class LearningAgent(BaseAgent):
    """An agent that learns with torch: its hyper-parameters, device, observation size and
    training log (what :class:`agents.off_policy.OffPolicyLearner` and :class:`agents.PPOAgent`
    share).

    :param env: the env it is made for (fixes observation space and catalog).
    :param config: its hyper-parameters (a frozen dataclass).
    :param device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    """

    def __init__(self, env: Any, config: Any, device: str = "auto"):
        super().__init__(env)
        from recenv.simulator import resolve_device

        self.config = config
        self.device = resolve_device(device)
        self.observation_size = int(np.prod(self.observation_space.shape))
        self.log = TrainingLog()
