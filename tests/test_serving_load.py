"""The load test (serving/load_test.py) at a tiny size: no errors, every session's history matches
the feedback sent, its files are written; a lost feedback is caught; only 127.0.0.1 is contacted."""

from __future__ import annotations

import csv
import json
import socket

import pytest

from serving import SessionStore, create_app
from serving.load_test import CSV_COLUMNS, check_local_url, main
from serving.local_server import ServerProcess, ServerThread
from serving.recommender import ServedRecommender

REQUIRED_COLUMNS = ["clients", "requests", "seconds", "requests_per_s", "p50_ms", "p99_ms", "errors",
                    "sessions_checked", "mismatches"]


@pytest.fixture(scope="module")
def recommender():
    return ServedRecommender.default()


def _read(out):
    with open(out / "load.csv", newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
        columns = reader.fieldnames
    return columns, rows, json.loads((out / "load.json").read_text(encoding="utf-8"))


def test_tiny_load_against_a_server_thread(recommender, tmp_path):
    out = tmp_path / "load"
    with ServerThread(create_app(recommender)) as url:
        report = main(["--url", url, "--clients", "1", "4", "--requests", "60", "--max-seconds", "20", "--seed", "5",
                       "--out", str(out), "--no-progress"])
    assert report["ok"] and report["errors"] == 0 and report["mismatches"] == 0
    assert report["sessions_checked"] > 0
    assert (out / "load.md").is_file()
    columns, rows, saved = _read(out)
    assert columns == CSV_COLUMNS and set(REQUIRED_COLUMNS) <= set(columns)
    assert [int(row["clients"]) for row in rows] == [1, 4]
    for row in rows:
        assert int(row["requests"]) == 60 and row["stopped_by"] == "requests"
        assert float(row["requests_per_s"]) > 0 and float(row["seconds"]) > 0
        assert 0 < float(row["p50_ms"]) <= float(row["p99_ms"])
        assert int(row["errors"]) == 0 and int(row["mismatches"]) == 0 and int(row["sessions_checked"]) > 0
    assert saved["ok"] and saved["command"].startswith("python -m serving.load_test --url http://127.0.0.1:")
    machine = saved["machine"]
    assert machine["cpu_count"] >= 1 and machine["available_cores"] >= 1 and machine["python"]
    assert {"torch", "fastapi", "uvicorn"} <= set(machine["versions"])
    assert saved["server"]["fresh"] is False and saved["server"]["agent"]["agent"] == "SupervisedLSTMAgent"
    # the server counted every request this run got an answer to, and ServerThread's readiness poll
    assert saved["server_metrics"]["requests"] == saved["client_requests_answered"] + 1
    assert saved["server_metrics"]["non_2xx"] == 0


def test_fresh_server_process_by_default(tmp_path):
    out = tmp_path / "fresh"
    report = main(["--clients", "2", "--requests", "30", "--max-seconds", "20", "--out", str(out), "--no-progress"],
                  prog="recenv load-test")
    assert report["ok"] and report["server"]["fresh"] is True and report["server"]["torch_threads"] == 1
    assert report["command"].startswith("recenv load-test --clients 2")
    assert report["server_metrics"]["requests"] == report["client_requests_answered"]
    (level,) = report["levels"]
    assert level["requests"] == 30 and level["errors"] == 0 and level["requests_per_s"] > 0
    assert level["server_cpu_cores"] is None or level["server_cpu_cores"] >= 0
    assert level["server_rss_mb_end"] is None or level["server_rss_mb_end"] > 10


class _LosingStore(SessionStore):
    """Loses every third feedback from the session's history while answering 200, as a broken store would."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def record(self, session, item, click, advance):
        result = super().record(session, item, click, advance)
        self.calls += 1
        if self.calls % 3 == 0:
            with session.lock:
                session.items.pop()
                session.clicks.pop()
        return result


def test_a_lost_feedback_is_a_mismatch_and_fails_the_run(recommender, tmp_path, capsys):
    out = tmp_path / "losing"
    with ServerThread(create_app(recommender, _LosingStore())) as url, pytest.raises(SystemExit) as exit_info:
        main(["--url", url, "--clients", "1", "--requests", "40", "--out", str(out), "--no-progress"])
    assert exit_info.value.code == 1
    _, rows, saved = _read(out)
    assert int(rows[0]["mismatches"]) > 0 and saved["ok"] is False
    assert "differs from the feedback recorded" in saved["levels"][0]["first_mismatches"][0]
    assert "FAILED" in capsys.readouterr().err


@pytest.mark.parametrize("url", [
    "http://example.com:8000",
    "http://localhost:8000",
    "http://10.0.0.1:8000",
    "http://127.0.0.2:8000",
    "http://127.0.0.1.example.com:8000",
    "http://[::1]:8000",
    "https://127.0.0.1:8000",
    "http://user@127.0.0.1:8000",
    "127.0.0.1:8000",
])
def test_a_url_not_on_127_0_0_1_is_refused_before_any_connection(url, monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise AssertionError("the load test touched the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(ServerProcess, "__enter__", no_network)
    with pytest.raises(SystemExit) as exit_info:
        main(["--url", url, "--requests", "10", "--no-progress"])
    assert exit_info.value.code == 2
    assert "127.0.0.1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="127.0.0.1"):
        check_local_url(url)


def test_a_fresh_server_that_refuses_its_agent_file_ends_the_run_in_one_line(tmp_path, capsys):
    not_an_agent = tmp_path / "README.md"
    not_an_agent.write_text("# not an agent\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["--agent", str(not_an_agent), "--out", str(tmp_path / "load"), "--no-progress"])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert exit_info.value.code == 2 and errors == [
        f"python -m serving.load_test: error: the fresh server did not start: python -m serving: error: "
        f"{not_an_agent} is not a saved recenv agent (torch's weights-only loader, which runs no code from a file, "
        "could not read it: UnpicklingError); the service loads files written by agent.save(path) for one of: "
        "DQNAgent, LongTermValueAgent, PPOAgent, QLearningAgent, SB3DQNAgent, SB3PPOAgent, SupervisedLSTMAgent"]
    assert not (tmp_path / "load").exists()


def test_local_urls_are_accepted():
    assert check_local_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    assert check_local_url(" http://127.0.0.1 ") == "http://127.0.0.1"


class _FailingStore(SessionStore):
    """Fails every second feedback with an exception (a 500)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def record(self, session, item, click, advance):
        self.calls += 1
        if self.calls % 2 == 0:
            raise RuntimeError("the store broke")
        return super().record(session, item, click, advance)


def test_server_errors_are_counted_and_fail_the_run(recommender, tmp_path):
    out = tmp_path / "failing"
    with ServerThread(create_app(recommender, _FailingStore())) as url, pytest.raises(SystemExit) as exit_info:
        main(["--url", url, "--clients", "2", "--requests", "40", "--out", str(out), "--no-progress"])
    assert exit_info.value.code == 1
    saved = json.loads((out / "load.json").read_text(encoding="utf-8"))
    level = saved["levels"][0]
    assert level["errors"] > 0 and saved["ok"] is False
    assert any("HTTP 500" in message for message in level["first_errors"])
    assert level["by_route"]["feedback"]["non_2xx_or_failed"] > 0
    # a feedback that failed with a 5xx may have been applied: its session is not checked, nor a mismatch
    assert level["mismatches"] == 0 and level["sessions_unchecked"] > 0
