-- The sqlite.table target's apply on N Chunk-like rows (default 100k),
-- against a floor measured in the same run: SQLite copying the very same
-- rows from a staging table into a table of the same shape with one
-- INSERT ... SELECT (no per-row binding at all). Usage:
--   tide run bench_sqlite_target.lua DIR [N]
local tide = require "tide"
local core = require "tide.core"
local sqlite = require "tide.sqlite"

local dir, n = assert(arg[1], "usage: DIR [N]"), tonumber(arg[2] or 100000)
local now, fmt = core.now_ms, string.format
local target = sqlite.target

-- sqlite.table declares through tide.engine; a stand-in collects the rows.
package.loaded["tide.engine"] = {
  declare_target = function(_, spec)
    local h = { spec = spec, changes = {} }
    function h:declare(key, value)
      self.changes[#self.changes + 1] = { key = key, value = value }
    end
    return h
  end,
}

local Chunk = tide.record("Chunk", {
  { "id", "string", key = true },
  { "file", "string" },
  { "line", "integer" },
  { "text", "string" },
})

-- About 300 bytes of words per chunk, from a fixed LCG.
local words = {}
for w in ([[the a of to and in is it that for on with as was at by this be
  from or an are not have one all were when we there can been has more if
  will would about which their time so up out them some into could other
  than then now look only come its over think also back after use two how
  our work first well way even new want because any these give day most us
  index chunk table query row file line text search engine incremental]])
  :gmatch("%a+") do words[#words + 1] = w end
local seed = 42
local function text()
  local t = {}
  for i = 1, 50 do
    seed = (seed * 1103515245 + 12345) % 2147483648
    t[i] = words[seed % #words + 1]
  end
  return table.concat(t, " ")
end

local function spec_of(name, fts)
  return sqlite.table { db = dir .. "/bench.db", name = name, schema = Chunk,
                        fts = fts }
end

local h = spec_of("chunks")
local inputs = {}
for i = 1, n do
  inputs[i] = { id = fmt("docs/f%d.md#%d", i // 10, i),
                file = fmt("docs/f%d.md", i // 10), line = i % 1000,
                text = text() }
end
local t0 = now()
for i = 1, n do h:row(inputs[i]) end
local check_ms = now() - t0
local changes = h.target.changes

local function us(ms) return ms * 1000 / n end

local function run(label, spec, batch, floor_ms)
  target.setup(spec, nil)
  local t = now()
  if batch >= n then
    target.apply(spec, changes)
  else
    for first = 1, n, batch do
      target.apply(spec, table.move(changes, first,
                   math.min(first + batch - 1, n), 1, {}))
    end
  end
  local ms = now() - t
  print(fmt("%-44s %6.2f us/row%s", label, us(ms), floor_ms and
    fmt("   %.2fx floor", ms / floor_ms) or ""))
  return ms
end

local db = assert(sqlite.open(dir .. "/bench.db", "create"))
local function floor(name, from, fts_spec)
  local spec = spec_of(name, fts_spec).target.spec
  target.setup(spec, nil)
  local t = now()
  assert(db:exec(fmt("BEGIN IMMEDIATE; INSERT INTO %s SELECT * FROM %s; "
    .. "COMMIT", name, from)))
  return now() - t
end

print(fmt("%d rows of Chunk { id, file, line, text ~%d bytes }", n,
          #inputs[1].text))
print(fmt("%-44s %6.2f us/row", "record check (Table:row)", us(check_ms)))
run("staging copy (not timed for the ratio)", spec_of("staging")
    .target.spec, n)
local floor_ms = floor("floor", "staging")
print(fmt("%-44s %6.2f us/row", "floor: INSERT ... SELECT, 1 transaction",
          us(floor_ms)))
local plain = spec_of("chunks").target.spec
run("apply insert, 1 batch", plain, n, floor_ms)
local t = now()
target.apply(plain, changes)
print(fmt("%-44s %6.2f us/row   %.2fx floor",
          "apply upsert of the same rows, 1 batch", us(now() - t),
          (now() - t) / floor_ms))
target.drop(plain)
run("apply insert, batches of 1000", plain, 1000, floor_ms)
local fts_floor = floor("floor_fts", "staging", { "text" })
print(fmt("%-44s %6.2f us/row", "floor with FTS5: INSERT ... SELECT",
          us(fts_floor)))
local fts = spec_of("chunks_fts_bench", { "text" }).target.spec
run("apply insert with FTS5, 1 batch", fts, n, fts_floor)
target.drop(fts)
run("apply insert with FTS5, batches of 1000", fts, 1000, fts_floor)
local dels = {}
for i, c in ipairs(changes) do dels[i] = { key = c.key } end
t = now()
target.apply(plain, dels)
print(fmt("%-44s %6.2f us/row", "apply delete, 1 batch", us(now() - t)))
db:close()
