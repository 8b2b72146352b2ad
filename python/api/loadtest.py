#!/usr/bin/env python3
"""Bounded load test of the analysis API on loopback.

Starts ``mzforge-api serve`` (embedded mode: SQLite, local folder, in a temporary directory) unless
``--url``/``--token`` name a running server, uploads a real file, analyses it, then

* ``--clients`` concurrent clients (asyncio + httpx, one connection each) send ``--requests``
  ``GET /v1/analyses/{id}`` in total: requests per second and latency percentiles;
* ``--uploads`` uploads of ``--file``, ``--upload-clients`` at a time: MB/s (10^6 bytes) of
  request body accepted (streamed, hashed, sniffed and stored).

Every response must be 200/201; the script exits non-zero otherwise. Prints one JSON object.

    python/.venv/bin/python python/api/loadtest.py --clients 100 --requests 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

DEFAULT_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "runs" / "BSA1.mzML"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: Path) -> tuple[subprocess.Popen, str, str]:
    env = {**os.environ, "MZFORGE_DATA_DIR": str(tmp / "data")}
    env.pop("DATABASE_URL", None)
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url")
    ap.add_argument("--token")
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--uploads", type=int, default=20)
    ap.add_argument("--upload-clients", type=int, default=4)
    args = ap.parse_args()
    proc = None
    with tempfile.TemporaryDirectory(prefix="mzforge-load-") as tmp:
        if args.url:
            url, token = args.url, args.token
        else:
            proc, url, token = start_server(Path(tmp))
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
            gets = asyncio.run(get_load(url, token, analysis, args.clients, args.requests))
            ups = asyncio.run(upload_load(url, token, args.file, args.uploads, args.upload_clients))
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait()
    print(json.dumps({"get_analysis": gets, "upload": ups, "cpus": os.cpu_count()}, indent=1))
    return 1 if gets["errors"] or ups["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
