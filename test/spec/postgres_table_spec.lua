-- postgres.table, postgres.search and postgres.hybrid_search against a
-- real PostgreSQL 15 started for this spec (scripts/pg_server.sh): rows
-- created, updated and deleted by pipelines run as processes; every type;
-- keys and values holding quotes and SQL; composite keys; fields added,
-- removed and retyped; full-text and vector search; tables tide did not
-- make; tide drop; the password kept out of the store and the output; and
-- kill -9 during applies converging to a clean run's rows.
local helpers = require "test.spec.helpers"
local pg = require "test.spec.pg_helpers"
local postgres = require "tide.postgres"
local cjson = require "cjson"

local q = helpers.q
local dir, conn
local SECRET = "pw-Xk42-never-stored"

setup(function() dir, conn = pg.start() end)

teardown(function()
  pg.stop(dir)
  helpers.cleanup()
end)

local must = pg.must

local function rows(sql, params) return pg.rows(conn, sql, params) end

local function sql_exec(sql) must(postgres.query(conn, sql)) end

-- A project folder with pipeline.lua, and a way to update it.
local function project(source)
  local d = helpers.tmpdir()
  helpers.write(d .. "/pipeline.lua", source)
  local function update(env, ...)
    local out, err, code = helpers.run(("cd %s && env %s %s update "
      .. "pipeline.lua --json %s"):format(q(d), env or "", helpers.tide,
      table.concat({ ... }, " ")))
    local report = out ~= "" and out:match("^{") and cjson.decode(out) or nil
    return report, err, code, out
  end
  return d, update
end

-- A pipeline writing one row per item of the JSON in items.json into
-- postgres.table name with the record type given as Lua source.
local function pipeline(c, name, record, row, opts)
  return ([[
local tide = require "tide"
local postgres = require "tide.postgres"
local cjson = require "cjson"
local f = assert(io.open("items.json"))
local items = cjson.decode(f:read("a"))
f:close()
local Rec = tide.record("Rec", %s)
local put = tide.fn("put", function(item, out)
  out:row(%s)
end)
return tide.app("pgtable", function()
  local out = postgres.table { conn = %q, name = %q, schema = Rec%s }
  tide.mount_each(put, items, out)
end)
]]):format(record, row, c, name, opts or "")
end

local function items(d, list)
  local by_key = {}
  for _, it in ipairs(list) do by_key[tostring(it.id)] = it end
  helpers.write(d .. "/items.json", cjson.encode(by_key))
end

describe("postgres.table", function()
  it("writes every type verbatim, updates and deletes rows", function()
    local d, update = project(pipeline(conn, "alltypes", [[{
      { "id", "string", key = true },
      { "title", "string" },
      { "raw", "bytes" },
      { "n", "integer" },
      { "x", "number" },
      { "ok", "boolean" },
      { "data", "json" },
      { "tags", tide.list("string") },
      { "emb", tide.vector(3) },
      { "note", tide.optional("string") },
    }]], [[Rec { id = item.id, title = item.title, raw = item.raw,
      n = item.n, x = item.x, ok = item.ok, data = item.data,
      tags = item.tags, emb = item.emb, note = item.note }]]))
    local evil = "x'); DROP TABLE alltypes; --\t\\N\n\r\\"
    items(d, {
      { id = "a", title = evil, raw = "bin", n = 123456789012,
        x = 0.1, ok = true, data = { k = { 1, 2 } }, tags = { "t1", "t2" },
        emb = { 0.5, -1, 3 }, note = "hello" },
      { id = "it's \"quoted\"\\", title = "plain", raw = "", n = -1,
        x = -2.5e300, ok = false, data = "s", tags = {}, emb = { 0, 0, 1 } },
    })
    local report, err, code = update()
    assert.are.equal(0, code, err)
    assert.are.equal(2, report.targets.inserted)
    local r = rows("SELECT id, title, raw, n, x, ok, data, tags, emb::text "
      .. "AS emb, note FROM alltypes ORDER BY id")
    assert.are.equal(2, #r)
    assert.are.same({ "a", evil, "bin", 123456789012, 0.1, true,
      { k = { 1, 2 } }, { "t1", "t2" }, "{0.5,-1,3}", "hello" },
      { r[1].id, r[1].title, r[1].raw, r[1].n, r[1].x, r[1].ok, r[1].data,
        r[1].tags, r[1].emb, r[1].note })
    assert.are.same({ "it's \"quoted\"\\", "plain", "", -1, -2.5e300, false,
      "s", {}, "{0,0,1}" }, { r[2].id, r[2].title, r[2].raw, r[2].n, r[2].x,
      r[2].ok, r[2].data, r[2].tags, r[2].emb })
    assert.is_nil(r[2].note)
    -- Columns and constraints as the record says.
    local cols = rows("SELECT column_name, data_type, is_nullable FROM "
      .. "information_schema.columns WHERE table_name = 'alltypes' ORDER BY "
      .. "ordinal_position")
    local shape = {}
    for i, c in ipairs(cols) do
      shape[i] = c.column_name .. " " .. c.data_type .. " " .. c.is_nullable
    end
    assert.are.same({ "id text NO", "title text NO", "raw bytea NO",
      "n bigint NO", "x double precision NO", "ok boolean NO",
      "data jsonb NO", "tags jsonb NO", "emb ARRAY NO", "note text YES" },
      shape)
    -- A binary value with every byte.
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    items(d, {
      { id = "a", title = "changed", raw = table.concat(bytes), n = 1,
        x = 1, ok = true, data = {}, tags = {}, emb = { 1, 2, 3 } },
    })
    report, err, code = update()
    assert.are.equal(0, code, err)
    assert.are.same({ 0, 1, 1 }, { report.targets.inserted,
      report.targets.updated, report.targets.deleted })
    r = rows("SELECT id, title, raw FROM alltypes")
    assert.are.equal(1, #r)
    assert.are.same({ "a", "changed", table.concat(bytes) },
                    { r[1].id, r[1].title, r[1].raw })
  end)

  it("is verified against the store and repaired", function()
    local d, update = project(pipeline(conn, "checked", [[{
      { "id", "string", key = true }, { "title", "string" },
      { "emb", tide.vector(2) } }]], [[Rec { id = item.id,
      title = item.title, emb = { 0.25, item.n } }]], ', fts = { "title" }'))
    items(d, { { id = "a", title = "A", n = 1 }, { id = "b", title = "B",
                n = 2 }, { id = "c", title = "C", n = 3 } })
    local _, err, code = update()
    assert.are.equal(0, code, err)
    local out
    out, err, code = helpers.run(("cd %s && %s verify pipeline.lua")
      :format(q(d), helpers.tide))
    assert.are.equal(0, code, err)
    assert.matches("checked: in step (3 states checked)", out, 1, true)
    sql_exec("DELETE FROM checked WHERE id = 'a'")
    sql_exec("UPDATE checked SET emb = '{0.25,9}' WHERE id = 'b'")
    sql_exec("INSERT INTO checked (id, title, emb) VALUES ('zz', 'hand', "
      .. "'{1,1}')")
    out, err, code = helpers.run(("cd %s && %s verify pipeline.lua")
      :format(q(d), helpers.tide))
    assert.are_not.equal(0, code)
    assert.matches("checked: 1 missing, 1 changed, 1 extra", out, 1, true)
    out, err, code = helpers.run(("cd %s && %s verify pipeline.lua --repair")
      :format(q(d), helpers.tide))
    assert.are.equal(0, code, err)
    assert.matches("checked: 1 missing, 1 changed, 1 extra: repaired", out,
                   1, true)
    local got = {}
    for _, r in ipairs(rows("SELECT id, emb::text AS emb FROM checked "
                            .. "ORDER BY id")) do
      got[#got + 1] = r.id .. "=" .. r.emb
    end
    assert.are.same({ "a={0.25,1}", "b={0.25,2}", "c={0.25,3}" }, got)
  end)

  it("refuses a NUL in text with a message naming the column", function()
    local d, update = project(pipeline(conn, "nul", [[{
      { "id", "string", key = true }, { "title", "string" } }]],
      [[Rec { id = item.id, title = item.title }]]))
    helpers.write(d .. "/items.json", '{"a": {"id": "a", "title": "x\\u0000y"}}')
    local report, err = update()
    assert.are.equal(1, report.components.errors)
    assert.truthy(err:find("column title: text holds a NUL byte, which "
      .. "PostgreSQL cannot store", 1, true), err)
    assert.are.equal(0, #rows("SELECT * FROM nul"))
  end)

  it("fails only the component whose row holds a NUL, where it declares "
     .. "it, and goes on with the others", function()
    local d, update = project(pipeline(conn, "nul_rows", [[{
      { "id", "string", key = true }, { "v", "integer" },
      { "meta", "json" } }]],
      [[Rec { id = item.id, v = item.v, meta = item.meta or {} }]]))
    items(d, { { id = "a", v = 1 }, { id = "b", v = 2 } })
    local report, err, code = update()
    assert.are.equal(0, code, err)
    -- a changes beside two rows PostgreSQL cannot store: in its batch,
    -- either would have failed a too.
    helpers.write(d .. "/items.json", '{"a": {"id": "a", "v": 10}, '
      .. '"b": {"id": "b", "v": 2}, "x": {"id": "x\\u0000y", "v": 3}, '
      .. '"c": {"id": "c", "v": 4, "meta": {"k": ["p\\u0000q"]}}}')
    report, err, code = update()
    assert.are.equal(1, code)
    assert.are.equal(2, report.components.errors)
    assert.are.equal(1, report.targets.updated)
    assert.truthy(err:find("column id: text holds a NUL byte, which "
      .. "PostgreSQL cannot store", 1, true), err)
    assert.truthy(err:find("column meta: the text at .k[1] holds a NUL "
      .. "byte", 1, true), err)
    local function got()
      local out = {}
      for _, r in ipairs(rows("SELECT id, v FROM nul_rows ORDER BY id")) do
        out[#out + 1] = r.id .. "=" .. r.v
      end
      return table.concat(out, " ")
    end
    assert.are.equal("a=10 b=2", got())
    -- Without them, and without b: nothing left to fail.
    items(d, { { id = "a", v = 10 } })
    report, err, code = update()
    assert.are.equal(0, code, err)
    assert.are.equal(0, report.components.errors)
    assert.are.equal("a=10", got())
    local out, derr, dcode = helpers.run(("cd %s && %s verify pipeline.lua")
      :format(q(d), helpers.tide))
    assert.are.equal(0, dcode, tostring(derr) .. out)
    assert.truthy(out:find("in step", 1, true), out)
  end)

  it("deletes a recorded key holding a NUL without writing it, so that "
     .. "the table is not blocked", function()
    local d, update = project(pipeline(conn, "nul_state", [[{
      { "id", "string", key = true }, { "v", "integer" } }]],
      [[Rec { id = item.id, v = item.v }]]))
    items(d, { { id = "a", v = 1 }, { id = "b", v = 2 } })
    local _, err, code = update()
    assert.are.equal(0, code, err)
    -- b's component also owns a state whose key holds a NUL: what a
    -- version that did not refuse such a row recorded.
    local core = require "tide.core"
    local sqlite = require "tide.sqlite"
    local store = assert(sqlite.open(d .. "/.tide/state.db"))
    local b
    for _, r in ipairs(assert(store:rows(
        "SELECT container_id, key, owner_id FROM target_states"))) do
      local key = core.cbor_decode(r.key)
      if (type(key) == "table" and key[1] or key) == "b" then b = r end
    end
    assert.is_table(b)
    local key = core.cbor_decode(b.key)
    local poisoned = core.cbor_encode(type(key) == "table" and { "x\0y" }
                                      or "x\0y")
    assert(store:exec(("INSERT INTO target_states(container_id, key, "
      .. "owner_id, pending) VALUES(%d, x'%s', %d, 0)"):format(
      b.container_id, (poisoned:gsub(".", function(c)
        return ("%02x"):format(c:byte())
      end)), b.owner_id)))
    store:close()
    -- b goes, and with it both its states: the NUL key's delete writes
    -- nothing, b's row is deleted, and nothing is left to fail.
    items(d, { { id = "a", v = 1 } })
    local report
    report, err, code = update()
    assert.are.equal(0, code, err)
    assert.are.equal(0, report.components.errors)
    assert.are.equal(1, report.components.deleted)
    local ids = {}
    for _, r in ipairs(rows("SELECT id FROM nul_state ORDER BY id")) do
      ids[#ids + 1] = r.id
    end
    assert.are.same({ "a" }, ids)
    local out, derr, dcode = helpers.run(("cd %s && %s drop pipeline.lua "
      .. "--force"):format(q(d), helpers.tide))
    assert.are.equal(0, dcode, tostring(derr) .. out)
  end)

  it("keys by several fields and keeps keys with quotes", function()
    local d, update = project(pipeline(conn, "pairs", [[{
      { "a", "string", key = true }, { "b", "integer", key = true },
      { "v", "string" } }]], [[Rec { a = item.a, b = item.b, v = item.v }]]))
    items(d, { { id = 1, a = "x\"y", b = 1, v = "p" },
               { id = 2, a = "x\"y", b = 2, v = "q" },
               { id = 3, a = "o'k", b = 1, v = "r" } })
    local _, err, code = update()
    assert.are.equal(0, code, err)
    local pk = rows("SELECT a.attname AS name FROM pg_index i JOIN "
      .. "pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = "
      .. "ANY(i.indkey) WHERE i.indrelid = 'pairs'::regclass AND "
      .. "i.indisprimary ORDER BY a.attnum")
    assert.are.same({ { name = "a" }, { name = "b" } }, pk)
    -- A table left without its key (a run killed while it loaded the
    -- table, which gets its key at the end) is keyed before it is
    -- written again.
    sql_exec("ALTER TABLE pairs DROP CONSTRAINT pairs_pkey")
    items(d, { { id = 1, a = "x\"y", b = 1, v = "P" },
               { id = 3, a = "o'k", b = 1, v = "r" } })
    _, err, code = update()
    assert.are.equal(0, code, err)
    local got = {}
    for _, r in ipairs(rows("SELECT * FROM pairs ORDER BY a, b")) do
      got[#got + 1] = r.a .. "/" .. r.b .. "=" .. r.v
    end
    assert.are.same({ "o'k/1=r", "x\"y/1=P" }, got)
    assert.are.equal(1, #rows("SELECT 1 FROM pg_index WHERE indrelid = "
      .. "'pairs'::regclass AND indisprimary"))
  end)

  it("adds and drops fields in place and recreates on a changed type",
     function()
    local source = function(record, row)
      return pipeline(conn, "evolve", record, row)
    end
    local d, update = project(source([[{
      { "id", "string", key = true }, { "title", "string" } }]],
      [[Rec { id = item.id, title = item.title }]]))
    items(d, { { id = "a", title = "A", n = 1 }, { id = "b", title = "B",
                n = 2 } })
    local _, err, code = update()
    assert.are.equal(0, code, err)
    local oid = rows("SELECT 'evolve'::regclass::oid::bigint AS o")[1].o
    -- A field added: altered in place, the rows written again.
    helpers.write(d .. "/pipeline.lua", source([[{
      { "id", "string", key = true }, { "title", "string" },
      { "n", "integer" } }]], [[Rec { id = item.id, title = item.title,
      n = item.n }]]))
    _, err, code = update()
    assert.are.equal(0, code, err)
    assert.are.equal(oid, rows("SELECT 'evolve'::regclass::oid::bigint AS "
      .. "o")[1].o)
    assert.are.same({ { id = "a", title = "A", n = 1 },
                      { id = "b", title = "B", n = 2 } },
      rows("SELECT * FROM evolve ORDER BY id"))
    -- A field removed: dropped in place.
    helpers.write(d .. "/pipeline.lua", source([[{
      { "id", "string", key = true }, { "n", "integer" } }]],
      [[Rec { id = item.id, n = item.n }]]))
    _, err, code = update()
    assert.are.equal(0, code, err)
    assert.are.same({ { id = "a", n = 1 }, { id = "b", n = 2 } },
      rows("SELECT * FROM evolve ORDER BY id"))
    -- A type changed: made again and filled again.
    helpers.write(d .. "/pipeline.lua", source([[{
      { "id", "string", key = true }, { "n", "string" } }]],
      [[Rec { id = item.id, n = ("#%d"):format(item.n) }]]))
    _, err, code = update()
    assert.are.equal(0, code, err)
    assert.are_not.equal(oid, rows("SELECT 'evolve'::regclass::oid::bigint "
      .. "AS o")[1].o)
    assert.are.same({ { id = "a", n = "#1" }, { id = "b", n = "#2" } },
      rows("SELECT * FROM evolve ORDER BY id"))
    -- The table dropped by hand is made again on the next run.
    must(postgres.query(conn, "DROP TABLE evolve"))
    _, err, code = update()
    assert.are.equal(0, code, err)
    assert.are.same({ { id = "a", n = "#1" }, { id = "b", n = "#2" } },
      rows("SELECT * FROM evolve ORDER BY id"))
  end)

  it("follows a changed key, deleting the states of the old one without "
     .. "an error", function()
    local source = function(record, row)
      return pipeline(conn, "rekeyed", record, row)
    end
    local d, update = project(source([[{
      { "id", "string", key = true }, { "n", "integer" } }]],
      [[Rec { id = item.id, n = item.n }]]))
    items(d, { { id = "a", n = 1 }, { id = "b", n = 2 } })
    local _, err, code = update()
    assert.are.equal(0, code, err)
    -- Another key field: the table is made again with the new key; the
    -- states recorded under the old key are deleted without a statement.
    helpers.write(d .. "/pipeline.lua", source([[{
      { "id", "string" }, { "n", "integer", key = true } }]],
      [[Rec { id = item.id, n = item.n }]]))
    local report
    report, err, code = update()
    assert.are.equal(0, code, err)
    assert.are.equal("", err)
    assert.are.same({ inserted = 2, updated = 0, deleted = 2 },
                    report.targets)
    -- The key's type changed: the old keys cannot be converted.
    helpers.write(d .. "/pipeline.lua", source([[{
      { "id", "string" }, { "n", "string", key = true } }]],
      [[Rec { id = item.id, n = ("#%d"):format(item.n) }]]))
    report, err, code = update()
    assert.are.equal(0, code, err)
    assert.are.equal("", err)
    assert.are.same({ inserted = 2, updated = 0, deleted = 2 },
                    report.targets)
    report, err, code = update()
    assert.are.equal(0, code, err)
    assert.are.same({ inserted = 0, updated = 0, deleted = 0 },
                    report.targets)
    assert.are.same({ { id = "a", n = "#1" }, { id = "b", n = "#2" } },
      rows("SELECT * FROM rekeyed ORDER BY id"))
  end)

  it("never destroys a table it did not make, and adopts one when told",
     function()
    must(postgres.query(conn, "CREATE TABLE theirs (id text PRIMARY KEY, "
      .. "title text NOT NULL)"))
    must(postgres.query(conn, "INSERT INTO theirs VALUES ('mine', 'kept')"))
    local record = [[{ { "id", "string", key = true },
      { "title", "string" } }]]
    local row = [[Rec { id = item.id, title = item.title }]]
    local d, update = project(pipeline(conn, "theirs", record, row))
    items(d, { { id = "a", title = "A" } })
    local _, err, code = update()
    assert.are_not.equal(0, code)
    assert.truthy(err:find("postgres.table theirs in tide@.*: table theirs "
      .. "exists and was not created by tide; set adopt = true"), err)
    assert.are.same({ { id = "mine", title = "kept" } },
                    rows("SELECT * FROM theirs"))
    helpers.write(d .. "/pipeline.lua", pipeline(conn, "theirs", record, row,
                                                 ", adopt = true"))
    _, err, code = update()
    assert.are.equal(0, code, err)
    assert.are.same({ { id = "a", title = "A" },
                      { id = "mine", title = "kept" } },
                    rows("SELECT * FROM theirs ORDER BY id"))
    items(d, {})
    _, err, code = update()
    assert.are.equal(0, code, err)
    assert.are.same({ { id = "mine", title = "kept" } },
                    rows("SELECT * FROM theirs ORDER BY id"))
    -- A second store is refused the table another store keeps.
    local d2, update2 = project(pipeline(conn, "theirs", record, row,
                                         ", adopt = true"))
    items(d2, { { id = "b", title = "B" } })
    _, err, code = update2()
    assert.are_not.equal(0, code)
    assert.truthy(err:find("table theirs is kept by another tide state "
      .. "store, " .. d .. "/.tide/state.db", 1, true), err)
    -- An adopted table must have the record type's columns: what differs
    -- is said, with what the type wants.
    must(postgres.query(conn, "CREATE TABLE loose (id text PRIMARY KEY, "
      .. "title text, note text)"))
    local d3, update3 = project(pipeline(conn, "loose", record, row,
                                         ", adopt = true"))
    items(d3, { { id = "c", title = "C" } })
    _, err, code = update3()
    assert.are.equal(2, code, err)
    assert.truthy(err:find("its columns differ from Rec's (note is not a "
      .. "field of Rec; title is text, Rec's is text NOT NULL); make them "
      .. "Rec's, or choose another name", 1, true), err)
  end)

  it("never drops an adopted table, nor a column of it",
     function()
    must(postgres.query(conn, "CREATE TABLE adopted (id text PRIMARY KEY, "
      .. "n bigint NOT NULL)"))
    must(postgres.query(conn, "INSERT INTO adopted VALUES ('mine', 7)"))
    local d, update = project(pipeline(conn, "adopted", [[{
      { "id", "string", key = true }, { "n", "integer" } }]],
      [[Rec { id = item.id, n = item.n }]], ", adopt = true"))
    items(d, { { id = "a", n = 1 } })
    local _, err, code = update()
    assert.are.equal(0, code, err)
    helpers.write(d .. "/pipeline.lua", pipeline(conn, "adopted", [[{
      { "id", "string", key = true }, { "n", "number" } }]],
      [[Rec { id = item.id, n = item.n }]], ", adopt = true"))
    _, err, code = update()
    assert.are.equal(2, code)
    assert.truthy(err:find("postgres.table adopted in tide@.*: the table was "
      .. "adopted %(adopt = true%) and tide never drops it, but Rec's key or "
      .. "a field's type changed"), err)
    assert.are.same({ { id = "a", n = 1 }, { id = "mine", n = 7 } },
                    rows("SELECT * FROM adopted ORDER BY id"))
    -- A field removed: its column holds the user's values too.
    helpers.write(d .. "/pipeline.lua", pipeline(conn, "adopted", [[{
      { "id", "string", key = true } }]], [[Rec { id = item.id }]],
      ", adopt = true"))
    _, err, code = update()
    assert.are.equal(2, code)
    assert.truthy(err:find("the table was adopted (adopt = true), and Rec no "
      .. "longer has the field n, whose values in your rows tide does not "
      .. "delete", 1, true), err)
    assert.are.same({ { id = "a", n = 1 }, { id = "mine", n = 7 } },
                    rows("SELECT * FROM adopted ORDER BY id"))
  end)

  it("keeps full-text search and vector search, exact without pgvector",
     function()
    local d, update = project(pipeline(conn, "chunks", [[{
      { "id", "string", key = true }, { "text", "string" },
      { "lang", "string" }, { "emb", tide.vector(3) } }]],
      [[Rec { id = item.id, text = item.text, lang = item.lang,
              emb = item.emb }]], ', fts = { "text" }'))
    local list = {
      { id = "c1", text = "The quick brown fox jumps", lang = "en",
        emb = { 1, 0, 0 } },
      { id = "c2", text = "Foxes are running in the forest", lang = "en",
        emb = { 0.9, 0.1, 0 } },
      { id = "c3", text = "A slow green turtle", lang = "en",
        emb = { 0, 1, 0 } },
      { id = "c4", text = "Le renard brun", lang = "fr",
        emb = { 0, 0, 1 } },
      { id = "c5", text = "nothing here", lang = "en", emb = { 0, 0, 0 } },
    }
    items(d, list)
    local _, err, code = update()
    assert.are.equal(0, code, err)
    assert.truthy(rows("SELECT indexdef FROM pg_indexes WHERE indexname = "
      .. "'chunks_fts'")[1].indexdef:find("USING gin (tide_fts)", 1, true))
    -- Exact cosine distances, checked against a reference in Lua.
    local query = { 1, 0.2, 0 }
    local function cosine(a, b)
      local dot, na, nb = 0, 0, 0
      for i = 1, 3 do
        dot, na, nb = dot + a[i] * b[i], na + a[i] ^ 2, nb + b[i] ^ 2
      end
      return 1 - dot / math.sqrt(na * nb)
    end
    local found = must(postgres.search { conn = conn, table = "chunks",
      column = "emb", vector = query, k = 3 })
    assert.are.same({ "c2", "c1", "c3" },
      { found[1].id, found[2].id, found[3].id })
    for _, row in ipairs(found) do
      local ref
      for _, it in ipairs(list) do
        if it.id == row.id then ref = cosine(query, it.emb) end
      end
      assert.is_true(math.abs(row.distance - ref) < 1e-6)
      assert.are.equal(3, #row.emb)
      assert.is_nil(row.tide_fts)
    end
    -- A condition, the L2 metric, a zero vector left out.
    found = must(postgres.search { conn = conn, table = "chunks",
      column = "emb", vector = { 0, 0, 1 }, k = 10, metric = "l2",
      where = "lang = 'fr'" })
    assert.are.same({ { "c4", 0 } }, { { found[1].id, found[1].distance } })
    found = must(postgres.search { conn = conn, table = "chunks",
      column = "emb", vector = { 1, 1, 1 }, k = 10 })
    assert.are.equal(4, #found)
    -- Hybrid: the text list alone, then fused with the vectors.
    found = must(postgres.hybrid_search { conn = conn, table = "chunks",
      text = "fox OR \"turtle\" -", k = 5 })
    local ids = {}
    for i, row in ipairs(found) do ids[i] = row.id end
    table.sort(ids)
    assert.are.same({ "c1", "c2", "c3" }, ids)
    found = must(postgres.hybrid_search { conn = conn, table = "chunks",
      column = "emb", vector = { 0, 1, 0 }, text = "turtle", k = 2 })
    assert.are.equal("c3", found[1].id)
    assert.are.equal(1, found[1].vector_rank)
    assert.are.equal(1, found[1].text_rank)
    assert.is_true(math.abs(found[1].score - 2 / 61) < 1e-9)
    -- Errors name the server and say what is wrong.
    local none, msg = postgres.search { conn = conn, table = "chunks",
      column = "emb", vector = { 1, 2 } }
    assert.is_nil(none)
    assert.truthy(msg:find("column emb holds vectors of 3 dimensions, the "
      .. "query vector has 2", 1, true), msg)
    none, msg = postgres.hybrid_search { conn = conn, table = "pairs",
      text = "x" }
    assert.is_nil(none)
    assert.truthy(msg:find("table pairs has no full-text column", 1, true),
                  msg)
    assert.has_error(function()
      postgres.search { conn = conn, table = "chunks", column = "emb",
                        vector = { 1, 0, 0 }, metric = "dot" }
    end, 'postgres.search: metric must be "cosine" or "l2"')
    -- vector_index needs pgvector, which this server does not have.
    helpers.write(d .. "/pipeline.lua", pipeline(conn, "chunks2", [[{
      { "id", "string", key = true }, { "emb", tide.vector(3) } }]],
      [[Rec { id = item.id, emb = item.emb }]], ', vector_index = "hnsw"'))
    _, err, code = update()
    assert.are_not.equal(0, code)
    assert.truthy(err:find('vector_index = "hnsw" needs the pgvector '
      .. "extension", 1, true), err)
  end)

  it("refuses what it cannot store, naming it", function()
    assert.has_error(function()
      postgres.table { conn = conn, name = "x\"; DROP TABLE y; --" }
    end, "postgres.table: name must be an identifier, or schema.name")
    local ok, err = pcall(function()
      local tide = require "tide"
      tide.record("Bad", { { "x\"; DROP TABLE y; --", "string" } })
    end)
    assert.is_false(ok)
    assert.truthy(err:find('tide.record Bad: field 1 ("x\\"; DROP TABLE y; '
      .. '--") needs an identifier name', 1, true), err)
    assert.has_error(function()
      local tide = require "tide"
      postgres.table { conn = conn, name = "t", schema = tide.record("T", {
        { "id", "string", key = true }, { "tide_fts", "string" } }) }
    end, "postgres.table: field T.tide_fts: names starting with tide_ are "
      .. "tide's own columns")
  end)

  it("drops what it made, and never stores or shows the password",
     function()
    local with_pw = conn .. " password=" .. SECRET
    local d, update = project(pipeline(with_pw, "secret_docs", [[{
      { "id", "string", key = true }, { "title", "string" } }]],
      [[Rec { id = item.id, title = item.title }]]))
    items(d, { { id = "a", title = "A" } })
    local _, err, code, out = update()
    assert.are.equal(0, code, err)
    local show = helpers.run(("cd %s && %s show pipeline.lua "
      .. "--target-states"):format(q(d), helpers.tide))
    assert.truthy(show:find("secret_docs", 1, true), show)
    for _, bytes in ipairs { out, err, show,
        helpers.read(d .. "/.tide/state.db"),
        helpers.read(d .. "/.tide/state.db-wal") or "" } do
      assert.is_nil(bytes:find(SECRET, 1, true))
    end
    assert.are.equal(1, #rows("SELECT * FROM tide_owners WHERE name = "
      .. "'secret_docs'"))
    _, err, code = helpers.run(("cd %s && %s drop pipeline.lua")
      :format(q(d), helpers.tide))
    assert.are.equal(0, code, err)
    assert.is_false(rows("SELECT to_regclass('secret_docs') IS NOT NULL AS "
      .. "f")[1].f)
    assert.are.equal(0, #rows("SELECT * FROM tide_owners WHERE name = "
      .. "'secret_docs'"))
  end)

  it("writes the last change of a key once when a batch holds two",
     function()
    local tide = require "tide"
    local Rec = tide.record("Dup", { { "id", "string", key = true },
                                     { "v", "string" } })
    must(postgres.query(conn, "CREATE TABLE dups (id text PRIMARY KEY, "
      .. "v text NOT NULL)"))
    local spec = { conn = conn, server = "s", name = "dups",
      fields = { { name = "id", type = "string", key = true },
                 { name = "v", type = "string", key = false } } }
    postgres.target.apply(spec, {
      { key = { "a" }, value = Rec { id = "a", v = "1" } },
      { key = { "a" } },
      { key = { "b" } },
      { key = { "b" }, value = Rec { id = "b", v = "2" } },
      { key = { "a" }, value = Rec { id = "a", v = "3" } },
    })
    assert.are.same({ { id = "a", v = "3" }, { id = "b", v = "2" } },
                    rows("SELECT * FROM dups ORDER BY id"))
    postgres.target.apply(spec, { { key = { "a" } },
      { key = { "b" }, value = Rec { id = "b", v = "4" } } })
    assert.are.same({ { id = "b", v = "4" } }, rows("SELECT * FROM dups"))
    -- New keys go straight in by COPY; one that is there after all (a
    -- row the store does not know of) sends the batch the upsert way.
    postgres.target.apply(spec, {
      { key = { "c" }, value = Rec { id = "c", v = "5" }, write = "inserted" },
    })
    postgres.target.apply(spec, {
      { key = { "d" }, value = Rec { id = "d", v = "6" }, write = "inserted" },
      { key = { "b" }, value = Rec { id = "b", v = "7" }, write = "inserted" },
    })
    assert.are.same({ { id = "b", v = "7" }, { id = "c", v = "5" },
                      { id = "d", v = "6" } },
                    rows("SELECT * FROM dups ORDER BY id"))
  end)
end)

describe("postgres.table under kill -9", function()
  it("makes again a table whose first setup a kill cut short", function()
    -- main kills the process once the table is declared (made unkeyed, to
    -- be loaded); the store is then put back to what a kill between the
    -- table's setup and the store's record of it leaves: no spec.
    local d, update = project(([[
local tide = require "tide"
local postgres = require "tide.postgres"
local Rec = tide.record("Rec", { { "id", "integer", key = true },
                                 { "v", "string" } })
local put = tide.fn("put", function(i, out)
  out:row(Rec { id = i, v = "v" .. i })
end)
return tide.app("cut", function()
  local out = postgres.table { conn = %q, name = "cut", schema = Rec }
  if os.getenv("DIE") then os.execute("kill -9 $PPID") end
  tide.mount_each(put, { 1, 2, 3 }, out)
end)
]]):format(conn))
    local _, _, code = update("DIE=1")
    assert.are_not.equal(0, code)
    assert.are.same({ { n = 0 } }, rows("SELECT count(*)::int AS n FROM cut"))
    local out, err, c = helpers.run("sqlite3 " .. q(d .. "/.tide/state.db")
      .. " \"UPDATE containers SET spec = NULL, state = 1 WHERE kind = "
      .. "'postgres.table'\"")
    assert.are.equal(0, c, out .. err)
    _, err, code = update()
    assert.are.equal(0, code, err)
    assert.are.same({ { id = 1, v = "v1" }, { id = 2, v = "v2" },
                      { id = 3, v = "v3" } },
                    rows("SELECT * FROM cut ORDER BY id"))
    assert.are.same({ { n = 1 } }, rows("SELECT count(*)::int AS n FROM "
      .. "pg_index WHERE indrelid = 'cut'::regclass AND indisprimary"))
  end)

  it("converges to a clean run's rows", function()
    local n = 20000
    local source = ([[
local tide = require "tide"
local postgres = require "tide.postgres"
local Rec = tide.record("Rec", { { "id", "integer", key = true },
  { "title", "string" }, { "sq", "integer" } })
local version = os.getenv("VERSION") or "1"
local items = {}
for i = 1, %d do items[i] = i end
local put = tide.fn("put", function(i, out)
  if version == "2" and i %% 3 == 0 then return end
  out:row(Rec { id = i, title = "row " .. i .. " v" .. version,
                sq = i * i })
end)
return tide.app("crashy", function()
  local out = postgres.table { conn = %q, name = os.getenv("TABLE"),
                               schema = Rec }
  tide.mount_each(put, items, out)
end)
]]):format(n, conn)
    local function digest(t)
      return rows(("SELECT count(*) AS n, md5(string_agg(id || '|' || title "
        .. "|| '|' || sq, ',' ORDER BY id)) AS h FROM %s"):format(t))[1]
    end
    local clean_dir, clean = project(source)
    local _, err, code = clean("TABLE=clean VERSION=1")
    assert.are.equal(0, code, err)
    local v1 = digest("clean")
    _, err, code = clean("TABLE=clean VERSION=2")
    assert.are.equal(0, code, err)
    local v2 = digest("clean")
    assert.are_not.same(v1, v2)
    assert.truthy(clean_dir)
    local d = project(source)
    local killed = 0
    for trial = 1, 6 do
      local version = trial % 2 == 0 and "2" or "1"
      local delay = 0.15 + 0.25 * (trial - 1)
      local out = helpers.run(("cd %s && (TABLE=crashy VERSION=%s exec %s "
        .. "update pipeline.lua --quiet >/dev/null 2>&1 & p=$!; sleep %.2f; "
        .. "kill -9 $p 2>/dev/null && echo killed; wait $p; true)")
        :format(q(d), version, helpers.tide, delay))
      if out:find("killed") then killed = killed + 1 end
      _, err, code = helpers.run(("cd %s && TABLE=crashy VERSION=%s %s update "
        .. "pipeline.lua --quiet"):format(q(d), version, helpers.tide))
      assert.are.equal(0, code, err)
      assert.are.same(version == "2" and v2 or v1, digest("crashy"))
    end
    assert.is_true(killed >= 3, "few kills landed: " .. killed)
  end)
end)
