#!/bin/sh
# Live-mode latency (issue 10): `tide live` runs nochange_pipeline.lua over
# a tree of N files (default 10000) made by gen_tree.sh; livelat writes one
# file at a time (RUNS rounds of 20, 100 ms apart), then a stream of 100
# files one every 10 ms, and measures for each file the time until its
# row holds the new title, polled from another process. The floor is the
# same writes seen by a bare C inotify watcher on the same tree. Prints
# medians and 99th percentiles, tide's beside the floor's.
# Usage: bench_live.sh [N]
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
n=${1:-10000}
probe="$root/$BUILD/bench/livelat"
work=$(mktemp -d /tmp/tide-bench-live.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

sh "$root/scripts/bench/gen_tree.sh" "$n" "$work/tree"
cp "$root/scripts/bench/nochange_pipeline.lua" "$work/pipeline.lua"
export BENCH_TREE="$work/tree"
(cd "$work" && exec "$tide" live pipeline.lua --db state.db \
  >"$work/out" 2>"$work/err") &
pid=$!
i=0
until grep -q watching "$work/err" 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -gt 1200 ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "$0: tide live did not start watching:" >&2
    cat "$work/err" >&2
    exit 1
  fi
  sleep 0.1
done

# pct P FILE: the P-th percentile of a column of microseconds, in ms.
pct() {
  sort -n "$2" | awk -v p="$1" '{ a[NR] = $1 } END {
    i = int((NR * p + 99) / 100); if (i < 1) i = 1
    printf "%.2f", a[i] / 1000 }'
}

report() { # WHAT TIDE_FILE FLOOR_FILE
  printf "%s: median %s ms, p99 %s ms (floor: median %s ms, p99 %s ms:" \
    "$1" "$(pct 50 "$2")" "$(pct 99 "$2")" "$(pct 50 "$3")" "$(pct 99 "$3")"
  printf " an inotify event reaching a bare C watcher)\n"
}

r=0
while [ "$r" -lt "$RUNS" ]; do
  "$probe" "$work/tree" 20 100 floor >>"$work/one.floor"
  "$probe" "$work/tree" 20 100 tide "$work/out.db" >>"$work/one.tide"
  r=$((r + 1))
done
"$probe" "$work/tree" 100 10 floor >"$work/stream.floor"
"$probe" "$work/tree" 100 10 tide "$work/out.db" >"$work/stream.tide"
report "one file written -> its row visible, live over $n files" \
  "$work/one.tide" "$work/one.floor"
verdict "$(pct 50 "$work/one.tide")" 10 "median <= 10 ms"
verdict "$(pct 99 "$work/one.tide")" 50 "p99 <= 50 ms"
report "100 files, one every 10 ms -> each row visible" \
  "$work/stream.tide" "$work/stream.floor"
kill -TERM "$pid"
wait "$pid" || true
pid=
