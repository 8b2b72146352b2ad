# Sourced by ci.sh and run-local.sh (with VENV and PY_VENV set, in web/): makes the analysis API
# available to tryout.py, preferring what is already built. In order:
#   1. `mzforge-api` in $VENV;
#   2. python/.venv (`make python` installs the api extra there): MZFORGE_API_PYTHON;
#   3. the package's sources with the extension `make python` left beside them (maturin develop is
#      an editable install), run by $VENV's python with the api extra's dependencies installed:
#      MZFORGE_API_PYTHON + MZFORGE_API_PYTHONPATH; no second Rust build;
#   4. `maturin develop --extras api` into $VENV (a debug build of the extension: minutes).
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
