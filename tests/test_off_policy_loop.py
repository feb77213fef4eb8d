"""OffPolicyLearner's loop, driven by a toy algorithm: what it collects and replays, when it trains
and refreshes the target, the ε schedule, the log, checkpoints and training on from one."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from agents import DQNAgent, DQNConfig
from agents.off_policy import OffPolicyConfig, OffPolicyLearner, TransitionRing
from agents.persistence import load_agent_file, save_agent_file
from agents.training_log import linear_schedule
from recenv import DriftingUserVectorEnv, EnvConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NUM_ENVS = 8


@dataclass(frozen=True)
class MeanClickConfig(OffPolicyConfig):
    learning_starts: int = 64
    train_frequency: int = 2
    gradient_steps: int = 3
    target_update_interval: int = 4
    start_epsilon: float = 1.0
    end_epsilon: float = 0.1
    exploration_fraction: float = 0.5
    batch_size: int = 16


class ItemValues(nn.Module):
    def __init__(self, num_items: int):
        super().__init__()
        self.value = nn.Parameter(torch.zeros(num_items))


class _Replay(TransitionRing):
    def __init__(self, capacity: int):
        super().__init__(capacity)
        self.items = torch.zeros(capacity, dtype=torch.int64)
        self.clicks = torch.zeros(capacity)

    def add(self, items: torch.Tensor, clicks: torch.Tensor) -> None:
        index = self._advance(len(items), items.device)
        self.items[index], self.clicks[index] = items, clicks


class MeanClick(OffPolicyLearner):
    """A toy algorithm: shows uniformly random items and learns each item's click rate by SGD on
    replayed (item, click) pairs; its target network is a copy, refreshed on the loop's schedule.
    It records what the loop asked of it."""

    progress_label = "mean click"

    def __init__(self, env, config: MeanClickConfig = MeanClickConfig()):
        super().__init__(env, config, device="cpu")
        self.values, self.target = ItemValues(self.num_items), ItemValues(self.num_items)
        self.epsilons: list[float] = []  # one per vector step
        self.steps_before: list[int] = []  # user-steps made before each vector step
        self.trained_at: list[int] = []  # the vector step (0-based) of each gradient step
        self.refreshed_after: list[int] = []  # gradient steps made at each target refresh
        self.snapshots: list[torch.Tensor] = []  # the online values after each gradient step

    def _setup_learning(self, env, num_envs):
        self.replay = _Replay(100_000)
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.optimizer = torch.optim.SGD(self.values.parameters(), lr=0.5)

    def _act(self, env, observation, epsilon):
        self.epsilons.append(epsilon)
        self.steps_before.append(self.replay.size)
        return self.rng.integers(self.num_items, size=len(observation))

    def _store(self, observation, actions, reward, next_observation, terminated, truncated, info, valid):
        self.replay.add(torch.as_tensor(actions[valid]), torch.as_tensor(np.asarray(reward)[valid], dtype=torch.float32))

    def train_step(self, epsilon):
        index = self.replay._draw(self.config.batch_size, self.generator, torch.device("cpu"))
        loss = ((self.values.value[self.replay.items[index]] - self.replay.clicks[index]) ** 2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.trained_at.append(len(self.epsilons) - 1)
        self.snapshots.append(self.values.value.detach().clone())
        return {"loss": loss.detach()}

    def _networks(self):
        return self.values, self.target

    def _update_target(self):
        super()._update_target()
        self.refreshed_after.append(len(self.trained_at))

    def save(self, path):
        return save_agent_file(path, "MeanClick", self.catalog, self.observation_space.shape, self.env_config,
                               values=self.values.state_dict())

    def load(self, path):
        payload = load_agent_file(path, "MeanClick", self.catalog, self.observation_space.shape)
        self.values.load_state_dict(payload["values"])
        self.target.load_state_dict(payload["values"])
        return self


@pytest.fixture(scope="module")
def env():
    return DriftingUserVectorEnv(num_envs=NUM_ENVS, config=EnvConfig(preset="mixed", obs_mode="history"))


def test_the_loop_collects_replays_and_updates_on_its_schedule(env):
    c = MeanClickConfig()
    total = 400
    agent = MeanClick(env, c).learn(env, total, progress=False)
    steps_before = np.array(agent.steps_before)
    made = agent.replay.size  # every transition was stored (the buffer never wrapped)
    assert made >= total and steps_before[-1] < total  # it stopped at the first vector step past the budget
    assert np.all(np.diff(steps_before) <= NUM_ENVS) and made - steps_before[-1] <= NUM_ENVS
    # Reset steps made no transition: fewer user-steps than users × vector steps once sessions ended.
    assert made < NUM_ENVS * len(steps_before)

    # ε: the linear schedule over the user-steps made so far.
    expected = [linear_schedule(c.start_epsilon, c.end_epsilon, c.exploration_fraction, s, total) for s in steps_before]
    np.testing.assert_allclose(agent.epsilons, expected)
    assert agent.epsilons[0] == 1.0 and agent.epsilons[-1] == pytest.approx(0.1)

    # Training: gradient_steps at every train_frequency-th vector step once learning_starts user-steps were made.
    steps_after = np.append(steps_before[1:], made)
    vector_step = np.arange(len(steps_before))
    due = vector_step[(steps_after >= c.learning_starts) & ((vector_step + 1) % c.train_frequency == 0)]
    assert len(due) > 5
    assert agent.trained_at == [int(v) for v in due for _ in range(c.gradient_steps)]

    # Target refreshes every target_update_interval gradient steps, with the online weights of then.
    gradient_steps = len(agent.trained_at)
    assert agent.refreshed_after == list(range(c.target_update_interval, gradient_steps + 1, c.target_update_interval))
    last = agent.refreshed_after[-1]
    torch.testing.assert_close(agent.target.value.detach(), agent.snapshots[last - 1], rtol=0, atol=0)
    if last < gradient_steps:
        assert not torch.equal(agent.target.value.detach(), agent.values.value.detach())

    # It learned something from the replay, and the log's last point closes the curve.
    assert agent.values.value.abs().sum() > 0
    row = agent.log.history[-1]
    assert row["steps"] == made and row["epsilon"] == pytest.approx(agent.epsilons[-1])
    assert np.isfinite(row["loss"]) and "episode_return" in row


def test_no_gradient_step_before_learning_starts(env):
    agent = MeanClick(env, MeanClickConfig(learning_starts=10_000)).learn(env, 200, progress=False)
    assert agent.trained_at == [] and agent.refreshed_after == []
    assert np.isnan(agent.log.history[-1]["loss"])


def test_same_seed_same_weights_and_checkpoints_resume_training(env, tmp_path):
    every = 100
    agent = MeanClick(env).learn(env, 450, progress=False, checkpoint_every=every, checkpoint_dir=tmp_path)
    saved = sorted(tmp_path.glob("MeanClick-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    steps = [int(p.stem.split("-")[1]) for p in saved]
    made_after = np.append(agent.steps_before[1:], agent.replay.size)
    # One checkpoint at the first vector step that reaches each multiple of `every`.
    assert steps == [int(made_after[np.argmax(made_after >= k)]) for k in range(every, int(made_after[-1]) + 1, every)]
    assert len(steps) == 4

    # A checkpoint holds the weights of its step: the same seed trained for that many user-steps
    # (the toy's actions do not depend on ε) ends with the same weights.
    at = steps[1]
    again = MeanClick(env).learn(env, at, progress=False)
    resumed = MeanClick(env).load(saved[1])
    assert torch.equal(resumed.values.value, again.values.value)
    assert not torch.equal(resumed.values.value, agent.values.value)

    # Training goes on from the checkpoint's weights.
    before = resumed.values.value.detach().clone()
    resumed.learn(env, 200, progress=False)
    assert resumed.trained_at and not torch.equal(resumed.values.value.detach(), before)


def test_checkpoints_need_a_folder_and_a_positive_interval(env, tmp_path):
    with pytest.raises(ValueError, match="checkpoint_every"):
        MeanClick(env).learn(env, 100, progress=False, checkpoint_every=50)
    with pytest.raises(ValueError, match="checkpoint_every"):
        MeanClick(env).learn(env, 100, progress=False, checkpoint_every=0, checkpoint_dir=tmp_path)


def test_tensorboard_gets_the_curves(env, tmp_path):
    pytest.importorskip("tensorboard")
    MeanClick(env).learn(env, 200, progress=False, tensorboard_dir=str(tmp_path))
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_a_dqn_checkpoint_is_its_agent_file(env, tmp_path):
    # ε stays 1 (actions uniformly random whatever the budget), so a run of the checkpoint's length
    # takes the same actions and must end with the checkpoint's weights.
    config = DQNConfig(head="mlp", hidden_size=16, batch_size=16, learning_starts=32, buffer_size=1_000,
                       target_update_interval=5, start_epsilon=1.0, end_epsilon=1.0)
    DQNAgent(env, config, device="cpu").learn(env, 120, progress=False, checkpoint_every=60, checkpoint_dir=tmp_path)
    saved = sorted(tmp_path.glob("DQNAgent-*.pt"))
    assert len(saved) == 2
    loaded = DQNAgent(env, config, device="cpu").load(saved[-1])
    again = DQNAgent(env, config, device="cpu").learn(env, int(saved[-1].stem.split("-")[1]), progress=False)
    for name, tensor in again.q_network.state_dict().items():
        assert torch.equal(loaded.q_network.state_dict()[name], tensor), name
