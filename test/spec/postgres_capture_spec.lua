-- Change capture from a PostgreSQL table (postgres.rows with { table, key,
-- live = true }) against a real PostgreSQL 15 started for this spec: the
-- trigger installed and removed with the pipeline, `tide live`
-- reprocessing exactly the rows that changed, and catching up after the
-- server restarts.
local helpers = require "test.spec.helpers"
local pg = require "test.spec.pg_helpers"
local postgres = require "tide.postgres"
local sqlite = require "tide.sqlite"
local cjson = require "cjson"

local q = helpers.q
local dir, conn
local running = {}

setup(function() dir, conn = pg.start() end)

teardown(function()
  for _, pid in ipairs(running) do
    os.execute("kill -9 " .. pid .. " 2>/dev/null")
  end
  pg.stop(dir)
  helpers.cleanup()
end)

local must = pg.must

local function sql(s) return must(postgres.query(conn, s)) end

local PIPELINE = [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local postgres = require "tide.postgres"
local Doc = tide.record("Doc", { { "id", "integer", key = true },
                                 { "title", "string" } })
local copy = tide.fn("copy", { memo = true }, function(row, out)
  out:row(Doc { id = row.id, title = row.title:upper() })
end)
return tide.app("capture", function()
  local out = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(copy, postgres.rows(%q, { table = "src", key = "id",
                                            live = LIVE }), out)
end)
]]

local function project(live)
  local d = helpers.tmpdir()
  helpers.write(d .. "/pipeline.lua", (PIPELINE:format(conn)
    :gsub("LIVE", tostring(live))))
  return d
end

local ALL_TRIGGERS = { "tide_capture_delete", "tide_capture_insert",
                       "tide_capture_truncate", "tide_capture_update" }

local function triggers()
  local names = {}
  for _, r in ipairs(sql("SELECT tgname FROM pg_trigger WHERE tgrelid = "
                         .. "'src'::regclass ORDER BY tgname").rows) do
    names[#names + 1] = r.tgname
  end
  return names
end

-- id -> title in the target.
local function target(d)
  local db = sqlite.open(d .. "/out.db")
  if not db then return {} end
  local ok, list = pcall(db.rows, db, "SELECT id, title FROM docs")
  db:close()
  local t = {}
  for _, r in ipairs(ok and list or {}) do t[r.id] = r.title end
  return t
end

local function start(d)
  local pid = helpers.start_live(d)
  running[#running + 1] = pid
  return pid
end

local function stop(d, pid)
  os.execute("kill -INT " .. pid)
  assert.is_true(helpers.wait_for(function()
    return (helpers.read(d .. "/status") or ""):match("%d") ~= nil
  end, 60), "tide live did not exit")
  return tonumber(helpers.read(d .. "/status"):match("%d+"))
end

-- The cycles live mode reported, decoded.
local function cycles(d)
  local out = {}
  for line in (helpers.read(d .. "/stdout") or ""):gmatch("[^\n]+") do
    if line:match("^{") then out[#out + 1] = cjson.decode(line) end
  end
  return out
end

-- The component counts of the cycles after the first `before`, summed:
-- { added, reprocessed, deleted }. A cycle's line is printed after its
-- commit, so the target can show a change before its cycle is reported:
-- wait until the sums reach `want`, then a little more for any cycle
-- that would count a row twice.
local function counted(d, before, want)
  local sums
  local function sum()
    sums = { 0, 0, 0 }
    local all = cycles(d)
    for i = before + 1, #all do
      local c = all[i].components
      sums[1] = sums[1] + c.added
      sums[2] = sums[2] + c.reprocessed
      sums[3] = sums[3] + c.deleted
    end
    return sums[1] >= want[1] and sums[2] >= want[2] and sums[3] >= want[3]
  end
  helpers.wait_for(sum, 20)
  os.execute("sleep 0.3")
  sum()
  return sums
end

local function reaches(d, pred, what)
  assert.is_true(helpers.wait_for(function() return pred(target(d)) end,
                                  20), what .. "; live mode said:\n"
    .. tostring(helpers.read(d .. "/stderr")))
end

describe("postgres.rows with change capture", function()
  it("installs its trigger only when live, and removes it with the app",
     function()
    sql("CREATE TABLE src (id int PRIMARY KEY, title text NOT NULL)")
    sql("INSERT INTO src SELECT g, 'row ' || g FROM generate_series(1, 50) g")
    local d = project(false)
    local _, err, code = helpers.run(("cd %s && %s update pipeline.lua")
      :format(q(d), helpers.tide))
    assert.are.equal(0, code, err)
    assert.are.equal(50, (function()
      local n = 0
      for _ in pairs(target(d)) do n = n + 1 end
      return n
    end)())
    assert.are.same({}, triggers())
    helpers.write(d .. "/pipeline.lua", (PIPELINE:format(conn)
      :gsub("LIVE", "true")))
    _, err, code = helpers.run(("cd %s && %s update pipeline.lua")
      :format(q(d), helpers.tide))
    assert.are.equal(0, code, err)
    assert.are.same(ALL_TRIGGERS, triggers())
    -- Removed by hand: put back by the next run.
    sql("DROP TRIGGER tide_capture_update ON src")
    _, err, code = helpers.run(("cd %s && %s update pipeline.lua")
      :format(q(d), helpers.tide))
    assert.are.equal(0, code, err)
    assert.are.same(ALL_TRIGGERS, triggers())
    -- No longer asked for: removed.
    helpers.write(d .. "/pipeline.lua", (PIPELINE:format(conn)
      :gsub("LIVE", "false")))
    _, err, code = helpers.run(("cd %s && %s update pipeline.lua")
      :format(q(d), helpers.tide))
    assert.are.equal(0, code, err)
    assert.are.same({}, triggers())
    -- And by tide drop. (The password given is used, and never stored.)
    local secret = "pw-Cap77-never-stored"
    helpers.write(d .. "/pipeline.lua", (PIPELINE:format(conn
      .. " password=" .. secret):gsub("LIVE", "true")))
    local out
    out, err, code = helpers.run(("cd %s && %s update pipeline.lua")
      :format(q(d), helpers.tide))
    assert.are.equal(0, code, err)
    assert.are.same(ALL_TRIGGERS, triggers())
    for _, bytes in ipairs { out, err, helpers.read(d .. "/.tide/state.db"),
        helpers.read(d .. "/.tide/state.db-wal") or "" } do
      assert.is_nil(bytes:find(secret, 1, true))
    end
    _, err, code = helpers.run(("cd %s && %s drop pipeline.lua")
      :format(q(d), helpers.tide))
    assert.are.equal(0, code, err)
    assert.are.same({}, triggers())
    assert.are.same({}, target(d))
    sql("DROP TABLE src")
  end)

  it("notifies a statement's keys together, and * where they cannot be",
     function()
    sql("CREATE TABLE wide (k text PRIMARY KEY, n int NOT NULL)")
    local core = require "tide.core"
    postgres.capture.setup { conn = conn, server = "s", table = "wide",
                             key = { "k" }, version = 1 }
    local l = must(core.pg_listen(conn, 'LISTEN "tide_wide"'))
    local function notified(statement)
      sql(statement)
      -- What came until the notifications stop for 200 ms.
      local got, list = {}, must(l:wait(5000))
      while #list > 0 do
        for _, p in ipairs(list) do got[#got + 1] = p end
        list = must(l:wait(200))
      end
      return got
    end
    assert.are.same({ '[["a"],["b"]]' },
      notified("INSERT INTO wide VALUES ('a', 1), ('b', 2)"))
    assert.are.same({ '[["a"]]' },
      notified("UPDATE wide SET n = 3 WHERE k = 'a'"))
    -- A key changed: the old key and the new.
    assert.are.same({ '[["b"],["c"]]' },
      notified("UPDATE wide SET k = 'c' WHERE k = 'b'"))
    assert.are.same({ '[["c"]]' }, notified("DELETE FROM wide WHERE k = 'c'"))
    -- Many keys in notifications of under 8000 bytes, every key once.
    local got = notified("INSERT INTO wide SELECT 'key-' || g, g FROM "
      .. "generate_series(1, 3000) g")
    assert.is_true(#got > 1)
    local seen = 0
    for _, p in ipairs(got) do
      assert.is_true(#p < 8000)
      for _ in p:gmatch('%["key%-%d+"%]') do seen = seen + 1 end
    end
    assert.are.equal(3000, seen)
    -- A key too long for a notification, more than 10000 rows, a
    -- truncate: "*", and the writes succeed.
    assert.are.same({ "*" }, notified("INSERT INTO wide VALUES ('"
      .. ("x"):rep(5000) .. "', 1)"))
    assert.are.same({ "*" }, notified("INSERT INTO wide SELECT 'many-' || g, "
      .. "g FROM generate_series(1, 10001) g"))
    assert.are.same({ "*" }, notified("TRUNCATE wide"))
    l:close()
    postgres.capture.drop { conn = conn, server = "s", table = "wide",
                            key = { "k" }, version = 1 }
    sql("DROP TABLE wide")
  end)

  it("reprocesses exactly the rows that changed, and catches up after a "
     .. "restart", function()
    sql("CREATE TABLE src (id int PRIMARY KEY, title text NOT NULL)")
    sql("INSERT INTO src SELECT g, 'row ' || g FROM generate_series(1, "
        .. "2000) g")
    local d = project(true)
    local pid = start(d)
    reaches(d, function(t) return t[2000] == "ROW 2000" end,
            "the catch-up cycle")
    -- Let the watch listen, and the cycles it asked for pass.
    helpers.wait_for(function()
      local c = cycles(d)
      return #c >= 3
    end, 20)
    os.execute("sleep 0.3")
    local before = #cycles(d)
    sql("UPDATE src SET title = 'changed' WHERE id = 5")
    sql("DELETE FROM src WHERE id = 7")
    sql("INSERT INTO src VALUES (3000, 'new')")
    reaches(d, function(t)
      return t[5] == "CHANGED" and t[7] == nil and t[3000] == "NEW"
    end, "the changes")
    assert.are.same({ 1, 1, 1 }, counted(d, before, { 1, 1, 1 }))
    -- Several rows in one transaction, and a key changed.
    before = #cycles(d)
    must(require("tide.core").pg_script(conn, "BEGIN; UPDATE src SET "
      .. "title = 'a' WHERE id = 10; UPDATE src SET id = 4000 WHERE id = 11; "
      .. "COMMIT", {}))
    reaches(d, function(t)
      return t[10] == "A" and t[11] == nil and t[4000] == "ROW 11"
    end, "a key changed")
    assert.are.same({ 1, 1, 1 }, counted(d, before, { 1, 1, 1 }))
    -- A statement changing many rows notifies their keys in a few
    -- notifications; one changing more than 10000 has the table listed.
    before = #cycles(d)
    sql("UPDATE src SET title = 'bulk ' || id WHERE id <= 1500")
    reaches(d, function(t) return t[1500] == "BULK 1500" end, "a bulk update")
    -- Rows 7 and 11 are gone.
    assert.are.same({ 0, 1498, 0 }, counted(d, before, { 0, 1498, 0 }))
    sql("INSERT INTO src SELECT g, 'many ' || g FROM generate_series(10001, "
        .. "22000) g")
    reaches(d, function(t) return t[22000] == "MANY 22000" end,
            "a statement of 12000 rows")
    -- The server restarts: the listener reconnects, and what changed
    -- before it listens again is found by listing the table once more.
    pg.restart(dir)
    sql("UPDATE src SET title = 'after restart' WHERE id = 20")
    sql("DELETE FROM src WHERE id = 21")
    reaches(d, function(t)
      return t[20] == "AFTER RESTART" and t[21] == nil
    end, "the changes made across a restart")
    -- A truncate notifies no key: the table is listed again. (Left
    -- empty, the empty-source guard would keep the rows: refill it.)
    must(require("tide.core").pg_script(conn, "BEGIN; TRUNCATE src; INSERT "
      .. "INTO src VALUES (1, 'alone'); COMMIT", {}))
    reaches(d, function(t)
      local n = 0
      for _ in pairs(t) do n = n + 1 end
      return n == 1 and t[1] == "ALONE"
    end, "a truncate")
    assert.are.equal(0, stop(d, pid))
  end)

  it("refuses bad options, naming them", function()
    assert.has_error(function()
      postgres.rows(conn, { table = "x; DROP TABLE y", key = "id" })
    end, "postgres.rows: table must be an identifier, or schema.name")
    assert.has_error(function()
      postgres.rows(conn, { table = "src", key = "id", every = 3 })
    end, "postgres.rows: unknown option every")
    assert.has_error(function()
      postgres.rows(conn, { table = "src", key = "id", live = "yes" })
    end, "postgres.rows: live must be a boolean")
    assert.has_error(function()
      postgres.rows(conn, { table = ("t"):rep(51), key = "id", live = true })
    end, "postgres.rows: change capture needs a table name of at most 50 "
      .. "bytes (its trigger function is named tide_capture_<table>)")
    assert.has_error(function()
      postgres.rows(conn, { table = "src", key = "id", live = true })
    end, "postgres.capture: a target can only be declared inside a "
      .. "component")
  end)
end)
