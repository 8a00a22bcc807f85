-- Splitter throughput: text.split against a floor, a plain line-by-line
-- scan of the same bytes in Lua (`for line in s:gmatch("[^\n]+")`),
-- the least a Lua program does to walk a text by lines. Each figure is
-- the median of 5 runs, in CPU time.
-- Usage: lua bench_split.lua SIZE OVERLAP FILE LANGUAGE [FILE LANGUAGE ...]
local text = require "tide.text"

local clock = os.clock
local size, overlap = tonumber(arg[1]), tonumber(arg[2])
local RUNS = 5

local function median(f)
  local times = {}
  for i = 1, RUNS do
    local t0 = clock()
    f()
    times[i] = clock() - t0
  end
  table.sort(times)
  return times[(RUNS + 1) // 2]
end

local function floor_scan(s)
  local n = 0
  for _ in s:gmatch("[^\n]+") do n = n + 1 end
  return n
end

print(("%-28s %-9s %8s %7s %11s %11s %6s"):format("input", "language",
  "MB", "chunks", "split MB/s", "floor MB/s", "ratio"))
for i = 3, #arg, 2 do
  local path, language = arg[i], arg[i + 1]
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  local opts = { size = size, overlap = overlap,
                 language = language ~= "plain" and language or nil }
  local chunks = #text.split(s, opts)
  local t_split = median(function() text.split(s, opts) end)
  local t_floor = median(function() floor_scan(s) end)
  local mb = #s / 1e6
  print(("%-28s %-9s %8.1f %7d %11.1f %11.1f %6.2f"):format(
    path:match("[^/]*$"), language, mb, chunks, mb / t_split, mb / t_floor,
    t_floor / t_split))
end
