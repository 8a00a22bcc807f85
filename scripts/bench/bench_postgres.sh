#!/bin/sh
# postgres.table against a PostgreSQL 15 started for the run
# (scripts/pg_server.sh, a Unix socket in a temporary folder): a cold
# apply of N rows against a bare COPY of the same rows into an unindexed
# table (bench_postgres.lua), BENCH_RUNS rounds, medians.
# Usage: bench_postgres.sh [N]   (default 100000)
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
n=${1:-100000}
work=$(mktemp -d /tmp/tide-bench-pg.XXXXXX)
rmdir "$work"
BENCH_PG=$(sh "$root/scripts/pg_server.sh" start "$work")
export BENCH_PG
trap 'sh "$root/scripts/pg_server.sh" stop "$work"' EXIT
"$tide" run "$root/scripts/bench/bench_postgres.lua" "$n" "$RUNS"
