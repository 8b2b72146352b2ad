"""``POST /v1/analyses`` and ``POST /v1/uploads`` with an ``Idempotency-Key`` (SQLite and
PostgreSQL): a repeat returns the analysis or upload the first request created (201,
``Idempotent-Replayed: true``), never a second one, also when the requests race; the same key with
another request is 422; invalid keys are 400; keys expire after 24 h; without the header nothing
changes. The migrations that add the keys are safe when several processes run them at once and
keep existing rows. A COMMIT cut (or silenced) by the database connection, then retried with the
key, is in ``test_api_faults.py``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from apitest import PYTHON, Api, api_client, shared

KEY = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


@pytest.fixture
def held_api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    """An API whose analyses are created but never run (their worker waits on a hold file): these
    tests are about creating analyses, and the machine has 2 cores."""
    hold = tmp_path / "hold"
    hold.touch()
    env = {"MZFORGE_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": db_url,
           "MZFORGE_WORKERS": "1", "MZFORGE_WORKER_HOLD_FILE": str(hold)}
    with api_client(env) as api:
        yield api


def post(api: Api, body: dict, key: str | bytes | None = None, who: str = "alice") -> httpx.Response:
    headers = api.h(who) | ({KEY: key} if key is not None else {})
    return api.client.post("/v1/analyses", headers=headers, json=body)


def total(api: Api, who: str = "alice") -> int:
    return api.client.get("/v1/analyses", headers=api.h(who)).json()["total"]


def upload(api: Api, who: str = "alice", name: str = "small.mgf") -> int:
    r = api.upload(shared("mgf/small.mgf"), who=who, name=name)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def stored_key(api: Api, row_id: int, table: str = "analyses") -> tuple[str | None, str | None]:
    engine = create_engine(api.settings.database_url)
    try:
        with engine.connect() as c:
            return tuple(c.execute(text(f"SELECT idempotency_key, request_sha256 FROM {table} "
                                        "WHERE id = :i"), {"i": row_id}).one())
    finally:
        engine.dispose()


def age(api: Api, model: type, row_id: int, hours: float) -> None:
    """Makes the row (and so its key) ``hours`` old."""
    from mzforge.api.db import make_engine, make_sessionmaker

    engine = make_engine(api.settings.database_url)
    try:
        with make_sessionmaker(engine)() as s:
            s.get(model, row_id).created_at = (dt.datetime.now(dt.timezone.utc)
                                               - dt.timedelta(hours=hours))
            s.commit()
    finally:
        engine.dispose()


def test_replay_returns_the_same_analysis(held_api: Api) -> None:
    api = held_api
    up = upload(api)
    body = {"upload_ids": [up], "params": {"min_snr": 3.0}, "name": "first"}
    first = post(api, body, "order-42")
    assert first.status_code == 201, first.text
    assert REPLAYED not in first.headers
    created = first.json()

    again = post(api, body, "order-42")
    assert again.status_code == 201, again.text
    assert again.headers[REPLAYED] == "true"
    assert again.json()["id"] == created["id"]
    assert {k: again.json()[k] for k in ("name", "upload_ids", "params", "created_at")} == \
           {k: created[k] for k in ("name", "upload_ids", "params", "created_at")}
    # The same request with its keys in another order and other spacing is the same request.
    raw = '{ "name": "first",\n "params": {"min_snr": 3.0}, "upload_ids": [%d] }' % up
    r = api.client.post("/v1/analyses", headers=api.h() | {KEY: "order-42",
                                                           "Content-Type": "application/json"},
                        content=raw)
    assert r.status_code == 201 and r.headers[REPLAYED] == "true" and r.json()["id"] == created["id"]
    assert total(api) == 1

    # Stored with the analysis: the key and the documented fingerprint (SHA-256 of the parsed
    # body as JSON with sorted keys and no whitespace).
    canonical = json.dumps({"name": "first", "params": {"min_snr": 3.0}, "upload_ids": [up]},
                           sort_keys=True, separators=(",", ":"))
    assert stored_key(api, created["id"]) == ("order-42", hashlib.sha256(canonical.encode()).hexdigest())

    # Another key is another analysis; keys are per user (bob's "order-42" is his own).
    other = post(api, body, "order-43")
    assert other.status_code == 201 and REPLAYED not in other.headers
    assert other.json()["id"] != created["id"]
    bobs = post(api, {"upload_ids": [upload(api, "bob")], "params": {"min_snr": 3.0}, "name": "first"},
                "order-42", who="bob")
    assert bobs.status_code == 201 and REPLAYED not in bobs.headers, bobs.text
    assert bobs.json()["id"] not in (created["id"], other.json()["id"])
    assert (total(api), total(api, "bob")) == (2, 1)


def test_without_the_header_nothing_changes(held_api: Api) -> None:
    api = held_api
    body = {"upload_ids": [upload(api)]}
    ids = []
    for _ in range(2):
        r = post(api, body)
        assert r.status_code == 201 and REPLAYED not in r.headers, r.text
        ids.append(r.json()["id"])
    assert ids[0] != ids[1] and total(api) == 2
    assert stored_key(api, ids[0]) == (None, None)


def test_same_key_with_another_request_is_refused(held_api: Api) -> None:
    api = held_api
    up, other_up = upload(api), upload(api, name="other.mgf")
    body = {"upload_ids": [up], "params": {}, "name": "a"}
    created = post(api, body, "k1")
    assert created.status_code == 201, created.text
    for changed in ({**body, "name": "b"}, {**body, "upload_ids": [other_up]},
                    {**body, "params": {"min_snr": 5.0}}, {**body, "upload_ids": [up, other_up]}):
        r = post(api, changed, "k1")
        assert r.status_code == 422, (changed, r.text)
        detail = r.json()["detail"]
        assert "Idempotency-Key 'k1'" in detail and "different request" in detail, detail
        assert f"analysis {created.json()['id']}" in detail
        assert REPLAYED not in r.headers
    # The original request still replays.
    assert post(api, body, "k1").headers[REPLAYED] == "true"
    # A refused request stores nothing: its key may be sent again with a corrected request.
    bad = post(api, {"upload_ids": [up], "params": {"no_such_parameter": 1}}, "k2")
    assert bad.status_code == 422 and "Idempotency-Key" not in bad.json()["detail"], bad.text
    fixed = post(api, {"upload_ids": [up]}, "k2")
    assert fixed.status_code == 201 and REPLAYED not in fixed.headers, fixed.text
    assert total(api) == 2


@pytest.mark.parametrize("key, problem", [
    ("", "it is empty"),
    ("k" * 256, "it has 256"),
    (b"cl\xc3\xa9", "it contains"),  # UTF-8 "clé", read as Latin-1 by the server
    ("tab\there", "it contains '\\t'"),
])
def test_invalid_key_is_400(held_api: Api, key: str | bytes, problem: str) -> None:
    api = held_api
    body = {"upload_ids": [upload(api)]}
    r = post(api, body, key)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert detail.startswith("the Idempotency-Key header must be 1 to 255 printable ASCII characters")
    assert problem in detail, detail
    assert total(api) == 0


def test_key_rules_at_their_limits(held_api: Api) -> None:
    api = held_api
    body = {"upload_ids": [upload(api)]}
    twice = api.client.post("/v1/analyses", json=body,
                            headers=[*api.h().items(), (KEY, "a"), (KEY, "b")])
    assert twice.status_code == 400 and "send one Idempotency-Key header" in twice.json()["detail"]
    longest = "".join(chr(32 + i % 95) for i in range(255))  # every printable ASCII character
    assert len(longest) == 255
    r = post(api, body, longest)
    assert r.status_code == 201, r.text
    assert post(api, body, longest).headers[REPLAYED] == "true"
    assert total(api) == 1
    # The schema documents the header.
    op = api.client.get("/openapi.json").json()["paths"]["/v1/analyses"]["post"]
    [param] = [p for p in op["parameters"] if p["name"] == KEY]
    assert param["in"] == "header" and param["schema"]["maxLength"] == 255
    assert REPLAYED in op["responses"]["201"]["headers"] and "400" in op["responses"]


def hold_lookups(monkeypatch: pytest.MonkeyPatch, n: int, rounds: int) -> list[object]:
    """Holds the first ``rounds`` x ``n`` key look-ups (``idempotency.created_with_key``) in
    rounds of ``n``: each round goes on once all ``n`` have looked. Returns what each look-up
    found, in order."""
    from mzforge.api import idempotency

    together = threading.Barrier(n)
    lookups: list[object] = []
    lock = threading.Lock()
    look_up = idempotency.created_with_key

    def look_up_together(session, model, user_id, key):  # noqa: ANN001, ANN202
        found = look_up(session, model, user_id, key)
        with lock:
            lookups.append(found)
            held = len(lookups) <= rounds * n
        if held:
            together.wait(timeout=60)
        return found

    monkeypatch.setattr(idempotency, "created_with_key", look_up_together)
    return lookups


def all_at_once(n: int, request: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """``n`` requests at once; they must create one row: one 201, ``n - 1`` replays of it."""
    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(lambda _: request(), range(n)))
    assert [r.status_code for r in answers] == [201] * n, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert sorted(r.headers.get(REPLAYED, "no") for r in answers) == ["no"] + ["true"] * (n - 1)
    return answers


def test_concurrent_requests_with_one_key_create_one_analysis(held_api: Api, monkeypatch) -> None:
    """Several requests with one key, held until every one has looked the key up (and found
    nothing), then let go together: each INSERTs, the unique index lets one through, the others
    find its analysis and replay it."""
    api = held_api
    body = {"upload_ids": [upload(api)], "name": "raced"}
    n = 6
    lookups = hold_lookups(monkeypatch, n, rounds=1)
    answers = all_at_once(n, lambda: post(api, body, "raced-key"))
    # Every request had looked and found nothing before any INSERT; the n - 1 losers looked again
    # after their INSERT was refused and found the winner's analysis.
    assert lookups[:n] == [None] * n and len(lookups) == 2 * n - 1
    assert total(api) == 1


def test_expired_key_may_be_used_again(held_api: Api) -> None:
    from mzforge.api.db import Analysis

    api = held_api
    up = upload(api)
    first = post(api, {"upload_ids": [up], "name": "old"}, "daily").json()["id"]
    age(api, Analysis, first, 23.9)  # not yet expired: still this analysis's key
    assert post(api, {"upload_ids": [up], "name": "new"}, "daily").status_code == 422
    assert post(api, {"upload_ids": [up], "name": "old"}, "daily").headers[REPLAYED] == "true"
    age(api, Analysis, first, 24.1)  # expired: free for a new request, which creates a new analysis
    r = post(api, {"upload_ids": [up], "name": "new"}, "daily")
    assert r.status_code == 201 and REPLAYED not in r.headers, r.text
    second = r.json()["id"]
    assert second != first
    assert stored_key(api, first)[0] is None and stored_key(api, second)[0] == "daily"
    again = post(api, {"upload_ids": [up], "name": "new"}, "daily")
    assert again.headers[REPLAYED] == "true" and again.json()["id"] == second
    assert total(api) == 2


# ---- uploads -------------------------------------------------------------------------------------

MGF, MZML = "mgf/small.mgf", "profile/three_test_scans.mzML"


def post_upload(api: Api, key: str | bytes | None = None, who: str = "alice", name: str = "small.mgf",
                data: str = MGF, extra: list[tuple[str, str]] = ()) -> httpx.Response:
    headers = [*api.h(who).items(), *([(KEY, key)] if key is not None else []), *extra]
    with open(shared(data), "rb") as f:
        return api.client.post("/v1/uploads", headers=headers, files={"file": (name, f)})


def upload_total(api: Api, who: str = "alice") -> int:
    return api.client.get("/v1/uploads", headers=api.h(who)).json()["total"]


def stored_files(api: Api) -> list[Path]:
    """The files in the uploads area of local storage, and any left in staging."""
    data = Path(api.env["MZFORGE_DATA_DIR"])
    return [p for area in (data / "storage" / "uploads", data / "tmp") if area.exists()
            for p in area.rglob("*") if p.is_file()]


def test_upload_replay_returns_the_same_upload(held_api: Api, monkeypatch) -> None:
    api = held_api
    storage = api.client.app.state.storage
    puts: list[str] = []
    put_file = storage.put_file
    monkeypatch.setattr(storage, "put_file", lambda area, key, path: (puts.append(key),
                                                                      put_file(area, key, path)))
    first = post_upload(api, "file-7")
    assert first.status_code == 201, first.text
    assert REPLAYED not in first.headers
    created = first.json()

    again = post_upload(api, "file-7")
    assert again.status_code == 201, again.text
    assert again.headers[REPLAYED] == "true"
    assert again.json() == created
    assert upload_total(api) == 1
    # The repeat's bytes were received and dropped, never stored; nothing is left in staging.
    assert len(puts) == 1 and len(stored_files(api)) == 1
    # Stored with the upload: the key and the documented fingerprint (SHA-256 of the file's name
    # and SHA-256 as JSON with sorted keys and no whitespace).
    canonical = json.dumps({"filename": "small.mgf", "sha256": created["sha256"]}, sort_keys=True,
                           separators=(",", ":"))
    assert stored_key(api, created["id"], "uploads") == \
           ("file-7", hashlib.sha256(canonical.encode()).hexdigest())

    # Keys are per user, and uploads and analyses have keys of their own.
    bobs = post_upload(api, "file-7", who="bob")
    assert bobs.status_code == 201 and REPLAYED not in bobs.headers, bobs.text
    analysis = post(api, {"upload_ids": [created["id"]]}, "file-7")
    assert analysis.status_code == 201 and REPLAYED not in analysis.headers, analysis.text
    assert post_upload(api, "file-7").json()["id"] == created["id"]
    # Without the header every request is a new upload.
    ids = {post_upload(api).json()["id"] for _ in range(2)}
    assert len(ids) == 2 and created["id"] not in ids
    assert (upload_total(api), upload_total(api, "bob")) == (3, 1)
    assert len(stored_files(api)) == 4


def test_upload_same_key_with_another_request_is_refused(held_api: Api) -> None:
    api = held_api
    created = post_upload(api, "k1").json()
    for name, data in (("other.mgf", MGF), ("small.mgf", MZML)):
        r = post_upload(api, "k1", name=name, data=data)
        assert r.status_code == 422, (name, data, r.text)
        detail = r.json()["detail"]
        assert "Idempotency-Key 'k1'" in detail and "different request" in detail, detail
        assert f"upload {created['id']}" in detail
        assert REPLAYED not in r.headers
    # A refused request stores nothing, and the original request still replays.
    assert upload_total(api) == 1 and len(stored_files(api)) == 1
    assert post_upload(api, "k1").headers[REPLAYED] == "true"
    # A rejected upload stores nothing either: its key may be sent again with a proper file.
    r = api.client.post("/v1/uploads", headers=api.h() | {KEY: "k2"},
                        files={"file": ("notes.txt", b"no spectra here")})
    assert r.status_code == 415, r.text
    r = post_upload(api, "k2")
    assert r.status_code == 201 and REPLAYED not in r.headers, r.text
    # The key of a deleted upload is free again.
    assert api.client.delete(f"/v1/uploads/{created['id']}", headers=api.h()).status_code == 204
    r = post_upload(api, "k1")
    assert r.status_code == 201 and REPLAYED not in r.headers, r.text
    assert r.json()["id"] != created["id"]
    assert upload_total(api) == 2 and len(stored_files(api)) == 2


@pytest.mark.parametrize("key, problem", [
    ("", "it is empty"),
    ("k" * 256, "it has 256"),
    (b"cl\xc3\xa9", "it contains"),
    ("tab\there", "it contains '\\t'"),
])
def test_upload_invalid_key_is_400(held_api: Api, key: str | bytes, problem: str) -> None:
    api = held_api
    r = post_upload(api, key)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert detail.startswith("the Idempotency-Key header must be 1 to 255 printable ASCII characters")
    assert problem in detail, detail
    assert upload_total(api) == 0 and stored_files(api) == []


def test_upload_key_rules_at_their_limits(held_api: Api) -> None:
    api = held_api
    twice = post_upload(api, "a", extra=[(KEY, "b")])
    assert twice.status_code == 400 and "send one Idempotency-Key header" in twice.json()["detail"]
    assert upload_total(api) == 0 and stored_files(api) == []
    longest = "".join(chr(32 + i % 95) for i in range(255))  # every printable ASCII character
    r = post_upload(api, longest)
    assert r.status_code == 201, r.text
    assert post_upload(api, longest).headers[REPLAYED] == "true"
    assert upload_total(api) == 1
    # The schema documents the header.
    op = api.client.get("/openapi.json").json()["paths"]["/v1/uploads"]["post"]
    [param] = [p for p in op["parameters"] if p["name"] == KEY]
    assert param["in"] == "header" and param["schema"]["maxLength"] == 255
    assert "upload" in param["description"]
    assert REPLAYED in op["responses"]["201"]["headers"]
    assert {"400", "413", "415", "422"} <= set(op["responses"])


def test_concurrent_uploads_with_one_key_create_one_upload(held_api: Api, monkeypatch) -> None:
    """Several uploads of one file with one key. Each looks the key up before storing the file
    and again before its INSERT; all are held until every one has done each look-up (and found
    nothing), then let go together: each INSERTs, the unique index lets one through, the others
    find its upload, delete the file they stored and replay it."""
    api = held_api
    n = 6
    lookups = hold_lookups(monkeypatch, n, rounds=2)
    all_at_once(n, lambda: post_upload(api, "raced-upload"))
    # Both rounds of look-ups found nothing; the n - 1 losers looked again after their INSERT
    # was refused and found the winner's upload.
    assert lookups[:2 * n] == [None] * (2 * n) and len(lookups) == 3 * n - 1
    assert upload_total(api) == 1
    assert len(stored_files(api)) == 1


def test_expired_upload_key_may_be_used_again(held_api: Api) -> None:
    from mzforge.api.db import Upload

    api = held_api
    first = post_upload(api, "daily").json()["id"]
    age(api, Upload, first, 23.9)  # not yet expired: still this upload's key
    assert post_upload(api, "daily", data=MZML).status_code == 422
    assert post_upload(api, "daily").headers[REPLAYED] == "true"
    age(api, Upload, first, 24.1)  # expired: free for a new request, which creates a new upload
    r = post_upload(api, "daily", data=MZML)
    assert r.status_code == 201 and REPLAYED not in r.headers, r.text
    second = r.json()["id"]
    assert second != first
    assert stored_key(api, first, "uploads")[0] is None
    assert stored_key(api, second, "uploads")[0] == "daily"
    again = post_upload(api, "daily", data=MZML)
    assert again.headers[REPLAYED] == "true" and again.json()["id"] == second
    assert upload_total(api) == 2 and len(stored_files(api)) == 2


# ---- the migration -------------------------------------------------------------------------------

# Each process says it is ready (a file), waits for the go file, then migrates: they start at once.
MIGRATE_TOGETHER = """
import os, sys, time
from mzforge.api.db import migrate
url, go = sys.argv[1], sys.argv[2]
open(f"{go}.ready.{os.getpid()}", "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
migrate(url)
"""


def test_migrations_run_at_once_by_several_processes(db_url: str, tmp_path: Path) -> None:
    """Replicas starting together on an empty database: every one starts (they take turns), and
    the schema ends complete, migrated once."""
    go = tmp_path / "go"
    n = 4
    procs = [subprocess.Popen([PYTHON, "-c", MIGRATE_TOGETHER, db_url, str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(n)]
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("go.ready.*"))) < n:
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), \
                [p.communicate()[0] for p in procs if p.poll() is not None]
            time.sleep(0.05)
        go.touch()
        outcomes = [(p.wait(timeout=120), p.stdout.read()) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert [rc for rc, _ in outcomes] == [0] * n, outcomes
    engine = create_engine(db_url)
    try:
        with engine.connect() as c:
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["0004"]
        insp = inspect(engine)
        for table in ("analyses", "uploads"):
            columns = {c["name"] for c in insp.get_columns(table)}
            assert {"idempotency_key", "request_sha256"} <= columns, table
            [index] = [i for i in insp.get_indexes(table)
                       if i["name"] == f"ix_{table}_user_id_idempotency_key"]
            assert index["unique"] and index["column_names"] == ["user_id", "idempotency_key"]
    finally:
        engine.dispose()


def old_database(db_url: str, revision: str) -> Engine:
    """The database migrated up to ``revision`` only, with a user (id 1)."""
    from mzforge.api.db import migrate

    migrate(db_url, revision)
    engine = create_engine(db_url)
    with engine.begin() as c:
        c.execute(text("INSERT INTO users (id, email, is_admin, created_at) "
                       "VALUES (1, 'old@example.org', false, CURRENT_TIMESTAMP)"))
    return engine


def test_migration_keeps_existing_analyses(db_url: str) -> None:
    """A database of the first schema, with an analysis: upgraded, the analysis is unchanged and
    has no key; the downgrade removes the columns again."""
    from alembic import command

    from mzforge.api.db import alembic_config, migrate

    engine = old_database(db_url, "0001")
    try:
        with engine.begin() as c:
            c.execute(text("INSERT INTO analyses (id, user_id, run_id, status, upload_ids, inputs, "
                           "params, backend, created_at) VALUES (7, 1, 'local-7-x', 'succeeded', "
                           "'[1]', '[]', '{}', 'local', CURRENT_TIMESTAMP)"))
        migrate(db_url)
        migrate(db_url)  # again: nothing to do
        with engine.connect() as c:
            row = c.execute(text("SELECT run_id, status, idempotency_key, request_sha256 "
                                 "FROM analyses")).one()
        assert tuple(row) == ("local-7-x", "succeeded", None, None)
        command.downgrade(alembic_config(db_url), "0001")
        engine.dispose()
        assert "idempotency_key" not in {c["name"] for c in inspect(engine).get_columns("analyses")}
        with engine.connect() as c:
            assert c.execute(text("SELECT run_id FROM analyses")).scalars().all() == ["local-7-x"]
    finally:
        engine.dispose()


def test_migration_keeps_existing_uploads(db_url: str) -> None:
    """A database of the second schema, with an upload: upgraded, the upload is unchanged and has
    no key (and a key may be given to it); the downgrade removes the columns again."""
    from alembic import command

    from mzforge.api.db import alembic_config, migrate

    engine = old_database(db_url, "0002")
    try:
        with engine.begin() as c:
            for i in (3, 4):
                c.execute(text("INSERT INTO uploads (id, user_id, filename, size, sha256, format, "
                               "storage_key, created_at) VALUES (:i, 1, 'old.mgf', 10, 'ab', 'mgf', "
                               ":k, CURRENT_TIMESTAMP)"), {"i": i, "k": f"uploads/1/x{i}/old.mgf"})
        migrate(db_url)
        with engine.begin() as c:
            rows = c.execute(text("SELECT id, storage_key, idempotency_key, request_sha256 "
                                  "FROM uploads ORDER BY id")).all()
            assert [tuple(r) for r in rows] == [(3, "uploads/1/x3/old.mgf", None, None),
                                                (4, "uploads/1/x4/old.mgf", None, None)]
            c.execute(text("UPDATE uploads SET idempotency_key = 'k' WHERE id = 3"))
        # The index is unique per user.
        with pytest.raises(Exception, match="(?i)unique"), engine.begin() as c:
            c.execute(text("UPDATE uploads SET idempotency_key = 'k' WHERE id = 4"))
        command.downgrade(alembic_config(db_url), "0002")
        engine.dispose()
        assert "idempotency_key" not in {c["name"] for c in inspect(engine).get_columns("uploads")}
        with engine.connect() as c:
            assert c.execute(text("SELECT id FROM uploads ORDER BY id")).scalars().all() == [3, 4]
    finally:
        engine.dispose()


def test_a_sqlite_migration_that_finds_the_database_locked_is_tried_again(monkeypatch) -> None:
    """SQLite answers "database is locked" at once where waiting could deadlock: migrate() tries
    the whole migration again (bounded); other failures, and other databases, are not retried."""
    from alembic import command
    from sqlalchemy import exc as sa_exc

    from mzforge.api import db

    def failing(errors):
        calls = []

        def upgrade(_config, _revision):
            calls.append(1)
            if errors:
                raise errors.pop(0)

        return calls, upgrade

    locked = lambda: sa_exc.OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))  # noqa: E731
    monkeypatch.setattr(db.time, "sleep", lambda _s: None)

    calls, upgrade = failing([locked(), locked()])
    monkeypatch.setattr(command, "upgrade", upgrade)
    db.migrate("sqlite:////tmp/unused.db")
    assert len(calls) == 3

    calls, upgrade = failing([locked() for _ in range(10)])
    monkeypatch.setattr(command, "upgrade", upgrade)
    with pytest.raises(sa_exc.OperationalError):
        db.migrate("sqlite:////tmp/unused.db")
    assert len(calls) == 5

    other = sa_exc.OperationalError("SELECT", {}, Exception("disk I/O error"))
    calls, upgrade = failing([other])
    monkeypatch.setattr(command, "upgrade", upgrade)
    with pytest.raises(sa_exc.OperationalError):
        db.migrate("sqlite:////tmp/unused.db")
    assert len(calls) == 1

    calls, upgrade = failing([locked()])
    monkeypatch.setattr(command, "upgrade", upgrade)
    with pytest.raises(sa_exc.OperationalError):
        db.migrate("postgresql+psycopg://u@127.0.0.1:1/x")
    assert len(calls) == 1
