"""WSGI entry point: `gunicorn mzforge_web.wsgi:application` (what the CDK front end runs)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mzforge_web.settings")
application = get_wsgi_application()
