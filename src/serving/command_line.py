"""``python -m serving`` (and ``recenv serve``, which hands its arguments to :func:`main`): serve an agent over HTTP.

Examples::

    python -m serving                                   # the supervised LSTM, 127.0.0.1:8000
    python -m serving --agent results/dqn.pt --port 8080
    recenv serve --agent results/dqn.pt                 # the same, through the console script

Measuring the service is :mod:`serving.load_test` (``recenv load-test``).
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["main", "serve"]


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", default=None,
                        help="a saved agent file (agent.save(path)); default: the supervised LSTM with the shipped encoder")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", default="cpu", help="where the agent runs: cpu (default), cuda, auto")
    parser.add_argument("--max-sessions", type=int, default=10_000, help="live sessions kept (least recently used evicted)")
    parser.add_argument("--idle-timeout", type=float, default=1800.0, help="seconds after which an unused session expires")
    parser.add_argument("--max-history", type=int, default=1000, help="most interactions a history may hold")
    parser.add_argument("--max-k", type=int, default=100, help="most items one recommendation may ask for")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch threads (default 1: requests run in parallel threads, and one user's "
                             "LSTM step or 500-item scoring is too small to split)")
    parser.add_argument("--log-level", default="info")


def serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Load the agent once, then serve until interrupted.

    Bad option values end with the parser's usage and error (exit 2); an agent that cannot be
    loaded (no such file, a directory, an unreadable file, not a saved agent, an unservable kind,
    missing encoder weights) ends with one line that says what was wrong and what is accepted (exit 2).
    """
    import uvicorn

    from recenv.threads import choose_torch_threads
    from serving.api import create_app
    from serving.recommender import ServedRecommender
    from serving.sessions import SessionStore

    if args.max_k < 1:
        parser.error(f"--max-k must be at least 1, got {args.max_k}")
    if args.torch_threads < 1:
        parser.error(f"--torch-threads must be at least 1, got {args.torch_threads}")
    try:
        store = SessionStore(max_sessions=args.max_sessions, idle_timeout=args.idle_timeout, max_history=args.max_history)
    except ValueError as error:
        parser.error(str(error))
    try:
        recommender = (ServedRecommender.default(device=args.device) if args.agent is None
                       else ServedRecommender.from_file(args.agent, device=args.device))
    except (ValueError, OSError) as error:  # AgentFileError and UnservableAgentError are ValueErrors
        _exit_with_one_line(parser.prog, error)
    threads = choose_torch_threads(args.torch_threads)  # only once serving: the caller's count is kept on errors
    app = create_app(recommender, store, max_k=args.max_k)
    # The loaded model and libraries are long-lived: moved out of the collector's reach, a full
    # collection no longer walks them, which otherwise stalls the requests it interrupts
    # (measured: docs/results/serving-load.md).
    gc.collect()
    gc.freeze()
    print(f"serving {recommender.kind} ({recommender.source}) on http://{args.host}:{args.port}/ "
          f"(API under /v1, OpenAPI at /docs; {threads.describe()})", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


def _exit_with_one_line(prog: str, error: BaseException) -> NoReturn:
    """``PROG: error: MESSAGE`` on one line of stderr, then exit 2 (a user's error, not a crash)."""
    print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: Sequence[str] | None = None, prog: str = "python -m serving") -> None:
    """``python -m serving [options]``: serve (the only job of that entry point)."""
    parser = argparse.ArgumentParser(prog=prog, description="Serve a trained recenv agent over HTTP.")
    _serve_arguments(parser)
    serve(parser.parse_args(argv), parser)
