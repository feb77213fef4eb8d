"""SlateQAgent: item-level values combined under the conditional logit of the slate."""

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from click_value_helpers import click_logits, randomise

from agents import run_sessions
from agents.long_term_value import long_term_q
from agents.slate_q import (
    SLATE_OPTIMIZERS,
    SlateQAgent,
    SlateQConfig,
    SlateSessionMemory,
    _SlateReplayBuffer,
    optimise_slates,
    slate_value,
)
from recenv import DriftingUserVectorEnv, EnvConfig
from recenv.dynamics import slate_choice_probabilities, slate_position_effects
from recenv.observation import session_clock
from recenv.public_view import PublicVectorEnv, public_view

pytestmark = pytest.mark.usefixtures("one_torch_thread")

K = 4
CONFIG = EnvConfig(preset="mixed", slate_size=K)
SMALL = SlateQConfig(hidden_size=32, item_size=8, batch_size=64, learning_starts=300, buffer_size=5_000,
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
        slates = np.stack([rng.choice(env.catalog.num_items, K, replace=False) for _ in range(env.num_envs)])
        observation, *_ = env.step(slates)
        rows.append(observation)
    return np.concatenate(rows)


def _distinct(slates):
    return all(len(set(row)) == len(row) for row in np.asarray(slates).reshape(-1, np.shape(slates)[-1]).tolist())


# ---------------------------------------------------------------- the decomposition, by hand


def test_the_slate_value_on_hand_built_numbers():
    # exp(u) = 1, 2, 3 and the no-click option's 1: P = 1/7, 2/7, 3/7, P(⊥) = 1/7.
    logits = torch.tensor([[0.0, math.log(2.0), math.log(3.0)]])
    value = slate_value(logits, torch.tensor([[2.0, 1.0, 4.0]]), torch.tensor([0.5]))
    assert float(value[0]) == pytest.approx((2 * 1 + 1 * 2 + 4 * 3 + 0.5 * 1) / 7, rel=1e-6)
    # An empty slot (−inf) is never chosen, whatever its value.
    empty = slate_value(torch.tensor([[0.0, float("-inf")]]), torch.tensor([[3.0, 100.0]]), torch.tensor([1.0]))
    assert float(empty[0]) == pytest.approx(0.5 * 3 + 0.5 * 1, rel=1e-6)
    # k = 1: the one-item decomposition P·(1 + γ·W1) + (1 − P)·γ·W0.
    u, w1, w0, gamma = torch.tensor([[0.3], [-1.2]]), torch.tensor([[2.0], [5.0]]), torch.tensor([1.5, 4.0]), 0.9
    np.testing.assert_allclose(slate_value(u, 1 + gamma * w1, gamma * w0).numpy(),
                               long_term_q(torch.sigmoid(u[:, 0]), w1[:, 0], w0, gamma).numpy(), rtol=1e-6)


def test_the_agent_s_slate_value_is_the_formula_on_its_own_parts(env, observations):
    agent = SlateQAgent(env, SMALL, device="cpu")
    randomise(agent.values)
    parts = agent.item_values(observations)
    rng = np.random.default_rng(1)
    slates = np.stack([rng.choice(env.catalog.num_items, K, replace=False) for _ in range(len(observations))])
    rows = np.arange(len(observations))[:, None]
    effects = -env.config.slate_position_decay * np.log2(1 + np.arange(K))
    attraction = np.exp(parts["utility"][rows, slates] + effects)
    expected = ((attraction * parts["click_value"][rows, slates]).sum(1) + parts["no_click_value"]) / (1 + attraction.sum(1))
    np.testing.assert_allclose(agent.slate_values(observations, slates), expected, rtol=1e-4)
    assert np.ptp(parts["no_click_value"]) > 0 and np.ptp(parts["click_value"]) > 0
    np.testing.assert_allclose(parts["utility"], click_logits(env, observations), rtol=1e-5, atol=1e-5)
    # A repeated item empties its slot, as in the env.
    repeated = slates.copy()
    repeated[:, 1] = repeated[:, 0]
    attraction[:, 1] = 0.0
    expected = ((attraction * parts["click_value"][rows, slates]).sum(1) + parts["no_click_value"]) / (1 + attraction.sum(1))
    np.testing.assert_allclose(agent.slate_values(observations, repeated), expected, rtol=1e-4)
    assert agent.slate_values(observations[0], slates[0]) == pytest.approx(float(agent.slate_values(observations, slates)[0]), rel=1e-5)


def test_the_exact_optimiser_finds_the_best_slate_and_the_heuristics_do_not_beat_it():
    generator = torch.Generator().manual_seed(0)
    n, k, batch = 7, 3, 40
    utilities = torch.randn(batch, n, generator=generator) * 1.5
    click_values = 3.0 + torch.randn(batch, n, generator=generator)
    no_click_value = 2.5 + torch.randn(batch, generator=generator)
    effects = slate_position_effects(k, 0.7)

    def value(slates):
        return slate_value(utilities.gather(1, slates) + effects, click_values.gather(1, slates), no_click_value)

    every = torch.tensor(list(itertools.permutations(range(n), k)))
    brute = torch.stack([value(every[i].expand(batch, k)) for i in range(len(every))], 1).max(1).values
    found = {method: optimise_slates(utilities, click_values, no_click_value, effects, method) for method in SLATE_OPTIMIZERS}
    for method, slates in found.items():
        assert slates.shape == (batch, k) and _distinct(slates.numpy()), method
        assert (value(slates) <= brute + 1e-5).all(), method
    np.testing.assert_allclose(value(found["exact"]).numpy(), brute.numpy(), rtol=1e-5)
    assert (value(found["topk"]) < brute - 1e-4).any()  # the heuristic is not exact on these numbers
    # The paper's top-k heuristic: the k items of highest exp(v)·Q̄, best first.
    expected = torch.topk(torch.exp(utilities) * click_values, k, dim=1).indices
    np.testing.assert_array_equal(found["topk"].numpy(), expected.numpy())


def test_with_zero_continuation_values_the_slate_is_the_click_model_s_top_k(env, observations):
    top_k = np.argsort(-click_logits(env, observations), axis=1, kind="stable")[:, :K]
    for method in SLATE_OPTIMIZERS:
        fresh = SlateQAgent(env, replace(SMALL, slate_optimizer=method), device="cpu")  # W ≡ 0 at the start
        assert np.all(fresh.item_values(observations)["click_value"] == 1.0)
        np.testing.assert_array_equal(fresh.predict(observations)[0], top_k, err_msg=method)
    # γ = 0 is myopic whatever W says ...
    myopic = SlateQAgent(env, replace(SMALL, gamma=0.0), device="cpu")
    randomise(myopic.values)
    np.testing.assert_array_equal(myopic.predict(observations)[0], top_k)
    # ... and with γ > 0 the same W changes the slates.
    farsighted = SlateQAgent(env, SMALL, device="cpu")
    randomise(farsighted.values)
    assert (farsighted.predict(observations)[0] != top_k).any(1).mean() > 0.5


# ---------------------------------------------------------------- acting


def test_slates_are_k_distinct_items_in_the_action_space(env, observations):
    agent = SlateQAgent(env, replace(SMALL, start_epsilon=1.0), device="cpu")
    randomise(agent.values)
    slates, state = agent.predict(observations)
    assert slates.shape == (len(observations), K) and slates.dtype == np.int64 and _distinct(slates)
    assert isinstance(state, SlateSessionMemory)
    single, _ = agent.predict(observations[0])
    assert single.shape == (K,) and env.single_action_space.contains(single)
    np.testing.assert_array_equal(single, slates[0])
    explored, _ = agent.predict(observations, deterministic=False)
    assert _distinct(explored) and 0 < (explored != slates).mean() < 0.3  # ε = 0.05 per slot
    everything = agent._explore(slates, 1.0, np.random.default_rng(0))  # every slot explored: still distinct
    assert _distinct(everything) and (everything != slates).all()
    agent.rng = np.random.default_rng(0)
    first = agent.predict(observations, deterministic=False)[0]
    agent.rng = np.random.default_rng(0)
    np.testing.assert_array_equal(agent.predict(observations, deterministic=False)[0], first)


def test_the_session_memory_counts_the_chosen_items():
    base = DriftingUserVectorEnv(num_envs=32, config=CONFIG)
    env = public_view(base)
    agent = SlateQAgent(env, SMALL, device="cpu")
    randomise(agent.values)
    agent.bind(env)  # which item was chosen: the history's recorded item
    blind = SlateQAgent(env, SMALL, device="cpu")  # no env bound: the click spread by the choice model
    observation, _ = env.reset(seed=7)
    state = blind_state = None
    expected = np.zeros((32, env.catalog.num_items))
    for step in range(6):
        start = np.full(32, step == 0)
        slates, state = agent.predict(observation, state=state, episode_start=start)
        _, blind_state = blind.predict(observation, state=blind_state, episode_start=start)
        np.testing.assert_array_equal(state.clicked, expected)  # the memory the slate was chosen with
        np.testing.assert_allclose(blind_state.clicked.sum(1), expected.sum(1), rtol=1e-5)  # as many clicks
        blind_state = blind_state._replace(last_slate=slates, last_choice=state.last_choice)
        observation, reward, _, _, info = env.step(slates)
        clicked = info["chosen_slot"] >= 0
        np.testing.assert_array_equal(clicked, reward > 0)
        expected[np.flatnonzero(clicked), slates[clicked, info["chosen_slot"][clicked]]] += 1
    _, state = agent.predict(observation, state=state)
    np.testing.assert_array_equal(state.clicked, expected)
    assert expected.sum() > 10
    np.testing.assert_array_equal(session_clock(observation, env.config.max_episode_steps)[:, 1], expected.sum(1))
    np.testing.assert_allclose(state.last_choice.sum(1), 1.0, rtol=1e-5)
    # The memory changes W (and so the values) for the same observations; users whose session starts forget.
    assert np.abs(agent.item_values(observation, state)["click_value"] - agent.item_values(observation)["click_value"]).max() > 1e-3
    _, fresh = agent.predict(observation, state=state, episode_start=np.ones(32, dtype=bool))
    assert fresh.clicked.sum() == 0


def test_no_item_is_shown_twice_in_a_session():
    env = public_view(DriftingUserVectorEnv(num_envs=8, config=CONFIG))
    fresh = SlateQAgent(env, SMALL, device="cpu")  # W ≡ 0: the click model's top k among the unshown items
    observation, _ = env.reset(seed=5)
    state, shown = None, np.zeros((8, env.catalog.num_items), dtype=bool)
    for step in range(8):
        slates, state = fresh.predict(observation, state=state, episode_start=np.full(8, step == 0))
        expected = np.argsort(-np.where(shown, -np.inf, click_logits(env, observation)), axis=1, kind="stable")[:, :K]
        np.testing.assert_array_equal(slates, expected)
        assert not shown[np.arange(8)[:, None], slates].any()
        shown[np.arange(8)[:, None], slates] = True
        np.testing.assert_array_equal(state.shown, shown)
        observation, *_ = env.step(slates)
    # Fewer than k unshown items left: the user starts over; a new session forgets.
    nearly = state._replace(shown=np.ones_like(shown) & (np.arange(env.catalog.num_items) >= K - 1))
    assert fresh._shown(nearly, None, 8).sum() == 0
    assert fresh._shown(state, np.ones(8, dtype=bool), 8).sum() == 0
    repeating = SlateQAgent(env, replace(SMALL, no_repeats=False), device="cpu")
    first, memory = repeating.predict(observation)
    np.testing.assert_array_equal(repeating.predict(observation, state=memory)[0], first)  # the same slate again


def test_the_replay_buffer_derives_the_next_memories_from_the_choice_and_the_slate():
    buffer = _SlateReplayBuffer(8, observation_size=3, slate_size=2, num_items=5, memory=True, shown=True,
                                device=torch.device("cpu"))
    clicked = torch.tensor([[0, 1, 0, 0, 0], [0, 0, 0, 0, 2]], dtype=torch.float32)
    shown = torch.tensor([[0, 1, 0, 0, 0], [1, 0, 0, 0, 1]], dtype=torch.bool)
    buffer.add(torch.zeros(2, 3), clicked, shown, torch.tensor([[3, 1], [2, 0]]), torch.tensor([1, -1]),
               torch.ones(2, 3), torch.tensor([0.0, 1.0]))
    _, before, _, slot, item, _, m_next, shown_next, term = buffer.sample(64, torch.Generator().manual_seed(0))
    first = slot == 1
    assert first.any() and (~first).any()
    np.testing.assert_array_equal(item.numpy(), np.where(first.numpy(), 1, 2))  # after no click: the first slot's
    np.testing.assert_array_equal(m_next[first].numpy(), np.tile([[0, 2, 0, 0, 0]], (int(first.sum()), 1)))
    np.testing.assert_array_equal(m_next[~first].numpy(), before[~first].numpy())
    np.testing.assert_array_equal(shown_next[first].numpy(), np.tile([[0, 1, 0, 1, 0]], (int(first.sum()), 1)).astype(bool))
    np.testing.assert_array_equal(shown_next[~first].numpy(), np.tile([[1, 0, 1, 0, 1]], (int((~first).sum()), 1)).astype(bool))
    np.testing.assert_array_equal(term.numpy(), np.where(first.numpy(), 0.0, 1.0))


# ---------------------------------------------------------------- learning, persistence, envs


def test_a_short_learn_gives_finite_losses_and_trains_both_parts(env, observations):
    agent = SlateQAgent(env, SMALL, device="cpu")
    agent.log.every = 300
    before = agent.item_values(observations)
    agent.learn(env, 1_200, progress=False)
    history = agent.log.history
    assert len(history) >= 3 and history[-1]["steps"] >= 1_200
    trained = [row for row in history if row["steps"] >= 600]
    assert trained and all(np.isfinite([row["loss"], row["click_loss"], row["value"]]).all() for row in trained)
    assert "episode_return" in history[-1] and history[-1]["steps_per_second"] > 0
    after = agent.item_values(observations)
    assert np.abs(after["click_value"] - 1.0).max() > 1e-3  # W was trained away from 0 ...
    assert np.abs(after["utility"] - before["utility"]).max() > 1e-4  # ... and the click head fine-tuned
    np.testing.assert_allclose(click_logits(env, observations), before["utility"], rtol=1e-5)  # not the env's
    assert _distinct(agent.predict(observations)[0])


def test_save_then_load_gives_the_same_slates(env, observations, tmp_path):
    agent = SlateQAgent(env, replace(SMALL, slate_optimizer="greedy"), device="cpu")
    randomise(agent.values, seed=1)
    with torch.no_grad():
        agent.click_model.user_bias.bias.add_(0.7)  # a fine-tuned click head travels with the file
    path = agent.save(tmp_path / "slate_q.pt")
    loaded = SlateQAgent(env, SlateQConfig(seed=5), device="cpu").load(path)
    assert loaded.config == agent.config
    np.testing.assert_array_equal(loaded.predict(observations)[0], agent.predict(observations)[0])
    rng = np.random.default_rng(2)
    slates = np.stack([rng.choice(env.catalog.num_items, K, replace=False) for _ in range(len(observations))])
    np.testing.assert_allclose(loaded.slate_values(observations, slates), agent.slate_values(observations, slates), rtol=1e-6)
    assert (SlateQAgent(env, SMALL, device="cpu").predict(observations)[0] != agent.predict(observations)[0]).any()
    other = public_view(DriftingUserVectorEnv(num_envs=2, config=replace(CONFIG, slate_size=3)))
    with pytest.raises(ValueError, match="slates of 4"):
        SlateQAgent(other, SMALL, device="cpu").load(path)


def test_it_runs_on_the_public_view_under_the_harness(env):
    assert isinstance(env, PublicVectorEnv)
    agent = SlateQAgent(env, SMALL, device="cpu")
    randomise(agent.values)
    records = run_sessions(agent, 8, seed=1, config=CONFIG, progress=False)
    assert len(records) == 8 and records.returns.sum() > 0


def test_one_item_slates_are_the_one_item_decomposition():
    """k = 1 works: Discrete actions, the click inferred from the reward."""
    env = public_view(DriftingUserVectorEnv(num_envs=8, config=EnvConfig(preset="mixed")))
    agent = SlateQAgent(env, SMALL, device="cpu")
    observation, _ = env.reset(seed=0)
    actions, _ = agent.predict(observation)
    assert actions.shape == (8,) and env.action_space.contains(actions)
    np.testing.assert_array_equal(actions, click_logits(env, observation).argmax(1))
    assert env.single_action_space.contains(agent.predict(observation[0])[0])
    agent.learn(env, 600, progress=False)
    assert np.isfinite(agent.log.history[-1]["loss"])
    parts = agent.item_values(observation)
    p = torch.sigmoid(torch.as_tensor(parts["utility"]))
    np.testing.assert_allclose(agent.slate_values(observation, actions),
                               (p * torch.as_tensor(parts["click_value"]) + (1 - p) * torch.as_tensor(parts["no_click_value"])[:, None]
                                ).numpy()[np.arange(8), actions], rtol=1e-5)


def test_it_refuses_what_it_cannot_serve(env):
    with pytest.raises(ValueError, match="encoded"):
        SlateQAgent(DriftingUserVectorEnv(num_envs=2, config=replace(CONFIG, obs_mode="ids")), SMALL, device="cpu")
    with pytest.raises(ValueError, match="slate_optimizer"):
        SlateQConfig(slate_optimizer="beam")
    agent = SlateQAgent(env, SMALL, device="cpu")
    other = DriftingUserVectorEnv(num_envs=2, config=replace(CONFIG, slate_size=2))
    with pytest.raises(ValueError, match="slates of 4 items"):
        agent.learn(other, 10, progress=False)
    with pytest.raises(TypeError, match="vector env"):
        agent.learn(object(), 10, progress=False)


def test_the_position_effect_comes_from_the_env_config():
    env = DriftingUserVectorEnv(num_envs=2, config=replace(CONFIG, slate_position_decay=1.3))
    agent = SlateQAgent(env, SMALL, device="cpu")
    np.testing.assert_allclose(agent.position_effects.numpy(), -1.3 * np.log2(1 + np.arange(K)), rtol=1e-6)
    assert slate_choice_probabilities(agent.position_effects[None]).sum() < 1
