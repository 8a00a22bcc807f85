#!/bin/sh
# Record checks beside plain table constructions (bench_record.lua): a
# 3-field record as a ratio, a record with a tide.vector(256) field in
# microseconds per check.
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
"$tide" run "$root/scripts/bench/bench_record.lua"
