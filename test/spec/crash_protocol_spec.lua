-- The crash protocol at exact points: a custom target (and the pipeline's
-- main) kill the tide process with SIGKILL where a flag file says, so each
-- window of the protocol is hit on purpose. The random campaign
-- (test/crash, `make crash`) covers the rest.
local helpers = require "test.spec.helpers"
local pl = require "test.spec.pipeline_helpers"

local q = helpers.q

-- kv: one JSON object file; apply kills the process when the flag file
-- `kill-on-<key>` exists and a change for <key> is in the batch (after
-- writing nothing), and fails when `fail-on-<key>` does. main kills it
-- when `kill-in-main` exists.
local PIPELINE = [[
local tide = require "tide"
local cjson = require "cjson"
local function exists(p) local f = io.open(p) if f then f:close() end return f ~= nil end
local function die() io.stdout:flush() os.execute("kill -9 $PPID") end
local function read_kv(file)
  local f = io.open(file)
  if not f then return {} end
  local t = cjson.decode(f:read("a"))
  f:close()
  return t
end
local kv_type = tide.target_type{
  name = "kv",
  identity = function(spec) return spec.file end,
  short_name = function(spec) return spec.file end,
  apply = function(spec, changes)
    for _, c in ipairs(changes) do
      if exists("kill-on-" .. c.key) then die() end
      if exists("fail-on-" .. c.key) then error("disk full") end
    end
    local t = read_kv(spec.file)
    for _, c in ipairs(changes) do t[c.key] = c.value end
    local f = assert(io.open(spec.file .. ".tmp", "w"))
    f:write(cjson.encode(t))
    f:close()
    assert(os.rename(spec.file .. ".tmp", spec.file))
  end,
}
local lines = tide.fn("lines", { memo = true }, function(name, text, out)
  local n = 0
  for line in text:gmatch("[^\n]+") do
    n = n + 1
    out:declare(name .. "#" .. n, line)
  end
end)
return tide.app("proto", function()
  if exists("kill-in-main") then die() end
  local out = tide.declare_target(kv_type, { file = "out.json" })
  local inputs = {}
  for _, name in ipairs { "a", "b", "c" } do
    local f = io.open("in/" .. name)
    if f then inputs[name] = f:read("a") f:close() end
  end
  for name, text in pairs(inputs) do
    tide.mount(name, lines, name, text, out)
  end
end)
]]

local function setup()
  local dir = helpers.tmpdir()
  helpers.write(dir .. "/pipeline.lua", PIPELINE)
  helpers.write(dir .. "/in/a", "a1\na2\n")
  helpers.write(dir .. "/in/b", "b1\n")
  helpers.write(dir .. "/in/c", "c1\n")
  return dir
end

local function flag(dir, name, on)
  if on then helpers.write(dir .. "/" .. name, "")
  else os.remove(dir .. "/" .. name) end
end

local function killed_update(dir)
  local _, _, code = pl.update(dir)
  return code
end

-- An update of one component per batch (the Lua API's batch_size): each
-- batch written while the next components run is applied once the next
-- is written, after its commit. Returns the stats and errors, the exit
-- status and stderr.
local RUNNER = [[
local cjson = require "cjson"
local app = dofile("pipeline.lua")
local stats, errors = app:update { db = ".tide/state.db",
                                   batch_size = tonumber(arg[1]) or 1 }
io.write(cjson.encode({ stats = stats, errors = errors or {} }))
]]
local function small_batches(dir, size)
  helpers.write(dir .. "/runner.lua", RUNNER)
  local out, err, code = pl.tide(dir, "run runner.lua " .. (size or 1))
  local ok, t = pcall(require("cjson").decode, out or "")
  if not ok then t = {} end
  return t.stats, t.errors, code, err
end

-- The head of the pipelines below: a kv target of one JSON object file,
-- whose apply kills the process when a flag file `kill-on-<key>` exists
-- for a key in its batch.
local KV_HEAD = [[
local tide = require "tide"
local cjson = require "cjson"
local function exists(p) local f = io.open(p) if f then f:close() end return f ~= nil end
local kv_type = tide.target_type{
  name = "kv",
  identity = function(spec) return spec.file end,
  apply = function(spec, changes)
    local f = io.open(spec.file)
    local t = f and cjson.decode(f:read("a")) or {}
    if f then f:close() end
    for _, c in ipairs(changes) do
      if exists("kill-on-" .. c.key) then os.execute("kill -9 $PPID") end
      t[c.key] = c.value
    end
    f = assert(io.open(spec.file .. ".tmp", "w"))
    f:write(cjson.encode(t))
    f:close()
    assert(os.rename(spec.file .. ".tmp", spec.file))
  end,
}
]]

describe("the crash protocol", function()
  after_each(helpers.cleanup)

  it("writes back on the next update what a drop a kill cut short had "
     .. "deleted", function()
    local dir = helpers.tmpdir()
    -- A folder, then the kv file, whose apply kills on a flag: the drop
    -- deletes the folder's files and is killed before it commits.
    helpers.write(dir .. "/pipeline.lua", (PIPELINE:gsub(
      'local out = tide.declare_target%(kv_type, { file = "out.json" }%)',
      'local site = require("tide.fs").dir("site")\n'
      .. '  local out = tide.declare_target(kv_type, { file = "out.json" })'):gsub(
      "tide.mount%(name, lines, name, text, out%)",
      "tide.mount(name, lines, name, text, out, site)"):gsub(
      'local lines = tide.fn%("lines", { memo = true }, function%(name, text, out%)',
      'local lines = tide.fn("lines", { memo = true }, function(name, text, out, site)\n'
      .. '  site:file(name .. ".txt", text)')))
    helpers.write(dir .. "/in/a", "a1\n")
    helpers.write(dir .. "/in/b", "b1\n")
    -- A file of the user's keeps the folder there through the drop.
    helpers.write(dir .. "/site/notes", "mine")
    local stats, err, code = pl.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal("a1\n", helpers.read(dir .. "/site/a.txt"))
    flag(dir, "kill-on-a#1", true)
    _, err, code = pl.tide(dir, "drop pipeline.lua --force")
    assert.are_not.equal(0, code, err)
    flag(dir, "kill-on-a#1", false)
    assert.is_nil(helpers.read(dir .. "/site/a.txt"))
    stats, err, code = pl.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal("a1\n", helpers.read(dir .. "/site/a.txt"))
    assert.are.equal("b1\n", helpers.read(dir .. "/site/b.txt"))
    assert.are.same({ ["a#1"] = "a1", ["b#1"] = "b1" },
                    pl.kv(dir .. "/out.json"))
    assert.are.equal(2, stats.components.reprocessed)
    -- And a drop after it ends as a drop does.
    _, err, code = pl.tide(dir, "drop pipeline.lua --force")
    assert.are.equal(0, code, err)
    assert.is_nil(helpers.read(dir .. "/site/a.txt"))
    assert.are.equal("mine", helpers.read(dir .. "/site/notes"))
  end)

  it("deletes a released state after a kill that follows its commit",
     function()
    local dir = setup()
    local stats, err, code = pl.update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ ["a#1"] = "a1", ["a#2"] = "a2", ["b#1"] = "b1",
                      ["c#1"] = "c1" }, pl.kv(dir .. "/out.json"))
    -- a shrinks to one line (a#2 is released) and b changes in the same
    -- batch; the apply of b's change is killed after the batch committed
    -- a's new state.
    helpers.write(dir .. "/in/a", "a1\n")
    helpers.write(dir .. "/in/b", "b1 edited\n")
    flag(dir, "kill-on-b#1", true)
    assert.are_not.equal(0, killed_update(dir))
    flag(dir, "kill-on-b#1", false)
    stats, err, code = pl.update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ ["a#1"] = "a1", ["b#1"] = "b1 edited",
                      ["c#1"] = "c1" }, pl.kv(dir .. "/out.json"))
    assert.are.equal(1, stats.targets.deleted)
    assert.are.equal(0, pl.store_count(dir,
      "SELECT count(*) FROM target_states WHERE pending <> 0"))
  end)

  it("keeps the instruction to rewrite through a second kill", function()
    local dir = setup()
    local _, err, code = pl.update(dir)
    assert.are.equal(0, code, err)
    -- The apply of c's new line is killed: its outcome is unknown.
    helpers.write(dir .. "/in/c", "c1 edited\n")
    flag(dir, "kill-on-c#1", true)
    assert.are_not.equal(0, killed_update(dir))
    flag(dir, "kill-on-c#1", false)
    -- The recovery run is killed too, after recovering and before c's
    -- component runs again.
    flag(dir, "kill-in-main", true)
    assert.are_not.equal(0, killed_update(dir))
    flag(dir, "kill-in-main", false)
    assert.are.equal(1, pl.store_count(dir,
      "SELECT count(*) FROM target_states WHERE pending <> 0"))
    local stats
    stats, err, code = pl.update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ ["a#1"] = "a1", ["a#2"] = "a2", ["b#1"] = "b1",
                      ["c#1"] = "c1 edited" }, pl.kv(dir .. "/out.json"))
    assert.are.equal(1, stats.components.reprocessed)
    assert.are.equal(1, stats.targets.updated)
    -- `why` reports when it was written, not "never".
    local out = pl.tide(dir, "why pipeline.lua out.json c#1")
    assert.not_matches("never", out)
    stats, err, code = pl.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(0, stats.components.reprocessed)
    assert.are.equal(0, stats.targets.updated + stats.targets.inserted
                     + stats.targets.deleted)
  end)

  it("applies a batch written mid-run after its commit, through a kill "
     .. "and a failed apply", function()
    local dir = setup()
    -- Killed in the apply of b's batch, whichever batch it is.
    flag(dir, "kill-on-b#1", true)
    local _, _, code = small_batches(dir)
    assert.are_not.equal(0, code)
    flag(dir, "kill-on-b#1", false)
    local stats, errors, err
    stats, errors, code, err = small_batches(dir)
    assert.are.equal(0, code, err)
    assert.are.same({}, errors)
    assert.are.same({ ["a#1"] = "a1", ["a#2"] = "a2", ["b#1"] = "b1",
                      ["c#1"] = "c1" }, pl.kv(dir .. "/out.json"))
    assert.are.equal(0, pl.store_count(dir,
      "SELECT count(*) FROM target_states WHERE pending <> 0"))
    assert.are.equal(0, pl.store_count(dir, "SELECT count(*) FROM intents"))
    -- Every change of an edit fails to apply: each batch's states stay
    -- pending, the run reports the failures, the others are written.
    helpers.write(dir .. "/in/a", "a1 edited\na2\n")
    helpers.write(dir .. "/in/b", "b1 edited\n")
    flag(dir, "fail-on-b#1", true)
    stats, errors, code, err = small_batches(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(1, #errors)
    assert.matches("writing to out.json failed: .*disk full",
                   errors[1].message)
    assert.are.same({ ["a#1"] = "a1 edited", ["a#2"] = "a2",
                      ["b#1"] = "b1", ["c#1"] = "c1" },
                    pl.kv(dir .. "/out.json"))
    assert.are.equal(1, pl.store_count(dir,
      "SELECT count(*) FROM target_states WHERE pending <> 0"))
    assert.are.equal(0, pl.store_count(dir, "SELECT count(*) FROM intents"))
    -- The next run writes it.
    flag(dir, "fail-on-b#1", false)
    stats, errors, code, err = small_batches(dir)
    assert.are.equal(0, code, err)
    assert.are.same({}, errors)
    assert.are.same({ ["a#1"] = "a1 edited", ["a#2"] = "a2",
                      ["b#1"] = "b1 edited", ["c#1"] = "c1" },
                    pl.kv(dir .. "/out.json"))
    assert.are.equal(1, stats.targets.updated)
    assert.are.equal(0, pl.store_count(dir,
      "SELECT count(*) FROM target_states WHERE pending <> 0"))
  end)

  it("deletes a removed component's states after a kill in the run",
     function()
    local dir = setup()
    local _, err, code = pl.update(dir)
    assert.are.equal(0, code, err)
    -- b is no longer mounted and a grows; a's apply is killed.
    os.remove(dir .. "/in/b")
    helpers.write(dir .. "/in/a", "a1\na2\na3\n")
    flag(dir, "kill-on-a#3", true)
    assert.are_not.equal(0, killed_update(dir))
    flag(dir, "kill-on-a#3", false)
    local stats
    stats, err, code = pl.update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ ["a#1"] = "a1", ["a#2"] = "a2", ["a#3"] = "a3",
                      ["c#1"] = "c1" }, pl.kv(dir .. "/out.json"))
    assert.are.equal(0, pl.store_count(dir,
      "SELECT count(*) FROM target_states WHERE pending <> 0"))
  end)

  it("never records a memoized component before the children it mounted",
     function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", KV_HEAD .. [[
local leaf = tide.fn("leaf", { memo = true }, function(i, version, out)
  if exists(("kill-in-k%03d"):format(i)) then os.execute("kill -9 $PPID") end
  out:declare(("k%03d"):format(i), version)
end)
local parent = tide.fn("parent", { memo = true }, function(n, version, out)
  for i = 1, n do tide.mount(tide.path("leaf", i), leaf, i, version, out) end
end)
return tide.app("nested", function()
  local f = io.open("version")
  local version = f and f:read("l") or "v1"
  if f then f:close() end
  tide.mount(parent, 600, version, tide.declare_target(kv_type,
                                                       { file = "out.json" }))
end)
]])
    local _, err, code = pl.update(dir)
    assert.are.equal(0, code, err)
    helpers.write(dir .. "/version", "v2\n")
    -- Killed in a leaf's code, with nothing pending: two batches (the
    -- parent's among them) committed, the rest never ran.
    helpers.write(dir .. "/kill-in-k550", "")
    assert.are_not.equal(0, killed_update(dir))
    os.remove(dir .. "/kill-in-k550")
    local stats
    stats, err, code = pl.update(dir)
    assert.are.equal(0, code, err)
    local t = pl.kv(dir .. "/out.json")
    local old = {}
    for k, v in pairs(t) do if v ~= "v2" then old[#old + 1] = k end end
    table.sort(old)
    assert.are.same({}, old)
    stats = pl.update(dir)
    assert.are.equal(0, stats.targets.updated + stats.targets.inserted)
  end)

  it("runs again a component whose children an update killed before its "
     .. "record had rerun, when its input goes back", function()
    -- Parents a and b, 300 leaves each, in batches of 10: a's leaves are
    -- recorded under v2 (their batches applied, nothing left pending of
    -- theirs) while a waits its turn behind b's leaves, and a kill in b's
    -- leaves comes before a is recorded. a's record still says v1: with
    -- the input back at v1 it must not carry over leaves of v2.
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", KV_HEAD .. [[
local leaf = tide.fn("leaf", { memo = true }, function(key, version, out)
  if exists("kill-in-" .. key) then os.execute("kill -9 $PPID") end
  out:declare(key, version)
end)
local parent = tide.fn("parent", { memo = true }, function(name, version, out)
  for i = 1, 300 do
    tide.mount(tide.path("leaf", i), leaf, name .. i, version, out)
  end
end)
return tide.app("nested", function()
  local f = io.open("version")
  local version = f and f:read("l") or "v1"
  if f then f:close() end
  local out = tide.declare_target(kv_type, { file = "out.json" })
  tide.mount(tide.path("a"), parent, "a", version, out)
  tide.mount(tide.path("b"), parent, "b", version, out)
end)
]])
    local _, err, code = small_batches(dir, 10)
    assert.are.equal(0, code, err)
    helpers.write(dir .. "/version", "v2\n")
    helpers.write(dir .. "/kill-in-b250", "")
    assert.are_not.equal(0, select(3, small_batches(dir, 10)))
    os.remove(dir .. "/kill-in-b250")
    assert.are.equal(300, pl.store_count(dir, "SELECT count(*) FROM "
      .. "target_states t JOIN components c ON c.id = t.owner_id "
      .. "WHERE c.path LIKE '/a/leaf/%' AND t.pending = 0"))
    helpers.write(dir .. "/version", "v1\n")
    local stats
    stats, err, code = small_batches(dir, 10)
    assert.are.equal(0, code, err)
    local old = {}
    for k, v in pairs(pl.kv(dir .. "/out.json")) do
      if v ~= "v1" then old[#old + 1] = k end
    end
    table.sort(old)
    assert.are.same({}, old)
    stats = small_batches(dir, 10)
    assert.are.equal(0, stats.targets.updated + stats.targets.inserted)
  end)
  -- x takes the key k from y, whose record (v1, ok) a kill leaves:
  -- recorded in batches of one, x's batch (k applied as x's) and w1's
  -- commit before the apply of w1's is killed, and y (which runs again,
  -- or which g no longer mounts) is not recorded. With the version back
  -- at v1, x releases k: y must not carry over a record that no longer
  -- owns it.
  local MOVING = KV_HEAD .. [[
local part = tide.fn("part", { memo = true }, function(name, v, out)
  if name == "x" and v == "v2" then out:declare("k", "x2") end
  if name == "y" and v == "v1" then out:declare("k", "y1") end
  out:declare(name, v)
end)
local group = tide.fn("group", { memo = true }, function(v, out)
  if v == "v1" or not exists("unmount-y") then
    tide.mount("y", part, "y", v, out)
  end
  tide.mount("z", part, "z", v, out)
end)
return tide.app("moving", function()
  local f = io.open("version")
  local v = f and f:read("l") or "v1"
  if f then f:close() end
  local out = tide.declare_target(kv_type, { file = "out.json" })
  tide.mount("x", part, "x", v, out)
  tide.mount("w1", part, "w1", v, out)
  tide.mount("w2", part, "w2", v, out)
  tide.mount("g", group, v, out)
end)
]]
  for _, case in ipairs { "runs again", "is no longer mounted" } do
    it("runs again a component whose target state another took before a "
       .. "kill, when its input goes back (it " .. case .. ")", function()
      local dir = helpers.tmpdir()
      helpers.write(dir .. "/pipeline.lua", MOVING)
      if case == "is no longer mounted" then
        helpers.write(dir .. "/unmount-y", "")
      end
      local _, _, code, err = small_batches(dir)
      assert.are.equal(0, code, err)
      assert.are.equal("y1", pl.kv(dir .. "/out.json").k)
      helpers.write(dir .. "/version", "v2\n")
      flag(dir, "kill-on-w1", true)
      assert.are_not.equal(0, select(3, small_batches(dir)))
      flag(dir, "kill-on-w1", false)
      assert.are.equal("x2", pl.kv(dir .. "/out.json").k)
      helpers.write(dir .. "/version", "v1\n")
      _, _, code, err = small_batches(dir)
      assert.are.equal(0, code, err)
      assert.are.same({ k = "y1", x = "v1", w1 = "v1", w2 = "v1", y = "v1",
                        z = "v1" }, pl.kv(dir .. "/out.json"))
      local stats = small_batches(dir)
      assert.are.equal(0, stats.targets.updated + stats.targets.inserted
                       + stats.targets.deleted)
    end)
  end
  it("records nothing more in a run once the store rolled a batch back",
     function()
    -- p's leaf l2 cannot be recorded (a trigger in the store): its batch
    -- is rolled back on the store's writer thread, and q's leaf l1, which
    -- submits next, learns of it. p's other leaves were recorded: p must
    -- not be recorded ok over l2's old record and change (l2's v1 would
    -- stay in out.json, p carried over from then on).
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", KV_HEAD .. [[
-- l0 writes nothing new: no intent of the batch before l2's is left.
local leaf = tide.fn("leaf", { memo = true }, function(name, v, out)
  out:declare(name, name:match("l0$") and "c" or v)
end)
local parent = tide.fn("parent", { memo = true }, function(name, v, out)
  for _, l in ipairs { "l1", "l0", "l2" } do
    tide.mount(l, leaf, name .. l, v, out)
  end
end)
return tide.app("lost", function()
  local f = io.open("version")
  local v = f and f:read("l") or "v1"
  if f then f:close() end
  local out = tide.declare_target(kv_type, { file = "out.json" })
  tide.mount("p", parent, "p", v, out)
  tide.mount("q", parent, "q", v, out)
end)
]])
    local _, errors, code, err = small_batches(dir)
    assert.are.equal(0, code, err)
    local store = q(dir .. "/.tide/state.db")
    os.execute("sqlite3 " .. store .. " \"CREATE TRIGGER lose BEFORE UPDATE "
      .. "ON components WHEN new.path = '/p/l2' BEGIN SELECT "
      .. "RAISE(ABORT, 'injected'); END\"")
    helpers.write(dir .. "/version", "v2\n")
    _, errors, code, err = small_batches(dir)
    assert.are.equal(0, code, err)
    local said = {}
    for _, e in ipairs(errors) do said[#said + 1] = e.message end
    assert.matches("the state store lost a batch of this run, and nothing "
      .. "after it was recorded (the next update does it again): ",
      table.concat(said, "\n"), 1, true)
    os.execute("sqlite3 " .. store .. " 'DROP TRIGGER lose'")
    _, errors, code, err = small_batches(dir)
    assert.are.equal(0, code, err)
    assert.are.same({}, errors)
    assert.are.same({ pl1 = "v2", pl0 = "c", pl2 = "v2", ql1 = "v2",
                      ql0 = "c", ql2 = "v2" }, pl.kv(dir .. "/out.json"))
    local stats = small_batches(dir)
    assert.are.equal(0, stats.components.reprocessed)
  end)
  it("keeps the failure of a component that failed after mounting its "
     .. "children, and holds its ancestors open above it", function()
    -- p fails under v2 once it has mounted its leaves, whose new records
    -- commit; g, which runs again, is not recorded before the kill (in
    -- the apply of l2's batch). p's row says failed, with its message (an
    -- incomplete mark written over it would lose both), and g runs again
    -- when the version goes back.
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", (MOVING:gsub(
      'local group = .*$', [[
local parent = tide.fn("parent", { memo = true }, function(v, out)
  for i = 1, 3 do tide.mount(tide.path("l", i), part, "l" .. i, v, out) end
  if v == "v2" then error("parent broke") end
end)
local group = tide.fn("group", { memo = true }, function(v, out)
  tide.mount("p", parent, v, out)
  tide.mount("w1", part, "w1", v, out)
  tide.mount("w2", part, "w2", v, out)
end)
return tide.app("failing", function()
  local f = io.open("version")
  local v = f and f:read("l") or "v1"
  if f then f:close() end
  tide.mount("g", group, v, tide.declare_target(kv_type, { file = "out.json" }))
end)
]])))
    local _, _, code, err = small_batches(dir)
    assert.are.equal(0, code, err)
    helpers.write(dir .. "/version", "v2\n")
    flag(dir, "kill-on-l2", true)
    assert.are_not.equal(0, select(3, small_batches(dir)))
    flag(dir, "kill-on-l2", false)
    assert.are.equal(1, pl.store_count(dir, "SELECT status FROM components "
      .. "WHERE path = '/g/p' AND error LIKE '%parent broke%'"))
    assert.are.equal("v2", pl.kv(dir .. "/out.json").l1)
    helpers.write(dir .. "/version", "v1\n")
    _, _, code, err = small_batches(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ l1 = "v1", l2 = "v1", l3 = "v1", w1 = "v1", w2 = "v1" },
                    pl.kv(dir .. "/out.json"))
  end)
end)
