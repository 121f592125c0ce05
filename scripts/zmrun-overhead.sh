#!/usr/bin/env bash
# zmrun-overhead.sh: what running a program under zmrun costs in wall time,
# next to glibc's memusage and heaptrack, on programs nobody here wrote.
#
#   scripts/zmrun-overhead.sh PATH/TO/zmrun [--runs N] [--quick] [--workdir DIR]
#
# Debian packages it uses (installed with apt-get when a tool is missing):
#   python3-minimal (/usr/bin/python3), coreutils (sort), gzip, gcc, git,
#   libc-devtools (memusage), heaptrack, zstd (heaptrack's compressor), bc
#
# For each workload it times, N times with the four variants interleaved
# (plain, zmrun, memusage, heaptrack, plain, ...), the wall time of:
#   plain       the command
#   zmrun       zmrun -o /dev/null -- command   (the report is discarded)
#   memusage    memusage command                 (summary only: no --png, no --data)
#   heaptrack   heaptrack -o FILE command        (FILE.zst is kept; its size is reported)
# and prints a markdown table of medians and ratios median(tool)/median(plain).
# Before timing, every workload runs once plain and once under zmrun and the
# outputs are compared: a difference is reported (it would be a zmrun bug)
# and makes the script exit 1 after the table.
#
# --quick: 3 runs and smaller, fewer workloads (for CI).
set -eu

usage() {
    echo "usage: $0 PATH/TO/zmrun [--runs N] [--quick] [--workdir DIR]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
ZMRUN=$1
shift
RUNS=5
RUNS_SET=0
QUICK=0
W=/tmp/zmrun-bench
while [ $# -gt 0 ]; do
    case $1 in
    --runs) [ $# -ge 2 ] || usage; RUNS=$2; RUNS_SET=1; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --workdir) [ $# -ge 2 ] || usage; W=$2; shift 2 ;;
    *) usage ;;
    esac
done
case $RUNS in '' | *[!0-9]* | 0) echo "$0: --runs wants a positive number" >&2; exit 2 ;; esac
if [ "$QUICK" = 1 ] && [ "$RUNS_SET" = 0 ]; then RUNS=3; fi
[ -x "$ZMRUN" ] || { echo "$0: $ZMRUN is not an executable" >&2; exit 2; }
ZMRUN=$(cd "$(dirname "$ZMRUN")" && pwd)/$(basename "$ZMRUN")
mkdir -p "$W" && W=$(cd "$W" && pwd) # the workloads run from $W/run: keep it absolute

# --- tools -----------------------------------------------------------------
need=()
[ -x /usr/bin/python3 ] || need+=(python3-minimal)
command -v sort >/dev/null || need+=(coreutils)
command -v gzip >/dev/null || need+=(gzip)
command -v gcc >/dev/null || need+=(gcc)
command -v git >/dev/null || need+=(git)
command -v memusage >/dev/null || need+=(libc-devtools)
command -v heaptrack >/dev/null || need+=(heaptrack)
command -v zstd >/dev/null || need+=(zstd)
command -v bc >/dev/null || need+=(bc)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    apt-get install -y "${need[@]}" >&2
fi

mkdir -p "$W"
rm -rf "$W/run" "$W/ht" "$W/verify"
mkdir -p "$W/run" "$W/ht" "$W/verify"
LOG=$W/stderr.log
: >"$LOG"

# --- inputs ----------------------------------------------------------------
SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
. "$SCRIPT_DIR/zmrun-overhead/inputs.sh"

# --- workloads -------------------------------------------------------------
# name|command (words split on spaces; no quoting needed for these)
WORKLOADS=(
    "python3 (dict+list of ${PY_N} objects)|/usr/bin/python3 $W/py_objects.py $PY_N"
    "sort ($(($(stat -c %s "$SORT_IN") / 1048576)) MiB, ${SORT_LINES} lines)|sort $SORT_IN"
    "gzip -c (${GZ_MB} MiB)|gzip -c $GZ_IN"
    "gcc -O2 -c (${CC_FILES} generated files)|gcc -O2 -c ${CC_SRCS[*]}"
    "git log --stat (${GIT_COMMITS} commits)|git -C $REPO --no-pager log --stat"
    "zmrun_loop fixed 1 thread|$W/zmrun_loop fixed 1 $LOOP_FIXED"
    "zmrun_loop fixed 2 threads|$W/zmrun_loop fixed 2 $LOOP_FIXED"
    "zmrun_loop mixed 1 thread|$W/zmrun_loop mixed 1 $LOOP_MIXED"
    "zmrun_loop mixed 2 threads|$W/zmrun_loop mixed 2 $LOOP_MIXED"
)
if [ "$QUICK" = 1 ]; then
    WORKLOADS=("${WORKLOADS[0]}" "${WORKLOADS[2]}" "${WORKLOADS[3]}" "${WORKLOADS[5]}" "${WORKLOADS[8]}")
fi

cd "$W/run"

# time_cmd VARIANT NAME_INDEX RUN COMMAND...: prints seconds; stdout discarded.
time_cmd() {
    local variant=$1 idx=$2 run=$3
    shift 3
    local s e rc=0
    case $variant in
    plain)
        s=$(date +%s.%N); "$@" >/dev/null 2>>"$LOG" || rc=$?; e=$(date +%s.%N) ;;
    zmrun)
        s=$(date +%s.%N); "$ZMRUN" -o /dev/null -- "$@" >/dev/null 2>>"$LOG" || rc=$?; e=$(date +%s.%N) ;;
    memusage)
        s=$(date +%s.%N); memusage "$@" >/dev/null 2>>"$LOG" || rc=$?; e=$(date +%s.%N) ;;
    heaptrack)
        rm -f "$W/ht/w$idx.r$run".*
        s=$(date +%s.%N); heaptrack -o "$W/ht/w$idx.r$run" "$@" >/dev/null 2>>"$LOG" || rc=$?; e=$(date +%s.%N) ;;
    esac
    if [ "$rc" != 0 ]; then
        echo "$0: $variant run of '$*' exited with $rc (see $LOG)" >&2
        echo "FAIL"
        return
    fi
    echo "$e - $s" | bc
}

median() { # numbers on stdin -> median (FAIL if any run failed)
    sort -g | awk '/FAIL/ { f = 1 } { v[NR] = $1 } END {
        if (f || NR == 0) { print "FAIL"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {
    if [ "$1" = FAIL ] || [ "$2" = FAIL ]; then echo "failed"; else echo "scale=6; $1 / $2" | bc | awk '{ printf "%.3f", $1 }'; fi
}

# --- same results under zmrun? ----------------------------------------------
SURPRISES=()
idx=0
for wl in "${WORKLOADS[@]}"; do
    name=${wl%%|*}
    read -r -a cmd <<<"${wl#*|}"
    idx=$((idx + 1))
    for v in plain zmrun; do
        rm -f "$W/run"/*.o
        rc=0
        if [ $v = plain ]; then
            "${cmd[@]}" >"$W/verify/$idx.$v.out" 2>"$W/verify/$idx.$v.err" || rc=$?
        else
            "$ZMRUN" -o "$W/verify/$idx.report" -- "${cmd[@]}" >"$W/verify/$idx.$v.out" 2>"$W/verify/$idx.$v.err" || rc=$?
        fi
        echo "$rc" >"$W/verify/$idx.$v.rc"
        # object files too (gcc), without their names
        cat /dev/null $(ls "$W/run"/*.o 2>/dev/null) | md5sum >>"$W/verify/$idx.$v.out"
    done
    if ! cmp -s "$W/verify/$idx.plain.out" "$W/verify/$idx.zmrun.out" ||
        ! cmp -s "$W/verify/$idx.plain.rc" "$W/verify/$idx.zmrun.rc" ||
        ! cmp -s "$W/verify/$idx.plain.err" "$W/verify/$idx.zmrun.err"; then
        SURPRISES+=("$name: output, stderr or exit status differs under zmrun (see $W/verify/$idx.*)")
    fi
    if [ ! -s "$W/verify/$idx.report" ] || ! grep -q 'heap at exit' "$W/verify/$idx.report"; then
        SURPRISES+=("$name: zmrun wrote no report (see $W/verify/$idx.report)")
    fi
done

# --- timing ----------------------------------------------------------------
ROWS=()
idx=0
for wl in "${WORKLOADS[@]}"; do
    name=${wl%%|*}
    read -r -a cmd <<<"${wl#*|}"
    idx=$((idx + 1))
    echo "timing: $name ($RUNS runs)" >&2
    : >"$W/t.plain" ; : >"$W/t.zmrun" ; : >"$W/t.memusage" ; : >"$W/t.heaptrack" ; : >"$W/t.htsize"
    for run in $(seq 1 "$RUNS"); do
        for v in plain zmrun memusage heaptrack; do
            time_cmd $v "$idx" "$run" "${cmd[@]}" >>"$W/t.$v"
        done
        f=$(ls "$W/ht/w$idx.r$run".* 2>/dev/null | head -n 1 || true)
        if [ -n "$f" ]; then stat -c %s "$f" >>"$W/t.htsize"; fi
        if [ "$run" -gt 1 ]; then rm -f "$W/ht/w$idx.r$((run - 1))".*; fi
    done
    p=$(median <"$W/t.plain")
    z=$(median <"$W/t.zmrun")
    m=$(median <"$W/t.memusage")
    h=$(median <"$W/t.heaptrack")
    hs=$(if [ -s "$W/t.htsize" ]; then median <"$W/t.htsize" | awk '{ if ($1 >= 1048576) printf "%.1f MiB", $1 / 1048576; else printf "%.1f KiB", $1 / 1024 }'; else echo "none"; fi)
    pf=$(if [ "$p" = FAIL ]; then echo failed; else printf "%.3f" "$p"; fi)
    ROWS+=("| $name | $pf | $(ratio "$z" "$p") | $(ratio "$m" "$p") | $(ratio "$h" "$p") | $hs |")
    {
        echo "# $name"
        for v in plain zmrun memusage heaptrack; do echo "$v: $(tr '\n' ' ' <"$W/t.$v")"; done
    } >>"$W/raw-times.txt"
done

# --- report ----------------------------------------------------------------
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(uname -sr)"
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "zmrun: $ZMRUN (backend libc, report to /dev/null); memusage: $(memusage --version 2>&1 | head -n 1); heaptrack: $(heaptrack --version 2>&1 | head -n 1)"
echo "runs: $RUNS per variant, interleaved; medians of wall time$([ "$QUICK" = 1 ] && echo "; --quick")"
echo
echo "| workload | plain s | zmrun ratio | memusage ratio | heaptrack ratio | heaptrack file size |"
echo "|---|---:|---:|---:|---:|---:|"
for r in "${ROWS[@]}"; do echo "$r"; done
echo
echo "commands (plain form; stdout to /dev/null):"
for wl in "${WORKLOADS[@]}"; do echo "    ${wl#*|}"; done
if [ ${#SURPRISES[@]} -gt 0 ]; then
    echo
    echo "differences under zmrun:"
    for s in "${SURPRISES[@]}"; do echo "  - $s"; done
    exit 1
else
    echo
    echo "every workload gave the same stdout, stderr, exit status (and object files) under zmrun as plain"
fi
