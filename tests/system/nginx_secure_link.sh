#!/usr/bin/env bash
# Downloads through a real nginx with secure_link: aloftd hands out signed, expiring links to
# nginx; nginx serves the artifact with a good link and refuses a forged or expired one.
# Usage: nginx_secure_link.sh ALOFTD ALOFT WORKDIR
set -euo pipefail
ALOFTD=$1 ALOFT=$2 work=$3
source "$(dirname "$0")/server_lib.sh"
source "$(dirname "$0")/../../scripts/nginx_lib.sh"
command -v nginx >/dev/null || fail "nginx is not installed (scripts/setup.sh installs it)"
rm -rf "$work" && mkdir -p "$work/nginx-tmp"
chmod 755 "$work"
trap 'kill ${srv_PID:-} 2>/dev/null || true; [[ -f "$work/nginx.pid" ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true' EXIT

port=18480
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
secret="s3cret-$RANDOM$RANDOM"
{ nginx_prologue "$work" 1 64; cat <<CONF
  server {
    listen 127.0.0.1:$port;
    location /artifacts/ {
      secure_link \$arg_md5,\$arg_expires;
      secure_link_md5 "\$secure_link_expires\$uri $secret";
      if (\$secure_link = "")  { return 403; }
      if (\$secure_link = "0") { return 410; }
      alias $work/artifacts/;
    }
  }
}
CONF
} >"$work/nginx.conf"
nginx -c "$work/nginx.conf"
cat >"$work/aloftd.toml" <<CONF
data_dir = "$work/data"
artifacts_dir = "$work/artifacts"
external_base_url = "http://127.0.0.1:$port/artifacts"
secure_link_secret = "$secret"
link_ttl_s = 600
CONF

step "aloftd with an external download base; a release, a device, a deployment"
start_aloftd srv --config "$work/aloftd.toml"
export ALOFT_URL=$srv_URL ALOFT_TOKEN=$(cat "$work/data/admin.token")
"$ALOFT" server device-type add board-a >/dev/null
head -c 3000000 /dev/urandom >"$work/fw.bin"
"$ALOFT" -q server upload "$work/fw.bin" --name fw --version 1.0.0 --device-type board-a >/dev/null
tok=$("$ALOFT" server device add d1 --type board-a | tail -n1)
"$ALOFT" server deploy fw@1.0.0 --device d1 >/dev/null
link=$(curl -sf -H "Authorization: Bearer $tok" -d '{}' "$srv_URL/device/v1/d1/check-in" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["action"]["download"]["url"])')
echo "link: $link"
[[ "$link" == "http://127.0.0.1:$port/artifacts/"* ]] || fail "the link does not point at nginx"

step "nginx serves the good link (whole and resumed), refuses a forged and an expired one"
curl -sf -o "$work/got.bin" "$link" || fail "nginx refused aloftd's link"
cmp -s "$work/got.bin" "$work/fw.bin" || fail "bytes from nginx differ"
curl -sf -r 1000000- -o "$work/tail.bin" "$link" || fail "range request refused"
cmp -s "$work/tail.bin" <(tail -c +1000001 "$work/fw.bin") || fail "range bytes differ"
forged=$(echo "$link" | sed 's/md5=[A-Za-z0-9_-]*/md5=AAAAAAAAAAAAAAAAAAAAAA/')
code=$(curl -s -o /dev/null -w '%{http_code}' "$forged")
[[ $code == 403 ]] || fail "a forged link got $code, expected 403"
# An expired link, signed correctly (computed here independently of aloftd).
uri=$(echo "$link" | sed -E 's|^http://[^/]+||; s|\?.*||')
expires=$(( $(date +%s) - 60 ))
md5=$(printf '%s' "$expires$uri $secret" | openssl md5 -binary | openssl base64 | tr '+/' '-_' | tr -d '=')
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$uri?md5=$md5&expires=$expires")
[[ $code == 410 ]] || fail "an expired link got $code, expected 410"
# The same computation with a future expiry is accepted: our format is nginx's.
expires=$(( $(date +%s) + 60 ))
md5=$(printf '%s' "$expires$uri $secret" | openssl md5 -binary | openssl base64 | tr '+/' '-_' | tr -d '=')
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$uri?md5=$md5&expires=$expires")
[[ $code == 200 ]] || fail "an independently signed link got $code, expected 200"
echo "PASS"
