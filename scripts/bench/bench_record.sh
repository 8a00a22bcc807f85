#!/bin/sh
# Record checks beside plain table constructions (bench_record.lua): a
# 3-field record as a ratio, a record with a tide.vector(256) field in
# microseconds per check. Then, for context, the same loops with a C
# constructor that copies and checks nothing (bench_record_floor.c): what
# a check that returns a copy costs through Lua's C API before checking.
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
floor="$root/$BUILD/bench/bench_record_floor"
if [ ! -x "$floor" ]; then
  echo "$0: $floor is missing: run make bench" >&2
  exit 2
fi
"$tide" run "$root/scripts/bench/bench_record.lua"
"$floor"
