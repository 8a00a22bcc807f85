#!/bin/sh
# A memo hit of a small function, beside a plain call of it.
set -eu
BUILD=${BUILD:-build}
work=$(mktemp -d /tmp/tide-bench-memo.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$BUILD/tide" run scripts/bench/bench_memo.lua "$work/state.db"
