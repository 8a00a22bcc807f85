-- Parallel Lua (issue 9): `parallel` tide.fn functions run on worker
-- threads, each with its own Lua state that loads the pipeline file in
-- definition mode. Pipelines are real files here: a worker loads the
-- file that defines the function.
local helpers = require "test.spec.helpers"
local cjson = require "cjson"

-- A pipeline that hashes 40 strings with a parallel function through
-- tide.map and writes one row per string (the function memoized or not:
-- tide.map sends the calls of one that is not from its own task, with no
-- task per item); every call of the body appends
-- a line to calls.log (so a spec can count the calls that ran), and the
-- body reports whether it ran in a worker's state (where tide.app is in
-- definition mode).
local PIPELINE = [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Row = tide.record("Row", { { "k", "string", key = true },
                                 { "h", "integer" }, { "apart", "boolean" } })
local function hash(s)
  local h = 7
  for r = 1, 200 do
    for i = 1, #s do h = (h * 31 + s:byte(i) + r) % 1000000007 end
  end
  return h
end
local work = tide.fn("work", { parallel = true, memo = MEMO },
  function(s, rows)
    local log = assert(io.open(LOG_DIR .. "/calls.log", "a"))
    log:write(s, "\n")
    log:close()
    if s == "bad" then error("bad item") end
    local apart = require("tide.app").in_worker == true
    rows:row(Row { k = s, h = hash(s), apart = apart })
    return hash(s)
  end)
local all = tide.fn("all", function(rows)
  local list = {}
  for i = 1, 40 do list[i] = "item " .. i end
  if os.getenv("TIDE_SPEC_BAD") then list[7] = "bad" end
  local hashes = tide.map(work, list, rows)
  local f = assert(io.open("hashes.txt", "w"))
  f:write(table.concat(hashes, "\n"))
  f:close()
end)
return tide.app("parallel_app", function()
  local rows = sqlite.table { db = "out.db", name = "rows", schema = Row }
  tide.mount(all, rows)
end)
]]

local function setup(dir, memo)
  helpers.write(dir .. "/pipeline.lua",
    ("LOG_DIR = %q\nMEMO = %s\n"):format(dir, tostring(memo ~= false))
    .. PIPELINE)
end

local function update(dir, args, env)
  local out, err, code = helpers.run(("cd %s && %s %s update pipeline.lua "
    .. "--json %s"):format(helpers.q(dir), env or "", helpers.q(helpers.tide),
                           args or ""))
  local ok, stats = pcall(cjson.decode, out or "")
  return ok and stats or nil, err, code
end

local function rows(dir)
  local out = helpers.run(("sqlite3 %s 'SELECT k, h, apart FROM rows "
    .. "ORDER BY k'"):format(helpers.q(dir .. "/out.db")))
  return out
end

local function count_lines(path)
  local s = helpers.read(path) or ""
  local n = 0
  for _ in s:gmatch("\n") do n = n + 1 end
  return n
end

for _, memo in ipairs { true, false } do
describe(("a parallel tide.fn (memo = %s)"):format(memo), function()
  after_each(helpers.cleanup)

  it("runs in workers, results in input order, rows in the target",
     function()
    local dir = helpers.tmpdir()
    setup(dir, memo)
    local stats, err, code = update(dir, "--jobs 2")
    assert.are.equal(0, code, err)
    assert.are.equal(40, stats.targets.inserted)
    assert.are.same({ calls = 40, hits = 0, misses = memo and 40 or 0,
                      errors = 0 }, stats.functions.work)
    -- Every row was declared in a worker's state, not main's.
    local out = rows(dir)
    local n = 0
    for line in out:gmatch("[^\n]+") do
      n = n + 1
      assert.matches("|1$", line)
    end
    assert.are.equal(40, n)
    -- Results in input order: the hash of "item i" on line i.
    local hashes = {}
    for h in helpers.read(dir .. "/hashes.txt"):gmatch("[^\n]+") do
      hashes[#hashes + 1] = h
    end
    assert.are.equal(40, #hashes)
    for line in out:gmatch("[^\n]+") do
      local k, h = line:match("^item (%d+)|(%d+)|")
      assert.are.equal(h, hashes[tonumber(k)])
    end
  end)

  if memo then
    it("is not dispatched on a memo hit", function()
      local dir = helpers.tmpdir()
      setup(dir)
      assert.are.equal(0, select(3, update(dir, "--jobs 2")))
      assert.are.equal(40, count_lines(dir .. "/calls.log"))
      local stats = update(dir, "--jobs 2")
      assert.are.equal(40, stats.functions.work.hits)
      assert.are.equal(40, count_lines(dir .. "/calls.log"))
    end)
  end

  it("gives the same targets and counts with one job or two", function()
    local one, two = helpers.tmpdir(), helpers.tmpdir()
    setup(one, memo)
    setup(two, memo)
    local s1 = update(one, "--jobs 1")
    local s2 = update(two, "--jobs 2")
    s1.elapsed_ms, s2.elapsed_ms = nil, nil
    assert.are.same(s1, s2)
    assert.are.equal(rows(one), rows(two))
    assert.are.equal(helpers.read(one .. "/hashes.txt"),
                     helpers.read(two .. "/hashes.txt"))
  end)

  it("fails only the caller of a bad item, with the worker's traceback",
     function()
    local dir = helpers.tmpdir()
    setup(dir, memo)
    local stats, err, code = update(dir, "--jobs 2", "TIDE_SPEC_BAD=1")
    assert.are.equal(1, code)
    assert.are.equal(1, stats.components.errors)
    assert.are.equal(1, stats.functions.work.errors)
    assert.matches("component /all failed: ", err, 1, true)
    assert.matches("pipeline.lua:%d+: bad item", err)
    assert.matches("(in a worker)", err, 1, true)
    assert.matches("pipeline.lua:%d+: in function <", err)
    -- Every other item ran (the map raises once all finished).
    assert.are.equal(40, count_lines(dir .. "/calls.log"))
  end)
end)
end

describe("a parallel tide.fn", function()
  after_each(helpers.cleanup)

  it("refuses a function that captures an open target, saying why",
     function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Row = tide.record("Row", { { "k", "string", key = true } })
local rows
local put = tide.fn("put", { parallel = true }, function(k)
  rows:row(Row { k = k })
end)
return tide.app("captures", function()
  rows = sqlite.table { db = "out.db", name = "rows", schema = Row }
  tide.mount("put", tide.fn("caller", function() put("a") end))
end)
]])
    local _, err, code = update(dir, "--jobs 2")
    assert.are.equal(1, code)
    assert.matches("tide.fn put cannot run in a worker: it captures rows "
                   .. "(a target handle: pass it as an argument)", err, 1,
                   true)
  end)

  it("refuses a function its file does not define when it loads",
     function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
return tide.app("late", function()
  tide.mount("c", tide.fn("caller", function()
    local late = tide.fn("late", { parallel = true }, function(x)
      return x
    end)
    late(1)
  end))
end)
]])
    local _, err, code = update(dir, "--jobs 1")
    assert.are.equal(1, code)
    assert.matches("does not define tide.fn late when it loads", err, 1, true)
  end)

  it("hands an answer over without waiting for the next job to end",
     function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
-- Spins for ms milliseconds in a worker, then leaves a marker file.
local spin = tide.fn("spin", { parallel = true }, function(ms, marker)
  local stop = os.clock() + ms / 1000
  while os.clock() < stop do end
  if marker then assert(io.open(marker, "w")):close() end
  return ms
end)
return tide.app("answers", function()
  tide.mount("fast", tide.fn("fast", function()
    spin(1)
    -- The slow call, queued behind this one on the only worker, runs
    -- for seconds: this answer came before it ended.
    local f = io.open("slow-done")
    assert(f == nil, "the answer waited for the next job")
  end))
  tide.mount("slow", tide.fn("slow", function() spin(3000, "slow-done") end))
end)
]])
    local stats, err, code = update(dir, "--jobs 1")
    assert.are.equal(0, code, err)
    assert.are.equal(2, stats.components.added)
  end)

  it("keeps nils in arguments and results where they were", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local echo = tide.fn("echo", { parallel = true }, function(...)
  return select("#", ...), ...
end)
local holes = tide.fn("holes", { parallel = true }, function()
  return nil, 5, nil, nil
end)
return tide.app("nils", function()
  tide.mount("c", tide.fn("caller", function()
    local t = table.pack(echo("a", nil, 3))
    assert(t.n == 4 and t[1] == 3 and t[2] == "a" and t[3] == nil
           and t[4] == 3, "echo")
    t = table.pack(echo(nil))
    assert(t.n == 2 and t[1] == 1 and t[2] == nil, "echo nil")
    t = table.pack(holes())
    assert(t.n == 4 and t[1] == nil and t[2] == 5 and t[3] == nil
           and t[4] == nil, "holes")
  end))
end)
]])
    local stats, err, code = update(dir, "--jobs 1")
    assert.are.equal(0, code, err)
    assert.are.equal(1, stats.components.added)
  end)

  it("sends a map's calls from its task, a window at a time, and fails "
     .. "only the items that fail", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local square = tide.fn("square", { parallel = true }, function(x, add)
  if x == 30 or x == 10 then error("item " .. x .. " is bad") end
  return x * x + (add or 0)
end)
local pairs_of = tide.fn("pairs_of", { parallel = true }, function(t)
  return { t[1], t[2] }
end)
return tide.app("map_window", function()
  tide.mount("c", tide.fn("caller", function()
    local list = {}
    for i = 1, 50 do list[i] = i end
    -- Two bad items: the first in input order is raised, once every
    -- item is in; a coroutine cannot cross, and fails its item alone.
    local ok, err = pcall(tide.map, square, list)
    assert(not ok and err:match("item 10 is bad$"), tostring(err))
    list[10], list[30] = 1, 2
    local out = tide.map(square, list, 100)
    for i = 1, 50 do assert(out[i] == list[i] ^ 2 + 100, "item " .. i) end
    list[5] = coroutine.create(print)
    ok, err = pcall(tide.map, square, list)
    assert(not ok and err:match("thread"), tostring(err))
    -- Tables cross packed; results come back in input order.
    local t = {}
    for i = 1, 20 do t[i] = { i, -i } end
    local back = tide.map(pairs_of, t)
    for i = 1, 20 do
      assert(back[i][1] == i and back[i][2] == -i, "pair " .. i)
    end
  end))
end)
]])
    local stats, err, code = update(dir, "--jobs 2 --max-inflight 4")
    assert.are.equal(0, code, err)
    assert.are.equal(1, stats.components.added)
    assert.are.same({ calls = 150, hits = 0, misses = 0, errors = 3 },
                    stats.functions.square)
  end)

  it("names the argument or result that cannot cross by its position",
     function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local second = tide.fn("second", { parallel = true }, function(a, b)
  return b
end)
local gives = tide.fn("gives", { parallel = true }, function()
  return 1, print
end)
local function fails(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "no error")
  return err
end
return tide.app("positions", function()
  tide.mount("c", tide.fn("caller", function()
    local out = assert(io.open("messages.txt", "w"))
    out:write(fails(second, 1, print), "\n")
    out:write(fails(second, nil, { x = { print } }), "\n")
    out:write(fails(gives), "\n")
    out:write(fails(tide.map, second, { 1, 2 }, print), "\n")
    out:close()
  end))
end)
]])
    local _, err, code = update(dir, "--jobs 1")
    assert.are.equal(0, code, err)
    assert.are.equal(table.concat({
      "second argument 2: cannot encode a function",
      "second argument 2.x[1]: cannot encode a function",
      "gives result 2: cannot encode a function",
      "second argument 2: cannot encode a function", "" }, "\n"),
      helpers.read(dir .. "/messages.txt"))
  end)

  it("refuses bad parallel and jobs options", function()
    local tide = require "tide"
    assert.has_error(function()
      tide.fn("p1", { parallel = "yes" }, function() end)
    end, "tide.fn p1: parallel must be true or false")
    assert.has_error(function()
      tide.fn("p2", { parallel = true, batch = 2 }, function() end)
    end, "tide.fn p2: parallel and batch cannot be used together")
    local app = tide.app("jobs_opt", function() end)
    assert.has_error(function()
      app:update { db = helpers.tmpdir() .. "/s.db", jobs = 0 }
    end, "app jobs_opt: jobs must be a positive integer")
    -- More threads than a pool holds: refused naming the option, not
    -- at each parallel call.
    assert.has_error(function()
      app:update { db = helpers.tmpdir() .. "/s.db", jobs = 1025 }
    end, "app jobs_opt: jobs must be at most 1024")
  end)

  it("refuses a --jobs the pool cannot hold before anything runs",
     function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local echo = tide.fn("echo", { parallel = true }, function(x) return x end)
return tide.app("many_jobs", function()
  tide.mount("c", tide.fn("caller", function() echo(1) end))
end)
]])
    for _, jobs in ipairs { "2000", "1e400" } do
      local stats, err, code = update(dir, "--jobs " .. jobs)
      assert.are.equal(2, code)
      assert.is_nil(stats)
      assert.are.equal("tide: update: --jobs must be a positive integer, "
                       .. "at most 1024\n", err)
    end
    -- A whole number written as a float is that number, as for
    -- --max-inflight.
    local stats, err, code = update(dir, "--jobs 2.0")
    assert.are.equal(0, code, err)
    assert.are.equal(1, stats.components.added)
  end)
end)
