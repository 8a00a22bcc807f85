-- bench_postgres.sh's measurements, against the server in $BENCH_PG:
-- a cold apply of N rows into postgres.table (the table made by the
-- target's setup, the rows applied in batches of the size the engine
-- uses for this target, records turned into COPY data included, then the
-- end of the run's finish, which builds the new table's primary key) against the floor, a bare
-- COPY of the same rows, as COPY text made beforehand, into an unindexed
-- table. Rounds alternate; prints the medians.
-- Usage: tide run bench_postgres.lua N ROUNDS
local core = require "tide.core"
local tide = require "tide"
local postgres = require "tide.postgres"

local conn = assert(os.getenv("BENCH_PG"), "BENCH_PG: a connection string")
local n, rounds = tonumber(arg[1] or 100000), tonumber(arg[2] or 5)
local now = core.now_ms
-- The engine's batches for this target (postgres.target.batch_size).
local batch = tonumber(os.getenv("BENCH_PG_BATCH"))
  or postgres.target.batch_size
local fmt = string.format

local Doc = tide.record("Doc", {
  { "id", "string", key = true },
  { "title", "string" },
  { "body", "string" },
  { "n", "integer" },
})
local changes, lines = {}, {}
for i = 1, n do
  local id = fmt("docs/%06d.md", i)
  local v = Doc { id = id, title = "Title of document " .. i,
    body = ("Some words of the body of document %d. "):rep(3):format(i, i,
      i), n = i }
  -- As the engine hands them over: with the key's bytes and what it
  -- believes the write is.
  changes[i] = { key = { id }, kb = core.cbor_encode({ id }), value = v,
                 write = "inserted" }
  lines[i] = fmt("%s\t%s\t%s\t%d\n", v.id, v.title, v.body, v.n)
end
local data = table.concat(lines)

local function must(r, err) return assert(r, err) end

local target = postgres.target
local fields = {}
for i, f in ipairs(Doc.fields) do
  fields[i] = { name = f.name, type = require("tide.record").describe(f.type),
                key = f.key or false }
end

local floor_ms, tide_ms = {}, {}
for round = 1, rounds do
  must(postgres.query(conn, "DROP TABLE IF EXISTS bare"))
  must(postgres.query(conn, "DROP TABLE IF EXISTS docs"))
  must(postgres.query(conn, "CREATE TABLE bare (id text, title text, body "
    .. "text, n bigint)"))
  local t0 = now()
  must(core.pg_script(conn, "COPY bare FROM STDIN", { data }))
  floor_ms[round] = now() - t0

  local spec = { conn = conn, server = "bench", name = "docs",
                 schema = Doc.schema, fields = fields }
  t0 = now()
  target.setup(spec, nil, nil)
  for i = 1, n, batch do
    target.apply(spec, table.move(changes, i, math.min(i + batch - 1, n), 1,
                                  {}))
  end
  target.finish(spec) -- the end of the run: the new table gets its key
  tide_ms[round] = now() - t0
  local got = must(postgres.query(conn, "SELECT count(*) AS c FROM docs"))
  assert(got.rows[1].c == n, "docs holds " .. got.rows[1].c .. " rows")
end
local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end
local f, t = median(floor_ms), median(tide_ms)
print(fmt("cold apply of %d rows into postgres.table: %.0f ms (floor %.0f "
  .. "ms: a bare COPY of the same rows into an unindexed table), ratio %.2f",
  n, t, f, t / f))
print(fmt("budget <= 2x the floor: %s", t <= 2 * f and "met" or "NOT met"))
