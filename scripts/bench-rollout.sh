#!/usr/bin/env bash
# A 20,000-site sw-deploy rollout at max parallel 1,000 with zero-duration simulated steps, on
# SQLite and PostgreSQL: a release controller (`murmur demo --no-simulator`, reports every
# INTERVAL ms, 1 s health tick) and a release simulator process (`murmur-agent simulate
# --step-seconds 0`) on the same machine, real HTTP. Prints Markdown for BENCHMARKS.md:
#   - wall time from apply to complete, site-updates per minute, controller CPU and RSS;
#   - engine overhead: the orchestrator's tick time per step transition (launch or finish),
#     and the health monitor's tick time (it stores the progress the agents report).
#   scripts/bench-rollout.sh    (BENCH_SUBCLOUDS, BENCH_PARALLEL, BENCH_INTERVAL_MS, BENCH_STORES override)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_SUBCLOUDS:-20000}
PARALLEL=${BENCH_PARALLEL:-1000}
INTERVAL=${BENCH_INTERVAL_MS:-10000}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
PG_ADMIN=${MURMUR_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_ROOT=${PG_ADMIN%/*}
PORT=3957
CONTROL=127.0.0.1:3956
cargo build --release -q -p server -p agent
BIN=$TARGET_DIR/release/murmur
AGENT=$TARGET_DIR/release/murmur-agent
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
stat_field() { curl -fs "http://$CONTROL/stats" | python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }
api() { curl -fs -H "Authorization: Bearer $TOKEN" "$@"; }

echo "| store | subclouds | max parallel | report interval | wall time (apply → complete) | site-updates / min | complete | failed/skipped | controller CPU (share of one core) | controller RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
TICK_ROWS=()
for store in ${BENCH_STORES:-sqlite postgres}; do
  if [ "$store" = sqlite ]; then
    url="sqlite://$WORK/rollout.db"
  else
    db="murmur_bench_rollout_$$"
    psql "$PG_ADMIN" -qc "CREATE DATABASE $db" >/dev/null
    url="$PG_ROOT/$db"
  fi
  RUST_LOG="warn,engine::orchestration=debug,engine::health::monitor=debug" "$BIN" demo --no-simulator --subclouds "$N" \
    --listen "127.0.0.1:$PORT" --database-url "$url" --site-root "$WORK" --report-interval-ms "$INTERVAL" \
    --offline-after-missed 3 --online-after-reports 2 --health-tick-ms 1000 --log-format json >"$WORK/server-$store.log" 2>&1 &
  SERVER=$!; PIDS+=("$SERVER")
  for _ in $(seq 1 600); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.5; done
  TOKEN=$("$BIN" user token admin --label bench --database-url "$url" 2>/dev/null)
  "$AGENT" simulate --controller "http://127.0.0.1:$PORT" --api-token "$TOKEN" --seed 1 \
    --control "$CONTROL" --step-seconds 0 --step-failure-rate 0 >"$WORK/sim-$store.log" 2>&1 &
  SIM=$!; PIDS+=("$SIM")
  for _ in $(seq 1 1200); do
    done_n=$(stat_field "['enrolled'] + d['enroll_failed']" 2>/dev/null || echo 0)
    [ "$done_n" -ge "$N" ] && break
    sleep 0.5
  done
  # Let seeded-offline sites come online (two reports) before the rollout starts.
  sleep $(( INTERVAL * 3 / 1000 + 5 ))
  id=$(api -X POST -H 'content-type: application/json' "http://127.0.0.1:$PORT/api/v1/strategies" \
    -d "{\"type\":\"sw-deploy\",\"target\":{\"kind\":\"all\"},\"release\":\"26.03\",\"max_parallel\":$PARALLEL,\"offline_policy\":\"skip\"}" \
    | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
  l0=$(wc -l <"$WORK/server-$store.log")
  c0=$(cpu_ticks "$SERVER"); t0=$(date +%s%3N)
  api -X POST -H 'content-type: application/json' "http://127.0.0.1:$PORT/api/v1/strategies/$id/actions" -d '{"action":"apply"}' >/dev/null
  while :; do
    state=$(api "http://127.0.0.1:$PORT/api/v1/strategies/$id" | python3 -c "import json,sys; print(json.load(sys.stdin)['summary']['state'])")
    case "$state" in complete|failed|aborted) break ;; esac
    sleep 0.5
  done
  t1=$(date +%s%3N); c1=$(cpu_ticks "$SERVER")
  rss=$(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER/status")
  api "http://127.0.0.1:$PORT/api/v1/strategies/$id" >"$WORK/detail.json"
  python3 - "$store" "$N" "$PARALLEL" "$INTERVAL" "$t0" "$t1" "$HZ" "$c0" "$c1" "$rss" "$WORK/detail.json" <<'PY'
import json, sys
store, n, par, interval, t0, t1, hz, c0, c1, rss, path = sys.argv[1:]
s = json.load(open(path))["summary"]
secs = (int(t1) - int(t0)) / 1000
print(f"| {store} | {int(n):,} | {int(par):,} | {int(interval)/1000:g} s | {secs:,.0f} s | {s['complete'] / secs * 60:,.0f} | "
      f"{s['complete']:,} | {s['failed']}/{s['skipped']} | {(int(c1)-int(c0))/float(hz)/secs:.2f} | {rss} |")
PY
  TICK_ROWS+=("$(tail -n +"$((l0 + 1))" "$WORK/server-$store.log" | python3 -c '
import json, sys
o_ms, o_steps, h_ms = [], 0, []
for line in sys.stdin:
    try:
        d = json.loads(line); f = d.get("fields", d)
    except ValueError:
        continue
    if f.get("message") == "orchestrator tick":
        o_ms.append(float(f["ms"])); o_steps += int(f["launched"]) + int(f["finished"])
    elif f.get("message") == "health tick":
        h_ms.append(float(f["ms"]))
q = lambda v, p: sorted(v)[min(len(v) - 1, int(p * len(v)))] if v else float("nan")
per = sum(o_ms) / o_steps * 1000 if o_steps else float("nan")
print(f"| '"$store"' | {len(o_ms)} | {o_steps:,} | {per:,.0f} µs | {q(o_ms, 0.5):.0f} | {q(o_ms, 0.99):.0f} | {len(h_ms)} | {q(h_ms, 0.5):.0f} | {q(h_ms, 0.99):.0f} |")
')")
  kill "$SIM" "$SERVER"; wait "$SIM" "$SERVER" 2>/dev/null || true
  PIDS=()
  [ "$store" = postgres ] && psql "$PG_ADMIN" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
done
echo
echo "Engine overhead during the rollout (orchestrator: one transaction per tick for all its step launches and finishes; health: the ticks that store the agents' progress):"
echo
echo "| store | orchestrator ticks | step transitions | orchestrator time per transition | tick ms p50 | tick ms p99 | health ticks | health ms p50 | health ms p99 |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${TICK_ROWS[@]}"
