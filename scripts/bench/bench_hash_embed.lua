-- For bench_hash_embed.sh: embeds every NUL-separated chunk of arg[1]
-- with core.hash_embed_many in batches of 64 (as an embedder hands them
-- over), arg[3] dimensions, arg[2] passes after one warm-up, and prints
-- the median time of a pass in milliseconds.
local core = require "tide.core"
local f = assert(io.open(arg[1], "rb"))
local text = f:read("a")
f:close()
local runs, dims = tonumber(arg[2]), tonumber(arg[3])
local batches, batch = {}, {}
for chunk in (text .. "\0"):gmatch("([^%z]*)%z") do
  batch[#batch + 1] = chunk
  if #batch == 64 then batches[#batches + 1], batch = batch, {} end
end
if #batch > 0 then batches[#batches + 1] = batch end
local embed_many, times = core.hash_embed_many, {}
for r = 0, runs do
  local t0 = core.now_ms()
  for i = 1, #batches do
    local vs = embed_many(batches[i], dims)
    assert(#vs[1] == dims)
  end
  if r > 0 then times[r] = core.now_ms() - t0 end -- the first warms up
end
table.sort(times)
print(string.format("%.3f", times[(runs + 1) // 2]))
