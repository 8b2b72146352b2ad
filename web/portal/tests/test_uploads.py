"""Uploads: content checks, size limits, spooling to disk and streaming to the API."""

import gzip
import os

import httpx

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from portal import api
from portal.uploads import sniff_format

pytestmark = pytest.mark.django_db

MZML = b'<?xml version="1.0" encoding="utf-8"?>\n<indexedmzML xmlns="http://psi.hupo.org/ms/mzml">\n<mzML version="1.1.0">'
MGF = b"# made by a test\nBEGIN IONS\nPEPMASS=445.12\n100.0 5.0\nEND IONS\n"
XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}


def post(client, name, data, **extra):
    return client.post(reverse("upload_file"), {"file": SimpleUploadedFile(name, data)}, **extra)


@pytest.mark.parametrize(("name", "data", "fmt"), [
    ("run.mzML", MZML, "mzml"), ("RUN.MZML", MZML, "mzml"), ("run.mzML.gz", gzip.compress(MZML), "mzml.gz"),
    ("spectra.mgf", MGF, "mgf"), ("spectra.MGF.gz", gzip.compress(MGF), "mgf.gz"),
])
def test_sniff_accepts_the_three_formats(name, data, fmt):
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
    ("x.mgf", b"<mzML>", "holds mzML but its name ends in .mgf"),
    ("x.mzML", MGF, "holds MGF but its name does not end in .mgf"),
    ("x.mgf", b"nothing here", "is not an MGF file"),
])
def test_sniff_rejects_with_plain_words(name, data, message):
    with pytest.raises(ValueError, match=message):
        sniff_format(name, data)


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
            if request.url.path == "/v1/uploads":
                # Before anything reads it: httpx's multipart stream holds the open file object
                # and reads it in chunks while sending.
                files = [f.file for f in getattr(request.stream, "fields", []) if hasattr(f, "file")]
                seen["streamed"] = len(files) == 1 and hasattr(files[0], "read")
            return inner.handle_request(request)

    api.TRANSPORT = Inspecting()
    from django.core.files.uploadhandler import TemporaryFileUploadHandler

    from portal import views

    original = views.api.ApiClient.upload

    def spy(self, filename, fileobj, content_type="application/octet-stream"):
        seen["path"] = fileobj.name
        seen["on_disk"] = os.path.isfile(fileobj.name)
        return original(self, filename, fileobj, content_type)

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
