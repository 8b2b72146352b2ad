"""Ion mobility: `Spectrum.ion_mobility` against pyteomics' reading of the timsTOF run, its
kind and the scan's 1/K0, pickling, and the `ion_mobility` column of the peak table."""

from __future__ import annotations

import base64
import gzip
import pickle

import numpy as np
import pyarrow as pa
from pyteomics import mzml

import mzforge

from mzftest import crafted_mzml, cv, shared

TIMS = "runs/20200204_BU_8B8egg_1ug_uL_7charges_60_min_Slot2-11_1_244.mzML.gz"
ARRAY = "mean inverse reduced ion mobility array"


def test_mobility_arrays_equal_pyteomics_point_for_point():
    path = shared(TIMS)
    with mzforge.open(path) as reader:
        ours = list(reader)
    with gzip.open(path, "rb") as stream:
        theirs = list(mzml.read(stream, use_index=False, decode_binary=True))
    assert len(ours) == len(theirs) == 103
    for s, t in zip(ours, theirs):
        assert s.native_id == t["id"]
        # The file lists points by mobility; mzforge sorts them by m/z (stably).
        order = np.argsort(t["m/z array"], kind="stable")
        assert s.ion_mobility is not None and s.ion_mobility.dtype == np.float64
        assert len(s.ion_mobility) == len(s.mz) == len(order)
        np.testing.assert_array_equal(s.mz, t["m/z array"][order])
        np.testing.assert_array_equal(s.ion_mobility, t[ARRAY][order])
        assert s.ion_mobility_kind == ARRAY
        assert s.ion_mobility_unit == "volt-second per square centimeter"
        # The first scan's 1/K0: on every MS2 scan (the PASEF precursor's), and on merged
        # MS1 frames where the file gives one.
        scan = t["scanList"]["scan"][0].get("inverse reduced ion mobility")
        assert scan is not None or s.ms_level == 1
        if scan is None:
            assert s.scan_ion_mobility is None and s.scan_ion_mobility_kind is None
        else:
            assert s.scan_ion_mobility == float(scan)
            assert s.scan_ion_mobility_kind == "inverse reduced ion mobility"


def test_spectra_without_mobility_have_none_and_mobility_survives_pickling():
    with mzforge.open(shared("runs/BSA1.mzML")) as reader:
        plain = reader[0]
    assert plain.ion_mobility is None and plain.ion_mobility_kind is None
    assert plain.scan_ion_mobility is None and plain.ion_mobility_unit is None
    with mzforge.open(shared(TIMS)) as reader:
        spectrum = reader[1]
    copy = pickle.loads(pickle.dumps(spectrum))
    np.testing.assert_array_equal(copy.ion_mobility, spectrum.ion_mobility)
    for name in ("ion_mobility_kind", "ion_mobility_unit", "scan_ion_mobility",
                 "scan_ion_mobility_kind"):
        assert getattr(copy, name) == getattr(spectrum, name), name
    copy = pickle.loads(pickle.dumps(plain))
    assert copy.ion_mobility is None


def test_peak_table_has_the_mobility_of_centroids_passed_through():
    result = mzforge.process(shared(TIMS), deconvolve=False)
    peaks = result.peaks
    assert peaks.schema.field("ion_mobility").type == pa.float64()
    mobility = peaks.column("ion_mobility")
    assert mobility.null_count == 0 and len(mobility) > 10_000
    values = mobility.to_numpy()
    assert ((values > 0.5) & (values < 2.0)).all()
    spectra = result.spectra
    assert set(spectra.column("ion_mobility_kind").to_pylist()) == {ARRAY}
    assert spectra.column("scan_ion_mobility").type == pa.float64()


def mzml_with_zstd_mobility() -> str:
    """One centroid spectrum of three points whose 1/K0 array says zstd, which mzforge does
    not decode."""

    def array(kind, dtype, compression, data: bytes) -> str:
        text = base64.b64encode(data).decode()
        params = cv(*dtype) + cv(*compression) + cv(*kind)
        return (f'<binaryDataArray encodedLength="{len(text)}">{params}'
                f"<binary>{text}</binary></binaryDataArray>")

    none = ("MS:1000576", "no compression")
    arrays = (
        array(("MS:1000514", "m/z array"), ("MS:1000523", "64-bit float"), none,
              np.array([100.0, 200.0, 300.0]).tobytes())
        + array(("MS:1000515", "intensity array"), ("MS:1000521", "32-bit float"), none,
                np.array([10.0, 50.0, 5.0], dtype=np.float32).tobytes())
        + array(("MS:1003006", ARRAY), ("MS:1000523", "64-bit float"), ("MS:1003780", "zstd"),
                b"\x28\xb5\x2f\xfd not really zstd")
    )
    return crafted_mzml([
        '<spectrum index="0" id="scan=1" defaultArrayLength="3">'
        '<cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="1"/>'
        f'{cv("MS:1000127", "centroid spectrum")}'
        f'<binaryDataArrayList count="3">{arrays}</binaryDataArrayList></spectrum>'
    ])


def test_an_unusable_mobility_array_is_left_out_with_a_warning(tmp_path):
    path = tmp_path / "zstd.mzML"
    path.write_text(mzml_with_zstd_mobility())
    for read in (lambda reader: list(reader)[0], lambda reader: reader[0]):
        with mzforge.open(path) as reader:
            spectrum = read(reader)
            warnings = reader.warnings
        np.testing.assert_array_equal(spectrum.mz, [100.0, 200.0, 300.0])
        np.testing.assert_array_equal(spectrum.intensity, [10.0, 50.0, 5.0])
        assert spectrum.ion_mobility is None and spectrum.ion_mobility_kind is None
        assert len(warnings) == 1, warnings
        for fragment in ("zstd.mzML", "spectrum 0 (scan=1)", "ion mobility array",
                         "left out", "cannot decode"):
            assert fragment in warnings[0], (fragment, warnings[0])
