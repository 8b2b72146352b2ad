"""Schemathesis over the OpenAPI schema of a live server (PostgreSQL, the stricter database):
no generated request may get a 5xx. Bounded: a few dozen examples per operation."""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from apitest import Server, live_server, shared

EXAMPLES = int(os.environ.get("MZFORGE_FUZZ_EXAMPLES", "50"))


@pytest.fixture(scope="module")
def fuzz_server(postgres, tmp_path_factory: pytest.TempPathFactory) -> Server:
    tmp = tmp_path_factory.mktemp("fuzz")
    env = {"MZFORGE_DATA_DIR": str(tmp / "d"), "DATABASE_URL": postgres.new_database(),
           "MZFORGE_WORKERS": "1", "MZFORGE_MAX_UPLOAD_BYTES": "1000000"}
    with live_server(env) as srv:
        # Something to find: upload 1 and a succeeded analysis 1 of alice's.
        with httpx.Client(base_url=srv.url, headers=srv.h(), timeout=60) as c, \
                open(shared("profile/three_test_scans.mzML"), "rb") as f:
            up = c.post("/v1/uploads", files={"file": ("three_test_scans.mzML", f)}).json()["id"]
            aid = c.post("/v1/analyses", json={"upload_ids": [up]}).json()["id"]
            import time

            for _ in range(300):
                if c.get(f"/v1/analyses/{aid}").json()["status"] == "succeeded":
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("analysis did not succeed")
        yield srv


def test_no_server_errors(fuzz_server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    failures: list[tuple] = []
    operations = 0
    calls: list[int] = []
    for result in schema.get_all_operations():
        op = result.ok()
        operations += 1

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case) -> None:
            response = case.call(base_url=fuzz_server.url, headers=fuzz_server.h(), timeout=30)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append((case.method, case.formatted_path, case.query, response.status_code,
                                 response.text[:300]))

        run()
    assert operations >= 14  # every route was exercised
    print(f"schemathesis: {operations} operations, {len(calls)} requests, statuses {sorted(set(calls))}")
    assert len(calls) >= operations * 5
    assert failures == []
    assert fuzz_server.proc.poll() is None
