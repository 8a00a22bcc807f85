#!/bin/sh
# The no-change run over a 1M-line JSON Lines source: microseconds per line
# beyond reading the file, and peak memory (bench_sources.sh at 1,000,000
# lines, median of BENCH_RUNS runs, default 3). It takes several minutes
# with today's engine (a cold run, then about 70 s per no-change run), so
# it runs only when asked:
#   BENCH_BIG=1 make bench                  (everything, this included)
#   BENCH_BIG=1 sh scripts/bench/bench_big.sh   (this alone, after make bench)
set -eu
if [ "${BENCH_BIG:-0}" != 1 ]; then
  echo "skipped: the 1M-line JSON Lines run takes minutes;" \
    "BENCH_BIG=1 make bench runs it"
  exit 0
fi
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_BUDGET_US=5
BENCH_BUDGET_MB=150
export BENCH_RUNS BENCH_BUDGET_US BENCH_BUDGET_MB
exec sh "$(dirname "$0")/bench_sources.sh" 1000000 json
