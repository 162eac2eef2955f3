# Helpers for system tests that run aloftd (sourced).

# start_aloftd NAME ARGS... : starts aloftd in the background on a free loopback port; sets
# <NAME>_PID and <NAME>_URL. The log goes to $work/NAME.log.
start_aloftd() {
  local name=$1; shift
  "$ALOFTD" --listen 127.0.0.1:0 "$@" 2>"$work/$name.log" &
  local pid=$!
  local port=""
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*(port \([0-9]*\),.*/\1/p' "$work/$name.log" | head -n1)
    [[ -n "$port" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.log" >&2; echo "aloftd $name died" >&2; return 1; }
    sleep 0.1
  done
  [[ -n "$port" ]] || { cat "$work/$name.log" >&2; echo "aloftd $name did not start" >&2; return 1; }
  printf -v "${name}_PID" '%s' "$pid"
  printf -v "${name}_URL" '%s' "http://127.0.0.1:$port"
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# pg_schema PREFIX: exits 77 (skipped) without ALOFT_TEST_PG_URL (fails under ALOFT_REQUIRE_PG=1);
# otherwise creates a fresh schema and sets DB to a URL that uses it.
pg_schema() {
  if [[ -z "${ALOFT_TEST_PG_URL:-}" ]]; then
    [[ "${ALOFT_REQUIRE_PG:-}" == 1 ]] && fail "ALOFT_REQUIRE_PG=1 but ALOFT_TEST_PG_URL is unset"
    echo "SKIP: no PostgreSQL (ALOFT_TEST_PG_URL)"; exit 77
  fi
  local schema="${1}_$$_$RANDOM"
  psql -q "$ALOFT_TEST_PG_URL" -c "CREATE SCHEMA $schema" >/dev/null
  DB="$ALOFT_TEST_PG_URL?options=-c%20search_path%3D$schema"
}
step() { echo "== $*"; }
