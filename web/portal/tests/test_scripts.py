"""The pages' own scripts (portal/static/portal/*.js) in a real browser: each page as the site
renders it (against the fake API), its script added from the static folder, driven by headless
Chromium (Debian's package, through Playwright, as the end-to-end test). Without Chromium the
tests skip, except in CI (env CI set), where they fail."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

pytestmark = pytest.mark.django_db

STATIC = Path(__file__).resolve().parents[1] / "static" / "portal"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


ORIGIN = "http://site.test"


def in_browser(responses: dict[str, tuple[str, str]], path: str, action):
    """Opens `path` in Chromium, answered from `responses` (path with query -> (content type,
    body[, status]): pages the test client rendered, JSON) and the static folder (/static/portal/...), and
    returns `action(page)`; a script error fails the test. The Django responses are made before
    the browser starts (Playwright's event loop and Django's database do not mix)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM} (required in CI)")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    def answer(route):
        url = route.request.url.removeprefix(ORIGIN)
        if url.startswith("/static/portal/"):
            name = url.removeprefix("/static/portal/").split("?")[0]
            return route.fulfill(status=200, content_type="text/javascript", body=(STATIC / name).read_text())
        if url in responses:
            content_type, body, *status = responses[url]
            return route.fulfill(status=status[0] if status else 200, content_type=content_type, body=body)
        return route.fulfill(status=404, content_type="text/plain", body=f"not in the test's responses: {url}")

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route("**/*", answer)
            page.goto(ORIGIN + path)
            result = action(page)
        finally:
            browser.close()
    assert not errors, errors
    return result


def rendered(client, path: str) -> tuple[str, str]:
    response = client.get(path)
    assert response.status_code == 200, path
    return response["Content-Type"], response.content.decode()


FIELDS = ["charge_range", "ms_levels", "min_snr", "deconvolve", "signal"]


def custom_values(page) -> dict:
    return page.evaluate("""names => Object.fromEntries(names.map(n => {
        const e = document.getElementById('id_p_' + n);
        return [n, e.type === 'checkbox' ? e.checked : e.value];
    }))""", FIELDS)


def test_each_preset_starts_from_the_defaults_not_from_the_preset_before(alice_client, fake_api):
    alice_client.post(reverse("upload_file"), {"file": SimpleUploadedFile("run.mzML", b"<mzML>")})
    path = reverse("new_analysis")
    responses = {path: rendered(alice_client, path)}
    # The fake API's presets: peptides {min_snr 1, charge_range 1-8}, intact_protein {charge_range
    # 1-60}, metabolomics {ms_levels 1, deconvolve off, min_snr 3}; defaults: charge_range empty,
    # deconvolve on, min_snr 0, ms_levels empty, signal auto.

    def switch(page):
        seen = {}
        for preset in ["metabolomics", "intact_protein", "custom"]:
            page.check(f"input[name=preset][value={preset}]")
            seen[preset] = custom_values(page)
        seen["custom fields shown"] = page.is_visible("#custom-params")
        return seen

    seen = in_browser(responses, path, switch)
    assert seen["metabolomics"]["deconvolve"] is False and seen["metabolomics"]["ms_levels"] == "1"
    # Intact protein after metabolomics: deconvolution back on, all MS levels, the default S/N.
    assert seen["intact_protein"] == {**seen["intact_protein"], "charge_range": "1-60", "deconvolve": True,
                                      "ms_levels": "", "min_snr": "0"}
    # Custom starts from the last preset chosen: intact protein's values, nothing of metabolomics.
    assert seen["custom"] == seen["intact_protein"]
    assert seen["custom fields shown"]


def test_the_level_chart_of_one_file_of_several_counts_that_file(alice_client, fake_api, alice):
    for name in ("a.mzML", "b.mzML"):
        alice_client.post(reverse("upload_file"), {"file": SimpleUploadedFile(name, b"<mzML>")})
    first, second = sorted(fake_api.uploads)
    # Both files together: 40 MS1 and 60 MS2 spectra; the file shown (the fake's rows): 2 MS1, 1 MS2.
    a = fake_api.add_analysis(alice[1], upload_ids=[first, second], summary={
        "spectra_per_level": {"1": 40, "2": 60}, "spectra": 100, "peaks": 1000, "features": 10, "warnings": []})
    path = reverse("analysis", args=[a["id"]]) + f"?upload={second}"
    summary = reverse("analysis_summary", args=[a["id"]]) + f"?upload={second}"
    responses = {path: rendered(alice_client, path), summary: rendered(alice_client, summary)}

    def charts(page):
        page.wait_for_selector("#analysis[data-charts-ready]")
        return json.loads(page.get_attribute("#chart-levels", "data-levels"))

    assert in_browser(responses, path, charts) == {"1": 2, "2": 1}
    assert "Spectra per MS level in b.mzML" in responses[path][1]
    # One file: the analysis's own counts, drawn at once.
    single = fake_api.add_analysis(alice[1], upload_ids=[first], summary={
        "spectra_per_level": {"1": 40, "2": 60}, "spectra": 100, "peaks": 1000, "features": 10, "warnings": []})
    path = reverse("analysis", args=[single["id"]])
    summary = reverse("analysis_summary", args=[single["id"]])
    responses = {path: rendered(alice_client, path), summary: rendered(alice_client, summary)}
    assert in_browser(responses, path, charts) == {"1": 40, "2": 60}


def test_charts_of_a_long_run_say_they_show_only_its_start(alice_client, fake_api, alice):
    a = fake_api.add_analysis(alice[1])
    path = reverse("analysis", args=[a["id"]])
    summary = {"total": 80_000, "truncated": True, "spectra_per_level": {"1": 3},
               **{c: [0, 1, 2] for c in ("spectrum_index", "ms_level", "rt_seconds", "tic", "n_peaks",
                                         "n_features")}}
    responses = {path: rendered(alice_client, path),
                 reverse("analysis_summary", args=[a["id"]]): ("application/json", json.dumps(summary))}

    def note(page):
        page.wait_for_selector("#analysis[data-charts-ready]")
        return page.inner_text("#charts-truncated") if page.query_selector("#charts-truncated") else None

    assert in_browser(responses, path, note) == "The charts show the first 3 of 80,000 spectra; the downloads hold them all."


def test_the_tic_chart_leaves_out_spectra_without_retention_time(alice_client, fake_api, alice):
    # null rt_seconds (the file gives none) used to be drawn at 0 min (null / 60 is 0 in JS).
    a = fake_api.add_analysis(alice[1])
    path = reverse("analysis", args=[a["id"]])
    summary = {"total": 4, "truncated": False, "spectra_per_level": {"1": 3, "2": 1},
               "spectrum_index": [0, 1, 2, 3], "ms_level": [1, 1, 2, 1], "rt_seconds": [None, 60.0, 90.0, 120.0],
               "tic": [5.0, 6.0, 7.0, 8.0], "n_peaks": [1, 2, 3, 4], "n_features": [0, 1, 0, 1]}
    responses = {path: rendered(alice_client, path),
                 reverse("analysis_summary", args=[a["id"]]): ("application/json", json.dumps(summary))}

    def chart(page):
        page.wait_for_selector("#analysis[data-charts-ready]")
        note = page.query_selector("#charts-no-rt")
        return page.get_attribute("#chart-tic", "data-points"), note.inner_text() if note else None

    assert in_browser(responses, path, chart) == (
        "2", "1 spectrum has no retention time in the file and is left out of the TIC chart.")


def test_the_upload_script_names_the_earlier_copy_of_a_file(alice_client, fake_api, tmp_path):
    """The script shows the site's notice on the file's line. Another file refused here keeps the
    page from reloading, so the line is what the user reads."""
    alice_client.post(reverse("upload_file"), {"file": SimpleUploadedFile("run.mzML", b"<mzML>")})
    path = reverse("uploads")
    responses = {path: rendered(alice_client, path)}
    # The site's own answer to the script's request for the copy.
    answer = alice_client.post(reverse("upload_file"), {"file": SimpleUploadedFile("copy.mzML", b"<mzML>")},
                               HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert answer.status_code == 201
    responses[reverse("upload_file")] = ("application/json", answer.content.decode(), 201)
    (tmp_path / "copy.mzML").write_bytes(b"<mzML>")
    (tmp_path / "notes.txt").write_bytes(b"hello")
    first = min(fake_api.uploads)

    def upload(page):
        page.set_input_files("#id_files", [str(tmp_path / "copy.mzML"), str(tmp_path / "notes.txt")])
        page.click("#upload-button")
        page.wait_for_selector("#upload-progress li.done")
        return page.inner_text("#upload-progress li.done.duplicate .note")

    note = in_browser(responses, path, upload)
    assert note.startswith("uploaded. 'copy.mzML'") and f"same content as 'run.mzML' (#{first}," in note
    assert "you can delete the new copy" in note
