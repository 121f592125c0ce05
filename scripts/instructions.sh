#!/usr/bin/env bash
# Instructions per malloc(64)+free pair, raw backend vs zmalloc, counted by
# valgrind's cachegrind (exact and repeatable, unlike timings on a shared
# machine). For each build directory given (default: the backends' builds of
# scripts/test-all.sh), runs bench/bench_instructions with N = 100000 and
# 200000 pairs and divides the difference by 100000; the same for steps of
# the mixed pattern (free one of 1024 live blocks, allocate 8..520 bytes).
# Usage: scripts/instructions.sh [build-dir ...]
set -euo pipefail
cd "$(dirname "$0")/.."
dirs=("$@")
((${#dirs[@]})) || dirs=(build/default build/jemalloc build/tcmalloc build/mimalloc)

count() { # exe variant n [mixed] -> instructions
  local out
  out=$(valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$@" 2>&1 >/dev/null)
  sed -nE 's/.*I[[:space:]]+refs:[[:space:]]+([0-9,]+).*/\1/p' <<<"$out" | tr -d ,
}

echo "| build | allocator | raw pair | zmalloc pair | extra | raw mixed step | zmalloc mixed step | extra |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for d in "${dirs[@]}"; do
  exe=$d/bench/bench_instructions
  [[ -x $exe ]] || { echo "| $d | (not built) | | | | | | |"; continue; }
  lib=$(sed -nE 's/^#define ZMALLOC_LIB "(.*)"/\1/p' "$d/include/zmalloc_config.h")
  r1=$(count "$exe" raw 100000); r2=$(count "$exe" raw 200000)
  z1=$(count "$exe" zm 100000); z2=$(count "$exe" zm 200000)
  raw=$(((r2 - r1) / 100000)); zm=$(((z2 - z1) / 100000))
  r1=$(count "$exe" raw 100000 mixed); r2=$(count "$exe" raw 200000 mixed)
  z1=$(count "$exe" zm 100000 mixed); z2=$(count "$exe" zm 200000 mixed)
  rawm=$(((r2 - r1) / 100000)); zmm=$(((z2 - z1) / 100000))
  echo "| $d | $lib | $raw | $zm | $((zm - raw)) | $rawm | $zmm | $((zmm - rawm)) |"
done
