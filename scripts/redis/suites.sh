# Step 3 of scripts/redis-dropin.sh (sourced by it): Redis's own Tcl suites
# on one variant, in one `./runtest --clients N`, and their results
# (scripts/redis/parse-results.tcl): every test of the suite files that did
# not run is listed with the reason (runtest's own, a denied tag, or the
# upstream `if` that guards it) and counted as skipped. N=3: the run is bound
# by unit/maxmemory (35-45 s, serial in one client), so 3 clients on 2 cores
# keep it there without starving timing-sensitive tests.
# --no-latency (unless --latency): in these units it drops only the defrag
# tests' bound on the longest defrag cycle (30 ms), which a 2-core machine
# running three test servers at once misses for Redis's own jemalloc build
# too. Needs: REPO, work, logs, clients, latency, SUITES, DENY_TAGS, SUMMARY,
# TESTS. Failed defrag tests get one retry alone (retry_defrag, below).

run_suites() {
  local v=$1 dir=$work/variants/$1 log=$logs/$1.test.log args=() s rc t
  for s in "${SUITES[@]}"; do args+=(--single "$s"); done
  for t in "${DENY_TAGS[@]}"; do args+=(--tags "-$t"); done
  ((latency)) || args+=(--no-latency)
  echo "    ./runtest --clients $clients --timeout 600 ${args[*]}"
  (cd "$dir" && timeout 1800 ./runtest --clients "$clients" --timeout 600 "${args[@]}") >"$log" 2>&1
  rc=$?
  tclsh "$REPO/scripts/redis/parse-results.tcl" "$log" "$rc" "${DENY_TAGS[*]}" "$dir/tests" "${SUITES[@]}" >"$log.summary" ||
    echo "COUNTS 0 0 1 0" >"$log.summary"
  local c
  read -r _ c_ok c_err c_exc c_skip < <(grep '^COUNTS' "$log.summary")
  c=$(grep '^REASONS' "$log.summary" | sed 's/^REASONS //')
  if ((c_err > 0)) && retry_defrag "$v"; then
    echo "    the $c_err failed defrag tests passed when unit/memefficiency ran alone ($log.retry)"
    c="${c:+$c; }$c_err defrag tests passed on a retry alone"
    c_ok=$((c_ok + c_err)) c_err=0
  fi
  SUMMARY[$v]="$c_ok ok, $c_err err, $c_exc exception, $c_skip skipped${c:+ ($c)}"
  echo "redis $v: ${SUMMARY[$v]}"
  grep -v '^COUNTS\|^REASONS' "$log.summary"
  TESTS[$v]="$c_ok|$c_err|$c_exc|$c_skip"
  ((c_err == 0 && c_exc == 0))
}


# The defrag tests are load-sensitive (keyspace scans in cron-tick slices
# bounded by wall-clock time, and figures read 120 ms after a change): when they alone failed, they are run
# again in unit/memefficiency alone, one test client, and count as passed
# only if each passes there. Returns 0 when that happened.
retry_defrag() {
  local v=$1 dir=$work/variants/$1 log=$logs/$1.test.log name args=() failed=()
  mapfile -t failed < <(sed -n 's/^  \[err\] \(Active defrag[^:]*\): .*/\1/p' "$log.summary")
  ((${#failed[@]} == c_err && c_exc == 0)) || return 1
  ((latency)) || args+=(--no-latency)
  (cd "$dir" && timeout 900 ./runtest --clients 1 --timeout 600 --single unit/memefficiency "${args[@]}") \
    >"$log.retry" 2>&1
  for name in "${failed[@]}"; do
    sed 's/\x1b\[[0-9;]*m//g' "$log.retry" | grep -qF "[ok]: $name (" || return 1
  done
}
