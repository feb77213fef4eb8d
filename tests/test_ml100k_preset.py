"""preset="ml100k": the MovieLens catalog with the fitted user model, behind gym.make (fixture data only)."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from movielens_fixture import MOVIES, write_grouplens, write_recbole

import recenv  # noqa: F401  (registers DriftingUser-v0)
from recenv.data import DATA_PATH_VARIABLE
from recenv.presets import PRESET_NAMES, make_params, ml100k_params
from recenv.rendering import NoWindowWarning


@pytest.fixture
def data_folder(tmp_path):
    return write_recbole(tmp_path / "ml-100k")


def test_ml100k_env_passes_the_gymnasium_checker(data_folder):
    env = gym.make("DriftingUser-v0", preset="ml100k", data_path=str(data_folder), obs_mode="history")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", NoWindowWarning)  # check_env builds a human-mode env; no display here
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []
    assert env.action_space.n == len(MOVIES)


def test_ml100k_uses_the_movielens_catalog_and_the_shipped_fitted_parameters(data_folder):
    env = gym.make("DriftingUser-v0", preset="ml100k", data_path=data_folder, obs_mode="history")
    catalog, params = env.unwrapped.catalog, env.unwrapped.user_model
    assert catalog.texts[0] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    assert set(catalog.topic_names) <= {"Animation", "Action", "Thriller", "Drama", "Crime", "Comedy", "Children's"}
    assert params == ml100k_params()
    assert params != recenv.SYNTHETIC_PRESETS["mixed"]  # the fit moved the drift away from the default
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(3)
    assert np.isfinite(obs).all() and reward in (0.0, 1.0)
    assert info["topic"] == catalog.topics[3]


def test_ml100k_reads_the_data_path_from_the_environment_variable(tmp_path, monkeypatch):
    write_grouplens(tmp_path / "ml-100k")
    monkeypatch.setenv(DATA_PATH_VARIABLE, str(tmp_path))
    env = gym.make("DriftingUser-v0", preset="ml100k", obs_mode="history")
    assert env.unwrapped.catalog.num_items == len(MOVIES)


def test_ml100k_errors_are_clear(data_folder, monkeypatch):
    monkeypatch.delenv(DATA_PATH_VARIABLE, raising=False)
    assert "ml100k" in PRESET_NAMES
    with pytest.raises(ValueError, match=rf"preset 'ml100k' needs the MovieLens-100K data: pass data_path=.*\${DATA_PATH_VARIABLE}"):
        gym.make("DriftingUser-v0", preset="ml100k")
    with pytest.raises(ValueError, match="no such file or folder"):
        gym.make("DriftingUser-v0", preset="ml100k", data_path=str(data_folder / "missing"))
    with pytest.raises(ValueError, match="brings its own catalog"):
        recenv.EnvConfig(catalog=recenv.default_catalog(), preset="ml100k", data_path=data_folder)
    with pytest.raises(ValueError, match="preset 'mixed' does not take one"):
        gym.make("DriftingUser-v0", preset="mixed", data_path=str(data_folder))


def test_ml100k_params_can_be_overridden_and_vectorised(data_folder):
    params = make_params("ml100k", {"regime_shift_prob": 0.1})
    assert params == ml100k_params().replace(regime_shift_prob=0.1)
    envs = gym.make_vec("DriftingUser-v0", num_envs=3, preset="ml100k", data_path=str(data_folder), obs_mode="history", device="cpu")
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, *envs.single_observation_space.shape)
    obs, rewards, *_ = envs.step(np.array([0, 5, 27]))
    assert np.isfinite(obs).all() and rewards.shape == (3,)
    envs.close()
