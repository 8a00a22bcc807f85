-- search.lua "query" [k]: the chunks main.lua indexed that best match the
-- query, by its meaning (the embedding) and its words (FTS5), fused by
-- reciprocal rank. Run from this folder: tide run search.lua "query".
local sqlite = require "tide.sqlite"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local embed = dofile(here .. "embedder.lua")
local query = arg[1]
if not query or query == "" then
  io.stderr:write('usage: tide run search.lua "query" [k]\n')
  os.exit(2)
end
local rows, err = sqlite.hybrid_search {
  db = "out/search.db", table = "chunks", column = "embedding",
  vector = embed(query), text = query, k = tonumber(arg[2]) or 5,
}
if not rows then
  io.stderr:write("search.lua: ", err, "\n")
  os.exit(1)
end
for i, r in ipairs(rows) do
  local where = r.page and ("%s page %d"):format(r.file, r.page)
    or ("%s:%d-%d"):format(r.file, r.line_start, r.line_end)
  local snippet = r.text:gsub("%s+", " "):sub(1, 160)
  print(("%d. %s  (score %.4f; vector rank %s, text rank %s)"):format(i,
    where, r.score, r.vector_rank or "-", r.text_rank or "-"))
  print("   " .. snippet)
end
