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
