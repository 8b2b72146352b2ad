#!/usr/bin/env python3
"""Time and peak memory of `mzforge run` against input size and threads.

Inputs of about 0.1, 0.25, 0.5, 1 and 2 GB are built from a real file (default
runs/BSA1.mzML from ../shared/data) with scale_input.py (the same spectra written many times,
retention times shifted) in a scratch directory, never in the project. Each is processed with
the default parameters (centroiding, deconvolution, Parquet output) at 1 and 2 threads by the
release binary; wall time and the child's peak RSS (wait4) are recorded. Prints a markdown
table (with the machine and date), writes the figures as JSON, and draws two PNG plots
(time and peak memory against input size) into benches/.

    python3 benches/scripts/scaling.py                       # ~10 min here, ~4.5 GB scratch
    python3 benches/scripts/scaling.py --sizes-mb 100 500 --threads 2 --no-plots
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
BENCHES = ROOT / "benches"


def build_input(source: Path, copies: int, target: Path) -> None:
    script = Path(__file__).with_name("scale_input.py")
    subprocess.run([sys.executable, str(script), str(source), str(copies), str(target)], check=True)


def run_once(binary: Path, input_path: Path, out: Path, threads: int) -> dict:
    """Runs mzforge once; returns wall seconds, peak RSS (MiB) and the run's counts."""
    if out.exists():
        shutil.rmtree(out)
    command = [str(binary), "run", str(input_path), "--out", str(out), "--threads", str(threads),
               "--quiet", "--json"]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = child.stdout.read(), child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr.decode()}")
    summary = json.loads(stdout.decode().strip().splitlines()[-1])["summary"]
    return {
        "seconds": seconds,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "spectra": summary["spectra_written"],
        "peaks": summary["peaks_written"],
        "features": summary["features_written"],
    }


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(open("/proc/meminfo", encoding="utf-8").readline().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){memory}, load average {os.getloadavg()[0]:.1f} at start"


def plot(rows: list[dict], source_name: str, stamp: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for key, label, name in [
        ("seconds", "wall time (s)", "scaling_time.png"),
        ("peak_rss_mib", "peak RSS (MiB)", "scaling_memory.png"),
    ]:
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
        for threads in sorted({r["threads"] for r in rows}):
            points = sorted((r["input_mb"], r[key]) for r in rows if r["threads"] == threads)
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                    label=f"{threads} thread{'s' if threads > 1 else ''}")
        ax.set_xlabel(f"input size (MB of mzML, copies of {source_name})")
        ax.set_ylabel(label)
        ax.set_xscale("log")
        if key == "seconds":
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        ax.set_title(f"mzforge run: {label.split(' (')[0]} against input size\n{stamp}", fontsize=9)
        fig.tight_layout()
        path = BENCHES / name
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="runs/BSA1.mzML", help="relative to ../shared/data")
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[100, 250, 500, 1000, 2000])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "mzforge")
    parser.add_argument("--scratch", type=Path, default=None, help="default: a temporary directory")
    parser.add_argument("--json", type=Path, default=BENCHES / "scaling.json")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args()
    if not args.binary.exists():
        raise SystemExit(f"{args.binary} not found: cargo build --release --workspace --bin mzforge")
    source = DATA / args.source
    if not source.exists():
        raise SystemExit(f"{source} not found")

    stamp = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}"
    print(f"# {stamp}")
    rows = []
    scratch_owner = None
    if args.scratch is None:
        scratch_owner = tempfile.TemporaryDirectory(prefix="mzforge-scaling-")
        args.scratch = Path(scratch_owner.name)
    try:
        args.scratch.mkdir(parents=True, exist_ok=True)
        source_mb = source.stat().st_size / 1e6
        for size in args.sizes_mb:
            copies = max(1, round(size / source_mb))
            input_path = args.scratch / f"{source.stem}x{copies}.mzML"
            build_input(source, copies, input_path)
            input_mb = input_path.stat().st_size / 1e6
            for threads in args.threads:
                result = run_once(args.binary, input_path, args.scratch / "out", threads)
                row = {"input_mb": round(input_mb, 1), "copies": copies, "threads": threads, **result}
                row["mb_per_s"] = input_mb / result["seconds"]
                rows.append(row)
                print(f"  {input_mb:8.1f} MB x{copies:<4} {threads} threads: {result['seconds']:7.1f} s, "
                      f"{row['mb_per_s']:5.1f} MB/s, peak RSS {result['peak_rss_mib']:6.1f} MiB",
                      flush=True)
            input_path.unlink()
    finally:
        if scratch_owner is not None:
            scratch_owner.cleanup()

    print()
    print("| input MB | copies | spectra | threads | seconds | MB/s | peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['input_mb']:.0f} | {r['copies']} | {r['spectra']} | {r['threads']} | "
              f"{r['seconds']:.1f} | {r['mb_per_s']:.1f} | {r['peak_rss_mib']:.0f} |")
    args.json.write_text(json.dumps({"measured": stamp, "source": args.source, "rows": rows}, indent=1) + "\n")
    print(f"\nfigures: {args.json.relative_to(ROOT) if args.json.is_relative_to(ROOT) else args.json}")
    if not args.no_plots:
        for path in plot(rows, source.name, stamp):
            print(f"plot: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
