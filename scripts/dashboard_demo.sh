#!/usr/bin/env bash
# The dashboard walk-through: builds the front end (scripts/web.sh), starts aloftd on a demo
# fleet with the dashboard, prints its address and a sign-in, and leaves it running; devices of
# the demo rollout report for a minute so that open pages move (docs/dashboard.md).
#
# Usage: scripts/dashboard_demo.sh BUILD_DIR WORK_DIRECTORY [PORT]
set -euo pipefail
build=$(realpath "$1")
work=$(realpath -m "$2")
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/web.sh" build
if [[ -f $work/aloftd.pid ]]; then kill "$(cat "$work/aloftd.pid")" 2>/dev/null || true; sleep 0.5; fi
rm -rf "$work" && mkdir -p "$work"
cd "$root/web"
ALOFT_BUILD=$build node tools/demo.mjs "$work" "${3:-8080}"
