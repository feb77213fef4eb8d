"""Served sessions and the bounded store that holds them.

A :class:`ServedSession` is one user's logged history (the past it arrived with, then this
session's feedback) and the observer's state after it. Feedback on one session is applied under
that session's lock, so concurrent requests on it are applied one at a time, in the order they
take the lock, and none is lost.

:class:`SessionStore` keeps at most ``max_sessions`` sessions; one idle for ``idle_timeout``
seconds expires. When the store is full, expired sessions go first, then the least recently used
one (evicted). Requests for a session that expired, was evicted or deleted are told which (the
store remembers the last ``max_sessions`` ended ids, no more; older ones are "unknown"): memory
stays bounded whatever the clients do.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HistoryFullError", "ServedSession", "SessionGoneError", "SessionStore"]


class SessionGoneError(LookupError):
    """No live session with this id: never created, expired, evicted or deleted (the message says which)."""


class HistoryFullError(ValueError):
    """The session's history has reached the store's ``max_history`` interactions."""


@dataclass
class ServedSession:
    """One served user: the logged history and the observer's state after it.

    ``items``/``clicks`` hold the whole history, past first; the last ``session_steps`` of them
    are this session's feedback (the rest is the past the session was created with).
    """

    session_id: str
    items: list[int]
    clicks: list[int]
    past_length: int
    observer_state: Any
    last_used: float
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def session_steps(self) -> int:
        return len(self.items) - self.past_length

    @property
    def session_clicks(self) -> int:
        return sum(self.clicks[self.past_length:])



class SessionStore:
    """At most ``max_sessions`` live sessions, each expiring after ``idle_timeout`` seconds unused.

    :param clock: seconds, monotonic (a test passes a fake one).
    """

    def __init__(self, max_sessions: int = 10_000, idle_timeout: float = 1800.0, max_history: int = 1000,
                 clock: Callable[[], float] = time.monotonic):
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
        if not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be positive, got {idle_timeout}")
        if max_history < 1:
            raise ValueError(f"max_history must be at least 1, got {max_history}")
        self.max_sessions = max_sessions
        self.idle_timeout = float(idle_timeout)
        self.max_history = max_history
        self._clock = clock
        self._sessions: OrderedDict[str, ServedSession] = OrderedDict()  # least recently used first
        self._ended: OrderedDict[str, str] = OrderedDict()  # id → why it ended (bounded)
        self._lock = threading.Lock()
        self.expired = 0
        self.evicted = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def create(self, items: list[int], clicks: list[int], observer_state: Any) -> ServedSession:
        """A new session whose past is ``items``/``clicks``; makes room first if the store is full."""
        if len(items) > self.max_history:
            raise HistoryFullError(f"a history of {len(items)} interactions is longer than the limit of {self.max_history}")
        now = self._clock()
        session = ServedSession(uuid.uuid4().hex, list(items), list(clicks), len(items), observer_state, now)
        with self._lock:
            self._expire(now)
            while len(self._sessions) >= self.max_sessions:
                oldest, _ = self._sessions.popitem(last=False)
                self._end(oldest, "evicted (the store was full and it was the least recently used)")
                self.evicted += 1
            self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str) -> ServedSession:
        """The live session (marked used now).

        :raises SessionGoneError: naming why there is none.
        """
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and now - session.last_used > self.idle_timeout:
                self._sessions.pop(session_id)
                self._end(session_id, f"expired (idle for more than {self.idle_timeout:g} s)")
                self.expired += 1
                session = None
            if session is None:
                why = self._ended.get(session_id, "unknown (never created here, or ended so long ago that the store "
                                                  "no longer remembers it)")
                raise SessionGoneError(f"session {session_id!r} is {why}")
            session.last_used = now
            self._sessions.move_to_end(session_id)
            return session

    def delete(self, session_id: str) -> None:
        """End a session. :raises SessionGoneError: no live session with this id."""
        self.get(session_id)
        with self._lock:
            if self._sessions.pop(session_id, None) is not None:
                self._end(session_id, "deleted")

    def record(self, session: ServedSession, item: int, click: int,
               advance: Callable[[Any, int, int], Any]) -> tuple[int, int]:
        """Append one interaction under the session's lock; ``advance(state, item, click)`` gives
        the observer's next state. Returns the session's steps and clicks right after it.

        :raises HistoryFullError: the history is at ``max_history``."""
        with session.lock:
            if len(session.items) >= self.max_history:
                raise HistoryFullError(
                    f"session {session.session_id!r} holds {len(session.items)} interactions, the limit "
                    f"(max_history={self.max_history}); start a new session from its recent history"
                )
            session.observer_state = advance(session.observer_state, item, click)
            session.items.append(item)
            session.clicks.append(click)
            return session.session_steps, session.session_clicks

    def purge_expired(self) -> int:
        """Drop every expired session now; returns how many."""
        with self._lock:
            return self._expire(self._clock())

    def _expire(self, now: float) -> int:
        dropped = 0
        while self._sessions:
            session_id, session = next(iter(self._sessions.items()))
            if now - session.last_used <= self.idle_timeout:
                break  # least recently used first: the rest are fresher
            self._sessions.pop(session_id)
            self._end(session_id, f"expired (idle for more than {self.idle_timeout:g} s)")
            dropped += 1
        self.expired += dropped
        return dropped

    def _end(self, session_id: str, why: str) -> None:
        self._ended[session_id] = why
        while len(self._ended) > self.max_sessions:
            self._ended.popitem(last=False)
