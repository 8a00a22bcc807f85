#!/bin/sh
# Concurrency figures (issue 9): parallel Lua, waits that overlap,
# batching, dispatch overhead (bench_concurrency.lua).
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
work=$(mktemp -d /tmp/tide-bench-conc.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$tide" run "$root/scripts/bench/bench_concurrency.lua" "$work" "$tide"
