#!/usr/bin/env bash
# Run each cargo-fuzz target of fuzz/ for a fixed time; print executions and crashes per target
# and in total (exit 1 when any target crashed). Needs the nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`); builds in $DUBAN_FUZZ_TARGET_DIR (~/.cache/duban-fuzz-target).
#   scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET ...]
# Crash inputs land in fuzz/artifacts/<target>/; turn each into a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
[ $# -gt 0 ] && shift
export CARGO_TARGET_DIR="${DUBAN_FUZZ_TARGET_DIR:-$HOME/.cache/duban-fuzz-target}"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz for the nightly toolchain is missing: cargo install cargo-fuzz" >&2
  exit 2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi
total=0
crashed=0
printf '%-16s %14s %8s\n' target executions crashes
for t in "${targets[@]}"; do
  log="$(mktemp)"
  mkdir -p "fuzz/artifacts/$t" "fuzz/corpus/$t"
  before=$(find "fuzz/artifacts/$t" -type f | wc -l)
  rc=0
  (cd fuzz && cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -print_final_stats=1) \
    >"$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  after=$(find "fuzz/artifacts/$t" -type f | wc -l)
  found=$((after - before))
  if [ "$rc" -ne 0 ] && [ "$found" -eq 0 ]; then
    echo "fuzz.sh: $t failed without a crash input (build error?); its log:" >&2
    tail -20 "$log" >&2
    found=1
  fi
  printf '%-16s %14s %8s\n' "$t" "${execs:-0}" "$found"
  total=$((total + ${execs:-0}))
  crashed=$((crashed + found))
  rm -f "$log"
done
printf '%-16s %14s %8s\n' total "$total" "$crashed"
[ "$crashed" -eq 0 ]
