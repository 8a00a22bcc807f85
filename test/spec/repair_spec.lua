-- Targets that repair themselves: containers removed by hand are
-- recreated and refilled, a moved project keeps working, tables tide did
-- not create are refused unless adopted, and --reset ends as a clean run.
local helpers = require "test.spec.helpers"
local ph = require "test.spec.pipeline_helpers"

local q = helpers.q

local function pipeline(opts)
  return ([[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", { { "id", "string", key = true },
                                 { "text", "string" } })
local process = tide.fn("process", { memo = true }, function(file, docs, site)
  docs:row(Doc { id = file.path, text = file:text() })
  site:file(file.path .. ".txt", file:text():upper())
end)
return tide.app("repair", function()
  local docs = sqlite.table { db = "out/docs.db", name = "docs", schema = Doc
                              %s }
  tide.mount_each(process, fs.walk("in"), docs, fs.dir("out/site"))
end)
]]):format(opts and opts.table_opts or "")
end

local function setup(opts)
  local dir = helpers.tmpdir()
  helpers.write(dir .. "/pipeline.lua", pipeline(opts))
  helpers.write(dir .. "/in/a.md", "alpha")
  helpers.write(dir .. "/in/b.md", "beta")
  return dir
end

local function sql(db, query)
  local out, err, code = helpers.run("sqlite3 " .. q(db) .. " " .. q(query))
  return out, err, code
end

local function rows(dir)
  return (sql(dir .. "/out/docs.db", "SELECT id, text FROM docs ORDER BY id"))
end

local function site(dir)
  return helpers.read(dir .. "/out/site/a.md.txt"),
    helpers.read(dir .. "/out/site/b.md.txt")
end

local function ok_update(dir, args)
  local stats, err, code = ph.update(dir, args)
  assert.are.equal(0, code, err)
  return stats
end

describe("self-repairing targets", function()
  after_each(helpers.cleanup)

  it("recreates and refills a deleted database", function()
    local dir = setup()
    ok_update(dir)
    os.remove(dir .. "/out/docs.db")
    os.remove(dir .. "/out/docs.db-wal")
    os.remove(dir .. "/out/docs.db-shm")
    local stats = ok_update(dir)
    assert.are.equal("a.md|alpha\nb.md|beta\n", rows(dir))
    assert.are.equal(2, stats.components.reprocessed)
    stats = ok_update(dir)
    assert.are.equal(2, stats.components.unchanged)
  end)

  it("recreates and refills a dropped table, and drop works after it",
     function()
    local dir = setup()
    ok_update(dir)
    sql(dir .. "/out/docs.db", "DROP TABLE docs")
    ok_update(dir)
    assert.are.equal("a.md|alpha\nb.md|beta\n", rows(dir))
    sql(dir .. "/out/docs.db", "DROP TABLE docs")
    local _, err, code = ph.tide(dir, "drop pipeline.lua --force")
    assert.are.equal(0, code, err)
    assert.is_nil(helpers.read(dir .. "/out/site/a.md.txt"))
  end)

  it("makes again a full-text index or trigger dropped by hand, and verify "
     .. "says so", function()
    local dir = setup { table_opts = ', fts = { "text" }' }
    ok_update(dir)
    local db = dir .. "/out/docs.db"
    local function matches(word)
      return (sql(db, "SELECT docs.id FROM docs_fts JOIN docs ON docs.rowid "
        .. "= docs_fts.rowid WHERE docs_fts MATCH '" .. word .. "'"))
    end
    sql(db, "DROP TABLE docs_fts")
    local out, err, code = ph.tide(dir, "verify pipeline.lua")
    assert.are.equal(1, code, err)
    assert.matches("docs: in step (2 states checked); its full-text index "
      .. "docs_fts or a trigger that keeps it in step is gone: tide update "
      .. "makes it again and refills it", out, 1, true)
    -- Without the index, the triggers failed every later write.
    helpers.write(dir .. "/in/a.md", "gamma")
    ok_update(dir)
    assert.are.equal("a.md|gamma\nb.md|beta\n", rows(dir))
    assert.are.equal("a.md\n", matches("gamma"))
    assert.are.equal("b.md\n", matches("beta"))
    -- A trigger dropped: the index would fall behind the table.
    sql(db, "DROP TRIGGER docs_fts_au")
    _, err, code = ph.tide(dir, "verify pipeline.lua")
    assert.are.equal(1, code, err)
    ok_update(dir)
    helpers.write(dir .. "/in/b.md", "delta")
    ok_update(dir)
    assert.are.equal("b.md\n", matches("delta"))
    assert.are.equal("", matches("beta"))
    _, err, code = ph.tide(dir, "verify pipeline.lua")
    assert.are.equal(0, code, err)
  end)

  it("removes on drop the folders it made once they are empty, and never "
     .. "one it found", function()
    local function deep(dir)
      helpers.write(dir .. "/pipeline.lua", (pipeline()
        :gsub('"out/docs.db"', '"out/data/docs.db"')
        :gsub('"out/site"', '"out/www/site"')))
      return dir
    end
    local function exists(path)
      local f = io.open(path)
      if f then f:close() end
      return f ~= nil
    end
    local function drop(dir)
      local _, err, code = ph.tide(dir, "drop pipeline.lua --force")
      assert.are.equal(0, code, err)
    end
    -- Every folder tide made is removed: nothing is left of out.
    local dir = deep(setup())
    ok_update(dir)
    assert.is_true(exists(dir .. "/out/www/site/a.md.txt"))
    drop(dir)
    assert.is_false(exists(dir .. "/out"))
    assert.is_true(exists(dir .. "/in/a.md"))
    -- out was there before: it stays, what tide made in it goes.
    dir = deep(setup())
    assert.is_true(os.execute("mkdir " .. q(dir .. "/out")))
    ok_update(dir)
    drop(dir)
    assert.is_true(exists(dir .. "/out"))
    assert.is_false(exists(dir .. "/out/data"))
    assert.is_false(exists(dir .. "/out/www"))
    -- A folder holding a file of the user's stays, and so do its parents.
    dir = deep(setup())
    ok_update(dir)
    helpers.write(dir .. "/out/www/notes.txt", "mine")
    drop(dir)
    assert.are.equal("mine", helpers.read(dir .. "/out/www/notes.txt"))
    assert.is_false(exists(dir .. "/out/www/site"))
    assert.is_false(exists(dir .. "/out/data"))
    -- Removed by hand and made again by a run: still tide's to remove.
    dir = deep(setup())
    ok_update(dir)
    assert.is_true(os.execute("rm -rf " .. q(dir .. "/out")))
    ok_update(dir)
    assert.is_true(exists(dir .. "/out/data/docs.db"))
    drop(dir)
    assert.is_false(exists(dir .. "/out"))
  end)

  it("removes the folders a setup that failed made, and counts those of a "
     .. "custom type's folder", function()
    local dir = helpers.tmpdir()
    local function write(fail)
      helpers.write(dir .. "/pipeline.lua", ([[
local tide = require "tide"
local made = tide.target_type { name = "made",
  folder = function(spec) return spec.dir end,
  setup = function(spec)
    assert(os.execute("mkdir -p " .. spec.dir))
    if %s then error("refused after its mkdir") end
    return true
  end,
  apply = function() end,
}
local put = tide.fn("put", function(t) t:declare("k", "v") end)
return tide.app("made", function()
  tide.mount(tide.path("put", "one"), put,
             tide.declare_target(made, { dir = "a/b/c" }))
end)
]]):format(tostring(fail)))
    end
    write(true)
    local _, err, code = ph.update(dir)
    assert.are.equal(2, code)
    assert.matches("refused after its mkdir", err, 1, true)
    assert.is_nil(io.open(dir .. "/a"))
    write(false)
    ok_update(dir)
    assert.is_not_nil(io.open(dir .. "/a/b/c"))
    local _, derr, dcode = ph.tide(dir, "drop pipeline.lua --force")
    assert.are.equal(0, dcode, derr)
    assert.is_nil(io.open(dir .. "/a"))
  end)

  it("recreates and refills a removed folder", function()
    local dir = setup()
    ok_update(dir)
    os.execute("rm -rf " .. q(dir .. "/out/site"))
    ok_update(dir)
    assert.are.same({ "ALPHA", "BETA" }, { site(dir) })
  end)

  it("repairs rows and files changed or deleted by hand with "
     .. "--full-reprocess", function()
    local dir = setup()
    ok_update(dir)
    sql(dir .. "/out/docs.db", "DELETE FROM docs WHERE id = 'a.md'; "
        .. "UPDATE docs SET text = 'vandal' WHERE id = 'b.md'")
    os.remove(dir .. "/out/site/a.md.txt")
    helpers.write(dir .. "/out/site/b.md.txt", "vandal")
    ok_update(dir, "--full-reprocess")
    assert.are.equal("a.md|alpha\nb.md|beta\n", rows(dir))
    assert.are.same({ "ALPHA", "BETA" }, { site(dir) })
  end)

  it("keeps working after the project folder moves", function()
    local dir = setup()
    ok_update(dir)
    local moved = helpers.tmpdir() .. "/moved"
    os.execute(("mv %s %s"):format(q(dir), q(moved)))
    helpers.write(moved .. "/in/c.md", "gamma")
    local stats = ok_update(moved)
    assert.are.equal(1, stats.components.added)
    assert.are.equal(2, stats.components.unchanged)
    assert.are.equal("a.md|alpha\nb.md|beta\nc.md|gamma\n", rows(moved))
    assert.is_nil(helpers.read(dir .. "/out/docs.db"))
  end)

  it("refuses a table it did not create unless adopted, and then drops "
     .. "only its own rows", function()
    local dir = setup()
    os.execute("mkdir -p " .. q(dir .. "/out"))
    sql(dir .. "/out/docs.db", "CREATE TABLE docs (id TEXT NOT NULL, text "
        .. "TEXT NOT NULL, PRIMARY KEY (id)); INSERT INTO docs VALUES "
        .. "('mine.md', 'precious')")
    local _, err, code = ph.update(dir)
    assert.are.equal(2, code)
    assert.matches("table docs exists and was not created by tide; set "
                   .. "adopt = true", err, 1, true)
    assert.are.equal("mine.md|precious\n", rows(dir))
    helpers.write(dir .. "/pipeline.lua",
                  pipeline { table_opts = ", adopt = true" })
    ok_update(dir)
    assert.are.equal("a.md|alpha\nb.md|beta\nmine.md|precious\n", rows(dir))
    _, err, code = ph.tide(dir, "drop pipeline.lua --force")
    assert.are.equal(0, code, err)
    assert.are.equal("mine.md|precious\n", rows(dir))
  end)

  it("ends --reset with the targets of a clean run", function()
    local dir = setup()
    ok_update(dir)
    os.remove(dir .. "/in/b.md")
    helpers.write(dir .. "/in/c.md", "gamma")
    ok_update(dir, "--reset")
    assert.are.equal("a.md|alpha\nc.md|gamma\n", rows(dir))
    assert.is_nil(helpers.read(dir .. "/out/site/b.md.txt"))
    local stats = ok_update(dir)
    assert.are.equal(2, stats.components.unchanged)
    local _, err, code = ph.tide(dir, "drop pipeline.lua --force")
    assert.are.equal(0, code, err)
    assert.is_nil(helpers.read(dir .. "/out/site/a.md.txt"))
    -- The table is dropped, the database it left empty removed.
    assert.is_nil(helpers.read(dir .. "/out/docs.db"))
  end)

  it("refuses a second state store claiming the same table", function()
    local dir = setup()
    ok_update(dir)
    local other = dir .. "/other/state.db"
    local _, err, code = ph.update(dir, "--db " .. q(other))
    assert.are.equal(2, code)
    assert.matches("table docs is kept by another tide state store, "
                   .. dir .. "/.tide/state.db (app repair)", err, 1, true)
    assert.are.equal("a.md|alpha\nb.md|beta\n", rows(dir))
    -- Once the first one drops the app, the second may take the table.
    _, err, code = ph.tide(dir, "drop pipeline.lua --force")
    assert.are.equal(0, code, err)
    local stats
    stats, err, code = ph.update(dir, "--db " .. q(other))
    assert.are.equal(0, code, err)
    assert.are.equal(2, stats.components.added)
    assert.are.equal("a.md|alpha\nb.md|beta\n", rows(dir))
  end)

  it("refuses a second app of the same store claiming the same table",
     function()
    local dir = setup()
    ok_update(dir)
    helpers.write(dir .. "/second.lua", (pipeline():gsub('tide.app%("repair"',
      'tide.app("second"')))
    local _, err, code = helpers.run(("cd %s && %s update second.lua --quiet")
      :format(q(dir), q(helpers.tide)))
    assert.are.equal(2, code)
    assert.matches("table docs is kept by app repair of this tide state "
                   .. "store, " .. dir .. "/.tide/state.db: a table has one "
                   .. "owner; drop that app first (tide drop), or choose "
                   .. "another name", err, 1, true)
    assert.are.equal("a.md|alpha\nb.md|beta\n", rows(dir))
  end)

  it("makes again a table whose first setup a kill cut short", function()
    -- main kills the process once the table is declared; the store is
    -- then put back to what a kill between the table's setup and the
    -- store's record of it leaves: the table made and claimed, no spec.
    local dir = setup()
    local function with(fields)
      return (pipeline():gsub('{ "text", "string" } }', fields .. " }", 1)
        :gsub("(fs%.dir%(\"out/site\"%)%))", "%1\n  if os.getenv(\"DIE\") "
          .. "then os.execute(\"kill -9 $PPID\") end", 1))
    end
    helpers.write(dir .. "/pipeline.lua", with('{ "text", "string" }'))
    local _, _, code = helpers.run(("cd %s && DIE=1 %s update pipeline.lua "
      .. "--quiet"):format(q(dir), q(helpers.tide)))
    assert.are_not.equal(0, code)
    local _, err, c = sql(dir .. "/.tide/state.db", "UPDATE containers SET "
      .. "spec = NULL, state = 1 WHERE kind = 'sqlite.table'")
    assert.are.equal(0, c, err)
    assert.are.equal("0\n", (sql(dir .. "/out/docs.db",
                                 "SELECT count(*) FROM docs")))
    -- Its fields changed meanwhile: the table is tide's, made again.
    helpers.write(dir .. "/pipeline.lua", with('{ "text", "string" }, '
      .. '{ "n", tide.optional("integer") }'))
    ok_update(dir)
    assert.are.equal("a.md|alpha\nb.md|beta\n", rows(dir))
  end)

  it("starts over when the state store is deleted", function()
    local dir = setup()
    ok_update(dir)
    os.execute("rm -rf " .. q(dir .. "/.tide"))
    os.remove(dir .. "/in/b.md")
    local stats = ok_update(dir)
    assert.are.equal(1, stats.components.added)
    -- The table tide made for the deleted store is made again: no row of
    -- the old one is left behind.
    assert.are.equal("a.md|alpha\n", rows(dir))
    stats = ok_update(dir)
    assert.are.equal(1, stats.components.unchanged)
  end)

  it("finds a removed folder declared inside a memoized component",
     function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local fs = require "tide.fs"
local write = tide.fn("write", { memo = true }, function(name)
  local site = fs.dir("out")
  site:file(name .. ".txt", name:upper())
end)
return tide.app("repair", function()
  tide.mount_each(write, { a = "a", b = "b" })
end)
]])
    ok_update(dir)
    os.execute("rm -rf " .. q(dir .. "/out"))
    local stats = ok_update(dir)
    assert.are.equal(2, stats.components.reprocessed)
    assert.are.equal("A", helpers.read(dir .. "/out/a.txt"))
    assert.are.equal("B", helpers.read(dir .. "/out/b.txt"))
  end)

  it("keeps a table whose declaring component is deleted while others "
     .. "still write to it", function()
    local dir = helpers.tmpdir()
    local function write(names)
      helpers.write(dir .. "/pipeline.lua", ([[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", { { "id", "string", key = true } })
local write = tide.fn("write", { memo = true }, function(name)
  local docs = sqlite.table { db = "out/docs.db", name = "docs",
                              schema = Doc }
  docs:row(Doc { id = name })
end)
return tide.app("repair", function()
  tide.mount_each(write, { %s })
end)
]]):format(names))
    end
    write('x = "x", y = "y", z = "z"')
    ok_update(dir)
    write('x = "x", y = "y"')
    ok_update(dir)
    ok_update(dir)
    assert.are.equal("x\ny\n", sql(dir .. "/out/docs.db",
                                    "SELECT id FROM docs ORDER BY id"))
  end)

  it("removes the folders made for a folder target whose component is "
     .. "deleted", function()
    local dir = helpers.tmpdir()
    local function write(names)
      helpers.write(dir .. "/pipeline.lua", ([[
local tide = require "tide"
local fs = require "tide.fs"
local write = tide.fn("write", { memo = true }, function(name)
  fs.dir("out/" .. name .. "/pages"):file("index.md", name)
end)
return tide.app("repair", function()
  tide.mount_each(write, { %s })
end)
]]):format(names))
    end
    assert.is_true(os.execute("mkdir " .. q(dir .. "/out")))
    write('x = "x", y = "y"')
    ok_update(dir)
    assert.are.equal("y", helpers.read(dir .. "/out/y/pages/index.md"))
    write('x = "x"')
    ok_update(dir)
    assert.is_nil(io.open(dir .. "/out/y"))
    assert.are.equal("x", helpers.read(dir .. "/out/x/pages/index.md"))
    write('')
    ok_update(dir)
    assert.is_nil(io.open(dir .. "/out/x"))
    -- out was there before tide.
    local f = assert(io.open(dir .. "/out"))
    f:close()
  end)
end)
