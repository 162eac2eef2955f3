#!/usr/bin/env bash
# What TLS and device certificates cost a check-in (docs/identity.md), from one run on this
# machine: aloftd (SQLite, DEVICES seeded devices) over plain HTTP, then over HTTPS asking for
# device certificates (device_ca_file, device_crl_file), in ROUNDS alternating rounds; in each,
# check-ins for DURATION seconds over CONNECTIONS connections (one device each): with a token
# over HTTP, with a token over HTTPS, and with the device's certificate over HTTPS, over
# keep-alive connections and with a new connection (a full TLS handshake) per check-in. The
# client and aloftd share the cores.
#
# Usage: bench/identity.sh     Environment: DEVICES (2000), DURATION (8 s), CONNECTIONS (32),
#        ROUNDS (2), BUILD (build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source bench/bench_lib.sh
DEVICES=${DEVICES:-2000} DURATION=${DURATION:-8} CONNECTIONS=${CONNECTIONS:-32}
ROUNDS=${ROUNDS:-2} BUILD=${BUILD:-build/release}

scripts/setup.sh
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" --target aloftd aloft aloft_bench_seed aloft_bench_identity >/dev/null
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/aloft-bench-identity.XXXXXX)
pid=""
stop_server() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  pid=""
}
trap 'stop_server; rm -rf "$work"' EXIT
cd "$work"

echo "== a device CA, the server's certificate, $DEVICES devices"
"$root/$BUILD/apps/aloft/aloft" -q ca init ca --name "Bench devices CA" >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout server.key -out server.crt 2>/dev/null
mkdir data
"$root/$BUILD/bench/server/aloft_bench_seed" "$work/data/aloft.db" "$DEVICES"
port=$(free_port 19480)

# start_server tls|plain
start_server() {
  {
    echo "data_dir = \"$work/data\""
    echo "listen = \"127.0.0.1:$port\""
    echo "max_connections_per_address = 0"
    if [[ $1 == tls ]]; then
      echo "tls_cert = \"$work/server.crt\""
      echo "tls_key = \"$work/server.key\""
      echo "device_ca_file = \"$work/ca/ca.crt\""
      echo "device_crl_file = \"$work/ca/crl.pem\""
    fi
  } >aloftd.toml
  "$root/$BUILD/apps/aloftd/aloftd" -c aloftd.toml 2>aloftd.log &
  pid=$!
  for _ in $(seq 1 100); do grep -q listening aloftd.log && break; sleep 0.1; done
  grep -q listening aloftd.log || { cat aloftd.log >&2; exit 1; }
}

run() {  # run MODE KEEP
  "$root/$BUILD/bench/identity/aloft_bench_identity" "$port" "$1" "$2" "$DEVICES" "$DURATION" \
    "$CONNECTIONS" "$work/ca" "$work/server.crt" | tee -a results.txt
}

echo "== check-ins ($DEVICES devices, $CONNECTIONS connections, ${DURATION}s each, $ROUNDS rounds, $(nproc) cores)"
for round in $(seq 1 "$ROUNDS"); do
  echo "-- round $round"
  start_server plain
  run plain-token 1
  run plain-token 0
  stop_server
  start_server tls
  run tls-token 1
  run tls-cert 1
  run tls-token 0
  run tls-cert 0
  stop_server
done

echo
echo "== medians (check-ins per second; refused must be 0)"
python3 - results.txt <<'PY'
import statistics, sys
rows = {}
refused = 0
for line in open(sys.argv[1]):
    mode, conn, rate, bad = line.split()
    rows.setdefault((mode, conn), []).append(float(rate))
    refused += int(bad)
med = {k: statistics.median(v) for k, v in rows.items()}
print(f"{'mode':<14}{'connection':<16}{'check-ins/s':>12}{'vs plain-token':>16}")
for (mode, conn), m in sorted(med.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    base = med.get(("plain-token", conn))
    print(f"{mode:<14}{conn:<16}{m:>12.0f}{(m / base if base else 0):>15.2f}x")
print(f"refused: {refused}")
PY
