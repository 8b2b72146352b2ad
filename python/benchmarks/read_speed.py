"""Reading and processing speed of the mzforge wheel against pyteomics, pyopenms and the
mzforge command line (issue 4's goals: iterating a run with arrays >= 5x faster than
pyteomics and than pyopenms' `MzMLFile().load`; `mzforge.process` within 1.2x of the CLI).

    python benchmarks/read_speed.py [--file ../shared/data/runs/BSA1.mzML] [--cli PATH]

Peers that are not installed are left out. Each figure is the best of `--repeat` runs (the
file is read once first, so every tool reads it from the page cache). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_FILE = HERE.parents[1].parent / "shared" / "data" / "runs" / "BSA1.mzML"


def best_of(repeat: int, function) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - started)
    return best, value


def mzforge_iterate(path: Path) -> int:
    import mzforge

    points = 0
    with mzforge.open(path) as reader:
        for spectrum in reader:
            points += len(spectrum.mz) + len(spectrum.intensity)
    return points // 2


def pyteomics_iterate(path: Path) -> int:
    from pyteomics import mzml

    source = gzip.open(path) if path.suffix == ".gz" else str(path)
    points = 0
    with mzml.MzML(source) as reader:
        for spectrum in reader:
            if "m/z array" in spectrum:
                points += len(spectrum["m/z array"]) + len(spectrum["intensity array"])
    return points // 2


def pyopenms_load(path: Path) -> int:
    import pyopenms

    experiment = pyopenms.MSExperiment()
    pyopenms.MzMLFile().load(str(path), experiment)
    return sum(s.size() for s in experiment)


def pyopenms_load_arrays(path: Path) -> int:
    import pyopenms

    experiment = pyopenms.MSExperiment()
    pyopenms.MzMLFile().load(str(path), experiment)
    points = 0
    for spectrum in experiment:
        mz, intensity = spectrum.get_peaks()
        points += len(mz)
    return points


def available(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--cli", type=Path, default=os.environ.get("MZFORGE_CLI"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    path: Path = args.file
    path.read_bytes()  # into the page cache

    import mzforge

    rows: list[tuple[str, float, object]] = []
    t, n = best_of(args.repeat, lambda: mzforge_iterate(path))
    rows.append(("mzforge.open, iterate with arrays", t, n))
    ours = t
    if available("pyteomics"):
        t, n = best_of(max(1, args.repeat // 2), lambda: pyteomics_iterate(path))
        rows.append(("pyteomics.mzml.MzML, iterate with arrays", t, n))
    if available("pyopenms") and path.suffix != ".gz":
        t, n = best_of(args.repeat, lambda: pyopenms_load(path))
        rows.append(("pyopenms MzMLFile().load", t, n))
        t, n = best_of(args.repeat, lambda: pyopenms_load_arrays(path))
        rows.append(("pyopenms load + get_peaks()", t, n))

    print(f"\nfile: {path.name} ({path.stat().st_size / 1e6:.1f} MB), "
          f"mzforge {mzforge.__version__} ({mzforge.simd_backend()}), {os.cpu_count()} CPUs\n")
    print("| reading | seconds | points | mzforge faster by |")
    print("|---|---:|---:|---:|")
    for name, t, n in rows:
        print(f"| {name} | {t:.3f} | {n} | {t / ours:.1f}x |")

    out = Path(tempfile.mkdtemp(prefix="mzforge-bench-"))
    try:
        t_mem, result = best_of(args.repeat, lambda: mzforge.process(path))
        t_dir, _ = best_of(args.repeat, lambda: mzforge.process(path, out=out / "py"))
        print("\n| processing (defaults) | seconds | vs CLI |")
        print("|---|---:|---:|")
        t_cli = None
        if args.cli:
            cmd = [str(args.cli), "run", str(path), "--out", str(out / "cli"), "--quiet"]
            t_cli, _ = best_of(args.repeat, lambda: subprocess.run(cmd, check=True))
            print(f"| `mzforge run` (CLI, whole process) | {t_cli:.3f} | 1.00x |")
        ratio = lambda t: f"{t / t_cli:.2f}x" if t_cli else "-"  # noqa: E731
        print(f"| `mzforge.process(path, out=DIR)` | {t_dir:.3f} | {ratio(t_dir)} |")
        print(f"| `mzforge.process(path)` (Arrow tables in memory) | {t_mem:.3f} | {ratio(t_mem)} |")
        print(f"\n{result}")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
