-- SIGINT and SIGTERM during `tide update` (issue 7): the first signal stops
-- scheduling, interrupts the component stuck in its own code, commits what
-- completed and exits 130 with a line saying so; a second signal exits at
-- once; SIGUSR1 stops it as a first signal does and never counts as one.
-- Either way the next run ends as a clean run's.
local helpers = require "test.spec.helpers"
local pl = require "test.spec.pipeline_helpers"
local cjson = require "cjson"

local q = helpers.q

-- 40 quick components under a memoized parent. The 20th, after creating
-- the file `started`, loops forever while the file `loop` exists, or
-- blocks opening the FIFO `fifo` (in C, out of an interrupt's reach)
-- while the file `block` exists. The components run in order, so the 19
-- before it have finished when it starts, and the 20 after it have not.
-- main itself loops forever, before mounting anything, while the file
-- `main-loop` exists.
local PIPELINE = [[
local function exists(p)
  local f = io.open(p)
  if f then f:close() end
  return f ~= nil
end
local item = tide.fn("item", { memo = true }, function(i, out)
  if i == 20 and (exists("loop") or exists("block")) then
    assert(io.open("started", "w")):close()
    if exists("block") then io.open("fifo"):close() end
    while true do end
  end
  out:declare("k" .. i, "v" .. i)
end)
local group = tide.fn("group", { memo = true }, function(n, out)
  local items = {}
  for i = 1, n do items[i] = i end
  tide.mount_each(item, items, out)
end)
return tide.app("signals", function()
  local out = kv("out.json")
  if exists("main-loop") then
    assert(io.open("started", "w")):close()
    while true do end
  end
  tide.mount("group", group, 40, out)
end)
]]

local exists, wait_for = helpers.exists, helpers.wait_for

local running = {} -- pids of background updates still to reap

-- Starts `tide update --json` in dir in the background: its pid lands in
-- dir/pid, its output in dir/stdout and dir/stderr, its exit status in
-- dir/status. Returns the pid once the 20th component has started. A
-- shell starts a background job with SIGINT ignored, which tide respects:
-- env gives it back its default.
local function start(dir)
  os.execute(("cd %s && (sh -c 'echo $$ >pid; exec env --default-signal=INT "
    .. "\"$0\" update pipeline.lua --json' %s >stdout 2>stderr; "
    .. "echo $? >status) >/dev/null 2>&1 &"):format(q(dir), q(helpers.tide)))
  assert.is_true(wait_for(function() return exists(dir .. "/started") end,
                          120), "the 20th component never started")
  local pid = assert(tonumber(helpers.read(dir .. "/pid"):match("%d+")))
  running[#running + 1] = { pid = pid, dir = dir }
  return pid
end

-- Sends the signals, waits for the exit; returns the exit status and how
-- many seconds it took after the last signal.
local function stop(dir, pid, ...)
  for _, sig in ipairs { ... } do
    os.execute(("kill -%s %d"):format(sig, pid))
  end
  local sent = os.time()
  -- The shell creates the file before it writes the status into it.
  assert.is_true(wait_for(function()
    return exists(dir .. "/status")
      and helpers.read(dir .. "/status"):match("%d") ~= nil
  end, 120), "tide update did not exit")
  return tonumber(helpers.read(dir .. "/status"):match("%d+")),
    os.time() - sent
end

local function clean_run_targets()
  local dir = helpers.tmpdir()
  pl.write_pipeline(dir, PIPELINE)
  local _, err, code = pl.update(dir)
  assert.are.equal(0, code, err)
  return pl.kv(dir .. "/out.json")
end

-- The rerun succeeds and ends as a clean run's; a further run writes
-- nothing and leaves nothing failed or pending.
local function assert_converges(dir)
  local stats, err, code = pl.update(dir)
  assert.are.equal(0, code, err)
  local want = clean_run_targets()
  assert.are.same(want, pl.kv(dir .. "/out.json"))
  stats, err, code = pl.update(dir)
  assert.are.equal(0, code, err)
  assert.are.same({ inserted = 0, updated = 0, deleted = 0 }, stats.targets)
  assert.are.same({ added = 0, reprocessed = 0, deleted = 0, unchanged = 1,
                    errors = 0 }, stats.components)
  assert.are.equal(0, pl.store_count(dir,
    "SELECT count(*) FROM components WHERE status <> 0"))
  assert.are.equal(0, pl.store_count(dir,
    "SELECT count(*) FROM target_states WHERE pending <> 0"))
  return stats
end

local function first_19()
  local t = {}
  for i = 1, 19 do t["k" .. i] = "v" .. i end
  return t
end

describe("signals during tide update", function()
  after_each(function()
    -- A test that failed half-way must not leave a process spinning.
    for _, r in ipairs(running) do
      if not exists(r.dir .. "/status") then
        os.execute(("kill -9 %d 2>/dev/null"):format(r.pid))
      end
    end
    running = {}
    helpers.cleanup()
  end)

  it("commits what finished on the first SIGINT and exits 130", function()
    local dir = helpers.tmpdir()
    pl.write_pipeline(dir, PIPELINE)
    helpers.write(dir .. "/loop", "")
    local pid = start(dir)
    local code, seconds = stop(dir, pid, "INT")
    local err = helpers.read(dir .. "/stderr")
    assert.are.equal(130, code, err)
    assert.is_true(seconds <= 15, "exit took " .. seconds .. " s")
    -- The 19 items before the stuck one were committed; the stuck one
    -- failed where it looped; the 20 after it never started, so the group
    -- (recorded only after all its items) was not committed either.
    assert.matches("\ntide: interrupted: 19 components committed; run tide "
                   .. "update again to finish\n$", "\n" .. err)
    assert.matches("tide: component /group/item/20 failed: [^\n]*"
                   .. "pipeline%.lua:%d+: interrupted\n", err)
    local stats = cjson.decode(helpers.read(dir .. "/stdout"))
    assert.is_true(stats.interrupted)
    assert.matches("(interrupted)", pl.tide(dir, "ls --db .tide/state.db"),
                   1, true)
    assert.are.same({ added = 19, reprocessed = 0, deleted = 0,
                      unchanged = 0, errors = 1 }, stats.components)
    assert.are.same({ inserted = 19, updated = 0, deleted = 0 },
                    stats.targets)
    assert.are.same(first_19(), pl.kv(dir .. "/out.json"))
    assert.are.equal(19, pl.store_count(dir, "SELECT count(*) FROM "
      .. "components WHERE status = 0 AND path LIKE '/group/item/%'"))
    assert.are.equal(1, pl.store_count(dir, "SELECT count(*) FROM "
      .. "components WHERE path = '/group/item/20' AND status <> 0 "
      .. "AND error LIKE '%interrupted%'"))
    assert.are.equal(0, pl.store_count(dir,
      "SELECT count(*) FROM target_states WHERE pending <> 0"))
    -- The rerun does only what is left: the group and the 21 items from
    -- the stuck one on.
    os.remove(dir .. "/loop")
    local rerun, rerr, rcode = pl.update(dir)
    assert.are.equal(0, rcode, rerr)
    assert.are.same({ added = 22, reprocessed = 0, deleted = 0,
                      unchanged = 19, errors = 0 }, rerun.components)
    assert.are.same({ inserted = 21, updated = 0, deleted = 0 },
                    rerun.targets)
    assert_converges(dir)
  end)

  it("stops on SIGUSR1 as on a first signal, which it never counts as "
     .. "(a lead's request to its workers)", function()
    local dir = helpers.tmpdir()
    pl.write_pipeline(dir, PIPELINE)
    helpers.write(dir .. "/loop", "")
    local pid = start(dir)
    -- Then a Ctrl-C: the first SIGINT or SIGTERM, not a second signal.
    local code = stop(dir, pid, "USR1", "USR1", "TERM")
    local err = helpers.read(dir .. "/stderr")
    assert.are.equal(130, code, err)
    assert.is_nil(err:find("exiting at once", 1, true), err)
    assert.matches("\ntide: interrupted: 19 components committed; run tide "
                   .. "update again to finish\n$", "\n" .. err)
    os.remove(dir .. "/loop")
    assert_converges(dir)
  end)

  it("exits at once on a second signal while the first waits", function()
    local dir = helpers.tmpdir()
    pl.write_pipeline(dir, PIPELINE)
    helpers.write(dir .. "/block", "")
    assert.is_true(os.execute("mkfifo " .. q(dir .. "/fifo")))
    local pid = start(dir)
    os.execute(("kill -TERM %d"):format(pid))
    -- The stuck component is blocked in C, where no interrupt reaches it:
    -- the first signal alone does not end the process.
    os.execute("sleep 1")
    assert.is_false(exists(dir .. "/status"),
                    helpers.read(dir .. "/stderr"))
    local code, seconds = stop(dir, pid, "INT")
    local err = helpers.read(dir .. "/stderr")
    assert.are.equal(130, code, err)
    assert.is_true(seconds <= 15, "exit took " .. seconds .. " s")
    assert.matches("tide: interrupted again: exiting at once\n", err, 1,
                   true)
    assert.are.equal("", helpers.read(dir .. "/stdout"))
    os.remove(dir .. "/block")
    assert_converges(dir)
  end)

  it("exits 130 promptly on two SIGINTs in quick succession", function()
    local dir = helpers.tmpdir()
    pl.write_pipeline(dir, PIPELINE)
    helpers.write(dir .. "/loop", "")
    local pid = start(dir)
    local code, seconds = stop(dir, pid, "INT", "INT")
    local err = helpers.read(dir .. "/stderr")
    assert.are.equal(130, code, err)
    assert.is_true(seconds <= 15, "exit took " .. seconds .. " s")
    -- Two signals sent at once may arrive as one: then it is the first
    -- signal's ending (19 committed, as in the first case above).
    assert.is_truthy(err:find("tide: interrupted again: exiting at once\n",
                              1, true)
                     or err:find("tide: interrupted: 19 components "
                                 .. "committed", 1, true), err)
    os.remove(dir .. "/loop")
    assert_converges(dir)
  end)

  it("interrupts main on SIGTERM and deletes nothing", function()
    local dir = helpers.tmpdir()
    pl.write_pipeline(dir, PIPELINE)
    local _, err, code = pl.update(dir)
    assert.are.equal(0, code, err)
    local before = pl.kv(dir .. "/out.json")
    helpers.write(dir .. "/main-loop", "")
    local pid = start(dir)
    local seconds
    code, seconds = stop(dir, pid, "TERM")
    err = helpers.read(dir .. "/stderr")
    assert.are.equal(130, code, err)
    assert.is_true(seconds <= 15, "exit took " .. seconds .. " s")
    -- main mounted nothing: a run that finished would delete everything.
    assert.matches("\ntide: interrupted: 0 components committed; run tide "
                   .. "update again to finish\n$", "\n" .. err)
    local stats = cjson.decode(helpers.read(dir .. "/stdout"))
    assert.is_true(stats.interrupted)
    assert.are.same({ inserted = 0, updated = 0, deleted = 0 }, stats.targets)
    assert.are.same(before, pl.kv(dir .. "/out.json"))
    os.remove(dir .. "/main-loop")
    assert_converges(dir)
  end)
end)
