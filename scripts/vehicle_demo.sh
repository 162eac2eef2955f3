#!/usr/bin/env bash
# The vehicle walk-through (docs/vehicle-network.md): aloft-ecu-sim runs the demo car of
# examples/demo-car.toml in real time (three classic CAN buses and a CAN FD bus, fourteen ECUs
# with flash bootloaders, a DoIP edge node), then
#  - an identification scan through the bus hub (socketcand rawmode): a functional 22 F1 90 on
#    each classic bus finds the ECUs, and each one's DIDs are read;
#  - the same through DoIP: vehicle identification over UDP, routing activation, and the DIDs of
#    ECUs on Ethernet, on CAN FD and on classic CAN behind the edge node;
#  - python-can (Debian python3-can) on the powertrain bus reads the vehicle signals, before and
#    after the control port changes the speed;
#  - the status view: what each ECU would start now;
#  - a vehicle bundle for all fourteen ECUs (aloft bundle), the gateway's inventory
#    (aloft-vehicle inventory), a forged bundle refused, the bundle installed all or nothing
#    with a live view per ECU (aloft-vehicle install), and what each ECU now starts.
# Used by scripts/demo.sh and by the CTest system test "vehicle_demo".
#
# Usage: scripts/vehicle_demo.sh BUILD_DIR WORK_DIRECTORY
set -euo pipefail
build=$(realpath "$1")
root=$(realpath "$(dirname "$0")/..")
sim=$build/apps/aloft-ecu-sim/aloft-ecu-sim
aloft=$build/apps/aloft/aloft
vehicle=$build/apps/aloft-vehicle/aloft-vehicle
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"
DEMO="vehicle demo"
source "$root/scripts/demo_lib.sh"  # step, fail, run, free_port

hub=127.0.0.1:$(free_port 29536)
control=127.0.0.1:$(free_port 29600)
doip=127.0.0.1:$(free_port 13400)
hmi=127.0.0.1:$(free_port 8469)

step "A simulated car: aloft-ecu-sim run $root/examples/demo-car.toml"
"$sim" run "$root/examples/demo-car.toml" --state state --hub "$hub" --doip "$doip" \
  --control "$control" >sim.log 2>&1 &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q "^control on" sim.log && break; sleep 0.2; done
grep -q "^control on" sim.log || { cat sim.log; fail "aloft-ecu-sim did not start"; }
cat sim.log

step "Identification scan through the bus hub (socketcand rawmode on $hub)"
run "$sim" scan --hub "$hub" --bus powertrain --bus chassis --bus body | tee scan-hub.txt
found=$(grep -c "software=" scan-hub.txt || true)
[[ $found -eq 10 ]] || fail "10 ECUs should answer on the classic buses, $found did"

step "The same through DoIP ($doip): Ethernet, CAN FD and classic CAN ECUs behind the edge node"
run "$sim" scan --doip "$doip" --target 0x1010 --target 0x1006 --target 0x1001 --target 0x1005 |
  tee scan-doip.txt
found=$(grep -c "software=" scan-doip.txt || true)
[[ $found -eq 4 ]] || fail "4 ECUs should answer through DoIP, $found did"

step "python-can reads the vehicle signals on the powertrain bus"
signals() {
  /usr/bin/python3 - "$hub" <<'PY'
import sys
import can
host, port = sys.argv[1].rsplit(":", 1)
bus = can.Bus(interface="socketcand", channel="powertrain", host=host, port=int(port))
try:
    while True:
        m = bus.recv(timeout=3)
        if m is None:
            sys.exit("no signal frame within 3 s")
        if m.arbitration_id == 0x3E8:
            d = m.data
            gear = {126: "P", 127: "D", 0: "N", 255: "R"}.get(d[2], str(d[2]))
            print(f"Vehicle.Speed={int.from_bytes(d[0:2], 'big') / 100:.2f} km/h  "
                  f"SelectedGear={gear}  LowVoltageBattery.CurrentVoltage="
                  f"{int.from_bytes(d[4:6], 'big') / 100:.2f} V")
            break
finally:
    bus.shutdown()
PY
}
signals
run "$sim" ctl --control "$control" signal speed 42.5
run "$sim" ctl --control "$control" signal gear D
signals | tee signals.txt
grep -q "Vehicle.Speed=42.50 km/h  SelectedGear=D" signals.txt || fail "the signals did not change"

step "What each ECU would start now"
run "$sim" ctl --control "$control" status
run "$sim" ctl --control "$control" signal speed 0
run "$sim" ctl --control "$control" signal gear P

step "A vehicle bundle for all fourteen ECUs: aloft bundle $root/examples/demo-car-bundle.toml"
run "$root/scripts/vehicle_bundle.sh" "$build"
run "$aloft" keygen --out stranger >/dev/null
run "$aloft" bundle bundle.toml --key stranger.key -o forged.aloft >/dev/null

step "The gateway reads every ECU's identification: aloft-vehicle inventory"
net=(--network "$root/examples/demo-car.toml" --hub "$hub" --doip "$doip" --state gateway)
run "$vehicle" inventory "${net[@]}"

step "A bundle signed by an unknown key is refused before any ECU is touched"
if "$vehicle" install forged.aloft --trust release.pub "${net[@]}" >forged.txt 2>&1; then
  cat forged.txt
  fail "the forged bundle was installed"
fi
cat forged.txt
grep -q "refused: .*signature" forged.txt || fail "no signature error"

step "aloft-vehicle install: backups of single-bank ECUs, then all fourteen flashed, buses in parallel"
run "$vehicle" install car.aloft --trust release.pub "${net[@]}" | tee install.txt
grep -q "all-new" install.txt || fail "the campaign did not end all-new"

step "What each ECU starts now, as the simulator says"
run "$sim" ctl --control "$control" status | tee after.txt
while read -r name version size; do
  grep -q "^$name: application $version" after.txt || fail "$name does not run $version"
done <images.txt

step "aloftd: the car is a device (its VIN) of type demo-car whose modules are its ECUs"
ALOFTD=$build/apps/aloftd/aloftd
source "$root/tests/system/server_lib.sh"  # start_aloftd
trap 'kill $sim_pid ${srv_PID:-} 2>/dev/null || true' EXIT
# Its online Uptane keys (docs/trust.md): the Image repository's snapshot and timestamp, the
# Director's; used at the end.
for k in snapshot timestamp director; do "$aloft" -q keygen --out "tuf-$k"; done
cat >aloftd.toml <<TOML
tuf_snapshot_key = "$PWD/tuf-snapshot.key"
tuf_timestamp_key = "$PWD/tuf-timestamp.key"
tuf_director_key = "$PWD/tuf-director.key"
TOML
start_aloftd srv -c aloftd.toml --data data --trust release.pub
admin=$(cat data/admin.token)
S=("$aloft" server --url "$srv_URL" --token "$admin")
srv() { printf '$ aloft server %s\n' "$*"; "${S[@]}" "$@"; }
api() { curl -sf -H "Authorization: Bearer $admin" "$srv_URL/api/v1/$1"; }
mods=()
while read -r name _; do mods+=(--module "$name"); done <images.txt
srv device-type add demo-car "${mods[@]}"
vin=WALOFTDEMO0000001
srv device add "$vin" --type demo-car | tail -n1 >vehicle.token
cat >vehicle.toml <<TOML
server = "$srv_URL"
device = "$vin"
token_file = "$PWD/vehicle.token"
state_dir = "$PWD/gateway"
hmi = "$hmi"
defer_interval_s = 3
[network]
vehicle = "$root/examples/demo-car.toml"
hub = "$hub"
doip = "$doip"
[trust]
keys = ["$PWD/release.pub"]
TOML
run "$vehicle" --config vehicle.toml --once
echo "the server's vehicle manifest:"
api "devices/$vin" | json '"\n".join("  %s %s" % kv for kv in sorted(d["versions"].items()))'

step "The next release of the car (every ECU one patch up, mode confirm, one deferral): uploaded, rolled out"
run "$root/scripts/vehicle_bundle.sh" "$build" 1 >bundle-1.txt
grep "^wrote" bundle-1.txt
sed -i 's/^mode = "silent"$/mode = "confirm"/; s/^max_deferrals = 3$/max_deferrals = 1/' bundle-1.toml
grep -q '^mode = "confirm"' bundle-1.toml || fail "bundle-1.toml has no confirm mode"
run "$aloft" bundle bundle-1.toml --key release.key -o car-1.aloft
srv upload car-1.aloft
srv rollout create car-2026-12-1 --release demo-car@2026.12.1 --device-type demo-car \
  --device "$vin"
# One daemon cycle at a time (check in; with the action the rollout gives it: download, ask the
# driver, install with a live line per ECU, report, check in again) until the rollout has reached
# the car; in the background, while the driver answers.
daemon_cycles() {
  for _ in $(seq 60); do
    echo "\$ aloft-vehicle --config vehicle.toml --once"
    "$vehicle" --config vehicle.toml --once 2>&1 || true
    grep -q "all-new\|all-old\|refused\|failed" daemon.txt && break
    sleep 1
  done
}
: >daemon.txt
daemon_cycles >>daemon.txt 2>&1 &
cycles_pid=$!
trap 'kill $sim_pid ${srv_PID:-} $cycles_pid 2>/dev/null || true' EXIT
# asked WHAT: waits (up to 2 min) until the driver's screen asks.
asked() {
  for _ in $(seq 240); do
    "$vehicle" prompt --hmi "$hmi" 2>/dev/null | grep -q "ready: accept" && return 0
    sleep 0.5
  done
  cat daemon.txt
  fail "the driver was not asked $1"
}

step "The driver's screen (the head unit's HMI): the update asks; deferred once; asked again; accepted"
asked "about the update"
run "$vehicle" prompt --hmi "$hmi" | tee prompt.txt
grep -q "(1 of 1 deferrals left)" prompt.txt || fail "the screen does not offer one deferral"
run "$vehicle" defer --hmi "$hmi"
sleep 3.5  # the action's feedback comes every 3 s
id=$(api "actions?device=$vin" | json '(d["items"] if "items" in d else d)[0]["id"]')
api "actions/$id" | grep -o '"waiting for the driver"' | head -n1 |
  sed 's/^/the server sees: /' | tee waiting.txt
[[ -s waiting.txt ]] || fail "the server does not see the campaign waiting for the driver"
asked "again after the deferral"
if "$vehicle" defer --hmi "$hmi" >defer2.txt 2>&1; then
  cat defer2.txt
  fail "a second deferral was accepted (the bundle allows one)"
fi
printf '$ aloft-vehicle defer --hmi %s\n' "$hmi"
cat defer2.txt
grep -q "cannot be deferred again" defer2.txt || fail "no clear refusal of the second deferral"
run "$vehicle" accept --hmi "$hmi"

step "The daemon installs it: a live line per ECU, the result on the action"
tail -n +1 --pid="$cycles_pid" -f daemon.txt
wait "$cycles_pid" || true
grep -q "bundle demo-car 2026.12.1: all-new" daemon.txt || fail "the daemon's campaign did not end all-new"
echo "the server's vehicle manifest:"
api "devices/$vin" | json '"\n".join("  %s %s" % kv for kv in sorted(d["versions"].items()))' |
  tee manifest.txt
while read -r name version size; do
  grep -q "^  $name $version\$" manifest.txt || fail "the server shows $name not at $version"
done <images-1.txt
state=$(api "actions?device=$vin" | json '(d["items"] if "items" in d else d)[0]["state"]')
echo "the action: $state"
[[ $state == succeeded ]] || fail "the action is $state"

step "A bad bundle through the server (the previous release again: a downgrade): refused in the car from its manifest alone, before its download, and reported on its action"
srv upload car.aloft
srv deploy demo-car@2026.12.0 --device "$vin"
run "$vehicle" --config vehicle.toml --once 2>&1 | tee bad.txt
grep -q "refused: ecm: a downgrade" bad.txt || fail "the downgrade was not refused"
grep -q "refused before its download" bad.txt || fail "the downgrade was downloaded first"
id=$(api "actions?device=$vin" | json '(d["items"] if "items" in d else d)[0]["id"]')
api "actions/$id" >bad-action.json
json '"the action: %s" % d["state"]' <bad-action.json
grep -o '"refused: ecm: a downgrade[^"]*"' bad-action.json | head -n1 |
  sed 's/^/the server has: /'
[[ $(json 'd["state"]' <bad-action.json) == failed ]] || fail "the action did not fail"
grep -q "refused: ecm: a downgrade" bad-action.json || fail "the server does not have the reason"

step "Uptane (docs/trust.md): the Image repository (the release engineers' offline keys) and the Director's root, made with aloft repo and pushed"
for k in offline-root offline-targets director-root; do "$aloft" -q keygen --out "$k"; done
run "$aloft" repo init image --root-key offline-root.pub --targets-key offline-targets.pub \
  --snapshot-key tuf-snapshot.pub --timestamp-key tuf-timestamp.pub
run "$aloft" repo sign image --key offline-root.key
run "$aloft" repo add image car-1.aloft
run "$aloft" repo sign image --key offline-targets.key
run "$aloft" repo push image --url "$srv_URL" --token "$admin"
run "$aloft" repo init director --director --root-key director-root.pub \
  --targets-key tuf-director.pub
run "$aloft" repo sign director --key director-root.key
run "$aloft" repo push director --url "$srv_URL" --token "$admin"
echo "the gateway ships with both roots: vehicle.toml gets"
tee -a vehicle.toml <<TOML
[uptane]
director_root = "$PWD/director/metadata/1.root.json"
image_root = "$PWD/image/metadata/1.root.json"
TOML

step "The car's next release, uploaded and deployed but not signed by the release engineers: the car refuses it before its download"
run "$root/scripts/vehicle_bundle.sh" "$build" 2 >bundle-2.txt
run "$aloft" bundle bundle-2.toml --key release.key -o car-2.aloft
srv upload car-2.aloft
srv deploy demo-car@2026.12.2 --device "$vin"
run "$vehicle" --config vehicle.toml --once 2>&1 | tee unlisted.txt
grep -q "refused: .*not a target of the Image repository" unlisted.txt ||
  fail "the car did not refuse a release the Image repository does not list"
grep -q "downloading" unlisted.txt && fail "the unlisted release was downloaded"

step "Signed offline and pushed: the car verifies it through the Director and the Image repository, then installs it"
run "$aloft" repo add image car-2.aloft
run "$aloft" repo sign image --key offline-targets.key
run "$aloft" repo push image --url "$srv_URL" --token "$admin"
srv deploy demo-car@2026.12.2 --device "$vin"
run "$vehicle" --config vehicle.toml --once 2>&1 | tee uptane.txt
grep -q "bundle demo-car 2026.12.2: all-new" uptane.txt || fail "the verified release did not end all-new"
api "devices/$vin" | json '"\n".join("  %s %s" % kv for kv in sorted(d["versions"].items()))' >manifest-2.txt
while read -r name version size; do
  grep -q "^  $name $version\$" manifest-2.txt || fail "the server shows $name not at $version"
done <images-2.txt
echo "the server shows all $(wc -l <images-2.txt) ECUs at 2026.12.2"

echo
echo "vehicle demo: done"
