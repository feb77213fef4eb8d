"""Hand-derived checks of every equation of the user model (docs/model.md), and of every switch."""

import math

import numpy as np
import pytest
import torch

from recenv import default_catalog
from recenv.dynamics import (
    ItemTable,
    PriorNoise,
    StepNoise,
    UserState,
    apply_response,
    click_logits,
    click_logits_all,
    interest_from_prior,
    sample_categorical,
    sample_click,
    take_rows,
)
from recenv.params import UserModelParams

ALL_OFF = dict(satiation=False, consumption_drift=False, exogenous_drift=False, regime_shifts=False, clickbait=False, patience=False,
               impression_fatigue=False)


@pytest.fixture(scope="module")
def items() -> ItemTable:
    return ItemTable.from_catalog(default_catalog())


def _state(interest, satiation=None, patience=30.0) -> UserState:
    interest = torch.as_tensor(np.asarray(interest, dtype=np.float32)).reshape(1, -1)
    satiation = torch.zeros_like(interest) if satiation is None else torch.as_tensor(np.asarray(satiation, dtype=np.float32)).reshape(1, -1)
    return UserState(interest, satiation, torch.tensor([float(patience)]), torch.tensor([0]))


def _noise(k: int, drift=None, shift_uniform=1.0, prior=None) -> StepNoise:
    drift = torch.zeros(1, k) if drift is None else torch.as_tensor(np.asarray(drift, dtype=np.float32)).reshape(1, k)
    return StepNoise(torch.tensor([0.5]), drift, torch.tensor([float(shift_uniform)]), prior)


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_click_probability_matches_the_formula(items):
    params = UserModelParams()
    z = items.latents.numpy().astype(np.float64)
    c = items.clickbait.numpy().astype(np.float64)
    theta = _unit(z[3] + 0.5 * z[40])
    satiation = 0.7 * z[3]
    state = _state(theta, satiation)
    for item in (3, 40, 77, 480):
        expected_u = (
            params.affinity_weight * theta @ z[item]
            - params.satiation_weight * max(0.0, satiation @ z[item])
            + params.clickbait_weight * c[item]
            + params.click_bias
        )
        u = click_logits(state, torch.tensor([item]), items, params).item()
        assert u == pytest.approx(expected_u, abs=1e-5)
        assert torch.sigmoid(torch.tensor(u)).item() == pytest.approx(_sigmoid(expected_u), abs=1e-6)
    # The all-items version agrees with the one-item version.
    everything = click_logits_all(state, items, params)[0]
    for item in (3, 40, 77, 480):
        assert everything[item].item() == pytest.approx(click_logits(state, torch.tensor([item]), items, params).item(), abs=1e-5)


def test_satiation_term_only_counts_when_positive(items):
    params = UserModelParams()
    z = items.latents.numpy()
    base = click_logits(_state(z[5]), torch.tensor([5]), items, params).item()
    negative = click_logits(_state(z[5], satiation=-z[5]), torch.tensor([5]), items, params).item()
    positive = click_logits(_state(z[5], satiation=z[5]), torch.tensor([5]), items, params).item()
    assert negative == pytest.approx(base, abs=1e-6)  # max(0, <s, z>) = 0
    assert positive == pytest.approx(base - params.satiation_weight, abs=1e-5)  # <z, z> = 1


def test_click_is_uniform_below_probability():
    logits = torch.tensor([0.0, 0.0, 2.0, -2.0])
    uniforms = torch.tensor([0.49, 0.51, 0.88, 0.12])
    # σ(0) = 0.5, σ(2) = 0.8808, σ(-2) = 0.1192
    assert sample_click(logits, uniforms).tolist() == [1.0, 0.0, 1.0, 0.0]


def test_satiation_update(items):
    params = UserModelParams(**ALL_OFF | {"satiation": True})
    z = items.latents.numpy().astype(np.float64)
    s0 = 0.3 * z[1] - 0.2 * z[9]
    state = _state(z[2], s0)
    for click in (1.0, 0.0):
        new, _ = apply_response(state, torch.tensor([9]), torch.tensor([click]), _noise(items.latent_dim), items, params)
        np.testing.assert_allclose(new.satiation[0].numpy(), params.satiation_decay * s0 + click * z[9], atol=1e-6)
        np.testing.assert_allclose(new.interest[0].numpy(), z[2], atol=1e-6)  # nothing else moved


def test_impression_fatigue_satiates_by_iota_without_a_click(items):
    """s ← ρ·s + (y + ι·(1 − y))·z_i: a click adds z_i, an ignored impression ι·z_i."""
    params = UserModelParams(**ALL_OFF | {"satiation": True, "impression_fatigue": True}, impression_fatigue_weight=0.25,
                             satiation_decay=0.5)
    z = items.latents.numpy().astype(np.float64)
    s0 = 0.3 * z[1] - 0.2 * z[9]
    state = _state(z[2], s0)
    ignored, _ = apply_response(state, torch.tensor([9]), torch.tensor([0.0]), _noise(items.latent_dim), items, params)
    np.testing.assert_allclose(ignored.satiation[0].numpy(), 0.5 * s0 + 0.25 * z[9], atol=1e-6)
    clicked, _ = apply_response(state, torch.tensor([9]), torch.tensor([1.0]), _noise(items.latent_dim), items, params)
    np.testing.assert_allclose(clicked.satiation[0].numpy(), 0.5 * s0 + 1.0 * z[9], atol=1e-6)  # a click: 1, not 1 + ι
    # Off, or with satiation off, an ignored impression leaves s as ρ·s alone (or untouched).
    off, _ = apply_response(state, torch.tensor([9]), torch.tensor([0.0]), _noise(items.latent_dim), items,
                            params.replace(impression_fatigue=False))
    np.testing.assert_allclose(off.satiation[0].numpy(), 0.5 * s0, atol=1e-6)
    no_satiation, _ = apply_response(state, torch.tensor([9]), torch.tensor([0.0]), _noise(items.latent_dim), items,
                                     params.replace(satiation=False))
    assert torch.equal(no_satiation.satiation, state.satiation)


def test_reshowing_an_ignored_item_wears_it_out(items):
    """Shown n times without a click, from s = 0: s = ι·(1 − ρⁿ)/(1 − ρ)·z_i, so its logit falls by
    η·ι·(1 − ρⁿ)/(1 − ρ) (towards η·ι/(1 − ρ)); without impression fatigue it does not fall at all."""
    params = UserModelParams(**ALL_OFF | {"satiation": True, "impression_fatigue": True})
    iota, rho, eta = params.impression_fatigue_weight, params.satiation_decay, params.satiation_weight
    z = items.latents.numpy().astype(np.float64)
    item = torch.tensor([7])
    for fatigue in (True, False):
        p = params.replace(impression_fatigue=fatigue)
        state = _state(z[7])
        first = click_logits(state, item, items, p).item()
        for _ in range(10):
            state, _ = apply_response(state, item, torch.tensor([0.0]), _noise(items.latent_dim), items, p)
        drop = first - click_logits(state, item, items, p).item()
        expected = eta * iota * (1 - rho**10) / (1 - rho) if fatigue else 0.0
        assert drop == pytest.approx(expected, abs=1e-4)
    assert eta * iota / (1 - rho) == pytest.approx(2.0 * 0.1 / 0.15)  # the documented ceiling, 1.33 logits


def test_a_regime_shift_keeps_satiation(items):
    """docs/model.md §2: a life event redraws θ but not what the user is tired of."""
    params = UserModelParams(**ALL_OFF | {"satiation": True, "regime_shifts": True, "impression_fatigue": True},
                             regime_shift_prob=1.0)
    z = items.latents.numpy().astype(np.float64)
    s0 = 0.8 * z[30]
    prior = _prior_noise(items.num_topics, first_topic=9, k=items.latent_dim)
    for click in (1.0, 0.0):
        new, shifted = apply_response(_state(z[0], s0), torch.tensor([30]), torch.tensor([click]),
                                      _noise(items.latent_dim, shift_uniform=0.0, prior=prior), items, params)
        assert bool(shifted[0])
        assert not np.allclose(new.interest[0].numpy(), z[0], atol=1e-3)  # θ was redrawn...
        worn = click + params.impression_fatigue_weight * (1 - click)
        np.testing.assert_allclose(new.satiation[0].numpy(), params.satiation_decay * s0 + worn * z[30], atol=1e-6)


def test_consumption_drift_moves_interest_toward_clicked_item_only(items):
    params = UserModelParams(**ALL_OFF | {"consumption_drift": True}, consumption_drift_rate=0.25)
    z = items.latents.numpy().astype(np.float64)
    theta = _unit(z[0] + z[100])
    clicked, _ = apply_response(_state(theta), torch.tensor([250]), torch.tensor([1.0]), _noise(items.latent_dim), items, params)
    np.testing.assert_allclose(clicked.interest[0].numpy(), _unit(theta + 0.25 * (z[250] - theta)), atol=1e-6)
    ignored, _ = apply_response(_state(theta), torch.tensor([250]), torch.tensor([0.0]), _noise(items.latent_dim), items, params)
    np.testing.assert_allclose(ignored.interest[0].numpy(), theta, atol=1e-6)


def test_exogenous_drift_adds_scaled_noise(items):
    params = UserModelParams(**ALL_OFF | {"exogenous_drift": True}, exogenous_drift_scale=0.4)
    k = items.latent_dim
    z = items.latents.numpy().astype(np.float64)
    drift = np.linspace(-1.0, 1.0, k)
    new, _ = apply_response(_state(z[7]), torch.tensor([0]), torch.tensor([0.0]), _noise(k, drift=drift), items, params)
    # ε ~ N(0, I/k) is the standard normal variate divided by √k.
    np.testing.assert_allclose(new.interest[0].numpy(), _unit(z[7] + 0.4 * drift / math.sqrt(k)), atol=1e-6)


def _prior_noise(num_topics: int, first_topic: int, k: int, normal=None) -> PriorNoise:
    keys = torch.ones(1, num_topics)
    keys[0, first_topic] = 0.0  # the smallest key picks the favoured topic
    return PriorNoise(keys, torch.tensor([0.0]), torch.ones(1, 3), torch.zeros(1, k) if normal is None else normal)


def test_regime_shift_with_h_one_redraws_interest_from_prior(items):
    # One topic per user and no prior noise: the redrawn interest is exactly that topic's centroid.
    params = UserModelParams(**ALL_OFF | {"regime_shifts": True}, regime_shift_prob=1.0,
                             min_topics_per_user=1, max_topics_per_user=1, prior_noise_scale=0.0)
    z = items.latents.numpy()
    prior = _prior_noise(items.num_topics, first_topic=6, k=items.latent_dim)
    new, shifted = apply_response(_state(z[0]), torch.tensor([0]), torch.tensor([1.0]),
                                  _noise(items.latent_dim, shift_uniform=0.999, prior=prior), items, params)
    assert shifted.tolist() == [True]
    np.testing.assert_allclose(new.interest[0].numpy(), items.topic_centroids[6].numpy(), atol=1e-6)
    # With h = 0 the same variates change nothing.
    unchanged, shifted = apply_response(_state(z[0]), torch.tensor([0]), torch.tensor([1.0]),
                                        _noise(items.latent_dim, shift_uniform=0.0, prior=prior), items,
                                        params.replace(regime_shift_prob=0.0))
    assert shifted.tolist() == [False]
    np.testing.assert_allclose(unchanged.interest[0].numpy(), z[0], atol=1e-6)


def test_prior_mixes_chosen_topic_centroids_with_dirichlet_weights(items):
    params = UserModelParams(min_topics_per_user=2, max_topics_per_user=2, prior_noise_scale=0.5)
    k, t = items.latent_dim, items.num_topics
    keys = torch.ones(1, t)
    keys[0, 4], keys[0, 11] = 0.1, 0.2
    normal = torch.linspace(-1, 1, k).reshape(1, k)
    noise = PriorNoise(keys, torch.tensor([0.3]), torch.tensor([[1.0, 3.0, 5.0]]), normal)
    mu = items.topic_centroids.numpy().astype(np.float64)
    expected = _unit(0.25 * mu[4] + 0.75 * mu[11] + 0.5 * normal[0].numpy() / math.sqrt(k))
    np.testing.assert_allclose(interest_from_prior(noise, items, params)[0].numpy(), expected, atol=1e-6)


def test_patience_update(items):
    params = UserModelParams(**ALL_OFF | {"patience": True, "clickbait": True}, no_click_patience_cost=0.3, quality_patience_gain=1.5)
    q, c = items.quality.numpy().astype(np.float64), items.clickbait.numpy().astype(np.float64)
    for item in (0, 21):  # a sober item and a clickbait item
        clicked, _ = apply_response(_state(items.latents[0].numpy(), patience=10.0), torch.tensor([item]),
                                    torch.tensor([1.0]), _noise(items.latent_dim), items, params)
        assert clicked.patience.item() == pytest.approx(10.0 - 1.0 + 1.5 * (q[item] - c[item]), abs=1e-5)
        ignored, _ = apply_response(_state(items.latents[0].numpy(), patience=10.0), torch.tensor([item]),
                                    torch.tensor([0.0]), _noise(items.latent_dim), items, params)
        assert ignored.patience.item() == pytest.approx(10.0 - 1.0 - 0.3, abs=1e-6)
    assert c[21] > 0.5 > c[0]  # the default catalog's 22nd item is clickbait


@pytest.mark.parametrize("switch", ["satiation", "consumption_drift", "exogenous_drift", "regime_shifts", "clickbait", "patience",
                                    "impression_fatigue"])
def test_each_switch_turns_its_mechanism_off(items, switch):
    """With a switch off, its mechanism leaves the state (and the click logit) exactly as it was,
    even with the strongest parameters and noise that would move it."""
    strong = UserModelParams(consumption_drift_rate=1.0, exogenous_drift_scale=2.0, regime_shift_prob=1.0, satiation_decay=0.5)
    z = items.latents.numpy()
    k = items.latent_dim
    prior = _prior_noise(items.num_topics, first_topic=9, k=k)
    noise = _noise(k, drift=np.ones(k), shift_uniform=0.0, prior=prior)
    state = _state(z[0], satiation=0.5 * z[30], patience=10.0)
    item = torch.tensor([21])  # clickbait item
    on, _ = apply_response(state, item, torch.tensor([1.0]), noise, items, strong.replace(**ALL_OFF | {switch: True}))
    off, _ = apply_response(state, item, torch.tensor([1.0]), noise, items, strong.replace(**ALL_OFF))
    changed_on = {
        "satiation": not torch.allclose(on.satiation, state.satiation),
        "interest": not torch.allclose(on.interest, state.interest),
        "patience": not torch.allclose(on.patience, state.patience),
    }
    assert torch.equal(off.satiation, state.satiation) and torch.equal(off.interest, state.interest)
    assert torch.equal(off.patience, state.patience)
    if switch == "satiation":
        assert changed_on["satiation"]
        # ...and satiation enters the logit only when on.
        with_s = click_logits(state, torch.tensor([30]), items, strong)
        without = click_logits(state, torch.tensor([30]), items, strong.replace(satiation=False))
        assert with_s.item() < without.item()
    elif switch in ("consumption_drift", "exogenous_drift", "regime_shifts"):
        assert changed_on["interest"]
    elif switch == "patience":
        assert changed_on["patience"]
    elif switch == "impression_fatigue":
        # Alone it has nothing to wear out (satiation is off); with satiation, an ignored impression counts.
        assert not any(changed_on.values())
        base = strong.replace(**ALL_OFF | {"satiation": True})
        ignored = [apply_response(state, item, torch.tensor([0.0]), noise, items, base.replace(impression_fatigue=on))[0]
                   for on in (True, False)]
        np.testing.assert_allclose((ignored[0].satiation - ignored[1].satiation)[0].numpy(),
                                   strong.impression_fatigue_weight * z[21], atol=1e-6)
    elif switch == "clickbait":
        # Clickbait changes the logit (κ·c) and, with patience on, the patience cost.
        lured = click_logits(state, item, items, strong).item()
        plain = click_logits(state, item, items, strong.replace(clickbait=False)).item()
        assert lured - plain == pytest.approx(strong.clickbait_weight * items.clickbait[21].item(), abs=1e-5)
        with_c, _ = apply_response(state, item, torch.tensor([1.0]), noise, items, strong.replace(**ALL_OFF | {"patience": True, "clickbait": True}))
        without_c, _ = apply_response(state, item, torch.tensor([1.0]), noise, items, strong.replace(**ALL_OFF | {"patience": True}))
        assert without_c.patience.item() - with_c.patience.item() == pytest.approx(
            strong.quality_patience_gain * items.clickbait[21].item(), abs=1e-5)


def test_categorical_sampling_follows_softmax():
    generator = torch.Generator().manual_seed(0)
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.7]])).expand(40_000, 3)
    draws = sample_categorical(logits, torch.rand(40_000, generator=generator))
    frequencies = torch.bincount(draws, minlength=3).float() / 40_000
    np.testing.assert_allclose(frequencies.numpy(), [0.1, 0.2, 0.7], atol=0.01)


@pytest.mark.parametrize("switches", [{}, {"satiation": False}, {"clickbait": False}])
def test_all_logits_in_reused_buffers_are_bitwise_the_formula_of_one_item(items, switches):
    params = UserModelParams(**switches)
    generator = torch.Generator().manual_seed(0)
    workspace = []
    for users in (37, 37, 300):  # the buffers are made, reused, then remade for another batch size
        interest = torch.nn.functional.normalize(torch.randn(users, items.latent_dim, generator=generator), dim=1)
        satiation = torch.rand(users, items.latent_dim, generator=generator) - 0.3
        state = UserState(interest, satiation, torch.full((users,), 30.0), torch.zeros(users, dtype=torch.int64))
        every_item = torch.arange(items.latents.shape[0]).expand(users, -1)
        reused = click_logits_all(state, items, params, workspace)
        assert reused.data_ptr() == workspace[0].data_ptr() and workspace[0].shape == (users, items.latents.shape[0])
        torch.testing.assert_close(reused, click_logits(state, every_item, items, params), rtol=0, atol=1e-5)
        assert torch.equal(reused, click_logits_all(state, items, params))  # fresh buffers: the same bits


def test_take_rows_gives_the_rows_advanced_indexing_gives_in_the_ids_shape():
    generator = torch.Generator().manual_seed(0)
    latents, scores = torch.randn(7, 3, generator=generator), torch.rand(7, generator=generator)
    for ids in (torch.tensor([4, 0, 6, 4]), torch.randint(0, 7, (5, 2), generator=generator),
                torch.randint(0, 7, (6, 9), generator=generator)[:, ::2], torch.zeros((3, 0), dtype=torch.int64)):
        for table in (latents, scores):
            taken = take_rows(table, ids)
            assert taken.shape == ids.shape + table.shape[1:]
            assert torch.equal(taken, table[ids])
