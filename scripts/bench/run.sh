#!/bin/sh
# `make bench`: runs every benchmark script; each prints its figures as
# ratios against a floor measured in the same run.
BUILD=${BUILD:-build}
export BUILD
status=0
for b in scripts/bench/bench_*.sh; do
  [ -f "$b" ] || continue
  echo "== $b"
  sh "$b" || status=1
done
exit $status
