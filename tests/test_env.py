"""The scalar env: Gymnasium/SB3 contracts, determinism, episode ends, reset options, errors."""

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import recenv
from recenv import DriftingUserEnv, UserModelParams, unflatten_history
from recenv.rendering import NoWindowWarning

PRESETS = ["none", "smooth", "abrupt", "mixed"]


def _rollout(env, seed: int, steps: int = 200, action_seed: int = 0):
    actions = np.random.default_rng(action_seed).integers(env.action_space.n, size=steps)
    records = []
    obs, info = env.reset(seed=seed)
    records.append((obs, info))
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        records.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            records.append(env.reset())
    return records


@pytest.mark.parametrize("obs_mode", recenv.OBS_MODES)
@pytest.mark.parametrize("preset", PRESETS)
def test_gymnasium_and_sb3_checkers_pass_without_warnings(obs_mode, preset):
    env = gym.make("DriftingUser-v0", obs_mode=obs_mode, preset=preset)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", NoWindowWarning)  # check_env builds a human-mode env; no display here
        check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []


def test_same_seed_same_rollout_and_different_seed_different():
    first = _rollout(gym.make("DriftingUser-v0"), seed=7)
    second = _rollout(gym.make("DriftingUser-v0"), seed=7)
    other = _rollout(gym.make("DriftingUser-v0"), seed=8)
    assert len(first) == len(second)
    for a, b in zip(first, second):
        for x, y in zip(a, b):
            if isinstance(x, dict):
                assert x.keys() == y.keys()
                for key in x:
                    np.testing.assert_array_equal(x[key], y[key])
            else:
                np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0][0], other[0][0])
    assert [r[1] for r in first if len(r) == 5] != [r[1] for r in other if len(r) == 5]


def test_reset_without_seed_continues_the_seeded_stream():
    env = gym.make("DriftingUser-v0")
    env.reset(seed=3)
    a = env.reset()[0]
    env.reset(seed=3)
    assert np.array_equal(env.reset()[0], a)


def test_observation_layout_history_mode():
    env = gym.make("DriftingUser-v0", obs_mode="history", history_length=10, warmup_steps=20)
    obs, info = env.reset(seed=0)
    rows = unflatten_history(obs, 10)
    catalog = env.unwrapped.catalog
    np.testing.assert_allclose(rows[:, :-2], catalog.embeddings[info["warmup_items"][-10:]], atol=1e-7)
    np.testing.assert_array_equal(rows[:, -2], info["warmup_clicks"][-10:])
    np.testing.assert_array_equal(rows[:, -1], np.ones(10))
    obs, reward, *_ = env.step(42)
    rows = unflatten_history(obs, 10)
    np.testing.assert_allclose(rows[-1, :-2], catalog.embeddings[42], atol=1e-7)
    assert rows[-1, -2] == reward and rows[-1, -1] == 1.0


def test_short_warmup_is_padded():
    env = gym.make("DriftingUser-v0", obs_mode="ids", history_length=5, warmup_steps=2)
    obs, info = env.reset(seed=0)
    assert obs.tolist()[:3] == [-1, -1, -1] and obs.tolist()[5:8] == [-1, -1, -1]
    assert obs.tolist()[3:5] == info["warmup_items"].tolist()


def test_info_is_ground_truth():
    env = gym.make("DriftingUser-v0")
    env.reset(seed=1)
    probabilities = env.unwrapped.click_probabilities()
    obs, reward, terminated, truncated, info = env.step(17)
    assert info["click_probability"] == pytest.approx(float(probabilities[17]), abs=1e-6)
    assert info["best_click_probability"] == pytest.approx(float(probabilities.max()), abs=1e-6)
    assert info["topic"] == int(env.unwrapped.catalog.topics[17])
    assert info["patience"] == pytest.approx(float(env.unwrapped.user_state()["patience"]))
    assert set(info) == {"click_probability", "best_click_probability", "patience", "regime_shift", "topic"}


def test_patience_reaching_zero_terminates_and_blocks_further_steps():
    # No clicks (β0 = −100): b goes 2.5 → 1.2 → −0.1, so the user leaves on the second step.
    params = {"initial_patience": 2.5, "no_click_patience_cost": 0.3, "click_bias": -100.0}
    env = gym.make("DriftingUser-v0", params=params, obs_mode="ids")
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(0)
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["patience"] == pytest.approx(1.2, abs=1e-5)
    _, reward, terminated, truncated, info = env.step(0)
    assert terminated and not truncated and info["patience"] == pytest.approx(-0.1, abs=1e-5)
    with pytest.raises(RuntimeError, match="after the episode terminated"):
        env.unwrapped.step(0)
    env.reset()
    env.step(0)  # a reset makes stepping legal again


def test_patience_switch_off_never_terminates_and_horizon_truncates():
    env = gym.make("DriftingUser-v0", params={"patience": False, "click_bias": -100.0}, max_episode_steps=50,
                   obs_mode="ids")
    env.reset(seed=0)
    for step in range(1, 51):
        _, _, terminated, truncated, _ = env.step(step % 500)
        assert not terminated
    assert truncated and step == 50


def test_registered_horizon_is_200():
    env = gym.make("DriftingUser-v0", params={"patience": False}, obs_mode="ids")
    env.reset(seed=0)
    steps = 0
    truncated = False
    while not truncated:
        _, _, _, truncated, _ = env.step(0)
        steps += 1
    assert steps == recenv.DEFAULT_MAX_EPISODE_STEPS == 200


def test_env_pickles_mid_episode_and_continues_identically():
    env = DriftingUserEnv()
    env.reset(seed=5)
    for action in range(5):
        env.step(action)
    clone = pickle.loads(pickle.dumps(env))
    for action in range(5, 30):
        a = env.step(action)
        b = clone.step(action)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:4] == b[1:4] and a[4] == b[4]
        if a[2]:
            break


def test_persona_sets_initial_interest_before_warmup():
    catalog = recenv.default_catalog()
    env = DriftingUserEnv(preset="none")  # no drift
    astronomy = catalog.topic_centroids[catalog.topic_names.index("astronomy")]
    env.reset(seed=0, options={"persona": astronomy})
    np.testing.assert_allclose(env.user_state()["interest"], astronomy / np.linalg.norm(astronomy), atol=1e-6)
    probabilities = env.click_probabilities()
    is_astronomy = catalog.topics == catalog.topic_names.index("astronomy")
    assert probabilities[is_astronomy].mean() > 2 * probabilities[~is_astronomy].mean()


def test_text_persona_is_embedded_with_the_catalog_model():
    catalog = recenv.default_catalog()
    env = DriftingUserEnv(preset="none")  # no drift
    env.reset(seed=0, options={"persona": "loves documentaries about black holes, galaxies and telescopes"})
    interest = env.user_state()["interest"]
    closest = catalog.topics[np.argsort(catalog.latents @ interest)[-10:]]
    assert np.mean(closest == catalog.topic_names.index("astronomy")) >= 0.8
    probabilities = env.click_probabilities()
    is_astronomy = catalog.topics == catalog.topic_names.index("astronomy")
    assert probabilities[is_astronomy].mean() > 2 * probabilities[~is_astronomy].mean()


def test_scripted_shift_fires_at_its_step():
    catalog = recenv.default_catalog()
    chess = catalog.topic_centroids[catalog.topic_names.index("chess")]
    cooking = catalog.topic_centroids[catalog.topic_names.index("cooking")]
    env = gym.make("DriftingUser-v0", obs_mode="ids", params={"consumption_drift": False, "exogenous_drift": False,
                                                              "regime_shifts": False, "patience": False})
    env.reset(seed=0, options={"persona": chess, "shifts": [(3, cooking)]})
    shifts = []
    for _ in range(4):
        *_, info = env.step(0)
        shifts.append(info["regime_shift"])
    assert shifts == [False, False, True, False]
    np.testing.assert_allclose(env.unwrapped.user_state()["interest"], cooking / np.linalg.norm(cooking), atol=1e-6)
    # The options held only for that reset.
    env.reset()
    assert not np.allclose(env.unwrapped.user_state()["interest"], chess / np.linalg.norm(chess), atol=1e-3)


@pytest.mark.parametrize("preset", PRESETS)
def test_no_nan_or_inf_under_any_preset(preset):
    envs = gym.make_vec("DriftingUser-v0", num_envs=256, preset=preset, device="cpu")
    obs, _ = envs.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(300):
        obs, reward, _, _, info = envs.step(rng.integers(500, size=256))
        assert np.isfinite(obs).all() and np.isfinite(reward).all()
        assert np.isfinite(info["patience"]).all() and np.isfinite(info["click_probability"]).all()
    state = envs.unwrapped.user_state()
    np.testing.assert_allclose(np.linalg.norm(state["interest"], axis=1), 1.0, atol=1e-5)


# ---------------------------------------------------------------- errors


def test_action_errors_name_the_value_and_the_allowed_range():
    env = gym.make("DriftingUser-v0").unwrapped
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action 500 is out of range; allowed: integers in \[0, 499\]"):
        env.step(500)
    with pytest.raises(ValueError, match="action -1 is out of range"):
        env.step(-1)
    with pytest.raises(TypeError, match="integer item index"):
        env.step(3.0)
    with pytest.raises(TypeError, match="integer item index"):
        env.step("3")
    with pytest.raises(TypeError, match="integer item index"):
        env.step(True)
    with pytest.raises(ValueError, match="single item index"):
        env.step(np.array([1, 2]))
    env.step(np.int64(3))
    env.step(np.array(4))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"obs_mode": "pixels"}, ValueError, r"unknown obs_mode 'pixels'; allowed: \['encoded', 'history', 'ids'\]"),
        ({"preset": "chaotic"}, ValueError, r"unknown preset 'chaotic'; allowed: \['abrupt', 'mixed', 'ml100k', 'none', 'smooth'\]"),
        ({"params": {"regime_shift_prob": 1.5}}, ValueError, r"regime_shift_prob = 1.5 is out of range; allowed: \[0.0, 1.0\]"),
        ({"params": {"affinity_weight": float("nan")}}, ValueError, "affinity_weight must be finite"),
        ({"params": {"initial_patience": float("inf")}}, ValueError, "initial_patience must be finite"),
        ({"params": {"satiation_decay": 1.0}}, ValueError, r"satiation_decay = 1.0 is out of range"),
        ({"params": {"no_such_knob": 1}}, TypeError, "unknown UserModelParams field"),
        ({"params": {"satiation": "yes"}}, TypeError, "satiation must be a bool"),
        ({"history_length": 0}, ValueError, "history_length = 0 is not allowed"),
        ({"device": "tpu"}, ValueError, "device 'tpu'"),
        ({"render_mode": "pixels"}, ValueError, "unknown render_mode 'pixels'"),
        ({"catalog": "movies"}, TypeError, "catalog must be a recenv.Catalog"),
    ],
)
def test_bad_configuration_is_refused_clearly(kwargs, error, message):
    with pytest.raises(error, match=message):
        DriftingUserEnv(**kwargs)


def test_bad_reset_options_are_refused_clearly():
    env = DriftingUserEnv()
    with pytest.raises(ValueError, match=r"unknown reset option\(s\) \['mood'\]; allowed: \['persona', 'shifts'\]"):
        env.reset(options={"mood": "happy"})
    with pytest.raises(ValueError, match="latent of size 16 or an embedding of size 384"):
        env.reset(options={"persona": np.ones(7)})
    with pytest.raises(ValueError, match=r"options\['shifts'\]\[0\] has step 0"):
        env.reset(options={"shifts": [(0, np.ones(16))]})


def test_user_params_are_a_frozen_documented_dataclass():
    params = UserModelParams()
    with pytest.raises(Exception):
        params.affinity_weight = 1.0  # type: ignore[misc]
    assert recenv.make_params("none").regime_shifts is False
    assert recenv.make_params("smooth", {"exogenous_drift_scale": 0.3}).exogenous_drift_scale == 0.3
    assert recenv.make_params("abrupt", params) is params


def test_ansi_render_lists_recent_items():
    env = gym.make("DriftingUser-v0", render_mode="ansi")
    env.reset(seed=0)
    env.step(0)
    text = env.render()
    assert "patience" in text and env.unwrapped.catalog.titles[0] in text
