-- A change a target refuses fails only the component that declared it:
-- the other components of its batch are written and succeed, whether the
-- target writes a batch in one transaction (sqlite.table) or file by file
-- (fs.dir).
local helpers = require "test.spec.helpers"
local ph = require "test.spec.pipeline_helpers"

local q = helpers.q

describe("a change a target refuses", function()
  after_each(helpers.cleanup)

  it("in a folder fails only its own component", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local fs = require "tide.fs"
local copy = tide.fn("copy", { memo = true }, function(file, out)
  out:file(file.path, file:text())
end)
return tide.app("files", function()
  tide.mount_each(copy, fs.walk("in"), fs.dir("out"))
end)
]])
    helpers.write(dir .. "/in/a.txt", "a")
    helpers.write(dir .. "/in/b/x.txt", "x")
    helpers.write(dir .. "/in/c.txt", "c")
    -- A file of the user's where tide needs a folder.
    helpers.write(dir .. "/out/b", "mine")
    local stats, err, code = ph.update(dir)
    assert.are.equal(1, code, err)
    assert.are.equal(1, stats.components.errors)
    assert.are.equal(2, stats.targets.inserted)
    assert.matches("component /copy/b/x.txt failed: writing to out failed: "
                   .. "fs.dir: out/b/x.txt: not a directory", err, 1, true)
    assert.not_matches("/copy/a.txt", err, 1, true)
    assert.not_matches("/copy/c.txt", err, 1, true)
    assert.are.equal("a", helpers.read(dir .. "/out/a.txt"))
    assert.are.equal("c", helpers.read(dir .. "/out/c.txt"))
    assert.are.equal("mine", helpers.read(dir .. "/out/b"))
    -- Once the user's file is gone, the next run writes the last one.
    os.remove(dir .. "/out/b")
    stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(0, stats.components.errors)
    assert.are.equal("x", helpers.read(dir .. "/out/b/x.txt"))
  end)

  it("in a table fails only the component whose row it refuses",
     function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", { { "id", "string", key = true },
                                 { "text", "string" } })
local load = tide.fn("load", { memo = true }, function(file, docs)
  docs:row(Doc { id = file.path, text = file:text() })
end)
return tide.app("docs", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(load, fs.walk("in"), docs)
end)
]])
    helpers.write(dir .. "/in/first.md", "first")
    local _, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    -- A trigger of the user's refuses texts longer than 5 bytes.
    _, err, code = helpers.run("sqlite3 " .. q(dir .. "/out.db") .. " "
      .. q("CREATE TRIGGER refuse BEFORE INSERT ON docs WHEN "
           .. "length(new.text) > 5 BEGIN SELECT RAISE(ABORT, 'too long'); "
           .. "END"))
    assert.are.equal(0, code, err)
    helpers.write(dir .. "/in/a.md", "short")
    helpers.write(dir .. "/in/b.md", "far too long")
    helpers.write(dir .. "/in/c.md", "tiny")
    local stats
    stats, err, code = ph.update(dir)
    assert.are.equal(1, code, err)
    assert.are.equal(1, stats.components.errors)
    assert.are.equal(2, stats.targets.inserted)
    assert.matches("component /load/b.md failed: writing to docs failed: ",
                   err, 1, true)
    assert.matches("too long", err, 1, true)
    assert.not_matches("/load/a.md", err, 1, true)
    local out = helpers.run("sqlite3 " .. q(dir .. "/out.db") .. " "
      .. q("SELECT id FROM docs ORDER BY id"))
    assert.are.equal("a.md\nc.md\nfirst.md\n", out)
  end)
end)
