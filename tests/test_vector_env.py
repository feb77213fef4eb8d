"""The native vector env: parity with the scalar env, autoreset semantics, spaces, errors."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import recenv
from recenv import DriftingUserVectorEnv
from recenv.encoder import EncoderConfig, NextClickLSTM


def test_make_vec_uses_the_native_vector_env_with_the_registered_horizon():
    envs = gym.make_vec("DriftingUser-v0", num_envs=4)
    assert isinstance(envs, DriftingUserVectorEnv)
    assert envs.max_episode_steps == 200
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, info = envs.reset(seed=0)
    assert obs.shape == (4, *envs.single_observation_space.shape) and obs.dtype == np.float32
    assert obs in envs.observation_space
    assert info["warmup_items"].shape == (4, 20) and info["_warmup_items"].all()


@pytest.mark.parametrize("preset", ["mixed", "abrupt"])
def test_one_user_vector_env_matches_the_scalar_env_exactly(preset):
    """Same seed, same actions: the vector env at N = 1 reproduces the scalar env step for step
    (long patience, so no autoreset interleaves extra random draws)."""
    params = {"initial_patience": 1000.0}
    # These dynamics have no shipped encoder; one built here (no record of dynamics) is taken as given.
    torch.manual_seed(0)
    encoder = NextClickLSTM(EncoderConfig(384, hidden_size=16, head_size=8))
    single = gym.make("DriftingUser-v0", preset=preset, params=params, encoder=encoder)
    vector = gym.make_vec("DriftingUser-v0", num_envs=1, preset=preset, params=params, device="cpu", encoder=encoder)
    obs_s, _ = single.reset(seed=11)
    obs_v, _ = vector.reset(seed=11)
    np.testing.assert_array_equal(obs_v[0], obs_s)
    actions = np.random.default_rng(0).integers(500, size=200)
    for t, action in enumerate(actions):
        obs_s, r_s, term_s, trunc_s, info_s = single.step(action)
        obs_v, r_v, term_v, trunc_v, info_v = vector.step(np.array([action]))
        np.testing.assert_array_equal(obs_v[0], obs_s)
        assert (r_v[0], term_v[0], trunc_v[0]) == (r_s, term_s, trunc_s)
        assert info_v["click_probability"][0] == pytest.approx(info_s["click_probability"], abs=0)
        assert info_v["regime_shift"][0] == info_s["regime_shift"]
    assert trunc_s and t == 199


def test_next_step_autoreset_returns_reset_observation_with_zero_reward():
    params = {"initial_patience": 2.5, "click_bias": -100.0}  # every user leaves on step 2
    envs = DriftingUserVectorEnv(num_envs=3, params=params, device="cpu", obs_mode="ids")
    envs.reset(seed=0)
    envs.step(np.zeros(3, dtype=np.int64))
    _, _, terminated, _, _ = envs.step(np.zeros(3, dtype=np.int64))
    assert terminated.all()
    obs, reward, terminated, truncated, info = envs.step(np.full(3, 7))
    assert not terminated.any() and not truncated.any() and (reward == 0).all()
    assert not info["_click_probability"].any() and info["_warmup_items"].all()
    np.testing.assert_array_equal(obs[:, :10], info["warmup_items"][:, -10:])  # fresh history, action ignored
    assert (envs.user_state()["step"] == 0).all()


def test_same_step_autoreset_reports_final_observation():
    params = {"initial_patience": 2.5, "click_bias": -100.0}
    envs = DriftingUserVectorEnv(num_envs=2, params=params, device="cpu", obs_mode="ids", autoreset_mode="same_step")
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    envs.reset(seed=0)
    envs.step(np.array([5, 6]))
    obs, reward, terminated, _, info = envs.step(np.array([8, 9]))
    assert terminated.all() and info["_final_obs"].all()
    final = np.stack(info["final_obs"])
    assert final[:, 9].tolist() == [8, 9]  # the last item shown is in the final observation
    assert (obs[:, :10] == info["warmup_items"][:, -10:]).all()  # already reset
    assert info["final_info"]["patience"] == pytest.approx([-0.1, -0.1], abs=1e-5)


def test_truncation_at_max_episode_steps():
    envs = DriftingUserVectorEnv(num_envs=5, params={"patience": False}, max_episode_steps=7, device="cpu", obs_mode="ids")
    envs.reset(seed=0)
    for step in range(1, 8):
        _, _, terminated, truncated, _ = envs.step(np.zeros(5, dtype=np.int64))
        assert not terminated.any()
        assert truncated.all() == (step == 7)


def test_torch_outputs_stay_on_device():
    envs = DriftingUserVectorEnv(num_envs=4, device="cpu", array_type="torch")
    obs, _ = envs.reset(seed=0)
    obs, reward, terminated, truncated, info = envs.step(torch.zeros(4, dtype=torch.int64))
    assert isinstance(obs, torch.Tensor) and obs.shape == (4, *envs.single_observation_space.shape) and isinstance(reward, torch.Tensor)
    assert isinstance(info["click_probability"], torch.Tensor)


def test_vector_reset_options_persist_through_autoresets():
    catalog = recenv.default_catalog()
    chess = catalog.topic_centroids[catalog.topic_names.index("chess")]
    params = {"initial_patience": 2.5, "click_bias": -100.0, "consumption_drift": False,
              "exogenous_drift": False, "regime_shifts": False}
    envs = DriftingUserVectorEnv(num_envs=3, params=params, device="cpu", obs_mode="ids")
    envs.reset(seed=0, options={"persona": chess})
    for _ in range(3):
        envs.step(np.zeros(3, dtype=np.int64))  # leave, then autoreset
    interest = envs.user_state()["interest"]
    np.testing.assert_allclose(interest, np.tile(chess / np.linalg.norm(chess), (3, 1)), atol=1e-6)


def test_vector_env_action_errors():
    envs = DriftingUserVectorEnv(num_envs=3, device="cpu")
    with pytest.raises(RuntimeError, match="before reset"):
        envs.step(np.zeros(3, dtype=np.int64))
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"action 500 is out of range; allowed: integers in \[0, 499\]"):
        envs.step(np.array([0, 500, 1]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        envs.step(np.zeros(4, dtype=np.int64))
    with pytest.raises(TypeError, match="integer item indices"):
        envs.step(np.zeros(3))
    with pytest.raises(ValueError, match="unknown autoreset_mode"):
        DriftingUserVectorEnv(num_envs=2, autoreset_mode="sometimes")
    with pytest.raises(ValueError, match="num_envs = 0 is not allowed"):
        DriftingUserVectorEnv(num_envs=0)


def test_async_and_sync_vectorization_of_the_scalar_env_work():
    for mode in ("async", "sync"):
        envs = gym.make_vec("DriftingUser-v0", num_envs=2, vectorization_mode=mode, obs_mode="ids")
        obs, _ = envs.reset(seed=0)
        for _ in range(5):
            obs, reward, *_ = envs.step(envs.action_space.sample())
        assert obs.shape == (2, 22) and reward.shape == (2,)  # 2K ids and clicks, then the session context
        envs.close()


def test_seeded_vector_rollouts_repeat_and_differ_across_seeds():
    def rollout(seed):
        envs = DriftingUserVectorEnv(num_envs=16, device="cpu", obs_mode="ids")
        observations = [envs.reset(seed=seed)[0]]
        rng = np.random.default_rng(0)
        for _ in range(60):
            observations.append(envs.step(rng.integers(500, size=16))[0])
        return np.stack(observations)

    assert np.array_equal(rollout(1), rollout(1))
    assert not np.array_equal(rollout(1), rollout(2))


def test_returned_observations_are_never_overwritten_while_held():
    """Observation arrays are recycled for speed, but only once the caller has let go of them."""
    envs = DriftingUserVectorEnv(num_envs=8, device="cpu")
    obs, _ = envs.reset(seed=0)
    view = obs[2:4]  # only a view of the first observation is kept: it must keep its base alive
    view_snapshot = view.copy()
    held, snapshots = [], []
    rng = np.random.default_rng(0)
    for _ in range(12):
        obs, *_ = envs.step(rng.integers(500, size=8))
        held.append(obs)
        snapshots.append(obs.copy())
    for array, snapshot in zip(held, snapshots):
        np.testing.assert_array_equal(array, snapshot)
    np.testing.assert_array_equal(view, view_snapshot)
    assert len({id(a) for a in held}) == len(held)


def test_disabled_autoreset_keeps_users_and_resets_on_request_only():
    params = {"initial_patience": 2.5, "click_bias": -100.0}
    envs = DriftingUserVectorEnv(num_envs=3, params=params, device="cpu", obs_mode="ids", autoreset_mode="disabled")
    assert envs.metadata["autoreset_mode"] == AutoresetMode.DISABLED
    envs.reset(seed=0)
    envs.step(np.zeros(3, dtype=np.int64))
    _, _, terminated, _, _ = envs.step(np.zeros(3, dtype=np.int64))
    assert terminated.all()
    _, _, _, _, info = envs.step(np.zeros(3, dtype=np.int64))
    assert "warmup_items" not in info and (envs.user_state()["step"] == 3).all()  # nobody was reset
    obs, info = envs.reset(options={"reset_mask": np.array([False, True, False])})
    assert info["_warmup_items"].tolist() == [False, True, False]
    assert envs.user_state()["step"].tolist() == [3, 0, 3]


def test_same_seed_gives_every_agent_the_same_users_and_random_draws():
    """With autoreset disabled, two different action sequences meet the same users and the same
    noise: the click draw of a user-step is the same uniform whatever was shown."""
    def run(actions):
        envs = DriftingUserVectorEnv(num_envs=64, device="cpu", obs_mode="ids", autoreset_mode="disabled",
                                     params={"patience": False})
        obs, info = envs.reset(seed=9)
        first = envs.user_state()["interest"]
        probabilities, clicks = [], []
        for a in actions:
            _, reward, _, _, info = envs.step(a)
            probabilities.append(info["click_probability"])
            clicks.append(reward)
        return first, np.array(probabilities), np.array(clicks), info["warmup_items"] if "warmup_items" in info else None

    rng = np.random.default_rng(0)
    a = [rng.integers(500, size=64) for _ in range(5)]
    b = [rng.integers(500, size=64) for _ in range(5)]
    first_a, p_a, c_a, _ = run(a)
    first_b, p_b, c_b, _ = run(b)
    np.testing.assert_array_equal(first_a, first_b)
    # Same uniform u per user-step: click = u < p, so a higher p never loses a click.
    higher = p_a >= p_b
    assert np.all(c_a[higher] >= c_b[higher])


def test_without_ground_truth_info_the_simulation_is_the_same_and_info_holds_only_public_keys():
    full = gym.make_vec("DriftingUser-v0", num_envs=16, max_episode_steps=30)
    lean = gym.make_vec("DriftingUser-v0", num_envs=16, max_episode_steps=30, ground_truth=False)
    np.testing.assert_array_equal(full.reset(seed=5)[0], lean.reset(seed=5)[0])
    rng = np.random.default_rng(0)
    resets = 0
    for _ in range(45):
        actions = rng.integers(500, size=16)
        expected, got = full.step(actions), lean.step(actions)
        for a, b in zip(expected[:4], got[:4]):
            np.testing.assert_array_equal(a, b)
        info = got[4]
        assert not {"click_probability", "best_click_probability", "patience", "regime_shift"} & set(info)
        np.testing.assert_array_equal(info["topic"], expected[4]["topic"])
        np.testing.assert_array_equal(info["_topic"], expected[4]["_topic"])
        resets += int("warmup_items" in info)
    assert resets > 0  # autoresets happened within the horizon, with their warm-up info
    with pytest.raises(TypeError, match="ground_truth must be a bool"):
        gym.make_vec("DriftingUser-v0", num_envs=2, ground_truth="no")


def test_actions_in_a_strided_or_reversed_numpy_view_are_taken_as_given():
    actions = np.arange(16)
    envs, copy = DriftingUserVectorEnv(num_envs=8, device="cpu"), DriftingUserVectorEnv(num_envs=8, device="cpu")
    envs.reset(seed=0)
    copy.reset(seed=0)
    for a, b in zip(envs.step(actions[::-2]), copy.step(actions[::-2].copy())):
        if isinstance(a, dict):
            np.testing.assert_array_equal(a["topic"], b["topic"])
        else:
            np.testing.assert_array_equal(a, b)
