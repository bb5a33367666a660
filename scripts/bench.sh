#!/usr/bin/env bash
# Server-side rendering throughput next to a static file, on SQLite and PostgreSQL, at 2,000
# and 20,000 subclouds; resident memory; wasm bundle size. Prints Markdown for BENCHMARKS.md.
#   scripts/bench.sh [seconds-per-run]       (default 10; needs wrk, installed if missing)
# Load comes from wrk on loopback; server and load generator share the machine's cores, so
# the ratio to the static file is the figure to compare, not absolute requests/s.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
PG_ADMIN=${MURMUR_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_ROOT=${PG_ADMIN%/*}
PORT=3977
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
# Always measure the current tree (cargo makes this quick when nothing changed).
scripts/build.sh release
BIN=$TARGET_DIR/release/murmur
WORK=$(mktemp -d)
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# wrk's summary → "req/s p50 p99" (latencies in ms). Requests carry the demo viewer's session.
measure() {
  wrk -t2 -c16 -d"${DURATION}s" --latency -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT$1" >"$WORK/wrk.txt"
  awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec/ { rps = $2 }
    /Non-2xx/ { bad = $NF }
    END { if (bad) { print "ERROR non-2xx " bad; exit 1 } printf "%.0f %.2f %.2f\n", rps, p50, p99 }' "$WORK/wrk.txt"
}

echo "| store | subclouds | page | req/s | p50 ms | p99 ms | ratio to static |"
echo "|---|---:|---|---:|---:|---:|---:|"
RSS_ROWS=()
for store in sqlite postgres; do
  for n in 2000 20000; do
    if [ "$store" = sqlite ]; then
      url="sqlite://$WORK/bench-$n.db"
    else
      db="murmur_bench_$$_$n"
      psql "$PG_ADMIN" -qc "CREATE DATABASE $db" >/dev/null
      url="$PG_ROOT/$db"
    fi
    "$BIN" demo --no-simulator --subclouds "$n" --listen "127.0.0.1:$PORT" --database-url "$url" \
      --site-root "$TARGET_DIR/site" >"$WORK/server.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 1 240); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.5; done
    COOKIE=$(curl -s -o /dev/null -D - -H "Origin: http://127.0.0.1:$PORT" \
      --data 'username=viewer&password=viewer-demo-password&next=/' "http://127.0.0.1:$PORT/login" \
      | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(murmur_session=[^;]*\).*/\1/p')
    [ -n "$COOKIE" ] || { echo "could not sign in to the bench server" >&2; exit 1; }
    read -r s_rps s_p50 s_p99 < <(measure /favicon.ico)
    echo "| $store | $n | static /favicon.ico | $s_rps | $s_p50 | $s_p99 | 1.00 |"
    for page in "/" "/subclouds?availability=online&sort=alarm&dir=desc" "/api/v1/subclouds?availability=online&sort=alarm&dir=desc"; do
      read -r rps p50 p99 < <(measure "$page")
      ratio=$(awk -v a="$rps" -v b="$s_rps" 'BEGIN { printf "%.3f", a / b }')
      echo "| $store | $n | \`$page\` | $rps | $p50 | $p99 | $ratio |"
    done
    rss=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER/status")
    RSS_ROWS+=("| $store | $n | $rss |")
    kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
    [ "$store" = postgres ] && psql "$PG_ADMIN" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
  done
done
echo
echo "| store | subclouds | server RSS after the runs (MiB) |"
echo "|---|---:|---:|"
printf '%s\n' "${RSS_ROWS[@]}"
echo
wasm=$TARGET_DIR/site/pkg/murmur.wasm
js=$TARGET_DIR/site/pkg/murmur.js
echo "| file | raw bytes | gzip -9 bytes |"
echo "|---|---:|---:|"
for f in "$wasm" "$js" "$TARGET_DIR/site/pkg/murmur.css"; do
  echo "| $(basename "$f") | $(stat -c %s "$f") | $(gzip -9 -c "$f" | wc -c) |"
done
