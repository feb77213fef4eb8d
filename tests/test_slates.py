"""Slates: the choice model by hand, k = 1 as today's model, repeated items, the envs' contracts."""

from __future__ import annotations

import itertools
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from recenv import DriftingUserEnv, DriftingUserVectorEnv, EnvConfig
from recenv.dynamics import (
    ItemTable,
    UserState,
    best_slate_click_probability,
    click_logits,
    repeated_in_slate,
    sample_slate_choice,
    slate_choice_logits,
    slate_choice_probabilities,
    slate_position_effects,
    slate_satiation_increment,
)
from recenv.params import UserModelParams
from recenv.public_view import public_view

# ---------------------------------------------------------------- the choice model, by hand


def test_the_conditional_logit_with_a_no_click_option():
    logits = torch.tensor([[0.0, math.log(2.0), math.log(3.0)]])
    # exp(u) = 1, 2, 3; the no-click option has exp(0) = 1: P = u / (1 + 6)
    np.testing.assert_allclose(slate_choice_probabilities(logits).numpy(), [[1 / 7, 2 / 7, 3 / 7]], rtol=1e-6)
    one = torch.tensor([[0.3], [-2.0], [4.0]])
    np.testing.assert_allclose(slate_choice_probabilities(one).numpy(), torch.sigmoid(one).numpy(), rtol=1e-6)


def test_the_chosen_slot_inverts_the_cumulative_probabilities():
    probabilities = torch.tensor([[0.1, 0.2, 0.3]] * 5)  # cumulative 0.1, 0.3, 0.6; no click beyond
    uniform = torch.tensor([0.05, 0.1, 0.29, 0.59, 0.6])
    assert sample_slate_choice(probabilities, uniform).tolist() == [0, 1, 1, 2, -1]


def test_position_effects_and_repeated_items():
    np.testing.assert_allclose(slate_position_effects(4, 0.5).numpy(),
                               [0.0, -0.5, -0.5 * math.log2(3), -1.0], rtol=1e-6)
    slates = torch.tensor([[4, 2, 4, 2, 7], [1, 2, 3, 4, 5]])
    assert repeated_in_slate(slates).tolist() == [[False, False, True, True, False], [False] * 5]


def _toy_items(num_items: int = 5, latent_dim: int = 3) -> ItemTable:
    generator = torch.Generator().manual_seed(0)
    latents = torch.nn.functional.normalize(torch.randn(num_items, latent_dim, generator=generator), dim=1)
    return ItemTable(latents=latents, clickbait=torch.zeros(num_items), quality=torch.full((num_items,), 0.5),
                     topics=torch.arange(num_items) % 2, embeddings=latents, topic_centroids=latents[:2])


def _toy_state(items: ItemTable) -> UserState:
    interest = torch.nn.functional.normalize(torch.tensor([[1.0, 0.5, -0.2]]), dim=1)
    return UserState.start(interest, UserModelParams())


def test_slot_utilities_add_the_position_effect_and_empty_repeated_slots():
    items, params = _toy_items(), UserModelParams()
    state = _toy_state(items)
    slates = torch.tensor([[3, 1, 3]])
    effects = slate_position_effects(3, 0.5)
    logits = slate_choice_logits(state, slates, items, params, effects)
    expected = click_logits(state, slates, items, params) + effects
    np.testing.assert_allclose(logits[0, :2].numpy(), expected[0, :2].numpy(), rtol=1e-6)
    assert logits[0, 2] == float("-inf") and slate_choice_probabilities(logits)[0, 2] == 0.0


def test_the_best_slate_value_is_the_best_of_every_slate():
    items, params = _toy_items(), UserModelParams()
    state = _toy_state(items)
    k, effects = 2, slate_position_effects(2, 0.7)
    every_item = torch.arange(5)[None]
    all_logits = click_logits(state, every_item, items, params)
    best = float(best_slate_click_probability(all_logits, effects)[0])
    brute = max(float(slate_choice_probabilities(
        slate_choice_logits(state, torch.tensor([slate]), items, params, effects)).sum())
        for slate in itertools.permutations(range(5), k))
    assert best == pytest.approx(brute, rel=1e-6)


def test_a_slate_satiates_with_the_chosen_item_and_a_kth_of_fatigue_for_the_others():
    items, params = _toy_items(), UserModelParams(impression_fatigue_weight=0.3)
    slates = torch.tensor([[0, 1, 2], [0, 1, 1], [4, 3, 2]])
    chosen = torch.tensor([1, -1, 0])
    z = items.latents
    expected = torch.stack([
        z[1] + 0.1 * (z[0] + z[2]),      # chose slot 1; the others at ι/k = 0.1
        0.1 * (z[0] + z[1]),             # no click; the repeated item once
        z[4] + 0.1 * (z[3] + z[2]),
    ])
    np.testing.assert_allclose(slate_satiation_increment(slates, chosen, items, params).numpy(), expected.numpy(),
                               rtol=1e-6, atol=1e-7)
    one = slate_satiation_increment(torch.tensor([[2], [2]]), torch.tensor([0, -1]), items, params)
    np.testing.assert_allclose(one.numpy(), torch.stack([z[2], 0.3 * z[2]]).numpy(), rtol=1e-6)  # k = 1: y + ι(1−y)


# ---------------------------------------------------------------- the envs


def _rollout(env, actions_of, steps=60, seed=3):
    observation, _ = env.reset(seed=seed)
    trace = [observation]
    for step in range(steps):
        observation, reward, terminated, truncated, info = env.step(actions_of(step))
        trace += [observation, reward, info.get("click_probability")]
        if terminated or truncated:
            break
    return trace


def test_slate_size_1_is_today_s_env():
    default, explicit = DriftingUserEnv(), DriftingUserEnv(slate_size=1)
    assert explicit.action_space == gym.spaces.Discrete(500)
    actions = lambda step: (step * 37) % 500
    for ours, theirs in zip(_rollout(default, actions), _rollout(explicit, actions), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert EnvConfig(slate_size=1).to_record() == EnvConfig().to_record()
    assert "slate_size" not in EnvConfig().to_record() and EnvConfig(slate_size=3).to_record()["slate_size"] == 3


def test_a_one_item_slate_through_the_choice_model_gives_the_same_clicks():
    """The k = 1 case of the slate path (a (B, 1) slate) against the one-item path: same probabilities,
    same clicks for the same seed (the choice draws the same uniform)."""
    config = EnvConfig(device="cpu")
    one, slate = DriftingUserVectorEnv(num_envs=64, config=config), DriftingUserVectorEnv(num_envs=64, config=config)
    one.reset(seed=1)
    slate.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(30):
        items = rng.integers(500, size=64)
        with torch.no_grad():
            a = one._simulator.step(torch.as_tensor(items))
            b = slate._simulator.step(torch.as_tensor(items)[:, None])
        np.testing.assert_allclose(a.click_probability.numpy(), b.click_probability.numpy(), rtol=1e-5)
        np.testing.assert_array_equal(a.click.numpy(), b.click.numpy())
        np.testing.assert_array_equal(b.chosen_slot.numpy(), np.where(b.click.numpy() > 0, 0, -1))


def test_slate_envs_pass_the_checkers_and_pickle():
    import pickle

    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("DriftingUser-v0", slate_size=10)
    assert env.action_space == gym.spaces.MultiDiscrete([500] * 10)
    check_env(env.unwrapped)
    sb3_check_env(DriftingUserEnv(slate_size=4), warn=False)
    copy = pickle.loads(pickle.dumps(DriftingUserEnv(slate_size=4)))
    assert copy.config.slate_size == 4
    envs = gym.make_vec("DriftingUser-v0", num_envs=6, slate_size=10, device="cpu")
    assert envs.single_action_space == gym.spaces.MultiDiscrete([500] * 10)
    assert envs.action_space.shape == (6, 10)
    envs.reset(seed=0)
    _, reward, *_, info = envs.step(envs.action_space.sample())
    assert info["slot_click_probability"].shape == (6, 10) and info["chosen_slot"].shape == (6,)
    np.testing.assert_allclose(info["slot_click_probability"].sum(1), info["click_probability"], rtol=1e-5)
    assert np.array_equal(reward > 0, info["chosen_slot"] >= 0)


def test_the_scalar_and_vector_slate_envs_agree():
    slates = [np.array([(step * 7 + j * 31) % 500 for j in range(5)]) for step in range(80)]
    scalar = _rollout(DriftingUserEnv(slate_size=5), lambda step: slates[step], steps=80)
    vector = _rollout(DriftingUserVectorEnv(num_envs=1, slate_size=5, device="cpu", autoreset_mode="disabled"),
                      lambda step: slates[step][None], steps=80)
    assert len(scalar) == len(vector)
    for ours, theirs in zip(scalar, vector, strict=True):
        np.testing.assert_allclose(np.asarray(ours, dtype=np.float64).reshape(-1),
                                   np.asarray(theirs, dtype=np.float64).reshape(-1), rtol=1e-5, atol=1e-6)


def test_the_history_records_the_chosen_item_or_the_top_slot():
    env = DriftingUserEnv(slate_size=3, obs_mode="ids", history_length=4)
    env.reset(seed=2)
    for step in range(20):
        slate = np.array([step, 100 + step, 200 + step])
        observation, reward, terminated, truncated, info = env.step(slate)
        recorded = slate[info["chosen_slot"]] if info["chosen_slot"] >= 0 else slate[0]
        assert info["recorded_item"] == recorded
        assert observation[3] == recorded and observation[4 + 3] == int(reward)  # newest id and click
        if terminated or truncated:
            break


def test_public_views_hide_the_slot_probabilities_and_keep_the_choice():
    envs = public_view(DriftingUserVectorEnv(num_envs=3, slate_size=2, device="cpu"))
    envs.reset(seed=0)
    *_, info = envs.step(np.array([[1, 2], [3, 4], [5, 6]]))
    assert "slot_click_probability" not in info and "click_probability" not in info
    assert "chosen_slot" in info and "recorded_item" in info


@pytest.mark.parametrize(("action", "error", "says"), [
    (np.array([1, 2]), ValueError, "shape (3,)"),
    (np.array([1, 2, 500]), ValueError, "500 in a slate is out of range"),
    (np.array([1.0, 2.0, 3.0]), TypeError, "integer item indices"),
    (5, ValueError, "shape (3,)"),
])
def test_bad_slates_are_refused(action, error, says):
    env = DriftingUserEnv(slate_size=3)
    env.reset(seed=0)
    with pytest.raises(error, match=re_escape(says)):
        env.step(action)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_bad_slate_settings_are_refused():
    with pytest.raises(ValueError, match="slate_size"):
        EnvConfig(slate_size=0)
    with pytest.raises(ValueError, match="slate_position_decay"):
        EnvConfig(slate_position_decay=-1.0)


# ---------------------------------------------------------------- the existing contracts, with slates


@pytest.mark.parametrize("obs_mode", ["encoded", "history", "ids"])
def test_the_checkers_pass_without_warnings_with_slates(obs_mode):
    import warnings

    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    from recenv.rendering import NoWindowWarning

    env = gym.make("DriftingUser-v0", obs_mode=obs_mode, slate_size=6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", NoWindowWarning)  # check_env builds a human-mode env; no display here
        check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []


def test_next_step_and_same_step_autoresets_with_slates():
    params = {"initial_patience": 2.5, "click_bias": -100.0}  # every user leaves on step 2
    slates = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    envs = DriftingUserVectorEnv(num_envs=3, params=params, device="cpu", obs_mode="ids", slate_size=3)
    envs.reset(seed=0)
    envs.step(slates)
    _, _, terminated, _, _ = envs.step(slates)
    assert terminated.all()
    obs, reward, terminated, truncated, info = envs.step(slates)
    assert not terminated.any() and not truncated.any() and (reward == 0).all()
    assert not info["_chosen_slot"].any() and info["_warmup_items"].all()
    np.testing.assert_array_equal(obs[:, :10], info["warmup_items"][:, -10:])  # fresh history, slates ignored

    same = DriftingUserVectorEnv(num_envs=3, params=params, device="cpu", obs_mode="ids", slate_size=3,
                                 autoreset_mode="same_step")
    same.reset(seed=0)
    same.step(slates)
    obs, _, terminated, _, info = same.step(slates[::-1])
    assert terminated.all() and info["_final_obs"].all()
    final = np.stack(info["final_obs"])
    assert final[:, 9].tolist() == [7, 4, 1]  # no click: the top slot is what the history recorded
    assert (obs[:, :10] == info["warmup_items"][:, -10:]).all()


def test_async_vectorization_seeded_repeats_and_no_nan_with_slates():
    envs = gym.make_vec("DriftingUser-v0", num_envs=2, vectorization_mode="async", obs_mode="ids", slate_size=4)
    envs.reset(seed=0)
    for _ in range(5):
        obs, reward, *_ = envs.step(envs.action_space.sample())
    assert obs.shape == (2, 22) and reward.shape == (2,)
    envs.close()

    def rollout(seed, preset):
        envs = DriftingUserVectorEnv(num_envs=16, device="cpu", slate_size=4, preset=preset)
        observations = [envs.reset(seed=seed)[0]]
        rng = np.random.default_rng(0)
        for _ in range(60):
            observation, reward, *_, info = envs.step(rng.integers(500, size=(16, 4)))
            assert np.isfinite(reward).all() and np.isfinite(info["slot_click_probability"]).all()
            observations.append(observation)
        return np.stack(observations)

    for preset in ("none", "smooth", "abrupt", "mixed"):
        first = rollout(1, preset)
        assert np.isfinite(first).all()
        assert np.array_equal(first, rollout(1, preset))
    assert not np.array_equal(rollout(1, "mixed"), rollout(2, "mixed"))


def test_without_ground_truth_the_slate_simulation_is_the_same():
    full = gym.make_vec("DriftingUser-v0", num_envs=16, max_episode_steps=30, slate_size=5)
    lean = gym.make_vec("DriftingUser-v0", num_envs=16, max_episode_steps=30, slate_size=5, ground_truth=False)
    np.testing.assert_array_equal(full.reset(seed=5)[0], lean.reset(seed=5)[0])
    rng = np.random.default_rng(0)
    for _ in range(40):
        slates = rng.integers(500, size=(16, 5))
        expected, got = full.step(slates), lean.step(slates)
        for a, b in zip(expected[:4], got[:4]):
            np.testing.assert_array_equal(a, b)
        assert not {"click_probability", "best_click_probability", "slot_click_probability"} & set(got[4])
        np.testing.assert_array_equal(got[4]["chosen_slot"], expected[4]["chosen_slot"])
