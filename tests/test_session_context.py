"""Every observation mode carries the session clock: steps since the session began and clicks so far."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import recenv
from recenv import DriftingUserVectorEnv, session_clock, split_session_context
from recenv.config import OBS_MODES
from recenv.encoder import EncoderConfig, NextClickLSTM


@pytest.mark.parametrize("obs_mode", OBS_MODES)
def test_check_env_is_clean_for_every_mode(obs_mode):
    env = gym.make("DriftingUser-v0", obs_mode=obs_mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=True)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("obs_mode", OBS_MODES)
def test_the_clock_counts_steps_and_clicks_of_the_session(obs_mode):
    horizon = 50
    # No shipped encoder for these dynamics: one built here is taken as given (its values do not matter).
    encoder = NextClickLSTM(EncoderConfig(384, hidden_size=8, head_size=8)) if obs_mode == "encoded" else None
    env = recenv.DriftingUserEnv(obs_mode=obs_mode, params={"patience": False}, max_episode_steps=horizon,
                                 encoder=encoder)
    obs, _ = env.reset(seed=1)
    assert obs in env.observation_space
    assert session_clock(obs, horizon).tolist() == [0, 0]
    clicks, rng = 0, np.random.default_rng(0)
    for step in range(1, horizon + 1):
        obs, reward, _, truncated, _ = env.step(int(rng.integers(env.catalog.num_items)))
        clicks += int(reward)
        assert obs in env.observation_space
        assert session_clock(obs, horizon).tolist() == [step, clicks]
    assert truncated and clicks > 0
    context = split_session_context(obs)[1]
    # At the horizon both float entries are exactly log(1+T)/log(1+T) = 1 for t; the ids are counts.
    assert context[0] == (horizon if obs_mode == "ids" else pytest.approx(1.0))
    obs, _ = env.reset()
    assert session_clock(obs, horizon).tolist() == [0, 0]


def test_the_scaling_is_log_over_the_horizon():
    horizon = 200
    env = recenv.DriftingUserEnv(obs_mode="history", params={"patience": False, "click_bias": -100.0},
                                 max_episode_steps=horizon)
    env.reset(seed=0)
    for _ in range(9):
        obs, *_ = env.step(0)
    steps, clicks = split_session_context(obs)[1]
    assert steps == pytest.approx(np.log(10) / np.log(201), abs=1e-6) and clicks == 0.0


def test_the_vector_env_restarts_the_clock_of_a_user_who_left():
    envs = DriftingUserVectorEnv(num_envs=4, params={"patience": False}, max_episode_steps=3, obs_mode="ids",
                                 device="cpu")
    obs, _ = envs.reset(seed=0)
    steps = []
    for _ in range(5):
        obs, *_ = envs.step(np.zeros(4, dtype=np.int64))
        steps.append(session_clock(obs, 3)[:, 0].tolist())
    # Truncated after 3 steps, then reset on the next step (next-step autoreset): t = 0 again.
    assert steps == [[1] * 4, [2] * 4, [3] * 4, [0] * 4, [1] * 4]
