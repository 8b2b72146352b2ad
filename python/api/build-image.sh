#!/usr/bin/env bash
# Builds the analysis API's container image (for the EKS Deployment in cdk/lib/constructs/
# analysis-api.ts, Graviton nodes) for linux/amd64 and linux/arm64 without a Docker engine,
# without pulling a base image and without executing arm64 code:
#
#   python/api/build-image.sh [--arch amd64|arm64|all] [--tag localhost/mzforge-api] [--check]
#
# 1. The engine: the release manylinux2014 abi3 wheel for the architecture from python/dist/
#    (python/build-wheels.sh makes them with zig; it is run for a missing one).
# 2. A Debian bookworm root file system (minbase + python3, python3-venv, ca-certificates) per
#    architecture, cached in python/api/dist/ (debian-rootfs.sh: debootstrap; for a foreign
#    architecture its first stage plus dpkg-deb, since nothing arm64 can run here).
# 3. The venv /opt/mzforge-api with `mzforge[api]`: for the host's architecture, pip in a chroot of
#    the tree; for the other, foreign-venv.sh (the host's pip with --platform manylinux_*_aarch64
#    --only-binary=:all: --target). apt/pip caches, docs and __pycache__ are removed.
# 4. buildah (vfs storage, no daemon) commits each tree as `<tag>:<arch>` (os/arch set in the
#    config): user 10001, entry point `mzforge-api`, command `serve --host 0.0.0.0 --port 8000`,
#    /tmp the only place written (the Deployment mounts an emptyDir there). With both
#    architectures, `<tag>:latest` is a manifest list of the two (`buildah manifest`); with one,
#    `<tag>:latest` is that image.
# 5. The import check: mzforge, fastapi, sqlalchemy, and mzforge.process on a real mzML file
#    (../shared/data), with the image's python: chroot on amd64, qemu-aarch64 -L on arm64.
#    `--check` also starts the server from the amd64 tree (chroot, user 10001; podman cannot run
#    containers in this sandbox) in embedded mode and asks /readyz; for arm64 it does the same
#    under qemu-aarch64 (slow: allow a minute).
#
# Needs root, debootstrap, buildah, curl, a host pip, qemu-user for the arm64 checks. Minutes per
# architecture (python/api/README.md has the figures), so CI does not run it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
python_dir=$(cd "$here/.." && pwd)
dist="$here/dist"
data="$python_dir/../../shared/data/profile/three_test_scans.mzML"
tag=localhost/mzforge-api
archs=(amd64 arm64)
check=false
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) shift; case "$1" in all) archs=(amd64 arm64) ;; amd64|arm64) archs=("$1") ;; *) echo "unknown arch $1" >&2; exit 2 ;; esac ;;
    --tag) shift; tag="$1" ;;
    --check) check=true ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "== build-image: $* ($SECONDS s)" >&2; }
[ "$(id -u)" = 0 ] || { echo "build-image: debootstrap and chroot need root" >&2; exit 1; }
host_arch=$(dpkg --print-architecture)
venv=/opt/mzforge-api
buildah=(buildah --storage-driver vfs)
mkdir -p "$dist"

# The image's python on its tree: chroot for the host's architecture, qemu-user for another
# (qemu -L resolves absolute paths in the tree first; the venv is put on sys.path by hand since
# its bin/python is a link the host would resolve to its own python).
image_python() { # $1 arch, $2 root, then python's arguments
  local arch=$1 root=$2; shift 2
  if [ "$arch" = "$host_arch" ]; then
    chroot "$root" /usr/bin/env -i PATH=$venv/bin:/usr/bin:/bin HOME=/tmp MPLCONFIGDIR=/tmp/matplotlib \
      "$venv/bin/python" "$@"
  else
    # Files the process creates land outside the tree (qemu -L only redirects paths that exist in
    # it), so its writable directories are a host temporary directory.
    local py scratch; py=$(cd "$root/usr/bin" && ls python3.[0-9]* | grep -E '^python3\.[0-9]+$' | sort -V | tail -1)
    scratch=$(mktemp -d /tmp/mzforge-image-check.XXXXXX)
    env -i PATH=/usr/bin:/bin HOME="$scratch" MPLCONFIGDIR="$scratch/matplotlib" \
      MZFORGE_DATA_DIR="$scratch/data" PYTHONPATH="$venv/lib/$py/site-packages" \
      nice -n 19 "qemu-$(machine "$arch")" -L "$root" "$root/usr/bin/$py" "$@" || { rm -rf "$scratch"; return 1; }
    rm -rf "$scratch"
  fi
}
machine() { case "$1" in amd64) echo x86_64 ;; arm64) echo aarch64 ;; esac; }

build_one() { # $1 arch: the tree in $dist/rootfs-$1 and the image $tag:$1
  local arch=$1 m wheel base root started=$SECONDS
  m=$(machine "$arch")
  # ---- 1. the engine's release wheel --------------------------------------------------------------
  wheel=$(ls "$python_dir"/dist/mzforge-*-abi3-manylinux2014_"$m"*.whl 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$wheel" ]; then
    log "no $m wheel in python/dist: python/build-wheels.sh ($m)"
    TARGETS="$m-unknown-linux-gnu" "$python_dir/build-wheels.sh"
    wheel=$(ls "$python_dir"/dist/mzforge-*-abi3-manylinux2014_"$m"*.whl | sort -V | tail -1)
  fi
  log "linux/$arch: wheel $(basename "$wheel")"

  # ---- 2. base root file system (cached) ----------------------------------------------------------
  base="$dist/base-bookworm-$arch.tar"
  if [ ! -f "$base" ]; then
    log "linux/$arch: debootstrap bookworm"
    "$here/debian-rootfs.sh" "$arch" "$base"
  fi
  root="$dist/rootfs-$arch"
  rm -rf "$root" && mkdir -p "$root"
  tar -C "$root" -xf "$base"

  # ---- 3. the venv ------------------------------------------------------------------------------
  log "linux/$arch: venv with mzforge[api]"
  # pip trusts what the host trusts (a TLS-inspecting proxy's CA, for instance) during the build
  # only; the image keeps Debian's ca-certificates.
  local ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
  if [ "$arch" = "$host_arch" ]; then
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    cp "$ca" "$root/tmp/build-ca.crt"
    cp "$wheel" "$root/tmp/"
    chroot "$root" /usr/bin/python3 -m venv "$venv"
    chroot "$root" /usr/bin/env -u PIP_FIND_LINKS PIP_CERT=/tmp/build-ca.crt SSL_CERT_FILE=/tmp/build-ca.crt \
      REQUESTS_CA_BUNDLE=/tmp/build-ca.crt CURL_CA_BUNDLE=/tmp/build-ca.crt \
      "$venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check \
      "/tmp/$(basename "$wheel")[api]"
    rm -f "$root/etc/resolv.conf" "$root/tmp/build-ca.crt" "$root/tmp/$(basename "$wheel")"
  else
    PIP_CERT=$ca nice -n 19 "$here/foreign-venv.sh" "$root" "$venv" "$arch" "$wheel[api]"
  fi
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc \
    "$root"/usr/share/man "$root"/root/.cache
  find "$root$venv" -name __pycache__ -prune -exec rm -rf {} +
  chmod 1777 "$root/tmp"
  log "linux/$arch: import check and mzforge.process on $(basename "$data")"
  [ -f "$data" ] || { echo "build-image: $data is missing" >&2; exit 1; }
  local in=/tmp/check-input.mzML
  if [ "$arch" = "$host_arch" ]; then cp "$data" "$root$in"; else in=$data; fi
  image_python "$arch" "$root" -c '
import platform, sys, fastapi, sqlalchemy, pyarrow, mzforge, mzforge.api
r = mzforge.process(sys.argv[1], threads=1)
print("mzforge", mzforge.__version__, platform.machine(), "simd", mzforge.simd_backend(),
      "spectra", r.spectra.num_rows, "peaks", r.peaks.num_rows)
assert r.spectra.num_rows == 3, r.spectra.num_rows' "$in" >&2
  rm -f "$root/tmp/check-input.mzML"
  find "$root$venv" "$root/usr/lib/python3"* -name __pycache__ -prune -exec rm -rf {} +

  # ---- 4. the image -----------------------------------------------------------------------------
  log "linux/$arch: buildah commit $tag:$arch"
  local ctr mnt
  ctr=$("${buildah[@]}" from --arch "$arch" --os linux scratch)
  mnt=$("${buildah[@]}" mount "$ctr")
  cp -a "$root/." "$mnt/"
  "${buildah[@]}" umount "$ctr" >/dev/null
  "${buildah[@]}" config --arch "$arch" --os linux \
    --env PATH=$venv/bin:/usr/local/bin:/usr/bin:/bin \
    --env HOME=/tmp --env TMPDIR=/tmp --env MPLCONFIGDIR=/tmp/matplotlib \
    --env MZFORGE_DATA_DIR=/tmp/mzforge --env PYTHONDONTWRITEBYTECODE=1 \
    --user 10001:10001 --workingdir /tmp --port 8000 \
    --entrypoint "[\"$venv/bin/mzforge-api\"]" --cmd 'serve --host 0.0.0.0 --port 8000' \
    --label org.opencontainers.image.title=mzforge-api "$ctr"
  "${buildah[@]}" rmi "$tag:$arch" >/dev/null 2>&1 || true
  "${buildah[@]}" commit --quiet --rm "$ctr" "$tag:$arch" >/dev/null
  log "linux/$arch: built $tag:$arch ($("${buildah[@]}" images --format '{{.Size}}' "$tag:$arch" | head -1), $((SECONDS - started)) s)"
}

for arch in "${archs[@]}"; do build_one "$arch"; done
"${buildah[@]}" manifest rm "$tag:latest" >/dev/null 2>&1 || "${buildah[@]}" rmi "$tag:latest" >/dev/null 2>&1 || true
if [ ${#archs[@]} -gt 1 ]; then
  "${buildah[@]}" manifest create "$tag:latest" >/dev/null
  for arch in "${archs[@]}"; do "${buildah[@]}" manifest add "$tag:latest" "$tag:$arch" >/dev/null; done
  log "multi-arch manifest $tag:latest: $("${buildah[@]}" manifest inspect "$tag:latest" | grep -o '"architecture": *"[a-z0-9]*"' | tr '\n' ' ')"
else
  "${buildah[@]}" tag "$tag:${archs[0]}" "$tag:latest"
fi

# ---- 5. check: the server from each tree answers /readyz -------------------------------------------
$check || exit 0
for arch in "${archs[@]}"; do
  root="$dist/rootfs-$arch"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  log "check linux/$arch: serve from the image's tree on 127.0.0.1:$port"
  mkdir -p "$root/tmp/check" && chmod 1777 "$root/tmp/check"
  if [ "$arch" = "$host_arch" ]; then
    chroot --userspec=10001:10001 "$root" /usr/bin/env -i PATH=$venv/bin:/usr/bin:/bin \
      HOME=/tmp MPLCONFIGDIR=/tmp/matplotlib MZFORGE_DATA_DIR=/tmp/check \
      $venv/bin/mzforge-api serve --host 127.0.0.1 --port "$port" >"$dist/check-$arch.log" 2>&1 &
    tries=100
  else
    # qemu 7.2 does not redirect faccessat2 into the tree (stat and open it does), and Alembic
    # asks os.access whether its migrations exist: the check retries such a path in the tree.
    image_python "$arch" "$root" -c '
import os, sys
_access = os.access
def access(path, mode, *args, **kwargs):
    if _access(path, mode, *args, **kwargs):
        return True
    p = os.fspath(path)
    return isinstance(p, str) and p.startswith("/") and _access(TREE + p, mode)
TREE = sys.argv.pop(1)
os.access = access
from mzforge.api.cli import main
sys.exit(main())' "$root" serve --host 127.0.0.1 --port "$port" >"$dist/check-$arch.log" 2>&1 &
    tries=1500
  fi
  pid=$!
  ok=false
  for _ in $(seq 1 $tries); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >"$dist/readyz-$arch.json" 2>/dev/null; then ok=true; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$root/tmp/check"
  $ok || { echo "build-image: the server in the linux/$arch image did not become ready" >&2; cat "$dist/check-$arch.log" >&2; exit 1; }
  log "check linux/$arch: /readyz -> $(cat "$dist/readyz-$arch.json")"
done
