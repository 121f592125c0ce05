#!/usr/bin/env bash
# Builds tests/consumer/subdirectory, a project holding zmalloc's source tree
# with add_subdirectory(), then again with FetchContent, and runs its program
# (linked to zmalloc::zmalloc_static) through the parent's ctest. The parent's
# CMakeLists.txt fails when zmalloc brought in tests, other targets, cache
# entries or settings; here the parent's ctest must list only its own test and
# its install only its own program.
# Usage: check_consumer_subdirectory.sh ZMALLOC_SOURCE_DIR [CC] [cmake -D options for zmalloc...]
set -euo pipefail
zsrc=$(cd "$1" && pwd)
cc=${2:-cc}
shift $(( $# >= 2 ? 2 : 1 ))
src=$(cd "$(dirname "$0")/consumer/subdirectory" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

for mode in add_subdirectory FetchContent; do
  b=$scratch/$mode
  fc=OFF
  [[ $mode == FetchContent ]] && fc=ON
  cmake -S "$src" -B "$b" -G "Unix Makefiles" -DCMAKE_C_COMPILER="$cc" -DZMALLOC_SOURCE_DIR="$zsrc" \
    -DUSE_FETCHCONTENT=$fc "$@" >"$b.configure.log" 2>&1 || { cat "$b.configure.log"; exit 1; }
  grep -h "zmalloc as a subproject" "$b.configure.log"
  cmake --build "$b" -j1 >"$b.build.log" 2>&1 || { cat "$b.build.log"; exit 1; }
  listed=$(cd "$b" && ctest -N | sed -n 's/^ *Test *#[0-9]*: //p')
  if [[ $listed != consumer_app ]]; then
    echo "$mode: the parent's ctest lists: $listed" >&2
    exit 1
  fi
  (cd "$b" && ctest --output-on-failure -j1 | grep -E "tests passed|subproject:|Passed") || true
  (cd "$b" && ctest -j1 >/dev/null) || { echo "$mode: the parent's test failed" >&2; exit 1; }
  cmake --install "$b" --prefix "$scratch/$mode.prefix" >/dev/null
  installed=$(cd "$scratch/$mode.prefix" && find . -type f -o -type l | sort)
  if [[ $installed != ./bin/app ]]; then
    echo "$mode: the parent's install holds more than its program:" $installed >&2
    exit 1
  fi
  "$b/app"
done
echo "subdirectory consumer: ok"
