"""Load test of the HTTP service: throughput, latency and correctness under concurrent clients.

For each concurrency level of ``--clients`` (default 1, 8 and 64), that many simulated clients run
at once, each in its own thread with its own ``httpx.Client`` (one keep-alive connection, like one
user's app). A client loops over sessions:

1. ``POST /v1/sessions`` with a short random past (1 to 10 item ids, clicked with probability 0.3);
2. 3 to 8 rounds of ``GET /v1/sessions/{id}/recommendations?k=10`` then
   ``POST /v1/sessions/{id}/feedback`` on one of the returned items, clicked at random;
3. ``DELETE /v1/sessions/{id}`` for a quarter of its sessions; the others are left open.

Every random choice comes from the client's own ``numpy.random.default_rng(seed + client)``. A
level stops at whichever comes first: ``--requests`` requests in all, or ``--max-seconds`` seconds
(requests in flight then finish). Each request's latency is timed on the client
(``time.perf_counter``, from sending to the parsed response: the client's own share of the cores is
in it); a non-2xx answer, a transport error (timeouts included) or a malformed body is an error.

After each level, every session that was not deleted is read back (``GET /v1/sessions/{id}``): its
past must be the one sent, and its session history (``items``/``clicks``) exactly the feedback the
client recorded, in order — a lost, duplicated or reordered feedback is a mismatch. At the end
``GET /metrics`` is scraped once for the server's own request count and mean latency by route.

Reported per level: clients, requests, seconds, requests/s, p50/p90/p99/max latency (ms), errors,
sessions checked and mismatches, and the CPU the clients (and a fresh server) used: clients and
server share the machine's cores, so a high client share means the numbers are partly the
client's. Errors or mismatches make the exit status 1.

Why threads and not asyncio: clients on ``httpx.AsyncClient`` spent more client CPU per request
than ``httpx.Client`` in threads, so they took more of the shared cores from the server and measured
fewer requests/s with a longer tail (measured: ``docs/results/serving-load.md``); threads that block
on their socket are also what independent users look like to the server.

Only a service on 127.0.0.1 is ever contacted: ``--url`` naming any other host is refused before
any connection. Without ``--url`` a fresh server (``python -m serving``, its own process, with
``--server-threads`` torch threads) is started on a free port and stopped afterwards. ::

    python -m serving.load_test                                  # 1, 8, 64 clients, fresh server
    python -m serving.load_test --clients 1 4 --requests 500 --max-seconds 20
    python -m serving.load_test --url http://127.0.0.1:8000      # a service already running here
    recenv load-test --agent results/dqn.pt                      # the same, through the console script

Writes ``load.md``, ``load.csv`` and ``load.json`` into ``--out`` (default ``results/serving-load``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import platform
import shlex
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
from tqdm.auto import tqdm

__all__ = ["LevelResult", "check_local_url", "main", "run_level"]

ALLOWED_HOST = "127.0.0.1"
DEFAULT_CLIENTS = (1, 8, 64)
DEFAULT_REQUESTS = 3000
DEFAULT_MAX_SECONDS = 60.0
DEFAULT_OUT = "results/serving-load"

K = 10
PAST_LENGTHS = (1, 10)  # a new session's past: 1 to 10 interactions
ROUNDS = (3, 8)  # recommendation + feedback rounds per session
PAST_CLICK_PROBABILITY = 0.3
FEEDBACK_CLICK_PROBABILITY = 0.3
DELETE_FRACTION = 0.25
REQUEST_TIMEOUT_S = 30.0
WARMUP_REQUESTS = 20  # one client before the first level, not reported (first calls pay lazy set-up)
CHECK_THREADS = 4
ERRORS_SHOWN = 5
ERRORS_KEPT_PER_CLIENT = 5

CSV_COLUMNS = [
    "clients", "requests", "seconds", "requests_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors",
    "stopped_by", "sessions_created", "sessions_deleted", "sessions_checked", "mismatches", "sessions_unchecked",
    "sessions_evicted",
    "client_cpu_cores", "server_cpu_cores", "server_rss_mb_start", "server_rss_mb_end",
]
"""Columns of ``load.csv`` (one row per level); ``*_cpu_cores``: CPU seconds / wall seconds;
``server_rss_mb_*``: the fresh server's resident memory when the level starts and ends (MB)."""


# ---------------------------------------------------------------- the target


def check_local_url(url: str) -> str:
    """The base URL of a service on 127.0.0.1 (no trailing slash).

    :raises ValueError: any other host (``localhost`` included: it is a name, resolved elsewhere),
        another scheme than http, credentials, a query or a fragment.
    """
    parts = urlsplit(url.strip())
    if parts.scheme != "http" or not parts.netloc:
        raise ValueError(f"--url must be http://127.0.0.1[:PORT], got {url!r}")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError(f"--url must be a plain http://127.0.0.1[:PORT] (no credentials, query or fragment), "
                         f"got {url!r}")
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError(f"--url {url!r} has a bad port: {error}") from None
    if parts.hostname != ALLOWED_HOST:
        raise ValueError(
            f"the load test only runs against {ALLOWED_HOST} (this machine), not {parts.hostname!r}: "
            f"--url must be http://{ALLOWED_HOST}[:PORT]; leave --url out to start a fresh local server"
        )
    port_part = f":{port}" if port is not None else ""
    return f"http://{ALLOWED_HOST}{port_part}{parts.path.rstrip('/')}"


# ---------------------------------------------------------------- one level


class Budget:
    """The requests a level may still send, shared by its clients: none after ``requests`` or
    after ``deadline`` (``time.perf_counter`` seconds), whichever comes first."""

    def __init__(self, requests: int, max_seconds: float):
        self.requests = requests
        self.max_seconds = max_seconds
        self.deadline = float("inf")
        self.issued = 0
        self.stopped_by = ""
        self.stop = threading.Event()  # set on Ctrl-C, or when a client gives up
        self._lock = threading.Lock()

    def start(self) -> float:
        started = time.perf_counter()
        self.deadline = started + self.max_seconds
        return started

    def take(self) -> bool:
        with self._lock:
            if self.stop.is_set():
                self.stopped_by = self.stopped_by or "interrupted"
                return False
            if self.issued >= self.requests:
                self.stopped_by = self.stopped_by or "requests"
                return False
            if time.perf_counter() >= self.deadline:
                self.stopped_by = self.stopped_by or "time"
                return False
            self.issued += 1
            return True


@dataclass
class SessionLog:
    """What one client sent to one session: its past and the feedback the server accepted."""

    session_id: str
    past_items: list[int]
    past_clicks: list[int]
    feedback: list[tuple[int, int]] = field(default_factory=list)
    deleted: bool = False
    uncertain: bool = False  # a feedback or delete failed in a way that may have reached the server


class SimulatedClient:
    """One simulated user's app: its own connection, random stream and records."""

    def __init__(self, index: int, http: httpx.Client, rng: np.random.Generator, num_items: int, budget: Budget):
        self.index = index
        self.http = http
        self.rng = rng
        self.num_items = num_items
        self.budget = budget
        self.records: list[tuple[str, int, float]] = []  # (route, status or 0 for a transport error, seconds)
        self.errors = 0
        self.first_errors: list[tuple[float, str]] = []  # (perf_counter, message), the first few
        self.sessions: list[SessionLog] = []

    def _error(self, message: str) -> None:
        self.errors += 1
        if len(self.first_errors) < ERRORS_KEPT_PER_CLIENT:
            self.first_errors.append((time.perf_counter(), f"client {self.index}: {message}"))

    def _call(self, route: str, method: str, url: str, **kwargs: Any) -> tuple[httpx.Response | None, bool]:
        """One timed request: ``(response if 2xx else None, whether it may have reached the server)``."""
        started = time.perf_counter()
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            self.records.append((route, 0, time.perf_counter() - started))
            self._error(f"{method} {url}: {type(error).__name__}: {error}")
            return None, not isinstance(error, httpx.ConnectError)
        self.records.append((route, response.status_code, time.perf_counter() - started))
        if not response.is_success:
            self._error(f"{method} {url}: HTTP {response.status_code}: {response.text[:300]}")
            return None, response.status_code >= 500
        return response, True

    def run(self) -> None:
        try:
            self._sessions()
        except Exception as error:  # noqa: BLE001 (a client that breaks must count as an error, not pass quietly)
            self._error(f"stopped by {type(error).__name__}: {error}")

    def _sessions(self) -> None:
        rng = self.rng
        while True:
            length = int(rng.integers(PAST_LENGTHS[0], PAST_LENGTHS[1] + 1))
            past_items = [int(i) for i in rng.integers(self.num_items, size=length)]
            past_clicks = [int(c) for c in rng.random(length) < PAST_CLICK_PROBABILITY]
            rounds = int(rng.integers(ROUNDS[0], ROUNDS[1] + 1))
            delete = bool(rng.random() < DELETE_FRACTION)
            if not self.budget.take():
                return
            response, _ = self._call("create", "POST", "/v1/sessions",
                                     json={"items": past_items, "clicks": past_clicks})
            if response is None:
                continue
            try:
                session_id = str(response.json()["session_id"])
            except (ValueError, KeyError, TypeError) as error:
                self._error(f"POST /v1/sessions: malformed body ({error!r}): {response.text[:300]}")
                continue
            session = SessionLog(session_id, past_items, past_clicks)
            self.sessions.append(session)
            for _ in range(rounds):
                if not self.budget.take():
                    return
                response, _ = self._call("recommend", "GET", f"/v1/sessions/{session_id}/recommendations",
                                         params={"k": K})
                if response is None:
                    break
                try:
                    shown = [int(item["item_id"]) for item in response.json()["items"]]
                    if not shown:
                        raise ValueError("no items")
                except (ValueError, KeyError, TypeError) as error:
                    self._error(f"GET recommendations: malformed body ({error!r}): {response.text[:300]}")
                    break
                item = shown[int(rng.integers(len(shown)))]
                clicked = bool(rng.random() < FEEDBACK_CLICK_PROBABILITY)
                if not self.budget.take():
                    return
                response, reached = self._call("feedback", "POST", f"/v1/sessions/{session_id}/feedback",
                                               json={"item_id": item, "clicked": clicked})
                if response is None:
                    session.uncertain = session.uncertain or reached
                    break
                session.feedback.append((item, int(clicked)))
            else:
                if delete:
                    if not self.budget.take():
                        return
                    response, reached = self._call("delete", "DELETE", f"/v1/sessions/{session_id}")
                    session.deleted = response is not None
                    session.uncertain = session.uncertain or (response is None and reached)


def _http_client(base_url: str) -> httpx.Client:
    # trust_env=False: no proxy from the environment, ever (the requests must go to 127.0.0.1 only)
    return httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S, trust_env=False,
                        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far (Linux ``/proc``), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _resident_mb(pid: int | None) -> float | None:
    """Resident memory of a process in MB (Linux ``/proc``, VmRSS), or None."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass
class LevelResult:
    """One concurrency level: the load's numbers, its errors and the sessions' check."""

    clients: int
    requests: int
    seconds: float
    stopped_by: str
    latencies_ms: np.ndarray = field(repr=False)
    routes: list[str] = field(repr=False)
    statuses: np.ndarray = field(repr=False)
    errors: int
    first_errors: list[str]
    sessions: list[SessionLog] = field(repr=False)
    client_cpu_seconds: float
    server_cpu_seconds: float | None = None
    server_rss_mb: tuple[float | None, float | None] = (None, None)  # at the level's start and end
    checked: int = 0
    mismatches: int = 0
    unchecked: int = 0
    evicted: int = 0  # sessions the server's store evicted before the check (--max-sessions below the sessions made)
    first_mismatches: list[str] = field(default_factory=list)
    check_requests: int = 0

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, q: float, route: str | None = None) -> float:
        values = self.latencies_ms if route is None else self.latencies_ms[np.asarray(self.routes) == route]
        return float(np.percentile(values, q)) if len(values) else float("nan")

    def row(self) -> dict[str, Any]:
        """The CSV row."""
        server = None if self.server_cpu_seconds is None else round(self.server_cpu_seconds / self.seconds, 3)
        return {
            "clients": self.clients, "requests": self.requests, "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.requests_per_s, 1), "p50_ms": round(self.percentile_ms(50), 2),
            "p90_ms": round(self.percentile_ms(90), 2), "p99_ms": round(self.percentile_ms(99), 2),
            "max_ms": round(float(self.latencies_ms.max()) if self.requests else float("nan"), 2),
            "errors": self.errors, "stopped_by": self.stopped_by, "sessions_created": len(self.sessions),
            "sessions_deleted": sum(s.deleted for s in self.sessions), "sessions_checked": self.checked,
            "mismatches": self.mismatches, "sessions_unchecked": self.unchecked,
            "sessions_evicted": self.evicted,
            "client_cpu_cores": round(self.client_cpu_seconds / self.seconds, 3) if self.seconds > 0 else None,
            "server_cpu_cores": server,
            "server_rss_mb_start": None if self.server_rss_mb[0] is None else round(self.server_rss_mb[0], 1),
            "server_rss_mb_end": None if self.server_rss_mb[1] is None else round(self.server_rss_mb[1], 1),
        }

    def by_route(self) -> dict[str, dict[str, Any]]:
        routes = np.asarray(self.routes)
        out = {}
        for route in ("create", "recommend", "feedback", "delete"):
            mask = routes == route
            if mask.any():
                statuses = self.statuses[mask]
                out[route] = {"requests": int(mask.sum()), "p50_ms": round(self.percentile_ms(50, route), 2),
                              "p99_ms": round(self.percentile_ms(99, route), 2),
                              "non_2xx_or_failed": int(((statuses < 200) | (statuses >= 300)).sum())}
        return out


def run_level(base_url: str, clients: int, requests: int, max_seconds: float, seed: int, num_items: int,
              server_pid: int | None = None, progress: bool = True, label: str | None = None) -> LevelResult:
    """Run ``clients`` simulated clients against ``base_url`` until ``requests`` requests or
    ``max_seconds`` seconds, whichever comes first (no check of the sessions: :func:`check_sessions`)."""
    budget = Budget(requests, max_seconds)
    https = [_http_client(base_url) for _ in range(clients)]  # made before the clock starts
    simulated = [SimulatedClient(i, http, np.random.default_rng(seed + i), num_items, budget)
                 for i, http in enumerate(https)]
    go = threading.Event()

    def body(client: SimulatedClient) -> None:
        go.wait()
        client.run()

    threads = [threading.Thread(target=body, args=(c,), name=f"load-client-{c.index}", daemon=True) for c in simulated]
    for thread in threads:
        thread.start()
    bar = tqdm(total=requests, desc=label or f"{clients} client{'s' if clients > 1 else ''}", unit="req",
               disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        cpu0, server0, rss0 = time.process_time(), _cpu_seconds(server_pid), _resident_mb(server_pid)
        started = budget.start()
        go.set()
        while any(thread.is_alive() for thread in threads):
            time.sleep(0.1)
            done = sum(len(c.records) for c in simulated)
            bar.update(done - bar.n)
            bar.set_postfix(errors=sum(c.errors for c in simulated), refresh=False)
        seconds = time.perf_counter() - started
        cpu, server1, rss1 = time.process_time() - cpu0, _cpu_seconds(server_pid), _resident_mb(server_pid)
        bar.update(sum(len(c.records) for c in simulated) - bar.n)
    except KeyboardInterrupt:
        budget.stop.set()
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT_S)
        raise
    finally:
        bar.close()
        for http in https:
            http.close()
    records = [record for c in simulated for record in c.records]
    first_errors = [message for _, message in sorted(e for c in simulated for e in c.first_errors)][:ERRORS_SHOWN]
    return LevelResult(
        clients=clients, requests=len(records), seconds=seconds, stopped_by=budget.stopped_by or "requests",
        latencies_ms=np.array([r[2] for r in records], dtype=np.float64) * 1000.0, routes=[r[0] for r in records],
        statuses=np.array([r[1] for r in records], dtype=np.int64), errors=sum(c.errors for c in simulated),
        first_errors=first_errors, sessions=[s for c in simulated for s in c.sessions], client_cpu_seconds=cpu,
        server_cpu_seconds=None if server0 is None or server1 is None else server1 - server0,
        server_rss_mb=(rss0, rss1),
    )


def check_sessions(base_url: str, result: LevelResult) -> None:
    """Read back every session not deleted: its past is the one sent, and its session history
    exactly the feedback the client recorded, in order. Fills ``checked``/``mismatches``."""
    sessions = [s for s in result.sessions if not s.deleted and not s.uncertain]
    result.unchecked = sum(1 for s in result.sessions if not s.deleted and s.uncertain)
    mismatches: list[str] = []
    lock = threading.Lock()

    def check(part: list[SessionLog]) -> None:
        with _http_client(base_url) as http:
            for session in part:
                problem = _session_problem(http, session)
                with lock:
                    result.check_requests += 1
                    if problem is _EVICTED:
                        result.evicted += 1
                    elif problem is not None:
                        mismatches.append(f"session {session.session_id}: {problem}")

    parts = [sessions[i::CHECK_THREADS] for i in range(CHECK_THREADS)]
    with ThreadPoolExecutor(CHECK_THREADS) as pool:
        list(pool.map(check, [p for p in parts if p]))
    result.checked = len(sessions) - result.evicted
    result.mismatches = len(mismatches)
    result.first_mismatches = mismatches[:ERRORS_SHOWN]


_EVICTED = "evicted"
"""A session the server's bounded store evicted (it was full): said so by its 404, not a mismatch.
Sessions are only evicted when a run makes more than the server's ``--max-sessions``."""


def _session_problem(http: httpx.Client, session: SessionLog) -> str | None:
    try:
        response = http.get(f"/v1/sessions/{session.session_id}")
    except httpx.HTTPError as error:
        return f"could not be read: {type(error).__name__}: {error}"
    if response.status_code == 404 and ("evicted" in response.text or "no longer remembers" in response.text):
        return _EVICTED  # evicted, or evicted and then forgotten by the store's bounded memory of ended ids
    if response.status_code != 200:
        return f"HTTP {response.status_code} on reading it back: {response.text[:300]}"
    try:
        view = response.json()
        past = (list(view["past_items"]), list(view["past_clicks"]))
        history = list(zip(view["items"], view["clicks"]))
    except (ValueError, KeyError, TypeError) as error:
        return f"malformed session view ({error!r})"
    if past != (session.past_items, session.past_clicks):
        return f"past {past} differs from the one sent {(session.past_items, session.past_clicks)}"
    expected = [tuple(f) for f in session.feedback]
    if [tuple(h) for h in history] != expected:
        return f"history {history} differs from the feedback recorded {expected}"
    return None


# ---------------------------------------------------------------- the server's metrics


def parse_metrics(text: str) -> dict[str, Any]:
    """The server's request count by route (``/metrics`` itself left out: the scrape is not
    counted in its own answer), how many were not 2xx, and its mean latency by route (ms)."""
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[str, int] = {}
    not_2xx = 0
    seconds_sum: dict[str, float] = {}
    seconds_count: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = f"{sample.labels.get('method', '?')} {sample.labels.get('route', '?')}"
            if sample.name == "recenv_requests_total":
                counts[key] = counts.get(key, 0) + int(sample.value)
                if not sample.labels.get("status", "").startswith("2"):
                    not_2xx += int(sample.value)
            elif sample.name == "recenv_request_seconds_sum":
                seconds_sum[key] = sample.value
            elif sample.name == "recenv_request_seconds_count":
                seconds_count[key] = sample.value
    mean_ms = {key: round(1000 * seconds_sum[key] / n, 3)
               for key, n in seconds_count.items() if n and key in seconds_sum}
    counted = {key: n for key, n in counts.items() if not key.endswith(" /metrics")}
    return {"requests": sum(counted.values()), "non_2xx": not_2xx, "by_route": dict(sorted(counted.items())),
            "mean_ms_by_route": dict(sorted(mean_ms.items()))}


# ---------------------------------------------------------------- the machine


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (other jobs on the machine skew the numbers)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict[str, Any]:
    from recenv.threads import available_cores

    cpu = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu, "cpu_count": os.cpu_count(), "available_cores": available_cores(),
        "load_average_at_start": _load_average(),
        "platform": platform.platform(), "python": platform.python_version(),
        "versions": {name: _version(name) for name in ("torch", "fastapi", "uvicorn", "starlette", "pydantic", "httpx",
                                                       "numpy", "h11", "httptools", "uvloop")},
    }


# ---------------------------------------------------------------- the report


def _ms(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:,.1f}"


def _memory(row: dict[str, Any]) -> str:
    start, end = row["server_rss_mb_start"], row["server_rss_mb_end"]
    return "" if start is None or end is None else f"{start:,.0f} → {end:,.0f}"


def markdown(report: dict[str, Any], results: list[LevelResult]) -> str:
    """``load.md``: the run's setting, a table by level, latency by request, the server's own count, the verdict."""
    lines = [*_setting_lines(report), "", *_level_table(results), "", *_route_table(results), "",
             _server_metrics_line(report), "", *_result_lines(report, results)]
    return "\n".join(lines) + "\n"


def _setting_lines(report: dict[str, Any]) -> list[str]:
    machine = report["machine"]
    versions = ", ".join(f"{name} {v}" for name, v in machine["versions"].items() if v is not None)
    server = report["server"]
    agent = server["agent"]
    where = (f"fresh `python -m serving`, torch threads {server['torch_threads']}" if server["fresh"]
             else "given by --url")
    settings = report["settings"]
    return [
        "## Load test of the HTTP service",
        "",
        f"- Command: `{report['command']}`",
        (f"- Machine: {machine['cpu'] or 'unknown CPU'}, os.cpu_count() {machine['cpu_count']}, available cores "
         f"{machine['available_cores']} (clients and server share them); load average (1, 5, 15 min) at start "
         f"{machine['load_average_at_start']}, at end {machine.get('load_average_at_end')}"),
        f"- Versions: Python {machine['python']}, {versions}",
        (f"- Server: {server['url']} ({where}); agent {agent.get('agent')} ({agent.get('source')}), "
         f"{agent.get('num_items')} items"),
        (f"- Each client: own thread and `httpx.Client`; sessions of a 1-10 item random past, then 3-8 rounds of "
         f"recommendations (k={K}) + feedback, a quarter deleted; per level at most {settings['requests']} "
         f"requests or {settings['max_seconds']:g} s, seed {settings['seed']}; {WARMUP_REQUESTS} warm-up requests "
         "first (not reported). Latency: client-side, from sending to the parsed answer."),
    ]


def _level_table(results: list[LevelResult]) -> list[str]:
    lines = [
        ("| clients | requests | seconds | requests/s | p50 ms | p99 ms | max ms | errors | sessions checked "
         "| mismatches | client CPU (cores) | server CPU (cores) | server memory MB (start → end) | stopped by |"),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        row = result.row()
        server_cpu = "" if row["server_cpu_cores"] is None else f"{row['server_cpu_cores']:.2f}"
        lines.append(
            f"| {row['clients']} | {row['requests']:,} | {row['seconds']:.2f} | {row['requests_per_s']:,.1f} | "
            f"{_ms(row['p50_ms'])} | {_ms(row['p99_ms'])} | {_ms(row['max_ms'])} | {row['errors']} | "
            f"{row['sessions_checked']} | {row['mismatches']} | {row['client_cpu_cores']:.2f} | {server_cpu} | "
            f"{_memory(row)} | {row['stopped_by']} |")
    return lines


def _route_table(results: list[LevelResult]) -> list[str]:
    lines = ["Latency by request (ms, client-side):", "",
             "| clients | create p50 / p99 | recommend p50 / p99 | feedback p50 / p99 | delete p50 / p99 |",
             "|---:|---:|---:|---:|---:|"]
    for result in results:
        routes = result.by_route()
        cells = [f"{_ms(routes[r]['p50_ms'])} / {_ms(routes[r]['p99_ms'])}" if r in routes else ""
                 for r in ("create", "recommend", "feedback", "delete")]
        lines.append(f"| {result.clients} | " + " | ".join(cells) + " |")
    return lines


def _server_metrics_line(report: dict[str, Any]) -> str:
    metrics = report["server_metrics"]
    if metrics.get("requests") is None:
        return f"Server's `/metrics` could not be read: {metrics.get('error')}"
    sent = report["client_requests_answered"]
    agree = "the same count" if metrics["requests"] == sent else f"this run got {sent:,} answers"
    return (f"Server's `/metrics` at the end: {metrics['requests']:,} requests counted (all routes but "
            f"`/metrics`; {agree}{', readiness poll included' if report['server']['fresh'] else ''}), "
            f"{metrics['non_2xx']} not 2xx; server-side mean latency (ms): "
            + ", ".join(f"{k} {v:.2f}" for k, v in metrics["mean_ms_by_route"].items()) + ".")


def _result_lines(report: dict[str, Any], results: list[LevelResult]) -> list[str]:
    problems = [(r.clients, m) for r in results for m in r.first_errors]
    mismatched = [(r.clients, m) for r in results for m in r.first_mismatches]
    lines = [f"Result: {'OK' if report['ok'] else 'FAILED'} — {report['errors']} errors, "
             f"{report['mismatches']} mismatches in {report['sessions_checked']} sessions checked"
             + (f", {report['sessions_unchecked']} left unchecked (a failed feedback may have reached the server)"
                if report['sessions_unchecked'] else "")
             + (f", {report['sessions_evicted']} evicted by the server's bounded store before the check"
                if report['sessions_evicted'] else "") + "."]
    if problems:
        lines += ["", "First errors:", ""] + [f"- {n} clients: `{m}`" for n, m in problems[:ERRORS_SHOWN]]
    if mismatched:
        lines += ["", "First mismatches:", ""] + [f"- {n} clients: `{m}`" for n, m in mismatched[:ERRORS_SHOWN]]
    return lines


def write_outputs(out: Path, report: dict[str, Any], results: list[LevelResult]) -> str:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "load.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for result in results:
            writer.writerow(result.row())
    (out / "load.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n", encoding="utf-8")
    text = markdown(report, results)
    (out / "load.md").write_text(text, encoding="utf-8")
    return text


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


# ---------------------------------------------------------------- the command


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value:g}")
    return value


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Load test of the recenv HTTP service on 127.0.0.1 (see the module's docstring).")
    parser.add_argument("--url", default=None,
                        help=f"a running service, http://{ALLOWED_HOST}[:PORT] only (default: start a fresh one)")
    parser.add_argument("--clients", type=_positive_int, nargs="+", default=list(DEFAULT_CLIENTS),
                        help="concurrency levels: simulated clients at once (default: 1 8 64)")
    parser.add_argument("--requests", type=_positive_int, default=DEFAULT_REQUESTS,
                        help=f"most requests per level (default {DEFAULT_REQUESTS})")
    parser.add_argument("--max-seconds", type=_positive_float, default=DEFAULT_MAX_SECONDS,
                        help=f"most seconds per level (default {DEFAULT_MAX_SECONDS:g}); "
                             "the first bound reached (requests or seconds) stops it")
    parser.add_argument("--seed", type=int, default=0, help="client i draws from numpy.random.default_rng(seed + i)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"folder of load.md/.csv/.json (default {DEFAULT_OUT})")
    parser.add_argument("--agent", default=None, help="agent file for the fresh server (python -m serving --agent)")
    parser.add_argument("--max-sessions", type=_positive_int, default=None,
                        help="the fresh server's --max-sessions (default: its own, 10,000)")
    parser.add_argument("--server-threads", type=_positive_int, default=1,
                        help="torch threads of the fresh server (default 1; not used with --url)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m serving.load_test") -> dict[str, Any]:
    """Run the load test; returns the report (also written to ``--out``).

    :raises SystemExit: 2 for bad options (a non-local ``--url`` among them, before any
        connection); 1 when a request failed or a session's history did not match.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(prog)
    args = parser.parse_args(arguments)
    base_url = None
    if args.url is not None:
        try:
            base_url = check_local_url(args.url)
        except ValueError as error:
            parser.error(str(error))
        if args.agent is not None or args.max_sessions is not None:
            parser.error("--agent and --max-sessions are for the fresh server; the service at --url has its own")
    command = shlex.join([*shlex.split(prog), *arguments])

    if base_url is not None:
        report, results = _run(args, base_url, command, fresh=False, server_pid=None)
    else:
        from serving.local_server import ServerProcess, ServerStartError

        server_arguments = [] if args.agent is None else ["--agent", args.agent]
        if args.max_sessions is not None:
            server_arguments += ["--max-sessions", str(args.max_sessions)]
        server = ServerProcess(server_arguments, torch_threads=args.server_threads)
        print(f"starting a fresh server: {shlex.join(server.command)}", file=sys.stderr)
        with contextlib.ExitStack() as running:
            try:
                url = running.enter_context(server)
            except ServerStartError as error:  # e.g. an --agent that is not a saved agent: the server's one line
                print(f"{prog}: error: the fresh server did not start: {error.server_error_line() or error}",
                      file=sys.stderr)
                raise SystemExit(2) from None
            report, results = _run(args, url, command, fresh=True, server_pid=server.pid)
            if report["errors"]:
                report["server_stderr_tail"] = server.stderr_tail()

    text = write_outputs(Path(args.out), report, results)
    print(text)
    print(f"wrote {Path(args.out) / 'load.md'}, load.csv and load.json", file=sys.stderr)
    if not report["ok"]:
        print(f"load test FAILED: {report['errors']} errors, {report['mismatches']} mismatches", file=sys.stderr)
        raise SystemExit(1)
    return report


def _run(args: argparse.Namespace, base_url: str, command: str, fresh: bool,
         server_pid: int | None) -> tuple[dict[str, Any], list[LevelResult]]:
    machine = machine_info()
    with _http_client(base_url) as http:
        health = http.get("/v1/health")
        health.raise_for_status()
        agent = health.json()["agent"]
    num_items = int(agent["num_items"])
    answered = 1  # the health request above

    warmup = run_level(base_url, 1, WARMUP_REQUESTS, args.max_seconds, args.seed + 1_000_003, num_items,
                       progress=False)
    answered += int((warmup.statuses > 0).sum())

    results = []
    for clients in args.clients:
        result = run_level(base_url, clients, args.requests, args.max_seconds, args.seed, num_items,
                           server_pid=server_pid, progress=not args.no_progress)
        check_sessions(base_url, result)
        answered += int((result.statuses > 0).sum()) + result.check_requests
        results.append(result)

    try:
        with _http_client(base_url) as http:
            response = http.get("/metrics")
            response.raise_for_status()
        server_metrics = parse_metrics(response.text)
    except httpx.HTTPError as error:
        server_metrics = {"requests": None, "error": f"{type(error).__name__}: {error}"}
    if fresh:
        answered += 1  # the readiness poll that found the server healthy
    machine["load_average_at_end"] = _load_average()

    errors = sum(r.errors for r in results)
    mismatches = sum(r.mismatches for r in results)
    report = {
        "command": command,
        "machine": machine,
        "server": {"url": base_url, "fresh": fresh, "torch_threads": args.server_threads if fresh else None,
                   "agent": agent},
        "settings": {"clients": list(args.clients), "requests": args.requests, "max_seconds": args.max_seconds,
                     "seed": args.seed, "k": K, "past_lengths": list(PAST_LENGTHS), "rounds": list(ROUNDS),
                     "past_click_probability": PAST_CLICK_PROBABILITY,
                     "feedback_click_probability": FEEDBACK_CLICK_PROBABILITY, "delete_fraction": DELETE_FRACTION,
                     "request_timeout_s": REQUEST_TIMEOUT_S, "warmup_requests": WARMUP_REQUESTS,
                     "client_driver": "one thread and one httpx.Client per simulated client"},
        "levels": [{**r.row(), "by_route": r.by_route(), "first_errors": r.first_errors,
                    "first_mismatches": r.first_mismatches} for r in results],
        "errors": errors + warmup.errors,
        "warmup_errors": warmup.errors,
        "mismatches": mismatches,
        "sessions_checked": sum(r.checked for r in results),
        "sessions_evicted": sum(r.evicted for r in results),
        "sessions_unchecked": sum(r.unchecked for r in results),
        "client_requests_answered": answered,
        "server_metrics": server_metrics,
    }
    report["ok"] = report["errors"] == 0 and mismatches == 0 and report["sessions_unchecked"] == 0
    return report, results


if __name__ == "__main__":
    main()
