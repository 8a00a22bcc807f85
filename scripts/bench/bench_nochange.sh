#!/bin/sh
# The no-change catch-up run against its floor, measured in the same run:
# for N files made by gen_tree.sh, RUNS no-change `tide update` runs of
# nochange_pipeline.lua (one memoized component and one SQLite row per
# file) interleaved with RUNS runs of walkstat (a plain C walk + stat of
# the same tree), both timed as whole processes by runstat; medians. Then,
# for context, a run after one file is edited, against the same floor.
# Usage: bench_nochange.sh [N...]   (default: 10000 100000; BENCH_RUNS runs)
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
floor="$root/$BUILD/bench/walkstat"
sizes=${*:-10000 100000}
work=$(mktemp -d /tmp/tide-bench-nochange.XXXXXX)
trap 'rm -rf "$work"' EXIT

for n in $sizes; do
  dir="$work/$n"
  mkdir -p "$dir"
  sh "$root/scripts/bench/gen_tree.sh" "$n" "$dir/tree"
  cp "$root/scripts/bench/nochange_pipeline.lua" "$dir/pipeline.lua"
  export BENCH_TREE="$dir/tree"
  db="$dir/state.db"
  "$tide" update "$dir/pipeline.lua" --db "$db" --quiet # the cold run
  expect_nochange "$n" "$tide" update "$dir/pipeline.lua" --db "$db" --json
  i=0
  while [ "$i" -lt "$RUNS" ]; do
    timed "$dir/floor.t" "$floor" "$dir/tree" >/dev/null
    timed "$dir/tide.t" "$tide" update "$dir/pipeline.lua" --db "$db" \
      --quiet
    i=$((i + 1))
  done
  t=$(median 1 "$dir/tide.t")
  f=$(median 1 "$dir/floor.t")
  ratio=$(awk -v t="$t" -v f="$f" 'BEGIN { printf "%.2f", t / f }')
  awk -v n="$n" -v t="$t" -v f="$f" -v r="$ratio" 'BEGIN {
    printf "no-change run, %d files: %.1f ms, %.2f us/file (floor %.1f ms," \
      " %.2f us/file: a C walk + stat), ratio %s\n", n, t / 1000, t / n,
      f / 1000, f / n, r }'
  if [ "$n" -eq 100000 ]; then
    verdict "$ratio" 2 "<= 2x the floor at 100000 files"
  fi
  edited=$(find "$dir/tree" -name '*.md' | head -n 1)
  echo "edited" >>"$edited"
  timed "$dir/one.t" "$tide" update "$dir/pipeline.lua" --db "$db" --quiet
  awk -v n="$n" -v t="$(median 1 "$dir/one.t")" -v f="$f" 'BEGIN {
    printf "one file edited among %d: %.1f ms (floor %.1f ms), ratio %.2f\n",
      n, t / 1000, f / 1000, t / f }'
  rm -rf "$dir"
done
