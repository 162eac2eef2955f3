#!/usr/bin/env bash
# A real hawkBit client, unchanged: Debian's SWUpdate with its suricatta hawkBit daemon polls
# aloftd's DDI API with a target token, downloads a signed .swu, installs it (a raw file handler
# into a directory standing in for the root file system) and, after the "reboot", confirms it.
# Then a .swu whose payload does not match its sw-description: SWUpdate reports the failure.
# (Cancel is tested with a client written from the hawkBit documentation, in ddi_test.)
# Usage: ddi_swupdate.sh ALOFTD ALOFT WORKDIR   (needs swupdate, cpio, openssl; else exits 77)
set -euo pipefail
ALOFTD=$1 ALOFT=$2 work=$3
source "$(dirname "$0")/server_lib.sh"
for tool in swupdate cpio openssl curl python3; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (scripts/setup.sh)"; exit 77; }
done
rm -rf "$work" && mkdir -p "$work/rootfs" "$work/tmp"
trap 'kill ${srv_PID:-} ${swu_PID:-} 2>/dev/null || true' EXIT
export TMPDIR=$work/tmp  # SWUpdate's control sockets and scratch files, apart from any other

# make_swu NAME VERSION PAYLOAD [SHA256]: a CMS-signed .swu whose one raw file goes to
# $work/rootfs/fw-version; SHA256 (default: the payload's) is what sw-description promises.
make_swu() {
  local name=$1 version=$2 payload=$3 sha=${4:-}
  local d="$work/swu-$name"
  mkdir -p "$d"
  printf '%s\n' "$payload" >"$d/fw-version"
  [[ -n "$sha" ]] || sha=$(sha256sum "$d/fw-version" | cut -d' ' -f1)
  cat >"$d/sw-description" <<EOF
software =
{
	version = "$version";
	description = "Aloft DDI test";
	hardware-compatibility: [ "1.0" ];
	files: (
		{
			filename = "fw-version";
			path = "$work/rootfs/fw-version";
			sha256 = "$sha";
		}
	);
}
EOF
  openssl cms -sign -in "$d/sw-description" -out "$d/sw-description.sig" -signer "$work/swu.crt" \
    -inkey "$work/swu.key" -outform DER -nosmimecap -binary
  (cd "$d" && printf 'sw-description\nsw-description.sig\nfw-version\n' | cpio -o -H crc --quiet) \
    >"$work/$name.swu"
}

# action_state ID: the action's state, through the operator API.
action_state() {
  curl -sf -H "Authorization: Bearer $ALOFT_TOKEN" "$srv_URL/api/v1/actions/$1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'
}

# wait_state ID STATE...: waits up to 60 s for the action to reach one of the states.
wait_state() {
  local id=$1; shift
  local s=""
  for _ in $(seq 1 600); do
    s=$(action_state "$id")
    for want in "$@"; do [[ "$s" == "$want" ]] && return 0; done
    kill -0 "$swu_PID" 2>/dev/null || { tail -n 40 "$work/swupdate.log" >&2; fail "SWUpdate exited"; }
    sleep 0.1
  done
  tail -n 40 "$work/swupdate.log" >&2
  fail "action $id is $s, expected $*"
}

step "keys for SWUpdate's signed images, and two .swu files"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/swu.key" -out "$work/swu.crt" -days 30 \
  -subj "/CN=aloft-ddi-test" -addext "extendedKeyUsage=emailProtection" 2>/dev/null
make_swu good 2.0.0 "firmware 2.0.0"
make_swu bad 2.1.0 "firmware 2.1.0" "$(printf 'ab%.0s' $(seq 1 32))"

step "aloftd; a device type, a device, the .swu files as releases"
start_aloftd srv --data "$work/data"
export ALOFT_TOKEN=$(cat "$work/data/admin.token") ALOFT_URL=$srv_URL
"$ALOFT" server device-type add gateway-x >/dev/null
token=$("$ALOFT" server device add gw-1 --type gateway-x | tail -n1)
"$ALOFT" -q server upload "$work/good.swu" --name fw --version 2.0.0 --device-type gateway-x >/dev/null
"$ALOFT" -q server upload "$work/bad.swu" --name fw --version 2.1.0 --device-type gateway-x >/dev/null
id=$("$ALOFT" server --json deploy fw@2.0.0 --device gw-1 |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["actions"][0]["id"])')

# run_swupdate ARGS...: SWUpdate with its suricatta hawkBit daemon (tenant default, this device's
# target token, polling every second) in the background; its post-update command, which on a
# device reboots, leaves a mark.
run_swupdate() {
  rm -f "$work/post-update"
  swupdate -v -k "$work/swu.crt" -H board:1.0 -p "touch $work/post-update" \
    -u "-t default -u $srv_URL -i gw-1 -k $token -p 1 -r 3 -w 1 $*" >>"$work/swupdate.log" 2>&1 &
  swu_PID=$!
}
stop_swupdate() { kill "$swu_PID" 2>/dev/null || true; wait "$swu_PID" 2>/dev/null || true; }

step "SWUpdate's suricatta polls aloftd, downloads and installs, then awaits the reboot"
run_swupdate
for _ in $(seq 1 600); do [[ -e "$work/post-update" ]] && break; sleep 0.1; done
[[ -e "$work/post-update" ]] || { tail -n 40 "$work/swupdate.log" >&2; fail "SWUpdate did not install"; }
[[ "$(cat "$work/rootfs/fw-version")" == "firmware 2.0.0" ]] || fail "the payload was not installed"
state=$(action_state "$id")
[[ $state == downloading || $state == installing ]] || fail "before the reboot the action is $state"

step "the 'reboot': SWUpdate starts again and confirms the update (-c 2)"
stop_swupdate
run_swupdate -c 2
wait_state "$id" succeeded failed
[[ $(action_state "$id") == succeeded ]] || { tail -n 40 "$work/swupdate.log" >&2; fail "action $id failed"; }
stop_swupdate
"$ALOFT" server --json device show gw-1 | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["versions"] == {"main": "2.0.0"}, d["versions"]
assert d["last_seen"], d'

step "a .swu whose payload does not match: SWUpdate refuses it and says so"
id=$("$ALOFT" server --json deploy fw@2.1.0 --device gw-1 |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["actions"][0]["id"])')
run_swupdate
wait_state "$id" failed succeeded
[[ $(action_state "$id") == failed ]] || fail "a corrupt .swu was reported installed"
[[ "$(cat "$work/rootfs/fw-version")" == "firmware 2.0.0" ]] || fail "the corrupt payload was installed"
"$ALOFT" server --json action show "$id" | python3 -c '
import json, sys
a = json.load(sys.stdin)
assert any("sha256" in e["details"].lower() or "hash" in e["details"].lower() for e in a["events"]), \
    [e["details"][:80] for e in a["events"]]'

step "aloftd answered no request with a 5xx"
grep -q ' -> 5' "$work/srv.log" && { cat "$work/srv.log" >&2; fail "aloftd answered 5xx"; }
echo "PASS"
