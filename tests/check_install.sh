#!/usr/bin/env bash
# Installs the build into a scratch prefix, then builds a program against the
# installed header and library the way a user would: through pkg-config, once
# shared and once static (which needs Libs.private for the backend).
set -euo pipefail
build=$1
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
cc -o "$prefix/user_shared" "$prefix/user.c" $(pkg-config --cflags --libs zmalloc) -Wl,-rpath,"$libdir"
"$prefix/user_shared"
readelf -d "$libdir/libzmalloc.so" | grep -q 'SONAME.*libzmalloc.so.0'
cc -o "$prefix/user_static" "$prefix/user.c" $(pkg-config --cflags zmalloc) "$libdir/libzmalloc.a" \
  $(pkg-config --libs-only-l --static zmalloc | sed 's/-lzmalloc//')
"$prefix/user_static"
