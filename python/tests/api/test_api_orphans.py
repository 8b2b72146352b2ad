"""Stored uploads that no row names (``orphans.py``): the periodic scan that removes what a stopped
server left in doubt, on local storage (SQLite and PostgreSQL) and on S3 (moto)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import boto3
import pytest

from apitest import AWS_ENV, api_client, shared

HOUR = 3600.0


def _stored_uploads(storage) -> set[str]:
    return {key for key, _ in storage.list_objects("uploads", "uploads/")}


def _age(storage, key: str, seconds: float) -> None:
    path = storage.path("uploads", key)
    then = time.time() - seconds
    os.utime(path, (then, then))


def _first_scan_done(sweeper) -> None:
    deadline = time.monotonic() + 20
    while sweeper.next_scan <= time.monotonic() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sweeper.next_scan > time.monotonic(), "the scan at start did not finish"


def test_the_scan_deletes_old_unrecorded_uploads_only(api) -> None:
    state = api.client.app.state
    storage, sweeper = state.storage, state.orphans
    _first_scan_done(sweeper)  # the one at start, so that the scans below are the test's own
    assert api.upload(shared("mgf/small.mgf")).status_code == 201
    (recorded,) = _stored_uploads(storage)
    stray = {name: f"uploads/1/{uuid.uuid4().hex}/{name}" for name in ("old.mzML", "young.mzML", "old.mgf.partial")}
    for key in stray.values():
        storage.put_bytes("uploads", key, b"left behind")
    storage.put_bytes("uploads", "requests/keep.json", b"{}")  # not an upload: never scanned
    for key in (recorded, stray["old.mzML"], stray["old.mgf.partial"]):
        _age(storage, key, 2 * HOUR)
    _age(storage, "requests/keep.json", 2 * HOUR)

    assert sweeper.scan() == 2
    assert _stored_uploads(storage) == {recorded, stray["young.mzML"]}
    assert storage.exists("uploads", "requests/keep.json")
    assert sweeper.scan() == 0
    # The recorded upload is whole and usable.
    up = api.client.get("/v1/uploads", headers=api.h()).json()["items"][0]
    a = api.wait(api.analyse([up["id"]]).json()["id"])
    assert a["status"] == "succeeded", a


def test_a_restarted_server_removes_what_a_stopped_one_left_in_doubt(tmp_path: Path) -> None:
    env = {"MZFORGE_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}",
           "MZFORGE_ORPHAN_MIN_AGE_SECONDS": "60"}
    with api_client(env) as api:
        storage = api.client.app.state.storage
        assert api.upload(shared("mgf/small.mgf")).status_code == 201
        (recorded,) = _stored_uploads(storage)
        # A key in doubt when the server stops with the database away: its note is lost with the
        # process (the stop's own sweep fails), the object stays.
        doubt = f"uploads/1/{uuid.uuid4().hex}/doubt.mzML"
        storage.put_bytes("uploads", doubt, b"committed or not?")
    _age(storage, doubt, 120)
    from fastapi.testclient import TestClient

    from mzforge.api import Settings, create_app

    with TestClient(create_app(Settings.from_env({**os.environ, **env}))) as client:
        storage = client.app.state.storage
        deadline = time.monotonic() + 20
        while storage.exists("uploads", doubt) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _stored_uploads(storage) == {recorded}, "the scan at start removes the orphan"


@pytest.fixture
def aws_env(moto: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    for k, v in {**AWS_ENV, "AWS_ENDPOINT_URL": moto}.items():
        monkeypatch.setenv(k, v)
    tag = uuid.uuid4().hex[:10]
    env = {**AWS_ENV, "AWS_ENDPOINT_URL": moto, "MZFORGE_UPLOADS_BUCKET": f"uploads-{tag}",
           "MZFORGE_RESULTS_BUCKET": f"results-{tag}", "MZFORGE_DATA_DIR": str(tmp_path / "d"),
           "DATABASE_URL": f"sqlite:///{tmp_path}/db",
           # S3 cannot back-date an object: every object is old enough, none is scanned by itself.
           "MZFORGE_ORPHAN_MIN_AGE_SECONDS": "0", "MZFORGE_ORPHAN_SCAN_SECONDS": "0"}
    s3 = boto3.client("s3")
    for bucket in (env["MZFORGE_UPLOADS_BUCKET"], env["MZFORGE_RESULTS_BUCKET"]):
        s3.create_bucket(Bucket=bucket)
    return env


def test_the_scan_on_s3(aws_env: dict[str, str]) -> None:
    bucket = aws_env["MZFORGE_UPLOADS_BUCKET"]
    s3 = boto3.client("s3")
    with api_client(aws_env) as api:
        state = api.client.app.state
        assert api.upload(shared("mgf/small.mgf")).status_code == 201
        (recorded,) = _stored_uploads(state.storage)
        strays = [f"uploads/1/{uuid.uuid4().hex}/stray{i}.mzML" for i in range(3)]
        for key in [*strays, "requests/run-1.json"]:
            s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        assert state.orphans.scan() == 3
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
        assert keys == {recorded, "requests/run-1.json"}
