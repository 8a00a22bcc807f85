-- tide.postgres against a real PostgreSQL 15 started for this spec
-- (scripts/pg_server.sh: a new cluster in a temporary folder, run by an
-- unprivileged user, on a Unix socket only): queries with bound
-- parameters, types, errors without the password, waits that let other
-- components run, and postgres.rows as a source in a pipeline.
local helpers = require "test.spec.helpers"
local pg = require "test.spec.pg_helpers"
local postgres = require "tide.postgres"
local cjson = require "cjson"

local q = helpers.q
local dir, conn
local SECRET = "pw-Zq81-never-shown"

setup(function() dir, conn = pg.start() end)

teardown(function()
  pg.stop(dir)
  helpers.cleanup()
end)

local must = pg.must

describe("postgres.query", function()
  it("binds parameters, never splicing them, and converts types", function()
    must(postgres.query(conn, "CREATE TABLE t1 (id int PRIMARY KEY, "
      .. "title text, score float8, ok bool, data jsonb, raw bytea, "
      .. "big bigint, price numeric, note text)"))
    local evil = "x'); DROP TABLE t1; --"
    local r = must(postgres.query(conn, "INSERT INTO t1 VALUES ($1, $2, $3, "
      .. "$4, $5, $6, $7, $8, $9)", { 1, evil, 2.5, true,
      '{"tags": ["a", "b"], "n": 3}', "\\x00ff41", 9007199254740993,
      "12.30", n = 9 }))
    assert.are.equal("INSERT 0 1", r.command)
    assert.are.equal(1, r.count)
    r = must(postgres.query(conn, "SELECT * FROM t1"))
    assert.are.same({ "id", "title", "score", "ok", "data", "raw", "big",
                      "price", "note" }, r.columns)
    assert.are.same({ "integer", "text", "number", "boolean", "json",
                      "bytes", "integer", "text", "text" }, r.types)
    local row = r.rows[1]
    assert.are.equal(1, row.id)
    assert.are.equal(evil, row.title)
    assert.are.equal(2.5, row.score)
    assert.are.equal(true, row.ok)
    assert.are.same({ tags = { "a", "b" }, n = 3 }, row.data)
    assert.are.equal("\0\255A", row.raw)
    assert.are.equal(9007199254740993, row.big)
    assert.are.equal("12.30", row.price)
    assert.is_nil(row.note)
  end)

  it("names the server and the error, never the password", function()
    local _, err = postgres.query(conn, "SELEC 1")
    assert.truthy(err:find("^postgres tide@" .. dir:gsub("%p", "%%%0")
      .. ":5432/postgres: ERROR:  syntax error at or near \"SELEC\""), err)
    local with_pw = conn:gsub("dbname=postgres", "dbname=nosuch password="
                              .. SECRET)
    _, err = postgres.query(with_pw, "SELECT 1")
    assert.truthy(err:find('database "nosuch" does not exist', 1, true), err)
    assert.is_nil(err:find(SECRET, 1, true))
    _, err = postgres.query("host=x password='" .. SECRET, "SELECT 1")
    assert.are.equal("postgres: the connection string is not one libpq "
      .. "reads (check its keywords and quoting)", err)
    _, err = postgres.query(conn, "COPY t1 TO STDOUT")
    assert.truthy(err:find("COPY is not a statement a query can run", 1,
                           true), err)
    assert.has_error(function() postgres.query(conn, "SELECT $1", { {} }) end,
      "tide.postgres: parameter $1 must be a string, a number, a boolean "
      .. "or nil, got table")
  end)

  it("lets the other components run while it waits", function()
    local d = helpers.tmpdir()
    helpers.write(d .. "/pipeline.lua", ([[
local tide = require "tide"
local fs = require "tide.fs"
local postgres = require "tide.postgres"
local conn = %q
local run = tide.fn("run", function(i, out)
  local r = assert(postgres.query(conn, "SELECT pg_sleep(1), (SELECT "
    .. "count(*) FROM pg_stat_activity WHERE state = 'active' AND query "
    .. "LIKE 'SELECT pg_sleep(1)%%') AS at_once"))
  out:file(i .. ".txt", tostring(r.rows[1].at_once))
end)
return tide.app("sleepers", function()
  tide.mount_each(run, { a = "a", b = "b", c = "c", d = "d" }, fs.dir("out"))
end)
]]):format(conn))
    local _, err, code = helpers.run(("cd %s && %s update pipeline.lua")
      :format(q(d), helpers.tide))
    assert.are.equal(0, code, err)
    local most = 0
    for _, k in ipairs { "a", "b", "c", "d" } do
      most = math.max(most, tonumber(helpers.read(d .. "/out/" .. k .. ".txt")))
    end
    assert.are.equal(4, most)
  end)
end)

describe("postgres.rows", function()
  local d

  local function update()
    local out, err, code = helpers.run(("cd %s && %s update pipeline.lua "
      .. "--json"):format(q(d), helpers.tide))
    return out ~= "" and cjson.decode(out) or nil, err, code, out
  end

  local function target_rows()
    return (helpers.run(("sqlite3 %s 'SELECT id, title FROM docs ORDER BY "
      .. "id'"):format(q(d .. "/out.db"))))
  end

  it("keys rows, reprocesses changed ones and deletes removed ones",
     function()
    must(postgres.query(conn, "CREATE TABLE docs (id int PRIMARY KEY, "
      .. "title text)"))
    must(postgres.query(conn, "INSERT INTO docs VALUES (1, 'one'), "
      .. "(2, 'two'), (3, 'three')"))
    d = helpers.tmpdir()
    local with_pw = conn .. " password=" .. SECRET
    helpers.write(d .. "/pipeline.lua", ([[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local postgres = require "tide.postgres"
local Doc = tide.record("Doc", { { "id", "integer", key = true },
                                 { "title", "string" } })
local copy = tide.fn("copy", { memo = true }, function(row, out)
  out:row(Doc { id = row.id, title = row.title:upper() })
end)
return tide.app("pgrows", function()
  local out = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(copy, postgres.rows(%q, "SELECT id, title FROM docs",
                                      { key = "id" }), out)
end)
]]):format(with_pw))
    local report, err, code, raw = update()
    assert.are.equal(0, code, err)
    assert.are.equal(3, report.components.added)
    assert.are.equal("1|ONE\n2|TWO\n3|THREE\n", target_rows())
    report = update()
    assert.are.equal(3, report.components.unchanged)
    must(postgres.query(conn, "UPDATE docs SET title = 'deux' WHERE id = 2"))
    must(postgres.query(conn, "DELETE FROM docs WHERE id = 3"))
    report = update()
    assert.are.same({ 0, 1, 1, 1 }, { report.components.added,
      report.components.reprocessed, report.components.deleted,
      report.components.unchanged })
    assert.are.equal("1|ONE\n2|DEUX\n", target_rows())
    -- The password is nowhere in the store or the output.
    for _, bytes in ipairs { raw, err, helpers.read(d .. "/.tide/state.db"),
        helpers.read(d .. "/.tide/state.db-wal") or "" } do
      assert.is_nil(bytes:find(SECRET, 1, true))
    end
  end)

  it("names the server once when its query fails in a pipeline", function()
    d = helpers.tmpdir()
    helpers.write(d .. "/pipeline.lua", ([[
local tide = require "tide"
local postgres = require "tide.postgres"
local copy = tide.fn("copy", { memo = true }, function(row) end)
return tide.app("pgfail", function()
  tide.mount_each(copy, postgres.rows(%q, "SELECT * FROM no_such_table",
                                      { key = "id" }))
end)
]]):format(conn .. " password=" .. SECRET))
    local _, err, code = update()
    assert.are.equal(1, code)
    local who = must(postgres.identity(conn))
    assert.are.equal("tide: source postgres.rows " .. who .. ": ERROR:  "
      .. 'relation "no_such_table" does not exist', err:match("^[^\n]*"))
    assert.is_nil(err:find(SECRET, 1, true))
    -- A whole table's rows, keyed by a column it does not have.
    must(postgres.query(conn, "CREATE TABLE keyless (x int)"))
    helpers.write(d .. "/pipeline.lua", ([[
local tide = require "tide"
local postgres = require "tide.postgres"
local copy = tide.fn("copy", { memo = true }, function(row) end)
return tide.app("pgfail", function()
  tide.mount_each(copy, postgres.rows(%q, { table = "keyless", key = "id" }))
end)
]]):format(conn .. " password=" .. SECRET))
    _, err, code = update()
    assert.are.equal(1, code)
    assert.are.equal("tide: source postgres.rows " .. who .. ": key column "
      .. 'id is not in the result of: SELECT * FROM "keyless"\n', err)
  end)

  it("keys by several columns and refuses duplicate and NULL keys",
     function()
    must(postgres.query(conn, "CREATE TABLE pairs (a text, b int, v text)"))
    must(postgres.query(conn, "INSERT INTO pairs VALUES ('x', 1, 'p'), "
      .. "('x', 2, 'q'), ('y', 1, 'r')"))
    local seen = {}
    local src = postgres.rows(conn, "SELECT * FROM pairs ORDER BY a, b",
                              { key = { "a", "b" } })
    for k, row in src:items() do seen[#seen + 1] = k .. "=" .. row.v end
    assert.are.same({ "x/1=p", "x/2=q", "y/1=r" }, seen)
    must(postgres.query(conn, "INSERT INTO pairs VALUES ('x', 1, 's')"))
    local ok, err = pcall(function()
      for _ in src:items() do end
    end)
    assert.is_false(ok)
    assert.truthy(err:find("postgres.rows tide@.*: duplicate key x/1 in the "
                           .. "result of: SELECT"), err)
    src = postgres.rows(conn, "SELECT NULL::int AS id", { key = "id" })
    ok, err = pcall(function() for _ in src:items() do end end)
    assert.truthy(err:find("key column id is NULL in row 1", 1, true), err)
    assert.has_error(function() postgres.rows(conn, "SELECT 1", {}) end,
      "postgres.rows: key must be a column name or a list of column names")
    assert.has_error(function() postgres.rows(conn, { table = "docs",
      key = "id" }, { key = "id" }) end, "postgres.rows: give a query and "
      .. "{ key }, or { table, key, live }")
  end)
end)
