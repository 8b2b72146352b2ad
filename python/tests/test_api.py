"""The package surface: exports, typing files, parameters, centroiding from numpy."""

from __future__ import annotations

import ast
import inspect
import json
import typing
from pathlib import Path

import numpy as np
import pytest

import mzforge
from mzforge import _mzforge


def test_public_names_are_exported_from_the_pure_python_package():
    assert mzforge.__all__
    for name in mzforge.__all__:
        assert hasattr(mzforge, name), name
    assert mzforge.__version__ == _mzforge.__version__
    assert mzforge.simd_backend() in {"avx2", "neon", "scalar"}


def test_typing_files_ship_with_the_package():
    package = Path(mzforge.__file__).parent
    assert (package / "py.typed").is_file()
    assert (package / "_mzforge.pyi").is_file()


def _stub_annotation(class_name: str, member: str) -> str:
    """The annotation of a property (its return) or method in ``_mzforge.pyi``, as written."""
    stub = ast.parse((Path(mzforge.__file__).parent / "_mzforge.pyi").read_text())
    for node in ast.walk(stub):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == member:
                    return ast.unparse(item.returns) if item.returns else ""
    raise AssertionError(f"{class_name}.{member} is not in the stub")


def test_spectrum_words_are_typed_as_the_literals_the_functions_take():
    # polarity was stubbed as `str`, so the README's `deconvolve(..., polarity=s.polarity)`
    # failed `mypy --strict` (a str is not the Literal that `polarity` takes).
    taken = typing.get_type_hints(mzforge.deconvolve)["polarity"]
    assert _stub_annotation("Spectrum", "polarity") == repr(taken).replace("typing.", "")
    assert _stub_annotation("Spectrum", "signal_declared") == "Literal['profile', 'centroid'] | None"
    reader = mzforge.open(Path(__file__).resolve().parents[2] / "fixtures/data/sim_profile.mzML")
    spectrum = reader[0]
    assert spectrum.polarity in typing.get_args(taken)
    assert spectrum.signal_declared in ("profile", "centroid")


def _signature_defaults(function) -> dict:
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def test_parameter_defaults_are_the_engines():
    engine = json.loads(_mzforge.default_params())
    expected = {
        "threads": engine["threads"],
        "ms_levels": tuple(engine["ms_levels"]),
        "signal": engine["signal"],
        "on_bad_spectrum": engine["on_bad_spectrum"],
        "batch_size": engine["batch_size"],
        "min_snr": engine["centroid"]["min_snr"],
        "min_intensity": engine["centroid"]["min_intensity"],
        "noise_window": engine["centroid"]["noise"]["window_mz"],
        "spacing_difference_gap": engine["centroid"]["spacing_difference_gap"],
        "spacing_difference": engine["centroid"]["spacing_difference"],
        "max_missing": engine["centroid"]["max_missing"],
        "deconvolve": engine["deconvolve"]["enabled"],
        "charge_range": None,
        "isotope_model": engine["deconvolve"]["model"],
        "tolerance_ppm": engine["deconvolve"]["tolerance_ppm"],
        "min_fit": engine["deconvolve"]["min_fit"],
    }
    assert engine["deconvolve"]["auto_charge"]  # charge_range=None: the automatic range
    process_defaults = _signature_defaults(mzforge.process)
    assert process_defaults.pop("out") is None and process_defaults.pop("config") is None
    assert process_defaults == expected
    centroid_defaults = _signature_defaults(mzforge.centroid)
    assert centroid_defaults == {k: v for k, v in expected.items() if k in centroid_defaults}
    assert set(centroid_defaults) == {
        "min_snr", "min_intensity", "noise_window", "spacing_difference_gap",
        "spacing_difference", "max_missing",
    }
    deconvolve_defaults = _signature_defaults(mzforge.deconvolve)
    assert deconvolve_defaults.pop("polarity") == "positive"
    assert deconvolve_defaults == {
        k: v for k, v in expected.items()
        if k in ("charge_range", "isotope_model", "tolerance_ppm", "min_fit", "threads")
    }


def gaussian_profile(centres, sigma=0.003, step=0.001, lo=499.8, hi=501.2):
    mz = np.arange(lo, hi, step)
    intensity = np.zeros_like(mz)
    for c, h in centres:
        intensity += h * np.exp(-((mz - c) ** 2) / (2 * sigma**2))
    return mz, intensity.astype(np.float32)


def test_centroid_finds_gaussian_apexes():
    mz, intensity = gaussian_profile([(500.0, 1e5), (501.0, 5e4)])
    peaks = mzforge.centroid(mz, intensity)
    assert len(peaks) == 2
    assert np.allclose(peaks.mz, [500.0, 501.0], atol=1e-5)
    assert peaks.mz.dtype == np.float64 and peaks.intensity.dtype == np.float32
    assert peaks.snr.dtype == np.float32 and peaks.fwhm.dtype == np.float32
    # FWHM of a Gaussian: 2.3548 sigma.
    assert np.allclose(peaks.fwhm, 2.3548 * 0.003, rtol=0.02)
    assert peaks.to_arrow().column_names == ["mz", "intensity", "snr", "fwhm"]
    assert len(mzforge.centroid(mz, intensity, min_intensity=6e4)) == 1


def test_centroid_takes_lists_and_other_dtypes():
    mz, intensity = gaussian_profile([(500.0, 1e5)])
    peaks = mzforge.centroid(list(mz), intensity.astype(np.float64))
    assert len(peaks) == 1


def test_centroid_rejects_arrays_that_are_not_a_spectrum():
    mz, intensity = gaussian_profile([(500.0, 1e5)])
    with pytest.raises(mzforge.InvalidInputError, match="m/z array has .* but intensity array"):
        mzforge.centroid(mz, intensity[:-1])
    with pytest.raises(mzforge.InvalidInputError, match="ascending"):
        mzforge.centroid(mz[::-1], intensity)
    with pytest.raises(mzforge.InvalidInputError, match="not finite"):
        bad = mz.copy()
        bad[3] = np.nan
        mzforge.centroid(bad, intensity)
    with pytest.raises(ValueError, match="1-D"):
        mzforge.centroid(np.zeros((2, 2)), np.zeros((2, 2)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_snr": -1}, "invalid parameter `min_snr`: must be a finite number >= 0"),
        ({"min_snr": float("nan")}, "invalid parameter `min_snr`: must be a finite number >= 0"),
        ({"noise_window": 0}, "invalid parameter `noise_window`: must be a positive number of m/z units"),
        ({"spacing_difference": -1}, "invalid parameter `spacing_difference`: must be >= 0 (0 disables the check)"),
        ({"max_missing": -1}, "invalid parameter `max_missing`: must be >= 0"),
    ],
)
def test_bad_centroid_parameters_raise_with_the_engines_message(kwargs, message):
    mz, intensity = gaussian_profile([(500.0, 1e5)])
    with pytest.raises(mzforge.InvalidParameterError) as info:
        mzforge.centroid(mz, intensity, **kwargs)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_scalars_and_none_are_not_spectra():
    # A scalar became a one-point spectrum (np.ascontiguousarray makes arrays at least 1-D)
    # and None a NaN, reported as "m/z value 0 is not finite".
    with pytest.raises(mzforge.InvalidInputError, match="1-D arrays, not 0-D and 0-D"):
        mzforge.centroid(500.0, 1e5)
    with pytest.raises(mzforge.InvalidInputError, match="1-D arrays, not 0-D and 0-D"):
        mzforge.deconvolve(np.float64(500.0), np.float32(1e5))
    with pytest.raises(TypeError, match="mz must be a 1-D array of numbers, not None"):
        mzforge.centroid(None, [1.0])
    with pytest.raises(TypeError, match="intensity must be a 1-D array of numbers, not None"):
        mzforge.deconvolve([500.0], None)


def test_exception_hierarchy():
    assert issubclass(mzforge.InvalidInputError, mzforge.MzforgeError)
    assert issubclass(mzforge.InvalidInputError, ValueError)
    assert issubclass(mzforge.InputReadError, mzforge.InvalidInputError)
    assert issubclass(mzforge.InputReadError, OSError)
    assert issubclass(mzforge.InvalidParameterError, ValueError)
    assert issubclass(mzforge.OutputError, OSError)
