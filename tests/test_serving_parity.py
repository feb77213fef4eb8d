"""An agent served over HTTP and the same agent run in-process get the same clicks for the same seeds.

:func:`serving.simulated_users.run_sessions_over_http` plays the held-out users of
:func:`agents.run_sessions` against a live service (uvicorn in a thread, real HTTP over a socket);
every item it shows is the service's top-1. Parity is exact: the same items, clicks and session
lengths per user, and the same ground-truth traces.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest

import agents
from recenv import DriftingUserEnv
from recenv.public_view import public_view
from serving import ServedRecommender, create_app
from serving.local_server import ServerThread
from serving.simulated_users import ServiceError, _call, run_sessions_over_http

NUM_USERS = 6
SEED = 10_000


def assert_same_sessions(served: agents.SessionRecords, local: agents.SessionRecords) -> None:
    assert len(served) == len(local) == NUM_USERS
    np.testing.assert_array_equal(served.lengths, local.lengths)
    assert served.left == local.left
    for user in range(NUM_USERS):
        np.testing.assert_array_equal(served.items[user], local.items[user], err_msg=f"items of user {user}")
        np.testing.assert_array_equal(served.clicks[user], local.clicks[user], err_msg=f"clicks of user {user}")
        for key in ("topics", "regime_shift", "click_probability", "best_click_probability"):
            np.testing.assert_array_equal(getattr(served, key)[user], getattr(local, key)[user],
                                          err_msg=f"{key} of user {user}")


def served_and_local(recommender: ServedRecommender, batch_size: int = 1024):
    with ServerThread(create_app(recommender)) as url, httpx.Client(base_url=url, timeout=30.0) as client:
        served = run_sessions_over_http(client, NUM_USERS, SEED, config=recommender.config,
                                        batch_size=batch_size, progress=False)
        sessions_left = client.get("/v1/health").json()["sessions"]
    local = agents.run_sessions(recommender.agent, NUM_USERS, SEED, config=recommender.config,
                                batch_size=batch_size, progress=False)
    return served, local, sessions_left


def test_default_service_matches_the_in_process_agent(one_torch_thread):
    recommender = ServedRecommender.default()
    assert isinstance(recommender.agent, agents.SupervisedLSTMAgent)
    served, local, sessions_left = served_and_local(recommender)
    assert_same_sessions(served, local)
    assert sessions_left == 0  # every session was deleted when its user left or was truncated
    assert served.lengths.sum() > 50 and served.returns.sum() > 0  # real sessions, with clicks


def test_a_saved_dqn_agent_served_from_its_file_matches(one_torch_thread, tmp_path):
    env = DriftingUserEnv()  # the default config, as the served default (an untrained net: argmax Q)
    path = agents.DQNAgent(public_view(env)).save(tmp_path / "dqn.pt")
    recommender = ServedRecommender.from_file(path)
    assert recommender.kind == "DQNAgent"
    # Batches of 4: two vector envs (seeds SEED and SEED + 1), the second with 2 users.
    served, local, sessions_left = served_and_local(recommender, batch_size=4)
    assert_same_sessions(served, local)
    assert sessions_left == 0


def test_a_service_error_names_its_detail(one_torch_thread):
    """Failures carry the service's ``detail``, e.g. an unknown session or an unknown item id."""
    recommender = ServedRecommender.default()
    with ServerThread(create_app(recommender)) as url, httpx.Client(base_url=url) as client:
        with pytest.raises(ServiceError, match="404.*never created"):
            _call(client, "GET", "/v1/sessions/nope/recommendations", 200, params={"k": 1})
        with pytest.raises(ServiceError, match="422.*unknown item id"):
            _call(client, "POST", "/v1/sessions", 201, json={"items": [10**6], "clicks": [1]})


def test_a_saved_long_term_value_agent_gets_its_session_memory_from_the_feedback(one_torch_thread, tmp_path):
    """W drawn at random (a fresh agent's W is 0, and would hide the memory): the served agent
    counts this session's clicks from the feedback, as the in-process agent counts them from its
    own actions and the session clock."""
    from click_value_helpers import randomise

    agent = agents.LongTermValueAgent(public_view(DriftingUserEnv()))
    randomise(agent.values, seed=1)
    recommender = ServedRecommender.from_file(agent.save(tmp_path / "long_term_value.pt"))
    assert recommender.kind == "LongTermValueAgent"
    served, local, _ = served_and_local(recommender)
    assert_same_sessions(served, local)
    assert served.returns.sum() > 0  # clicks, so the memory was used
