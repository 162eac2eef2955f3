#!/usr/bin/env bash
# Streaming check for the package tools: time and peak RSS of `aloft pack`, `aloft verify` and
# `aloft extract` on one large component (1 GiB by default), measured with /usr/bin/time -v.
# Target (issue 2): peak RSS under 64 MiB for pack and verify, whatever the image size.
#
# Usage: bench/pkg_rss.sh [SIZE_MIB] [COMPRESSION]     (defaults: 1024 zstd)
# Builds build/release if needed; works in build/bench-pkg (about 3 x SIZE of disk).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
size_mib=${1:-1024}
compression=${2:-zstd}
scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release --target aloft >/dev/null
aloft=$(pwd)/build/release/apps/aloft/aloft
work=build/bench-pkg
rm -rf "$work" && mkdir -p "$work" && cd "$work"

source "$root/bench/bench_lib.sh"
firmware_image "$size_mib" >image.bin
"$aloft" keygen --out key >/dev/null

measure() {  # measure NAME COMMAND...: prints "NAME wall_s rss_kib"
  local name=$1; shift
  /usr/bin/time -v "$@" 2> time.txt >/dev/null
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' time.txt |
         awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' time.txt)
  echo "$name $wall $rss"
}

results=()
results+=("$(measure pack "$aloft" -q pack --name big --version 1.0.0 --hardware bench \
  --component main=image.bin --compress "$compression" --key key.key -o big.aloft)")
results+=("$(measure verify "$aloft" -q verify big.aloft --trust key.pub)")
results+=("$(measure extract "$aloft" -q extract big.aloft --trust key.pub -C out)")
cmp image.bin out/main.bin

pkg_bytes=$(stat -c %s big.aloft)
printf '\naloft package tools, one %d MiB component, %s (package %d MiB), %s, %d cores\n' \
  "$size_mib" "$compression" "$((pkg_bytes >> 20))" "$(date -u +%Y-%m-%d)" "$(nproc)"
printf '| %-8s | %8s | %10s | %13s | %-10s |\n' step "wall s" "image MB/s" "peak RSS MiB" target
printf '|----------|---------:|-----------:|--------------:|------------|\n'
for r in "${results[@]}"; do
  read -r name wall rss <<<"$r"
  rate=$(awk -v s="$size_mib" -v w="$wall" 'BEGIN { printf "%.0f", (w > 0 ? s * 1.048576 / w : 0) }')
  target="< 64 MiB"
  [[ $name == extract ]] && target="-"
  printf '| %-8s | %8.2f | %10s | %13.1f | %-10s |\n' "$name" "$wall" "$rate" "$(awk -v k="$rss" 'BEGIN{print k/1024}')" "$target"
done
cd - >/dev/null
rm -rf "$work"
