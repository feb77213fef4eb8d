"""RecurrentDQNAgent: n-step targets on hand-built sessions, the acting state is the replayed state,
a short training run, save/load, and the information policy."""

import numpy as np
import pytest
import torch

from agents import run_sessions
from agents.recurrent_dqn import RecurrentDQNAgent, RecurrentDQNConfig, n_step_targets, session_context
from recenv import DriftingUserVectorEnv, EnvConfig
from recenv.public_view import public_view

CONFIG = EnvConfig(preset="mixed")


def test_n_step_targets_by_hand():
    gamma = 0.5
    rewards = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])  # second session: 2 steps, padded
    lengths = torch.tensor([4, 2])
    values = torch.tensor([[10.0, 20.0, 30.0, 40.0, 50.0], [7.0, 8.0, 9.0, 0.0, 0.0]])
    # n = 2, the first session truncated (bootstraps at its end), the second terminated (does not).
    targets = n_step_targets(rewards, lengths, torch.tensor([False, True]), values, gamma, n_step=2)
    expected_first = [1 + 0 + 0.25 * 30, 0 + 0.5 * 1 + 0.25 * 40, 1 + 0 + 0.25 * 50, 0 + 0.5 * 50]
    expected_second = [1 + 0.5 * 1 + 0.0, 1 + 0.0]
    assert targets[0].tolist() == pytest.approx(expected_first)
    assert targets[1, :2].tolist() == pytest.approx(expected_second)
    # n = 1 on a truncated session is the one-step target r + γ·V(s').
    one = n_step_targets(rewards[:1], lengths[:1], torch.tensor([False]), values[:1], gamma, n_step=1)
    assert one[0].tolist() == pytest.approx([1 + 0.5 * 20, 0 + 0.5 * 30, 1 + 0.5 * 40, 0 + 0.5 * 50])


@pytest.fixture(scope="module")
def env():
    return public_view(DriftingUserVectorEnv(num_envs=8, config=CONFIG))


def test_the_state_it_acts_from_is_the_state_it_learns_from(env):
    """predict() advances its LSTM one interaction per step, reading the click off the session
    context; the replay recomputes the states from the whole session. They must agree."""
    agent = RecurrentDQNAgent(env, RecurrentDQNConfig(seed=1), device="cpu")
    agent.bind(env)
    observation, _ = env.reset(seed=5)
    warm_items, warm_clicks = env.warmup_history()
    state, items, clicks, hidden = None, [], [], []
    for _ in range(6):
        action, state = agent.predict(observation, state)
        hidden.append(state[0].copy())
        observation, reward, *_ = env.step(action)
        items.append(action)
        clicks.append(reward)
    items, clicks = np.stack(items, 1), np.stack(clicks, 1).astype(np.float32)
    assert clicks.sum() > 0  # the check needs clicks to read off the context
    with torch.no_grad():
        _, start = agent.q_network.encode(torch.as_tensor(warm_items), torch.as_tensor(warm_clicks, dtype=torch.float32))
        outputs, _ = agent.q_network.encode(torch.as_tensor(items[:, :-1]), torch.as_tensor(clicks[:, :-1]), start)
    replayed = torch.cat([start[0][:, None], outputs], 1).numpy()
    np.testing.assert_allclose(np.stack(hidden, 1), replayed, atol=1e-5)


def test_session_context_scales_as_the_env_does(env):
    observation, _ = env.reset(seed=2)
    for _ in range(3):
        observation, *_ = env.step(np.zeros(env.num_envs, dtype=np.int64))
    from recenv.observation import session_clock

    horizon = env.config.max_episode_steps
    np.testing.assert_allclose(session_context(session_clock(observation, horizon), horizon).numpy(),
                               observation[:, -2:], atol=1e-6)


def test_warm_started_agent_ranks_like_the_click_model_it_copies(env):
    agent = RecurrentDQNAgent(env, RecurrentDQNConfig(seed=0), device="cpu")
    encoder = env.encoder
    observation, _ = env.reset(seed=3)
    hidden = torch.as_tensor(observation[:, :-2])
    with torch.no_grad():
        logits = encoder.click_logits_all(hidden, agent.q_network.item_embeddings)
    agent.bind(env)
    actions, _ = agent.predict(observation)
    np.testing.assert_array_equal(actions, logits.argmax(1).numpy())


def test_learn_save_load(env, tmp_path):
    agent = RecurrentDQNAgent(env, RecurrentDQNConfig(learning_starts=300, batch_sessions=8, seed=0), device="cpu")
    before = {k: v.clone() for k, v in agent.q_network.state_dict().items()}
    agent.learn(env, 1_200, progress=False)
    assert agent.log.history and agent.log.history[-1]["steps"] >= 1_200
    assert np.isfinite(agent.log.history[-1]["loss"])
    changed = [k for k, v in agent.q_network.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("history.lstm") for k in changed) and any(k.startswith("head.") for k in changed)

    agent.save(tmp_path / "rdqn.pt")
    loaded = RecurrentDQNAgent(env, device="cpu").load(tmp_path / "rdqn.pt")
    first = run_sessions(agent, 16, seed=77, config=CONFIG, progress=False)
    second = run_sessions(loaded, 16, seed=77, config=CONFIG, progress=False)
    np.testing.assert_array_equal(first.returns, second.returns)
