#!/usr/bin/env bash
# DoIP over TLS (ISO 13400-2:2019) end to end: aloft-ecu-sim runs the demo car with its DoIP
# entity requiring TLS (docs/vehicle-network.md), serving the plain port and a TLS port whose
# certificate a CA made here issued; then
#  - aloft-vehicle on the plain port is answered 0x07 at routing activation and says so;
#  - aloft-vehicle trusting another CA refuses the entity's certificate;
#  - aloft-vehicle over TLS installs a bundle on the head unit (Ethernet, 0x1010) and the
#    simulator shows it running the new version.
#
# Usage: tests/system/doip_tls.sh BUILD_DIR WORK_DIRECTORY
set -euo pipefail
build=$(realpath "$1")
root=$(realpath "$(dirname "$0")/../..")
sim=$build/apps/aloft-ecu-sim/aloft-ecu-sim
aloft=$build/apps/aloft/aloft
vehicle=$build/apps/aloft-vehicle/aloft-vehicle
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"
DEMO="doip tls"
source "$root/scripts/demo_lib.sh"  # step, fail, run, free_port


step "A CA, the entity's certificate (IP SAN 127.0.0.1) and a stranger CA"
ca() {  # ca NAME: a self-signed P-256 CA
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=$1" -keyout "$1.key" -out "$1.crt" 2>/dev/null
}
ca doip-ca
ca stranger-ca
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=gateway \
  -keyout entity.key -out entity.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >entity.ext
openssl x509 -req -in entity.csr -CA doip-ca.crt -CAkey doip-ca.key -CAcreateserial -days 2 \
  -extfile entity.ext -out entity.crt 2>/dev/null
openssl verify -CAfile doip-ca.crt entity.crt

step "The demo car with a DoIP entity that requires TLS"
sed '/^\[doip\]/a require_tls = true' "$root/examples/demo-car.toml" >car.toml
grep -q "^require_tls = true" car.toml || fail "require_tls not set"
plain=127.0.0.1:$(free_port 13400)
control=127.0.0.1:$(free_port 29600)
tls=127.0.0.1:$(free_port 3496)
"$sim" run car.toml --state state --doip "$plain" --doip-tls "$tls" --tls-cert entity.crt \
  --tls-key entity.key --control "$control" >sim.log 2>&1 &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q "^control on" sim.log && break; sleep 0.2; done
grep -q "^control on" sim.log || { cat sim.log; fail "aloft-ecu-sim did not start"; }
cat sim.log
grep -q "required: plain connections get 0x07" sim.log || fail "TLS not required"

step "A bundle for the head unit"
mkdir -p images
"$sim" image --version 26.1.0 --part HU --size 196608 --seed 2 -o images/hu.bin >/dev/null
cat >bundle.toml <<'EOF'
[bundle]
name = "hu-only"
version = "2026.12.0"
model = "demo-car"

[policy]
mode = "silent"

[[ecu]]
name = "hu"
image = "images/hu.bin"
version = "26.1.0"
hardware = "HW-1.0"
install = "uds-ab"
bus = "doip"
doip_address = 0x1010
address = 0x80000
EOF
"$aloft" keygen --out release >/dev/null
run "$aloft" bundle bundle.toml --key release.key -o hu.aloft

step "A tester on the plain port is answered 0x07 (TLS required)"
if "$vehicle" inventory --network car.toml --doip "$plain" --state gw >plain.txt 2>&1; then
  cat plain.txt
  fail "the plain port took a tester"
fi
cat plain.txt
grep -q "0x07" plain.txt || fail "no 0x07"
grep -q "doip-tls-ca" plain.txt || fail "the error does not say what to do"

step "A gateway trusting another CA refuses the entity's certificate"
if "$vehicle" inventory --network car.toml --doip "$tls" --doip-tls-ca stranger-ca.crt \
  --state gw >stranger.txt 2>&1; then
  cat stranger.txt
  fail "a certificate from an unknown CA was accepted"
fi
cat stranger.txt
grep -q "TLS handshake.*certificate verify failed" stranger.txt || fail "no verify failure"

step "aloft-vehicle install over TLS ($tls): the head unit flashed"
run "$vehicle" install hu.aloft --trust release.pub --network car.toml --doip "$tls" \
  --doip-tls-ca doip-ca.crt --state gw --hmi off -q | tee install.txt
grep -q "all-new" install.txt || fail "the campaign did not end all-new"
run "$sim" ctl --control "$control" status | tee after.txt
grep -q "^hu: application 26.1.0" after.txt || fail "hu does not run 26.1.0"
step "done"
