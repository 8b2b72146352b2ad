"""Uploads: content checks, size limits, spooling to disk and streaming to the API, the form's
key (Idempotency-Key) and retries after transient failures."""

import base64
import bz2
import gzip
import io
import os
import random
import re
from pathlib import Path

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from portal import api
from portal.uploads import ALLOWED_SUFFIXES, SNIFF_BYTES, read_head, sniff_format

from .conftest import form_key

pytestmark = pytest.mark.django_db

MZML = b'<?xml version="1.0" encoding="utf-8"?>\n<indexedmzML xmlns="http://psi.hupo.org/ms/mzml">\n<mzML version="1.1.0">'
MGF = b"# made by a test\nBEGIN IONS\nPEPMASS=445.12\n100.0 5.0\nEND IONS\n"
XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}


def post(client, name, data, **extra):
    return client.post(reverse("upload_file"), {"file": SimpleUploadedFile(name, data)}, **extra)


def bzip2_run() -> bytes:
    """A bzip2-compressed mzML whose first block (the whole file) is larger than 64 KB compressed,
    as every real run's is: bzip2 gives no text before a block has been read to its end."""
    arrays = base64.b64encode(random.Random(5).randbytes(300_000))
    return bz2.compress(MZML + b"<binary>" + arrays + b"</binary></mzML></indexedmzML>\n")


@pytest.mark.parametrize(("name", "data", "fmt"), [
    ("run.mzML", MZML, "mzml"), ("RUN.MZML", MZML, "mzml"), ("run.mzML.gz", gzip.compress(MZML), "mzml.gz"),
    ("spectra.mgf", MGF, "mgf"), ("spectra.MGF.gz", gzip.compress(MGF), "mgf.gz"),
    ("run.mzML.bz2", bz2.compress(MZML), "mzml.bz2"), ("spectra.MGF.BZ2", bz2.compress(MGF), "mgf.bz2"),
    ("run.mzML.bz2", bz2.compress(MZML, compresslevel=1), "mzml.bz2"),
])
def test_sniff_accepts_each_format(name, data, fmt):
    assert sniff_format(name, data) == fmt


@pytest.mark.parametrize(("name", "data", "message"), [
    ("notes.txt", b"hello", "is not an mzML or MGF file"),
    ("run.mzML", b"hello, not xml", "is not mzML"),
    ("run.mzML", b"", "is empty"),
    ("run.mzML.gz", MZML, "ends in .gz but is not gzip-compressed"),
    ("run.mzML.gz", gzip.compress(b"<html></html>"), "holds neither mzML nor MGF"),
    ("run.mzML.gz", gzip.compress(MGF), "its name should end in .mgf.gz"),
    ("x.mgf.gz", gzip.compress(MZML), "its name should end in .mzML.gz"),
    ("run.mzML.gz", b"\x1f\x8b\x08\x00garbage-garbage", "cannot be decompressed"),
    ("run.mzML", bz2.compress(MZML), "holds bzip2-compressed mzML; its name should end in .mzML.bz2"),
    ("run.mzML.gz", bz2.compress(MZML), "its name should end in .mzML.bz2"),
    ("x.mzML.bz2", bz2.compress(MGF), "holds bzip2-compressed MGF; its name should end in .mgf.bz2"),
    ("x.mgf.bz2", gzip.compress(MGF), "its name should end in .mgf.gz"),
    ("run.mzML.bz2", MZML, "ends in .bz2 but is not bzip2-compressed"),
    ("run.mzML.bz2", bz2.compress(b"<html></html>"), "is bzip2-compressed but holds neither mzML nor MGF"),
    ("run.mzML.bz2", b"BZh9" + b"garbage" * 10, "looks bzip2-compressed but cannot be decompressed"),
    # Cut inside its first block: bzip2 gives no text at all (and no error).
    ("run.mzML.bz2", bz2.compress(MZML * 20)[:150], "cannot be decompressed; it may be damaged or cut short"),
    ("x.mgf", b"<mzML>", "holds mzML but its name ends in .mgf"),
    ("x.mzML", MGF, "holds MGF but its name does not end in .mgf"),
    ("x.mgf", b"nothing here", "is not an MGF file"),
])
def test_sniff_rejects_with_plain_words(name, data, message):
    with pytest.raises(ValueError, match=message):
        sniff_format(name, data)


MSALIGN = [b"#TopFD 1.5 msalign\nBEGIN IONS\nID=0\nPRECURSOR_MASS=1000.5\n500.2\t100\t1\nEND IONS\n",
           b"BEGIN IONS\nID=0\nSCANS=1\nMS_ONE_ID=0\nPRECURSOR_MASS=1000.5\nEND IONS\n"]


@pytest.mark.parametrize("data", MSALIGN)
@pytest.mark.parametrize(("suffix", "compress"), [("", bytes), (".gz", gzip.compress), (".bz2", bz2.compress)])
def test_an_msalign_file_is_named_for_what_it_is(alice_client, fake_api, data, suffix, compress):
    """Deconvolved masses in MGF-like blocks: the API refuses them as "not mzML or MGF", which
    someone holding an .mgf file cannot act on; the site says what it is and what to upload."""
    name = "masses_ms2.msalign.mgf" + suffix
    response = post(alice_client, name, compress(data), **XHR)
    assert response.status_code == 415 and not fake_api.uploads
    assert response.json()["error"] == (
        f"'{name}' is an msalign file (deconvolved masses from TopFD or FLASHDeconv), not MGF spectra; "
        "mzforge deconvolves spectra itself: upload the mzML (or MGF) run the masses came from.")
    assert sniff_format("ok.mgf", MGF) == "mgf"  # an MGF with PEPMASS is not msalign


def test_upload_reaches_the_api_byte_for_byte(alice_client, fake_api):
    data = MZML + b"x" * 300_000  # larger than one chunk
    response = post(alice_client, "BSA run.mzML", data, **XHR)
    assert response.status_code == 201
    assert response.json()["upload"]["filename"] == "BSA run.mzML"
    (upload_id, body), = fake_api.upload_bodies.items()
    assert body == data
    page = alice_client.get(reverse("uploads")).content.decode()
    assert "BSA run.mzML" in page


def test_upload_is_spooled_to_a_temporary_file_and_streamed(alice_client, fake_api):
    """The API receives a stream read from a file on disk, not a body built in memory."""
    seen = {}
    inner = fake_api.transport()

    class Inspecting(httpx.BaseTransport):
        def handle_request(self, request):
            if request.url.path == "/v1/uploads" and request.method == "POST":
                # Before anything reads it: httpx's multipart stream holds the open file object
                # and reads it in chunks while sending.
                files = [f.file for f in getattr(request.stream, "fields", []) if hasattr(f, "file")]
                seen["streamed"] = len(files) == 1 and hasattr(files[0], "read")
            return inner.handle_request(request)

    api.TRANSPORT = Inspecting()
    from django.core.files.uploadhandler import TemporaryFileUploadHandler

    from portal import views

    original = views.api.ApiClient.upload

    def spy(self, filename, fileobj, *args, **kwargs):
        seen["path"] = fileobj.name
        seen["on_disk"] = os.path.isfile(fileobj.name)
        return original(self, filename, fileobj, *args, **kwargs)

    views.api.ApiClient.upload = spy
    try:
        assert post(alice_client, "a.mzML", MZML, **XHR).status_code == 201
    finally:
        views.api.ApiClient.upload = original
    assert seen["on_disk"] is True
    assert seen["streamed"] is True
    assert not os.path.exists(seen["path"])  # the temporary file is gone afterwards
    assert issubclass(__import__("portal.uploads").uploads.LimitedTemporaryFileUploadHandler, TemporaryFileUploadHandler)


def test_mgf_and_gzip_uploads(alice_client, fake_api):
    assert post(alice_client, "s.mgf", MGF, **XHR).status_code == 201
    assert post(alice_client, "r.mzML.gz", gzip.compress(MZML), **XHR).status_code == 201
    assert len(fake_api.upload_bodies) == 2


def test_a_bzip2_upload_is_checked_from_its_whole_first_block_and_sent_byte_for_byte(alice_client, fake_api):
    data = bzip2_run()
    assert len(data) > 2 * SNIFF_BYTES
    with pytest.raises(ValueError, match="cannot be decompressed"):  # the first 64 KB alone: no text
        sniff_format("run.mzML.bz2", data[:SNIFF_BYTES])
    assert sniff_format("run.mzML.bz2", read_head(io.BytesIO(data))) == "mzml.bz2"
    response = post(alice_client, "run.mzML.bz2", data, **XHR)
    assert response.status_code == 201, response.content
    (body,) = fake_api.upload_bodies.values()
    assert body == data


def test_a_damaged_bzip2_upload_is_refused_before_the_api(alice_client, fake_api):
    cut = bzip2_run()[:100_000]
    response = post(alice_client, "run.mzML.bz2", cut, **XHR)
    assert response.status_code == 415
    assert response.json()["error"] == ("'run.mzML.bz2' looks bzip2-compressed but cannot be decompressed; "
                                        "it may be damaged or cut short.")
    assert not fake_api.upload_bodies


def test_the_page_offers_every_accepted_ending(alice_client, fake_api):
    """The file chooser's filter and the page's script (which refuses other names before sending)
    let through every name the site accepts: .bz2 names were refused in the browser."""
    page = alice_client.get(reverse("uploads")).content.decode()
    accept = re.search(r'<input id="id_files"[^>]* accept="([^"]*)"', page).group(1).lower().split(",")
    script = (Path(api.__file__).parent / "static" / "portal" / "upload.js").read_text()
    ok = re.compile(re.search(r"var OK = /(.*)/i;", script).group(1), re.IGNORECASE)
    endings = (".mzml", ".mzml.gz", ".mzml.bz2", ".mgf", ".mgf.gz", ".mgf.bz2")
    assert sorted(ALLOWED_SUFFIXES) == sorted(endings)
    for suffix in endings:
        assert "." + suffix.rsplit(".", 1)[-1] in accept, suffix
        assert ok.search("run" + suffix.upper()) and ok.search("run" + suffix), suffix
        assert suffix in page.lower(), suffix  # the label names it
    assert not ok.search("run.mzML.xz") and not ok.search("notes.txt")


def test_not_mzml_is_refused_before_the_api(alice_client, fake_api):
    response = post(alice_client, "report.mzML", b"%PDF-1.5 not a spectrum", **XHR)
    assert response.status_code == 415
    assert response.json()["error"] == "'report.mzML' is not mzML: no <mzML> element near its start."
    assert not fake_api.upload_bodies


def test_plain_form_post_shows_the_error_as_a_message(alice_client, fake_api):
    response = post(alice_client, "notes.txt", b"hello", follow=True)
    assert "is not an mzML or MGF file" in response.content.decode()


def test_too_large_is_refused(alice_client, fake_api, settings):
    settings.MZFORGE_MAX_UPLOAD_BYTES = 1000
    response = post(alice_client, "big.mzML", MZML + b" " * 5000, **XHR)
    assert response.status_code == 413
    assert "too large" in response.json()["error"] and "1000 bytes" in response.json()["error"]
    assert not fake_api.upload_bodies


def test_too_large_is_caught_by_counting_bytes_as_they_arrive(alice_client, fake_api, settings):
    """A body just under the early Content-Length check: the upload handler stops the file."""
    settings.MZFORGE_MAX_UPLOAD_BYTES = 100_000
    response = post(alice_client, "b.mzML", MZML + b" " * 150_000, **XHR)
    assert response.status_code == 413
    # The handler's message (the file never completes), not the later whole-file size check's.
    assert response.json()["error"] == "The file is too large: the limit is 97.7 KB per file."
    assert not fake_api.upload_bodies


def test_no_file(alice_client, fake_api):
    response = alice_client.post(reverse("upload_file"), {}, **XHR)
    assert response.status_code == 400 and "No file was sent" in response.json()["error"]


def test_api_refusal_is_passed_on_in_plain_words(alice_client, fake_api):
    def refuse(request):
        raise AssertionError("unreachable")

    import httpx

    from portal import api

    api.TRANSPORT = httpx.MockTransport(lambda r: httpx.Response(413, json={"detail": "upload 'a.mzML' is larger than 2 GB"}))
    response = post(alice_client, "a.mzML", MZML, **XHR)
    assert response.status_code == 413
    assert response.json()["error"] == "upload 'a.mzML' is larger than 2 GB"


def test_delete_upload(alice_client, fake_api):
    post(alice_client, "a.mzML", MZML, **XHR)
    (upload_id,) = fake_api.uploads
    response = alice_client.post(reverse("delete_upload", args=[upload_id]), follow=True)
    assert "File deleted" in response.content.decode()
    assert not fake_api.uploads


# --- the form's key and retries -----------------------------------------------------------------


@pytest.fixture
def no_retry_wait(monkeypatch):
    monkeypatch.setattr(api, "CREATE_RETRY_SECONDS", 0.0)


def page_key(client) -> str:
    return form_key(client.get(reverse("uploads")).content.decode())


def upload_requests(fake_api) -> list[httpx.Request]:
    return [r for r in fake_api.requests if r.url.path == "/v1/uploads" and r.method == "POST"]


def post_keyed(client, key, name, data, **extra):
    return client.post(reverse("upload_file"), {"request_key": key, "file": SimpleUploadedFile(name, data)},
                       **XHR, **extra)


def test_the_upload_form_carries_a_key_of_its_own(alice_client, fake_api):
    page = alice_client.get(reverse("uploads")).content.decode()
    form = page[page.index('<form id="upload-form"'):]
    form = form[:form.index("</form>")]
    assert form_key(form) == form_key(page)
    assert page_key(alice_client) != form_key(page)  # each rendering, its own key
    # The page's script sends it with each file (the end-to-end test runs the script).
    script = (Path(api.__file__).parent / "static" / "portal" / "upload.js").read_text()
    assert 'data.append("request_key", requestKey)' in script


def test_a_file_sent_again_from_the_same_page_is_one_upload(alice_client, fake_api):
    key = page_key(alice_client)
    first = post_keyed(alice_client, key, "run.mzML", MZML)
    again = post_keyed(alice_client, key, "run.mzML", MZML)  # a double click, "Try again"
    assert first.status_code == again.status_code == 201
    assert first.json()["upload"] == again.json()["upload"]
    assert len(fake_api.uploads) == 1
    sent = [r.headers["Idempotency-Key"] for r in upload_requests(fake_api)]
    assert len(sent) == 2 and sent[0] == sent[1]
    # Another file from the same page has a key of its own (another name, or the same name and
    # another size); a new page, new keys.
    assert post_keyed(alice_client, key, "other.mgf", MGF).status_code == 201
    assert post_keyed(alice_client, key, "run.mzML", MZML + b" ").status_code == 201
    assert post_keyed(alice_client, page_key(alice_client), "run.mzML", MZML).status_code == 201
    assert len(fake_api.uploads) == 4
    assert len({r.headers["Idempotency-Key"] for r in upload_requests(fake_api)}) == 4


def test_without_the_forms_key_every_request_has_a_key_of_its_own(alice_client, fake_api):
    post(alice_client, "run.mzML", MZML, **XHR)
    post(alice_client, "run.mzML", MZML, **XHR)
    keys = [r.headers.get("Idempotency-Key") for r in upload_requests(fake_api)]
    assert len(fake_api.uploads) == 2 and all(keys) and keys[0] != keys[1]


def test_an_out_of_date_form_key_is_refused_before_the_api(alice_client, fake_api):
    response = post_keyed(alice_client, "not-a-key", "run.mzML", MZML)
    assert response.status_code == 400 and "Reload it" in response.json()["error"]
    assert not upload_requests(fake_api)


@pytest.mark.parametrize("after_commit", [False, True], ids=["nothing-stored", "answer-lost"])
@pytest.mark.parametrize("fail_with", ["503", "connection"])
def test_a_transient_failure_is_retried_with_the_same_key(alice_client, fake_api, no_retry_wait, fail_with,
                                                          after_commit):
    fake_api.fail_creates["/v1/uploads"] = 1
    fake_api.fail_with, fake_api.fail_after_commit = fail_with, after_commit
    data = MZML + b"y" * 200_000
    response = post_keyed(alice_client, page_key(alice_client), "run.mzML", data)
    assert response.status_code == 201, response.content
    (upload_id, body), = fake_api.upload_bodies.items()
    assert response.json()["upload"]["id"] == upload_id
    assert body == data  # the retry sent the whole file
    keys = [r.headers.get("Idempotency-Key") for r in upload_requests(fake_api)]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]
    # The retry found the upload the lost answer was about, or made the first one.
    last = [r for r in fake_api.responses if r.request.method == "POST"][-1]
    assert last.request.url.path == "/v1/uploads"
    assert last.headers.get("Idempotent-Replayed") == ("true" if after_commit else None)


def test_each_attempt_sends_the_file_from_its_start(alice_client, fake_api, no_retry_wait):
    """The client rewinds the file before each attempt (not relying on httpx to do it)."""
    positions = []
    inner = fake_api.transport()

    class Inspecting(httpx.BaseTransport):
        def handle_request(self, request):
            if request.url.path == "/v1/uploads" and request.method == "POST":
                (file,) = [f.file for f in request.stream.fields if hasattr(f, "file")]
                positions.append(file.tell())  # before anything reads this attempt's body
            return inner.handle_request(request)

    api.TRANSPORT = Inspecting()
    fake_api.fail_creates["/v1/uploads"] = 2  # the fake reads each failed attempt's body whole
    response = post_keyed(alice_client, page_key(alice_client), "run.mzML", MZML)
    assert response.status_code == 201
    assert positions == [0, 0, 0]


@pytest.mark.parametrize(("fail_with", "message"), [
    ("503", "the database is unavailable"), ("connection", "The analysis service is not reachable right now"),
])
def test_a_lasting_outage_is_reported_after_the_retries(alice_client, fake_api, no_retry_wait, fail_with, message):
    fake_api.fail_creates["/v1/uploads"], fake_api.fail_with = api.CREATE_RETRIES + 1, fail_with
    response = post_keyed(alice_client, page_key(alice_client), "run.mzML", MZML)
    assert response.status_code == 502  # the page's script offers "Try again" (status >= 500)
    assert message in response.json()["error"]
    assert not fake_api.uploads
    assert len(upload_requests(fake_api)) == api.CREATE_RETRIES + 1


@pytest.mark.parametrize("status", [413, 415, 422])
def test_a_refusal_is_not_retried_and_is_shown(alice_client, fake_api, no_retry_wait, status):
    detail = f"refused with {status}"
    fake_api.upload_hook = lambda request: httpx.Response(status, json={"detail": detail})
    response = post_keyed(alice_client, page_key(alice_client), "run.mzML", MZML)
    assert response.status_code == status and response.json()["error"] == detail
    assert len(upload_requests(fake_api)) == 1
    # Without the page's script: the message on the files page.
    page = alice_client.post(reverse("upload_file"), {"file": SimpleUploadedFile("run.mzML", MZML)}, follow=True)
    assert detail in page.content.decode()
    assert len(upload_requests(fake_api)) == 2 and not fake_api.uploads


def test_another_file_under_a_taken_key_is_refused_in_plain_words(alice_client, fake_api, no_retry_wait):
    """Same page, same name and size, other bytes: the API refuses the key (422), once."""
    key = page_key(alice_client)
    assert post_keyed(alice_client, key, "run.mzML", MZML + b"a").status_code == 201
    response = post_keyed(alice_client, key, "run.mzML", MZML + b"b")
    assert response.status_code == 422
    assert response.json()["error"] == ("This page has already uploaded another file named 'run.mzML'. "
                                         "Reload the page to upload this one as a new file.")
    assert len(upload_requests(fake_api)) == 2 and len(fake_api.uploads) == 1
    (body,) = fake_api.upload_bodies.values()
    assert body == MZML + b"a"


def test_deleting_names_the_file_and_a_second_click_is_explained(alice_client, fake_api):
    post(alice_client, "run 1.mzML", MZML, **XHR)
    (upload_id,) = fake_api.uploads
    first = alice_client.post(reverse("delete_upload", args=[upload_id]), follow=True)
    assert "File deleted: &#x27;run 1.mzML&#x27;." in first.content.decode()
    # A double click or the back button: the second request finds nothing to delete.
    second = alice_client.post(reverse("delete_upload", args=[upload_id]))
    text = second.content.decode()
    assert second.status_code == 404 and "it may have been deleted already" in text
    assert f'href="{reverse("uploads")}">Your files</a>' in text


def test_a_file_an_analysis_is_using_is_not_deleted_and_the_page_says_why(alice_client, fake_api, alice):
    post(alice_client, "busy.mzML", MZML, **XHR)
    (upload_id,) = fake_api.uploads
    running = fake_api.add_analysis(alice[1], status="running", upload_ids=[upload_id])
    response = alice_client.post(reverse("delete_upload", args=[upload_id]))
    # Back on the files page (a reload there sends nothing again), with the reason and what to do.
    assert response.status_code == 302 and response.url == reverse("uploads")
    page = alice_client.get(response.url).content.decode()
    assert (f"&#x27;busy.mzML&#x27; was not deleted: analysis {running['id']} is still using it. "
            "Wait for it to finish (or cancel it), then delete the file.") in page
    assert upload_id in fake_api.uploads


# --- a file the user already has ------------------------------------------------------------------


def list_requests(fake_api) -> list[httpx.Request]:
    return [r for r in fake_api.requests if r.url.path == "/v1/uploads" and r.method == "GET"]


def test_a_copy_sent_by_the_form_is_kept_and_the_files_page_names_the_earlier_file(alice_client, fake_api):
    post(alice_client, "run.mzML", MZML)
    post(alice_client, "other.mgf", MGF)
    (first, other) = sorted(fake_api.uploads)
    fake_api.uploads[first]["created_at"] = "2026-03-04T05:06:00Z"
    before = len(list_requests(fake_api))
    response = post(alice_client, "run again.mzML", MZML)
    assert len(list_requests(fake_api)) == before + 1  # one list call, not one per file
    page = alice_client.get(response["Location"]).content.decode()
    copy = max(fake_api.uploads)
    assert len(fake_api.uploads) == 3  # neither refused nor deleted
    assert (f'<li class="warning">&#x27;run again.mzML&#x27; (#{copy}) has the same content as &#x27;run.mzML&#x27; '
            f"(#{first}, uploaded 2026-03-04 05:06 UTC). If you uploaded it again by mistake, you can delete the "
            f"new copy, #{copy}; keeping both is fine too.</li>") in page
    assert "Uploaded run again.mzML." in page
    assert f'run again.mzML <span class="upload-id">#{copy}</span>' in page  # the table shows the ids


def test_a_copy_sent_by_the_script_is_named_in_its_answer_and_on_the_reloaded_page(alice_client, fake_api):
    key = page_key(alice_client)
    first = post_keyed(alice_client, key, "run.mzML", MZML).json()
    assert first["notice"] is None and first["duplicate_of"] is None
    second = post_keyed(alice_client, key, "copy.mzML", MZML)  # same bytes, another name
    assert second.status_code == 201
    body = second.json()
    assert body["duplicate_of"] == first["upload"]
    assert body["notice"].startswith(f"'copy.mzML' (#{body['upload']['id']}) has the same content as "
                                     f"'run.mzML' (#{first['upload']['id']}, uploaded 2026-01-01 00:00 UTC).")
    # The script reloads the files page when every file is done: the notice is there too, once.
    page = alice_client.get(reverse("uploads")).content.decode()
    assert page.count("has the same content as &#x27;run.mzML&#x27;") == 1
    assert len(fake_api.uploads) == 2


def test_a_third_copy_names_the_first_and_counts_the_others(alice_client, fake_api):
    ids = [post(alice_client, f"r{i}.mzML", MZML, **XHR).json()["upload"]["id"] for i in range(4)]
    notice = post(alice_client, "r4.mzML", MZML, **XHR).json()["notice"]
    assert f"same content as 'r0.mzML' (#{ids[0]}, uploaded 2026-01-01 00:00 UTC) and 3 other files of yours." \
        in notice
    notice = [post(alice_client, f"x{i}.mgf", MGF, **XHR).json()["notice"] for i in range(2)][1]
    assert "as 'x0.mgf'" in notice and "other file" not in notice


def test_other_content_or_another_users_copy_is_no_duplicate(alice_client, fake_api, bob):
    fake_api.create_upload("bobs.mzML", MZML, fake_api.users[bob[1]])  # Bob's: not Alice's to know
    post(alice_client, "a.mzML", MZML + b" ", **XHR)
    body = post(alice_client, "b.mzML", MZML, **XHR).json()
    assert body["notice"] is None and body["duplicate_of"] is None
    page = alice_client.get(reverse("uploads")).content.decode()
    assert "same content" not in page


def test_the_same_request_again_is_no_duplicate_of_itself(alice_client, fake_api):
    """"Try again" after a lost answer gets the upload the first attempt made: not a copy."""
    key = page_key(alice_client)
    post_keyed(alice_client, key, "run.mzML", MZML)
    again = post_keyed(alice_client, key, "run.mzML", MZML).json()
    assert again["notice"] is None and len(fake_api.uploads) == 1


def test_a_failed_comparison_leaves_the_upload_standing(alice_client, fake_api, caplog):
    post(alice_client, "run.mzML", MZML, **XHR)
    inner = fake_api.transport()

    class ListingFails(httpx.BaseTransport):
        def handle_request(self, request):
            if request.url.path == "/v1/uploads" and request.method == "GET":
                return httpx.Response(500, json={"detail": "boom"})
            return inner.handle_request(request)

    api.TRANSPORT = ListingFails()
    response = post(alice_client, "copy.mzML", MZML, **XHR)
    assert response.status_code == 201 and response.json()["notice"] is None
    assert len(fake_api.uploads) == 2
    assert "not compared with earlier files: boom" in caplog.text
