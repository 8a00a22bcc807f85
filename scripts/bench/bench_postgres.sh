#!/bin/sh
# postgres.table and change capture against a PostgreSQL 15 started for
# the run (scripts/pg_server.sh, a Unix socket in a temporary folder):
# - a cold apply of N rows against a bare COPY of the same rows into an
#   unindexed table (bench_postgres.lua), BENCH_RUNS rounds, medians;
# - `tide live` keeping a table of N rows through NOTIFY: one row changed
#   until tide's target row changed, against the notification reaching a
#   bare listener (bench_postgres_live.lua);
# - a no-change run over N files made by gen_tree.sh (nochange_pipeline.lua:
#   one memoized component and one SQLite row per file) with its state
#   store in PostgreSQL, against the same run on a SQLite store, RUNS runs
#   of each interleaved, medians.
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
kill "$live_pid" 2>/dev/null
wait "$live_pid" 2>/dev/null || true
live_pid=

# ---- A no-change run with the state store in PostgreSQL ----
sh "$root/scripts/bench/gen_tree.sh" "$n" "$work/tree"
export BENCH_TREE="$work/tree"
pg_db="postgresql:///postgres?host=$work/pg&user=tide&schema=nochange"
for store in pg lite; do
  # A folder each: the target table has one owning store.
  mkdir -p "$work/$store"
  cp "$root/scripts/bench/nochange_pipeline.lua" "$work/$store/pipeline.lua"
done
"$tide" update "$work/pg/pipeline.lua" --db "$pg_db" --quiet # cold
"$tide" update "$work/lite/pipeline.lua" --db "$work/lite/state.db" --quiet
expect_nochange "$n" "$tide" update "$work/pg/pipeline.lua" --db "$pg_db" \
  --json
i=0
while [ "$i" -lt "$RUNS" ]; do
  timed "$work/lite.t" "$tide" update "$work/lite/pipeline.lua" \
    --db "$work/lite/state.db" --quiet
  timed "$work/pg.t" "$tide" update "$work/pg/pipeline.lua" --db "$pg_db" \
    --quiet
  i=$((i + 1))
done
awk -v n="$n" -v p="$(median 1 "$work/pg.t")" \
  -v l="$(median 1 "$work/lite.t")" 'BEGIN {
  printf "no-change run, %d files, state store in PostgreSQL: %.0f ms" \
    " (%.2f us/file), against %.0f ms on a SQLite store, ratio %.2f\n",
    n, p / 1000, p / n, l / 1000, p / l }'
