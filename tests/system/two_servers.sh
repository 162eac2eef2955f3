#!/usr/bin/env bash
# Two aloftd processes on one PostgreSQL serve one fleet: what is done through one is seen
# through the other, and racing deployments still give each device one open action.
# Usage: two_servers.sh ALOFTD ALOFT WORKDIR   (needs ALOFT_TEST_PG_URL; exits 77 = skipped)
set -euo pipefail
ALOFTD=$1 ALOFT=$2 work=$3
source "$(dirname "$0")/server_lib.sh"
pg_schema two
db=$DB
rm -rf "$work" && mkdir -p "$work"
trap 'kill ${a_PID:-} ${b_PID:-} 2>/dev/null || true' EXIT

step "start A and B at once on one database and one artifact directory"
start_aloftd a --data "$work/a" --database "$db" --artifacts "$work/artifacts" &
start_aloftd b --data "$work/b" --database "$db" --artifacts "$work/artifacts" &
wait
# (re-read PIDs and URLs: the subshells above could not set them here)
start_url() { sed -n 's/.*(port \([0-9]*\),.*/http:\/\/127.0.0.1:\1/p' "$work/$1.log" | head -n1; }
A=$(start_url a) B=$(start_url b)
a_PID=$(pgrep -f -- "--data $work/a " || true) b_PID=$(pgrep -f -- "--data $work/b " || true)
tokens=$(find "$work/a" "$work/b" -name admin.token | wc -l)
[[ $tokens -eq 1 ]] || fail "expected exactly one admin.token, found $tokens"
export ALOFT_TOKEN=$(cat "$work"/*/admin.token)

step "through A: device type, release, three devices, a deployment"
"$ALOFT" server --url "$A" device-type add board-a >/dev/null
head -c 2000000 /dev/urandom >"$work/app.bin"
"$ALOFT" -q server --url "$A" upload "$work/app.bin" --name app --version 2.0.0 --device-type board-a >/dev/null
declare -A tok
for d in d1 d2 d3; do
  tok[$d]=$("$ALOFT" server --url "$A" device add "$d" --type board-a --group lab | tail -n1)
done
"$ALOFT" server --url "$A" deploy app@2.0.0 --group lab | grep -c '^action' | grep -qx 3 ||
  fail "deploy did not create three actions"

step "through B: devices check in, download, report"
for d in d1 d2 d3; do
  r=$(curl -sf -H "Authorization: Bearer ${tok[$d]}" -d '{"versions":{"main":"1.0.0"}}' "$B/device/v1/$d/check-in")
  id=$(echo "$r" | python3 -c 'import json,sys; print(json.load(sys.stdin)["action"]["id"])')
  curl -sf -H "Authorization: Bearer ${tok[$d]}" -o "$work/$d.bin" "$B/device/v1/$d/actions/$id/artifact"
  cmp -s "$work/$d.bin" "$work/app.bin" || fail "$d downloaded different bytes through B"
  curl -sf -H "Authorization: Bearer ${tok[$d]}" -d '{"status":"success"}' "$B/device/v1/$d/actions/$id/feedback" >/dev/null
done

step "through A: every action succeeded, every device runs 2.0.0"
"$ALOFT" server --url "$A" --json stats | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["actions_by_state"] == {"succeeded": 3}, s
assert s["devices_by_version"]["board-a"]["main"]["2.0.0"] == 3, s'

step "racing deployments through A and B: one open action per device"
"$ALOFT" -q server --url "$A" upload "$work/app.bin" --name app --version 2.0.1 --device-type board-a >/dev/null 2>&1 ||
  true  # same bytes, new version: the artifact is shared
for i in 1 2 3 4; do
  "$ALOFT" server --url "$A" deploy app@2.0.1 --group lab >"$work/race-a$i" &
  "$ALOFT" server --url "$B" deploy app@2.0.1 --group lab >"$work/race-b$i" &
done
wait
created=$(cat "$work"/race-* | grep -c '^action' || true)
[[ $created -eq 3 ]] || fail "racing deployments created $created actions, expected 3"
echo "PASS"
