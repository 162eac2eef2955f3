#!/usr/bin/env bash
# Makes the demo car's vehicle bundle in the current directory: the description of
# examples/demo-car-bundle.toml, an image per ECU (aloft-ecu-sim image: A/B ECUs 192 KiB,
# single-bank ones 96 KiB), a signing key pair (release.key, release.pub) and car.aloft. Prints
# "ECU VERSION SIZE" per ECU into images.txt. Used by scripts/vehicle_demo.sh and bench/vehicle.sh.
#
# Usage: scripts/vehicle_bundle.sh BUILD_DIR
set -euo pipefail
build=$(realpath "$1")
root=$(realpath "$(dirname "$0")/..")
cp "$root/examples/demo-car-bundle.toml" bundle.toml
mkdir -p images
/usr/bin/python3 - bundle.toml >images.txt <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    for e in tomllib.load(f)["ecu"]:
        size = 196608 if e.get("install") == "uds-ab" else 98304
        print(e["name"], e["version"], size)
PY
while read -r name version size; do
  "$build/apps/aloft-ecu-sim/aloft-ecu-sim" image --version "$version" --part "${name^^}" \
    --size "$size" --seed "${#name}" -o "images/$name.bin" >/dev/null
done <images.txt
"$build/apps/aloft/aloft" keygen --out release >/dev/null
"$build/apps/aloft/aloft" bundle bundle.toml --key release.key -o car.aloft
