-- The progress line's numbers (issue 7): its total is known as soon as a
-- source has listed its items, not the number of components started so
-- far; unchanged files a walk carries over count as done; and its text
-- shows the rate and the time left.
local helpers = require "test.spec.helpers"
local tide = require "tide"
local fs = require "tide.fs"
local report = require "tide.report"

-- Runs app with at most `inflight` tasks at once (so that most children
-- are spawned long after the first ones finished) and returns every
-- on_progress call as { done, total, processed, open }.
local function progress_of(app, db, inflight)
  local calls = {}
  local stats, errors = app:update {
    db = db, max_inflight = inflight,
    on_progress = function(done, total, processed, open)
      calls[#calls + 1] = { done, total, processed, open }
    end,
  }
  assert(stats, errors)
  assert.are.same({}, errors)
  return calls, stats
end

-- Every call: done never above total, neither goes down.
local function assert_consistent(calls)
  local done, total = 0, 0
  for i, c in ipairs(calls) do
    assert(c[1] <= c[2], ("call %d: done %d above total %d"):format(i, c[1],
                                                                  c[2]))
    assert(c[1] >= done and c[2] >= total,
           ("call %d: %d/%d after %d/%d"):format(i, c[1], c[2], done, total))
    done, total = c[1], c[2]
  end
end

describe("the progress line", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  it("knows a table's total before its items are mounted", function()
    local work = tide.fn("work", { memo = true }, function(i) return i end)
    local items = {}
    for i = 1, 150 do items["k" .. i] = i end
    local app = tide.app("table_total", function()
      tide.mount_each(work, items)
    end)
    local calls = progress_of(app, dir .. "/state.db", 4)
    assert.are.equal(151, #calls)
    for i, c in ipairs(calls) do
      -- The 150 items and main, from the first finished component on.
      assert.are.same({ i, 151, i, false }, c)
    end
  end)

  it("counts a walk's unchanged files as done and in the total", function()
    for i = 1, 40 do
      helpers.write(("%s/in/f%02d.txt"):format(dir, i), "v1 " .. i)
    end
    local read = tide.fn("read", { memo = true }, function(file)
      return #file:text()
    end)
    local app = tide.app("walk_total", function()
      tide.mount_each(read, fs.walk(dir .. "/in"))
    end)
    local db = dir .. "/state.db"
    local calls, stats = progress_of(app, db, 4)
    assert.are.equal(40, stats.components.added)
    assert.are.equal(41, #calls)
    for i, c in ipairs(calls) do assert.are.same({ i, 41, i, false }, c) end

    for i = 1, 10 do
      helpers.write(("%s/in/f%02d.txt"):format(dir, i), "v2, longer " .. i)
    end
    calls, stats = progress_of(app, db, 4)
    assert.are.equal(10, stats.components.reprocessed)
    assert.are.equal(30, stats.components.unchanged)
    assert.are.equal(11, #calls)
    for i, c in ipairs(calls) do
      assert.are.same({ 30 + i, 41, i, false }, c)
    end

    -- Nothing changed: main is the only component that runs.
    calls = progress_of(app, db, 4)
    assert.are.same({ { 41, 41, 1, false } }, calls)
  end)

  it("marks the total as a lower bound while a source is listed",
     function()
    local work = tide.fn("work", { memo = true }, function(i) return i end)
    local numbers = tide.source { name = "numbers", items = function()
      local i = 0
      return function()
        i = i + 1
        if i <= 20 then return "n" .. i, i end
      end
    end }
    local app = tide.app("open_total", function()
      tide.mount_each(work, numbers)
    end)
    local calls = progress_of(app, dir .. "/state.db", 4)
    assert_consistent(calls)
    assert.are.equal(21, #calls)
    assert.is_true(calls[1][4])
    local closed = 0
    for _, c in ipairs(calls) do
      if not c[4] then
        closed = closed + 1
        assert.are.equal(21, c[2])
      end
    end
    assert(closed > 0 and closed < 21)
    assert.are.same({ 21, 21, 21, false }, calls[#calls])
  end)

  it("grows the total only when a component lists more", function()
    local leaf = tide.fn("leaf", { memo = true }, function(i) return i end)
    local node = tide.fn("node", { memo = true }, function(n)
      tide.mount_each(leaf, { a = n, b = n, c = n })
    end)
    local app = tide.app("nested_total", function()
      tide.mount_each(node, { 1, 2, 3, 4, 5 })
    end)
    local calls = progress_of(app, dir .. "/state.db", 3)
    assert_consistent(calls)
    assert.are.equal(21, #calls)
    -- main and its five nodes are known before anything finishes.
    assert(calls[1][2] >= 6)
    assert.are.same({ 21, 21, 21, false }, calls[#calls])
  end)

  it("shows done, total, rate, elapsed time and the time left", function()
    assert.are.equal(
      "tide: 1200/5000 components, 850/s, 1.4 s elapsed, ETA 5 s",
      report.progress_text(1200, 5000, 850, 1400, false))
    assert.are.equal(
      "tide: 10/100 components, 1.0/s, 12.0 s elapsed, ETA 1 min 30 s",
      report.progress_text(10, 100, 1, 12000, false))
    assert.are.equal(
      "tide: 0/100000 components, 10/s, 1.0 s elapsed, ETA 2 h 46 min",
      report.progress_text(0, 100000, 10, 1000, false))
    -- A total that is only a lower bound gives no ETA; nor does the end.
    assert.are.equal("tide: 12/40+ components, 2.5/s, 3.0 s elapsed",
                     report.progress_text(12, 40, 2.5, 3000, true))
    assert.are.equal("tide: 40/40 components, 20/s, 2.0 s elapsed",
                     report.progress_text(40, 40, 20, 2000, false))
  end)
end)

describe("the summary line", function()
  it("says when a signal stopped the run", function()
    local stats = { app = "docs", elapsed_ms = 12.34,
      components = { added = 3, reprocessed = 0, deleted = 0, unchanged = 1,
                     errors = 1 },
      targets = { inserted = 3, updated = 0, deleted = 0 } }
    assert.are.equal("docs: components 3 added, 0 reprocessed, 0 deleted, "
      .. "1 unchanged, 1 errors; targets 3 inserted, 0 updated, 0 deleted "
      .. "(12.3 ms)", report.stats_line(stats))
    stats.interrupted = true
    assert.are.equal("docs: components 3 added, 0 reprocessed, 0 deleted, "
      .. "1 unchanged, 1 errors; targets 3 inserted, 0 updated, 0 deleted "
      .. "(12.3 ms, interrupted)", report.stats_line(stats))
  end)
end)
