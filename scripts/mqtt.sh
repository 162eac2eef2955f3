#!/usr/bin/env bash
# A throwaway Mosquitto broker for tests, the demo and benchmarks: one loopback listener, no
# anonymous clients, the password and ACL files that aloftd writes (mqtt_broker_passwd,
# mqtt_broker_acl; empty until then) and its pid file (mqtt_broker_pid, for aloftd's SIGHUP),
# persistence in DIR so that a restart keeps sessions and queued messages. With TLS_PORT, a second
# listener speaks TLS with DIR/tls/server.{crt,key} (made here, signed by DIR/tls/ca.crt). With
# CERT_PORT and DEVICE_CA (a CA directory of `aloft ca`), a third speaks TLS and takes devices by
# their certificates: required, checked against DEVICE_CA/ca.crt and its crl.pem, the
# certificate's CN their user name (use_identity_as_username; docs/identity.md).
#
# Usage: scripts/mqtt.sh start DIR PORT [TLS_PORT [CERT_PORT DEVICE_CA]]  -> mqtt://127.0.0.1:PORT
#        scripts/mqtt.sh stop DIR
#        scripts/mqtt.sh restart DIR                 (stop, then start with the same files)
set -euo pipefail

cmd=${1:?usage: mqtt.sh start DIR PORT [TLS_PORT] | stop DIR | restart DIR}
dir=${2:?missing DIR}
command -v mosquitto >/dev/null || [[ -x /usr/sbin/mosquitto ]] ||
  { echo "mqtt.sh: mosquitto not found; run scripts/setup.sh" >&2; exit 1; }
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)

stop() {
  [[ -f "$dir/mosquitto.pid" ]] || return 0
  local pid
  pid=$(cat "$dir/mosquitto.pid")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  fi
  rm -f "$dir/mosquitto.pid"
}

# Mosquitto forks (-d) before it opens its listeners, and it sets its SIGHUP handler only after
# the last one is up (TLS files read): a SIGHUP before then (aloftd rewriting the password file,
# a test's reload) ends it without a word. So the broker is ready when its log says "running",
# not when its first listener accepts.
running_lines() { grep -c ' running$' "$dir/mosquitto.log" 2>/dev/null || true; }

run() {
  local before
  before=$(running_lines)
  "$mosquitto" -c "$dir/mosquitto.conf" -d 2>>"$dir/mosquitto.log"
  local port
  port=$(sed -n 's/^listener \([0-9]*\) .*/\1/p' "$dir/mosquitto.conf" | head -n1)
  for _ in $(seq 200); do
    if (($(running_lines) > before)); then
      echo "mqtt://127.0.0.1:$port"
      return 0
    fi
    sleep 0.05
  done
  echo "mqtt.sh: the broker did not start within 10 s; its log:" >&2
  tail -n 20 "$dir/mosquitto.log" >&2
  exit 1
}

case "$cmd" in
  start)
    port=${3:?missing PORT}
    tls_port=${4:-}
    cert_port=${5:-}
    device_ca=${6:-}
    [[ -z $cert_port || ( -n $tls_port && -n $device_ca ) ]] ||
      { echo "mqtt.sh: CERT_PORT needs TLS_PORT and DEVICE_CA" >&2; exit 2; }
    mkdir -p "$dir"
    touch "$dir/passwd" "$dir/acl"
    {
      # use_username_as_clientid: a client's id is its user name, so that no client can take over
      # another's connection and persistent session by connecting with its id (docs/mqtt.md).
      echo "listener $port 127.0.0.1"
      echo "use_username_as_clientid true"
      if [[ -n $tls_port ]]; then
        mkdir -p "$dir/tls"
        if [[ ! -f $dir/tls/server.crt ]]; then
          openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
            -subj /CN=aloft-test-ca -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.crt" 2>/dev/null
          openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
            -keyout "$dir/tls/server.key" -out "$dir/tls/server.csr" 2>/dev/null
          openssl x509 -req -in "$dir/tls/server.csr" -CA "$dir/tls/ca.crt" -CAkey "$dir/tls/ca.key" \
            -CAcreateserial -days 30 -extfile <(echo "subjectAltName=IP:127.0.0.1") \
            -out "$dir/tls/server.crt" 2>/dev/null
        fi
        echo "listener $tls_port 127.0.0.1"
        echo "use_username_as_clientid true"
        echo "certfile $dir/tls/server.crt"
        echo "keyfile $dir/tls/server.key"
      fi
      if [[ -n $cert_port ]]; then
        echo "listener $cert_port 127.0.0.1"
        echo "certfile $dir/tls/server.crt"
        echo "keyfile $dir/tls/server.key"
        echo "cafile $device_ca/ca.crt"
        echo "crlfile $device_ca/crl.pem"
        echo "require_certificate true"
        echo "use_identity_as_username true"
      fi
      echo "allow_anonymous false"
      echo "password_file $dir/passwd"
      echo "acl_file $dir/acl"
      echo "pid_file $dir/mosquitto.pid"
      echo "persistence true"
      echo "persistence_location $dir/"
      echo "autosave_interval 1"
      echo "max_queued_messages 10000"
      echo "log_dest file $dir/mosquitto.log"
      echo "log_type error"
      echo "log_type warning"
      echo "log_type notice"
      echo "log_type information"  # "Reloading config." after a SIGHUP
      # A throwaway broker: as root it keeps root, so it reads the files aloftd writes (0600).
      [[ $(id -u) -eq 0 ]] && echo "user root"
    } >"$dir/mosquitto.conf"
    stop
    run
    ;;
  stop)
    stop
    ;;
  restart)
    stop
    run
    ;;
  *)
    echo "mqtt.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
