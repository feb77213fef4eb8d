"""LongTermValueAgent: Q = P·(1 + γ·W1) + (1 − P)·γ·W0, the click model joined with afterstate values."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from click_value_helpers import click_logits, randomise

from agents import LongTermValueAgent, LongTermValueConfig, run_sessions
from agents.long_term_value import SessionMemory, _ReplayBuffer, long_term_q
from recenv import DriftingUserVectorEnv, EnvConfig
from recenv.observation import session_clock
from recenv.public_view import PublicVectorEnv, public_view

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = EnvConfig(preset="mixed")
SMALL = LongTermValueConfig(hidden_size=32, item_size=8, batch_size=64, learning_starts=300, buffer_size=5_000,
                            target_update_interval=20)


@pytest.fixture(scope="module")
def env():
    return public_view(DriftingUserVectorEnv(num_envs=16, config=CONFIG))


@pytest.fixture(scope="module")
def observations(env):
    observation, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    rows = [observation]
    for _ in range(4):
        observation, *_ = env.step(rng.integers(env.catalog.num_items, size=env.num_envs))
        rows.append(observation)
    return np.concatenate(rows)


def test_the_decomposition_on_hand_built_numbers():
    p = torch.tensor([0.5, 0.8, 0.5, 0.0])
    w1 = torch.tensor([10.0, 0.0, 2.0, 7.0])
    w0 = torch.tensor([2.0, 1.0, 4.0, 3.0])
    q = long_term_q(p, w1, w0, gamma=0.9)
    # 0.5·(1 + 9) + 0.5·1.8;  0.8·1 + 0.2·0.9;  0.5·2.8 + 0.5·3.6;  no click: 0.9·3
    np.testing.assert_allclose(q.numpy(), [5.9, 0.98, 3.2, 2.7], rtol=1e-6)
    # The myopic ranking (by P) puts the clickbait-like item 1 first; the long-term one puts it last.
    assert int(p.argmax()) == 1 and int(q.argmin()) == 1
    np.testing.assert_allclose(long_term_q(p, w1, w0, gamma=0.0).numpy(), p.numpy())


def test_decompose_returns_the_parts_q_is_made_of(env, observations):
    agent = LongTermValueAgent(env, SMALL, device="cpu")
    randomise(agent.values)
    parts = agent.decompose(observations)
    np.testing.assert_array_equal(agent.predict(observations)[0], parts["q"].argmax(1))
    assert set(parts) == {"click_probability", "value_click", "value_no_click", "q"}
    assert all(v.shape == (len(observations), env.catalog.num_items) for v in parts.values())
    assert np.abs(parts["value_click"] - parts["value_no_click"]).max() > 1e-3  # the two heads differ
    expected = parts["click_probability"] * (1 + 0.99 * parts["value_click"]) + (
        1 - parts["click_probability"]) * 0.99 * parts["value_no_click"]
    np.testing.assert_allclose(parts["q"], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(parts["q"], agent.q_values(observations).detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(parts["click_probability"], 1 / (1 + np.exp(-click_logits(env, observations))),
                               rtol=1e-5, atol=1e-6)
    single = agent.decompose(observations[0])
    np.testing.assert_allclose(single["q"], parts["q"][0], rtol=1e-5, atol=1e-4)


def test_with_zero_continuation_values_it_ranks_exactly_like_the_click_model(env, observations):
    click_model_choice = click_logits(env, observations).argmax(1)
    fresh = LongTermValueAgent(env, SMALL, device="cpu")  # W ≡ 0 at the start
    assert np.all(fresh.decompose(observations)["value_click"] == 0)
    np.testing.assert_array_equal(fresh.predict(observations)[0], click_model_choice)
    # γ = 0 is myopic whatever W says ...
    myopic = LongTermValueAgent(env, replace(SMALL, gamma=0.0), device="cpu")
    randomise(myopic.values)
    np.testing.assert_array_equal(myopic.predict(observations)[0], click_model_choice)
    # ... and with γ > 0 the same W changes the choice.
    farsighted = LongTermValueAgent(env, replace(SMALL, gamma=0.99), device="cpu")
    randomise(farsighted.values)
    assert (farsighted.predict(observations)[0] != click_model_choice).mean() > 0.5


@pytest.mark.parametrize("bootstrap", ["max", "sarsa"])
def test_a_short_learn_fills_the_log_and_trains_both_parts(env, observations, bootstrap):
    agent = LongTermValueAgent(env, replace(SMALL, bootstrap=bootstrap), device="cpu")
    agent.log.every = 500
    before_click = agent.decompose(observations)["click_probability"]
    agent.learn(env, 2_000, progress=False)
    history = agent.log.history
    assert len(history) >= 4 and history[-1]["steps"] >= 2_000
    assert all(np.isfinite([row["loss"], row["click_loss"], row["value"]]).all() for row in history if row["steps"] >= 1_000)
    assert "episode_return" in history[-1] and history[-1]["steps_per_second"] > 0
    parts = agent.decompose(observations)
    assert np.abs(parts["value_click"]).max() > 0.01  # W was trained away from 0 ...
    assert np.abs(parts["click_probability"] - before_click).max() > 1e-4  # ... and the click head fine-tuned
    # The env's own encoder is never touched by fine-tuning.
    np.testing.assert_allclose(1 / (1 + np.exp(-click_logits(env, observations))), before_click, rtol=1e-5)


def test_without_fine_tuning_the_click_model_stays_as_shipped(env, observations):
    agent = LongTermValueAgent(env, replace(SMALL, fine_tune_click_model=False), device="cpu")
    before = agent.decompose(observations)
    agent.learn(env, 1_000, progress=False)
    after = agent.decompose(observations)
    np.testing.assert_array_equal(after["click_probability"], before["click_probability"])
    assert np.abs(after["value_click"] - before["value_click"]).max() > 0.01


def test_the_replay_buffer_derives_the_next_memory_from_the_click():
    buffer = _ReplayBuffer(8, observation_size=3, num_items=5, memory=True, device=torch.device("cpu"))
    clicked = torch.tensor([[0, 1, 0, 0, 0], [2, 0, 0, 0, 1]], dtype=torch.float32)
    buffer.add(torch.zeros(2, 3), clicked, torch.tensor([1, 4]), torch.tensor([1.0, 0.0]), torch.ones(2, 3),
               torch.tensor([0.0, 1.0]), next_action=torch.tensor([3, 0]))
    _, clicked_before, a, y, _, m_next, term, a_next = buffer.sample(64, torch.Generator().manual_seed(0))
    first = a == 1
    np.testing.assert_array_equal(y.numpy(), first.numpy().astype(np.float32))
    np.testing.assert_array_equal(clicked_before[first].numpy(), np.tile([[0, 1, 0, 0, 0]], (int(first.sum()), 1)))
    assert first.any() and (~first).any()
    np.testing.assert_array_equal(m_next[first].numpy(), np.tile([[0, 2, 0, 0, 0]], (int(first.sum()), 1)))
    np.testing.assert_array_equal(m_next[~first].numpy(), np.tile([[2, 0, 0, 0, 1]], (int((~first).sum()), 1)))
    np.testing.assert_array_equal(a_next.numpy(), np.where(first.numpy(), 3, 0))
    np.testing.assert_array_equal(term.numpy(), np.where(first.numpy(), 0.0, 1.0))


def test_the_session_memory_counts_the_clicks_it_reads_off_the_session_clock():
    env = public_view(DriftingUserVectorEnv(num_envs=32, config=CONFIG))
    agent = LongTermValueAgent(env, SMALL, device="cpu")
    randomise(agent.values)
    observation, _ = env.reset(seed=7)
    rng = np.random.default_rng(1)
    state, expected = None, np.zeros((32, env.catalog.num_items))
    for step in range(6):
        actions, state = agent.predict(observation, state=state, episode_start=np.full(32, step == 0))
        assert isinstance(state, SessionMemory)
        np.testing.assert_array_equal(state.clicked, expected)  # the memory the action was chosen with
        actions = np.where(rng.random(32) < 0.5, actions, rng.integers(env.catalog.num_items, size=32))
        state = state._replace(last_action=actions)
        observation, reward, *_ = env.step(actions)
        expected[np.arange(32), actions] += reward
    _, state = agent.predict(observation, state=state)
    np.testing.assert_array_equal(state.clicked, expected)
    assert expected.sum() > 10
    np.testing.assert_array_equal(session_clock(observation, env.config.max_episode_steps)[:, 1], expected.sum(1))
    # The memory changes W (and so Q) for the same observations.
    assert np.abs(agent.decompose(observation, state)["value_click"] - agent.decompose(observation)["value_click"]).max() > 1e-3
    # Users whose session starts forget.
    _, fresh = agent.predict(observation, state=state, episode_start=np.ones(32, dtype=bool))
    assert fresh.clicked.sum() == 0


def test_save_then_load_gives_the_same_actions(env, observations, tmp_path):
    agent = LongTermValueAgent(env, SMALL, device="cpu")
    randomise(agent.values, seed=1)
    with torch.no_grad():
        agent.click_model.user_bias.bias.add_(0.7)  # a fine-tuned click head travels with the file
    path = agent.save(tmp_path / "ltv.pt")
    loaded = LongTermValueAgent(env, LongTermValueConfig(seed=5), device="cpu").load(path)
    assert loaded.config == SMALL
    np.testing.assert_array_equal(loaded.predict(observations)[0], agent.predict(observations)[0])
    np.testing.assert_allclose(loaded.decompose(observations)["q"], agent.decompose(observations)["q"], rtol=1e-6)
    assert (LongTermValueAgent(env, SMALL, device="cpu").predict(observations)[0] != agent.predict(observations)[0]).any()


def test_it_runs_on_the_public_view_and_samples_with_its_own_generator(env, observations):
    assert isinstance(env, PublicVectorEnv)
    agent = LongTermValueAgent(env, SMALL, device="cpu")
    greedy = agent.predict(observations)[0]
    assert np.array_equal(agent.predict(observations, deterministic=True)[0], greedy)
    agent.rng = np.random.default_rng(0)
    first = agent.predict(observations, deterministic=False)[0]
    agent.rng = np.random.default_rng(0)
    np.testing.assert_array_equal(agent.predict(observations, deterministic=False)[0], first)
    explored = first != greedy
    assert 0 < explored.mean() < 0.3  # ε = 0.05 of 80 users
    records = run_sessions(agent, 8, seed=1, config=CONFIG, progress=False)
    assert len(records) == 8 and records.returns.sum() > 0


def test_it_needs_encoded_observations():
    env = DriftingUserVectorEnv(num_envs=2, config=EnvConfig(preset="mixed", obs_mode="ids"))
    with pytest.raises(ValueError, match="encoded"):
        LongTermValueAgent(env, SMALL, device="cpu")
    with pytest.raises(ValueError, match="bootstrap"):
        LongTermValueConfig(bootstrap="softmax")
