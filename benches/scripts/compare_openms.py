#!/usr/bin/env python3
"""Centroiding throughput: mzforge against OpenMS PeakPickerHiRes (via pyopenms) and ms_peak_picker.

Both sides centroid the same spectra -- the MS1 spectra declared as profile in the given files
(default: the three profile files of the criterion `centroid` bench) -- on one thread, with the
arrays already in memory before timing:

* pyopenms: ``MzMLFile().load`` outside the timed region, then ``PeakPickerHiRes.pick`` per
  spectrum with ``signal_to_noise = 0`` and every other parameter at its default;
* ms_peak_picker (ms_deisotope's picker), when installed: ``pick_peaks`` on the same spectra's
  arrays (NumPy, taken from pyopenms before timing), ``signal_to_noise_threshold`` and
  ``intensity_threshold`` 0, its default quadratic fit;
* mzforge: the ``centroid_throughput`` example of this package (``Centroider::centroid_into``,
  default parameters, ``min_snr`` 0), built in release and run with ``--repeat``.

The script prints points per second for both, the ratio, and the peak counts (which must be
within a factor 2 of each other, or the comparison is void and the script fails).

Usage (from the repository root)::

    /tmp/pyenv/bin/python benches/scripts/compare_openms.py [--repeat N] [--json] [FILES...]
    python3 benches/scripts/compare_openms.py --install   # makes a scratch venv under /tmp

It installs nothing into the project. ``--install`` creates (or reuses) a virtual environment
under ``/tmp/mzforge-compare-openms`` with pyopenms and ms_peak_picker and re-runs itself there.
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
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "pyopenms", "ms_peak_picker"], check=True)
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


def time_ms_peak_picker(files: list[Path], repeat: int) -> dict | None:
    """ms_peak_picker on the spectra `time_openms` centroids; None when it is not installed."""
    try:
        import ms_peak_picker
    except ImportError:
        return None
    import pyopenms

    arrays = [s.get_peaks() for f in files for s in profile_ms1(pyopenms, f)]
    started = time.perf_counter()
    for _ in range(repeat):
        picked = [
            ms_peak_picker.pick_peaks(mz, intensity, signal_to_noise_threshold=0, intensity_threshold=0)
            for mz, intensity in arrays
        ]
    seconds = time.perf_counter() - started
    return {
        "spectra": len(arrays),
        "points": sum(len(mz) for mz, _ in arrays),
        "peaks": sum(len(p) for p in picked),
        "seconds": seconds,
        "repeat": repeat,
        "version": getattr(ms_peak_picker, "__version__", "?"),
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
    picker = time_ms_peak_picker(files, args.openms_repeat or args.repeat)
    ours = time_mzforge(files, args.repeat)
    for name, peer in (("OpenMS", openms), ("ms_peak_picker", picker)):
        if peer is None:
            continue
        if (peer["spectra"], peer["points"]) != (ours["spectra"], ours["points"]):
            raise SystemExit(f"{name} and mzforge centroided different spectra: {peer} vs {ours}")
        if not (ours["peaks"] * 2 >= peer["peaks"] and peer["peaks"] * 2 >= ours["peaks"]):
            raise SystemExit(f"{name}'s and mzforge's peak counts differ by more than 2x: {peer} vs {ours}")

    def rate(r: dict) -> float:
        return r["points"] * r["repeat"] / r["seconds"]

    ratio = rate(ours) / rate(openms)
    picker_ratio = rate(ours) / rate(picker) if picker else None
    if args.json:
        print(json.dumps({"openms": openms, "ms_peak_picker": picker, "mzforge": ours, "ratio": ratio,
                          "ratio_ms_peak_picker": picker_ratio}))
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
    if picker:
        print(
            f"ms_peak_picker {picker['version']} pick_peaks: {rate(picker) / 1e6:10.2f} M points/s"
            f"  ({picker['peaks']} peaks)"
        )
    print(f"ratio mzforge / OpenMS: {ratio:.1f}x")
    if picker_ratio:
        print(f"ratio mzforge / ms_peak_picker: {picker_ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
