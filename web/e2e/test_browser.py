"""The real-browser end-to-end test: headless Chromium (Debian's package) driven by Playwright,
against the site under gunicorn and the real analysis API in embedded mode. One person's visit:
sign up, upload a real file, start an analysis, wait for it, open a spectrum plot and zoom,
download results. A screenshot of each step goes to $WEB_ARTIFACTS (default web/test-artifacts/e2e).

Without Chromium or ../shared/data the test skips, except in CI (env CI set), where it fails.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(WEB))
from tryout import Stack  # noqa: E402

DATA = Path(os.environ.get("MZFORGE_SHARED_DATA") or WEB.parent.parent / "shared" / "data")
RUN = DATA / "profile" / "three_test_scans.mzML"  # Q Exactive profile MS1/MS2, charges 2-3, 238 kB
BROKEN = DATA / "edge" / "MzMLFile_3_invalid.mzML"  # mzML whose header the engine cannot parse
BZIP2_RUN = DATA / "encodings" / "MzMLFile_6_uncompressed.mzML.bz2"  # 4 MS1 spectra, bzip2 -9
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("WEB_ARTIFACTS") or WEB / "test-artifacts" / "e2e")
TIMEOUT_MS = 180_000


def need(condition: bool, why: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why} (required in CI)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def stack():
    workdir = Path(tempfile.mkdtemp(prefix="mzforge-web-e2e-"))
    s = Stack(workdir)
    try:
        s.start()
        yield s
    finally:
        s.stop()
        print(f"\ne2e logs: {workdir}/api.log {workdir}/web.log")


@pytest.fixture(scope="module")
def browser():
    need(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def data():
    need(RUN.exists() and BROKEN.exists() and BZIP2_RUN.exists(), f"no real data at {RUN.parent.parent}")


def test_sign_up_upload_analyse_plot_download(data, browser, stack):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in [*ARTIFACTS.glob("*.png"), *ARTIFACTS.glob("*.csv"), *ARTIFACTS.glob("*.parquet")]:
        old.unlink()  # this run's screenshots only
    print(f"\nscreenshots: {ARTIFACTS}")
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    step = iter(range(1, 100))

    def shot(name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{next(step):02d}-{name}.png"), full_page=True)

    # 1. Sign up (the site provisions an API user with its admin token).
    page.goto(stack.web_url + "/")
    page.click("text=Sign up")
    page.fill("#id_email", "scientist@example.org")
    page.fill("#id_password1", "a-long-pass-phrase-42")
    page.fill("#id_password2", "a-long-pass-phrase-42")
    shot("sign-up")
    page.click("button:has-text('Create account')")
    page.wait_for_url("**/uploads/")
    assert "scientist@example.org" in page.inner_text("header")
    shot("signed-up")

    # 2. A file that is not mzML is refused in plain words (checked by the site).
    not_mzml = ARTIFACTS / "notes.mzML"
    not_mzml.write_text("these are my notes, not a spectrum\n")
    page.set_input_files("#id_files", str(not_mzml))
    page.click("#upload-button")
    page.wait_for_selector("#upload-progress li.failed")
    assert "is not mzML" in page.inner_text("#upload-progress")
    assert page.locator("#upload-progress button").count() == 0  # retrying the same bytes cannot help
    shot("upload-refused")

    # 3. Upload the real run with the progress bar. The first attempt reaches the site, which
    #    stores the file through the API, but its answer is lost (the connection is reset before
    #    the page sees it); "Try again" sends the file again with the page's key, and the API
    #    answers with the upload the first attempt made: one file in the list, not two.
    lost: list[int] = []

    def lose_the_answer(route):
        # Chromium hands an intercepted request's form over without the file's bytes (a blob):
        # the page's fields (its key) are kept and the chosen file's bytes put back.
        body = route.request.post_data_buffer
        start = body.index(b"\r\n\r\n", body.index(f'filename="{RUN.name}"'.encode())) + 4
        lost.append(route.fetch(post_data=body[:start] + RUN.read_bytes() + body[start:]).status)
        route.abort("connectionreset")

    page.route("**/uploads/new", lose_the_answer)
    page.set_input_files("#id_files", str(RUN))
    page.click("#upload-button")
    page.wait_for_selector("#upload-progress li.failed button:has-text('Try again')")
    assert "connection was lost" in page.inner_text("#upload-progress")
    assert lost == [201]  # the site had stored it
    shot("upload-interrupted")
    page.unroute("**/uploads/new")
    with page.expect_navigation():
        page.click("#upload-progress button:has-text('Try again')")
    page.wait_for_selector(f"#uploads-table >> text={RUN.name}")
    assert page.locator("#uploads-table tbody tr").count() == 1
    shot("uploaded")

    # 4. Start an analysis with the peptides preset.
    page.click("#uploads-table a:has-text('Analyse')")
    page.wait_for_url("**/analyses/new**")
    page.fill("#id_name", "three scans, peptides")
    page.check("input[name=preset][value=custom]")  # the parameters with the CLI's help texts
    assert page.is_visible("#custom-params")
    assert "m/z tolerance between observed and expected isotope peaks" in page.inner_text("#custom-params")
    shot("custom-parameters")
    page.check("input[name=preset][value=peptides]")
    assert not page.is_visible("#custom-params")
    assert "charge range = 1-8" in page.inner_text("#preset-summary")
    assert page.is_checked(f"input[name=uploads] >> nth=0")
    shot("new-analysis")
    page.click("button:has-text('Start analysis')")
    page.wait_for_url("**/analyses/*/")
    analysis_url = page.url
    shot("started")

    # 5. The page follows the status by itself until the analysis has succeeded.
    page.wait_for_selector(".status-succeeded, .status-failed, .status-cancelled", timeout=TIMEOUT_MS)
    status = page.inner_text("#analysis [data-status]")
    assert status == "succeeded", page.inner_text("main")
    page.wait_for_selector("#analysis[data-charts-ready='1']")
    totals = page.inner_text("#totals")
    assert totals.split()[0].isdigit() and int(totals.split()[0]) == 3, totals
    shot("succeeded-with-charts")

    # 6. The list shows it as succeeded too.
    page.click("header >> text=Analyses")
    assert "succeeded" in page.inner_text("#analyses-table")
    page.goto(analysis_url)

    # 7. Browse spectra, open the first MS1 spectrum's interactive plot, zoom by dragging.
    page.click("text=Browse spectra")
    page.wait_for_selector("#spectra-table")
    shot("spectra")
    page.click("#spectra-table tbody tr >> nth=0 >> a")
    page.wait_for_selector("#spectrum-plot[data-ready='1']")
    canvas = page.locator("#spectrum-canvas")
    x0, x1 = float(canvas.get_attribute("data-x0")), float(canvas.get_attribute("data-x1"))
    legend = page.inner_text("#spectrum-legend")
    assert "z = " in legend, legend  # envelopes coloured by charge
    shot("spectrum")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.5, steps=5)
    page.mouse.up()
    z0, z1 = float(canvas.get_attribute("data-x0")), float(canvas.get_attribute("data-x1"))
    assert x0 < z0 < z1 < x1 and (z1 - z0) < 0.5 * (x1 - x0), (x0, x1, z0, z1)
    shot("spectrum-zoomed")
    canvas.dblclick()
    assert float(canvas.get_attribute("data-x0")) == x0

    # 8. Download results through the site (which streams them from the API with the user's token).
    page.goto(analysis_url)
    with page.expect_download() as dl:
        page.click("a:has-text('peaks.csv')")
    csv_path = ARTIFACTS / dl.value.suggested_filename
    dl.value.save_as(csv_path)
    rows = list(csv.reader(csv_path.read_text().splitlines()))
    assert {"spectrum_index", "mz", "intensity", "charge"} <= set(rows[0]), rows[0]
    assert len(rows) > 10
    with page.expect_download() as dl:
        page.click("a:has-text('features.parquet')")
    parquet_path = ARTIFACTS / dl.value.suggested_filename
    dl.value.save_as(parquet_path)
    assert parquet_path.read_bytes()[:4] == b"PAR1"
    shot("downloaded")

    # 9. A file that looks like mzML but cannot be read: the analysis fails and says why.
    page.click("header >> text=Files")
    page.set_input_files("#id_files", str(BROKEN))
    with page.expect_navigation():
        page.click("#upload-button")
    page.click(f"#uploads-table tr:has-text('{BROKEN.name}') a:has-text('Analyse')")
    page.check("input[name=preset][value=custom]")
    page.select_option("#id_p_on_bad_spectrum", "fail")
    page.click("button:has-text('Start analysis')")
    page.wait_for_url("**/analyses/*/")
    page.wait_for_selector(".status-succeeded, .status-failed, .status-cancelled", timeout=TIMEOUT_MS)
    assert page.inner_text("#analysis [data-status]") == "failed"
    reason = page.inner_text("#analysis .error")
    assert reason.startswith("The analysis failed: ") and "malformed input" in reason, reason
    shot("failed-with-reason")
    page.click("header >> text=Analyses")
    assert "malformed input" in page.inner_text("#analyses-table")
    shot("analyses-list")

    # 10. A bzip2-compressed run passes the page's script, the site's check and the API's.
    page.click("header >> text=Files")
    page.set_input_files("#id_files", str(BZIP2_RUN))
    with page.expect_navigation():
        page.click("#upload-button")
    assert "mzml.bz2" in page.inner_text(f"#uploads-table tr:has-text('{BZIP2_RUN.name}')")
    shot("bzip2-uploaded")

    # 11. Log out; the pages need a login again.
    page.click("button:has-text('Log out')")
    page.goto(analysis_url)
    assert "/accounts/login/" in page.url
    assert not errors, errors
    context.close()
