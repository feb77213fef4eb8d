"""SB3DQNAgent: Stable-Baselines3's DQN trained on DriftingUser-v0, behind the same protocol
(training, learning curve and safe weights files: :class:`agents.sb3_learner.SB3Learner`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from agents.sb3_learner import SB3Learner

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


class SB3DQNAgent(SB3Learner):
    """``stable_baselines3.DQN`` with an ``MlpPolicy``.

    :param env: the env it is made for (scalar or vector; it fixes the observation space and catalog).
    :param config: hyper-parameters (:class:`SB3DQNConfig`). ``train_freq`` counts user-steps: one
        gradient step every ``train_freq`` user-steps on a scalar env and on a vector env of any
        size alike.
    :param device: torch device of the policy (``"auto"``: CUDA when present).
    """

    config_class = SB3DQNConfig

    def __init__(self, env: Any, config: SB3DQNConfig = SB3DQNConfig(), device: str = "auto"):
        super().__init__(env, config, device)

    def _new_model(self, env: Any) -> Any:
        from stable_baselines3 import DQN

        c = asdict(self.config)
        net_arch, seed = c.pop("net_arch"), c.pop("seed")
        users = int(getattr(env, "num_envs", 1))
        # SB3 counts train_freq in vector steps of `users` transitions each: keep one gradient step
        # per `train_freq` user-steps whatever the number of users.
        c["train_freq"] = max(1, self.config.train_freq // users)
        gradient_steps = max(1, round(c["train_freq"] * users / self.config.train_freq))
        return DQN("MlpPolicy", env, policy_kwargs={"net_arch": net_arch}, seed=seed, device=self.device, verbose=0,
                   gradient_steps=gradient_steps, **c)
