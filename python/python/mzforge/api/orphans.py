"""Stored uploads that no database row names.

An upload is stored first and recorded second; deleting one removes the row first and the object
second. When the connection is lost while the COMMIT of that row is on its way, the server cannot
tell whether it happened (the COMMIT may have been applied and only its answer lost). Deleting the
object then could leave a row without its file, keeping it could leave a file without its row. So
the key is noted here, and once the database answers again the object is deleted unless a row
names it. The check waits ``grace_seconds`` after the failure, so a COMMIT the database received
has been applied by then.

The notes are in memory, so a server process that stops with keys still in doubt (or is killed
between storing an upload and recording it) would leave those objects behind. A periodic scan
covers that: every ``scan_interval_seconds`` (and once at start) the uploads area is listed and
every object older than ``scan_min_age_seconds`` that no row names is deleted. The age keeps the
scan away from uploads between their store and their COMMIT, which take seconds, not an hour.
Several server processes may scan at once: deleting is idempotent."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from .db import Upload, database_unavailable
from .storage import Storage

log = logging.getLogger("mzforge.api")

# Where uploads live in the uploads area (layout.upload_key); request objects beside them are not
# uploads.
UPLOADS_PREFIX = "uploads/"
# Keys looked up in the database per query.
LOOKUP_BATCH = 500
# A scan that failed (the database or storage away) is retried after at most this long.
SCAN_RETRY_SECONDS = 60.0


class OrphanSweeper:
    def __init__(self, sessions: sessionmaker, storage: Storage, grace_seconds: float = 2.0,
                 scan_interval_seconds: float = 3600.0, scan_min_age_seconds: float = 3600.0) -> None:
        self.sessions = sessions
        self.storage = storage
        self.grace_seconds = grace_seconds
        self.scan_interval_seconds = scan_interval_seconds  # 0: no periodic scan
        self.scan_min_age_seconds = scan_min_age_seconds
        self.next_scan = time.monotonic()  # the first scan runs at start
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
            log.warning("%d stored uploads left in doubt at shutdown (the next scan removes them): %s",
                        len(self.pending), e)

    def sweep(self) -> int:
        """Resolves the keys noted at least ``grace_seconds`` ago; returns how many objects it
        deleted. Raises when the database is still away (the keys stay noted)."""
        now = time.monotonic()
        with self.lock:
            due = [k for k, t in self.pending.items() if now - t >= self.grace_seconds]
        if not due:
            return 0
        deleted = self._delete_unrecorded(due, "its commit was in doubt")
        with self.lock:
            for key in due:
                self.pending.pop(key, None)
        return deleted

    def scan(self) -> int:
        """Deletes every stored upload older than ``scan_min_age_seconds`` that no row names;
        returns how many. Raises when the database or the storage cannot be read."""
        cutoff = time.time() - self.scan_min_age_seconds
        deleted, batch = 0, []
        for key, modified in self.storage.list_objects("uploads", UPLOADS_PREFIX):
            if modified <= cutoff:
                batch.append(key)
            if len(batch) == LOOKUP_BATCH:
                deleted += self._delete_unrecorded(batch, "found by the periodic scan")
                batch = []
        if batch:
            deleted += self._delete_unrecorded(batch, "found by the periodic scan")
        return deleted

    def _delete_unrecorded(self, keys: Iterable[str], why: str) -> int:
        keys = list(keys)
        with self.sessions() as s:
            recorded = set(s.scalars(select(Upload.storage_key).where(Upload.storage_key.in_(keys))))
        deleted = 0
        for key in keys:
            if key not in recorded:
                self.storage.delete("uploads", key)
                deleted += 1
                log.warning("deleted stored upload %s: no row names it (%s)", key, why)
        return deleted

    def _timeout(self) -> float | None:
        """How long the loop may sleep: until the next scan, or a second while keys are noted."""
        timeout = math.inf
        if self.scan_interval_seconds > 0:
            timeout = max(0.0, self.next_scan - time.monotonic())
        if self.pending:
            timeout = min(timeout, min(1.0, self.grace_seconds))
        return None if timeout == math.inf else timeout

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait(self._timeout())
            self.wake.clear()
            if self.stopping.is_set():
                return
            try:
                self.sweep()
            except Exception as e:  # noqa: BLE001 - retried every second while keys are pending
                if not database_unavailable(e):
                    log.exception("resolving stored uploads in doubt")
            if self.scan_interval_seconds > 0 and time.monotonic() >= self.next_scan:
                try:
                    if n := self.scan():
                        log.warning("the scan of stored uploads deleted %d that no row names", n)
                    self.next_scan = time.monotonic() + self.scan_interval_seconds
                except Exception as e:  # noqa: BLE001 - retried soon
                    self.next_scan = time.monotonic() + min(SCAN_RETRY_SECONDS, self.scan_interval_seconds)
                    if not database_unavailable(e):
                        log.exception("scanning stored uploads")
