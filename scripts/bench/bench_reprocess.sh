#!/bin/sh
# A run that reruns every component (each file of the tree edited, as a
# logic change would too) beside a cold run of the same pipeline, whose
# components all run as well. For N files made by gen_tree.sh, with
# nochange_pipeline.lua (one memoized component per file, one SQLite row
# per file): RUNS times, a cold run (a fresh state store and output
# database) and then, on the state that cold run left, a run over the
# same tree with a line added to every file, each timed as a
# whole process by runstat. Prints the medians and the rerun's ratio to
# the cold run: what a component costs beyond a cold one when the store
# remembers it (its previous record and target states read, its row and
# target state updated rather than inserted).
# Usage: bench_reprocess.sh [N]   (default: 10000; BENCH_RUNS runs)
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
n=${1:-10000}
work=$(mktemp -d /tmp/tide-bench-reprocess.XXXXXX)
trap 'rm -rf "$work"' EXIT

sh "$root/scripts/bench/gen_tree.sh" "$n" "$work/original"
cp -R "$work/original" "$work/edited"
find "$work/edited" -type f -name '*.md' -exec sh -c \
  'for f do printf "\nEdited.\n" >> "$f"; done' sh {} +
cp "$root/scripts/bench/nochange_pipeline.lua" "$work/pipeline.lua"
export BENCH_TREE="$work/tree"

i=0
while [ "$i" -lt "$RUNS" ]; do
  rm -rf "$work/tree" "$work"/out.db* "$work"/state.db*
  cp -R "$work/original" "$work/tree"
  timed "$work/cold.t" "$tide" update "$work/pipeline.lua" \
    --db "$work/state.db" --quiet
  rm -rf "$work/tree"
  cp -R "$work/edited" "$work/tree"
  timed "$work/rerun.t" "$tide" update "$work/pipeline.lua" \
    --db "$work/state.db" --quiet
  rows=$("$tide" run "$root/scripts/bench/count_rows.lua" "$work/out.db" docs)
  if [ "$rows" != "$n" ]; then
    echo "$0: out.db has $rows rows, expected $n" >&2
    exit 1
  fi
  i=$((i + 1))
done
cold=$(median 1 "$work/cold.t")
rerun=$(median 1 "$work/rerun.t")
awk -v n="$n" -v c="$cold" -v r="$rerun" 'BEGIN {
  printf "rerun of every component, %d files: %.2f us/file (cold run %.2f" \
    " us/file), ratio %.2f\n", n, r / n, c / n, r / c }'
