"""What Stable-Baselines3 learners share here: the env they train on, a learning curve, and safe
weights files.

An SB3 model needs no adapter to be *evaluated* — it already has ``predict()``. :class:`SB3Learner`
is the documented recipe to *train* one on DriftingUser-v0 and to save and load it safely (policy
weights only, read with ``torch.load(weights_only=True)``; SB3's own zip format unpickles objects).
Given a vector env (native or its public view) it trains on all its users at once through
:class:`recenv.sb3.SB3VecEnv`; given a scalar env, through SB3's own ``DummyVecEnv``.
:class:`agents.SB3DQNAgent` and :class:`agents.SB3PPOAgent` say which SB3 algorithm, with which
hyper-parameters.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym

from agents.base import BaseAgent
from agents.persistence import load_agent_file, save_agent_file
from agents.training_log import TrainingLog

__all__ = ["SB3Learner", "sb3_training_env", "training_log_callback"]


def sb3_training_env(env: Any) -> Any:
    """What an SB3 model trains on: a Gymnasium vector env (``num_envs`` users, native or public
    view) becomes a :class:`recenv.sb3.SB3VecEnv`; an SB3 ``VecEnv`` or a scalar env is returned as
    it is (SB3 wraps a scalar env itself)."""
    from stable_baselines3.common.vec_env import VecEnv

    if isinstance(env, VecEnv) or not hasattr(env, "num_envs"):
        return env
    from recenv.sb3 import SB3VecEnv

    return SB3VecEnv(env)


def training_log_callback(log: TrainingLog) -> Any:
    """An SB3 callback that feeds ``log`` like the native learners feed theirs: each finished
    episode (``infos[i]["episode"]``, written by :class:`recenv.sb3.SB3VecEnv` or SB3's
    ``Monitor``), and a learning-curve row every ``log.every`` user-steps plus one at the end
    (``steps``, ``steps_per_second``, ``episode_return``, ``episode_length``, and ``epsilon``
    for DQN)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class TrainingLogCallback(BaseCallback):
        def _on_training_start(self) -> None:
            log.start()
            self.started = time.perf_counter()
            self.first_step = self.num_timesteps

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", ()):
                episode = info.get("episode")
                if episode is not None:
                    log.episode(episode["r"], episode["l"])
            steps = self.num_timesteps - self.first_step
            if log.due(steps):
                log.record(steps, self.started, **self._scalars())
            return True

        def _on_training_end(self) -> None:
            steps = self.num_timesteps - self.first_step
            if not log.history or log.history[-1]["steps"] < steps:  # the last point closes the curve
                log.record(steps, self.started, **self._scalars())
            log.close()

        def _scalars(self) -> dict[str, float]:
            rate = getattr(self.model, "exploration_rate", None)
            return {} if rate is None else {"epsilon": float(rate)}

    return TrainingLogCallback()


class SB3Learner(BaseAgent):
    """An SB3 model with an ``MlpPolicy``, behind the agent protocol; subclasses name the config
    class (:attr:`config_class`) and build the model (:meth:`_new_model`).

    :param env: the env it is made for (scalar or vector; it fixes the observation space and catalog).
    :param config: hyper-parameters (an instance of :attr:`config_class`; default: its defaults).
    :param device: torch device of the policy (``"auto"``: CUDA when present).

    :attr:`log` (:class:`agents.training_log.TrainingLog`) holds the learning curve of the last
    :meth:`learn`.
    """

    config_class: ClassVar[type]

    def __init__(self, env: Any, config: Any = None, device: str = "auto"):
        super().__init__(env)
        self.config = self.config_class() if config is None else config
        self.device = device
        self.model: Any = None
        self.log = TrainingLog()

    def _new_model(self, env: Any) -> Any:
        raise NotImplementedError

    def learn(self, env: Any, total_timesteps: int, progress: bool = True, tensorboard_dir: str | None = None) -> Any:
        """Train for ``total_timesteps`` user-steps on ``env``: a vector env (native or public view,
        any autoreset mode) through :class:`recenv.sb3.SB3VecEnv`, all its users at once; a scalar
        env through SB3's ``DummyVecEnv``. Learning again on an env with another number of users
        keeps the policy's weights (and, for DQN, starts a fresh replay buffer)."""
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
            raise RuntimeError(f"{type(self).__name__} has no model yet: learn(env, total_timesteps) or load(path) first")
        batch, single = self._as_batch(observation)
        actions, _ = self.model.predict(batch, deterministic=deterministic)
        return self._result(actions, single), state

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Policy weights, config and the catalog they belong to (safe to load)."""
        if self.model is None:
            raise RuntimeError("nothing to save: the agent has not learnt yet")
        state = {name: tensor.detach().cpu() for name, tensor in self.model.policy.state_dict().items()}
        return save_agent_file(path, type(self).__name__, self.catalog, self.observation_space.shape, self.env_config,
                               config=asdict(self.config), state_dict=state)

    def load(self, path: str | os.PathLike[str], env: Any = None) -> Any:
        """Load policy weights; ``env`` (scalar or vector; default: a scalar env built from
        :attr:`env_config`) shapes the policy."""
        payload = load_agent_file(path, type(self).__name__, self.catalog, self.observation_space.shape)
        self.config = self.config_class(**payload["config"])
        if env is None:
            env = gym.make("DriftingUser-v0", config=self.env_config)
        self.model = self._new_model(sb3_training_env(env))
        self.model.policy.load_state_dict(payload["state_dict"])
        return self


def _has_rich() -> bool:
    # SB3's progress bar needs tqdm and rich; without rich it raises, so only ask when present.
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True
