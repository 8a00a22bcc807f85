#!/bin/sh
# The sqlite.table target: microseconds per row for apply of N (default
# 100k) Chunk-like rows into a fresh table, in one batch and in batches of
# 1000, with and without FTS5, as ratios against a floor measured in the
# same run (SQLite copying the same rows with one INSERT ... SELECT).
# BUILD names the build dir.
set -eu
BUILD=${BUILD:-build}
N=${N:-100000}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/$BUILD/tide" run "$root/scripts/bench/bench_sqlite_target.lua" \
  "$tmp" "$N"
