#!/usr/bin/env bash
# The dashboard on a large fleet, in Debian's headless Chromium (web/bench/dashboard.mjs): with
# DEVICES devices (100,000) in 50 groups and 50 rollouts in aloftd's SQLite database, the
# overview's first meaningful paint, a device-list page (API and browser), a live update's
# latency (p50, p95), and aloftd's CPU with IDLE (50) idle open dashboards against none.
# Everything runs on this machine, the browser beside the server; every figure comes from this run.
#
# Usage: bench/dashboard.sh      Environment: DEVICES (100000), IDLE (50), WINDOW (30 s),
#        RUNS (7), UPDATES (20), BUILD (build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
DEVICES=${DEVICES:-100000} BUILD=${BUILD:-build/release}
export IDLE=${IDLE:-50} WINDOW=${WINDOW:-30} RUNS=${RUNS:-7} UPDATES=${UPDATES:-20}

scripts/setup.sh
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" --target aloftd aloft aloft_bench_seed >/dev/null
scripts/web.sh build

work=$(mktemp -d /tmp/aloft-dash-bench.XXXXXX)
server=""
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== seeding $DEVICES devices in 50 groups"
mkdir -p "$work/data"
"$root/$BUILD/bench/server/aloft_bench_seed" "$work/data/aloft.db" "$DEVICES" --groups 50

port=18190
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
"$root/$BUILD/apps/aloft/aloft" keygen --out "$work/release" >/dev/null
"$root/$BUILD/apps/aloftd/aloftd" --data "$work/data" --listen "127.0.0.1:$port" \
  --trust "$work/release.pub" --web "$root/web/dist" 2>"$work/aloftd.log" &
server=$!
for _ in $(seq 1 100); do grep -q listening "$work/aloftd.log" 2>/dev/null && break; sleep 0.1; done
url=http://127.0.0.1:$port
token=$(cat "$work/data/admin.token")
api() { curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }

echo "== a release and 50 rollouts (one per group; 10 % first waves; every fifth awaiting approval)"
head -c 200000 /dev/urandom >"$work/app.bin"
"$root/$BUILD/apps/aloft/aloft" -q pack --name fw --version 2.0.0 --hardware bench-board \
  --component main="$work/app.bin" --key "$work/release.key" -o "$work/fw.aloft" >/dev/null
api -X POST --data-binary @"$work/fw.aloft" "$url/api/v1/releases?filename=fw.aloft" >/dev/null
for g in $(seq -w 0 49); do
  approval=false
  ((10#$g % 5 == 4)) && approval=true
  api -X POST "$url/api/v1/rollouts" -d "{\"name\":\"r$g\",\"release\":\"fw@2.0.0\",\"filter\":{\"groups\":[\"g$g\"]},\"waves\":[{\"percent\":10},{\"percent\":30,\"confirm\":true},{}],\"approval\":$approval}" >/dev/null
done
api -X POST "$url/api/v1/users" -d '{"name":"bench","role":"admin","password":"correct horse battery"}' >/dev/null
# The engine starts the first waves (actions for 10 % of 40 of the groups).
for _ in $(seq 1 100); do
  running=$(api "$url/api/v1/rollouts" | python3 -c 'import json,sys; print(sum(r["state"]=="running" for r in json.load(sys.stdin)))')
  [[ $running -ge 40 ]] && break
  sleep 0.5
done
echo "running rollouts: $running"

cd web
node bench/dashboard.mjs "$url" "$token" "$server"
