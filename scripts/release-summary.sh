#!/usr/bin/env bash
# Prints one table row per release configuration from the logs that
# scripts/test-all.sh leaves under build/: the build, ctest's passed /
# failed / skipped, the fast paths that ran (and why the others did not),
# and the worst zmalloc/raw ratio of the benchmark's summary rows at 1 and
# 2 threads (median of its rounds, fixed and mixed pairs), and zmalloc's
# instructions over the raw allocator's (scripts/instructions.sh: a fixed
# pair, a mixed step), which a busy machine does not change.
# Usage: scripts/release-summary.sh NAME...   (e.g. bookworm-libc=default
#        trixie-libc sid-jemalloc; NAME=DIR reads build/DIR.* under NAME)
set -uo pipefail
cd "$(dirname "$0")/.."

echo "| release-backend | build | ctest passed / failed / skipped | fast paths | worst ratio 1T | worst ratio 2T | instructions pair / mixed |"
echo "|---|---|---|---|---:|---:|---:|"
for arg in "$@"; do
  name=${arg%%=*} dir=build/${arg#*=}
  if [[ ! -f $dir.ctest.log ]]; then
    echo "| $name | failed (no ctest log) | | | | | |"
    continue
  fi
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$dir.ctest.log" | tail -1)
  fail=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$line")
  all=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
  skip=$(grep -cE "^[[:space:]]+[0-9]+ - .* \(Skipped\)$" "$dir.ctest.log")
  counts="$((all - fail - skip)) / $fail / $skip"
  fast=$(grep -m1 -E "^[a-z]+-?[0-9.]*: " "$dir.bench.log" 2>/dev/null | sed -E 's/^[^:]+: //; s/\|/\//g')
  worst() { # threads
    awk -F'|' -v t="$1" '$4 ~ "^ *" t " *$" && $7 ~ /[0-9]/ { r = $7 + 0; if (r > m) m = r } END { if (m) printf "%.2f", m; else printf "n/a" }' \
      "$dir.bench.log" 2>/dev/null
  }
  # instructions.sh's row: | dir | allocator | raw | zmalloc | extra | raw mixed | zmalloc mixed | extra |
  insn=$(awk -F'|' '$2 ~ /build/ && $4 ~ /[0-9]/ { printf "%.2f / %.2f", $5 / $4, $8 / $7 }' "$dir.bench.log" 2>/dev/null)
  echo "| $name | ok | $counts | ${fast:-n/a} | $(worst 1) | $(worst 2) | ${insn:-n/a} |"
done
