#!/usr/bin/env bash
# MQTT devices by certificate (docs/identity.md): Mosquitto (scripts/mqtt.sh) with a listener
# that requires client certificates from the device CA of `aloft ca` (its CRL too) and takes the
# certificate's CN as the user name, under the ACL aloftd writes (mqtt::BrokerAcl: a device reads
# only its own down topics). Then, with mosquitto_sub and mosquitto_pub:
#  - dev-1's certificate (aloft ca issue) receives what the bridge user publishes to its topic;
#  - its certificate is refused once revoked (aloft ca revoke, the broker reloaded);
#  - an expired certificate of the same CA and one of another CA are refused;
#  - dev-1 reads nothing of dev-2's topic.
#
# Usage: tests/system/mqtt_certs.sh BUILD_DIR WORK_DIRECTORY
set -euo pipefail
build=$(realpath "$1")
root=$(realpath "$(dirname "$0")/../..")
aloft=$build/apps/aloft/aloft
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work"
DEMO="mqtt certs"
source "$root/scripts/demo_lib.sh"  # step, fail, run, free_port

step "A device CA and certificates: dev-1, dev-2, an expired one, another CA's"
run "$aloft" ca init ca --name "Fleet devices CA"
run "$aloft" ca issue ca --cn dev-1 -o dev-1
run "$aloft" ca issue ca --cn dev-2 -o dev-2
run "$aloft" ca init other --name "Someone else's CA"
run "$aloft" ca issue other --cn dev-1 -o foreign
# Expired: signed by the same CA, valid in 2020 only (openssl ca sets the dates).
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=dev-3 \
  -keyout expired.key -out expired.csr 2>/dev/null
touch index.txt
echo 01 >serial.txt
printf '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nserial=serial.txt\nnew_certs_dir=.\npolicy=p\ndefault_md=sha256\n[p]\ncommonName=supplied\n' >old-ca.cnf
openssl ca -batch -config old-ca.cnf -cert ca/ca.crt -keyfile ca/ca.key -in expired.csr \
  -out expired.crt -startdate 20200101000000Z -enddate 20200102000000Z -notext \
  2>/dev/null
openssl x509 -in expired.crt -noout -enddate

step "Mosquitto: a password listener for the bridge, a certificate listener for devices"
port=$(free_port 18830)
tls_port=$(free_port $((port + 1)))
cert_port=$(free_port $((tls_port + 1)))
broker=$work/broker
mkdir -p "$broker"
cleanup() { "$root/scripts/mqtt.sh" stop "$broker" || true; }
trap cleanup EXIT
"$root/scripts/mqtt.sh" start "$broker" "$port" "$tls_port" "$cert_port" "$work/ca"
mosquitto_passwd -b -c "$broker/passwd" bridge bridge-secret
# What aloftd writes (mqtt::BrokerAcl).
printf 'user bridge\ntopic read aloft/v1/d/+/up/#\ntopic write aloft/v1/d/+/down/#\n\npattern write aloft/v1/d/%%u/up/#\npattern read aloft/v1/d/%%u/down/#\n' \
  >"$broker/acl"
kill -HUP "$(cat "$broker/mosquitto.pid")"
sleep 0.5
tls=(--cafile "$broker/tls/ca.crt" -h 127.0.0.1 -p "$cert_port")

# sub NAME TOPIC: what device NAME's certificate receives within 3 s; the output names failures.
sub() {
  mosquitto_sub "${tls[@]}" --cert "$2.crt" --key "$2.key" -t "$3" -C 1 -W 3 -i "$1" 2>&1 || true
}
publish_later() {
  (sleep 1; mosquitto_pub -h 127.0.0.1 -p "$port" -u bridge -P bridge-secret -q 1 -t "$1" -m "$2") &
}

step "dev-1's certificate: it receives its own down topic"
publish_later aloft/v1/d/dev-1/down/command '{"kind":"check-in"}'
got=$(sub dev-1 dev-1 aloft/v1/d/dev-1/down/command)
echo "$got"
[[ $got == '{"kind":"check-in"}' ]] || fail "dev-1 did not receive its command"

step "dev-1 reads nothing of dev-2's topic (the ACL by certificate name)"
publish_later aloft/v1/d/dev-2/down/command '{"kind":"for dev-2"}'
got=$(sub dev-1 dev-1 aloft/v1/d/dev-2/down/command)
echo "${got:-(nothing)}"
[[ $got != *"for dev-2"* ]] || fail "dev-1 read dev-2's topic"

step "Refused: expired, another CA's"
for who in expired foreign; do
  got=$(sub "$who" "$who" aloft/v1/d/dev-1/down/command)
  echo "$who: ${got:-(nothing)}"
  [[ $got == *"rror"* || $got == *"refused"* || $got == *"TLS"* ]] || fail "$who was not refused"
done

step "dev-2 revoked: refused after the broker reloads the CRL"
publish_later aloft/v1/d/dev-2/down/command '{"kind":"before"}'
got=$(sub dev-2 dev-2 aloft/v1/d/dev-2/down/command)
[[ $got == '{"kind":"before"}' ]] || fail "dev-2 was refused before its revocation: $got"
run "$aloft" ca revoke ca dev-2.crt
kill -HUP "$(cat "$broker/mosquitto.pid")"
sleep 0.5
got=$(sub dev-2 dev-2 aloft/v1/d/dev-2/down/command)
echo "dev-2: ${got:-(nothing)}"
[[ $got == *"rror"* || $got == *"refused"* || $got == *"TLS"* ]] || fail "revoked dev-2 was not refused"
step "done"
