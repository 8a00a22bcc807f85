-- The floors of bench_sources.sh: reading the source in plain Lua, with
-- no engine. "json" reads the JSON Lines file line by line (io.lines);
-- "json+decode", for context, also decodes each line with
-- tide.json.decode; "sqlite" reads the rows of the same query the source
-- runs. Prints the number of items. Usage: tide run sources_floor.lua
-- json|json+decode|sqlite PATH
local tide = require "tide"
local sqlite = require "tide.sqlite"

local kind, path = assert(arg[1], "usage: KIND PATH"), assert(arg[2])
local n = 0
if kind == "json" then
  for _ in io.lines(path) do n = n + 1 end
elseif kind == "json+decode" then
  local decode = tide.json.decode
  for line in io.lines(path) do
    if assert(decode(line)).id then n = n + 1 end
  end
else
  local db = assert(sqlite.open(path, "read"))
  for _, row in ipairs(assert(db:rows("SELECT id, title, body, n FROM items")))
  do
    if row.id then n = n + 1 end
  end
  db:close()
end
print(n)
