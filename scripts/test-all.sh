#!/usr/bin/env bash
# Builds and tests every configuration: one build directory each under
# build/, each tested with ctest. Exits non-zero if any configuration fails.
# Usage: scripts/test-all.sh [config ...]   (default: all of them)
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc 2>/dev/null || echo 2)

# name | cmake options
configs=(
  "default|"
  "size-header|-DZMALLOC_SIZE_HEADER=ON"
  "asan-ubsan|-DZMALLOC_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug"
  "tsan|-DZMALLOC_SANITIZE=thread"
  "jemalloc|-DZMALLOC_BACKEND=jemalloc"
  "tcmalloc|-DZMALLOC_BACKEND=tcmalloc"
  "mimalloc|-DZMALLOC_BACKEND=mimalloc"
  "jemalloc-asan-ubsan|-DZMALLOC_BACKEND=jemalloc -DZMALLOC_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug"
  "jemalloc-tsan|-DZMALLOC_BACKEND=jemalloc -DZMALLOC_SANITIZE=thread"
)

wanted=("$@")
mkdir -p build
failed=()
for entry in "${configs[@]}"; do
  name=${entry%%|*}
  opts=${entry#*|}
  if ((${#wanted[@]})) && [[ " ${wanted[*]} " != *" $name "* ]]; then continue; fi
  echo "=== $name: cmake $opts"
  dir=build/$name
  # shellcheck disable=SC2086
  if cmake -S . -B "$dir" -DZMALLOC_BUILD_BENCH=ON -DZMALLOC_BUILD_EXAMPLES=ON $opts >"$dir.configure.log" 2>&1 \
     && cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1; then
    if ! (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 300); then failed+=("$name"); fi
  else
    cat "$dir.configure.log" "$dir.build.log" 2>/dev/null | tail -40
    failed+=("$name (build)")
  fi
done

# The benchmark's quick mode, as a smoke run of the figures it prints.
if [[ -x build/default/bench/bench_overhead ]]; then
  build/default/bench/bench_overhead --quick
fi

if ((${#failed[@]})); then
  echo "FAILED configurations: ${failed[*]}"
  exit 1
fi
echo "all configurations passed"
