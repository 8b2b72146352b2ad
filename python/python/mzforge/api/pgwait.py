"""A deadline on every wait of a PostgreSQL connection for its server's answer.

libpq's keepalives and ``tcp_user_timeout`` end a connection whose peer stopped acknowledging (a
network partition, a host that died), and ``statement_timeout`` makes a live server cancel a
statement that runs too long. Neither helps when the peer keeps acknowledging and never answers:
a hung server process, or a proxy or load balancer in between that stopped forwarding. psycopg
would wait for ever (its waits have no timeout before psycopg 3.3, and the one of 3.3 is
internal). So every wait of a connection for its server (a statement, COMMIT, ROLLBACK, the pool's
ping: psycopg runs them all through ``Connection.wait``) is watched by one thread per process,
which shuts the connection's socket down once the wait outlasts its deadline. libpq then fails
the wait as a lost connection, SQLAlchemy discards the connection (``is_disconnect``), and the
request is answered 503 like any lost connection (``app.py``). (A LISTEN connection waiting for
notifications would be cut too; the API has none.)"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger("mzforge.api")

# How often the watchdog looks for waits past their deadline while there are any: a deadline is
# kept to within this (they are seconds long).
TICK_SECONDS = 0.25


class _Watch:
    __slots__ = ("fd", "deadline", "fired")

    def __init__(self, fd: int, deadline: float) -> None:
        self.fd = fd
        self.deadline = deadline
        self.fired = False


class Watchdog:
    """Shuts down the socket of a wait that outlasts its deadline. A socket is only touched while
    its wait is registered, that is while the waiting thread is inside the wait: its connection
    (and so its file descriptor) cannot be closed meanwhile."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._watches: set[_Watch] = set()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def watch(self, fd: int, seconds: float) -> Iterator[_Watch]:
        w = _Watch(fd, time.monotonic() + seconds)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mzforge-db-watchdog",
                                                daemon=True)
                self._thread.start()
            if not self._watches:
                self._cond.notify()
            self._watches.add(w)
        try:
            yield w
        finally:
            with self._cond:
                self._watches.discard(w)

    def _run(self) -> None:
        with self._cond:
            while True:
                if not self._watches:
                    self._cond.wait()
                    continue
                now = time.monotonic()
                for w in [w for w in self._watches if w.deadline <= now]:
                    self._watches.discard(w)
                    w.fired = True
                    _shut_down(w.fd)
                self._cond.wait(TICK_SECONDS)


def _shut_down(fd: int) -> None:
    # On a duplicate of the descriptor: shutdown acts on the socket both share, and closing the
    # duplicate leaves libpq's descriptor open (libpq closes it when it gives the connection up).
    try:
        with socket.socket(fileno=os.dup(fd)) as s:
            s.shutdown(socket.SHUT_RDWR)
    except OSError as e:
        log.warning("shutting down a silent database connection failed: %s", e)


WATCHDOG = Watchdog()


@functools.cache
def _watched_connection_class() -> type:
    import psycopg

    class WatchedConnection(psycopg.Connection):
        """A psycopg connection whose waits for the server end after ``answer_seconds``."""

        answer_seconds: float | None = None

        def wait(self, *args: Any, **kwargs: Any) -> Any:
            seconds = self.answer_seconds
            try:
                fd = self.pgconn.socket
            except psycopg.Error:
                seconds = None  # no socket: psycopg's own wait reports the lost connection
            if seconds is None:
                return super().wait(*args, **kwargs)
            with WATCHDOG.watch(fd, seconds) as w:
                try:
                    return super().wait(*args, **kwargs)
                except psycopg.Error as e:
                    if not w.fired:
                        raise
                    log.warning("no answer from the database within %g s: connection closed", seconds)
                    raise psycopg.OperationalError(
                        f"no answer from the database within {seconds:g} s; the connection was "
                        "closed") from e

    return WatchedConnection


def bound_waits(engine: Engine, answer_seconds: float) -> None:
    """The engine's connections are ``WatchedConnection``s giving up after ``answer_seconds``."""

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: tuple, cparams: dict[str, Any]) -> Any:
        conn = _watched_connection_class().connect(*cargs, **cparams)
        conn.answer_seconds = answer_seconds
        return conn
