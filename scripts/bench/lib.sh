# Shared by the bench_*.sh scripts, which source it (run.sh runs only
# bench_*.sh, so this file is never run on its own). It sets root, tide,
# runstat and RUNS (BENCH_RUNS, default 5) and defines:
#   timed OUT CMD...        runs CMD under runstat: appends "US KB" to OUT
#   median COLUMN FILE      the median of a column of numbers
#   verdict VALUE BUDGET TEXT   prints "budget TEXT: met" or "NOT met"
#   expect_nochange N CMD...    runs CMD (an update with --json), exits
#                           unless it carried over N components
# BUILD names the build directory (default build).
BUILD=${BUILD:-build}
# shellcheck disable=SC2034 # RUNS is for the scripts that source this.
RUNS=${BENCH_RUNS:-5}
root=$(cd "$(dirname "$0")/../.." && pwd)
tide="$root/$BUILD/tide"
runstat="$root/$BUILD/bench/runstat"
for bin in "$tide" "$runstat"; do
  if [ ! -x "$bin" ]; then
    echo "$0: $bin is missing: run make bench" >&2
    exit 2
  fi
done

timed() {
  out=$1
  shift
  "$runstat" "$out" "$@"
}

median() {
  awk -v c="$1" '{ print $c }' "$2" | sort -n |
    awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

verdict() {
  awk -v v="$1" -v b="$2" -v t="$3" 'BEGIN {
    printf "budget %s: %s\n", t, (v + 0 <= b + 0) ? "met" : "NOT met"
  }'
}

expect_nochange() {
  want=$1
  shift
  json=$("$@")
  case $json in
    *"\"unchanged\":$want,"*) ;;
    *) echo "$0: the run was not a no-change run: $json" >&2
       exit 1 ;;
  esac
}
