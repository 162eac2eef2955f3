#!/usr/bin/env bash
# Sets up the machine, builds aloft, and runs the main job on embedded defaults: for now the
# package walk-through (keygen, pack, inspect, verify, tamper, threshold signing, extract).
#
# Usage: scripts/demo.sh [WORK_DIRECTORY]     (default: ./demo-work)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release --target aloft
scripts/walkthrough.sh build/release/apps/aloft/aloft "${1:-demo-work}"
