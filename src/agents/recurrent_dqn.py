"""RecurrentDQNAgent: a DQN whose LSTM over the user's history is trained for the value, end to end.

:class:`agents.DQNAgent` learns Q on top of the env's observation — the hidden state of the
next-click LSTM, trained on logs to predict the next click and frozen. Whatever that state does
not keep about the user (what the next click needs is not all that the long run needs), a Q-head
on top cannot recover. This agent owns a copy of the LSTM and fine-tunes it, with the Q-head, by
temporal-difference learning, in the spirit of R2D2 (Kapturowski et al., 2019,
https://openreview.net/forum?id=r1lyTjAqYX):

- **Recurrent replay of whole sessions.** R2D2 replays fixed-length chunks of long episodes and
  needs a *burn-in* to refresh the recurrent state stored with each chunk, which the network has
  since changed ("representational drift"). Sessions here are short (tens of steps; the horizon
  caps them at T = 200) and a user's past is short too (the W = 20 warm-up interactions), so the
  replay stores each finished session whole — warm-up past, shown items, clicks, session clock —
  and every gradient step runs the current LSTM from the user's first interaction. That is
  R2D2's burn-in taken to the start of the sequence: the states a gradient step sees are exactly
  those the current network would have computed, with no stored state to go stale.
- **n-step double-DQN targets** (``n_step``; van Hasselt et al., 2016) within a session, from a
  target network (a copy of LSTM and head) refreshed every ``target_update_interval`` steps.
- **Deep matching.** Items are scored through their text embeddings, ``Q(s, i) = f(s)·g(e_i) +
  b_i + v(s)`` (:class:`agents.dqn.EmbeddingQHead`); with ``dueling`` the item terms are centred
  over the catalog so that v(s) is the state's value (Wang et al., 2016).
- **Warm start** (``warm_start``): the LSTM and the head start as the env's next-click LSTM (the
  public encoder, trained on deployable logs), so learning starts from the supervised model's
  ranking and moves it toward long-term value.

How it compares on ``mixed`` with :class:`agents.DQNAgent` on the frozen encoded state and the
other learners, with intervals over training seeds, is measured on
``docs/results/learners-mixed.md``; the runs that chose its defaults (γ, n, dueling, the
auxiliary click loss) are on ``docs/results/tuning-notes.md``. It learns in the loop of
:class:`agents.off_policy.OffPolicyLearner`; this module supplies the session replay, the
behaviour and the n-step loss.

What the agent reads is what a deployed recommender records: the items it showed, the clicks, the
session clock, and each user's logged past (``env.warmup_history()`` of the env it is bound to).
At evaluation the click of the last step is read off the session context of the observation
(clicks so far), so it works from any ``obs_mode``: the env's own encoded state is not used.
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

from agents.base import episode_starts, unwrap_env
from agents.dqn import EmbeddingQHead
from agents.off_policy import OffPolicyConfig, OffPolicyLearner
from agents.persistence import load_agent_file, save_agent_file
from recenv.encoder import EncoderConfig, NextClickLSTM
from recenv.observation import SESSION_CONTEXT_SIZE, scale_session_context, session_clock

__all__ = ["RecurrentDQNAgent", "RecurrentDQNConfig", "RecurrentQNetwork", "n_step_targets"]


@dataclass(frozen=True)
class RecurrentDQNConfig(OffPolicyConfig):
    """Hyper-parameters of :class:`RecurrentDQNAgent`.

    The loop's fields (``learning_starts`` … ``seed``) are :class:`agents.off_policy.OffPolicyConfig`'s;
    this learner sets its own defaults for the first seven (a gradient step here replays whole
    sessions, about 25–40 transitions each).

    :param hidden_size: width of the MLP of the state network in the Q-head.
    :param item_size: size of f(s) and g(e); with ``warm_start`` the encoder's head size is used.
    :param lstm_size: hidden size of the LSTM when it is not warm-started (else the encoder's).
    :param learning_rate: Adam's step size (LSTM and head).
    :param gamma: discount per step (0.99: patience pays off over the whole session, tens of steps).
    :param n_step: steps of observed rewards before the bootstrap.
    :param buffer_sessions: finished sessions kept in the replay.
    :param batch_sessions: sessions per gradient step (about 25–40 transitions each).
    :param double_dqn: evaluate the target's argmax with the online network.
    :param dueling: centre the item terms over the catalog (v(s) is then the state's value).
    :param warm_start: start LSTM and head from the env's next-click LSTM.
    :param click_loss_weight: weight of an auxiliary next-click loss (binary cross-entropy of the
        LSTM's own click head on the replayed clicks) that keeps the LSTM a model of the user while
        TD reshapes it; 0 turns it off.
    """

    hidden_size: int = 256
    item_size: int = 64
    lstm_size: int = 64
    learning_rate: float = 1e-4
    gamma: float = 0.99
    n_step: int = 5
    buffer_sessions: int = 10_000
    batch_sessions: int = 32
    learning_starts: int = 10_000
    train_frequency: int = 2
    gradient_steps: int = 1
    target_update_interval: int = 250
    start_epsilon: float = 0.5
    end_epsilon: float = 0.02
    exploration_fraction: float = 0.2
    double_dqn: bool = True
    dueling: bool = False
    warm_start: bool = True
    click_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.n_step < 1:
            raise ValueError(f"n_step must be ≥ 1, got {self.n_step}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")


def session_context(clock: np.ndarray | Tensor, horizon: int) -> Tensor:
    """``(…, 2)`` session step and clicks so far → the scaled context the head reads,
    ``log1p(x) / log1p(T)`` (as the env scales it, whatever its ``obs_mode``)."""
    return scale_session_context(torch.as_tensor(clock, dtype=torch.float32), horizon)


class RecurrentQNetwork(nn.Module):
    """The next-click LSTM's history encoder followed by an item-embedding Q-head.

    :param encoder_config: shape of the LSTM (:class:`recenv.encoder.EncoderConfig`).
    :param item_embeddings: ``(N, D)`` text embeddings of the catalog.
    :param warm_start: a :class:`recenv.encoder.NextClickLSTM` to copy LSTM and click head from.
    """

    def __init__(self, encoder_config: EncoderConfig, item_embeddings: Tensor, hidden_size: int, item_size: int,
                 dueling: bool, warm_start: NextClickLSTM | None = None):
        super().__init__()
        self.history = NextClickLSTM(encoder_config)  # its click head serves the auxiliary click loss
        if warm_start is not None:
            self.history.load_state_dict(warm_start.state_dict())
        self.head = EmbeddingQHead(encoder_config.hidden_size + SESSION_CONTEXT_SIZE, item_embeddings, hidden_size,
                                   item_size, warm_start=warm_start)
        self.dueling = dueling

    @property
    def item_embeddings(self) -> Tensor:
        return self.head.item_embeddings

    def encode(self, items: Tensor, clicks: Tensor, state: tuple[Tensor, Tensor] | None = None
               ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Run the LSTM over ``(B, L)`` item ids and clicks (from ``state``, zeros if None)."""
        if items.shape[1] == 0:
            if state is None:
                state = self.history.initial_state(items.shape[0], items.device)
            return items.new_zeros((items.shape[0], 0, self.history.hidden_size), dtype=torch.float32), state
        return self.history.encode(self.item_embeddings[items], clicks, state)

    def q_values(self, hidden: Tensor, context: Tensor) -> Tensor:
        """``(…, H)`` LSTM states and ``(…, 2)`` session contexts → ``(…, N)`` Q-values."""
        x = torch.cat([hidden, context], -1)
        head = self.head
        user = head.linear_state(x) + head.state_network(x)
        advantage = user @ head.item_network(head.item_embeddings).T + head.item_bias
        if self.dueling:
            advantage = advantage - advantage.mean(-1, keepdim=True)
        return advantage + head.state_value(x)

    def session_states(self, warm_items: Tensor, warm_clicks: Tensor, items: Tensor, clicks: Tensor) -> Tensor:
        """The LSTM state at every step of a batch of sessions: ``(B, L + 1, H)`` for states 0 … L
        (after the warm-up past and each of the L interactions), from ``(B, W)`` warm-up and
        ``(B, L)`` session interactions."""
        _, state = self.encode(warm_items, warm_clicks)
        outputs, _ = self.encode(items, clicks, state)
        return torch.cat([state[0].unsqueeze(1), outputs], 1)

    def session_q_values(self, warm_items: Tensor, warm_clicks: Tensor, items: Tensor, clicks: Tensor,
                         context: Tensor) -> Tensor:
        """Q at every state of a batch of sessions, ``(B, L + 1, N)`` (see :meth:`session_states`;
        ``context`` is ``(B, L + 1, 2)``)."""
        return self.q_values(self.session_states(warm_items, warm_clicks, items, clicks), context)


def n_step_targets(rewards: Tensor, lengths: Tensor, terminated: Tensor, bootstrap: Tensor, gamma: float,
                   n_step: int) -> Tensor:
    """n-step returns of a batch of sessions, padded to a common length L.

    ``target_t = Σ_{k<m} γ^k r_{t+k} + γ^m · V(s_{t+m})`` with ``m = min(n, len − t)``; the
    bootstrap is dropped where ``t + m`` is the end of a session that terminated (the user left;
    a session truncated at the horizon keeps it).

    :param rewards: ``(B, L)``, zero beyond each session's length.
    :param lengths: ``(B,)`` steps per session.
    :param terminated: ``(B,)`` whether the session ended by the user leaving.
    :param bootstrap: ``(B, L + 1)`` V of states 0 … L.
    :return: ``(B, L)`` targets (meaningless beyond each length).
    """
    batch, length = rewards.shape
    steps = torch.arange(length, device=rewards.device).expand(batch, length)
    padded = torch.cat([rewards, rewards.new_zeros((batch, n_step))], 1)
    returns = sum(gamma**k * padded[:, k:k + length] for k in range(n_step))
    end = torch.minimum(steps + n_step, lengths[:, None])
    at_end_of_terminated = (end == lengths[:, None]) & terminated[:, None]
    value = bootstrap.gather(1, end.clamp(max=length)) * (~at_end_of_terminated)
    return returns + gamma ** (end - steps).to(rewards.dtype) * value


class _SessionReplay:
    """Finished sessions, whole: warm-up past, shown items, clicks, session clocks, how they ended."""

    def __init__(self, capacity: int, warmup: int, horizon: int):
        self.capacity, self.size, self.position = capacity, 0, 0
        self.warm_items = np.zeros((capacity, warmup), dtype=np.int64)
        self.warm_clicks = np.zeros((capacity, warmup), dtype=np.float32)
        self.items = np.zeros((capacity, horizon), dtype=np.int64)
        self.clicks = np.zeros((capacity, horizon), dtype=np.float32)
        self.clock = np.zeros((capacity, horizon + 1, 2), dtype=np.int64)
        self.lengths = np.zeros(capacity, dtype=np.int64)
        self.terminated = np.zeros(capacity, dtype=bool)

    def add(self, warm_items, warm_clicks, items, clicks, clock, length: int, terminated: bool) -> None:
        i = self.position
        self.warm_items[i], self.warm_clicks[i] = warm_items, warm_clicks
        self.items[i, :length], self.items[i, length:] = items[:length], 0
        self.clicks[i, :length], self.clicks[i, length:] = clicks[:length], 0.0
        self.clock[i, :length + 1], self.clock[i, length + 1:] = clock[:length + 1], clock[length]
        self.lengths[i], self.terminated[i] = length, terminated
        self.position = (self.position + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        index = rng.integers(self.size, size=batch)
        length = int(self.lengths[index].max())
        return (self.warm_items[index], self.warm_clicks[index], self.items[index, :length],
                self.clicks[index, :length], self.clock[index, :length + 1], self.lengths[index],
                self.terminated[index])


class _OpenSessions:
    """What each user's session has been so far while training: warm-up past, items, clicks,
    session clocks, length, the LSTM state ``(h, cell)``, and whether it begins at the next step."""

    def __init__(self, num_envs: int, warmup: int, horizon: int, h: Tensor, cell: Tensor):
        self.warm_items = np.zeros((num_envs, warmup), dtype=np.int64)
        self.warm_clicks = np.zeros((num_envs, warmup), dtype=np.float32)
        self.items = np.zeros((num_envs, horizon), dtype=np.int64)
        self.clicks = np.zeros((num_envs, horizon), dtype=np.float32)
        self.clocks = np.zeros((num_envs, horizon + 1, 2), dtype=np.int64)
        self.lengths = np.zeros(num_envs, dtype=np.int64)
        self.h, self.cell = h, cell
        self.starting = np.ones(num_envs, dtype=bool)


class RecurrentDQNAgent(OffPolicyLearner):
    """DQN over items with its own LSTM over each user's history, trained end to end by
    n-step double-DQN on whole replayed sessions (module docstring).

    Per-user memory is SB3's recurrent ``state``: ``(h, c, last item shown, clicks so far)``; a
    user whose session clock reads step 0 (or whose ``episode_start`` is set) starts from their
    logged past, read from the bound env's ``warmup_history()`` (the harness binds agents to the
    evaluation env; call ``agent.bind(env)`` yourself otherwise).

    :param env: the env it is made for (catalog, horizon, the public encoder to warm-start from).
    :param config: hyper-parameters (:class:`RecurrentDQNConfig`).
    :param device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    """

    def __init__(self, env: Any, config: RecurrentDQNConfig = RecurrentDQNConfig(), device: str = "auto"):
        super().__init__(env, config, device)
        self.horizon = self.env_config.max_episode_steps
        self.warmup = self.env_config.warmup_steps
        encoder = unwrap_env(env).encoder if config.warm_start else None
        if config.warm_start and encoder is None:
            raise ValueError("warm_start needs an env with obs_mode='encoded' (its encoder is copied)")
        self._warm_start = encoder
        torch.manual_seed(config.seed)  # network initialisation (nn.Module init draws from the global torch RNG)
        self.q_network = self._make_network().to(self.device)
        self.target_network = copy.deepcopy(self.q_network)

    progress_label = "recurrent DQN"

    def _encoder_config(self) -> EncoderConfig:
        if self._warm_start is not None:
            return self._warm_start.config
        c = self.config
        return EncoderConfig(embedding_dim=np.asarray(self.catalog.embeddings).shape[1], hidden_size=c.lstm_size,
                             head_size=c.item_size)

    def _make_network(self) -> RecurrentQNetwork:
        c = self.config
        encoder_config = self._encoder_config()
        embeddings = torch.as_tensor(np.array(self.catalog.embeddings), dtype=torch.float32)
        warm = copy.deepcopy(self._warm_start).cpu() if self._warm_start is not None else None
        item_size = encoder_config.head_size if warm is not None else c.item_size
        return RecurrentQNetwork(encoder_config, embeddings, c.hidden_size, item_size, c.dueling, warm_start=warm)

    # ---------------------------------------------------------------- acting

    def _tensor(self, array: Any, dtype: torch.dtype = torch.float32) -> Tensor:
        return torch.as_tensor(np.asarray(array), dtype=dtype, device=self.device)

    def _start_users(self, warm_items: np.ndarray, warm_clicks: np.ndarray) -> tuple[Tensor, Tensor]:
        """LSTM state after each user's logged past: ``(B, W)`` → ``(h, c)``, each ``(B, H)``."""
        with torch.no_grad():
            _, (h, c) = self.q_network.encode(self._tensor(warm_items, torch.int64), self._tensor(warm_clicks))
        return h, c

    def _advance(self, h: Tensor, c: Tensor, items: np.ndarray, clicks: np.ndarray) -> tuple[Tensor, Tensor]:
        """One interaction per user: ``(B,)`` items and clicks → the new ``(h, c)``."""
        with torch.no_grad():
            _, (h, c) = self.q_network.encode(self._tensor(items, torch.int64)[:, None],
                                              self._tensor(clicks)[:, None], (h, c))
        return h, c

    def _greedy(self, h: Tensor, clock: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            q = self.q_network.q_values(h, session_context(clock, self.horizon).to(self.device))
        return q.argmax(-1).cpu().numpy()

    def _warmup_of(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        items, clicks = self._bound_users(batch).warmup_history()
        return np.atleast_2d(items).reshape(batch, -1), np.atleast_2d(clicks).reshape(batch, -1)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        batch, single = self._as_batch(observation)
        n = len(batch)
        clock = session_clock(batch, self.horizon)
        starting = clock[:, 0] == 0
        if state is None:
            starting[:] = True
            hidden = self.q_network.history.initial_state(n, self.device)
            last_items, last_clicks = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        else:
            h, c, last_items, last_clicks = state
            hidden = (torch.tensor(h, device=self.device), torch.tensor(c, device=self.device))
            starting |= episode_starts(episode_start, n)
        h, c = hidden
        going_on = torch.as_tensor(~starting)
        starting_users = torch.as_tensor(starting)
        if going_on.any():
            clicked = np.clip(clock[~starting, 1] - last_clicks[~starting], 0, 1)
            h[going_on], c[going_on] = self._advance(h[going_on], c[going_on], last_items[~starting], clicked)
        if starting.any():
            warm_items, warm_clicks = self._warmup_of(n)
            h[starting_users], c[starting_users] = self._start_users(warm_items[starting], warm_clicks[starting])
        actions = self._greedy(h, clock)
        if not deterministic:
            actions = self._epsilon_greedy(actions, self.config.end_epsilon, self.rng)
        new_state = (h.cpu().numpy(), c.cpu().numpy(), actions.astype(np.int64), clock[:, 1].copy())
        return self._result(actions, single), new_state

    # ---------------------------------------------------------------- learning

    # ---------------------------------------------------------------- learning (OffPolicyLearner's loop)

    def _setup_learning(self, env: Any, num_envs: int) -> None:
        c = self.config
        self._replay = _SessionReplay(c.buffer_sessions, self.warmup, self.horizon)
        self._optimizer = torch.optim.Adam([p for p in self.q_network.parameters() if p.requires_grad],
                                           lr=c.learning_rate)

    def _start_collection(self, env: Any, observation: Any, num_envs: int) -> None:
        h, cell = self.q_network.history.initial_state(num_envs, self.device)
        self._sessions = _OpenSessions(num_envs, self.warmup, self.horizon, h, cell)

    def _act(self, env: Any, observation: Any, epsilon: float) -> np.ndarray:
        """Users whose session begins start their LSTM from their logged past (``env.warmup_history()``,
        public); then ε-greedy on Q."""
        sessions = self._sessions
        clock = session_clock(np.asarray(observation), self.horizon)
        starting = sessions.starting
        if starting.any():
            past_items, past_clicks = env.warmup_history()
            sessions.warm_items[starting], sessions.warm_clicks[starting] = past_items[starting], past_clicks[starting]
            rows = torch.as_tensor(starting, device=self.device)
            sessions.h[rows], sessions.cell[rows] = self._start_users(sessions.warm_items[starting],
                                                                      sessions.warm_clicks[starting])
            sessions.lengths[starting] = 0
            sessions.clocks[starting, 0] = clock[starting]
        return self._epsilon_greedy(self._greedy(sessions.h, clock), epsilon, self.rng)

    def _store(self, observation, actions, reward, next_observation, terminated, truncated, info, valid) -> None:
        """Extend each user's session; a finished session goes into the replay, whole."""
        sessions = self._sessions
        reward, terminated, truncated = np.asarray(reward), np.asarray(terminated), np.asarray(truncated)
        users = np.flatnonzero(valid)
        lengths = sessions.lengths
        next_clock = session_clock(np.asarray(next_observation), self.horizon)
        sessions.items[users, lengths[users]] = actions[users]
        sessions.clicks[users, lengths[users]] = reward[users]
        sessions.clocks[users, lengths[users] + 1] = next_clock[users]
        lengths[users] += 1
        if valid.any():
            rows = torch.as_tensor(valid, device=self.device)
            sessions.h[rows], sessions.cell[rows] = self._advance(sessions.h[rows], sessions.cell[rows],
                                                                  actions[valid], reward[valid])
        for user in np.flatnonzero(valid & (terminated | truncated)):
            self._replay.add(sessions.warm_items[user], sessions.warm_clicks[user], sessions.items[user],
                             sessions.clicks[user], sessions.clocks[user], int(lengths[user]), bool(terminated[user]))
        sessions.starting = ~valid

    def _ready_to_train(self) -> bool:
        return self._replay.size > 0

    def _progress_scalars(self) -> dict[str, float]:
        return {"replayed_sessions": float(self._replay.size)}

    def _networks(self) -> tuple[nn.Module, nn.Module]:
        return self.q_network, self.target_network

    def train_step(self, epsilon: float) -> dict[str, float]:
        return {"loss": self._gradient_step(self._replay, self._optimizer)}

    def _gradient_step(self, replay: _SessionReplay, optimizer: torch.optim.Optimizer) -> float:
        c = self.config
        warm_items, warm_clicks, items, clicks, clock, lengths, terminated = (
            self._tensor(a, dtype) for a, dtype in zip(
                replay.sample(c.batch_sessions, self.rng),
                (torch.int64, torch.float32, torch.int64, torch.float32, torch.float32, torch.int64, torch.bool),
            )
        )
        context = session_context(clock, self.horizon).to(self.device)
        hidden = self.q_network.session_states(warm_items, warm_clicks, items, clicks)
        q = self.q_network.q_values(hidden, context)
        with torch.no_grad():
            target_q = self.target_network.session_q_values(warm_items, warm_clicks, items, clicks, context)
            if c.double_dqn:
                values = target_q.gather(-1, q.argmax(-1, keepdim=True))[..., 0]
            else:
                values = target_q.max(-1).values
            targets = n_step_targets(clicks, lengths, terminated, values, c.gamma, c.n_step)
        taken = q[:, :-1].gather(-1, items.unsqueeze(-1))[..., 0]
        mask = torch.arange(items.shape[1], device=self.device)[None] < lengths[:, None]
        loss = nn.functional.smooth_l1_loss(taken[mask], targets[mask])
        if c.click_loss_weight > 0:
            logits = self.q_network.history.click_logits(hidden[:, :-1], self.q_network.item_embeddings[items])
            loss = loss + c.click_loss_weight * nn.functional.binary_cross_entropy_with_logits(logits[mask], clicks[mask])
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.q_network.parameters(), c.max_grad_norm)
        optimizer.step()
        return float(loss.item())

    # ---------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Weights, config and the catalog they belong to (safe to load)."""
        state = {name: tensor.detach().cpu() for name, tensor in self.q_network.state_dict().items()}
        return save_agent_file(path, "RecurrentDQNAgent", self.catalog, self.observation_space.shape, self.env_config,
                               config=asdict(self.config), encoder_config=asdict(self._encoder_config()),
                               state_dict=state)

    def load(self, path: str | os.PathLike[str]) -> RecurrentDQNAgent:
        payload = load_agent_file(path, "RecurrentDQNAgent", self.catalog, self.observation_space.shape)
        self.config = RecurrentDQNConfig(**payload["config"])
        embeddings = torch.as_tensor(np.array(self.catalog.embeddings), dtype=torch.float32)
        encoder_config = EncoderConfig(**payload["encoder_config"])
        self.q_network = RecurrentQNetwork(encoder_config, embeddings, self.config.hidden_size,
                                           payload["state_dict"]["head.linear_state.weight"].shape[0],
                                           self.config.dueling).to(self.device)
        self.q_network.load_state_dict(payload["state_dict"])
        self.target_network = copy.deepcopy(self.q_network)
        return self
