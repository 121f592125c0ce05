#!/bin/bash
# zmrun's tests, one case per call:
#   check_zmrun.sh CASE BACKEND ZMRUN TARGET WORKDIR [STATIC_TARGET (cli) or LIBRARY (linked)]
# The exactness cases run tests/zmrun/zmrun_target twice ("known" and
# "baseline", see there) and require the reports to differ by exactly the
# bytes the target says it kept, measured with the allocator's own size
# function. The other cases check what a user sees: exit statuses, messages,
# the limit and the injected failure.
set -eu
CASE=$1 B=$2 ZMRUN=$3 TARGET=$4 W=$5 STATIC_TARGET=${6:-}
mkdir -p "$W"
fail() { echo "FAIL: $*" >&2; exit 1; }

# field JSON-LINE NAME: a number from one report
field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1"; }
# expected FILE NAME
expected() { awk -v n="$2" '$1 == n { print $2 }' "$1"; }

# run MODE [extra zmrun options]: reports in $W/MODE.json, expectations in $W/MODE.expect
run() {
  local mode=$1; shift
  rm -f "$W/$mode.json" "$W/$mode.expect"
  ZT_CTOR=$([ "$CASE" = ctor ] && echo "$mode") "$ZMRUN" -b "$B" --json -o "$W/$mode.json" "$@" -- "$TARGET" "$CASE" "$mode" "$B" "$W/$mode.expect" \
    || fail "zmrun exited $? in $mode mode"
}

# check NAME GOT WANT
check() {
  [ "$2" = "$3" ] || fail "$1: report says $2, expected $3 (known-mode figure minus baseline)"
  echo "ok: $1 = $2"
}

# the one report of a single-process run
only() { [ "$(wc -l < "$1")" = 1 ] || fail "$1: expected one report, got $(wc -l < "$1")"; cat "$1"; }

# calls REPORT FUNCTION: how many times the report says FUNCTION was called
calls() { sed "s/.*\"$2\":\([0-9]*\).*/\1/" <<<"$1"; }

# The exact case's figures: final and peak heap, and one call of each of
# the rarer functions.
check_exact() {
  run baseline; run known
  base=$(only "$W/baseline.json"); k=$(only "$W/known.json")
  check "final heap" $(( $(field "$k" heap_final) - $(field "$base" heap_final) )) "$(expected "$W/known.expect" final)"
  check "peak heap" $(( $(field "$k" heap_peak) - $(field "$base" heap_final) )) "$(expected "$W/known.expect" peak)"
  check "posix_memalign calls" "$(calls "$k" posix_memalign)" 1
  check "aligned_alloc calls" "$(calls "$k" aligned_alloc)" 1
  check "valloc calls" "$(calls "$k" valloc)" 1
}

case $CASE in
exact) check_exact ;;
linked)
  # TARGET links another allocator (jemalloc, tcmalloc, mimalloc), or has one
  # preloaded behind zmrun's library (the library file, $6): its malloc
  # family is that allocator's. zmrun's library must still find the
  # backend's (glibc's) own functions, run the program to its own exit
  # status and count exactly.
  export LD_PRELOAD=${6:-}
  rc=0
  "$ZMRUN" -b "$B" -o "$W/status.txt" -- "$TARGET" exit known "$B" "$W/status.expect" 3 2> "$W/err" || rc=$?
  [ "$rc" = 3 ] || fail "zmrun exited $rc, expected the program's 3; stderr: $(cat "$W/err")"
  echo "ok: exit status 3"
  CASE=exact check_exact
  ;;
aligned)
  # Blocks aligned to 16 and 64 KiB, freed (zmrun -b tcmalloc crashed).
  run baseline; run known
  base=$(only "$W/baseline.json"); k=$(only "$W/known.json")
  # mimalloc 3.0's own mi_usable_size() of an aligned block changes while
  # the block lives (its page forgets that it holds aligned blocks; 3.6 does
  # not), so neither zmalloc nor the allocator can say what such a block
  # held: docs/platforms.md. The report names the release it ran on.
  if [ "$B" = mimalloc ] && grep -q '"fast_paths":"[^"]*mimalloc 3\.0\.' <<<"$k"; then
    echo "SKIP: mimalloc 3.0's mi_usable_size() of aligned blocks changes while they live"
    exit 77
  fi
  check "final heap" $(( $(field "$k" heap_final) - $(field "$base" heap_final) )) "$(expected "$W/known.expect" final)"
  check "peak heap" $(( $(field "$k" heap_peak) - $(field "$base" heap_final) )) "$(expected "$W/known.expect" peak)"
  check "memalign calls" "$(calls "$k" memalign)" 100
  ;;
tsd)
  run baseline; run known
  base=$(only "$W/baseline.json"); k=$(only "$W/known.json")
  check "final heap" $(( $(field "$k" heap_final) - $(field "$base" heap_final) )) "$(expected "$W/known.expect" final)"
  ;;
ctor)
  run baseline; run known
  base=$(only "$W/baseline.json"); k=$(only "$W/known.json")
  check "final heap" $(( $(field "$k" heap_final) - $(field "$base" heap_final) )) "$(expected "$W/known.expect" final)"
  check "peak heap" $(( $(field "$k" heap_peak) - $(field "$base" heap_peak) )) "$(expected "$W/known.expect" peak_extra)"
  ;;
forkexec)
  run baseline; run known
  for mode in baseline known; do
    f="$W/$mode.json"
    [ "$(wc -l < "$f")" = 3 ] || fail "$f: expected 3 reports (parent, child before exec, child after), got $(wc -l < "$f")"
    child=$(grep '"end":"exec"' "$f") || fail "$f: no report ended by exec"
    cpid=$(field "$child" pid)
    leaf=$(grep "^{\"pid\":$cpid," "$f" | grep '"end":"exit"') || fail "$f: no report from the exec'd program"
    parent=$(grep -v "^{\"pid\":$cpid," "$f")
    eval "${mode}_child=\$(field \"\$child\" heap_final) ${mode}_leaf=\$(field \"\$leaf\" heap_final) ${mode}_parent=\$(field \"\$parent\" heap_final)"
  done
  e="$W/known.expect"
  check "parent's final heap" $(( known_parent - baseline_parent )) "$(expected "$e" parent_final)"
  check "child's heap at exec" $(( known_child - baseline_child )) "$(expected "$e" child_final)"
  check "exec'd program's final heap" $(( known_leaf - baseline_leaf )) "$(expected "$e" leaf_final)"
  ;;
limit)
  run known --limit 10M
  k=$(only "$W/known.json")
  [ "$(expected "$W/known.expect" errno_is_enomem)" = 1 ] || fail "the failing malloc did not set ENOMEM"
  bytes=$(expected "$W/known.expect" bytes)
  [ "$(field "$k" heap_peak)" -le $((10 << 20)) ] || fail "heap peak $(field "$k" heap_peak) passed the 10 MiB limit"
  [ "$bytes" -gt $((9 << 20)) ] || fail "only $bytes bytes allocated before the limit (10 MiB)"
  check "failed allocations" "$(field "$k" failed)" 1
  ;;
failafter)
  # The Nth allocating call of the process: count the runtime's own calls
  # before the target's ten (a run without failures), then aim at the 7th.
  run baseline
  base=$(only "$W/baseline.json")
  calls=0
  for fn in malloc calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc pvalloc; do
    calls=$(( calls + $(sed "s/.*\"$fn\":\([0-9]*\).*/\1/" <<<"$base") ))
  done
  run known --fail-after $(( calls - 10 + 7 ))
  check "failing call" "$(expected "$W/known.expect" failed_call)" 7
  check "errno" "$(expected "$W/known.expect" errno_is_enomem)" 1
  check "failed allocations" "$(field "$(only "$W/known.json")" failed)" 1
  ;;
cli)
  # expect_rc WANT_RC WANT_MESSAGE command...: zmrun's own answers
  expect_rc() {
    local want=$1 msg=$2; shift 2
    local rc=0
    "$@" > "$W/out" 2> "$W/err" || rc=$?
    [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want; stderr: $(cat "$W/err")"
    [ -z "$msg" ] || grep -q -- "$msg" "$W/err" || fail "'$*': stderr lacks '$msg': $(cat "$W/err")"
    echo "ok: $* -> $rc${msg:+ ($msg)}"
  }
  T=("$TARGET")
  expect_rc 2 "unknown option '--frobnicate'" "$ZMRUN" --frobnicate -- true
  expect_rc 2 "no program to run" "$ZMRUN"
  expect_rc 2 "unknown backend 'dlmalloc'" "$ZMRUN" -b dlmalloc -- true
  expect_rc 2 "--limit wants" "$ZMRUN" --limit 12Q -- true
  expect_rc 2 "--limit wants" "$ZMRUN" --limit -5 -- true
  expect_rc 2 "--fail-after wants" "$ZMRUN" --fail-after 0 -- true
  expect_rc 2 "--interval needs" "$ZMRUN" --interval 10 -- true
  expect_rc 2 "needs a value" "$ZMRUN" --output
  expect_rc 127 "program not found" "$ZMRUN" -- no-such-program-zmrun
  expect_rc 127 "program not found" "$ZMRUN" -- ./no/such/path
  printf 'not a program' > "$W/plain"; chmod -x "$W/plain"
  expect_rc 126 "not an executable file" "$ZMRUN" -- "$W/plain"
  expect_rc 126 "statically linked" "$ZMRUN" -- "$STATIC_TARGET"
  # A 32-bit ELF header (the loader would ignore 64-bit preload libraries).
  { printf '\177ELF\001\001\001'; head -c 57 /dev/zero; } > "$W/elf32"; chmod +x "$W/elf32"
  expect_rc 126 "is a 32-bit program" "$ZMRUN" -- "$W/elf32"
  # Set-user-ID to someone else: the loader would ignore LD_PRELOAD.
  cp "$TARGET" "$W/setuid"
  if chown nobody "$W/setuid" 2>/dev/null && chmod u+s "$W/setuid"; then
    expect_rc 126 "set-user-ID" "$ZMRUN" -- "$W/setuid"
  else
    echo "note: cannot chown a file to nobody here (not root): the set-user-ID refusal is not checked"
  fi
  expect_rc 126 "backend libc is not installed" env ZMRUN_PRELOAD_DIR="$W/none" "$ZMRUN" -- true
  # The program's own status, however it ends, with a report each time.
  expect_rc 3 "" "$ZMRUN" -o "$W/r.json" --json -- "${T[@]}" exit known libc "$W/e" 3
  grep -q '"end":"exit"' "$W/r.json" || fail "no exit report: $(cat "$W/r.json")"
  expect_rc 5 "" "$ZMRUN" -o "$W/r.json" --json -- "${T[@]}" _exit known libc "$W/e" 5
  grep -q '"end":"_exit","code":5' "$W/r.json" || fail "no _exit report: $(cat "$W/r.json")"
  expect_rc 134 "killed by signal 6" "$ZMRUN" -o "$W/r.json" --json -- "${T[@]}" abort known libc "$W/e"
  grep -q '"end":"signal","code":6,"exact":true' "$W/r.json" || fail "no signal report: $(cat "$W/r.json")"
  # A script runs its interpreter under zmrun; %p gives each process its file.
  printf '#!/bin/sh\nexit 4\n' > "$W/script"; chmod +x "$W/script"
  rm -f "$W"/p.*.txt
  expect_rc 4 "" "$ZMRUN" -o "$W/p.%p.txt" -- "$W/script"
  ls "$W"/p.*.txt > /dev/null || fail "no report file from %p"
  grep -q "heap at exit" "$W"/p.*.txt || fail "the text report lacks its heap figure"
  # A relative --output names a file where zmrun ran, even for a program that
  # changes directory.
  rm -f "$W/rel.json"
  (cd "$W" && "$ZMRUN" --json -o rel.json -- sh -c 'cd / && exit 0') || fail "relative --output run failed"
  grep -q '"heap_final":' "$W/rel.json" || fail "no report in $W/rel.json for a program that changed directory"
  echo "ok: relative --output after chdir"
  # --compare names the backends it could not find.
  mkdir -p "$W/only-libc"
  PRELOAD_DIR=$(dirname "$("$ZMRUN" --list-backends | awk '$1 == "libc" { print $2 }')")
  ln -sf "$PRELOAD_DIR/libzmalloc-preload-libc.so" "$W/only-libc/"
  ZMRUN_PRELOAD_DIR="$W/only-libc" "$ZMRUN" --compare -- "${T[@]}" exit known libc "$W/e" 0 > "$W/table" 2> "$W/err" \
    || fail "--compare failed: $(cat "$W/err")"
  cat "$W/table"
  grep -q '^libc  *[0-9]' "$W/table" || fail "--compare has no libc row"
  for b in jemalloc tcmalloc mimalloc; do
    grep -q "^$b *not installed" "$W/table" || fail "--compare does not say $b is missing"
  done
  # A program started through a wrapper that execs it (env here; a pyenv
  # shim, a shell script's exec) is the program --compare reports on: its
  # heap figures are the program's own, not the wrapper's.
  ZMRUN_PRELOAD_DIR="$W/only-libc" "$ZMRUN" --compare -- env "${T[@]}" exit known libc "$W/e" 0 \
    > "$W/table-env" 2> "$W/err" || fail "--compare through env failed: $(cat "$W/err")"
  heap_cols() { awk '$1 == "libc" { print $3, $4, $5, $6 }' "$1"; }
  [ -n "$(heap_cols "$W/table")" ] && [ "$(heap_cols "$W/table")" = "$(heap_cols "$W/table-env")" ] \
    || fail "--compare through env reports other heap figures: $(cat "$W/table-env")"
  echo "ok: --compare reports the program a wrapper execs ($(heap_cols "$W/table-env"))"
  ;;
*) fail "unknown case $CASE" ;;
esac
