#!/bin/sh
# `make bench`: runs every benchmark script; each prints its figures as
# ratios against a floor measured in the same run, and "budget ...: met"
# or "NOT met" under each figure that has a budget (issue 8's table).
# Ends with the budget lines again, each under its figure, and the time
# the whole run took. BENCH_RUNS sets how many runs each median is of
# (default 5); BENCH_BIG=1 adds the 1M-line JSON Lines run (bench_big.sh),
# which takes several minutes.
BUILD=${BUILD:-build}
export BUILD
out=$(mktemp -d /tmp/tide-bench-run.XXXXXX)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
for b in scripts/bench/bench_*.sh; do
  [ -f "$b" ] || continue
  echo "== $b"
  { sh "$b" 2>&1 || echo "$b" >>"$out/failed"; } | tee -a "$out/log"
done
echo "== budgets"
grep -B1 '^budget ' "$out/log" | grep -v '^--$'
echo "== make bench took $(( $(date +%s) - start )) s"
if [ -s "$out/failed" ]; then
  echo "failed: $(tr '\n' ' ' <"$out/failed")"
  exit 1
fi
