"""End to end in embedded mode, against SQLite and PostgreSQL: upload a real file, analyse it,
fetch every table in every format, a spectrum and its plots; the results equal `mzforge run`."""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from apitest import mzforge_cli, shared
from mzforge.api.sniff import SNIFF_BYTES

PARAMS = {"min_snr": 1.0, "charge_range": [1, 6]}
CLI_FLAGS = ["--min-snr", "1", "--charge-range", "1-6"]


@pytest.fixture(scope="module")
def cli_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    path = shared("profile/three_test_scans.mzML")
    out = tmp_path_factory.mktemp("cli")
    subprocess.run([str(mzforge_cli()), "run", str(path), "--out", str(out), "-q", *CLI_FLAGS],
                   check=True)
    d = out / "three_test_scans"
    tables = {t: pq.read_table(d / f"{t}.parquet") for t in ("spectra", "peaks", "features")}
    tables["run"] = json.loads((d / "run.json").read_text())
    return tables


def test_upload_analyse_fetch_equals_cli(api, cli_result) -> None:
    path = shared("profile/three_test_scans.mzML")
    r = api.upload(path)
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["filename"] == "three_test_scans.mzML"
    assert up["size"] == path.stat().st_size
    assert up["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert up["format"] == "mzml"
    assert api.client.get(f"/v1/uploads/{up['id']}", headers=api.h()).json() == up

    r = api.analyse([up["id"]], PARAMS)
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["status"] in ("queued", "running") and a["backend"] == "local"
    assert a["params"]["min_snr"] == 1.0 and a["params"]["noise_window"] == 200.0
    a = api.wait(a["id"])
    assert a["status"] == "succeeded", a
    run = cli_result["run"]["summary"]
    assert a["summary"]["spectra"] == run["spectra_written"]
    assert a["summary"]["peaks"] == run["peaks_written"]
    assert a["summary"]["features"] == run["features_written"] > 0
    assert a["summary"]["spectra_per_level"] == {str(k): v for k, v in run["spectra_per_level"]}
    assert a["error"] is None and a["result_location"]

    base = f"/v1/analyses/{a['id']}/results"
    for table in ("spectra", "peaks", "features"):
        expected = cli_result[table]
        r = api.client.get(f"{base}/{table}?format=parquet", headers=api.h())
        assert r.status_code == 200
        assert "attachment" in r.headers["content-disposition"]
        got = pq.read_table(io.BytesIO(r.content))
        assert got.column_names == ["upload_id", *expected.column_names]
        assert got["upload_id"].to_pylist() == [up["id"]] * expected.num_rows
        assert got.drop_columns(["upload_id"]).equals(expected), table

        r = api.client.get(f"{base}/{table}?format=csv", headers=api.h())
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        csv = pacsv.read_csv(io.BytesIO(r.content))
        assert csv.num_rows == expected.num_rows
        assert csv["spectrum_index"].to_pylist() == expected["spectrum_index"].to_pylist()

        r = api.client.get(f"{base}/{table}?format=json&limit=7&offset=2", headers=api.h())
        page = r.json()
        assert page["columns"] == ["upload_id", *expected.column_names]
        assert page["total"] == expected.num_rows and page["limit"] == 7 and page["offset"] == 2
        rows = expected.slice(2, 7).to_pylist()
        assert len(page["rows"]) == len(rows)
        for row, exp in zip(page["rows"], rows):
            assert row[1:] == pytest.approx(list(exp.values())) if table != "spectra" else row[2] == exp["native_id"]
    # Downloads are streamed from temporary files that are gone afterwards.
    assert list((api.settings.data_dir / "tmp").glob("result-*")) == []


def test_filters(api, cli_result) -> None:
    up = api.upload(shared("profile/three_test_scans.mzML")).json()
    a = api.wait(api.analyse([up["id"]], PARAMS).json()["id"])
    assert a["status"] == "succeeded"
    base = f"/v1/analyses/{a['id']}/results"
    peaks = cli_result["peaks"]

    page = api.client.get(f"{base}/peaks?spectrum_index=1&limit=10000", headers=api.h()).json()
    idx = page["columns"].index("spectrum_index")
    assert {row[idx] for row in page["rows"]} == {1}
    assert page["total"] == sum(1 for i in peaks["spectrum_index"].to_pylist() if i == 1)

    page = api.client.get(f"{base}/peaks?min_mz=500&max_mz=600&limit=10000", headers=api.h()).json()
    mz = page["columns"].index("mz")
    assert page["total"] == sum(1 for m in peaks["mz"].to_pylist() if 500 <= m <= 600) > 0
    assert all(500 <= row[mz] <= 600 for row in page["rows"])

    spectra = cli_result["spectra"]
    rts = spectra["rt_seconds"].to_pylist()
    cut = sorted(rts)[1]
    keep = {i for i, rt in zip(spectra["spectrum_index"].to_pylist(), rts) if rt >= cut}
    page = api.client.get(f"{base}/peaks?min_rt={cut}&limit=10000", headers=api.h()).json()
    assert page["total"] == sum(1 for i in peaks["spectrum_index"].to_pylist() if i in keep)
    page = api.client.get(f"{base}/spectra?max_rt={cut}", headers=api.h()).json()
    assert page["total"] == sum(1 for rt in rts if rt <= cut)
    # A filter that matches nothing is an empty page, not an error.
    page = api.client.get(f"{base}/features?spectrum_index=999999", headers=api.h()).json()
    assert page["total"] == 0 and page["rows"] == []


def test_spectrum_json_and_plots(api, cli_result) -> None:
    up = api.upload(shared("profile/three_test_scans.mzML")).json()
    a = api.wait(api.analyse([up["id"]], PARAMS).json()["id"])
    peaks = cli_result["peaks"].to_pylist()
    r = api.client.get(f"/v1/analyses/{a['id']}/spectra/0", headers=api.h())
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["index"] == 0 and s["signal"] == "profile" and s["ms_level"] == 1
    assert s["native_id"] == cli_result["spectra"]["native_id"][0].as_py()
    assert s["profile"] is not None and len(s["profile"]["mz"]) == len(s["profile"]["intensity"]) > 100
    mine = [p for p in peaks if p["spectrum_index"] == 0]
    assert s["centroids"]["mz"] == [p["mz"] for p in mine]
    assert s["centroids"]["charge"] == [p["charge"] for p in mine]
    feats = [f for f in cli_result["features"].to_pylist() if f["spectrum_index"] == 0]
    assert [f["envelope_id"] for f in s["features"]] == [f["envelope_id"] for f in feats]

    r = api.client.get(f"/v1/analyses/{a['id']}/spectra/0/plot.svg", headers=api.h())
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in r.content[:2000]
    r = api.client.get(f"/v1/analyses/{a['id']}/spectra/0/plot.png", headers=api.h())
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG\r\n\x1a\n")
    r = api.client.get(f"/v1/analyses/{a['id']}/spectra/99999", headers=api.h())
    assert r.status_code == 404


def test_gzip_and_mgf_uploads_are_sniffed(api) -> None:
    r = api.upload(shared("encodings/small.mzML.gz"))
    assert r.status_code == 201 and r.json()["format"] == "mzml.gz"
    r = api.upload(shared("mgf/small.mgf"))
    assert r.status_code == 201 and r.json()["format"] == "mgf"
    # The name does not decide: an mzML called .txt is still mzML.
    r = api.upload(shared("profile/three_test_scans.mzML"), name="renamed.txt")
    assert r.status_code == 201 and r.json()["format"] == "mzml"
    # An msalign file (deconvolved masses in MGF-like blocks) is not MGF: the engine refuses it.
    r = api.upload(shared("deconvolution/reference_aqpz/toppic_ms2.msalign"), name="masses.mgf")
    assert r.status_code == 415, r.text
    # Said for what it is, with what to upload instead (it said "is not mzML, mzML.gz or MGF").
    assert r.json()["detail"].startswith("upload 'masses.mgf' is an msalign file"), r.text
    assert "upload the mzML or MGF run the masses came from" in r.json()["detail"]


def test_a_bzip2_upload_is_analysed_like_its_gzip_twin(api) -> None:
    summaries = {}
    for name, fmt in (("MzMLFile_6_uncompressed.mzML.bz2", "mzml.bz2"),
                      ("MzMLFile_6_uncompressed.mzML.gz", "mzml.gz")):
        r = api.upload(shared(f"encodings/{name}"))
        assert r.status_code == 201, r.text
        assert r.json()["format"] == fmt
        a = api.wait(api.analyse([r.json()["id"]]).json()["id"])
        assert a["status"] == "succeeded", a
        summaries[fmt] = a["summary"]
    counts = ("spectra", "spectra_per_level", "peaks", "features")
    assert summaries["mzml.bz2"]["spectra"] == 4
    assert {k: summaries["mzml.bz2"][k] for k in counts} == {k: summaries["mzml.gz"][k] for k in counts}


def test_a_bzip2_run_is_analysed_like_the_plain_file(api, cli_result, tmp_path) -> None:
    """A bzip2 run whose first block (the whole file here) is larger than 64 KiB: bzip2 gives no
    text until a block is read whole, so the upload is sniffed from more than the first 64 KiB
    (test_api_sniff.py feeds it in pieces). The analysis, and the spectrum view, which reads the
    profile back from the compressed upload, equal `mzforge run` on the plain file."""
    path = tmp_path / "three_test_scans.mzML.bz2"
    path.write_bytes(bz2.compress(shared("profile/three_test_scans.mzML").read_bytes()))
    assert bz2.BZ2Decompressor().decompress(path.read_bytes()[:SNIFF_BYTES]) == b""  # the premise
    r = api.upload(path)
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["format"] == "mzml.bz2" and up["size"] == path.stat().st_size
    a = api.wait(api.analyse([up["id"]], PARAMS).json()["id"])
    assert a["status"] == "succeeded", a
    run = cli_result["run"]["summary"]
    assert a["summary"]["spectra"] == run["spectra_written"]
    assert a["summary"]["peaks"] == run["peaks_written"]
    assert a["summary"]["features"] == run["features_written"] > 0
    s = api.client.get(f"/v1/analyses/{a['id']}/spectra/0", headers=api.h()).json()
    assert s["signal"] == "profile" and len(s["profile"]["mz"]) > 100
    assert s["centroids"]["mz"] == [p["mz"] for p in cli_result["peaks"].to_pylist() if p["spectrum_index"] == 0]


def test_warnings_of_an_analysis_of_several_files_name_their_file(api) -> None:
    # "the file declares 2918 spectra but holds 11" did not say which file.
    ids = [api.upload(shared("edge/example.mzML")).json()["id"],
           api.upload(shared("mgf/small.mgf")).json()["id"]]
    a = api.wait(api.analyse(ids).json()["id"])
    assert a["status"] == "succeeded", a
    warnings = a["summary"]["warnings"]
    assert any(w.startswith("example.mzML: the file declares") for w in warnings), warnings
    assert all(w.startswith(("example.mzML: ", "small.mgf: ")) for w in warnings), warnings


def test_two_uploads_in_one_analysis(api) -> None:
    a_id = api.upload(shared("profile/three_test_scans.mzML")).json()["id"]
    b_id = api.upload(shared("mgf/small.mgf")).json()["id"]
    a = api.wait(api.analyse([a_id, b_id]).json()["id"])
    assert a["status"] == "succeeded", a
    base = f"/v1/analyses/{a['id']}/results/spectra"
    page = api.client.get(base, headers=api.h()).json()
    assert {row[0] for row in page["rows"]} == {a_id, b_id}
    only_b = api.client.get(f"{base}?upload_id={b_id}", headers=api.h()).json()
    assert {row[0] for row in only_b["rows"]} == {b_id}
    assert page["total"] == a["summary"]["spectra"] == only_b["total"] + (page["total"] - only_b["total"])
    assert api.client.get(f"{base}?upload_id=999", headers=api.h()).status_code == 404


def test_uploads_of_one_name_are_analysed_together(api) -> None:
    # A plate per folder, a well per file: two "A1.mzML" (and an "a1.mgf") were refused in one
    # analysis ("would have the same result directory; analyse them separately"). Each gets a
    # result of its own now, named as the cloud runner names them.
    ids = [api.upload(shared("profile/three_test_scans.mzML"), name="A1.mzML").json()["id"],
           api.upload(shared("edge/example.mzML"), name="A1.mzML").json()["id"],
           api.upload(shared("mgf/small.mgf"), name="a1.mgf").json()["id"]]
    a = api.wait(api.analyse(ids).json()["id"])
    assert a["status"] == "succeeded", a
    results = Path(a["result_location"])
    assert sorted(p.name for p in results.iterdir()) == ["A1", "A1-2", "a1-3"], a["result_location"]
    # Each upload's rows are its own file's.
    base = f"/v1/analyses/{a['id']}/results/spectra"
    counts = [api.client.get(f"{base}?upload_id={i}", headers=api.h()).json()["total"] for i in ids]
    alone = []
    for name in ("profile/three_test_scans.mzML", "edge/example.mzML", "mgf/small.mgf"):
        only = api.wait(api.analyse([api.upload(shared(name)).json()["id"]]).json()["id"])
        alone.append(only["summary"]["spectra"])
    assert counts == alone and len(set(counts)) == 3, (counts, alone)


def test_lists_paging_and_delete(api) -> None:
    ids = [api.upload(shared("mgf/small.mgf")).json()["id"] for _ in range(3)]
    page = api.client.get("/v1/uploads?limit=2&offset=0", headers=api.h()).json()
    assert page["total"] == 3 and [u["id"] for u in page["items"]] == ids[::-1][:2]
    an = [api.analyse([i]).json()["id"] for i in ids[:2]]
    for i in an:
        assert api.wait(i)["status"] == "succeeded"
    page = api.client.get("/v1/analyses?status=succeeded&limit=1", headers=api.h()).json()
    assert page["total"] == 2 and page["items"][0]["id"] == an[1]
    assert api.client.get("/v1/analyses?status=failed", headers=api.h()).json()["total"] == 0
    assert api.client.get("/v1/analyses?status=bogus", headers=api.h()).status_code == 422
    r = api.client.delete(f"/v1/uploads/{ids[2]}", headers=api.h())
    assert r.status_code == 204
    assert api.client.get(f"/v1/uploads/{ids[2]}", headers=api.h()).status_code == 404
    # Cancelling a finished analysis is refused.
    r = api.client.delete(f"/v1/analyses/{an[0]}", headers=api.h())
    assert r.status_code == 409 and "succeeded" in r.json()["detail"]


def test_spectra_without_retention_time_are_null_and_left_out_by_rt_filters(api) -> None:
    # Scan 21 of tiny.pwiz has no scan start time: null, not 0 s, in every table and view.
    up = api.upload(shared("edge/tiny.pwiz.1.1.mzML")).json()
    a = api.wait(api.analyse([up["id"]], PARAMS).json()["id"])
    assert a["status"] == "succeeded", a
    base = f"/v1/analyses/{a['id']}/results"
    page = api.client.get(f"{base}/spectra", headers=api.h()).json()
    rt, nid = page["columns"].index("rt_seconds"), page["columns"].index("native_id")
    rts = {row[nid]: row[rt] for row in page["rows"]}
    assert rts["scan=21"] is None
    assert rts["scan=19"] == pytest.approx(5.8905 * 60)
    timed = {k for k, v in rts.items() if v is not None}
    assert timed and len(timed) == len(rts) - 1
    for query in ("min_rt=0", "max_rt=1e9", "min_rt=-1e9&max_rt=1e9"):
        page = api.client.get(f"{base}/spectra?{query}", headers=api.h()).json()
        assert {row[nid] for row in page["rows"]} == timed, query
    r = api.client.get(f"{base}/spectra?format=parquet", headers=api.h())
    t = pq.read_table(io.BytesIO(r.content))
    assert t.schema.field("rt_seconds").nullable and t["rt_seconds"].null_count == 1
    r = api.client.get(f"{base}/spectra?format=csv", headers=api.h())
    assert r.status_code == 200
    assert pacsv.read_csv(io.BytesIO(r.content))["rt_seconds"].null_count == 1
    # The spectrum view and its plots.
    r = api.client.get(f"/v1/analyses/{a['id']}/spectra/2", headers=api.h())
    assert r.status_code == 200, r.text
    assert r.json()["native_id"] == "scan=21" and r.json()["rt_seconds"] is None
    for ext in ("svg", "png"):
        r = api.client.get(f"/v1/analyses/{a['id']}/spectra/2/plot.{ext}", headers=api.h())
        assert r.status_code == 200, r.text
    # The OpenAPI description says what an RT filter does with them.
    params = api.client.get("/openapi.json").json()["paths"][
        "/v1/analyses/{analysis_id}/results/{table}"]["get"]["parameters"]
    described = {p["name"]: p.get("description", "") for p in params}
    assert "without a retention time" in described["min_rt"]
    assert "without a retention time" in described["max_rt"]


def test_a_plot_title_says_when_there_is_no_retention_time() -> None:
    from mzforge.api import plotting

    data = {"native_id": "scan=21", "ms_level": 1, "rt_seconds": None, "profile": None,
            "centroids": {"mz": [], "intensity": [], "charge": [], "envelope_id": []}}
    assert plotting.render(data, "svg").startswith(b"<?xml")


def test_a_plot_of_a_spectrum_without_points_says_so_without_a_warning() -> None:
    import warnings

    from mzforge.api import plotting

    data = {"native_id": "scan=21", "ms_level": 1, "rt_seconds": 1.0, "profile": None,
            "centroids": {"mz": [], "intensity": [], "charge": [], "envelope_id": []}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        svg = plotting.render(data, "svg")
    assert b"no points" in svg
