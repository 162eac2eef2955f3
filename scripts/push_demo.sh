#!/usr/bin/env bash
# The push walk-through (docs/mqtt.md): a real Mosquitto broker on loopback, aloftd bridged to it,
# four aloft-agents in push mode on simulated A/B flash, and a gateway agent with two sub-devices.
#  - A push rollout reaches the idle agents at once: none of them polls (every check-in and report
#    goes over MQTT).
#  - The broker is stopped in the middle of a second push rollout and started again: the agents
#    fall back to HTTP while it is away, and every device installs the release exactly once.
#  - The gateway updates its two sub-devices, of two device types at two versions.
# Used by scripts/demo.sh and by the CTest system test "push_e2e".
#
# Usage: scripts/push_demo.sh BUILD_DIR WORK_DIRECTORY
set -euo pipefail
build=$(realpath "$1")
root=$(realpath "$(dirname "$0")/..")
aloft=$build/apps/aloft/aloft
aloftd=$build/apps/aloftd/aloftd
agent=$build/apps/aloft-agent/aloft-agent
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"
work=$PWD

ALOFTD=$aloftd
source "$root/tests/system/server_lib.sh"  # start_aloftd
DEMO="push demo"
source "$root/scripts/demo_lib.sh"  # step, fail, run, json

devices=(dev-1 dev-2 dev-3 dev-4)
agent_pids=()
cleanup() {
  for p in "${agent_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  kill "${srv_PID:-}" 2>/dev/null || true
  "$root/scripts/mqtt.sh" stop "$work/broker" || true
}
trap cleanup EXIT

# wait_for SECONDS WHAT COMMAND...: runs COMMAND every 0.2 s until it succeeds.
wait_for() {
  local limit=$1 what=$2; shift 2
  for _ in $(seq $((limit * 5))); do "$@" && return 0; sleep 0.2; done
  fail "waited $limit s for $what"
}

step "1. A release key; firmware for board-a (1.1.0, 1.2.0) and for two sensor types"
run "$aloft" keygen --out keys/release >/dev/null
img() { head -c "$2" /dev/urandom >"$1"; }
for v in 1.0.0 1.1.0 1.2.0; do img "image-$v.bin" 300000; done
img sa-1.0.0.bin 40000 && img sa-2.0.0.bin 40000
img sb-1.5.0.bin 60000 && img sb-1.6.0.bin 60000
pack() {  # NAME VERSION HARDWARE IMAGE
  run "$aloft" -q pack --name "$1" --version "$2" --hardware "$3" --component "main=$4" \
    --key keys/release.key -o "$1-$2.aloft"
}
pack fw 1.1.0 board-a image-1.1.0.bin
pack fw 1.2.0 board-a image-1.2.0.bin
pack sensor-a-fw 2.0.0 sensor-a sa-2.0.0.bin
pack sensor-b-fw 1.6.0 sensor-b sb-1.6.0.bin

step "2. Mosquitto on loopback (no anonymous clients; aloftd writes its password and ACL files)"
port=""
for _ in $(seq 50); do  # a free port below the ephemeral range
  p=$((20000 + RANDOM % 12000))
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { port=$p; break; }
done
[[ -n $port ]] || fail "no free loopback port"
broker_url=$("$root/scripts/mqtt.sh" start "$work/broker" "$port")
echo "broker: $broker_url"
cat >aloftd.toml <<TOML
mqtt_url = "$broker_url"
mqtt_broker_passwd = "$work/broker/passwd"
mqtt_broker_acl = "$work/broker/acl"
mqtt_broker_pid = "$work/broker/mosquitto.pid"
poll_interval_s = 2          # what HTTP check-ins are told (agents poll only without the broker)
poll_interval_active_s = 1
TOML
start_aloftd srv --config aloftd.toml --data data --trust keys/release.pub
url=$srv_URL
wait_for 20 "the bridge to connect" grep -q "MQTT bridge connected" srv.log
grep "MQTT bridge connected" srv.log
admin=$(cat data/admin.token)
S=("$aloft" server --url "$url" --token "$admin")
srv() { printf '$ aloft server %s\n' "$*"; "${S[@]}" "$@"; }
api() { curl -sf -H "Authorization: Bearer $admin" "$url/api/v1/$1"; }
srv device-type add board-a >/dev/null
srv device-type add sensor-a >/dev/null
srv device-type add sensor-b >/dev/null
for f in fw-1.1.0 fw-1.2.0 sensor-a-fw-2.0.0 sensor-b-fw-1.6.0; do srv upload "$f.aloft" >/dev/null; done

step "3. Four devices and a gateway with two sub-devices (s1: sensor-a 1.0.0, s2: sensor-b 1.5.0)"
for d in "${devices[@]}" gw-1; do srv device add "$d" --type board-a | tail -n1 >"$d.token"; done
srv device add s1 --type sensor-a --gateway gw-1 >/dev/null
srv device add s2 --type sensor-b --gateway gw-1 >/dev/null
mkdir -p sensors
agent_toml() {  # DEVICE
  cat <<TOML
server = "$url"
device = "$1"
token_file = "$work/$1.token"
device_type = "board-a"
state_dir = "$work/$1"
mqtt_url = "$broker_url"
push_poll_interval_s = 3600   # while connected, only a pushed command starts a check-in
poll_interval_s = 2           # while the broker is unreachable, poll over HTTP
[trust]
keys = ["$work/keys/release.pub"]
[download]
backoff_initial_ms = 200
[[module]]
name = "main"
layout = "ab"
flash = "$work/$1/main.flash"
flash_size = 2097152
erase_block = 4096
write_unit = 8
TOML
}
for d in "${devices[@]}"; do agent_toml "$d" >"$d.toml"; done
install='cp "$ALOFT_IMAGE" '$work'/sensors/$ALOFT_DEVICE.fw && echo "$ALOFT_DEVICE $ALOFT_VERSION" >>'$work'/sensors/installs.log'
{
  agent_toml gw-1
  for s in "s1 sensor-a" "s2 sensor-b"; do
    set -- $s
    printf '[[sub_device]]\nname = "%s"\ndevice_type = "%s"\ninstall_command = %s\n' "$1" "$2" \
      "$(printf '%s' "$install" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')"
  done
} >gw-1.toml
for d in "${devices[@]}" gw-1; do
  "$agent" -c "$d.toml" provision --image image-1.0.0.bin --version 1.0.0 >/dev/null
done
run "$agent" -c gw-1.toml provision --sub-device s1 --image sa-1.0.0.bin --version 1.0.0
run "$agent" -c gw-1.toml provision --sub-device s2 --image sb-1.5.0.bin --version 1.5.0
# The broker learns the new devices' passwords when aloftd's SIGHUP makes it reload.
wait_for 20 "the broker to load the devices' passwords" grep -q "^gw-1:" broker/passwd
sleep 1.5
for d in "${devices[@]}" gw-1; do
  "$agent" -c "$d.toml" >"$d.log" 2>&1 &
  agent_pids+=($!)
done
reported() { api "devices/$1" | grep -q '"main"'; }  # DEVICE: its versions are known
for d in "${devices[@]}" gw-1; do
  wait_for 30 "$d to connect" grep -q "waits for commands over" "$d.log"
  grep -q "not connected yet" "$d.log" && fail "$d did not connect to the broker"
  wait_for 30 "$d's first check-in" reported "$d"
done
grep -h "waits for commands" ./*.log
for d in s1 s2; do
  wait_for 30 "the gateway to report $d" reported "$d"
  echo "server: $d runs main $(api "devices/$d" | json 'd["versions"]["main"]')"
done
[[ $(api devices/s2 | json 'd["versions"]["main"]') == 1.5.0 ]] || fail "s2 is not at 1.5.0"

latest() {  # DEVICE -> "RELEASE STATE" of its latest action
  api "actions?device=$1" | json '(lambda a: a[0]["release"] + " " + a[0]["state"] if a else "-")(d["items"] if "items" in d else d)'
}
all_succeeded() {  # RELEASE DEVICE...
  local r=$1; shift
  for d in "$@"; do [[ $(latest "$d") == "$r succeeded" ]] || return 1; done
}
# HTTP_LINES LOG...: how many check-ins and final reports went over HTTP
http_lines() { cat "$@" | grep -c "checking in over HTTP\|reporting .* over HTTP" || true; }
logs=("${devices[@]/%/.log}")

step "4. A push rollout of fw 1.1.0 to the idle agents"
before=$(http_lines "${logs[@]}")
t0=$(date +%s%N)
srv rollout create r1 --release fw@1.1.0 --device-type board-a --device dev-1 --device dev-2 \
  --device dev-3 --device dev-4 --push
wait_for 60 "the rollout of 1.1.0" all_succeeded fw@1.1.0 "${devices[@]}"
t1=$(date +%s%N)
echo "all four devices run 1.1.0, $(( (t1 - t0) / 1000000 )) ms after the rollout was created"
after=$(http_lines "${logs[@]}")
echo "check-ins and final reports over HTTP meanwhile: $((after - before))"
[[ $after -eq $before ]] || fail "an agent used HTTP while the broker was up"
for d in "${devices[@]}"; do grep -q "update succeeded; installed 1.1.0" "$d.log" ||
  fail "$d did not install 1.1.0"; done

step "5. A push rollout of fw 1.2.0 in two waves; the broker is away when wave 2 starts"
srv rollout create r2 --release fw@1.2.0 --device-type board-a --device dev-1 --device dev-2 \
  --device dev-3 --device dev-4 --wave 2:confirm --wave rest --push
rollout_state() { [[ $(api rollouts/r2 | json 'd["state"]') == "$1" ]]; }
wait_for 60 "wave 1 to succeed" rollout_state awaiting-confirmation
run "$root/scripts/mqtt.sh" stop "$work/broker"
srv rollout confirm r2  # wave 2's commands wait in aloftd's MQTT client
sleep 4                # the agents poll over HTTP meanwhile
echo "\$ scripts/mqtt.sh start $work/broker $port"
"$root/scripts/mqtt.sh" start "$work/broker" "$port"
wait_for 90 "the rollout of 1.2.0" all_succeeded fw@1.2.0 "${devices[@]}"
for d in "${devices[@]}"; do
  n=$(api "actions?device=$d" | json 'sum(1 for a in (d["items"] if "items" in d else d) if a["release"] == "fw@1.2.0")')
  i=$(grep -c "update succeeded; installed 1.2.0" "$d.log" || true)
  "$agent" -c "$d.toml" status >"$d-status.txt" 2>/dev/null || true
  echo "$d: $n action(s) for fw@1.2.0, installed it $i time(s); $(grep -m1 "^module main" "$d-status.txt")"
  [[ $n -eq 1 && $i -eq 1 ]] || fail "$d: expected one action and one install of 1.2.0"
  grep -q "^module main: running 1.2.0 " "$d-status.txt" || fail "$d does not run 1.2.0"
done
echo "check-ins and final reports over HTTP while the broker was away: $(( $(http_lines "${logs[@]}") - after ))"
grep -h "broker is unreachable" "${logs[@]}" | head -n 4
# Every agent reconnects (with backoff) and goes back to waiting for commands.
reconnected() { [[ $(grep "aloft-agent: push: " "$1.log" | tail -n1) == *"connected to"* ]]; }
for d in "${devices[@]}" gw-1; do wait_for 60 "$d to reconnect" reconnected "$d"; done
curl -sf "$url/metrics" | grep "^aloft_mqtt"

step "6. The gateway updates its sub-devices: s1 1.0.0 -> 2.0.0, s2 1.5.0 -> 1.6.0"
gw_before=$(http_lines gw-1.log)
srv deploy sensor-a-fw@2.0.0 --device s1 --push
srv deploy sensor-b-fw@1.6.0 --device s2 --push
wait_for 60 "s1 to succeed" all_succeeded sensor-a-fw@2.0.0 s1
wait_for 60 "s2 to succeed" all_succeeded sensor-b-fw@1.6.0 s2
cat sensors/installs.log
[[ $(grep -c . sensors/installs.log) -eq 2 ]] || fail "expected two installs"
cmp sensors/s1.fw sa-2.0.0.bin && cmp sensors/s2.fw sb-1.6.0.bin ||
  fail "a sub-device did not get its image"
for d in s1 s2; do echo "server: $d runs main $(api "devices/$d" | json 'd["versions"]["main"]')"; done
[[ $(api devices/s1 | json 'd["versions"]["main"]') == 2.0.0 ]] || fail "s1 is not at 2.0.0"
[[ $(api devices/s2 | json 'd["versions"]["main"]') == 1.6.0 ]] || fail "s2 is not at 1.6.0"
grep -h "^s[12]: update" gw-1.log
[[ $(http_lines gw-1.log) -eq $gw_before ]] || fail "the gateway used HTTP while the broker was up"

step "7. Summary"
for p in "${agent_pids[@]}"; do kill "$p"; done
for p in "${agent_pids[@]}"; do wait "$p" || true; done
agent_pids=()
for d in "${devices[@]}" gw-1; do echo "$d: $(grep "aloft-agent: push:.*commands received" "$d.log")"; done
echo "push demo: OK"
