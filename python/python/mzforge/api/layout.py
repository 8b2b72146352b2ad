"""Where things live in storage; the same layout as the AWS state machine's
(``batch-runner/src/analysis.rs``): ``analyses/<analysisId>/results/<stem>/`` with each input's
Parquet files, ``run.json`` and ``manifest.json`` (written last), then
``analyses/<analysisId>/summary.json`` (written last of all: the analysis is complete) or
``analyses/<analysisId>/failure.json``."""

from __future__ import annotations

import re
import uuid
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


def stem_guess(filename: str) -> str:
    """The result directory name of a file, as the engine's ``input_stem`` names it (file name
    without compression and format extensions), lowercased for collision checks."""
    name = filename.lower()
    for ext in (".gz", ".bz2", ".zst", ".xz"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    for ext in (".mzml", ".mgf"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    return name or "input"


def new_run_id(environment: str, analysis_id: int) -> str:
    env = re.sub(r"[^A-Za-z0-9_-]", "-", environment)[:20]
    return f"{env}-{analysis_id}-{uuid.uuid4().hex[:12]}"


def summary_for_api(summary: dict[str, Any]) -> dict[str, Any]:
    """The analysis object's ``summary`` from a ``summary.json`` (local or written by the state
    machine's Postprocess)."""
    per_level: dict[str, int] = {}
    warnings: list[str] = []
    features = 0
    for i in summary.get("inputs", []):
        for level, n in i.get("spectra_per_level", []):
            per_level[str(level)] = per_level.get(str(level), 0) + n
        warnings.extend(i.get("warnings", []))
        features += i.get("features") or 0
    totals = summary.get("totals", {})
    return {
        "spectra_per_level": per_level,
        "spectra": totals.get("spectra", 0),
        "peaks": totals.get("peaks", 0),
        "features": features,
        "warnings": warnings[:100],
    }
