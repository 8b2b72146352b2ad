#!/usr/bin/env python3
"""Start-up time of a whole `mzforge run` on a one-spectrum input.

For each file given (relative to ../shared/data), the first spectrum (of the MS level asked)
is cut out into a one-spectrum mzML in a scratch directory, and `mzforge run` processes it
(centroiding, deconvolution with default parameters, Parquet output) --rounds times. The
median and worst wall times are printed beside `mzforge --version` (process start alone).
Exits 1 when a median exceeds --limit-ms, so that the isotope-pattern cache (filled lazily)
or anything else cannot quietly add start-up work.

    python3 benches/scripts/startup.py                  # release binary, default files
    python3 benches/scripts/startup.py --rounds 50 --limit-ms 100 runs/BSA1.mzML
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
DEFAULT_FILES = ["deconvolution/FLASHDeconv_sample_input.mzML", "runs/BSA1.mzML"]


def one_spectrum_mzml(source: Path, ms_level: int, target: Path) -> str:
    """Writes `target` with the header of `source` and its first spectrum of `ms_level`;
    returns that spectrum's id."""
    text = source.read_text(encoding="utf-8", errors="strict")
    start = text.index("<spectrumList")
    head = text[:start]
    if "<indexedmzML" in head:
        head = head[head.index("<mzML"):]
        head = '<?xml version="1.0" encoding="utf-8"?>\n' + head
    level = f'name="ms level" value="{ms_level}"'
    for match in re.finditer(r"<spectrum [^>]*>.*?</spectrum>", text[start:], re.S):
        spectrum = match.group(0)
        if level in spectrum:
            spectrum = re.sub(r'index="\d+"', 'index="0"', spectrum, count=1)
            target.write_text(
                head
                + '<spectrumList count="1" defaultDataProcessingRef="'
                + _default_processing(text[start:])
                + '">\n'
                + spectrum
                + "\n</spectrumList>\n</run>\n</mzML>\n",
                encoding="utf-8",
            )
            return re.search(r'id="([^"]*)"', spectrum).group(1)
    raise SystemExit(f"{source}: no MS{ms_level} spectrum")


def _default_processing(spectrum_list: str) -> str:
    found = re.match(r'<spectrumList[^>]*defaultDataProcessingRef="([^"]*)"', spectrum_list)
    return found.group(1) if found else "dp"


def wall_times(command: list[str], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr.decode()}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", default=DEFAULT_FILES)
    parser.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "mzforge")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--ms-level", type=int, default=1)
    parser.add_argument("--limit-ms", type=float, default=100.0)
    args = parser.parse_args()
    if not args.binary.exists():
        raise SystemExit(f"{args.binary} not found: cargo build --release --workspace --bin mzforge")

    baseline = wall_times([str(args.binary), "--version"], args.rounds)
    print(f"mzforge --version: median {statistics.median(baseline) * 1e3:.1f} ms")
    failed = False
    with tempfile.TemporaryDirectory(prefix="mzforge-startup-") as scratch:
        for relative in args.files:
            source = DATA / relative
            one = Path(scratch) / (Path(relative).name.split(".")[0] + "_one.mzML")
            native_id = one_spectrum_mzml(source, args.ms_level, one)
            out = Path(scratch) / "out"
            command = [str(args.binary), "run", str(one), "--out", str(out), "--quiet"]
            times = wall_times(command, args.rounds)
            summary = (Path(out) / one.stem / "run.json").read_text()
            assert '"spectra_written": 1' in summary, summary
            median = statistics.median(times) * 1e3
            verdict = "ok" if median < args.limit_ms else f"OVER {args.limit_ms:.0f} ms"
            failed |= median >= args.limit_ms
            print(
                f"{relative} [{native_id}]: one-spectrum run median {median:.1f} ms, "
                f"worst {max(times) * 1e3:.1f} ms over {args.rounds} runs: {verdict}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
