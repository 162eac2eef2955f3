#!/usr/bin/env bash
# Makes the demo car's vehicle bundle in the current directory: the description of
# examples/demo-car-bundle.toml, an image per ECU (aloft-ecu-sim image: A/B ECUs 192 KiB,
# single-bank ones 96 KiB), a signing key pair (release.key, release.pub, unless there) and
# car.aloft. Prints "ECU VERSION SIZE" per ECU into images.txt. Used by scripts/vehicle_demo.sh and bench/vehicle.sh.
#
# With N (default 0), every ECU's patch number and the bundle's grow by N: bundle-N.toml,
# images-N/, images-N.txt and car-N.aloft instead (a later release of the same car: the same
# image bodies under new versions, so that a delta between releases is small).
#
# Usage: scripts/vehicle_bundle.sh BUILD_DIR [N]
set -euo pipefail
build=$(realpath "$1")
n=${2:-0}
root=$(realpath "$(dirname "$0")/..")
sfx=$([[ $n == 0 ]] || echo "-$n")
mkdir -p "images$sfx"
/usr/bin/python3 - "$root/examples/demo-car-bundle.toml" "$n" "bundle$sfx.toml" "images$sfx" \
  >"images$sfx.txt" <<'PY'
import re, sys, tomllib
src, n, out, images = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
text = open(src).read()
bump = lambda m: m.group(1) + str(int(m.group(2)) + n) + '"'
text = re.sub(r'^(version = "[0-9]+\.[0-9]+\.)([0-9]+)"', bump, text, flags=re.M)
text = text.replace('image = "images/', 'image = "' + images + '/')
open(out, "w").write(text)
for e in tomllib.loads(text)["ecu"]:
    size = 196608 if e.get("install") == "uds-ab" else 98304
    print(e["name"], e["version"], size)
PY
while read -r name version size; do
  "$build/apps/aloft-ecu-sim/aloft-ecu-sim" image --version "$version" --part "${name^^}" \
    --size "$size" --seed "${#name}" -o "images$sfx/$name.bin" >/dev/null
done <"images$sfx.txt"
[[ -f release.key ]] || "$build/apps/aloft/aloft" keygen --out release >/dev/null
"$build/apps/aloft/aloft" bundle "bundle$sfx.toml" --key release.key -o "car$sfx.aloft"
