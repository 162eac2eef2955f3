#!/usr/bin/env bash
# aloftd against nginx on this machine, from one run, side by side:
#   1. device check-ins per second and p50/p99 latency (wrk) with DEVICES registered devices, on
#      SQLite and on PostgreSQL, next to nginx serving a static JSON body of the same size;
#   2. download throughput of a SIZE_MB artifact, next to nginx serving the same file;
#   3. peak RSS of aloftd with SLOW concurrent slow downloads.
# wrk, the server and nginx share the machine's cores; every figure here comes from this run.
#
# Usage: bench/server.sh            Environment: DEVICES (100000), DURATION (10 s), CONNECTIONS
#        (64), SIZE_MB (100), SLOW (10000), BUILD (build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/nginx_lib.sh
source bench/bench_lib.sh
DEVICES=${DEVICES:-100000} DURATION=${DURATION:-10} CONNECTIONS=${CONNECTIONS:-64}
SIZE_MB=${SIZE_MB:-100} SLOW=${SLOW:-10000} BUILD=${BUILD:-build/release}
export DEVICES

scripts/setup.sh
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" --target aloftd aloft aloft_bench_seed aloft_bench_slow_clients >/dev/null
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/aloft-bench.XXXXXX)
chmod 755 "$work"  # PostgreSQL runs as postgres and must reach $work/pg
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -f "$work/nginx.pid" ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT
cores=$(nproc)

# wrk output -> "RPS P50 P99" (latencies in ms)
wrk_figures() {
  awk '
    /Requests\/sec:/ {rps=$2}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    END {printf "%.0f %.2f %.2f\n", rps, ms(p50), ms(p99)}' "$1"
}
start_aloftd() {  # NAME DATABASE -> sets URL, PID
  local name=$1 db=$2 port
  port=$(free_port 19080)
  # Every client here is 127.0.0.1 (wrk, SLOW slow downloads): no per-address limit.
  printf 'max_connections_per_address = 0\n' >"$work/$name.toml"
  "$root/$BUILD/apps/aloftd/aloftd" -c "$work/$name.toml" --data "$work/$name" --database "$db" \
    --listen "127.0.0.1:$port" 2>"$work/$name.log" &
  PID=$!
  pids+=("$PID")
  URL=http://127.0.0.1:$port
  for _ in $(seq 1 100); do grep -q listening "$work/$name.log" && break; sleep 0.1; done
  grep -q listening "$work/$name.log" || { cat "$work/$name.log" >&2; exit 1; }
}

echo "== seeding $DEVICES devices (SQLite and PostgreSQL)"
mkdir -p "$work/sqlite"
"$root/$BUILD/bench/server/aloft_bench_seed" "$work/sqlite/aloft.db" "$DEVICES"
pg_url=$(scripts/pg.sh start "$work/pg" "$(free_port 25440)")
"$root/$BUILD/bench/server/aloft_bench_seed" "$pg_url" "$DEVICES"

checkin() {  # URL OUT
  wrk -t2 -c"$CONNECTIONS" -d2s -s bench/server/checkin.lua "$1" >/dev/null 2>&1  # warm up
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/server/checkin.lua "$1" >"$2"
}

echo "== check-ins against aloftd on SQLite"
start_aloftd sqlite "$work/sqlite/aloft.db"
sqlite_pid=$PID sqlite_url=$URL
body=$(curl -s -H "Authorization: Bearer aloft_d_bench000001" -d '{"versions":{"main":"1.0.0"}}' \
  "$URL/device/v1/bench-000001/check-in")
echo "check-in answer (${#body} bytes): $body"
checkin "$URL" "$work/wrk-sqlite.txt"
read -r sq_rps sq_p50 sq_p99 < <(wrk_figures "$work/wrk-sqlite.txt")
kill "$sqlite_pid"; wait "$sqlite_pid" 2>/dev/null || true

echo "== check-ins against aloftd on PostgreSQL"
start_aloftd pgsrv "$pg_url"
checkin "$URL" "$work/wrk-pg.txt"
read -r pg_rps pg_p50 pg_p99 < <(wrk_figures "$work/wrk-pg.txt")
pg_pid=$PID
kill "$pg_pid"; wait "$pg_pid" 2>/dev/null || true
errors=$(grep -h -E "Non-2xx|Socket errors" "$work"/wrk-*.txt || true)

echo "== nginx: the same JSON body, statically; the same artifact file"
mkdir -p "$work/www" "$work/nginx-tmp"
printf '%s' "$body" >"$work/www/checkin.json"
head -c $((SIZE_MB * 1000 * 1000)) /dev/urandom >"$work/www/artifact.bin"
nginx_port=$(free_port 19180)
{ nginx_prologue "$work" "$cores" 20000; cat <<CONF
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/www;
    location = /checkin { default_type application/json; try_files /checkin.json =404; }
  }
}
CONF
} >"$work/nginx.conf"
nginx -c "$work/nginx.conf"
# nginx answers POST to a static file with 405; GET is what it serves.
wrk -t2 -c"$CONNECTIONS" -d2s "http://127.0.0.1:$nginx_port/checkin" >/dev/null 2>&1
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "http://127.0.0.1:$nginx_port/checkin" \
  >"$work/wrk-nginx.txt"
read -r ng_rps ng_p50 ng_p99 < <(wrk_figures "$work/wrk-nginx.txt")

echo "== download throughput: $SIZE_MB MB from aloftd (SQLite) and from nginx"
start_aloftd dl "$work/sqlite/aloft.db"
dl_pid=$PID dl_url=$URL
token=$(cat "$work/sqlite/admin.token" 2>/dev/null || cat "$work/dl/admin.token")
export ALOFT_URL=$URL ALOFT_TOKEN=$token
"$root/$BUILD/apps/aloft/aloft" -q server upload "$work/www/artifact.bin" --name big \
  --version 1.0.0 --device-type bench-board >/dev/null
"$root/$BUILD/apps/aloft/aloft" server deploy big@1.0.0 --device bench-000042 >/dev/null
action=$(curl -s -H "Authorization: Bearer aloft_d_bench000042" -d '{}' \
  "$URL/device/v1/bench-000042/check-in" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
dl_path="/device/v1/bench-000042/actions/$action/artifact"
# Downloads alternate between aloftd and nginx (the machine's speed drifts); the median of 7 each.
declare -a al_runs ng_runs
for _ in 1 2 3 4 5 6 7; do
  al_runs+=("$(curl -s -o /dev/null -w '%{speed_download}' -H "Authorization: Bearer aloft_d_bench000042" "$URL$dl_path")")
  ng_runs+=("$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$nginx_port/artifact.bin")")
done
median_mb() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%.0f\n", a[int((NR+1)/2)] / 1e6}'; }
al_speed=$(median_mb "${al_runs[@]}")
ng_speed=$(median_mb "${ng_runs[@]}")

echo "== $SLOW concurrent slow downloads (1 KiB/s each, 20 s) from aloftd"
port=${URL##*:}
"$root/$BUILD/bench/server/aloft_bench_slow_clients" 127.0.0.1 "$port" "$dl_path" \
  aloft_d_bench000042 "$SLOW" 20 1024 >"$work/slow.txt" &
slow_pid=$!
sleep 15  # all connected and reading slowly: sample the server now
active=$(curl -s "$URL/metrics" | awk '/^aloft_active_downloads / {print $2}')
wait "$slow_pid"
cat "$work/slow.txt"
streaming=$(sed -n 's/still streaming: \([0-9]*\) of.*/\1/p' "$work/slow.txt")
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$dl_pid/status")
kill "$dl_pid"; wait "$dl_pid" 2>/dev/null || true

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }
echo
echo "aloftd vs nginx on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), wrk -t2 -c$CONNECTIONS -d${DURATION}s"
printf '%-44s %12s %10s %10s %14s\n' "check-ins ($DEVICES devices)" "requests/s" "p50 ms" "p99 ms" "vs nginx"
printf '%-44s %12s %10s %10s %14s\n' "aloftd, SQLite" "$sq_rps" "$sq_p50" "$sq_p99" "$(ratio "$sq_rps" "$ng_rps") (>= 0.50)"
printf '%-44s %12s %10s %10s %14s\n' "aloftd, PostgreSQL" "$pg_rps" "$pg_p50" "$pg_p99" "$(ratio "$pg_rps" "$ng_rps")"
printf '%-44s %12s %10s %10s %14s\n' "nginx, static JSON of ${#body} bytes" "$ng_rps" "$ng_p50" "$ng_p99" "1.00"
echo
printf '%-44s %12s %14s\n' "download of $SIZE_MB MB (median of 7, curl)" "MB/s" "vs nginx"
printf '%-44s %12s %14s\n' "aloftd (sendfile)" "$al_speed" "$(ratio "$al_speed" "$ng_speed") (>= 0.90)"
printf '%-44s %12s %14s\n' "nginx (sendfile)" "$ng_speed" "1.00"
echo
printf '%-44s %12s %14s\n' "$SLOW slow downloads (1 KiB/s each)" "peak RSS MB" "streaming"
printf '%-44s %12s %14s\n' "aloftd" "$(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k / 1024}') (< 300)" "$streaming (server: $active)"
[[ -z "$errors" ]] || { echo; echo "wrk reported:"; echo "$errors"; }
