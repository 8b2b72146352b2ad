#!/usr/bin/env bash
# The front end's checks, run by `make web` (part of `make check`): a virtualenv with the site's
# test dependencies, the Django tests (views, forms, permissions, CSRF, uploads, settings) and the
# real-browser end-to-end test (Debian's Chromium driven by Playwright; never `playwright install`)
# against gunicorn and the real analysis API in embedded mode.
#
# The API comes from, in order: `mzforge-api` in this virtualenv; the python/ package's
# virtualenv (`make python` builds it) when it has the API's extra installed; the package's
# sources with the extension `make python` built beside them, run by this virtualenv with the
# api extra's dependencies; else `maturin develop --extras api` into this virtualenv (a debug
# build of the extension: minutes).
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
elif [ "${MZFORGE_WEB_API:-}" != install ] && compgen -G "../python/python/mzforge/_mzforge*.so" >/dev/null; then
  # `make python` left the extension beside the package's sources (maturin develop is an
  # editable install): run the API from those sources with the api extra's dependencies
  # installed here, without building the extension a second time.
  deps=$("$VENV/bin/python" -c 'import tomllib; print("\n".join(tomllib.load(open("../python/pyproject.toml", "rb"))["project"]["optional-dependencies"]["api"]))')
  mapfile -t deps <<<"$deps"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${deps[@]}" "numpy>=1.23" "pyarrow>=15"
  export MZFORGE_API_PYTHON="$VENV/bin/python" MZFORGE_API_PYTHONPATH="$(realpath ../python/python)"
  echo "using the package sources in $MZFORGE_API_PYTHONPATH with $MZFORGE_API_PYTHON"
else
  MATURIN="$PY_VENV/bin/maturin"
  if [ ! -x "$MATURIN" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.9,<2"
    MATURIN="$VENV/bin/maturin"
  fi
  echo "installing the mzforge package with its api extra into $VENV (maturin develop, debug build: slow)"
  (cd ../python && VIRTUAL_ENV="$VENV" "$MATURIN" develop --quiet --extras api)
fi

step "pytest (Django tests + browser end-to-end)"
"$VENV/bin/python" -m pytest -q portal/tests e2e "$@"

step "done"
