#!/usr/bin/env bash
# Time from a step's completion at the agent to its appearance in an open browser: a release
# demo controller with its in-process simulator (300 subclouds, the default 10 s report
# interval and 1 s health tick, steps scaled to a few seconds), Chromium on the strategy page.
# Prints Markdown for BENCHMARKS.md.   scripts/bench-step-latency.sh [samples]   (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLES=${1:-15}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
PORT=3947
CONTROL=127.0.0.1:3946
scripts/build.sh release >/dev/null
BIN=$TARGET_DIR/release/murmur
WORK=$(mktemp -d)
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
"$BIN" demo --subclouds 300 --single-controller --listen "127.0.0.1:$PORT" --database-url "sqlite://$WORK/latency.db" \
  --site-root "$TARGET_DIR/site" --sim-control "$CONTROL" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 120); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.5; done
TOKEN=$("$BIN" user token admin --label bench --database-url "sqlite://$WORK/latency.db" 2>/dev/null)
# sw-deploy in ~9 s (5 phases), no random failures; wait for the fleet's first reports.
curl -fs -X POST "http://$CONTROL/steps" -H 'content-type: application/json' -d '{"scale":0.05,"failure_rate":0}' >/dev/null
sleep 25
out=$(cd end2end && BASE_URL="http://127.0.0.1:$PORT" SIM_CONTROL_URL="http://$CONTROL" TOKEN="$TOKEN" SAMPLES="$SAMPLES" \
  node bench/step-latency.mjs)
echo "| samples | min ms | p50 ms | p90 ms | max ms |"
echo "|---:|---:|---:|---:|---:|"
echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print("| {samples} | {min} | {p50} | {p90} | {max} |".format(**d))
print()
print("every sample (ms):", ", ".join(str(v) for v in d["all"]))'
