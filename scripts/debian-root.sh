#!/usr/bin/env bash
# Makes (once) and uses a root filesystem of another Debian release, for
# building and testing this tree there: the release's own compiler, glibc,
# cmake and allocator packages, exactly as a user of that release has them.
#
# Usage:
#   scripts/debian-root.sh make SUITE      make the root if it is missing
#   scripts/debian-root.sh run SUITE CMD   run CMD (bash -c) in the root, with
#                                          this repository at /src
# SUITE: trixie (Debian 13) or sid (unstable). The roots live in
# ZMALLOC_ROOTS (default /var/cache/zmalloc-roots), outside the clone, so a
# later run skips debootstrap; a root is made in a temporary folder and
# renamed when complete, so an interrupted run leaves nothing half made.
# Needs root and debootstrap (Debian 12 ships scripts for both suites).
set -euo pipefail

roots=${ZMALLOC_ROOTS:-/var/cache/zmalloc-roots}
mirror=${ZMALLOC_MIRROR:-http://deb.debian.org/debian}
# What the test suite needs in the root: the compilers, cmake, cmocka and
# every allocator with its headers, and valgrind (scripts/instructions.sh).
# Bump the stamp when this list changes.
packages=build-essential,g++,cmake,pkg-config,libcmocka-dev,libjemalloc-dev,libgoogle-perftools-dev,libmimalloc-dev,zlib1g-dev,python3,file,binutils,valgrind
stamp=v2

usage() { sed -n '5,10p' "$0" >&2; exit 2; }
(($# >= 2)) || usage
cmd=$1 suite=$2
case $suite in trixie | sid) ;; *) usage ;; esac
root=$roots/$suite

make_root() {
  [[ -f $root/.zmalloc-$stamp ]] && return 0
  mkdir -p "$roots"
  local tmp=$roots/.$suite.tmp
  rm -rf "$tmp" "$root"
  echo "debian-root: making $suite in $root (debootstrap, a few minutes)" >&2
  # sid's Release may be past its Valid-Until between archive runs.
  debootstrap --variant=minbase --include="$packages" \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    "$suite" "$tmp" "$mirror" >"$roots/$suite.debootstrap.log" 2>&1 || {
    tail -30 "$roots/$suite.debootstrap.log" >&2
    return 1
  }
  echo 'Acquire::Check-Valid-Until "false";' >"$tmp/etc/apt/apt.conf.d/99zmalloc-no-valid-until"
  touch "$tmp/.zmalloc-$stamp"
  mv "$tmp" "$root"
}

# Mounts /proc, /dev and /sys in the root and the repository at /src, runs
# the command, and always unmounts, in reverse order (leftovers of a run that
# was killed are unmounted first).
mounted=()
unmount_all() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  mounted=()
}
run_in_root() {
  local src m
  src=$(cd "$(dirname "$0")/.." && pwd)
  for m in src dev sys proc; do
    if mountpoint -q "$root/$m"; then umount -l "$root/$m" || true; fi
  done
  trap unmount_all EXIT
  mkdir -p "$root/src" "$root/tmp" && chmod 1777 "$root/tmp"
  mount --bind "$src" "$root/src" && mounted+=("$root/src")
  mount -t proc proc "$root/proc" && mounted+=("$root/proc")
  mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev" && mounted+=("$root/dev")
  mount -t sysfs sys "$root/sys" && mounted+=("$root/sys")
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    CI="${CI:-}" ZMALLOC_FAST_PATHS="${ZMALLOC_FAST_PATHS:-}" bash -c "cd /src && $1"
}

case $cmd in
  make) make_root ;;
  run)
    (($# == 3)) || usage
    make_root
    run_in_root "$3"
    ;;
  *) usage ;;
esac
