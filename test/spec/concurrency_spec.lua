-- Concurrency (issue 9): the scheduler in C, calls that wait without
-- blocking (tide.exec, tide.sleep), the in-flight limit, and tide.map's
-- concurrent items. Overlap is observed by counting how many tasks are
-- inside a wait at once, never by timing.
local helpers = require "test.spec.helpers"
local tide = require "tide"
local sqlite = require "tide.sqlite"

-- Runs wait() in the first item of a two-item tide.map in an app of its
-- own (state in db) and returns what happened, in order: the second item
-- runs while the first waits when the list reads wait starts, other runs,
-- wait ends.
local overlaps = 0
local function overlap(db, wait)
  local events = {}
  overlaps = overlaps + 1
  local app = tide.app("overlap_" .. overlaps, function()
    tide.map(function(i)
      if i == 1 then
        events[#events + 1] = "wait starts"
        wait()
        events[#events + 1] = "wait ends"
      else
        events[#events + 1] = "other runs"
      end
    end, { 1, 2 })
  end)
  assert(app:update { db = db })
  app:close()
  return events
end

-- A gauge of how many tasks are between enter and leave at once.
local function gauge()
  local g = { now = 0, max = 0 }
  function g.enter()
    g.now = g.now + 1
    if g.now > g.max then g.max = g.now end
  end
  function g.leave() g.now = g.now - 1 end
  return g
end

describe("tide.exec", function()
  after_each(helpers.cleanup)

  it("runs a program without a shell and returns its status and output",
     function()
    local r = assert(tide.exec({ "sh", "-c", "cat; echo oops >&2; exit 3" },
                               { stdin = "line 1\nline 2\n" }))
    assert.are.same({ status = 3, stdout = "line 1\nline 2\n",
                      stderr = "oops\n" }, r)
    -- Arguments reach the program as they are: no word splitting.
    r = assert(tide.exec({ "printf", "[%s]", "a b", "$HOME", "*" }))
    assert.are.equal("[a b][$HOME][*]", r.stdout)
    assert.are.equal(0, r.status)
  end)

  it("takes a folder and changes to the environment", function()
    local dir = helpers.tmpdir()
    local r = assert(tide.exec(
      { "sh", "-c", "pwd; echo \"$A|${HOME-unset}\"" },
      { cwd = dir, env = { A = "x y", HOME = false } }))
    assert.are.equal(dir .. "\nx y|unset\n", r.stdout)
  end)

  it("says which program could not be started", function()
    local r, err = tide.exec({ "tide-no-such-program", "x" })
    assert.is_nil(r)
    assert.are.equal("tide.exec: cannot run tide-no-such-program: no such "
                     .. "file or directory", err)
  end)

  it("kills a program that runs past its timeout and reports it", function()
    local dir = helpers.tmpdir()
    local pidfile = dir .. "/pid"
    local r, err = tide.exec({ "sh", "-c", "echo $$ > " .. pidfile
                               .. "; exec sleep 30" }, { timeout = 0.2 })
    assert.is_nil(r)
    assert.are.equal("tide.exec: sh did not finish within 0.2 s and was "
                     .. "killed", err)
    -- The program is gone: no process with its pid is left.
    local pid = assert(tonumber(helpers.read(pidfile)))
    local _, _, code = helpers.run("kill -0 " .. pid)
    assert.are_not.equal(0, code)
  end)

  it("reports a program a signal ended", function()
    local r = assert(tide.exec({ "sh", "-c", "kill -TERM $$" }))
    assert.are.same({ signal = 15, stdout = "", stderr = "" }, r)
  end)

  it("refuses what it cannot use", function()
    assert.has_error(function() tide.exec("ls") end)
    assert.has_error(function() tide.exec({}) end,
      "bad argument #1 to 'exec' (argv must list the program and its "
      .. "arguments)")
    assert.has_error(function() tide.exec({ "ls", 3 }) end,
      "tide.exec: argv[2] must be a string, got number")
    assert.has_error(function() tide.exec({ "ls" }, { shell = true }) end,
      "tide.exec: unknown option shell")
    assert.has_error(function() tide.exec({ "ls" }, { timeout = 0 }) end,
      "tide.exec: timeout must be a positive number of seconds")
    assert.has_error(function() tide.exec({ "ls" }, { env = { A = {} } }) end,
      "tide.exec: env A must be a string, a number or false")
  end)
end)

describe("waiting inside components", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  local function sleepers(name, n, g, body)
    local work = tide.fn(name .. "_work", function(i)
      g.enter()
      body(i)
      g.leave()
    end)
    local items = {}
    for i = 1, n do items["k" .. i] = i end
    return tide.app(name, function() tide.mount_each(work, items) end)
  end

  it("overlaps the waits of many components", function()
    local g = gauge()
    local app = sleepers("overlap", 12, g, function() tide.sleep(0.05) end)
    local stats, errors = app:update { db = dir .. "/state.db" }
    assert.are.same({}, errors)
    assert.are.equal(12, stats.components.added)
    assert.are.equal(12, g.max)
    app:close()
  end)

  it("overlaps programs run with tide.exec", function()
    local g = gauge()
    local outputs = {}
    local app = sleepers("overlap_exec", 6, g, function(i)
      local r = assert(tide.exec({ "sh", "-c", "sleep 0.05; echo " .. i }))
      outputs[i] = r.stdout
    end)
    local _, errors = app:update { db = dir .. "/state.db" }
    assert.are.same({}, errors)
    assert.are.equal(6, g.max)
    for i = 1, 6 do assert.are.equal(i .. "\n", outputs[i]) end
    app:close()
  end)

  it("sleeps as long as asked after a component ran long without waiting",
     function()
    -- The loop's clock is read when it last waited: a sleep counted from
    -- it would end early (here at once) after 60 ms of work.
    local now, slept = require("tide.core").now_ms, nil
    local work = tide.fn("busy_then_sleep", function()
      local t = now()
      while now() - t < 60 do end
      t = now()
      tide.sleep(0.03)
      slept = now() - t
    end)
    local app = tide.app("busy_then_sleep", function()
      tide.mount(work)
    end)
    local _, errors = app:update { db = dir .. "/state.db" }
    assert.are.same({}, errors)
    -- The loop counts whole milliseconds: 29 and a fraction at least.
    assert.is_true(slept >= 29, "slept " .. tostring(slept) .. " ms")
    app:close()
  end)

  it("keeps at most max_inflight components in flight", function()
    local g = gauge()
    local app = sleepers("inflight", 12, g, function() tide.sleep(0.02) end)
    local stats, errors = app:update { db = dir .. "/state.db",
                                       max_inflight = 4 }
    assert.are.same({}, errors)
    assert.are.equal(12, stats.components.added)
    assert.are.equal(4, g.max)
    app:close()
  end)

  it("finishes nested mounts with a single slot", function()
    local leaf = tide.fn("leaf", function(i) tide.sleep(0.001) return i end)
    local mid = tide.fn("mid", function(i)
      local sum = 0
      for j = 1, 3 do
        sum = sum + tide.use_mount(tide.path("leaf", j), leaf, i * 10 + j)
      end
      return sum
    end)
    local total = 0
    local app = tide.app("one_slot", function()
      for i = 1, 4 do
        total = total + tide.use_mount(tide.path("mid", i), mid, i)
      end
      tide.mount_each(leaf, { a = 1, b = 2, c = 3 })
    end)
    local stats, errors = app:update { db = dir .. "/state.db",
                                       max_inflight = 1 }
    assert.are.same({}, errors)
    assert.are.equal(4 * 6 + 10 * (1 + 2 + 3 + 4) * 3, total)
    assert.are.equal(4 + 12 + 3, stats.components.added)
    app:close()
  end)

  it("takes max_inflight from the app, and refuses a bad one", function()
    local g = gauge()
    local work = tide.fn("app_limit_work", function()
      g.enter()
      tide.sleep(0.01)
      g.leave()
    end)
    local app = tide.app("app_limit", function()
      tide.mount_each(work, { 1, 2, 3, 4, 5, 6 })
    end, { max_inflight = 3 })
    assert(app:update { db = dir .. "/state.db" })
    assert.are.equal(3, g.max)
    assert.has_error(function()
      app:update { db = dir .. "/state.db", max_inflight = 0 }
    end, "app app_limit: max_inflight must be a positive integer")
    assert.has_error(function()
      tide.app("bad_limit", function() end, { max_inflight = 1.5 })
    end, "tide.app bad_limit: max_inflight must be a positive integer")
    app:close()
  end)
end)

describe("tide.map", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  it("runs its items concurrently and returns results in input order",
     function()
    local g = gauge()
    -- Later items finish first.
    local slow = tide.fn("slow", function(i)
      g.enter()
      tide.sleep((10 - i) * 0.005)
      g.leave()
      return i * i
    end)
    local got
    local app = tide.app("map_order", function()
      got = tide.map(slow, { 1, 2, 3, 4, 5, 6, 7, 8, 9 })
    end)
    local _, errors = app:update { db = dir .. "/state.db" }
    assert.are.same({}, errors)
    assert.are.same({ 1, 4, 9, 16, 25, 36, 49, 64, 81 }, got)
    assert.are.equal(9, g.max)
    app:close()
  end)

  it("raises the first failure in input order once every item finished",
     function()
    local finished = {}
    local item = tide.fn("item", function(i)
      tide.sleep((6 - i) * 0.005)
      if i == 2 or i == 4 then error("item " .. i .. " is bad") end
      finished[#finished + 1] = i
      return i
    end)
    local caught
    local app = tide.app("map_errors", function()
      tide.mount("caller", tide.fn("caller", function()
        local ok, err = pcall(tide.map, item, { 1, 2, 3, 4, 5 })
        caught = err
        assert(not ok)
        tide.map(item, { 4 })
      end))
    end)
    local stats, errors = app:update { db = dir .. "/state.db" }
    assert.matches("item 2 is bad$", caught)
    table.sort(finished)
    assert.are.same({ 1, 3, 5 }, finished)
    -- Only the caller fails, with the item's own traceback.
    assert.are.equal(1, stats.components.errors)
    assert.are.equal(1, #errors)
    assert.are.equal("/caller", errors[1].path)
    assert.matches("item 4 is bad", errors[1].message, 1, true)
    assert.matches("in function", errors[1].message, 1, true)
    app:close()
  end)

  it("points a failure at the map's call when no Lua code of the item "
     .. "failed (a function of C's or tide's own)", function()
    local line
    local app = tide.app("map_c_errors", function()
      tide.mount("caller", tide.fn("caller", function()
        line = debug.getinfo(1, "l").currentline + 1
        tide.map(string.rep, { "ab", {} }, 2)
      end))
    end)
    local _, errors = app:update { db = dir .. "/state.db" }
    assert.are.equal(1, #errors)
    assert.matches("bad argument #1 to", errors[1].message, 1, true)
    assert.matches("concurrency_spec.lua:" .. line .. ":", errors[1].message,
                   1, true)
    app:close()
  end)

  it("records its items' memoized calls and target states in the caller",
     function()
    local Row = tide.record("Row", { { "k", "string", key = true },
                                     { "v", "integer" } })
    local version = 1
    local square = tide.fn("square", { memo = true }, function(i)
      tide.sleep(0.001)
      return i * i * version
    end)
    local runs = 0
    local fill = tide.fn("fill", { memo = true }, function(t)
      runs = runs + 1
      tide.map(function(i)
        t:row(Row { k = "r" .. i, v = square(i) })
      end, { 1, 2, 3, 4 })
    end)
    local app = tide.app("map_memo", function()
      local t = sqlite.table { db = dir .. "/out.db", name = "rows",
                               schema = Row }
      tide.mount(fill, t)
    end)
    local db = dir .. "/state.db"
    local stats = assert(app:update { db = db })
    assert.are.equal(4, stats.targets.inserted)
    assert.are.same({ calls = 4, hits = 0, misses = 4, errors = 0 },
                    stats.functions.square)
    stats = assert(app:update { db = db })
    assert.are.equal(1, stats.components.unchanged)
    assert.are.equal(1, runs)
    -- A change of square's logic reaches fill through the items' calls.
    square = tide.fn("square", { memo = true, version = 2 }, function(i)
      return i * i * 2
    end)
    stats = assert(app:update { db = db })
    assert.are.equal(1, stats.components.reprocessed)
    assert.are.equal(4, stats.targets.updated)
    local out = assert(sqlite.open(dir .. "/out.db"))
    local rows = out:rows("SELECT k, v FROM rows ORDER BY k")
    out:close()
    assert.are.same({ { k = "r1", v = 2 }, { k = "r2", v = 8 },
                      { k = "r3", v = 18 }, { k = "r4", v = 32 } }, rows)
    app:close()
  end)
end)

describe("a tide.fn's concurrency and batch options", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  it("caps the calls of a function that run at once", function()
    local g = gauge()
    local limited = tide.fn("limited", { concurrency = 3 }, function(i)
      g.enter()
      tide.sleep(0.01)
      g.leave()
      return -i
    end)
    local got
    local app = tide.app("limited_app", function()
      got = tide.map(limited, { 1, 2, 3, 4, 5, 6, 7, 8 })
    end)
    local stats = assert(app:update { db = dir .. "/state.db" })
    assert.are.same({ -1, -2, -3, -4, -5, -6, -7, -8 }, got)
    assert.are.equal(3, g.max)
    assert.are.equal(8, stats.functions.limited.calls)
    app:close()
  end)

  it("groups concurrent callers into batches of at most N", function()
    local sizes = {}
    local double = tide.fn("double", { memo = true, batch = 4 },
      function(items)
        sizes[#sizes + 1] = #items
        tide.sleep(0.005)
        local out = {}
        for i, x in ipairs(items) do out[i] = x * 2 end
        return out
      end)
    local got, alone
    local app = tide.app("batch_app", function()
      got = tide.map(double, { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 })
    end)
    local stats = assert(app:update { db = dir .. "/state.db" })
    assert.are.same({ 2, 4, 6, 8, 10, 12, 14, 16, 18, 20 }, got)
    -- The first caller lets the other items reach their calls, then the
    -- batches go in fours.
    assert.are.same({ 4, 4, 2 }, sizes)
    assert.are.same({ calls = 10, hits = 0, misses = 10, errors = 0 },
                    stats.functions.double)
    -- Memo per item: the next run hits every item without a batch.
    sizes = {}
    stats = assert(app:update { db = dir .. "/state.db" })
    assert.are.same({}, sizes)
    assert.are.equal(10, stats.functions.double.hits)
    -- Outside a component a batched function runs its item alone.
    alone = double(21)
    assert.are.equal(42, alone)
    assert.are.same({ 1 }, sizes)
    app:close()
  end)

  it("computes a call once while callers with the same arguments wait "
     .. "for it, in a batch and across components", function()
    local seen, sizes = {}, {}
    local double = tide.fn("double_once", { memo = true, batch = 4 },
      function(items)
        sizes[#sizes + 1] = #items
        tide.sleep(0.005)
        local out = {}
        for i, x in ipairs(items) do
          seen[x] = (seen[x] or 0) + 1
          if x == 13 then error("thirteen refused") end
          out[i] = x * 2
        end
        return out
      end)
    local got, doubled = nil, {}
    local each = tide.fn("each_double", function(x) doubled[x] = double(x) end)
    local app = tide.app("once_app", function()
      got = tide.map(double, { 1, 2, 1, 3, 2, 1 })
      tide.mount_each(each, { a = 5, b = 5, c = 5, d = 6 })
    end)
    local stats = assert(app:update { db = dir .. "/state.db" })
    assert.are.same({ 2, 4, 2, 6, 4, 2 }, got)
    assert.are.same({ [5] = 10, [6] = 12 }, doubled)
    assert.are.same({ [1] = 1, [2] = 1, [3] = 1, [5] = 1, [6] = 1 }, seen)
    assert.are.same({ calls = 10, hits = 5, misses = 5, errors = 0 },
                    stats.functions.double_once)
    -- A call that fails fails each caller, each trying it in its turn.
    seen = {}
    local refused = tide.fn("refused", function(x) double(x) end)
    local app2 = tide.app("once_fail", function()
      tide.mount_each(refused, { a = 13, b = 13 })
    end)
    local _, errors = assert(app2:update { db = dir .. "/state2.db" })
    assert.are.equal(2, #errors)
    assert.matches("thirteen refused", errors[1].message, 1, true)
    assert.are.equal(2, seen[13])
    -- Recursion: a call computing waits for no call of its own task, and
    -- three components computing the same numbers share them.
    local fib
    fib = tide.fn("fib_once", { memo = true }, function(n)
      if n <= 1 then return n end
      tide.sleep(0)
      return fib(n - 1) + fib(n - 2)
    end)
    local fibs = {}
    local each_fib = tide.fn("each_fib", function(n) fibs[n] = fib(n) end)
    local app3 = tide.app("once_fib", function()
      tide.mount_each(each_fib, { a = 20, b = 20, c = 19 })
    end)
    stats = assert(app3:update { db = dir .. "/state3.db" })
    assert.are.same({ [19] = 4181, [20] = 6765 }, fibs)
    assert.are.equal(21, stats.functions.fib_once.misses)
    -- A call that calls itself with the same arguments recurses, as
    -- without the wait (not 'they wait for each other').
    local again
    again = tide.fn("again_once", { memo = true }, function(n)
      return again(n)
    end)
    local app4 = tide.app("once_again", function()
      tide.mount_each(again, { a = 1 })
    end)
    _, errors = assert(app4:update { db = dir .. "/state4.db" })
    assert.are.equal(1, #errors)
    assert.matches("stack overflow", errors[1].message, 1, true)
    app4:close()
    -- A result that cannot be stored fails its caller, and the one that
    -- waited for it tries in its turn.
    local unstorable = tide.fn("unstorable_once", { memo = true },
      function() tide.sleep(0.005) return print end)
    local app5 = tide.app("once_unstorable", function()
      tide.mount_each(tide.fn("each_unstorable", function(n)
        unstorable(n)
      end), { a = 1, b = 1 })
    end)
    stats, errors = assert(app5:update { db = dir .. "/state5.db" })
    assert.are.equal(2, #errors)
    assert.matches("cannot encode a function", errors[2].message, 1, true)
    assert.are.equal(2, stats.functions.unstorable_once.misses)
    app5:close()
    -- A computing task the scheduler aborts (its code yielded to it)
    -- lands its flight: the waiter fails on its own, not waiting for ever.
    local yields = tide.fn("yields_once", { memo = true }, function(n)
      tide.sleep(0.005)
      coroutine.yield()
      return n
    end)
    local app6 = tide.app("once_yields", function()
      tide.mount_each(tide.fn("each_yields", function(n) yields(n) end),
                      { a = 1, b = 1 })
    end)
    stats, errors = assert(app6:update { db = dir .. "/state6.db" })
    assert.are.equal(2, #errors)
    for _, e in ipairs(errors) do
      assert.matches("component code cannot yield to tide", e.message, 1,
                     true)
    end
    app6:close()
    app:close()
    app2:close()
    app3:close()
  end)

  it("sends a full batch at once, and the next before the last one's "
     .. "callers resume", function()
    local log, arrived = {}, 0
    local first_seen
    local pair = tide.fn("pair", { batch = 2, concurrency = 5 },
      function(items)
        first_seen = first_seen or arrived
        log[#log + 1] = "batch " .. table.concat(items, "+")
        tide.sleep(0.002)
        return items
      end)
    local app = tide.app("eager_batches", function()
      tide.map(function(i)
        arrived = arrived + 1
        pair(i)
        log[#log + 1] = "done " .. i
      end, { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 })
    end)
    local _, errors = app:update { db = dir .. "/state.db" }
    assert.are.same({}, errors)
    -- Five leaders wait for company; each goes as soon as its batch of 2
    -- is full, before the other callers have all arrived.
    assert.is_true(first_seen < 12, "the first batch waited for all 12")
    local done = 0
    for _, line in ipairs(log) do
      if line:match "^done" then done = done + 1 end
    end
    assert.are.equal(12, done)
    -- The five leaders' batches are full and all sent before any caller
    -- resumed; the items left after them go in further batches.
    for k = 1, 5 do assert.matches("^batch %d+%+%d+$", log[k]) end
    local seen = {}
    for _, line in ipairs(log) do
      for x in line:gmatch "%d+" do
        if line:match "^batch" then
          assert.is_nil(seen[x], "item " .. x .. " in two batches")
          seen[x] = true
        end
      end
    end
    for i = 1, 12 do assert.is_true(seen[tostring(i)], "item " .. i) end
    app:close()
    -- One call at a time: when a batch ends, its leader goes on with its
    -- own item, then the next batch starts, before the other callers of
    -- the batch that ended go on.
    log = {}
    local one = tide.fn("one_at_a_time", { batch = 2 }, function(items)
      log[#log + 1] = "batch " .. table.concat(items, "+")
      tide.sleep(0.002)
      return items
    end)
    app = tide.app("next_batch_first", function()
      tide.map(function(i)
        one(i)
        log[#log + 1] = "done " .. i
      end, { 1, 2, 3, 4, 5, 6 })
    end)
    _, errors = app:update { db = dir .. "/state2.db" }
    assert.are.same({}, errors)
    assert.are.same({ "batch 1+2", "done 1", "batch 3+4", "done 2",
                      "done 3", "batch 5+6", "done 4", "done 5", "done 6" },
                    log)
    app:close()
  end)

  it("batches by cost", function()
    local sizes = {}
    local f = tide.fn("by_cost", { batch = { cost = function(s)
      return #s end, max_cost = 10 } }, function(items)
        sizes[#sizes + 1] = table.concat(items, "+")
        tide.sleep(0.002)
        local out = {}
        for i, s in ipairs(items) do out[i] = #s end
        return out
      end)
    local got
    local app = tide.app("cost_app", function()
      got = tide.map(f, { "a", "bbbb", "cccc", "dd", "eeeeeeeeeeee", "f" })
    end)
    assert(app:update { db = dir .. "/state.db" })
    assert.are.same({ 1, 4, 4, 2, 12, 1 }, got)
    -- Up to a cost of 10; an item alone over it still runs, alone.
    assert.are.same({ "a+bbbb+cccc", "dd", "eeeeeeeeeeee", "f" }, sizes)
    app:close()
  end)

  it("gives each caller its own error, and smaller_batch isolates a bad "
     .. "item", function()
    local seen = {}
    local picky = tide.fn("picky", { batch = 8 }, function(items)
      seen[#seen + 1] = #items
      tide.sleep(0.001)
      local out = {}
      for i, x in ipairs(items) do
        if x == 5 then
          if #items > 1 then tide.smaller_batch() end
          error("item 5 is bad")
        end
        out[i] = x * 10
      end
      return out
    end)
    local results = {}
    local work = tide.fn("picky_work", function(i)
      results[i] = picky(i)
    end)
    local app = tide.app("picky_app", function()
      for i = 1, 6 do tide.mount(tide.path("w", i), work, i) end
    end)
    local stats, errors = app:update { db = dir .. "/state.db" }
    -- Only the component whose item was bad failed.
    assert.are.equal(1, stats.components.errors)
    assert.are.equal(1, #errors)
    assert.are.equal("/w/5", errors[1].path)
    assert.matches("item 5 is bad", errors[1].message, 1, true)
    assert.are.same({ [1] = 10, [2] = 20, [3] = 30, [4] = 40, [6] = 60 },
                    results)
    -- All six together, split in halves down to 5 alone.
    assert.are.same({ 6, 3, 3, 1, 2, 1, 1 }, seen)
    app:close()
  end)

  it("fails a whole batch that returns the wrong number of results",
     function()
    local short = tide.fn("short", { batch = 8 }, function(items)
      tide.sleep(0.001)
      return { 1 }
    end)
    local work = tide.fn("short_work", function(i) return short(i) end)
    local app = tide.app("short_app", function()
      for i = 1, 3 do tide.mount(tide.path("w", i), work, i) end
    end)
    local stats, errors = app:update { db = dir .. "/state.db" }
    -- The three callers share one batch, which fails them all.
    assert.are.equal(3, stats.components.errors)
    assert.matches("tide.fn short: a batch of 3 items returned 1 result",
                   errors[1].message, 1, true)
    assert.is_nil(errors[1].message:find("1 results", 1, true))
    app:close()
  end)

  it("refuses bad options", function()
    assert.has_error(function()
      tide.fn("c0", { concurrency = 0 }, function() end)
    end, "tide.fn c0: concurrency must be a positive integer")
    assert.has_error(function()
      tide.fn("b0", { batch = 0 }, function() end)
    end, "tide.fn b0: batch must be a positive integer or a table "
      .. "{ size, cost, max_cost }")
    assert.has_error(function()
      tide.fn("b1", { batch = { cost = function() return 1 end } },
              function() end)
    end, "tide.fn b1: batch.cost and batch.max_cost go together")
    assert.has_error(function()
      tide.fn("b2", { batch = { size = 2, per = 3 } }, function() end)
    end, "tide.fn b2: unknown batch option per")
    -- A NaN is no limit at all (every comparison with it is false).
    assert.has_error(function()
      tide.fn("b4", { batch = { cost = function() return 1 end,
                                max_cost = 0 / 0 } }, function() end)
    end, "tide.fn b4: batch.max_cost must be a positive number")
    -- memo = "false" would memoize: anything but a boolean is refused.
    for _, v in ipairs { "false", 0, {} } do
      assert.has_error(function()
        tide.fn("m0", { memo = v }, function() end)
      end, "tide.fn m0: memo must be true or false")
    end
    local b = tide.fn("b3", { batch = 2 }, function(items) return items end)
    assert.has_error(function() b(1, 2) end,
      "tide.fn b3 is batched: it takes one argument per call")
  end)
end)

describe("the scheduler under mixed waits", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  it("wakes each batch caller once when batches run side by side",
     function()
    -- Items reach the batched function at staggered times, several
    -- batches run at once, each waiting inside.
    local ran = {}
    local stagger = tide.fn("stagger", { concurrency = 1 }, function(i)
      if i % 3 ~= 0 then tide.sleep(0.002) end
      return i
    end)
    local f = tide.fn("side_by_side", { batch = 2, concurrency = 3 },
      function(items)
        tide.sleep(0.003)
        local out = {}
        for k, x in ipairs(items) do
          ran[x] = (ran[x] or 0) + 1
          out[k] = x * 10
        end
        return out
      end)
    local got
    local app = tide.app("side_by_side_app", function()
      local list = {}
      for i = 1, 30 do list[i] = i end
      got = tide.map(function(i) return f(stagger(i)) end, list)
    end)
    local _, errors = app:update { db = dir .. "/state.db" }
    assert.are.same({}, errors)
    for i = 1, 30 do
      assert.are.equal(i * 10, got[i])
      assert.are.equal(1, ran[i])
    end
    app:close()
  end)

  it("keeps the slot limit when a batch wakes its callers", function()
    local g = gauge()
    local gather = tide.fn("gather", { batch = 8 }, function(items)
      return items
    end)
    local app = tide.app("wake_limit", function()
      tide.map(function(i)
        gather(i)
        g.enter()
        tide.sleep(0.01)
        g.leave()
      end, { 1, 2, 3, 4, 5, 6, 7, 8 })
    end)
    local _, errors = app:update { db = dir .. "/state.db",
                                   max_inflight = 2 }
    assert.are.same({}, errors)
    assert.is_true(g.max <= 2, "at most 2 at once, saw " .. g.max)
    app:close()
  end)

  it("records a map item's context dependency in its memoized call",
     function()
    local K = tide.key("flavour", { detect_change = true })
    local calls = 0
    local flavoured = tide.fn("flavoured", { memo = true }, function(x)
      calls = calls + 1
      return x .. ":" .. tide.use(K)
    end)
    local got
    local function app_with(flavour)
      return tide.app("map_context", function()
        got = tide.map(flavoured, { "a" })
      end, { context = { [K] = flavour } })
    end
    local a = app_with("one")
    assert(a:update { db = dir .. "/state.db" })
    a:close()
    assert.are.same({ "a:one" }, got)
    local b = app_with("two")
    assert(b:update { db = dir .. "/state.db" })
    b:close()
    assert.are.same({ "a:two" }, got)
    assert.are.equal(2, calls)
  end)

  it("refuses a mount inside a memoized call inside a map item", function()
    local child = tide.fn("mapped_child", function() end)
    local inner = tide.fn("inner_memo", { memo = true }, function(i)
      tide.mount(tide.path("c", i), child)
      return i
    end)
    local app = tide.app("map_mount", function()
      tide.mount("m", tide.fn("mapper", function()
        tide.map(inner, { 1 })
      end))
    end)
    local stats, errors = app:update { db = dir .. "/state.db" }
    assert.are.equal(1, stats.components.errors)
    assert.matches("cannot mount a component inside memoized function "
                   .. "inner_memo", errors[1].message, 1, true)
    app:close()
  end)

  it("stops at a signal while components wait for a program", function()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local wait = tide.fn("wait", function()
  assert(io.open("started", "w")):close()
  tide.exec({ "sleep", "30" })
end)
return tide.app("stop_waiting", function() tide.mount(wait) end)
]])
    os.execute(("cd %s && (sh -c 'echo $$ >pid; exec %s update pipeline.lua'"
      .. " >stdout 2>stderr; echo $? >status) >/dev/null 2>&1 &")
      :format(helpers.q(dir), helpers.q(helpers.tide)))
    local function appears(path, seconds)
      return helpers.wait_for(function() return helpers.exists(path) end,
                              seconds)
    end
    assert.is_true(appears(dir .. "/started", 60))
    local pid = assert(tonumber(helpers.read(dir .. "/pid"):match("%d+")))
    os.execute("kill -TERM " .. pid)
    -- Not the 30 s the program would take (the shell creates the status
    -- file before it writes the status in it).
    assert.is_true(helpers.wait_for(function()
      return helpers.exists(dir .. "/status")
        and helpers.read(dir .. "/status"):match("%d") ~= nil
    end, 10), "tide did not stop")
    assert.are.equal("130", helpers.read(dir .. "/status"):match("%d+"))
  end)
end)

describe("reading large files", function()
  after_each(helpers.cleanup)

  it("lets other components run while one reads a large file, and "
     .. "fingerprints it as a small one", function()
    local dir = helpers.tmpdir()
    local fs = require "tide.fs"
    local big = string.rep("0123456789abcdef", 2 * 65536) -- 2 MiB
    helpers.write(dir .. "/in/a.bin", big)
    helpers.write(dir .. "/in/b.bin", big .. "b")
    helpers.write(dir .. "/in/c.txt", "small")
    local events, sizes = {}, {}
    local work = tide.fn("read_large", { memo = true }, function(file)
      events[#events + 1] = "start " .. file.path
      local s = file:bytes()
      events[#events + 1] = "end " .. file.path
      sizes[file.path] = #s
    end)
    local app = tide.app("read_large_app", function()
      tide.mount_each(work, fs.walk(dir .. "/in"))
    end)
    local db = dir .. "/state.db"
    local stats = assert(app:update { db = db })
    assert.are.equal(3, stats.components.added)
    assert.are.same({ ["a.bin"] = #big, ["b.bin"] = #big + 1,
                      ["c.txt"] = 5 }, sizes)
    -- b started while a was still being read.
    local pos = {}
    for i, e in ipairs(events) do pos[e] = i end
    assert.is_true(pos["start b.bin"] < pos["end a.bin"],
                   table.concat(events, ", "))
    -- The fingerprint taken on the pool is the one a no-change run
    -- compares with; a changed byte is seen.
    stats = assert(app:update { db = db })
    assert.are.equal(3, stats.components.unchanged)
    helpers.write(dir .. "/in/a.bin", big:sub(1, -2) .. "X")
    stats = assert(app:update { db = db })
    assert.are.equal(1, stats.components.reprocessed)
    assert.are.equal(2, stats.components.unchanged)
    -- Outside a component the read is a plain call.
    local s, fp = require("tide.core").read_file(dir .. "/in/b.bin", true)
    assert.are.equal(#big + 1, #s)
    assert.are.equal(require("tide.core").fingerprint_bytes(s), fp)
    local none, err = require("tide.core").read_file(dir .. "/in/none")
    assert.is_nil(none)
    assert.matches("in/none: ", err, 1, true)
    app:close()
  end)

  it("hashes a touched large file in its component, on the pool, and "
     .. "still finds it unchanged", function()
    local dir = helpers.tmpdir()
    local fs = require "tide.fs"
    local core = require "tide.core"
    local big = string.rep("fedcba9876543210", 2 * 65536) -- 2 MiB
    helpers.write(dir .. "/in/a.bin", big)
    helpers.write(dir .. "/in/c.txt", "small")
    local ran = {}
    local work = tide.fn("hash_large", { memo = true }, function(file)
      ran[#ran + 1] = file.path
    end)
    local app = tide.app("hash_large_app", function()
      tide.mount_each(work, fs.walk(dir .. "/in"))
    end)
    local db = dir .. "/state.db"
    assert.are.equal(2, assert(app:update { db = db }).components.added)
    -- Touched with the same bytes: hashed again, and not run.
    ran = {}
    helpers.write(dir .. "/in/a.bin", big)
    helpers.write(dir .. "/in/c.txt", "small")
    os.execute("touch -d '2001-01-01' " .. helpers.q(dir .. "/in/a.bin"))
    local stats = assert(app:update { db = db })
    assert.are.equal(2, stats.components.unchanged)
    assert.are.same({}, ran)
    -- A changed byte is seen.
    helpers.write(dir .. "/in/a.bin", big:sub(1, -2) .. "X")
    stats = assert(app:update { db = db })
    assert.are.equal(1, stats.components.reprocessed)
    assert.are.same({ "a.bin" }, ran)
    app:close()
    -- In a task the hash waits on the pool: the other items run meanwhile.
    assert.are.same({ "wait starts", "other runs", "wait ends" },
      overlap(dir .. "/other.db", function()
        assert.are.equal(core.fingerprint_file(dir .. "/in/a.bin", "raw"),
                         assert(core.hash_file(dir .. "/in/a.bin")))
      end))
    -- Outside a task it is a plain call; a missing file is a message.
    assert.are.equal(core.fingerprint_file(dir .. "/in/a.bin", "raw"),
                     core.hash_file(dir .. "/in/a.bin"))
    local none, err = core.hash_file(dir .. "/in/none")
    assert.is_nil(none)
    assert.matches("in/none: ", err, 1, true)
  end)
end)

describe("writing to a folder target", function()
  after_each(helpers.cleanup)

  -- Every file under dir, as { relative path = content }.
  local function tree(dir)
    local out = {}
    local p = io.popen("cd " .. helpers.q(dir) .. " && find . -type f")
    for line in p:lines() do
      out[line:sub(3)] = helpers.read(dir .. "/" .. line:sub(3))
    end
    p:close()
    return out
  end

  it("writes a batch on the pool while the other components run, one "
     .. "batch at a time", function()
    local dir = helpers.tmpdir()
    local fs = require "tide.fs"
    for i = 1, 40 do
      helpers.write(("%s/in/d%d/f%02d.txt"):format(dir, i % 4, i),
                    "text " .. i)
    end
    local render = tide.fn("render", { memo = true }, function(file, site)
      site:file(file.path, file:text():upper())
    end)
    local app = tide.app("dir_batches", function()
      tide.mount_each(render, fs.walk(dir .. "/in"), fs.dir(dir .. "/site"))
    end)
    local db = dir .. "/state.db"
    -- One component per batch: every submit writes its own batch, most
    -- of them while the previous one is still on the pool.
    local stats = assert(app:update { db = db, batch_size = 1 })
    assert.are.equal(40, stats.components.added)
    assert.are.equal(40, stats.targets.inserted)
    local want = {}
    for path, text in pairs(tree(dir .. "/in")) do want[path] = text:upper() end
    assert.are.same(want, tree(dir .. "/site"))
    -- Edits, deletions (a whole folder) and additions in small batches.
    os.execute("rm -r " .. helpers.q(dir .. "/in/d1"))
    helpers.write(dir .. "/in/d2/f02.txt", "edited")
    helpers.write(dir .. "/in/d5/new.txt", "new")
    stats = assert(app:update { db = db, batch_size = 1 })
    assert.are.equal(10, stats.components.deleted)
    assert.are.equal(1, stats.components.reprocessed)
    assert.are.equal(1, stats.components.added)
    want = {}
    for path, text in pairs(tree(dir .. "/in")) do want[path] = text:upper() end
    assert.are.same(want, tree(dir .. "/site"))
    assert.is_false(helpers.exists(dir .. "/site/d1"))
    -- Nothing left pending: a further run writes nothing.
    stats = assert(app:update { db = db, batch_size = 1 })
    assert.are.equal(31, stats.components.unchanged)
    assert.are.equal(0, stats.targets.inserted + stats.targets.updated
                        + stats.targets.deleted)
    app:close()
  end)

  it("waits for the writes in the calling task only", function()
    local dir = helpers.tmpdir()
    local core = require "tide.core"
    assert.are.same({ "wait starts", "other runs", "wait ends" },
      overlap(dir .. "/state.db", function()
        assert(core.fs_apply({ { dir .. "/a.txt", "A", 1 },
                               { dir .. "/gone.txt", false, 1 } },
                             { dir }, {}))
      end))
    assert.are.equal("A", helpers.read(dir .. "/a.txt"))
    -- Outside a task it is a plain call; removals and empty folders.
    assert(core.fs_apply({ { dir .. "/sub/deep/b.txt", "B", 1 } },
                         { dir .. "/sub/deep" }, {}))
    assert.are.equal("B", helpers.read(dir .. "/sub/deep/b.txt"))
    assert(core.fs_apply({ { dir .. "/sub/deep/b.txt", false, 1 } },
                         { dir .. "/sub/deep" },
                         { dir .. "/sub/deep", dir .. "/sub" }))
    assert.is_false(helpers.exists(dir .. "/sub"))
    -- A failure stops the batch and names the file.
    helpers.write(dir .. "/file", "x")
    local ok, err = core.fs_apply({ { dir .. "/file/under", "C" } }, {}, {})
    assert.is_nil(ok)
    assert.matches(dir .. "/file/under", err, 1, true)
    -- Misuse raises.
    assert.has_error(function()
      core.fs_apply({ { dir .. "/x", 3 } }, {}, {})
    end, "fs_apply: steps[1][2] must be the content or false")
    assert.has_error(function()
      core.fs_apply({ { dir .. "/x", "y", 2 } }, { dir }, {})
    end, "fs_apply: steps[1][3] must be an index into syncs")
  end)
end)

describe("reading a walk's files ahead", function()
  after_each(helpers.cleanup)

  it("hands each component its file's bytes as it was read, once",
     function()
    local dir = helpers.tmpdir()
    local fs = require "tide.fs"
    -- More files than two windows of the read-ahead (64 each).
    for i = 1, 200 do
      helpers.write(("%s/in/f%03d.txt"):format(dir, i), "text " .. i)
    end
    local seen, again = {}, {}
    local work = tide.fn("read_ahead", { memo = true }, function(file)
      seen[file.path] = file:text()
      if file.path == "f150.txt" then
        -- Changed on disk once read: a second read reads the file, and
        -- the run keeps the fingerprint of what the first read gave.
        helpers.write(dir .. "/in/f150.txt", "changed")
        again[file.path] = file:text()
      end
    end)
    local app = tide.app("read_ahead_app", function()
      tide.mount_each(work, fs.walk(dir .. "/in"))
    end)
    local db = dir .. "/state.db"
    local stats = assert(app:update { db = db })
    assert.are.equal(200, stats.components.added)
    for i = 1, 200 do
      local path = ("f%03d.txt"):format(i)
      assert.are.equal("text " .. i, seen[path])
    end
    assert.are.equal("changed", again["f150.txt"])
    -- The file states hold the fingerprints of the bytes handed over.
    local core = require "tide.core"
    local store = assert(core.store_open(db, "read"))
    local app_id = store:apps()[1].id
    local items = store:source_items(app_id, "fs:" .. dir .. "/in")
    store:close()
    assert.are.equal(core.fingerprint_bytes("text 1"),
                     items["f001.txt"].content_fp)
    assert.are.equal(core.fingerprint_bytes("text 150"),
                     items["f150.txt"].content_fp)
    -- The file changed after its first read: the next run runs it again,
    -- and only it.
    seen = {}
    stats = assert(app:update { db = db })
    assert.are.equal(1, stats.components.reprocessed)
    assert.are.equal(199, stats.components.unchanged)
    assert.are.equal("changed", seen["f150.txt"])
    app:close()
  end)
end)

describe("writing to a sqlite.table target", function()
  after_each(helpers.cleanup)

  -- An app named name with a memoized component per file of dir/in that
  -- puts it as a row of dir/out.db and returns its size (so that its
  -- state changes with the file); returns the app and the database.
  local function files_to_rows(name, dir)
    local fs = require "tide.fs"
    local Doc = tide.record("Doc", { { "path", "string", key = true },
                                     { "text", "string" } })
    local put = tide.fn("put", { memo = true }, function(file, docs)
      docs:row(Doc { path = file.path, text = file:text() })
      return #file:text()
    end)
    local out = dir .. "/out.db"
    return tide.app(name, function()
      tide.mount_each(put, fs.walk(dir .. "/in"),
                      sqlite.table { db = out, name = "docs", schema = Doc })
    end), out
  end

  -- Makes the database at out refuse to update the row of path.
  local function refuse_update(out, trigger, path, message)
    os.execute("sqlite3 " .. helpers.q(out) .. " \"CREATE TRIGGER "
      .. trigger .. " BEFORE UPDATE ON docs WHEN new.path = '" .. path
      .. "' BEGIN SELECT RAISE(ABORT, '" .. message .. "'); END\"")
  end

  it("writes a sqlite.table batch on its connection's thread while the "
     .. "next components run", function()
    local dir = helpers.tmpdir()
    for i = 1, 30 do
      helpers.write(("%s/in/f%02d.txt"):format(dir, i), "text " .. i)
    end
    local app, out = files_to_rows("sqlite_batches", dir)
    local db = dir .. "/state.db"
    local function rows()
      local p = io.popen("sqlite3 " .. helpers.q(out)
                         .. " 'SELECT path, text FROM docs ORDER BY path'")
      local t = p:read("a")
      p:close()
      return t
    end
    local function want(skip)
      local t = {}
      for i = 1, 30 do
        local path = ("f%02d.txt"):format(i)
        if path ~= skip then
          t[#t + 1] = path .. "|" .. (helpers.read(dir .. "/in/" .. path))
        end
      end
      return table.concat(t, "\n") .. "\n"
    end
    local stats = assert(app:update { db = db, batch_size = 1 })
    assert.are.equal(30, stats.targets.inserted)
    assert.are.equal(want(), rows())
    -- A row the database refuses, in one batch among many written in the
    -- background: its component fails, the others' rows are written, and
    -- the next run writes it once it is accepted.
    refuse_update(out, "no_7", "f07.txt", "no f07 today")
    for i = 1, 30 do
      helpers.write(("%s/in/f%02d.txt"):format(dir, i), "edited " .. i)
    end
    local errors
    stats, errors = app:update { db = db, batch_size = 1 }
    assert.are.equal(29, stats.targets.updated)
    assert.are.equal(1, stats.components.errors)
    assert.matches("no f07 today", errors[1].message)
    local before = want("f07.txt"):gsub("f06.txt|edited 6\n",
                                       "%0f07.txt|text 7\n")
    assert.are.equal(before, rows())
    os.execute("sqlite3 " .. helpers.q(out) .. " 'DROP TRIGGER no_7'")
    stats = assert(app:update { db = db, batch_size = 1 })
    assert.are.equal(1, stats.targets.updated)
    assert.are.equal(want(), rows())
    stats = assert(app:update { db = db, batch_size = 1 })
    assert.are.equal(30, stats.components.unchanged)
    assert.are.equal(0, stats.targets.inserted + stats.targets.updated)
    app:close()
  end)

  it("puts a component's previous record back when its rows are refused "
     .. "after it was recorded", function()
    local dir = helpers.tmpdir()
    local core = require "tide.core"
    for i = 1, 6 do
      helpers.write(("%s/in/f%d.txt"):format(dir, i), "text " .. i)
    end
    local app, out = files_to_rows("previous_record", dir)
    local db = dir .. "/state.db"
    -- Each component's row as the store holds it, by file name.
    local function records()
      local s = assert(core.store_open(db, "r"))
      local app_id = s:app("previous_record")
      local t = {}
      for path, row in pairs(s:components(app_id)) do
        local name = path:match("(f%d%.txt)$")
        if name then t[name] = row end
      end
      s:close()
      return t
    end
    assert(app:update { db = db, batch_size = 1 })
    local first = records()
    refuse_update(out, "no_4", "f4.txt", "no f4 today")
    for i = 1, 6 do
      helpers.write(("%s/in/f%d.txt"):format(dir, i), "edited text " .. i)
    end
    local stats, errors = app:update { db = db, batch_size = 1 }
    assert.are.equal(1, stats.components.errors)
    assert.matches("no f4 today", errors[1].message)
    local second = records()
    -- The failed one has its previous record back (fingerprints, state),
    -- failed; the others have new ones.
    local failed, was = second["f4.txt"], first["f4.txt"]
    assert.are.equal(was.id, failed.id)
    assert.are.equal(was.input, failed.input)
    assert.are.equal(was.logic, failed.logic)
    assert.are.equal(was.state, failed.state)
    assert.are.equal(was.deps_fp, failed.deps_fp)
    assert.are_not.equal(0, failed.status)
    assert.matches("no f4 today", failed.error)
    for i = 1, 6 do
      local name = ("f%d.txt"):format(i)
      if name ~= "f4.txt" then
        assert.are.equal(0, second[name].status)
        assert.are_not.equal(first[name].input, second[name].input)
        assert.are_not.equal(first[name].state, second[name].state)
      end
    end
    os.execute("sqlite3 " .. helpers.q(out) .. " 'DROP TRIGGER no_4'")
    stats = assert(app:update { db = db, batch_size = 1 })
    assert.are.equal(1, stats.components.reprocessed)
    assert.are.equal(5, stats.components.unchanged)
    assert.are.equal(0, records()["f4.txt"].status)
    app:close()
  end)
end)

describe("the scheduler's wait for any of several tasks", function()
  local core = require "tide.core"
  local sched = require "tide.sched"

  it("wakes the waiter once, when the first of them ends", function()
    -- Tasks pass their turn `rounds` times, then end; the waiter waits
    -- for any of b and c, and c ends first.
    local order = {}
    local s
    local function runner(task)
      if task.body then return task.body() end
      for _ = 1, task.rounds do sched.pass(s) end
      order[#order + 1] = task.name
    end
    s = sched.own(core.loop_new(), runner, function(_, message)
      error(message)
    end)
    local b = { name = "b", rounds = 4 }
    local c = { name = "c", rounds = 1 }
    local waiter = { body = function()
      sched.wait_any(s, { b, c })
      order[#order + 1] = "woken"
      -- Both done now or later: a second wait for a task done returns.
      sched.wait_any(s, { c })
      order[#order + 1] = "again"
    end }
    sched.spawn(s, waiter)
    sched.spawn(s, b)
    sched.spawn(s, c)
    s:run_ready()
    assert.are.same({ "c", "woken", "again", "b" }, order)
    assert.is_true(waiter.done and b.done and c.done)
    assert.has_error(function() sched.wait_any(s, {}) end)
    s:close()
  end)
end)
