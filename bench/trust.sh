#!/usr/bin/env bash
# What Uptane costs (docs/trust.md), from one run on this machine: aloftd (SQLite) with an Image
# repository made by `aloft repo` and a Director; DEVICES seeded devices check in over keep-alive
# HTTP, CONNECTIONS at a time, as today and as Uptane devices (a signed version manifest, the
# Director's metadata in the answer when newer), in alternating rounds of DURATION seconds; then
# the metadata bytes a device receives for an update. The client and aloftd share the cores.
#
# Usage: bench/trust.sh        Environment: DEVICES (2000), DURATION (10 s), CONNECTIONS (32),
#        BUILD (build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source bench/bench_lib.sh
DEVICES=${DEVICES:-2000} DURATION=${DURATION:-10} CONNECTIONS=${CONNECTIONS:-32}
BUILD=${BUILD:-build/release}

scripts/setup.sh
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" --target aloftd aloft aloft_bench_seed aloft_bench_trust >/dev/null
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/aloft-bench-trust.XXXXXX)
pid=""
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  sleep 0.3
  rm -rf "$work"
}
trap cleanup EXIT
aloft() { "$root/$BUILD/apps/aloft/aloft" -q "$@"; }

echo "== keys, the repositories' offline halves, $DEVICES devices"
cd "$work"
for k in release root targets snapshot timestamp director-root director; do
  aloft keygen --out "$k" >/dev/null
done
head -c 200000 /dev/urandom >main.bin
aloft pack --name fw --version 1.2.0 --hardware bench-board --key release.key \
  --component main=main.bin -o fw.aloft >/dev/null
aloft repo init image --root-key root.pub --targets-key targets.pub --snapshot-key snapshot.pub \
  --timestamp-key timestamp.pub >/dev/null
aloft repo sign image --key root.key --key targets.key >/dev/null
aloft repo add image fw.aloft >/dev/null
aloft repo sign image --key targets.key >/dev/null
aloft repo init director --director --root-key director-root.pub --targets-key director.pub \
  --snapshot-key director.pub --timestamp-key director.pub >/dev/null
aloft repo sign director --key director-root.key >/dev/null
mkdir data
"$root/$BUILD/bench/server/aloft_bench_seed" "$work/data/aloft.db" "$DEVICES"

port=$(free_port 19380)
cat >aloftd.toml <<CONF
data_dir = "$work/data"
listen = "127.0.0.1:$port"
trust = ["$work/release.pub"]
tuf_snapshot_key = "$work/snapshot.key"
tuf_timestamp_key = "$work/timestamp.key"
tuf_director_key = "$work/director.key"
max_connections_per_address = 0
CONF
"$root/$BUILD/apps/aloftd/aloftd" -c aloftd.toml 2>aloftd.log &
pid=$!
for _ in $(seq 1 100); do grep -q listening aloftd.log && break; sleep 0.1; done
grep -q listening aloftd.log || { cat aloftd.log >&2; exit 1; }
admin=$(cat data/admin.token)
url=http://127.0.0.1:$port
curl -sf -H "Authorization: Bearer $admin" -o /dev/null \
  "$url/api/v1/releases?filename=fw-1.2.0.aloft" --data-binary @fw.aloft
aloft repo push image --url "$url" --token "$admin" >/dev/null
aloft repo push director --url "$url" --token "$admin" >/dev/null

echo "== check-ins: native against Uptane ($DEVICES devices, $CONNECTIONS connections, ${DURATION}s rounds, $(nproc) cores)"
"$root/$BUILD/bench/trust/aloft_bench_trust" "$port" "$DEVICES" "$DURATION" "$CONNECTIONS" \
  "$admin" fw@1.2.0
