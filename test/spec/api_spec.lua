-- The engine through `require "tide"`: app:update and app:drop called from
-- Lua, in this process and from the stock lua5.4 interpreter.
local helpers = require "test.spec.helpers"
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"

local q = helpers.q

local function rows(db)
  return helpers.run(("sqlite3 %s %s"):format(q(db),
    q("SELECT path, size FROM files ORDER BY path")))
end

describe("require \"tide\"", function()
  after_each(helpers.cleanup)

  it("runs an app with app:update and returns exact stats", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/in/a.txt", "aaa")
    helpers.write(dir .. "/in/b.txt", "bb")
    local File = tide.record("File", { { "path", "string", key = true },
                                       { "size", "integer" } })
    local measure = tide.fn("measure", { memo = true }, function(file, t)
      t:row(File { path = file.path, size = #file:bytes() })
    end)
    local app = tide.app("api", function()
      local t = sqlite.table { db = dir .. "/out.db", name = "files",
                               schema = File }
      tide.mount_each(measure, fs.walk(dir .. "/in"), t)
    end)
    local db = dir .. "/state.db"
    local stats, errors = app:update { db = db }
    assert.are.same({}, errors)
    assert.are.same({ added = 2, reprocessed = 0, deleted = 0, unchanged = 0,
                      errors = 0 }, stats.components)
    assert.are.equal("a.txt|3\nb.txt|2\n", rows(dir .. "/out.db"))
    helpers.write(dir .. "/in/b.txt", "bbbb")
    stats = app:update { db = db }
    assert.are.same({ added = 0, reprocessed = 1, deleted = 0, unchanged = 1,
                      errors = 0 }, stats.components)
    assert.are.same({ inserted = 0, updated = 1, deleted = 0 }, stats.targets)
    assert.are.equal("a.txt|3\nb.txt|4\n", rows(dir .. "/out.db"))
    -- Preview reports the changes it would make and makes none.
    os.remove(dir .. "/in/a.txt")
    local seen = {}
    stats = app:update { db = db, preview = true,
      on_preview = function(container, changes)
        for _, ch in ipairs(changes) do
          seen[#seen + 1] = container.short .. " " .. tostring(ch.key[1])
            .. (ch.value == nil and " delete" or "")
        end
      end }
    assert.are.same({ "files a.txt delete" }, seen)
    assert.are.equal("a.txt|3\nb.txt|4\n", rows(dir .. "/out.db"))
    assert.are.equal(2, app:drop { db = db })
    assert.are.equal("", rows(dir .. "/out.db"))
  end)

  it("returns nil and a message when the store is not a tide store", function()
    local dir = helpers.tmpdir()
    local bad = helpers.write(dir .. "/bad.db", "not a database at all")
    local app = tide.app("x", function() end)
    local stats, err = app:update { db = bad }
    assert.is_nil(stats)
    assert.are.equal(bad .. ": not a tide state store (file is not a "
                     .. "database)", err)
    assert.are.equal("not a database at all", helpers.read(bad))
  end)

  it("rejects unknown options", function()
    local app = tide.app("x", function() end)
    assert.has_error(function() app:update { dbb = "x" } end,
                     "app x: unknown option dbb")
  end)

  it("rejects a db that is not a path and a callback that is not a "
     .. "function, naming the option", function()
    local app = tide.app("x", function() end)
    local ok, err = pcall(app.update, app, { db = 42 })
    assert.is_false(ok)
    assert.matches("app x: db must be a non-empty string (a state store's "
                   .. "path or location), got number", err, 1, true)
    ok, err = pcall(app.update, app, { db = "" })
    assert.is_false(ok)
    assert.matches("app x: db must be a non-empty string", err, 1, true)
    ok, err = pcall(app.update, app, { db = "s.db", on_error = 5 })
    assert.is_false(ok)
    assert.matches("app x: on_error must be a function, got number", err, 1,
                   true)
    ok, err = pcall(app.drop, app, { db = 42 })
    assert.is_false(ok)
    assert.matches("app x: db must be a non-empty string", err, 1, true)
  end)

  it("refuses a switch that is not a boolean, naming it, rather than "
     .. "taking any value as true", function()
    local app = tide.app("x", function() end)
    for _, name in ipairs { "full_reprocess", "reset", "preview",
                            "allow_empty", "live" } do
      for _, v in ipairs { "no", 0 } do
        local ok, err = pcall(app.update, app, { db = "s.db", [name] = v })
        assert.is_false(ok)
        assert.matches(("app x: %s must be true or false, got %s")
                       :format(name, type(v)), err, 1, true)
      end
    end
  end)

  it("refuses an update's option that app:drop or app:verify would "
     .. "ignore: a drop asked to preview deletes nothing", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/in/a.md", "# A\n")
    local fs = require "tide.fs"
    local copy = tide.fn("copy", function(file, out)
      out:file(file.path, file:text())
    end)
    local app = tide.app("x", function()
      tide.mount_each(copy, fs.walk(dir .. "/in"), fs.dir(dir .. "/out"))
    end)
    local db = dir .. "/s.db"
    assert(app:update { db = db })
    local ok, err = pcall(app.drop, app, { db = db, preview = true })
    assert.is_false(ok)
    assert.matches("app x: app:drop has no option preview (it takes db)",
                   err, 1, true)
    assert.are.equal("# A\n", helpers.read(dir .. "/out/a.md"))
    for _, name in ipairs { "preview", "full_reprocess", "reset", "live" } do
      ok, err = pcall(app.verify, app, { db = db, [name] = true })
      assert.is_false(ok)
      assert.matches("app x: app:verify has no option " .. name
                     .. " (it takes db, jobs, max_inflight, batch_size, "
                     .. "allow_empty, on_error, on_progress)", err, 1, true)
    end
    assert(app:verify { db = db, jobs = 1 })
    assert.are.same({ 1, true }, { app:drop { db = db } })
    assert.is_nil(helpers.read(dir .. "/out/a.md"))
    app:close()
  end)

  it("says an error its on_error callback raised, rather than losing it",
     function()
    local dir = helpers.tmpdir()
    local fails = tide.fn("fails", function() error("no good", 0) end)
    local app = tide.app("x", function() tide.mount("one", fails) end)
    local seen = {}
    local stats, err = app:update { db = dir .. "/s.db",
      on_error = function(path)
        seen[#seen + 1] = path
        error("callback broke", 0)
      end }
    assert.is_nil(stats)
    assert.are.equal("app x: on_error raised an error: callback broke", err)
    assert.are.same({ "/one" }, seen)
    local errors
    stats, errors = app:update { db = dir .. "/s.db" }
    assert.are.equal(1, stats.components.errors)
    assert.matches("^no good\n", errors[1].message)
    app:close()
  end)

  it("runs a pipeline from the stock lua5.4", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/in/a.md", "# A\n")
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local fs = require "tide.fs"
local copy = tide.fn("copy", { memo = true }, function(file, out)
  out:file(file.path, file:text())
end)
return tide.app("stock", function()
  tide.mount_each(copy, fs.walk("in"), fs.dir("out"))
end)]])
    local script = helpers.write(dir .. "/run.lua", [[
local app = dofile("pipeline.lua")
for _ = 1, 2 do
  local stats = assert(app:update { db = "state.db" })
  local c = stats.components
  print(c.added, c.unchanged, stats.targets.inserted)
end]])
    local out, err, code = helpers.run(("cd %s && %s lua5.4 %s"):format(
      q(dir), helpers.stock_lua_env(), q(script)))
    assert.are.equal(0, code, err)
    assert.are.equal("1\t0\t1\n0\t1\t0\n", out)
    assert.are.equal("# A\n", helpers.read(dir .. "/out/a.md"))
  end)

  it("starts without libpq and libcurl, and loads each at its first use",
     function()
    -- Which of the two this process holds, as the kernel lists its maps.
    local dir = helpers.tmpdir()
    local script = helpers.write(dir .. "/maps.lua", [[
local function held()
  local f = assert(io.open("/proc/self/maps"))
  local maps = f:read("a")
  f:close()
  return tostring(maps:find("libpq.so", 1, true) ~= nil) .. " "
    .. tostring(maps:find("libcurl.so", 1, true) ~= nil)
end
local app = dofile(arg[1])
assert(app:update { db = arg[2] .. "/state.db" })
io.write(held(), "\n")
-- A connection string read (libpq's parser), then a request.
require("tide.postgres").identity("host=/nowhere dbname=x")
io.write(held(), "\n")
pcall(require("tide").http.request, { url = "http://127.0.0.1:9/" })
io.write(held(), "\n")
]])
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local fs = require "tide.fs"
local copy = tide.fn("copy", { memo = true }, function(file, out)
  out:file(file.path, file:text())
end)
return tide.app("maps", function()
  tide.mount_each(copy, fs.walk("in"), fs.dir("out"))
end)]])
    helpers.write(dir .. "/in/a.md", "# A\n")
    local out, err, code = helpers.run(("cd %s && %s run %s %s %s"):format(
      q(dir), helpers.tide, q(script), q(dir .. "/pipeline.lua"), q(dir)))
    assert.are.equal(0, code, err)
    assert.are.equal("false false\ntrue false\ntrue true\n", out)
  end)
end)
