#!/usr/bin/env bash
# Installs the build into a scratch prefix, moves the installed tree (the
# CMake package must be relocatable), then configures, builds and runs
# tests/consumer/find_package against it: find_package(zmalloc 1 CONFIG
# REQUIRED), zmalloc::zmalloc and zmalloc::zmalloc_static.
# Usage: check_consumer_find_package.sh BUILD_DIR VERSION [CC]
set -euo pipefail
build=$(cd "$1" && pwd)
version=$2
cc=${3:-cc}
src=$(cd "$(dirname "$0")/consumer/find_package" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cmake --install "$build" --prefix "$scratch/staged" >/dev/null
mv "$scratch/staged" "$scratch/prefix"
prefix=$scratch/prefix
config=$(find "$prefix" -name zmallocConfig.cmake)
[[ -n $config ]] || { echo "no zmallocConfig.cmake installed" >&2; exit 1; }
cmakedir=$(dirname "$config")
for f in zmallocConfigVersion.cmake zmallocTargets.cmake; do
  [[ -f $cmakedir/$f ]] || { echo "$cmakedir/$f not installed" >&2; exit 1; }
done
# Nothing may point back into the build tree or the staging prefix.
if grep -rn -e "$build" -e "$scratch/staged" "$cmakedir"; then
  echo "the installed CMake package names the build tree or the install prefix" >&2
  exit 1
fi

cmake -S "$src" -B "$scratch/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
  -DEXPECTED_VERSION="$version" >"$scratch/configure.log" 2>&1 || { cat "$scratch/configure.log"; exit 1; }
grep "zmalloc $version" "$scratch/configure.log"
cmake --build "$scratch/build" -j1 >"$scratch/build.log" 2>&1 || { cat "$scratch/build.log"; exit 1; }
"$scratch/build/app_shared"
"$scratch/build/app_static"
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
if ! needed "$scratch/build/app_shared" | grep -qx "libzmalloc.so.${version%%.*}"; then
  echo "app_shared does not need libzmalloc.so.${version%%.*}: $(needed "$scratch/build/app_shared")" >&2
  exit 1
fi
if needed "$scratch/build/app_static" | grep -q libzmalloc; then
  echo "app_static is linked to libzmalloc.so, not statically" >&2
  exit 1
fi
echo "find_package consumer: ok (app_static needs: $(needed "$scratch/build/app_static" | tr '\n' ' '))"
