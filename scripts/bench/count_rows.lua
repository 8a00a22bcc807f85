-- Prints the number of rows of a table, for the benchmarks' sanity
-- checks. Usage: tide run count_rows.lua DB TABLE
local sqlite = require "tide.sqlite"
local db = assert(sqlite.open(assert(arg[1]), "read"))
local rows = assert(db:rows("SELECT count(*) AS n FROM " .. assert(arg[2])))
print(rows[1].n)
db:close()
