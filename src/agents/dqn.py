"""DQNAgent: deep Q-learning over items.

DQN (Mnih et al., 2015, https://doi.org/10.1038/nature14236) with double-DQN targets (van Hasselt
et al., 2016, https://arxiv.org/abs/1509.06461): a replay buffer, a target network updated every
``target_update_interval`` gradient steps, a linear ε schedule, gradient-norm clipping. It learns
from the vector env (many users per step) on the env's device, in the loop of
:class:`agents.off_policy.OffPolicyLearner`; this module supplies the replay, the ε-greedy
behaviour and the loss (:meth:`DQNAgent.train_step`).

Two Q-heads (``head=``):

- ``"mlp"``: an MLP from the observation to one Q-value per item.
- ``"embedding"``: ``Q(s, i) = f(s)·g(e_i) + b_i`` — items are scored through their text
  embeddings ``e_i``, so what is learnt about one item carries over to similar items.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from agents.base import unwrap_env
from agents.off_policy import OffPolicyConfig, OffPolicyLearner, TransitionRing
from agents.persistence import load_agent_file, save_agent_file
from recenv.observation import SESSION_CONTEXT_SIZE

__all__ = ["DQNAgent", "DQNConfig", "EmbeddingQHead", "MLPQHead"]


@dataclass(frozen=True)
class DQNConfig(OffPolicyConfig):
    """Hyper-parameters of :class:`DQNAgent`.

    The loop's fields (``learning_starts`` … ``seed``) are :class:`agents.off_policy.OffPolicyConfig`'s,
    with its defaults (with 64 users per vector step, 2 gradient steps of 256 replay each transition
    about 8 times).

    :param head: ``"mlp"`` or ``"embedding"`` (see the module docstring).
    :param hidden_size: width of the hidden layers of the state network.
    :param item_size: P, size of f(s) and g(e) in the embedding head.
    :param learning_rate: Adam's step size.
    :param gamma: discount per step (0.95: a horizon of about 20 steps, the length of a session;
        with 0.9 patience, which pays off over the whole session, was nearly invisible).
    :param buffer_size: transitions kept in the replay buffer.
    :param batch_size: transitions per gradient step.
    :param double_dqn: evaluate the target's argmax with the online network.
    :param warm_start: embedding head only: start from the next-click LSTM's click head (see
        :class:`EmbeddingQHead`); needs ``obs_mode="encoded"`` and ``item_size`` = its head size.
    """

    head: str = "embedding"
    hidden_size: int = 256
    item_size: int = 64
    learning_rate: float = 3e-4
    gamma: float = 0.95
    buffer_size: int = 200_000
    batch_size: int = 256
    double_dqn: bool = True
    warm_start: bool = False

    def __post_init__(self) -> None:
        if self.head not in ("mlp", "embedding"):
            raise ValueError(f"unknown DQN head {self.head!r}; allowed: 'mlp', 'embedding'")


class MLPQHead(nn.Module):
    """Q-values for all N items from an MLP over the observation."""

    def __init__(self, observation_size: int, num_items: int, hidden_size: int):
        super().__init__()
        self.network = nn.Sequential(
            nn.Linear(observation_size, hidden_size), nn.ReLU(),
            nn.Linear(hidden_size, hidden_size), nn.ReLU(),
            nn.Linear(hidden_size, num_items),
        )

    def forward(self, observation: Tensor) -> Tensor:
        return self.network(observation)

    def item_features(self) -> None:
        """None: this head has no item term to keep between calls (see :meth:`EmbeddingQHead.item_features`)."""

    def q_values_from(self, observation: Tensor, item_features: None) -> Tensor:
        """:meth:`forward` (the counterpart of :meth:`EmbeddingQHead.q_values_from`)."""
        return self.network(observation)


class EmbeddingQHead(nn.Module):
    """``Q(s, i) = f(s)·g(e_i) + b_i + v(s)``: items scored through their text embeddings.

    f(s) = A·s + MLP(s), g(e) = W·e, b_i a per-item bias and v(s) a state value (it shifts all of a
    state's Q-values together, as in a dueling network, and leaves the ranking to f·g + b).

    ``warm_start`` (a :class:`recenv.encoder.NextClickLSTM` whose hidden state starts the
    observation, the session context following it) copies the next-click LSTM's click head into A,
    W, b and v (zero weights on the session context) and zeroes the MLP's last layer, so
    training starts from the supervised model's ranking of items — the logit of P(click) — and
    learns the long-term value on top of it.
    """

    def __init__(self, observation_size: int, item_embeddings: Tensor, hidden_size: int, item_size: int,
                 warm_start: Any = None):
        super().__init__()
        self.linear_state = nn.Linear(observation_size, item_size)
        self.state_network = nn.Sequential(
            nn.Linear(observation_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, item_size),
        )
        self.item_network = nn.Linear(item_embeddings.shape[1], item_size, bias=False)
        self.item_bias = nn.Parameter(torch.zeros(item_embeddings.shape[0]))
        self.state_value = nn.Linear(observation_size, 1)
        self.register_buffer("item_embeddings", item_embeddings.clone())
        if warm_start is not None:
            self._copy_click_head(warm_start, item_embeddings)

    @torch.no_grad()
    def _copy_click_head(self, encoder: Any, item_embeddings: Tensor) -> None:
        hidden = encoder.user_projection.in_features
        if (hidden + SESSION_CONTEXT_SIZE, encoder.user_projection.out_features) != (
            self.linear_state.in_features, self.linear_state.out_features
        ):
            raise ValueError("warm_start needs item_size = the encoder's head_size and observations = its hidden "
                             "state followed by the session context")
        for target, source in ((self.linear_state, encoder.user_projection), (self.state_value, encoder.user_bias)):
            target.weight.zero_()
            target.weight[:, :hidden] = source.weight
            target.bias.copy_(source.bias)
        self.item_network.weight.copy_(encoder.item_projection.weight)
        self.item_bias.copy_(encoder.item_bias(item_embeddings.to(encoder.item_bias.weight.device))[:, 0].cpu())
        nn.init.zeros_(self.state_network[-1].weight)
        nn.init.zeros_(self.state_network[-1].bias)

    def item_features(self) -> Tensor:
        """g(e_i) of every item, ``(N, P)``: the part of the Q-values that depends on the weights
        only, so a learner computes it once per weight update and reuses it for every batch of
        states (:meth:`q_values_from`) instead of at every call of :meth:`forward`."""
        return self.item_network(self.item_embeddings)

    def q_values_from(self, observation: Tensor, item_features: Tensor) -> Tensor:
        """Q(s, ·) ``(B, N)`` given :meth:`item_features` of the current weights (the same numbers
        as :meth:`forward`)."""
        user = self.linear_state(observation) + self.state_network(observation)
        return user @ item_features.T + self.item_bias + self.state_value(observation)

    def forward(self, observation: Tensor) -> Tensor:
        return self.q_values_from(observation, self.item_features())


class _ReplayBuffer(TransitionRing):
    """A ring buffer of transitions, kept as tensors on the training device."""

    def __init__(self, capacity: int, observation_size: int, device: torch.device):
        super().__init__(capacity)
        self.observations = torch.zeros((capacity, observation_size), device=device)
        self.next_observations = torch.zeros((capacity, observation_size), device=device)
        self.actions = torch.zeros(capacity, dtype=torch.int64, device=device)
        self.rewards = torch.zeros(capacity, device=device)
        self.terminated = torch.zeros(capacity, device=device)

    def add(self, observation: Tensor, action: Tensor, reward: Tensor, next_observation: Tensor, terminated: Tensor) -> None:
        index = self._advance(len(action), action.device)
        self.observations[index], self.actions[index], self.rewards[index] = observation, action, reward
        self.next_observations[index], self.terminated[index] = next_observation, terminated

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        index = self._draw(batch_size, generator, self.actions.device)
        return (self.observations[index], self.actions[index], self.rewards[index],
                self.next_observations[index], self.terminated[index])


class DQNAgent(OffPolicyLearner):
    """Deep Q-learning over items with a replay buffer, target network and double-DQN targets.

    :param env: the env it is made for (fixes observation space and catalog).
    :param config: hyper-parameters (:class:`DQNConfig`).
    :param device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    """

    def __init__(self, env: Any, config: DQNConfig = DQNConfig(), device: str = "auto"):
        super().__init__(env, config, device)
        self._encoder = unwrap_env(env).encoder if config.warm_start else None
        if config.warm_start and (config.head != "embedding" or self._encoder is None):
            raise ValueError("warm_start needs head='embedding' and an env with obs_mode='encoded'")
        torch.manual_seed(config.seed)  # network initialisation (nn.Module init draws from the global torch RNG)
        self.q_network = self._make_network().to(self.device)
        self.target_network = copy.deepcopy(self.q_network)

    @property
    def progress_label(self) -> str:
        return f"DQN ({self.config.head} head)"

    def _make_network(self) -> nn.Module:
        c = self.config
        if c.head == "mlp":
            return MLPQHead(self.observation_size, self.num_items, c.hidden_size)
        embeddings = torch.as_tensor(np.array(self.catalog.embeddings))
        warm_start = self._encoder if c.warm_start else None
        return EmbeddingQHead(self.observation_size, embeddings, c.hidden_size, c.item_size, warm_start=warm_start)

    def q_values(self, observations: np.ndarray | Tensor) -> Tensor:
        """Q(s, ·) for a batch of observations → ``(B, N)`` on the agent's device."""
        x = torch.as_tensor(observations, dtype=torch.float32, device=self.device).reshape(len(observations), -1)
        return self.q_network(x)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        actions = self._greedy(batch)
        if not deterministic:
            actions = self._epsilon_greedy(actions, self.config.end_epsilon, self.rng)
        return self._result(actions, single), state

    # ---------------------------------------------------------------- learning (OffPolicyLearner's loop)

    def _greedy(self, observations: Any) -> np.ndarray:
        with torch.no_grad():
            return self.q_values(observations).argmax(1).cpu().numpy()

    def _setup_learning(self, env: Any, num_envs: int) -> None:
        c = self.config
        self._replay = _ReplayBuffer(c.buffer_size, self.observation_size, self.device)
        self._generator = torch.Generator(device=self.device).manual_seed(c.seed)
        self._optimizer = torch.optim.Adam(self.q_network.parameters(), lr=c.learning_rate)
        # The item features g(e) of the target network, computed once per refresh.
        self._target_features = self._item_features(self.target_network)

    def _act(self, env: Any, observation: Any, epsilon: float) -> np.ndarray:
        return self._epsilon_greedy(self._greedy(observation), epsilon, self.rng)

    def _store(self, observation, actions, reward, next_observation, terminated, truncated, info, valid) -> None:
        if valid.any():
            to = lambda a, dtype=torch.float32: torch.as_tensor(np.asarray(a)[valid], dtype=dtype, device=self.device)  # noqa: E731
            self._replay.add(to(observation).reshape(int(valid.sum()), -1), to(actions, torch.int64), to(reward),
                             to(next_observation).reshape(int(valid.sum()), -1), to(terminated))

    def train_step(self, epsilon: float) -> dict[str, Tensor]:
        """Double-DQN target, Huber loss, clipped gradients. The item features g(e) of the online
        network are computed once per weight update and shared by its Q-values of both batches."""
        c = self.config
        s, a, r, s_next, term = self._replay.sample(c.batch_size, self._generator)
        item_features = self.q_network.item_features()
        with torch.no_grad():
            next_q = self.target_network.q_values_from(s_next, self._target_features)
            if c.double_dqn:
                detached = None if item_features is None else item_features.detach()
                best_next = self.q_network.q_values_from(s_next, detached).argmax(1, keepdim=True)
                next_value = next_q.gather(1, best_next)[:, 0]
            else:
                next_value = next_q.max(1).values
            target = r + c.gamma * (1.0 - term) * next_value
        q = self.q_network.q_values_from(s, item_features).gather(1, a[:, None])[:, 0]
        loss = nn.functional.smooth_l1_loss(q, target)
        self._optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.q_network.parameters(), c.max_grad_norm)
        self._optimizer.step()
        return {"loss": loss.detach()}

    def _networks(self) -> tuple[nn.Module, nn.Module]:
        return self.q_network, self.target_network

    def _update_target(self) -> None:
        super()._update_target()
        self._target_features = self._item_features(self.target_network)

    @staticmethod
    def _item_features(network: nn.Module) -> Tensor | None:
        with torch.no_grad():
            return network.item_features()

    # ---------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Weights, config and the catalog they belong to (safe to load)."""
        state = {name: tensor.detach().cpu() for name, tensor in self.q_network.state_dict().items()}
        return save_agent_file(path, "DQNAgent", self.catalog, self.observation_space.shape, self.env_config,
                               config=asdict(self.config), state_dict=state)

    def load(self, path: str | os.PathLike[str]) -> DQNAgent:
        payload = load_agent_file(path, "DQNAgent", self.catalog, self.observation_space.shape)
        self.config = DQNConfig(**payload["config"])
        self.q_network = self._make_network().to(self.device)
        self.q_network.load_state_dict(payload["state_dict"])
        self.target_network = copy.deepcopy(self.q_network)
        return self
