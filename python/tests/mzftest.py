"""Shared helpers of the tests in this directory (imported as `mzftest`: a module named
`conftest` would be replaced by `api/conftest.py` once pytest collects `tests/api`). Tests that
need `../shared/data` skip when it is absent, except in CI (`CI` set), where they fail: CI must
run them."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
REPO = PYTHON_DIR.parent
FIXTURES = REPO / "fixtures" / "data"
SHARED = Path(os.environ.get("MZFORGE_SHARED_DATA", REPO.parent / "shared" / "data"))


def missing(what: str) -> None:
    """Skips the test (or, called while a module is imported, the module) for a missing
    prerequisite; fails it in CI (`CI` set)."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing: CI must run this test")
    pytest.skip(f"{what} not found", allow_module_level=True)


def require(module: str) -> ModuleType:
    """Imports a test dependency: without it the tests that need it skip, and fail in CI."""
    try:
        return importlib.import_module(module)
    except ImportError:
        missing(f"the Python module {module}")
        raise


def shared(rel: str) -> Path:
    """`../shared/data/<rel>`; skips the test when absent (fails in CI)."""
    path = SHARED / rel
    if not path.exists():
        missing(str(path))
    return path


def cli() -> Path:
    """The `mzforge` command line (`MZFORGE_CLI`, or the workspace's debug/release build)."""
    candidates = [os.environ.get("MZFORGE_CLI")]
    candidates += [str(REPO / "target" / p / "mzforge") for p in ("debug", "release")]
    candidates.append(shutil.which("mzforge"))
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    missing("the mzforge command line (cargo build -p mzforge-batch-runner)")
    raise AssertionError("unreachable")


def run_cli(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(cli()), *map(str, args)], capture_output=True, text=True, timeout=600
    )


def cv(accession: str, name: str) -> str:
    """A PSI-MS `<cvParam>`."""
    return f'<cvParam cvRef="MS" accession="{accession}" name="{name}" value=""/>'


def crafted_mzml(spectra: list[str]) -> str:
    """A hand-made mzML document around `<spectrum>` elements (MS1 file content, no index)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<mzML xmlns="http://psi.hupo.org/ms/mzml" id="crafted" version="1.1.0">'
        '<cvList count="1"><cv id="MS" fullName="PSI-MS" version="4.1.0" URI="https://example.org/psi-ms.obo"/></cvList>'
        f'<fileDescription><fileContent>{cv("MS:1000579", "MS1 spectrum")}</fileContent></fileDescription>'
        '<softwareList count="1"><software id="crafted" version="1"/></softwareList>'
        '<instrumentConfigurationList count="1"><instrumentConfiguration id="IC1"/></instrumentConfigurationList>'
        '<dataProcessingList count="1"><dataProcessing id="dp"/></dataProcessingList>'
        '<run id="crafted" defaultInstrumentConfigurationRef="IC1">'
        f'<spectrumList count="{len(spectra)}" defaultDataProcessingRef="dp">{"".join(spectra)}</spectrumList>'
        "</run></mzML>\n"
    )
