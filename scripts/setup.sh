#!/usr/bin/env bash
# Installs what a fresh machine of this kind (Debian 12, rustup stable, node/npm) lacks for
# building and testing Murmuration. Idempotent: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
WASM_BINDGEN_VERSION=0.2.130   # must equal wasm-bindgen in Cargo.lock
CARGO_FUZZ_VERSION=0.13.2      # builds --locked on stable 1.95 (about a minute)

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# 1. The browser half needs the wasm32 standard library. rustup first; if it cannot fetch it,
#    Debian's rustc-web builds std from source for the wasm build only (TOOLCHAIN.md).
if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  log "rustup target add wasm32-unknown-unknown"
  if ! rustup target add wasm32-unknown-unknown; then
    log "rustup could not fetch the wasm32 target; installing Debian's rustc-web fallback"
    apt_install rustc-web cargo-web rust-web-src libstd-rust-web-dev lld-22
    [ -e /usr/lib/rustlib/src/rust/library/std ] || ln -sfn ../../../src/rustc-1.96.0 /usr/lib/rustlib/src/rust
  fi
fi

# 2. wasm-bindgen CLI at exactly the locked version.
if ! { command -v wasm-bindgen >/dev/null && wasm-bindgen --version | grep -q " ${WASM_BINDGEN_VERSION}\$"; }; then
  log "cargo install wasm-bindgen-cli ${WASM_BINDGEN_VERSION} (about 2 minutes)"
  # No --locked: its lockfile pins a crate version this registry lacks.
  cargo install wasm-bindgen-cli --version "${WASM_BINDGEN_VERSION}" --force
fi

# 3. Chromium for the browser tests (Debian's; Playwright must never download one), and
#    PostgreSQL's client tools for the test databases.
apt_install chromium postgresql-client

# 4. npm packages: Playwright and binaryen's wasm-opt (runs on node; Debian's is too old).
if [ ! -x end2end/node_modules/.bin/playwright ] || [ ! -f end2end/node_modules/binaryen/bin/wasm-opt ] \
   || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
  log "npm ci (end2end)"
  (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >/dev/null)
fi
# 5. cargo-fuzz for the fuzz targets (scripts/fuzz.sh; the test suite runs each briefly). It
#    runs on stable; only the fuzz build itself needs RUSTC_BOOTSTRAP=1, which fuzz.sh sets.
if ! command -v cargo-fuzz >/dev/null; then
  log "cargo install cargo-fuzz ${CARGO_FUZZ_VERSION} (about a minute)"
  cargo install cargo-fuzz --version "${CARGO_FUZZ_VERSION}" --locked
fi
log "toolchain ready"
