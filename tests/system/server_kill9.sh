#!/usr/bin/env bash
# kill -9 during an upload leaves no half-visible release; a restart cleans the partial file; a
# SIGTERM stops the server gracefully.
# Usage: server_kill9.sh ALOFTD ALOFT WORKDIR
set -euo pipefail
ALOFTD=$1 ALOFT=$2 work=$3
source "$(dirname "$0")/server_lib.sh"
rm -rf "$work" && mkdir -p "$work"
trap 'kill -9 ${srv_PID:-} 2>/dev/null || true' EXIT

start_aloftd srv --data "$work/data"
export ALOFT_URL=$srv_URL ALOFT_TOKEN=$(cat "$work/data/admin.token")
"$ALOFT" server device-type add board-a >/dev/null
head -c $((48 << 20)) /dev/urandom >"$work/big.img"

step "upload at 4 MiB/s, kill -9 the server after 2 s"
curl -s -o /dev/null --limit-rate 4M -H "Authorization: Bearer $ALOFT_TOKEN" \
  --data-binary @"$work/big.img" \
  "$srv_URL/api/v1/releases?name=big&version=1.0.0&device_type=board-a" &
curl_pid=$!
sleep 2
partial=$(find "$work/data/artifacts/.incoming" -name 'upload-*' -size +1k | wc -l)
[[ $partial -eq 1 ]] || fail "expected one partial upload file, found $partial"
kill -9 "$srv_PID"
wait "$curl_pid" 2>/dev/null && fail "the upload should have failed" || true

step "restart: no release, no partial file, no artifact"
start_aloftd srv --data "$work/data"
export ALOFT_URL=$srv_URL
[[ "$("$ALOFT" server --json release list)" == "[]" ]] || fail "a release appeared"
[[ -z "$(find "$work/data/artifacts/.incoming" -type f)" ]] || fail "partial upload left behind"
[[ -z "$(find "$work/data/artifacts" -path '*/.incoming' -prune -o -type f -print)" ]] ||
  fail "an artifact file was left behind"

step "the same upload completes after the restart"
"$ALOFT" -q server upload "$work/big.img" --name big --version 1.0.0 --device-type board-a
"$ALOFT" server --json release show big@1.0.0 | grep -q "\"sha256\": \"$(sha256sum "$work/big.img" | cut -c1-64)\"" ||
  fail "uploaded release has the wrong sha256"

step "SIGTERM stops it gracefully"
kill -TERM "$srv_PID"
wait "$srv_PID" || fail "aloftd exited with $? after SIGTERM"
grep -q "aloftd: stopped" "$work/srv.log" || fail "no graceful stop in the log"
echo "PASS"
