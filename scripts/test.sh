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

# Every fuzz target for a few seconds, so a parser that crashes on easy inputs fails here (its
# own build and target directory: the main build is untouched). Long runs: scripts/fuzz.sh.
FUZZ_SECONDS=${MURMUR_FUZZ_SECONDS:-3}
log "fuzz targets, ${FUZZ_SECONDS} s each"
FUZZ_SECONDS=$FUZZ_SECONDS scripts/fuzz.sh

log "browser tests (Playwright, Chromium)"
DATA=$(mktemp -d)
PORT=${MURMUR_E2E_PORT:-3999}
SHORT_PORT=$((PORT - 1))
LIVE_PORT=$((PORT - 2))
SIM_PORT=$((PORT - 3))
GEO_PORT=$((PORT - 4))
GEO_SIM_PORT=$((PORT - 5))
FAILOVER_PORT=$((PORT - 6))
FAILOVER_SIM_PORT=$((PORT - 7))
MAP_PORT=$((PORT - 8))
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT
# Three demo controllers: the main one (2,000 subclouds, seeded state held still so pages can be
# compared with the API, with the one finished strategy a demo without simulator seeds), one
# whose sessions end after 3 idle seconds (session expiry), and a live one with its in-process
# fleet simulator (300 subclouds reporting every 2 s, offline after 2 missed) whose control API
# the live-update test uses to take a site down.
start_demo() { # port name subclouds extra-args...
  local port=$1 name=$2 n=$3; shift 3
  "$TARGET_DIR/debug/murmur" demo --subclouds "$n" --listen "127.0.0.1:$port" \
    --database-url "sqlite://$DATA/$name.db" --site-root "$TARGET_DIR/site" "$@" >"$DATA/$name.log" 2>&1 &
  PIDS+=($!)
}
wait_healthy() { # port name
  for _ in $(seq 1 120); do
    curl -fs "http://127.0.0.1:$1/healthz" >/dev/null && return 0
    sleep 0.5
  done
  echo "the $2 server did not start:" >&2; cat "$DATA/$2.log" >&2; exit 1
}
start_demo "$PORT" e2e 2000 --no-simulator
start_demo "$SHORT_PORT" short 2000 --no-simulator --session-idle-seconds 3
start_demo "$LIVE_PORT" live 300 --single-controller --sim-control "127.0.0.1:$SIM_PORT" \
  --report-interval-ms 2000 --offline-after-missed 2 --online-after-reports 2 --health-tick-ms 250
# Geo-redundancy: three peer controllers in one process (this port plays sc-amsterdam; the
# others listen on free ports), 300 simulated sites reporting to their owners.
start_demo "$GEO_PORT" geo 300 --sim-control "127.0.0.1:$GEO_SIM_PORT" --report-interval-ms 2000 \
  --heartbeat-interval-ms 1000
# The same, for the one browser test that stops a controller and fails a group back.
start_demo "$FAILOVER_PORT" failover 300 --sim-control "127.0.0.1:$FAILOVER_SIM_PORT" \
  --report-interval-ms 2000 --heartbeat-interval-ms 1000
# The map's first paint is measured with 5,000 sites (no simulator: nothing else loads it).
start_demo "$MAP_PORT" map 5000 --single-controller --no-simulator
wait_healthy "$PORT" e2e
wait_healthy "$SHORT_PORT" short
wait_healthy "$LIVE_PORT" live
wait_healthy "$GEO_PORT" geo
wait_healthy "$FAILOVER_PORT" failover
wait_healthy "$MAP_PORT" map
(cd end2end && BASE_URL="http://127.0.0.1:$PORT" SHORT_SESSION_URL="http://127.0.0.1:$SHORT_PORT" \
  LIVE_URL="http://127.0.0.1:$LIVE_PORT" SIM_CONTROL_URL="http://127.0.0.1:$SIM_PORT" \
  GEO_URL="http://127.0.0.1:$GEO_PORT" GEO_FAILOVER_URL="http://127.0.0.1:$FAILOVER_PORT" \
  MAP_URL="http://127.0.0.1:$MAP_PORT" \
  npx playwright test) \
  || {
    # Playwright's own report (which tests failed, and why) stays the last thing printed; the
    # demo servers' logs are kept next to its other results.
    mkdir -p end2end/test-results/servers && cp "$DATA"/*.log end2end/test-results/servers/
    echo "browser tests failed: see Playwright's report above; server logs in end2end/test-results/servers/" >&2
    exit 1
  }
log "all tests passed"
