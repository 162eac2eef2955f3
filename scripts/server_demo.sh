#!/usr/bin/env bash
# The server walk-through: aloftd on embedded defaults (SQLite and artifacts in one directory), a
# signed release uploaded, devices provisioned and deployed to as a group, scripted devices that
# check in, download (resuming an interrupted download with Range), install and report; then what
# the operator sees. Every step is checked; any surprise exits non-zero. Used by scripts/demo.sh
# and by the CTest system test "server_demo".
#
# Usage: scripts/server_demo.sh BUILD_DIR WORK_DIRECTORY
set -euo pipefail
build=$(realpath "$1")
aloft=$build/apps/aloft/aloft
aloftd=$build/apps/aloftd/aloftd
work=$2
DEMO="server demo"
source "$(dirname "$0")/demo_lib.sh"  # step, fail, run, json
rm -rf "$work" && mkdir -p "$work" && cd "$work"

step "1. A release key and a signed package for board-a (components main and bms)"
run "$aloft" keygen --out keys/release >/dev/null
head -c 2000000 /dev/urandom >app.bin
for i in $(seq 1 20000); do echo "bms calibration row $i"; done >bms.bin
run "$aloft" -q pack --name fw --version 1.2.0 --hardware board-a --component main=app.bin \
  --component bms=bms.bin --key keys/release.key -o fw-1.2.0.aloft

step "2. aloftd on embedded defaults, trusting the release key"
port=18080
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
printf '$ aloftd --data data --listen 127.0.0.1:%s --trust keys/release.pub --require-signed-releases &\n' "$port"
"$aloftd" --data data --listen "127.0.0.1:$port" --trust keys/release.pub --require-signed-releases \
  2>aloftd.log &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do [[ -s data/admin.token ]] && grep -q listening aloftd.log && break; sleep 0.1; done
cat aloftd.log
[[ $(stat -c %a data/admin.token) == 600 ]] || fail "admin.token is not 0600"
url=http://127.0.0.1:$port
S=("$aloft" server --url "$url" --token "$(cat data/admin.token)")
# Runs `aloft server ...`, showing the command as an operator would type it.
srv() { printf '$ aloft server --url %s --token "$(cat data/admin.token)" %s\n' "$url" "$*"; "${S[@]}" "$@"; }

step "3. The operator: device type, module, release, devices, a deployment to a group"
srv device-type add board-a
srv module add board-a bms
srv upload fw-1.2.0.aloft
# This server takes signed packages only: a plain artifact is refused (require_signed_releases).
if srv upload app.bin --name fw --version 1.2.1 --device-type board-a 2>refused.txt; then
  fail "a plain artifact was accepted by a server that requires signed releases"
fi
cat refused.txt
declare -A token
for d in dev-1 dev-2 dev-3; do
  srv device add "$d" --type board-a --group lab | tee "$d.txt"
  token[$d]=$(tail -n1 "$d.txt")
done
srv deploy fw@1.2.0 --group lab | tee deploy.txt
[[ $(grep -c '^action' deploy.txt) -eq 3 ]] || fail "expected three actions"

step "4. Scripted devices: check in, download (resumed), verify, install, report"
sha=$(sha256sum fw-1.2.0.aloft | cut -c1-64)
for d in dev-1 dev-2 dev-3; do
  auth="Authorization: Bearer ${token[$d]}"
  reply=$(curl -sf -H "$auth" -d '{"versions":{"main":"1.0.0","bms":"1.0.0"}}' "$url/device/v1/$d/check-in")
  id=$(echo "$reply" | json 'd["action"]["id"]')
  link=$(echo "$reply" | json 'd["action"]["download"]["url"]')
  size=$(echo "$reply" | json 'd["action"]["download"]["size"]')
  fb="$url/device/v1/$d/actions/$id/feedback"
  # The first half, then the connection "drops"; the rest is fetched with Range.
  curl -sf -H "$auth" -r 0-$((size / 2 - 1)) -o "$d.part" "$link"
  curl -sf -H "$auth" -d '{"status":"downloading","progress":50}' "$fb" >/dev/null
  curl -sf -H "$auth" -r $((size / 2))- "$link" >>"$d.part"
  [[ $(sha256sum "$d.part" | cut -c1-64) == "$sha" ]] || fail "$d: downloaded bytes differ"
  "$aloft" -q verify "$d.part" --trust keys/release.pub >/dev/null || fail "$d: package does not verify"
  for st in downloaded installing installed; do
    curl -sf -H "$auth" -d "{\"status\":\"$st\"}" "$fb" >/dev/null
  done
  curl -sf -H "$auth" -d '{"status":"success","details":"rebooted into 1.2.0"}' "$fb" >/dev/null
  echo "$d: action $id, $size bytes downloaded in two ranges, sha256 ok, signature ok, success reported"
done

step "5. What the operator sees"
srv action show "$(grep '^action' deploy.txt | head -n1 | awk '{print $2}')"
srv devices list
srv stats | tee stats.txt
grep -Eq '^board-a +main +1\.2\.0 +3$' stats.txt || fail "stats do not show three devices on 1.2.0"
grep -Eq '^succeeded +3$' stats.txt || fail "stats do not show three succeeded actions"
curl -sf "$url/metrics" | grep -E '^aloft_(devices_seen|download_bytes_total|device_check_ins_total) '

step "6. SIGTERM: aloftd stops gracefully"
kill -TERM $server
wait $server || fail "aloftd exited with $?"
tail -n 2 aloftd.log
echo
echo "server demo: OK"
