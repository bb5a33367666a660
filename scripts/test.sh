#!/usr/bin/env bash
# The whole test suite: engine unit tests, integration tests on SQLite and PostgreSQL, HTTP
# tests of the real server, and Playwright browser tests in Debian's Chromium against a
# demo controller. Installs what is missing first. Fails loudly if PostgreSQL is unreachable.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[test]\033[0m %s\n' "$*" >&2; }
TARGET_DIR=${CARGO_TARGET_DIR:-target}
export MURMUR_TEST_POSTGRES_URL=${MURMUR_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}

scripts/setup.sh

# PostgreSQL: start the machine's server if it is installed but stopped.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi
pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is required at 127.0.0.1:5432 and is not reachable" >&2; exit 1; }

scripts/build.sh debug

log "cargo test --workspace (SQLite and PostgreSQL)"
cargo test --workspace

log "browser tests (Playwright, Chromium)"
DATA=$(mktemp -d)
PORT=${MURMUR_E2E_PORT:-3999}
"$TARGET_DIR/debug/murmur" demo --subclouds 2000 --listen "127.0.0.1:$PORT" \
  --database-url "sqlite://$DATA/e2e.db" --site-root "$TARGET_DIR/site" >"$DATA/server.log" 2>&1 &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$DATA/server.log" >&2; exit 1; }
  sleep 0.5
done
(cd end2end && BASE_URL="http://127.0.0.1:$PORT" npx playwright test) || { tail -n 50 "$DATA/server.log" >&2; exit 1; }
log "all tests passed"
