#!/usr/bin/env bash
# The agent's memory and install speed on a large update: aloftd serves a 100 MiB release, and
# `aloft-agent --once` downloads, verifies, installs into the ab layout on a simulated 256 MiB NOR
# flash with NXP C55 timing (256 KiB erase blocks: erase 884 ms, program 552 ms), reboots
# (simulated), confirms and reports. Prints peak RSS (target, issue 4: under 16 MiB) and the
# install throughput against the simulated flash's own limit.
#
# Usage: bench/agent.sh [SIZE_MIB]     (default 100)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
size_mib=${1:-100}
scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release --target aloft aloftd aloft-agent >/dev/null
bin=$(pwd)/build/release/apps
work=build/bench-agent
rm -rf "$work" && mkdir -p "$work" && cd "$work"

source "$root/bench/bench_lib.sh"
firmware_image "$size_mib" >image.bin
head -c 1M /dev/urandom >factory.bin
"$bin/aloft/aloft" keygen --out key >/dev/null
"$bin/aloft/aloft" -q pack --name fw --version 2.0.0 --hardware board-a --component main=image.bin \
  --key key.key -o fw.aloft >/dev/null

ALOFTD=$bin/aloftd/aloftd work=$PWD
source "$root/tests/system/server_lib.sh"  # start_aloftd
trap 'kill ${srv_PID:-} 2>/dev/null || true' EXIT
start_aloftd srv --data data --trust key.pub
S=("$bin/aloft/aloft" server --url "$srv_URL" --token "$(cat data/admin.token)")
"${S[@]}" device-type add board-a >/dev/null
"${S[@]}" upload fw.aloft >/dev/null
"${S[@]}" device add dev --type board-a | tail -n1 >dev.token
cat >agent.toml <<TOML
server = "$srv_URL"
device = "dev"
token_file = "$PWD/dev.token"
device_type = "board-a"
state_dir = "$PWD/state"
[trust]
keys = ["$PWD/key.pub"]
[[module]]
name = "main"
layout = "ab"
flash = "$PWD/state/main.flash"
flash_size = 268435456
erase_block = 262144
write_unit = 8
TOML
"$bin/aloft-agent/aloft-agent" -c agent.toml provision --image factory.bin --version 1.0.0 >/dev/null
"${S[@]}" deploy fw@2.0.0 --device dev >/dev/null

# Peak RSS from the kernel (VmHWM), and the peak of its private part (RssAnon: heap, stacks;
# the rest is shared library code in the page cache), sampled every 2 ms.
cat >sample.py <<'PY'
import subprocess, sys, time
out, err = open("agent.out", "w"), open("agent.err", "w")
start = time.monotonic()
p = subprocess.Popen(sys.argv[1:], stdout=out, stderr=err)
hwm = anon = 0
while p.poll() is None:
    try:
        for line in open(f"/proc/{p.pid}/status"):
            k, _, v = line.partition(":")
            if k == "VmHWM": hwm = max(hwm, int(v.split()[0]))
            if k == "RssAnon": anon = max(anon, int(v.split()[0]))
    except (FileNotFoundError, ProcessLookupError):
        pass
    time.sleep(0.002)
print(hwm, anon, time.monotonic() - start, p.returncode)
PY
read -r rss_kib anon_kib wall rc < <(python3 sample.py "$bin/aloft-agent/aloft-agent" -c agent.toml --once)
grep -q "update succeeded" agent.out || { cat agent.out agent.err; echo "bench: the update failed (exit $rc)" >&2; exit 1; }
read -r ops flash_s < <(sed -n 's/^flash (simulated): \([0-9]*\) erase\/program operations, \([0-9.]*\) s$/\1 \2/p' agent.err)
pkg_bytes=$(stat -c %s fw.aloft)
image_bytes=$(stat -c %s image.bin)
python3 - "$rss_kib" "$anon_kib" "$wall" "$ops" "$flash_s" "$pkg_bytes" "$image_bytes" <<'PY'
import sys
rss_kib, anon_kib, wall, ops, flash_s, pkg, image = sys.argv[1:]
rss_mib = int(rss_kib) / 1024
wall_s = float(wall)
flash_s = float(flash_s)
image = int(image)
block = 256 * 1024
blocks = -(-image // block)
limit_s = blocks * (0.884 + 0.552)  # erase and program each block of the image once
print()
print("| measure | value | target |")
print("|---|---|---|")
print(f"| update | {image / 2**20:.0f} MiB image, {int(pkg) / 2**20:.1f} MiB package, ab layout, C55 timing | |")
print(f"| peak RSS of aloft-agent --once (VmHWM) | **{rss_mib:.1f} MiB** | < 16 MiB |")
print(f"| of which private (peak RssAnon; the rest is shared library code) | {int(anon_kib) / 1024:.1f} MiB | |")
print(f"| host wall time (download, verify, install, reboot, confirm, report) | {wall_s:.1f} s | |")
print(f"| simulated flash time, whole update ({ops} erase/program operations) | {flash_s:.1f} s | |")
print(f"| flash limit: erase + program each image block once ({blocks} blocks) | {limit_s:.1f} s | |")
print(f"| install throughput (simulated) | {image / 1024 / flash_s:.1f} KiB/s vs limit {image / 1024 / limit_s:.1f} KiB/s = **{limit_s / flash_s:.2f}** of the flash's limit | |")
PY
