"""The logs recenv trains on could have been recorded by a deployed recommender: the behaviour
policies read nothing privileged, and their propensities are exact."""

import numpy as np
import pytest
import torch

import recenv
from recenv.encoder import EncoderConfig, NextClickLSTM
from recenv.offline.logging_policies import (
    ContentProfileScorer,
    DeployedPolicy,
    LSTMScorer,
    MixedBehaviourPolicy,
    UniformRandomPolicy,
    click_counts,
    make_logs,
)
from recenv.offline.logs import LoggingView, collect_logs
from recenv.simulator import UserSimulator


class _PublicRecordOnly:
    """What a deployed system knows about 3 users of a 6-item catalog; every privileged accessor
    a simulator has raises."""

    num_users, num_items = 3, 6

    def __init__(self):
        self.recent_items = torch.tensor([[-1, -1, -1, -1, -1], [0, 1, 1, 2, 3], [-1, -1, 5, 5, 4]])
        self.recent_clicks = torch.tensor([[0.0] * 5, [1.0, 0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]])
        self.session_steps = torch.tensor([0, 4, 2])
        self.session_clicks = torch.tensor([0.0, 2.0, 1.0])
        self.item_embeddings = np.eye(6, dtype=np.float32)

    def _privileged(self):
        raise AssertionError("a deployable logging policy read privileged information")

    click_probabilities = property(lambda self: self._privileged())
    state = property(lambda self: self._privileged())
    params = property(lambda self: self._privileged())
    catalog = property(lambda self: self._privileged())
    items = property(lambda self: self._privileged())


def _policies(num_items=6):
    return [
        UniformRandomPolicy(seed=0),
        DeployedPolicy(num_items, seed=0),  # no counts, no model: their shares go to random
        DeployedPolicy(num_items, popularity=np.arange(num_items, dtype=float),
                       scorer=ContentProfileScorer(np.eye(num_items, dtype=np.float32)), seed=0),
        DeployedPolicy(num_items, scorer=LSTMScorer(_small_lstm(num_items), np.eye(num_items, dtype=np.float32)), seed=0),
    ]


def _small_lstm(embedding_dim):
    torch.manual_seed(0)
    return NextClickLSTM(EncoderConfig(embedding_dim, hidden_size=4, head_size=4))


def test_the_default_policies_run_on_a_record_whose_privileged_accessors_raise():
    view = _PublicRecordOnly()
    for policy in _policies():
        assert policy.privileged is False
        actions, propensity = policy(view)
        assert actions.shape == (3,) and np.all((propensity > 0) & (propensity <= 1))


def test_propensities_are_the_probabilities_the_policy_shows_items_with():
    """Each policy is called on a view of the 3 users repeated 10,000 times (a policy draws every
    user independently, and the copies share their record, so one call is 10,000 draws per user),
    20 calls: n = 200,000 draws per user. The standard error of a frequency is at most
    sqrt(0.25 / n) = 0.0011, so the tolerance 0.005 is 4.5 standard errors (a false failure over the
    4 × 18 cells has probability < 0.001), and a propensity off by 0.01 (e.g. popularity without
    its +1, which moves items 0 and 5 by 0.0095) is caught with probability > 0.99."""
    copies, calls = 10_000, 20
    view = _PublicRecordOnly()
    view.num_users = 3 * copies
    for name in ("recent_items", "recent_clicks", "session_steps", "session_clicks"):
        setattr(view, name, getattr(view, name).repeat((copies,) + (1,) * (getattr(view, name).dim() - 1)))
    users = np.tile(np.arange(3), copies)
    for policy in _policies():
        counts = np.zeros(3 * 6)
        reported = np.full((3, 6), np.nan, dtype=np.float32)
        for _ in range(calls):
            actions, propensity = policy(view)
            assert actions.shape == propensity.shape == (3 * copies,)
            counts += np.bincount(users * 6 + actions, minlength=3 * 6)
            reported[users, actions] = propensity
            np.testing.assert_array_equal(propensity, reported[users, actions])  # one propensity per user and item
        frequency = counts.reshape(3, 6) / (copies * calls)
        assert (frequency > 0).all()  # every policy keeps a random share: each item has propensity >= 0.05
        np.testing.assert_allclose(frequency, reported, atol=0.005)
        # Reported propensities of one user sum to 1 over the items it can show.
        np.testing.assert_allclose(reported.sum(1), 1.0, atol=1e-5)


def test_collect_logs_hands_a_deployable_policy_only_the_logging_view(monkeypatch):
    seen = []

    def spy(view):
        seen.append(view)
        return np.zeros(view.num_users, dtype=np.int64), None

    collect_logs(recenv.EnvConfig(device="cpu"), spy, num_users=4, seed=0, concurrent_users=4, progress=False, max_steps=3)
    assert seen and all(type(v) is LoggingView for v in seen)
    view = seen[0]
    for name in ("click_probabilities", "state", "params", "catalog", "items", "generator"):
        with pytest.raises(AttributeError):
            getattr(view, name)
    # A privileged reference that declares it gets the simulator.
    privileged = MixedBehaviourPolicy(seed=0)
    got = []
    original = privileged.__call__
    monkeypatch.setattr(MixedBehaviourPolicy, "__call__", lambda self, sim: (got.append(sim), original(sim))[1])
    log = collect_logs(recenv.EnvConfig(device="cpu"), privileged, num_users=4, seed=0, concurrent_users=4,
                       progress=False, max_steps=2)
    assert isinstance(got[0], UserSimulator) and log.metadata["policy_privileged"] is True


def test_make_logs_never_reads_the_true_click_probabilities(monkeypatch):
    def forbidden(self):
        raise AssertionError("make_logs read the simulator's true click probabilities")

    monkeypatch.setattr(UserSimulator, "click_probabilities", forbidden)
    log = make_logs(recenv.EnvConfig(preset="mixed"), 60, seed=0, concurrent_users=32, progress=False)
    assert log.num_users == 60 and log.metadata["policy_privileged"] is False
    assert all(r["policy_privileged"] is False for r in log.metadata["rounds"])
    in_session = log.step >= 0
    assert np.all(np.isfinite(log.propensity[in_session])) and np.all(log.propensity[in_session] > 0)


def test_popularity_of_the_second_round_counts_clicks_of_the_first():
    log = recenv.offline.logs.InteractionLog(
        user=[0, 0, 0, 1, 1], step=[-1, 0, 1, 0, 1], item=[2, 2, 3, 2, 0], click=[1, 1, 0, 1, 1],
        propensity=[np.nan, 0.2, 0.2, 0.2, 0.2], click_probability=[np.nan, 0.5, 0.5, 0.5, 0.5])
    # The warm-up row (step −1) is the user's past before the recommender, not counted.
    np.testing.assert_array_equal(click_counts(log, 4), [1, 0, 2, 0])
