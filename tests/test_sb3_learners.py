"""SB3 learners on the native vector env: the VecEnv adapter (recenv.sb3) and the SB3 agents."""

import numpy as np
import pytest
import torch

from agents import SB3DQNAgent, SB3DQNConfig, SB3PPOAgent, SB3PPOConfig
from recenv import DriftingUserVectorEnv, EnvConfig
from recenv.public_view import public_view
from recenv.sb3 import SB3VecEnv

USERS = 8
# A short horizon, so that sessions end both ways: users leave (terminated) and time runs out (truncated).
CONFIG = EnvConfig(preset="mixed", max_episode_steps=25)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _adapter(mode="same_step", public=False, config=CONFIG, users=USERS):
    envs = DriftingUserVectorEnv(num_envs=users, config=config, autoreset_mode=mode)
    return SB3VecEnv(public_view(envs) if public else envs)


def _roll(venv, steps, seed=0):
    venv.seed(seed)
    first = venv.reset()
    rng = np.random.default_rng(1)
    trace = []
    for _ in range(steps):
        trace.append(venv.step(rng.integers(venv.action_space.n, size=venv.num_envs)))
    return first, trace


@pytest.mark.parametrize("mode, public", [("same_step", False), ("next_step", True), ("disabled", False)])
def test_the_adapter_resets_in_the_same_step_and_reports_the_finished_session(mode, public):
    venv = _adapter(mode, public)
    space = venv.observation_space
    assert space.shape == (66,) and venv.action_space.n == 500 and venv.num_envs == USERS
    first, trace = _roll(venv, 60)
    assert first.shape == (USERS, 66) and first.dtype == np.float32
    returns, lengths = np.zeros(USERS), np.zeros(USERS, dtype=int)
    ended = {"terminated": 0, "truncated": 0}
    for observation, reward, done, infos in trace:
        assert observation.shape == (USERS, 66) and observation.dtype == np.float32
        assert reward.shape == (USERS,) and reward.dtype == np.float32 and done.dtype == np.bool_
        assert len(infos) == USERS and all(space.contains(o) for o in observation)
        returns += reward
        lengths += 1
        for user in range(USERS):
            info = infos[user]
            assert ("click_probability" in info) == (not public)  # the public view hides ground truth
            assert "topic" in info
            if not done[user]:
                assert "terminal_observation" not in info and "episode" not in info
                continue
            terminal = info["terminal_observation"]
            assert terminal.shape == (66,) and terminal.dtype == np.float32 and space.contains(terminal)
            # The returned observation is the new session's first: its session clock restarted.
            assert not np.array_equal(terminal, observation[user])
            assert info["episode"]["r"] == pytest.approx(returns[user]) and info["episode"]["l"] == lengths[user]
            assert "warmup_items" in venv.reset_infos[user] and "warmup_items" not in info
            ended["truncated" if info["TimeLimit.truncated"] else "terminated"] += 1
            if info["TimeLimit.truncated"]:
                assert lengths[user] == CONFIG.max_episode_steps
            returns[user], lengths[user] = 0.0, 0
    assert ended["terminated"] > 0 and ended["truncated"] > 0


def test_every_autoreset_mode_gives_the_same_stream():
    """Same seed, same actions: the native same-step autoreset and the adapter's own resets (of a
    next-step env, through its public view) give identical observations, rewards, dones and
    terminal observations."""
    first_a, trace_a = _roll(_adapter("same_step"), 60, seed=5)
    first_b, trace_b = _roll(_adapter("next_step", public=True), 60, seed=5)
    np.testing.assert_array_equal(first_a, first_b)
    assert sum(int(step[2].sum()) for step in trace_a) >= 2 * USERS  # sessions did end, several times
    for (obs_a, rew_a, done_a, infos_a), (obs_b, rew_b, done_b, infos_b) in zip(trace_a, trace_b):
        np.testing.assert_array_equal(obs_a, obs_b)
        np.testing.assert_array_equal(rew_a, rew_b)
        np.testing.assert_array_equal(done_a, done_b)
        for user in np.flatnonzero(done_a):
            np.testing.assert_array_equal(infos_a[user]["terminal_observation"], infos_b[user]["terminal_observation"])
            assert infos_a[user]["TimeLimit.truncated"] == infos_b[user]["TimeLimit.truncated"]


def test_the_adapter_seeds_and_forwards_like_one_env_of_many_users():
    venv = _adapter()
    assert venv.seed(7) == list(range(7, 7 + USERS))
    first = venv.reset()
    venv.seed(7)
    np.testing.assert_array_equal(first, venv.reset())
    venv.seed(8)
    assert not np.array_equal(first, venv.reset())
    assert venv.get_attr("config") == [CONFIG] * USERS and venv.get_attr("max_episode_steps", [0, 3]) == [25, 25]
    assert venv.env_is_wrapped(torch.nn.Module) == [False] * USERS
    assert venv.env_method("__repr__") == [repr(venv.env)] * USERS
    with pytest.raises(ValueError, match="subset"):
        venv.env_method("__repr__", indices=[0])
    with pytest.raises(ValueError, match="subset"):
        venv.set_attr("render_mode", None, indices=1)
    venv.set_options([{}] * (USERS - 1) + [{"persona": "loves space documentaries"}])
    with pytest.raises(ValueError, match="all users"):
        venv.reset()
    with pytest.raises(TypeError, match="vector env"):
        SB3VecEnv(object())


def test_sb3_renders_the_users_the_vector_env_draws_through_the_adapter():
    envs = DriftingUserVectorEnv(num_envs=USERS, config=CONFIG, render_mode="rgb_array", render_users=2)
    venv = SB3VecEnv(envs)
    assert venv.render_mode == "rgb_array"
    venv.reset()
    venv.step(np.zeros(USERS, dtype=np.int64))
    images = venv.get_images()
    assert len(images) == 2 and all(image.shape == (480, 640, 3) for image in images)
    grid = venv.render()  # SB3 tiles them: one above the other
    assert grid.shape == (2 * 480, 640, 3)
    np.testing.assert_array_equal(grid[:480], images[0])
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        _adapter().get_images()


@pytest.mark.parametrize("algorithm", ["PPO", "A2C", "DQN"])
def test_sb3_algorithms_train_through_the_adapter(algorithm):
    import stable_baselines3

    venv = _adapter("next_step", public=True)
    kwargs = {"PPO": {"n_steps": 32, "batch_size": 128, "n_epochs": 2}, "A2C": {"n_steps": 8},
              "DQN": {"learning_starts": 200, "buffer_size": 5_000, "train_freq": 1, "gradient_steps": 2, "batch_size": 64}}[algorithm]
    model = getattr(stable_baselines3, algorithm)("MlpPolicy", venv, seed=0, device="cpu", verbose=0, **kwargs)
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    model.learn(total_timesteps=1_500)
    assert model.num_timesteps >= 1_500
    # SB3 read the finished sessions from the adapter's infos: returns are clicks, lengths within the horizon.
    episodes = list(model.ep_info_buffer)
    assert len(episodes) > 1_500 // CONFIG.max_episode_steps // 2
    assert all(1 <= e["l"] <= CONFIG.max_episode_steps and 0 <= e["r"] <= e["l"] for e in episodes)
    assert any(not torch.equal(before[k], v) for k, v in model.policy.state_dict().items())
    if algorithm == "DQN":  # truncations reached the replay buffer as timeouts, not as terminal states
        stored = model.replay_buffer.size() * USERS
        assert model.replay_buffer.timeouts.reshape(-1)[:stored].any()
    actions, _ = model.predict(venv.reset(), deterministic=True)
    assert actions.shape == (USERS,) and ((0 <= actions) & (actions < 500)).all()


def test_sb3_ppo_agent_learns_logs_saves_and_loads(tmp_path):
    envs = public_view(DriftingUserVectorEnv(num_envs=16, config=CONFIG))
    config = SB3PPOConfig(n_steps=32, n_epochs=2, batch_size=256)
    agent = SB3PPOAgent(envs, config, device="cpu").learn(envs, 2_048, progress=False)
    assert isinstance(agent.model.get_env(), SB3VecEnv) and agent.model.n_envs == 16
    curve = agent.log.history
    assert curve and curve[-1]["steps"] >= 2_048 and all("episode_return" in row for row in curve)
    assert 0 < curve[-1]["episode_length"] <= CONFIG.max_episode_steps
    observations = np.stack([envs.reset(seed=s)[0][0] for s in range(6)])
    actions = agent.predict(observations)[0]
    assert actions.shape == (6,) and agent.predict(observations[0])[0].shape == ()
    path = agent.save(tmp_path / "ppo.pt")
    loaded = SB3PPOAgent(envs, device="cpu").load(path)
    assert loaded.config == config
    np.testing.assert_array_equal(actions, loaded.predict(observations)[0])
    with pytest.raises(ValueError, match="not a SB3DQNAgent file"):
        SB3DQNAgent(envs, device="cpu").load(path)


def test_sb3_dqn_agent_trains_on_all_users_of_a_vector_env():
    envs = DriftingUserVectorEnv(num_envs=USERS, config=CONFIG)
    config = SB3DQNConfig(learning_starts=200, buffer_size=5_000, train_freq=4, batch_size=64)
    agent = SB3DQNAgent(envs, config, device="cpu").learn(envs, 1_000, progress=False)
    model = agent.model
    assert isinstance(model.get_env(), SB3VecEnv) and model.n_envs == USERS
    # One gradient step per train_freq user-steps: 8 users → every vector step, 2 gradient steps.
    assert (model.train_freq.frequency, model.gradient_steps) == (1, 2)
    assert model._n_updates == pytest.approx((model.num_timesteps - 200) / 4, abs=4)
    assert agent.log.history and agent.log.history[-1]["epsilon"] == pytest.approx(config.exploration_final_eps)
