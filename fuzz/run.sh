#!/usr/bin/env bash
# Runs every fuzz target for SECONDS_PER_TARGET seconds (default 60) and prints, per target,
# the executions, the time and the result. Needs the nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`). Seeds come from `python3 fuzz/seed.py` (run here if the corpus
# is missing); new coverage found is kept in fuzz/corpus/<target>, crashes in
# fuzz/artifacts/<target>, full logs in fuzz/logs/<target>.log.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Environment: FUZZ_NICE (default 19), FUZZ_JOBS (parallel processes per target, default 1),
# FUZZ_RSS_MB (libFuzzer's memory limit, default 2048), FUZZ_TIMEOUT (seconds for one input
# before it counts as a hang, default 60: wall time, and nice 19 on a busy machine is slow),
# FUZZ_DETECT_LEAKS (default 1), FUZZ_SANITIZER (address | none, default address).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(read kernels deconvolve parquet_roundtrip events)
fi
nice_level="${FUZZ_NICE:-19}"
sanitizer="${FUZZ_SANITIZER:-address}"
[ -d corpus ] || python3 seed.py
mkdir -p logs
# Build once, then run the binaries: sources edited during a long run do not trigger rebuilds.
# The cargo-fuzz crate is targets/ (its own workspace); the bodies are this folder's crate.
cargo +nightly fuzz build --fuzz-dir targets -O --sanitizer "$sanitizer" >/dev/null
bin="targets/target/$(rustc -vV | sed -n 's/^host: //p')/release"

jobs=()
if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then
  jobs=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
fi

failed=0
printf '%-18s %12s %8s %10s  %s\n' target executions seconds execs/s result
for t in "${targets[@]}"; do
  log="logs/$t.log"
  set +e
  mkdir -p "artifacts/$t"
  nice -n "$nice_level" "$bin/$t" -artifact_prefix="artifacts/$t/" "corpus/$t" \
    -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-60}" -detect_leaks="${FUZZ_DETECT_LEAKS:-1}" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
    -malloc_limit_mb="${FUZZ_RSS_MB:-2048}" -print_final_stats=1 ${jobs[@]+"${jobs[@]}"} \
    >"$log" 2>&1
  status=$?
  set -e
  # With FUZZ_JOBS > 1 libFuzzer copies each finished job's log (fuzz-N.log) into its own
  # output, so the log alone holds every job's count (adding fuzz-*.log counted them twice).
  runs=$(grep 'stat::number_of_executed_units' "$log" | awk '{s+=$2} END {print s+0}' || true)
  secs=$(grep -h 'stat::.*\|Done [0-9]* runs in' "$log" | grep -o 'in [0-9]* second' | grep -o '[0-9]*' | tail -1 || true)
  secs="${secs:-$seconds}"
  [ ${#jobs[@]} -eq 0 ] || rm -f fuzz-*.log
  if [ "$status" -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $status): $(grep -hE 'ERROR: libFuzzer|panicked at|Test unit written' "$log" | head -3 | tr '\n' ' ')"
    failed=1
  fi
  rate=$(( runs / (secs > 0 ? secs : 1) ))
  printf '%-18s %12s %8s %10s  %s\n' "$t" "$runs" "$secs" "$rate" "$result"
done
exit "$failed"
