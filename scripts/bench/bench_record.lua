-- Record checks beside their floors, in CPU time, medians of 5 rounds:
-- - a 3-field record (string key, string, integer) built with its
--   constructor, against constructing the same plain table;
-- - a record with a tide.vector(256) field, against constructing the same
--   plain table around a fresh copy of the 256 numbers (what a check that
--   normalises the vector must at least do).
-- Usage: tide run bench_record.lua
local tide = require "tide"

local clock, fmt = os.clock, string.format

local Doc = tide.record("Doc", {
  { "path", "string", key = true },
  { "title", "string" },
  { "size", "integer" },
})
local Emb = tide.record("Emb", {
  { "id", "string", key = true },
  { "embedding", tide.vector(256) },
})

local function median(f, n)
  local t = {}
  for round = 1, 5 do
    local t0 = clock()
    f(n)
    t[round] = (clock() - t0) / n
  end
  table.sort(t)
  return t[3]
end

local path, title = "docs/guide/cli.md", "The command line"
local plain3 = median(function(n)
  for i = 1, n do
    local r = { path = path, title = title, size = i }
    if r.size ~= i then error("unreachable") end
  end
end, 500000)
local check3 = median(function(n)
  for i = 1, n do
    local r = Doc { path = path, title = title, size = i }
    if r.size ~= i then error("unreachable") end
  end
end, 500000)
print(fmt("3-field record check: %.0f ns (floor %.0f ns: a plain table"
  .. " construction), ratio %.2f", check3 * 1e9, plain3 * 1e9,
  check3 / plain3))
print(fmt("budget <= 2x the floor: %s",
  check3 <= 2 * plain3 and "met" or "NOT met"))

local v = {}
for i = 1, 256 do v[i] = (i % 17) / 17 - 0.5 end
local plainv = median(function(n)
  for _ = 1, n do
    local copy = {}
    for i = 1, 256 do copy[i] = v[i] end
    local r = { id = path, embedding = copy }
    if r.id ~= path then error("unreachable") end
  end
end, 20000)
local checkv = median(function(n)
  for _ = 1, n do
    local r = Emb { id = path, embedding = v }
    if r.id ~= path then error("unreachable") end
  end
end, 20000)
print(fmt("tide.vector(256) record check: %.2f us (floor %.2f us: a plain"
  .. " table around a copy of the 256 numbers), ratio %.2f", checkv * 1e6,
  plainv * 1e6, checkv / plainv))
print(fmt("budget <= 5 us per check: %s",
  checkv <= 5e-6 and "met" or "NOT met"))
