#!/usr/bin/env bash
# The front end's checks, run by `make web` (part of `make check`): a virtualenv with the site's
# test dependencies, the Django tests (views, forms, permissions, CSRF, uploads, settings) and the
# real-browser end-to-end test (Debian's Chromium driven by Playwright; never `playwright install`)
# against gunicorn and the real analysis API in embedded mode.
#
# The API is found or installed by api-env.sh (python/.venv after `make python`, normally).
#
# Screenshots and downloads of the end-to-end test go to $WEB_ARTIFACTS (default
# web/test-artifacts/e2e). In CI (env CI set) a missing Chromium or ../shared/data fails the test.
set -euo pipefail
cd "$(dirname "$0")"
started=$(date +%s)
step() { echo "== web: $* ($(( $(date +%s) - started )) s)"; }

VENV=$(realpath -m "${MZFORGE_WEB_VENV:-.venv}")
PYTHON=${PYTHON:-python3}
PY_VENV=$(realpath -m ../python/.venv)

step "virtualenv $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements-test.txt

step "analysis API"
. ./api-env.sh

step "pytest (Django tests + browser end-to-end)"
"$VENV/bin/python" -m pytest -q portal/tests e2e "$@"

step "done"
