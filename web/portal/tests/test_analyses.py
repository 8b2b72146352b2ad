"""Starting analyses (presets and custom parameters), live status, the detail page, spectra,
plots' data and result downloads."""

import re

import httpx
import pytest
from django.core.exceptions import ValidationError
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


def test_counts_of_one_are_worded_in_the_singular(alice_client, fake_api, alice):
    a = fake_api.add_analysis(alice[1], summary={"spectra_per_level": {"1": 1}, "spectra": 1, "peaks": 1,
                                                 "features": 1, "warnings": []})
    page = alice_client.get(reverse("analysis", args=[a["id"]])).content.decode()
    assert "1 spectrum, 1 peak, 1 feature." in page


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


def test_a_spectrum_without_retention_time_shows_a_dash_not_zero(alice_client, fake_api, alice):
    # The file gave spectrum 2 no retention time: rt_seconds is null, shown as "—".
    a = fake_api.add_analysis(alice[1], _no_rt={2})
    page = alice_client.get(reverse("spectra", args=[a["id"]])).content.decode()
    cells = re.findall(r"<td>scan=(\d)</td><td>\d</td><td>(.*?)</td>", page)
    assert [(scan, re.sub(r"<[^>]+>", "", rt)) for scan, rt in cells] == [
        ("1", "0.00"), ("2", "10.00"), ("3", "—")]
    spectrum = alice_client.get(reverse("spectrum", args=[a["id"], 2])).content.decode()
    assert "RT — (the file gives none)" in spectrum and "RT  s" not in spectrum
    assert "RT 10.00 s" in alice_client.get(reverse("spectrum", args=[a["id"], 1])).content.decode()
    summary = alice_client.get(reverse("analysis_summary", args=[a["id"]])).json()
    assert summary["rt_seconds"] == [0.0, 10.0, None]


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


# --- what a user meets when something is not there ------------------------------------------------


def test_a_missing_spectrum_or_analysis_is_said_on_the_sites_page(alice_client, fake_api, alice):
    a = fake_api.add_analysis(alice[1])
    for url, words in [(reverse("spectrum", args=[a["id"], 7]), "Spectrum 7 not found."),
                       (reverse("analysis", args=[a["id"] + 100]), f"Analysis {a['id'] + 100} not found.")]:
        page = alice_client.get(url)
        text = page.content.decode()
        assert page.status_code == 404, url
        # The API's words on the site's own page (its menu, a way on), not Django's bare "Not Found".
        assert words in text and "It may have been deleted" in text, text
        assert 'href="/analyses/"' in text and "Log out" in text
    # The plot's data is JSON for the page's script, not an HTML page it cannot read.
    missing = alice_client.get(reverse("spectrum_json", args=[a["id"], 7]))
    assert missing.status_code == 404 and "Spectrum 7 not found." in missing.json()["error"]
    gone = alice_client.get(reverse("analysis_status", args=[a["id"] + 100]))
    assert gone.status_code == 404 and "not found" in gone.json()["error"]


def test_an_address_beyond_the_apis_ids_is_not_found_without_asking_the_api(alice_client, fake_api, alice):
    before = len(fake_api.requests)
    for url in ["/analyses/99999999999/", "/analyses/2147483648/spectra/", "/analyses/1/spectra/4294967296/",
                "/uploads/99999999999/delete"]:
        response = alice_client.get(url) if "delete" not in url else alice_client.post(url)
        assert response.status_code == 404, url
        text = response.content.decode()
        assert "There is no page at this address" in text and "Input should be" not in text, url
    assert len(fake_api.requests) == before


def test_the_spectra_list_says_which_rows_it_shows(alice_client, fake_api, alice):
    a = fake_api.add_analysis(alice[1])
    page = alice_client.get(reverse("spectra", args=[a["id"]])).content.decode()
    assert "3 spectra; showing 1–3." in page
    # An address past the end (an old bookmark, an edited offset) shows the last page.
    page = alice_client.get(reverse("spectra", args=[a["id"]]) + "?offset=100").content.decode()
    assert "3 spectra; showing 1–3." in page and "scan=3" in page
    empty = fake_api.add_analysis(alice[1], _indices=[])
    page = alice_client.get(reverse("spectra", args=[empty["id"]])).content.decode()
    assert "No spectra" in page and "showing" not in page


def test_a_spectrum_links_to_its_neighbours_in_the_results(alice_client, fake_api, alice):
    # Spectra 0, 1, 4, 5 (the file's own indices) were left out, say by `ms_levels`.
    a = fake_api.add_analysis(alice[1], _indices=[2, 3, 6])

    def link(index, position):
        return reverse("spectrum", args=[a["id"], index]) + f"?pos={position}"

    listing = alice_client.get(reverse("spectra", args=[a["id"]])).content.decode()
    assert all(link(i, p) in listing for p, i in enumerate([2, 3, 6]))
    middle = alice_client.get(link(3, 1)).content.decode()
    assert "← previous spectrum" in middle and link(2, 0) in middle and link(6, 2) in middle
    assert "(2 of 3)" in middle
    assert reverse("spectrum", args=[a["id"], 4]) not in middle  # index + 1: not in the results
    last = alice_client.get(link(6, 2)).content.decode()
    assert link(3, 1) in last and "next spectrum" not in last
    first = alice_client.get(link(2, 0)).content.decode()
    assert "previous spectrum" not in first and link(3, 1) in first
    # A typed or bookmarked address (no position, or a wrong one) finds the neighbours too.
    for url in [reverse("spectrum", args=[a["id"], 3]), link(3, 7), link(3, 0), link(3, 2), link(3, 10**15),
                reverse("spectrum", args=[a["id"], 3]) + "?pos=x"]:
        page = alice_client.get(url).content.decode()
        assert link(2, 0) in page and link(6, 2) in page, url


def test_pages_of_one_input_of_several_name_the_file(alice_client, fake_api, alice):
    for name in ("a.mzML", "b.mzML"):
        alice_client.post(reverse("upload_file"), {"file": SimpleUploadedFile(name, MZML)})
    first, second = sorted(fake_api.uploads)
    a = fake_api.add_analysis(alice[1], upload_ids=[first, second])
    for url in [reverse("spectra", args=[a["id"]]), reverse("spectrum", args=[a["id"], 0])]:
        page = alice_client.get(url + f"?upload={second}").content.decode()
        assert f"analysis {a['id']}</a>: b.mzML</h1>" in page, url
    single = fake_api.add_analysis(alice[1], upload_ids=[first])
    page = alice_client.get(reverse("spectrum", args=[single["id"], 0])).content.decode()
    assert "a.mzML</h1>" not in page


def test_a_form_sent_again_with_other_settings_starts_nothing_unasked_then_a_new_analysis(
        alice_client, fake_api, upload_id):
    page = alice_client.get(reverse("new_analysis")).content.decode()
    key = form_key(page)
    alice_client.post(reverse("new_analysis"), {"uploads": [upload_id], "preset": "peptides", "request_key": key})
    first = last_analysis(fake_api)
    # The back button, another preset, Start again: the same form (its key) with other settings.
    again = {"uploads": [upload_id], "preset": "metabolomics", "name": "second try", "request_key": key}
    response = alice_client.post(reverse("new_analysis"), again)
    text = response.content.decode()
    assert response.status_code == 200 and len(fake_api.analyses) == 1
    assert f"This form already started analysis {first['id']} with other settings." in text
    assert "Idempotency-Key" not in text
    assert 'value="second try"' in text and 'value="metabolomics" required id="id_preset_2" checked' in text
    # The page carries a new key, so pressing Start again starts the second analysis.
    new_key = form_key(text)
    assert new_key != key
    response = alice_client.post(reverse("new_analysis"), {**again, "request_key": new_key})
    second = last_analysis(fake_api)
    assert second["id"] != first["id"] and response.url == reverse("analysis", args=[second["id"]])
    assert second["params"]["deconvolve"] is False and second["name"] == "second try"


@pytest.mark.parametrize("failure", ["500", "connection"])
def test_an_api_failure_keeps_what_was_typed(alice_client, fake_api, upload_id, monkeypatch, failure):
    monkeypatch.setattr(api, "CREATE_RETRY_SECONDS", 0.0)
    if failure == "500":
        real = fake_api.answer

        def broken(request):
            if request.url.path == "/v1/analyses" and request.method == "POST":
                return httpx.Response(500, text="Internal Server Error")
            return real(request)

        monkeypatch.setattr(fake_api, "answer", broken)
    else:
        fake_api.fail_creates["/v1/analyses"], fake_api.fail_with = api.CREATE_RETRIES + 1, "connection"
    key = form_key(alice_client.get(reverse("new_analysis")).content.decode())
    response = alice_client.post(reverse("new_analysis"), {
        "uploads": [upload_id], "preset": "custom", "name": "overnight run", "p_min_snr": "2.5",
        "p_charge_range": "2-6", "p_deconvolve": "on", "p_signal": "auto", "request_key": key})
    text = response.content.decode()
    assert response.status_code == 502 and not fake_api.analyses
    assert "The analysis was not started." in text and "Your settings are kept below." in text
    assert "Internal Server Error" not in text
    assert 'value="overnight run"' in text and 'value="2.5"' in text and 'value="2-6"' in text
    assert form_key(text) == key  # pressing again is the same request: never two analyses


def test_a_result_without_spectra_says_so_instead_of_empty_charts(alice_client, fake_api, alice):
    alice_client.post(reverse("upload_file"), {"file": SimpleUploadedFile("blank.mzML", MZML)})
    (upload_id,) = fake_api.uploads
    a = fake_api.add_analysis(alice[1], upload_ids=[upload_id], params={"ms_levels": [3]}, summary={
        "spectra_per_level": {}, "spectra": 0, "peaks": 0, "features": 0, "warnings": []})
    page = alice_client.get(reverse("analysis", args=[a["id"]])).content.decode()
    assert "The analysis found no spectra in blank.mzML" in page and "of the MS levels kept (3)" in page
    assert 'id="chart-tic"' not in page and "Browse spectra" not in page
    assert "spectra.parquet" in page  # the (empty) tables still download


def test_the_summary_counts_the_levels_of_the_file_shown(alice_client, fake_api, alice):
    for name in ("a.mzML", "b.mzML"):
        alice_client.post(reverse("upload_file"), {"file": SimpleUploadedFile(name, MZML)})
    first, second = sorted(fake_api.uploads)
    a = fake_api.add_analysis(alice[1], upload_ids=[first, second])
    summary = alice_client.get(reverse("analysis_summary", args=[a["id"]]) + f"?upload={second}").json()
    assert summary["spectra_per_level"] == {"1": 2, "2": 1}
    page = alice_client.get(reverse("analysis", args=[a["id"]]) + f"?upload={second}").content.decode()
    assert "3 spectra, 30 peaks, 4 features in all 2 files." in page and 'data-per-input="1"' in page


def test_typed_lists_mean_what_a_scientist_means():
    levels = ListField(empty_value=[])
    assert levels.clean("1-3") == [1, 2, 3]  # MS levels 1 to 3, not levels 1 and 3
    assert levels.clean("1, 2") == [1, 2] and levels.clean("2 3") == [2, 3] and levels.clean("1,3-4") == [1, 3, 4]
    charges = ListField(empty_value=None, pair=True)
    assert charges.clean("2-6") == [2, 6] and charges.clean("2, 6") == [2, 6] and charges.clean("1 - 60") == [1, 60]
    for field, text, words in [(levels, "-2", "'-2' is not a whole number or a range"),  # was [2]
                               (levels, "3-1", "runs backwards"),
                               (levels, "1.5", "is not a whole number"),
                               (charges, "8-1", "The range 8-1 runs backwards; write the smaller number first, like 1-8."),
                               (charges, "-3-8", "is not a whole number")]:  # was [3, 8]
        with pytest.raises(ValidationError) as refused:
            field.clean(text)
        assert words in refused.value.messages[0], (text, refused.value.messages)


def test_a_backwards_charge_range_is_shown_at_its_field(alice_client, fake_api, upload_id):
    response = alice_client.post(reverse("new_analysis"), {"uploads": [upload_id], "preset": "custom",
                                                           "p_charge_range": "8-1", "p_deconvolve": "on"})
    text = response.content.decode()
    assert "The range 8-1 runs backwards" in text and not fake_api.analyses


def test_files_of_the_same_name_can_be_told_apart_when_choosing(alice_client, fake_api):
    for body in (MZML, MZML + b"<!-- a second run -->"):
        alice_client.post(reverse("upload_file"), {"file": SimpleUploadedFile("sample.mzML", body)})
    alice_client.post(reverse("upload_file"), {"file": SimpleUploadedFile("other.mzML", MZML)})
    first, second, other = sorted(fake_api.uploads)
    page = alice_client.get(reverse("new_analysis")).content.decode()
    labels = re.findall(r'name="uploads" value="(\d+)"[^>]*>\s*([^<]*)</label>', page)
    shown = {int(i): text.strip() for i, text in labels}
    assert shown[first] != shown[second]
    assert shown[first] == f"sample.mzML ({len(MZML)} bytes, uploaded 2026-01-01 00:00 UTC, #{first})"
    assert shown[other] == "other.mzML"


def test_the_list_names_each_analysis_files(alice_client, fake_api, alice):
    for name in ("a.mzML", "b.mzML"):
        alice_client.post(reverse("upload_file"), {"file": SimpleUploadedFile(name, MZML)})
    first, second = sorted(fake_api.uploads)
    fake_api.add_analysis(alice[1], upload_ids=[first, second])
    empty = fake_api.add_analysis(alice[1], upload_ids=[second], summary={
        "spectra_per_level": {}, "spectra": 0, "peaks": 0, "features": 0, "warnings": []})
    alice_client.post(reverse("delete_upload", args=[first]))
    page = alice_client.get(reverse("analyses")).content.decode()
    assert f"<td>upload {first} (deleted), b.mzML</td>" in page
    assert re.search(rf'data-analysis-id="{empty["id"]}">.*?<td>0</td>', page, re.S)  # 0 spectra, not blank


def test_the_apis_refusal_is_shown_at_the_field_it_names(alice_client, fake_api, upload_id):
    response = alice_client.post(reverse("new_analysis"), {"uploads": [upload_id], "preset": "custom",
                                                           "p_min_snr": "-1", "p_signal": "auto"})
    text = response.content.decode()
    field = re.search(r'<div class="field has-error">\s*<label for="id_p_min_snr">.*?</div>', text, re.S)
    assert field and "min_snr must be at least 0" in field[0]


def test_hidden_custom_values_do_not_stop_a_preset(alice_client, fake_api, upload_id):
    # Custom chosen, "1;2" typed, then the Peptides preset after all: the custom fields are hidden.
    response = alice_client.post(reverse("new_analysis"), {"uploads": [upload_id], "preset": "peptides",
                                                           "p_ms_levels": "1;2", "p_max_missing": "x"})
    a = last_analysis(fake_api)
    assert response.status_code == 302 and response.url == reverse("analysis", args=[a["id"]])
    assert a["params"] == {**fake_api_defaults(), **fake_api_presets()["peptides"]}


def fake_api_defaults():
    from .fake_api import PARAMETERS

    return PARAMETERS["defaults"]


def test_a_file_deleted_meanwhile_is_explained(alice_client, fake_api, upload_id):
    alice_client.post(reverse("upload_file"), {"file": SimpleUploadedFile("kept.mzML", MZML)})
    page = alice_client.get(reverse("new_analysis")).content.decode()
    alice_client.post(reverse("delete_upload", args=[upload_id]))  # in another tab
    response = alice_client.post(reverse("new_analysis"), {"uploads": [upload_id], "preset": "peptides",
                                                           "request_key": form_key(page)})
    assert f"file #{upload_id} is not among your files any more" in response.content.decode()
    assert not fake_api.analyses


def test_a_file_that_could_not_be_analysed_among_several_is_named_with_its_reason(alice_client, fake_api, alice):
    for name in ("broken.mzML", "good.mzML"):
        alice_client.post(reverse("upload_file"), {"file": SimpleUploadedFile(name, MZML)})
    broken, good = sorted(fake_api.uploads)
    # The API's summary of a succeeded analysis with an input that failed on its own.
    a = fake_api.add_analysis(alice[1], upload_ids=[broken, good], summary={
        "spectra_per_level": {"1": 2, "2": 1}, "spectra": 3, "peaks": 30, "features": 4, "warnings": [],
        "failed_inputs": [{"upload_id": broken, "filename": "broken.mzML", "error": "Mzforge.BadInput",
                           "cause": "broken.mzML: malformed input in the file header"}]})
    page = alice_client.get(reverse("analysis", args=[a["id"]])).content.decode()
    assert "1 of 2 files could not be analysed; the results below are of the others." in page
    assert "<li>broken.mzML: malformed input in the file header</li>" in page  # the name once
    assert "broken.mzML (not analysed)" in page and "<strong>good.mzML</strong>" in page
    assert "3 spectra, 30 peaks, 4 features in the 1 file analysed." in page
    # Charts and spectra default to the file with results, not to the one without.
    assert reverse("spectra", args=[a["id"]]) + f"?upload={good}" in page
    alice_client.get(reverse("analysis_summary", args=[a["id"]]))
    assert fake_api.requests[-1].url.params["upload_id"] == str(good)
    alice_client.get(reverse("analysis_summary", args=[a["id"]]) + f"?upload={broken}")
    assert fake_api.requests[-1].url.params["upload_id"] == str(good)
    listing = alice_client.get(reverse("analyses")).content.decode()
    assert '<span class="error">1 file not analysed</span>' in listing
