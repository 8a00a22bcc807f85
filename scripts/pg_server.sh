#!/bin/sh
# A throwaway PostgreSQL 15 server for the tests and benchmarks: a new
# cluster in DIR, run by an unprivileged user (nobody when this runs as
# root: PostgreSQL refuses root), listening only on a Unix socket in DIR
# (no TCP port), trust authentication for the user tide.
#   pg_server.sh start DIR   prints the libpq connection string
#   pg_server.sh stop DIR    stops the server and removes DIR
#   pg_server.sh restart DIR stops the server (its clients are cut off)
#                            and starts it again on the same data
# PG_BIN names the folder of initdb and pg_ctl (default: PostgreSQL 15's).
set -eu
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
  echo "usage: pg_server.sh start|stop|restart DIR" >&2; exit 2; }

# Starts the cluster in $dir/data: a Unix socket in $dir only, no fsync.
start_server() {
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses='' -k $dir -c fsync=off -c max_connections=50" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

case $cmd in
start)
  if [ ! -x "$PG_BIN/initdb" ]; then
    echo "pg_server.sh: $PG_BIN/initdb is missing: run scripts/setup.sh" \
      "(Debian package postgresql-15)" >&2
    exit 1
  fi
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown nobody:nogroup "$dir"
  chmod 700 "$dir"
  as_owner "$PG_BIN/initdb" -D "$dir/data" -U tide --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2; exit 1; }
  start_server
  echo "host=$dir user=tide dbname=postgres"
  ;;
restart)
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  start_server
  ;;
stop)
  if [ -d "$dir/data" ]; then
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop \
      >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "pg_server.sh: unknown command $cmd" >&2
  exit 2
  ;;
esac
