#!/bin/sh
# postgres.table and change capture against a PostgreSQL 15 started for
# the run (scripts/pg_server.sh, a Unix socket in a temporary folder):
# - a cold apply of N rows against a bare COPY of the same rows into an
#   unindexed table (bench_postgres.lua), BENCH_RUNS rounds, medians;
# - `tide live` keeping a table of N rows through NOTIFY: one row changed
#   until tide's target row changed, against the notification reaching a
#   bare listener (bench_postgres_live.lua).
# Usage: bench_postgres.sh [N]   (default 100000)
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
n=${1:-100000}
work=$(mktemp -d /tmp/tide-bench-pg.XXXXXX)
chmod 755 "$work" # the server runs as another user
BENCH_PG=$(sh "$root/scripts/pg_server.sh" start "$work/pg")
export BENCH_PG
live_pid=
cleanup() {
  [ -n "$live_pid" ] && kill "$live_pid" 2>/dev/null
  sh "$root/scripts/pg_server.sh" stop "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT
"$tide" run "$root/scripts/bench/bench_postgres.lua" "$n" "$RUNS"

"$tide" run - <<LUA
local core = require "tide.core"
assert(core.pg_script(os.getenv("BENCH_PG"), "CREATE TABLE src (id int "
  .. "PRIMARY KEY, title text NOT NULL); INSERT INTO src SELECT g, 'row ' "
  .. "|| g || ' of the source' FROM generate_series(1, $n) g", {}))
LUA
cp "$root/scripts/bench/postgres_live_pipeline.lua" "$work/pipeline.lua"
(cd "$work" && exec "$tide" live pipeline.lua --db "$work/state.db" \
  >"$work/live.out" 2>"$work/live.err") &
live_pid=$!
i=0
until grep -q watching "$work/live.err" 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -gt 600 ] || ! kill -0 "$live_pid" 2>/dev/null; then
    cat "$work/live.err" >&2
    exit 1
  fi
  sleep 0.2
done
sleep 3 # the watch's own listing of the table, after it listens
"$tide" run "$root/scripts/bench/bench_postgres_live.lua" 30 "$n"
