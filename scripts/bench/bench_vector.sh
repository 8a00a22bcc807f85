#!/bin/sh
# Exact vector search (issue 11): sqlite.search for the top 10 by cosine
# distance over N (default 100000) random vectors of 384 float32s in a
# SQLite table, timed as a whole `tide run` process, against the floor: a
# C program (vecscan scan) that only reads the same BLOBs from the same
# table. RUNS runs of each, interleaved, after one warm-up of each.
# Usage: bench_vector.sh [N]
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
n=${1:-100000}
dims=384
vecscan="$root/$BUILD/bench/vecscan"
work=$(mktemp -d /tmp/tide-bench-vector.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$vecscan" make "$work/v.db" "$n" "$dims"
cat >"$work/search.lua" <<'EOF'
local sqlite = require "tide.sqlite"
local q = {}
for i = 1, 384 do q[i] = math.sin(i) end
local rows = assert(sqlite.search { db = arg[1], table = "docs",
  column = "v", vector = q, k = 10 })
assert(#rows == 10 and rows[1].distance <= rows[10].distance)
EOF
"$vecscan" scan "$work/v.db" >/dev/null
"$tide" run "$work/search.lua" "$work/v.db"
i=0
while [ "$i" -lt "$RUNS" ]; do
  timed "$work/floor.t" "$vecscan" scan "$work/v.db" >/dev/null
  timed "$work/tide.t" "$tide" run "$work/search.lua" "$work/v.db"
  i=$((i + 1))
done
t=$(median 1 "$work/tide.t")
f=$(median 1 "$work/floor.t")
ratio=$(awk -v t="$t" -v f="$f" 'BEGIN { printf "%.2f", t / f }')
awk -v n="$n" -v t="$t" -v f="$f" -v r="$ratio" 'BEGIN {
  printf "exact top-10 cosine search, %d vectors of 384 float32s: %.1f ms" \
    " (floor %.1f ms: a C scan reading the same BLOBs), ratio %.2f\n",
    n, t / 1000, f / 1000, r }'
verdict "$ratio" 2 "<= 2x the C scan"
