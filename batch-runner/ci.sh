#!/usr/bin/env bash
# `make cloud`: the cloud edge against real local services, then the Batch image.
#  1. tests/cloud.rs: a moto S3 server on 127.0.0.1 (free port), `mzforge run` s3->s3 on real files,
#     corrupt/missing inputs, interrupted uploads, `mzforge batch` array children, and the
#     `mzforge-lambda` binary through the Lambda Runtime API for every step (schemas validated).
#  2. build-image.sh: the static musl binary and image for amd64 (MZFORGE_IMAGE_ARCH=all adds arm64,
#     run under qemu), built with buildah (no Docker engine) and run on a real file.
# Outside CI, a machine without buildah/cargo-zigbuild skips step 2 (CI fails instead).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
# --workspace: the same dependency features, so the same builds, as `make test`. `make test` runs
# these tests too; .ci/run, which has just run it, sets MZFORGE_CLOUD_TESTS_RAN so that CI does
# not run them twice.
if [ -z "${MZFORGE_CLOUD_TESTS_RAN:-}" ]; then
  cargo test --workspace --test cloud
  echo "cloud: service tests done ($(( $(date +%s) - started )) s)"
else
  echo "cloud: service tests already ran in make test"
fi
if command -v buildah >/dev/null && command -v cargo-zigbuild >/dev/null \
    && rustup target list --installed | grep -q musl; then
  # amd64 image in CI (time budget); the aarch64 build of the engine is cross-tested under
  # qemu by `make check-aarch64`, and `--arch all` builds both images for a release.
  bash batch-runner/build-image.sh --arch "${MZFORGE_IMAGE_ARCH:-amd64}" --quick --check
elif [ -n "${CI:-}" ]; then
  echo "cloud: buildah, podman, cargo-zigbuild, ziglang and the musl targets are required in CI" >&2
  exit 1
else
  echo "cloud: image build skipped (apt-get install buildah podman; pip install cargo-zigbuild ziglang;"
  echo "       rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl)"
fi
echo "cloud: done in $(( $(date +%s) - started )) s"
