"""Decoded arrays equal pyteomics' (an independent reader) for every spectrum of files with
different encodings: uncompressed and zlib, 32- and 64-bit, gzip streams, MS-Numpress
(linear, pic, slof; mzforge decodes Numpress PIC itself), MGF.

mzforge's documented repairs are applied to pyteomics' arrays before comparing: m/z put in
ascending order (stable sort) and points with NaN or infinite values dropped. Non-MS traces
(no m/z array) are left out by mzforge and skipped here."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

import mzforge

from mzftest import require, shared

pyteomics_mzml = require("pyteomics.mzml")
pyteomics_mgf = require("pyteomics.mgf")

FILES = [
    "runs/BSA1.mzML",  # indexed, uncompressed, 64-bit m/z, 32-bit intensity
    "runs/GNPSExport_mzml1.mzML",  # 32-bit everywhere
    "runs/171103_PMA_TK_QC_04-4to5min.mzML",  # zlib, 64-bit
    "runs/OpenSwathWorkflow_21_input.mzML",  # DIA, zlib, m/z not always ascending
    "runs/MapAlignmentAlgorithmPoseClustering_in1.mzML.gz",  # gzip, not indexed, unsorted
    "encodings/small.mzML.gz",  # gzip
    "encodings/FileFilter_49_output.mzML",  # MS-Numpress linear / pic / slof + zlib
    "encodings/SmallCalibratibleYeast_mixed_bits.mzml",  # 32/64-bit mixed
    "encodings/MzMLFile_6_uncompressed.mzML.gz",
    "profile/small.mzML",  # FT-ICR profile, zlib
    "mgf/small.mgf",
]


def pyteomics_spectra(path):
    if path.suffix == ".mgf":
        for s in pyteomics_mgf.read(str(path)):
            yield s["params"].get("title"), s["m/z array"], s["intensity array"]
        return
    source = gzip.open(path) if path.suffix == ".gz" else str(path)
    with pyteomics_mzml.read(source) as reader:
        for s in reader:
            if "m/z array" not in s:
                continue
            yield s["id"], s["m/z array"], s["intensity array"]


def as_mzforge_would(mz, intensity):
    mz = np.asarray(mz, dtype=np.float64)
    intensity = np.asarray(intensity, dtype=np.float64).astype(np.float32)
    finite = np.isfinite(mz) & np.isfinite(intensity)
    mz, intensity = mz[finite], intensity[finite]
    order = np.argsort(mz, kind="stable")
    return mz[order], intensity[order]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("rel", FILES)
def test_every_spectrum_decodes_like_pyteomics(rel):
    path = shared(rel)
    ours = list(mzforge.open(path, on_bad_spectrum="fail"))
    theirs = list(pyteomics_spectra(path))
    assert len(ours) == len(theirs) > 0
    for spectrum, (native_id, mz, intensity) in zip(ours, theirs):
        assert spectrum.native_id == native_id
        mz, intensity = as_mzforge_would(mz, intensity)
        np.testing.assert_array_equal(spectrum.mz, mz, err_msg=native_id)
        np.testing.assert_array_equal(spectrum.intensity, intensity, err_msg=native_id)


def test_random_access_matches_iteration_on_a_real_file():
    path = shared("runs/BSA1.mzML")
    reader = mzforge.open(path)
    spectra = list(reader)
    assert len(reader) == len(spectra) == 1684
    for i in (0, 1, 842, 1683):
        s = reader[i]
        assert s.native_id == spectra[i].native_id
        assert np.array_equal(s.mz, spectra[i].mz)
        assert reader[s.native_id].index == i


# Files whose spectra describe themselves in different ways: DDA precursors with charges and
# isolation windows, MS3 chains, DIA windows, metabolomics in both polarities, 32-bit and
# gzip files, profile MS1 beside centroid MS2, parameters given only in a
# referenceableParamGroup, scan windows, a pwiz-written file.
METADATA_FILES = [
    "runs/BSA1.mzML",
    "runs/MS3_nonHierarchical.mzML",
    "runs/OpenSwathWorkflow_21_input.mzML",
    "runs/171103_PMA_TK_QC_04-4to5min.mzML",
    "runs/GNPSExport_mzml1.mzML",
    "runs/MapAlignmentAlgorithmPoseClustering_in1.mzML.gz",
    "profile/small.mzML",
    "profile/three_test_scans.mzML",
    "profile/FeatureFinderMultiplex_1_input.mzML",
    "edge/RawCentriodCidWithMsLevelInRefParamGroup.mzML",
    "edge/noPrecursorScans.mzML",
    "edge/tiny.pwiz.1.1.mzML",
]


def pyteomics_metadata(s):
    """What pyteomics reads of a spectrum, in mzforge's terms."""
    scan = (s.get("scanList") or {}).get("scan", [{}])[0]
    rt = scan.get("scan start time")
    if rt is not None:
        rt = float(rt) * (60.0 if getattr(rt, "unit_info", None) == "minute" else 1.0)
    windows = (scan.get("scanWindowList") or {}).get("scanWindow", [])
    window = None
    if windows and "scan window lower limit" in windows[0]:
        window = (float(windows[0]["scan window lower limit"]), float(windows[0]["scan window upper limit"]))
    precursors = (s.get("precursorList") or {}).get("precursor", [])
    precursor = None
    if precursors:
        ions = (precursors[0].get("selectedIonList") or {}).get("selectedIon", [{}])
        isolation = precursors[0].get("isolationWindow", {})
        target = isolation.get("isolation window target m/z")
        lower = isolation.get("isolation window lower offset")
        upper = isolation.get("isolation window upper offset")
        charge = ions[0].get("charge state")
        intensity = ions[0].get("peak intensity")
        mz = ions[0].get("selected ion m/z")
        precursor = {
            "mz": float("nan") if mz is None else float(mz),  # mzforge: NaN when none is given
            "charge": None if charge is None else int(charge),
            "intensity": None if intensity is None else float(intensity),
            "isolation_target_mz": None if target is None else float(target),
            "isolation_lower_mz": None if target is None or lower is None else float(target) - float(lower),
            "isolation_upper_mz": None if target is None or upper is None else float(target) + float(upper),
        }
    return {
        "ms_level": s.get("ms level"),
        "rt_seconds": rt,
        "polarity": "positive" if "positive scan" in s else "negative" if "negative scan" in s else "unknown",
        "signal_declared": "profile" if "profile spectrum" in s else "centroid" if "centroid spectrum" in s else None,
        "scan_window": window,
        "precursor": precursor,
    }


def mzforge_metadata(s):
    p = s.precursor
    return {
        "ms_level": s.ms_level,
        "rt_seconds": s.rt_seconds,
        "polarity": s.polarity,
        "signal_declared": s.signal_declared,
        "scan_window": s.scan_window,
        "precursor": None if p is None else {
            "mz": p.mz, "charge": p.charge, "intensity": p.intensity,
            "isolation_target_mz": p.isolation_target_mz,
            "isolation_lower_mz": p.isolation_lower_mz,
            "isolation_upper_mz": p.isolation_upper_mz,
        },
    }


def approximately(value):
    """Numbers compared to a millionth (both readers parse the file's text as f64; sums of
    offsets may round differently; NaN equals NaN), everything else exactly."""
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True)
    if isinstance(value, tuple):
        return tuple(approximately(v) for v in value)
    if isinstance(value, dict):
        return {k: approximately(v) for k, v in value.items()}
    return value


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("rel", METADATA_FILES)
def test_every_spectrums_metadata_reads_like_pyteomics(rel):
    # Level, retention time, polarity, declared signal, scan window and precursor (m/z,
    # charge, intensity, isolation window) of every spectrum with an m/z array.
    path = shared(rel)
    ours = {s.native_id: mzforge_metadata(s) for s in mzforge.open(path, on_bad_spectrum="fail")}
    source = gzip.open(path) if path.suffix == ".gz" else str(path)
    with pyteomics_mzml.read(source) as reader:
        theirs = {s["id"]: pyteomics_metadata(s) for s in reader if "m/z array" in s}
    assert ours.keys() == theirs.keys() and ours
    for native_id, expected in theirs.items():
        assert ours[native_id] == approximately(expected), native_id
