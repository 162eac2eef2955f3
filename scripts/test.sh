#!/usr/bin/env bash
# Sets up the machine, builds, and runs every check: the format check, the unit and integration
# tests under AddressSanitizer + UndefinedBehaviorSanitizer, the fuzzers for 60 s, and finally the
# whole test suite (unit, integration, system), whose CTest summary ends the output. A throwaway
# PostgreSQL server (scripts/pg.sh) runs for the duration; the tests require it.
#
# Usage: scripts/test.sh          Environment: FUZZ_SECONDS (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/setup.sh

echo "== format"
scripts/check-format.sh

echo "== dashboard (npm ci as the lockfile pins, web/dist)"
scripts/web.sh build

# Warnings are errors here (ALOFT_WERROR), so that a new one is caught in CI rather than by a
# packager; users' builds leave them warnings.
echo "== build (GCC, Release)"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DALOFT_WERROR=ON >/dev/null
scripts/build.sh build/release

echo "== build (clang, ASan+UBSan, fuzz targets)"
CXX=clang++ cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALOFT_WERROR=ON \
  -DALOFT_SANITIZE=ON -DALOFT_FUZZ=ON >/dev/null
scripts/build.sh build/asan

echo "== PostgreSQL (throwaway)"
pgdir=$(mktemp -d /tmp/aloft-pg.XXXXXX)
corpus=$(mktemp -d)
trap 'scripts/pg.sh stop "$pgdir"; rm -rf "$pgdir" "$corpus"' EXIT
port=25432  # below the ephemeral range (32768-60999): no outgoing connection holds it
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
ALOFT_TEST_PG_URL=$(scripts/pg.sh start "$pgdir" "$port")
# The independent peers (python3-can, scapy, ...) come from scripts/setup.sh: their tests fail
# here, where they only skip on a developer machine without them.
export ALOFT_TEST_PG_URL ALOFT_REQUIRE_PG=1 ALOFT_REQUIRE_PEERS=1
echo "$ALOFT_TEST_PG_URL"

echo "== unit and integration tests under ASan+UBSan"
ctest --test-dir build/asan -L 'unit|integration' -j "$(nproc)" --output-on-failure

# fuzz NAME TARGET SECONDS: runs build/asan/fuzz/TARGET on the corpus directory NAME (seeded
# from fuzz/corpus/NAME when that exists); shows its figures; on a finding, its log, and fails.
fuzz() {
  local name=$1 target=$2 seconds=$3 status=0
  echo "== fuzz: $name, $seconds s"
  mkdir -p "$corpus/$name"
  [[ -d fuzz/corpus/$name ]] && cp fuzz/corpus/"$name"/* "$corpus/$name"/
  (cd "$corpus" && "$root"/build/asan/fuzz/"$target" -max_total_time="$seconds" \
    -print_final_stats=1 "$name" >"$name.log" 2>&1) || status=$?
  grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$corpus/$name.log" || true
  if [[ $status -ne 0 ]]; then
    tail -n 60 "$corpus/$name.log" >&2
    echo "fuzz: $target failed (exit $status)" >&2
    exit 1
  fi
}
fuzz package_reader package_reader_fuzz "${FUZZ_SECONDS:-60}"
fuzz patch_decoder patch_decoder_fuzz "${PATCH_FUZZ_SECONDS:-60}"
fuzz http_input http_input_fuzz "${HTTP_FUZZ_SECONDS:-20}"
fuzz isotp_receiver isotp_receiver_fuzz "${FUZZ_SECONDS:-60}"
fuzz doip_parser doip_parser_fuzz "${FUZZ_SECONDS:-60}"
fuzz uds_request uds_request_fuzz "${FUZZ_SECONDS:-60}"
fuzz uds_auth uds_auth_fuzz "${AUTH_FUZZ_SECONDS:-30}"

echo "== all tests (release build)"
ctest --test-dir build/release -j "$(nproc)" --output-on-failure
