#!/usr/bin/env bash
# The device walk-through: a real aloftd, two aloft-agents on simulated NOR flash (one with the ab
# layout, one with the backup layout) and one Linux-style agent with the file layout (slots are
# files, a U-Boot-like bootloader script), one update that succeeds and one whose health check
# fails and rolls back. The server's view is checked after each. Used by scripts/demo.sh and by the CTest
# system test "agent_e2e".
#
# Usage: scripts/agent_demo.sh BUILD_DIR WORK_DIRECTORY
set -euo pipefail
build=$(realpath "$1")
root=$(realpath "$(dirname "$0")/..")
aloft=$build/apps/aloft/aloft
aloftd=$build/apps/aloftd/aloftd
agent=$build/apps/aloft-agent/aloft-agent
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"

ALOFTD=$aloftd
source "$root/tests/system/server_lib.sh"  # start_aloftd
DEMO="agent demo"
source "$root/scripts/demo_lib.sh"  # step, fail, run, json

step "1. A release key, a factory image 1.0.0 and two releases: 1.1.0 (good) and 1.2.0 (unhealthy)"
run "$aloft" keygen --out keys/release >/dev/null
for v in 1.0.0 1.1.0 1.2.0; do head -c 300000 /dev/urandom >"image-$v.bin"; done
for v in 1.1.0 1.2.0; do
  run "$aloft" -q pack --name fw --version "$v" --hardware board-a --component "main=image-$v.bin" \
    --key keys/release.key -o "fw-$v.aloft"
done

step "2. aloftd on embedded defaults"
work=$PWD
trap 'kill ${srv_PID:-} 2>/dev/null || true' EXIT
start_aloftd srv --data data --trust keys/release.pub
url=$srv_URL
admin=$(cat data/admin.token)
S=("$aloft" server --url "$url" --token "$admin")
srv() { printf '$ aloft server %s\n' "$*"; "${S[@]}" "$@"; }
api() { curl -sf -H "Authorization: Bearer $admin" "$url/api/v1/$1"; }
srv device-type add board-a
srv upload fw-1.1.0.aloft
srv upload fw-1.2.0.aloft

# agent_toml DEVICE STATE_DIR [TOP_LEVEL_KEYS] <MODULE_KEYS: a demo device's agent config.
agent_toml() {
  cat <<TOML
server = "$url"
device = "$1"
token_file = "$PWD/$1.token"
device_type = "board-a"
state_dir = "$2"
# The new image must prove itself: 1.2.0 does not.
health_check = 'test "\$ALOFT_VERSION" != 1.2.0'
tries = 3
${3:-}
[trust]
keys = ["$PWD/keys/release.pub"]
[download]
backoff_initial_ms = 100
[[module]]
name = "main"
TOML
  cat
}

step "3. Two devices on simulated flash, provisioned with the factory image 1.0.0"
for layout in ab backup; do
  d=dev-$layout
  srv device add "$d" --type board-a | tail -n1 >"$d.token"
  agent_toml "$d" "$PWD/$d" >"$d.toml" <<TOML
layout = "$layout"
flash = "$PWD/$d/main.flash"
flash_size = 2097152
erase_block = 4096
write_unit = 8
TOML
  run "$agent" -c "$d.toml" provision --image image-1.0.0.bin --version 1.0.0
done

step "3b. A Linux-style device: two slot files and a U-Boot-like bootloader (bootcount) script"
# The bootloader's environment is a directory of files: primary, try, tries; "reboot" decides
# what starts (a trial with boots left, else the primary slot) and gives the boot a new id.
mkdir -p dev-file/env
cat >bootloader.sh <<'SH'
#!/bin/sh
# bootloader.sh ENV_DIR booted | try SLOT TRIES | primary SLOT | reboot
set -e
env=$1; shift
case $1 in
  booted) cat "$env/booted" ;;
  try) echo "$2" >"$env/try"; echo "$3" >"$env/tries" ;;
  primary) echo "$2" >"$env/primary"; rm -f "$env/try" "$env/tries" ;;
  reboot)
    slot=$(cat "$env/primary")
    if [ -f "$env/try" ] && [ "$(cat "$env/tries")" -gt 0 ]; then
      slot=$(cat "$env/try"); echo $(( $(cat "$env/tries") - 1 )) >"$env/tries"
    else
      rm -f "$env/try" "$env/tries"
    fi
    echo "$slot" >"$env/booted"
    cat /proc/sys/kernel/random/uuid >"$env/boot_id"
    echo "[bootloader] starting slot $slot" >&2 ;;
esac
SH
chmod +x bootloader.sh
B="$PWD/bootloader.sh $PWD/dev-file/env"
cp image-1.0.0.bin dev-file/slot-a.img
echo a >dev-file/env/primary
$B reboot
srv device add dev-file --type board-a | tail -n1 >dev-file.token
agent_toml dev-file "$PWD/dev-file/state" "reboot_command = \"$B reboot\"
boot_id_file = \"$PWD/dev-file/env/boot_id\"" >dev-file.toml <<TOML
layout = "file"
slots = ["$PWD/dev-file/slot-a.img", "$PWD/dev-file/slot-b.img"]
slot_size = 1048576
booted_command = "$B booted"
activate_command = "$B try \$ALOFT_SLOT \$ALOFT_TRIES"
commit_command = "$B primary \$ALOFT_SLOT"
TOML
run "$agent" -c dev-file.toml provision --image image-1.0.0.bin --version 1.0.0

check_device() {  # DEVICE VERSION ACTION_STATE
  local v s
  v=$(api "devices/$1" | json 'd["versions"].get("main", "")')
  s=$(api "actions?device=$1" | json 'd["items"][0]["state"] if "items" in d else d[0]["state"]')
  echo "server: $1 runs main $v; its latest action is $s"
  [[ $v == "$2" ]] || fail "$1: the server shows main $v, expected $2"
  [[ $s == "$3" ]] || fail "$1: the latest action is $s, expected $3"
}

# update VERSION OUTPUT_REGEX ACTION_STATE: deploy to every device, run each agent until the
# update is over (simulated devices reset in-process; the Linux-style one reboots through its
# reboot_command and its agent is started again, as systemd would), check what it printed, what the
# server shows (main stays or becomes 1.1.0) and what the device runs.
update() {
  srv deploy "fw@$1" --device dev-ab --device dev-backup --device dev-file
  for d in dev-ab dev-backup dev-file; do
    : >"$d-$1.log"
    for start in 1 2 3 4; do
      run "$agent" -c "$d.toml" --once 2>&1 | tee -a "$d-$1.log"
      grep -q "update succeeded\|update failed" "$d-$1.log" && break
    done
    grep -q "$2" "$d-$1.log" || fail "$d: the agent did not print '$2'"
    check_device "$d" 1.1.0 "$3"
    "$agent" -c "$d.toml" status | tee "$d-status.txt"
    grep -q "running 1.1.0" "$d-status.txt" || fail "$d: does not run 1.1.0"
  done
}

step "4. Deploy 1.1.0: each agent downloads, verifies, installs, reboots, confirms"
update 1.1.0 "update succeeded" succeeded

step "5. Deploy 1.2.0, whose health check fails: each agent rolls back to 1.1.0 and says so"
update 1.2.0 "update failed.*health check.*rolled back" failed

step "6. Summary"
api "actions?device=dev-ab" | json '"\n".join("action %s: %s -> %s" % (a["id"], a["release"], a["state"]) for a in (d["items"] if "items" in d else d))'
echo
echo "dev-ab (ab layout):         1.0.0 -> 1.1.0 succeeded; 1.2.0 failed its health check, rolled back to 1.1.0"
echo "dev-backup (backup layout): 1.0.0 -> 1.1.0 succeeded; 1.2.0 failed its health check, rolled back to 1.1.0"
echo "dev-file (file layout):     1.0.0 -> 1.1.0 succeeded; 1.2.0 failed its health check, rolled back to 1.1.0"
echo "agent demo: OK"
