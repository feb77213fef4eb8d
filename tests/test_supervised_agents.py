"""The supervised recommenders: SupervisedLSTMAgent (no repeats, argmax or softmax) and GRU4RecAgent
(trained on deployable logs, acting from the session clock and the users' logged past)."""

import dataclasses
import time

import numpy as np
import pytest
import torch

from agents import GRU4RecAgent, GRU4RecConfig, SupervisedLSTMAgent, run_sessions
from agents.sequence_recommender import GRU4RecState
from agents.supervised_lstm import choose_unshown, session_memory
from recenv import DriftingUserVectorEnv, EnvConfig
from recenv.offline.logging_policies import make_logs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MIXED = EnvConfig(preset="mixed", device="cpu")  # the shipped encoder: nothing is trained on first use
SMALL = GRU4RecConfig(embedding_size=16, hidden_size=32, epochs=3, batch_size=32, learning_rate=0.01)


def _no_repeats(records) -> bool:
    return all(len(np.unique(items)) == len(items) for items in records.items)


class _DeployableColumnsOnly:
    """A log that lets GRU4Rec read what a deployed system records (user, step, item, click, and
    the metadata) and fails the test on anything else — the true ``click_probability`` above all."""

    _ALLOWED = frozenset({"user", "step", "item", "click", "metadata"})

    def __init__(self, log):
        self._log = log

    def __getattr__(self, name):
        if name in self._ALLOWED:
            return getattr(self._log, name)
        raise AssertionError(f"GRU4RecAgent.fit read log.{name}")


@pytest.fixture(scope="module")
def one_thread_for_the_module():
    """As ``one_torch_thread``, for the module's fixtures (built before function fixtures apply)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def log(one_thread_for_the_module):
    return make_logs(MIXED, 160, seed=0, progress=False)


@pytest.fixture(scope="module")
def gru(log, one_thread_for_the_module):
    """A small GRU4Rec trained on a 160-session log (about 1 s on one thread)."""
    env = DriftingUserVectorEnv(num_envs=4, config=MIXED)
    started = time.perf_counter()
    agent = GRU4RecAgent(env, SMALL).fit(_DeployableColumnsOnly(log))
    return agent, time.perf_counter() - started


# ---------------------------------------------------------------- SupervisedLSTMAgent


def test_supervised_lstm_never_repeats_an_item_within_a_session():
    env = DriftingUserVectorEnv(num_envs=2, config=MIXED)
    for agent in (SupervisedLSTMAgent(env), SupervisedLSTMAgent(env, temperature=0.2, seed=1)):
        records = run_sessions(agent, 40, seed=3, config=MIXED, progress=False)
        assert records.lengths.max() > 20 and _no_repeats(records)


def test_supervised_lstm_memory_is_the_recurrent_state_and_resets_at_episode_start():
    env = DriftingUserVectorEnv(num_envs=3, config=MIXED)
    observation, _ = env.reset(seed=0)
    agent = SupervisedLSTMAgent(env)  # the old interface still works
    first, state = agent.predict(observation)
    np.testing.assert_array_equal(first, agent.click_probabilities(observation).argmax(1))
    assert state.shape == (3, env.catalog.num_items) and state.dtype == bool and state.sum() == 3
    # The same observation again: the items shown are masked, so the next best come.
    second, state = agent.predict(observation, state=state, episode_start=np.zeros(3, dtype=bool))
    assert (second != first).all() and state.sum() == 6
    # A new session forgets them; one user only.
    again, state = agent.predict(observation, state=state, episode_start=np.array([True, False, False]))
    assert again[0] == first[0] and (again[1:] != first[1:]).all() and (again[1:] != second[1:]).all()
    assert state.sum(1).tolist() == [1, 3, 3]
    # A single observation (scalar env) works the same way.
    action, single_state = agent.predict(observation[0])
    assert np.ndim(action) == 0 and int(action) == first[0] and single_state.shape == (1, env.catalog.num_items)
    with pytest.raises(ValueError, match="memory"):
        agent.predict(observation, state=np.zeros((2, 5), dtype=bool))


def test_the_click_probabilities_are_unchanged():
    env = DriftingUserVectorEnv(num_envs=2, config=MIXED)
    observation, _ = env.reset(seed=1)
    agent = SupervisedLSTMAgent(env)
    with torch.no_grad():
        hidden = torch.as_tensor(observation[:, :-2])
        embeddings = torch.as_tensor(np.array(env.catalog.embeddings))
        expected = torch.sigmoid(env.encoder.click_logits_all(hidden, embeddings)).numpy()
    np.testing.assert_allclose(agent.click_probabilities(observation), expected, rtol=1e-6)
    np.testing.assert_allclose(1 / (1 + np.exp(-agent.click_logits(observation))), expected, rtol=1e-5, atol=1e-6)


def test_a_user_who_saw_every_item_may_see_them_again():
    rng = np.random.default_rng(0)
    shown = session_memory(None, None, 1, 3)
    scores = np.array([[3.0, 1.0, 2.0]])
    picks = [int(choose_unshown(scores, shown, None, rng)[0]) for _ in range(5)]
    assert picks == [0, 2, 1, 0, 2]


def test_softmax_sampling_is_reproducible_with_a_seed_and_differs_from_argmax():
    env = DriftingUserVectorEnv(num_envs=2, config=MIXED)

    def items(agent):  # run_sessions asks for deterministic=True: the softmax agent samples anyway
        return np.concatenate(run_sessions(agent, 30, seed=5, config=MIXED, progress=False).items)

    softmax = items(SupervisedLSTMAgent(env, temperature=0.5, seed=7))
    np.testing.assert_array_equal(softmax, items(SupervisedLSTMAgent(env, temperature=0.5, seed=7)))
    other_seed = items(SupervisedLSTMAgent(env, temperature=0.5, seed=8))
    greedy = items(SupervisedLSTMAgent(env))
    assert not np.array_equal(softmax[:50], other_seed[:50]) and not np.array_equal(softmax[:50], greedy[:50])
    # A very low temperature is argmax.
    np.testing.assert_array_equal(items(SupervisedLSTMAgent(env, temperature=1e-6)), greedy)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            SupervisedLSTMAgent(env, temperature=bad)


def test_sampling_never_picks_a_shown_item():
    rng = np.random.default_rng(0)
    shown = session_memory(None, None, 200, 4)
    shown[:, :3] = True  # only item 3 is left, however bad its score
    scores = np.tile(np.array([5.0, 5.0, 5.0, -30.0]), (200, 1))
    assert (choose_unshown(scores, shown, 10.0, rng) == 3).all()
    shown = session_memory(None, None, 4000, 2)
    picks = choose_unshown(np.tile(np.log([1.0, 3.0]), (4000, 1)), shown, 1.0, rng)
    assert abs(picks.mean() - 0.75) < 0.03  # softmax probabilities 1/4, 3/4


# ---------------------------------------------------------------- GRU4RecAgent


def test_gru4rec_fits_a_small_log_fast_without_ground_truth(gru, log):
    agent, seconds = gru
    assert seconds < 20, seconds  # about 1 s on one thread
    assert len(agent.losses) == SMALL.epochs and agent.losses[-1] < agent.losses[0], agent.losses
    # The ground-truth column plays no part: the same training on the full log gives the same weights.
    env = DriftingUserVectorEnv(num_envs=4, config=MIXED)
    blanked = dataclasses.replace(log, click_probability=np.full_like(log.click_probability, np.nan))
    again = GRU4RecAgent(env, SMALL).fit(blanked)
    for name, tensor in agent.network.state_dict().items():
        torch.testing.assert_close(tensor, again.network.state_dict()[name], msg=name)


def test_gru4rec_never_repeats_and_acts_alike_in_every_obs_mode(gru):
    agent, _ = gru
    items = {}
    for mode in ("encoded", "ids", "history"):
        config = MIXED.replace(obs_mode=mode)
        actor = GRU4RecAgent(DriftingUserVectorEnv(num_envs=2, config=config), SMALL)
        actor.network.load_state_dict(agent.network.state_dict())
        actor.fitted = True
        records = run_sessions(actor, 30, seed=11, config=config, progress=False)
        assert records.lengths.max() > 20 and _no_repeats(records), mode
        items[mode] = np.concatenate(records.items)
    # It reads nothing but the session clock and the logged past, so the users get the same items.
    np.testing.assert_array_equal(items["encoded"], items["ids"])
    np.testing.assert_array_equal(items["encoded"], items["history"])


def test_gru4rec_state_follows_the_users_record(gru):
    agent, _ = gru
    env = DriftingUserVectorEnv(num_envs=4, config=MIXED.replace(obs_mode="ids"), autoreset_mode="disabled",
                                array_type="numpy")
    actor = GRU4RecAgent(env, SMALL)
    actor.network.load_state_dict(agent.network.state_dict())
    actor.fitted = True
    observation, _ = env.reset(seed=2)
    past_items, past_clicks = env.warmup_history()
    state, start, shown, clicks = None, np.ones(4, dtype=bool), [], []
    for _ in range(4):
        actions, state = actor.predict(observation, state=state, episode_start=start)
        observation, reward, terminated, truncated, _ = env.step(actions)
        assert not (terminated | truncated).any()
        shown.append(actions)
        clicks.append(reward)
        start = np.zeros(4, dtype=bool)
    assert isinstance(state, GRU4RecState) and state.shown.sum(1).tolist() == [4] * 4
    _, state = actor.predict(observation, state=state, episode_start=start)
    # Its hidden state is the GRU's after the warm-up and every step, clicks decoded from the clock.
    items = torch.as_tensor(np.concatenate([past_items, np.stack(shown, 1)], 1))
    responses = torch.as_tensor(np.concatenate([past_clicks, np.stack(clicks, 1)], 1), dtype=torch.float32)
    warmup = torch.arange(items.shape[1]) < past_items.shape[1]
    with torch.no_grad():
        expected = actor.network(items, responses, warmup.expand(4, -1))[1].numpy()
    np.testing.assert_allclose(state.hidden, expected, atol=1e-5)
    # A new session starts from the logged past again.
    fresh_actions, fresh = actor.predict(observation, state=None)
    restarted_actions, restarted = actor.predict(observation, state=state, episode_start=np.ones(4, dtype=bool))
    np.testing.assert_array_equal(fresh_actions, restarted_actions)
    np.testing.assert_allclose(fresh.hidden, restarted.hidden)
    assert restarted.shown.sum() == 4


def test_gru4rec_softmax_save_load_and_errors(gru, tmp_path):
    agent, _ = gru
    env = DriftingUserVectorEnv(num_envs=2, config=MIXED)
    with pytest.raises(RuntimeError, match="fit"):
        GRU4RecAgent(env, SMALL).predict(env.reset(seed=0)[0])
    with pytest.raises(ValueError, match="scoring"):
        GRU4RecConfig(scoring="best")
    path = agent.save(tmp_path / "gru4rec.pt")
    loaded = GRU4RecAgent(env).load(path)
    assert loaded.config == SMALL

    def items(actor):
        return np.concatenate(run_sessions(actor, 20, seed=13, config=MIXED, progress=False).items)

    np.testing.assert_array_equal(items(agent), items(loaded))
    sampled = [GRU4RecAgent(env, SMALL, temperature=0.5).load(path) for _ in range(2)]
    first = items(sampled[0])
    np.testing.assert_array_equal(first, items(sampled[1]))
    assert not np.array_equal(first[:50], items(agent)[:50])
