#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build/fuzz and runs
# each for the given number of seconds (default 60) on a copy of its seed
# corpus (fuzz/corpus/<name>/ is never grown by a run). Prints one summary line
# per target with its number of executions; exits non-zero on any crash.
# Usage: scripts/fuzz.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
jobs=${FUZZ_JOBS:-2}
dir=build/fuzz
if ! command -v clang >/dev/null || ! command -v clang++ >/dev/null; then
  echo "fuzz: clang not found" >&2
  exit 1
fi

mkdir -p build
CC=clang CXX=clang++ cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DZMALLOC_SANITIZE=address,undefined -DZMALLOC_BUILD_FUZZERS=ON \
  -DZMALLOC_BUILD_TESTS=OFF -DZMALLOC_BUILD_BENCH=OFF -DZMALLOC_BUILD_EXAMPLES=OFF \
  >"$dir.configure.log" 2>&1 || { tail -40 "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1 || { tail -40 "$dir.build.log"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/zm_fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
status=0
summary=()
for target in alloc parsers; do
  exe=$dir/fuzz/fuzz_$target
  corpus=$work/corpus_$target
  mkdir -p "$corpus" "$work/artifacts_$target"
  cp fuzz/corpus/$target/* "$corpus"/
  log=$work/$target.log
  echo "=== fuzz_$target: ${secs}s"
  rc=0
  "$exe" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/artifacts_$target/" "$corpus" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  if ((rc != 0)); then
    tail -60 "$log"
    mkdir -p build/fuzz-artifacts
    cp "$work/artifacts_$target"/* build/fuzz-artifacts/ 2>/dev/null || true
    summary+=("fuzz_$target: FAILED (exit $rc) after ${execs:-?} executions; crash inputs in build/fuzz-artifacts/")
    status=1
  else
    summary+=("fuzz_$target: ${execs:-?} executions in ${secs} s, ${cov:-?} coverage points, no failures")
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
