#!/bin/sh
# Embedding calls, batched and concurrent (issue 11): N (default 2000)
# texts, one component each, through ai.embedder{ batch = 64,
# concurrency = 4 } against the test model server
# (test/server/model_server.lua) answering every batch after LATENCY ms
# (default 20) with vectors of DIMS (default 384) numbers (from a pool
# encoded once, so that the server's own work stays small), from a cold
# state each run. Two floors measured in the same run against the same
# server: curl sending the same ceil(N/64) batches, 4 at a time (what the
# server itself allows), and the issue's ideal ceil(N/64)/4 x LATENCY.
# Usage: bench_embed.sh [N] [LATENCY] [DIMS]
set -eu
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"
n=${1:-2000}
latency=${2:-20}
dims=${3:-384}
work=$(mktemp -d /tmp/tide-bench-embed.XXXXXX)
lua5.4 "$root/test/server/model_server.lua" --port-file "$work/port" \
  --latency-ms "$latency" --dims "$dims" --pool 4096 >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
i=0
while [ ! -s "$work/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
url="http://127.0.0.1:$(cat "$work/port")"

# The batches curl sends: the same texts, 64 to a request.
lua5.4 - "$work" "$n" <<'LUA'
local work, n = arg[1], tonumber(arg[2])
local b = 0
for first = 1, n, 64 do
  local texts = {}
  for i = first, math.min(n, first + 63) do
    texts[#texts + 1] = ('"text number %d about things"'):format(i)
  end
  b = b + 1
  local f = assert(io.open(("%s/batch%d.json"):format(work, b), "w"))
  f:write('{"model":"bench","input":[', table.concat(texts, ","), "]}")
  f:close()
end
LUA
set -- --parallel --parallel-max 4 --no-progress-meter -H "Content-Type: application/json"
first=1
for f in "$work"/batch*.json; do
  [ $first -eq 1 ] || set -- "$@" --next
  set -- "$@" -d "@$f" -o /dev/null "$url/v1/embeddings"
  first=0
done

cat >"$work/pipeline.lua" <<LUA
local tide = require "tide"
local ai = require "tide.ai"
local embed = ai.embedder{ url = "$url/v1", model = "bench", dims = $dims,
                           batch = 64, concurrency = 4 }
local texts = {}
for i = 1, $n do texts[("t%05d"):format(i)] = ("text number %d about things"):format(i) end
local index = tide.fn("index", function(text) assert(#embed(text) == $dims) end)
return tide.app("bench_embed", function() tide.mount_each(index, texts) end)
LUA

: >"$work/floor"
: >"$work/tide"
for r in $(seq "$RUNS"); do
  timed "$work/floor" curl "$@"
  rm -rf "$work/.tide"
  (cd "$work" && "$tide" update pipeline.lua --json >"$work/report")
  awk -F'"elapsed_ms":' '{ split($2, a, ","); print a[1] * 1000 }' \
    "$work/report" >>"$work/tide"
done
grep -q "\"misses\":$n," "$work/report" || {
  echo "$0: the embedder did not embed $n texts" >&2; exit 1; }
f=$(median 1 "$work/floor")
t=$(median 1 "$work/tide")
awk -v n="$n" -v l="$latency" -v d="$dims" -v t="$t" -v f="$f" 'BEGIN {
  b = int((n + 63) / 64); ideal = b / 4 * l * 1000
  printf "%d texts, ai.embedder batch 64 concurrency 4, server %d ms a " \
    "batch, %d dims: %.1f ms (floors: curl sending the %d batches 4 at a " \
    "time %.1f ms, ratio %.2f; the ideal %.0f ms, ratio %.2f)\n",
    n, l, d, t / 1000, b, f / 1000, t / f, ideal / 1000, t / ideal }'
ratio=$(awk -v t="$t" -v n="$n" -v l="$latency" 'BEGIN {
  printf "%.2f", t / (int((n + 63) / 64) / 4 * l * 1000) }')
verdict "$ratio" 1.5 "<= 1.5x the ideal"
