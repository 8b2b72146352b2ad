#!/usr/bin/env bash
# The Python package's checks, run by `make python` (part of `make check`): a virtualenv
# with the test dependencies, a debug build of the extension installed in it (`maturin
# develop`, no
# release build; the workspace profile optimises the engine crate in dev builds), then pytest,
# which also executes the example notebook and the analysis API's tests (tests/api: SQLite and a
# throwaway PostgreSQL cluster from Debian's postgresql package, a moto server, schemathesis, a
# TCP fault proxy in front of PostgreSQL, a small load run and a 15-s sustained one; about 2
# minutes on two workers).
set -euo pipefail
cd "$(dirname "$0")"
started=$(date +%s)
step() { echo "== python: $* ($(( $(date +%s) - started )) s)"; }

VENV=$(realpath -m "${MZFORGE_VENV:-.venv}")
PYTHON=${PYTHON:-python3}
CARGO=${CARGO:-cargo}

step "virtualenv $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.9,<2"

step "maturin develop"
# maturin installs into $VIRTUAL_ENV (else it would pick ./.venv).
VIRTUAL_ENV="$VENV" "$VENV/bin/maturin" develop --quiet --extras test,api,api-test

if [ -z "${MZFORGE_CLI:-}" ]; then
  step "mzforge command line (for the parity tests)"
  # Built as `make test` (cargo test --workspace) builds it, so in `make check` nothing rebuilds.
  $CARGO test --quiet --workspace --no-run
  export MZFORGE_CLI="$PWD/../target/debug/mzforge"
fi

step "pytest"
# Exit status 5 ("no tests collected") is turned into success by tests/conftest.py.
# Two pytest-xdist workers (PYTEST_WORKERS; 0 runs in one process): one process keeps a core
# only ~85% busy (the API tests wait on servers, deadlines and subprocesses), two finish in
# ~60% of the time (216 -> 131 s here). Every fixture is per worker: its own PostgreSQL
# cluster, moto server and ports.
"$VENV/bin/python" -m pytest -q -p no:cacheprovider -n "${PYTEST_WORKERS:-2}" "$@"

step "done"
