"""`mzforge run --mzml`: the centroided mzML reads back in OpenMS (pyopenms) and pyteomics with
exactly the peaks of `peaks.parquet`, is valid against the mzML 1.1 schema, and its index
points at each spectrum and chromatogram.

The inputs are the ones that once broke the read-back: empty spectra (OpenMS refused a zlib
stream of no bytes and stopped loading the file) and MGF (no instrument configuration, no
source file, titles as spectrum ids), beside the bundled fixtures and a whole DDA run.
"""

from __future__ import annotations

import hashlib
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
    contents = {p.get("accession") for p in header.findall(".//m:fileContent/m:cvParam", ns)}
    assert "MS:1000128" not in contents, "a centroided file's content is no profile spectra"
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

    assert schema.validate(header), [e.message for e in schema.error_log][:5]
    assert_index_points_at_each_element(mzml.read_bytes(), len(expected))
    if is_mgf:
        # MGF gives no injection times or collision energies; none is stated (mzdata's writer
        # states 0 ms and 0 eV).
        assert b'name="ion injection time"' not in mzml.read_bytes()
        assert b'name="collision energy"' not in mzml.read_bytes()


def assert_index_points_at_each_element(document: bytes, spectra: int) -> None:
    offsets = [
        (kind, id_ref, int(offset))
        for kind, body in re.findall(rb'<index name="(\w+)">(.*?)</index>', document, re.S)
        for id_ref, offset in re.findall(rb'<offset idRef="([^"]*)">(\d+)</offset>', body)
    ]
    assert sum(kind == b"spectrum" for kind, _, _ in offsets) == spectra
    for kind, id_ref, offset in offsets:
        assert document.startswith(b"<%s id=\"%s\"" % (kind, id_ref), offset), (id_ref, offset)
    index_offset = int(re.search(rb"<indexListOffset>(\d+)<", document).group(1))
    assert document.startswith(b"<indexList ", index_offset)
    end = document.index(b"<fileChecksum>") + len(b"<fileChecksum>")
    assert document[end : end + 40].decode() == hashlib.sha1(document[:end]).hexdigest()


# Inputs whose own header breaks the schema, or whose output would through mzforge's options,
# and what the centroided mzML makes of it.
MENDED_HEADERS = {
    # `file://F:/data/Exp01`: a Windows path written as a URI with host `F`.
    "Windows paths as locations": ("edge/tiny.pwiz.1.1.mzML", (), {"file:///F:/data/Exp01"}),
    # A software and a data processing both named `MSFragger`; precursors naming spectra the
    # file does not hold.
    "a repeated id, references outside the file": (
        "edge/noPrecursorScans.mzML",
        (),
        {'<dataProcessing id="MSFragger_2">', 'externalSpectrumID="controllerType=0'},
    ),
    "an id with a colon": ("deconvolution/Averaged_221110_CytoOnly.mzML", (), {'id="id_2"'}),
    "an id with a space": (
        "edge/RawCentriodCidWithMsLevelInRefParamGroup.mzML",
        (),
        {'softwareRef="ChromaTOF_HRT"'},
    ),
    # The run and its sample share an id.
    "a run named as its sample": ("profile/three_test_scans.mzML", (), {'<run id="sample_1_2"'}),
    # An empty `<processingMethod/>`, which mzdata reads as none.
    "a data processing without method": ("edge/MzMLFile_2_minimal.mzML", (), set()),
    # Valid input; leaving the MS1 spectra out leaves each precursor's spectrumRef without
    # its spectrum.
    "precursor spectra left out": (
        "runs/171103_PMA_TK_QC_04-4to5min.mzML",
        ("--ms-levels", "2"),
        {'externalSpectrumID="controllerType=0 controllerNumber=1 scan='},
    ),
}


@pytest.mark.parametrize("name", list(MENDED_HEADERS))
def test_a_header_the_schema_rejects_is_written_valid(tmp_path, schema, name):
    rel, options, expected = MENDED_HEADERS[name]
    source = shared(rel)
    done = run_cli("run", source, "--out", tmp_path, "--mzml", "--quiet", "--json", *options)
    assert done.returncode == 0, done.stderr
    result = Path(json.loads(done.stdout.splitlines()[-1])["output"])
    document = (result / "centroided.mzML").read_bytes()
    assert schema.validate(lxml_etree.fromstring(document)), [
        e.message for e in schema.error_log
    ][:5]
    for text in expected:
        assert text.encode() in document, text
    if options == ("--ms-levels", "2"):
        # The file content names only what the file holds.
        assert b'name="MS1 spectrum"' not in document
        assert b'name="MSn spectrum"' in document
    spectra = pq.read_metadata(result / "spectra.parquet").num_rows
    assert_index_points_at_each_element(document, spectra)
