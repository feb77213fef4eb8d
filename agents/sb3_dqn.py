"""SB3DQNAgent: Stable-Baselines3's DQN trained on DriftingUser-v0, behind the same protocol.

An SB3 model needs no adapter to be *evaluated* — it already has ``predict()``. This class is the
documented recipe to *train* one here (hyper-parameters suited to 500 items and sessions of tens
of steps) and to save and load it safely (policy weights only, read with
``torch.load(weights_only=True)``; SB3's own zip format unpickles objects).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from agents.base import BaseAgent, unwrap_env
from agents.persistence import load_agent_file, save_agent_file
from recenv.public_view import PublicEnv, PublicVectorEnv

__all__ = ["SB3DQNAgent", "SB3DQNConfig"]


@dataclass(frozen=True)
class SB3DQNConfig:
    """Arguments passed to ``stable_baselines3.DQN`` (see its documentation for each)."""

    learning_rate: float = 3e-4
    buffer_size: int = 100_000
    learning_starts: int = 5_000
    batch_size: int = 256
    gamma: float = 0.95
    train_freq: int = 4
    target_update_interval: int = 2_000
    exploration_fraction: float = 0.1
    exploration_final_eps: float = 0.05
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    seed: int = 0


class SB3DQNAgent(BaseAgent):
    """``stable_baselines3.DQN`` with an ``MlpPolicy`` on the scalar env.

    :param env: the env it is made for (scalar or vector; training uses a scalar env with the same
        settings, built by :meth:`learn`).
    :param config: hyper-parameters.
    :param device: torch device of the policy (``"auto"``: CUDA when present).
    """

    def __init__(self, env: Any, config: SB3DQNConfig = SB3DQNConfig(), device: str = "auto"):
        super().__init__(env)
        self.config = config
        self.device = device
        self.model: Any = None

    def _new_model(self, env: gym.Env) -> Any:
        from stable_baselines3 import DQN

        c = asdict(self.config)
        net_arch, seed = c.pop("net_arch"), c.pop("seed")
        return DQN("MlpPolicy", env, policy_kwargs={"net_arch": net_arch}, seed=seed, device=self.device, verbose=0, **c)

    def learn(self, env: Any, total_timesteps: int, progress: bool = True, tensorboard_dir: str | None = None) -> SB3DQNAgent:
        """Train SB3's DQN for ``total_timesteps`` steps on ``env`` (a scalar env; a vector env is
        replaced by a scalar env built from its config, behind the public view if the vector env
        was a public view)."""
        if hasattr(env, "num_envs"):
            public = isinstance(unwrap_env(env), PublicVectorEnv)
            env = gym.make("DriftingUser-v0", config=unwrap_env(env).config)
            if public:  # trained on a public view, it trains on the public view of the scalar env
                env = PublicEnv(env)
        if self.model is None:
            self.model = self._new_model(env)
        else:
            self.model.set_env(env)
        if tensorboard_dir is not None:
            from stable_baselines3.common.logger import configure

            self.model.set_logger(configure(tensorboard_dir, ["tensorboard"]))
        self.model.learn(total_timesteps=total_timesteps, progress_bar=progress and _has_rich())
        return self

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        if self.model is None:
            raise RuntimeError("SB3DQNAgent has no model yet: learn(env, total_timesteps) or load(path) first")
        batch, single = self._as_batch(observation)
        actions, _ = self.model.predict(batch, deterministic=deterministic)
        return self._result(actions, single), state

    def save(self, path: str | os.PathLike[str]) -> Path:
        if self.model is None:
            raise RuntimeError("nothing to save: the agent has not learnt yet")
        state = {name: tensor.detach().cpu() for name, tensor in self.model.policy.state_dict().items()}
        return save_agent_file(path, "SB3DQNAgent", self.catalog, self.observation_space.shape, self.env_config,
                               config=asdict(self.config), state_dict=state)

    def load(self, path: str | os.PathLike[str], env: Any = None) -> SB3DQNAgent:
        """Load policy weights; ``env`` (default: a scalar env built from :attr:`env_config`) shapes the policy."""
        payload = load_agent_file(path, "SB3DQNAgent", self.catalog, self.observation_space.shape)
        self.config = SB3DQNConfig(**payload["config"])
        if env is None:
            env = gym.make("DriftingUser-v0", config=self.env_config)
        self.model = self._new_model(env)
        self.model.policy.load_state_dict(payload["state_dict"])
        return self


def _has_rich() -> bool:
    # SB3's progress bar needs tqdm and rich; without rich it raises, so only ask when present.
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True
