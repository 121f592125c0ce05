#!/usr/bin/env bash
# Installs the build into a scratch prefix, then builds a program against the
# installed header and library the way a user would: through pkg-config, once
# shared (zmalloc.pc) and once static (zmalloc-static.pc, the README's line).
set -euo pipefail
build=$1
cc=${2:-cc} # the compiler the library was built with (musl-gcc, a cross compiler)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig
pkg-config --exists zmalloc
cat >"$prefix/user.c" <<'C'
#include <zmalloc.h>
#include <stdio.h>
int main(void) {
    char *s = zstrdup("installed");
    int ok = zmalloc_used_memory() == zmalloc_size(s);
    zfree(s);
    printf("%s %s\n", ZMALLOC_LIB, ok && zmalloc_used_memory() == 0 ? "ok" : "wrong");
    return ok ? 0 : 1;
}
C
libdir=$(pkg-config --variable=libdir zmalloc)
"$cc" -o "$prefix/user_shared" "$prefix/user.c" $(pkg-config --cflags --libs zmalloc) -Wl,-rpath,"$libdir"
"$prefix/user_shared"
readelf -d "$libdir/libzmalloc.so" | grep -q 'SONAME.*\[libzmalloc\.so\.1\]'
# Exactly the README's instruction for a static link.
"$cc" -o "$prefix/user_static" "$prefix/user.c" $(pkg-config --cflags --libs zmalloc-static)
"$prefix/user_static"
if readelf -d "$prefix/user_static" | grep -q 'NEEDED.*libzmalloc'; then
  echo "user_static is linked to libzmalloc.so, not statically" >&2
  exit 1
fi
