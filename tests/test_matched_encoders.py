"""Each environment observes through the encoder trained on its own dynamics, and a weights file
made for other dynamics is never used silently."""

import json

import gymnasium as gym
import pytest
import torch

import recenv
from recenv.encoder import (
    EncoderConfig,
    EncoderMismatchError,
    MissingEncoderWeights,
    NextClickLSTM,
    dynamics_key,
    load_encoder,
    resolve_encoder,
    shipped_encoder_path,
)
from recenv.presets import SYNTHETIC_PRESETS


def test_each_synthetic_preset_observes_through_its_own_shipped_encoder():
    keys = {}
    for preset in SYNTHETIC_PRESETS:
        env = recenv.DriftingUserEnv(preset=preset)
        key = dynamics_key(env.catalog, env.user_model)
        assert env.encoder.dynamics_key == key
        # ...and it is the file shipped for that preset, trained on logs of that preset.
        assert load_encoder(shipped_encoder_path(preset), env.catalog, env.user_model).dynamics_key == key
        report = json.loads(shipped_encoder_path(preset).with_suffix(".json").read_text())
        assert report["preset"] == preset
        keys[preset] = key
    assert len(set(keys.values())) == len(SYNTHETIC_PRESETS)


def test_the_shipped_ml100k_encoder_records_the_fitted_dynamics():
    from recenv.presets import ml100k_params
    from recenv.weights_file import read_weights_file

    payload = read_weights_file(shipped_encoder_path("ml100k"), "encoder")
    assert payload["dynamics"]["params"] == ml100k_params().to_dict()


def test_a_weights_file_of_other_dynamics_is_refused_with_the_differences():
    with pytest.raises(EncoderMismatchError, match="other dynamics") as refused:
        gym.make("DriftingUser-v0", preset="none", encoder=shipped_encoder_path("mixed"))
    message = str(refused.value)
    for field in ("consumption_drift", "exogenous_drift", "regime_shifts"):
        assert field in message
    # An ablation switch is other dynamics too, even on the preset the file was made for.
    with pytest.raises(EncoderMismatchError, match="satiation: file True, env False"):
        recenv.DriftingUserEnv(preset="mixed", params={"satiation": False}, encoder=shipped_encoder_path("mixed"))


def test_a_model_read_from_a_file_is_checked_and_a_bare_model_is_taken_as_given():
    catalog = recenv.default_catalog()
    mixed = load_encoder(shipped_encoder_path("mixed"), catalog)
    with pytest.raises(EncoderMismatchError, match="other dynamics"):
        recenv.DriftingUserEnv(preset="abrupt", encoder=mixed)
    assert recenv.DriftingUserEnv(preset="mixed", encoder=mixed).encoder is mixed
    torch.manual_seed(0)
    bare = NextClickLSTM(EncoderConfig(catalog.embedding_dim, hidden_size=8, head_size=8))
    assert recenv.DriftingUserEnv(preset="abrupt", encoder=bare).encoder is bare


def test_dynamics_without_weights_are_missing_under_their_own_key(tmp_path, monkeypatch):
    monkeypatch.setenv("RECENV_CACHE_DIR", str(tmp_path))
    catalog = recenv.default_catalog()
    scenario = recenv.EnvConfig(preset="mixed", params={"exogenous_drift": False}).user_model
    with pytest.raises(MissingEncoderWeights) as missing:
        resolve_encoder(catalog, scenario, None, torch.device("cpu"))
    assert missing.value.path.name.startswith(dynamics_key(catalog, scenario))
    assert dynamics_key(catalog, scenario) != dynamics_key(catalog, recenv.EnvConfig(preset="mixed").user_model)


def test_an_encoder_file_from_before_matched_encoders_is_refused(tmp_path):
    torch.save({"format_version": 1, "config": {"embedding_dim": 384}}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="older than matched encoders"):
        load_encoder(tmp_path / "old.pt", recenv.default_catalog())
