#!/usr/bin/env bash
# Two aloftd on one PostgreSQL run one rollout engine between them. The leader is killed with
# kill -9 in the middle of a wave, twice; the other takes over after the lease, and in the end
# every device got exactly one action, every action succeeded and the rollout finished.
# Usage: rollout_leader_kill9.sh ALOFTD ALOFT WORKDIR   (needs ALOFT_TEST_PG_URL; 77 = skipped)
set -euo pipefail
ALOFTD=$1 ALOFT=$2 work=$3
source "$(dirname "$0")/server_lib.sh"
pg_schema lead
rm -rf "$work" && mkdir -p "$work"
trap 'kill -9 ${a_PID:-} ${b_PID:-} 2>/dev/null || true' EXIT
cat >"$work/aloftd.toml" <<EOF
rollout_tick_ms = 50
rollout_lease_s = 2
EOF
devices=120

start() {  # start NAME: (re)starts server NAME on the shared database
  start_aloftd "$1" --config "$work/aloftd.toml" --data "$work/$1" --database "$DB" \
    --artifacts "$work/artifacts"
}
leads() {  # leads NAME: server NAME's log last says it leads
  [[ -f "$work/$1.log" ]] && grep "rollout engine:" "$work/$1.log" | tail -n1 |
    grep -q "this server leads"
}
leader() {  # the name of a server that says it leads, or ""
  local n
  for n in a b; do leads "$n" && { echo "$n"; return; }; done
  echo ""
}
url_of() { local v="${1}_URL"; echo "${!v}"; }
pid_of() { local v="${1}_PID"; echo "${!v}"; }

step "A and B on one database; a fleet of $devices devices"
start a
export ALOFT_TOKEN=$(cat "$work/a/admin.token")
start b
"$ALOFT" server --url "$a_URL" device-type add board-a >/dev/null
head -c 100000 /dev/urandom >"$work/app.bin"
"$ALOFT" -q server --url "$a_URL" upload "$work/app.bin" --name app --version 2.0.0 \
  --device-type board-a >/dev/null
declare -A tok
for i in $(seq 1 $devices); do
  tok[d$i]=$("$ALOFT" server --url "$a_URL" device add "d$i" --type board-a --group field |
    tail -n1)
done

# One round: every device checks in through URL; a device with an action reports success.
# Stops after `limit` successes when given.
drive() {
  local url=$1 limit=${2:-1000000} done=0 d id
  for i in $(seq 1 $devices); do
    d=d$i
    id=$(curl -sf -X POST -H "Authorization: Bearer ${tok[$d]}" -d '{"versions":{"main":"1.0.0"}}' \
      "$url/device/v1/$d/check-in" | grep -o '"id":[0-9]*' | head -n1 | cut -d: -f2 || true)
    [[ -n "$id" ]] || continue
    for st in downloading downloaded installing installed success; do
      curl -sf -o /dev/null -X POST -H "Authorization: Bearer ${tok[$d]}" \
        -d "{\"status\":\"$st\"}" "$url/device/v1/$d/actions/$id/feedback" ||
        fail "$d: feedback $st on action $id refused"
    done
    done=$((done + 1))
    [[ $done -ge $limit ]] && break
  done
  echo "$done"
}
state() { "$ALOFT" server --url "$1" --json rollout status r1 | grep -o '"state": "[a-z-]*"' |
  head -n1 | cut -d'"' -f4; }
wave() { "$ALOFT" server --url "$1" --json rollout status r1 | grep -o '"wave": [0-9]*' | head -n1 |
  cut -d' ' -f2; }

step "a rollout of four waves of 30, each needing every device to succeed"
"$ALOFT" server --url "$a_URL" rollout create r1 --release app@2.0.0 --group field \
  --wave 30:success=100 --wave 30:success=100 --wave 30:success=100 --wave rest:success=100 \
  >/dev/null
for _ in $(seq 1 100); do [[ -n "$(leader)" ]] && break; sleep 0.1; done
[[ -n "$(leader)" ]] || fail "no server leads"

for round in 1 2; do
  L=$(leader)
  F=$([[ $L == a ]] && echo b || echo a)
  step "round $round: $L leads; devices finish the current wave and half the next"
  w0=$(wave "$(url_of "$F")")
  until [[ "$(wave "$(url_of "$F")")" -gt "$w0" ]]; do
    drive "$(url_of "$F")" >/dev/null
    sleep 0.1
  done
  drive "$(url_of "$F")" 15 >/dev/null
  step "kill -9 $L (pid $(pid_of "$L"))"
  kill -9 "$(pid_of "$L")"
  wait "$(pid_of "$L")" 2>/dev/null || true
  for _ in $(seq 1 100); do leads "$F" && break; sleep 0.1; done
  leads "$F" || fail "$F did not take over after the lease"
  mv "$work/$L.log" "$work/$L.log.$round"
  start "$L"  # back, as a follower
done

step "the survivors drive the rollout to its end"
for _ in $(seq 1 60); do
  [[ "$(state "$a_URL")" == finished ]] && break
  drive "$a_URL" >/dev/null
  sleep 0.2
done
"$ALOFT" server --url "$b_URL" rollout status r1
[[ "$(state "$b_URL")" == finished ]] || fail "the rollout did not finish"

step "each device got exactly one action, and it succeeded"
"$ALOFT" server --url "$a_URL" --json actions list --limit 1000 >"$work/actions.json"
total=$(grep -c '"device":' "$work/actions.json")
[[ $total -eq $devices ]] || fail "expected $devices actions, found $total"
dups=$(grep -o '"device": "d[0-9]*"' "$work/actions.json" | sort | uniq -d)
[[ -z "$dups" ]] || fail "devices with more than one action: $dups"
ok=$(grep -c '"state": "succeeded"' "$work/actions.json")
[[ $ok -eq $devices ]] || fail "expected $devices succeeded actions, found $ok"
echo "PASS"
