-- The engine as a session (issue 8): an app's updates in one process share
-- one engine (store, index, loop), the writer lock is held only while a
-- cycle runs, and two apps in one Lua state update side by side.
local helpers = require "test.spec.helpers"
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"

local q = helpers.q

local function rows(db, sql)
  return helpers.run(("sqlite3 %s %s"):format(q(db), q(sql)))
end

-- An app writing one row per file of dir/in into dir/out.db, named name,
-- with its own tide.fn of the same name as the other app's.
local function make_app(name, dir, tag)
  local Row = tide.record("Row", { { "path", "string", key = true },
                                   { "tag", "string" } })
  local per_file = tide.fn("per_file", { memo = true }, function(file, t)
    t:row(Row { path = file.path, tag = tag .. ":" .. file:text() })
  end)
  return tide.app(name, function()
    local t = sqlite.table { db = dir .. "/out.db", name = "rows",
                             schema = Row }
    tide.mount_each(per_file, fs.walk(dir .. "/in"), t)
  end)
end

describe("an engine session", function()
  after_each(helpers.cleanup)

  it("is reused by every update of an app and keeps the store open",
     function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/in/a.txt", "1")
    helpers.write(dir .. "/in/b.txt", "2")
    local app = make_app("s1", dir, "x")
    local db = dir .. "/state.db"
    local stats = assert(app:update { db = db })
    assert.are.equal(2, stats.components.added)
    local engine = app.engines[db]
    assert.is_not_nil(engine)
    assert.are.equal(1, engine:cycles())
    stats = assert(app:update { db = db })
    assert.are.equal(2, stats.components.unchanged)
    assert.are.equal(engine, app.engines[db])
    assert.are.equal(2, engine:cycles())
    -- Between cycles the writer lock is free: another process updates the
    -- same store, and the session sees what it did.
    -- The same app in a script (the same code, so the same logic).
    helpers.write(dir .. "/pipeline.lua", ([[
      local tide = require "tide"
      local fs = require "tide.fs"
      local sqlite = require "tide.sqlite"
      local function make_app(name, dir, tag)
        local Row = tide.record("Row", { { "path", "string", key = true },
                                         { "tag", "string" } })
        local per_file = tide.fn("per_file", { memo = true }, function(file, t)
          t:row(Row { path = file.path, tag = tag .. ":" .. file:text() })
        end)
        return tide.app(name, function()
          local t = sqlite.table { db = dir .. "/out.db", name = "rows",
                                   schema = Row }
          tide.mount_each(per_file, fs.walk(dir .. "/in"), t)
        end)
      end
      local stats, err = make_app("s1", %q, "x"):update { db = %q }
      print(stats and stats.components.added, err and #err)]]):format(dir, db))
    helpers.write(dir .. "/in/c.txt", "3")
    -- Run from this process's working directory, as the app here is.
    local out, err, code = helpers.run(("%s run %s"):format(
      q(helpers.tide), q(dir .. "/pipeline.lua")))
    assert.are.equal(0, code, err)
    assert.are.equal("1\t0\n", out)
    helpers.write(dir .. "/in/d.txt", "4")
    stats = assert(app:update { db = db })
    assert.are.same({ added = 1, reprocessed = 0, deleted = 0,
                      unchanged = 3, errors = 0 }, stats.components)
    assert.are.equal("a.txt|x:1\nb.txt|x:2\nc.txt|x:3\nd.txt|x:4\n",
      rows(dir .. "/out.db", "SELECT path, tag FROM rows ORDER BY path"))
    app:close()
    assert.is_nil(next(app.engines))
    -- Closed, the app opens a new session on its next update.
    stats = assert(app:update { db = db })
    assert.are.equal(4, stats.components.unchanged)
    app:close()
  end)

  it("refuses an update while another process holds the store", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/in/a.txt", "1")
    local app = make_app("s2", dir, "x")
    local db = dir .. "/state.db"
    assert(app:update { db = db })
    -- flock the lock file from another process for two seconds.
    os.execute(("(flock %s sleep 2 &) ; sleep 0.5"):format(
      q(db .. "-lock")))
    local stats, err, code = app:update { db = db }
    assert.is_nil(stats)
    assert.are.equal("locked", code)
    assert.matches("locked by another running update", err, 1, true)
    os.execute("sleep 2")
    assert(app:update { db = db })
    app:close()
  end)

  it("lets two apps in one Lua state update side by side", function()
    local d1, d2 = helpers.tmpdir(), helpers.tmpdir()
    helpers.write(d1 .. "/in/a.txt", "one")
    helpers.write(d2 .. "/in/a.txt", "two")
    helpers.write(d2 .. "/in/b.txt", "three")
    -- The same app name and the same tide.fn name, different bodies and
    -- stores: neither sees the other's state.
    local a1 = make_app("same", d1, "first")
    local a2 = make_app("same", d2, "second")
    for _ = 1, 2 do
      local s1 = assert(a1:update { db = d1 .. "/state.db" })
      local s2 = assert(a2:update { db = d2 .. "/state.db" })
      assert.are.equal(1, s1.components.added + s1.components.unchanged)
      assert.are.equal(2, s2.components.added + s2.components.unchanged)
    end
    assert.are.equal("a.txt|first:one\n",
      rows(d1 .. "/out.db", "SELECT path, tag FROM rows ORDER BY path"))
    assert.are.equal("a.txt|second:two\nb.txt|second:three\n",
      rows(d2 .. "/out.db", "SELECT path, tag FROM rows ORDER BY path"))
    helpers.write(d1 .. "/in/a.txt", "uno")
    local s1 = assert(a1:update { db = d1 .. "/state.db" })
    local s2 = assert(a2:update { db = d2 .. "/state.db" })
    assert.are.equal(1, s1.components.reprocessed)
    assert.are.equal(2, s2.components.unchanged)
    a1:close()
    a2:close()
  end)

  it("keeps two apps' functions of the same name apart", function()
    local d1, d2 = helpers.tmpdir(), helpers.tmpdir()
    helpers.write(d1 .. "/in/x", "1")
    helpers.write(d2 .. "/in/y", "2")
    -- Each app's memoized function depends on a helper named "inner",
    -- with different logic in each: one app's helper must not make the
    -- other's components run again.
    local function make(dir, tag)
      local inner = tide.fn("inner", function(s) return tag .. s end)
      local per_file = tide.fn("per_file", { memo = true }, function(file)
        return inner(file:text())
      end)
      return tide.app("same_fns", function()
        tide.mount_each(per_file, fs.walk(dir .. "/in"))
      end)
    end
    local a1, a2 = make(d1, "first"), make(d2, "second")
    local s1 = assert(a1:update { db = d1 .. "/state.db" })
    local s2 = assert(a2:update { db = d2 .. "/state.db" })
    assert.are.equal(1, s1.components.added)
    assert.are.equal(1, s2.components.added)
    for _ = 1, 2 do
      s1 = assert(a1:update { db = d1 .. "/state.db" })
      s2 = assert(a2:update { db = d2 .. "/state.db" })
      assert.are.same({ added = 0, reprocessed = 0, deleted = 0,
                        unchanged = 1, errors = 0 }, s1.components)
      assert.are.same({ added = 0, reprocessed = 0, deleted = 0,
                        unchanged = 1, errors = 0 }, s2.components)
    end
    a1:close()
    a2:close()
  end)
end)
