-- What `tide live` says of failing components, cycle after cycle: a
-- failure is said in the cycle it happens, even when an earlier cycle said
-- the same failure (the component was fixed and broken again).
local helpers = require "test.spec.helpers"
local cjson = require "cjson"

local q, wait_for = helpers.q, helpers.wait_for

local PIPELINE = [[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", {
  { "path", "string", key = true },
  { "title", "string" },
})
local index_file = tide.fn("index_file", { memo = true }, function(file, docs)
  local title = file:text():match("^[^\n]*")
  if title == "BOOM" then error("cannot index " .. file.path, 0) end
  docs:row(Doc { path = file.path, title = title })
end)
return tide.app("live", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(index_file, fs.walk("docs"), docs)
end)
]]

-- One row per first line: two files with the same first line declare
-- the same key, and the second fails until the first lets it go.
local BY_TITLE = [[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", {
  { "title", "string", key = true },
  { "path", "string" },
})
local index_file = tide.fn("index_file", { memo = true }, function(file, docs)
  docs:row(Doc { title = file:text():match("^[^\n]*"), path = file.path })
end)
return tide.app("live", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(index_file, fs.walk("docs"), docs)
end)
]]

-- PIPELINE, and every component fails while a file "down" is beside the
-- pipeline (outside the walked folder: no event tells when it goes), as a
-- model call fails while its server is down.
local FLAKY = PIPELINE:gsub("  docs:row", [[
  local down = io.open("down")
  if down then down:close(); error("the service is down", 0) end
  docs:row]], 1)

local running = {}

local function start(dir)
  local pid = helpers.start_live(dir)
  running[#running + 1] = pid
  return pid
end

local function cycles(dir)
  local n = 0
  for _ in (helpers.read(dir .. "/stdout") or ""):gmatch("[^\n]+") do
    n = n + 1
  end
  return n
end

-- Writes docs/a.md and waits for the cycle it starts.
local function edit(dir, text)
  local before = cycles(dir)
  helpers.write(dir .. "/docs/a.md", text)
  assert.is_true(wait_for(function() return cycles(dir) > before end, 20),
                 "no cycle after the edit")
end

local function said_failures(dir)
  local n = 0
  for _ in (helpers.read(dir .. "/stderr") or ""):gmatch(
      "component /index_file/a%.md failed: cannot index a%.md") do
    n = n + 1
  end
  return n
end

-- title -> path, as the target holds them now.
local function rows(dir)
  local sqlite = require "tide.sqlite"
  local db = sqlite.open(dir .. "/out.db")
  if not db then return {} end
  local ok, list = pcall(db.rows, db, "SELECT title, path FROM docs")
  db:close()
  local t = {}
  for _, r in ipairs(ok and list or {}) do t[r.title] = r.path end
  return t
end

describe("tide live's failures", function()
  after_each(function()
    for _, pid in ipairs(running) do
      os.execute("kill -9 " .. pid .. " 2>/dev/null")
    end
    running = {}
    helpers.cleanup()
  end)

  it("are said again in a later cycle that fails the same way", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", PIPELINE)
    helpers.write(dir .. "/docs/a.md", "alpha\n")
    local pid = start(dir)
    edit(dir, "BOOM\n")
    assert.are.equal(1, said_failures(dir), helpers.read(dir .. "/stderr"))
    edit(dir, "fixed\n")
    edit(dir, "BOOM\n")
    assert.are.equal(2, said_failures(dir), helpers.read(dir .. "/stderr"))
    local last = (helpers.read(dir .. "/stdout")):match("([^\n]+)\n$")
    assert.are.equal(1, cjson.decode(last).components.errors)
    os.execute("kill -INT " .. pid)
    assert.is_true(wait_for(function()
      return (helpers.read(dir .. "/status") or ""):match("%d") ~= nil
    end, 60), "tide live did not exit")
    -- Nothing is left to sum up at the end: each cycle said its own.
    assert.is_nil(helpers.read(dir .. "/stderr"):find("more component"))
  end)

  it("are counted, and run again, in every cycle while they last",
     function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", PIPELINE)
    helpers.write(dir .. "/docs/a.md", "alpha\n")
    helpers.write(dir .. "/docs/b.md", "BOOM\n")
    local pid = start(dir)
    -- b.md still fails in the cycle of a.md's edit: counted as such, not
    -- as unchanged, and said again, as tide update would (and so in the
    -- cycles that try it again meanwhile, below).
    helpers.write(dir .. "/docs/a.md", "alpha 2\n")
    local n, edited
    local function scan()
      n, edited = 0, nil
      for line in helpers.read(dir .. "/stdout"):gmatch("[^\n]+") do
        local c = cjson.decode(line).components
        if c.reprocessed == 1 then edited = c end
        n = n + 1
      end
      return edited ~= nil
    end
    assert.is_true(wait_for(scan, 20), helpers.read(dir .. "/stdout"))
    assert.are.same({ added = 0, reprocessed = 1, deleted = 0,
                      unchanged = 0, errors = 1 }, edited)
    for line in helpers.read(dir .. "/stdout"):gmatch("[^\n]+") do
      assert.are.equal(1, cjson.decode(line).components.errors, line)
    end
    -- Each cycle said it before its report (a cycle trying it again may
    -- have said it since the reports were read).
    scan()
    local said = 0
    for _ in helpers.read(dir .. "/stderr"):gmatch(
        "component /index_file/b%.md failed") do
      said = said + 1
    end
    assert.is_true(said == n or said == n + 1, said .. " for " .. n)
    os.execute("kill -INT " .. pid)
  end)

  it("from outside their file end once the cause is gone, with no change "
     .. "to wait for", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", FLAKY)
    helpers.write(dir .. "/docs/a.md", "alpha\n")
    helpers.write(dir .. "/down", "")
    local pid = start(dir)
    assert.matches("component /index_file/a%.md failed: the service is down",
                   helpers.read(dir .. "/stderr"))
    os.remove(dir .. "/down")
    -- Tried again a second after the failure, then later and later. The
    -- cycle's rows are written before its report is: both waited for.
    local function last()
      local line = (helpers.read(dir .. "/stdout")):match("([^\n]+)\n$")
      return cjson.decode(line).components
    end
    assert.is_true(wait_for(function()
      return rows(dir).alpha == "a.md" and last().errors == 0
    end, 20), helpers.read(dir .. "/stdout"))
    assert.are.same({ added = 1, reprocessed = 0, deleted = 0,
                      unchanged = 0, errors = 0 }, last())
    os.execute("kill -INT " .. pid)
  end)

  it("of a walk whose folder is not there end once the folder is made, "
     .. "without a restart", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", PIPELINE)
    local pid = start(dir)
    assert.matches("source fs.walk docs: no such file or directory",
                   helpers.read(dir .. "/stderr"), 1, true)
    helpers.write(dir .. "/docs/a.md", "alpha\n")
    local function titles()
      local sqlite = require "tide.sqlite"
      local db = sqlite.open(dir .. "/out.db")
      if not db then return {} end
      local ok, list = pcall(db.rows, db, "SELECT path, title FROM docs")
      db:close()
      local t = {}
      for _, r in ipairs(ok and list or {}) do t[r.path] = r.title end
      return t
    end
    assert.is_true(wait_for(function() return titles()["a.md"] == "alpha"
    end, 20), helpers.read(dir .. "/stdout") .. helpers.read(dir .. "/stderr"))
    -- Watched from then on: the next file shows up too.
    helpers.write(dir .. "/docs/b.md", "beta\n")
    assert.is_true(wait_for(function() return titles()["b.md"] == "beta"
    end, 20), helpers.read(dir .. "/stdout") .. helpers.read(dir .. "/stderr"))
    os.execute("kill -INT " .. pid)
  end)

  it("run again once what made them fail is gone elsewhere: a key "
     .. "another component let go", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", BY_TITLE)
    helpers.write(dir .. "/docs/a.md", "alpha\n")
    helpers.write(dir .. "/docs/b.md", "beta\n")
    local pid = start(dir)
    local before = cycles(dir)
    helpers.write(dir .. "/docs/b.md", "alpha\n")
    assert.is_true(wait_for(function()
      return (helpers.read(dir .. "/stderr") or ""):find(
        "declared by both /index_file/a.md and /index_file/b.md", 1, true)
        ~= nil and cycles(dir) > before
    end, 20), helpers.read(dir .. "/stderr"))
    os.remove(dir .. "/docs/a.md")
    -- What a fresh update would make: b.md holds alpha now.
    assert.is_true(wait_for(function()
      local now = rows(dir)
      return now.alpha == "b.md" and now.beta == nil
    end, 20), cjson.encode(rows(dir)) .. "\n"
      .. helpers.read(dir .. "/stdout") .. helpers.read(dir .. "/stderr"))
    os.execute("kill -INT " .. pid)
    assert.is_true(wait_for(function()
      return (helpers.read(dir .. "/status") or ""):match("%d") ~= nil
    end, 60), "tide live did not exit")
    local out, err, code = helpers.run(("cd %s && %s update pipeline.lua "
      .. "--json"):format(q(dir), q(helpers.tide)))
    assert.are.equal(0, code, err)
    assert.are.same({ added = 0, reprocessed = 0, deleted = 0,
                      unchanged = 1, errors = 0 },
                    cjson.decode(out).components)
  end)
end)
