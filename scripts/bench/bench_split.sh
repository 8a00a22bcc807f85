#!/bin/sh
# Splitter benchmark on large real text the system ships: the license
# texts in /usr/share/common-licenses (concatenated, then repeated to
# about 8 MB so that a run is long enough to time) and the C headers
# under /usr/include (concatenated, capped at 50 MB). Prints text.split's
# MB/s beside a floor, a plain Lua line-by-line scan of the same bytes,
# and their ratio (the target is >= 0.33); then, for context only, a C
# memchr line count of the same files. BUILD names the build dir.
set -eu
BUILD=${BUILD:-build}
LUA=${LUA:-lua5.4}
SIZE=${SIZE:-1000}
OVERLAP=${OVERLAP:-100}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat /usr/share/common-licenses/* >"$tmp/once.txt"
: >"$tmp/licenses.txt"
while [ "$(wc -c <"$tmp/licenses.txt")" -lt 8000000 ]; do
  cat "$tmp/once.txt" >>"$tmp/licenses.txt"
done
find /usr/include -type f -name '*.h' | LC_ALL=C sort |
  xargs cat 2>/dev/null | head -c 50000000 >"$tmp/headers.h"

printf '%s\n' "text.split size=$SIZE overlap=$OVERLAP;" \
  "floor: a Lua line scan, for _ in s:gmatch('[^\\n]+') do ... end"
LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;" \
LUA_CPATH="$root/$BUILD/?.so;;" \
  "$LUA" "$root/scripts/bench/bench_split.lua" "$SIZE" "$OVERLAP" \
  "$tmp/licenses.txt" plain "$tmp/licenses.txt" markdown \
  "$tmp/headers.h" c

${CC:-cc} -O2 -o "$tmp/floor" "$root/scripts/bench/bench_split_floor.c"
"$tmp/floor" "$tmp/licenses.txt" "$tmp/headers.h" | sed "s|$tmp/||"
