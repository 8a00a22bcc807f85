-- An update shared by workers on a PostgreSQL state store whose main
-- function does more than mount items (test/spec/pg_workers.lua): main's
-- own components are recorded once, its containers made in the lead only
-- (one declared late too), its mount_each calls told apart, a worker's
-- main that differs refused by name, a failing main ends the update, and
-- what cannot be shared is refused with a message.

local helpers = require "test.spec.helpers"
local workers = require "test.spec.pg_workers"
local sqlite = require "tide.sqlite"
local cjson = require "cjson"

local q = helpers.q
local dir, conn

setup(function() dir, conn = workers.start() end)

teardown(function()
  workers.stop()
  helpers.cleanup()
end)

local rows = workers.rows
local location = workers.location
local PIPELINE = workers.PIPELINE
local project = workers.project
local project_with = workers.project_with
local lines_of = workers.lines_of
local tide = workers.tide
local update = workers.update
local target_rows = workers.target_rows
local store_content = workers.store_content
local worker_pids = workers.worker_pids
local counts = workers.counts

describe("an update shared by workers, and its main", function()
  it("records main's own components once: use_mount's value in a worker",
     function()
    local d = helpers.tmpdir()
    helpers.write(d .. "/pipeline.lua", [=[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Row = tide.record("Row", { { "name", "string", key = true },
                                 { "n", "integer" } })
local list = tide.fn("list", function()
  local t = {}
  for i = 1, 40 do t[("k%02d"):format(i)] = i end
  return t
end)
local put = tide.fn("put", { memo = true }, function(n, rows)
  rows:row(Row { name = "x" .. n, n = n })
end)
return tide.app("listed", function()
  local rows = sqlite.table { db = "out.db", name = "rows", schema = Row }
  tide.mount_each(put, tide.use_mount(list), rows)
end)
]=])
    local r = update(d, location("listed"), "--workers 2")
    assert.are.equal(41, r.components.added)
    assert.are.equal(40, r.targets.inserted)
    assert.are.equal(0, r.components.errors)
    local again = update(d, location("listed"), "--workers 2")
    assert.are.equal(40, again.components.unchanged)
    assert.are.equal(1, again.components.reprocessed) -- list: not memoized
  end)

  it("lets workers claim items while the lead still lists, and waits for "
     .. "the containers main declares after its first items", function()
    -- WAIT: the lead's main (not its workers': theirs only say what each
    -- item runs) waits, after its first items, until one of them has
    -- run: it would wait for ever if the workers waited for the whole
    -- listing. LATER: main declares a second table after its first items,
    -- which a worker's main waits for the lead to make (it could not claim
    -- before: WAIT and LATER together would wait for ever).
    local pipeline = [=[
local tide = require "tide"
local sqlite = require "tide.sqlite"
@LINE@
local marker = os.getenv("MARKER")
local first = tide.fn("first", { memo = true }, function(id, t)
  local f = assert(io.open(marker, "a"))
  f:write(id, "\n")
  f:close()
  t:row(Line { id = id, text = "first" })
end)
local second = tide.fn("second", { memo = true }, function(id, t)
  t:row(Line { id = id, text = "second" })
end)
local function items(prefix, n)
  local t = {}
  for i = 1, n do
    local id = ("%s%02d"):format(prefix, i)
    t[id] = id
  end
  return t
end
return tide.app("early", function()
  local early = sqlite.table { db = "out.db", name = "lines", schema = Line }
  tide.mount_each(first, items("a", 20), early)
  if os.getenv("WAIT") and not os.getenv("TIDE_LEAD_PID") then
    local t = require("tide.core").now_ms()
    while not io.open(marker) do
      if require("tide.core").now_ms() - t > 30000 then
        error("no item ran while main was listing")
      end
      tide.sleep(0.01)
    end
  end
  if os.getenv("LATER") then
    -- The lead makes it late: a worker's main comes to it first.
    if not os.getenv("TIDE_LEAD_PID") then tide.sleep(0.3) end
    local later = sqlite.table { db = "out.db", name = "later",
                                 schema = Line }
    tide.mount_each(second, items("b", 20), later)
  end
end)
]=]
    for _, case in ipairs { { env = "WAIT=1", n = 20, tables = 1 },
                            { env = "LATER=1", n = 40, tables = 2 } } do
      local one = project_with(0, pipeline)
      local two = project_with(0, pipeline)
      local s1, s2 = "early_one" .. case.tables, "early_two" .. case.tables
      local a = update(one, location(s1), "",
                       case.env .. " MARKER=marker")
      local b = update(two, location(s2), "--workers 2",
                       case.env .. " MARKER=marker")
      assert.are.equal(case.n, b.components.added)
      assert.are.equal(0, b.components.errors)
      assert.are.equal(counts(a), counts(b))
      assert.are.equal(lines_of(one), lines_of(two))
      assert.are.equal(store_content(s1), store_content(s2))
      -- Each table made once, by the lead.
      assert.are.equal(case.tables,
                       #rows("SELECT id FROM " .. s2 .. ".containers"))
      if case.tables == 2 then
        local db = assert(sqlite.open(two .. "/out.db", "read"))
        assert.are.equal(20, db:rows("SELECT count(*) AS n FROM later")[1].n)
        db:close()
      end
      local again = update(two, location(s2), "--workers 2",
                           case.env .. " MARKER=marker")
      assert.are.equal(case.n, again.components.unchanged)
    end
  end)

  it("makes main's containers in the lead only, one declared late "
     .. "included: a worker's main waits for it", function()
    -- The lead declares the second target 0.3 s after its first items,
    -- which the workers claim at once: their main comes to that
    -- declaration first, and must wait for the lead to make it (each
    -- setup is logged with its process).
    local d = helpers.tmpdir()
    helpers.write(d .. "/pipeline.lua", [=[
local tide = require "tide"
local core = require "tide.core"
local logged = tide.target_type {
  name = "logged",
  setup = function(spec)
    local f = assert(io.open("setups", "a"))
    f:write(spec.name, " ", core.getpid(), "\n")
    f:close()
    return true
  end,
  apply = function(spec, changes)
    for _, ch in ipairs(changes) do
      local f = assert(io.open(spec.name .. "-" .. ch.key[1], "w"))
      f:write(ch.value.text)
      f:close()
    end
  end,
}
local function items(prefix)
  local t = {}
  for i = 1, 20 do
    local key = ("%s%02d"):format(prefix, i)
    t[key] = key
  end
  return t
end
local put_a = tide.fn("put_a", { memo = true }, function(key, t)
  t:declare({ key }, { text = key })
end)
local put_b = tide.fn("put_b", { memo = true }, function(key, t)
  t:declare({ key }, { text = key })
end)
return tide.app("late", function()
  local early = tide.declare_target(logged, { name = "early" })
  tide.mount_each(put_a, items("a"), early)
  if not os.getenv("TIDE_LEAD_PID") then tide.sleep(0.3) end
  local late = tide.declare_target(logged, { name = "late" })
  tide.mount_each(put_b, items("b"), late)
end)
]=])
    local r = update(d, location("late"), "--workers 2")
    assert.are.equal(40, r.components.added)
    assert.are.equal(0, r.components.errors)
    local worker_pids = {}
    for _, w in ipairs(r.workers) do
      worker_pids[math.tointeger(w.pid)] = true
    end
    assert.are.equal(2, #r.workers)
    local setups = {}
    for name, pid in (helpers.read(d .. "/setups") or ""):gmatch("(%S+) (%d+)")
    do
      assert.is_nil(worker_pids[math.tointeger(tonumber(pid))],
                    name .. " was set up by a worker")
      setups[#setups + 1] = name
    end
    table.sort(setups)
    assert.are.same({ "early", "late" }, setups)
    for i = 1, 20 do
      assert.are.equal(("a%02d"):format(i),
                       helpers.read(("%s/early-a%02d"):format(d, i)))
      assert.are.equal(("b%02d"):format(i),
                       helpers.read(("%s/late-b%02d"):format(d, i)))
    end
  end)

  -- Main makes two mount_each calls of put under /put, into two tables;
  -- with LEAD_ONLY set, the second in the lead only.
  local TWO_CALLS = [=[
local tide = require "tide"
local sqlite = require "tide.sqlite"
@LINE@
local put = tide.fn("put", { memo = true }, function(id, t)
  t:row(Line { id = id, text = "put" })
end)
local function items(prefix)
  local t = {}
  for i = 1, 15 do
    local id = ("%s%02d"):format(prefix, i)
    t[id] = id
  end
  return t
end
return tide.app("twice", function()
  local a = sqlite.table { db = "out.db", name = "lines", schema = Line }
  local b = sqlite.table { db = "out.db", name = "others", schema = Line }
  tide.mount_each(put, items("a"), a)
  if not (os.getenv("LEAD_ONLY") and os.getenv("TIDE_LEAD_PID")) then
    tide.mount_each(put, items("b"), b)
  end
end)
]=]

  it("tells apart main's mount_each calls of one function with other "
     .. "arguments", function()
    -- Both calls mount under /put: each item's worker must give it its
    -- own call's table.
    local one = project_with(0, TWO_CALLS)
    local two = project_with(0, TWO_CALLS)
    local a = update(one, location("twice_one"))
    local b = update(two, location("twice_two"), "--workers 2")
    assert.are.equal(counts(a), counts(b))
    assert.are.equal(30, b.components.added)
    assert.are.equal(lines_of(one), lines_of(two))
    local db = assert(sqlite.open(two .. "/out.db", "read"))
    local others = db:rows("SELECT id FROM others ORDER BY id")
    db:close()
    assert.are.equal(15, #others)
    assert.are.equal("b01", others[1].id)
    assert.are.equal(store_content("twice_one"), store_content("twice_two"))
  end)

  it("fails, naming it, an item whose worker's main makes fewer "
     .. "mount_each calls than the lead's", function()
    -- The lead's main makes a second call under /put that its workers'
    -- mains do not make: the second call's items fail in the workers,
    -- each with the message, and the update ends with errors.
    local d = project_with(0, TWO_CALLS)
    local out, err, code = tide(d, "LEAD_ONLY=1", ("update pipeline.lua "
      .. "--db %s --workers 2 --json"):format(q(location("fewer"))))
    local r = cjson.decode(out)
    assert.are.equal(1, code, err)
    assert.are.equal(15, r.components.added)
    assert.are.equal(15, r.components.errors)
    assert.is_truthy(err:find("this worker's main makes fewer than 2 "
      .. "mount_each calls under /put: is it the lead's pipeline?", 1, true),
      err)
    assert.is_truthy(err:find("/put/b01", 1, true), err)
    assert.is_nil(err:find("/put/a", 1, true), err)
  end)

  it("ends the update when the lead's main fails after its workers "
     .. "began, and the next update gives one process's result", function()
    -- The lead's main fails once a worker has written a row.
    local main = [=[
return tide.app("docs", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(process, fs.walk("docs", { include = { "*.txt" } }), docs)
  if os.getenv("FAIL") and not os.getenv("TIDE_LEAD_PID") then
    local t0, n = require("tide.core").now_ms(), 0
    repeat
      tide.sleep(0.02)
      local db = sqlite.open("out.db", "read")
      if db then
        local got = db:rows("SELECT count(*) AS n FROM docs")
        n = got and got[1].n or 0
        db:close()
      end
    until n > 0 or require("tide.core").now_ms() - t0 > 30000
    error("main stops here")
  end
end)
]=]
    local function failing(n)
      local d = project(n)
      local text = PIPELINE:gsub("return tide%.app.*$", function()
        return main
      end)
      helpers.write(d .. "/pipeline.lua", text)
      return d
    end
    local d, clean = failing(40), failing(40)
    assert.is_truthy(helpers.read(d .. "/pipeline.lua"):find("main stops"))
    local out, err, code = tide(d, "FAIL=1 SLEEP_MS=50", ("update "
      .. "pipeline.lua --db %s --workers 2 --max-inflight 2 --json")
      :format(q(location("main_fails"))))
    assert.are.equal(2, code, out .. err)
    assert.is_truthy(err:find("main stops here", 1, true), err)
    -- The workers had begun: some documents are written, not all.
    local written = select(2, target_rows(d):gsub("[^\n]+", ""))
    assert.is_true(written > 0 and written < 40, tostring(written))
    -- The update ended: the next one runs the rest, as one process would.
    local r = update(d, location("main_fails"), "--workers 2")
    assert.are.equal(0, r.components.errors)
    update(clean, location("main_fails_clean"))
    assert.are.equal(target_rows(clean), target_rows(d))
    assert.are.equal(store_content("main_fails_clean"),
                     store_content("main_fails"))
    assert.are.equal(40, update(d, location("main_fails"), "--workers 2")
                           .components.unchanged)
  end)

  it("refuses what it cannot share, with a message", function()
    local d = project(3)
    local out, err, code = tide(d, "", "update pipeline.lua --workers 2")
    assert.are.equal(2, code)
    assert.is_truthy((out .. err):find("--workers needs a PostgreSQL state "
      .. "store", 1, true))
    out, err, code = tide(d, "", ("update pipeline.lua --db %s --workers 2 "
      .. "--preview"):format(q(location("x"))))
    assert.are.equal(2, code)
    assert.is_truthy((out .. err):find("it cannot preview", 1, true))
    out, err, code = tide(d, "", ("update pipeline.lua --db %s --workers 0")
      :format(q(location("x"))))
    assert.are.equal(2, code)
    assert.is_truthy(err:find("--workers must be a positive integer", 1,
                              true))
    -- A lead whose main fails ends the update: its workers do not wait.
    helpers.write(d .. "/broken.lua", "return require('tide').app('docs', "
      .. "function() error('main breaks') end)")
    local started = os.time()
    out, err, code = tide(d, "", ("update broken.lua --db %s --workers 2")
      :format(q(location("broken"))))
    assert.are.equal(2, code)
    assert.is_truthy(err:find("main breaks", 1, true))
    assert.is_true(os.time() - started < 10)
    -- A worker with no update to join waits --wait seconds, then says so.
    update(d, location("quiet"))
    out, err, code = tide(d, "", ("worker pipeline.lua --db %s --wait 0.2")
      :format(q(location("quiet"))))
    assert.are.equal(2, code)
    assert.is_truthy(err:find("no update of app docs to join in 0.2 s", 1,
                              true), err)
    out, err, code = tide(d, "", ("worker pipeline.lua --db %s --wait 0.2")
      :format(q(location("nothing"))))
    assert.are.equal(2, code)
    assert.is_truthy(err:find("no such state store", 1, true), err)
  end)
end)
