"""Slate baselines: (B, k) slates of distinct items, seeds, the oracle's slate is the best slate, the
greedy slate's no-repeat memory, the information policy, k = 1 as the one-item agents, and a run
of each through the evaluation harness."""

from __future__ import annotations

import numpy as np
import pytest

from agents import (
    FarsightedOracleAgent,
    FarsightedOracleSlateAgent,
    GreedySlateAgent,
    OracleAgent,
    OracleSlateAgent,
    RandomSlateAgent,
    StaticProfileAgent,
    StaticProfileSlateAgent,
    SupervisedLSTMAgent,
    run_sessions,
)
from agents.slate_baselines import choose_unshown_slates, top_k_items
from recenv import DriftingUserEnv, DriftingUserVectorEnv, EnvConfig
from recenv.public_view import InformationPolicyError, public_view

SLATE = EnvConfig(slate_size=5, device="cpu")
SLATE_AGENTS = (RandomSlateAgent, GreedySlateAgent, StaticProfileSlateAgent, OracleSlateAgent,
                FarsightedOracleSlateAgent)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs on one torch thread (a few hundred users gain nothing from more)."""


def _envs(num_envs: int = 6, config: EnvConfig = SLATE, seed: int = 0) -> tuple[DriftingUserVectorEnv, np.ndarray]:
    envs = DriftingUserVectorEnv(num_envs=num_envs, config=config, autoreset_mode="disabled")
    observation, _ = envs.reset(seed=seed)
    return envs, observation


# ---------------------------------------------------------------- the shared helpers


def test_top_k_items_are_the_best_distinct_items_best_first():
    scores = np.array([[0.1, 0.9, 0.5, 0.7, 0.2], [3.0, 1.0, 2.0, 2.0, -1.0]])
    np.testing.assert_array_equal(top_k_items(scores, 3), [[1, 3, 2], [0, 2, 3]])  # a tie in index order
    np.testing.assert_array_equal(top_k_items(scores, 5)[0], [1, 3, 2, 4, 0])
    with pytest.raises(ValueError, match="1 <= k <= 5"):
        top_k_items(scores, 6)


def test_the_unshown_memory_starts_over_when_fewer_than_k_items_are_left():
    scores = np.array([[7.0, 6, 5, 4, 3, 2, 1]])  # item 0 best
    shown = np.zeros((1, 7), dtype=bool)
    first = choose_unshown_slates(scores, shown, 3)
    second = choose_unshown_slates(scores, shown, 3)
    np.testing.assert_array_equal(first, [[0, 1, 2]])
    np.testing.assert_array_equal(second, [[3, 4, 5]])
    assert shown.sum() == 6
    third = choose_unshown_slates(scores, shown, 3)  # one item left, fewer than k: the memory is cleared
    np.testing.assert_array_equal(third, [[0, 1, 2]])
    np.testing.assert_array_equal(shown[0], [True, True, True, False, False, False, False])


# ---------------------------------------------------------------- shapes, distinct items, seeds


@pytest.mark.parametrize("agent_class", SLATE_AGENTS)
def test_slates_have_k_distinct_items_for_a_batch_and_for_one_user(agent_class):
    envs, observation = _envs()
    agent = agent_class(envs)
    slates, _ = agent.predict(observation)
    assert slates.shape == (6, 5) and slates.dtype == np.int64
    assert all(len(set(row)) == 5 for row in slates.tolist())
    assert ((slates >= 0) & (slates < 500)).all()
    envs.step(slates)  # the env takes them

    env = DriftingUserEnv(config=SLATE)
    observation, _ = env.reset(seed=1)
    agent = agent_class(env)
    slate, _ = agent.predict(observation)
    assert slate.shape == (5,) and len(set(slate.tolist())) == 5
    env.step(slate)


def test_random_slates_follow_their_seed():
    envs, observation = _envs()
    draws = []
    for seed in (3, 3, 4):
        agent = RandomSlateAgent(envs, seed=seed)
        draws.append([agent.predict(observation)[0] for _ in range(2)])
    np.testing.assert_array_equal(draws[0][0], draws[1][0])
    np.testing.assert_array_equal(draws[0][1], draws[1][1])
    assert not np.array_equal(draws[0][0], draws[2][0]) and not np.array_equal(draws[0][0], draws[0][1])


def test_random_slates_are_uniform_over_items_and_slots():
    envs, observation = _envs(num_envs=200)
    agent = RandomSlateAgent(envs, seed=0)
    slates = np.concatenate([agent.predict(observation)[0] for _ in range(10)])  # 2,000 slates × 5 slots
    counts = np.bincount(slates.reshape(-1), minlength=500)
    assert counts.min() > 0 and counts.max() < 50  # 20 expected per item
    slot_means = slates.mean(0)
    assert np.all(np.abs(slot_means - 249.5) < 15)  # no slot prefers low or high indices


@pytest.mark.parametrize("agent_class", [GreedySlateAgent, StaticProfileSlateAgent, OracleSlateAgent,
                                         FarsightedOracleSlateAgent])
def test_the_ranking_agents_are_deterministic(agent_class):
    slates = []
    for _ in range(2):
        envs, observation = _envs(seed=5)
        slates.append(agent_class(envs).predict(observation)[0])
    np.testing.assert_array_equal(*slates)


# ---------------------------------------------------------------- what each agent shows


@pytest.mark.parametrize("slate_size", [1, 5, 10])
def test_the_oracle_slate_gets_the_best_slate_click_probability(slate_size):
    envs, observation = _envs(num_envs=16, config=EnvConfig(slate_size=slate_size, device="cpu"), seed=2)
    agent = OracleSlateAgent(envs)
    for _ in range(15):
        slates, _ = agent.predict(observation)
        observation, _, _, _, info = envs.step(slates)
        np.testing.assert_allclose(info["click_probability"], info["best_click_probability"], rtol=1e-5, atol=1e-6)


def test_the_oracle_slate_is_the_top_k_of_the_true_utility_and_beats_any_other_order():
    envs, observation = _envs(num_envs=4, seed=3)
    agent = OracleSlateAgent(envs)
    slates, _ = agent.predict(observation)
    probabilities = np.asarray(envs.click_probabilities())
    rows = np.arange(4)[:, None]
    assert np.all(np.diff(probabilities[rows, slates], axis=1) <= 0)  # highest first
    assert np.all(probabilities[rows, slates].min(1) >= np.sort(probabilities, 1)[:, -5])
    *_, best = envs.step(slates)
    other, _ = _envs(num_envs=4, seed=3)
    *_, reversed_order = other.step(slates[:, ::-1].copy())  # the same items, worst first
    assert np.all(reversed_order["click_probability"] < best["click_probability"])


def test_the_greedy_slate_shows_the_lstm_s_best_items_and_no_item_twice_until_the_catalog_is_used_up():
    envs, observation = _envs(num_envs=3)
    agent = GreedySlateAgent(envs)
    logits = agent.click_logits(observation)
    state, slates = None, []
    for _ in range(100):  # 500 items / 5 per slate: 100 slates before any repeat
        slate, state = agent.predict(observation, state=state)
        slates.append(slate)
    shown = np.stack(slates, 1).reshape(3, -1)
    np.testing.assert_array_equal(np.sort(shown, 1), np.tile(np.arange(500), (3, 1)))  # every item once
    np.testing.assert_array_equal(slates[0], top_k_items(logits, 5))  # the first slate: the 5 best
    assert np.all(np.diff(logits[np.arange(3)[:, None], slates[0]], axis=1) <= 0)
    again, state = agent.predict(observation, state=state)  # used up: the memory starts over
    np.testing.assert_array_equal(again, slates[0])
    assert state.sum() == 3 * 5
    fresh, _ = agent.predict(observation, state=state, episode_start=np.array([True, False, False]))
    np.testing.assert_array_equal(fresh[0], slates[0][0])  # a new session forgets
    np.testing.assert_array_equal(fresh[1:], slates[1][1:])  # the others remember


def test_the_static_profile_slate_walks_down_its_ranking_a_screen_per_step():
    envs, observation = _envs(num_envs=2)
    agent = StaticProfileSlateAgent(envs, top_k=12)
    ranking = agent.ranking()
    state, slates = None, []
    for _ in range(3):
        slate, state = agent.predict(observation, state=state)
        slates.append(slate)
    np.testing.assert_array_equal(slates[0], ranking[:, 0:5])
    np.testing.assert_array_equal(slates[1], ranking[:, 5:10])
    np.testing.assert_array_equal(slates[2], ranking[:, [10, 11, 0, 1, 2]])  # wraps round at top_k
    restart, _ = agent.predict(observation, state=state, episode_start=np.array([True, False]))
    np.testing.assert_array_equal(restart[0], ranking[0, 0:5])
    with pytest.raises(ValueError, match="top_k = 4"):
        StaticProfileSlateAgent(envs, top_k=4)


def test_the_greedy_slate_needs_encoded_observations():
    with pytest.raises(ValueError, match="obs_mode='encoded'"):
        GreedySlateAgent(DriftingUserVectorEnv(num_envs=2, config=SLATE.replace(obs_mode="ids")))


@pytest.mark.parametrize(("slate_agent", "one_item_agent"), [
    (GreedySlateAgent, SupervisedLSTMAgent),
    (StaticProfileSlateAgent, StaticProfileAgent),
    (OracleSlateAgent, OracleAgent),
    (FarsightedOracleSlateAgent, FarsightedOracleAgent),
])
def test_with_one_slot_each_is_its_one_item_agent(slate_agent, one_item_agent):
    config = EnvConfig(device="cpu")
    envs, _ = _envs(num_envs=2, config=config)
    ours = run_sessions(slate_agent(envs), 24, seed=7, config=config, progress=False)
    theirs = run_sessions(one_item_agent(envs), 24, seed=7, config=config, progress=False)
    for mine, reference in zip(ours.items, theirs.items, strict=True):
        np.testing.assert_array_equal(mine, reference)


# ---------------------------------------------------------------- information policy and the harness


def test_only_the_oracles_are_privileged_and_the_others_run_on_public_views():
    assert OracleSlateAgent.privileged and FarsightedOracleSlateAgent.privileged
    envs, observation = _envs()
    view = public_view(envs)
    for agent_class in (RandomSlateAgent, GreedySlateAgent, StaticProfileSlateAgent):
        assert not agent_class.privileged
        agent_class(view).predict(observation)  # everything they read is public
    for agent_class in (OracleSlateAgent, FarsightedOracleSlateAgent):
        with pytest.raises(InformationPolicyError):
            agent_class(view).predict(observation)


def test_every_slate_agent_runs_through_the_harness_and_the_oracles_rank_as_they_should():
    records = {agent_class.__name__: run_sessions(agent_class(_envs(2)[0]), 24, seed=11, config=SLATE, progress=False)
               for agent_class in SLATE_AGENTS}
    for name, run in records.items():
        assert len(run) == 24 and run.returns.min() >= 0, name
        assert all(np.all(p <= b + 1e-6) for p, b in zip(run.click_probability, run.best_click_probability)), name
    assert np.abs(records["OracleSlateAgent"].regret_per_step).max() < 1e-5
    assert records["RandomSlateAgent"].regret_per_step.mean() > 0.1
    assert records["FarsightedOracleSlateAgent"].lengths.mean() > records["OracleSlateAgent"].lengths.mean()
