#!/bin/sh
# Record checks: a 3-field record and a record with a vector(256), beside
# plain tables and copies made in Lua.
set -eu
BUILD=${BUILD:-build}
"$BUILD/tide" run scripts/bench/bench_record.lua
