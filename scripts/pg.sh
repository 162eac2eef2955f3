#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests and benchmarks: initdb in a directory of its own, listening
# on one loopback port only, trust authentication for local connections, no fsync (the data is
# thrown away). PostgreSQL refuses to run as root, so as root the server runs as `postgres`.
#
# Usage: scripts/pg.sh start DIR PORT   -> prints the URL of database `aloft` on success
#        scripts/pg.sh stop DIR
set -euo pipefail

cmd=${1:?usage: pg.sh start DIR PORT | stop DIR}
dir=${2:?missing DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[[ -x "$bin/initdb" ]] || { echo "pg.sh: PostgreSQL server binaries not found; run scripts/setup.sh" >&2; exit 1; }

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
  start)
    port=${3:?missing PORT}
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$dir"
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
      as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qtAc "SELECT 1 FROM pg_database WHERE datname='aloft'" postgres | grep -q 1 ||
      as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres aloft
    echo "postgresql://postgres@127.0.0.1:$port/aloft"
    ;;
  stop)
    [[ -f "$dir/data/postmaster.pid" ]] && as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    ;;
  *)
    echo "pg.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
