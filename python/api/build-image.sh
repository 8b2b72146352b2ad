#!/usr/bin/env bash
# Builds the analysis API's container image (for the EKS Deployment in cdk/lib/constructs/
# analysis-api.ts) without a Docker engine and without pulling a base image.
#
#   python/api/build-image.sh [--release | --dev-extension] [--tag localhost/mzforge-api] [--check]
#
# 1. `maturin build` makes the mzforge wheel (abi3) for the host architecture (`--release` for a
#    deployable, optimised build; the default is the dev profile). `--dev-extension` compiles
#    nothing: it installs the package as `maturin develop` left it in python/python/mzforge (the
#    extension the tests ran against) plus the wheel's dependencies from PyPI.
# 2. debootstrap (Debian bookworm, minbase + python3, python3-venv, ca-certificates) makes the
#    root file system; it is cached in python/api/dist/ and reused.
# 3. In a chroot of that tree: a venv at /opt/mzforge-api with `mzforge[api]` from the wheel
#    (pip pulls the dependencies from PyPI), then apt/pip caches are removed.
# 4. buildah (vfs storage, no daemon) commits the tree as an image: user 10001, entry point
#    `mzforge-api`, default command `serve --host 0.0.0.0 --port 8000`, /tmp the only place
#    written (the Deployment mounts an emptyDir there; the root file system is read-only).
# 5. `--check` starts the server from the image's tree (chroot, as user 10001: podman cannot run
#    containers in this sandbox) in embedded mode and asks /readyz.
#
# Measured here: 97 s with the debootstrap tree cached (+ about 100 s for debootstrap on a cold
# cache), image 832 MB; so CI does not run it. Needs root, debootstrap, buildah, curl.
# Production nodes are Graviton (arm64): run this on an arm64 host (or add qemu-user-static and
# `--foreign` debootstrap plus `maturin build --zig --target aarch64-unknown-linux-gnu`).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
python_dir=$(cd "$here/.." && pwd)
dist="$here/dist"
tag=localhost/mzforge-api
release=()
check=false
dev_extension=false
while [ $# -gt 0 ]; do
  case "$1" in
    --release) release=(--release) ;;
    --tag) shift; tag="$1" ;;
    --check) check=true ;;
    --dev-extension) dev_extension=true ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "== build-image: $* ($SECONDS s)" >&2; }
[ "$(id -u)" = 0 ] || { echo "build-image: debootstrap and chroot need root" >&2; exit 1; }
arch=$(dpkg --print-architecture)
mkdir -p "$dist"

# ---- 1. the wheel -------------------------------------------------------------------------------
rm -rf "$dist/wheels" && mkdir -p "$dist/wheels"
if $dev_extension; then
  ls "$python_dir"/python/mzforge/_mzforge*.so >/dev/null || { echo "build-image: no extension built (maturin develop)" >&2; exit 1; }
  log "package from python/python/mzforge (no compilation)"
else
  log "maturin build ${release[*]:-(dev profile)}"
  maturin=("$python_dir/.venv/bin/maturin")
  [ -x "${maturin[0]}" ] || maturin=(maturin)
  (cd "$python_dir" && "${maturin[@]}" build --quiet "${release[@]}" --out "$dist/wheels")
  wheel=$(ls "$dist"/wheels/mzforge-*.whl)
  log "wheel $(basename "$wheel")"
fi

# ---- 2. base root file system (cached) ----------------------------------------------------------
base="$dist/base-bookworm-$arch.tar"
if [ ! -f "$base" ]; then
  log "debootstrap bookworm ($arch)"
  tmp=$(mktemp -d)
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$tmp/root" http://deb.debian.org/debian >"$dist/debootstrap.log" 2>&1
  tar -C "$tmp/root" -cf "$base" .
  rm -rf "$tmp"
fi

# ---- 3. the venv --------------------------------------------------------------------------------
root="$dist/rootfs-$arch"
rm -rf "$root" && mkdir -p "$root"
tar -C "$root" -xf "$base"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# pip in the chroot trusts what the host trusts (a TLS-inspecting proxy's CA, for instance); the
# bundle is removed afterwards and the image keeps Debian's ca-certificates.
cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$root/tmp/build-ca.crt"
export PIP_CERT=/tmp/build-ca.crt REQUESTS_CA_BUNDLE=/tmp/build-ca.crt CURL_CA_BUNDLE=/tmp/build-ca.crt SSL_CERT_FILE=/tmp/build-ca.crt
unset PIP_FIND_LINKS
log "venv with mzforge[api]"
chroot "$root" /usr/bin/python3 -m venv /opt/mzforge-api
pip=(chroot "$root" /opt/mzforge-api/bin/pip install --quiet --no-cache-dir --disable-pip-version-check)
if $dev_extension; then
  # The wheel's dependencies (pyproject: dependencies + the api extra), then the package itself.
  mapfile -t deps < <(python3 -c 'import sys, tomllib; p = tomllib.load(open(sys.argv[1], "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["api"]))' "$python_dir/pyproject.toml")
  "${pip[@]}" "${deps[@]}"
  site=$(chroot "$root" /opt/mzforge-api/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  (cd "$python_dir/python" && tar --exclude=__pycache__ -cf - mzforge) | tar -C "$root$site" -xf -
  printf '#!/opt/mzforge-api/bin/python\nimport sys\nfrom mzforge.api.cli import main\nsys.exit(main())\n' \
    >"$root/opt/mzforge-api/bin/mzforge-api"
  chmod 755 "$root/opt/mzforge-api/bin/mzforge-api"
else
  cp "$wheel" "$root/tmp/"
  "${pip[@]}" "/tmp/$(basename "$wheel")[api]"
  rm -f "$root/tmp/$(basename "$wheel")"
fi
rm -f "$root/etc/resolv.conf" "$root/tmp/build-ca.crt"
unset PIP_CERT REQUESTS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc \
  "$root"/usr/share/man "$root"/root/.cache
find "$root/opt/mzforge-api" -name __pycache__ -prune -exec rm -rf {} +
chmod 1777 "$root/tmp"
chroot "$root" /opt/mzforge-api/bin/python -c "import mzforge.api, mzforge; print('mzforge', mzforge.__version__)"

# ---- 4. the image -------------------------------------------------------------------------------
buildah=(buildah --storage-driver vfs)
log "buildah commit $tag:latest"
ctr=$("${buildah[@]}" from scratch)
mnt=$("${buildah[@]}" mount "$ctr")
cp -a "$root/." "$mnt/"
"${buildah[@]}" umount "$ctr" >/dev/null
"${buildah[@]}" config \
  --env PATH=/opt/mzforge-api/bin:/usr/local/bin:/usr/bin:/bin \
  --env HOME=/tmp --env TMPDIR=/tmp --env MPLCONFIGDIR=/tmp/matplotlib \
  --env MZFORGE_DATA_DIR=/tmp/mzforge --env PYTHONDONTWRITEBYTECODE=1 \
  --user 10001:10001 --workingdir /tmp --port 8000 \
  --entrypoint '["/opt/mzforge-api/bin/mzforge-api"]' --cmd 'serve --host 0.0.0.0 --port 8000' \
  --label org.opencontainers.image.title=mzforge-api "$ctr"
"${buildah[@]}" commit --quiet --rm "$ctr" "$tag:latest" >/dev/null
size=$("${buildah[@]}" images --format '{{.Size}}' "$tag:latest" | head -1)
log "built $tag:latest ($size)"

# ---- 5. check -----------------------------------------------------------------------------------
if $check; then
  port=18765
  log "check: serve from the image's tree on 127.0.0.1:$port"
  mkdir -p "$root/tmp/check" && chmod 1777 "$root/tmp/check"
  chroot --userspec=10001:10001 "$root" /usr/bin/env -i PATH=/opt/mzforge-api/bin:/usr/bin:/bin \
    HOME=/tmp MPLCONFIGDIR=/tmp/matplotlib MZFORGE_DATA_DIR=/tmp/check \
    /opt/mzforge-api/bin/mzforge-api serve --host 127.0.0.1 --port $port >"$dist/check.log" 2>&1 &
  pid=$!
  ok=false
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >"$dist/readyz.json" 2>/dev/null; then ok=true; break; fi
    sleep 0.2
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$root/tmp/check"
  $ok || { echo "build-image: the server in the image did not become ready" >&2; cat "$dist/check.log" >&2; exit 1; }
  log "check: /readyz -> $(cat "$dist/readyz.json")"
fi
