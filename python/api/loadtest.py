#!/usr/bin/env python3
"""Bounded load test of the analysis API on loopback.

Starts ``mzforge-api serve`` (embedded mode: SQLite, local folder, in a temporary directory; with
``--postgres`` a throwaway PostgreSQL cluster from Debian's postgresql package, or
``--database-url``) unless ``--url``/``--token`` name a running server, uploads a real file,
analyses it, then runs one of two modes.

Burst (the default):

* ``--clients`` concurrent clients (asyncio + httpx, one connection each) send ``--requests``
  ``GET /v1/analyses/{id}`` in total: requests per second and latency percentiles;
* ``--uploads`` uploads of ``--file``, ``--upload-clients`` at a time: MB/s (10^6 bytes) of
  request body accepted (streamed, hashed, sniffed and stored).

Sustained (``--duration SECONDS``): for that long ``--clients`` clients cycle through
``GET /v1/analyses/{id}``, ``GET /v1/analyses/{id}/results/peaks?limit=100`` (read from the
Parquet files), ``GET /v1/uploads?limit=10`` and ``GET /v1/me``, while ``--upload-clients``
clients upload ``--file`` and delete it again. Once a second the resident memory of the server
process and its children (analysis workers; ``VmRSS`` from ``/proc/<pid>/status``, or
``--pid`` for a server started elsewhere) is sampled. Reported: requests sent and answered,
lost (sent, never answered: a transport error or a timeout), errors (answers other than
200/201/204), RSS at start, after ``--warmup`` seconds, peak, end, and the least-squares slope
after warm-up.

Every request must be answered with 200/201/204; the script exits non-zero otherwise. Prints one
JSON object.

    python/.venv/bin/python python/api/loadtest.py --clients 100 --requests 20000
    python/.venv/bin/python python/api/loadtest.py --postgres --duration 150 --clients 50 --upload-clients 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import itertools
import json
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx

DEFAULT_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "runs" / "BSA1.mzML"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL cluster (Debian's postgresql package) on a free loopback port in a temporary
    folder, run as ``nobody`` when we are root (initdb refuses root); yields its URL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
    if not found[-1]:
        raise SystemExit("--postgres needs PostgreSQL's initdb (apt-get install postgresql)")
    bindir = Path(found[-1]).parent
    pg = Path(tempfile.mkdtemp(prefix="mzforge-load-pg-"))
    runas: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(pg, nobody.pw_uid, nobody.pw_gid)
        runas = ["runuser", "-u", "nobody", "--"]
    port = free_port()
    subprocess.run([*runas, str(bindir / "initdb"), "-D", str(pg / "data"), "-A", "trust", "-U",
                    "postgres", "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*runas, str(bindir / "pg_ctl"), "-D", str(pg / "data"), "-l", str(pg / "log"),
                    "-w", "-o", f"-p {port} -k {pg} -c listen_addresses=127.0.0.1 -c max_connections=200",
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*runas, str(bindir / "pg_ctl"), "-D", str(pg / "data"), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(pg, ignore_errors=True)


def start_server(tmp: Path, database_url: str | None = None) -> tuple[subprocess.Popen, str, str]:
    env = {**os.environ, "MZFORGE_DATA_DIR": str(tmp / "data")}
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    cli = [sys.executable, "-m", "mzforge.api.cli"]
    token = subprocess.run([*cli, "create-user", "load@example.org"], env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
    port = free_port()
    proc = subprocess.Popen([*cli, "serve", "--port", str(port), "--log-level", "warning"], env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return proc, url, token
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not become ready")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def get_load(url: str, token: str, analysis: int, clients: int, total: int) -> dict:
    latencies: list[float] = []
    errors: list[int] = []
    remaining = total

    async def client() -> None:
        nonlocal remaining
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"},
                                     timeout=60, limits=httpx.Limits(max_connections=1)) as c:
            while remaining > 0:
                remaining -= 1
                t = time.perf_counter()
                r = await c.get(f"/v1/analyses/{analysis}")
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    errors.append(r.status_code)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    return {"requests": len(latencies), "clients": clients, "seconds": round(elapsed, 2),
            "requests_per_second": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(pct(latencies, 99) * 1000, 1), "max_ms": round(max(latencies) * 1000, 1),
            "errors": len(errors)}


async def upload_load(url: str, token: str, path: Path, uploads: int, clients: int) -> dict:
    data = path.read_bytes()
    errors: list[int] = []
    remaining = uploads

    async def client() -> None:
        nonlocal remaining
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"},
                                     timeout=300) as c:
            while remaining > 0:
                remaining -= 1
                r = await c.post("/v1/uploads", files={"file": (path.name, data)})
                if r.status_code != 201:
                    errors.append(r.status_code)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    mb = uploads * len(data) / 1e6
    return {"uploads": uploads, "clients": clients, "file_mb": round(len(data) / 1e6, 2),
            "seconds": round(elapsed, 2), "mb_per_second": round(mb / elapsed, 1), "errors": len(errors)}


# ---- sustained mode --------------------------------------------------------------------------------

def tree_rss_kb(pid: int) -> tuple[int, int]:
    """Resident memory (kB) of ``pid`` and all its descendants, and how many processes that is."""
    parents: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    total, count, todo = 0, 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                rss = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except OSError:
            continue  # exited meanwhile
        total, count = total + rss, count + 1
        todo.extend(parents.get(p, []))
    return total, count


class RssSampler:
    """Samples ``tree_rss_kb(pid)`` once a second on its own thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, int, int]] = []  # (seconds since start, kB, processes)
        self.stop = threading.Event()
        self.t0 = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self.t0 = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        while True:
            kb, n = tree_rss_kb(self.pid)
            self.samples.append((time.monotonic() - self.t0, kb, n))
            if self.stop.wait(1.0):
                return

    def report(self, warmup: float) -> dict:
        if not self.samples:
            return {}
        mb = [(t, kb / 1024) for t, kb, _ in self.samples]
        after = [(t, m) for t, m in mb if t >= warmup] or mb[-1:]
        slope = 0.0
        if len(after) >= 2:
            mt = statistics.fmean(t for t, _ in after)
            mm = statistics.fmean(m for _, m in after)
            var = sum((t - mt) ** 2 for t, _ in after)
            slope = sum((t - mt) * (m - mm) for t, m in after) / var * 60 if var else 0.0
        return {"start": round(mb[0][1], 1), "after_warmup": round(after[0][1], 1),
                "peak": round(max(m for _, m in mb), 1),
                "peak_after_warmup": round(max(m for _, m in after), 1), "end": round(mb[-1][1], 1),
                "slope_mb_per_min_after_warmup": round(slope, 2), "samples": len(mb),
                "processes_max": max(n for _, _, n in self.samples),
                "series": [round(m, 1) for _, m in mb]}


async def sustained_load(url: str, token: str, analysis: int, upload_path: Path, clients: int,
                         upload_clients: int, duration: float) -> dict:
    """``clients`` readers and ``upload_clients`` uploaders for ``duration`` seconds."""
    h = {"Authorization": f"Bearer {token}"}
    statuses: Counter[int] = Counter()
    by_route: Counter[str] = Counter()
    sent = answered = uploads = 0
    lost: list[str] = []
    deadline = time.monotonic() + duration
    routes = [("analysis", f"/v1/analyses/{analysis}"),
              ("results", f"/v1/analyses/{analysis}/results/peaks?limit=100"),
              ("uploads", "/v1/uploads?limit=10"), ("me", "/v1/me")]
    data = upload_path.read_bytes()

    async def call(c: httpx.AsyncClient, route: str, method: str, path: str, **kw: object) -> httpx.Response | None:
        nonlocal sent, answered
        sent += 1
        by_route[route] += 1
        try:
            r = await c.request(method, path, **kw)
        except httpx.HTTPError as e:
            lost.append(f"{method} {path}: {type(e).__name__}: {e}")
            return None
        answered += 1
        statuses[r.status_code] += 1
        return r

    async def reader(start: int) -> None:
        async with httpx.AsyncClient(base_url=url, headers=h, timeout=60,
                                     limits=httpx.Limits(max_connections=1)) as c:
            for route, path in itertools.islice(itertools.cycle(routes), start, None):
                if time.monotonic() >= deadline:
                    return
                await call(c, route, "GET", path)

    async def uploader() -> None:
        nonlocal uploads
        async with httpx.AsyncClient(base_url=url, headers=h, timeout=300) as c:
            while time.monotonic() < deadline:
                r = await call(c, "upload", "POST", "/v1/uploads", files={"file": (upload_path.name, data)})
                if r is not None and r.status_code == 201:
                    uploads += 1
                    await call(c, "delete_upload", "DELETE", f"/v1/uploads/{r.json()['id']}")

    t0 = time.perf_counter()
    await asyncio.gather(*(reader(i) for i in range(clients)), *(uploader() for _ in range(upload_clients)))
    elapsed = time.perf_counter() - t0
    errors = sum(n for code, n in statuses.items() if code not in (200, 201, 204))
    return {"seconds": round(elapsed, 1), "clients": clients, "upload_clients": upload_clients,
            "sent": sent, "requests": answered, "lost": len(lost), "lost_examples": lost[:5],
            "errors": errors, "server_errors": sum(n for code, n in statuses.items() if code >= 500),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}, "by_route": dict(by_route),
            "requests_per_second": round(answered / elapsed, 1), "uploads": uploads,
            "upload_mb": round(uploads * len(data) / 1e6, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url")
    ap.add_argument("--token")
    ap.add_argument("--pid", type=int, help="the server's pid, for RSS samples of a server started elsewhere")
    db = ap.add_mutually_exclusive_group()
    db.add_argument("--postgres", action="store_true", help="start the server on a throwaway PostgreSQL cluster")
    db.add_argument("--database-url", help="start the server on this database (default: SQLite)")
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--uploads", type=int, default=20)
    ap.add_argument("--upload-clients", type=int, default=4)
    ap.add_argument("--duration", type=float, help="sustained mode: run for this many seconds")
    ap.add_argument("--warmup", type=float, help="sustained mode: seconds before the 'after warm-up' RSS "
                    "(default: a quarter of --duration, at most 30)")
    args = ap.parse_args()
    proc = None
    with tempfile.TemporaryDirectory(prefix="mzforge-load-") as tmp, contextlib.ExitStack() as stack:
        if args.url:
            url, token, pid = args.url, args.token, args.pid
        else:
            database_url = args.database_url
            if args.postgres:
                database_url = stack.enter_context(throwaway_postgres())
            proc, url, token = start_server(Path(tmp), database_url)
            pid = proc.pid
        try:
            h = {"Authorization": f"Bearer {token}"}
            with open(args.file, "rb") as f:
                up = httpx.post(url + "/v1/uploads", headers=h, files={"file": (args.file.name, f)},
                                timeout=300).json()["id"]
            analysis = httpx.post(url + "/v1/analyses", headers=h, json={"upload_ids": [up]}).json()["id"]
            for _ in range(1200):  # let the analysis finish: measure the API, not the engine
                if httpx.get(f"{url}/v1/analyses/{analysis}", headers=h).json()["status"] not in ("queued", "running"):
                    break
                time.sleep(0.1)
            if args.duration:
                # The analysis' worker records its outcome, then exits: start without it.
                for _ in range(300):
                    if not pid or tree_rss_kb(pid)[1] <= 1:
                        break
                    time.sleep(0.1)
                warmup = args.warmup if args.warmup is not None else min(30.0, args.duration / 4)
                sampler = RssSampler(pid) if pid else None
                with sampler or contextlib.nullcontext():
                    out = asyncio.run(sustained_load(url, token, analysis, args.file, args.clients,
                                                     args.upload_clients, args.duration))
                out = {"sustained": out, "warmup_seconds": warmup,
                       "rss_mb": sampler.report(warmup) if sampler else None,
                       "server_alive": proc is None or proc.poll() is None}
                failed = out["sustained"]["errors"] or out["sustained"]["lost"] or not out["server_alive"]
            else:
                gets = asyncio.run(get_load(url, token, analysis, args.clients, args.requests))
                ups = asyncio.run(upload_load(url, token, args.file, args.uploads, args.upload_clients))
                out = {"get_analysis": gets, "upload": ups}
                failed = gets["errors"] or ups["errors"]
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait()
    print(json.dumps({**out, "cpus": os.cpu_count()}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
