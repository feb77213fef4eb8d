"""SB3PPOAgent: Stable-Baselines3's PPO trained on the native vector env, behind the same protocol.

PPO is on-policy: it learns from fresh rollouts of many users at once, which is what the native
vector env gives cheaply. :meth:`SB3PPOAgent.learn` trains on all users of a vector env (native or
its public view) through :class:`recenv.sb3.SB3VecEnv` — one batched step of every user per SB3
step, instead of SB3's Python loop over scalar envs. Saved and loaded like
:class:`agents.SB3DQNAgent`: policy weights only, read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from agents.base import BaseAgent
from agents.persistence import load_agent_file, save_agent_file
from agents.sb3_dqn import _has_rich, sb3_training_env, training_log_callback
from agents.training_log import TrainingLog

__all__ = ["SB3PPOAgent", "SB3PPOConfig"]


@dataclass(frozen=True)
class SB3PPOConfig:
    """Arguments passed to ``stable_baselines3.PPO`` (see its documentation for each).

    Defaults are for the default catalog (500 items), 64 users trained in parallel and sessions of
    20–40 steps: a rollout of ``n_steps`` = 64 steps per user (4,096 user-steps, about two sessions
    per user) and ``n_epochs`` passes over it in minibatches of ``batch_size`` (capped at the
    rollout's size). ``net_arch`` sizes both the policy and the value network.

    Chosen on the ``mixed`` preset, 200k user-steps on 64 users (public view), 500 held-out users
    (``run_sessions(..., seed=1_000_000)``), clicks per session with the greedy policy:
    lr 3e-4, 4 epochs, entropy 0.01, γ 0.99 → 3.64 (the argmax repeats items); lr 1e-3, 10 epochs,
    entropy 0 → 6.67 at γ 0.99 and 7.36 / 7.39 (seeds 0 / 1, ± 0.10) at γ 0.9, these defaults.
    """

    learning_rate: float = 1e-3
    n_steps: int = 64
    batch_size: int = 1024
    n_epochs: int = 10
    gamma: float = 0.9
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    seed: int = 0


class SB3PPOAgent(BaseAgent):
    """``stable_baselines3.PPO`` with an ``MlpPolicy`` over the items.

    :param env: the env it is made for (scalar or vector; it fixes the observation space and catalog).
    :param config: hyper-parameters (:class:`SB3PPOConfig`).
    :param device: torch device of the policy (``"auto"``: CUDA when present; an MLP this size is
        usually as fast on the CPU).

    :attr:`log` (:class:`agents.training_log.TrainingLog`) holds the learning curve of the last
    :meth:`learn` (``steps``, ``episode_return``, ...).
    """

    def __init__(self, env: Any, config: SB3PPOConfig = SB3PPOConfig(), device: str = "auto"):
        super().__init__(env)
        self.config = config
        self.device = device
        self.model: Any = None
        self.log = TrainingLog()

    def _new_model(self, env: Any) -> Any:
        from stable_baselines3 import PPO

        c = asdict(self.config)
        net_arch, seed = c.pop("net_arch"), c.pop("seed")
        rollout = c["n_steps"] * int(getattr(env, "num_envs", 1))
        c["batch_size"] = min(c["batch_size"], rollout)
        return PPO("MlpPolicy", env, policy_kwargs={"net_arch": net_arch}, seed=seed, device=self.device, verbose=0, **c)

    def learn(self, env: Any, total_timesteps: int, progress: bool = True, tensorboard_dir: str | None = None) -> SB3PPOAgent:
        """Train SB3's PPO for ``total_timesteps`` user-steps (rounded up to whole rollouts) on
        ``env``: a vector env (native or public view, any autoreset mode) through
        :class:`recenv.sb3.SB3VecEnv`, or a scalar env through SB3's ``DummyVecEnv``. Learning again
        on an env with another number of users keeps the policy's weights."""
        env = sb3_training_env(env)
        users = int(getattr(env, "num_envs", 1))
        if self.model is None:
            self.model = self._new_model(env)
        elif self.model.n_envs != users:
            weights = self.model.policy.state_dict()
            self.model = self._new_model(env)
            self.model.policy.load_state_dict(weights)
        else:
            self.model.set_env(env)
        if tensorboard_dir is not None:
            from stable_baselines3.common.logger import configure

            self.model.set_logger(configure(tensorboard_dir, ["tensorboard"]))
        self.model.learn(total_timesteps=total_timesteps, callback=training_log_callback(self.log),
                         progress_bar=progress and _has_rich())
        return self

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        if self.model is None:
            raise RuntimeError("SB3PPOAgent has no model yet: learn(env, total_timesteps) or load(path) first")
        batch, single = self._as_batch(observation)
        actions, _ = self.model.predict(batch, deterministic=deterministic)
        return self._result(actions, single), state

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Policy weights, config and the catalog they belong to (safe to load)."""
        if self.model is None:
            raise RuntimeError("nothing to save: the agent has not learnt yet")
        state = {name: tensor.detach().cpu() for name, tensor in self.model.policy.state_dict().items()}
        return save_agent_file(path, "SB3PPOAgent", self.catalog, self.observation_space.shape, self.env_config,
                               config=asdict(self.config), state_dict=state)

    def load(self, path: str | os.PathLike[str], env: Any = None) -> SB3PPOAgent:
        """Load policy weights; ``env`` (scalar or vector; default: a scalar env built from
        :attr:`env_config`) shapes the policy."""
        payload = load_agent_file(path, "SB3PPOAgent", self.catalog, self.observation_space.shape)
        self.config = SB3PPOConfig(**payload["config"])
        if env is None:
            env = gym.make("DriftingUser-v0", config=self.env_config)
        self.model = self._new_model(sb3_training_env(env))
        self.model.policy.load_state_dict(payload["state_dict"])
        return self
