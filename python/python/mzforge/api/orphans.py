"""Stored uploads whose database row is in doubt.

An upload is stored first and recorded second; deleting one removes the row first and the object
second. When the connection is lost while the COMMIT of that row is on its way, the server cannot
tell whether it happened (the COMMIT may have been applied and only its answer lost). Deleting the
object then could leave a row without its file, keeping it could leave a file without its row. So
the key is noted here, and once the database answers again the object is deleted unless a row
names it. The check waits ``grace_seconds`` after the failure, so a COMMIT the database received
has been applied by then.

In memory only: a server process that stops with keys still in doubt leaves those objects behind
(a file without a row, never the reverse)."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from .db import Upload, database_unavailable
from .storage import Storage

log = logging.getLogger("mzforge.api")


class OrphanSweeper:
    def __init__(self, sessions: sessionmaker, storage: Storage, grace_seconds: float = 2.0) -> None:
        self.sessions = sessions
        self.storage = storage
        self.grace_seconds = grace_seconds
        self.pending: dict[str, float] = {}  # upload storage key -> when it was noted (monotonic)
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def note(self, key: str) -> None:
        """``key`` (uploads area) is kept only if a row names it, once the database can say."""
        with self.lock:
            self.pending[key] = time.monotonic()
        self.wake.set()

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="mzforge-orphans", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread:
            self.thread.join(timeout=10)
        if not self.pending:
            return
        with self.lock:
            newest = max(self.pending.values())
        time.sleep(max(0.0, min(self.grace_seconds, newest + self.grace_seconds - time.monotonic())))
        try:
            self.sweep()
        except Exception as e:  # noqa: BLE001 - logged; the keys stay behind (see the module docs)
            log.warning("%d stored uploads left in doubt at shutdown: %s", len(self.pending), e)

    def sweep(self) -> int:
        """Resolves the keys noted at least ``grace_seconds`` ago; returns how many objects it
        deleted. Raises when the database is still away (the keys stay noted)."""
        now = time.monotonic()
        with self.lock:
            due = [k for k, t in self.pending.items() if now - t >= self.grace_seconds]
        if not due:
            return 0
        with self.sessions() as s:
            recorded = set(s.scalars(select(Upload.storage_key).where(Upload.storage_key.in_(due))))
        deleted = 0
        for key in due:
            if key not in recorded:
                self.storage.delete("uploads", key)
                deleted += 1
                log.warning("deleted stored upload %s: no row names it (its commit was in doubt)", key)
            with self.lock:
                self.pending.pop(key, None)
        return deleted

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait(min(1.0, self.grace_seconds) if self.pending else None)
            self.wake.clear()
            if self.stopping.is_set():
                return
            try:
                self.sweep()
            except Exception as e:  # noqa: BLE001 - retried every second while keys are pending
                if not database_unavailable(e):
                    log.exception("resolving stored uploads in doubt")
