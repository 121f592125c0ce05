#!/usr/bin/env bash
# Builds the Debian packages (libzmalloc<major>, libzmalloc-dev) from a build
# directory with cpack, installs them with dpkg -i, builds
# examples/info_memory.c against the installed files four ways (pkg-config
# zmalloc and zmalloc-static, find_package zmalloc::zmalloc and
# zmalloc::zmalloc_static), runs each, then purges the packages: the system is
# left as it was found. Needs root and a build directory configured from this
# tree (any backend; -DCMAKE_INSTALL_PREFIX=/usr there puts the libraries in
# Debian's multiarch directory, /usr/lib/<triplet>, instead of /usr/lib).
# Usage: scripts/check-deb.sh BUILD_DIR
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
[[ $(id -u) -eq 0 ]] || { echo "$0: needs root (dpkg -i)" >&2; exit 2; }
[[ -f $build/CPackConfig.cmake ]] || { echo "$0: $build has no CPackConfig.cmake (not a top-level zmalloc build?)" >&2; exit 2; }

work=$(mktemp -d)
installed=()
cleanup() {
  local rc=$?
  if ((${#installed[@]})); then
    echo "== dpkg --purge ${installed[*]}"
    dpkg_locked --purge "${installed[@]}" >/dev/null || rc=1
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

# dpkg, waiting (up to 2 minutes) while another process holds its lock.
# The files (not directories) a package installs, as absolute paths.
deb_files() { dpkg-deb -c "$1" | awk '$NF !~ /\/$/ {print substr($6, 2)}'; }

# Exits, naming it, at the first file of package $1 that is on this system.
refuse_present() { # deb why
  local path
  while read -r path; do
    if [[ -e $path || -L $path ]]; then
      echo "$path $2" >&2
      exit 1
    fi
  done < <(deb_files "$1")
}

dpkg_locked() {
  local out i
  for i in $(seq 60); do
    if out=$(dpkg "$@" 2>&1); then printf '%s\n' "$out"; return 0; fi
    grep -q "lock" <<<"$out" || { printf '%s\n' "$out" >&2; return 1; }
    sleep 2
  done
  printf '%s\n' "$out" >&2
  return 1
}

echo "== cpack -G DEB ($build)"
cmake --build "$build" >/dev/null
(cd "$build" && cpack -G DEB -B "$work/packages") >"$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; exit 1; }
debs=("$work"/packages/*.deb)
want=2
grep -q '^ZMALLOC_BUILD_ZMRUN:BOOL=ON' "$build/CMakeCache.txt" && want=3 # and zmrun
[[ ${#debs[@]} -eq $want ]] || { echo "expected $want packages, got: ${debs[*]}" >&2; exit 1; }

names=()
for deb in "${debs[@]}"; do
  name=$(dpkg-deb -f "$deb" Package)
  names+=("$name")
  echo "-- $(basename "$deb"): Depends: $(dpkg-deb -f "$deb" Depends)"
  dpkg-deb -c "$deb" | awk '$NF !~ /\/$/ {print "     " $6 ($7 == "->" ? " -> " $8 : "")}'
  # Neither the package nor any of its files may be here already: the
  # purge at the end would take away what was not ours.
  if [[ $(dpkg-query -W -f='${db:Status-Status}' "$name" 2>/dev/null) == installed ]]; then
    echo "$name is already installed: not touching it" >&2
    exit 1
  fi
  refuse_present "$deb" "already exists: not installing over it"
done

# Everything cmake --install installs is in one of the packages (an install()
# rule without COMPONENT runtime or dev would be in neither).
cmake --install "$build" --prefix "$work/all" >/dev/null
missing=$(comm -23 <(cd "$work/all" && find . ! -type d | sed 's|^\./||' | sort) \
  <(for deb in "${debs[@]}"; do dpkg-deb -c "$deb" | awk '$NF !~ /\/$/ {print substr($6, 7)}'; done | sort))
if [[ -n $missing ]]; then
  echo "installed by cmake --install but in no package (install() without COMPONENT runtime or dev?):" >&2
  echo "$missing" >&2
  exit 1
fi

echo "== dpkg -i ${names[*]}"
installed=("${names[@]}")
dpkg_locked -i "${debs[@]}" >/dev/null

example=$src/examples/info_memory.c
run() {
  local name=$1 out
  out=$("$work/$name")
  printf '%-22s %s | %s | needs: %s\n' "$name:" "$(grep -m1 '^mem_allocator:' <<<"$out")" \
    "$(grep '^accounting:' <<<"$out")" \
    "$(readelf -d "$work/$name" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | grep -v -e '^libc\.' -e '^ld-linux' | tr '\n' ' ')"
}

echo "== pkg-config (system paths only)"
export PKG_CONFIG_PATH=
echo "zmalloc $(pkg-config --modversion zmalloc): $(pkg-config --cflags --libs zmalloc)"
cc -O2 -o "$work/pkgconfig_shared" "$example" $(pkg-config --cflags --libs zmalloc) -pthread
cc -O2 -o "$work/pkgconfig_static" "$example" $(pkg-config --cflags --libs zmalloc-static) -pthread
run pkgconfig_shared
run pkgconfig_static
if readelf -d "$work/pkgconfig_static" | grep -q 'NEEDED.*libzmalloc'; then
  echo "pkgconfig_static is linked to libzmalloc.so" >&2
  exit 1
fi

echo "== find_package(zmalloc 1 CONFIG REQUIRED) (system paths only)"
mkdir "$work/fp"
cat >"$work/fp/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.20)
project(deb_user LANGUAGES C)
find_package(zmalloc 1 CONFIG REQUIRED)
find_package(Threads REQUIRED) # info_memory.c itself uses pthreads
message(STATUS "zmalloc \${zmalloc_VERSION} (\${zmalloc_LIB}) from \${zmalloc_DIR}")
add_executable(cmake_shared $example)
target_link_libraries(cmake_shared PRIVATE zmalloc::zmalloc Threads::Threads)
add_executable(cmake_static $example)
target_link_libraries(cmake_static PRIVATE zmalloc::zmalloc_static Threads::Threads)
EOF
cmake -S "$work/fp" -B "$work/fp/build" >"$work/fp.log" 2>&1 || { cat "$work/fp.log"; exit 1; }
grep -- "-- zmalloc " "$work/fp.log"
cmake --build "$work/fp/build" >>"$work/fp.log" 2>&1 || { cat "$work/fp.log"; exit 1; }
cp "$work/fp/build/cmake_shared" "$work/fp/build/cmake_static" "$work/"
run cmake_shared
run cmake_static

if ((want == 3)); then
  echo "== zmrun (installed: /usr/bin/zmrun, preload libraries under /usr/lib)"
  zmrun --list-backends
  if zmrun --list-backends | grep -q "not installed"; then
    echo "the zmrun package lacks a preload library this build made" >&2
    exit 1
  fi
  zmrun --json -o "$work/zmrun.json" -- "$work/cmake_shared" >/dev/null
  grep -q '"heap_peak":[1-9]' "$work/zmrun.json" || { echo "no zmrun report: $(cat "$work/zmrun.json")" >&2; exit 1; }
  echo "zmrun report: $(cut -c1-160 "$work/zmrun.json")..."
fi

echo "== dpkg --purge ${installed[*]}"
dpkg_locked --purge "${installed[@]}" >/dev/null
installed=()
for deb in "${debs[@]}"; do
  refuse_present "$deb" "is still there after the purge"
done
echo "check-deb: ok (packages built, installed, used, purged)"
