#!/bin/sh
# The share of a 10k-file cold run's CPU samples spent in the Lua runtime
# (issue 8 asks for under 25%). A build of tide linked to the static
# liblua, so that perf names Lua's own functions (the shared library
# hides them), runs bench_cold.sh's pipeline RUNS times under `perf
# record`; a sample is the Lua runtime's when its function is one that
# liblua5.4.a defines, the collector's when that function is one of its
# collector's. Prints the median share, the range and the collector's
# part, and beside it the same for the same transform as a plain Lua loop
# (cold_floor.lua): how much of it is the user's own Lua. Needs perf
# (linux-perf) and liblua5.4.a (liblua5.4-dev); says so and skips without
# them.
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
if ! command -v perf >/dev/null 2>&1 ||
   ! perf record -q -o /dev/null true >/dev/null 2>&1; then
  echo "skipped: perf is not installed, or may not record here"
  exit 0
fi
liblua=$(find /usr/lib -name liblua5.4.a 2>/dev/null | head -n 1)
if [ -z "$liblua" ]; then
  echo "skipped: liblua5.4.a (liblua5.4-dev) is not installed"
  exit 0
fi
work=$(mktemp -d /tmp/tide-bench-lua-share.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The build finds tide's Lua files in ../lua beside its own folder.
ln -s "$root/lua" "$work/lua"
if ! make -C "$root" -j"$(nproc)" BUILD="$work/build" \
     LUA_LIBS="-Wl,-Bstatic -llua5.4 -Wl,-Bdynamic -lm -ldl" \
     "$work/build/tide" >"$work/make.log" 2>&1; then
  cat "$work/make.log" >&2
  exit 1
fi
nm --defined-only "$liblua" 2>/dev/null | awk 'NF == 3 { print $3 }' |
  sort -u >"$work/lua.syms"
sh "$root/scripts/bench/gen_tree.sh" 10000 "$work/tree"
cp "$root/scripts/bench/nochange_pipeline.lua" "$work/pipeline.lua"
export BENCH_TREE="$work/tree"

# profiled OUT CMD...: runs CMD under perf and appends to OUT the percent
# of its samples in the Lua runtime and in its collector.
profiled() {
  out=$1
  shift
  perf record -q -F 4999 -o "$work/perf.data" "$@" >/dev/null 2>&1
  perf report -i "$work/perf.data" --no-children --sort dso,sym --stdio \
    2>/dev/null | grep -E '^ +[0-9.]+%' |
    awk -v gc='mark|sweep|enterinc|atomic|luaS_remove|luaC_|freeobj|clear|youngcollection|separatetobefnz|correctgraylist|traverse|luaH_free|luaF_free' '
      NR == FNR { lua[$1] = 1; next }
      $2 == "tide" && ($NF in lua) {
        p = $1; sub("%", "", p); l += p; if ($NF ~ gc) g += p
      }
      END { printf "%.1f %.1f\n", l, g }' "$work/lua.syms" - >>"$out"
}

i=0
while [ "$i" -lt "$RUNS" ]; do
  rm -f "$work"/out.db* "$work"/state.db* "$work"/floor.db*
  (cd "$work" && profiled "$work/tide.s" "$work/build/tide" update \
    pipeline.lua --db state.db --quiet)
  profiled "$work/floor.s" "$work/build/tide" run \
    "$root/scripts/bench/cold_floor.lua" "$work/tree" "$work/floor.db"
  i=$((i + 1))
done
lua=$(median 1 "$work/tide.s")
gc=$(median 2 "$work/tide.s")
low=$(sort -n "$work/tide.s" | head -n 1 | awk '{ print $1 }')
high=$(sort -n "$work/tide.s" | tail -n 1 | awk '{ print $1 }')
floor=$(median 1 "$work/floor.s")
echo "Lua runtime's share of a 10k-file cold run: $lua% of the samples" \
  "(median of $RUNS, $low-$high%), the collector $gc%; the same" \
  "transform as a plain Lua loop: $floor% (the user's own Lua)"
awk -v s="$lua" 'BEGIN {
  printf "budget under 25%% of the samples: %s\n",
    (s + 0 < 25) ? "met" : "NOT met" }'
