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

  it("refuses a store or an app that is not there, making no store",
     function()
    local dir = setup()
    local _, err, code = ph.tide(dir, "verify pipeline.lua --db nowhere.db")
    assert.are.equal(2, code)
    assert.matches(dir .. "/nowhere.db: no such state store: nothing to "
                   .. "verify (run tide update first)", err, 1, true)
    assert.is_false(helpers.exists(dir .. "/nowhere.db"))
    helpers.write(dir .. "/other.lua", (helpers.read(dir .. "/pipeline.lua")
      :gsub('tide.app%("verify"', 'tide.app("other"')))
    _, err, code = ph.tide(dir, "verify other.lua")
    assert.are.equal(2, code)
    assert.matches("nothing to verify: app other has no state in " .. dir
                   .. "/.tide/state.db (run tide update first)", err, 1, true)
  end)

  it("repairs what it can when the target refuses one change, and says "
     .. "which", function()
    local dir = setup()
    -- A folder of the user's where a file of tide's was, and a file gone.
    os.remove(dir .. "/out/site/a.md.txt")
    helpers.write(dir .. "/out/site/a.md.txt/mine", "the user's")
    os.remove(dir .. "/out/site/b.md.txt")
    sql(dir, "DELETE FROM docs WHERE id = 'c.md'")
    local by, report, code = verify(dir, "--repair")
    assert.are.equal(1, code)
    assert.is_true(report.drift)
    assert.are.same({ "a.md.txt", "b.md.txt" }, by["out/site"].missing)
    assert.are.same({ { key = "a.md.txt",
                        message = "fs.dir: out/site/a.md.txt: is a directory" } },
                    by["out/site"].unrepaired)
    assert.are.same({}, by.docs.unrepaired)
    assert.are.equal("BETA", helpers.read(dir .. "/out/site/b.md.txt"))
    assert.are.equal("c.md|gamma\n", sql(dir, "SELECT id, text FROM docs "
                                            .. "WHERE id = 'c.md'"))
    local out
    out, _, code = ph.tide(dir, "verify pipeline.lua --repair")
    assert.are.equal(1, code)
    assert.matches('out/site: 1 missing, 0 changed, 0 extra: repaired but '
      .. 'for 1\n  missing "a.md.txt"\n  not repaired "a.md.txt": fs.dir: '
      .. 'out/site/a.md.txt: is a directory\n', out, 1, true)
  end)

  it("asks a custom target type's verify, and refuses a field it does not "
     .. "know", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local held = tide.target_type { name = "held", batch_size = 4,
  identity = function() return "held" end,
  apply = function() end,
  -- What it holds: every key but "b".
  verify = function(spec, expected)
    local missing = {}
    for _, e in ipairs(expected) do
      if e.key == "b" then missing[#missing + 1] = e.key end
    end
    return { missing = missing, changed = {}, extra = {} }
  end,
}
local put = tide.fn("put", function(k, t) t:declare(k, k) end)
return tide.app("held", function()
  tide.mount_each(put, { a = "a", b = "b" }, tide.declare_target(held, {}))
end)
]])
    local _, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    local by, report
    by, report, code = verify(dir)
    assert.are.equal(1, code)
    assert.is_true(report.drift)
    assert.are.equal(2, by.held.checked)
    assert.are.same({ "b" }, by.held.missing)
    -- A misspelt field is refused where the type is made.
    helpers.write(dir .. "/pipeline.lua", (helpers.read(dir .. "/pipeline.lua")
      :gsub("verify = function", "verfy = function")))
    _, err, code = ph.update(dir)
    assert.are.equal(2, code)
    assert.matches("tide.target_type held: unknown field verfy", err, 1, true)
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
    -- c.md's recorded row; d.md's is not recorded yet: neither component
    -- runs, both are out of date.
    assert.are.equal(1, by.docs.out_of_date)
    assert.are.equal(2, report.components.out_of_date)
  end)

  -- A pipeline whose memoized "model" appends each call to calls.log,
  -- over JSON Lines items, through a memoized component (process) and a
  -- plain one (plain); process fails while fail.flag names its item.
  local MODEL_PIPELINE = [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", { { "id", "string", key = true },
                                 { "n", "integer" } })
local model = tide.fn("model", { memo = true }, function(s)
  local f = assert(io.open("calls.log", "a"))
  f:write(s, "\n")
  f:close()
  return #s
end)
local process = tide.fn("process", { memo = true }, function(item, docs)
  local flag = io.open("fail.flag")
  if flag and flag:read("a") == item.id then
    error("cannot process " .. item.id)
  end
  if flag then flag:close() end
  docs:row(Doc { id = item.id, n = model(item.text) })
end)
local plain = tide.fn("plain", function(item, docs)
  docs:row(Doc { id = "plain-" .. item.id, n = model("plain " .. item.text) })
end)
return tide.app("models", function()
  local docs = sqlite.table { db = "out/docs.db", name = "docs", schema = Doc }
  tide.mount_each(process, tide.json.lines("items.jsonl", { key = "id" }),
                  docs)
  tide.mount_each(plain, tide.json.lines("items.jsonl", { key = "id" }), docs)
end)
]]

  local function model_setup()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", MODEL_PIPELINE)
    helpers.write(dir .. "/items.jsonl", '{"id":"a","text":"alpha"}\n'
                  .. '{"id":"b","text":"beta"}\n')
    local _, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal("alpha\nbeta\nplain alpha\nplain beta\n",
                     helpers.read(dir .. "/calls.log"))
    return dir
  end

  it("runs no model for an item whose source changed: it is out of date",
     function()
    local dir = model_setup()
    helpers.write(dir .. "/items.jsonl", '{"id":"a","text":"alpha"}\n'
                  .. '{"id":"b","text":"beta 2"}\n')
    local by, report, code, err = verify(dir)
    assert.are.equal(0, code, err)
    assert.are.equal("", err)
    assert.is_false(report.drift)
    assert.is_true(report.checked_all)
    -- process/b is not run; plain/b runs and stops at the model's miss.
    assert.are.same({ checked = 2, out_of_date = 2, failed = 0 },
                    report.components)
    assert.are.equal(2, by.docs.checked)
    assert.are.equal(2, by.docs.out_of_date)
    assert.are.equal("alpha\nbeta\nplain alpha\nplain beta\n",
                     helpers.read(dir .. "/calls.log"))
    local text = ph.tide(dir, "verify pipeline.lua")
    assert.matches("2 components out of date (their sources or code changed "
                   .. "since the last update: run tide update)", text, 1, true)
    -- The update pays for the change once, as it would have anyway.
    local stats = ph.update(dir)
    assert.are.equal(2, stats.functions.model.misses)
    assert.are.equal("alpha\nbeta\nplain alpha\nplain beta\nbeta 2\n"
                     .. "plain beta 2\n", helpers.read(dir .. "/calls.log"))
  end)

  it("exits 3 when a component fails: what it declares was not checked",
     function()
    local dir = model_setup()
    helpers.write(dir .. "/fail.flag", "a")
    local by, report, code, err = verify(dir)
    assert.are.equal(3, code)
    assert.matches("component /process/a failed: .*cannot process a", err)
    assert.is_false(report.drift)
    assert.is_false(report.checked_all)
    assert.are.same({ checked = 3, out_of_date = 0, failed = 1 },
                    report.components)
    assert.are.equal(0, report.sources_failed)
    assert.are.equal(3, by.docs.checked)
    -- Drift elsewhere is repaired; the failure still says the check is
    -- incomplete, never that drift remains.
    sql(dir, "DELETE FROM docs WHERE id = 'b'")
    local out
    out, err, code = ph.tide(dir, "verify pipeline.lua --repair")
    assert.are.equal(3, code, err)
    assert.matches("docs: 1 missing, 0 changed, 0 extra: repaired", out, 1,
                   true)
    assert.matches("not checked: 1 component failed (see above)", out, 1,
                   true)
    assert.are.equal("a|5\nb|4\nplain-a|11\nplain-b|10\n",
                     sql(dir, "SELECT * FROM docs ORDER BY id"))
    -- With drift left, drift wins: exit 1.
    sql(dir, "DELETE FROM docs WHERE id = 'b'")
    by, report, code = verify(dir)
    assert.are.equal(1, code)
    assert.is_true(report.drift)
    assert.is_false(report.checked_all)
  end)

  it("exits 3 when a source fails, after repairing what it could check",
     function()
    local dir = model_setup()
    helpers.write(dir .. "/items.jsonl", '{"id":"a","text":"alpha"}\n'
                  .. '{"id":"b","text":"beta"}\nnot json\n')
    sql(dir, "DELETE FROM docs WHERE id = 'a'")
    local by, report, code, err = verify(dir, "--repair")
    assert.are.equal(3, code, err)
    assert.matches("tide: source json.lines items.jsonl: ", err, 1, true)
    assert.is_false(report.drift)
    assert.is_false(report.checked_all)
    assert.are.equal(2, report.sources_failed)
    assert.is_true(by.docs.repaired)
    assert.are.equal("a|5\nb|4\nplain-a|11\nplain-b|10\n",
                     sql(dir, "SELECT * FROM docs ORDER BY id"))
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
