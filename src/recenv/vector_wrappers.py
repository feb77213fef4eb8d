"""Single-user Gymnasium wrappers on the native vector env: what ``gym.make_vec(..., wrappers=...)``
does for environments vectorized by Gymnasium.

Gymnasium's ``make_vec`` refuses ``wrappers=`` for an environment with its own vector entry point
(``Cannot use `vector_entry_point` vectorization mode with the wrappers argument``), and
``DriftingUser-v0`` has one: :class:`recenv.DriftingUserVectorEnv`. Two ways remain:

- ``gym.make_vec("DriftingUser-v0", num_envs=N, vectorization_mode="sync", wrappers=[...])``: N
  scalar envs, each wrapped, stepped one after the other (slow, but any wrapper works);
- :func:`wrap_users` on the native env, which lifts each wrapper to the batch::

      envs = recenv.wrap_users(gym.make_vec("DriftingUser-v0", num_envs=1024),
                               [gym.wrappers.RecordEpisodeStatistics, gym.wrappers.FlattenObservation])

A wrapper given as a class that Gymnasium also ships as a vector wrapper of the same name
(``RecordEpisodeStatistics``, ``NormalizeObservation``, ``NormalizeReward``, ``FlattenObservation``,
...) becomes that vector wrapper, which works on the whole batch at once. Any other callable is
applied once to a stand-in single-user env; if what it builds is a chain of observation, action and
reward wrappers (``TransformObservation``, ``TransformReward``, ``ClipAction``, your own
``gym.ObservationWrapper`` subclasses, ...), their ``observation``/``action``/``reward`` methods are
applied to each user in turn. Wrappers that need the episode itself (``TimeLimit``,
``RecordVideo``, ...) are refused with the alternatives: per-user wrappers of that kind have no
meaning on one batch.

Gymnasium's vector wrappers compute with numpy. With ``array_type="torch"`` they fail; keep the
env's arrays numpy and put ``gymnasium.wrappers.vector.NumpyToTorch`` outermost to get tensors
(see ``docs/recipes.md``, Gymnasium).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import gymnasium.wrappers.vector as vector_wrappers
import numpy as np
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import concatenate, create_empty_array, iterate

__all__ = ["wrap_users"]

SingleUserWrapper = Callable[[gym.Env], gym.Env]


class _StandInUser(gym.Env):
    """A single-user env with the vector env's single spaces, for wrappers to be built on; it is
    never stepped."""

    def __init__(self, envs: VectorEnv):
        self.observation_space = envs.single_observation_space
        self.action_space = envs.single_action_space
        self.metadata = dict(getattr(envs, "metadata", {}))
        self.render_mode = getattr(envs, "render_mode", None)

    def step(self, action: Any) -> Any:
        raise RuntimeError("the stand-in user of recenv.wrap_users is never stepped")

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        raise RuntimeError("the stand-in user of recenv.wrap_users is never reset")


def wrap_users(envs: VectorEnv, wrappers: Sequence[SingleUserWrapper]) -> VectorEnv:
    """``envs`` with each single-user wrapper applied to every user, first to last, as
    ``gym.make_vec(..., wrappers=wrappers)`` would (see the module docstring for what is lifted how).

    :raises TypeError: a wrapper that is neither a Gymnasium vector wrapper's single-user twin nor
        a chain of observation, action and reward wrappers.
    """
    for wrapper in wrappers:
        envs = _lift(envs, wrapper)
    return envs


def _lift(envs: VectorEnv, wrapper: SingleUserWrapper) -> VectorEnv:
    twin = getattr(vector_wrappers, wrapper.__name__, None) if isinstance(wrapper, type) else None
    if isinstance(twin, type) and issubclass(twin, gym.vector.VectorWrapper):
        return twin(envs)
    stand_in = _StandInUser(envs)
    built = wrapper(stand_in)
    layers = []  # outermost first
    while built is not stand_in:
        if not isinstance(built, gym.Wrapper):
            raise TypeError(f"{_name(wrapper)} did not return a wrapper of the env it was given")
        if not isinstance(built, (gym.ObservationWrapper, gym.ActionWrapper, gym.RewardWrapper)):
            raise TypeError(
                f"{_name(wrapper)} builds {type(built).__name__}, which is neither an observation, action nor "
                "reward wrapper and has no vector twin in gymnasium.wrappers.vector, so it cannot be applied to "
                "the native vector env's users; use gym.make_vec(..., vectorization_mode='sync', wrappers=[...]) "
                "(one scalar env per user), or a vector wrapper from gymnasium.wrappers.vector on the native env"
            )
        layers.append(built)
        built = built.env
    for layer in reversed(layers):  # innermost first, as the single-user chain applies them
        envs = _per_user(envs, layer)
    return envs


def _per_user(envs: VectorEnv, layer: gym.Wrapper) -> VectorEnv:
    _check_numpy(envs, type(layer).__name__)
    if isinstance(layer, gym.ObservationWrapper):
        outer_space = layer.observation_space

        def observations(batch: Any) -> Any:
            out = create_empty_array(outer_space, envs.num_envs)
            return concatenate(outer_space, [layer.observation(obs) for obs in iterate(envs.observation_space, batch)], out)

        return vector_wrappers.TransformObservation(envs, observations, single_observation_space=outer_space)
    if isinstance(layer, gym.ActionWrapper):
        outer_action_space = gym.vector.utils.batch_space(layer.action_space, envs.num_envs)

        def actions(batch: Any) -> Any:
            out = create_empty_array(envs.single_action_space, envs.num_envs)
            converted = [layer.action(action) for action in iterate(outer_action_space, batch)]
            return concatenate(envs.single_action_space, converted, out)

        return vector_wrappers.TransformAction(envs, actions, single_action_space=layer.action_space)
    return vector_wrappers.TransformReward(
        envs, lambda rewards: np.asarray([layer.reward(reward) for reward in rewards.tolist()], dtype=rewards.dtype)
    )


def _check_numpy(envs: VectorEnv, name: str) -> None:
    if getattr(envs.unwrapped, "array_type", "numpy") != "numpy":
        raise TypeError(
            f"{name} works on numpy arrays; build the env with array_type='numpy' and put "
            "gymnasium.wrappers.vector.NumpyToTorch outermost for tensors"
        )


def _name(wrapper: SingleUserWrapper) -> str:
    return getattr(wrapper, "__qualname__", None) or repr(wrapper)
