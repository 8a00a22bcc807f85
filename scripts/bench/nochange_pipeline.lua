-- The pipeline bench_nochange.sh times: one memoized component per
-- Markdown file of the generated tree, one SQLite row per file.
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"

local Doc = tide.record("Doc", {
  { "path", "string", key = true },
  { "title", "string" },
  { "size", "integer" },
})

local process_file = tide.fn("process_file", { memo = true },
  function(file, docs)
    local text = file:text()
    docs:row(Doc { path = file.path, title = text:match("^# ([^\n]*)") or "",
                   size = #text })
  end)

return tide.app("bench", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(process_file,
                  fs.walk(os.getenv("BENCH_TREE"), { include = { "**/*.md" } }),
                  docs)
end)
