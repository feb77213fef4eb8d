"""The HTTP service: its endpoints, its answers to bad input (a 4xx that says what is wrong, never
a 500), its bounded session store, concurrent feedback on one session, metrics, agent files."""

from __future__ import annotations

import json
import os
import socket
import threading

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents import DQNAgent
from agents.persistence import save_agent_file
from agents.supervised_lstm import choose_unshown
from recenv import DriftingUserEnv, EnvConfig
from recenv.embedding import ModelLoadError
from recenv.public_view import public_view
from serving import ServedRecommender, SessionStore, UnservableAgentError, create_app
from serving.command_line import main as serve_command
from serving.local_server import ServerThread
from serving.recommender import AgentFileError, session_memory


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def recommender() -> ServedRecommender:
    return ServedRecommender.default()


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def client(recommender, clock) -> TestClient:
    store = SessionStore(max_sessions=4, idle_timeout=60.0, max_history=30, clock=clock)
    return TestClient(create_app(recommender, store, max_k=20), raise_server_exceptions=False)


def new_session(client, items=(1, 2, 3), clicks=(1, 0, 1)) -> str:
    answer = client.post("/v1/sessions", json={"items": list(items), "clicks": list(clicks)})
    assert answer.status_code == 201, answer.text
    return answer.json()["session_id"]


def recommended(client, session_id, k=5) -> list[int]:
    answer = client.get(f"/v1/sessions/{session_id}/recommendations", params={"k": k})
    assert answer.status_code == 200, answer.text
    return [item["item_id"] for item in answer.json()["items"]]


# ---------------------------------------------------------------- the endpoints


def test_a_session_recommends_records_feedback_and_ends(client, recommender):
    session_id = new_session(client)
    answer = client.get(f"/v1/sessions/{session_id}/recommendations", params={"k": 5}).json()
    scores = [item["score"] for item in answer["items"]]
    assert len(answer["items"]) == 5 and scores == sorted(scores, reverse=True)
    first = answer["items"][0]
    assert first["title"] == recommender.titles[first["item_id"]]
    assert first["topic"] == recommender.topic_names[recommender.item_topics[first["item_id"]]]
    assert answer["score"] == "click logit" and answer["session_steps"] == 0

    result = client.post(f"/v1/sessions/{session_id}/feedback", json={"item_id": first["item_id"], "clicked": True})
    assert result.status_code == 200 and result.json() == {"session_id": session_id, "session_steps": 1, "session_clicks": 1}
    # The supervised agent never re-shows an item in a session; the service keeps its rule.
    assert first["item_id"] not in recommended(client, session_id, k=20)

    view = client.get(f"/v1/sessions/{session_id}").json()
    assert (view["past_items"], view["past_clicks"]) == ([1, 2, 3], [1, 0, 1])
    assert (view["items"], view["clicks"]) == ([first["item_id"]], [1])
    assert len(view["interest_by_topic"]) == len(recommender.topic_names)
    assert all(0.0 < topic["p_click"] < 1.0 for topic in view["interest_by_topic"])

    assert client.delete(f"/v1/sessions/{session_id}").status_code == 204
    gone = client.get(f"/v1/sessions/{session_id}/recommendations")
    assert gone.status_code == 404 and "deleted" in gone.json()["detail"]


def test_the_service_ranks_as_the_agent_predicts(client, recommender):
    """Top-1 of the service = the agent's predict() on the env's observation of the same history."""
    env = DriftingUserEnv(config=recommender.config)
    view = public_view(env)
    observation, _ = env.reset(seed=5)
    items, clicks = (list(map(int, a)) for a in view.warmup_history())
    session_id = new_session(client, items, clicks)
    state = None
    for _ in range(4):
        action, state = recommender.agent.predict(observation, state=state)
        assert recommended(client, session_id, k=1) == [int(action)]
        observation, reward, *_ = env.step(int(action))
        client.post(f"/v1/sessions/{session_id}/feedback", json={"item_id": int(action), "clicked": bool(reward)})


def test_stateless_recommendations_match_the_session(client):
    session_id = new_session(client, items=[4, 5], clicks=[0, 1])
    for item, clicked in ((10, True), (11, False)):
        client.post(f"/v1/sessions/{session_id}/feedback", json={"item_id": item, "clicked": clicked})
    stateful = client.get(f"/v1/sessions/{session_id}/recommendations", params={"k": 8}).json()
    stateless = client.post("/v1/recommendations", json={"items": [4, 5, 10, 11], "clicks": [0, 1, 1, 0],
                                                         "session_length": 2, "k": 8}).json()
    assert stateless["session_id"] is None and stateless["session_steps"] == 2
    assert stateless["items"] == stateful["items"]
    # The same history counted as all past: another session clock, and shown items allowed again.
    as_past = client.post("/v1/recommendations", json={"items": [4, 5, 10, 11], "clicks": [0, 1, 1, 0], "k": 8}).json()
    assert as_past["session_steps"] == 0


def test_a_persona_becomes_a_past_of_its_closest_items(client, recommender):
    answer = client.post("/v1/sessions", json={"persona": "loves documentaries about planets, stars and galaxies"})
    assert answer.status_code == 201 and answer.json()["past_length"] == 5
    view = client.get(f"/v1/sessions/{answer.json()['session_id']}").json()
    assert view["past_clicks"] == [1] * 5
    topics = [recommender.topic_names[recommender.item_topics[i]] for i in view["past_items"]]
    assert topics.count("astronomy") >= 4, topics


def test_health_and_metrics(client):
    session_id = new_session(client)
    recommended(client, session_id)
    client.get("/v1/sessions/missing/recommendations")
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["agent"]["agent"] == "SupervisedLSTMAgent" and health["sessions"] == 1
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'recenv_requests_total{method="GET",route="/v1/sessions/{session_id}/recommendations",status="200"} 1.0' in text
    assert 'recenv_requests_total{method="GET",route="/v1/sessions/{session_id}/recommendations",status="404"} 1.0' in text
    assert 'recenv_request_seconds_count{method="POST",route="/v1/sessions"} 1.0' in text
    assert "recenv_sessions 1.0" in text
    assert session_id not in text  # routes, not raw paths: session ids never become series


def test_the_page_and_the_openapi_schema_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/sessions", "/v1/sessions/{session_id}/recommendations", "/v1/sessions/{session_id}/feedback",
            "/v1/recommendations", "/v1/health"} <= set(paths)


# ---------------------------------------------------------------- bad input: a 4xx that says what is wrong

BAD_CREATES = [
    ({"items": [1, 2], "clicks": [1]}, "same length"),
    ({"items": [500], "clicks": [1]}, "unknown item id [500]"),
    ({"items": [-1], "clicks": [0]}, "unknown item id [-1]"),
    ({"items": ["7"], "clicks": [1]}, "valid integer"),
    ({"items": [1.5], "clicks": [1]}, "valid integer"),
    ({"items": [True], "clicks": [1]}, "valid integer"),
    ({"items": [1], "clicks": [2]}, "less than or equal to 1"),
    ({"items": 3, "clicks": [1]}, "valid list"),
    ({"items": list(range(31)), "clicks": [0] * 31}, "longer than the limit of 30"),
    ({"persona": ""}, "at least 1 character"),
    ({"persona": "   "}, "must not be blank"),
    ({"persona": "x" * 501}, "at most 500 characters"),
    ({"persona": 42}, "valid string"),
    ({"persona": "space", "items": [1], "clicks": [1]}, "not both"),
    ({"user": "me"}, "Extra inputs are not permitted"),
    ([1, 2, 3], "valid dictionary"),
]


@pytest.mark.parametrize(("body", "says"), BAD_CREATES, ids=[says for _, says in BAD_CREATES])
def test_bad_session_requests_are_refused_with_the_reason(client, body, says):
    answer = client.post("/v1/sessions", json=body)
    assert answer.status_code == 422, answer.text
    assert says in json.dumps(answer.json()["detail"])


def test_malformed_json_and_wrong_content_are_refused(client):
    broken = client.post("/v1/sessions", content=b'{"items": [1,', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and "JSON decode error" in json.dumps(broken.json()["detail"])
    text = client.post("/v1/sessions", content=b"items=1", headers={"content-type": "text/plain"})
    assert 400 <= text.status_code < 500


BAD_FEEDBACK = [
    ({"item_id": 500, "clicked": True}, 422, "unknown item id [500]"),
    ({"item_id": "3", "clicked": True}, 422, "valid integer"),
    ({"item_id": 3, "clicked": "yes"}, 422, "valid boolean"),
    ({"item_id": 3, "clicked": 1}, 422, "valid boolean"),
    ({"item_id": 3}, 422, "Field required"),
    ({"item_id": 3, "clicked": True, "score": 1}, 422, "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("body", "status", "says"), BAD_FEEDBACK, ids=[says for *_, says in BAD_FEEDBACK])
def test_bad_feedback_is_refused_with_the_reason(client, body, status, says):
    session_id = new_session(client)
    answer = client.post(f"/v1/sessions/{session_id}/feedback", json=body)
    assert answer.status_code == status and says in json.dumps(answer.json()["detail"])
    assert client.get(f"/v1/sessions/{session_id}").json()["items"] == []  # nothing recorded


@pytest.mark.parametrize(("k", "says"), [(0, "greater than or equal to 1"), (21, "less than or equal to 20"),
                                         ("ten", "valid integer"), (2.5, "valid integer")])
def test_k_out_of_range_is_refused(client, k, says):
    session_id = new_session(client)
    answer = client.get(f"/v1/sessions/{session_id}/recommendations", params={"k": k})
    assert answer.status_code == 422 and says in json.dumps(answer.json()["detail"])


@pytest.mark.parametrize(("body", "says"), [
    ({"items": [1, 2], "clicks": [1, 0], "k": 21}, "between 1 and 20"),
    ({"items": [1, 2], "clicks": [1, 0], "k": 0}, "greater than or equal to 1"),
    ({"items": [1, 2], "clicks": [1, 0], "session_length": 3}, "longer than the history"),
    ({"items": [1, 2], "clicks": [1, 0], "session_length": -1}, "greater than or equal to 0"),
    ({"items": [1, 999], "clicks": [1, 0]}, "unknown item id [999]"),
    ({"items": list(range(31)), "clicks": [0] * 31}, "longer than the limit of 30"),
])
def test_bad_stateless_requests_are_refused(client, body, says):
    answer = client.post("/v1/recommendations", json=body)
    assert answer.status_code == 422 and says in json.dumps(answer.json()["detail"])


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/sessions/{}"), ("GET", "/v1/sessions/{}/recommendations"), ("DELETE", "/v1/sessions/{}"),
])
def test_unknown_sessions_get_404_that_says_so(client, method, path):
    answer = client.request(method, path.format("0123456789abcdef"))
    assert answer.status_code == 404 and "unknown" in answer.json()["detail"]
    feedback = client.post("/v1/sessions/0123456789abcdef/feedback", json={"item_id": 1, "clicked": False})
    assert feedback.status_code == 404
    too_long = client.get("/v1/sessions/" + "a" * 65)
    assert too_long.status_code == 422


def test_idle_sessions_expire(client, clock):
    session_id = new_session(client)
    clock.now += 59.0
    recommended(client, session_id)  # used: its idle time starts again
    clock.now += 59.0
    recommended(client, session_id)
    clock.now += 61.0
    answer = client.get(f"/v1/sessions/{session_id}/recommendations")
    assert answer.status_code == 404 and "expired (idle for more than 60 s)" in answer.json()["detail"]


def test_a_full_store_evicts_the_least_recently_used_session(client):
    first, second, third, fourth = (new_session(client) for _ in range(4))
    recommended(client, first)  # now `second` is the least recently used
    fifth = new_session(client)
    answer = client.get(f"/v1/sessions/{second}")
    assert answer.status_code == 404 and "evicted" in answer.json()["detail"]
    for live in (first, third, fourth, fifth):
        assert client.get(f"/v1/sessions/{live}").status_code == 200
    assert client.get("/v1/health").json()["sessions"] == 4


def test_a_full_history_refuses_more_feedback(client):
    session_id = new_session(client, items=list(range(29)), clicks=[0] * 29)
    assert client.post(f"/v1/sessions/{session_id}/feedback", json={"item_id": 40, "clicked": True}).status_code == 200
    full = client.post(f"/v1/sessions/{session_id}/feedback", json={"item_id": 41, "clicked": True})
    assert full.status_code == 409 and "max_history=30" in full.json()["detail"]


def test_wrong_methods_and_paths(client):
    assert client.put("/v1/sessions").status_code == 405
    assert client.get("/v2/sessions").status_code == 404


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.sampled_from(
        ["items", "clicks", "persona", "k", "session_length", "item_id", "clicked", "x"]), children, max_size=5),
    max_leaves=20,
)


# 50 random bodies by default (a few seconds); RECENV_HYPOTHESIS_EXAMPLES=500 (say) searches further. Each
# example sends one body to all four endpoints, so 50 already try 200 requests of fresh shapes per run,
# and every run draws new ones.
NEVER_A_500_EXAMPLES = int(os.environ.get("RECENV_HYPOTHESIS_EXAMPLES", "50"))


@settings(max_examples=NEVER_A_500_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values, k=st.one_of(st.integers(-5, 10**6), st.text(max_size=5)))
def test_no_input_gets_a_500(client, body, k):
    session_id = new_session(client)
    answers = [
        client.post("/v1/sessions", json=body),
        client.post("/v1/recommendations", json=body),
        client.post(f"/v1/sessions/{session_id}/feedback", json=body),
        client.get(f"/v1/sessions/{session_id}/recommendations", params={"k": k}),
    ]
    for answer in answers:
        assert answer.status_code < 500, (answer.request.url, body, answer.text)


# ---------------------------------------------------------------- concurrency and bounded memory


def test_concurrent_feedback_on_one_session_is_all_applied_in_each_senders_order(recommender):
    store = SessionStore(max_sessions=10, max_history=1000)
    with ServerThread(create_app(recommender, store)) as url:
        session_id = httpx.post(f"{url}/v1/sessions", json={}).json()["session_id"]
        senders, each = 8, 12
        failures: list[str] = []

        def send(sender: int) -> None:
            with httpx.Client(base_url=url) as http:
                for step in range(each):
                    item = sender * each + step
                    answer = http.post(f"/v1/sessions/{session_id}/feedback", json={"item_id": item, "clicked": step % 2 == 0})
                    if answer.status_code != 200:
                        failures.append(answer.text)

        threads = [threading.Thread(target=send, args=(sender,)) for sender in range(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        view = httpx.get(f"{url}/v1/sessions/{session_id}").json()
    assert failures == []
    assert sorted(view["items"]) == list(range(senders * each))
    for sender in range(senders):
        mine = [item for item in view["items"] if item // each == sender]
        assert mine == sorted(mine)  # each sender's feedback in the order it was sent
    assert view["clicks"] == [int((item % each) % 2 == 0) for item in view["items"]]
    assert view["session_steps"] == senders * each


def test_the_store_stays_bounded_over_a_long_run():
    clock = FakeClock()
    store = SessionStore(max_sessions=50, idle_timeout=10.0, clock=clock)
    for index in range(5_000):
        clock.now += 0.01
        store.create([index % 7], [1], observer_state=None)
    assert len(store) == 50 and store.evicted == 4_950
    assert len(store._ended) <= 50  # the memory of ended ids is bounded too
    clock.now += 11.0
    assert store.purge_expired() == 50 and len(store) == 0


# ---------------------------------------------------------------- agent files and the command line


def test_a_saved_dqn_is_served_from_its_file(tmp_path):
    env = DriftingUserEnv(config=EnvConfig(device="cpu"))
    agent = DQNAgent(public_view(env))
    path = agent.save(tmp_path / "dqn.pt")
    served = ServedRecommender.from_file(path)
    assert served.kind == "DQNAgent" and served.served.score_name == "Q value"
    observation, _ = env.reset(seed=1)
    items, scores = served.rank(observation, session_items=[], k=3)
    q = agent.q_values(observation[None]).detach().numpy()[0]
    assert items[0] == int(q.argmax()) and np.allclose(scores, np.sort(q)[::-1][:3], atol=1e-6)


def test_unservable_and_missing_agent_files_are_refused(tmp_path):
    env = DriftingUserEnv(config=EnvConfig(device="cpu"))
    path = save_agent_file(tmp_path / "gru.pt", "GRU4RecAgent", env.catalog, env.observation_space.shape, env.config)
    with pytest.raises(UnservableAgentError, match="'GRU4RecAgent'.*served kinds"):
        ServedRecommender.from_file(path)
    with pytest.raises(FileNotFoundError, match="no agent file"):
        ServedRecommender.from_file(tmp_path / "missing.pt")


def _not_agent_files(tmp_path):
    """Paths that ``--agent`` must refuse in one line: (path, what the line says)."""
    text = tmp_path / "README.md"
    text.write_text("# not an agent\n", encoding="utf-8")
    no_kind = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, no_kind)
    a_list = tmp_path / "list.pt"
    torch.save([1, 2, 3], a_list)
    folder = tmp_path / "folder"
    folder.mkdir()
    unopenable = tmp_path / "agent.sock"  # a socket: open() fails with ENXIO, even for root
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(unopenable))
    listener.close()
    return [
        (text, "is not a saved recenv agent (torch's weights-only loader, which runs no code from a file, "
               "could not read it: UnpicklingError)"),
        (no_kind, "is a torch file but not a saved recenv agent (it records no agent kind)"),
        (a_list, "is not a saved recenv agent (a torch file, but it holds no dict of weights)"),
        (folder, "is a directory, not an agent file"),
        (tmp_path / "missing.pt", "no agent file at"),
        (unopenable, "cannot open agent file"),
    ]


def test_a_file_that_is_not_an_agent_ends_the_command_in_one_line(tmp_path, capsys):
    for path, says in _not_agent_files(tmp_path):
        with pytest.raises(SystemExit) as exit_info:
            serve_command(["--agent", str(path)])
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(lines) == 1, (path, lines)
        assert lines[0].startswith("python -m serving: error: ") and str(path) in lines[0] and says in lines[0]
        if "cannot open" not in says:
            assert "files written by agent.save(path) for one of: DQNAgent," in lines[0]


def test_an_unreadable_agent_file_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "dqn.pt"
    path.write_bytes(b"x")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user reads files whatever their mode (root)")
        with pytest.raises(SystemExit) as exit_info:
            serve_command(["--agent", str(path)])
    finally:
        path.chmod(0o600)
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and lines == [f"python -m serving: error: cannot open agent file {path}: "
                                                   "Permission denied"]


class _RunsCode:
    """Unpickled with the unsafe loader, makes a folder: proof that the file's code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_a_malicious_agent_file_is_refused_without_running_its_code(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"agent": "DQNAgent", "payload": _RunsCode(marker)}, path)
    with pytest.raises(AgentFileError, match="is not a saved recenv agent .*could not read it: UnpicklingError"):
        ServedRecommender.from_file(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the file really runs code when loaded unsafely
    assert marker.is_dir()


def test_recenv_serve_hands_its_arguments_to_serving(capsys):
    """The ``recenv`` console script (benchmarks' one command line) forwards ``serve`` to :func:`serving.command_line.main`."""
    from benchmarks.command_line import main as recenv

    with pytest.raises(SystemExit) as exit_info:
        recenv(["serve", "--max-k", "0"], prog="recenv")
    assert exit_info.value.code == 2 and "recenv serve: error: --max-k must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "says"), [
    (["--max-sessions", "0"], "max_sessions must be at least 1"),
    (["--agent", "/no/such/agent.pt"], "no agent file at /no/such/agent.pt"),
    (["--max-k", "0"], "--max-k must be at least 1"),
])
def test_bad_serve_options_end_with_a_usage_error(capsys, argv, says):
    with pytest.raises(SystemExit) as exit_info:
        serve_command(argv)
    assert exit_info.value.code == 2 and says in capsys.readouterr().err


def test_a_persona_fits_a_short_history_limit(recommender):
    client = TestClient(create_app(recommender, SessionStore(max_history=3)))
    answer = client.post("/v1/sessions", json={"persona": "cooking"})
    assert answer.status_code == 201 and answer.json()["past_length"] == 3


def test_a_persona_model_that_cannot_load_is_a_503_that_says_so(client, recommender, monkeypatch):
    def cannot_load(persona, length):
        raise ModelLoadError("no local files for the model")

    monkeypatch.setattr(recommender, "persona_history", cannot_load)
    answer = client.post("/v1/sessions", json={"persona": "cooking"})
    assert answer.status_code == 503 and "no local files for the model" in answer.json()["detail"]


def test_a_failing_request_is_counted_as_a_500(client, recommender, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    session_id = new_session(client)
    monkeypatch.setattr(recommender, "rank", broken)
    assert client.get(f"/v1/sessions/{session_id}/recommendations").status_code == 500
    text = client.get("/metrics").text
    assert 'recenv_requests_total{method="GET",route="/v1/sessions/{session_id}/recommendations",status="500"} 1.0' in text


def test_the_no_repeat_memory_starts_over_as_the_agent_s_does():
    """choose_unshown clears a user's memory once every item was shown, before choosing the next;
    the service's memory of a session's items is the agent's, as it takes effect on the next choice."""
    shown = np.zeros((1, 3), dtype=bool)
    chosen: list[int] = []
    for _ in range(7):
        in_effect = set() if shown.all() else set(np.flatnonzero(shown[0]).tolist())
        assert session_memory(chosen, num_items=3) == in_effect, chosen
        chosen.append(int(choose_unshown(np.array([[3.0, 2.0, 1.0]]), shown, None, np.random.default_rng(0))[0]))
    assert chosen == [0, 1, 2, 0, 1, 2, 0]
