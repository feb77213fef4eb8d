"""PPOAgent: proximal policy optimisation over items, written to be read top to bottom (CleanRL style).

PPO (Schulman et al., 2017, https://arxiv.org/abs/1707.06347) with the clipped surrogate objective,
generalised advantage estimation (GAE(λ), Schulman et al., 2016, https://arxiv.org/abs/1506.02438),
a value loss, an entropy bonus, several epochs of minibatch updates per rollout, per-minibatch
advantage normalisation, gradient-norm clipping and a linearly annealed learning rate. The loop
follows the structure of CleanRL's ``ppo.py`` (https://github.com/vwxyzjn/cleanrl, Huang et al.,
2022): collect a rollout from the vector env, bootstrap, compute GAE, then optimise the clipped
objective on shuffled minibatches. It learns from the vector env (many users per step) on the
agent's device.

The policy scores items through their text embeddings, like DQN's embedding head:
``logits(s, i) = f(s)·g(e_i) + b_i`` (:class:`agents.dqn.EmbeddingQHead`; its state term v(s)
shifts all of a state's logits together, which the softmax ignores). The value ``V(s)`` is a
separate MLP.

Next-step autoreset: a user whose session ended in one vector step is reset in the next one, which
ignores the action and pays nothing. That step is no transition: it is kept out of the advantages
and the losses (``valid`` below, from :class:`agents.training_log.TrainingEpisodes`), and the
advantage chain is cut at every terminated or truncated step. A terminated step bootstraps nothing;
a truncated one bootstraps from the value of its final observation, which in next-step mode is the
observation the step returned.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from agents.base import LearningAgent, require_vector_env, unwrap_env
from agents.dqn import EmbeddingQHead
from agents.persistence import load_agent_file, save_agent_file
from agents.training_log import TrainingRun, linear_schedule

__all__ = ["PPOAgent", "PPOConfig", "generalized_advantages"]


@dataclass(frozen=True)
class PPOConfig:
    """Hyper-parameters of :class:`PPOAgent`.

    :param hidden_size: width of the hidden layers of the policy's state network and of the value MLP.
    :param item_size: P, size of f(s) and g(e) in the policy's embedding head.
    :param learning_rate: Adam's step size at the start (3e-3: on mixed, 500k user-steps, 3e-4 hardly
        moved the policy away from uniform; 1e-2 did as well as 3e-3 but with KL jumps of 0.1 per
        update) ...
    :param anneal_lr: ... decayed linearly to 0 over the training user-steps when True.
    :param gamma: discount per step. 0.99 (a horizon of about 100 steps, longer than a 20–40 step
        session): clicking clickbait costs patience and quality restores it, effects that pay off
        over the whole rest of the session.
    :param gae_lambda: λ of GAE, trading the bias of bootstrapping against the variance of returns.
    :param num_steps: vector steps per user in one rollout (a rollout is ``num_envs × num_steps``
        user-steps, minus the reset steps). 16: with 64 users, a rollout of about 1,000 transitions
        and eight times as many updates as CleanRL's 128, which learnt faster on a fixed budget.
    :param num_minibatches: minibatches each rollout is split into, per epoch.
    :param update_epochs: passes over each rollout.
    :param clip_coef: ε of the clipped surrogate objective (the probability ratio is kept in 1 ± ε).
    :param clip_value_loss: clip the value update around the rollout's values by ``clip_coef`` too.
    :param ent_coef: weight of the entropy bonus (the entropy of a uniform choice among N items is
        ln N, 6.2 for 500 items).
    :param vf_coef: weight of the value loss.
    :param max_grad_norm: gradient clipping threshold.
    :param normalize_advantages: standardise the advantages within each minibatch.
    :param target_kl: stop a rollout's epochs early once the approximate KL divergence between the
        rollout's policy and the updated one exceeds this (``None``: never).
    :param warm_start: start the policy from the next-click LSTM's click head (see
        :class:`agents.dqn.EmbeddingQHead`), so the first policy is a softmax over the supervised
        model's click logits; needs ``obs_mode="encoded"`` and ``item_size`` = its head size.
    :param seed: seeds initialisation, action sampling (in ``learn`` and ``predict``) and the
        minibatch shuffles.
    """

    hidden_size: int = 256
    item_size: int = 64
    learning_rate: float = 3e-3
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    num_steps: int = 16
    num_minibatches: int = 4
    update_epochs: int = 4
    clip_coef: float = 0.2
    clip_value_loss: bool = True
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    normalize_advantages: bool = True
    target_kl: float | None = None
    warm_start: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"gamma and gae_lambda must lie in [0, 1], got {self.gamma} and {self.gae_lambda}")
        if self.num_steps < 1 or self.num_minibatches < 1 or self.update_epochs < 1:
            raise ValueError("num_steps, num_minibatches and update_epochs must be at least 1")


def generalized_advantages(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    valid: Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[Tensor, Tensor]:
    """GAE(λ) over a rollout of ``T`` vector steps of ``N`` users → ``(advantages, returns)``, each ``(T, N)``.

    All inputs are ``(T, N)``: ``values[t]`` is V of the observation step ``t`` acted on and
    ``next_values[t]`` V of the observation it returned. With ``δ_t = r_t + γ·(1 − terminated_t)·
    next_values_t − values_t``, ``A_t = δ_t + γλ·(1 − done_t)·A_{t+1}`` (done = terminated or
    truncated: the chain stops at the end of a session, a truncated one still bootstrapping from
    its final observation). Steps that are no transition (``valid`` False: the reset step after a
    session ended, in next-step autoreset) get advantage 0 and break the chain. Returns are
    ``A + values``, the value targets.
    """
    valid_f = valid.to(values.dtype)
    not_terminated = 1.0 - terminated.to(values.dtype)
    not_done = 1.0 - (terminated | truncated).to(values.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values
    advantages = torch.zeros_like(values)
    running = torch.zeros_like(values[0])
    for t in reversed(range(len(rewards))):
        running = valid_f[t] * (deltas[t] + gamma * gae_lambda * not_done[t] * running)
        advantages[t] = running
    return advantages, advantages + values * valid_f


class ValueNetwork(nn.Module):
    """V(s): an MLP from the observation to one number."""

    def __init__(self, observation_size: int, hidden_size: int):
        super().__init__()
        self.network = nn.Sequential(
            nn.Linear(observation_size, hidden_size), nn.Tanh(),
            nn.Linear(hidden_size, hidden_size), nn.Tanh(),
            nn.Linear(hidden_size, 1),
        )

    def forward(self, observation: Tensor) -> Tensor:
        return self.network(observation)[:, 0]


def _to_numpy(array: Any) -> np.ndarray:
    return array.detach().cpu().numpy() if isinstance(array, Tensor) else np.asarray(array)


class PPOAgent(LearningAgent):
    """PPO over items: a softmax policy over embedding-scored items and an MLP value.

    :param env: the env it is made for (fixes observation space and catalog).
    :param config: hyper-parameters (:class:`PPOConfig`).
    :param device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    """

    def __init__(self, env: Any, config: PPOConfig = PPOConfig(), device: str = "auto"):
        super().__init__(env, config, device)
        self._encoder = unwrap_env(env).encoder if config.warm_start else None
        if config.warm_start and self._encoder is None:
            raise ValueError("warm_start needs an env with obs_mode='encoded'")
        torch.manual_seed(config.seed)  # network initialisation (nn.Module init draws from the global torch RNG)
        self.policy, self.value = self._make_networks()
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)

    def _make_networks(self) -> tuple[nn.Module, nn.Module]:
        c = self.config
        embeddings = torch.as_tensor(np.array(self.catalog.embeddings), dtype=torch.float32)
        policy = EmbeddingQHead(self.observation_size, embeddings, c.hidden_size, c.item_size, warm_start=self._encoder)
        return policy.to(self.device), ValueNetwork(self.observation_size, c.hidden_size).to(self.device)

    def _observations(self, observations: Any) -> Tensor:
        x = torch.as_tensor(observations, dtype=torch.float32, device=self.device)
        return x.reshape(len(x), -1)

    def logits(self, observations: np.ndarray | Tensor) -> Tensor:
        """The policy's item logits for a batch of observations → ``(B, N)`` on the agent's device."""
        return self.policy(self._observations(observations))

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        with torch.no_grad():
            logits = self.logits(batch)
            if deterministic:
                actions = logits.argmax(1)
            else:
                actions = torch.multinomial(torch.softmax(logits, 1), 1, generator=self.generator)[:, 0]
        return self._result(actions.cpu().numpy(), single), state

    def learn(self, env: Any, total_timesteps: int, progress: bool = True, tensorboard_dir: str | None = None) -> PPOAgent:
        """Train on a vector env (``gym.make_vec``, next-step autoreset) for ``total_timesteps`` user-steps."""
        num_envs = require_vector_env(env, "PPOAgent")  # refuses any other autoreset mode than next-step
        c = self.config
        parameters = [*self.policy.parameters(), *self.value.parameters()]
        optimizer = torch.optim.Adam(parameters, lr=c.learning_rate, eps=1e-5)

        # Rollout storage, (T, N) per user and vector step.
        shape = (c.num_steps, num_envs)
        observations = torch.zeros((*shape, self.observation_size), device=self.device)
        actions = torch.zeros(shape, dtype=torch.int64, device=self.device)
        log_probs, values, next_values, rewards = (torch.zeros(shape, device=self.device) for _ in range(4))
        terminated, truncated, valid = (torch.zeros(shape, dtype=torch.bool, device=self.device) for _ in range(3))

        observation, _ = env.reset(seed=c.seed)
        observation = self._observations(observation)
        run = TrainingRun(self.log, num_envs, total_timesteps, "PPO", progress, tensorboard_dir)
        stats: dict[str, float] = {}
        while run.running:
            # 1. Anneal the learning rate (linearly to 0 over the budget).
            if c.anneal_lr:
                optimizer.param_groups[0]["lr"] = linear_schedule(c.learning_rate, 0.0, 1.0, run.steps, total_timesteps)

            # 2. Collect a rollout (shorter at the end, so as not to overshoot the budget by much).
            length = min(c.num_steps, -(-(total_timesteps - run.steps) // num_envs))
            with torch.no_grad():  # the policy is fixed during the rollout: its item features g(e) too
                item_features = self.policy.item_features()
            for t in range(length):
                with torch.no_grad():
                    logits = self.policy.q_values_from(observation, item_features)
                    distribution = torch.distributions.Categorical(logits=logits)
                    action = torch.multinomial(distribution.probs, 1, generator=self.generator)[:, 0]
                    observations[t], actions[t], values[t] = observation, action, self.value(observation)
                    log_probs[t] = distribution.log_prob(action)
                next_observation, reward, term, trunc, _ = env.step(action.cpu().numpy())
                term, trunc = _to_numpy(term), _to_numpy(trunc)
                # A user reset in this step (next-step autoreset) made no transition.
                step_valid = run.step(_to_numpy(reward), term, trunc)
                rewards[t] = torch.as_tensor(_to_numpy(reward), dtype=torch.float32, device=self.device)
                terminated[t] = torch.as_tensor(term, device=self.device)
                truncated[t] = torch.as_tensor(trunc, device=self.device)
                valid[t] = torch.as_tensor(step_valid, device=self.device)
                observation = self._observations(next_observation)
                if t > 0:
                    next_values[t - 1] = values[t]
                if self.log.due(run.steps):
                    run.record(**stats)

            # 3. Bootstrap from the last observation and compute advantages.
            with torch.no_grad():
                next_values[length - 1] = self.value(observation)
            advantages, returns = generalized_advantages(
                rewards[:length], values[:length], next_values[:length], terminated[:length], truncated[:length],
                valid[:length], c.gamma, c.gae_lambda,
            )

            # 4. Optimise the clipped objective on minibatches of the rollout's transitions.
            keep = valid[:length].reshape(-1)
            b_obs = observations[:length].reshape(-1, self.observation_size)[keep]
            b_actions, b_log_probs = actions[:length].reshape(-1)[keep], log_probs[:length].reshape(-1)[keep]
            b_advantages, b_returns = advantages.reshape(-1)[keep], returns.reshape(-1)[keep]
            b_values = values[:length].reshape(-1)[keep]
            batch_size = len(b_actions)
            minibatch_size = max(1, -(-batch_size // c.num_minibatches))
            kls, clip_fractions = [], []
            for _ in range(c.update_epochs):
                order = torch.randperm(batch_size, generator=self.generator, device=self.device)
                for start in range(0, batch_size, minibatch_size):
                    index = order[start:start + minibatch_size]
                    distribution = torch.distributions.Categorical(logits=self.policy(b_obs[index]))
                    new_log_prob = distribution.log_prob(b_actions[index])
                    entropy = distribution.entropy().mean()
                    log_ratio = new_log_prob - b_log_probs[index]
                    ratio = log_ratio.exp()
                    with torch.no_grad():
                        kls.append(float(((ratio - 1) - log_ratio).mean()))  # the low-variance estimator of KL
                        clip_fractions.append(float(((ratio - 1.0).abs() > c.clip_coef).float().mean()))

                    advantage = b_advantages[index]
                    if c.normalize_advantages and len(index) > 1:
                        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
                    policy_loss = torch.max(
                        -advantage * ratio, -advantage * ratio.clamp(1 - c.clip_coef, 1 + c.clip_coef)
                    ).mean()

                    new_value = self.value(b_obs[index])
                    if c.clip_value_loss:
                        clipped = b_values[index] + (new_value - b_values[index]).clamp(-c.clip_coef, c.clip_coef)
                        value_loss = 0.5 * torch.max((new_value - b_returns[index]) ** 2,
                                                     (clipped - b_returns[index]) ** 2).mean()
                    else:
                        value_loss = 0.5 * ((new_value - b_returns[index]) ** 2).mean()

                    loss = policy_loss - c.ent_coef * entropy + c.vf_coef * value_loss
                    optimizer.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(parameters, c.max_grad_norm)
                    optimizer.step()
                if c.target_kl is not None and kls[-1] > c.target_kl:
                    break

            # 5. Report what the update did.
            variance = float(b_returns.var()) if batch_size > 1 else float("nan")
            explained = 1.0 - float((b_returns - b_values).var()) / variance if variance > 0 else float("nan")
            stats = {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": entropy.item(),
                     "approx_kl": kls[-1], "clip_fraction": float(np.mean(clip_fractions)),
                     "explained_variance": explained, "learning_rate": optimizer.param_groups[0]["lr"]}
            if not run.running:  # the last point closes the curve
                run.record(**stats)
        run.close()
        return self

    # ---------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Weights of policy and value, config and the catalog they belong to (safe to load)."""
        def cpu(module: nn.Module) -> dict[str, Tensor]:
            return {name: tensor.detach().cpu() for name, tensor in module.state_dict().items()}

        return save_agent_file(path, "PPOAgent", self.catalog, self.observation_space.shape, self.env_config,
                               config=asdict(self.config), policy=cpu(self.policy), value=cpu(self.value))

    def load(self, path: str | os.PathLike[str]) -> PPOAgent:
        payload = load_agent_file(path, "PPOAgent", self.catalog, self.observation_space.shape)
        self.config = PPOConfig(**payload["config"])
        self._encoder = None  # the saved weights replace any warm start
        self.policy, self.value = self._make_networks()
        self.policy.load_state_dict(payload["policy"])
        self.value.load_state_dict(payload["value"])
        return self
