"""Settings for the mzforge front end.

Everything that differs between a laptop try-out and the AWS deployment comes from environment
variables (see web/README.md for the list). `MZFORGE_ENVIRONMENT=local` (the default) is the
embedded try-out: SQLite, console e-mail, a fixed development secret key. Any other environment
name (the CDK passes `dev`, `staging`, `prod`, ...) is a deployment and requires a real secret key
and allowed hosts, and turns on secure cookies and hashed static files.
"""

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
ENVIRONMENT = os.environ.get("MZFORGE_ENVIRONMENT", "local")
LOCAL = ENVIRONMENT == "local"


def _env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_json(arn: str) -> dict:
    """A Secrets Manager secret's JSON (the RDS secret, the API admin token)."""
    import boto3  # only in the deployment image (requirements-prod.txt)

    region = os.environ.get("AWS_REGION")
    value = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=arn)
    text = value["SecretString"]
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"token": text}


DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY and os.environ.get("DJANGO_SECRET_KEY_SECRET_ARN"):
    _key = _secret_json(os.environ["DJANGO_SECRET_KEY_SECRET_ARN"])
    SECRET_KEY = _key.get("token") or _key.get("secret_key") or ""
if not SECRET_KEY:
    if not LOCAL:
        raise ImproperlyConfigured(f"DJANGO_SECRET_KEY must be set in environment {ENVIRONMENT!r}")
    SECRET_KEY = "local-only-insecure-key-for-the-embedded-try-out"

ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if LOCAL else "")
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured(f"DJANGO_ALLOWED_HOSTS must be set in environment {ENVIRONMENT!r}")
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "portal",
]

MIDDLEWARE = [
    # Health checks first: the load balancer calls them with the instance's IP as Host.
    "portal.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every view needs a login unless it is marked @login_not_required (the public pages).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mzforge_web.urls"
WSGI_APPLICATION = "mzforge_web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, else the RDS secret the CDK passes, else SQLite for the try-out.
DATA_DIR = Path(os.environ.get("MZFORGE_WEB_DATA_DIR", BASE_DIR))
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
elif os.environ.get("MZFORGE_DATABASE_SECRET_ARN"):
    _db = _secret_json(os.environ["MZFORGE_DATABASE_SECRET_ARN"])
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            # The API's database by default: Django's tables are prefixed (auth_, portal_, django_).
            "NAME": os.environ.get("MZFORGE_WEB_DATABASE_NAME") or _db.get("dbname", "mzforge"),
            "USER": _db["username"],
            "PASSWORD": _db["password"],
            "HOST": _db["host"],
            "PORT": str(_db.get("port", 5432)),
            "CONN_MAX_AGE": 60,
            "OPTIONS": {"sslmode": "require"},
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "db.sqlite3"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The e-mail address is the username, kept lower-cased: log-in accepts it as typed.
AUTHENTICATION_BACKENDS = ["portal.backends.EmailBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "analyses"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The try-out (run-local.sh: runserver, no collectstatic) serves the app's static files as they
# are, with DEBUG off as in a deployment; a deployment serves the collected, hashed ones.
WHITENOISE_USE_FINDERS = LOCAL or DEBUG
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if LOCAL
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# E-mail (password reset): the console in the try-out, SMTP when EMAIL_HOST is set.
if os.environ.get("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = os.environ["EMAIL_HOST"]
    EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = True
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "mzforge <no-reply@localhost>")

# Uploads: always spooled to a temporary file (never held in memory), then streamed to the API.
FILE_UPLOAD_HANDLERS = ["portal.uploads.LimitedTemporaryFileUploadHandler"]
FILE_UPLOAD_TEMP_DIR = os.environ.get("MZFORGE_WEB_UPLOAD_TMP") or None
MZFORGE_MAX_UPLOAD_BYTES = int(os.environ.get("MZFORGE_MAX_UPLOAD_BYTES", str(2 * 1024**3)))

# The analysis API (issue 8).
MZFORGE_API_URL = os.environ.get("MZFORGE_API_URL", "http://127.0.0.1:8080").rstrip("/")
MZFORGE_API_ADMIN_TOKEN = os.environ.get("MZFORGE_API_ADMIN_TOKEN", "")
if not MZFORGE_API_ADMIN_TOKEN and os.environ.get("MZFORGE_API_ADMIN_TOKEN_SECRET_ARN"):
    MZFORGE_API_ADMIN_TOKEN = _secret_json(os.environ["MZFORGE_API_ADMIN_TOKEN_SECRET_ARN"])["token"]
MZFORGE_API_TIMEOUT_SECONDS = float(os.environ.get("MZFORGE_API_TIMEOUT_SECONDS", "30"))

if not LOCAL:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = os.environ.get("DJANGO_HSTS_PRELOAD", "1") == "1"
    SECURE_SSL_REDIRECT = os.environ.get("DJANGO_SSL_REDIRECT", "1") == "1"
    SECURE_REDIRECT_EXEMPT = [r"^readyz$", r"^healthz$"]
SESSION_COOKIE_HTTPONLY = True
# A form sent from an out-of-date page is explained in plain words (reload), also to the upload script.
CSRF_FAILURE_VIEW = "portal.views.csrf_failure"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
