#!/usr/bin/env python3
"""Centroiding throughput: mzforge against OpenMS PeakPickerHiRes (via pyopenms).

Both sides centroid the same spectra -- the MS1 spectra declared as profile in the given files
(default: the three profile files of the criterion `centroid` bench) -- on one thread, with the
arrays already in memory before timing:

* pyopenms: ``MzMLFile().load`` outside the timed region, then ``PeakPickerHiRes.pick`` per
  spectrum with ``signal_to_noise = 0`` and every other parameter at its default;
* mzforge: the ``centroid_throughput`` example of this package (``Centroider::centroid_into``,
  default parameters, ``min_snr`` 0), built in release and run with ``--repeat``.

The script prints points per second for both, the ratio, and the peak counts (which must be
within a factor 2 of each other, or the comparison is void and the script fails).

Usage (from the repository root)::

    /tmp/pyenv/bin/python benches/scripts/compare_openms.py [--repeat N] [--json] [FILES...]
    python3 benches/scripts/compare_openms.py --install   # makes a scratch venv under /tmp

It installs nothing into the project. ``--install`` creates (or reuses) a virtual environment
under ``/tmp/mzforge-compare-openms`` with pyopenms and re-runs itself there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCHES = Path(__file__).resolve().parent.parent
REPO = BENCHES.parent
DATA = REPO.parent / "shared" / "data"
DEFAULT_FILES = [
    "profile/small.mzML",
    "profile/three_test_scans.mzML",
    "profile/FeatureFinderMetaboIdent_1_input.mzML",
]
SCRATCH_VENV = Path("/tmp/mzforge-compare-openms")


def install_and_rerun(argv: list[str]) -> int:
    python = SCRATCH_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(SCRATCH_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "pyopenms"], check=True)
    rest = [a for a in argv if a != "--install"]
    return subprocess.run([str(python), __file__, *rest]).returncode


def profile_ms1(pyopenms, path: Path) -> list:
    experiment = pyopenms.MSExperiment()
    pyopenms.MzMLFile().load(str(path), experiment)
    profile = pyopenms.SpectrumSettings.SpectrumType.PROFILE
    return [
        s
        for s in experiment.getSpectra()
        if s.getMSLevel() == 1 and s.getType(False) == profile
    ]


def time_openms(files: list[Path], repeat: int) -> dict:
    import pyopenms

    spectra = [s for f in files for s in profile_ms1(pyopenms, f)]
    if not spectra:
        raise SystemExit("no profile MS1 spectra in the given files")
    picker = pyopenms.PeakPickerHiRes()
    params = picker.getDefaults()
    params.setValue("signal_to_noise", 0.0)
    picker.setParameters(params)
    outputs = [pyopenms.MSSpectrum() for _ in spectra]
    points = sum(s.size() for s in spectra)
    started = time.perf_counter()
    for _ in range(repeat):
        for spectrum, out in zip(spectra, outputs):
            picker.pick(spectrum, out)
    seconds = time.perf_counter() - started
    peaks = sum(out.size() for out in outputs)
    return {
        "spectra": len(spectra),
        "points": points,
        "peaks": peaks,
        "seconds": seconds,
        "repeat": repeat,
        "version": pyopenms.__version__,
    }


def time_mzforge(files: list[Path], repeat: int) -> dict:
    command = [
        "cargo",
        "run",
        "--quiet",
        "--release",
        "-p",
        "mzforge-benches",
        "--example",
        "centroid_throughput",
        "--",
        "--repeat",
        str(repeat),
        *map(str, files),
    ]
    done = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    if "--install" in sys.argv[1:]:
        return install_and_rerun(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="mzML files (default: 3 profile files)")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the spectra (default 5)")
    parser.add_argument("--openms-repeat", type=int, help="passes for OpenMS (default: --repeat)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    files = args.files or [DATA / f for f in DEFAULT_FILES]
    missing = [f for f in files if not f.is_file()]
    if missing:
        message = f"data not found: {', '.join(map(str, missing))}"
        if os.environ.get("CI"):
            raise SystemExit(message)
        print(f"skipping: {message}", file=sys.stderr)
        return 0

    openms = time_openms(files, args.openms_repeat or args.repeat)
    ours = time_mzforge(files, args.repeat)
    if (openms["spectra"], openms["points"]) != (ours["spectra"], ours["points"]):
        raise SystemExit(f"the two sides centroided different spectra: {openms} vs {ours}")
    if not (ours["peaks"] * 2 >= openms["peaks"] and openms["peaks"] * 2 >= ours["peaks"]):
        raise SystemExit(f"peak counts differ by more than 2x: {openms} vs {ours}")

    def rate(r: dict) -> float:
        return r["points"] * r["repeat"] / r["seconds"]

    ratio = rate(ours) / rate(openms)
    if args.json:
        print(json.dumps({"openms": openms, "mzforge": ours, "ratio": ratio}))
        return 0
    print(f"{openms['spectra']} profile MS1 spectra, {openms['points']} points")
    print(
        f"pyopenms {openms['version']} PeakPickerHiRes: {rate(openms) / 1e6:10.2f} M points/s"
        f"  ({openms['peaks']} peaks)"
    )
    print(
        f"mzforge ({ours['backend']}) Centroider:    {rate(ours) / 1e6:10.2f} M points/s"
        f"  ({ours['peaks']} peaks)"
    )
    print(f"ratio mzforge / OpenMS: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
