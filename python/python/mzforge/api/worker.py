"""One analysis, run in its own process (``python -m mzforge.api.worker ANALYSIS_ID``) by the
local executor: reads the inputs from storage, runs :func:`mzforge.process` on each, writes each
input's result directory with its ``manifest.json`` last, then ``summary.json``, and marks the
analysis succeeded. On an engine error nothing written is kept: the result prefix is deleted,
``failure.json`` is written and the analysis is marked failed with the engine's message.

A crash of this process (signal, out of memory) is noticed by the executor, which marks the
analysis failed; the server never runs engine code itself. The database may be away for a while
when the worker reads its analysis or records the outcome: both are retried for
``DATABASE_RETRY_SECONDS`` (the outcome is never thrown away for a database restart)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select, update

import mzforge
from mzforge._mzforge import result_dir_names

from . import layout
from .layout import summary_for_api
from .db import Analysis, database_unavailable, make_engine, make_sessionmaker, utcnow
from .settings import Settings
from .storage import Storage, make_storage


DATABASE_RETRY_SECONDS = 600.0

T = TypeVar("T")


def with_database_retry(what: str, fn: Callable[[], T], seconds: float = DATABASE_RETRY_SECONDS) -> T:
    """``fn()``, called again (backing off to 5 s) while the database is unavailable, for up to
    ``seconds``. ``fn`` must be safe to repeat: its COMMIT may have happened when it failed."""
    deadline = time.monotonic() + seconds
    pause = 0.25
    while True:
        try:
            return fn()
        except Exception as e:
            if not database_unavailable(e) or time.monotonic() > deadline:
                raise
            print(f"mzforge-api worker: the database is unavailable while {what}; retrying "
                  f"({str(e).splitlines()[0]})", file=sys.stderr, flush=True)
            time.sleep(pause)
            pause = min(5.0, pause * 2)


class AnalysisFailed(Exception):
    def __init__(self, message: str, error: str) -> None:
        super().__init__(message)
        self.error = error


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def qc_of(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "spectra_read": summary["spectra_read"],
        "spectra_written": summary["spectra_written"],
        "spectra_per_level": summary["spectra_per_level"],
        "profile_spectra": summary.get("profile_spectra", 0),
        "centroid_spectra": summary.get("centroid_spectra", 0),
        "tic_total": 0.0,
        "peaks": summary["peaks_written"],
        "features": summary.get("features_written"),
        "warnings_total": summary["warnings_total"],
        "warnings": summary["warnings"],
    }


def params_sha256(engine_params: dict[str, Any]) -> str:
    relevant = {k: v for k, v in engine_params.items() if k not in ("threads", "batch_size")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


# The longest cause an input's failure record keeps (as the cloud runner's).
FAILURE_CAUSE_CHARS = 1000


def run_inputs(storage: Storage, run_id: str, inputs: list[dict[str, Any]], params: dict[str, Any],
               threads: int) -> dict[str, Any]:
    """Processes every input into ``analyses/<run_id>/results/<name>/`` and writes
    ``summary.json``; returns the summary. Raises :class:`AnalysisFailed`.

    Each input's result name is the cloud runner's (its stem, ``-2``, ``-3``, ... for later
    inputs of a stem already taken); an input that fails on its own leaves a ``failure.json``
    there instead (``batch-runner/schemas/input-failure.json``), as on the cloud route."""
    from .params import engine_params_json, process_keywords

    prefix = layout.results_prefix(run_id)
    engine_json = engine_params_json(params)
    summary_inputs = []
    failed: list[dict[str, Any]] = []
    names = result_dir_names([item["key"].rsplit("/", 1)[-1] for item in inputs])
    # A run again of the same analysis (a worker restarted mid-way) starts from nothing.
    storage.delete_prefix("results", prefix)

    def input_failed(index: int, item: dict[str, Any], error: str, cause: str) -> None:
        # The input's own fault: recorded and listed, and the analysis goes on with the others
        # (as the cloud route does).
        if len(cause) > FAILURE_CAUSE_CHARS:
            cause = cause[:FAILURE_CAUSE_CHARS] + "…"
        record = {"input": storage.url("uploads", item["key"]), "error": error, "cause": cause,
                  "failedAt": int(time.time())}
        storage.put_bytes("results", f"{prefix}{names[index]}/failure.json",
                          json.dumps(record, indent=1).encode())
        failed.append({"index": index, **{k: record[k] for k in ("input", "error", "cause")}})

    with tempfile.TemporaryDirectory(prefix="mzforge-analysis-") as tmp:
        for index, item in enumerate(inputs):
            out = Path(tmp) / f"input-{index}"
            try:
                with storage.local_copy("uploads", item["key"]) as path:
                    try:
                        result = mzforge.process(path, out=out, **{**process_keywords(params),
                                                                   "threads": threads})
                    except mzforge.MzforgeError as e:
                        message = str(e).replace(str(path), item["filename"])
                        if not message.startswith(item["filename"]):
                            message = f"{item['filename']}: {message}"
                        if isinstance(e, mzforge.InvalidInputError):
                            input_failed(index, item, "Mzforge.BadInput", message)
                            continue
                        kind = ("Mzforge.InvalidRequest" if isinstance(e, mzforge.InvalidParameterError)
                                else "Mzforge.Internal")
                        raise AnalysisFailed(message, kind) from None
                    sha = _sha256(path)
                    size = path.stat().st_size
            except FileNotFoundError:
                input_failed(index, item, "Mzforge.MissingInput",
                             f"{item['filename']}: the upload no longer exists")
                continue
            (result_dir,) = [d for d in out.iterdir() if d.is_dir()]
            stem = names[index]
            objects = []
            for f in sorted(result_dir.iterdir()):
                key = f"{prefix}{stem}/{f.name}"
                size_f = f.stat().st_size
                storage.put_file("results", key, f)
                objects.append({"url": storage.url("results", key), "bytes": size_f})
            qc = qc_of(result.summary)
            manifest = {
                "complete": True,
                "mzforge_version": mzforge.__version__,
                "input": {"path": storage.url("uploads", item["key"]), "bytes": size, "sha256": sha},
                "params_sha256": params_sha256(engine_json),
                "objects": objects,
                "qc": qc,
                "completed_at": int(time.time()),
            }
            storage.put_bytes("results", f"{prefix}{stem}/manifest.json",
                              json.dumps(manifest, indent=1).encode())
            summary_inputs.append({**qc, "index": index, "input": storage.url("uploads", item["key"]),
                                   "output": storage.url("results", f"{prefix}{stem}/")})
    if not summary_inputs:
        # Nothing to show: the analysis fails, for the first input's reason.
        first = failed[0]
        cause = first["cause"] if len(failed) == 1 else (
            f"no input could be analysed ({len(failed)} failed), the first: {first['cause']}")
        raise AnalysisFailed(cause, first["error"])
    summary = {
        "analysisId": run_id,
        "status": "complete",
        "mzforgeVersion": mzforge.__version__,
        "route": "local",
        "completedAt": int(time.time()),
        "params": engine_json,
        "inputs": summary_inputs,
        "failed": failed,
        "totals": {
            "spectra": sum(i["spectra_written"] for i in summary_inputs),
            "peaks": sum(i["peaks"] for i in summary_inputs),
            "tic": 0.0,
            "warnings": sum(i["warnings_total"] for i in summary_inputs),
        },
    }
    storage.put_bytes("results", layout.summary_key(run_id), json.dumps(summary, indent=1).encode())
    return summary


def record_failure(storage: Storage, run_id: str, error: str, cause: str) -> None:
    storage.delete_prefix("results", layout.results_prefix(run_id))
    storage.delete("results", layout.summary_key(run_id))
    record = {"analysisId": run_id, "status": "failed", "error": error, "cause": cause,
              "retryable": False, "recorded": True, "failureKey": layout.failure_key(run_id),
              "note": None}
    storage.put_bytes("results", layout.failure_key(run_id), json.dumps(record, indent=1).encode())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    analysis_id = int(argv[0])
    settings = Settings.from_env()
    engine = make_engine(settings.database_url, pool_size=1, timeouts=settings.db_timeouts)
    Session = make_sessionmaker(engine)
    storage = make_storage(settings)

    def read() -> Analysis | None:
        with Session() as s:
            return s.get(Analysis, analysis_id)

    a = with_database_retry("reading the analysis", read)
    if a is None or a.status != "running":
        return 0
    run_id, inputs, params = a.run_id, a.inputs, a.params
    # Tests: while this file exists the worker waits before starting (a window to kill or cancel
    # it in). Unset in production.
    hold = os.environ.get("MZFORGE_WORKER_HOLD_FILE")
    while hold and os.path.exists(hold):
        time.sleep(0.05)
    threads = params.get("threads") or settings.worker_threads
    try:
        summary = run_inputs(storage, run_id, inputs, params, threads)
    except AnalysisFailed as e:
        record_failure(storage, run_id, e.error, str(e))
        outcome = {"status": "failed", "error": str(e)}
    except Exception as e:  # noqa: BLE001 - anything else is our bug; say so, keep nothing
        traceback.print_exc()
        record_failure(storage, run_id, "Mzforge.Internal", f"{type(e).__name__}: {e}")
        outcome = {"status": "failed", "error": f"internal error: {type(e).__name__}: {e}"}
    else:
        def url_of(key: str) -> str:
            return storage.url("uploads", key)

        items = layout.items_with_outcomes(inputs, summary, url_of, layout.results_prefix(run_id))
        outcome = {
            "status": "succeeded",
            "summary": summary_for_api(summary, items, url_of),
            "result_location": storage.url("results", layout.results_prefix(run_id)),
            "inputs": items,
        }
    def record() -> str:
        """Records the outcome; returns the analysis' status after it."""
        with Session() as s:
            s.execute(
                update(Analysis)
                .where(Analysis.id == analysis_id, Analysis.status == "running")
                .values(finished_at=utcnow(), **outcome)
            )
            s.commit()
            # Read back: a repeated attempt finds its own earlier COMMIT, or a cancellation.
            return s.scalar(select(Analysis.status).where(Analysis.id == analysis_id)) or "deleted"

    status = with_database_retry("recording the outcome", record)
    if outcome["status"] == "succeeded" and status != "succeeded":
        # Cancelled while running: nothing is served, nothing is kept.
        storage.delete_prefix("results", layout.results_prefix(run_id))
        storage.delete("results", layout.summary_key(run_id))
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
