-- tide verify: compares every target with what the store says it holds,
-- reports drift (missing, changed, extra) without writing, and repairs it
-- with --repair.
local helpers = require "test.spec.helpers"
local ph = require "test.spec.pipeline_helpers"
local cjson = require "cjson"

local q = helpers.q

local PIPELINE = [[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", { { "id", "string", key = true },
                                 { "text", "string" }, { "n", "integer" } })
local shout = tide.fn("shout", { memo = true }, function(s)
  return s:upper()
end)
local custom = tide.target_type { name = "spec.null",
  apply = function() end, identity = function() return "null" end }
local process = tide.fn("process", { memo = true }, function(file, docs, site,
                                                            null)
  docs:row(Doc { id = file.path, text = file:text(), n = #file:text() })
  site:file(file.path .. ".txt", shout(file:text()))
  null:declare(file.path, 1)
end)
return tide.app("verify", function()
  local docs = sqlite.table { db = "out/docs.db", name = "docs", schema = Doc
                              %s }
  tide.mount_each(process, fs.walk("in"), docs, fs.dir("out/site"),
                  tide.declare_target(custom, {}))
end)
]]

local function setup(table_opts)
  local dir = helpers.tmpdir()
  helpers.write(dir .. "/pipeline.lua", PIPELINE:format(table_opts or ""))
  helpers.write(dir .. "/in/a.md", "alpha")
  helpers.write(dir .. "/in/b.md", "beta")
  helpers.write(dir .. "/in/c.md", "gamma")
  local _, err, code = ph.update(dir)
  assert.are.equal(0, code, err)
  return dir
end

local function sql(dir, query)
  return (helpers.run(("sqlite3 %s %s"):format(q(dir .. "/out/docs.db"),
                                               q(query))))
end

local function verify(dir, args)
  local out, err, code = ph.tide(dir, "verify pipeline.lua --json "
                                 .. (args or ""))
  local ok, report = pcall(cjson.decode, out or "")
  assert(ok, (out or "") .. (err or ""))
  local by = {}
  for _, t in ipairs(report.targets) do by[t.target] = t end
  return by, report, code, err
end

local function vandalize(dir)
  sql(dir, "DELETE FROM docs WHERE id = 'a.md'; UPDATE docs SET text = "
      .. "'x' WHERE id = 'b.md'; INSERT INTO docs VALUES ('zz', 'hand', 4)")
  os.remove(dir .. "/out/site/a.md.txt")
  helpers.write(dir .. "/out/site/b.md.txt", "vandal")
  helpers.write(dir .. "/out/site/notes.txt", "the user's own file")
end

describe("tide verify", function()
  after_each(helpers.cleanup)

  it("finds targets in step after an update", function()
    local dir = setup()
    local by, report, code = verify(dir)
    assert.are.equal(0, code)
    assert.is_false(report.drift)
    assert.are.equal(3, by.docs.checked)
    assert.are.same({}, by.docs.missing)
    assert.are.equal(3, by["out/site"].checked)
    assert.is_true(by["spec.null"].unverifiable)
    local text = ph.tide(dir, "verify pipeline.lua")
    assert.matches("docs: in step (3 states checked)", text, 1, true)
    assert.matches("spec.null: cannot be verified (target type spec.null has "
                   .. "no verify)", text, 1, true)
  end)

  it("reports missing, changed and extra rows and files, writing nothing",
     function()
    local dir = setup()
    vandalize(dir)
    local before = sql(dir, "SELECT * FROM docs ORDER BY id")
    local store_before = helpers.run("sqlite3 " .. q(dir
      .. "/.tide/state.db") .. " 'SELECT * FROM target_states ORDER BY 1, 2'")
    local by, report, code = verify(dir)
    assert.are.equal(1, code)
    assert.is_true(report.drift)
    assert.are.same({ "a.md" }, by.docs.missing)
    assert.are.same({ "b.md" }, by.docs.changed)
    assert.are.same({ "zz" }, by.docs.extra)
    assert.are.same({ "a.md.txt" }, by["out/site"].missing)
    assert.are.same({ "b.md.txt" }, by["out/site"].changed)
    -- A file tide did not write is the user's, not drift.
    assert.are.same({}, by["out/site"].extra)
    assert.are.equal(before, sql(dir, "SELECT * FROM docs ORDER BY id"))
    assert.are.equal(store_before, helpers.run("sqlite3 " .. q(dir
      .. "/.tide/state.db") .. " 'SELECT * FROM target_states ORDER BY 1, 2'"))
    assert.is_nil(helpers.read(dir .. "/out/site/a.md.txt"))
    local text = ph.tide(dir, "verify pipeline.lua")
    assert.matches("docs: 1 missing, 1 changed, 1 extra\n  missing \"a.md\"\n"
                   .. "  changed \"b.md\"\n  extra \"zz\"\n", text, 1, true)
  end)

  it("repairs drift with --repair, calling no memoized function again",
     function()
    local dir = setup()
    vandalize(dir)
    local out, err, code = ph.tide(dir, "verify pipeline.lua --repair")
    assert.are.equal(0, code, err)
    assert.matches("docs: 1 missing, 1 changed, 1 extra: repaired", out, 1,
                   true)
    assert.are.equal("a.md|alpha|5\nb.md|beta|4\nc.md|gamma|5\n",
                     sql(dir, "SELECT * FROM docs ORDER BY id"))
    assert.are.equal("ALPHA", helpers.read(dir .. "/out/site/a.md.txt"))
    assert.are.equal("BETA", helpers.read(dir .. "/out/site/b.md.txt"))
    assert.are.equal("the user's own file",
                     helpers.read(dir .. "/out/site/notes.txt"))
    local _, report
    _, report, code = verify(dir)
    assert.are.equal(0, code)
    assert.is_false(report.drift)
    -- The store was not touched: the next update has nothing to do, and
    -- the memoized helper was a hit for every file during the verify.
    local stats = ph.update(dir)
    assert.are.equal(3, stats.components.unchanged)
    assert.are.equal(0, stats.targets.inserted + stats.targets.updated
                     + stats.targets.deleted)
  end)

  it("counts states out of date apart from drift", function()
    local dir = setup()
    helpers.write(dir .. "/in/c.md", "gamma edited")
    helpers.write(dir .. "/in/d.md", "delta")
    local by, report, code = verify(dir)
    assert.are.equal(0, code)
    assert.is_false(report.drift)
    assert.are.equal(2, by.docs.checked)
    assert.are.equal(2, by.docs.out_of_date)
  end)

  it("reports a dropped table as gone and leaves it to tide update",
     function()
    local dir = setup()
    sql(dir, "DROP TABLE docs")
    local by, _, code = verify(dir)
    assert.are.equal(1, code)
    assert.is_true(by.docs.gone)
    assert.are.same({ "a.md", "b.md", "c.md" }, by.docs.missing)
    local out, err
    out, err, code = ph.tide(dir, "verify pipeline.lua --repair")
    assert.are.equal(1, code, err)
    assert.matches("docs: 3 missing, 0 changed, 0 extra; it is gone: tide "
                   .. "update makes it again and refills it", out, 1, true)
    local _
    _, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal("a.md|alpha|5\nb.md|beta|4\nc.md|gamma|5\n",
                     sql(dir, "SELECT * FROM docs ORDER BY id"))
    by, _, code = verify(dir)
    assert.are.equal(0, code)
  end)

  it("never counts a user's rows in an adopted table as extra", function()
    local dir = helpers.tmpdir()
    os.execute("mkdir -p " .. q(dir .. "/out"))
    helpers.run(("sqlite3 %s %s"):format(q(dir .. "/out/docs.db"), q(
      "CREATE TABLE docs (id TEXT NOT NULL, text TEXT NOT NULL, n INTEGER "
      .. "NOT NULL, PRIMARY KEY (id)); INSERT INTO docs VALUES ('mine', "
      .. "'precious', 8)")))
    helpers.write(dir .. "/pipeline.lua", PIPELINE:format(", adopt = true"))
    helpers.write(dir .. "/in/a.md", "alpha")
    local _, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    local by
    by, _, code = verify(dir, "--repair")
    assert.are.equal(0, code)
    assert.are.same({}, by.docs.extra)
    assert.are.equal("a.md|alpha|5\nmine|precious|8\n",
                     sql(dir, "SELECT * FROM docs ORDER BY id"))
  end)
end)
