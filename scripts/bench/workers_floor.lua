-- The CPU-bound floor of bench_workers.sh: workers_pipeline.lua's hash of
-- each file, as a plain Lua loop, over the PART-th of PARTS equal shares
-- of the files LIST names, one path a line (every PARTS-th). One process
-- over all of them against two at once over a half each is what this
-- machine gives two processes: the ceiling for 2 workers against 1.
-- Usage: tide run workers_floor.lua LIST ROUNDS PART PARTS
local list_path, rounds, part, parts = arg[1], tonumber(arg[2]),
  tonumber(arg[3]), tonumber(arg[4])
assert(list_path and rounds and part and parts,
  "usage: workers_floor.lua LIST ROUNDS PART PARTS")

-- The pipeline's own hash (workers_hash.lua, beside this file).
local hash = dofile(arg[0]:match("^(.*/)") .. "workers_hash.lua")

local list = assert(io.open(list_path))
local sum, i = 0, 0
for path in list:lines() do
  if i % parts == part - 1 then
    local f = assert(io.open(path, "rb"))
    sum = sum ~ hash(f:read("a"), rounds)
    f:close()
  end
  i = i + 1
end
list:close()
assert(i > 0, "no files in " .. list_path)
io.write(("%d\n"):format(sum))
