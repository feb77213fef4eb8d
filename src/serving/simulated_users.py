"""Simulated users that drive the recommender service over HTTP, recorded as :func:`agents.run_sessions` records them.

:func:`run_sessions_over_http` plays the held-out users of :func:`agents.run_sessions` (the same
vector env, config and seeds: batch ``b`` is reset with ``seed + b``, autoreset disabled) against a
running service instead of an agent in this process. For each user it opens a service session from
the user's logged past (``warmup_history()``, ``POST /v1/sessions``); at each step it asks the
service for its top item (``GET /v1/sessions/{id}/recommendations?k=1``), shows it to the simulated
user, reports what happened (``POST /v1/sessions/{id}/feedback``), and ends the session
(``DELETE``) when the user leaves or the session is truncated. What happened is recorded from the
env's step info, field for field as :func:`agents.run_sessions` records it
(:class:`agents.SessionRecords`).

Why: the service rebuilds the agent's observation from the history it was told about
(:mod:`serving.observer`) and ranks with the agent's own scores (:mod:`serving.recommender`). If
that is faithful, an agent evaluated through the API and in-process meets the same users under the
same luck (common random numbers) and shows them the same items, so it gets the same clicks for the
same seeds; ``tests/test_serving_parity.py`` checks exactly that. The client is also a small load
and smoke test of a deployed service::

    python -m serving.simulated_users --url http://127.0.0.1:8000 --users 20 --seed 10000

The client plays the simulator's side, so it reads the env's ground truth (true P(click), regime
shifts) for the records; the service only ever sees item ids and clicks.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.evaluation import SessionRecords
from agents.training_log import work_bar
from recenv import DriftingUserVectorEnv, EnvConfig
from recenv.public_view import public_view

__all__ = ["ServiceError", "main", "run_sessions_over_http"]

_TRACE_KEYS = ("clicks", "click_probability", "best_click_probability", "items", "topics", "regime_shift")


class ServiceError(RuntimeError):
    """The service answered a request with an unexpected status (the message carries its ``detail``)."""

    def __init__(self, method: str, path: str, status: int, detail: Any):
        self.method, self.path, self.status, self.detail = method, path, status, detail
        super().__init__(f"{method} {path} answered {status}: {_format_detail(detail)}")


def _format_detail(detail: Any) -> str:
    """FastAPI's ``detail``: a string (our HTTPExceptions) or a list of validation errors (422)."""
    if isinstance(detail, list):
        parts = []
        for error in detail:
            if isinstance(error, dict):
                where = ".".join(str(part) for part in error.get("loc", ()))
                parts.append(f"{where}: {error.get('msg', error)}" if where else str(error.get("msg", error)))
            else:
                parts.append(str(error))
        return "; ".join(parts)
    return str(detail)


def _call(client: Any, method: str, path: str, expected: int, **kwargs: Any) -> Any:
    """Send one request; the decoded JSON body (None for an empty one).

    :raises ServiceError: any status but ``expected``, with the service's ``detail`` (or the
        body's start when it is not JSON).
    """
    response = getattr(client, method.lower())(path, **kwargs)
    if response.status_code != expected:
        try:
            body = response.json()
            detail = body.get("detail", body) if isinstance(body, dict) else body
        except ValueError:
            detail = response.text[:500] or "(empty body)"
        raise ServiceError(method, path, response.status_code, detail)
    return response.json() if response.content else None


def _check_catalog(client: Any, envs: DriftingUserVectorEnv) -> None:
    """The service must rank the env's catalog: item ids mean nothing across catalogs."""
    agent = (_call(client, "GET", "/v1/health", 200) or {}).get("agent", {})
    served = agent.get("catalog")
    mine = public_view(envs).catalog.fingerprint
    if served is not None and served != mine:
        raise ValueError(
            f"the service ranks catalog {served} (preset {agent.get('preset')!r}) but the simulated users "
            f"see catalog {mine} (preset {envs.config.preset!r}): pass the served agent's env config as config="
        )


def _delete_quietly(client: Any, session_ids: Sequence[str]) -> None:
    """Best-effort clean-up of open sessions after a failure (the first error is the one to report)."""
    for session_id in session_ids:
        with contextlib.suppress(Exception):  # the error that stopped the run is the one to report
            client.delete(f"/v1/sessions/{session_id}")


def run_sessions_over_http(
    client: Any,
    num_users: int,
    seed: int,
    config: EnvConfig | None = None,
    batch_size: int = 1024,
    progress: bool = True,
) -> SessionRecords:
    """Play one session for each of ``num_users`` held-out users against the service, and record it.

    The users, batches and seeds are those of :func:`agents.run_sessions` with the same ``seed``,
    ``config`` and ``batch_size``: an in-process agent and the same agent served over HTTP meet the
    same users. The service chooses every item (its top-1, ``k=1``); this function only simulates
    the users and reports their clicks.

    :param client: an ``httpx.Client`` with ``base_url`` set to the service (anything with
        ``get``/``post``/``delete`` taking paths and answering httpx-like responses).
    :param seed: decides the users (batch ``b`` is reset with ``seed + b``).
    :param config: the simulated users' env settings (default: ``EnvConfig()``); must have the
        served agent's catalog (checked against ``/v1/health``).
    :param batch_size: users simulated at once (one vector env; that many service sessions open at
        once). The default is :func:`agents.run_sessions`'s: another batch size makes other users
        of the same seed, so compare runs made with the same one.
    :raises ServiceError: the service answered a request with an error (its ``detail`` included).
    :raises ValueError: the service ranks another catalog than the simulated users'.
    """
    if num_users < 0:
        raise ValueError(f"num_users must be non-negative, got {num_users}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    records = SessionRecords()
    bar = work_bar(num_users, "evaluating over HTTP", "user", progress)
    for batch_index, start in enumerate(range(0, num_users, batch_size)):
        n = min(batch_size, num_users - start)
        envs = DriftingUserVectorEnv(num_envs=n, config=config, autoreset_mode="disabled", array_type="numpy")
        open_sessions: dict[int, str] = {}
        try:
            if batch_index == 0:
                _check_catalog(client, envs)
            envs.reset(seed=seed + batch_index)
            _open_sessions(client, envs, open_sessions)
            traces, ended_at, left = _play_batch(client, envs, open_sessions)
        except BaseException:
            _delete_quietly(client, list(open_sessions.values()))
            raise
        finally:
            envs.close()
        records.add_batch(traces, ended_at, left)
        bar.update(n)
    bar.close()
    return records


def _open_sessions(client: Any, envs: DriftingUserVectorEnv, open_sessions: dict[int, str]) -> None:
    """One service session per user of a freshly reset batch, from the user's logged past;
    fills ``open_sessions`` (user → session id) as they open, so a failure can close them."""
    past_items, past_clicks = public_view(envs).warmup_history()
    for user in range(envs.num_envs):
        body = {"items": [int(i) for i in past_items[user]], "clicks": [int(c) for c in past_clicks[user]]}
        open_sessions[user] = _call(client, "POST", "/v1/sessions", 201, json=body)["session_id"]


def _play_batch(client: Any, envs: DriftingUserVectorEnv,
                open_sessions: dict[int, str]) -> tuple[dict[str, list[np.ndarray]], np.ndarray, np.ndarray]:
    """Step a batch until every user's session has ended, the service choosing every item;
    returns the step traces, the step at which each user's session ended and whether they left.
    Ended sessions are deleted from the service and from ``open_sessions``."""
    n = envs.num_envs
    active = np.ones(n, dtype=bool)
    actions = np.zeros(n, dtype=np.int64)
    traces: dict[str, list[np.ndarray]] = {key: [] for key in _TRACE_KEYS}
    ended_at = np.full(n, -1)
    left = np.zeros(n, dtype=bool)
    step = 0
    while active.any():
        # Only active users get a new item. With autoreset disabled the env keeps simulating
        # a user whose session has ended, so it still needs a valid item id for them: we
        # pass the last item they were shown (run_sessions passes its agent's choice for
        # the finished user's stale observation). What we pass cannot change an active
        # user's click: each step draws every user's random variates whatever the items
        # (recenv.dynamics.sample_step_noise: common random numbers), and a user's click
        # and state update read only that user's own state and item. The finished users'
        # steps are then cut from the records (ended_at), as run_sessions cuts them.
        for user in np.flatnonzero(active):
            actions[user] = _top_item(client, open_sessions[user])
        shown = actions.copy()
        _, reward, terminated, truncated, info = envs.step(shown)
        traces["clicks"].append(reward)
        traces["items"].append(shown)
        for key in ("click_probability", "best_click_probability", "topic", "regime_shift"):
            traces["topics" if key == "topic" else key].append(info[key])
        for user in np.flatnonzero(active):
            _call(client, "POST", f"/v1/sessions/{open_sessions[user]}/feedback", 200,
                  json={"item_id": int(shown[user]), "clicked": bool(reward[user] > 0)})
        done = active & (terminated | truncated)
        ended_at[done] = step
        left[done] = terminated[done]
        active &= ~done
        for user in np.flatnonzero(done):
            _call(client, "DELETE", f"/v1/sessions/{open_sessions.pop(user)}", 204)
        step += 1
    return traces, ended_at, left


def _top_item(client: Any, session_id: str) -> int:
    """The service's top-1 item for a session (``k=1``).

    :raises ServiceError: the service answered with an error, or with no item.
    """
    answer = _call(client, "GET", f"/v1/sessions/{session_id}/recommendations", 200, params={"k": 1})
    if not answer["items"]:
        raise ServiceError("GET", f"/v1/sessions/{session_id}/recommendations", 200, "no item recommended for k=1")
    return int(answer["items"][0]["item_id"])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m serving.simulated_users``: play simulated users against a running service."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.simulated_users",
        description="Play held-out simulated users against a running recommender service and report their clicks.")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the service's base URL (default: %(default)s)")
    parser.add_argument("--users", type=int, default=20, help="simulated users, one session each (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=10_000, help="decides the users (default: %(default)s)")
    parser.add_argument("--preset", default=None,
                        help="the users' preset (default: EnvConfig's); must match the served agent's catalog")
    parser.add_argument("--batch-size", type=int, default=1024,
                        help="users simulated at once; as run_sessions' for the same users (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.users < 1:
        parser.error(f"--users must be at least 1, got {args.users}")

    import httpx

    config = EnvConfig(preset=args.preset) if args.preset else None
    with httpx.Client(base_url=args.url.rstrip("/"), timeout=args.timeout) as client:
        try:
            records = run_sessions_over_http(client, args.users, args.seed, config=config,
                                             batch_size=args.batch_size, progress=not args.no_progress)
        except (ServiceError, ValueError, httpx.HTTPError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    returns = records.returns
    print(f"{len(records)} sessions (seed {args.seed}) served by {args.url}")
    print(f"clicks per session: {returns.mean():.3f} (sd {returns.std():.3f})")
    print(f"session length: {records.lengths.mean():.2f} steps; CTR {records.ctr.mean():.3f}; "
          f"users who left: {np.mean(records.left):.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
