#!/usr/bin/env bash
# Builds and tests every configuration: one build directory each under
# build/, each tested with ctest. Exits non-zero if any configuration fails.
# Usage: scripts/test-all.sh [config ...]   (default: all of them)
set -uo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc 2>/dev/null || echo 2)

# name | cmake options [| environment for cmake, e.g. CC=...] [| environment
# for ctest, e.g. ZMALLOC_FAST_PATHS=0]. Every one is
# built with -Werror (ZMALLOC_WERROR). The valgrind configuration runs every
# test binary under memcheck; --fair-sched keeps busy threads from starving
# the one that waits on a fork child (valgrind's default lock is unfair).
# valgrind runs on libc and jemalloc: on tcmalloc and mimalloc it replaces only
# part of their API, so their sizes and statistics no longer describe the
# blocks (not supported; docs/platforms.md).
# musl builds with musl-gcc on the header-only cmocka shim (Debian's cmocka
# is built for glibc); i386 and arm64 are cross builds (cmake/toolchains/),
# arm64's tests running under qemu-user.
configs=(
  "default|"
  "default-testing|-DZMALLOC_TESTING=ON"
  "size-header|-DZMALLOC_SIZE_HEADER=ON -DZMALLOC_TESTING=ON"
  "redis-names|-DZMALLOC_EXPORT_REDIS_NAMES=ON -DZMALLOC_TESTING=ON"
  "fast-paths-off|-DZMALLOC_TESTING=ON||ZMALLOC_FAST_PATHS=0"
  "asan-ubsan|-DZMALLOC_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug -DZMALLOC_TESTING=ON"
  "tsan|-DZMALLOC_SANITIZE=thread -DZMALLOC_TESTING=ON"
  "jemalloc|-DZMALLOC_BACKEND=jemalloc -DZMALLOC_TESTING=ON"
  "jemalloc-size-header|-DZMALLOC_BACKEND=jemalloc -DZMALLOC_SIZE_HEADER=ON -DZMALLOC_TESTING=ON"
  "jemalloc-shared|-DZMALLOC_BACKEND=jemalloc -DZMALLOC_JEMALLOC_PRIVATE=OFF -DZMALLOC_TESTING=ON"
  "tcmalloc|-DZMALLOC_BACKEND=tcmalloc -DZMALLOC_TESTING=ON"
  "tcmalloc-size-header|-DZMALLOC_BACKEND=tcmalloc -DZMALLOC_SIZE_HEADER=ON -DZMALLOC_TESTING=ON"
  "mimalloc|-DZMALLOC_BACKEND=mimalloc -DZMALLOC_TESTING=ON"
  "mimalloc-size-header|-DZMALLOC_BACKEND=mimalloc -DZMALLOC_SIZE_HEADER=ON -DZMALLOC_TESTING=ON"
  "jemalloc-asan-ubsan|-DZMALLOC_BACKEND=jemalloc -DZMALLOC_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug -DZMALLOC_TESTING=ON"
  "jemalloc-tsan|-DZMALLOC_BACKEND=jemalloc -DZMALLOC_SANITIZE=thread -DZMALLOC_TESTING=ON"
  "tcmalloc-asan-ubsan|-DZMALLOC_BACKEND=tcmalloc -DZMALLOC_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug -DZMALLOC_TESTING=ON"
  "mimalloc-asan-ubsan|-DZMALLOC_BACKEND=mimalloc -DZMALLOC_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug -DZMALLOC_TESTING=ON"
  "musl|-DZMALLOC_CMOCKA_SHIM=ON -DZMALLOC_CXX_TESTS=OFF -DZMALLOC_TESTING=ON|CC=musl-gcc"
  "i386|-DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/i386.cmake -DZMALLOC_TESTING=ON"
  "arm64|-DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm64.cmake -DZMALLOC_TESTING=ON"
  "arm64-size-header|-DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm64.cmake -DZMALLOC_SIZE_HEADER=ON -DZMALLOC_TESTING=ON"
  "valgrind|-DCMAKE_BUILD_TYPE=Debug -DZMALLOC_TESTING=ON -DCMAKE_CROSSCOMPILING_EMULATOR=env;ZMALLOC_UNDER_VALGRIND=1;valgrind;--fair-sched=yes;--error-exitcode=1;--leak-check=full;--errors-for-leak-kinds=definite,indirect;--quiet"
  "jemalloc-valgrind|-DZMALLOC_BACKEND=jemalloc -DCMAKE_BUILD_TYPE=Debug -DZMALLOC_TESTING=ON -DCMAKE_CROSSCOMPILING_EMULATOR=env;ZMALLOC_UNDER_VALGRIND=1;valgrind;--fair-sched=yes;--error-exitcode=1;--leak-check=full;--errors-for-leak-kinds=definite,indirect;--quiet"
)

wanted=("$@")
mkdir -p build
failed=()
# Seconds per step, printed at the end (CI must stay under 60 minutes).
timings=() step_name="" step_start=$SECONDS
step() {
  [[ -n $step_name ]] && timings+=("$step_name $((SECONDS - step_start))")
  step_name=$1 step_start=$SECONDS
}
total_pass=0
total_fail=0

# Adds one ctest run's counts to the totals: ctest counts a skipped test
# (SKIP_RETURN_CODE) among the passed ones and lists it as "(Skipped)".
total_skip=0
count_ctest() {
  local line fail all skip
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$1" | tail -1) || true
  [[ -n $line ]] || return 0
  fail=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  all=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
  skip=$(grep -cE "^[[:space:]]+[0-9]+ - .* \(Skipped\)$" "$1") || true
  total_pass=$((total_pass + all - fail - skip))
  total_fail=$((total_fail + fail))
  total_skip=$((total_skip + skip))
}
# Emulated runs (arm64 under qemu-user): a test gets 120 s. One that times
# out is the library's failure unless a plain-malloc control with no zmalloc
# (tests/emulator/plain_threads.c) hangs under the same emulator too: then
# it is reported as skipped, with that reason, and never hangs CI.
emulator_timeouts() { # dir log emulator
  local timed_out n
  timed_out=$(grep -cE "\*\*\*Timeout" "$2") || true
  ((timed_out > 0)) || return 1
  [[ -x $1/tests/emulator_control ]] || return 1
  if timeout 60 "$3" "$1/tests/emulator_control"; then return 1; fi
  n=$timed_out
  echo "SKIPPED ($n): timed out under $3, and so did a plain-malloc control with no zmalloc (an emulator hang):"
  grep -E "\*\*\*Timeout" "$2" | sed 's/^/  /'
  total_fail=$((total_fail - n))
  total_skip=$((total_skip + n))
  return 0
}

# Whether this kernel runs a 32-bit x86 program (some have no IA-32 emulation).
runs_i386() {
  printf 'int main(void) { return 0; }\n' >build/i386-probe.c
  i686-linux-gnu-gcc build/i386-probe.c -o build/i386-probe 2>/dev/null && build/i386-probe 2>/dev/null
}

for entry in "${configs[@]}"; do
  IFS='|' read -r name opts env ctest_env <<<"$entry"
  if ((${#wanted[@]})) && [[ " ${wanted[*]} " != *" $name "* ]]; then continue; fi
  step "$name"
  echo "=== $name: cmake $opts${ctest_env:+ (tests run with $ctest_env)}"
  dir=build/$name
  timeout=600
  emu=
  [[ $name == arm64* ]] && emu=qemu-aarch64
  # i386 runs natively where the kernel runs 32-bit x86 programs. On one
  # without IA-32 emulation it is built (with -Werror) and its tests are
  # reported as skipped, with that reason: under qemu-i386 the RSS figures
  # and the fuzz replays fail for the emulator's sake.
  native=1
  [[ $name == i386 ]] && ! runs_i386 && native=0
  [[ -n $emu ]] && timeout=120
  # shellcheck disable=SC2086
  if env $env cmake -S . -B "$dir" -DZMALLOC_WERROR=ON -DZMALLOC_BUILD_BENCH=ON -DZMALLOC_BUILD_EXAMPLES=ON $opts \
       >"$dir.configure.log" 2>&1 \
     && cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1; then
    if ((!native)); then
      echo "=== $name: SKIPPED tests: this kernel runs no 32-bit x86 programs (no IA-32 emulation); built with -Werror"
      total_skip=$((total_skip + 1))
      continue
    fi
    # shellcheck disable=SC2086
    (cd "$dir" && env $ctest_env ctest --output-on-failure -j "$jobs" --timeout "$timeout") | tee "$dir.ctest.log"
    rc=${PIPESTATUS[0]}
    count_ctest "$dir.ctest.log"
    if ((rc != 0)); then
      fails=$(grep -cE "\*\*\*(Failed|Exception|Not Run)" "$dir.ctest.log") || true
      if [[ -n $emu ]] && ((fails == 0)) && emulator_timeouts "$dir" "$dir.ctest.log" "$emu"; then :; else failed+=("$name"); fi
    fi
  else
    cat "$dir.configure.log" "$dir.build.log" 2>/dev/null | tail -40
    failed+=("$name (build)")
  fi
done

# The benchmark's quick mode, as a smoke run of the figures it prints.
if [[ -x build/default/bench/bench_overhead ]]; then
  build/default/bench/bench_overhead --quick
fi

# Adds one pass or fail to the totals.
tally() { # name status
  if (($2 == 0)); then total_pass=$((total_pass + 1)); else failed+=("$1"); total_fail=$((total_fail + 1)); fi
}
want() { ((${#wanted[@]} == 0)) || [[ " ${wanted[*]} " == *" $1 "* ]]; }

# The Debian packages: built from the default build, installed, used through
# pkg-config and find_package, removed.
if want deb && [[ -d build/default ]]; then
  step deb
  echo "=== deb: scripts/check-deb.sh build/default"
  scripts/check-deb.sh build/default
  tally deb $?
fi

# zmrun on programs nobody here wrote (python3, sort, gzip, gcc, git) and an
# allocation loop, next to memusage and heaptrack, in its quick form: the
# table is printed for the log (no time is asserted); the step fails if any
# program behaves differently under zmrun (output, exit status, no report).
if want zmrun-overhead && [[ -x build/default/zmrun ]]; then
  step zmrun-overhead
  echo "=== zmrun-overhead: scripts/zmrun-overhead.sh build/default/zmrun --quick"
  scripts/zmrun-overhead.sh build/default/zmrun --quick --workdir build/zmrun-overhead
  tally zmrun-overhead $?
fi

# The Rust crate (bindings/rust): cargo test --offline with rustup's and
# Debian's cargo (rustc 1.63), libc and jemalloc backends; 77 = no cargo.
if want rust; then
  step rust
  echo "=== rust: scripts/test-rust.sh libc jemalloc"
  ZMALLOC_JOBS=$jobs scripts/test-rust.sh libc jemalloc
  rc=$?
  if ((rc == 77)); then
    echo "=== rust: SKIPPED, no cargo (apt-get install -y cargo)"
    total_skip=$((total_skip + 1))
  else
    tally rust $rc
  fi
fi

# Redis 7.0.15 from Debian's source package, on this library (libc and jemalloc,
# plain and _FORTIFY_SOURCE=3): each variant's Tcl suites must end with 0 [err]
# and 0 [exception]. Redis on its own zmalloc (baseline) is a manual run.
redis_variants=zm-libc,zm-jemalloc,zm-libc-fortify,zm-jemalloc-fortify
if want redis; then
  step redis
  echo "=== redis: scripts/redis-dropin.sh --variants $redis_variants"
  scripts/redis-dropin.sh --variants "$redis_variants" | tee build/redis-dropin.log
  rc=${PIPESTATUS[0]}
  n=0
  while read -r _ variant ok _ err _ exc _; do
    variant=${variant%:}
    n=$((n + 1))
    if [[ $err == 0 && $exc == 0 && $ok -gt 0 ]]; then tally "redis-$variant" 0; else tally "redis-$variant" 1; fi
  done < <(grep -E '^redis [a-z-]+: [0-9]+ ok, [0-9]+ err, [0-9]+ exception' build/redis-dropin.log | sort -u)
  if ((rc != 0 || n == 0)); then tally "redis (script exit $rc, $n variants)" 1; fi
fi

# Debian 13 (trixie) and unstable (sid): the same tree built and tested in a
# root filesystem of each release (scripts/debian-root.sh makes it once with
# debootstrap from Debian's archive, in a cache outside the clone), with that
# release's compiler, glibc, cmake and allocators. Every backend is built
# with -Werror and its whole suite run (but the man-page checks, label docs,
# which do not depend on the release: Debian 12's run has them); libc also
# with the size header. Then the benchmark's summary rows, the fast paths,
# zmalloc against Redis 7.0's design (bench_vs_redis), and one table of all.
release_configs=(
  "libc|"
  "libc-size-header|-DZMALLOC_SIZE_HEADER=ON -DZMALLOC_BUILD_ZMRUN=OFF"
  "jemalloc|-DZMALLOC_BACKEND=jemalloc -DZMALLOC_BUILD_ZMRUN=OFF"
  "tcmalloc|-DZMALLOC_BACKEND=tcmalloc -DZMALLOC_BUILD_ZMRUN=OFF"
  "mimalloc|-DZMALLOC_BACKEND=mimalloc -DZMALLOC_BUILD_ZMRUN=OFF"
)
for suite in trixie sid; do
  want "$suite" || continue
  step "$suite-root"
  echo "=== $suite: scripts/debian-root.sh make $suite"
  if ! scripts/debian-root.sh make "$suite"; then
    tally "$suite (debootstrap)" 1
    continue
  fi
  for entry in "${release_configs[@]}"; do
    IFS='|' read -r cname opts <<<"$entry"
    name=$suite-$cname
    dir=build/$name
    step "$name"
    echo "=== $name: cmake $opts (in the $suite root)"
    if ! scripts/debian-root.sh run "$suite" "cmake -S . -B $dir -DZMALLOC_WERROR=ON -DZMALLOC_TESTING=ON \
         -DZMALLOC_BUILD_BENCH=ON -DZMALLOC_BUILD_EXAMPLES=ON $opts >$dir.configure.log 2>&1 \
         && cmake --build $dir -j $jobs >$dir.build.log 2>&1"; then
      cat "$dir.configure.log" "$dir.build.log" 2>/dev/null | tail -40
      failed+=("$name (build)")
      continue
    fi
    scripts/debian-root.sh run "$suite" "cd $dir && ctest --output-on-failure -j $jobs --timeout 600 -LE docs" \
      | tee "$dir.ctest.log"
    ((PIPESTATUS[0] == 0)) || failed+=("$name")
    count_ctest "$dir.ctest.log"
    scripts/debian-root.sh run "$suite" "$dir/examples/info_memory --fast-paths; \
      $dir/bench/bench_overhead --quick --rounds 3 | grep -E '^\\| [a-z].* \\| (fixed64|mixed 8..520) \\|'" \
      | tee "$dir.bench.log"
    scripts/debian-root.sh run "$suite" "scripts/instructions.sh $dir | tail -1" | tee -a "$dir.bench.log"
    scripts/debian-root.sh run "$suite" "$dir/bench/bench_vs_redis --rounds 3 | tail -2" | tee "$dir.vs-redis.log"
  done
done
if want trixie || want sid; then
  names=()
  for suite in trixie sid; do
    want "$suite" || continue
    for entry in "${release_configs[@]}"; do names+=("$suite-${entry%%|*}"); done
  done
  echo "=== releases: scripts/release-summary.sh"
  scripts/release-summary.sh "${names[@]}"
fi

# The libFuzzer targets, FUZZ_SECONDS (default 60) each; clang only.
if want fuzz; then
  if command -v clang++ >/dev/null; then
    step fuzz
    echo "=== fuzz: scripts/fuzz.sh ${FUZZ_SECONDS:-60}"
    if FUZZ_JOBS=$jobs scripts/fuzz.sh "${FUZZ_SECONDS:-60}"; then
      total_pass=$((total_pass + 1))
    else
      failed+=("fuzz")
      total_fail=$((total_fail + 1))
    fi
  else
    echo "=== fuzz: SKIPPED, clang not found (apt-get install -y clang libclang-rt-14-dev)"
    total_skip=$((total_skip + 1))
  fi
fi

# The layers, top down (docs/ARCHITECTURE.md): no file calls or includes one
# above it or sits in a circle (scripts/rooms.py: includes and build/default's objects).
if want rooms && [[ ! -d build/default ]]; then
  echo "=== rooms: SKIPPED, no build/default to read objects from (run the default configuration first)"
  total_skip=$((total_skip + 1))
elif want rooms; then
  step rooms
  layers='include/*,src/alloc,src/alloc_core,src/alloc_fast_*,src/free_*,src/figures,src/redis_names,src/version,src/jemalloc_api,src/preload/*,tools/*;src/counter*;src/block*,src/fault;src/backend,src/backends/*,src/fast_path;src/os*'
  echo "=== rooms: scripts/rooms.py --build build/default --layers '$layers' ."
  python3 scripts/rooms.py --build build/default --layers "$layers" .
  tally rooms $?
fi

step ""
echo "=== seconds per step"
for t in "${timings[@]}"; do printf '  %-28s %6d\n' ${t}; done
printf '  %-28s %6d\n' total "$SECONDS"

summary="ctest: $total_pass passed, $total_fail failed, $total_skip skipped"
if ((${#failed[@]})); then
  echo "FAILED configurations: ${failed[*]}"
  echo "$summary"
  exit 1
fi
echo "all configurations passed"
echo "$summary"
