"""Inverse-propensity weights and calibration by item class, checked on hand-built cases."""

import numpy as np
import pytest
import torch

import recenv
from recenv.encoder import EncoderConfig, NextClickLSTM
from recenv.offline.encoder_training import (
    CLICKBAIT_THRESHOLD,
    TrainingConfig,
    catalog_calibration,
    evaluate,
    importance_weights,
    train_encoder,
)
from recenv.offline.logs import InteractionLog


def _log(users, steps, items, clicks, propensity, truth):
    return InteractionLog(user=users, step=steps, item=items, click=clicks, propensity=propensity,
                          click_probability=truth)


def test_importance_weights_are_uniform_over_propensity_capped_and_one_for_the_warmup():
    log = _log([0, 0, 0, 1], [-1, 0, 1, 0], [3, 4, 5, 6], [0, 1, 0, 1], [np.nan, 0.5, 0.002, 0.0005],
               [np.nan, 0.3, 0.3, 0.3])
    weights = importance_weights(log.sessions(), num_items=100, cap=10.0)
    # (1/100)/0.5 = 0.02; (1/100)/0.002 = 5; (1/100)/0.0005 = 20 → capped at 10; warm-up 1; padding 0.
    np.testing.assert_allclose(weights, [[1.0, 0.02, 5.0], [10.0, 0.0, 0.0]], rtol=1e-6)


def test_calibration_by_class_is_mean_predicted_minus_mean_true_probability():
    catalog = recenv.default_catalog()
    bait = int(np.flatnonzero(catalog.clickbait >= CLICKBAIT_THRESHOLD)[0])
    plain = int(np.flatnonzero(catalog.clickbait < CLICKBAIT_THRESHOLD)[0])
    # Training users 0–1 click the bait item 1 of 2 times, the plain item 1 of 2 times; test user 2.
    train = _log([0, 0, 1, 1], [0, 1, 0, 1], [bait, plain, bait, plain], [1, 0, 0, 1], [0.1] * 4, [0.5] * 4)
    test = _log([2, 2, 2], [0, 1, 2], [bait, plain, plain], [1, 0, 0], [0.1] * 3, [0.8, 0.2, 0.4])
    torch.manual_seed(0)
    metrics = evaluate(NextClickLSTM(EncoderConfig(catalog.embedding_dim, 8, 8)), train, test, catalog)
    truth = metrics["true_probability"]["calibration"]
    assert truth["clickbait"]["bias"] == 0.0 and truth["other"]["bias"] == 0.0
    assert (truth["clickbait"]["count"], truth["other"]["count"]) == (1, 2)
    popularity = metrics["popularity"]["calibration"]
    # Popularity predicts every item's smoothed training CTR, the same for both items here (1 of 2).
    rate = popularity["clickbait"]["predicted"]
    assert popularity["other"]["predicted"] == pytest.approx(rate)
    assert popularity["clickbait"]["bias"] == pytest.approx(rate - 0.8, abs=1e-6)
    assert popularity["other"]["bias"] == pytest.approx(rate - 0.3, abs=1e-6)


def test_catalog_calibration_of_a_model_that_always_says_yes():
    catalog = recenv.default_catalog()
    model = NextClickLSTM(EncoderConfig(catalog.embedding_dim, 8, 8))
    with torch.no_grad():
        model.user_bias.bias.fill_(60.0)  # σ(logit) = 1 for every item, whatever the history
        model.user_bias.weight.zero_()
    result = catalog_calibration(model, recenv.EnvConfig(preset="none"), num_users=20, steps=5, seed=0)
    for item_class in ("clickbait", "other"):
        assert result[item_class]["predicted"] == pytest.approx(1.0, abs=1e-6)
        assert 0.0 < result[item_class]["true"] < 1.0
        assert result[item_class]["bias"] == pytest.approx(1.0 - result[item_class]["true"], abs=1e-6)
    assert result["clickbait"]["true"] != result["other"]["true"]


def test_training_with_inverse_propensity_weights_runs_and_differs():
    catalog = recenv.default_catalog()
    from recenv.offline.encoder_training import split_users
    from recenv.offline.logging_policies import make_logs

    log = make_logs(recenv.EnvConfig(preset="none"), 200, seed=0, progress=False)
    train, validation = split_users(log, (0.8, 0.2), seed=0)
    config = TrainingConfig(max_epochs=1, hidden_size=8, head_size=8, device="cpu")
    plain, _ = train_encoder(train, validation, catalog, config, progress=False)
    weighted, _ = train_encoder(train, validation, catalog, TrainingConfig(**{**config.__dict__, "inverse_propensity": True}),
                                progress=False)
    differs = [not torch.equal(a, b) for a, b in zip(plain.state_dict().values(), weighted.state_dict().values())]
    assert any(differs)


def test_static_profiles_read_only_the_columns_that_hold_a_past():
    """The profile of a long logged session is that of its warm-up columns alone (the rest are
    neither read nor gathered: U·L·D floats would not fit in memory for long logs of slates)."""
    from recenv.offline.click_predictors import profiles_from_past

    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(6, 4))
    items = np.array([[0, 1, 2, 3, 4, 5, 5, 5], [2, 2, -1, 1, 3, 3, 3, 3]])
    clicks = np.array([[1, 0, 1, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]], dtype=float)
    past = np.zeros(items.shape, dtype=bool)
    past[:, :2] = True
    profiles = profiles_from_past(items, clicks, past, embeddings)
    expected = np.stack([embeddings[0], embeddings[2] + embeddings[2]])  # user 0's click; user 1 clicked none: all
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(profiles, expected, rtol=1e-12)
    assert profiles_from_past(items, clicks, np.zeros(items.shape, dtype=bool), embeddings).shape == (2, 4)
