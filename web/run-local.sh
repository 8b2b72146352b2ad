#!/usr/bin/env bash
# One command to try the front end: starts the analysis API in embedded mode (SQLite, local
# storage, local workers; an admin token is created for the site automatically) and the Django
# site against it, on http://127.0.0.1:${PORT:-8000}/. Data, databases and logs stay in
# web/.run-local/ (pass --fresh to start over). Ctrl-C stops both.
#
# The API is taken as web/ci.sh takes it (this virtualenv's mzforge-api, else python/.venv's).
set -euo pipefail
cd "$(dirname "$0")"
VENV=$(realpath -m "${MZFORGE_WEB_VENV:-.venv}")
PY_VENV=$(realpath -m ../python/.venv)
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
if [ ! -x "$VENV/bin/mzforge-api" ]; then
  if [ -x "$PY_VENV/bin/python" ] && "$PY_VENV/bin/python" -c "import mzforge.api.app, uvicorn" 2>/dev/null; then
    export MZFORGE_API_PYTHON="${MZFORGE_API_PYTHON:-$PY_VENV/bin/python}"
  else
    echo "installing the mzforge package with its API extra into $VENV (a debug build; a few minutes)" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.9,<2"
    (cd ../python && VIRTUAL_ENV="$VENV" "$VENV/bin/maturin" develop --quiet --extras api)
  fi
fi
exec "$VENV/bin/python" tryout.py --port "${PORT:-8000}" "$@"
