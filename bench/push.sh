#!/usr/bin/env bash
# How fast a push rollout reaches its devices over MQTT (docs/mqtt.md): for each N in COUNTS, N
# simulated devices (one process, one libmosquitto client each, persistent sessions, logged in with
# the passwords aloftd wrote into the broker's password file) wait idle on a real Mosquitto broker;
# a push rollout over all of them is created; the time is taken from the create request until
# every device has its otaUpgrade command. aloftd (its bridge runs in-process) is measured over the
# same span: CPU seconds (user + system, /proc/PID/stat) and resident memory (VmRSS after, VmHWM
# peak). The broker's CPU is shown too. On SQLite, the rollout engine ticking every 100 ms.
#
# Usage: bench/push.sh      Environment: COUNTS ("1000 10000"), BUILD (build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source bench/bench_lib.sh
COUNTS=${COUNTS:-1000 10000} BUILD=${BUILD:-build/release}

scripts/setup.sh
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" --target aloftd aloft aloft_bench_seed aloft_bench_push_devices >/dev/null
# The broker holds one socket per device (device processes take 5,000 devices each).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
max=0
for n in $COUNTS; do ((n > max)) && max=$n; done
if (($(ulimit -n) < max + 200)); then
  echo "bench/push: ulimit -n is $(ulimit -n); $max devices need $((max + 200)) descriptors" >&2
  exit 1
fi
ALOFT=$root/$BUILD/apps/aloft/aloft

work=$(mktemp -d /tmp/aloft-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  scripts/mqtt.sh stop "$work/broker" >/dev/null 2>&1 || true
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT
now_ms() { date +%s%3N; }
hz=$(getconf CLK_TCK)
cpu_s() {  # PID -> user + system CPU seconds so far
  awk -v hz="$hz" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}
mem_mib() {  # PID FIELD (VmRSS, VmHWM) -> MiB
  awk -v f="$2:" '$1 == f { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"
}

# run N: prints "N SECONDS P50_S P99_S ALOFTD_CPU_S RSS_MIB PEAK_MIB BROKER_CPU_S"
run() {
  local n=$1 dir=$work/n$1 port url pid broker_url broker_pid t0
  mkdir -p "$dir"
  "$root/$BUILD/bench/server/aloft_bench_seed" "$dir/aloft.db" "$n" --mqtt >&2
  broker_url=$(scripts/mqtt.sh start "$dir/broker" "$(free_port 21883)")
  broker_pid=$(cat "$dir/broker/mosquitto.pid")
  cat >"$dir/aloftd.toml" <<TOML
rollout_tick_ms = 100
mqtt_url = "$broker_url"
mqtt_broker_passwd = "$dir/broker/passwd"
mqtt_broker_acl = "$dir/broker/acl"
mqtt_broker_pid = "$dir/broker/mosquitto.pid"
TOML
  port=$(free_port 19380)
  "$root/$BUILD/apps/aloftd/aloftd" --config "$dir/aloftd.toml" --data "$dir/data" \
    --database "$dir/aloft.db" --listen "127.0.0.1:$port" 2>"$dir/aloftd.log" &
  pid=$!
  pids+=("$pid")
  url=http://127.0.0.1:$port
  for _ in $(seq 1 200); do grep -q "MQTT bridge connected" "$dir/aloftd.log" && break; sleep 0.1; done
  grep -q "MQTT bridge connected" "$dir/aloftd.log" || { cat "$dir/aloftd.log" >&2; exit 1; }
  # aloftd wrote the devices' password hashes; wait for the broker to reload them.
  for _ in $(seq 1 100); do grep -q "^bench-$(printf %06d $((n - 1))):" "$dir/broker/passwd" && break; sleep 0.1; done
  for _ in $(seq 1 50); do grep -q "Reloading config" "$dir/broker/mosquitto.log" && break; sleep 0.1; done
  sleep 1
  export ALOFT_URL=$url ALOFT_TOKEN=$(cat "$dir/data/admin.token")
  head -c 100000 /dev/urandom >"$dir/app.bin"
  "$ALOFT" -q server upload "$dir/app.bin" --name app --version 2.0.0 \
    --device-type bench-board >/dev/null
  # At most 5,000 devices per process: three descriptors each.
  local dev_pids=() first=0 k=0 chunk
  while ((first < n)); do
    chunk=$((n - first < 5000 ? n - first : 5000))
    "$root/$BUILD/bench/push/aloft_bench_push_devices" "$broker_url" "$chunk" "$first" 900 \
      >"$dir/devices-$k.out" 2>"$dir/devices-$k.err" &
    dev_pids+=($!)
    pids+=($!)
    first=$((first + chunk)) k=$((k + 1))
  done
  for ((j = 0; j < k; j++)); do
    for _ in $(seq 1 1800); do
      grep -q "^ready" "$dir/devices-$j.out" && break
      kill -0 "${dev_pids[j]}" 2>/dev/null || break
      sleep 0.1
    done
    grep -q "^ready" "$dir/devices-$j.out" || { cat "$dir/devices-$j.err" >&2; exit 1; }
  done
  echo "$n devices connected and subscribed" >&2
  local cpu0 bcpu0
  cpu0=$(cpu_s "$pid")
  bcpu0=$(cpu_s "$broker_pid")
  t0=$(now_ms)
  "$ALOFT" server rollout create r1 --release app@2.0.0 --group bench --push >/dev/null
  for ((j = 0; j < k; j++)); do
    wait "${dev_pids[j]}" || { cat "$dir/devices-$j.err" "$dir/devices-$j.out" >&2; exit 1; }
  done
  local cpu1 bcpu1 rss peak
  cpu1=$(cpu_s "$pid")
  bcpu1=$(cpu_s "$broker_pid")
  rss=$(mem_mib "$pid" VmRSS)
  peak=$(mem_mib "$pid" VmHWM)
  cat "$dir"/devices-*.out | grep "^received" >&2
  kill "$pid"; wait "$pid" 2>/dev/null || true
  scripts/mqtt.sh stop "$dir/broker" >/dev/null
  # Every device's receipt time, sorted: the last one, the median and the 99th percentile.
  cat "$dir"/devices-*.out | awk '$1 == "at" {print $2}' | sort -n >"$dir/at.txt"
  awk -v n="$n" -v t0="$t0" -v c0="$cpu0" -v c1="$cpu1" -v rss="$rss" -v peak="$peak" \
    -v b0="$bcpu0" -v b1="$bcpu1" '{ t[NR] = $1 } END {
      if (NR != n) { print "only " NR " of " n " devices got their command" > "/dev/stderr"; exit 1 }
      p50 = t[int(0.5 * (NR - 1)) + 1]; p99 = t[int(0.99 * (NR - 1)) + 1]
      printf "%d %.2f %.2f %.2f %.2f %s %s %.2f\n", n, (t[NR] - t0) / 1000, (p50 - t0) / 1000,
        (p99 - t0) / 1000, c1 - c0, rss, peak, b1 - b0 }' "$dir/at.txt"
}

rows=()
for n in $COUNTS; do rows+=("$(run "$n")"); done
echo
echo "push rollout to idle MQTT devices: SQLite, Mosquitto $(mosquitto -h 2>/dev/null | head -n1 | awk '{print $3}'), $(nproc) cores shared by aloftd, the broker and the devices"
printf '| %8s | %12s | %10s | %10s | %14s | %10s | %11s | %12s |\n' devices "all (s)" \
  "p50 (s)" "p99 (s)" "aloftd CPU s" "RSS MiB" "peak MiB" "broker CPU s"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' ---------- -------------- ------------ ------------ \
  ---------------- ------------ ------------- --------------
for r in "${rows[@]}"; do
  read -r n all p50 p99 cpu rss peak bcpu <<<"$r"
  printf '| %8s | %12s | %10s | %10s | %14s | %10s | %11s | %12s |\n' "$n" "$all" "$p50" "$p99" \
    "$cpu" "$rss" "$peak" "$bcpu"
done
echo "Times run from the rollout's create request to the device's receipt of its command; they"
echo "include creating the N actions and the engine's first tick (100 ms)."
