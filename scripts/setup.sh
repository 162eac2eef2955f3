#!/usr/bin/env bash
# Installs every Debian package Aloft needs to build, test and demo. Idempotent: when everything is
# already installed it only runs dpkg-query and returns in well under a second.
#
# Usage: scripts/setup.sh [--delta-bench]   (as root, or with sudo available)
#   --delta-bench  also the other delta tools, for bench/delta.sh
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  clang clang-format libclang-rt-14-dev lld
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev time
  # libraries
  libssl-dev libzstd-dev liblzma-dev libdivsufsort-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libspdlog-dev libtomlplusplus-dev
  # server: Boost.Asio/Beast, SQLite, libpq; client: libcurl
  libboost-dev libsqlite3-dev libpq-dev libcurl4-openssl-dev
  libmosquitto-dev  # MQTT client (src/mqtt)
  # real peers for tests, the demo and benchmarks
  postgresql nginx wrk curl sqlite3
  swupdate cpio  # a real hawkBit DDI client (suricatta) and what builds its .swu files
  mosquitto mosquitto-clients  # the MQTT broker for push (scripts/mqtt.sh) and its command-line clients
  python3-can python3-scapy  # independent CAN / ISO-TP / UDS / DoIP peers (seen by /usr/bin/python3 only)
  python3-securesystemslib  # python-tuf's signing library: an independent check of TUF metadata
  # command-line tools the scripts and tests call
  tar zstd xz-utils openssl python3
  gnuplot-nox  # aloft-fleet-sim's plots (docs/fleet-sim.md)
  # the dashboard's browser tests and screenshots: Debian's Chromium (never a downloaded one)
  # and a font with Chinese glyphs
  chromium fonts-wqy-microhei
)
# The dashboard is built with Node.js and npm (web/, scripts/web.sh): Debian's, unless a newer
# one is installed (NodeSource's nodejs carries its own npm).
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
if [[ ${1:-} == --delta-bench ]]; then
  packages+=(bsdiff xdelta3 valgrind)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "setup: installing ${#missing[@]} package(s): ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# An apt list older than a day (or none) is refreshed once; a fresh one is reused.
if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n1)" ]]; then
  $SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
