"""Production settings come from the environment (what the CDK front end passes)."""

import os
import subprocess
import sys
from pathlib import Path

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
