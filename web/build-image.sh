#!/usr/bin/env bash
# Builds the front end's container image (run by cdk/lib/constructs/front-end.ts as
# `docker run --read-only --tmpfs /tmp IMAGE gunicorn mzforge_web.wsgi:application ...`) without a
# Docker engine and without pulling a base image, the way python/api/build-image.sh builds the API's:
#
#   web/build-image.sh [--tag localhost/mzforge-web] [--check]
#
# 1. A Debian bookworm root file system (debootstrap minbase + python3, python3-venv,
#    ca-certificates), cached in web/dist/ (python/api/dist/'s copy is reused when present).
# 2. In a chroot: a venv at /opt/mzforge-web with requirements-prod.txt, the site in
#    /opt/mzforge-web/app, and its static files collected (hashed, compressed) into the image.
# 3. buildah (vfs storage, no daemon) commits it: user 10001, entry point docker-entrypoint.sh
#    (migrate, then the command), default command gunicorn on 0.0.0.0:8000.
# 4. --check starts gunicorn from the image's tree in a chroot (SQLite in /tmp, a throw-away key)
#    and asks /readyz and /.
#
# Needs root, debootstrap and buildah (`apt-get install debootstrap buildah`). Minutes on a cold
# cache, so CI does not run it. Production is Graviton (arm64): run it on an arm64 host.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dist="$here/dist"
tag=localhost/mzforge-web
check=false
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) shift; tag="$1" ;;
    --check) check=true ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "== web build-image: $* ($SECONDS s)" >&2; }
[ "$(id -u)" = 0 ] || { echo "build-image: debootstrap and chroot need root" >&2; exit 1; }
arch=$(dpkg --print-architecture)
mkdir -p "$dist"

# ---- 1. base root file system (cached) ----------------------------------------------------------
base="$dist/base-bookworm-$arch.tar"
shared_base="$here/../python/api/dist/base-bookworm-$arch.tar"
if [ ! -f "$base" ] && [ -f "$shared_base" ]; then base="$shared_base"; fi
if [ ! -f "$base" ]; then
  log "debootstrap bookworm ($arch)"
  tmp=$(mktemp -d)
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$tmp/root" http://deb.debian.org/debian >"$dist/debootstrap.log" 2>&1
  tar -C "$tmp/root" -cf "$base" .
  rm -rf "$tmp"
fi
log "base $base"

# ---- 2. the venv, the site, its static files ----------------------------------------------------
root="$dist/rootfs-$arch"
rm -rf "$root" && mkdir -p "$root"
tar -C "$root" -xf "$base"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$root/tmp/build-ca.crt"
export PIP_CERT=/tmp/build-ca.crt REQUESTS_CA_BUNDLE=/tmp/build-ca.crt SSL_CERT_FILE=/tmp/build-ca.crt
unset PIP_FIND_LINKS
log "venv with requirements-prod.txt"
chroot "$root" /usr/bin/python3 -m venv /opt/mzforge-web
app="$root/opt/mzforge-web/app"
mkdir -p "$app"
(cd "$here" && tar --exclude=__pycache__ --exclude=tests -cf - manage.py docker-entrypoint.sh \
  requirements.txt requirements-prod.txt mzforge_web portal) | tar -C "$app" -xf -
chroot "$root" /opt/mzforge-web/bin/pip install --quiet --no-cache-dir --disable-pip-version-check \
  -r /opt/mzforge-web/app/requirements-prod.txt
log "collectstatic"
chroot "$root" /usr/bin/env -i PATH=/opt/mzforge-web/bin:/usr/bin:/bin MZFORGE_ENVIRONMENT=build \
  DJANGO_SECRET_KEY=build-only DJANGO_ALLOWED_HOSTS=localhost DJANGO_STATIC_ROOT=/opt/mzforge-web/static \
  MZFORGE_WEB_DATA_DIR=/tmp /opt/mzforge-web/bin/python /opt/mzforge-web/app/manage.py collectstatic --noinput -v 0
rm -f "$root/etc/resolv.conf" "$root/tmp/build-ca.crt" "$root/tmp/db.sqlite3"
unset PIP_CERT REQUESTS_CA_BUNDLE SSL_CERT_FILE
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc \
  "$root"/usr/share/man "$root"/root/.cache
find "$root/opt/mzforge-web" -name __pycache__ -prune -exec rm -rf {} +
chmod 1777 "$root/tmp"

# ---- 3. the image -------------------------------------------------------------------------------
buildah=(buildah --storage-driver vfs)
log "buildah commit $tag:latest"
ctr=$("${buildah[@]}" from scratch)
mnt=$("${buildah[@]}" mount "$ctr")
cp -a "$root/." "$mnt/"
"${buildah[@]}" umount "$ctr" >/dev/null
"${buildah[@]}" config \
  --env PATH=/opt/mzforge-web/bin:/usr/local/bin:/usr/bin:/bin \
  --env HOME=/tmp --env TMPDIR=/tmp --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 \
  --env DJANGO_STATIC_ROOT=/opt/mzforge-web/static \
  --user 10001:10001 --workingdir /opt/mzforge-web/app --port 8000 \
  --entrypoint '["/opt/mzforge-web/app/docker-entrypoint.sh"]' \
  --cmd 'gunicorn mzforge_web.wsgi:application --bind 0.0.0.0:8000 --workers 4 --access-logfile -' \
  --label org.opencontainers.image.title=mzforge-web "$ctr"
"${buildah[@]}" commit --quiet --rm "$ctr" "$tag:latest" >/dev/null
log "built $tag:latest ($("${buildah[@]}" images --format '{{.Size}}' "$tag:latest" | head -1))"

# ---- 4. check -----------------------------------------------------------------------------------
if $check; then
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  log "check: entry point + gunicorn from the image's tree on 127.0.0.1:$port"
  chroot --userspec=10001:10001 "$root" /usr/bin/env -i PATH=/opt/mzforge-web/bin:/usr/bin:/bin HOME=/tmp \
    DJANGO_STATIC_ROOT=/opt/mzforge-web/static MZFORGE_ENVIRONMENT=check DJANGO_SECRET_KEY=check-only-key \
    DJANGO_ALLOWED_HOSTS=127.0.0.1 DJANGO_SSL_REDIRECT=0 DATABASE_URL=sqlite:////tmp/check.sqlite3 \
    /bin/sh -c "cd /opt/mzforge-web/app && exec ./docker-entrypoint.sh gunicorn mzforge_web.wsgi:application --bind 127.0.0.1:$port --workers 1" \
    >"$dist/check.log" 2>&1 &
  pid=$!
  ok=false
  for _ in $(seq 1 150); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >"$dist/readyz.json" 2>/dev/null; then ok=true; break; fi
    sleep 0.2
  done
  home=$(curl -fsS "http://127.0.0.1:$port/" 2>/dev/null | grep -o '/static/portal/style\.[0-9a-f]*\.css' || true)
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$root/tmp/check.sqlite3"
  $ok || { echo "build-image: the site in the image did not become ready" >&2; cat "$dist/check.log" >&2; exit 1; }
  [ -n "$home" ] || { echo "build-image: the home page does not link hashed static files" >&2; exit 1; }
  log "check: /readyz -> $(cat "$dist/readyz.json"); home page links $home"
fi
