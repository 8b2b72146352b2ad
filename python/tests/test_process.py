"""`mzforge.process` against `mzforge run`: same tables, same result directory."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mzforge

from mzftest import FIXTURES, run_cli, shared

SIM = FIXTURES / "sim_profile.mzML"


def cli_run(path, out, *flags):
    done = run_cli("run", path, "--out", out, "--quiet", *flags)
    assert done.returncode == 0, done.stderr
    return out / mzforge_stem(path)


def mzforge_stem(path):
    name = path.name
    for suffix in (".gz", ".mzML", ".mgf"):
        name = name.removesuffix(suffix)
    return name


CASES = [
    ("fixture", {"min_snr": 3.0}, ["--min-snr", "3"]),
    ("runs/BSA1.mzML", {}, []),
    ("runs/QualityControl_1_in1.mzML.gz", {"ms_levels": [1], "min_intensity": 100.0},
     ["--ms-levels", "1", "--min-intensity", "100"]),
    ("profile/small.mzML", {"noise_window": 50.0, "min_snr": 1.0, "signal": "declared",
                            "charge_range": (1, 4), "tolerance_ppm": 5.0},
     ["--noise-window", "50", "--min-snr", "1", "--signal", "declared",
      "--charge-range", "1-4", "--tolerance-ppm", "5"]),
    ("runs/MS3_nonHierarchical.mzML", {"deconvolve": False}, ["--no-deconvolve"]),
]


def case_path(rel):
    return SIM if rel == "fixture" else shared(rel)


@pytest.mark.parametrize(("rel", "kwargs", "flags"), CASES, ids=[c[0] for c in CASES])
def test_tables_equal_the_command_lines_parquet(tmp_path, rel, kwargs, flags):
    path = case_path(rel)
    result = mzforge.process(path, **kwargs)
    written = cli_run(path, tmp_path, *flags)
    for name in ("spectra", "peaks", "features"):
        expected = pq.read_table(written / f"{name}.parquet")
        ours = getattr(result, name)
        # The parameters are on the table as pyarrow reads it from the file, as on ours (the
        # file's key-value entries alone did not reach pyarrow's schema.metadata).
        assert ours.schema.equals(expected.schema, check_metadata=True), name
        assert ours.equals(expected), name
        meta = pq.read_metadata(written / f"{name}.parquet").metadata
        assert ours.schema.metadata[b"mzforge.params"] == meta[b"mzforge.params"]
    run = json.loads((written / "run.json").read_text())
    assert result.params == run["params"]
    assert result.warnings == run["summary"]["warnings"]
    assert result.summary["spectra_written"] == run["summary"]["spectra_written"]


@pytest.mark.parametrize(("rel", "kwargs", "flags"), CASES[:2], ids=[c[0] for c in CASES[:2]])
def test_out_writes_the_files_mzforge_run_writes(tmp_path, rel, kwargs, flags):
    path = case_path(rel)
    result = mzforge.process(path, out=tmp_path / "py", **kwargs)
    ours = tmp_path / "py" / mzforge_stem(path)
    assert result.output == ours
    theirs = cli_run(path, tmp_path / "cli", *flags)
    assert sorted(p.name for p in ours.iterdir()) == sorted(p.name for p in theirs.iterdir())
    for name in ("spectra.parquet", "peaks.parquet", "features.parquet"):
        a, b = pq.ParquetFile(ours / name), pq.ParquetFile(theirs / name)
        assert a.read().equals(b.read())
        assert a.metadata.metadata == b.metadata.metadata
        assert a.metadata.row_group(0).column(0).compression == "ZSTD"
    run_py = json.loads((ours / "run.json").read_text())
    run_cli_ = json.loads((theirs / "run.json").read_text())
    for record in (run_py, run_cli_):
        record["summary"].pop("elapsed_seconds")
    assert run_py == run_cli_
    # The result's tables are those files.
    assert result.spectra.equals(pq.read_table(ours / "spectra.parquet"))
    assert result.peaks.num_rows == result.summary["peaks_written"]
    assert result.features.num_rows == result.summary["features_written"]


@pytest.mark.parametrize("rel", ["fixture", "runs/BSA1.mzML"])
def test_written_tables_read_the_same_in_pyarrow_polars_and_duckdb(tmp_path, rel):
    import duckdb
    import polars as pl

    written = cli_run(case_path(rel), tmp_path)
    for name in ("spectra", "peaks", "features"):
        path = written / f"{name}.parquet"
        expected = pq.read_table(path)
        assert expected.num_rows > 0, name
        assert pl.read_parquet(path).equals(pl.from_arrow(expected)), name
        # A table in duckdb 1.x, a stream of batches since 2.0; its columns are nullable.
        from_duckdb = duckdb.sql(f"SELECT * FROM read_parquet('{path}')").arrow()
        if not isinstance(from_duckdb, pa.Table):
            from_duckdb = from_duckdb.read_all()
        assert from_duckdb.column_names == expected.column_names, name
        for column in expected.column_names:
            assert from_duckdb.column(column).equals(expected.column(column)), (name, column)


def test_tables_are_handed_to_pyarrow_without_a_copy():
    result = mzforge.process(SIM)
    before = pa.total_allocated_bytes()
    peaks = result.peaks
    spectra = result.spectra
    # pyarrow allocated nothing for the columns: the buffers are Rust's.
    assert pa.total_allocated_bytes() - before < 4096
    assert peaks.num_rows > 1000 and spectra.num_rows == 20
    assert peaks.column("mz").type == pa.float64()


def test_tables_convert_to_pandas():
    result = mzforge.process(SIM, min_snr=3)
    frame = result.peaks.to_pandas()
    assert len(frame) == result.summary["peaks_written"]
    assert list(result.spectra.to_pandas()["native_id"])[:2] == ["scan=1", "scan=2"]


def test_thread_count_does_not_change_results():
    one = mzforge.process(SIM, threads=1, batch_size=3)
    two = mzforge.process(SIM, threads=2)
    assert one.peaks.equals(two.peaks) and one.spectra.equals(two.spectra)
    assert one.params["threads"] == 1


def test_warnings_and_summary():
    result = mzforge.process(shared("edge/example.mzML"))
    assert any("declares 2918 spectra but holds 11" in w for w in result.warnings)
    assert result.summary["spectra_read"] == 11
    assert "11 spectra" in repr(result)


def test_a_run_of_one_spectrum_is_summed_up_in_the_singular():
    result = mzforge.process(shared("edge/5B8egg_500ng_30V450ms18msReal_Ramp3_01.mzML_one_scan.gz"))
    assert result.summary["spectra_written"] == 1
    assert repr(result).startswith("RunResult(1 spectrum, ")
