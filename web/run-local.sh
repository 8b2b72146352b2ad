#!/usr/bin/env bash
# One command to try the front end: starts the analysis API in embedded mode (SQLite, local
# storage, local workers; an admin token is created for the site automatically) and the Django
# site against it, on http://127.0.0.1:${PORT:-8000}/. Data, databases and logs stay in
# web/.run-local/ (pass --fresh to start over). Ctrl-C stops both.
#
# The API is found (or installed) by api-env.sh, as web/ci.sh finds it.
set -euo pipefail
cd "$(dirname "$0")"
VENV=$(realpath -m "${MZFORGE_WEB_VENV:-.venv}")
PY_VENV=$(realpath -m ../python/.venv)
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
. ./api-env.sh
exec "$VENV/bin/python" tryout.py --port "${PORT:-8000}" "$@"
