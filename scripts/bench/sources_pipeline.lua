-- The pipeline bench_sources.sh times: one memoized component per item of
-- a tide.json.lines source (BENCH_SOURCE=json) or a sqlite.rows source
-- (BENCH_SOURCE=sqlite) read from BENCH_DATA, one SQLite row per item.
local tide = require "tide"
local sqlite = require "tide.sqlite"

local kind, data = os.getenv("BENCH_SOURCE"), os.getenv("BENCH_DATA")

local Doc = tide.record("Doc", {
  { "id", "string", key = true },
  { "title", "string" },
  { "size", "integer" },
})

local process_item = tide.fn("process_item", { memo = true },
  function(item, docs)
    docs:row(Doc { id = item.id, title = item.title, size = #item.body })
  end)

return tide.app("bench_" .. kind, function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  local items
  if kind == "json" then
    items = tide.json.lines(data, { key = "id" })
  else
    items = sqlite.rows(data, "SELECT id, title, body, n FROM items",
                        { key = "id" })
  end
  tide.mount_each(process_item, items, docs)
end)
