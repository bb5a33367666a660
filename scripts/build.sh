#!/usr/bin/env bash
# Builds the site (wasm bundle, CSS, static files) and the `murmur` server.
#   scripts/build.sh [release|debug]   (server profile; the wasm bundle is always size-optimised)
# Output: $CARGO_TARGET_DIR/site (default target/site) and the server binary.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-release}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
SITE=${MURMUR_SITE_ROOT:-$TARGET_DIR/site}
FRONT_DIR=$TARGET_DIR/front
log() { printf '\033[1m[build]\033[0m %s\n' "$*" >&2; }

# The bundle name the server expects (pkg/murmur.js, pkg/murmur.wasm); also in .cargo/config.toml.
export LEPTOS_OUTPUT_NAME=murmur

log "browser bundle (wasm32, profile wasm-release)"
if rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  cargo build -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate \
    --profile wasm-release --target-dir "$FRONT_DIR"
else
  # Fallback toolchain (scripts/setup.sh installed it): Debian's rustc builds std for wasm32.
  RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22 \
    /usr/bin/cargo build -p app --lib --target wasm32-unknown-unknown --no-default-features \
    --features hydrate --profile wasm-release --target-dir "$FRONT_DIR" -Zbuild-std=std,panic_abort
fi

rm -rf "$SITE"
mkdir -p "$SITE/pkg"
wasm-bindgen --target web --no-typescript --out-name murmur --out-dir "$SITE/pkg" \
  "$FRONT_DIR/wasm32-unknown-unknown/wasm-release/app.wasm"
mv "$SITE/pkg/murmur_bg.wasm" "$SITE/pkg/murmur.wasm"
log "wasm-opt -Oz"
node end2end/node_modules/binaryen/bin/wasm-opt -Oz --enable-bulk-memory \
  --enable-nontrapping-float-to-int "$SITE/pkg/murmur.wasm" -o "$SITE/pkg/murmur.wasm"
cp style/main.css "$SITE/pkg/murmur.css"
cp -r public/. "$SITE/"
# Precompressed siblings, served by the server when the browser accepts gzip.
gzip -9 -k -f "$SITE/pkg/murmur.wasm" "$SITE/pkg/murmur.js" "$SITE/pkg/murmur.css"

log "server (cargo build -p server, $MODE)"
if [ "$MODE" = release ]; then
  cargo build -p server --release
else
  cargo build -p server
fi
log "site in $SITE ($(du -h "$SITE/pkg/murmur.wasm" | cut -f1) wasm)"
