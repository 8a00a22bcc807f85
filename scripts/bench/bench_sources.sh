#!/bin/sh
# No-change runs over a tide.json.lines source and a sqlite.rows source of
# N items (gen_jsonl.sh, gen_rows.lua): after a cold run, RUNS no-change
# `tide update` runs of sources_pipeline.lua (one memoized component and
# one SQLite row per item) interleaved with RUNS runs of the floor,
# sources_floor.lua (plain Lua reading the same file's lines, or the same
# query's rows), all timed as whole processes by runstat; medians. Prints
# microseconds per item beyond the floor and the no-change run's peak
# memory; for JSON Lines, also reading and decoding each line, for context.
# Usage: bench_sources.sh [N [json|sqlite...]]   (default: 100000 json
# sqlite; BENCH_RUNS runs). BENCH_BUDGET_US (default 3) and BENCH_BUDGET_MB
# (default none) are the budgets the figures are checked against.
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
n=${1:-100000}
[ $# -gt 0 ] && shift
kinds=${*:-json sqlite}
budget_us=${BENCH_BUDGET_US:-3}
budget_mb=${BENCH_BUDGET_MB:-}
work=$(mktemp -d /tmp/tide-bench-sources.XXXXXX)
trap 'rm -rf "$work"' EXIT
floor_lua="$root/scripts/bench/sources_floor.lua"

for kind in $kinds; do
  dir="$work/$kind"
  mkdir -p "$dir"
  case $kind in
    json) data="$dir/items.jsonl"
          sh "$root/scripts/bench/gen_jsonl.sh" "$n" "$data"
          what="$n-line tide.json.lines"
          floor_what="reading the lines" ;;
    sqlite) data="$dir/items.db"
            "$tide" run "$root/scripts/bench/gen_rows.lua" "$data" "$n"
            what="$n-row sqlite.rows"
            floor_what="reading the rows" ;;
    *) echo "$0: unknown source kind $kind (json or sqlite)" >&2
       exit 2 ;;
  esac
  cp "$root/scripts/bench/sources_pipeline.lua" "$dir/pipeline.lua"
  export BENCH_SOURCE="$kind" BENCH_DATA="$data"
  db="$dir/state.db"
  timed "$dir/cold.t" "$tide" update "$dir/pipeline.lua" --db "$db" --quiet
  expect_nochange "$n" "$tide" update "$dir/pipeline.lua" --db "$db" --json
  i=0
  while [ "$i" -lt "$RUNS" ]; do
    got=$(timed "$dir/floor.t" "$tide" run "$floor_lua" "$kind" "$data")
    if [ "$got" != "$n" ]; then
      echo "$0: the floor read $got items, expected $n" >&2
      exit 1
    fi
    timed "$dir/tide.t" "$tide" update "$dir/pipeline.lua" --db "$db" \
      --quiet
    if [ "$kind" = json ]; then
      timed "$dir/decode.t" "$tide" run "$floor_lua" json+decode "$data" \
        >/dev/null
    fi
    i=$((i + 1))
  done
  t=$(median 1 "$dir/tide.t")
  f=$(median 1 "$dir/floor.t")
  beyond=$(awk -v n="$n" -v t="$t" -v f="$f" 'BEGIN {
    printf "%.2f", (t - f) / n }')
  awk -v w="$what" -v n="$n" -v t="$t" -v f="$f" -v b="$beyond" \
      -v fw="$floor_what" 'BEGIN {
    printf "no-change run over a %s source: %.2f us/item beyond the floor" \
      " (tide %.2f us/item, floor %.2f us/item: %s), ratio %.2f\n", w, b,
      t / n, f / n, fw, t / f }'
  verdict "$beyond" "$budget_us" "<= $budget_us us/item beyond the floor"
  if [ "$kind" = json ]; then
    awk -v n="$n" -v d="$(median 1 "$dir/decode.t")" -v t="$t" 'BEGIN {
      printf "  context: reading and decoding each line in plain Lua" \
        " %.2f us/line; tide beyond that %.2f us/line\n", d / n,
        (t - d) / n }'
  fi
  t_kb=$(median 2 "$dir/tide.t")
  mb=$(awk -v k="$t_kb" 'BEGIN { printf "%.1f", k / 1024 }')
  awk -v w="$what" -v mb="$mb" -v f="$(median 2 "$dir/floor.t")" \
      -v t="$t_kb" 'BEGIN {
    printf "peak memory, no-change run over a %s source: %.1f MB (floor" \
      " %.1f MB), ratio %.2f\n", w, mb, f / 1024, t / f }'
  if [ -n "$budget_mb" ]; then
    verdict "$mb" "$budget_mb" "<= $budget_mb MB"
  fi
  awk -v n="$n" -v t="$(median 1 "$dir/cold.t")" 'BEGIN {
    printf "  context: the cold run took %.2f us/item\n", t / n }'
  rm -rf "$dir"
done
