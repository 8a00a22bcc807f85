#!/bin/sh
# Cold-run bookkeeping and peak memory of a cold run. For N files made by
# gen_tree.sh: RUNS cold `tide update` runs of nochange_pipeline.lua (one
# memoized component per file, one SQLite row per file), each with a fresh
# state store and output database, interleaved with RUNS runs of the floor,
# cold_floor.lua (the same transform as a plain Lua loop, one insert per
# file in one transaction). Both are timed as whole processes by runstat;
# the figures are medians. Prints tide's microseconds per file beyond the
# floor and the peak resident memory of the cold run.
# Usage: bench_cold.sh [N...]   (default: 10000 100000; BENCH_RUNS runs)
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
sizes=${*:-10000 100000}
work=$(mktemp -d /tmp/tide-bench-cold.XXXXXX)
trap 'rm -rf "$work"' EXIT

for n in $sizes; do
  dir="$work/$n"
  mkdir -p "$dir"
  sh "$root/scripts/bench/gen_tree.sh" "$n" "$dir/tree"
  cp "$root/scripts/bench/nochange_pipeline.lua" "$dir/pipeline.lua"
  export BENCH_TREE="$dir/tree"
  i=0
  while [ "$i" -lt "$RUNS" ]; do
    rm -f "$dir"/floor.db* "$dir"/out.db* "$dir"/state.db*
    timed "$dir/floor.t" "$tide" run "$root/scripts/bench/cold_floor.lua" \
      "$dir/tree" "$dir/floor.db"
    timed "$dir/tide.t" "$tide" update "$dir/pipeline.lua" \
      --db "$dir/state.db" --quiet
    i=$((i + 1))
  done
  for db in floor out; do
    rows=$("$tide" run "$root/scripts/bench/count_rows.lua" "$dir/$db.db" docs)
    if [ "$rows" != "$n" ]; then
      echo "$0: $db.db has $rows rows, expected $n" >&2
      exit 1
    fi
  done
  t=$(median 1 "$dir/tide.t")
  f=$(median 1 "$dir/floor.t")
  t_kb=$(median 2 "$dir/tide.t")
  f_kb=$(median 2 "$dir/floor.t")
  beyond=$(awk -v n="$n" -v t="$t" -v f="$f" 'BEGIN {
    printf "%.2f", (t - f) / n }')
  awk -v n="$n" -v t="$t" -v f="$f" -v b="$beyond" 'BEGIN {
    printf "cold-run bookkeeping, %d files: %.2f us/file beyond the floor" \
      " (tide %.2f us/file, floor %.2f us/file: a plain Lua loop), ratio" \
      " %.2f\n", n, b, t / n, f / n, t / f }'
  verdict "$beyond" 10 "<= 10 us/file beyond the floor"
  mb=$(awk -v k="$t_kb" 'BEGIN { printf "%.1f", k / 1024 }')
  awk -v n="$n" -v mb="$mb" -v f="$f_kb" -v t="$t_kb" 'BEGIN {
    printf "peak memory, cold run, %d files: %.1f MB (floor %.1f MB: the" \
      " plain Lua loop, which holds every row for its one transaction)," \
      " ratio %.2f\n", n, mb, f / 1024, t / f }'
  if [ "$n" -eq 100000 ]; then
    verdict "$mb" 100 "<= 100 MB at 100000 files"
  fi
  rm -rf "$dir"
done
