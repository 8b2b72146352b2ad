"""Helpers and fixtures of the API tests (registered by conftest.py): a throwaway PostgreSQL cluster (Debian's postgresql package,
started on 127.0.0.1 with a free port in a temporary folder), a moto server for S3 and Step
Functions, and `api` clients against either database. A missing PostgreSQL, moto or data file
skips locally and fails in CI (`CI` set)."""

from __future__ import annotations

import collections
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

# The shared-data, prerequisite and CLI helpers of the whole suite (tests/mzftest.py).
from mzftest import REPO, missing, shared  # noqa: F401 (REPO, shared: re-exported to the API tests)
from mzftest import cli as mzforge_cli  # noqa: F401 (re-exported)

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- PostgreSQL -----------------------------------------------------------------------------------

def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@dataclass
class Postgres:
    port: int
    runas: list[str]
    bindir: str
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def new_database(self) -> str:
        name = f"t{os.getpid()}_{next(self.counter)}"
        subprocess.run([*self.runas, f"{self.bindir}/psql", "-h", "127.0.0.1", "-p", str(self.port),
                        "-U", "postgres", "-q", "-c", f"CREATE DATABASE {name}"],
                       check=True, capture_output=True)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    initdb = _pg_bin("initdb")
    if not initdb:
        missing("PostgreSQL (apt-get install postgresql)")
    bindir = str(Path(initdb).parent)
    tmp = Path(tempfile.mkdtemp(prefix="mzforge-pg-"))
    runas: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root: run the cluster as `nobody`.
        pw = pwd.getpwnam("nobody")
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
        runas = ["runuser", "-u", "nobody", "--"]
    data, port = tmp / "data", free_port()
    subprocess.run([*runas, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True)
    log = tmp / "log"
    subprocess.run([*runas, f"{bindir}/pg_ctl", "-D", str(data), "-l", str(log), "-w", "-o",
                    f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off", "start"],
                   check=True, capture_output=True)
    try:
        yield Postgres(port, runas, bindir)
    finally:
        subprocess.run([*runas, f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


# ---- moto -----------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def moto() -> Iterator[str]:
    exe = shutil.which("moto_server", path=f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not exe:
        missing("moto_server (pip install 'moto[server]')")
    # Port 0: moto binds one the system picks and names it in its banner. (A port found free
    # beforehand could go to two servers at once, the second failing to bind unnoticed.)
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", "0"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    url = moto_url(proc)
    # moto logs every request to standard error: drain it for the server's life.
    threading.Thread(target=collections.deque, args=(proc.stderr, 0), daemon=True).start()
    for _ in range(100):
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url + "/moto-api/")
            break
        time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait()


def moto_url(proc: subprocess.Popen[str]) -> str:
    """The address in moto's (werkzeug's) banner, " * Running on http://127.0.0.1:PORT"."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if "Running on http://127.0.0.1:" in line:
            return line.split("Running on ", 1)[1].strip().rstrip("/")
    raise RuntimeError(f"moto_server exited ({proc.wait()}) without saying which port it listens on")


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


# ---- the API --------------------------------------------------------------------------------------

@dataclass
class Api:
    client: Any
    env: dict[str, str]
    tokens: dict[str, str]
    settings: Any

    def h(self, who: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def upload(self, path: Path, who: str = "alice", name: str | None = None) -> httpx.Response:
        with open(path, "rb") as f:
            return self.client.post("/v1/uploads", headers=self.h(who),
                                    files={"file": (name or path.name, f)})

    def analyse(self, upload_ids: list[int], params: dict | None = None, who: str = "alice") -> httpx.Response:
        return self.client.post("/v1/analyses", headers=self.h(who),
                                json={"upload_ids": upload_ids, "params": params or {}})

    def wait(self, analysis_id: int, who: str = "alice", timeout: float = 120,
             until: tuple[str, ...] = ("succeeded", "failed", "cancelled")) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            a = self.client.get(f"/v1/analyses/{analysis_id}", headers=self.h(who)).json()
            if a["status"] in until or time.monotonic() > deadline:
                return a
            time.sleep(0.1)


def make_users(env: dict[str, str]) -> dict[str, str]:
    from mzforge.api.auth import create_user
    from mzforge.api.db import make_engine, make_sessionmaker, migrate
    from mzforge.api.settings import Settings

    settings = Settings.from_env(env)
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    tokens = {}
    with make_sessionmaker(engine)() as s:
        for who, admin in (("alice", False), ("bob", False), ("admin", True)):
            _, tokens[who] = create_user(s, f"{who}@example.org", is_admin=admin)
        s.commit()
    engine.dispose()
    return tokens


@contextlib.contextmanager
def api_client(env: dict[str, str]) -> Iterator[Api]:
    from fastapi.testclient import TestClient

    from mzforge.api import Settings, create_app

    tokens = make_users(env)
    settings = Settings.from_env({**os.environ, **env})
    with TestClient(create_app(settings)) as client:
        yield Api(client, env, tokens, settings)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'api.db'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    env = {"MZFORGE_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": db_url,
           "MZFORGE_WORKERS": "2", "MZFORGE_WORKER_THREADS": "1"}
    with api_client(env) as a:
        yield a


@dataclass
class Server:
    url: str
    tokens: dict[str, str]
    proc: subprocess.Popen

    def h(self, who: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@contextlib.contextmanager
def live_server(env: dict[str, str]) -> Iterator[Server]:
    """``mzforge-api serve`` in its own process on a free loopback port."""
    tokens = make_users(env)
    port = free_port()
    proc = subprocess.Popen([PYTHON, "-m", "mzforge.api.cli", "serve", "--port", str(port),
                             "--log-level", "warning"], env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/readyz").status_code == 200:
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"mzforge-api serve exited with {proc.returncode}")
            time.sleep(0.1)
        yield Server(url, tokens, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
