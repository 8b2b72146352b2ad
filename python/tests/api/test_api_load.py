"""The load script (python/api/loadtest.py) at a small scale: every request answered (200/201),
none lost to a stalled connection pool. Its figures are not asserted (no timed tests); the
README has them at full scale."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from apitest import shared

SCRIPT = Path(__file__).resolve().parents[2] / "api" / "loadtest.py"


def test_load_script_small() -> None:
    r = subprocess.run([sys.executable, str(SCRIPT), "--clients", "50", "--requests", "600",
                        "--uploads", "3", "--upload-clients", "3",
                        "--file", str(shared("profile/three_test_scans.mzML"))],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["get_analysis"]["requests"] == 600 and out["get_analysis"]["errors"] == 0
    assert out["upload"]["uploads"] == 3 and out["upload"]["errors"] == 0
    assert out["get_analysis"]["requests_per_second"] > 0 and out["upload"]["mb_per_second"] > 0
