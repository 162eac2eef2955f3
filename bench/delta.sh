#!/usr/bin/env bash
# The delta engines side by side on the public corpus of issue 5: for each pair, the patch size,
# its share of the new file, diff time and peak RSS, apply time and peak RSS, for bsdiff,
# `xdelta3 -9 -S lzma`, `zstd -19 --long --patch-from`, `aloft diff` (default settings) and
# aloft-16K (`aloft diff --window 16K`, the small-window setting for small devices). Every applied
# result is compared byte for byte with the new file; a mismatch fails the bench. Apply figures are
# the worst of three runs.
#
# The corpus (Debian packages and npm tarballs, ~20 MB) is downloaded once into the cache.
#
# Usage: bench/delta.sh [CACHE_DIR]     (default build/delta-corpus)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cache=$(realpath -m "${1:-build/delta-corpus}")
scripts/setup.sh --delta-bench
mkdir -p "$cache/dl" "$cache/pairs"

# fetch_deb NAME VERSION FILE_IN_PACKAGE OUT
fetch_deb() {
  local deb
  deb=$(ls "$cache/dl/$1_${2//:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
  if [[ -z $deb ]]; then
    (cd "$cache/dl" && apt-get download "$1=$2" >/dev/null 2>&1) ||
      { echo "bench: cannot download $1=$2 (apt-get update?)" >&2; exit 1; }
    deb=$(ls "$cache/dl/$1_${2//:/%3a}_"*.deb | head -n1)
  fi
  local x="$cache/dl/x-$1-$2"
  [[ -d $x ]] || dpkg-deb -x "$deb" "$x"
  cp "$x/$3" "$4"
}
# fetch_npm NAME VERSION FILE_IN_PACKAGE OUT [FILE_IN_ZIP]
fetch_npm() {
  local tgz="$cache/dl/$(echo "$1" | tr -d @ | tr / -)-$2.tgz"
  if [[ ! -f $tgz ]]; then
    (cd "$cache/dl" && npm pack --silent "$1@$2" >/dev/null) ||
      { echo "bench: cannot download $1@$2 from npm" >&2; exit 1; }
  fi
  local x="$cache/dl/x-$(basename "$tgz" .tgz)"
  [[ -d $x ]] || { mkdir -p "$x" && tar -xzf "$tgz" -C "$x"; }
  if [[ -n ${5:-} ]]; then
    python3 -c "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))" \
      "$x/$3" "$5" >"$4"
  else
    cp "$x/$3" "$4"
  fi
}

pair() { mkdir -p "$cache/pairs/$1"; echo "$cache/pairs/$1"; }
p=$(pair libcrypto.so.3)
[[ -f $p/new ]] || {
  fetch_deb libssl3 3.0.20-1~deb12u2 usr/lib/x86_64-linux-gnu/libcrypto.so.3 "$p/old"
  fetch_deb libssl3 3.0.22-1~deb12u2 usr/lib/x86_64-linux-gnu/libcrypto.so.3 "$p/new"
}
p=$(pair sshd)
[[ -f $p/new ]] || {
  fetch_deb openssh-server 1:9.2p1-2+deb12u9 usr/sbin/sshd "$p/old"
  fetch_deb openssh-server 1:9.2p1-2+deb12u10 usr/sbin/sshd "$p/new"
}
p=$(pair primehub)
[[ -f $p/new ]] || {
  fetch_npm @pybricks/firmware 7.27.0 package/build/primehub.zip "$p/old" firmware-base.bin
  fetch_npm @pybricks/firmware 7.28.0 package/build/primehub.zip "$p/new" firmware-base.bin
}
p=$(pair esbuild)
[[ -f $p/new ]] || {
  fetch_npm @esbuild/linux-x64 0.28.1 package/bin/esbuild "$p/old"
  fetch_npm @esbuild/linux-x64 0.28.2 package/bin/esbuild "$p/new"
}

# The release CLI, configured and brought up to date here.
aloft=$root/build/release/apps/aloft/aloft
[[ -f build/release/CMakeCache.txt ]] ||
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release --target aloft >/dev/null

# measure OUT_VAR COMMAND...: runs it under /usr/bin/time; sets "<seconds> <max RSS KiB>".
measure() {
  local var=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" ||
    { cat "$work/err" >&2; echo "bench: failed: $*" >&2; exit 1; }
  printf -v "$var" '%s' "$(tail -n1 "$work/time")"
}

# measure_apply OUT_VAR COMMAND...: three runs; the slowest time and the largest peak RSS. A
# process's RSS varies by a few hundred KiB from run to run (address randomization moves shared
# libraries across the kernel's 64 KiB fault-around blocks), so one run could flatter.
measure_apply() {
  local var=$1 t=0 m=0 run; shift
  for run in 1 2 3; do
    measure run "$@"
    t=$(awk -v a="$t" -v b="${run% *}" 'BEGIN { print (b > a ? b : a) }')
    ((${run#* } > m)) && m=${run#* }
  done
  printf -v "$var" '%s %s' "$t" "$m"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rows=()
for name in libcrypto.so.3 sshd primehub esbuild; do
  old=$cache/pairs/$name/old new=$cache/pairs/$name/new
  tools=(bsdiff xdelta3 zstd aloft aloft-16K)
  for tool in "${tools[@]}"; do
    patch=$work/$tool.patch out=$work/$tool.out
    rm -f "$patch" "$out"
    case $tool in
      bsdiff)
        measure d bsdiff "$old" "$new" "$patch"
        measure_apply a bspatch "$old" "$out" "$patch" ;;
      xdelta3)
        measure d xdelta3 -9 -S lzma -e -f -s "$old" "$new" "$patch"
        measure_apply a xdelta3 -d -f -s "$old" "$patch" "$out" ;;
      zstd)
        long=$(python3 -c "import math,os,sys; print(max(10, math.ceil(math.log2(max(os.path.getsize(sys.argv[1]), os.path.getsize(sys.argv[2]))))))" "$old" "$new")
        measure d zstd -q -f -19 --long="$long" --patch-from="$old" "$new" -o "$patch"
        measure_apply a zstd -q -f -d --long="$long" --patch-from="$old" "$patch" -o "$out" ;;
      aloft)
        measure d "$aloft" -q diff --from "$old" --to "$new" -o "$patch"
        measure_apply a "$aloft" -q apply --from "$old" --patch "$patch" -o "$out" ;;
      aloft-16K)  # the small-window setting: 16 KiB decoder windows (and 64 KiB segments)
        measure d "$aloft" -q diff --window 16K --from "$old" --to "$new" -o "$patch"
        measure_apply a "$aloft" -q apply --max-window 16K --from "$old" --patch "$patch" \
          -o "$out" ;;
    esac
    cmp -s "$out" "$new" || { echo "bench: $tool on $name: the applied result differs from new" >&2; exit 1; }
    rows+=("$name $(stat -c %s "$new") $tool $(stat -c %s "$patch") $d $a")
  done
done

printf '%s\n' "${rows[@]}" | python3 -c '
import sys
print("| pair | new bytes | tool | patch bytes | % of new | diff s | diff peak RSS | apply s | apply peak RSS |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
for line in sys.stdin:
    name, new, tool, patch, ds, drss, as_, arss = line.split()
    new, patch = int(new), int(patch)
    print(f"| {name} | {new:,} | {tool} | {patch:,} | {100 * patch / new:.2f} | {float(ds):.2f} "
          f"| {int(drss) / 1024:.1f} MiB | {float(as_):.2f} | {int(arss) / 1024:.1f} MiB |")
'
