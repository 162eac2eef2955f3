# Helpers for the walk-through scripts (sourced). Set DEMO first ("agent demo"): a failure is
# reported as "$DEMO: FAILED: ..." and exits 1.
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { echo "$DEMO: FAILED: $*" >&2; exit 1; }
run() { printf '$ %s\n' "$*"; "$@"; }
# json EXPR: evaluates the Python expression EXPR with d = the JSON document on standard input.
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# free_port FROM: the first port from FROM on that nothing listens on.
free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}
