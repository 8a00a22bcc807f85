-- Defects found trying tide as a user would, each pinned by a spec that
-- failed before its fix.
local helpers = require "test.spec.helpers"
local ph = require "test.spec.pipeline_helpers"
local cjson = require "cjson"

local update, kv = ph.update, ph.kv

-- Items a, b, c into kv("out.json"); `extra` is Lua run in main after the
-- mount, `body` in each component.
local function pipeline(opts)
  return ([[
local function flag(name)
  local f = io.open(name)
  if f then f:close() end
  return f ~= nil
end
%s
local process = tide.fn("process", { memo = true }, function(item, out)
  %s
  out:declare(item, item:upper())
end)
return tide.app("defects", function()
  tide.mount_each(process, { a = "a", b = "b", c = "c" }, kv("out.json"))
  %s
end)
]]):format(opts.prelude or "", opts.body or "", opts.main or "")
end

describe("defects", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  it("treats coroutine.yield() in main as an error that deletes nothing",
     function()
    ph.write_pipeline(dir, pipeline {
      main = 'if flag("yield") then coroutine.yield() end' })
    local stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    helpers.write(dir .. "/yield", "")
    stats, err, code = update(dir)
    assert.are.equal(2, code)
    assert.matches("coroutine.yield() was called outside a coroutine", err,
                   1, true)
    assert.are.same({ a = "A", b = "B", c = "C" }, kv(dir .. "/out.json"))
    assert.are.equal(3, ph.store_count(dir, "SELECT count(*) FROM "
                     .. "components WHERE path <> ''"))
    os.remove(dir .. "/yield")
    stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(0, stats.components.deleted)
    assert.are.equal(0, stats.targets.deleted)
  end)

  it("fails only the component whose code yields to tide", function()
    ph.write_pipeline(dir, pipeline {
      body = 'if item == "b" then coroutine.yield() end' })
    local stats, err, code = update(dir)
    assert.are.equal(1, code)
    assert.matches("component /process/b failed: coroutine.yield()", err, 1,
                   true)
    assert.are.same({ a = "A", c = "C" }, kv(dir .. "/out.json"))
    assert.are.equal(1, stats.components.errors)
  end)

  it("fails a memoized component whose value cannot be stored, naming it",
     function()
    ph.write_pipeline(dir, [[
local process = tide.fn("process", { memo = true }, function(item, out)
  out:declare(item, item)
  if item == "b" then return function() end end
  return item
end)
return tide.app("defects", function()
  tide.mount_each(process, { a = "a", b = "b", c = "c" }, kv("out.json"))
end)
]])
    local stats, err, code = update(dir)
    assert.are.equal(1, code, err)
    assert.matches("component /process/b failed: ", err, 1, true)
    assert.matches("cannot encode a function", err, 1, true)
    assert.are.same({ a = "a", c = "c" }, kv(dir .. "/out.json"))
    assert.are.equal(2, stats.components.added)
    assert.are.equal(1, stats.components.errors)
  end)

  it("keeps memo entries and counts through --full-reprocess", function()
    local function write(suffix)
      ph.write_pipeline(dir, ([[
local shout = tide.fn("shout", { memo = true }, function(s)
  return s:upper()
end)
local process = tide.fn("process", { memo = true }, function(item, out)
  out:declare(item, shout(item) .. "%s")
end)
return tide.app("defects", function()
  tide.mount_each(process, { a = "a", b = "b", c = "c" }, kv("out.json"))
end)
]]):format(suffix))
    end
    write("")
    local stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    local memos = ph.store_count(dir, "SELECT count(*) FROM memos")
    assert.are.equal(3, memos)
    stats, err, code = update(dir, "--full-reprocess")
    assert.are.equal(0, code, err)
    assert.are.same({ calls = 3, hits = 0, misses = 3, errors = 0 },
                    stats.functions.shout)
    assert.are.equal(memos, ph.store_count(dir, "SELECT count(*) FROM memos"))
    -- The callers change; the inner calls hit as after a clean run.
    write("!")
    stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ calls = 3, hits = 3, misses = 0, errors = 0 },
                    stats.functions.shout)
  end)

  it("leaves a component usable after a user's pcall around a failing "
     .. "memoized function, and counts the error", function()
    ph.write_pipeline(dir, [[
local risky = tide.fn("risky", { memo = true }, function(s)
  error("no " .. s)
end)
local plain = tide.fn("plain", function(s) error("never " .. s) end)
local child = tide.fn("child", function(out) out:declare("child", "ok") end)
local process = tide.fn("process", { memo = true }, function(out)
  local ok, err = pcall(risky, "way")
  assert(not ok and err:find("no way", 1, true), err)
  ok, err = pcall(plain, "again")
  assert(not ok and err:find("never again", 1, true), err)
  tide.mount(child, out)
end)
return tide.app("defects", function()
  tide.mount(process, kv("out.json"))
end)
]])
    local stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ child = "ok" }, kv(dir .. "/out.json"))
    assert.are.same({ calls = 1, hits = 0, misses = 1, errors = 1 },
                    stats.functions.risky)
    assert.are.same({ calls = 1, hits = 0, misses = 0, errors = 1 },
                    stats.functions.plain)
  end)

  it("reports the traceback of a nested tide.fn where it failed", function()
    ph.write_pipeline(dir, [[
local inner = tide.fn("inner", { memo = true }, function(s)
  error("inner broke on " .. s)
end)
local process = tide.fn("process", { memo = true }, function(item, out)
  out:declare(item, inner(item))
end)
return tide.app("defects", function()
  tide.mount_each(process, { a = "a" }, kv("out.json"))
end)
]])
    local stats, err, code = update(dir)
    assert.are.equal(1, code)
    assert.matches("inner broke on a\nstack traceback:", err, 1, true)
    assert.are.same({ calls = 1, hits = 0, misses = 1, errors = 1 },
                    stats.functions.inner)
  end)

  it("shows a failed component with its message and time", function()
    ph.write_pipeline(dir, pipeline {
      body = 'if flag("fail-" .. item) then error("broken " .. item) end' })
    helpers.write(dir .. "/fail-c", "")
    local _, err, code = update(dir)
    assert.are.equal(1, code, err)
    -- b succeeded once, then fails.
    helpers.write(dir .. "/fail-b", "")
    helpers.write(dir .. "/in-b-edit", "")
    _, err, code = ph.update(dir, "--full-reprocess")
    assert.are.equal(1, code, err)
    local out = ph.tide(dir, "show pipeline.lua --json")
    local shown = cjson.decode(out)
    local by_path = {}
    for _, c in ipairs(shown.components or shown) do by_path[c.path] = c end
    assert.are.equal("ok", by_path["/process/a"].status)
    for _, p in ipairs { "/process/b", "/process/c" } do
      assert.are.equal("failed", by_path[p].status)
      assert.matches("broken " .. p:sub(-1), by_path[p].error, 1, true)
      assert.is_string(by_path[p].updated)
    end
    -- b kept its target state from when it succeeded.
    assert.are.same({ a = "A", b = "B" }, kv(dir .. "/out.json"))
    local text = ph.tide(dir, "show pipeline.lua")
    assert.matches("/process/c%s+process%s+failed", text)
  end)

  it("turns an fs.dir file into a folder, and back, in one run", function()
    ph.write_pipeline(dir, [[
local fs = require "tide.fs"
local write = tide.fn("write", function(site)
  local f = io.open("layout")
  local nested = f ~= nil
  if f then f:close() end
  if nested then site:file("x/y", "inside") else site:file("x", "flat") end
end)
return tide.app("defects", function()
  tide.mount(write, fs.dir("site"))
end)
]])
    local _, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal("flat", helpers.read(dir .. "/site/x"))
    helpers.write(dir .. "/layout", "")
    local stats
    stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal("inside", helpers.read(dir .. "/site/x/y"))
    assert.are.same({ inserted = 1, updated = 0, deleted = 1 },
                    stats.targets)
    os.remove(dir .. "/layout")
    stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal("flat", helpers.read(dir .. "/site/x"))
    stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(0, stats.targets.inserted + stats.targets.deleted)
  end)

  it("leaves no table or folder behind when main fails", function()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", { { "id", "string", key = true } })
return tide.app("defects", function()
  local docs = sqlite.table { db = "out/data/docs.db", name = "docs",
                              schema = Doc }
  local site = fs.dir("out/site")
  error("main cannot go on")
end)
]])
    local _, err, code = update(dir)
    assert.are.equal(2, code)
    assert.matches("main cannot go on", err, 1, true)
    -- Nor the folders made for them.
    assert.is_nil(io.open(dir .. "/out"))
    -- Fixed, the next run makes them.
    helpers.write(dir .. "/pipeline.lua", (helpers.read(dir
      .. "/pipeline.lua"):gsub('error%("main cannot go on"%)', "")))
    _, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.is_not_nil(helpers.read(dir .. "/out/data/docs.db"))
    assert.is_not_nil(io.open(dir .. "/out/site"))
  end)

  it("runs a failed child again under an unchanged memoized parent",
     function()
    ph.write_pipeline(dir, [[
local child = tide.fn("child", { memo = true }, function(name, out)
  local f = io.open("fail-" .. name)
  if f then f:close() error("broken " .. name) end
  out:declare(name, name:upper())
end)
local parent = tide.fn("parent", { memo = true }, function(out)
  for _, name in ipairs { "a", "b", "c" } do
    tide.mount(name, child, name, out)
  end
end)
return tide.app("defects", function()
  tide.mount(parent, kv("out.json"))
end)
]])
    helpers.write(dir .. "/fail-b", "")
    local stats, err, code = update(dir)
    assert.are.equal(1, code, err)
    assert.are.same({ a = "A", c = "C" }, kv(dir .. "/out.json"))
    assert.matches("/parent%s+parent%s+incomplete",
                   ph.tide(dir, "show pipeline.lua"))
    os.remove(dir .. "/fail-b")
    stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ a = "A", b = "B", c = "C" }, kv(dir .. "/out.json"))
    assert.are.equal(1, stats.components.added)
    -- And then the parent is carried over whole again.
    stats = update(dir)
    assert.are.same({ added = 0, reprocessed = 0, deleted = 0,
                      unchanged = 1, errors = 0 }, stats.components)
  end)

  it("takes --max-inflight and refuses a bad value", function()
    ph.write_pipeline(dir, pipeline {})
    local stats, err, code = update(dir, "--max-inflight 1")
    assert.are.equal(0, code, err)
    assert.are.equal(3, stats.components.added)
    _, err, code = update(dir, "--max-inflight 0")
    assert.are.equal(2, code)
    assert.matches("--max-inflight must be a positive integer", err, 1, true)
  end)

  it("refuses to finish a run whose components wait for each other",
     function()
    ph.write_pipeline(dir, [[
local handles = {}
local a = tide.fn("a", function() handles.b:ready() end)
local b = tide.fn("b", function() handles.a:ready() end)
return tide.app("defects", function()
  handles.a = tide.mount(a)
  handles.b = tide.mount(b)
end)
]])
    local _, err, code = update(dir)
    assert.are.equal(2, code)
    assert.matches("2 components of app defects never finished: they wait "
                   .. "for each other", err, 1, true)
  end)
end)
