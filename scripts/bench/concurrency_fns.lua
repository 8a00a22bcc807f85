-- The functions bench_concurrency.lua times, in a file of their own: a
-- worker loads the file that defines a parallel function.
local tide = require "tide"

local M = {}

-- A pure-Lua string hash, heavy enough to be worth a thread.
function M.hash(s)
  local h = 7
  for r = 1, 60 do
    for i = 1, #s do h = (h * 31 + s:byte(i) + r) % 1000000007 end
  end
  return h
end

M.hash_parallel = tide.fn("bench_hash", { parallel = true }, M.hash)

function M.trivial(x) return x end
M.trivial_parallel = tide.fn("bench_trivial", { parallel = true }, M.trivial)

return M
