"""`mzforge run --mzml`: the centroided mzML reads back in OpenMS (pyopenms) and pyteomics with
exactly the peaks of `peaks.parquet`, and breaks the mzML 1.1 schema in no way of its own.

The inputs are the ones that once broke the read-back: empty spectra (OpenMS refused a zlib
stream of no bytes and stopped loading the file) and MGF (no instrument configuration, no
source file, titles as spectrum ids), beside the bundled fixtures and a whole DDA run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mzftest import FIXTURES, require, run_cli, shared

oms = require("pyopenms")
lxml_etree = require("lxml.etree")
pyteomics_mzml = require("pyteomics.mzml")
psims = require("psims")

# What mzdata's mzML writer (which mzforge uses) does against the schema, whatever the input:
# `<run id="1">` (an xs:ID cannot start with a digit), an empty `<precursorList>` on spectra
# without precursors and an empty `<selectedIonList>` on precursors without selected ions, an
# empty `<componentList>` for an instrument configuration without components, and
# `<softwareRef ref="">` for one that names no software. Anything else is a failure.
MZDATA_WRITER_DEVIATIONS = [
    re.compile(p)
    for p in (
        r"Element '\{[^}]*\}run', attribute 'id': '1' is not a valid value of the atomic type 'xs:ID'",
        r"Element '\{[^}]*\}precursorList': Missing child element\(s\)",
        r"Element '\{[^}]*\}selectedIonList': Missing child element\(s\)",
        r"Element '\{[^}]*\}componentList': Missing child element\(s\)",
        r"Element '\{[^}]*\}softwareRef', attribute 'ref': '' is not a valid value",
    )
]

# Each input, and whether pyteomics reads it back too: it takes 20-30 ms per spectrum (about
# a minute for the DDA run, 30 s for the DIA one), so the two runs are read by OpenMS alone.
INPUTS = {
    "fixture profile": (lambda: FIXTURES / "sim_profile.mzML", True),
    "fixture envelopes (charge array)": (lambda: FIXTURES / "sim_envelopes.mzML", True),
    "empty spectrum": (lambda: shared("edge/emptyScan.mzML"), True),
    "MGF": (lambda: shared("mgf/small.mgf"), True),
    "empty spectra in a DIA run": (lambda: shared("runs/OpenSwathWorkflow_21_input.mzML"), False),
    "DDA run": (lambda: shared("runs/BSA1.mzML"), False),
}


@pytest.fixture(scope="module")
def schema():
    xsd = Path(psims.__file__).parent / "validation" / "xsd" / "mzML1.1.2_idx.xsd"
    return lxml_etree.XMLSchema(lxml_etree.parse(str(xsd)))


def run_with_mzml(source: Path, out: Path) -> tuple[Path, list, dict]:
    done = run_cli("run", source, "--out", out, "--mzml", "--quiet", "--json")
    assert done.returncode == 0, done.stderr
    result = Path(json.loads(done.stdout.splitlines()[-1])["output"])
    peaks = pq.read_table(result / "peaks.parquet").to_pandas()
    spectra = pq.read_table(result / "spectra.parquet").to_pandas()
    by_spectrum = {i: group for i, group in peaks.groupby("spectrum_index")}
    expected = []
    for row in spectra.itertuples():
        group = by_spectrum.get(row.spectrum_index)
        mz = np.array([]) if group is None else group["mz"].to_numpy()
        intensity = np.array([], np.float32) if group is None else group["intensity"].to_numpy()
        expected.append((row.native_id, mz, intensity))
    return result / "centroided.mzML", expected, json.loads((result / "run.json").read_text())


@pytest.mark.parametrize("name", list(INPUTS))
def test_the_centroided_mzml_reads_back_with_every_peak(tmp_path, schema, name):
    locate, with_pyteomics = INPUTS[name]
    source = locate()
    mzml, expected, record = run_with_mzml(source, tmp_path)
    assert expected, "the run wrote spectra"

    experiment = oms.MSExperiment()
    oms.MzMLFile().load(str(mzml), experiment)
    assert experiment.getNrSpectra() == len(expected)
    for spectrum, (_, mz, intensity) in zip(experiment, expected):
        got_mz, got_intensity = spectrum.get_peaks()
        np.testing.assert_array_equal(got_mz, mz)
        np.testing.assert_array_equal(got_intensity.astype(np.float32), intensity)
        assert spectrum.getType() == oms.SpectrumSettings.SpectrumType.CENTROID

    is_mgf = source.suffix.lower() == ".mgf"
    for i, (spectrum, (native_id, _, _)) in enumerate(zip(experiment, expected)):
        if is_mgf:
            # MGF titles are no nativeIDs: the position is the id, the title is kept.
            assert spectrum.getNativeID() == f"index={i}"
        else:
            assert spectrum.getNativeID() == native_id

    if with_pyteomics:
        with pyteomics_mzml.MzML(str(mzml)) as reader:
            read = list(reader)
        assert len(read) == len(expected)
        for spectrum, (native_id, mz, intensity) in zip(read, expected):
            np.testing.assert_array_equal(spectrum["m/z array"], mz)
            got_intensity = spectrum["intensity array"].astype(np.float32)
            np.testing.assert_array_equal(got_intensity, intensity)
            if is_mgf:
                assert spectrum["spectrum title"] == native_id

    header = lxml_etree.parse(str(mzml))
    ns = {"m": "http://psi.hupo.org/ms/mzml"}
    run = header.find(".//m:run", ns)
    configurations = header.findall(".//m:instrumentConfiguration", ns)
    assert configurations and run.get("defaultInstrumentConfigurationRef") in {
        c.get("id") for c in configurations
    }
    source_files = header.findall(".//m:sourceFile", ns)
    assert source_files
    if is_mgf:
        assert source_files[0].get("name") == source.name
        formats = {p.get("accession") for p in source_files[0].findall("m:cvParam", ns)}
        assert formats == {"MS:1001062", "MS:1000774"}
    for binary in header.iterfind(".//m:binaryDataArray", ns):
        if binary.get("encodedLength") == "0":
            assert not (binary.find("m:binary", ns).text or "")
    assert record["summary"]["spectra_written"] == len(expected)

    schema.validate(header)
    errors = [e.message for e in schema.error_log]
    ours = [m for m in errors if not any(p.search(m) for p in MZDATA_WRITER_DEVIATIONS)]
    assert ours == [], ours[:5]
