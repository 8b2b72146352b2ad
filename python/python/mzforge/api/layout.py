"""Where things live in storage; the same layout as the AWS state machine's
(``batch-runner/src/analysis.rs``): ``analyses/<analysisId>/results/<name>/`` with each input's
Parquet files, ``run.json`` and ``manifest.json`` (written last), then
``analyses/<analysisId>/summary.json`` (written last of all: the analysis is complete) or
``analyses/<analysisId>/failure.json``."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

REQUEST_PREFIX = "requests/"


def results_prefix(run_id: str) -> str:
    return f"analyses/{run_id}/results/"


def summary_key(run_id: str) -> str:
    return f"analyses/{run_id}/summary.json"


def failure_key(run_id: str) -> str:
    return f"analyses/{run_id}/failure.json"


def request_key(run_id: str) -> str:
    return f"{REQUEST_PREFIX}{run_id}.json"


def safe_filename(name: str) -> str:
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._+-]", "_", base).lstrip(".")[:200]
    return base or "upload"


def upload_key(user_id: int, filename: str) -> str:
    return f"uploads/{user_id}/{uuid.uuid4().hex}/{safe_filename(filename)}"


def new_run_id(environment: str, analysis_id: int) -> str:
    env = re.sub(r"[^A-Za-z0-9_-]", "-", environment)[:20]
    return f"{env}-{analysis_id}-{uuid.uuid4().hex[:12]}"


def items_with_outcomes(items: list[dict[str, Any]], summary: dict[str, Any],
                        url_of: Callable[[str], str], prefix: str) -> list[dict[str, Any]]:
    """The analysis' inputs (``upload_id``, ``filename``, ``key``), each with its
    ``result_prefix`` (None without a result) and, for an input that failed on its own, its
    ``failure`` (error name, and cause with the storage URL replaced by the file's name), from
    a ``summary.json`` (local, or written by the state machine's Postprocess)."""
    outputs = {i["input"]: i["output"] for i in summary.get("inputs", [])}
    failures = {f["input"]: f for f in summary.get("failed", [])}
    out = []
    for item in items:
        url = url_of(item["key"])
        output = outputs.get(url)
        entry = {**item, "result_prefix": None}
        if output:
            entry["result_prefix"] = f"{prefix}{output.rstrip('/').rsplit('/', 1)[-1]}/"
        if url in failures:
            f = failures[url]
            entry["failure"] = {"error": f["error"], "cause": f["cause"].replace(url, item["filename"])}
        out.append(entry)
    return out


def summary_for_api(summary: dict[str, Any], items: list[dict[str, Any]] | None = None,
                    url_of: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The analysis object's ``summary`` from a ``summary.json`` (local or written by the state
    machine's Postprocess). With the inputs of :func:`items_with_outcomes` and their storage
    URLs, the ones that failed on their own are listed (``failed_inputs``) and each warning
    begins with its file's name (in an analysis of several files it did not say which)."""
    items = items or []
    names = {url_of(i["key"]): i["filename"] for i in items} if url_of else {}
    failed = [{"upload_id": i["upload_id"], "filename": i["filename"], **i["failure"]}
              for i in items if "failure" in i]
    per_level: dict[str, int] = {}
    warnings: list[str] = []
    features = 0
    for i in summary.get("inputs", []):
        for level, n in i.get("spectra_per_level", []):
            per_level[str(level)] = per_level.get(str(level), 0) + n
        name = names.get(i.get("input", ""))
        warnings.extend(f"{name}: {w}" if name and not w.startswith(name) else w
                        for w in i.get("warnings", []))
        features += i.get("features") or 0
    totals = summary.get("totals", {})
    return {
        "spectra_per_level": per_level,
        "spectra": totals.get("spectra", 0),
        "peaks": totals.get("peaks", 0),
        "features": features,
        "warnings": warnings[:100],
        "failed_inputs": failed,
    }
