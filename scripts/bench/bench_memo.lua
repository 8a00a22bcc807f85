-- The cost of a memo hit of a small function inside a component, beside
-- the floor: a plain call of the same function. Median of 5 rounds.
local tide = require "tide"
local core = require "tide.core"

local N = 200000
local db = assert(arg[1], "usage: bench_memo.lua STATE_DB")
local small = tide.fn("small", { memo = true }, function(x) return x * 2 end)

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local hits, plains = {}, {}
local app = tide.app("bench_memo", function()
  tide.mount("loop", tide.fn("loop", function()
    for i = 1, 10 do small(i) end -- the entries the hits find
    for round = 1, 5 do
      local t = core.now_ms()
      for i = 1, N do small(i % 10 + 1) end
      hits[round] = (core.now_ms() - t) * 1000 / N
      local plain = small.body
      t = core.now_ms()
      for i = 1, N do plain(i % 10 + 1) end
      plains[round] = (core.now_ms() - t) * 1000 / N
    end
  end))
end)
local stats = assert(app:update { db = db })
local f = stats.functions.small
assert(f.hits == 5 * N and f.misses == 10, "unexpected memo counts")
local hit, plain = median(hits), median(plains)
print(("memo hit of a small function: %.2f us (floor, a plain call: %.3f us;"
  .. " %.0fx)"):format(hit, plain, hit / plain))
