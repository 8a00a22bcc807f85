#!/bin/sh
# The no-change catch-up run against its floor, measured in the same run:
# for N files, the median of 5 no-change `tide update` runs beside the
# median of 5 runs of walkstat (a plain C walk + stat of the same tree).
# Also the cold first run and a run after one file is edited.
# Usage: bench_nochange.sh [N...]   (default: 10000 100000)
set -eu
BUILD=${BUILD:-build}
root=$(pwd)
tide="$root/$BUILD/tide"
floor="$root/$BUILD/bench/walkstat"
sizes=${*:-10000 100000}
work=$(mktemp -d /tmp/tide-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

now_us() { date +%s%6N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

for n in $sizes; do
  tree="$work/tree$n"
  sh scripts/bench/gen_tree.sh "$n" "$tree"
  cp scripts/bench/nochange_pipeline.lua "$work/pipeline$n.lua"
  export BENCH_TREE="$tree"
  db="$work/state$n.db"
  t0=$(now_us)
  "$tide" update "$work/pipeline$n.lua" --db "$db" --quiet
  cold=$(( $(now_us) - t0 ))
  tide_runs=""
  floor_runs=""
  for i in 1 2 3 4 5; do
    t0=$(now_us)
    "$floor" "$tree" >/dev/null
    floor_runs="$floor_runs $(( $(now_us) - t0 ))"
    t0=$(now_us)
    "$tide" update "$work/pipeline$n.lua" --db "$db" --quiet
    tide_runs="$tide_runs $(( $(now_us) - t0 ))"
  done
  f=$(echo $floor_runs | tr ' ' '\n' | median)
  t=$(echo $tide_runs | tr ' ' '\n' | median)
  edited=$(find "$tree" -name '*.md' | head -n 1)
  echo "edited" >> "$edited"
  t0=$(now_us)
  json=$("$tide" update "$work/pipeline$n.lua" --db "$db" --json)
  one=$(( $(now_us) - t0 ))
  awk -v n="$n" -v t="$t" -v f="$f" -v cold="$cold" -v one="$one" 'BEGIN {
    printf "no-change, %d files: tide %.1f ms (%.2f us/file), floor %.1f ms" \
      " (%.2f us/file), ratio %.2f\n", n, t / 1000, t / n, f / 1000, f / n,
      t / f
    printf "cold run, %d files: %.1f ms (%.2f us/file)\n", n, cold / 1000,
      cold / n
    printf "one file edited, %d files: %.1f ms, %.2f x the floor walk\n", n,
      one / 1000, one / f
  }'
  echo "  one-edit run counts: $json"
done
