-- Record check cost. Each figure is the median of 9 rounds; in a round
-- every case runs once, so a ratio is taken against a floor measured
-- moments before, and its median reported.
local tide = require "tide"

local clock, fmt = os.clock, string.format
local N = tonumber(arg and arg[1]) or 200000
local ROUNDS = 9

local R3 = tide.record("R3", { { "id", "string", key = true },
                               { "line", "integer" },
                               { "score", "number" } })
local Doc = tide.record("Doc", { { "id", "string" },
                                 { "embedding", tide.vector(256) } })
local Tagged = tide.record("Tagged", { { "tags", tide.list("string") } })

local emb = {}
for i = 1, 256 do emb[i] = i / 256 end
local tags = { "a", "b", "c", "d", "e", "f", "g", "h" }
local mt = {}
local sink

local cases = {
  { "table", N, function(n)
    for i = 1, n do sink = { id = "a", line = i, score = 0.5 } end
  end },
  { "copy", N, function(n)
    for i = 1, n do
      local v = { id = "a", line = i, score = 0.5 }
      sink = setmetatable({ id = v.id, line = v.line, score = v.score }, mt)
    end
  end },
  { "record", N, function(n)
    for i = 1, n do sink = R3 { id = "a", line = i, score = 0.5 } end
  end },
  { "vcopy", N // 50, function(n)
    for _ = 1, n do
      sink = setmetatable({ id = "a",
                            embedding = table.move(emb, 1, 256, 1, {}) }, mt)
    end
  end },
  { "vector", N // 50, function(n)
    for _ = 1, n do sink = Doc { id = "a", embedding = emb } end
  end },
  { "list", N // 4, function(n)
    for _ = 1, n do sink = Tagged { tags = tags } end
  end },
}

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local us, ratio = {}, { record = {}, copy = {}, vector = {} }
for _, c in ipairs(cases) do us[c[1]] = {} end
for r = 1, ROUNDS do
  local round = {}
  for _, c in ipairs(cases) do
    collectgarbage()
    collectgarbage()
    local t0 = clock()
    c[3](c[2])
    round[c[1]] = (clock() - t0) / c[2] * 1e6
    us[c[1]][r] = round[c[1]]
  end
  ratio.copy[r] = round.copy / round.table
  ratio.record[r] = round.record / round.table
  ratio.vector[r] = round.vector / round.vcopy
end
for k, v in pairs(us) do us[k] = median(v) end
print(fmt("plain table of 3 fields (floor)      %8.3f us", us.table))
print(fmt("copy of it with a metatable, in Lua  %8.3f us  %5.2fx floor",
          us.copy, median(ratio.copy)))
print(fmt("3-field record check                 %8.3f us  %5.2fx floor",
          us.record, median(ratio.record)))
print(fmt("record of 256 floats copied in Lua   %8.3f us", us.vcopy))
print(fmt("record with a vector(256) checked    %8.3f us  %5.2fx the copy",
          us.vector, median(ratio.vector)))
print(fmt("record with a list of 8 strings      %8.3f us", us.list))
