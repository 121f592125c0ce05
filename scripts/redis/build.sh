# Step 2 of scripts/redis-dropin.sh (sourced by it): our library, Redis's
# deps/ (built once, shared by every variant) and each variant's tree and
# build. Needs: REPO, work, logs, jobs, pristine, variants, bench, timed, die.
#
# Variants, each a fresh `cp -a` of the pristine tree:
#   baseline              make MALLOC=libc: Redis's own zmalloc on glibc
#   redis-jemalloc        make MALLOC=jemalloc: Redis's own zmalloc on its
#                         patched jemalloc (deps/jemalloc), the reference for
#                         --defrag-bench
#   zm-libc, zm-jemalloc  make MALLOC=libc on our library: src/zmalloc.h :=
#                         our include/zmalloc.h (+ the zmalloc_config.h of our
#                         build, copied next to it), src/zmalloc.c := a comment
#                         (the Makefile still wants zmalloc.o), and the
#                         Makefile's `FINAL_LIBS=-lm` line gets our
#                         libzmalloc.a, the backend library and -lpthread -ldl
#                         appended (one sed: FINAL_LIBS is assigned in the
#                         Makefile, and LDFLAGS go before the objects, where a
#                         static library resolves nothing). The jemalloc ones
#                         opt in to jemalloc's names with
#                         REDIS_CFLAGS=-DUSE_JEMALLOC (docs/redis-dropin.md):
#                         DEBUG MALLCTL, MEMORY MALLOC-STATS, the purge after
#                         FLUSHALL, jemalloc-bg-thread and je_nallocx in sds;
#                         HAVE_DEFRAG comes from our zmalloc_config.h.
#   *-fortify             the same, with OPTIMIZATION=-O2 and
#                         REDIS_CFLAGS+="-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3"
#                         (checked on the compile lines and by the *_chk
#                         symbols in redis-server).
# deps/ (hiredis, linenoise, lua, hdr_histogram; jemalloc only for
# redis-jemalloc) are built once and copied into every variant: none of them
# includes src/zmalloc.h, and all variants pass the same CFLAGS/LDFLAGS to
# them (REDIS_CFLAGS reaches src/ only). To keep Redis's Makefile from wiping
# them, each tree first runs its own `make persist-settings` with
# DEPENDENCY_TARGETS empty, then gets the prebuilt deps. hdr_histogram calls
# zmalloc/zcalloc_num/zrealloc/zfree by those names through its own
# prototypes (deps/hdr_histogram/hdr_redis_malloc.h), so our library is built
# with -DZMALLOC_EXPORT_REDIS_NAMES=ON, which exports real symbols of those
# names.

# build_lib BACKEND: our static library, for the variants that need it.
build_lib() {
  local be=$1 dir=$work/zmalloc-$1 extra=()
  [[ $be == jemalloc ]] && extra=(-DZMALLOC_BACKEND=jemalloc)
  if ! { cmake -S "$REPO" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${extra[@]}" \
           -DZMALLOC_BUILD_TESTS=OFF -DZMALLOC_BUILD_BENCH=OFF -DZMALLOC_BUILD_EXAMPLES=OFF \
           -DZMALLOC_EXPORT_REDIS_NAMES=ON && cmake --build "$dir" -j "$jobs" --target zmalloc_static; } \
       >"$logs/zmalloc-$be.log" 2>&1; then
    tail -30 "$logs/zmalloc-$be.log"
    return 1
  fi
  # deps/hdr_histogram links against these names (see the top of this file).
  local s syms missing=()
  syms=$(nm -g --defined-only "$dir/libzmalloc.a" 2>/dev/null)
  for s in zmalloc zcalloc_num zrealloc zfree; do
    grep -qE " T $s\$" <<<"$syms" || missing+=("$s")
  done
  if ((${#missing[@]})); then
    echo "    note: libzmalloc.a defines no ${missing[*]}: Redis's deps/hdr_histogram calls them" \
         "(ZMALLOC_EXPORT_REDIS_NAMES); the link will fail"
  fi
}
declare -A LIB_OK=()
step_libs() {
  local be v want
  for be in libc jemalloc; do
    want=0
    for v in "${variants[@]}"; do [[ $v == zm-$be* ]] && want=1; done
    ((want)) || continue
    echo "=== zmalloc ($be backend): $work/zmalloc-$be"
    if timed "zmalloc-$be" build_lib "$be"; then LIB_OK[$be]=1; else echo "    zmalloc ($be) FAILED to build"; fi
  done
}

depstree=$work/deps-build
deps_key() { echo "$(cat "$pristine/.dropin-source") $(gcc --version | head -1) $(make --version | head -1)"; }
build_deps() {
  rm -rf "$depstree"
  cp -a "$pristine" "$depstree" &&
    make -C "$depstree/deps" -j "$jobs" hiredis linenoise lua hdr_histogram >"$logs/deps.log" 2>&1 ||
    { tail -30 "$logs/deps.log"; return 1; }
  deps_key >"$depstree/.dropin-deps"
}
# Redis's patched jemalloc, for redis-jemalloc only (a configure run: 1-2 min).
build_deps_jemalloc() {
  make -C "$depstree/deps" -j "$jobs" jemalloc >"$logs/deps-jemalloc.log" 2>&1 ||
    { tail -30 "$logs/deps-jemalloc.log"; return 1; }
  deps_key >"$depstree/.dropin-deps-jemalloc"
}
step_deps() {
  if [[ -f $depstree/.dropin-deps && $(cat "$depstree/.dropin-deps") == "$(deps_key)" ]]; then
    echo "=== deps: cached $depstree/deps"
  else
    echo "=== deps: hiredis linenoise lua hdr_histogram (built once, shared by every variant)"
    timed deps build_deps || die "Redis's deps failed to build (log: $logs/deps.log)"
  fi
  [[ " ${variants[*]} " == *" redis-jemalloc "* ]] || return 0
  if [[ $(cat "$depstree/.dropin-deps-jemalloc" 2>/dev/null) == "$(deps_key)" ]]; then
    echo "=== deps: cached $depstree/deps/jemalloc"
  else
    echo "=== deps: jemalloc (Redis's own, for redis-jemalloc)"
    timed deps-jemalloc build_deps_jemalloc || die "Redis's jemalloc failed to build (log: $logs/deps-jemalloc.log)"
  fi
}

make_vars() {  # make_vars VARIANT: the make variables of that variant
  local v=$1
  local cflags=""
  MV=(MALLOC=libc)
  [[ $v == redis-jemalloc ]] && MV=(MALLOC=jemalloc)
  [[ $v == zm-jemalloc* ]] && cflags="-DUSE_JEMALLOC"
  [[ $v == *-fortify ]] && MV+=(OPTIMIZATION=-O2) && cflags="${cflags:+$cflags }$FORTIFY_CFLAGS"
  [[ -n $cflags ]] && MV+=("REDIS_CFLAGS=$cflags")
  return 0
}

# patch_tree DIR BACKEND: the whole patch to Redis's tree.
patch_tree() {
  local dir=$1 lib=$work/zmalloc-$2 libs
  libs="$lib/libzmalloc.a"
  [[ $2 == jemalloc ]] && libs+=" -ljemalloc"
  libs+=" -lpthread -ldl"
  cp "$REPO/include/zmalloc.h" "$dir/src/zmalloc.h" &&
    cp "$lib/include/zmalloc_config.h" "$dir/src/zmalloc_config.h" &&
    printf '%s\n' "/* Replaced by zmalloc ($REPO): the code is in libzmalloc.a, linked" \
      "   through FINAL_LIBS. The typedef (no code) keeps the unit non-empty for -pedantic. */" \
      "typedef int zmalloc_dropin_empty_unit;" >"$dir/src/zmalloc.c" &&
    sed -i "s|^FINAL_LIBS=-lm\$|FINAL_LIBS=-lm $libs|" "$dir/src/Makefile" &&
    grep -qF "FINAL_LIBS=-lm $libs" "$dir/src/Makefile"
}

# What a variant's build depends on besides Redis's tree and deps.
build_key() {
  local v=$1 be=$2
  make_vars "$v"
  echo "$(cat "$pristine/.dropin-source") ${MV[*]}"
  [[ -n $be ]] && (cd "$work/zmalloc-$be" && md5sum "$REPO/include/zmalloc.h" libzmalloc.a include/zmalloc_config.h)
}

build_variant() {
  local v=$1 dir=$work/variants/$1 log=$logs/$1.build.log be=""
  [[ $v == zm-libc* ]] && be=libc
  [[ $v == zm-jemalloc* ]] && be=jemalloc
  if [[ -n $be && -z ${LIB_OK[$be]:-} ]]; then
    echo "    zmalloc ($be) did not build" >"$log"
    return 1
  fi
  local key
  key=$(build_key "$v" "$be")
  # --bench reuses a build of the same library, header and flags; the test
  # run always builds afresh.
  if ((bench)) && [[ -x $dir/src/redis-server && -f $dir.key && $(cat "$dir.key") == "$key" ]]; then
    echo "    reusing $dir (same library, header and flags)"
    return 0
  fi
  rm -rf "$dir" "$dir.key"
  cp -a "$pristine" "$dir" || return 1
  if [[ -n $be ]]; then
    patch_tree "$dir" "$be" || { echo "    patching the tree failed" | tee "$log"; return 1; }
  fi
  echo "    tree changes vs pristine:"
  diff -ru "$pristine" "$dir" | sed -n '/^diff \|^Only in \|^[-+]FINAL_LIBS/p' | sed "s|$work/||g; s/^/      /"
  make_vars "$v"
  echo "    make -C src -j$jobs$(printf ' %q' "${MV[@]}")"
  # Settings first (Redis's Makefile would otherwise distclean deps/), then
  # the prebuilt deps, then the build.
  make -C "$dir/src" "${MV[@]}" DEPENDENCY_TARGETS= persist-settings >"$log" 2>&1 &&
    rm -rf "$dir/deps" && cp -a "$depstree/deps" "$dir/deps" &&
    make -k -C "$dir/src" -j "$jobs" V=1 "${MV[@]}" all >>"$log" 2>&1
  local rc=$?
  if ((rc)) || [[ ! -x $dir/src/redis-server || ! -x $dir/src/redis-benchmark || ! -x $dir/src/redis-cli ]]; then
    echo "    BUILD FAILED (log: $log); errors (make -k: all of them), with the Redis lines they come from:"
    grep -E 'error:|undefined reference|multiple definition|No rule to make|note: in expansion of macro' "$log" |
      sed "s|$dir/||g; s|^/usr/bin/ld: ||" | awk '!seen[$0]++' | head -40 | sed 's/^/      /'
    return 1
  fi
  if [[ -n $be && $(nm "$dir/src/redis-server" 2>/dev/null | grep -c ' [Tt] zm_malloc$') == 0 ]]; then
    echo "    redis-server does not contain zm_malloc: libzmalloc.a was not linked"
    return 1
  fi
  # The opt-in reached the build (the link resolves the names it brings).
  if [[ $v == zm-jemalloc* ]] && ! grep -qE "^cc .*-DUSE_JEMALLOC .*-c debug\.c" "$log"; then
    echo "    -DUSE_JEMALLOC is not on debug.c's compile line"
    return 1
  fi
  if [[ $v == *-fortify ]]; then
    local lines chk
    lines=$(grep -cE "^cc .*-D_FORTIFY_SOURCE=3 .*-c [a-z_0-9-]+\.c" "$log")
    chk=$(nm -D "$dir/src/redis-server" 2>/dev/null | grep -cE '__[a-z_]+_chk')
    echo "    fortify: $lines compile lines carry -D_FORTIFY_SOURCE=3; redis-server imports $chk *_chk functions"
    if ((lines == 0 || chk == 0)); then
      echo "    _FORTIFY_SOURCE=3 did not reach the build"
      return 1
    fi
  fi
  # Upstream's one warning (deps/lua) is built once in deps; any here is new.
  grep -E 'warning:' "$log" | sort -u | head -10 | sed 's/^/    /'
  echo "$key" >"$dir.key"
  return 0
}

# Parses one runtest log. Prints "COUNTS ok err exception skipped" first,
