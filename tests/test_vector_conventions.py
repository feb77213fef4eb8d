"""The native vector env follows Gymnasium's vector conventions: seeds as ``SyncVectorEnv`` takes
them, Gymnasium's vector wrappers (numpy arrays, tensors through ``NumpyToTorch``), and the
single-user wrappers that ``gym.make_vec(wrappers=...)`` takes (:func:`recenv.wrap_users`)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers.vector import NumpyToTorch, RecordEpisodeStatistics

import recenv
from recenv.vector_env import batch_seed

SETTINGS = {"obs_mode": "history", "max_episode_steps": 30}


def _first_observations(seed, num_envs=3):
    envs = gym.make_vec("DriftingUser-v0", num_envs=num_envs, **SETTINGS)
    observation, _ = envs.reset(seed=seed)
    return observation


def _rollout(envs, seed, steps=40):
    """Observations, rewards and done flags of ``steps`` steps of always showing item 0."""
    observation, _ = envs.reset(seed=seed)
    trace = [np.asarray(observation)]
    actions = np.zeros(envs.num_envs, dtype=np.int64)
    for _ in range(steps):
        observation, reward, terminated, truncated, _ = envs.step(actions)
        trace += [np.asarray(observation), np.asarray(reward), np.asarray(terminated), np.asarray(truncated)]
    return trace


def test_a_list_of_seeds_one_per_user_seeds_the_batch_reproducibly():
    first = _first_observations([3, 1, 4])
    np.testing.assert_array_equal(first, _first_observations([3, 1, 4]))
    assert not np.array_equal(first, _first_observations([3, 1, 5]))
    assert not np.array_equal(first, _first_observations([1, 3, 4]))  # the order is part of the seed
    assert not np.array_equal(first, _first_observations(3))


def test_numpy_integer_seeds_are_the_same_as_python_ints():
    np.testing.assert_array_equal(_first_observations(7), _first_observations(np.int64(7)))
    np.testing.assert_array_equal(_first_observations(7), _first_observations(np.array(7, dtype=np.uint32)))
    np.testing.assert_array_equal(_first_observations([3, 1, 4]), _first_observations(np.array([3, 1, 4])))
    np.testing.assert_array_equal(_first_observations([3, 1, 4]), _first_observations([np.int32(3), 1, np.int64(4)]))


def test_one_user_seeded_with_a_list_is_the_same_as_with_its_seed_and_as_the_scalar_env():
    single = gym.make("DriftingUser-v0", **SETTINGS)
    single_obs, _ = single.reset(seed=np.int64(11))
    vector_obs = _first_observations([11], num_envs=1)
    np.testing.assert_array_equal(vector_obs, _first_observations(11, num_envs=1))
    np.testing.assert_array_equal(vector_obs[0], single_obs)


def test_an_all_none_list_leaves_the_generator_as_it_was():
    envs = gym.make_vec("DriftingUser-v0", num_envs=2, **SETTINGS)
    twin = gym.make_vec("DriftingUser-v0", num_envs=2, **SETTINGS)
    envs.reset(seed=5)
    twin.reset(seed=5)
    np.testing.assert_array_equal(envs.reset(seed=[None, None])[0], twin.reset()[0])


@pytest.mark.parametrize(
    ("seed", "error", "match"),
    [
        ([1, 2], ValueError, "one per user: 3, got 2"),
        ([1, None, 3], ValueError, "every user or none"),
        ([1, -2, 3], ValueError, "non-negative"),
        (-1, ValueError, "non-negative"),
        (True, TypeError, "must be a non-negative int"),
        (1.5, TypeError, "or a list of 3 ints"),
        ("7", TypeError, "or a list of 3 ints"),
        ([1, 2.0, 3], TypeError, "must be a non-negative int"),
    ],
)
def test_seeds_that_cannot_seed_the_batch_are_refused_clearly(seed, error, match):
    with pytest.raises(error, match=match):
        batch_seed(seed, 3)


def test_gymnasium_episode_statistics_on_numpy_arrays_and_tensors_through_numpy_to_torch():
    envs = gym.make_vec("DriftingUser-v0", num_envs=4, **SETTINGS)
    statistics = NumpyToTorch(RecordEpisodeStatistics(envs), device="cpu")
    plain = gym.make_vec("DriftingUser-v0", num_envs=4, **SETTINGS)
    observation, _ = statistics.reset(seed=2)
    plain_observation, _ = plain.reset(seed=2)
    assert isinstance(observation, torch.Tensor)
    np.testing.assert_array_equal(observation.numpy(), plain_observation)
    returns = np.zeros(4)
    recorded = []
    for _ in range(70):
        action = torch.zeros(4, dtype=torch.int64)
        _, reward, terminated, truncated, info = statistics.step(action)
        _, plain_reward, _, _, _ = plain.step(action.numpy())
        assert isinstance(reward, torch.Tensor) and isinstance(terminated, torch.Tensor)
        np.testing.assert_array_equal(reward.numpy(), plain_reward)
        returns += plain_reward
        if "episode" in info:
            done = info["_episode"].numpy()
            recorded += info["episode"]["r"].numpy()[done].tolist()
            assert np.all(info["episode"]["l"].numpy()[done] >= 1)
            np.testing.assert_array_equal(info["episode"]["r"].numpy()[done], returns[done])
        returns[(terminated | truncated).numpy()] = 0.0
    assert len(recorded) >= 4  # sessions last at most 30 steps here


def test_wrap_users_lifts_vector_twins_and_per_user_transforms_like_make_vec_sync():
    wrappers = [
        gym.wrappers.RecordEpisodeStatistics,
        lambda env: gym.wrappers.TransformReward(env, lambda reward: 2.0 * reward + 1.0),
        lambda env: gym.wrappers.TransformObservation(
            env, lambda obs: obs[:5] * 0.5, gym.spaces.Box(-1, 1, (5,), np.float32)
        ),
    ]
    envs = recenv.wrap_users(gym.make_vec("DriftingUser-v0", num_envs=3, **SETTINGS), wrappers)
    assert isinstance(envs, gym.wrappers.vector.TransformObservation)
    assert envs.single_observation_space.shape == (5,) and envs.observation_space.shape == (3, 5)
    plain = gym.make_vec("DriftingUser-v0", num_envs=3, **SETTINGS)
    observation, _ = envs.reset(seed=4)
    np.testing.assert_allclose(observation, plain.reset(seed=4)[0][:, :5] * 0.5)
    episodes = 0
    for _ in range(60):
        actions = np.array([0, 1, 2])
        observation, reward, _, _, info = envs.step(actions)
        plain_observation, plain_reward, _, _, _ = plain.step(actions)
        np.testing.assert_allclose(observation, plain_observation[:, :5] * 0.5)
        np.testing.assert_allclose(reward, 2.0 * plain_reward + 1.0)
        episodes += int(info.get("_episode", np.zeros(3, bool)).sum())
    assert episodes >= 3


def test_wrap_users_lifts_action_wrappers_per_user():
    class ShiftedItem(gym.ActionWrapper):
        def action(self, action):
            return (int(action) + 1) % 500

    envs = recenv.wrap_users(gym.make_vec("DriftingUser-v0", num_envs=2, **SETTINGS), [ShiftedItem])
    plain = gym.make_vec("DriftingUser-v0", num_envs=2, **SETTINGS)
    envs.reset(seed=1)
    plain.reset(seed=1)
    for step in range(5):
        wrapped = envs.step(np.array([step, 499]))
        direct = plain.step(np.array([step + 1, 0]))
        np.testing.assert_array_equal(wrapped[0], direct[0])


def test_wrap_users_refuses_episode_wrappers_and_tensor_envs_with_the_alternatives():
    envs = gym.make_vec("DriftingUser-v0", num_envs=2, **SETTINGS)
    with pytest.raises(TypeError, match="vectorization_mode='sync'"):
        recenv.wrap_users(envs, [lambda env: gym.wrappers.TimeLimit(env, 5)])
    tensors = gym.make_vec("DriftingUser-v0", num_envs=2, array_type="torch", **SETTINGS)
    with pytest.raises(TypeError, match="NumpyToTorch"):
        recenv.wrap_users(tensors, [lambda env: gym.wrappers.TransformReward(env, lambda reward: reward)])


def test_make_vec_with_wrappers_in_sync_mode_wraps_each_scalar_user():
    envs = gym.make_vec(
        "DriftingUser-v0", num_envs=2, vectorization_mode="sync",
        wrappers=[gym.wrappers.RecordEpisodeStatistics], **SETTINGS,
    )
    envs.reset(seed=[0, 1])
    for _ in range(35):
        envs.step(np.zeros(2, dtype=np.int64))
    assert all(isinstance(user, gym.wrappers.RecordEpisodeStatistics) for user in envs.envs)
    assert all(user.episode_count >= 1 for user in envs.envs)  # sessions end within 30 steps
