#!/usr/bin/env python3
"""Whole-process comparison of mzforge with its peers on the same files, in one run.

Each round runs every tool once per file, in a fixed order that rotates between rounds (so no
tool always runs first, warm or cold); the figures are the median wall time and the peak
resident memory (the child's own ``ru_maxrss`` from ``wait4``) over the rounds. Every run's
output is checked for being non-empty before it counts.

Tools, each a separate process:

* ``mzforge``            ``mzforge run FILE --out DIR`` (read, centroid, deconvolve, Parquet)
* ``mzforge-centroid``   the same with ``--no-deconvolve``
* ``mzdata``             the ``mzdata_read`` example: mzdata reads and decodes every spectrum on
                         one thread (the baseline of the goal "``mzforge run`` on 2 threads at
                         least 2x faster than mzdata reading and decoding alone"); built with
                         ``cargo build --release --example mzdata_read`` when missing
* ``mzdeisotoper``       ``mzdeisotoper FILE -o OUT.mzML -v full`` (peak picking, deconvolution of
                         whole MS1 spectra as mzforge does, mzML; its default deconvolves MS1 only
                         around the selected precursors)
* ``pyopenms``           ``MzMLFile().load`` + ``PeakPickerHiRes`` (signal_to_noise 0) on MS1
* ``flashdeconv``        OpenMS's deconvolver, the source of the FLASHDeconv reference masses:
                         ``MzMLFile().load``, ``PeakPickerHiRes`` (signal_to_noise 0) on the
                         spectra OpenMS finds to be profile, then ``FLASHDeconvAlgorithm().run``
                         with its defaults (the FLASHDeconv tool's: charges 1-100, masses
                         50 Da-100 kDa, mass tracing across spectra), as ``mzforge run`` does
                         every spectrum. Its start-up (averagine tables to 100 kDa) takes 5-7 s
                         here, so on small files it dominates
* ``ms-deisotope``       ``ms-deisotope -p THREADS FILE OUT.mzML``, the command-line tool of the
                         Python ms_deisotope (whose Rust port is mzdeisotoper) with its defaults:
                         peak picking (ms_peak_picker) and deconvolution of every MS1 and MSn
                         spectrum, mzML out. Slow: minutes per file, so run it with few rounds
                         (``--tools ms-deisotope --rounds 1``)
* ``ms_peak_picker``     ms_deisotope's reader and peak picker alone: ``MSFileLoader`` reading in
                         file order (``use_index=False``, its fastest), every scan's
                         ``pick_peaks(signal_to_noise_threshold=0)`` (centroid scans are taken as
                         they are)
* ``msconvert``          ProteoWizard's converter (Debian's ``libpwiz-tools``, 3.0.18342):
                         ``msconvert FILE --mzML --filter "peakPicking cwt snr=0 msLevel=1-"``,
                         its own (wavelet) centroiding of every spectrum, mzML out
* ``pyteomics``          ``mzml.read``, both arrays of every spectrum touched
* ``pymzml``             ``pymzml.run.Reader``, both arrays of every spectrum touched

Ratios: mzdeisotoper, ms-deisotope and flashdeconv against ``mzforge`` (all deconvolve); mzdata,
pyopenms, ms_peak_picker, msconvert, pyteomics and pymzml against ``mzforge-centroid`` (which reads *and*
centroids and writes its tables, so reader ratios understate).

``--install`` makes a scratch prefix (default /tmp/mzforge-peers) with a venv holding
pyopenms, pyteomics (with psims, which its mzML reader now requires), pymzml, numpy, ms_deisotope
(with click, which its command line needs and does not declare), and
``cargo install --locked mzdeisotoper`` into it (msconvert comes from Debian:
``apt-get install libpwiz-tools``); nothing is installed into the project (building mzdeisotoper needs cmake). Tools that are missing are reported and left out.

    python3 benches/scripts/compare_peers.py --install --rounds 5
    python3 benches/scripts/compare_peers.py --mzforge target/release/mzforge runs/BSA1.mzML
    python3 benches/scripts/compare_peers.py --tools ms-deisotope ms_peak_picker --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
DEFAULT_FILES = [
    "runs/BSA1.mzML",
    "runs/171103_PMA_TK_QC_04-4to5min.mzML",
    "profile/small.mzML",
]

PYOPENMS = """
import sys, pyopenms as oms
exp = oms.MSExperiment(); oms.MzMLFile().load(sys.argv[1], exp)
picker = oms.PeakPickerHiRes(); p = picker.getParameters(); p.setValue("signal_to_noise", 0.0)
picker.setParameters(p)
peaks = 0
for s in exp.getSpectra():
    if s.getMSLevel() != 1: continue
    out = oms.MSSpectrum(); picker.pick(s, out); peaks += out.size()
print(peaks)
"""
FLASHDECONV = """
import sys, pyopenms as oms
exp = oms.MSExperiment(); oms.MzMLFile().load(sys.argv[1], exp)
picker = oms.PeakPickerHiRes(); p = picker.getParameters(); p.setValue("signal_to_noise", 0.0)
picker.setParameters(p)
profile = oms.SpectrumSettings.SpectrumType.PROFILE
spectra = []
for s in exp.getSpectra():
    if s.getType(True) == profile:
        out = oms.MSSpectrum(); picker.pick(s, out); s = out
    spectra.append(s)
exp.setSpectra(spectra)
deconvolved, _features = oms.FLASHDeconvAlgorithm().run(exp)
print(sum(s.size() for s in deconvolved))
"""
PYTEOMICS = """
import sys
from pyteomics import mzml
points = 0
with mzml.read(sys.argv[1]) as reader:
    for s in reader:
        points += len(s["m/z array"]) + len(s["intensity array"])
print(points)
"""
MS_PEAK_PICKER = """
import sys, warnings
warnings.filterwarnings("ignore")  # ms_deisotope warns that matplotlib is missing
import ms_deisotope
peaks = 0
# Read in file order: with the offset index (the default) every scan is looked up by id and
# parsed from its offset, about ten times slower on these files.
reader = ms_deisotope.MSFileLoader(sys.argv[1], use_index=False)
for scan in reader.make_iterator(grouped=False):
    scan.pick_peaks(signal_to_noise_threshold=0)
    peaks += len(scan.peak_set)
print(peaks)
"""
PYMZML = """
import sys, pymzml
points = 0
for s in pymzml.run.Reader(sys.argv[1]):
    points += len(s.mz) + len(s.i)
print(points)
"""


def install(prefix: Path) -> None:
    venv = prefix / "venv"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "pyopenms", "pyteomics", "psims", "lxml", "pymzml", "numpy",
         "ms_deisotope", "click"],
        check=True,
    )
    if not (prefix / "bin" / "mzdeisotoper").exists():
        if shutil.which("cmake") is None:
            sys.exit("mzdeisotoper's zlib-ng build needs cmake: apt-get install cmake")
        subprocess.run(
            ["cargo", "install", "--locked", "mzdeisotoper", "--root", str(prefix)], check=True
        )


def run_measured(argv: list[str]) -> tuple[float, float, str]:
    """Runs argv; returns (seconds, peak RSS in MiB, stdout). Raises on failure."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {stderr[-2000:]}")
    return seconds, usage.ru_maxrss / 1024.0, stdout


def tools(args: argparse.Namespace, scratch: Path) -> dict:
    """name -> function(file, workdir) -> argv, plus a check of the outcome."""
    found = {}
    mzforge = Path(args.mzforge)
    if not mzforge.exists():
        sys.exit(f"mzforge binary {mzforge} not found (cargo build --release --bin mzforge)")
    threads = ["--threads", str(args.threads)]

    def mzforge_run(extra):
        def argv(f: Path, work: Path):
            return [str(mzforge), "run", str(f), "--out", str(work), *threads, *extra]

        def check(f: Path, work: Path, _stdout: str):
            peaks = work / stem(f) / "peaks.parquet"
            assert peaks.stat().st_size > 0, f"{peaks} is empty"

        return argv, check

    found["mzforge"] = mzforge_run([])
    found["mzforge-centroid"] = mzforge_run(["--no-deconvolve"])

    mzdata = Path(args.mzdata)
    if not mzdata.exists():
        subprocess.run(
            ["cargo", "build", "--quiet", "--release", "-p", "mzforge-benches", "--example", "mzdata_read"],
            cwd=REPO, check=True,
        )
    found["mzdata"] = (
        lambda f, work: [str(mzdata), str(f)],
        lambda f, work, stdout: int(stdout.split()[0]) > 0 or sys.exit(f"no spectra: {f}"),
    )

    deisotoper = shutil.which("mzdeisotoper") or str(Path(args.prefix) / "bin" / "mzdeisotoper")
    if Path(deisotoper).exists():
        found["mzdeisotoper"] = (
            lambda f, work: [deisotoper, str(f), "-o", str(work / "out.mzML"), "-t", str(args.threads), "-v", "full"],
            lambda f, work, _: (work / "out.mzML").stat().st_size > 0 or sys.exit("empty mzML"),
        )
    msconvert = shutil.which("msconvert")
    if msconvert:
        found["msconvert"] = (
            lambda f, work: [msconvert, str(f), "--mzML", "--filter", "peakPicking cwt snr=0 msLevel=1-",
                             "-o", str(work)],
            lambda f, work, _: any(p.stat().st_size > 0 for p in work.glob("*.mzML")) or sys.exit("no mzML"),
        )
    else:
        print("note: msconvert not found (apt-get install libpwiz-tools); left out", file=sys.stderr)
    python = args.python or str(Path(args.prefix) / "venv" / "bin" / "python")
    ms_deisotope = Path(python).parent / "ms-deisotope"
    if ms_deisotope.exists():
        found["ms-deisotope"] = (
            lambda f, work: [str(ms_deisotope), "-p", str(args.threads), str(f), str(work / "out.mzML")],
            lambda f, work, _: (work / "out.mzML").stat().st_size > 0 or sys.exit("empty mzML"),
        )
    else:
        print(f"note: ms-deisotope not found beside {python}; left out (--install)", file=sys.stderr)
    for name, module, script in (
        ("pyopenms", "pyopenms", PYOPENMS),
        ("flashdeconv", "pyopenms", FLASHDECONV),
        ("ms_peak_picker", "ms_deisotope", MS_PEAK_PICKER),
        ("pyteomics", "pyteomics", PYTEOMICS),
        ("pymzml", "pymzml", PYMZML),
    ):
        ok = Path(python).exists() and subprocess.run(
            [python, "-c", f"import {module}"], capture_output=True
        ).returncode == 0
        if ok:
            found[name] = (
                lambda f, work, script=script: [python, "-c", script, str(f)],
                # The count is the last line (OpenMS writes its progress to stdout too).
                lambda f, work, stdout: int((stdout.split() or ["0"])[-1]) > 0 or sys.exit(f"no output: {f}"),
            )
        else:
            print(f"note: {name} not available in {python}; left out (--install)", file=sys.stderr)
    if args.tools:
        unknown = set(args.tools) - set(found)
        if unknown:
            sys.exit(f"--tools: {', '.join(sorted(unknown))} not available (known: {', '.join(found)})")
        # mzforge's two runs stay: they are what the ratios are against.
        found = {n: t for n, t in found.items() if n in args.tools or n.startswith("mzforge")}
    return found


def stem(f: Path) -> str:
    name = f.name
    for suffix in (".gz", ".mzML", ".mzml", ".mgf"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", help=f"files relative to {DATA} (default: {DEFAULT_FILES})")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--mzforge", default=str(REPO / "target" / "release" / "mzforge"))
    ap.add_argument("--mzdata", default=str(REPO / "target" / "release" / "examples" / "mzdata_read"))
    ap.add_argument("--prefix", default="/tmp/mzforge-peers", help="scratch install prefix")
    ap.add_argument("--python", help="python with the Python peers (default: the prefix's venv)")
    ap.add_argument("--install", action="store_true", help="install the peers into --prefix first")
    ap.add_argument("--json", help="also write the raw figures here")
    ap.add_argument("--tools", nargs="+", help="only these peers (mzforge's own runs always run)")
    args = ap.parse_args()

    if args.install:
        install(Path(args.prefix))
    files = [DATA / f for f in (args.files or DEFAULT_FILES)]
    for f in files:
        if not f.is_file():
            sys.exit(f"input {f} not found (the shared data set belongs beside the repository)")

    with tempfile.TemporaryDirectory(prefix="mzforge-peers-") as scratch_dir:
        scratch = Path(scratch_dir)
        found = tools(args, scratch)
        names = list(found)
        figures: dict[str, dict[str, list[tuple[float, float]]]] = {
            f.name: {n: [] for n in names} for f in files
        }
        for r in range(args.rounds):
            order = names[r % len(names):] + names[: r % len(names)]
            for f in files:
                for name in order:
                    argv_of, check = found[name]
                    work = scratch / f"{name}-{r}"
                    work.mkdir()
                    seconds, rss, stdout = run_measured(argv_of(f, work))
                    check(f, work, stdout)
                    figures[f.name][name].append((seconds, rss))
                    shutil.rmtree(work)
                    print(f"round {r + 1} {f.name} {name}: {seconds:.3f} s, {rss:.0f} MiB", file=sys.stderr)

    baseline = {"mzdeisotoper": "mzforge", "ms-deisotope": "mzforge", "flashdeconv": "mzforge",
                "mzdata": "mzforge-centroid", "pyopenms": "mzforge-centroid", "ms_peak_picker": "mzforge-centroid",
                "msconvert": "mzforge-centroid", "pyteomics": "mzforge-centroid", "pymzml": "mzforge-centroid"}
    print(f"\n{args.rounds} rounds, {args.threads} threads, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("\n| file | tool | median s | peak RSS MiB | mzforge speed-up |")
    print("|---|---|---|---|---|")
    summary = {}
    for f in files:
        med = {n: statistics.median(s for s, _ in figures[f.name][n]) for n in names}
        rss = {n: max(m for _, m in figures[f.name][n]) for n in names}
        summary[f.name] = {"median_seconds": med, "peak_rss_mib": rss}
        for n in names:
            ratio = ""
            if n in baseline and baseline[n] in med:
                ratio = f"{med[n] / med[baseline[n]]:.1f}x (vs {baseline[n]})"
            print(f"| {f.name} | {n} | {med[n]:.3f} | {rss[n]:.0f} | {ratio} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"figures": figures, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
