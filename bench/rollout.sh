#!/usr/bin/env bash
# How long aloftd takes to start a rollout over DEVICES devices (every device's action created),
# and how fast it answers their first check-ins, which carry the action; on SQLite and on
# PostgreSQL. For comparison: AWS IoT Jobs dispatches 1,000 devices a minute (its default
# maximum rollout rate).
#
# Usage: bench/rollout.sh      Environment: DEVICES (100000), CONNECTIONS (64), BUILD
#        (build/release), DATABASES ("sqlite pg")
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source bench/bench_lib.sh
DEVICES=${DEVICES:-100000} CONNECTIONS=${CONNECTIONS:-64} BUILD=${BUILD:-build/release}
export DEVICES THREADS=2

scripts/setup.sh
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" --target aloftd aloft aloft_bench_seed >/dev/null
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
ALOFT=$root/$BUILD/apps/aloft/aloft

work=$(mktemp -d /tmp/aloft-bench.XXXXXX)
chmod 755 "$work"  # PostgreSQL runs as postgres and must reach $work/pg
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT
now_ms() { date +%s%3N; }
printf 'rollout_tick_ms = 100\n' >"$work/aloftd.toml"

# run NAME DATABASE: seeds, starts aloftd, times the rollout's start and the first check-ins.
# Prints "START_S RPS P50_MS P99_MS".
run() {
  local name=$1 db=$2 port pid url t0 t1 pending=0
  "$root/$BUILD/bench/server/aloft_bench_seed" "$db" "$DEVICES" >&2
  port=$(free_port 19280)
  "$root/$BUILD/apps/aloftd/aloftd" --config "$work/aloftd.toml" --data "$work/$name" \
    --database "$db" --listen "127.0.0.1:$port" 2>"$work/$name.log" &
  pid=$!
  pids+=("$pid")
  url=http://127.0.0.1:$port
  for _ in $(seq 1 100); do grep -q listening "$work/$name.log" && break; sleep 0.1; done
  export ALOFT_URL=$url ALOFT_TOKEN=$(cat "$work/$name/admin.token")
  head -c 1000000 /dev/urandom >"$work/app.bin"
  "$ALOFT" -q server upload "$work/app.bin" --name app --version 2.0.0 \
    --device-type bench-board >/dev/null
  t0=$(now_ms)
  "$ALOFT" server rollout create r1 --release app@2.0.0 --group bench >/dev/null
  while :; do
    pending=$("$ALOFT" server --json rollout status r1 | grep -o '"pending": [0-9]*' | head -n1 |
      cut -d' ' -f2 || true)
    [[ "${pending:-0}" -ge "$DEVICES" ]] && break
    sleep 0.05
  done
  t1=$(now_ms)
  echo "$name: all $DEVICES actions created $((t1 - t0)) ms after the create request" >&2
  wrk -t2 -c"$CONNECTIONS" -d10s --latency -s bench/server/first_checkin.lua "$url" \
    >"$work/wrk-$name.txt"
  grep -q '"action":{' <(curl -s -H "Authorization: Bearer aloft_d_bench000007" \
    -d '{"versions":{"main":"1.0.0"}}' "$url/device/v1/bench-000007/check-in") ||
    { echo "check-ins do not carry the action" >&2; exit 1; }
  grep -E "Non-2xx|Socket errors" "$work/wrk-$name.txt" >&2 || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  awk -v start="$(((t1 - t0)))" '
    /Requests\/sec:/ {rps=$2}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    END {printf "%.2f %.0f %.2f %.2f\n", start/1000, rps, ms(p50), ms(p99)}' "$work/wrk-$name.txt"
}

sq_start=- sq_rps=- sq_p50=- sq_p99=- pg_start=- pg_rps=- pg_p50=- pg_p99=-
if [[ " ${DATABASES:-sqlite pg} " == *" sqlite "* ]]; then
  mkdir -p "$work/sqlite"
  read -r sq_start sq_rps sq_p50 sq_p99 < <(run sqlite "$work/sqlite/aloft.db")
fi
if [[ " ${DATABASES:-sqlite pg} " == *" pg "* ]]; then
  pg_url=$(scripts/pg.sh start "$work/pg" "$(free_port 25460)")
  read -r pg_start pg_rps pg_p50 pg_p99 < <(run pg "$pg_url")
fi

echo
echo "rollout over $DEVICES devices, $(nproc) cores, $CONNECTIONS connections (wrk and aloftd share them)"
printf '| %-10s | %14s | %22s | %14s | %8s | %8s |\n' database "start (s)" \
  "first check-ins/s" "all answered (s)" "p50 ms" "p99 ms"
printf '|%s|%s|%s|%s|%s|%s|\n' ------------ ---------------- ------------------------ \
  ---------------- ---------- ----------
for row in "SQLite $sq_start $sq_rps $sq_p50 $sq_p99" "PostgreSQL $pg_start $pg_rps $pg_p50 $pg_p99"; do
  read -r db start rps p50 p99 <<<"$row"
  [[ $rps == - ]] && continue
  printf '| %-10s | %14s | %22s | %16.1f | %8s | %8s |\n' "$db" "$start" "$rps" \
    "$(awk -v n="$DEVICES" -v r="$rps" 'BEGIN {print n / r}')" "$p50" "$p99"
done
echo "AWS IoT Jobs, for comparison: 1,000 devices a minute ($((DEVICES / 1000)) min for $DEVICES)."
