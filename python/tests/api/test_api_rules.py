"""Isolation, authentication, bad input, cancellation and crashed workers (SQLite and
PostgreSQL)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from apitest import api_client, live_server, shared


def _analysis_ok(api) -> tuple[int, int]:
    up = api.upload(shared("mgf/small.mgf")).json()["id"]
    a = api.wait(api.analyse([up]).json()["id"])
    assert a["status"] == "succeeded", a
    return up, a["id"]


def test_other_users_get_404(api) -> None:
    up, aid = _analysis_ok(api)
    bob = api.h("bob")
    for method, url in [
        ("get", f"/v1/uploads/{up}"), ("delete", f"/v1/uploads/{up}"),
        ("get", f"/v1/analyses/{aid}"), ("delete", f"/v1/analyses/{aid}"),
        ("get", f"/v1/analyses/{aid}/results/peaks"),
        ("get", f"/v1/analyses/{aid}/results/spectra?format=parquet"),
        ("get", f"/v1/analyses/{aid}/spectra/0"), ("get", f"/v1/analyses/{aid}/spectra/0/plot.svg"),
    ]:
        r = api.client.request(method, url, headers=bob)
        assert r.status_code == 404, (method, url, r.status_code)
    assert api.client.get("/v1/uploads", headers=bob).json()["total"] == 0
    assert api.client.get("/v1/analyses", headers=bob).json()["total"] == 0
    r = api.analyse([up], who="bob")
    assert r.status_code == 404 and f"upload {up} not found" in r.json()["detail"]
    # Alice still has everything.
    assert api.client.get(f"/v1/analyses/{aid}", headers=api.h()).status_code == 200


def test_authentication(api) -> None:
    # The documentation is public: Swagger UI and the schema with every route.
    assert api.client.get("/docs").status_code == 200
    paths = api.client.get("/openapi.json").json()["paths"]
    assert {"/v1/uploads", "/v1/analyses/{analysis_id}/results/{table}", "/readyz"} <= set(paths)
    assert api.client.get("/v1/me").status_code == 401
    r = api.client.get("/v1/me", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert api.client.get("/v1/me", headers=api.h()).json()["email"] == "alice@example.org"
    # Tokens are stored hashed: the database never holds the token itself.
    from mzforge.api.auth import hash_token

    engine = create_engine(api.settings.database_url)
    with engine.connect() as c:
        stored = [r[0] for r in c.execute(text("SELECT token_sha256 FROM tokens"))]
    engine.dispose()
    assert api.tokens["alice"] not in stored and hash_token(api.tokens["alice"]) in stored


def test_admin_creates_users(api) -> None:
    r = api.client.post("/v1/users", headers=api.h("admin"), json={"email": "carol@example.org"})
    assert r.status_code == 201, r.text
    carol = r.json()
    me = api.client.get("/v1/me", headers={"Authorization": f"Bearer {carol['token']}"}).json()
    assert me == {"id": carol["id"], "email": "carol@example.org", "is_admin": False}
    r = api.client.post("/v1/users", headers=api.h("admin"), json={"email": "carol@example.org"})
    assert r.status_code == 409
    r = api.client.post("/v1/users", headers=api.h(), json={"email": "dave@example.org"})
    assert r.status_code == 403
    # Another token for an existing user, by email or id (the web site's recovery after a 409).
    for who in ("carol@example.org", str(carol["id"])):
        r = api.client.post(f"/v1/users/{who}/tokens", headers=api.h("admin"))
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        assert token != carol["token"]
        me = api.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["email"] == "carol@example.org"
    assert api.client.post("/v1/users/nobody@example.org/tokens", headers=api.h("admin")).status_code == 404
    assert api.client.post(f"/v1/users/{carol['id']}/tokens", headers=api.h()).status_code == 403


def test_wrong_content_is_415_naming_the_file(api) -> None:
    r = api.client.post("/v1/uploads", headers=api.h(), files={"file": ("notes.txt", b"hello\n" * 100)})
    assert r.status_code == 415
    assert r.json()["detail"] == "upload 'notes.txt' is not mzML or MGF (plain, gzip- or bzip2-compressed)"
    r = api.client.post("/v1/uploads", headers=api.h(), files={"file": ("empty.mzML", b"")})
    assert r.status_code == 415
    # A gzip stream that is not mzML inside.
    import gzip

    r = api.client.post("/v1/uploads", headers=api.h(), files={"file": ("x.mzML.gz", gzip.compress(b"{}" * 50))})
    assert r.status_code == 415
    r = api.client.post("/v1/uploads", headers=api.h(), content=b"raw", )
    assert r.status_code == 415
    assert api.client.get("/v1/uploads", headers=api.h()).json()["total"] == 0
    staging = api.settings.data_dir / "tmp"
    assert not staging.exists() or list(staging.iterdir()) == []
    uploads = api.settings.data_dir / "storage" / "uploads"
    assert [p for p in uploads.rglob("*") if p.is_file()] == []


def test_a_damaged_bzip2_upload_is_415_in_plain_words(api) -> None:
    """A bzip2 stream cut short gives no text at all (bzip2 writes a block only once it has read
    it whole): not "is not mzML", which someone holding a .mzML.bz2 file cannot act on."""
    whole = shared("encodings/MzMLFile_6_uncompressed.mzML.bz2").read_bytes()
    damaged = bytearray(whole)
    damaged[100:200] = bytes(100)  # inside the first block: its checksum fails
    for name, data in (("cut.mzML.bz2", whole[:len(whole) // 2]), ("damaged.mzML.bz2", bytes(damaged))):
        r = api.client.post("/v1/uploads", headers=api.h(), files={"file": (name, data)})
        assert r.status_code == 415, r.text
        assert r.json()["detail"] == (f"upload {name!r} is bzip2-compressed but cannot be "
                                      "decompressed: it is damaged or cut short")
    assert api.client.get("/v1/uploads", headers=api.h()).json()["total"] == 0
    staging = api.settings.data_dir / "tmp"
    assert not staging.exists() or list(staging.iterdir()) == []


def test_unknown_or_invalid_parameters_are_422(api) -> None:
    up = api.upload(shared("mgf/small.mgf")).json()["id"]
    r = api.analyse([up], {"min_snr": 1, "frobnicate": 2})
    assert r.status_code == 422 and "unknown parameter 'frobnicate'" in r.json()["detail"]
    r = api.analyse([up], {"tolerance_ppm": 0})
    assert r.status_code == 422 and "tolerance_ppm" in r.json()["detail"]
    r = api.analyse([up], {"signal": "maybe"})
    assert r.status_code == 422 and "signal" in r.json()["detail"]
    r = api.analyse([up], {"charge_range": [5, 2]})
    assert r.status_code == 422 and "charge" in r.json()["detail"]
    r = api.analyse([up], {"deconvolve": "yes"})
    assert r.status_code == 422 and "deconvolve must be boolean" in r.json()["detail"]
    r = api.analyse([up], {"deconvolve": False, "charge_range": [1, 60]})
    assert r.status_code == 422 and "`charge_range`: has no effect with deconvolve=False" in r.json()["detail"]
    assert api.client.post("/v1/analyses", headers=api.h(), json={"upload_ids": []}).status_code == 422
    assert api.client.get("/v1/analyses", headers=api.h()).json()["total"] == 0


def test_a_null_charge_range_is_the_automatic_range(api) -> None:
    # The documented default (`null`), sent explicitly, was a 500: the range check compared
    # None with the limits.
    up = api.upload(shared("mgf/small.mgf")).json()["id"]
    r = api.analyse([up], {"charge_range": None, "deconvolve": False})
    assert r.status_code in (201, 202), r.text
    assert r.json()["params"]["charge_range"] is None


def test_oversized_upload_is_413(db_url: str, tmp_path: Path) -> None:
    env = {"MZFORGE_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": db_url,
           "MZFORGE_MAX_UPLOAD_BYTES": "100000"}
    with api_client(env) as api:
        r = api.upload(shared("profile/three_test_scans.mzML"))  # 237 kB
        assert r.status_code == 413
        assert r.json()["detail"].endswith("is larger than the limit of 100000 bytes")
        # Without a Content-Length (chunked), the limit is enforced while streaming.
        body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.mzML\"\r\n\r\n"
                + shared("profile/three_test_scans.mzML").read_bytes() + b"\r\n--XyZ--\r\n")
        r = api.client.post("/v1/uploads", headers={**api.h(), "Content-Type": "multipart/form-data; boundary=XyZ"},
                            content=(body[i:i + 65536] for i in range(0, len(body), 65536)))
        assert r.status_code == 413
        assert r.json()["detail"] == "upload 'big.mzML' is larger than the limit of 100000 bytes"
        assert api.client.get("/v1/uploads", headers=api.h()).json()["total"] == 0
        assert list((tmp_path / "data" / "tmp").iterdir()) == []
        small = tmp_path / "one.mgf"
        small.write_text("BEGIN IONS\nPEPMASS=500.5\nCHARGE=2+\n100.0 10\n200.0 20\nEND IONS\n")
        assert api.upload(small).status_code == 201  # below the limit


def test_an_analysis_goes_on_past_a_file_that_fails(api, tmp_path: Path) -> None:
    # One broken file among several failed the whole analysis and threw the others' results
    # away; now they stand, and the broken one is listed with its reason.
    data = shared("runs/BSA1.mzML").read_bytes()
    cut = tmp_path / "BSA1_cut.mzML"
    cut.write_bytes(data[: len(data) // 2])
    good = api.upload(shared("mgf/small.mgf")).json()["id"]
    bad = api.upload(cut).json()["id"]
    a = api.wait(api.analyse([good, bad], {"on_bad_spectrum": "fail"}).json()["id"])
    assert a["status"] == "succeeded", a
    (failed,) = a["summary"]["failed_inputs"]
    assert failed["upload_id"] == bad and failed["filename"] == "BSA1_cut.mzML"
    assert failed["error"] == "Mzforge.BadInput"
    assert failed["cause"].startswith("BSA1_cut.mzML: ") and "malformed input" in failed["cause"]
    assert str(tmp_path) not in failed["cause"] and "storage" not in failed["cause"]
    assert a["summary"]["spectra"] > 0
    peaks = api.client.get(f"/v1/analyses/{a['id']}/results/peaks?format=parquet", headers=api.h())
    assert peaks.status_code == 200
    upload_ids = pq.read_table(io.BytesIO(peaks.content))["upload_id"].to_pylist()
    assert upload_ids and set(upload_ids) == {good}
    # As on the cloud route, the failed input's result directory holds why (input-failure.json).
    results = api.settings.data_dir / "storage" / "results" / "analyses"
    (record,) = results.glob("*/results/BSA1_cut/*")
    assert record.name == "failure.json"
    failure = json.loads(record.read_text())
    assert sorted(failure) == ["cause", "error", "failedAt", "input"]
    assert failure["error"] == "Mzforge.BadInput" and failure["cause"] == failed["cause"]


def test_file_failing_mid_analysis(api, tmp_path: Path) -> None:
    # BSA1 cut in the middle of a spectrum: the engine reads hundreds of spectra, then fails.
    data = shared("runs/BSA1.mzML").read_bytes()
    cut = tmp_path / "BSA1_cut.mzML"
    cut.write_bytes(data[: len(data) // 2])
    r = api.upload(cut)
    assert r.status_code == 201  # the head is mzML
    a = api.wait(api.analyse([r.json()["id"]], {"on_bad_spectrum": "fail"}).json()["id"])
    assert a["status"] == "failed"
    assert a["error"].startswith("BSA1_cut.mzML: ") and "malformed input" in a["error"], a["error"]
    assert str(tmp_path) not in a["error"] and "storage" not in a["error"]
    assert a["summary"] is None and a["result_location"] is None
    r = api.client.get(f"/v1/analyses/{a['id']}/results/peaks", headers=api.h())
    assert r.status_code == 409 and r.json()["detail"] == f"analysis {a['id']} is failed"
    results = api.settings.data_dir / "storage" / "results" / "analyses"
    files = sorted(p.name for p in results.rglob("*") if p.is_file())
    assert files == ["failure.json"], files  # nothing partial, only the failure record



@pytest.mark.parametrize("db", ["sqlite"])
def test_worker_crash_and_cancel_live(db: str, tmp_path: Path) -> None:
    """A worker killed by SIGKILL (as a segfault or the OOM killer would) fails its analysis with
    the signal's name; the server keeps serving and runs the next analysis; a cancelled running
    analysis has its worker killed."""
    hold = tmp_path / "hold"
    env = {"MZFORGE_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
           "MZFORGE_WORKER_HOLD_FILE": str(hold), "MZFORGE_WORKERS": "2"}
    with live_server(env) as srv, httpx.Client(base_url=srv.url, headers=srv.h(), timeout=30) as c:
        with open(shared("mgf/small.mgf"), "rb") as f:
            up = c.post("/v1/uploads", files={"file": ("small.mgf", f)}).json()["id"]

        def start() -> int:
            return c.post("/v1/analyses", json={"upload_ids": [up]}).json()["id"]

        def wait(aid: int, statuses: tuple[str, ...]) -> dict:
            for _ in range(600):
                a = c.get(f"/v1/analyses/{aid}").json()
                if a["status"] in statuses:
                    return a
                time.sleep(0.05)
            raise AssertionError(a)

        def worker_pid(aid: int) -> int:
            engine = create_engine(env["DATABASE_URL"])
            for _ in range(200):
                with engine.connect() as conn:
                    runner = conn.execute(text("SELECT runner FROM analyses WHERE id=:i"), {"i": aid}).scalar()
                if runner and runner.split(" pid ")[-1].isdigit():
                    engine.dispose()
                    return int(runner.split(" pid ")[-1])
                time.sleep(0.05)
            raise AssertionError(runner)

        hold.touch()
        doomed, cancelled = start(), start()
        wait(doomed, ("running",))
        wait(cancelled, ("running",))
        pid = worker_pid(doomed)
        os.kill(pid, signal.SIGKILL)
        a = wait(doomed, ("failed",))
        assert a["error"] == "the analysis worker was killed by SIGKILL"
        pid2 = worker_pid(cancelled)
        r = c.delete(f"/v1/analyses/{cancelled}")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        for _ in range(100):
            try:
                os.kill(pid2, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the cancelled analysis' worker still runs")
        assert c.get("/healthz").json() == {"status": "ok"}
        assert srv.proc.poll() is None
        hold.unlink()
        ok = wait(start(), ("succeeded", "failed"))
        assert ok["status"] == "succeeded", ok
        assert c.get(f"/v1/analyses/{cancelled}").json()["status"] == "cancelled"
        assert c.get(f"/v1/analyses/{cancelled}/results/peaks").status_code == 409


def test_readyz_reports_storage(api) -> None:
    assert api.client.get("/readyz").status_code == 200
    import shutil

    shutil.rmtree(api.settings.data_dir / "storage" / "results")
    r = api.client.get("/readyz")
    assert r.status_code == 503 and "storage" in r.json()["problems"]
    assert api.client.get("/healthz").status_code == 200


def test_admin_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "MZFORGE_DATA_DIR": str(tmp_path / "d")}
    cmd = [sys.executable, "-m", "mzforge.api.cli"]
    assert "up to date" in subprocess.run([*cmd, "migrate"], env=env, capture_output=True, text=True, check=True).stdout
    t1 = subprocess.run([*cmd, "create-user", "eve@example.org", "--admin"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    t2 = subprocess.run([*cmd, "create-token", "eve@example.org"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert t1.startswith("mzf_") and t2.startswith("mzf_") and t1 != t2
    again = subprocess.run([*cmd, "create-user", "eve@example.org"], env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "exists" in again.stderr
    nobody = subprocess.run([*cmd, "create-token", "zed@example.org"], env=env, capture_output=True, text=True)
    assert nobody.returncode == 1 and "no user" in nobody.stderr
    from fastapi.testclient import TestClient

    from mzforge.api import Settings, create_app

    with TestClient(create_app(Settings.from_env(env))) as c:
        for t in (t1, t2):
            me = c.get("/v1/me", headers={"Authorization": f"Bearer {t}"}).json()
            assert me["email"] == "eve@example.org" and me["is_admin"] is True


def test_restart_marks_orphaned_analyses_failed(tmp_path: Path) -> None:
    """An analysis left `running` by a server that stopped (its worker gone) is failed on the next
    start; one whose worker still lives is left to it."""
    import socket

    from mzforge.api.db import Analysis, make_engine, make_sessionmaker, migrate

    env = {"MZFORGE_DATA_DIR": str(tmp_path / "d"), "DATABASE_URL": f"sqlite:///{tmp_path}/db"}
    migrate(env["DATABASE_URL"])
    engine = make_engine(env["DATABASE_URL"])
    host = socket.gethostname()
    with api_client(env) as api:
        up = api.upload(shared("mgf/small.mgf")).json()["id"]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with make_sessionmaker(engine)() as s:
            user_id = s.execute(text("SELECT id FROM users WHERE email='alice@example.org'")).scalar()
            for run_id, pid in (("orphan", dead.pid), ("living", alive.pid)):
                s.add(Analysis(user_id=user_id, run_id=run_id, status="running", upload_ids=[up],
                               inputs=[], params={}, backend="local", runner=f"{host} pid {pid}"))
            s.commit()
        from fastapi.testclient import TestClient

        from mzforge.api import Settings, create_app

        with TestClient(create_app(Settings.from_env({**os.environ, **env}))):
            with make_sessionmaker(engine)() as s:
                rows = {a.run_id: a for a in s.query(Analysis).filter(Analysis.run_id.in_(["orphan", "living"]))}
            assert rows["orphan"].status == "failed"
            assert rows["orphan"].error == "the server stopped while this analysis ran"
            assert rows["living"].status == "running"
    finally:
        alive.kill()
        alive.wait()
        engine.dispose()


def test_a_deleted_uploads_id_is_never_given_to_another(api) -> None:
    # SQLite gave the next upload the id of the newest one once that was deleted, so an
    # analysis of the deleted upload named another file in its upload_ids (migration 0004).
    gone = api.upload(shared("mgf/small.mgf"), name="gone.mgf").json()["id"]
    aid = api.wait(api.analyse([gone]).json()["id"])["id"]
    assert api.client.delete(f"/v1/uploads/{gone}", headers=api.h()).status_code == 204
    new = api.upload(shared("mgf/small.mgf"), name="new.mgf").json()["id"]
    assert new != gone
    assert api.client.get(f"/v1/uploads/{gone}", headers=api.h()).status_code == 404
    analysis = api.client.get(f"/v1/analyses/{aid}", headers=api.h()).json()
    assert analysis["upload_ids"] == [gone]


def test_an_upload_in_use_cannot_be_deleted(db_url: str, tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    hold.touch()
    env = {"MZFORGE_DATA_DIR": str(tmp_path / "d"), "DATABASE_URL": db_url,
           "MZFORGE_WORKER_HOLD_FILE": str(hold)}
    with api_client(env) as api:
        up = api.upload(shared("mgf/small.mgf")).json()["id"]
        aid = api.analyse([up]).json()["id"]
        r = api.client.delete(f"/v1/uploads/{up}", headers=api.h())
        assert r.status_code == 409 and f"analysis {aid}" in r.json()["detail"]
        hold.unlink()
        assert api.wait(aid)["status"] == "succeeded"
        assert api.client.delete(f"/v1/uploads/{up}", headers=api.h()).status_code == 204
        # Results outlive their upload; the profile trace is then simply absent.
        assert api.client.get(f"/v1/analyses/{aid}/results/peaks", headers=api.h()).json()["total"] > 0
