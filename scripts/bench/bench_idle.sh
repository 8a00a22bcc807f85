#!/bin/sh
# Idle live mode (issue 10): `tide live` over a tree of N files (default
# 10000, gen_tree.sh) that nothing changes, for SECONDS after it caught up
# (BENCH_IDLE_S; default 30, issue 10's budget is stated over 600). Reads
# the process's own counters from /proc: the CPU time it used while idle
# (utime + stime) and its resident memory at the start and at the end of
# the window, sampled every tenth of the window. The floor is the same
# counters of `sleep` over the same window: what doing nothing costs.
# Usage: bench_idle.sh [N]
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
n=${1:-10000}
seconds=${BENCH_IDLE_S:-30}
work=$(mktemp -d /tmp/tide-bench-idle.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
sh "$root/scripts/bench/gen_tree.sh" "$n" "$work/tree"
cp "$root/scripts/bench/nochange_pipeline.lua" "$work/pipeline.lua"

# ticks PID: utime + stime in clock ticks; rss_kb PID: VmRSS in KB.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# watch PID: samples PID over the window; prints "cpu_ms rss_start_kb
# rss_max_kb rss_end_kb".
watch() {
  hz=$(getconf CLK_TCK)
  t0=$(ticks "$1")
  r0=$(rss_kb "$1")
  rmax=$r0
  i=0
  while [ "$i" -lt 10 ]; do
    sleep "$(awk -v s="$seconds" 'BEGIN { print s / 10 }')"
    r=$(rss_kb "$1")
    [ "$r" -gt "$rmax" ] && rmax=$r
    i=$((i + 1))
  done
  t1=$(ticks "$1")
  awk -v a="$t0" -v b="$t1" -v hz="$hz" -v r0="$r0" -v rm="$rmax" \
    -v r1="$(rss_kb "$1")" 'BEGIN {
    printf "%.0f %d %d %d\n", (b - a) * 1000 / hz, r0, rm, r1 }'
}

(cd "$work" && BENCH_TREE="$work/tree" exec "$tide" live pipeline.lua \
   --db state.db >"$work/out" 2>"$work/err") &
pid=$!
i=0
until grep -q "watching" "$work/err" 2>/dev/null; do
  i=$((i + 1))
  [ "$i" -gt 600 ] && { echo "$0: tide live did not start" >&2; exit 1; }
  sleep 0.1
done
sleep 1 # the index the catch-up wrote loads on its thread
set -- $(watch "$pid")
kill -TERM "$pid"
wait "$pid" || true
pid=
sleep $((seconds + 5)) &
floor_pid=$!
set -- "$@" $(watch "$floor_pid")
kill "$floor_pid" 2>/dev/null || true
awk -v n="$n" -v s="$seconds" -v cpu="$1" -v r0="$2" -v rm="$3" \
  -v r1="$4" -v fcpu="$5" 'BEGIN {
  printf "idle live mode over %d files, %d s: %d ms of CPU (floor: %d ms," \
    " sleep over the same window); resident memory %.1f MB at the start," \
    " %.1f MB at most, %.1f MB at the end\n", n, s, cpu, fcpu, r0 / 1024,
    rm / 1024, r1 / 1024 }'
verdict "$(awk -v c="$1" -v s="$seconds" 'BEGIN { print c / s }')" 1 \
  "idle CPU <= 1 ms a second (no polling)"
verdict "$(awk -v a="$2" -v b="$3" 'BEGIN { print b - a }')" 1024 \
  "resident memory grows <= 1 MB over the window (flat)"
