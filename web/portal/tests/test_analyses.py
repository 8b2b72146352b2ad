"""Starting analyses (presets and custom parameters), live status, the detail page, spectra,
plots' data and result downloads."""

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from portal import api
from portal.forms import ListField

from .conftest import form_key

pytestmark = pytest.mark.django_db

MZML = b'<?xml version="1.0"?>\n<mzML xmlns="http://psi.hupo.org/ms/mzml">'


@pytest.fixture
def upload_id(alice_client, fake_api):
    alice_client.post(reverse("upload_file"), {"file": SimpleUploadedFile("run.mzML", MZML)})
    return next(iter(fake_api.uploads))


def last_analysis(fake_api):
    return fake_api.analyses[max(fake_api.analyses)]


def test_form_offers_the_presets_and_the_parameter_help(alice_client, upload_id):
    page = alice_client.get(reverse("new_analysis") + f"?upload={upload_id}").content.decode()
    for text in ["Peptides", "Intact protein", "Metabolomics", "Custom parameters",
                 "Charges to consider, e.g. `1-8` or `1-60` for intact proteins", "run.mzML"]:
        assert text in page
    assert f'value="{upload_id}" id="id_uploads_0" checked' in page


@pytest.mark.parametrize("preset", ["peptides", "intact_protein", "metabolomics"])
def test_a_preset_sends_its_parameters(alice_client, fake_api, upload_id, preset):
    response = alice_client.post(reverse("new_analysis"), {"uploads": [upload_id], "preset": preset, "name": "run 1",
                                                           "p_min_snr": "99"})
    a = last_analysis(fake_api)
    assert response.status_code == 302 and response.url == reverse("analysis", args=[a["id"]])
    sent = fake_api.requests[-1]
    assert sent.url.path == "/v1/analyses"
    import json

    body = json.loads(sent.content)
    assert body == {"upload_ids": [upload_id], "params": fake_api_presets()[preset], "name": "run 1"}


def test_a_form_submitted_twice_starts_one_analysis(alice_client, fake_api, upload_id):
    page = alice_client.get(reverse("new_analysis")).content.decode()
    key = form_key(page)
    form = {"uploads": [upload_id], "preset": "peptides", "request_key": key}
    first = alice_client.post(reverse("new_analysis"), form)
    second = alice_client.post(reverse("new_analysis"), form)  # a double click, a reload
    assert len(fake_api.analyses) == 1
    a = last_analysis(fake_api)
    assert first.url == second.url == reverse("analysis", args=[a["id"]])
    assert [r.headers["Idempotency-Key"] for r in fake_api.requests if r.url.path == "/v1/analyses"] == [key, key]
    # A new form is a new key: a second analysis.
    other = form_key(alice_client.get(reverse("new_analysis")).content.decode())
    assert other != key
    alice_client.post(reverse("new_analysis"), {**form, "request_key": other})
    assert len(fake_api.analyses) == 2


@pytest.mark.parametrize("after_commit", [False, True])
def test_a_lost_answer_is_retried_with_the_same_key(alice_client, fake_api, upload_id, monkeypatch, after_commit):
    monkeypatch.setattr(api, "CREATE_RETRY_SECONDS", 0.0)
    fake_api.fail_creates["/v1/analyses"], fake_api.fail_after_commit = 1, after_commit
    response = alice_client.post(reverse("new_analysis"), {"uploads": [upload_id], "preset": "peptides"})
    assert len(fake_api.analyses) == 1
    a = last_analysis(fake_api)
    assert response.status_code == 302 and response.url == reverse("analysis", args=[a["id"]])
    keys = [r.headers.get("Idempotency-Key") for r in fake_api.requests if r.url.path == "/v1/analyses"]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]
    answers = [r for r in fake_api.responses if r.request.url.path == "/v1/analyses"]
    assert answers[-1].headers.get("Idempotent-Replayed") == ("true" if after_commit else None)


def test_a_lasting_outage_is_reported_not_retried_forever(alice_client, fake_api, upload_id, monkeypatch):
    monkeypatch.setattr(api, "CREATE_RETRY_SECONDS", 0.0)
    fake_api.fail_creates["/v1/analyses"] = api.CREATE_RETRIES + 1
    response = alice_client.post(reverse("new_analysis"), {"uploads": [upload_id], "preset": "peptides"})
    assert response.status_code == 502  # the site's page for an API failure
    assert "database is unavailable" in response.content.decode()
    assert not fake_api.analyses
    assert sum(r.url.path == "/v1/analyses" for r in fake_api.requests) == api.CREATE_RETRIES + 1


def fake_api_presets():
    from .fake_api import PARAMETERS

    return PARAMETERS["presets"]


def test_custom_parameters_are_typed(alice_client, fake_api, upload_id):
    alice_client.post(reverse("new_analysis"), {
        "uploads": [upload_id], "preset": "custom", "p_min_snr": "2.5", "p_charge_range": "1-60",
        "p_ms_levels": "1, 2", "p_signal": "profile", "p_max_missing": "2"})  # deconvolve unticked
    assert last_analysis(fake_api)["params"] == {
        "min_snr": 2.5, "deconvolve": False, "charge_range": [1, 60], "ms_levels": [1, 2], "signal": "profile",
        "max_missing": 2}


def test_custom_parameters_left_empty_take_the_defaults(alice_client, fake_api, upload_id):
    alice_client.post(reverse("new_analysis"), {"uploads": [upload_id], "preset": "custom", "p_deconvolve": "on",
                                                "p_signal": "auto"})
    params = last_analysis(fake_api)["params"]
    assert params["charge_range"] is None and params["ms_levels"] == [] and params["min_snr"] == 0.0
    assert params["deconvolve"] is True and params["max_missing"] == 1


def test_bad_custom_values_are_explained(alice_client, fake_api, upload_id):
    response = alice_client.post(reverse("new_analysis"), {"uploads": [upload_id], "preset": "custom",
                                                           "p_charge_range": "1-2-3", "p_min_snr": "lots"})
    body = response.content.decode()
    assert "Enter a range as two whole numbers" in body and "Enter a number" in body
    assert not fake_api.analyses


def test_the_apis_refusal_is_shown(alice_client, fake_api, upload_id):
    response = alice_client.post(reverse("new_analysis"), {"uploads": [upload_id], "preset": "custom",
                                                           "p_min_snr": "-1", "p_signal": "auto"})
    assert "The analysis could not be started: min_snr must be at least 0" in response.content.decode()


def test_no_file_chosen(alice_client, fake_api, upload_id):
    response = alice_client.post(reverse("new_analysis"), {"preset": "peptides"})
    assert "This field is required" in response.content.decode()
    assert not fake_api.analyses


def test_list_field_parsing():
    field = ListField(empty_value=None, pair=True)
    assert field.clean("1-60") == [1, 60] and field.clean(" 2, 9 ") == [2, 9] and field.clean("") is None
    assert field.prepare_value([1, 8]) == "1-8"
    assert ListField(empty_value=[]).clean("") == []


def test_list_and_live_status(alice_client, fake_api, alice):
    running = fake_api.add_analysis(alice[1], status="running", name="slow one")
    failed = fake_api.add_analysis(alice[1], status="failed", error="input is not mzML: no <mzML> element")
    page = alice_client.get(reverse("analyses")).content.decode()
    assert "slow one" in page and "input is not mzML: no &lt;mzML&gt; element" in page
    assert "status.js" in page
    status = alice_client.get(reverse("analyses_status")).json()["analyses"]
    assert {(s["id"], s["status"], s["finished"]) for s in status} == {(running["id"], "running", False),
                                                                         (failed["id"], "failed", True)}
    fake_api.analyses[running["id"]]["status"] = "succeeded"
    assert alice_client.get(reverse("analysis_status", args=[running["id"]])).json()["status"] == "succeeded"


def test_failed_analysis_says_why(alice_client, fake_api, alice):
    a = fake_api.add_analysis(alice[1], status="failed", error="spectrum 12 could not be decoded (corrupt zlib)")
    page = alice_client.get(reverse("analysis", args=[a["id"]])).content.decode()
    assert "The analysis failed: spectrum 12 could not be decoded (corrupt zlib)" in page
    assert "Browse spectra" not in page
    spectra = alice_client.get(reverse("spectra", args=[a["id"]]))
    assert spectra.status_code == 409 and "is failed" in spectra.content.decode()


def test_running_analysis_can_be_cancelled(alice_client, fake_api, alice):
    a = fake_api.add_analysis(alice[1], status="running")
    page = alice_client.get(reverse("analysis", args=[a["id"]])).content.decode()
    assert "updates by itself" in page
    alice_client.post(reverse("cancel_analysis", args=[a["id"]]))
    assert fake_api.analyses[a["id"]]["status"] == "cancelled"


def test_succeeded_analysis_page_has_charts_and_downloads(alice_client, fake_api, alice):
    a = fake_api.add_analysis(alice[1])
    page = alice_client.get(reverse("analysis", args=[a["id"]])).content.decode()
    assert "3 spectra, 30 peaks, 4 features." in page
    assert 'id="levels-data" type="application/json">{"1": 2, "2": 1}' in page
    for table in ["spectra", "peaks", "features"]:
        for fmt in ["parquet", "csv"]:
            assert reverse("download", args=[a["id"], table, fmt]) in page
    summary = alice_client.get(reverse("analysis_summary", args=[a["id"]])).json()
    assert summary["total"] == 3
    assert summary["spectrum_index"] == [0, 1, 2]
    assert summary["ms_level"] == [1, 2, 1]
    assert summary["tic"] == [1000.0, 2000.0, 3000.0]
    assert summary["n_peaks"] == [10, 20, 30] and summary["n_features"] == [0, 1, 2]


def test_spectrum_browser_and_plot_data(alice_client, fake_api, alice):
    a = fake_api.add_analysis(alice[1])
    page = alice_client.get(reverse("spectra", args=[a["id"]])).content.decode()
    assert "3 spectra" in page and "scan=2" in page
    assert reverse("spectrum", args=[a["id"], 2]) in page
    plot = alice_client.get(reverse("spectrum", args=[a["id"], 0])).content.decode()
    assert 'id="spectrum-canvas"' in plot and "888.1900" in plot
    data = alice_client.get(reverse("spectrum_json", args=[a["id"], 0])).json()
    assert data["centroids"]["charge"] == [2, 2, None]
    missing = alice_client.get(reverse("spectrum_json", args=[a["id"], 7]))
    assert missing.status_code == 404


def test_download_is_streamed_from_the_api_with_the_users_token(alice_client, fake_api, alice):
    a = fake_api.add_analysis(alice[1])
    response = alice_client.get(reverse("download", args=[a["id"], "peaks", "csv"]))
    assert response.status_code == 200 and response.streaming
    assert b"".join(response.streaming_content) == b"spectrum_index,mz\n0,445.12\n"
    assert response["Content-Disposition"] == f'attachment; filename="analysis-{a["id"]}-peaks.csv"'
    assert fake_api.requests[-1].headers["authorization"] == f"Bearer {alice[1]}"
    parquet = alice_client.get(reverse("download", args=[a["id"], "features", "parquet"]))
    assert b"".join(parquet.streaming_content).startswith(b"PAR1")
    assert alice_client.get(f"/analyses/{a['id']}/results/peaks.xlsx").status_code == 404


def test_download_of_an_unfinished_analysis_says_so(alice_client, fake_api, alice):
    a = fake_api.add_analysis(alice[1], status="running")
    response = alice_client.get(reverse("download", args=[a["id"], "peaks", "csv"]))
    assert response.status_code == 409
    assert f"analysis {a['id']} is running" in response.content.decode()


def test_api_down_gives_a_plain_page_and_json(alice_client, fake_api):
    def down(request):
        raise httpx.ConnectError("refused", request=request)

    api.TRANSPORT = httpx.MockTransport(down)
    page = alice_client.get(reverse("analyses"))
    assert page.status_code == 502 and "not reachable right now" in page.content.decode()
    status = alice_client.get(reverse("analyses_status"))
    assert status.status_code == 502 and "not reachable" in status.json()["error"]


def test_an_analysis_of_several_files_shows_one_file_at_a_time(alice_client, fake_api, alice):
    for name in ("a.mzML", "b.mzML"):
        alice_client.post(reverse("upload_file"), {"file": SimpleUploadedFile(name, MZML)})
    first, second = sorted(fake_api.uploads)
    a = fake_api.add_analysis(alice[1], upload_ids=[first, second])
    page = alice_client.get(reverse("analysis", args=[a["id"]]) + f"?upload={second}").content.decode()
    assert "<strong>b.mzML</strong>" in page and f'<a href="?upload={first}">a.mzML</a>' in page
    assert reverse("spectra", args=[a["id"]]) + f"?upload={second}" in page
    alice_client.get(reverse("analysis_summary", args=[a["id"]]) + f"?upload={second}")
    assert fake_api.requests[-1].url.params["upload_id"] == str(second)
    spectra = alice_client.get(reverse("spectra", args=[a["id"]]) + f"?upload={second}").content.decode()
    assert reverse("spectrum", args=[a["id"], 0]) + f"?upload={second}" in spectra
    alice_client.get(reverse("spectrum_json", args=[a["id"], 0]) + f"?upload={second}")
    assert fake_api.requests[-1].url.params["upload_id"] == str(second)
    # An upload that is not an input falls back to the first input.
    alice_client.get(reverse("analysis_summary", args=[a["id"]]) + "?upload=999")
    assert fake_api.requests[-1].url.params["upload_id"] == str(first)


def test_help_texts_are_worded_for_a_form():
    from portal.forms import help_text

    assert help_text({"type": "boolean", "default": True, "help": "Skip charge-state deconvolution",
                      "note": "false is --no-deconvolve"}) == "Untick to skip charge-state deconvolution"
    assert help_text({"type": "integer", "default": 0, "help": "Worker threads", "note": "0: the server's setting"}) \
        == "Worker threads (0: the server's setting)"
    assert help_text({"type": "array[integer]", "default": [], "help": "MS levels to keep",
                      "note": "a JSON list such as [1, 2]; [] keeps all"}) == "MS levels to keep"
    assert help_text({"type": "array[integer, integer] | null", "default": None, "help": "Charges to consider",
                      "note": "a JSON pair [min, max]; null: 1-8, extended to 1-60"}) \
        == "Charges to consider (empty: 1-8, extended to 1-60)"


def test_timestamps_are_shown_plainly():
    from portal.templatetags.portal_extras import when

    assert when("2026-11-28T03:23:23.516718Z") == "2026-11-28 03:23 UTC"
    assert when("2026-11-28T04:23:23+01:00") == "2026-11-28 03:23 UTC"
    assert when("yesterday") == "yesterday" and when(None) == ""


def test_cancelling_a_finished_analysis_says_it_is_too_late(alice_client, fake_api, alice):
    a = fake_api.add_analysis(alice[1], status="succeeded")
    response = alice_client.post(reverse("cancel_analysis", args=[a["id"]]), follow=True)
    assert f"Too late to cancel: analysis {a['id']} is succeeded." in response.content.decode()
    assert fake_api.analyses[a["id"]]["status"] == "succeeded"


def test_the_list_says_when_it_shows_only_the_newest(alice_client, fake_api, alice):
    from portal import views

    for _ in range(views.PAGE + 2):
        fake_api.add_analysis(alice[1])
    page = alice_client.get(reverse("analyses")).content.decode()
    assert f"The newest {views.PAGE} of {views.PAGE + 2} analyses." in page
