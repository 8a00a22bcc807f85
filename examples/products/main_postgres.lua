-- products into PostgreSQL: the catalog of main.lua (catalog.lua) with
-- its two tables in a PostgreSQL database, the sections with a full-text
-- column (tide_fts) for postgres.hybrid_search, and the pages in
-- out/pages_pg. TIDE_PG is the libpq connection string (unset: the PG*
-- environment variables). See README.md, "With PostgreSQL".
local tide = require "tide"
local fs = require "tide.fs"
local postgres = require "tide.postgres"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local catalog = dofile(here .. "catalog.lua")
local conn = os.getenv("TIDE_PG") or ""

return tide.app("products_pg", function()
  local products = postgres.table { conn = conn, name = "products",
                                    schema = catalog.Product }
  local sections = postgres.table { conn = conn, name = "sections",
                                    schema = catalog.Section,
                                    fts = { "summary" } }
  tide.mount_each(catalog.process_product,
                  tide.json.lines("products.jsonl", { key = "id" }),
                  products, sections, fs.dir("out/pages_pg"))
end)
