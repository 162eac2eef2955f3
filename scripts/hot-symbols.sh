#!/usr/bin/env bash
# Regenerates apps/aloft/hot-symbols.txt: the functions `aloft apply` runs, in the order lld lays
# them out (docs/cli-memory.md). It runs the release CLI under callgrind on patches that exercise
# both stream codecs (zstd and LZMA2) at the default and a 16 KiB window, and keeps every function
# that executed. Rerun it when the apply path or the CLI's start-up changes much; a stale list only
# costs memory (unknown names are ignored), never correctness.
#
# Usage: scripts/hot-symbols.sh [BUILD_DIR]     (default build/release; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
command -v valgrind >/dev/null || { echo "hot-symbols: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
[[ -f $build/CMakeCache.txt ]] || cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target aloft >/dev/null
aloft=$build/apps/aloft/aloft
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Inputs: a text-like and a code-like image, 3 MiB each, changed by inserts, deletes and moves, so
# that diff picks zstd for some streams and LZMA2 for others.
python3 - "$work" <<'PY'
import random, sys
r = random.Random(5)
words = [bytes(r.choice(b"abcdefghijklmnop") for _ in range(r.randint(2, 9))) for _ in range(400)]
def text(n):
    out = bytearray()
    while len(out) < n: out += r.choice(words) + b" "
    return bytes(out[:n])
def code(n):
    return bytes(r.choice((0x48, 0x89, 0xe8, 0x8b, 0x0f, 0x00, r.randrange(256))) for _ in range(n))
for name, make in (("text", text), ("code", code)):
    old = make(3 << 20)
    new = bytearray(old)
    for _ in range(60):
        at = r.randrange(len(new))
        kind = r.randrange(3)
        if kind == 0: new[at:at] = make(r.randint(1, 40000))
        elif kind == 1: del new[at:at + r.randint(1, 300)]
        else:
            n = r.randint(1000, 20000); piece = new[at:at + n]; del new[at:at + n]
            to = r.randrange(len(new)); new[to:to] = piece
    for i in range(0, len(new) - 8, 4096): new[i] = (new[i] + 16) & 0xff
    open(f"{sys.argv[1]}/{name}.old", "wb").write(old)
    open(f"{sys.argv[1]}/{name}.new", "wb").write(bytes(new))
PY

n=0
for name in text code; do
  for window in 256K 16K; do
    n=$((n + 1))
    "$aloft" -q diff --window "$window" --from "$work/$name.old" --to "$work/$name.new" \
      -o "$work/$n.patch" >/dev/null
    valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/$n.cg" \
      "$aloft" -q apply --from "$work/$name.old" --patch "$work/$n.patch" -o "$work/$n.out" \
      >/dev/null 2>&1
    cmp "$work/$n.out" "$work/$name.new"
  done
done

# Function names from every profile; callgrind's pseudo-entries and bare addresses are dropped.
out=apps/aloft/hot-symbols.txt
{
  echo "# Functions run by aloft apply; made by scripts/hot-symbols.sh (docs/cli-memory.md)."
  for f in "$work"/*.cg; do
    callgrind_annotate --auto=no --threshold=100 "$f"
  done | grep -E '^ *[0-9,]+ \(' | grep -v 'PROGRAM TOTALS' |
    sed -E 's/^ *[0-9,]+ \( *[0-9.]+%\)  //; s/ \[[^]]*\]$//; s/^[^:]*://' |
    grep -vE '^(\(below main\)|0x[0-9a-f]+)' | sort -u
} >"$out"
echo "hot-symbols: $(($(wc -l <"$out") - 1)) functions -> $out"
