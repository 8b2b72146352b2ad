#!/usr/bin/env bash
# Builds the release wheels: abi3 (CPython 3.10+), manylinux2014, for x86-64 and aarch64
# (Graviton), cross-linked with zig (`pip install ziglang`; rustup targets
# x86_64-unknown-linux-gnu and aarch64-unknown-linux-gnu), into python/dist/.
#
#   python/build-wheels.sh                                   # both targets
#   TARGETS=aarch64-unknown-linux-gnu python/build-wheels.sh # one
#
# On a shared machine the build runs at `nice -n 19` and, unless the caller sets them, without
# fat LTO and with 16 codegen units (the workspace's release profile asks for fat LTO and one
# unit: smaller, slightly faster, several times longer to build). Release wheels for
# publishing: CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1.
# Not part of CI (several minutes per target on 2 CPUs); python/README.md has the figures.
set -euo pipefail
cd "$(dirname "$0")"

VENV=$(realpath -m "${MZFORGE_VENV:-.venv}")
PYTHON=${PYTHON:-python3}
TARGETS=${TARGETS:-x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu}
export CARGO_PROFILE_RELEASE_LTO=${CARGO_PROFILE_RELEASE_LTO:-false}
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=${CARGO_PROFILE_RELEASE_CODEGEN_UNITS:-16}

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.9,<2" ziglang
# maturin finds zig through `python -m ziglang` of the first python on PATH.
export PATH="$VENV/bin:$PATH"

for target in $TARGETS; do
  started=$(date +%s)
  nice -n 19 "$VENV/bin/maturin" build --release --zig --target "$target" \
    --compatibility manylinux2014 --out dist
  echo "== $target: $(( $(date +%s) - started )) s"
done
ls -l dist/*.whl
