"""The operator's `link_api_account` command."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.models import ApiAccount

pytestmark = pytest.mark.django_db


def test_links_a_site_user_to_a_new_api_user(django_user_model, fake_api, capsys):
    user = django_user_model.objects.create_user(username="erin@example.org", password="x-long-pass-1")
    call_command("link_api_account", "Erin@example.org")
    account = ApiAccount.objects.get(user=user)
    assert fake_api.users[account.token]["email"] == "erin@example.org"
    assert "new API user" in capsys.readouterr().out


def test_links_to_an_existing_api_user_with_a_new_token(django_user_model, fake_api, capsys):
    old_token = fake_api.add_user("frank@example.org")
    user = django_user_model.objects.create_user(username="frank@example.org", password="x-long-pass-1")
    call_command("link_api_account", "frank@example.org")
    account = ApiAccount.objects.get(user=user)
    assert account.token != old_token
    assert fake_api.users[account.token] is fake_api.users[old_token]  # the same API user
    assert "existing API user, new token" in capsys.readouterr().out


def test_refuses_to_replace_without_being_asked(alice, fake_api):
    with pytest.raises(CommandError, match="already has an API token"):
        call_command("link_api_account", "alice@example.org")
    call_command("link_api_account", "alice@example.org", "--replace")
    assert ApiAccount.objects.get(user=alice[0]).token != alice[1]


def test_unknown_site_user_and_refusing_api(fake_api, settings, django_user_model):
    with pytest.raises(CommandError, match="no site user"):
        call_command("link_api_account", "nobody@example.org")
    django_user_model.objects.create_user(username="gina@example.org", password="x-long-pass-1")
    settings.MZFORGE_API_ADMIN_TOKEN = "not-admin"
    with pytest.raises(CommandError, match="the analysis API refused: admin token required"):
        call_command("link_api_account", "gina@example.org")
