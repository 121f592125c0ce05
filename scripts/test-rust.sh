#!/usr/bin/env bash
# Tests the Rust crate (bindings/rust) with every toolchain installed here --
# rustup's (~/.cargo/bin/cargo) and Debian 12's (/usr/bin/cargo, rustc 1.63,
# the crate's minimum), or $CARGO alone when set -- and every backend asked
# for (default: libc and jemalloc). Each run is `cargo test --offline` in its
# own target folder (bindings/rust/target/rustc-<version>-<backend>), whose
# build.rs builds the C library with cmake for that backend; cargo's own
# result lines are printed. The example (examples/report.rs) then runs once
# per backend and must end with its "accounting: exact" line.
#
# Exits 1 when a run fails, 77 (skipped) when no cargo is installed.
# Usage: scripts/test-rust.sh [backend ...]      (ZMALLOC_JOBS: cargo -j, default 2)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
crate=$root/bindings/rust
backends=("$@")
((${#backends[@]})) || backends=(libc jemalloc)
jobs=${ZMALLOC_JOBS:-2}

cargos=()
if [[ -n ${CARGO:-} ]]; then
  cargos=("$CARGO")
else
  for c in "$HOME/.cargo/bin/cargo" /usr/bin/cargo; do
    [[ -x $c ]] && cargos+=("$c")
  done
fi
if ((${#cargos[@]} == 0)); then
  echo "test-rust: skipped: no cargo (apt-get install -y cargo)"
  exit 77
fi

fail=0
summary=()
for cargo in "${cargos[@]}"; do
  bin=$(dirname "$cargo")
  # The rustc and rustdoc beside this cargo, not whichever PATH finds first.
  export RUSTC=$bin/rustc RUSTDOC=$bin/rustdoc
  version=$("$RUSTC" --version | awk '{print $2}')
  for backend in "${backends[@]}"; do
    features=()
    [[ $backend != libc ]] && features=(--features "$backend")
    echo "== cargo test: $cargo (rustc $version), backend $backend"
    log=$(mktemp)
    ZMALLOC_BACKEND=$backend CARGO_TARGET_DIR=$crate/target/rustc-$version-$backend \
      nice -n 10 "$cargo" test --offline -j "$jobs" --manifest-path "$crate/Cargo.toml" \
      "${features[@]}" >"$log" 2>&1
    rc=$?
    grep -E '^(     Running|   Doc-tests|test result:|failures:|---- |error)' "$log"
    if ((rc != 0)); then
      tail -40 "$log"
      fail=1
      summary+=("FAIL rustc $version $backend")
    else
      summary+=("ok   rustc $version $backend: $(grep -c '^test result: ok' "$log") test binaries")
    fi
    rm -f "$log"
  done
done

# The example, once per backend, with the first toolchain.
export RUSTC=$(dirname "${cargos[0]}")/rustc RUSTDOC=$(dirname "${cargos[0]}")/rustdoc
version=$("$RUSTC" --version | awk '{print $2}')
for backend in "${backends[@]}"; do
  echo "== cargo run --example report: backend $backend"
  out=$(ZMALLOC_BACKEND=$backend CARGO_TARGET_DIR=$crate/target/rustc-$version-$backend \
    nice -n 10 "${cargos[0]}" run --offline -j "$jobs" --manifest-path "$crate/Cargo.toml" \
    --example report 2>&1)
  grep -E '^(mem_allocator|accounting):' <<<"$out" | sort -u
  if ! grep -q '^accounting: exact' <<<"$out"; then
    tail -20 <<<"$out"
    fail=1
    summary+=("FAIL example $backend")
  fi
done

printf 'test-rust: %s\n' "${summary[@]}"
exit $fail
