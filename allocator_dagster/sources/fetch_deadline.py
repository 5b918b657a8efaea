"""One overall deadline per HTTP fetch, from the first connect to the last byte of the body.

urllib3's timeouts are per socket operation, so a server that accepts the connection and then
sends its headers a byte at a time (or sleeps just under the read timeout between retries)
could hold a fetch for ever. A `FetchDeadline` is armed around one fetch in the calling thread:
a timer shuts down every socket the fetch waits on when the deadline passes (a blocked read
returns at once), a connection opened after that is shut at once, and the pause before a retry
is refused when it would end past the deadline. `DeadlineRetry` also records how many retries
were really made (its urllib3 history), so an error says "after N retries" only when N > 0.

Used by `sources.defillama.DefiLlamaClient` through `deadline_session`; a caller's own session
keeps its own adapters (only the body read is then bounded by the deadline).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from allocator_dagster.sources.http import mounted_session

_active = threading.local()  # the FetchDeadline armed in this thread, if any


class DeadlinePassed(Exception):
    """The fetch's deadline passed (raised past urllib3 and requests, caught by the client)."""


class FetchDeadline:
    """The deadline of one fetch; `with FetchDeadline(seconds):` arms it in this thread."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self.retries_made = 0  # from the Retry history, updated before each retry
        self.asked_wait: float | None = None  # a pause before a retry that would pass the deadline
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True
        self._previous: FetchDeadline | None = None

    def __enter__(self) -> FetchDeadline:
        self._previous = getattr(_active, "deadline", None)
        _active.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _active.deadline = self._previous
        with self._lock:
            self._sockets.clear()

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.expired or self.remaining() <= 0

    def watch(self, sock: socket.socket | None) -> None:
        """Shut `sock` down when the deadline passes (at once if it has passed)."""
        if sock is None:
            return
        with self._lock:
            if not self.passed():
                self._sockets.append(sock)
                return
            self.expired = True
        _shut(sock)
        raise DeadlinePassed

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)

    def problem(self) -> str:
        """The one-line reason a fetch that ran out of time failed."""
        text = f"no complete answer within the deadline of {self.seconds:g} s"
        if self.asked_wait is not None:
            text += f" (the server asked to wait {self.asked_wait:g} s before the next try)"
        if self.retries_made:
            text += f" (after {self.retries_made} retries)"
        return text


def _shut(sock: socket.socket) -> None:
    """Shut the socket down at the OS level: a read blocked on it in another thread returns."""
    with contextlib.suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, also for TLS


def active_deadline() -> FetchDeadline | None:
    return getattr(_active, "deadline", None)


class DeadlineRetry(Retry):
    """urllib3's Retry that never sleeps past the armed deadline and records the retries made."""

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        deadline = active_deadline()
        if deadline is not None:
            wait = None
            if self.respect_retry_after_header and response is not None:
                wait = self.get_retry_after(response)
            wait = wait if wait else self.get_backoff_time()
            if deadline.passed() or wait >= deadline.remaining():
                if wait > 0 and not deadline.passed():
                    deadline.asked_wait = wait
                deadline.expired = True
                raise DeadlinePassed
            deadline.retries_made = len(self.history)  # each entry a failed try, now retried
        super().sleep(response)


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self) -> Any:
        deadline = active_deadline()
        if deadline is not None:
            deadline.watch(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        deadline = active_deadline()
        if deadline is not None:
            deadline.watch(self.sock)
        return super().getresponse()


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections are watched by the deadline armed in the thread."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


def deadline_session(retry: DeadlineRetry, user_agent: str) -> requests.Session:
    """A session whose http and https requests retry with `retry` under the armed deadline."""
    return mounted_session(retry, user_agent, DeadlineAdapter)


def retries_made(response: requests.Response | None, deadline: FetchDeadline | None) -> int:
    """How many retries urllib3 really made before `response` (or before the failure)."""
    retry = getattr(getattr(response, "raw", None), "retries", None)
    if isinstance(retry, Retry):
        return len(retry.history)
    return deadline.retries_made if deadline is not None else 0
