# Step 4 of scripts/redis-dropin.sh (sourced by it), instead of the suites:
# --bench (memory and throughput of baseline, zm-libc and zm-jemalloc) and
# --defrag-bench (active defragmentation on Redis's own patched jemalloc and
# on ours, side by side). Servers listen on 127.0.0.1 only and are stopped on
# exit. Needs: work, variants, PORT, PID.

cli=$work/variants/${variants[0]}/src/redis-cli
next_port=21790

# start_server VARIANT DIR [ARGS...]: starts it on a free port (PORT[VARIANT]).
start_server() {
  local v=$1 dir=$2 i
  shift 2
  while (exec 3<>"/dev/tcp/127.0.0.1/$next_port") 2>/dev/null; do next_port=$((next_port + 1)); done
  PORT[$v]=$next_port
  next_port=$((next_port + 1))
  mkdir -p "$dir"
  "$work/variants/$v/src/redis-server" --bind 127.0.0.1 --port "${PORT[$v]}" --save "" --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" --protected-mode yes "$@" &
  PID[$v]=$!
  for i in $(seq 50); do
    [[ $("$cli" -h 127.0.0.1 -p "${PORT[$v]}" ping 2>/dev/null) == PONG ]] && return 0
    sleep 0.1
  done
  echo "    $v did not start (log: $dir/redis.log)"
  return 1
}

stop_servers() {
  local v
  for v in "${!PID[@]}"; do
    "$cli" -h 127.0.0.1 -p "${PORT[$v]}" shutdown nosave >/dev/null 2>&1
    kill "${PID[$v]}" 2>/dev/null
    wait "${PID[$v]}" 2>/dev/null
  done
  PID=()
}

bench() {
  local rb=$work/variants/${variants[0]}/src/redis-benchmark
  local bdir=$work/bench v r t
  rm -rf "$bdir"; mkdir -p "$bdir"
  trap stop_servers EXIT
  trap 'stop_servers; exit 130' INT TERM
  for v in "${variants[@]}"; do start_server "$v" "$bdir/$v" || return 1; done
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


# --defrag-bench: the same fragmenting data set in each server, one at a time
# (so that neither steals the other's CPU): DEBUG POPULATE, then DEL of each
# key with probability FRAG_DEL (Lua's math.random, seeded alike in every
# Redis), MEMORY PURGE, figures; then activedefrag with the settings of
# Redis's own "Active defrag" test until it stops (or FRAG_TIMEOUT s),
# MEMORY PURGE, figures again.
FRAG_KEYS=${FRAG_KEYS:-500000} FRAG_VALUE=${FRAG_VALUE:-100} FRAG_DEL=${FRAG_DEL:-0.8}
FRAG_TIMEOUT=${FRAG_TIMEOUT:-300}
info_of() { "$cli" -h 127.0.0.1 -p "${PORT[$1]}" info all | tr -d '\r' >"$2"; }
field() { sed -n "s/^$1://p" "$2"; }

# defrag_one VARIANT DIR: the run on one server; leaves DIR/{before,after}.txt
# and DIR/ms (the wall time from enabling activedefrag to its stop).
defrag_one() {
  local v=$1 d=$2 r c t0 started=0 i
  start_server "$v" "$d" --activedefrag no --enable-debug-command yes || return 1
  r() { "$cli" -h 127.0.0.1 -p "${PORT[$v]}" "$@"; }
  r debug populate "$FRAG_KEYS" key "$FRAG_VALUE" >/dev/null &&
    r eval "local n = 0
      for i = 0, $FRAG_KEYS - 1 do
        if math.random() < $FRAG_DEL then n = n + redis.call('del', 'key:' .. i) end
      end
      return n" 0 >"$d/deleted" &&
    r memory purge >/dev/null || return 1
  sleep 1 # serverCron refreshes the allocator figures every 100 ms
  info_of "$v" "$d/before.txt"
  r latency reset >/dev/null
  for c in "latency-monitor-threshold 5" "active-defrag-cycle-min 65" "active-defrag-cycle-max 75" \
           "active-defrag-ignore-bytes 2mb" "active-defrag-threshold-lower 5" "activedefrag yes"; do
    # shellcheck disable=SC2086
    r config set $c >/dev/null || return 1
  done
  t0=$(date +%s%N)
  for ((i = 0; i < FRAG_TIMEOUT * 10; i++)); do
    sleep 0.1
    c=$(r info memory | tr -d '\r' | sed -n 's/^active_defrag_running://p')
    if [[ $c != 0 ]]; then started=1; elif ((started || i >= 30)); then break; fi
  done
  echo $((($(date +%s%N) - t0) / 1000000)) >"$d/ms"
  ((i < FRAG_TIMEOUT * 10)) || echo " (timeout)" >>"$d/ms"
  # LATENCY LATEST: name, time, latest, max (one per line in redis-cli's raw output).
  r latency latest | awk 'p == 1 { n++; if (n == 3) { print; exit } } /^active-defrag-cycle$/ { p = 1 }' \
    >"$d/latency"
  [[ -s $d/latency ]] || echo "<5" >"$d/latency" # none past the monitor's threshold
  r memory purge >/dev/null
  sleep 1
  info_of "$v" "$d/after.txt"
  stop_servers
}

defrag_bench() {
  local bdir=$work/defrag-bench v f
  rm -rf "$bdir"
  trap stop_servers EXIT
  trap 'stop_servers; exit 130' INT TERM
  echo "=== defrag-bench: DEBUG POPULATE $FRAG_KEYS key $FRAG_VALUE, DEL of each key with probability" \
       "$FRAG_DEL, then activedefrag (cycle 65-75%, threshold-lower 5%, ignore-bytes 2mb)"
  for v in "${variants[@]}"; do
    echo "    $v"
    defrag_one "$v" "$bdir/$v" || { echo "    $v: the run failed (log: $bdir/$v/redis.log)"; return 1; }
  done
  printf '  %-40s' ""; for v in "${variants[@]}"; do printf '%18s' "$v"; done; echo
  for f in mem_allocator "keys left" "allocator_frag_ratio before" "allocator_frag_ratio after" \
           "used_memory_rss before" "used_memory_rss after" "used_memory after" \
           "total_active_defrag_time (ms)" "defrag wall time (ms)" "longest defrag cycle (ms)" \
           active_defrag_hits active_defrag_misses \
           active_defrag_key_hits active_defrag_key_misses; do
    printf '  %-40s' "$f"
    for v in "${variants[@]}"; do
      local dv=$bdir/$v x
      case $f in
        "keys left") x=$(sed -n 's/^db0:keys=\([0-9]*\).*/\1/p' "$dv/after.txt") ;;
        *" before") x=$(field "${f% before}" "$dv/before.txt") ;;
        *" after") x=$(field "${f% after}" "$dv/after.txt") ;;
        "total_active_defrag_time (ms)") x=$(field total_active_defrag_time "$dv/after.txt") ;;
        "defrag wall time (ms)") x=$(tr -d '\n' <"$dv/ms") ;;
        "longest defrag cycle (ms)") x=$(cat "$dv/latency") ;;
        *) x=$(field "$f" "$dv/after.txt") ;;
      esac
      printf '%18s' "${x:--}"
    done
    echo
  done
  trap - EXIT INT TERM
}
