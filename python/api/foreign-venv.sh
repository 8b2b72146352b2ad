#!/usr/bin/env bash
# Makes a virtual environment for another architecture's Python without running it:
#
#   python/api/foreign-venv.sh ROOT VENV ARCH PIP-ARGS...     # e.g. ... rootfs-arm64 /opt/mzforge-api arm64 'x.whl[api]'
#
# ROOT is a root file system (debian-rootfs.sh) with /usr/bin/python3.X; VENV the venv's path
# inside it. The layout is what `python3 -m venv` makes (pyvenv.cfg, bin/python -> /usr/bin/python3,
# lib/python3.X/site-packages); the host's pip installs the packages into site-packages as binary
# wheels for ARCH's manylinux (glibc up to bookworm's 2.36) and CPython 3.X (`--platform`,
# `--only-binary=:all:`, `--target`), and the console scripts get the venv's python as interpreter.
# Needs a host pip; the host's Python version does not matter.
set -euo pipefail
root=$1 venv=$2 arch=$3
shift 3
case "$arch" in arm64) machine=aarch64 ;; amd64) machine=x86_64 ;; *) echo "foreign-venv: arch $arch?" >&2; exit 2 ;; esac
py=$(cd "$root/usr/bin" && ls python3.[0-9]* | grep -E '^python3\.[0-9]+$' | sort -V | tail -1)
version=${py#python}
platforms=(--platform "manylinux2014_$machine")
for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_$machine"); done
dir="$root$venv"
site="$dir/lib/$py/site-packages"
mkdir -p "$dir/bin" "$site" "$dir/include"
ln -sfn lib "$dir/lib64"
ln -sfn /usr/bin/python3 "$dir/bin/python"
ln -sfn python "$dir/bin/python3"
ln -sfn python "$dir/bin/$py"
printf 'home = /usr/bin\ninclude-system-site-packages = false\nversion = %s\n' "$version" >"$dir/pyvenv.cfg"
env -u PIP_FIND_LINKS python3 -m pip install --quiet --no-cache-dir --disable-pip-version-check --no-compile \
  --no-warn-conflicts --root-user-action=ignore \
  "${platforms[@]}" --implementation cp --python-version "$version" --only-binary=:all: \
  --target "$site" "$@"
if [ -d "$site/bin" ]; then
  for script in "$site"/bin/*; do
    name=$(basename "$script")
    if head -c 2 "$script" | grep -q '#!'; then
      { echo "#!$venv/bin/python"; tail -n +2 "$script"; } >"$dir/bin/$name"
      chmod 755 "$dir/bin/$name"
    else
      mv "$script" "$dir/bin/$name"
    fi
  done
  rm -rf "$site/bin"
fi
