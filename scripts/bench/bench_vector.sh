#!/bin/sh
# Exact vector search (issue 11): sqlite.search for the top 10 by cosine
# distance over N (default 100000) random vectors of 384 float32s in a
# SQLite table, against the floor: a C program (vecscan scan) that only
# reads the same BLOBs from the same table. Each is timed inside its own
# process, RUNS times after one warm-up on the same connection's file
# (the pages cached alike); the figures are medians.
# Usage: bench_vector.sh [N]
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
n=${1:-100000}
vecscan="$root/$BUILD/bench/vecscan"
work=$(mktemp -d /tmp/tide-bench-vector.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$vecscan" make "$work/v.db" "$n" 384
cat >"$work/search.lua" <<'LUA'
local core = require "tide.core"
local sqlite = require "tide.sqlite"
local q = {}
for i = 1, 384 do q[i] = math.sin(i) end
local runs, times = tonumber(arg[2]), {}
for r = 0, runs do
  local t0 = core.now_ms()
  local rows = assert(sqlite.search { db = arg[1], table = "docs",
    column = "v", vector = q, k = 10 })
  assert(#rows == 10 and rows[1].distance <= rows[10].distance)
  if r > 0 then times[r] = core.now_ms() - t0 end -- the first warms up
end
table.sort(times)
print(string.format("%.3f", times[(runs + 1) // 2]))
LUA
"$vecscan" scan "$work/v.db" 1 >/dev/null
f=$("$vecscan" scan "$work/v.db" "$RUNS" | awk '{ print $1 }')
t=$("$tide" run "$work/search.lua" "$work/v.db" "$RUNS")
ratio=$(awk -v t="$t" -v f="$f" 'BEGIN { printf "%.2f", t / f }')
awk -v n="$n" -v t="$t" -v f="$f" -v r="$ratio" 'BEGIN {
  printf "exact top-10 cosine search, %d vectors of 384 float32s: %.1f ms" \
    " (floor %.1f ms: a C scan reading the same BLOBs), ratio %.2f\n",
    n, t, f, r }'
verdict "$ratio" 2 "<= 2x the C scan"
