#!/usr/bin/env bash
# Fuzzes every parser of untrusted input (the targets in fuzz/fuzz_targets) for a bounded
# time each, with cargo-fuzz (libFuzzer + AddressSanitizer).
#
#   scripts/fuzz.sh                    every target, FUZZ_SECONDS (default 30) each
#   FUZZ_SECONDS=300 scripts/fuzz.sh audit_query subcloud_query
#   FUZZ_SECONDS=3600 scripts/fuzz.sh  the long run, by hand (an hour per target)
#
# The test suite (scripts/test.sh) runs every target for a few seconds (MURMUR_FUZZ_SECONDS,
# default 3), so a parser that starts to crash on easy inputs fails CI; finding the hard ones
# is the long runs' job.
#
# Only stable Rust is available, and cargo-fuzz needs nightly flags (-Zsanitizer, ...), so the
# fuzz build alone runs with RUSTC_BOOTSTRAP=1. It uses its own target directory
# ($CARGO_TARGET_DIR or target, then /fuzz), so it never invalidates the main build.
# Exits non-zero if a target fails to build or finds a crash, naming the saved input
# (fuzz/artifacts/TARGET/crash-*), which `cargo fuzz run TARGET FILE` (with the same
# RUSTC_BOOTSTRAP=1 and CARGO_TARGET_DIR) replays. The corpus grows in fuzz/corpus/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[fuzz]\033[0m %s\n' "$*" >&2; }

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
# Seconds one input may take before libFuzzer reports it as a hang.
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
TARGET_ROOT=${CARGO_TARGET_DIR:-target}
case $TARGET_ROOT in
  /*) ;;
  *) TARGET_ROOT=$PWD/$TARGET_ROOT ;;
esac
FUZZ_TARGET_DIR=$TARGET_ROOT/fuzz
LOG_DIR=$FUZZ_TARGET_DIR/logs
mkdir -p "$LOG_DIR"

# cargo-fuzz, at the version scripts/setup.sh pins.
if ! command -v cargo-fuzz >/dev/null; then
  log "cargo-fuzz is missing: running scripts/setup.sh"
  scripts/setup.sh
fi

# The fuzz build, and nothing else, gets RUSTC_BOOTSTRAP=1.
fuzz() { RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$FUZZ_TARGET_DIR cargo fuzz "$@"; }

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi
[ ${#targets[@]} -gt 0 ] || { echo "no fuzz targets found in fuzz/" >&2; exit 1; }

log "building ${#targets[@]} targets (${targets[*]})"
start=$SECONDS
if [ $# -eq 0 ]; then
  fuzz build # every target in one cargo build
else
  for t in "${targets[@]}"; do
    fuzz build "$t"
  done
fi
log "built in $((SECONDS - start)) s; fuzzing each for ${FUZZ_SECONDS} s"

failed=()
for t in "${targets[@]}"; do
  out=$LOG_DIR/$t.log
  start=$SECONDS
  status=0
  fuzz run "$t" -- -max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT" >"$out" 2>&1 || status=$?
  took=$((SECONDS - start))
  runs=$(grep -o 'Done [0-9]* runs' "$out" | tail -n1 | grep -o '[0-9]*' || true)
  cov=$(grep -o 'cov: [0-9]*' "$out" | tail -n1 | grep -o '[0-9]*' || true)
  if [ "$status" -eq 0 ]; then
    log "$t: clean, ${runs:-?} runs, coverage ${cov:-?} edges, ${took} s"
  else
    failed+=("$t")
    artifact=$(grep -o 'Test unit written to [^ ]*' "$out" | tail -n1 | sed 's/^Test unit written to //' || true)
    log "$t: FAILED (exit $status) after ${took} s"
    # The panic message (up to its backtrace) or the sanitizer's or libFuzzer's verdict.
    awk '/panicked at/ {p = 1} /^stack backtrace:/ {p = 0} p' "$out" | head -n 30 >&2
    grep -E '^==[0-9]+== ?ERROR|^SUMMARY:|^error' "$out" | head -n 10 >&2 || true
    if [ -n "$artifact" ]; then
      log "$t: crashing input saved at $artifact"
      log "replay: RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$FUZZ_TARGET_DIR cargo fuzz run $t $artifact"
    fi
    log "$t: full log in $out"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  log "${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}"
  exit 1
fi
log "all ${#targets[@]} targets ran clean for ${FUZZ_SECONDS} s each"
