"""CSRF on every form and no user seeing another user's work."""

import re

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def post_forms(html: str) -> list[str]:
    return re.findall(r"<form[^>]*method=\"post\"[^>]*>.*?</form>", html, flags=re.S | re.I)


def test_every_post_form_carries_a_csrf_token(alice_client, fake_api, alice):
    fake_api.add_analysis(alice[1], status="running")
    done = fake_api.add_analysis(alice[1])
    alice_client.post(reverse("upload_file"), {"file": _mzml("a.mzML")})
    pages = [reverse("uploads"), reverse("new_analysis"), reverse("analyses"),
             reverse("analysis", args=[done["id"]]), reverse("analysis", args=[done["id"] - 1]),
             reverse("password_change")]
    seen = 0
    for url in pages:
        for form in post_forms(alice_client.get(url).content.decode()):
            assert 'name="csrfmiddlewaretoken"' in form, (url, form[:200])
            seen += 1
    anon = Client()
    for url in [reverse("signup"), reverse("login"), reverse("password_reset")]:
        forms = post_forms(anon.get(url).content.decode())
        assert forms
        for form in forms:
            assert 'name="csrfmiddlewaretoken"' in form
            seen += 1
    assert seen >= 10


def _mzml(name):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, b'<?xml version="1.0"?>\n<mzML xmlns="http://psi.hupo.org/ms/mzml"></mzML>')


@pytest.mark.parametrize(
    ("name", "args", "data"),
    [
        ("signup", [], {"email": "e@example.org", "password1": "a-long-pass-99", "password2": "a-long-pass-99"}),
        ("login", [], {"username": "alice@example.org", "password": "pw-for-tests-1"}),
        ("logout", [], {}),
        ("password_reset", [], {"email": "alice@example.org"}),
        ("upload_file", [], {}),
        ("delete_upload", [1], {}),
        ("new_analysis", [], {"preset": "peptides"}),
        ("cancel_analysis", [1], {}),
    ],
)
def test_posts_without_a_csrf_token_are_refused(alice, fake_api, name, args, data):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice[0])
    before = len(fake_api.requests)
    response = client.post(reverse(name, args=args), data)
    assert response.status_code == 403
    assert len(fake_api.requests) == before


def test_a_form_from_an_out_of_date_page_says_reload(alice, fake_api):
    """A page opened before logging in again (here, in another tab) carries a token that no longer
    holds: the refusal says what to do, to the page and to the upload script."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice[0])
    page = client.get(reverse("uploads")).content.decode()
    old_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    client.force_login(alice[0])  # a new log-in rotates the token
    client.cookies.pop("csrftoken", None)
    client.get(reverse("uploads"))
    before = len(fake_api.requests)
    response = client.post(reverse("upload_file"), {"file": _mzml("a.mzML")}, HTTP_X_CSRFTOKEN=old_token,
                           HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 403
    assert "Reload the page and try again" in response.json()["error"]
    form = client.post(reverse("new_analysis"), {"csrfmiddlewaretoken": "x" * 64, "preset": "peptides"})
    text = form.content.decode()
    assert form.status_code == 403 and "This page is out of date" in text and "Log out" in text
    assert "CSRF" not in text
    assert len(fake_api.requests) == before


def test_a_user_never_sees_another_users_work(client, fake_api, alice, bob):
    theirs = fake_api.add_analysis(alice[1], name="alice's secret run")
    client.force_login(bob[0])
    listing = client.get(reverse("analyses")).content.decode()
    assert "alice&#x27;s secret run" not in listing and "alice's secret run" not in listing
    assert str(theirs["id"]) not in client.get(reverse("analyses_status")).content.decode()
    i = theirs["id"]
    for url in [reverse("analysis", args=[i]), reverse("analysis_status", args=[i]),
                reverse("analysis_summary", args=[i]), reverse("spectra", args=[i]),
                reverse("spectrum", args=[i, 0]), reverse("spectrum_json", args=[i, 0]),
                reverse("download", args=[i, "peaks", "parquet"])]:
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("cancel_analysis", args=[i])).status_code == 404
    assert fake_api.analyses[i]["status"] == "succeeded"
    # Every call Bob's pages made carried Bob's token, never Alice's or the admin's.
    assert {r.headers["authorization"] for r in fake_api.requests} == {f"Bearer {bob[1]}"}


def test_another_users_upload_cannot_be_deleted_or_analysed(client, fake_api, alice, bob):
    client.force_login(alice[0])
    client.post(reverse("upload_file"), {"file": _mzml("mine.mzML")})
    upload_id = next(iter(fake_api.uploads))
    client.force_login(bob[0])
    client.post(reverse("upload_file"), {"file": _mzml("bobs.mzML")})
    assert client.post(reverse("delete_upload", args=[upload_id])).status_code == 404
    assert upload_id in fake_api.uploads
    # Bob's form offers only Bob's uploads, so Alice's id is not a valid choice.
    response = client.post(reverse("new_analysis"), {"uploads": [str(upload_id)], "preset": "peptides"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not fake_api.analyses


def test_the_api_token_never_reaches_the_browser(alice_client, fake_api, alice):
    a = fake_api.add_analysis(alice[1])
    for url in [reverse("uploads"), reverse("analyses"), reverse("analysis", args=[a["id"]]),
                reverse("analyses_status"), reverse("spectrum_json", args=[a["id"], 0]),
                reverse("spectrum", args=[a["id"], 0]), reverse("new_analysis")]:
        assert alice[1] not in alice_client.get(url).content.decode()
