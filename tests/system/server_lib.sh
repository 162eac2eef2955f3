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
step() { echo "== $*"; }
