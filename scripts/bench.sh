#!/usr/bin/env bash
# The performance figures (docs/performance.md): builds each backend in release form
# (build/rel-<backend>, no tests, no testing hooks), then prints
#  1. bench_overhead's table (time per malloc+free pair, zmalloc against the
#     same backend's raw malloc/free, interleaved rounds, median ratio), and
#  2. scripts/instructions.sh's table (instructions per pair, cachegrind).
# Usage: scripts/bench.sh [--rounds N] [backend ...]   (default: all four, 25 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=25
if [[ ${1:-} == --rounds ]]; then rounds=$2; shift 2; fi
backends=("$@")
((${#backends[@]})) || backends=(libc jemalloc tcmalloc mimalloc)
dirs=()
for b in "${backends[@]}"; do
  d=build/rel-$b
  cmake -S . -B "$d" -DZMALLOC_BACKEND="$b" -DZMALLOC_BUILD_TESTS=OFF -DZMALLOC_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$d" -j "$(nproc)" --target bench_overhead bench_instructions >/dev/null
  dirs+=("$d")
done
for d in "${dirs[@]}"; do
  echo "== $d/bench/bench_overhead --rounds $rounds"
  "$d/bench/bench_overhead" --rounds "$rounds"
  echo
done
echo "== scripts/instructions.sh ${dirs[*]}"
scripts/instructions.sh "${dirs[@]}"
