#!/usr/bin/env bash
# Proves that Redis 7.0.15 builds and passes its own Tcl suites with this
# library in place of its zmalloc.c/zmalloc.h.
#
# Usage: scripts/redis-dropin.sh [options] [WORKDIR]
#   WORKDIR            where everything goes (default: build/redis under the
#                      repository root; build/ is git-ignored)
#   --variants a,b,... build/test only these (default: the first five)
#                      baseline, zm-libc, zm-jemalloc, zm-libc-fortify,
#                      zm-jemalloc-fortify, redis-jemalloc (Redis's own
#                      `make MALLOC=jemalloc`, its patched jemalloc)
#   --bench            instead of the Tcl suites: start baseline, zm-libc and
#                      zm-jemalloc (those of --variants) on 127.0.0.1, load the
#                      same data, print INFO memory side by side and the median
#                      of 3 interleaved redis-benchmark rounds (reuses a build
#                      of the same library, header and flags)
#   --defrag-bench     instead of the Tcl suites: redis-jemalloc and
#                      zm-jemalloc, the same fragmenting data set, activedefrag
#                      on, fragmentation, RSS, time, hits and misses side by
#                      side (FRAG_KEYS, FRAG_VALUE, FRAG_DEL, FRAG_TIMEOUT in
#                      the environment change the data set; reuses builds too)
#   --latency          keep the defrag tests' latency bound (max cycle <= 30
#                      ms), which runtest's --no-latency drops by default: on
#                      2 shared cores it fails for Redis's own jemalloc build
#                      too (docs/redis-dropin.md)
#   --clients N        Tcl test clients (default 3)
#   --jobs N           make -j (default 2)
#   -h, --help
# Exit status: 0 when every variant built and its suites had no [err] and no
# [exception]; 1 otherwise; 2 for a usage or setup error. Each variant's
# suites end with the line "redis VARIANT: N ok, N err, N exception, N
# skipped (reasons)", which scripts/test-all.sh reads.
#
# Needs (Debian 12): build-essential cmake dpkg-dev tcl libjemalloc-dev,
# and root the first time (it adds a deb-src entry and runs apt-get update).
#
# The steps, in the files they live in (each explains its choices):
#   1. scripts/redis/source.sh  Redis 7.0.15 from Debian's source package,
#                               without Debian's patches
#   2. scripts/redis/build.sh   our library, Redis's deps/ once, and each
#                               variant: what changes in Redis's tree, and how
#                               the jemalloc variants opt in (USE_JEMALLOC)
#   3. scripts/redis/suites.sh  Redis's Tcl suites (SUITES below), defrag
#                               tests included: on zm-jemalloc they need
#                               HAVE_DEFRAG and DEBUG MALLCTL, which our
#                               jemalloc backend and the opt-in give; on the
#                               libc variants upstream's guard skips them
#   4. scripts/redis/bench.sh   --bench and --defrag-bench
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ALL_VARIANTS=(baseline zm-libc zm-jemalloc zm-libc-fortify zm-jemalloc-fortify redis-jemalloc)
DEFAULT_VARIANTS=("${ALL_VARIANTS[@]:0:5}")
SUITES=(unit/info unit/memefficiency unit/maxmemory unit/type/string unit/type/list
        unit/type/hash unit/type/set unit/type/zset unit/expire)
DENY_TAGS=() # e.g. (defrag): runtest --tags -defrag, each skipped test listed
REDIS_VERSION=7.0.15
FORTIFY_CFLAGS="-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3"

usage() { sed -n '2,/^# The steps/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "redis-dropin: $*" >&2; exit 2; }

variants_arg="" bench=0 defrag_bench=0 latency=0 clients=3 jobs=2 work=""
while (($#)); do
  case $1 in
    --variants) variants_arg=${2:-}; shift 2 || die "--variants needs a list" ;;
    --variants=*) variants_arg=${1#*=}; shift ;;
    --bench) bench=1; shift ;;
    --defrag-bench) defrag_bench=1; shift ;;
    --latency) latency=1; shift ;;
    --clients) clients=${2:-}; shift 2 || die "--clients needs a number" ;;
    --jobs) jobs=${2:-}; shift 2 || die "--jobs needs a number" ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [[ -z $work ]] || die "one WORKDIR only"; work=$1; shift ;;
  esac
done
[[ $clients =~ ^[1-9][0-9]*$ ]] || die "--clients: not a number: $clients"
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "--jobs: not a number: $jobs"
if [[ -n $variants_arg ]]; then
  IFS=, read -r -a variants <<<"$variants_arg"
  for v in "${variants[@]}"; do
    [[ " ${ALL_VARIANTS[*]} " == *" $v "* ]] || die "unknown variant '$v' (${ALL_VARIANTS[*]})"
  done
else
  variants=("${DEFAULT_VARIANTS[@]}")
fi
if ((bench)); then  # the benchmark compares baseline with the unfortified zm builds
  bv=()
  for v in baseline zm-libc zm-jemalloc; do
    [[ " ${variants[*]} " == *" $v "* ]] && bv+=("$v")
  done
  ((${#bv[@]} >= 1)) || die "--bench runs baseline, zm-libc and zm-jemalloc: none selected"
  variants=("${bv[@]}")
fi
if ((defrag_bench)); then  # Redis's own patched jemalloc against ours
  ((bench == 0)) || die "--bench and --defrag-bench: one at a time"
  [[ -n $variants_arg ]] || variants=(redis-jemalloc zm-jemalloc)
  for v in "${variants[@]}"; do
    [[ $v == redis-jemalloc || $v == zm-jemalloc ]] || die "--defrag-bench runs redis-jemalloc and zm-jemalloc, not $v"
  done
  bench=2
fi

# ------------------------------------------------------------------ checks
need_jemalloc=0
for v in "${variants[@]}"; do [[ $v == zm-jemalloc* ]] && need_jemalloc=1; done
missing=()
for c in make gcc cmake tclsh; do command -v "$c" >/dev/null || missing+=("$c"); done
# The header and the library of this machine's own architecture (a foreign
# libjemalloc-dev, e.g. :arm64, replaces the native one).
if ((need_jemalloc)) && { [[ ! -e /usr/include/jemalloc/jemalloc.h ]] ||
                          [[ $(gcc -print-file-name=libjemalloc.so) != /* ]]; }; then
  missing+=("libjemalloc-dev:$(dpkg --print-architecture 2>/dev/null || echo native)")
fi
if ((${#missing[@]})); then
  die "missing ${missing[*]}: apt-get install -y build-essential cmake dpkg-dev tcl libjemalloc-dev"
fi

work=${work:-$REPO/build/redis}
mkdir -p "$work" || die "cannot create $work"
work=$(cd "$work" && pwd)
[[ $work != / && -n $work ]] || die "refusing WORKDIR /"
logs=$work/logs
mkdir -p "$logs" "$work/variants"

# Every variant gets the same, clean flags: a CI's exported CFLAGS/LDFLAGS
# (e.g. dpkg-buildflags) would otherwise reach some builds and not others.
unset CFLAGS CPPFLAGS CXXFLAGS LDFLAGS MAKEFLAGS MFLAGS MALLOC OPTIMIZATION REDIS_CFLAGS REDIS_LDFLAGS

now() { date +%s; }
fmt_s() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
declare -A T_STEP=() BUILD=() TESTS=() T_BUILD=() T_TEST=() SUMMARY=() PORT=() PID=()
step_names=()
timed() {  # timed NAME CMD...: runs CMD, records its seconds under NAME
  local name=$1 t0 rc
  shift
  t0=$(now)
  "$@"
  rc=$?
  T_STEP[$name]=$(($(now) - t0))
  step_names+=("$name")
  return $rc
}

for step in source build suites bench; do . "$REPO/scripts/redis/$step.sh"; done
step_source
step_libs
step_deps
failed=()
for v in "${variants[@]}"; do
  echo "=== $v: build"
  if timed "$v build" build_variant "$v"; then
    BUILD[$v]=ok
  else
    BUILD[$v]=FAILED
    failed+=("$v (build)")
  fi
  T_BUILD[$v]=${T_STEP["$v build"]}
  echo "    build: ${BUILD[$v]} in $(fmt_s "${T_BUILD[$v]}")"
  ((bench)) && continue
  [[ ${BUILD[$v]} == ok ]] || continue
  echo "=== $v: Tcl suites"
  if ! timed "$v tests" run_suites "$v"; then failed+=("$v (tests)"); fi
  T_TEST[$v]=${T_STEP["$v tests"]}
  echo "    suites: $(fmt_s "${T_TEST[$v]}")"
done

if ((bench)); then
  if ((${#failed[@]})); then echo "not benchmarking: ${failed[*]}"; exit 1; fi
  if ((bench == 2)); then defrag_bench || exit 1; else bench || exit 1; fi
  exit 0
fi

echo
echo "=== summary (Redis $REDIS_VERSION, $(cat "$pristine/.dropin-source"), Debian patches skipped; workdir $work)"
for n in "${step_names[@]}"; do
  [[ $n == *" build" || $n == *" tests" ]] || printf '  %-22s %s\n' "$n" "$(fmt_s "${T_STEP[$n]}")"
done
printf '  %-20s %-7s %7s %7s %6s %4s %9s %7s\n' variant build build-t tests-t ok err exception skipped
for v in "${variants[@]}"; do
  IFS='|' read -r o e x s <<<"${TESTS[$v]:-|||}"
  printf '  %-20s %-7s %7s %7s %6s %4s %9s %7s\n' "$v" "${BUILD[$v]}" "$(fmt_s "${T_BUILD[$v]}")" \
    "$( [[ -n ${T_TEST[$v]:-} ]] && fmt_s "${T_TEST[$v]}" || echo -)" "${o:--}" "${e:--}" "${x:--}" "${s:--}"
done
for v in "${variants[@]}"; do
  [[ -n ${SUMMARY[$v]:-} ]] && echo "redis $v: ${SUMMARY[$v]}"
done
if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all variants built and passed"

