"""`mzforge.open`: iteration, length, random access (seeking or scanning), arrays."""

from __future__ import annotations

import gzip
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import mzforge

from mzftest import FIXTURES, shared

SIM = FIXTURES / "sim_profile.mzML"


def test_iteration_gives_every_spectrum_with_numpy_arrays():
    with mzforge.open(SIM) as reader:
        spectra = list(reader)
    assert len(spectra) == 20
    assert [s.index for s in spectra] == list(range(20))
    s = spectra[0]
    assert s.native_id == "scan=1" and s.ms_level == 1
    assert s.mz.dtype == np.float64 and s.intensity.dtype == np.float32
    assert len(s) == len(s.mz) == len(s.intensity) > 100
    assert np.all(np.diff(s.mz) > 0)
    assert s.polarity in {"positive", "negative", "unknown"}
    assert s.signal_declared == "profile"
    assert "scan=1" in repr(s)


def test_arrays_are_moved_from_rust_not_copied():
    spectrum = next(iter(mzforge.open(SIM)))
    # The array's memory belongs to the Rust vector it was decoded into.
    assert not spectrum.mz.flags.owndata
    assert type(spectrum.mz.base).__name__ == "PySliceContainer"
    assert type(spectrum.intensity.base).__name__ == "PySliceContainer"


def test_each_iteration_starts_from_the_beginning():
    reader = mzforge.open(SIM)
    first = [s.native_id for s in reader]
    second = [s.native_id for s in reader]
    assert first == second and len(first) == 20


def test_random_access_by_position_and_native_id_on_an_indexed_file():
    reader = mzforge.open(SIM)
    assert len(reader) == 20
    assert reader.indexed
    sequential = list(reader)
    for i in (0, 7, 19, 3):
        s = reader[i]
        assert s.index == i and s.native_id == sequential[i].native_id
        assert np.array_equal(s.mz, sequential[i].mz)
        assert np.array_equal(s.intensity, sequential[i].intensity)
    assert reader[-1].native_id == sequential[-1].native_id
    assert reader["scan=5"].index == 4
    assert reader.native_ids == [s.native_id for s in sequential]
    with pytest.raises(IndexError):
        reader[20]
    with pytest.raises(KeyError):
        reader["scan=999"]
    with pytest.raises(TypeError):
        reader[1.5]


def test_random_access_without_the_files_index(tmp_path):
    # Remove the <indexList>: the reader must find the spectra by scanning the bytes.
    text = SIM.read_text()
    stripped = re.sub(r"</mzML>.*", "</mzML>\n", text, flags=re.S)
    stripped = re.sub(r"<indexedmzML[^>]*>\s*", "", stripped)
    plain = tmp_path / "plain.mzML"
    plain.write_text(stripped)
    reader = mzforge.open(plain)
    assert reader.indexed and len(reader) == 20
    assert reader["scan=12"].index == 11
    assert np.array_equal(reader[11].mz, mzforge.open(SIM)[11].mz)


@pytest.mark.parametrize("left_out", [11, 19], ids=["a middle spectrum", "the last spectrum"])
def test_an_index_that_leaves_spectra_out_is_not_trusted(tmp_path, left_out):
    # Drop one spectrum's <offset> from the file's index: its other offsets are all right, so
    # only the index attributes and what follows the last listed spectrum show the gap.
    text = SIM.read_text()
    entry = re.compile(rf'\s*<offset idRef="scan={left_out + 1}">\d+</offset>')
    holey = tmp_path / "holey.mzML"
    holey.write_text(entry.sub("", text, count=1))
    reader = mzforge.open(holey)
    assert reader.warnings == []
    assert len(reader) == 20 == sum(1 for _ in reader)
    assert reader[left_out].native_id == f"scan={left_out + 1}"
    assert reader[f"scan={left_out + 1}"].index == left_out
    assert np.array_equal(reader[left_out].mz, mzforge.open(SIM)[left_out].mz)
    assert len(reader.warnings) == 1
    assert "index is wrong" in reader.warnings[0] and "holey.mzML" in reader.warnings[0]
    assert mzforge.open(SIM)[0] is not None and mzforge.open(SIM).warnings == []


def test_a_real_file_whose_index_misses_its_last_spectrum():
    # edge/example.mzML: 11 spectra, an index of 10 (and a spectrum count of 2918).
    reader = mzforge.open(shared("edge/example.mzML"))
    ids = [s.native_id for s in reader]
    assert len(ids) == 11 and len(reader) == 11
    assert reader.native_ids == ids
    assert reader[-1].native_id == ids[10] == "controllerType=0 controllerNumber=1 scan=11"
    assert reader[ids[10]].index == 10
    assert any("follows the last one listed" in w for w in reader.warnings), reader.warnings


def test_random_access_on_gzip_scans_sequentially(tmp_path):
    packed = tmp_path / "sim.mzML.gz"
    with open(SIM, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    reader = mzforge.open(packed)
    assert reader.info["gzip"] and not reader.indexed
    assert reader[5].native_id == "scan=6"
    assert reader[2].native_id == "scan=3"  # backwards: reopens
    assert reader["scan=20"].index == 19
    assert len(reader) == 20
    with pytest.raises(KeyError):
        reader["nope"]
    assert np.array_equal(reader[3].mz, mzforge.open(SIM)[3].mz)


def test_mgf_reads_and_counts():
    path = shared("mgf/small.mgf")
    reader = mzforge.open(path)
    assert reader.info["format"] == "mgf"
    n = sum(1 for _ in reader)
    assert len(reader) == n > 0
    last = reader[n - 1]
    assert last.index == n - 1 and last.ms_level == 2 and last.precursor is not None


def test_mgf_entries_listing_several_charges_read_with_an_unknown_charge(tmp_path):
    # Mascot's format allows `CHARGE=2+ and 3+`; the entry is read, its charge unknown.
    entry = "BEGIN IONS\nTITLE={}\nPEPMASS=500.25\nCHARGE={}\n100.1 10\n200.2 20\nEND IONS\n"
    path = tmp_path / "charges.mgf"
    path.write_text(entry.format("a", "2+ and 3+") + entry.format("b", "3+"))
    reader = mzforge.open(path)
    first, second = list(reader)
    assert first.precursor.charge is None and second.precursor.charge == 3
    assert np.array_equal(first.mz, [100.1, 200.2])
    assert any(
        str(path) in w and "no single precursor charge" in w and "CHARGE=2+ and 3+" in w
        for w in reader.warnings
    ), reader.warnings


def test_precursors_of_msn_spectra():
    reader = mzforge.open(shared("runs/BSA1.mzML"))
    ms2 = next(s for s in reader if s.ms_level == 2)
    assert ms2.precursor is not None and ms2.precursor.mz > 0
    assert "Precursor(" in repr(ms2.precursor)


def test_precursors_name_the_spectrum_they_were_selected_from_as_pyteomics_reads_it():
    from pyteomics import mzml

    path = shared("runs/171103_PMA_TK_QC_04-4to5min.mzML")
    with mzforge.open(path) as reader:
        ours = {s.native_id: s.precursor for s in reader}
    linked = 0
    for t in mzml.read(str(path), decode_binary=False):
        precursors = t.get("precursorList", {}).get("precursor", [])
        expected = precursors[0].get("spectrumRef") if precursors else None
        ours_ref = ours[t["id"]].spectrum_ref if ours[t["id"]] is not None else None
        assert ours_ref == expected, t["id"]
        linked += expected is not None
    assert linked == 381
    # Kept through pickling, as the other fields are.
    ms2 = next(p for p in ours.values() if p is not None)
    import pickle
    assert pickle.loads(pickle.dumps(ms2)).spectrum_ref == ms2.spectrum_ref


def test_closed_reader_refuses_work():
    reader = mzforge.open(SIM)
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        len(reader)
    with pytest.raises(ValueError, match="closed"):
        iter(reader)


def test_closing_the_reader_closes_its_iterators(tmp_path):
    # An iterator has its own open file: close() closes it too, and the iterator then refuses
    # to go on, as a closed file does (it used to read on to the end).
    gz = tmp_path / "sim_profile.mzML.gz"
    gz.write_bytes(gzip.compress(SIM.read_bytes()))
    for path in (SIM, gz):
        with mzforge.open(path) as reader:
            started, exhausted = iter(reader), iter(reader)
            next(started)
            assert len(list(exhausted)) == 20
        with pytest.raises(ValueError, match="closed"):
            next(started)
        with pytest.raises(ValueError, match="closed"):
            next(exhausted)


def test_an_int_too_large_for_64_bits_is_out_of_range_not_a_type_error():
    reader = mzforge.open(SIM)
    for i in (2**64, -(2**70)):
        with pytest.raises(IndexError, match=f"spectrum index {i} out of range \\(20 spectra\\)"):
            reader[i]
    assert reader[np.int64(-1)].index == 19


def test_out_of_range_in_a_file_of_one_spectrum_says_one_spectrum():
    reader = mzforge.open(shared("edge/5B8egg_500ng_30V450ms18msReal_Ramp3_01.mzML_one_scan.gz"))
    with pytest.raises(IndexError, match=r"spectrum index 1 out of range \(1 spectrum\)"):
        reader[1]


def test_paths_may_be_str_path_or_bytes(tmp_path):
    # Bytes, as os.listdir(b".") gives them, also for a name that is not UTF-8.
    odd = tmp_path / os.fsdecode(b"run \xff.mzML")
    shutil.copy(SIM, odd)
    for path in (SIM, str(SIM), bytes(SIM), odd, os.fsencode(odd)):
        assert len(mzforge.open(path)) == 20
        assert mzforge.process(path, deconvolve=False).summary["spectra_written"] == 20
    result = mzforge.process(os.fsencode(odd), out=os.fsencode(tmp_path / "out"))
    # (The engine names the result directory after the input lossily: "run \ufffd".)
    assert result.output.parent == tmp_path / "out" and (result.output / "run.json").is_file()
    with pytest.raises(TypeError, match="not int"):
        mzforge.open(1)


def test_native_ids_of_a_file_that_cannot_seek_keep_repeated_ids(tmp_path):
    # Ids may repeat (MGF titles); native_ids listed only the first of each, "" for the others.
    block = b"BEGIN IONS\nTITLE=same\nPEPMASS=500.0\n100.0 10.0\n200.0 20.0\nEND IONS\n"
    mgf = tmp_path / "repeated.mgf"
    mgf.write_bytes(block * 2 + block.replace(b"same", b"other") + block)
    gz = tmp_path / "repeated.mgf.gz"
    gz.write_bytes(gzip.compress(mgf.read_bytes()))
    for path in (mgf, gz):
        reader = mzforge.open(path)
        assert not reader.indexed
        assert reader.native_ids == ["same", "same", "other", "same"]
        assert [s.native_id for s in reader] == reader.native_ids
        assert reader["same"].index == 0 and reader["other"].index == 2


def test_info_and_repr():
    reader = mzforge.open(SIM)
    assert reader.info["format"] == "mzml"
    assert reader.info["declared_spectrum_count"] == 20
    assert "sim_profile.mzML" in repr(reader)
    assert Path(reader.path) == SIM


def _sim_gzip(tmp_path: Path) -> Path:
    packed = tmp_path / "sim.mzML.gz"
    packed.write_bytes(gzip.compress(SIM.read_bytes()))
    return packed


def test_in_looks_up_native_ids(tmp_path):
    # `in` fell back to iterating: it decoded every spectrum, compared each with the string
    # and answered False for an id that reader[id] finds.
    for path in (SIM, _sim_gzip(tmp_path), shared("mgf/small.mgf")):
        reader = mzforge.open(path)
        last = reader.native_ids[-1]
        assert last in reader
        assert reader[last].native_id == last
        assert "no such id" not in reader
        with pytest.raises(TypeError, match="native id"):
            3 in reader  # noqa: B015 - a position is not what `in` tests


def test_slices_give_lists_of_spectra_in_slice_order(tmp_path):
    for path in (SIM, _sim_gzip(tmp_path)):
        reader = mzforge.open(path)
        ids = reader.native_ids
        for key in (slice(2, 5), slice(None, None, -1), slice(-3, None), slice(15, 2, -4),
                    slice(4, 4), slice(100, 200)):
            spectra = reader[key]
            assert isinstance(spectra, list)
            assert [s.native_id for s in spectra] == ids[key]
            assert [s.index for s in spectra] == list(range(len(ids)))[key]
        assert np.array_equal(reader[3:4][0].mz, reader[3].mz)


def test_lookup_errors_name_the_file():
    # They said only "spectrum index 20 out of range (20 spectra)" and "'scan=999'": in a
    # notebook with several readers open, not which file was meant.
    reader = mzforge.open(SIM)
    with pytest.raises(IndexError, match="spectrum index 20 out of range") as info:
        reader[20]
    assert str(SIM) in str(info.value)
    with pytest.raises(KeyError, match="scan=999") as info:
        reader["scan=999"]
    assert str(SIM) in str(info.value)


def test_a_skipped_spectrum_is_listed_once_however_often_the_file_is_iterated():
    reader = mzforge.open(shared("edge/FileFilter_39_input_corrupt.mzML"))
    for _ in range(3):
        assert list(reader) == []
    assert len(reader.warnings) == 1 and "Numpress" in reader.warnings[0]


def test_a_spectrum_without_retention_time_has_none_not_zero(tmp_path):
    # Scan 21 of tiny.pwiz has an empty <scan>: no scan start time. It used to read as 0 s.
    with mzforge.open(shared("edge/tiny.pwiz.1.1.mzML")) as reader:
        spectra = list(reader)
    assert [s.native_id for s in spectra][2] == "scan=21"
    assert spectra[2].rt_seconds is None
    assert "rt_seconds=None" in repr(spectra[2])
    assert spectra[0].rt_seconds == pytest.approx(5.8905 * 60)
    assert spectra[3].rt_seconds == pytest.approx(42.05)
    assert "rt_seconds=353.430" in repr(spectra[0])
    # The same in the results: a null in spectra.parquet.
    run = mzforge.process(shared("edge/tiny.pwiz.1.1.mzML"))
    table = run.spectra
    assert table.schema.field("rt_seconds").nullable
    rts = dict(zip(table["native_id"].to_pylist(), table["rt_seconds"].to_pylist()))
    assert rts["scan=21"] is None
    assert rts["scan=19"] == pytest.approx(5.8905 * 60)
    # An MGF entry without RTINSECONDS has none either.
    mgf = tmp_path / "two.mgf"
    mgf.write_text(
        "BEGIN IONS\nTITLE=timed\nRTINSECONDS=12.5\nPEPMASS=500.5\n100.0 10.0\nEND IONS\n"
        "BEGIN IONS\nTITLE=untimed\nPEPMASS=500.5\n100.0 10.0\nEND IONS\n"
    )
    with mzforge.open(mgf) as reader:
        timed, untimed = list(reader)
    assert timed.rt_seconds == pytest.approx(12.5)
    assert untimed.rt_seconds is None
