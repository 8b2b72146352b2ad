#!/bin/sh
# Brings the site's tables up to date (Django migrations are transactional on PostgreSQL), then
# runs the command the CDK user data passes (gunicorn).
set -e
python manage.py migrate --noinput
exec "$@"
