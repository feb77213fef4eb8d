"""SB3PPOAgent: Stable-Baselines3's PPO trained on the native vector env, behind the same protocol.

PPO is on-policy: it learns from fresh rollouts of many users at once, which is what the native
vector env gives cheaply. :meth:`SB3PPOAgent.learn` trains on all users of a vector env (native or
its public view) through :class:`recenv.sb3.SB3VecEnv` — one batched step of every user per SB3
step, instead of SB3's Python loop over scalar envs. Trained, logged and
saved like :class:`agents.SB3DQNAgent` (:class:`agents.sb3_learner.SB3Learner`): policy weights
only, read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from agents.sb3_learner import SB3Learner

__all__ = ["SB3PPOAgent", "SB3PPOConfig"]


@dataclass(frozen=True)
class SB3PPOConfig:
    """Arguments passed to ``stable_baselines3.PPO`` (see its documentation for each).

    Defaults are for the default catalog (500 items), 64 users trained in parallel and sessions of
    20–40 steps: a rollout of ``n_steps`` = 64 steps per user (4,096 user-steps, about two sessions
    per user) and ``n_epochs`` passes over it in minibatches of ``batch_size`` (capped at the
    rollout's size). ``net_arch`` sizes both the policy and the value network.

    Chosen on the ``mixed`` preset (200k user-steps on 64 users, public view) over SB3's defaults
    (learning rate 3e-4, 4 epochs, entropy 0.01, γ 0.99), whose greedy policy repeated items; how
    the adapter compares with the native :class:`agents.PPOAgent` is measured on
    ``docs/results/learners-mixed.md``; the runs that chose these defaults are on
    ``docs/results/tuning-notes.md``.
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


class SB3PPOAgent(SB3Learner):
    """``stable_baselines3.PPO`` with an ``MlpPolicy`` over the items.

    :param env: the env it is made for (scalar or vector; it fixes the observation space and catalog).
    :param config: hyper-parameters (:class:`SB3PPOConfig`).
    :param device: torch device of the policy (``"auto"``: CUDA when present; an MLP this size is
        usually as fast on the CPU).
    """

    config_class = SB3PPOConfig

    def __init__(self, env: Any, config: SB3PPOConfig = SB3PPOConfig(), device: str = "auto"):
        super().__init__(env, config, device)

    def _new_model(self, env: Any) -> Any:
        from stable_baselines3 import PPO

        c = asdict(self.config)
        net_arch, seed = c.pop("net_arch"), c.pop("seed")
        rollout = c["n_steps"] * int(getattr(env, "num_envs", 1))
        c["batch_size"] = min(c["batch_size"], rollout)
        return PPO("MlpPolicy", env, policy_kwargs={"net_arch": net_arch}, seed=seed, device=self.device, verbose=0, **c)
