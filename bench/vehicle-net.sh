#!/usr/bin/env bash
# The vehicle network on simulated time (issue 21, must show 5): ISO-TP payload throughput on
# classic CAN (500 kbit/s) and CAN FD (500k/2M, 1M/5M) against the limit the frame formula gives;
# a 1 MiB UDS flash into the C55-model ECU over classic CAN and CAN FD, erase included, against
# the flash's own erase + program time; and how many times faster than real time it ran. Every
# figure is exact and the same on every run: nothing here reads the wall clock but the last line.
#
# Usage: bench/vehicle-net.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release --target aloft_bench_vehicle_net >/dev/null
work=build/bench-vehicle-net
rm -rf "$work" && mkdir -p "$work"
build/release/bench/vehicle/aloft_bench_vehicle_net "$work"
