-- The floor of bench_cold.sh: nochange_pipeline.lua's transform as a plain
-- Lua loop, with no engine. It walks the same files (fs.walk with the same
-- include), reads each as text (file:text()), computes the same title and
-- size, and writes one row per file into a table of the same shape in one
-- transaction, through the prepared insert the sqlite.table target itself
-- uses (db:apply), so that the difference from a cold tide run is tide's
-- bookkeeping alone. Usage: tide run cold_floor.lua TREE OUT.db
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"

local tree, out = assert(arg[1], "usage: TREE OUT.db"), assert(arg[2])

local db = assert(sqlite.open(out, "create"))
assert(db:exec("CREATE TABLE docs (path TEXT NOT NULL PRIMARY KEY, "
  .. "title TEXT NOT NULL, size INTEGER NOT NULL)"))
local plan = { table = "docs", keys = { 1 }, staged = false, columns = {
  { name = "path", kind = "text", nullable = false, type = "string" },
  { name = "title", kind = "text", nullable = false, type = "string" },
  { name = "size", kind = "integer", nullable = false, type = "integer" },
} }
local rows, n = {}, 0
for path, file in fs.walk(tree, { include = { "**/*.md" } }):items() do
  local text = file:text()
  n = n + 1
  rows[n] = { key = { path }, value = { path = path,
    title = text:match("^# ([^\n]*)") or "", size = #text } }
end
assert(db:apply(plan, rows))
db:close()
