#!/usr/bin/env bash
# Builds the mzforge Batch image (linux/amd64 and/or linux/arm64) without a Docker engine.
#
#   batch-runner/build-image.sh [--arch amd64|arm64|all] [--stage-only] [--check] [--quick]
#                               [--tag localhost/mzforge-batch]
#
# 1. Cross-compiles `mzforge` as a static musl binary per architecture with cargo-zigbuild
#    (zig is the C compiler/linker for the C parts: zstd, aws-lc; TLS is rustls, no OpenSSL).
#    Each binary is checked: statically linked, with mimalloc as its allocator, and
#    `mzforge --version` runs (arm64 under qemu-aarch64).
# 2. Stages the build context: batch-runner/dist/linux-<arch>/mzforge and dist/rootfs/ (the host's
#    CA bundle, a world-writable /tmp). `--stage-only` stops here (e.g. before `cdk synth`, whose
#    asset publishing runs `docker build` on this directory).
# 3. `buildah bud` (vfs storage, chroot isolation: no daemon, no privileges beyond root) builds
#    batch-runner/Dockerfile (FROM scratch: nothing is pulled) per architecture, and
#    `buildah manifest` joins them into one multi-arch image `<tag>:latest`.
# 4. `--check` runs the image on a real file from ../shared/data (podman, runc) and verifies the
#    result; if podman cannot run containers here, it says why and runs the binary from the
#    image's root filesystem instead (arm64 under qemu).
#
# Needs: rustup targets x86_64-unknown-linux-musl / aarch64-unknown-linux-musl, cargo-zigbuild
# and ziglang (pip install cargo-zigbuild ziglang), buildah and podman (apt), qemu-user for arm64.
# `--quick` builds without LTO or optimisation (what CI does: for checks, not for deployment).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
dist="$here/dist"
tag=localhost/mzforge-batch
archs=(amd64 arm64)
stage_only=false
check=false
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) shift; case "$1" in all) archs=(amd64 arm64) ;; amd64|arm64) archs=("$1") ;; *) echo "unknown arch $1" >&2; exit 2 ;; esac ;;
    --stage-only) stage_only=true ;;
    --check) check=true ;;
    --quick) export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=0 ;;
    --tag) shift; tag="$1" ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "== build-image: $*" >&2; }
triple() { case "$1" in amd64) echo x86_64-unknown-linux-musl ;; arm64) echo aarch64-unknown-linux-musl ;; esac; }
run_arch() { # run a binary of architecture $1
  local arch=$1; shift
  if [ "$arch" = arm64 ] && [ "$(uname -m)" != aarch64 ]; then qemu-aarch64 "$@"; else "$@"; fi
}

# ---- 1. static binaries ------------------------------------------------------------------------
target_dir="${CARGO_TARGET_DIR:-$root/target}"
for arch in "${archs[@]}"; do
  t=$(triple "$arch")
  log "cargo zigbuild --release --target $t"
  (cd "$root" && cargo zigbuild --release --locked --target "$t" -p mzforge-batch-runner --bin mzforge)
  bin="$target_dir/$t/release/mzforge"
  mkdir -p "$dist/linux-$arch"
  cp "$bin" "$dist/linux-$arch/mzforge"
  if readelf -l "$dist/linux-$arch/mzforge" | grep -q 'INTERP'; then
    echo "build-image: $t binary is dynamically linked" >&2; exit 1
  fi
  if readelf -d "$dist/linux-$arch/mzforge" 2>/dev/null | grep -q 'NEEDED'; then
    echo "build-image: $t binary needs shared libraries" >&2; exit 1
  fi
  # musl's own allocator costs the static binary 1.7x on a run (batch-runner/Cargo.toml).
  if ! grep -aq 'mimalloc' "$dist/linux-$arch/mzforge"; then
    echo "build-image: $t binary is not linked with mimalloc" >&2; exit 1
  fi
  version=$(run_arch "$arch" "$dist/linux-$arch/mzforge" --version)
  log "linux/$arch: static, $(du -h "$dist/linux-$arch/mzforge" | cut -f1), runs: $version"
done

# ---- 2. the build context --------------------------------------------------------------------
mkdir -p "$dist/rootfs/etc/ssl/certs" "$dist/rootfs/tmp"
chmod 1777 "$dist/rootfs/tmp"
# The host's CA bundle, where Debian/Ubuntu or Amazon Linux/Fedora keep it (the image has none).
ca_bundle=""
for candidate in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  [ -s "$candidate" ] && { ca_bundle=$candidate; break; }
done
[ -n "$ca_bundle" ] || { echo "build-image: no CA bundle on this host" >&2; exit 1; }
cp "$ca_bundle" "$dist/rootfs/etc/ssl/certs/ca-certificates.crt"
$stage_only && { log "staged $dist"; exit 0; }

# ---- 3. images -----------------------------------------------------------------------------------
buildah=(buildah --storage-driver vfs)
"${buildah[@]}" manifest rm "$tag:latest" >/dev/null 2>&1 || true
"${buildah[@]}" manifest create "$tag:latest" >/dev/null
for arch in "${archs[@]}"; do
  log "buildah bud linux/$arch"
  "${buildah[@]}" bud --quiet --isolation chroot --platform "linux/$arch" \
    --build-arg "TARGETARCH=$arch" -t "$tag:$arch" -f "$here/Dockerfile" "$here" >/dev/null
  "${buildah[@]}" manifest add "$tag:latest" "$tag:$arch" >/dev/null
done
"${buildah[@]}" images --filter "reference=$tag" --format '{{.Name}}:{{.Tag}} {{.Size}}' >&2
log "multi-arch manifest $tag:latest: $("${buildah[@]}" manifest inspect "$tag:latest" | grep -o '"architecture": *"[a-z0-9]*"' | tr '\n' ' ')"
$check || exit 0

# ---- 4. run the image on a real file ----------------------------------------------------------
data="$root/../shared/data/profile/three_test_scans.mzML"
[ -f "$data" ] || { echo "build-image: $data is missing" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
verify() { # the result of one run in $1
  local result=$1/three_test_scans
  for f in spectra.parquet peaks.parquet run.json; do
    [ -s "$result/$f" ] || { echo "build-image: $result/$f missing" >&2; exit 1; }
  done
  grep -q '"spectra_written": 3' "$result/run.json" || { echo "build-image: unexpected run.json" >&2; cat "$result/run.json" >&2; exit 1; }
}
run_in_runc() { # $1 arch, $2 image, $3 out dir: the image's rootfs as an OCI bundle, no rlimits
  local arch=$1 image=$2 out=$3 bundle="$work/bundle-$1" ctr mnt rc=0
  ctr=$("${buildah[@]}" from "$image"); mnt=$("${buildah[@]}" mount "$ctr")
  mkdir -p "$bundle" && (cd "$bundle" && runc spec)
  python3 - "$bundle/config.json" "$mnt" "$(dirname "$data")" "$out" <<'PY'
import json, sys
path, rootfs, data, out = sys.argv[1:]
c = json.load(open(path))
c["root"] = {"path": rootfs, "readonly": True}
p = c["process"]
p.update(terminal=False, cwd="/tmp", user={"uid": 65534, "gid": 65534},
         args=["/usr/local/bin/mzforge", "run", "/data/three_test_scans.mzML", "--out", "/out", "--min-snr", "1"],
         env=["PATH=/usr/local/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "TMPDIR=/tmp"])
p.pop("rlimits", None)  # what podman cannot do here: set rlimits without CAP_SYS_RESOURCE
c["mounts"] += [{"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro"]},
                {"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}]
json.dump(c, open(path, "w"))
PY
  (cd "$bundle" && runc run "mzforge-check-$arch-$$") >"$work/runc-$arch.log" 2>&1 || rc=$?
  "${buildah[@]}" umount "$ctr" >/dev/null; "${buildah[@]}" rm "$ctr" >/dev/null
  return $rc
}
for arch in "${archs[@]}"; do
  out="$work/out-$arch"; mkdir -p "$out"; chmod 777 "$out"
  podman_log="$work/podman-$arch.log"
  if podman --storage-driver vfs run --rm --network none --platform "linux/$arch" --runtime runc \
      -v "$(dirname "$data")":/data:ro -v "$out":/out "$tag:$arch" \
      run /data/three_test_scans.mzML --out /out --min-snr 1 >"$podman_log" 2>&1; then
    verify "$out"
    log "linux/$arch image ran under podman (runc) on $(basename "$data"): ok"
    continue
  fi
  echo "build-image: podman cannot run the linux/$arch container here:" >&2
  sed 's/^/    /' "$podman_log" | tail -3 >&2
  if { [ "$arch" = amd64 ] || [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; } && run_in_runc "$arch" "$tag:$arch" "$out"; then
    verify "$out"
    log "linux/$arch image rootfs ran as a runc container (namespaces, user 65534, read-only root) on $(basename "$data"): ok"
    continue
  fi
  [ -f "$work/runc-$arch.log" ] && { echo "build-image: runc failed too:" >&2; tail -3 "$work/runc-$arch.log" >&2; }
  log "running the binary from the image's root filesystem instead"
  container=$("${buildah[@]}" from "$tag:$arch")
  mnt=$("${buildah[@]}" mount "$container")
  run_arch "$arch" "$mnt/usr/local/bin/mzforge" run "$data" --out "$out" --min-snr 1 -q
  "${buildah[@]}" umount "$container" >/dev/null
  "${buildah[@]}" rm "$container" >/dev/null
  verify "$out"
  log "linux/$arch binary from the image rootfs on $(basename "$data"): ok"
done
