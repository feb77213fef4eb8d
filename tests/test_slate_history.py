"""Histories that record whole slates (``slate_history="shown"``): what they record, by hand; the
same simulation as the chosen-item history; the encoder that reads them, matched by its own key
and trained screen by screen on logs of slates."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import recenv
from agents.slate_q import SlateQAgent
from benchmarks.protocol import slate_scenarios
from recenv import DriftingUserEnv, DriftingUserVectorEnv, EnvConfig
from recenv.encoder import (
    EncoderConfig,
    EncoderMismatchError,
    MissingEncoderWeights,
    NextClickLSTM,
    cached_encoder_path,
    dynamics_key,
    load_encoder,
    resolve_encoder,
    save_encoder,
)
from recenv.offline.encoder_training import TrainingConfig, evaluate, previous_screens, split_users, train_encoder
from recenv.offline.logging_policies import DeployedPolicy, UniformRandomPolicy, make_logs
from recenv.offline.logs import LOG_FORMAT_VERSION, InteractionLog, collect_logs
from recenv.public_view import public_view

SHOWN = {"slate_size": 4, "slate_history": "shown"}


def _small_encoder(seed: int = 0) -> NextClickLSTM:
    torch.manual_seed(seed)
    return NextClickLSTM(EncoderConfig(384, hidden_size=8, head_size=8)).eval().requires_grad_(False)


# ---------------------------------------------------------------- the setting


def test_the_setting_is_checked_and_recorded_only_when_it_is_not_the_default():
    with pytest.raises(ValueError, match="unknown slate_history 'all'"):
        EnvConfig(slate_size=3, slate_history="all")
    with pytest.raises(ValueError, match="needs slate_size > 1"):
        EnvConfig(slate_history="shown")
    assert "slate_history" not in EnvConfig(slate_size=3).to_record()
    assert EnvConfig(slate_size=3).history_record is None
    shown = EnvConfig(**SHOWN)
    assert shown.to_record()["slate_history"] == "shown"
    assert EnvConfig.from_record(shown.to_record()) == shown
    assert shown.history_record == {"slate_history": "shown", "slate_size": 4, "slate_position_decay": 0.5}


# ---------------------------------------------------------------- what the history records


def test_the_history_records_the_slate_in_slot_order_with_the_click_on_the_chosen_slot():
    env = DriftingUserEnv(obs_mode="ids", history_length=6, **SHOWN)
    observation, info = env.reset(seed=3)
    k = 6
    before_items = observation[:k].copy()
    seen_click = seen_no_click = False
    for _ in range(60):
        slate = env.np_random.choice(env.catalog.num_items, size=4, replace=False)
        observation, reward, terminated, truncated, info = env.step(slate)
        items, clicks = observation[:k], observation[k:2 * k]
        # The oldest four rows dropped out; the two left are the newest two of before.
        np.testing.assert_array_equal(items[:2], before_items[4:])
        np.testing.assert_array_equal(items[2:], slate)
        expected = np.zeros(4, dtype=np.int64)
        if info["chosen_slot"] >= 0:
            expected[info["chosen_slot"]] = 1
            assert info["recorded_item"] == slate[info["chosen_slot"]]
            seen_click = True
        else:
            seen_no_click = True
        np.testing.assert_array_equal(clicks[2:], expected)
        assert reward == expected.sum()
        np.testing.assert_array_equal(env.unwrapped.recent_items(), items)
        np.testing.assert_array_equal(env.unwrapped.recent_clicks(), clicks)
        before_items = items.copy()
        if terminated or truncated:
            break
    assert seen_click and seen_no_click


def test_a_history_shorter_than_the_slate_keeps_its_last_items():
    env = DriftingUserVectorEnv(num_envs=2, obs_mode="ids", history_length=3, **SHOWN)
    env.reset(seed=0)
    slates = np.array([[5, 6, 7, 8], [9, 10, 11, 12]])
    observation, *_, info = env.step(slates)
    np.testing.assert_array_equal(observation[:, :3], slates[:, 1:])
    chosen = info["chosen_slot"]
    clicks = np.zeros((2, 4), dtype=np.int64)
    clicks[np.arange(2)[chosen >= 0], chosen[chosen >= 0]] = 1
    np.testing.assert_array_equal(observation[:, 3:6], clicks[:, 1:])


def test_what_the_history_records_changes_nothing_in_the_simulation():
    runs = {}
    for history in ("chosen", "shown"):
        env = DriftingUserVectorEnv(num_envs=16, obs_mode="ids", slate_size=4, slate_history=history)
        env.reset(seed=11)
        rng = np.random.default_rng(0)
        trace = []
        for _ in range(40):
            _, reward, terminated, truncated, info = env.step(rng.integers(env.catalog.num_items, size=(16, 4)))
            trace.append((reward, terminated, truncated, info["chosen_slot"], info["slot_click_probability"],
                          info["patience"]))
        runs[history] = trace
    for a, b in zip(runs["chosen"], runs["shown"]):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_the_history_observation_rows_are_the_recorded_slates():
    env = DriftingUserVectorEnv(num_envs=3, obs_mode="history", history_length=8, **SHOWN)
    env.reset(seed=1)
    slates = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])
    observation, *_ = env.step(slates)
    rows = recenv.unflatten_history(observation, 8)
    embeddings = env.catalog.embeddings
    np.testing.assert_allclose(rows[:, 4:, :384], embeddings[slates], rtol=1e-6)
    np.testing.assert_array_equal(rows[:, 4:, 385], 1.0)  # valid
    np.testing.assert_array_equal(rows[:, 4:, 384], env.recent_clicks()[:, 4:])


def test_the_encoded_observation_reads_the_slate_one_interaction_after_another():
    encoder = _small_encoder()
    env = DriftingUserVectorEnv(num_envs=5, encoder=encoder, **SHOWN)
    observation, _ = env.reset(seed=2)
    embeddings = torch.tensor(np.array(env.catalog.embeddings))
    warmup_items, warmup_clicks = env.warmup_history()
    _, (h, c) = encoder.encode(embeddings[torch.as_tensor(warmup_items)], torch.as_tensor(warmup_clicks))
    np.testing.assert_allclose(observation[:, :8], h.numpy(), atol=1e-6)
    slates = np.random.default_rng(0).integers(env.catalog.num_items, size=(5, 4))
    observation, *_ = env.step(slates)
    clicks = torch.as_tensor(env.recent_clicks()[:, -4:])
    for slot in range(4):  # one LSTM step per shown item, in slot order
        h, c = encoder.step(embeddings[torch.as_tensor(slates[:, slot])], clicks[:, slot], (h, c))
    np.testing.assert_allclose(observation[:, :8], h.numpy(), atol=1e-6)


@pytest.mark.parametrize("obs_mode", ["history", "ids"])
def test_the_checkers_pass_with_histories_of_slates(obs_mode):
    check_env(gym.make("DriftingUser-v0", obs_mode=obs_mode, **SHOWN).unwrapped, skip_render_check=True)
    env = DriftingUserVectorEnv(num_envs=4, obs_mode=obs_mode, **SHOWN)
    observation, _ = env.reset(seed=0)
    assert env.single_observation_space.contains(observation[0])
    for _ in range(30):
        observation, *_ = env.step(env.action_space.sample())
        assert all(env.single_observation_space.contains(row) for row in observation)


def test_the_checker_passes_encoded_with_an_encoder_of_slate_histories():
    check_env(gym.make("DriftingUser-v0", encoder=_small_encoder(), **SHOWN).unwrapped, skip_render_check=True)


# ---------------------------------------------------------------- the matched encoder


def test_the_encoder_key_names_the_history_only_when_it_records_slates():
    catalog, params = recenv.default_catalog(), recenv.UserModelParams()
    history = EnvConfig(**SHOWN).history_record
    assert dynamics_key(catalog, params, None) == dynamics_key(catalog, params)
    assert dynamics_key(catalog, params, history) != dynamics_key(catalog, params)
    other = EnvConfig(slate_size=5, slate_history="shown").history_record
    assert dynamics_key(catalog, params, other) != dynamics_key(catalog, params, history)
    assert cached_encoder_path(catalog, params, history) != cached_encoder_path(catalog, params)


def test_a_one_item_encoder_is_refused_for_histories_of_slates_and_the_reverse(tmp_path):
    env = DriftingUserEnv(**SHOWN, obs_mode="ids")
    catalog, params, history = env.catalog, env.user_model, env.config.history_record
    with pytest.raises(MissingEncoderWeights, match="history .*slate_history") as missing:
        resolve_encoder(catalog, params, None, torch.device("cpu"), history)
    assert missing.value.path == cached_encoder_path(catalog, params, history)
    with pytest.raises(EncoderMismatchError, match="history: file one interaction per step"):
        DriftingUserEnv(**SHOWN, encoder=recenv.encoder.shipped_encoder_path("mixed"))
    slate_file = save_encoder(_small_encoder(), tmp_path / "slates.pt", catalog, params, history=history)
    assert load_encoder(slate_file, catalog, params, history=history).dynamics_key == dynamics_key(catalog, params, history)
    with pytest.raises(EncoderMismatchError, match="history: file .*shown"):
        DriftingUserEnv(encoder=slate_file)
    assert DriftingUserEnv(**SHOWN, encoder=slate_file).encoder.dynamics_key == dynamics_key(catalog, params, history)


@pytest.mark.first_use_training
def test_prepare_encoder_trains_an_encoder_for_the_slate_history_and_caches_it_under_its_key(monkeypatch):
    """The wiring only (the real first-use training takes minutes): prepare_encoder asks for weights
    of these dynamics and this history, and the env uses what was stored under their key."""
    import recenv.offline.encoder_training as training
    from recenv.offline import prepare_encoder

    asked = []

    def train(config, path):
        asked.append((config.history_record, path))
        return save_encoder(_small_encoder(), path, config.catalog or recenv.default_catalog(), config.user_model,
                            history=config.history_record)

    monkeypatch.setattr(training, "train_on_first_use", train)
    with pytest.raises(MissingEncoderWeights, match="minutes on one CPU thread for slates.*--slate-size 4 --slate-history shown"):
        DriftingUserVectorEnv(num_envs=2, preset="smooth", **SHOWN)  # building an env never trains
    config = EnvConfig(preset="smooth", **SHOWN)
    path = prepare_encoder(config)
    env = DriftingUserVectorEnv(num_envs=2, config=config)
    expected = cached_encoder_path(env.catalog, env.user_model, config.history_record)
    assert asked == [(config.history_record, expected)] and path == expected
    assert env.encoder.dynamics_key == dynamics_key(env.catalog, env.user_model, config.history_record)
    assert prepare_encoder(config) == path and len(asked) == 1  # cached now: not trained again


# ---------------------------------------------------------------- logs of slates


def test_logs_of_slates_have_one_row_per_slot_and_at_most_one_click_per_screen():
    config = EnvConfig(device="cpu", **SHOWN)
    log = collect_logs(config, UniformRandomPolicy(seed=0, slate_size=4), num_users=20, seed=0, concurrent_users=8,
                       progress=False)
    session = log.step >= 0
    keys = np.stack([log.user[session], log.step[session]], 1)
    _, counts = np.unique(keys, axis=0, return_counts=True)
    assert (counts == 4).all()
    np.testing.assert_array_equal(log.slot[session], np.tile(np.arange(4), session.sum() // 4))
    clicks = log.click[session].reshape(-1, 4)
    assert clicks.sum(1).max() == 1 and clicks.sum() > 0
    np.testing.assert_allclose(log.propensity[session], 1.0 / 500)
    probabilities = log.click_probability[session].reshape(-1, 4)
    assert (probabilities.sum(1) < 1.0).all()  # the no-click option keeps some probability
    assert (log.slot[~session] == 0).all() and log.metadata["history"] == config.history_record
    public = public_view(log)  # the slot is what the recommender logged; the true probabilities are not
    np.testing.assert_array_equal(public.slot, log.slot)
    np.testing.assert_array_equal(public.sessions().slots, log.sessions().slots)
    with pytest.raises(PermissionError):
        public.click_probability  # noqa: B018


def test_make_logs_logs_slates_only_for_histories_of_slates():
    one_item = make_logs(EnvConfig(slate_size=4), 10, seed=0, progress=False)
    assert (one_item.slot == 0).all()
    shown = make_logs(EnvConfig(**SHOWN), 10, seed=0, progress=False)
    assert shown.slot.max() == 3 and "slates of 4" in shown.metadata["policy"]


def test_slate_propensities_are_the_probabilities_of_each_item_in_each_slot():
    from test_logging_policies import _PublicRecordOnly, _small_lstm

    from recenv.offline.logging_policies import ContentProfileScorer, LSTMScorer

    """Each policy is called on a view of the 3 users repeated 10,000 times (every user and slot is
    drawn independently, and the copies share their record, so one call is 10,000 slates per user),
    10 calls: n = 100,000 draws per user and slot. The standard error of a frequency is at most
    sqrt(0.25 / n) = 0.0016, so the tolerance 0.007 is 4.4 standard errors (a false failure over the
    3 × 54 cells has probability < 0.002); a propensity off by 0.015 in one cell is caught with
    probability > 0.99, and popularity without its +1 (items 0 and 5 off by 0.0095 in all 9 user
    slots, each caught with probability 0.94) with probability > 0.999."""
    view = _PublicRecordOnly()
    copies, calls = 10_000, 10
    view.num_users = 3 * copies
    for name in ("recent_items", "recent_clicks", "session_steps", "session_clicks"):
        setattr(view, name, getattr(view, name).repeat((copies,) + (1,) * (getattr(view, name).dim() - 1)))
    policies = [
        DeployedPolicy(6, seed=0, slate_size=3),
        DeployedPolicy(6, popularity=np.arange(6, dtype=float), scorer=ContentProfileScorer(np.eye(6, dtype=np.float32)),
                       seed=0, slate_size=3),
        DeployedPolicy(6, scorer=LSTMScorer(_small_lstm(6), np.eye(6, dtype=np.float32)), seed=0, slate_size=3),
    ]
    users, slots = np.meshgrid(np.tile(np.arange(3), copies), np.arange(3), indexing="ij")
    for policy in policies:
        counts = np.zeros(3 * 3 * 6)
        reported = np.full((3, 3, 6), np.nan, dtype=np.float32)
        for _ in range(calls):
            actions, propensity = policy(view)
            assert actions.shape == propensity.shape == (3 * copies, 3)
            counts += np.bincount(((users * 3 + slots) * 6 + actions).ravel(), minlength=3 * 3 * 6)
            reported[users, slots, actions] = propensity
            np.testing.assert_array_equal(propensity, reported[users, slots, actions])  # one per user, slot and item
        frequency = counts.reshape(3, 3, 6) / (copies * calls)
        assert (frequency > 0).all()  # the random share shows every item in every slot with probability >= 0.05
        np.testing.assert_allclose(frequency, reported, atol=0.007)
        np.testing.assert_allclose(reported.sum(2), 1.0, atol=1e-5)


def test_logs_keep_the_slot_on_disk_and_read_logs_from_before_slates(tmp_path):
    log = collect_logs(EnvConfig(device="cpu", **SHOWN), UniformRandomPolicy(seed=0, slate_size=4), num_users=4,
                       seed=0, concurrent_users=4, progress=False)
    back = InteractionLog.load(log.save(tmp_path / "slates.npz"))
    np.testing.assert_array_equal(back.slot, log.slot)
    assert LOG_FORMAT_VERSION == 2
    old = {name: getattr(log, name) for name in ("user", "step", "item", "click", "propensity", "click_probability")}
    np.savez(tmp_path / "v1.npz", metadata=np.array(json.dumps({"format_version": 1})), **old)
    assert (InteractionLog.load(tmp_path / "v1.npz").slot == 0).all()


# ---------------------------------------------------------------- training screen by screen


def test_previous_screens_by_hand():
    steps = np.array([[-2, -1, 0, 0, 0, 1, 1, 1], [-2, -1, 0, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(previous_screens(steps), [[-1, 0, 1, 1, 1, 4, 4, 4], [-1, 0, 1, 1, 1, 1, 1, 1]])
    assert previous_screens(np.array([[-2, -1, 0, 1, 2]])) is None
    # Padding (steps 0 after a session's end) is no screen: a one-item log stays one item per screen.
    padded = np.array([[-1, 0, 1, 0, 0, 0], [-1, 0, 1, 2, 3, 4]])
    assert previous_screens(padded) is not None  # read without the mask, the padding looks like one screen
    assert previous_screens(padded, np.array([[True, True, True, False, False, False], [True] * 6])) is None


def test_one_item_logs_are_predicted_by_the_one_item_click_model_exactly(one_torch_thread):
    from recenv.offline.encoder_training import predict_sessions

    log = make_logs(EnvConfig(), 30, seed=0, progress=False)
    sessions = log.sessions()
    model = _small_encoder()
    embeddings = torch.tensor(np.array(recenv.default_catalog().embeddings))
    predicted = predict_sessions(model, sessions, embeddings, batch_size=1_000)  # one batch, shortest first
    order = np.argsort(sessions.mask.sum(1), kind="stable")
    with torch.no_grad():  # the same batch: the same bits (the sessions end at different steps, so there is padding)
        expected = torch.sigmoid(model.sequence_logits(embeddings[torch.as_tensor(sessions.items[order]).clamp_min(0)],
                                                       torch.as_tensor(sessions.clicks[order]))).numpy()
    np.testing.assert_array_equal(predicted[order][sessions.mask[order]], expected[sessions.mask[order]])


def test_an_impression_is_predicted_from_the_screens_before_it_not_from_its_own():
    model = _small_encoder()
    embeddings = torch.randn(1, 7, 384)
    steps = np.array([[-1, 0, 0, 0, 1, 1, 1]])
    previous = torch.as_tensor(previous_screens(steps))
    clicks = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    logits = model.sequence_logits(embeddings, clicks, previous)
    other_in_screen = clicks.clone()
    other_in_screen[0, 2], other_in_screen[0, 3] = 0.0, 1.0  # another item of screen 0 chosen
    changed = model.sequence_logits(embeddings, other_in_screen, previous)
    np.testing.assert_array_equal(changed[0, :4].numpy(), logits[0, :4].numpy())  # screen 0 unchanged
    assert not torch.equal(changed[0, 4:], logits[0, 4:])  # screen 1 reads screen 0's response
    # Without screens each interaction reads the ones just before it (the one-item default).
    np.testing.assert_allclose(model.sequence_logits(embeddings, clicks).numpy(),
                               model.sequence_logits(embeddings, clicks, torch.arange(-1, 6)[None]).numpy(), atol=1e-6)


def test_the_screen_choice_model_by_hand():
    from recenv.offline.encoder_training import screen_choice_log_probabilities, screen_keys

    steps = np.array([[-1, 0, 0, 0, 1, 1]])
    items = np.array([[9, 3, 4, 3, 5, 6]])
    keys, repeated = screen_keys(steps, items)
    np.testing.assert_array_equal(keys, [[0, 1, 1, 1, 4, 4]])
    np.testing.assert_array_equal(repeated, [[False, False, False, True, False, False]])
    logits = torch.tensor([[0.3, np.log(2.0), np.log(3.0), 5.0, 0.0, 0.0]])
    available = torch.as_tensor(~repeated)
    log_probability, normaliser = screen_choice_log_probabilities(logits, torch.as_tensor(keys), available)
    p = torch.exp(log_probability)[0].numpy()
    # One item: σ(0.3). The screen [3, 4, 3]: e^u = 2, 3 and the repeat is empty: 2/6, 3/6, 0.
    np.testing.assert_allclose(p, [1 / (1 + np.exp(-0.3)), 2 / 6, 3 / 6, 0.0, 1 / 3, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(normaliser[[0, 1, 4]].numpy(), [np.log1p(np.exp(0.3)), np.log(6.0), np.log(3.0)],
                               rtol=1e-6)
    big = screen_choice_log_probabilities(torch.tensor([[200.0, 199.0]]), torch.tensor([[0, 0]]),
                                          torch.tensor([[True, True]]))[0]
    assert torch.isfinite(big).all()  # stable for large utilities


def test_an_encoder_trains_and_is_evaluated_on_logs_of_slates(one_torch_thread):
    config = EnvConfig(**SHOWN)
    log = make_logs(config, 60, seed=0, progress=False)
    train, validation, test = split_users(log, (0.6, 0.2, 0.2), seed=0)
    model, history = train_encoder(train, validation, recenv.default_catalog(),
                                   TrainingConfig(hidden_size=8, head_size=8, max_epochs=2, device="cpu"), progress=False)
    assert history["epochs_run"] == 2 and np.isfinite(history["validation_loss"]).all()
    assert len(history["slot_bias"]) == 4 and history["slot_bias"][0] == 0.0
    metrics = evaluate(model, train, test, recenv.default_catalog(), history["slot_bias"])
    assert 0.0 < metrics["lstm"]["log_loss"] < 1.0 and 0.5 < metrics["true_probability"]["auc"] <= 1.0
    assert metrics["lstm_without_position"]["log_loss"] != metrics["lstm"]["log_loss"]


def test_position_terms_take_up_what_the_slot_explains(one_torch_thread):
    """Hand-built logs in which only the first slot is ever clicked (half the time), whatever the
    item: the position terms of the other slots go far below 0, and the model's own scores, read
    without them, are those of the first slot, not the average over slots."""
    rng = np.random.default_rng(0)
    users, screens, k = 120, 6, 3
    rows = []
    for user in range(users):
        rows.append((user, -1, 0, rng.integers(50), 0, np.nan))  # a one-row past
        for step in range(screens):
            first_clicked = rng.random() < 0.5
            for slot in range(k):
                rows.append((user, step, slot, rng.integers(50), int(slot == 0 and first_clicked), 1 / 50))
    user, step, slot, item, click, propensity = map(np.array, zip(*rows))
    log = InteractionLog(user=user, step=step, item=item, click=click, propensity=propensity,
                         click_probability=np.full(len(user), np.nan), slot=slot)
    train, validation = split_users(log, (0.8, 0.2), seed=0)
    catalog = recenv.default_catalog()
    model, history = train_encoder(train, validation, catalog,
                                   TrainingConfig(hidden_size=8, head_size=8, max_epochs=15, patience=15, batch_size=4,
                                                  learning_rate=0.03, device="cpu"),
                                   progress=False)
    assert history["slot_bias"][0] == 0.0 and max(history["slot_bias"][1:]) < -2.0
    sessions = validation.sessions()
    first = sessions.mask & (sessions.steps >= 0) & (sessions.slots == 0)
    embeddings = torch.tensor(np.array(catalog.embeddings))
    with torch.no_grad():
        logits = model.sequence_logits(embeddings[torch.as_tensor(sessions.items).clamp_min(0)],
                                       torch.as_tensor(sessions.clicks), torch.as_tensor(previous_screens(sessions.steps)))
    # Without the position terms the scores would fit the overall rate, 1/6 of impressions clicked;
    # with them σ(the model's own logit) reads as the first slot's rate (0.5), up to its overfitting.
    assert torch.sigmoid(logits)[torch.as_tensor(first)].mean() > 0.3


# ---------------------------------------------------------------- agents and scripts


def test_slate_q_finds_the_chosen_item_in_a_history_of_slates():
    env = DriftingUserVectorEnv(num_envs=6, encoder=_small_encoder(), **SHOWN)
    agent = SlateQAgent(public_view(env))
    agent.bind(public_view(env))
    env.reset(seed=0)
    for _ in range(20):
        _, _, _, _, info = env.step(np.random.default_rng(0).integers(env.catalog.num_items, size=(6, 4)))
        recorded = agent._recorded_items(6)
        chosen = info["chosen_slot"]
        np.testing.assert_array_equal(recorded[chosen >= 0], info["recorded_item"][chosen >= 0])
        assert (recorded[chosen < 0] == -1).all()


def test_slate_scenarios_and_the_command_line_name_the_history():
    assert list(slate_scenarios(["mixed"], 10, "shown")) == ["mixed-slate10-shown"]
    assert slate_scenarios(["mixed"], 10, "shown")["mixed-slate10-shown"].slate_history == "shown"
    assert list(slate_scenarios(["mixed"], 10)) == ["mixed-slate10"]
    from benchmarks.command_line import main

    with pytest.raises(SystemExit):
        main(["compare", "--quick", "--slate-history", "shown"])


def test_the_service_refuses_agents_of_slate_envs():
    from agents import SupervisedLSTMAgent
    from serving.recommender import ServedRecommender, UnservableAgentError

    env = DriftingUserEnv(slate_size=3, device="cpu")
    with pytest.raises(UnservableAgentError, match="slates of 3 items"):
        ServedRecommender(SupervisedLSTMAgent(public_view(env)), "SupervisedLSTMAgent", env, "test")


# ---------------------------------------------------------------- the within-screen AUC


def _hand_built_log() -> InteractionLog:
    # user 0: a warm-up row (ignored), a screen [1, 2, 3] with item 2 chosen, a screen without a
    # click (ignored); user 1: a screen [4, 4, 5] with the first 4 chosen (the repeat is left out).
    rows = [(0, -1, 0, 7, 1), (0, 0, 0, 1, 0), (0, 0, 1, 2, 1), (0, 0, 2, 3, 0), (0, 1, 0, 6, 0), (0, 1, 1, 8, 0),
            (1, 0, 0, 4, 1), (1, 0, 1, 4, 0), (1, 0, 2, 5, 0)]
    user, step, slot, item, click = map(np.array, zip(*rows))
    nan = np.full(len(user), np.nan)
    return InteractionLog(user=user, step=step, item=item, click=click, propensity=nan, click_probability=nan, slot=slot)


def test_the_screen_auc_by_hand():
    from recenv.offline.click_predictors import screen_auc

    log = _hand_built_log()
    by_item = {1: 0.1, 2: 0.5, 3: 0.9, 4: 0.3, 5: 0.3, 6: 0.0, 7: 0.0, 8: 0.0}
    scores = np.array([by_item[i] for i in log.item])
    # Pairs: 2 > 1 (win), 2 < 3 (loss), 4 = 5 (tie): 1.5 / 3.
    assert screen_auc(scores, log) == pytest.approx(0.5)
    scores[log.item == 3] = 0.2
    assert screen_auc(scores, log) == pytest.approx(2.5 / 3)
    with pytest.raises(ValueError, match="needs screens with a click"):
        columns = ("user", "step", "item", "click", "propensity", "click_probability", "slot")
        screen_auc(scores, InteractionLog(**{name: getattr(log, name)[:2] for name in columns}))


def test_the_chosen_item_history_of_a_log_of_slates_by_hand():
    from benchmarks.slate_history_encoders import chosen_history

    history = chosen_history(_hand_built_log())
    assert list(zip(history.user.tolist(), history.step.tolist(), history.item.tolist(), history.click.tolist())) == [
        (0, -1, 7, 1), (0, 0, 2, 1), (0, 1, 6, 0), (1, 0, 4, 1)]


def test_the_one_item_encoder_scores_each_screen_from_the_chosen_items_before_it():
    from benchmarks.slate_history_encoders import chosen_history_scores, shown_history_scores

    log = _hand_built_log()
    model = _small_encoder()
    embeddings = torch.randn(10, 384, generator=torch.Generator().manual_seed(0))
    scores = chosen_history_scores(model, log, embeddings)
    h = model.initial_state(1)
    h = model.step(embeddings[[7]], torch.tensor([1.0]), h)  # user 0's warm-up
    np.testing.assert_allclose(scores[1:4], model.click_logits(h[0], embeddings[[1, 2, 3]]).numpy(), atol=1e-6)
    h = model.step(embeddings[[2]], torch.tensor([1.0]), h)  # the chosen item of screen 0
    np.testing.assert_allclose(scores[4:6], model.click_logits(h[0], embeddings[[6, 8]]).numpy(), atol=1e-6)
    shown = shown_history_scores(model, log, embeddings)
    np.testing.assert_allclose(shown[1:4], scores[1:4], atol=1e-5)  # the same past before the first screen
    h = model.initial_state(1)
    for item, click in ((7, 1.0), (1, 0.0), (2, 1.0), (3, 0.0)):  # the warm-up and every item of screen 0
        h = model.step(embeddings[[item]], torch.tensor([click]), h)
    np.testing.assert_allclose(shown[4:6], model.click_logits(h[0], embeddings[[6, 8]]).numpy(), atol=1e-5)


def test_the_training_command_trains_an_encoder_of_whole_slates_that_the_shown_env_takes(tmp_path):
    """``encoder_training train --slate-size k --slate-history shown``: an encoder with another
    budget than first use's, written where asked, keyed by the history it reads (a tiny budget
    here); without ``--out`` it would overwrite nothing shipped: refused."""
    from recenv.offline.encoder_training import main, train_preset

    out = tmp_path / "shown.pt"
    main(["train", "--preset", "mixed", "--users", "40", "--epochs", "1", "--hidden-size", "8",
          "--slate-size", "4", "--slate-history", "shown", "--out", str(out)])
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["history_format"] == EnvConfig(**SHOWN).history_record
    assert len(report["history"]["slot_bias"]) == 4
    env = DriftingUserEnv(**SHOWN, encoder=str(out))
    assert env.encoder.config.hidden_size == 8
    with pytest.raises(EncoderMismatchError, match="history: file .*shown"):
        DriftingUserEnv(encoder=str(out))
    with pytest.raises(ValueError, match="give out=PATH"):
        train_preset("mixed", 40, slate_size=4, slate_history="shown")
