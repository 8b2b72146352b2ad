"""Sign-up (with API provisioning), log in/out, password reset, public vs login-required pages."""

import re

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from portal import api
from portal.models import ApiAccount

pytestmark = pytest.mark.django_db

SIGNUP = {"email": "Carol@Example.org", "password1": "a-long-passphrase-9", "password2": "a-long-passphrase-9"}

LOGIN_REQUIRED = [
    ("uploads", []), ("upload_file", []), ("delete_upload", [1]), ("analyses", []), ("analyses_status", []),
    ("new_analysis", []), ("analysis", [1]), ("analysis_status", [1]), ("cancel_analysis", [1]),
    ("analysis_summary", [1]), ("spectra", [1]), ("spectrum", [1, 0]), ("spectrum_json", [1, 0]),
    ("download", [1, "peaks", "csv"]), ("password_change", []),
]


def test_signup_provisions_an_api_user_and_keeps_the_token_server_side(client, fake_api):
    response = client.post(reverse("signup"), SIGNUP, follow=True)
    assert response.redirect_chain[-1][0] == reverse("uploads")
    user = get_user_model().objects.get(username="carol@example.org")
    account = ApiAccount.objects.get(user=user)
    assert account.token == "secret-token-carol@example.org"
    assert any(u["email"] == "carol@example.org" for u in fake_api.users.values())
    # The admin token was used for provisioning; the new user's token for the pages after it.
    create = next(r for r in fake_api.requests if r.url.path == "/v1/users")
    assert create.headers["authorization"] == "Bearer admin-token"
    assert fake_api.requests[-1].headers["authorization"] == f"Bearer {account.token}"
    assert account.token not in response.content.decode()
    assert response.context["user"].is_authenticated


def test_signup_refused_by_the_api_creates_no_site_user(client, fake_api):
    fake_api.users["x"] = {"id": 99, "email": "carol@example.org", "is_admin": False}
    response = client.post(reverse("signup"), SIGNUP)
    assert response.status_code == 200
    assert "already has an analysis-service account" in response.content.decode()
    assert not get_user_model().objects.filter(username="carol@example.org").exists()


def test_signup_with_the_api_down_says_so_and_creates_nothing(client, fake_api):
    def down(request):
        raise httpx.ConnectError("connection refused", request=request)

    api.TRANSPORT = httpx.MockTransport(down)
    response = client.post(reverse("signup"), SIGNUP)
    assert "not reachable right now" in response.content.decode()
    assert get_user_model().objects.count() == 0


def test_signup_with_a_refused_admin_token_explains(client, fake_api, settings):
    settings.MZFORGE_API_ADMIN_TOKEN = "wrong"
    response = client.post(reverse("signup"), SIGNUP)
    assert "not allowed to create accounts" in response.content.decode()
    assert get_user_model().objects.count() == 0


def test_signup_rejects_a_duplicate_email_and_weak_password(client, alice):
    response = client.post(reverse("signup"), {"email": "ALICE@example.org", "password1": "123", "password2": "123"})
    body = response.content.decode()
    assert "already exists" in body
    assert "too short" in body


def test_login_and_logout(client, alice):
    response = client.post(reverse("login"), {"username": "alice@example.org", "password": "pw-for-tests-1"})
    assert response.status_code == 302 and response.url == reverse("analyses")
    bad = client.post(reverse("login"), {"username": "alice@example.org", "password": "nope"})
    assert "do not match" in bad.content.decode()
    assert client.get(reverse("uploads")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("uploads")).status_code == 302


def test_login_takes_the_address_as_typed(client, fake_api):
    """Sign-up keeps "Carol@Example.org" as carol@example.org; logging in as she typed it (or as
    a phone capitalises it, with a stray space) is the same account."""
    client.post(reverse("signup"), SIGNUP)
    client.post(reverse("logout"))
    for typed in ["Carol@Example.org", " CAROL@example.org ", "carol@example.org"]:
        response = client.post(reverse("login"), {"username": typed, "password": SIGNUP["password1"]})
        assert response.status_code == 302 and response.url == reverse("analyses"), typed
        client.post(reverse("logout"))
    wrong = client.post(reverse("login"), {"username": "Carol@Example.org", "password": "not-hers"})
    assert "do not match" in wrong.content.decode()


def test_password_reset_by_email(client, alice):
    client.post(reverse("password_reset"), {"email": "alice@example.org"})
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+)", mail.outbox[0].body)[1]
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    done = client.post(form_page.redirect_chain[-1][0],
                       {"new_password1": "another-long-pass-7", "new_password2": "another-long-pass-7"})
    assert done.status_code == 302
    assert client.login(username="alice@example.org", password="another-long-pass-7")


@pytest.mark.parametrize(("name", "args"), LOGIN_REQUIRED)
def test_every_page_except_the_public_ones_requires_login(client, fake_api, name, args):
    url = reverse(name, args=args)
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert not fake_api.requests  # nothing reached the API


@pytest.mark.parametrize("name", ["home", "signup", "login", "password_reset"])
def test_public_pages_are_public(client, name):
    assert client.get(reverse(name)).status_code == 200


def test_health_checks_answer_any_host(client):
    # The load balancer uses the instance IP as Host, which is not an allowed host.
    response = client.get("/readyz", HTTP_HOST="10.0.3.17")
    assert response.status_code == 200 and response.json()["status"] == "ready"
    assert client.get("/healthz", HTTP_HOST="10.0.3.17").content == b"ok"
    assert client.get("/uploads/", HTTP_HOST="10.0.3.17").status_code == 400


def test_user_without_api_account_gets_a_plain_message(client, django_user_model, fake_api):
    user = django_user_model.objects.create_user(username="d@example.org", password="x-long-pass-1")
    client.force_login(user)
    response = client.get(reverse("analyses"))
    assert response.status_code == 403
    assert "no analysis-service access" in response.content.decode()
