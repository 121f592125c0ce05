#!/usr/bin/env bash
# Proves that Redis 7.0.15 builds and passes its own Tcl suites with this
# library in place of its zmalloc.c/zmalloc.h.
#
# Usage: scripts/redis-dropin.sh [options] [WORKDIR]
#   WORKDIR            where everything goes (default: build/redis under the
#                      repository root; build/ is git-ignored)
#   --variants a,b,... build/test only these (default: all five)
#                      baseline, zm-libc, zm-jemalloc, zm-libc-fortify,
#                      zm-jemalloc-fortify
#   --bench            instead of the Tcl suites: start baseline, zm-libc and
#                      zm-jemalloc (those of --variants) on 127.0.0.1, load the
#                      same data, print INFO memory side by side and the median
#                      of 3 interleaved redis-benchmark rounds (reuses a build
#                      of the same library, header and flags)
#   --clients N        Tcl test clients (default 3, see below)
#   --jobs N           make -j (default 2)
#   -h, --help
# Exit status: 0 when every variant built and its suites had no [err] and no
# [exception]; 1 otherwise; 2 for a usage or setup error.
#
# Needs (Debian 12): build-essential cmake dpkg-dev tcl libjemalloc-dev, and
# root the first time (it adds a deb-src entry and runs apt-get update).
#
# What it does, and why:
# - Source: Debian's own source package (`apt-get source --download-only
#   redis=<newest 7.0.15 revision>`), unpacked with `dpkg-source -x
#   --skip-patches`. The orig tarball is upstream's redis-7.0.15 release
#   tarball with every bundled dep (deps/hiredis, lua, linenoise,
#   hdr_histogram, jemalloc). Debian's patches are skipped. Checked in
#   1~deb12u10: none switches lua or hiredis to system copies (debian/rules
#   links the system jemalloc through USE_SYSTEM_JEMALLOC=yes, which we don't
#   pass), so a patched tree would build the same way with MALLOC=libc; but
#   of its 23 patches, 0004 edits src/zmalloc.[ch], the very files we replace,
#   0002 edits src/Makefile, the packaging one changes redis.conf, 0001/0003
#   are portability fixes, and 18 are CVE backports whose set grows with every
#   security upload (deb12u7 -> deb12u10 ...) and which bring tests of their
#   own. Unpatched, the tree is
#   upstream 7.0.15 byte for byte whatever Debian revision is current, and the
#   suites are the ones upstream shipped with that code (version checked).
# - Variants, each a fresh `cp -a` of the pristine tree, all `make MALLOC=libc`:
#     baseline              Redis's own zmalloc
#     zm-libc, zm-jemalloc  src/zmalloc.h := our include/zmalloc.h (+ the
#                           zmalloc_config.h of our build, copied next to it),
#                           src/zmalloc.c := a comment (the Makefile still
#                           wants zmalloc.o), and the Makefile's `FINAL_LIBS=-lm`
#                           line gets our libzmalloc.a, the backend library and
#                           -lpthread -ldl appended (one sed; a make variable
#                           cannot do it: FINAL_LIBS is assigned in the
#                           Makefile, and LDFLAGS go before the objects, where
#                           a static library resolves nothing). Nothing else in
#                           the tree changes; the script prints the diff.
#     *-fortify             the same, with OPTIMIZATION=-O2 and
#                           REDIS_CFLAGS="-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3"
#                           (checked on the compile lines and by the *_chk
#                           symbols in redis-server).
# - deps/ (hiredis, linenoise, lua, hdr_histogram; jemalloc is not built with
#   MALLOC=libc) are built once and copied into every variant: none of them
#   includes src/zmalloc.h, and all variants pass the same CFLAGS/LDFLAGS to
#   them (the fortify flags go to REDIS_CFLAGS, which only src/ sees). To keep
#   Redis's Makefile from wiping them, each tree first runs its own
#   `make persist-settings` with DEPENDENCY_TARGETS empty, then gets the
#   prebuilt deps. hdr_histogram calls zmalloc/zcalloc_num/zrealloc/zfree by
#   those names through its own prototypes (deps/hdr_histogram/
#   hdr_redis_malloc.h), so our library is built with
#   -DZMALLOC_EXPORT_REDIS_NAMES=ON, which exports real symbols of those names.
# - Suites: unit/info unit/memefficiency unit/maxmemory unit/type/string
#   unit/type/list unit/type/hash unit/type/set unit/type/zset unit/expire, in
#   one `./runtest --clients N --tags -defrag` per variant. N=3: the run is
#   bound by unit/maxmemory (35-45 s, serial in one client), so 3 clients on
#   2 cores keep it there without starving timing-sensitive tests.
#   --tags -defrag: the defrag tests need Redis's active defrag (HAVE_DEFRAG, i.e. je_get_defrag_hint()
#   from Redis's patched jemalloc, which no MALLOC=libc build has) and DEBUG
#   MALLCTL (USE_JEMALLOC); on zm-jemalloc, INFO's mem_allocator says
#   "jemalloc-5.3.0", so without the tag filter their guard calls DEBUG MALLCTL
#   and the unit dies with an exception. Every test of the suite files that did
#   not run is listed with the reason (runtest's own, the denied tag, or the
#   upstream `if` that guards it), and counted as skipped.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ALL_VARIANTS=(baseline zm-libc zm-jemalloc zm-libc-fortify zm-jemalloc-fortify)
SUITES=(unit/info unit/memefficiency unit/maxmemory unit/type/string unit/type/list
        unit/type/hash unit/type/set unit/type/zset unit/expire)
DENY_TAGS=(defrag)
REDIS_VERSION=7.0.15
FORTIFY_CFLAGS="-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3"

usage() { sed -n '2,/^# What it does/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "redis-dropin: $*" >&2; exit 2; }

variants_arg="" bench=0 clients=3 jobs=2 work=""
while (($#)); do
  case $1 in
    --variants) variants_arg=${2:-}; shift 2 || die "--variants needs a list" ;;
    --variants=*) variants_arg=${1#*=}; shift ;;
    --bench) bench=1; shift ;;
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
  variants=("${ALL_VARIANTS[@]}")
fi
if ((bench)); then  # the benchmark compares baseline with the unfortified zm builds
  bv=()
  for v in baseline zm-libc zm-jemalloc; do
    [[ " ${variants[*]} " == *" $v "* ]] && bv+=("$v")
  done
  ((${#bv[@]} >= 1)) || die "--bench runs baseline, zm-libc and zm-jemalloc: none selected"
  variants=("${bv[@]}")
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

# ------------------------------------------------------------------ source
pristine=$work/redis-$REDIS_VERSION
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")

# Adds deb-src entries mirroring the Debian entries this machine already uses
# (same URIs and Signed-By; the release's own, -updates and -security suites;
# component main), in one file of ours. Idempotent: nothing is written when
# any deb-src entry is there already.
ensure_deb_src() {
  local d=/etc/apt/sources.list.d f
  if grep -qsE '^[[:space:]]*deb-src[[:space:]]|^Types:.*deb-src' /etc/apt/sources.list "$d"/*.list "$d"/*.sources; then
    return 0
  fi
  [[ -n $codename ]] || { echo "no VERSION_CODENAME in /etc/os-release" >&2; return 1; }
  [[ $(id -u) == 0 ]] || { echo "adding a deb-src entry needs root" >&2; return 1; }
  local srcs=() lists=()
  for f in "$d"/*.sources; do [[ -f $f ]] && srcs+=("$f"); done
  for f in /etc/apt/sources.list "$d"/*.list; do [[ -f $f ]] && lists+=("$f"); done
  # deb822 (*.sources): one Types: deb-src stanza per Types: deb stanza.
  awk -v cn="$codename" '
      function flush(   i, n, s, keep) {
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled !~ /^[ \t]*no/ && comps ~ /(^|[ \t])main([ \t]|$)/) {
          n = split(suites, s, /[ \t]+/); keep = ""
          for (i = 1; i <= n; i++) if (s[i] == cn || s[i] == cn "-updates" || s[i] == cn "-security") keep = keep " " s[i]
          if (keep != "") {
            printf "%sTypes: deb-src\nURIs: %s\nSuites:%s\nComponents: main\n", (nout++ ? "\n" : ""), uris, keep
            if (signed != "") printf "%s", signed
          }
        }
        types = uris = suites = comps = signed = enabled = ""; insig = 0
      }
      FNR == 1 { flush() }
      /^[ \t]*$/ { flush(); next }
      /^#/ { next }
      /^[ \t]/ { if (insig) signed = signed $0 "\n"; next }
      { insig = 0; k = tolower($1); v = $0; sub(/^[^:]*:[ \t]*/, "", v) }
      k == "types:" { types = v }
      k == "uris:" { uris = v }
      k == "suites:" { suites = v }
      k == "components:" { comps = v }
      k == "enabled:" { enabled = v }
      k == "signed-by:" { signed = $0 "\n"; insig = 1 }
      END { flush() }' /dev/null "${srcs[@]}" >"$d/zmalloc-deb-src.sources.tmp"
  # One-line format (sources.list, *.list): deb [opts] URI SUITE COMPONENTS...
  awk -v cn="$codename" '
      $1 == "deb" { i = 2; opts = ""; if ($2 ~ /^\[/) { while ($i !~ /\]$/) opts = opts " " $(i++); opts = opts " " $(i++) }
        uri = $i; suite = $(i + 1); main = 0
        for (j = i + 2; j <= NF; j++) if ($j == "main") main = 1
        if (main && (suite == cn || suite == cn "-updates" || suite == cn "-security")) print "deb-src" opts, uri, suite, "main" }' \
      /dev/null "${lists[@]}" >"$d/zmalloc-deb-src.list.tmp"
  local added=0
  for f in "$d/zmalloc-deb-src.sources" "$d/zmalloc-deb-src.list"; do
    if [[ -s $f.tmp ]]; then
      mv "$f.tmp" "$f"
      echo "added $f:"
      sed 's/^/    /' "$f"
      added=1
    else
      rm -f "$f.tmp"
    fi
  done
  ((added)) || { echo "found no Debian '$codename' main entry to mirror as deb-src" >&2; return 1; }
}

fetch_source() {
  local dl=$work/download dsc
  command -v dpkg-source >/dev/null || { echo "missing dpkg-source: apt-get install -y dpkg-dev" >&2; return 1; }
  ensure_deb_src || return 1
  # A failing index elsewhere (a mirror mid-sync) need not stop us: what
  # counts is whether the redis source shows up below.
  apt-get update -qq || echo "    apt-get update reported errors; going on with the indexes it got" >&2
  rm -rf "$dl" "$pristine.tmp"
  mkdir -p "$dl"
  # The newest Debian revision of upstream $REDIS_VERSION (not a backport).
  local v ver=""
  for v in $(apt-cache showsrc redis 2>/dev/null | sed -n 's/^Version: //p'); do
    [[ $v =~ ^([0-9]+:)?${REDIS_VERSION//./\\.}- ]] || continue
    if [[ -z $ver ]] || dpkg --compare-versions "$v" gt "$ver"; then ver=$v; fi
  done
  [[ -n $ver ]] || { echo "no Debian source of redis $REDIS_VERSION (apt-cache showsrc redis)" >&2; return 1; }
  (cd "$dl" && apt-get source -qq --download-only -o APT::Sandbox::User=root "redis=$ver") || return 1
  dsc=$(ls "$dl"/redis_*.dsc 2>/dev/null | head -1)
  [[ -n $dsc ]] || { echo "apt-get source left no .dsc" >&2; return 1; }
  dpkg-source -x --skip-patches "$dsc" "$pristine.tmp" >"$logs/dpkg-source.log" 2>&1 ||
    { cat "$logs/dpkg-source.log" >&2; return 1; }
  if ! grep -q "REDIS_VERSION \"$REDIS_VERSION\"" "$pristine.tmp/src/version.h"; then
    echo "Debian's redis source is not $REDIS_VERSION: $(grep REDIS_VERSION "$pristine.tmp/src/version.h")" >&2
    return 1
  fi
  basename "$dsc" >"$pristine.tmp/.dropin-source"
  mv "$pristine.tmp" "$pristine"
}

if [[ -f $pristine/.dropin-source ]]; then
  echo "=== source: cached $pristine ($(cat "$pristine/.dropin-source"), Debian patches skipped)"
else
  echo "=== source: apt-get source redis (Debian patches skipped)"
  timed source fetch_source || die "could not get Redis's source"
  echo "    $(cat "$pristine/.dropin-source") -> $pristine"
fi

# ------------------------------------------------------------------ zmalloc
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
for be in libc jemalloc; do
  want=0
  for v in "${variants[@]}"; do [[ $v == zm-$be* ]] && want=1; done
  ((want)) || continue
  echo "=== zmalloc ($be backend): $work/zmalloc-$be"
  if timed "zmalloc-$be" build_lib "$be"; then LIB_OK[$be]=1; else echo "    zmalloc ($be) FAILED to build"; fi
done

# ------------------------------------------------------------------ deps
depstree=$work/deps-build
deps_key="$(cat "$pristine/.dropin-source") $(gcc --version | head -1) $(make --version | head -1)"
build_deps() {
  rm -rf "$depstree"
  cp -a "$pristine" "$depstree" &&
    make -C "$depstree/deps" -j "$jobs" hiredis linenoise lua hdr_histogram >"$logs/deps.log" 2>&1 ||
    { tail -30 "$logs/deps.log"; return 1; }
  echo "$deps_key" >"$depstree/.dropin-deps"
}
if [[ -f $depstree/.dropin-deps && $(cat "$depstree/.dropin-deps") == "$deps_key" ]]; then
  echo "=== deps: cached $depstree/deps"
else
  echo "=== deps: hiredis linenoise lua hdr_histogram (built once, shared by every variant)"
  timed deps build_deps || die "Redis's deps failed to build (log: $logs/deps.log)"
fi

# ------------------------------------------------------------------ variants
make_vars() {  # make_vars VARIANT: the make variables of that variant
  local v=$1
  MV=(MALLOC=libc)
  [[ $v == *-fortify ]] && MV+=(OPTIMIZATION=-O2 "REDIS_CFLAGS=$FORTIFY_CFLAGS")
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
# then the lists. Args: LOG RUNTEST_RC DENIED_TAGS TESTDIR SUITE...
write_parser() {
  cat >"$work/parse-results.tcl" <<'TCL'
lassign $argv logf rc denied testdir
set suites [lrange $argv 4 end]
set f [open $logf]; set log [read $f]; close $f
regsub -all {\x1b\[[0-9;]*m} $log {} log
set ok {}; set err {}; set exc {}; set skip {}; set ign {}; set blockign {}
set lines [split $log \n]
for {set i 0} {$i < [llength $lines]} {incr i} {
    set l [lindex $lines $i]
    if {[regexp {^\[ok\]: (.*) \([0-9]+ ms\)$} $l -> n]} { lappend ok $n
    } elseif {[regexp {^\[err\]: (.*)$} $l -> n]} {
        regsub { in tests/[^ ]+\.tcl$} $n {} n
        lappend err [list $n [string trim [lindex $lines [expr {$i+1}]]]]
    } elseif {[regexp {^\[exception\]: (.*)$} $l -> n]} {
        lappend exc [join [list $n [string trim [lindex $lines [expr {$i+2}]]]] " | "]
    } elseif {[regexp {\[TIMEOUT\]} $l]} { lappend exc $l
    } elseif {[regexp {^\[skip\]: (.*)$} $l -> n]} { lappend skip $n
    } elseif {[regexp {^\[ignore\]: (.*)$} $l -> n]} {
        if {[regexp {^(.*): ([^:]+)$} $n -> tn why] && ![string match "Tag: *" $n]} {
            lappend ign [list $tn $why]
        } else { lappend blockign $n }
    }
}
if {$rc != 0 && [llength $err] == 0 && [llength $exc] == 0} {
    lappend exc "runtest exited with status $rc without reporting a failed test"
}
set seen $ok
foreach e $err { lappend seen [lindex $e 0] }
foreach s $skip { lappend seen $s }
foreach s $ign { lappend seen [lindex $s 0] }

# A test's name as a glob: Tcl substitutions in "quoted" names match anything.
proc esc {c} { if {[string first $c "*?\[\]\\"] >= 0} { return "\\$c" }; return $c }
proc name_glob {raw quoted} {
    set out ""; set n [string length $raw]
    for {set i 0} {$i < $n} {incr i} {
        set c [string index $raw $i]
        if {!$quoted} { append out [esc $c]; continue }
        if {$c eq "\\"} { incr i; append out [esc [string index $raw $i]]
        } elseif {$c eq "\$"} {
            append out *
            if {[string index $raw [expr {$i+1}]] eq "\{"} { set i [string first "\}" $raw $i]; continue }
            regexp {^[A-Za-z0-9_:]*(\([^)]*\))?} [string range $raw [expr {$i+1}] end] m
            incr i [string length $m]
        } elseif {$c eq "\["} {
            append out *; set depth 0
            for {} {$i < $n} {incr i} {
                set d [string index $raw $i]
                if {$d eq "\["} { incr depth } elseif {$d eq "\]"} { if {[incr depth -1] == 0} break }
            }
        } else { append out [esc $c] }
    }
    regsub -all {\*+} $out * out
    return $out
}
proc indent {l} { regexp {^[ \t]*} $l m; return [string length [string map {"\t" "        "} $m]] }

# Tests present in the suite files that did not run: with the reason.
set notrun {}
foreach s $suites {
    set file $testdir/$s.tcl
    set f [open $file]; set src [split [read $f] \n]; close $f
    set ln 0
    foreach l $src {
        incr ln
        if {![regexp {^[ \t]*test[ \t]+(\{[^\}]*\}|"(?:[^"\\]|\\.)*")} $l -> q]} continue
        set quoted [string equal [string index $q 0] "\""]
        set g [name_glob [string range $q 1 end-1] $quoted]
        if {$g eq "*" || $g eq ""} continue
        set found 0
        foreach n $seen { if {[string match $g $n]} { set found 1; break } }
        if {$found} continue
        # The enclosing blocks, innermost first, by indentation.
        # A denied tag on any of them is the reason; else the innermost `if`.
        set tagwhy ""; set ifwhy ""; set cur [indent $l]
        for {set j [expr {$ln - 2}]} {$j >= 0 && $cur > 0} {incr j -1} {
            set h [lindex $src $j]
            if {[string trim $h] eq "" || [regexp {^[ \t]*#} $h]} continue
            set hi [indent $h]
            if {$hi >= $cur} continue
            set cur $hi
            foreach t $denied {
                if {$tagwhy eq "" && [regexp "tags \\{\[^\\}\]*\\m$t\\M" $h]} {
                    set tagwhy "tag $t denied (--tags -$t): needs active defrag (HAVE_DEFRAG: je_get_defrag_hint() of Redis's patched jemalloc) and DEBUG MALLCTL (USE_JEMALLOC)"
                }
            }
            if {$ifwhy eq "" && [regexp {^[ \t]*if[ \t]+(\{.*\})[ \t]*\{[ \t]*$} $h -> cond]} {
                set ifwhy "upstream guard $s.tcl:[expr {$j+1}] if $cond"
                if {[string match "*jemalloc*mem_allocator*" $cond]} { append ifwhy " (jemalloc only)" }
            }
        }
        set why [expr {$tagwhy ne "" ? $tagwhy : $ifwhy}]
        if {$why eq ""} { set why "not reached ($s.tcl:$ln)" }
        lappend notrun [list [string map {\\ ""} $g] $why]
    }
}
set nskip [expr {[llength $skip] + [llength $ign] + [llength $notrun]}]
puts "COUNTS [llength $ok] [llength $err] [llength $exc] $nskip"
# Short reasons for the summary line.
set short [dict create]
foreach s $skip { dict incr short "--skiptest" }
foreach s $ign { dict incr short [lindex $s 1] }
foreach s $notrun {
    set w [lindex $s 1]
    if {[string match "tag * denied*" $w]} { set w "[lindex $w 1] tag: needs Redis's patched jemalloc" }
    if {[string match "*(jemalloc only)" $w]} { set w "jemalloc-only guard" }
    if {[string match "not reached*" $w]} { set w "not reached" }
    dict incr short $w
}
set parts {}
dict for {k c} $short { lappend parts "$c $k" }
puts "REASONS [join $parts {; }]"
foreach e $err { puts "  \[err\] [lindex $e 0]: [lindex $e 1]" }
foreach e $exc { puts "  \[exception\] $e" }
foreach b [lsort -unique $blockign] { puts "  \[ignore\] $b (whole server block)" }
foreach s $skip { puts "  \[skip\] $s" }
foreach s $ign { puts "  \[skipped\] [lindex $s 0]: [lindex $s 1]" }
foreach s $notrun { puts "  \[not run\] [lindex $s 0]: [lindex $s 1]" }
TCL
}

run_suites() {
  local v=$1 dir=$work/variants/$1 log=$logs/$1.test.log args=() s rc t
  for s in "${SUITES[@]}"; do args+=(--single "$s"); done
  for t in "${DENY_TAGS[@]}"; do args+=(--tags "-$t"); done
  echo "    ./runtest --clients $clients --timeout 600 ${args[*]}"
  (cd "$dir" && timeout 1800 ./runtest --clients "$clients" --timeout 600 "${args[@]}") >"$log" 2>&1
  rc=$?
  tclsh "$work/parse-results.tcl" "$log" "$rc" "${DENY_TAGS[*]}" "$dir/tests" "${SUITES[@]}" >"$log.summary" ||
    echo "COUNTS 0 0 1 0" >"$log.summary"
  local c
  read -r _ c_ok c_err c_exc c_skip < <(grep '^COUNTS' "$log.summary")
  c=$(grep '^REASONS' "$log.summary" | sed 's/^REASONS //')
  SUMMARY[$v]="$c_ok ok, $c_err err, $c_exc exception, $c_skip skipped${c:+ ($c)}"
  echo "redis $v: ${SUMMARY[$v]}"
  grep -v '^COUNTS\|^REASONS' "$log.summary"
  TESTS[$v]="$c_ok|$c_err|$c_exc|$c_skip"
  ((c_err == 0 && c_exc == 0))
}

# ------------------------------------------------------------------ bench
bench() {
  local cli=$work/variants/${variants[0]}/src/redis-cli
  local rb=$work/variants/${variants[0]}/src/redis-benchmark
  local bdir=$work/bench v port=21790 i r t
  rm -rf "$bdir"; mkdir -p "$bdir"
  stop_servers() {
    local v
    for v in "${!PID[@]}"; do
      "$cli" -h 127.0.0.1 -p "${PORT[$v]}" shutdown nosave >/dev/null 2>&1
      kill "${PID[$v]}" 2>/dev/null
      wait "${PID[$v]}" 2>/dev/null
    done
    PID=()
  }
  trap stop_servers EXIT
  trap 'stop_servers; exit 130' INT TERM
  for v in "${variants[@]}"; do
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    PORT[$v]=$port
    mkdir -p "$bdir/$v"
    "$work/variants/$v/src/redis-server" --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
      --dir "$bdir/$v" --logfile "$bdir/$v/redis.log" --protected-mode yes &
    PID[$v]=$!
    port=$((port + 1))
  done
  for v in "${variants[@]}"; do
    for i in $(seq 50); do
      [[ $("$cli" -h 127.0.0.1 -p "${PORT[$v]}" ping 2>/dev/null) == PONG ]] && break
      sleep 0.1
    done
    [[ $("$cli" -h 127.0.0.1 -p "${PORT[$v]}" ping 2>/dev/null) == PONG ]] ||
      { echo "    $v did not start (log: $bdir/$v/redis.log)"; return 1; }
  done
  echo "=== bench: load (redis-benchmark -t set -n 200000 -r 100000 -d 100; 16 x 1 MiB and 64 x 64 KiB values)"
  for v in "${variants[@]}"; do
    "$rb" -h 127.0.0.1 -p "${PORT[$v]}" -t set -n 200000 -r 100000 -d 100 -q >"$bdir/$v/load.txt" 2>&1 || return 1
    "$cli" -h 127.0.0.1 -p "${PORT[$v]}" eval \
      "for i=1,16 do redis.call('set','big:'..i,string.rep('x',1048576)) end
       for i=1,64 do redis.call('set','mid:'..i,string.rep('y',65536)) end return 1" 0 >/dev/null || return 1
  done
  sleep 1  # serverCron refreshes the allocator figures every 100 ms
  for v in "${variants[@]}"; do
    "$cli" -h 127.0.0.1 -p "${PORT[$v]}" info memory | tr -d '\r' >"$bdir/$v/info.txt"
    "$cli" -h 127.0.0.1 -p "${PORT[$v]}" dbsize | sed 's/^/keys:/' >>"$bdir/$v/info.txt"
  done
  printf '%-26s' "INFO memory"; for v in "${variants[@]}"; do printf '%18s' "$v"; done; echo
  for f in keys used_memory used_memory_rss used_memory_peak mem_fragmentation_ratio mem_fragmentation_bytes \
           mem_allocator allocator_allocated allocator_active allocator_resident allocator_frag_ratio \
           allocator_rss_ratio rss_overhead_ratio used_memory_dataset; do
    printf '%-26s' "$f"
    for v in "${variants[@]}"; do printf '%18s' "$(sed -n "s/^$f://p" "$bdir/$v/info.txt")"; done
    echo
  done
  echo "=== bench: redis-benchmark -t set,get -n 200000 -q, 3 rounds interleaved (requests/s)"
  for r in 1 2 3; do
    for v in "${variants[@]}"; do
      "$rb" -h 127.0.0.1 -p "${PORT[$v]}" -t set,get -n 200000 -q 2>/dev/null | tr '\r' '\n' |
        sed -n 's/^\([A-Z]*\): \([0-9.]*\) requests per second.*/\1 \2/p' >"$bdir/$v/round$r.txt"
    done
  done
  printf '  %-14s %-44s %s\n' variant "SET median (rounds 1, 2, 3)" "GET median (rounds 1, 2, 3)"
  for v in "${variants[@]}"; do
    printf '  %-14s' "$v"
    for t in SET GET; do
      local vals med
      vals=$(for r in 1 2 3; do sed -n "s/^$t //p" "$bdir/$v/round$r.txt"; done)
      med=$(sort -n <<<"$vals" | sed -n 2p)
      printf ' %-44s' "${med:-?} ($(tr '\n' ' ' <<<"$vals" | sed 's/ $//; s/ /, /g'))"
    done
    echo
  done
  stop_servers
  trap - EXIT INT TERM
}

# ------------------------------------------------------------------ run
write_parser
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
  bench || exit 1
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
