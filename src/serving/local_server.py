"""A service on 127.0.0.1 for tests, the load test and the simulated-user client.

- :class:`ServerThread`: an app served by uvicorn in a thread of this process (tests: real HTTP
  over a socket, the app object at hand).
- :class:`ServerProcess`: ``python -m serving`` in a child process (the load test: the clients'
  threads then compete with the server for the cores, not for this interpreter's lock).

Both pick a free port, wait until ``/v1/health`` answers, and stop on exit.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx

__all__ = ["ServerProcess", "ServerStartError", "ServerThread", "free_port", "wait_until_healthy"]

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 free at the time of asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOCALHOST, 0))
        return int(probe.getsockname()[1])


def wait_until_healthy(base_url: str, timeout: float, alive: Any = None) -> None:
    """Poll ``/v1/health`` until it answers 200.

    :param alive: optional ``() -> bool``; False stops the wait early (the server died).
    :raises TimeoutError: no answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"the server at {base_url} stopped before answering")
        try:
            if httpx.get(f"{base_url}/v1/health", timeout=1.0, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"no healthy answer from {base_url} within {timeout:g} s")


class ServerStartError(RuntimeError):
    """A :class:`ServerProcess` stopped, or did not answer, before it was healthy.

    :param reason: what happened (it stopped, or the wait timed out).
    :param stderr: the end of what the server wrote to stderr (its own error, or a traceback).
    """

    def __init__(self, reason: str, stderr: str):
        super().__init__(f"{reason}; its stderr:\n{stderr}")
        self.reason, self.stderr = reason, stderr

    def server_error_line(self) -> str | None:
        """The server's own one-line error (``python -m serving: error: ...``, a user's error such as a
        bad ``--agent`` file) when that is how its stderr ends; None otherwise (a crash: read the whole tail)."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines and ": error: " in lines[-1] and not lines[-1].startswith(" ") else None


class ServerThread:
    """Serve ``app`` on 127.0.0.1 from a background thread (``with ServerThread(app) as url: ...``)."""

    def __init__(self, app: Any, port: int | None = None, startup_timeout: float = 30.0):
        import uvicorn

        self.port = port or free_port()
        self.base_url = f"http://{LOCALHOST}:{self.port}"
        config = uvicorn.Config(app, host=LOCALHOST, port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"uvicorn:{self.port}", daemon=True)
        self._startup_timeout = startup_timeout

    def __enter__(self) -> str:
        self._thread.start()
        wait_until_healthy(self.base_url, self._startup_timeout, alive=self._thread.is_alive)
        return self.base_url

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class ServerProcess:
    """``python -m serving`` on 127.0.0.1 in a child process (``with ServerProcess() as url: ...``).

    :param arguments: more options for ``python -m serving`` (e.g. ``["--agent", path]``).
    :param torch_threads: the server's ``--torch-threads``.
    """

    def __init__(self, arguments: Sequence[str] = (), port: int | None = None, torch_threads: int = 1,
                 startup_timeout: float = 120.0):
        self.port = port or free_port()
        self.base_url = f"http://{LOCALHOST}:{self.port}"
        self.command = [sys.executable, "-m", "serving", "--host", LOCALHOST, "--port", str(self.port),
                        "--torch-threads", str(torch_threads), "--log-level", "warning", *arguments]
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen | None = None
        self._stderr: Any = None  # a file, not a pipe: a pipe nobody reads would block a chatty server

    def __enter__(self) -> str:
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(self.command, env=env, stdout=subprocess.DEVNULL, stderr=self._stderr)
        try:
            wait_until_healthy(self.base_url, self._startup_timeout, alive=lambda: self._process.poll() is None)
        except (TimeoutError, RuntimeError) as error:
            stderr = self.stderr_tail()
            self.__exit__()
            raise ServerStartError(str(error), stderr) from None
        return self.base_url

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (None before ``with``)."""
        return None if self._process is None else self._process.pid

    def stderr_tail(self) -> str:
        """The last 2,000 characters the server wrote to stderr."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-2000:]

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
