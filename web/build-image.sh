#!/usr/bin/env bash
# Builds the front end's container image (run by cdk/lib/constructs/front-end.ts on Graviton EC2 as
# `docker run --read-only --tmpfs /tmp IMAGE gunicorn mzforge_web.wsgi:application ...`) for
# linux/amd64 and linux/arm64 without a Docker engine, without pulling a base image and without
# executing arm64 code, the way python/api/build-image.sh builds the API's:
#
#   web/build-image.sh [--arch amd64|arm64|all] [--tag localhost/mzforge-web] [--check]
#
# 1. A Debian bookworm root file system per architecture (python/api/debian-rootfs.sh: minbase +
#    python3, python3-venv, ca-certificates), cached in web/dist/ (python/api/dist/'s copy is
#    reused when present).
# 2. A venv at /opt/mzforge-web with requirements-prod.txt (host architecture: pip in a chroot;
#    the other: python/api/foreign-venv.sh, the host's pip with --platform ... --target), the site
#    in /opt/mzforge-web/app, and its static files collected (hashed, compressed) into the image by
#    the image's python (chroot, or qemu-aarch64 -L for arm64).
# 3. buildah (vfs storage, no daemon) commits each as `<tag>:<arch>`: user 10001, entry point
#    docker-entrypoint.sh (migrate, then the command), default command gunicorn on 0.0.0.0:8000.
#    With both architectures `<tag>:latest` is a manifest list of the two, with one that image.
# 4. Every build runs `manage.py check` with the image's python; --check also starts gunicorn
#    through the entry point from the amd64 tree in a chroot (SQLite in /tmp, a throw-away key),
#    and for arm64 migrate + gunicorn under qemu-aarch64 (the entry point's sh cannot exec an arm64
#    python there), and asks /readyz, / and the hashed style sheet / links.
#
# Needs root, debootstrap, buildah, curl, a host pip, qemu-user for arm64. Minutes per
# architecture (web/README.md has the figures), so CI does not run it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
api_dir=$(cd "$here/../python/api" && pwd)
dist="$here/dist"
tag=localhost/mzforge-web
archs=(amd64 arm64)
check=false
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) shift; case "$1" in all) archs=(amd64 arm64) ;; amd64|arm64) archs=("$1") ;; *) echo "unknown arch $1" >&2; exit 2 ;; esac ;;
    --tag) shift; tag="$1" ;;
    --check) check=true ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "== web build-image: $* ($SECONDS s)" >&2; }
[ "$(id -u)" = 0 ] || { echo "build-image: debootstrap and chroot need root" >&2; exit 1; }
host_arch=$(dpkg --print-architecture)
venv=/opt/mzforge-web
buildah=(buildah --storage-driver vfs)
mkdir -p "$dist"
machine() { case "$1" in amd64) echo x86_64 ;; arm64) echo aarch64 ;; esac; }

# The image's python on its tree, with the environment in the array image_env: chroot for the
# host's architecture, qemu-user for another (qemu -L resolves absolute paths in the tree first,
# so files the process creates must go to host paths that are not in the tree).
image_env=()
image_python() { # $1 arch, $2 root, then python's arguments
  local arch=$1 root=$2; shift 2
  if [ "$arch" = "$host_arch" ]; then
    chroot "$root" /usr/bin/env -i PATH=$venv/bin:/usr/bin:/bin HOME=/tmp "${image_env[@]}" \
      "$venv/bin/python" "$@"
  else
    local py; py=$(cd "$root/usr/bin" && ls python3.[0-9]* | grep -E '^python3\.[0-9]+$' | sort -V | tail -1)
    env -i PATH=/usr/bin:/bin HOME=/tmp PYTHONPATH="$venv/lib/$py/site-packages" "${image_env[@]}" \
      nice -n 19 "qemu-$(machine "$arch")" -L "$root" "$root/usr/bin/$py" "$@"
  fi
}

build_one() { # $1 arch: the tree in $dist/rootfs-$1 and the image $tag:$1
  local arch=$1 base root app started=$SECONDS
  # ---- 1. base root file system (cached) --------------------------------------------------------
  base="$dist/base-bookworm-$arch.tar"
  if [ ! -f "$base" ] && [ -f "$api_dir/dist/base-bookworm-$arch.tar" ]; then base="$api_dir/dist/base-bookworm-$arch.tar"; fi
  if [ ! -f "$base" ]; then
    log "linux/$arch: debootstrap bookworm"
    "$api_dir/debian-rootfs.sh" "$arch" "$base"
  fi
  log "linux/$arch: base $base"

  # ---- 2. the venv, the site, its static files --------------------------------------------------
  root="$dist/rootfs-$arch"
  rm -rf "$root" && mkdir -p "$root"
  tar -C "$root" -xf "$base"
  app="$root$venv/app"
  mkdir -p "$app"
  (cd "$here" && tar --exclude=__pycache__ --exclude=tests -cf - manage.py docker-entrypoint.sh \
    requirements.txt requirements-prod.txt mzforge_web portal) | tar -C "$app" -xf -
  log "linux/$arch: venv with requirements-prod.txt"
  local ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
  if [ "$arch" = "$host_arch" ]; then
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    cp "$ca" "$root/tmp/build-ca.crt"
    chroot "$root" /usr/bin/python3 -m venv "$venv"
    chroot "$root" /usr/bin/env -u PIP_FIND_LINKS PIP_CERT=/tmp/build-ca.crt SSL_CERT_FILE=/tmp/build-ca.crt \
      REQUESTS_CA_BUNDLE=/tmp/build-ca.crt CURL_CA_BUNDLE=/tmp/build-ca.crt \
      "$venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check \
      -r "$venv/app/requirements-prod.txt"
    rm -f "$root/etc/resolv.conf" "$root/tmp/build-ca.crt"
  else
    (cd "$app" && PIP_CERT=$ca nice -n 19 "$api_dir/foreign-venv.sh" "$root" "$venv" "$arch" -r requirements-prod.txt)
  fi
  log "linux/$arch: collectstatic"
  local static=$venv/static scratch=""
  if [ "$arch" != "$host_arch" ]; then scratch=$(mktemp -d /tmp/mzforge-web-static.XXXXXX); static=$scratch/static; fi
  image_env=(MZFORGE_ENVIRONMENT=build DJANGO_SECRET_KEY=build-only DJANGO_ALLOWED_HOSTS=localhost
    DJANGO_STATIC_ROOT="$static" MZFORGE_WEB_DATA_DIR="${scratch:-/tmp}")
  image_python "$arch" "$root" "$venv/app/manage.py" collectstatic --noinput -v 0
  if [ -n "$scratch" ]; then mv "$static" "$root$venv/static"; rm -rf "$scratch"; fi
  rm -f "$root/tmp/db.sqlite3"
  log "linux/$arch: manage.py check"
  image_env=(MZFORGE_ENVIRONMENT=check DJANGO_SECRET_KEY=check-only-key-check-only-key-check-only-key-0123456789
    DJANGO_ALLOWED_HOSTS=localhost DJANGO_STATIC_ROOT=$venv/static MZFORGE_WEB_DATA_DIR=/nonexistent)
  image_python "$arch" "$root" "$venv/app/manage.py" check >&2
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc \
    "$root"/usr/share/man "$root"/root/.cache
  find "$root$venv" "$root/usr/lib/python3"* -name __pycache__ -prune -exec rm -rf {} +
  chmod 1777 "$root/tmp"

  # ---- 3. the image -----------------------------------------------------------------------------
  log "linux/$arch: buildah commit $tag:$arch"
  local ctr mnt
  ctr=$("${buildah[@]}" from --arch "$arch" --os linux scratch)
  mnt=$("${buildah[@]}" mount "$ctr")
  cp -a "$root/." "$mnt/"
  "${buildah[@]}" umount "$ctr" >/dev/null
  "${buildah[@]}" config --arch "$arch" --os linux \
    --env PATH=$venv/bin:/usr/local/bin:/usr/bin:/bin \
    --env HOME=/tmp --env TMPDIR=/tmp --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 \
    --env DJANGO_STATIC_ROOT=$venv/static \
    --user 10001:10001 --workingdir $venv/app --port 8000 \
    --entrypoint "[\"$venv/app/docker-entrypoint.sh\"]" \
    --cmd 'gunicorn mzforge_web.wsgi:application --bind 0.0.0.0:8000 --workers 4 --access-logfile -' \
    --label org.opencontainers.image.title=mzforge-web "$ctr"
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

# ---- 4. check -----------------------------------------------------------------------------------
$check || exit 0
for arch in "${archs[@]}"; do
  root="$dist/rootfs-$arch"
  if [ "$arch" != "$host_arch" ]; then
    # The entry point is a shell script that execs python: qemu-user cannot exec arm64 children
    # without binfmt_misc, so one python migrates and then becomes gunicorn (its workers are forks,
    # which qemu-user runs). Files it creates go to a host scratch directory (see image_python).
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    log "check linux/$arch: migrate + gunicorn from the image's tree under qemu on 127.0.0.1:$port"
    scratch=$(mktemp -d /tmp/mzforge-web-check.XXXXXX)
    image_env=(HOME="$scratch" PYTHONPATH="$venv/lib/python3.11/site-packages:$venv/app"
      DJANGO_SETTINGS_MODULE=mzforge_web.settings MZFORGE_ENVIRONMENT=check
      DJANGO_SECRET_KEY=check-only-key-check-only-key-check-only-key-0123456789
      DJANGO_ALLOWED_HOSTS=127.0.0.1 DJANGO_SSL_REDIRECT=0 DJANGO_STATIC_ROOT=$venv/static
      DATABASE_URL="sqlite:///$scratch/check.sqlite3")
    image_python "$arch" "$root" -c '
import sys
from django.core.management import execute_from_command_line
execute_from_command_line(["manage.py", "migrate", "--noinput", "-v", "0"])
sys.argv = ["gunicorn", "mzforge_web.wsgi:application", "--bind", "127.0.0.1:" + sys.argv[1], "--workers", "1"]
from gunicorn.app.wsgiapp import run
run()' "$port" >"$dist/check-$arch.log" 2>&1 &
    tries=600
  else
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    log "check linux/$arch: entry point + gunicorn from the image's tree on 127.0.0.1:$port"
    scratch=""
    chroot --userspec=10001:10001 "$root" /usr/bin/env -i PATH=$venv/bin:/usr/bin:/bin HOME=/tmp \
      DJANGO_STATIC_ROOT=$venv/static MZFORGE_ENVIRONMENT=check DJANGO_SECRET_KEY=check-only-key \
      DJANGO_ALLOWED_HOSTS=127.0.0.1 DJANGO_SSL_REDIRECT=0 DATABASE_URL=sqlite:////tmp/check.sqlite3 \
      /bin/sh -c "cd $venv/app && exec ./docker-entrypoint.sh gunicorn mzforge_web.wsgi:application --bind 127.0.0.1:$port --workers 1" \
      >"$dist/check-$arch.log" 2>&1 &
    tries=150
  fi
  pid=$!
  ok=false
  for _ in $(seq 1 $tries); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >"$dist/readyz-$arch.json" 2>/dev/null; then ok=true; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  home=$(curl -fsS "http://127.0.0.1:$port/" 2>/dev/null | grep -o '/static/portal/style\.[0-9a-f]*\.css' || true)
  css=false
  [ -n "$home" ] && curl -fsS -o /dev/null "http://127.0.0.1:$port$home" && css=true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$root/tmp/check.sqlite3"
  [ -z "$scratch" ] || rm -rf "$scratch"
  $ok || { echo "build-image: the site in the linux/$arch image did not become ready" >&2; cat "$dist/check-$arch.log" >&2; exit 1; }
  [ -n "$home" ] || { echo "build-image: the home page does not link hashed static files" >&2; exit 1; }
  $css || { echo "build-image: $home is not served" >&2; exit 1; }
  log "check linux/$arch: /readyz -> $(cat "$dist/readyz-$arch.json"); home page links $home (served)"
done
