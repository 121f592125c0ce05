# Step 1 of scripts/redis-dropin.sh (sourced by it): Redis's source, from
# Debian's source package, unpacked without Debian's patches into
# $pristine (kept between runs). Needs: work, logs, REDIS_VERSION, timed, die.
#
# Source: Debian's own source package (`apt-get source --download-only
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


step_source() {
  if [[ -f $pristine/.dropin-source ]]; then
    echo "=== source: cached $pristine ($(cat "$pristine/.dropin-source"), Debian patches skipped)"
  else
    echo "=== source: apt-get source redis (Debian patches skipped)"
    timed source fetch_source || die "could not get Redis's source"
    echo "    $(cat "$pristine/.dropin-source") -> $pristine"
  fi
}
