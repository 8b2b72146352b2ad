#!/usr/bin/env bash
# Reading from a local S3 server (moto, 127.0.0.1) against reading the same file from disk.
#
#   batch-runner/bench-s3.sh [MZFORGE_BINARY] [RUNS]
#
# For each input, `mzforge run` from disk and from s3:// (output to a local directory either way,
# so only the input side differs), RUNS times each, alternating; prints the median wall time, the
# ratio s3/disk and the peak RSS. Two modes: `read` (--ms-levels 99: every spectrum is parsed and
# hashed but none is decoded or centroided: the reading path alone) and `full` (the whole run).
# The inputs: BSA1.mzML (13.6 MB) and a 57 MB MGF made of SmallCalibratibleYeast.mgf 100 times.
# Wall time is what the goal is about; CPU time (user+sys, median) is shown too because on a
# machine shared with other builds the wall time of short runs is mostly scheduling noise.
# Exits 1 if a `read` ratio is above 1.3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${1:-$root/target/release/mzforge}
runs=${2:-7}
data="$root/../shared/data"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null; rm -rf "$work"' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1

for _ in $(seq 1 100); do cat "$data/mgf/SmallCalibratibleYeast.mgf"; done >"$work/yeast_x100.mgf"
cp "$data/runs/BSA1.mzML" "$work/BSA1.mzML"
sleep 1
python3 - "$work" <<'EOF'
import sys, time, boto3
for _ in range(50):
    try:
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bench")
        break
    except Exception:
        time.sleep(0.2)
for name in ["BSA1.mzML", "yeast_x100.mgf"]:
    s3.upload_file(f"{sys.argv[1]}/{name}", "bench", name)
EOF

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timed() { # prints "seconds max_rss_kb user_s sys_s"; seconds to the millisecond (GNU time's %e
  # has two decimals, too coarse for the 50 ms BSA1 read)
  rm -rf "$work/out"
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f "%M %U %S" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$(python3 -c "print(f'{$end - $start:.3f}')") $(cat "$work/time")"
}
fail=0
printf '%-16s %-5s %8s %8s %6s %10s %10s %9s %11s %11s\n' input mode disk_s s3_s ratio disk_cpu_s s3_cpu_s cpu_ratio disk_rss_MB s3_rss_MB
for name in BSA1.mzML yeast_x100.mgf; do
  for mode in read full; do
    extra=(); [ "$mode" = read ] && extra=(--ms-levels 99)
    : >"$work/d"; : >"$work/s"
    for _ in $(seq 1 "$runs"); do
      timed "$bin" run "$work/$name" --out "$work/out" -q "${extra[@]}" >>"$work/d"
      timed "$bin" run "s3://bench/$name" --out "$work/out" -q "${extra[@]}" >>"$work/s"
    done
    d=$(cut -d' ' -f1 "$work/d" | median); s=$(cut -d' ' -f1 "$work/s" | median)
    dm=$(cut -d' ' -f2 "$work/d" | sort -n | tail -1); sm=$(cut -d' ' -f2 "$work/s" | sort -n | tail -1)
    dc=$(awk '{print $3 + $4}' "$work/d" | median); sc=$(awk '{print $3 + $4}' "$work/s" | median)
    ratio=$(python3 -c "print(f'{$s/$d:.2f}')"); cratio=$(python3 -c "print(f'{$sc/$dc:.2f}')")
    printf '%-16s %-5s %8s %8s %6s %10s %10s %9s %11s %11s\n' "$name" "$mode" "$d" "$s" "$ratio" "$dc" "$sc" "$cratio" $((dm / 1024)) $((sm / 1024))
    if [ "$mode" = read ] && python3 -c "import sys; sys.exit(0 if $s/$d > 1.3 else 1)"; then fail=1; fi
  done
done
exit $fail
