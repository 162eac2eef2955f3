#!/usr/bin/env bash
# The package walk-through: keygen -> pack (two components) -> inspect -> verify -> a flipped byte
# -> verify fails with the reason -> a second signature and a 2-of-3 threshold -> extract.
# Every step is checked; any surprise exits non-zero. Used by scripts/demo.sh and by the CTest
# system test "cli_walkthrough".
#
# Usage: scripts/walkthrough.sh ALOFT_BINARY WORK_DIRECTORY
set -euo pipefail
aloft=$(realpath "$1")
work=$2
DEMO="walkthrough"
source "$(dirname "$0")/demo_lib.sh"  # step, fail, run
rm -rf "$work" && mkdir -p "$work" && cd "$work"

step "1. Two release keys and one spare"
run "$aloft" keygen --out keys/release
run "$aloft" keygen --out keys/second
run "$aloft" keygen --out keys/third --type ecdsa-p256
[[ $(stat -c %a keys/release.key) == 600 ]] || fail "private key is not 0600"

step "2. Two component images: an application and a battery-management firmware"
head -c 1500000 /dev/urandom > app.bin
for i in $(seq 1 40000); do echo "bms calibration row $i: 3.70V 25C ok"; done > bms.bin
ls -l app.bin bms.bin

step "3. Pack them, signed by the release key"
run "$aloft" -q pack --name fw --version 1.2.0 --hardware board-a --hardware board-b \
  --component main=app.bin --component bms=bms.bin --key keys/release.key -o fw-1.2.0.aloft
run tar tvf fw-1.2.0.aloft
[[ $(tar tf fw-1.2.0.aloft | head -n1) == manifest.json ]] || fail "manifest.json is not first"

step "4. Inspect"
run "$aloft" inspect fw-1.2.0.aloft
"$aloft" inspect fw-1.2.0.aloft --json | grep -q '"security_counter"' || fail "inspect --json"

step "5. Verify against the release key"
run "$aloft" -q verify fw-1.2.0.aloft --trust keys/release.pub || fail "a good package did not verify"

step "6. Flip one byte inside the 'main' payload and verify again"
cp fw-1.2.0.aloft tampered.aloft
offset=$((512 * 4 + 100000))
orig=$(dd if=tampered.aloft bs=1 skip=$offset count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
printf "$(printf '\\%03o' $(((orig ^ 1) & 255)))" | dd of=tampered.aloft bs=1 seek=$offset conv=notrunc 2>/dev/null
set +e
"$aloft" -q verify tampered.aloft --trust keys/release.pub 2> reason.txt
rc=$?
set -e
cat reason.txt
[[ $rc -ne 0 ]] || fail "a tampered package verified"
grep -q "sha256 mismatch" reason.txt || fail "the reason does not name the hash mismatch"

step "7. A key that is not trusted"
set +e
"$aloft" -q verify fw-1.2.0.aloft --trust keys/second.pub 2> reason.txt
rc=$?
set -e
cat reason.txt
[[ $rc -ne 0 ]] && grep -q "is not trusted" reason.txt || fail "an untrusted signature was accepted"

step "8. A second signature, then a 2-of-3 threshold"
run "$aloft" sign fw-1.2.0.aloft --key keys/second.key
run "$aloft" -q verify fw-1.2.0.aloft --trust keys/release.pub --trust keys/second.pub \
  --trust keys/third.pub --threshold 2 || fail "2 of 3 did not verify"

step "9. Extract the verified images"
run "$aloft" -q extract fw-1.2.0.aloft --trust keys/release.pub -C images
cmp images/main.bin app.bin && cmp images/bms.bin bms.bin || fail "extracted images differ"
echo "images/main.bin and images/bms.bin are byte-for-byte the inputs"

printf '\nwalkthrough: all steps behaved as expected\n'
