"""Results and spectra cross process boundaries: a notebook that fans files or spectra out
to worker processes (``concurrent.futures``, ``multiprocessing``, joblib) gets them back
whole. Before, pickling raised "cannot pickle 'mzforge._mzforge.RunResult' object"."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import mzforge

from mzftest import FIXTURES, shared


def _process(path: str) -> mzforge.RunResult:
    return mzforge.process(path, threads=1)


def _centroid_count(spectrum: mzforge.Spectrum) -> tuple[str, int]:
    return spectrum.native_id, len(mzforge.centroid(spectrum.mz, spectrum.intensity))


def test_a_run_result_pickles_with_its_tables(tmp_path):
    for out in (None, tmp_path):
        result = mzforge.process(FIXTURES / "sim_envelopes.mzML", out=out)
        copy = pickle.loads(pickle.dumps(result))
        assert copy.summary == result.summary and copy.params == result.params
        assert copy.output == result.output
        for name in ("spectra", "peaks", "features"):
            assert getattr(copy, name).equals(getattr(result, name)), name
        assert len(copy.features) > 0
        first = int(copy.spectra["spectrum_index"][0].as_py())
        assert np.array_equal(copy.deconvolution(first).neutral_mass,
                              result.deconvolution(first).neutral_mass)
    # The copy of a written result does not need the files.
    (tmp_path / "sim_envelopes" / "peaks.parquet").unlink()
    assert len(copy.peaks) == len(result.peaks)


def test_spectra_pickle_with_arrays_and_precursors():
    with mzforge.open(shared("runs/MS3_nonHierarchical.mzML")) as reader:
        spectra = list(reader)
    assert any(s.precursor is not None for s in spectra)
    for spectrum in spectra:
        copy = pickle.loads(pickle.dumps(spectrum))
        for name in ("index", "native_id", "ms_level", "rt_seconds", "polarity",
                     "signal_declared", "scan_window"):
            assert getattr(copy, name) == getattr(spectrum, name), name
        assert copy.mz.dtype == np.float64 and copy.intensity.dtype == np.float32
        assert np.array_equal(copy.mz, spectrum.mz)
        assert np.array_equal(copy.intensity, spectrum.intensity)
        assert len(copy) == len(spectrum)
        if spectrum.precursor is not None:
            assert copy.precursor.mz == spectrum.precursor.mz
            assert copy.precursor.charge == spectrum.precursor.charge
            assert copy.precursor.isolation_lower_mz == spectrum.precursor.isolation_lower_mz


def test_files_and_spectra_fanned_out_to_worker_processes():
    paths = [str(FIXTURES / "sim_profile.mzML"), str(FIXTURES / "sim_envelopes.mzML")]
    spawn = multiprocessing.get_context("spawn")  # no memory shared with this process
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        results = list(pool.map(_process, paths))
        with mzforge.open(paths[0]) as reader:
            spectra = list(reader)
        counts = list(pool.map(_centroid_count, spectra))
    for path, result in zip(paths, results):
        assert result.peaks.equals(mzforge.process(path, threads=1).peaks)
    assert counts == [_centroid_count(s) for s in spectra]
    assert all(n > 0 for _, n in counts)


def test_a_damaged_pickle_is_an_error_not_a_bad_spectrum():
    with mzforge.open(FIXTURES / "sim_profile.mzML") as reader:
        spectrum = reader[0]
    rebuild, (state,) = spectrum.__reduce__()
    with pytest.raises(ValueError, match="sideways"):
        rebuild(state[:4] + ("sideways",) + state[5:])
    with pytest.raises(ValueError, match="differ in length"):
        rebuild(state[:9] + (state[9][:-1],) + state[10:])
    with pytest.raises(ValueError, match="m/z and ion mobility differ in length"):
        rebuild(state[:10] + ((state[8][:-1].copy(), None, None, None),))
