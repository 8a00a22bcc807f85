-- The cost of a memo hit of a small function called inside a component,
-- beside the floor: a plain Lua call of the same function. Each figure is
-- the median of 5 rounds of N calls, in CPU time.
-- Usage: tide run bench_memo.lua STATE_DB
local tide = require "tide"

local N = 200000
local clock = os.clock
local db = assert(arg[1], "usage: bench_memo.lua STATE_DB")
local function plain(x) return x * 2 end
local small = tide.fn("small", { memo = true }, plain)

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local hits, plains = {}, {}
local app = tide.app("bench_memo", function()
  tide.mount("loop", tide.fn("loop", function()
    for i = 1, 10 do small(i) end -- the entries the hits find
    for round = 1, 5 do
      local t = clock()
      for i = 1, N do small(i % 10 + 1) end
      hits[round] = (clock() - t) * 1e9 / N
      t = clock()
      for i = 1, N do plain(i % 10 + 1) end
      plains[round] = (clock() - t) * 1e9 / N
    end
  end))
end)
local stats = assert(app:update { db = db })
local f = stats.functions.small
assert(f.hits == 5 * N and f.misses == 10, "unexpected memo counts")
local hit, plain = median(hits), median(plains)
print(("memo hit of a small function in a component: %.0f ns/hit (floor"
  .. " %.1f ns: a plain Lua call), ratio %.0f"):format(hit, plain,
  hit / plain))
print(("budget <= 500 ns/hit: %s"):format(hit <= 500 and "met" or "NOT met"))
