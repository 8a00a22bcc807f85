-- products: a JSON Lines catalog of nested products into
--   - a table of products, variants and image kept as nested JSON columns,
--   - a table of sections, one row per section, each summarised by a
--     memoized function called through tide.map,
--   - a folder with one Markdown page per product.
-- Editing one section of one product runs the summary of that section
-- only: the other sections' calls are memo hits. (catalog.lua holds the
-- record types and functions; main_postgres.lua writes the same tables
-- into PostgreSQL.)
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local catalog = dofile(here .. "catalog.lua")

return tide.app("products", function()
  local products = sqlite.table { db = "out/catalog.db", name = "products",
                                  schema = catalog.Product }
  local sections = sqlite.table { db = "out/catalog.db", name = "sections",
                                  schema = catalog.Section, fts = { "summary" } }
  tide.mount_each(catalog.process_product,
                  tide.json.lines("products.jsonl", { key = "id" }),
                  products, sections, fs.dir("out/pages"))
end)
