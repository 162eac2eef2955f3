#!/usr/bin/env bash
# The vehicle OTA manager (issue 22, must show 5), for the demo car of examples/demo-car.toml
# (fourteen ECUs: twelve on three classic CAN buses and a CAN FD bus, two on Ethernet):
#  1. on simulated time (exact, the same every run): each ECU's flash alone, the lower bound (the
#     largest, over buses and dependency chains, of the summed times alone), the planned and the
#     measured campaign makespan against it, and one ECU after another;
#  2. in real time, aloft-vehicle against aloft-ecu-sim through the bus hub and DoIP with the demo
#     bundle: the gateway process's wall time, CPU time and peak RSS (GNU time);
#  3. the next release as a delta bundle installed on the same car: its size against the full
#     bundle's, and the gateway's wall time, CPU time and peak RSS while it rebuilds the images.
#
# Usage: bench/vehicle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release --target aloft_bench_vehicle_campaign aloft aloft-ecu-sim \
  aloft-vehicle >/dev/null
build=$root/build/release
work=$root/build/bench-vehicle
rm -rf "$work" && mkdir -p "$work"

echo "== 1. The campaign on simulated time (images 90 % of each ECU's application area)"
"$build/bench/vehicle/aloft_bench_vehicle_campaign" examples/demo-car.toml "$work/sim"

echo
echo "== 2. The gateway in real time: aloft-vehicle install, the demo bundle, hub and DoIP"
free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}
hub=127.0.0.1:$(free_port 29836)
doip=127.0.0.1:$(free_port 13800)
cd "$work"
"$build/apps/aloft-ecu-sim/aloft-ecu-sim" run "$root/examples/demo-car.toml" --state car \
  --hub "$hub" --doip "$doip" >sim.log 2>&1 &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q "^DoIP entity" sim.log && break; sleep 0.2; done
"$root/scripts/vehicle_bundle.sh" "$build" >/dev/null
net=(--network "$root/examples/demo-car.toml" --hub "$hub" --doip "$doip" --state gateway)
bytes=$(awk '{s += $3} END {print s}' images.txt)
/usr/bin/time -f "%e %U %S %M" -o time.txt "$build/apps/aloft-vehicle/aloft-vehicle" install \
  car.aloft --trust release.pub -q "${net[@]}" >install.txt
grep -q "all-new" install.txt || { cat install.txt; echo "the campaign did not end all-new"; exit 1; }
read -r wall user sys rss <time.txt
printf "%-44s %12s\n" "images" "$(awk -v b="$bytes" 'BEGIN {printf "%.2f MiB", b / 1048576}')"
printf "%-44s %12s\n" "wall time (backups read back, then flashed)" "$wall s"
printf "%-44s %12s\n" "gateway CPU time (user + system)" \
  "$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f s", u + s}')"
printf "%-44s %12s\n" "gateway peak RSS" "$(awk -v k="$rss" 'BEGIN {printf "%.1f MiB", k / 1024}')"

echo
echo "== 3. The next release as a delta bundle: each image rebuilt from the gateway's copy as it goes out"
"$root/scripts/vehicle_bundle.sh" "$build" 1 >/dev/null
"$build/apps/aloft/aloft" diff --from car.aloft --to car-1.aloft --key release.key \
  -o car-1-delta.aloft >/dev/null
/usr/bin/time -f "%e %U %S %M" -o time-delta.txt "$build/apps/aloft-vehicle/aloft-vehicle" \
  install car-1-delta.aloft --trust release.pub -q "${net[@]}" >install-delta.txt
grep -q "all-new" install-delta.txt ||
  { cat install-delta.txt; echo "the delta campaign did not end all-new"; exit 1; }
read -r wall user sys rss <time-delta.txt
printf "%-44s %12s\n" "full bundle" "$(stat -c %s car-1.aloft) B"
printf "%-44s %12s\n" "delta bundle (what the car downloads)" "$(stat -c %s car-1-delta.aloft) B"
printf "%-44s %12s\n" "wall time (backups from the store)" "$wall s"
printf "%-44s %12s\n" "gateway CPU time (user + system)" \
  "$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f s", u + s}')"
printf "%-44s %12s\n" "gateway peak RSS" "$(awk -v k="$rss" 'BEGIN {printf "%.1f MiB", k / 1024}')"
