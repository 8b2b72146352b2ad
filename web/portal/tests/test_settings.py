"""Production settings come from the environment (what the CDK front end passes)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2]
PROD = {"MZFORGE_ENVIRONMENT": "prod", "DJANGO_SECRET_KEY": "x" * 60 + "-not-a-real-key-but-long-and-random-ish",
        "DJANGO_ALLOWED_HOSTS": "www.example.org,example.org", "DATABASE_URL": "sqlite:////tmp/mzforge-web-check.db",
        "MZFORGE_API_URL": "http://api.internal:8080", "MZFORGE_API_ADMIN_TOKEN": "t"}


def manage(env, *args):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "MZFORGE_", "DATABASE_URL"))}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=WEB, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_production_settings_pass_djangos_deployment_checks():
    result = manage(PROD, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr + result.stdout


def test_production_values_are_taken_from_the_environment():
    code = ("from django.conf import settings as s; print(s.ALLOWED_HOSTS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE,"
            " s.DATABASES['default']['ENGINE'], s.MZFORGE_API_URL, s.STORAGES['staticfiles']['BACKEND'], s.DEBUG)")
    result = manage(PROD, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["['www.example.org',", "'example.org']", "True", "True",
                                     "django.db.backends.sqlite3", "http://api.internal:8080",
                                     "whitenoise.storage.CompressedManifestStaticFilesStorage", "False"]


def test_a_deployment_without_a_secret_key_or_hosts_refuses_to_start():
    for missing in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"):
        env = {k: v for k, v in PROD.items() if k != missing}
        result = manage(env, "check")
        assert result.returncode != 0
        assert f"{missing} must be set" in result.stderr


FAKE_BOTO3 = """
import json
SECRETS = {
    "arn:db": json.dumps({"username": "u", "password": "p", "host": "db.internal", "port": 5432, "dbname": "mzforge"}),
    "arn:key": "k3y-from-secrets-manager-" + "z" * 40,
    "arn:token": "mzf_admin_token_from_secrets_manager",
}
class _Client:
    def get_secret_value(self, SecretId):
        return {"SecretString": SECRETS[SecretId]}
def client(name, region_name=None):
    assert name == "secretsmanager" and region_name == "eu-west-1"
    return _Client()
"""


def test_the_cdk_front_ends_environment_is_understood(tmp_path):
    """The variables front-end.ts passes: secrets read through Secrets Manager (a stand-in boto3)."""
    (tmp_path / "boto3.py").write_text(FAKE_BOTO3)
    env = {"MZFORGE_ENVIRONMENT": "dev", "PYTHONPATH": str(tmp_path), "AWS_REGION": "eu-west-1",
           "MZFORGE_DATABASE_SECRET_ARN": "arn:db", "DJANGO_SECRET_KEY_SECRET_ARN": "arn:key",
           "MZFORGE_API_ADMIN_TOKEN_SECRET_ARN": "arn:token", "MZFORGE_API_URL": "https://api.example.org",
           "DJANGO_ALLOWED_HOSTS": "www.example.org,example.org",
           "DJANGO_CSRF_TRUSTED_ORIGINS": "https://www.example.org,https://example.org"}
    code = ("from django.conf import settings as s; d = s.DATABASES['default']; "
            "print(s.SECRET_KEY[:25], s.MZFORGE_API_ADMIN_TOKEN, d['ENGINE'], d['HOST'], d['NAME'], d['USER'], "
            "s.CSRF_TRUSTED_ORIGINS[1], s.SECURE_PROXY_SSL_HEADER[0])")
    result = manage(env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == [
        "k3y-from-secrets-manager-", "mzf_admin_token_from_secrets_manager", "django.db.backends.postgresql",
        "db.internal", "mzforge", "u", "https://example.org", "HTTP_X_FORWARDED_PROTO"]


@pytest.mark.django_db
def test_the_try_out_serves_its_pages_and_static_files_with_debug_off(client, settings):
    """run-local.sh runs the site with DEBUG off (no debug pages for a scientist trying it) and no
    collectstatic: the static files are served from the app's folder."""
    assert settings.DEBUG is False
    style = client.get("/static/portal/style.css")
    assert style.status_code == 200 and b"".join(style.streaming_content)
    page = client.get("/no/such/page/")
    text = page.content.decode()
    assert page.status_code == 404 and "There is no page at this address" in text and "Log in" in text
