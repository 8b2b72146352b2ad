#!/usr/bin/env bash
# The front end's checks, run by `make web` (part of `make check`): a virtualenv with the site's
# test dependencies, the Django tests (views, forms, permissions, CSRF, uploads, settings) and the
# real-browser end-to-end test (Debian's Chromium driven by Playwright; never `playwright install`)
# against gunicorn and the real analysis API in embedded mode.
#
# The API comes from, in order: `mzforge-api` in this virtualenv; the python/ package's
# virtualenv (`make python` builds it) when it has the API's extra installed; else this script
# installs the package with the extra into this virtualenv (`maturin develop --extras api`,
# a debug build that reuses `make python`'s build cache).
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
# MZFORGE_WEB_API=install forces the install into this virtualenv.
if [ -x "$VENV/bin/mzforge-api" ]; then
  echo "using $VENV/bin/mzforge-api"
elif [ "${MZFORGE_WEB_API:-}" != install ] && [ -x "$PY_VENV/bin/python" ] \
    && "$PY_VENV/bin/python" -c "import mzforge.api.app, uvicorn" 2>/dev/null; then
  export MZFORGE_API_PYTHON="$PY_VENV/bin/python"
  echo "using $MZFORGE_API_PYTHON -m mzforge.api.cli"
else
  MATURIN="$PY_VENV/bin/maturin"
  if [ ! -x "$MATURIN" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.9,<2"
    MATURIN="$VENV/bin/maturin"
  fi
  echo "installing the mzforge package with its api extra into $VENV (maturin develop, debug build)"
  (cd ../python && VIRTUAL_ENV="$VENV" "$MATURIN" develop --quiet --extras api)
fi

step "pytest (Django tests + browser end-to-end)"
"$VENV/bin/python" -m pytest -q portal/tests e2e "$@"

step "done"
