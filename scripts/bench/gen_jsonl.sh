#!/bin/sh
# Writes a JSON Lines file of N objects for the benchmarks, each
# {"id","title","body","n"} and a function of its line number only (the
# same values gen_rows.lua puts in SQLite). Usage: gen_jsonl.sh N FILE
set -eu
if [ $# -ne 2 ]; then
  echo "usage: gen_jsonl.sh N FILE" >&2
  exit 2
fi
awk -v n="$1" 'BEGIN {
  for (i = 0; i < n; i++)
    printf "{\"id\":\"r%07d\",\"title\":\"Record %d\",\"body\":\"This is" \
      " record %d of the benchmark source. It has a body of about a" \
      " hundred bytes, %d words long.\",\"n\":%d}\n", i, i, i, i % 97, i
}' >"$2"
