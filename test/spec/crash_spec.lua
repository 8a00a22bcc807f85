-- Crash safety: `tide update` killed with SIGKILL at many points of a run;
-- the next run must leave the targets exactly as a clean run would: no
-- lost rows, no stale rows, no duplicates, nothing left pending.
local helpers = require "test.spec.helpers"

local q = helpers.q

local PIPELINE = [[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Line = tide.record("Line", {
  { "id", "string", key = true },
  { "file", "string" },
  { "text", "string" },
})
local process = tide.fn("process", { memo = true }, function(file, lines, site)
  -- Some work per file, so that a run lasts long enough to be killed in.
  local x = 0
  for i = 1, 60000 do x = x + i % 7 end
  local n = 0
  for line in file:text():gmatch("[^\n]+") do
    n = n + 1
    lines:row(Line { id = file.path .. "#" .. n, file = file.path, text = line })
  end
  site:file(file.path .. ".txt", file:text():upper())
end)
return tide.app("crash", function()
  local lines = sqlite.table { db = "out.db", name = "lines", schema = Line }
  tide.mount_each(process, fs.walk("in", { include = { "*.md" } }), lines,
                  fs.dir("site"))
end)
]]

-- Input states: A, then B with a third of the files edited, some deleted,
-- some added, and line counts changed (rows inserted and deleted).
local function write_inputs(dir, state)
  os.execute("rm -rf " .. q(dir .. "/in") .. " && mkdir -p " .. q(dir .. "/in"))
  for i = 1, 80 do
    local name = ("f%03d.md"):format(i)
    local text
    if state == "A" then
      if i <= 65 then text = ("alpha %d\nbeta %d\n"):format(i, i) end
    else
      if i % 3 == 0 and i <= 65 then
        text = ("alpha %d edited\nbeta %d\ngamma %d\n"):format(i, i, i)
      elseif i % 7 == 0 then
        text = nil -- deleted
      elseif i <= 65 then
        text = ("alpha %d\nbeta %d\n"):format(i, i)
      else
        text = ("new %d\n"):format(i)
      end
    end
    if text then helpers.write(dir .. "/in/" .. name, text) end
  end
end

local function update(dir)
  return helpers.run(("%s update %s --quiet"):format(q(helpers.tide),
                                                     q(dir .. "/pipeline.lua")))
end

-- Everything the targets hold, as text.
local function snapshot(dir)
  local rows = helpers.run(("sqlite3 %s %s"):format(q(dir .. "/out.db"),
    q("SELECT id, file, text FROM lines ORDER BY id")))
  local files = helpers.run(("cd %s && find site -type f | sort | "
    .. "while read f; do echo \"== $f\"; cat \"$f\"; done"):format(q(dir)))
  local count = helpers.run(("sqlite3 %s %s"):format(q(dir .. "/out.db"),
    q("SELECT count(*), count(DISTINCT id) FROM lines")))
  return rows .. files, count
end

local function pending(dir)
  local out = helpers.run(("sqlite3 %s %s"):format(
    q(dir .. "/.tide/state.db"),
    q("SELECT count(*) FROM target_states WHERE pending <> 0")))
  return tonumber(out:match("%d+"))
end

local function fresh(state)
  local dir = helpers.tmpdir()
  helpers.write(dir .. "/pipeline.lua", PIPELINE)
  write_inputs(dir, state)
  return dir
end

describe("crash safety", function()
  after_each(helpers.cleanup)

  it("converges to a clean run's targets after SIGKILL at 24 points", function()
    -- The reference: state A, then B, without crashes.
    local ref = fresh("A")
    local _, err, code = update(ref)
    assert.are.equal(0, code, err)
    write_inputs(ref, "B")
    local t0 = require("tide.core").now_ms()
    _, err, code = update(ref)
    local duration = require("tide.core").now_ms() - t0
    assert.are.equal(0, code, err)
    local expected, expected_count = snapshot(ref)
    assert.matches("^(%d+)|%1\n$", expected_count)

    -- A kill that finds the run already over is tried again, sooner.
    local function kill_during_update(dir, delay)
      for _ = 1, 4 do
        os.remove(dir .. "/killed")
        write_inputs(dir, "B")
        os.execute(("%s update %s --quiet >/dev/null 2>&1 & pid=$!; "
          .. "sleep %.4f; kill -9 $pid 2>/dev/null && echo killed > %s; "
          .. "wait $pid 2>/dev/null; true"):format(q(helpers.tide),
          q(dir .. "/pipeline.lua"), delay, q(dir .. "/killed")))
        if helpers.read(dir .. "/killed") then return true end
        write_inputs(dir, "A")
        local _, err, code = update(dir)
        assert.are.equal(0, code, err)
        delay = delay / 2
      end
      return false
    end

    local landed = 0
    for k = 1, 24 do
      local dir = fresh("A")
      _, err, code = update(dir)
      assert.are.equal(0, code, err)
      if kill_during_update(dir, duration * (k - 0.5) / 24 / 1000) then
        landed = landed + 1
      end
      _, err, code = update(dir)
      assert.are.equal(0, code, ("kill point %d: %s"):format(k, err))
      local got, got_count = snapshot(dir)
      assert.are.equal(expected_count, got_count, "kill point " .. k)
      assert.are.equal(expected, got, "kill point " .. k)
      assert.are.equal(0, pending(dir), "kill point " .. k)
      -- And the store agrees with the targets: nothing left to do.
      local out = helpers.run(("%s update %s --json"):format(q(helpers.tide),
        q(dir .. "/pipeline.lua")))
      assert.matches('"targets":{"inserted":0,"updated":0,"deleted":0}', out,
                     1, true)
      assert.matches('"reprocessed":0', out, 1, true)
    end
    assert.is_true(landed >= 20, "only " .. landed .. " kills landed")
  end)
end)
