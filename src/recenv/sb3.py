"""Stable-Baselines3's ``VecEnv`` over the native vector env: SB3 learners train on N users in one batch.

SB3 wraps a scalar Gymnasium env in its own ``DummyVecEnv`` (a Python loop over copies of the env);
:class:`SB3VecEnv` instead hands SB3 the native :class:`recenv.DriftingUserVectorEnv` — or its public
view, :class:`recenv.public_view.PublicVectorEnv`, or any Gymnasium 1.x vector env with the same
API — so every SB3 step is one batched step of all users::

    from stable_baselines3 import PPO
    from recenv import DriftingUserVectorEnv
    from recenv.public_view import public_view
    from recenv.sb3 import SB3VecEnv

    venv = SB3VecEnv(public_view(DriftingUserVectorEnv(num_envs=64, preset="mixed")))
    PPO("MlpPolicy", venv, seed=0).learn(200_000)   # 200k user-steps

Semantics (SB3's ``VecEnv`` contract, https://stable-baselines3.readthedocs.io/en/master/guide/vec_envs.html):

- **Same-step autoreset.** ``step_wait()`` returns ``(observations, rewards, dones, infos)`` with
  ``dones = terminated | truncated``; a user whose session ended is reset in that same step: the
  returned observation is the new session's first, the last observation of the finished one is in
  ``infos[i]["terminal_observation"]``, ``infos[i]["TimeLimit.truncated"]`` is True when it was cut
  at the horizon rather than ended by the user, and the new session's reset info (its warm-up
  history) is in ``reset_infos[i]``. A vector env built with ``autoreset_mode="same_step"`` already
  does this (its ``info["final_obs"]``/``info["final_info"]`` are read); one with ``"next_step"``
  (Gymnasium's default) or ``"disabled"`` is reset by the adapter with Gymnasium's
  ``reset(options={"reset_mask": done})``, so either works and no step is wasted on an ignored action.
- **Episode statistics.** ``infos[i]["episode"] = {"r": return, "l": length, "t": seconds since the
  adapter was made}`` on the step that ends user ``i``'s session — what SB3's ``Monitor`` would
  add — so SB3's ``ep_rew_mean`` and callbacks that read episodes work without a wrapper. (A
  ``VecMonitor`` on top is harmless: it writes the same numbers.)
- **Infos.** The vector env's dict of arrays (with ``_key`` masks) becomes SB3's list of per-user
  dicts; a public view's infos carry only what the information policy allows.
- **One env, N users.** ``seed(s)`` seeds the next ``reset()`` with the one int ``s`` (the native env
  draws every user from one generator; it returns ``[s, s + 1, ...]`` as SB3 expects). ``reset``
  options apply to all users (they must be the same for every user) and stay in force for the
  resets that follow. ``get_attr`` reads the shared env's attribute (one value per user);
  ``set_attr`` and ``env_method`` act on the shared env once and so accept only all users.
  ``env_is_wrapped`` looks down the Gymnasium wrapper chain. ``render()`` shows (``"human"``) or
  tiles (``"rgb_array"``) the pictures of the users the vector env draws (its ``render_users``).

Observations, rewards and dones are numpy arrays (a ``array_type="torch"`` env is copied to host);
actions are numpy integer arrays ``(num_envs,)``. Observation and action spaces are the vector
env's *single-user* spaces, as SB3 expects.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

__all__ = ["SB3VecEnv"]

_REQUIRED = ("reset", "step", "num_envs", "single_observation_space", "single_action_space")
_FINAL_KEYS = ("final_obs", "_final_obs", "final_info", "_final_info")


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach"):  # a torch tensor (array_type="torch")
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _info_rows(info: dict[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """Gymnasium's vector ``info`` (a dict of arrays, each with an optional boolean ``_key`` mask,
    nested dicts likewise) → one dict per user, holding only the entries its mask allows."""
    rows: list[dict[str, Any]] = [{} for _ in range(num_envs)]
    for key, value in info.items():
        if key.startswith("_") or key in _FINAL_KEYS:
            continue
        mask = info.get(f"_{key}")
        users = range(num_envs) if mask is None else np.flatnonzero(_numpy(mask)).tolist()
        if isinstance(value, dict):
            nested = _info_rows(value, num_envs)
            for user in users:
                rows[user][key] = nested[user]
            continue
        array = _numpy(value)
        values = array.tolist() if array.ndim == 1 and array.dtype != object else array
        for user in users:
            rows[user][key] = values[user]
    return rows


class SB3VecEnv(VecEnv):
    """SB3's ``VecEnv`` over a Gymnasium vector env of users (see the module docstring).

    :param env: a :class:`recenv.DriftingUserVectorEnv`, its public view, or any Gymnasium 1.x
        vector env with ``reset``/``step``/``num_envs``/``single_observation_space``/
        ``single_action_space`` (and ``metadata["autoreset_mode"]``; next-step is assumed without it).
    """

    def __init__(self, env: Any):
        missing = [name for name in _REQUIRED if not hasattr(env, name)]
        if missing:
            raise TypeError(f"SB3VecEnv needs a Gymnasium vector env; {type(env).__name__} has no {', '.join(missing)}")
        self.env = env
        mode = getattr(env, "metadata", {}).get("autoreset_mode", AutoresetMode.NEXT_STEP)
        self.same_step = mode in (AutoresetMode.SAME_STEP, AutoresetMode.SAME_STEP.value, "same_step")
        super().__init__(int(env.num_envs), env.single_observation_space, env.single_action_space)
        self._actions: np.ndarray | None = None
        self._options_in_force: dict[str, Any] = {}
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._started = time.perf_counter()

    # ---------------------------------------------------------------- SB3's VecEnv API

    def reset(self) -> np.ndarray:
        options = self._options[0] if self._options else {}
        if any(other != options for other in self._options):
            raise ValueError("the vector env applies reset options to all users at once; set the same options for every user")
        self._options_in_force = dict(options)
        observation, info = self.env.reset(seed=self._seeds[0], options=dict(options) or None)
        self.reset_infos = _info_rows(info, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return _numpy(observation)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape((self.num_envs, *self.action_space.shape))

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        observation, reward, terminated, truncated, info = self.env.step(self._actions)
        self._actions = None
        observation, reward = _numpy(observation), _numpy(reward).astype(np.float32, copy=False)
        terminated, truncated = _numpy(terminated).astype(bool), _numpy(truncated).astype(bool)
        done = terminated | truncated
        infos = _info_rows(info, self.num_envs)
        self._returns += reward
        self._lengths += 1
        if done.any():
            users = np.flatnonzero(done).tolist()
            if self.same_step:
                terminal = info["final_obs"]
                final_rows = _info_rows(info.get("final_info", {}), self.num_envs)
                step_keys = set(info.get("final_info", {}))
                for user in users:
                    self.reset_infos[user] = {k: v for k, v in infos[user].items() if k not in step_keys}
                    infos[user] = final_rows[user]
            else:  # next-step or disabled autoreset: reset the finished users now
                terminal = observation[done].copy()
                terminal = dict(zip(users, terminal))
                observation, reset_info = self.env.reset(options={**self._options_in_force, "reset_mask": done})
                observation = _numpy(observation)
                reset_rows = _info_rows(reset_info, self.num_envs)
                for user in users:
                    self.reset_infos[user] = reset_rows[user]
            elapsed = round(time.perf_counter() - self._started, 6)
            for user in users:
                infos[user]["terminal_observation"] = _numpy(terminal[user])
                infos[user]["TimeLimit.truncated"] = bool(truncated[user] and not terminated[user])
                infos[user]["episode"] = {"r": float(self._returns[user]), "l": int(self._lengths[user]), "t": elapsed}
            self._returns[done] = 0.0
            self._lengths[done] = 0
        return observation, reward, done, infos

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed the next :meth:`reset` with ``seed`` (one int for the whole batch of users; ``None``:
        unseeded, no global RNG is read)."""
        self._seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        return self._seeds

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The shared env's attribute, once per user in ``indices``."""
        value = getattr(self.env, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._all_users(indices, "set_attr")
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list[Any]:
        """Call the shared env's method once; its result is repeated for every user."""
        users = self._all_users(indices, "env_method")
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result for _ in users]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        wrapped, current, seen = False, self.env, set()
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if isinstance(current, wrapper_class):
                wrapped = True
                break
            current = getattr(current, "env", None)
        return [wrapped for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        """The pictures of the users the vector env draws (its first ``render_users``; SB3's
        ``render()`` tiles them), for an env made with ``render_mode="rgb_array"``."""
        if getattr(self.env, "render_mode", None) != "rgb_array":
            raise ValueError(f"get_images needs a vector env made with render_mode='rgb_array', not {self.render_mode!r}")
        return list(self.env.render())

    # ---------------------------------------------------------------- helpers

    def _all_users(self, indices: VecEnvIndices, what: str) -> list[int]:
        users = list(self._get_indices(indices))
        if sorted(users) != list(range(self.num_envs)):
            raise ValueError(f"{what} acts on the one env that simulates every user; it cannot target a subset of users")
        return users

    def __repr__(self) -> str:
        return f"SB3VecEnv({self.env!r}, num_envs={self.num_envs})"
