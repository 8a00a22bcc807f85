#!/bin/sh
# Frames of a host that embeds tide live (issue 10): examples/embed_host
# (a 60-frame loop giving tide 1 ms a frame) runs its pipeline over a
# tree of N files (default 10000, gen_tree.sh) for 12 seconds while one
# file is written every 100 ms; RUNS runs. Prints the median over the
# runs of the longest step tide took and of the steps over 4 ms, beside
# the floor: the longest frame of the same loop with tide's step left out
# (EMBED_NO_STEP=1, the same writes), the machine's own noise.
# Usage: bench_frames.sh [N]
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
n=${1:-10000}
host="$root/$BUILD/examples/embed_host"
work=$(mktemp -d /tmp/tide-bench-frames.XXXXXX)
trap 'rm -rf "$work"' EXIT
sh "$root/scripts/bench/gen_tree.sh" "$n" "$work/tree"
cp "$root/examples/embed_host/main.lua" "$work/main.lua"

# run FLOOR: one 12-second run; appends "longest_step_us steps_over_4ms
# longest_frame_us" to $work/FLOOR (0: tide steps, 1: the floor).
run() {
  rm -rf "$work/out" "$work/.tide"
  (cd "$work" && EMBED_DOCS="$work/tree" EMBED_NO_STEP="$1" \
     exec "$host" main.lua 12 >"$work/log" 2>&1) &
  host_pid=$!
  # The catch-up runs first; writes start once it watches.
  i=0
  until grep -q "watching" "$work/log" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -gt 600 ] && { echo "$0: embed_host did not start" >&2; exit 1; }
    sleep 0.1
  done
  k=0
  while kill -0 "$host_pid" 2>/dev/null; do
    k=$((k + 1))
    f=$(( (k * 37) % n ))
    printf '# changed %d\n' "$k" >"$work/tree/$(printf 'd%02d/d%02d/f%06d.md' \
      $((f / 10000)) $((f / 100 % 100)) "$f")"
    sleep 0.1
  done
  wait "$host_pid"
  tr '\r' '\n' <"$work/log" | awk '/longest tide step/ {
    for (i = 1; i <= NF; i++) {
      if ($i == "step") step = $(i + 1)
      if ($i == "frame") frame = $(i + 1)
      if ($i == "steps" && $(i + 1) == "over") over = $(i - 1)
    }
    printf "%d %d %d\n", step * 1000, over, frame * 1000 }' >>"$work/$1"
}

r=0
while [ "$r" -lt "$RUNS" ]; do
  run 0
  run 1
  r=$((r + 1))
done
step=$(median 1 "$work/0")
over=$(median 2 "$work/0")
floor=$(median 3 "$work/1")
printf 'embed_host over %d files, a write every 100 ms, 12 s, %d runs:\n' \
  "$n" "$RUNS"
printf '  longest tide step: median %.2f ms (runs: %s); steps over 4 ms: median %d\n' \
  "$(echo "$step" | awk '{ print $1 / 1000 }')" \
  "$(awk '{ printf "%.1f ", $1 / 1000 }' "$work/0")" "$over"
printf '  floor, the same loop without tide'"'"'s step: longest frame median %.2f ms\n' \
  "$(echo "$floor" | awk '{ print $1 / 1000 }')"
verdict "$(echo "$step" | awk '{ print $1 / 1000 }')" 4 \
  "longest tide step of a run <= 4 ms (median over runs)"
