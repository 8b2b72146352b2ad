import re

import pytest

from portal import api
from portal.models import ApiAccount

from .fake_api import FakeApi


@pytest.fixture
def fake_api(settings):
    fake = FakeApi()
    settings.MZFORGE_API_ADMIN_TOKEN = fake.admin_token
    settings.MZFORGE_API_URL = "http://api.test"
    api.TRANSPORT = fake.transport()
    yield fake
    api.TRANSPORT = None


def form_key(page: str) -> str:
    """The key a rendered form carries (its hidden `request_key` field)."""
    return re.search(r'name="request_key" value="([0-9a-f]{32})"', page)[1]


def make_user(django_user_model, fake_api, email):
    user = django_user_model.objects.create_user(username=email, email=email, password="pw-for-tests-1")
    token = fake_api.add_user(email)
    ApiAccount.objects.create(user=user, api_user_id=fake_api.users[token]["id"], token=token)
    return user, token


@pytest.fixture
def alice(django_user_model, fake_api):
    return make_user(django_user_model, fake_api, "alice@example.org")


@pytest.fixture
def bob(django_user_model, fake_api):
    return make_user(django_user_model, fake_api, "bob@example.org")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice[0])
    return client
