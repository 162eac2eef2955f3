#!/usr/bin/env bash
# Builds quietly: one progress line instead of a line per compiled file (on a terminal it is
# rewritten in place; in a log, it appears at each quarter). On failure it shows the compiler's
# output that matters: every line of the failed steps.
#
# Usage: scripts/build.sh BUILD_DIR [TARGET...]     (configure BUILD_DIR first)
set -euo pipefail
dir=${1:?usage: scripts/build.sh BUILD_DIR [TARGET...]}
shift
targets=()
for t in "$@"; do targets+=(--target "$t"); done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
tty=0
[[ -t 1 ]] && tty=1
start=$SECONDS
status=0
cmake --build "$dir" "${targets[@]}" >"$log" 2>&1 &
pid=$!
shown=-1
while kill -0 "$pid" 2>/dev/null; do
  sleep 0.5
  line=$(grep -aoE '^\[[0-9]+/[0-9]+\]' "$log" | tail -n1 || true)
  [[ -z $line ]] && continue
  n=${line#[}; n=${n%%/*}; total=${line##*/}; total=${total%]}
  if ((tty)); then
    printf '\rbuild %s: %d of %d steps' "$dir" "$n" "$total"
  elif ((n * 4 / total > shown)); then
    shown=$((n * 4 / total))
    echo "build $dir: $n of $total steps"
  fi
done
wait "$pid" || status=$?
((tty)) && printf '\r\033[K'
if ((status != 0)); then
  echo "build $dir: FAILED (exit $status); the failed steps:" >&2
  awk '/^FAILED: /{show=1} /^\[[0-9]+\/[0-9]+\]/{show=0} show' "$log" >&2
  grep -q '^FAILED: ' "$log" || tail -n 40 "$log" >&2
  exit "$status"
fi
if grep -q 'no work to do' "$log"; then
  echo "build $dir: up to date"
else
  echo "build $dir: done in $((SECONDS - start)) s"
fi
