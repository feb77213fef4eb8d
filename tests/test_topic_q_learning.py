"""TopicQLearningAgent: its state abstraction, its ranker, learning, persistence, the public view."""

import gymnasium as gym
import numpy as np
import pytest

import recenv
from agents import QLearningAgent, TopicQLearningAgent, TopicQLearningConfig, run_sessions
from agents.topic_q_learning import text_styles
from recenv import DriftingUserVectorEnv, EnvConfig
from recenv.public_view import PublicVectorEnv, public_view

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _ids_env(users: int) -> DriftingUserVectorEnv:
    """The default catalog on ``mixed``, ``"ids"`` observations (no encoder to run: fast)."""
    return DriftingUserVectorEnv(num_envs=users, obs_mode="ids", device="cpu")


def test_states_bucket_the_session_counts():
    agent = TopicQLearningAgent(_ids_env(1))  # misses (4, 8, 12, 16, 20), clicks per style (1, 2, 4)
    assert agent.config.state_sizes == (6, 4, 4, 1) and agent.config.num_states == 96
    misses = np.array([0, 3, 4, 19, 20, 57])
    style_clicks = np.array([[0, 0], [1, 0], [2, 5], [3, 1], [4, 2], [0, 9]])
    expected = [(0, 0, 0, 0), (0, 1, 0, 0), (1, 2, 3, 0), (4, 2, 1, 0), (5, 3, 2, 0), (5, 0, 3, 0)]
    states = agent.states(misses, style_clicks, np.zeros(6, dtype=np.int64))
    np.testing.assert_array_equal(states, [np.ravel_multi_index(e, (6, 4, 4, 1)) for e in expected])
    with_runs = TopicQLearningAgent(_ids_env(1), TopicQLearningConfig(miss_run_edges=(1, 3)))
    runs = with_runs.states(np.zeros(4, dtype=np.int64), np.zeros((4, 2), dtype=np.int64), np.array([0, 1, 2, 3]))
    np.testing.assert_array_equal(runs, [0, 1, 1, 2])


def test_a_config_with_unordered_edges_is_refused():
    with pytest.raises(ValueError, match="miss_edges"):
        TopicQLearningConfig(miss_edges=(4, 4, 8))
    with pytest.raises(ValueError, match="click_edges"):
        TopicQLearningConfig(click_edges=(0, 2))


def test_observe_reads_the_click_from_the_session_clock_and_updates_the_memory():
    env = _ids_env(2)
    observations, _ = env.reset(seed=0)
    agent = TopicQLearningAgent(env)
    agent.bind(env)
    memory = agent.start_sessions(None, np.arange(2), 2)
    before = memory.copy()
    items = np.array([np.flatnonzero(agent.styles == 1)[0], np.flatnonzero(agent.styles == 0)[0]])
    memory.last_item[:] = items
    # By hand: user 0 clicked (clicks so far 0 → 1 after one step), user 1 missed (t = 1, n = 0).
    clock = np.array([[1, 1], [1, 0]])
    observations = observations.copy()
    observations[:, -2:] = clock
    states = agent.observe(memory, observations)

    np.testing.assert_array_equal(memory.style_clicks, [[0, 1], [0, 0]])
    np.testing.assert_array_equal(states, agent.states(np.array([0, 1]), memory.style_clicks, np.array([0, 1])))
    np.testing.assert_array_equal(memory.miss_run, [0, 1])
    z = agent.latents[items]
    c = agent.config
    np.testing.assert_allclose(memory.satiation[0], c.satiation_decay * before.satiation[0] + z[0])
    np.testing.assert_allclose(memory.satiation[1], c.satiation_decay * before.satiation[1] + c.impression_weight * z[1])
    moved = before.profile[0] + c.profile_rate * (z[0] - before.profile[0])
    np.testing.assert_allclose(memory.profile[0], moved / np.linalg.norm(moved))
    np.testing.assert_array_equal(memory.profile[1], before.profile[1])  # a miss leaves the profile
    np.testing.assert_array_equal(memory.last_item, [-1, -1])


def test_the_warmup_profile_is_the_mean_latent_of_the_past_clicks():
    env = _ids_env(3)
    env.reset(seed=1)
    agent = TopicQLearningAgent(env)
    agent.bind(env)
    memory = agent.start_sessions(None, np.arange(3), 3)
    items, clicks = env.warmup_history()
    for user in range(3):
        clicked = items[user][clicks[user] > 0.5]
        mean = agent.latents[clicked if len(clicked) else items[user]].mean(0)
        np.testing.assert_allclose(memory.profile[user], mean / np.linalg.norm(mean), atol=1e-12)


def test_the_ranker_shows_the_chosen_style_of_the_chosen_topic_and_never_repeats():
    env = _ids_env(4)
    env.reset(seed=2)
    agent = TopicQLearningAgent(env)
    agent.bind(env)
    memory = agent.start_sessions(None, np.arange(4), 4)
    # (rank, style): 0 = (best topic, style 0), 1 = (best topic, style 1), 4 = (third topic, style 0)
    actions = np.array([0, 1, 4, 5])
    scores = agent.scores(memory)
    topic_scores = np.array([[scores[u, agent.topics == t].max() for t in range(20)] for u in range(4)])
    ranked = np.argsort(-topic_scores, axis=1, kind="stable")
    items = agent.items_for(memory, actions.copy())
    np.testing.assert_array_equal(agent.topics[items], ranked[np.arange(4), actions // 2])
    np.testing.assert_array_equal(agent.styles[items], actions % 2)
    assert memory.shown[np.arange(4), items].all()
    shown = [items]
    for _ in range(60):  # far more than a topic's four style-1 items: it falls back, never repeats
        shown.append(agent.items_for(memory, np.ones(4, dtype=np.int64)))
    shown = np.stack(shown, 1)
    assert all(len(np.unique(row)) == len(row) for row in shown)


def test_text_styles_split_by_writing_not_by_topic():
    rng = np.random.default_rng(0)
    directions = np.linalg.qr(rng.normal(size=(32, 32)))[0]
    topics = np.repeat(np.arange(5), 10)
    styled = np.tile(np.arange(10) >= 7, 5)  # three items per topic written differently
    embeddings = 3 * directions[topics] + styled[:, None] * directions[10] + 0.05 * rng.normal(size=(50, 32))
    np.testing.assert_array_equal(text_styles(embeddings, topics, 2), styled.astype(int))
    np.testing.assert_array_equal(text_styles(embeddings, topics, 1), np.zeros(50, dtype=int))


def test_learning_fills_the_table_and_the_log():
    env = _ids_env(32)
    agent = TopicQLearningAgent(env, TopicQLearningConfig(seed=1))
    agent.log.every = 1_000
    agent.learn(env, 6_000, progress=False)
    steps = int(agent.log.history[-1]["steps"])
    assert 6_000 <= steps < 6_000 + 32
    assert agent.visits.sum() == steps  # every real transition updated one pair, the reset steps none
    assert len(agent.log.history) >= 6 and "episode_return" in agent.log.history[-1]
    visited = agent.visits > 0
    assert visited[0].all()  # the first state of every session, under ε ≈ 1 at first
    assert (agent.q_table[visited] != 0).any() and (agent.q_table[~visited] == 0).all()
    assert agent.q_table[0].max() > 1.0  # a session's first state is worth clicks to come


def test_save_and_load_give_the_same_actions(tmp_path):
    env = _ids_env(16)
    agent = TopicQLearningAgent(env, TopicQLearningConfig(seed=2, topic_ranks=2)).learn(env, 3_000, progress=False)
    path = agent.save(tmp_path / "topic_q.pt")
    fresh = TopicQLearningAgent(env).load(path)
    assert fresh.config == agent.config
    np.testing.assert_array_equal(fresh.q_table, agent.q_table)
    np.testing.assert_array_equal(fresh.visits, agent.visits)
    observations, _ = env.reset(seed=9)
    agent.bind(env)
    fresh.bind(env)
    first, state_a = agent.predict(observations)
    again, state_b = fresh.predict(observations)
    np.testing.assert_array_equal(first, again)
    observations, *_ = env.step(first)
    np.testing.assert_array_equal(agent.predict(observations, state_a)[0], fresh.predict(observations, state_b)[0])
    with pytest.raises(ValueError, match="is not a QLearningAgent file"):
        QLearningAgent(env).load(path)


def test_it_trains_and_is_evaluated_on_the_public_view():
    config = EnvConfig(preset="mixed", device="cpu")  # the default "encoded" observations
    view = public_view(DriftingUserVectorEnv(num_envs=16, config=config))
    agent = TopicQLearningAgent(view).learn(view, 2_000, progress=False)
    records = run_sessions(agent, 40, seed=123, config=config, progress=False)
    assert isinstance(agent.env, PublicVectorEnv) and len(records) == 40
    assert all(len(np.unique(items)) == len(items) for items in records.items)  # no repeats


def test_it_acts_in_a_scalar_env():
    env = gym.make("DriftingUser-v0", obs_mode="ids", device="cpu")
    observation, _ = env.reset(seed=4)
    agent = TopicQLearningAgent(env)
    agent.bind(public_view(env))
    action, state = agent.predict(observation)
    assert np.ndim(action) == 0 and 0 <= int(action) < recenv.default_catalog().num_items
    observation, *_ = env.step(action)
    second, _ = agent.predict(observation, state)
    assert int(second) != int(action)


def test_the_topic_ranker_is_the_abstraction_with_random_actions_and_no_table():
    from agents import TopicRankerAgent

    env = _ids_env(64)
    observation, _ = env.reset(seed=4)
    ranker = TopicRankerAgent(env, TopicQLearningConfig(seed=3))
    ranker.bind(env)
    actions_drawn = []
    draw = ranker._actions

    def recorded(states, deterministic):
        actions_drawn.append(draw(states, deterministic))
        return actions_drawn[-1].copy()

    ranker._actions = recorded
    items, _ = ranker.predict(observation)
    assert len(set(actions_drawn[0].tolist())) > 3  # random actions, not the table's argmax (all 0 untrained)
    table = TopicQLearningAgent(env, TopicQLearningConfig(seed=3))
    table.bind(env)
    memory = table.start_sessions(None, np.arange(64), 64)
    np.testing.assert_array_equal(items, table.items_for(memory, actions_drawn[0].copy()))  # the same ranker
    with pytest.raises(TypeError, match="does not learn"):
        ranker.learn(env, 100)
