#!/usr/bin/env bash
# Makes a Debian bookworm root file system (minbase + python3, python3-venv, ca-certificates) for
# ARCH as a tar, for python/api/build-image.sh and web/build-image.sh:
#
#   python/api/debian-rootfs.sh ARCH OUT.tar        # ARCH: amd64 or arm64
#
# The host's own architecture: a complete debootstrap (both stages). Another architecture
# (arm64 on an x86-64 builder, no binfmt_misc, so nothing of ARCH can be executed): debootstrap's
# first stage only (`--foreign`: downloads and unpacks), then every downloaded package is unpacked
# with dpkg-deb, and the few things maintainer scripts would have made are made here: /etc/passwd
# and /etc/group (base-passwd's masters), the CA bundle (the certificates Debian ships, concatenated,
# as update-ca-certificates would with its default configuration) and ld.so.cache (host ldconfig
# -r). No maintainer script runs; dpkg's status lists the packages (for image scanners), and the
# image never runs apt.
set -euo pipefail
arch=$1 out=$2
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
include=python3,python3-venv,ca-certificates
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root="$tmp/root"
log="${out%.tar}.debootstrap.log"
if [ "$arch" = "$(dpkg --print-architecture)" ]; then
  nice -n 19 debootstrap --variant=minbase --include=$include bookworm "$root" "$mirror" >"$log" 2>&1
else
  nice -n 19 debootstrap --foreign --arch="$arch" --variant=minbase --include=$include \
    bookworm "$root" "$mirror" >"$log" 2>&1
  status="$root/var/lib/dpkg/status"
  : >"$status"
  for deb in "$root"/var/cache/apt/archives/*.deb; do
    # As debootstrap unpacks: keep what is there, and keep /bin, /lib, ... as links into /usr.
    dpkg-deb --fsys-tarfile "$deb" | tar -C "$root" --skip-old-files --keep-directory-symlink -xf -
    # dpkg's database lists the packages as installed, so that image scanners (ECR, Trivy) see
    # them, although their maintainer scripts did not run (the fix-ups below stand in for them).
    { dpkg-deb -f "$deb" | awk '{ print } /^Package:/ { print "Status: install ok installed" }'; echo; } >>"$status"
  done
  rm -rf "$root/debootstrap" "$root"/var/cache/apt/archives/*.deb
  # The first stage leaves /proc a link to the host's; the runtime mounts proc on a directory.
  rm -f "$root/proc"
  mkdir -p "$root/proc" "$root/sys"
  [ -s "$root/etc/passwd" ] || cp "$root/usr/share/base-passwd/passwd.master" "$root/etc/passwd"
  [ -s "$root/etc/group" ] || cp "$root/usr/share/base-passwd/group.master" "$root/etc/group"
  mkdir -p "$root/etc/ssl/certs"
  find "$root/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | xargs cat \
    >"$root/etc/ssl/certs/ca-certificates.crt"
  ldconfig -r "$root" 2>/dev/null || echo "debian-rootfs: ldconfig -r failed; no ld.so.cache" >&2
fi
tar -C "$root" -cf "$out" .
