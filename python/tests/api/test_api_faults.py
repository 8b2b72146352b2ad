"""Faults between the API and its database: a live ``mzforge-api serve`` (and its workers) on
PostgreSQL reached through ``faultproxy.FaultProxy``, which cuts, stalls, delays or silences
(blackholes) the connections, or cuts or silences them at one exact statement of a request.

While the database is away every request that needs it gets 503 with a JSON ``detail`` naming the
database and a ``Retry-After``, within the client's timeout; ``/readyz`` is 503, ``/healthz`` 200.
Nothing is half-written: after each cut the database and the storage folder are compared (every
upload row has its file, every stored file its row; an analysis row is complete or absent).
Once the proxy restores connections the same server process serves again and the retried
request succeeds."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.engine import Engine

from apitest import Server, live_server, shared
from faultproxy import FaultProxy

TIMEOUT = 60  # seconds: a request not answered by then has hung
# Seconds within which a request on a silent database connection must be answered: well under
# what TCP alone would take (15 min of retransmissions with data in flight, 2 h before the first
# keepalive probe otherwise). With the silent fixture's settings it takes about 2 + 5 s (the
# statement timeout and the client's grace), plus 2 s for a new connection to give up.
SILENT_BOUND = 30


@dataclass
class Faulty:
    srv: Server
    c: httpx.Client
    proxy: FaultProxy
    db: Engine  # straight to PostgreSQL, not through the proxy
    data: Path
    hold: Path

    def sql(self, query: str, **params: object) -> list:
        with self.db.connect() as conn:
            return list(conn.execute(text(query), params))

    def stored_uploads(self) -> set[str]:
        root = self.data / "storage" / "uploads"
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}

    def recorded_uploads(self) -> set[str]:
        return {r[0] for r in self.sql("SELECT storage_key FROM uploads")}

    def staged(self) -> list[Path]:
        tmp = self.data / "tmp"
        return list(tmp.iterdir()) if tmp.exists() else []

    def assert_unavailable(self, r: httpx.Response) -> None:
        assert r.status_code == 503, (r.status_code, r.text)
        assert "database" in r.json()["detail"], r.text
        assert int(r.headers["retry-after"]) > 0

    def wait_ready(self) -> None:
        for _ in range(300):
            if self.c.get("/readyz").status_code == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"not ready again: {self.c.get('/readyz').text}")

    def wait_until(self, check, what: str, seconds: float = 60) -> None:  # noqa: ANN001
        deadline = time.monotonic() + seconds
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(what)
            time.sleep(0.1)

    def upload(self, name: str = "three_test_scans.mzML", **kw: object) -> httpx.Response:
        with open(shared(f"profile/{name}"), "rb") as f:
            return self.c.post("/v1/uploads", files={"file": (name, f)}, **kw)

    def timed(self, request: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
        """The response and how long it took (a request not answered within SILENT_BOUND raises
        httpx.ReadTimeout)."""
        started = time.monotonic()
        r = request()
        return r, time.monotonic() - started

    def analysis(self, aid: int, until: tuple[str, ...]) -> dict:
        for _ in range(1200):
            answer = self.c.get(f"/v1/analyses/{aid}")
            a = answer.json()
            # While a fault cuts the database off, the API answers 503 ("try again"): polled on.
            if answer.status_code != 503 and a["status"] in until:
                return a
            time.sleep(0.1)
        raise AssertionError(a)

    def worker_pid(self, aid: int) -> int:
        for _ in range(300):
            runner = self.sql("SELECT runner FROM analyses WHERE id=:i", i=aid)[0][0]
            if runner and runner.split(" pid ")[-1].isdigit():
                return int(runner.split(" pid ")[-1])
            time.sleep(0.05)
        raise AssertionError(runner)


@contextlib.contextmanager
def faulty_server(postgres, tmp_path: Path, **env_extra: str) -> Iterator[Faulty]:  # noqa: ANN001
    direct = postgres.new_database()
    hold = tmp_path / "hold"
    with FaultProxy("127.0.0.1", postgres.port) as proxy:
        env = {"MZFORGE_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": proxy.url(direct),
               "MZFORGE_WORKERS": "1", "MZFORGE_WORKER_HOLD_FILE": str(hold),
               "MZFORGE_DB_CONNECT_TIMEOUT": "2", **env_extra}
        db = create_engine(direct)
        try:
            with live_server(env) as srv, httpx.Client(base_url=srv.url, headers=srv.h(),
                                                       timeout=TIMEOUT) as c:
                yield Faulty(srv, c, proxy, db, tmp_path / "data", hold)
                assert srv.proc.poll() is None, "the server process died"
        finally:
            db.dispose()


@pytest.fixture
def faulty(postgres, tmp_path: Path) -> Iterator[Faulty]:
    with faulty_server(postgres, tmp_path) as f:
        yield f


@pytest.fixture
def silent(postgres, tmp_path: Path) -> Iterator[Faulty]:
    """``faulty`` with a 2-s statement timeout: the server cancels a statement after 2 s, and the
    client gives up waiting for an answer after 2 + 5 s (settings.ANSWER_GRACE_SECONDS)."""
    with faulty_server(postgres, tmp_path, MZFORGE_DB_STATEMENT_TIMEOUT="2") as f:
        yield f


def test_cut_mid_request_then_recovery(faulty: Faulty) -> None:
    f = faulty
    from mzforge.api.auth import hash_token

    assert f.c.get("/v1/me").status_code == 200
    # Latency alone is not an error.
    f.proxy.delay(0.05)
    assert f.c.get("/v1/uploads").status_code == 200
    f.proxy.delay(0)
    # Lost after the answer was sent (at the ROLLBACK that closes the request's session): the
    # answer stands, and the next request on the same keep-alive connection is answered too.
    fired = f.proxy.cut_at(b"ROLLBACK", after=b"FROM uploads")
    assert f.c.get("/v1/uploads").status_code == 200
    assert fired.wait(10)
    f.assert_unavailable(f.c.get("/v1/me"))
    f.proxy.restore()
    f.wait_ready()
    # The next request loses its connection at the token lookup (its parameter is on the wire
    # whether the statement is prepared or not).
    fired = f.proxy.cut_at(hash_token(f.srv.tokens["alice"]).encode())
    r = f.c.get("/v1/uploads")
    assert fired.is_set()
    f.assert_unavailable(r)
    # While the database is away: every route that needs it is 503, the probes say so.
    f.assert_unavailable(f.c.get("/v1/me"))
    f.assert_unavailable(f.c.post("/v1/analyses", json={"upload_ids": [1]}))
    r = f.c.get("/readyz")
    assert r.status_code == 503 and "database" in r.json()["problems"], r.text
    assert "storage" not in r.json()["problems"]
    assert f.c.get("/healthz").json() == {"status": "ok"}
    assert f.c.get("/v1/parameters").status_code == 200  # needs no database
    assert f.proxy.refused > 0
    f.proxy.restore()
    f.wait_ready()
    # The same process serves again; the retried request succeeds.
    r = f.c.get("/v1/uploads")
    assert r.status_code == 200 and r.json()["total"] == 0
    assert f.srv.proc.poll() is None


def test_stalled_database_is_bounded(faulty: Faulty) -> None:
    """A server that accepts connections and never answers: requests fail after the connect
    timeout (MZFORGE_DB_CONNECT_TIMEOUT, 2 s here) instead of hanging."""
    f = faulty
    f.proxy.cut()
    f.proxy.stall()
    f.assert_unavailable(f.c.get("/v1/me"))
    r = f.c.get("/readyz")
    assert r.status_code == 503 and "database" in r.json()["problems"], r.text
    f.proxy.restore()
    f.wait_ready()
    assert f.c.get("/v1/me").status_code == 200


def test_silent_database_mid_request_is_bounded(silent: Faulty) -> None:
    """The connection goes silent while a statement is on its way (no RST, no FIN: every byte is
    accepted, none is passed on, nothing comes back): the request is answered 503 within
    SILENT_BOUND, and so is every request that needs the database while it stays silent (a pooled
    connection's ping goes unanswered, a new connection's start-up too). Once the proxy forwards
    again the same process serves again."""
    f = silent
    from mzforge.api.auth import hash_token

    assert f.upload().status_code == 201
    fired = f.proxy.blackhole_at(hash_token(f.srv.tokens["alice"]).encode())
    r, seconds = f.timed(lambda: f.c.get("/v1/uploads", timeout=SILENT_BOUND))
    assert fired.is_set()
    f.assert_unavailable(r)
    assert seconds < SILENT_BOUND
    for path in ("/v1/me", "/v1/analyses", "/v1/uploads"):
        r, seconds = f.timed(lambda: f.c.get(path, timeout=SILENT_BOUND))  # noqa: B023
        f.assert_unavailable(r)
        assert seconds < SILENT_BOUND, (path, seconds)
    r = f.c.get("/readyz", timeout=SILENT_BOUND)
    assert r.status_code == 503 and "database" in r.json()["problems"], r.text
    # Silenced, not cut or refused: only the client's own deadlines ended those requests.
    assert f.proxy.silenced > 0 and f.proxy.cut_links == 0 and f.proxy.refused == 0
    f.proxy.restore()
    f.wait_ready()
    r = f.c.get("/v1/uploads")
    assert r.status_code == 200 and r.json()["total"] == 1, r.text
    assert f.stored_uploads() == f.recorded_uploads()


@pytest.mark.parametrize("deliver", [False, True], ids=["commit-swallowed", "commit-delivered"])
def test_upload_silent_at_commit_then_retried_with_idempotency_key(silent: Faulty,
                                                                    deliver: bool) -> None:
    """The connection goes silent at an upload's COMMIT, the COMMIT swallowed (nothing committed)
    or delivered (committed, the answer never comes): 503 within SILENT_BOUND. Retried with the
    same Idempotency-Key once the database answers: one upload, the retry marked replayed exactly
    when the COMMIT had happened, and the stored files are the recorded ones."""
    f = silent
    key = {"Idempotency-Key": f"silent-at-commit-{deliver}"}
    fired = f.proxy.blackhole_at(b"COMMIT", after=b"INSERT INTO uploads", deliver=deliver)
    r, seconds = f.timed(lambda: f.upload(headers=key, timeout=SILENT_BOUND))
    assert fired.is_set()
    f.assert_unavailable(r)
    assert seconds < SILENT_BOUND
    assert f.proxy.cut_links == 0
    f.proxy.restore()
    f.wait_ready()
    committed = f.sql("SELECT id FROM uploads")
    assert len(committed) == (1 if deliver else 0)

    retry = f.upload(headers=key)
    assert retry.status_code == 201, retry.text
    assert retry.headers.get("idempotent-replayed") == ("true" if deliver else None), retry.headers
    [(up, stored_key)] = f.sql("SELECT id, idempotency_key FROM uploads")
    assert retry.json()["id"] == up and stored_key == key["Idempotency-Key"]
    f.wait_until(lambda: f.stored_uploads() == f.recorded_uploads(),
                 f"stored {f.stored_uploads()} != recorded {f.recorded_uploads()}")
    assert len(f.stored_uploads()) == 1 and f.staged() == []


def test_statement_timeout_is_the_servers(silent: Faulty) -> None:
    """A statement that waits for a lock is cancelled by the server after the statement timeout
    (2 s here), before the client's own deadline (7 s): the API's backend is no longer waiting
    when the 503 comes (had only the client given up, it would wait for the lock still)."""
    f = silent
    assert f.c.get("/v1/uploads").status_code == 200
    with f.db.connect() as conn, conn.begin():
        conn.execute(text("LOCK TABLE uploads IN ACCESS EXCLUSIVE MODE"))
        r, seconds = f.timed(lambda: f.c.get("/v1/uploads", timeout=SILENT_BOUND))
        f.assert_unavailable(r)
        waiting = conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).scalar()
        assert waiting == 0
    r = f.c.get("/v1/uploads")
    assert r.status_code == 200, r.text


def test_connection_bounds_reach_server_and_socket(postgres) -> None:  # noqa: ANN001
    """The MZFORGE_DB_* settings as the server and the kernel see them on an engine's
    connection; a DATABASE_URL's own options are kept."""
    from mzforge.api.db import make_engine
    from mzforge.api.settings import Settings

    url = postgres.new_database() + "?options=-c%20lock_timeout%3D1234"
    settings = Settings.from_env({
        "DATABASE_URL": url, "MZFORGE_DB_STATEMENT_TIMEOUT": "1.5", "MZFORGE_DB_TCP_USER_TIMEOUT": "7",
        "MZFORGE_DB_KEEPALIVES_IDLE": "4", "MZFORGE_DB_KEEPALIVES_INTERVAL": "3",
        "MZFORGE_DB_KEEPALIVES_COUNT": "2"})
    engine = make_engine(settings.database_url, timeouts=settings.db_timeouts)
    try:
        with engine.connect() as c:
            assert c.execute(text("SHOW statement_timeout")).scalar() == "1500ms"
            assert c.execute(text("SHOW lock_timeout")).scalar() == "1234ms"
            fd = c.connection.driver_connection.pgconn.socket
            with socket.socket(fileno=os.dup(fd)) as s:
                assert s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
                assert [s.getsockopt(socket.IPPROTO_TCP, opt) for opt in (
                    socket.TCP_KEEPIDLE, socket.TCP_KEEPINTVL, socket.TCP_KEEPCNT,
                    socket.TCP_USER_TIMEOUT)] == [4, 3, 2, 7000]
            with pytest.raises(OperationalError, match="statement timeout"):
                c.execute(text("SELECT pg_sleep(5)"))
    finally:
        engine.dispose()


def test_silent_connection_gives_up_at_its_deadline(postgres) -> None:  # noqa: ANN001
    """An engine's wait for an answer that never comes ends after the statement timeout plus the
    grace, as a lost connection (the engine discards it), and the next connection works."""
    from mzforge.api.db import database_unavailable, make_engine
    from mzforge.api.settings import ANSWER_GRACE_SECONDS, DatabaseTimeouts

    direct = postgres.new_database()
    with FaultProxy("127.0.0.1", postgres.port) as proxy:
        engine = make_engine(proxy.url(direct), timeouts=DatabaseTimeouts(statement_seconds=0.5))
        try:
            with engine.connect() as c:
                assert c.execute(text("SELECT 1")).scalar() == 1
                fired = proxy.blackhole_at(b"SELECT 2")
                outcome: list[BaseException] = []

                def run() -> None:
                    try:
                        c.execute(text("SELECT 2"))
                    except BaseException as e:  # noqa: BLE001 - handed to the test
                        outcome.append(e)

                # In a thread, so that a wait without an end fails the test instead of hanging it.
                waiter = threading.Thread(target=run, daemon=True)
                started = time.monotonic()
                waiter.start()
                waiter.join(SILENT_BOUND)
                seconds = time.monotonic() - started
                hung = waiter.is_alive()
                if hung:
                    proxy.cut()  # ends the wait (and frees the connection for the cleanup)
                    waiter.join()
                assert not hung, f"still waiting after {seconds:.0f} s"
            assert fired.is_set()
            [caught] = outcome
            assert isinstance(caught, OperationalError), repr(caught)
            assert "no answer from the database within 5.5 s" in str(caught)
            assert caught.connection_invalidated and database_unavailable(caught)
            assert 0.5 + ANSWER_GRACE_SECONDS <= seconds < SILENT_BOUND
            proxy.restore()
            with engine.connect() as c:
                assert c.execute(text("SELECT 3")).scalar() == 3
        finally:
            engine.dispose()


def test_upload_cut_leaves_all_or_nothing(faulty: Faulty) -> None:
    f = faulty
    data = shared("profile/three_test_scans.mzML").read_bytes()
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"three_test_scans.mzML\"\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        # Half the file, then (once the server has begun staging it, so past authentication)
        # the database goes away while the rest streams in.
        yield head + data[:128 * 1024]
        f.wait_until(lambda: f.staged(), "the upload was not staged", 30)
        f.proxy.cut()
        yield data[128 * 1024:] + tail

    r = f.c.post("/v1/uploads", content=body(),
                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    f.assert_unavailable(r)
    # Nothing kept: no staged file, no stored file (the row was never written).
    assert f.staged() == [] and f.stored_uploads() == set()
    f.proxy.restore()
    f.wait_ready()
    assert f.recorded_uploads() == set()

    # The connection lost at COMMIT, the COMMIT not delivered (nothing committed) or delivered
    # (committed, the answer lost): in both cases the client gets 503, and once the database is
    # back the stored files are exactly the recorded ones.
    for deliver, expect in ((False, 0), (True, 1)):
        before = f.recorded_uploads()
        fired = f.proxy.cut_at(b"COMMIT", after=b"INSERT INTO uploads", deliver=deliver)
        f.assert_unavailable(f.upload())
        assert fired.is_set()
        f.proxy.restore()
        f.wait_ready()
        f.wait_until(lambda: f.stored_uploads() == f.recorded_uploads(),
                     f"stored {f.stored_uploads()} != recorded {f.recorded_uploads()}")
        assert len(f.recorded_uploads() - before) == expect, (deliver, f.recorded_uploads(), before)
        assert f.staged() == []

    # And a plain retry works.
    r = f.upload()
    assert r.status_code == 201, r.text
    assert f.stored_uploads() == f.recorded_uploads()
    assert f.c.get("/v1/uploads").json()["total"] == 2


def test_delete_upload_cut_keeps_row_and_file_together(faulty: Faulty) -> None:
    f = faulty
    ids = [f.upload().json()["id"] for _ in range(2)]
    for up, deliver in zip(ids, (False, True)):
        fired = f.proxy.cut_at(b"COMMIT", after=b"DELETE FROM uploads", deliver=deliver)
        f.assert_unavailable(f.c.delete(f"/v1/uploads/{up}"))
        assert fired.is_set()
        f.proxy.restore()
        f.wait_ready()
        f.wait_until(lambda: f.stored_uploads() == f.recorded_uploads(),
                     f"stored {f.stored_uploads()} != recorded {f.recorded_uploads()}")
        still = f.c.get(f"/v1/uploads/{up}").status_code
        # Not delivered: the upload is still there, whole; delivered: gone, file and all.
        assert still == (404 if deliver else 200), (deliver, still)
    assert f.c.delete(f"/v1/uploads/{ids[0]}").status_code == 204
    assert f.stored_uploads() == f.recorded_uploads() == set()


# Where POST /v1/analyses loses its connection: (pattern, after, deliver) for FaultProxy.cut_at.
ANALYSIS_CUTS = {
    "insert": (b"INSERT INTO analyses", None, False),
    "commit": (b"COMMIT", b"INSERT INTO analyses", False),
    "commit-delivered": (b"COMMIT", b"INSERT INTO analyses", True),  # committed, answer lost
}


@pytest.mark.parametrize("where", ANALYSIS_CUTS)
def test_create_analysis_cut(faulty: Faulty, where: str) -> None:
    f = faulty
    up = f.upload().json()["id"]
    key = f.recorded_uploads().pop()
    pattern, after, deliver = ANALYSIS_CUTS[where]
    fired = f.proxy.cut_at(pattern, after=after, deliver=deliver)
    f.assert_unavailable(f.c.post("/v1/analyses", json={"upload_ids": [up], "name": "cut"}))
    assert fired.is_set()
    f.proxy.restore()
    f.wait_ready()
    rows = f.sql("SELECT id, run_id, upload_ids, inputs FROM analyses")
    if deliver:
        # Committed though its client got 503: a whole analysis, which runs.
        [(aid, run_id, upload_ids, inputs)] = rows
        assert upload_ids == [up] and [i["key"] for i in inputs] == [key]
        assert not run_id.startswith("pending-")
    else:
        assert rows == []
        r = f.c.post("/v1/analyses", json={"upload_ids": [up], "name": "cut"})  # the retry
        assert r.status_code == 201, r.text
        aid = r.json()["id"]
    f.hold.unlink(missing_ok=True)
    a = f.analysis(aid, ("succeeded", "failed"))
    assert a["status"] == "succeeded", a
    assert f.c.get("/v1/analyses").json()["total"] == 1


@pytest.mark.parametrize("where", ANALYSIS_CUTS)
def test_create_analysis_cut_then_retried_with_idempotency_key(faulty: Faulty, where: str) -> None:
    """The client retries the POST that got 503 with the same Idempotency-Key: one analysis,
    whichever side of the cut the COMMIT fell on. When it happened (commit-delivered: committed,
    only the answer lost) the retry returns that analysis, marked as replayed; otherwise the retry
    creates it."""
    f = faulty
    up = f.upload().json()["id"]
    body, key = {"upload_ids": [up], "name": "cut"}, {"Idempotency-Key": f"cut-at-{where}"}
    pattern, after, deliver = ANALYSIS_CUTS[where]
    fired = f.proxy.cut_at(pattern, after=after, deliver=deliver)
    f.assert_unavailable(f.c.post("/v1/analyses", json=body, headers=key))
    assert fired.is_set()
    f.proxy.restore()
    f.wait_ready()
    assert len(f.sql("SELECT id FROM analyses")) == (1 if deliver else 0)

    retry = f.c.post("/v1/analyses", json=body, headers=key)
    assert retry.status_code == 201, retry.text
    assert retry.headers.get("idempotent-replayed") == ("true" if deliver else None), retry.headers
    [(aid, stored_key)] = f.sql("SELECT id, idempotency_key FROM analyses")
    assert retry.json()["id"] == aid and stored_key == key["Idempotency-Key"]
    # Any further retry is that analysis too.
    again = f.c.post("/v1/analyses", json=body, headers=key)
    assert (again.status_code, again.json()["id"], again.headers.get("idempotent-replayed")) == \
           (201, aid, "true")
    a = f.analysis(aid, ("succeeded", "failed"))
    assert a["status"] == "succeeded", a
    assert f.c.get("/v1/analyses").json()["total"] == 1
    assert len(f.sql("SELECT id FROM analyses")) == 1


def test_workers_across_an_outage(faulty: Faulty) -> None:
    """A worker killed while the database is away is failed once it is back (not left
    `running`); one that loses the connection at the COMMIT of its outcome (delivered or not)
    records it once the database is back, results kept."""
    f = faulty
    f.hold.touch()
    up = f.upload().json()["id"]
    doomed = f.c.post("/v1/analyses", json={"upload_ids": [up]}).json()["id"]
    f.analysis(doomed, ("running",))
    pid = f.worker_pid(doomed)
    f.proxy.cut()
    os.kill(pid, signal.SIGKILL)
    time.sleep(1.0)  # the dispatcher notices the dead worker while the database is away
    f.proxy.restore()
    a = f.analysis(doomed, ("failed", "succeeded"))
    assert a["status"] == "failed" and a["error"] == "the analysis worker was killed by SIGKILL", a
    f.hold.unlink()

    for deliver in (False, True):
        # The worker's outcome is the one statement that sets result_location: the dispatcher's
        # reaping of the previous worker also sets finished_at (a no-op once the worker has
        # recorded its outcome), and arming on that raced with the POST below (the cut closed
        # the POST's connection: seen under pytest-xdist).
        fired = f.proxy.cut_at(b"COMMIT", after=b"result_location=", deliver=deliver)
        aid = f.c.post("/v1/analyses", json={"upload_ids": [up]}).json()["id"]
        assert fired.wait(120), "the worker did not record its outcome"
        time.sleep(1.0)  # it retries while the database is away
        f.proxy.restore()
        a = f.analysis(aid, ("failed", "succeeded"))
        assert a["status"] == "succeeded", (deliver, a)
        assert f.c.get(f"/v1/analyses/{aid}/results/peaks").json()["total"] > 0


def test_dispatcher_claim_lost(faulty: Faulty) -> None:
    """The dispatcher's claim of a queued analysis committed, its answer lost: the analysis is
    not left `running` without a worker; it is queued again and runs."""
    f = faulty
    f.hold.touch()
    up = f.upload().json()["id"]
    first = f.c.post("/v1/analyses", json={"upload_ids": [up]}).json()["id"]
    f.analysis(first, ("running",))
    second = f.c.post("/v1/analyses", json={"upload_ids": [up]}).json()["id"]  # waits for the slot
    # The claim is the one statement that sets started_at.
    fired = f.proxy.cut_at(b"COMMIT", after=b"started_at=", deliver=True)
    f.hold.unlink()
    assert fired.wait(120)
    f.proxy.restore()
    for aid in (first, second):
        a = f.analysis(aid, ("failed", "succeeded"))
        assert a["status"] == "succeeded", a
