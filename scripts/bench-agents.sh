#!/usr/bin/env bash
# Agent report intake at fleet scale, on SQLite and PostgreSQL: a release controller
# (`murmur demo --no-simulator`, 20,000 subclouds, reports every 10 s, offline after 3 missed,
# 1 s health tick) and a release simulator process (`murmur-agent simulate`) on the same
# machine. Prints Markdown for BENCHMARKS.md:
#   - reports/s the controller accepted over the window, its CPU share (of one core) and RSS,
#     the simulator's p50/p99 report round trip (client side, real HTTP on loopback);
#   - time from a site going down (fault injected) to its 280.001 alarm, over SAMPLE sites.
#   scripts/bench-agents.sh [seconds]     (default 60; BENCH_SUBCLOUDS, BENCH_SAMPLE, BENCH_STORES override)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-60}
N=${BENCH_SUBCLOUDS:-20000}
SAMPLE=${BENCH_SAMPLE:-200}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
PG_ADMIN=${MURMUR_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_ROOT=${PG_ADMIN%/*}
PORT=3967
CONTROL=127.0.0.1:3966
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

echo "| store | subclouds | reports/s accepted | expected (N/10 s) | controller CPU (share of one core) | controller RSS MiB | simulator CPU | report p50 ms | report p99 ms | refused | transport errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
DOWN_ROWS=()
TICK_ROWS=()
for store in ${BENCH_STORES:-sqlite postgres}; do
  if [ "$store" = sqlite ]; then
    url="sqlite://$WORK/agents.db"
  else
    db="murmur_bench_agents_$$"
    psql "$PG_ADMIN" -qc "CREATE DATABASE $db" >/dev/null
    url="$PG_ROOT/$db"
  fi
  RUST_LOG="warn,engine::health::monitor=debug" "$BIN" demo --no-simulator --subclouds "$N" --listen "127.0.0.1:$PORT" --database-url "$url" \
    --site-root "$WORK" --report-interval-ms 10000 --offline-after-missed 3 \
    --online-after-reports 2 --health-tick-ms 1000 --log-format json >"$WORK/server-$store.log" 2>&1 &
  SERVER=$!; PIDS+=("$SERVER")
  for _ in $(seq 1 600); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.5; done
  TOKEN=$("$BIN" user token admin --label bench --database-url "$url" 2>/dev/null)
  "$AGENT" simulate --controller "http://127.0.0.1:$PORT" --api-token "$TOKEN" --seed 1 \
    --control "$CONTROL" >"$WORK/sim-$store.log" 2>&1 &
  SIM=$!; PIDS+=("$SIM")
  for _ in $(seq 1 1200); do
    done_n=$(stat_field "['enrolled'] + d['enroll_failed']" 2>/dev/null || echo 0)
    [ "$done_n" -ge "$N" ] && break
    sleep 0.5
  done
  # Two intervals to settle (first reports write everything; later ones only changes).
  sleep 25
  c0=$(cpu_ticks "$SERVER"); s0=$(cpu_ticks "$SIM"); a0=$(stat_field "['reports_accepted']")
  l0=$(wc -l <"$WORK/server-$store.log")
  sleep "$DURATION"
  c1=$(cpu_ticks "$SERVER"); s1=$(cpu_ticks "$SIM"); a1=$(stat_field "['reports_accepted']")
  stats=$(curl -fs "http://$CONTROL/stats")
  # Health ticks in the window: reports written per tick and the tick's duration.
  TICK_ROWS+=("$(tail -n +"$((l0 + 1))" "$WORK/server-$store.log" | python3 -c '
import json, sys
ms, n = [], []
for line in sys.stdin:
    try:
        d = json.loads(line)
        f = d.get("fields", d)
    except ValueError:
        continue
    if f.get("message") == "health tick":
        ms.append(f["ms"]); n.append(f["reports"])
ms.sort(); q = lambda p: ms[min(len(ms) - 1, int(p * len(ms)))]
print(f"| '"$store"' | {len(ms)} | {sum(n) / len(n):,.0f} | {q(0.5)} | {q(0.99)} | {ms[-1]} |" if ms else "| '"$store"' | 0 | | | | |")
')")
  rss=$(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$SERVER/status")
  python3 - "$store" "$N" "$DURATION" "$HZ" "$c0" "$c1" "$s0" "$s1" "$a0" "$a1" "$rss" "$stats" <<'PY'
import json, sys
store, n, dur, hz, c0, c1, s0, s1, a0, a1, rss, stats = sys.argv[1:]
dur, hz = float(dur), float(hz)
d = json.loads(stats)
lat = d["recent_report_rtt_ms"]
refused = sum(d["refused"].values())
print(f"| {store} | {int(n):,} | {(int(a1)-int(a0))/dur:,.0f} | {int(n)/10:,.0f} | "
      f"{(int(c1)-int(c0))/hz/dur:.2f} | {rss} | {(int(s1)-int(s0))/hz/dur:.2f} | "
      f"{lat['p50']:.1f} | {lat['p99']:.1f} | {refused} | {d['transport_errors']} |")
PY
  # Down → alarm: take SAMPLE online sites down at once and read their alarms' raise times.
  sites=$(curl -fs -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$PORT/api/v1/subclouds?availability=online&management=managed&per_page=$SAMPLE&sort=city" \
    | python3 -c "import json,sys; print(','.join(r['name'] for r in json.load(sys.stdin)['rows']))")
  t0=$(date +%s%3N)
  "$AGENT" fault --control "$CONTROL" down --site "$sites" >/dev/null
  sleep 45
  curl -fs -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$PORT/api/v1/alarms/list?severity=critical&state=active&per_page=500" >"$WORK/alarms.json"
  DOWN_ROWS+=("$(python3 - "$store" "$t0" "$sites" "$WORK/alarms.json" <<'PY'
import json, sys
store, t0, sites, path = sys.argv[1], int(sys.argv[2]), set(sys.argv[3].split(",")), sys.argv[4]
rows = json.load(open(path))["rows"]
d = sorted(r["raised_at"] - t0 for r in rows if r["alarm_id"] == "280.001" and r["subcloud"] in sites)
q = lambda p: d[min(len(d) - 1, int(p * len(d)))] / 1000 if d else float("nan")
print(f"| {store} | {len(sites)} | {len(d)} | {d[0]/1000 if d else float('nan'):.1f} | {q(0.5):.1f} | {q(0.9):.1f} | {q(0.99):.1f} | {d[-1]/1000 if d else float('nan'):.1f} |")
PY
)")
  kill "$SIM" "$SERVER"; wait "$SIM" "$SERVER" 2>/dev/null || true
  PIDS=()
  [ "$store" = postgres ] && psql "$PG_ADMIN" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
done
echo
echo "Health ticks in the window (one transaction each; 1 s period):"
echo
echo "| store | ticks | reports per tick (mean) | write ms p50 | p99 | max |"
echo "|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${TICK_ROWS[@]}"
echo
echo "Down → 280.001 alarm (seconds after the fault; bound: 10 s × 3 missed + 1 s tick + up to one interval since the last report = 41 s):"
echo
echo "| store | sites taken down | alarmed | min | p50 | p90 | p99 | max |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${DOWN_ROWS[@]}"
