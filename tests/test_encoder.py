"""The LSTM state encoder: incremental observations, weights files, logs, training and metrics."""

import pickle
import shlex

import gymnasium as gym
import numpy as np
import pytest
import torch

import recenv
from recenv.encoder import EncoderConfig, EncoderMismatchError, MissingEncoderWeights, NextClickLSTM, load_encoder, save_encoder
from recenv.offline.click_predictors import PopularityPredictor, StaticProfilePredictor, auc, log_loss
from recenv.offline.encoder_training import TrainingConfig, evaluate, split_users, train_encoder
from recenv.offline.logging_policies import make_logs
from recenv.offline.logs import InteractionLog
from recenv.params import UserModelParams


def test_encoded_is_the_default_observation():
    env = gym.make("DriftingUser-v0")
    obs, _ = env.reset(seed=0)
    assert env.unwrapped.obs_mode == "encoded"
    assert obs.shape == (66,) and obs.dtype == np.float32 and obs in env.observation_space
    assert np.abs(obs).max() < 1 and np.abs(obs).max() > 0


def test_incremental_encoding_equals_running_the_lstm_over_the_whole_history():
    env = gym.make("DriftingUser-v0")
    obs, info = env.reset(seed=3)
    encoder = env.unwrapped.encoder
    catalog = env.unwrapped.catalog
    items, clicks = list(info["warmup_items"]), list(info["warmup_clicks"])
    rng = np.random.default_rng(0)
    for _ in range(25):
        action = int(rng.integers(500))
        obs, reward, terminated, truncated, _ = env.step(action)
        items.append(action)
        clicks.append(reward)
        if terminated or truncated:
            break
    with torch.no_grad():
        embeddings = torch.as_tensor(catalog.embeddings[items])[None]
        _, (hidden, _) = encoder.encode(embeddings, torch.tensor([clicks], dtype=torch.float32))
    np.testing.assert_allclose(obs[:64], hidden[0].numpy(), atol=1e-5)  # then the session context


def test_vector_env_encodes_each_user_like_the_scalar_env():
    params = {"initial_patience": 1000.0}
    torch.manual_seed(0)
    encoder = NextClickLSTM(EncoderConfig(384, hidden_size=16, head_size=8))  # built here: no record, taken as given
    single = gym.make("DriftingUser-v0", params=params, encoder=encoder)
    vector = gym.make_vec("DriftingUser-v0", num_envs=1, params=params, device="cpu", encoder=encoder)
    obs_s, _ = single.reset(seed=5)
    obs_v, _ = vector.reset(seed=5)
    for action in range(30):
        obs_s, *_ = single.step(action)
        obs_v, *_ = vector.step(np.array([action]))
        np.testing.assert_allclose(obs_v[0], obs_s, atol=1e-6)


def test_encoder_file_round_trip_and_refusal_for_another_catalog(tmp_path):
    catalog = recenv.default_catalog()
    torch.manual_seed(0)
    model = NextClickLSTM(EncoderConfig(catalog.embedding_dim, hidden_size=16, head_size=8))
    path = save_encoder(model, tmp_path / "encoder.pt", catalog, UserModelParams())
    loaded = load_encoder(path, catalog, UserModelParams())
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor)
    other = recenv.Catalog.from_embeddings(catalog.embeddings[:50], catalog.texts[:50], latent_dim=8)
    with pytest.raises(EncoderMismatchError, match="trained for another catalog"):
        load_encoder(path, other)
    (tmp_path / "corrupt.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="unreadable"):
        load_encoder(tmp_path / "corrupt.pt", catalog)
    with pytest.raises(FileNotFoundError):
        gym.make("DriftingUser-v0", encoder=tmp_path / "missing.pt")
    env = gym.make("DriftingUser-v0", encoder=path)  # a file of the same dynamics (preset mixed) is accepted
    assert env.observation_space.shape == (18,)
    with pytest.raises(EncoderMismatchError, match="other dynamics"):
        gym.make("DriftingUser-v0", preset="none", encoder=path)


def test_encoder_argument_needs_the_encoded_mode():
    with pytest.raises(ValueError, match="only used with obs_mode='encoded'"):
        recenv.DriftingUserEnv(obs_mode="history", encoder="weights.pt")


def test_logs_record_warmup_and_sessions_and_survive_a_round_trip(tmp_path):
    config = recenv.EnvConfig(device="cpu")
    log = make_logs(config, num_users=40, seed=0, concurrent_users=16, progress=False)
    assert log.num_users == 40
    sessions = log.sessions()
    warmup = sessions.mask & (sessions.steps < 0)
    assert (warmup.sum(1) == 20).all()  # every user's 20-step past is in the log
    in_session = log.step >= 0
    assert np.all((log.propensity[in_session] > 0) & (log.propensity[in_session] <= 1))
    assert np.isnan(log.propensity[~in_session]).all()
    # Each user's steps are consecutive: -20..-1, then 0..length-1.
    for user in np.unique(log.user)[:5]:
        steps = log.step[log.user == user]
        np.testing.assert_array_equal(steps, np.arange(-20, len(steps) - 20))
    path = log.save(tmp_path / "log.npz")
    again = InteractionLog.load(path)
    np.testing.assert_array_equal(again.item, log.item)
    assert again.metadata["catalog_fingerprint"] == recenv.default_catalog().fingerprint
    assert again.metadata["policy"].startswith("deployed")
    assert [r["users"] for r in again.metadata["rounds"]] == [8, 32]  # exploration, then deployment


def test_logged_clicks_follow_the_logged_true_probabilities():
    config = recenv.EnvConfig(device="cpu")
    log = make_logs(config, num_users=600, seed=1, concurrent_users=256, progress=False)
    rows = log.step >= 0
    assert abs(log.click[rows].mean() - log.click_probability[rows].mean()) < 0.01


def test_auc_and_log_loss_match_hand_computed_values():
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([0, 0, 1, 1])
    # Pairs (pos, neg): (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4) → 3 of 4.
    assert auc(scores, labels) == pytest.approx(0.75)
    assert auc(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)  # a tie counts one half
    assert log_loss(np.array([0.9, 0.2]), np.array([1, 0])) == pytest.approx(-(np.log(0.9) + np.log(0.8)) / 2)


def test_a_short_training_run_beats_item_popularity():
    """A few seconds of training on a small log (1,500 users) already predicts clicks far better
    than item popularity, in a world where clicks depend on the user's taste alone (no drift,
    satiation or clickbait): the LSTM has to read the taste from the history to win. Measured:
    AUC about 0.84 against 0.69 for popularity."""
    catalog = recenv.default_catalog()
    config = recenv.EnvConfig(device="cpu", preset="none", params={"satiation": False, "clickbait": False})
    log = make_logs(config, 1500, seed=0, progress=False)
    train_log, validation_log, test_log = split_users(log, (0.7, 0.1, 0.2), seed=0)
    config = TrainingConfig(max_epochs=10, hidden_size=32, head_size=32, learning_rate=0.01, device="cpu")
    model, history = train_encoder(train_log, validation_log, catalog, config, progress=False)
    metrics = evaluate(model, train_log, test_log, catalog)
    assert metrics["lstm"]["auc"] > metrics["popularity"]["auc"] + 0.05
    assert metrics["lstm"]["log_loss"] < metrics["popularity"]["log_loss"]
    assert history["best_epoch"] >= 1


def test_reference_predictors_use_only_training_information():
    catalog = recenv.default_catalog()
    log = make_logs(recenv.EnvConfig(preset="none"), 300, seed=2, progress=False)
    popularity = PopularityPredictor().fit(log, catalog.num_items)
    assert popularity.rates.shape == (500,) and np.all((popularity.rates > 0) & (popularity.rates < 1))
    sessions = log.sessions()
    static = StaticProfilePredictor(catalog.embeddings).fit(sessions)
    predictions = static.predict(sessions)
    rows = sessions.mask & (sessions.steps >= 0)
    # The static profile ranks clicks above non-clicks (users keep their interest with no drift).
    assert auc(predictions[rows], sessions.clicks[rows]) > 0.55
    assert static.coefficients[0] > 0


def test_building_an_env_of_new_dynamics_never_trains_and_names_the_command_that_does(monkeypatch, tmp_path):
    import recenv.offline.encoder_training as training

    monkeypatch.setenv("RECENV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(training, "train_on_first_use", lambda *a, **k: pytest.fail("building an env trained"))
    with pytest.raises(MissingEncoderWeights) as missing:
        gym.make("DriftingUser-v0", preset="smooth", params={"clickbait": False})
    message = str(missing.value)
    assert "recenv encoder prepare --preset smooth --params '{\"clickbait\": false}'" in message
    assert "recenv.offline.prepare_encoder(config)" in message and "(about 4 minutes on one CPU thread" in message
    assert missing.value.path.parent == tmp_path / "encoders" and not missing.value.path.exists()
    assert str(pickle.loads(pickle.dumps(missing.value))) == message  # as it comes back from a worker process
    # A catalog given as an object has no command line: the message names the function only.
    base = recenv.default_catalog()
    catalog = recenv.Catalog.from_embeddings(base.embeddings[:60], base.texts[:60], latent_dim=8)
    with pytest.raises(MissingEncoderWeights, match=r"prepare_encoder\(config\) in Python \(a catalog given as an object"):
        recenv.DriftingUserVectorEnv(num_envs=2, catalog=catalog)


def test_the_prepare_command_line_names_the_dynamics_it_prepares():
    from recenv.encoder import prepare_command

    assert prepare_command(recenv.EnvConfig(preset="none")) == "recenv encoder prepare --preset none"
    # A full user model is named by the fields where it differs from its preset's.
    full = recenv.EnvConfig(preset="mixed", params=recenv.SYNTHETIC_PRESETS["smooth"], slate_size=3, slate_history="shown",
                            slate_position_decay=0.25)
    assert prepare_command(full) == ("recenv encoder prepare --preset mixed --params '{\"regime_shifts\": false}' "
                                     "--slate-size 3 --slate-history shown --slate-position-decay 0.25")
    base = recenv.default_catalog()
    catalog = recenv.Catalog.from_embeddings(base.embeddings[:60], base.texts[:60], latent_dim=8)
    assert prepare_command(recenv.EnvConfig(catalog=catalog)) is None


@pytest.mark.first_use_training
def test_prepare_encoder_trains_new_dynamics_once_and_caches_them_under_their_key(monkeypatch, tmp_path):
    import recenv.offline.encoder_training as training
    from recenv.encoder import dynamics_key
    from recenv.offline import prepare_encoder

    monkeypatch.setenv("RECENV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(training, "FIRST_USE_USERS", 200)
    monkeypatch.setattr(training, "FIRST_USE_EPOCHS", 1)
    calls = []
    original = training.train_on_first_use
    monkeypatch.setattr(training, "train_on_first_use", lambda *a, **k: calls.append(1) or original(*a, **k))
    base = recenv.default_catalog()
    catalog = recenv.Catalog.from_embeddings(base.embeddings[:60], base.texts[:60], topics=base.topics[:60].tolist(), latent_dim=8)
    config = recenv.EnvConfig(catalog=catalog)
    with pytest.raises(MissingEncoderWeights):
        gym.make("DriftingUser-v0", config=config)
    path = prepare_encoder(config)
    cached = sorted((tmp_path / "encoders").glob("*.pt"))
    assert calls == [1] and cached == [path]
    assert path.name.startswith(dynamics_key(catalog, UserModelParams()))
    env = gym.make("DriftingUser-v0", config=config)
    assert env.unwrapped.encoder.dynamics_key == dynamics_key(catalog, UserModelParams())
    obs, _ = env.reset(seed=0)
    assert obs.shape == (66,)
    assert prepare_encoder(config) == path and calls == [1]  # cached now: not trained again
    # The same catalog with one user-model switch off is other dynamics: its own encoder.
    other_config = config.replace(params={"satiation": False})
    with pytest.raises(MissingEncoderWeights):
        gym.make("DriftingUser-v0", config=other_config)
    assert prepare_encoder(other_config) != path and calls == [1, 1]
    other = gym.make("DriftingUser-v0", config=other_config)
    assert other.unwrapped.encoder.dynamics_key != env.unwrapped.encoder.dynamics_key


@pytest.mark.first_use_training
def test_the_command_the_error_names_prepares_the_encoder_the_env_then_finds(monkeypatch, tmp_path, capsys):
    import recenv.offline.encoder_training as training

    monkeypatch.setenv("RECENV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(training, "FIRST_USE_USERS", 100)
    monkeypatch.setattr(training, "FIRST_USE_EPOCHS", 1)
    with pytest.raises(MissingEncoderWeights) as missing:
        recenv.DriftingUserVectorEnv(num_envs=2, preset="none", params={"satiation": False}, device="cpu")
    command = shlex.split(str(missing.value).split("`")[1])
    assert command[:3] == ["recenv", "encoder", "prepare"]
    training.main(command[2:])
    assert f"encoder weights: {missing.value.path}" in capsys.readouterr().out
    envs = recenv.DriftingUserVectorEnv(num_envs=2, preset="none", params={"satiation": False}, device="cpu")
    assert envs.encoder.dynamics_key == missing.value.key
    with pytest.raises(SystemExit):
        training.main(["prepare", "--params", "[1, 2]"])
    assert "expected a JSON object of user-model fields" in capsys.readouterr().err


def test_a_test_that_would_train_by_accident_fails_saying_so(monkeypatch, tmp_path):
    # The conftest guard: without the first_use_training mark, preparing new dynamics is refused.
    from recenv.offline import prepare_encoder

    monkeypatch.setenv("RECENV_CACHE_DIR", str(tmp_path))
    with pytest.raises(RuntimeError, match="this test would train an encoder .*overrides \\{'patience': False\\}"):
        prepare_encoder(recenv.EnvConfig(preset="none", params={"patience": False}))


def test_prepare_encoder_does_nothing_for_shipped_dynamics_and_other_observations(monkeypatch, tmp_path):
    import recenv.offline.encoder_training as training
    from recenv.encoder import shipped_encoder_path
    from recenv.offline import prepare_encoder

    monkeypatch.setenv("RECENV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(training, "train_on_first_use", lambda *a, **k: pytest.fail("prepare_encoder trained"))
    for preset in recenv.SYNTHETIC_PRESETS:
        assert prepare_encoder(recenv.EnvConfig(preset=preset)) == shipped_encoder_path(preset)
    assert prepare_encoder(recenv.EnvConfig(params={"satiation": False}, obs_mode="history")) is None
    assert prepare_encoder(recenv.EnvConfig(encoder=tmp_path / "mine.pt")) == tmp_path / "mine.pt"
    assert not (tmp_path / "encoders").exists()


def test_the_encoder_layer_only_reads_weights_and_names_where_they_are_missing(monkeypatch, tmp_path):
    from recenv.encoder import MissingEncoderWeights, resolve_encoder

    monkeypatch.setenv("RECENV_CACHE_DIR", str(tmp_path))
    base = recenv.default_catalog()
    catalog = recenv.Catalog.from_embeddings(base.embeddings[:60], base.texts[:60], latent_dim=8)
    with pytest.raises(MissingEncoderWeights, match="no encoder weights for these dynamics") as missing:
        resolve_encoder(catalog, UserModelParams(), None, torch.device("cpu"))
    assert missing.value.path.parent == tmp_path / "encoders" and not missing.value.path.exists()


@pytest.mark.slow
def test_the_training_command_reproduces_the_shipped_weights(tmp_path):
    """Training is seeded and CPU-deterministic: the command that ``ship`` runs for preset ``none``,
    written elsewhere, gives the shipped weights bit for bit (about 2 minutes)."""
    from recenv.catalog import default_catalog
    from recenv.encoder import shipped_encoder_path
    from recenv.offline.encoder_training import main

    main(["train", "--preset", "none", "--out", str(tmp_path / "encoder.pt")])
    catalog = default_catalog()
    params = recenv.EnvConfig(preset="none").user_model
    shipped = load_encoder(shipped_encoder_path("none"), catalog, params)
    rebuilt = load_encoder(tmp_path / "encoder.pt", catalog, params)
    for (name, expected), (_, actual) in zip(shipped.state_dict().items(), rebuilt.state_dict().items(), strict=True):
        assert torch.equal(expected, actual), name
