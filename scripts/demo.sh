#!/usr/bin/env bash
# Sets up the machine, builds, and runs the main job on embedded defaults: the package walk-through
# (keygen, pack, inspect, verify, tamper, threshold signing, extract), then the server walk-through
# (aloftd on SQLite, a signed release, devices that check in, download with resume and report),
# then the device walk-through (aloft-agent on simulated A/B and backup flash: one update that
# succeeds, one whose health check fails and rolls back), then the push walk-through (a Mosquitto
# broker, agents told of a rollout over MQTT, the broker restarted mid-rollout, a gateway updating
# two sub-devices), then the vehicle walk-through (aloft-ecu-sim: a simulated car on three CAN
# buses, CAN FD and DoIP answering an identification scan through the bus hub and DoIP), and
# finally the dashboard: aloftd left running on a demo fleet, its address and a sign-in printed.
#
# Usage: scripts/demo.sh [WORK_DIRECTORY]     (default: ./demo-work)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
scripts/build.sh build/release aloft aloftd aloft-agent aloft-ecu-sim
work=${1:-demo-work}
scripts/walkthrough.sh build/release/apps/aloft/aloft "$work/package"
scripts/server_demo.sh build/release "$work/server"
scripts/agent_demo.sh build/release "$work/agent"
scripts/push_demo.sh build/release "$work/push"
scripts/vehicle_demo.sh build/release "$work/vehicle"
scripts/dashboard_demo.sh build/release "$work/dashboard"
