#!/bin/sh
# A memo hit of a small function inside a component, beside a plain call
# of it (bench_memo.lua): nanoseconds per hit and the ratio.
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
work=$(mktemp -d /tmp/tide-bench-memo.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$tide" run "$root/scripts/bench/bench_memo.lua" "$work/state.db"
