-- The pipeline bench_postgres.sh runs live: the rows of src (kept by
-- change capture) into the table dst, one component per row.
local tide = require "tide"
local postgres = require "tide.postgres"

local conn = assert(os.getenv("BENCH_PG"))
local Doc = tide.record("Doc", { { "id", "integer", key = true },
                                 { "title", "string" },
                                 { "words", "integer" } })
local copy = tide.fn("copy", { memo = true }, function(row, out)
  local words = 0
  for _ in row.title:gmatch("%S+") do words = words + 1 end
  out:row(Doc { id = row.id, title = row.title, words = words })
end)
return tide.app("bench_live", function()
  local out = postgres.table { conn = conn, name = "dst", schema = Doc }
  tide.mount_each(copy, postgres.rows(conn, { table = "src", key = "id",
                                              live = true }), out)
end)
