"""`mzforge.deconvolve` on numpy arrays: the envelopes `mzforge run` writes for the same
centroids, the command line's parameter checks, clear errors for arrays that are no spectrum."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import mzforge

from mzftest import FIXTURES, run_cli, shared

FEATURE_COLUMNS = [
    "neutral_mass", "mz", "charge", "intensity", "score", "n_peaks", "most_abundant_mass",
    "average_mass",
]

# (file, `mzforge run` flags, the same settings as keywords): peptides with the automatic
# charge range, and intact proteins with an explicit high range and a looser fit.
PARITY = [
    ("deconvolution/FLASHDeconv_sample_input.mzML", [], {}),
    ("deconvolution/Averaged_221110_UbiqOnly.mzML", ["--charge-range", "2-30", "--min-fit", "0.7"],
     {"charge_range": (2, 30), "min_fit": 0.7}),
    ("deconvolution/slicedTDYeast.mzML", ["--tolerance-ppm", "5"], {"tolerance_ppm": 5.0}),
]


def cli_tables(path, out, flags):
    done = run_cli("run", path, "--out", out, "--quiet", *flags)
    assert done.returncode == 0, done.stderr
    (written,) = out.iterdir()
    return {name: pq.read_table(written / f"{name}.parquet")
            for name in ("spectra", "peaks", "features")}


def rows_of(table, spectrum_index):
    return table.filter(pc.equal(table["spectrum_index"], spectrum_index))


@pytest.mark.parametrize(("rel", "flags", "kwargs"), PARITY, ids=[p[0].split("/")[1] for p in PARITY])
def test_envelopes_equal_the_command_lines_features(tmp_path, rel, flags, kwargs):
    tables = cli_tables(shared(rel), tmp_path, flags)
    spectra = tables["spectra"].to_pylist()
    compared = envelopes = 0
    for spectrum in spectra:
        i = spectrum["spectrum_index"]
        peaks = rows_of(tables["peaks"], i)
        features = rows_of(tables["features"], i)
        result = mzforge.deconvolve(
            peaks["mz"].to_numpy(), peaks["intensity"].to_numpy(),
            polarity=spectrum["polarity"], **kwargs,
        )
        assert len(result) == features.num_rows == spectrum["n_features"]
        for name in FEATURE_COLUMNS:
            # Exact: the same engine on the same centroids.
            np.testing.assert_array_equal(getattr(result, name), features[name].to_numpy(), name)
        first = features["envelope_id"][0].as_py() if features.num_rows else 0
        np.testing.assert_array_equal(result.envelope_id + first, features["envelope_id"])
        np.testing.assert_array_equal(result.peak_charge, pc.fill_null(peaks["charge"], 0))
        expected_ids = pc.fill_null(pc.subtract(peaks["envelope_id"].cast(pa.int64()), first), -1)
        np.testing.assert_array_equal(result.peak_envelope_id, expected_ids)
        compared += 1
        envelopes += len(result)
        if features.num_rows:
            assert result.to_arrow().schema.equals(
                features.drop_columns(["spectrum_index"]).schema, check_metadata=False
            )
    assert compared == len(spectra) > 0
    assert envelopes > 10, "the file must exercise the deconvolver"


DEISOTOPER = "deconvolution/Deisotoper_test_in.mzML"  # one MS1 spectrum, charges 1 to 7


def test_process_results_give_the_same_deconvolution_per_spectrum():
    run = mzforge.process(shared(DEISOTOPER))
    (i,) = run.spectra["spectrum_index"].to_pylist()
    from_run = run.deconvolution(i)
    direct = mzforge.deconvolve(from_run.peak_mz, from_run.peak_intensity)
    assert len(direct) == run.spectra["n_features"][0].as_py() > 100
    for name in ["envelope_id", *FEATURE_COLUMNS, "peak_charge", "peak_envelope_id"]:
        np.testing.assert_array_equal(getattr(direct, name), getattr(from_run, name), name)


def test_a_spectrum_the_result_does_not_hold_is_an_index_error_not_an_empty_result():
    run = mzforge.process(FIXTURES / "sim_envelopes.mzML", ms_levels=[1])
    held = run.spectra["spectrum_index"].to_pylist()
    assert len(run.deconvolution(held[-1]).peak_mz) > 0
    for missing in (max(held) + 1, 10**6, -1):
        with pytest.raises(IndexError, match=f"spectrum_index {missing} is not in this result"):
            run.deconvolution(missing)
    assert len(run.deconvolution(np.int64(held[0])).peak_mz) > 0
    with pytest.raises(TypeError, match="must be an int"):
        run.deconvolution("0")


MERGED_SCAN = "edge/5B8egg_500ng_30V450ms18msReal_Ramp3_01.mzML_one_scan.gz"  # 743k points


def test_a_dense_spectrum_gives_the_same_envelopes_on_every_thread():
    # A merged timsTOF scan: 356k centroids, searched charge by charge on a pool of `threads`.
    (spectrum,) = mzforge.open(shared(MERGED_SCAN))
    kept = spectrum.intensity > 0
    mz, intensity = spectrum.mz[kept], spectrum.intensity[kept]
    assert len(mz) > 50_000
    one = mzforge.deconvolve(mz, intensity, threads=1)
    two = mzforge.deconvolve(mz, intensity, threads=2)
    assert len(one) > 1000
    for name in ["envelope_id", *FEATURE_COLUMNS, "peak_charge", "peak_envelope_id"]:
        np.testing.assert_array_equal(getattr(two, name), getattr(one, name), name)


def peptide_centroids():
    """The centroids `mzforge.process` finds in the Deisotoper test spectrum."""
    d = mzforge.process(shared(DEISOTOPER)).deconvolution(0)
    return d.peak_mz, d.peak_intensity


def test_result_columns_types_and_tables():
    mz, intensity = peptide_centroids()
    result = mzforge.deconvolve(mz, intensity)
    assert len(result) > 100
    assert result.neutral_mass.dtype == np.float64 and result.charge.dtype == np.int32
    assert result.n_peaks.dtype == np.uint32 and result.envelope_id.dtype == np.uint32
    np.testing.assert_array_equal(result.envelope_id, np.arange(len(result)))
    assert (result.charge > 0).all() and (result.score >= 0.8).all()
    # The peaks' charges are those of their envelopes.
    inside = result.peak_envelope_id >= 0
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(
        result.peak_charge[inside], result.charge[result.peak_envelope_id[inside]]
    )
    assert (result.peak_charge[~inside] == 0).all()
    features = result.to_arrow()
    assert features.column_names == ["envelope_id", *FEATURE_COLUMNS]
    assert features.schema.field("envelope_id").type == pa.uint32()
    assert features.schema.field("charge").type == pa.int32()
    assert features["neutral_mass"].to_pylist() == result.neutral_mass.tolist()
    peaks = result.peaks_to_arrow()
    assert peaks.column_names == ["mz", "intensity", "charge", "envelope_id"]
    assert peaks["charge"].null_count == int((~inside).sum())
    assert "envelopes" in repr(result)


def test_negative_polarity_fits_deprotonated_ions():
    mz, intensity = peptide_centroids()
    positive = mzforge.deconvolve(mz, intensity, charge_range=(1, 8))
    negative = mzforge.deconvolve(mz, intensity, charge_range=(1, 8), polarity="negative")
    assert len(negative) > 0 and (negative.charge < 0).all()
    # The best envelope is the same peaks read as [M - zH]z- instead of [M + zH]z+.
    z = positive.charge[0]
    assert negative.charge[0] == -z
    assert negative.mz[0] == pytest.approx(positive.mz[0], abs=1e-6)
    assert negative.neutral_mass[0] - positive.neutral_mass[0] == pytest.approx(
        2 * z * 1.007276467, abs=1e-5
    )
    unknown = mzforge.deconvolve(mz, intensity, charge_range=(1, 8), polarity="unknown")
    np.testing.assert_array_equal(unknown.neutral_mass, positive.neutral_mass)


def test_takes_lists_and_other_dtypes_and_empty_arrays():
    mz, intensity = peptide_centroids()
    a = mzforge.deconvolve(list(mz), intensity.astype(np.float64))
    b = mzforge.deconvolve(mz, intensity)
    np.testing.assert_array_equal(a.neutral_mass, b.neutral_mass)
    empty = mzforge.deconvolve([], [])
    assert len(empty) == 0 and len(empty.peak_charge) == 0


def test_arrays_that_are_no_spectrum_raise_invalid_input():
    mz, intensity = peptide_centroids()
    with pytest.raises(mzforge.InvalidInputError, match="m/z array has .* but intensity array"):
        mzforge.deconvolve(mz, intensity[:-1])
    with pytest.raises(mzforge.InvalidInputError, match="ascending"):
        mzforge.deconvolve(mz[::-1], intensity[::-1])
    bad = intensity.copy()
    bad[5] = np.nan
    with pytest.raises(mzforge.InvalidInputError, match="intensity value 5 is not finite"):
        mzforge.deconvolve(mz, bad)
    bad = mz.copy()
    bad[2] = np.inf
    with pytest.raises(mzforge.InvalidInputError, match="m/z value 2 is not finite"):
        mzforge.deconvolve(bad, intensity)
    with pytest.raises(ValueError, match="1-D"):
        mzforge.deconvolve(np.zeros((2, 2)), np.zeros((2, 2)))


def cli_error(*flags) -> str:
    done = run_cli("run", FIXTURES / "sim_profile.mzML", "--out", "/nonexistent/never-written",
                   "--quiet", *flags)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, done.stderr
    return lines[0].removeprefix("error: ")


@pytest.mark.parametrize(
    ("kwargs", "flags"),
    [
        ({"charge_range": (0, 5)}, ["--charge-range", "0-5"]),
        ({"charge_range": (6, 2)}, ["--charge-range", "6-2"]),
        ({"charge_range": (1, 300)}, ["--charge-range", "1-300"]),
        ({"tolerance_ppm": 0}, ["--tolerance-ppm", "0"]),
        ({"tolerance_ppm": float("nan")}, ["--tolerance-ppm", "NaN"]),
        ({"min_fit": 1.5}, ["--min-fit", "1.5"]),
    ],
)
def test_bad_parameters_raise_with_the_command_lines_message(kwargs, flags):
    mz, intensity = np.array([500.0, 500.5]), np.array([1.0, 1.0], dtype=np.float32)
    with pytest.raises(mzforge.InvalidParameterError) as info:
        mzforge.deconvolve(mz, intensity, **kwargs)
    assert isinstance(info.value, ValueError)
    # The command line's reason, each side naming what it was given: the keyword, the flag.
    (keyword,) = kwargs
    cli = cli_error(*flags)
    assert cli.startswith(f"invalid {flags[0]}: "), cli
    assert str(info.value) == f"invalid parameter `{keyword}`: " + cli.removeprefix(f"invalid {flags[0]}: ")


def test_bad_choices_raise_invalid_parameter():
    mz, intensity = np.array([500.0, 500.5]), np.array([1.0, 1.0], dtype=np.float32)
    with pytest.raises(mzforge.InvalidParameterError, match="`isotope_model`: must be one of"):
        mzforge.deconvolve(mz, intensity, isotope_model="protein")
    with pytest.raises(mzforge.InvalidParameterError, match="`polarity`: must be one of"):
        mzforge.deconvolve(mz, intensity, polarity="both")
    with pytest.raises(mzforge.InvalidParameterError, match="`charge_range`: charges must be >= 0"):
        mzforge.deconvolve(mz, intensity, charge_range=(-1, 4))
    with pytest.raises(TypeError):
        mzforge.deconvolve(mz, intensity, min_snr=3)  # a centroiding setting: not here
