#!/usr/bin/env bash
# Installs what is missing, builds, and starts Murmuration with a live demo fleet on the
# embedded SQLite store at http://127.0.0.1:3000. Extra arguments go to `murmur demo`
# (e.g. --subclouds 20000, --listen 0.0.0.0:3000, --database-url postgres://...).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
TARGET_DIR=${CARGO_TARGET_DIR:-target}
exec "$TARGET_DIR/release/murmur" demo --site-root "$TARGET_DIR/site" "$@"
