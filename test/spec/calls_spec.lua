-- How a tide.fn is called inside a component (issue 8): the call enters C
-- (lmemo.c) and goes back to Lua with lua_callk, so user code below it may
-- still wait for the scheduler; a memo hit answered in C counts and records
-- what a hit in Lua does.
local helpers = require "test.spec.helpers"
local tide = require "tide"

describe("a tide.fn called inside a component", function()
  after_each(helpers.cleanup)

  it("may wait for the scheduler below the call", function()
    local dir = helpers.tmpdir()
    local leaf = tide.fn("leaf", function(x) return x * 10 end)
    -- A plain tide.fn whose body waits for a child component.
    local helper = tide.fn("helper", function(x)
      return tide.use_mount(tide.path("leaf", x), leaf, x)
    end)
    local sum
    local app = tide.app("calls_wait", function()
      local total = 0
      for i = 1, 3 do total = total + helper(i) end
      sum = total
    end)
    local stats, errors = app:update { db = dir .. "/state.db" }
    assert.are.same({}, errors)
    assert.are.equal(60, sum)
    assert.are.equal(3, stats.functions.helper.calls)
    app:close()
  end)

  it("counts hits answered in C exactly and keeps their results apart",
     function()
    local dir = helpers.tmpdir()
    local pair = tide.fn("pair", { memo = true }, function(x)
      return { x = x }, x * 2
    end)
    local seen = {}
    local app = tide.app("calls_hits", function()
      tide.mount("user", tide.fn("user", function()
        for round = 1, 3 do
          local t, d = pair(7)
          -- Every hit gets its own table: changing one changes no other.
          assert(t.x == 7 and d == 14, "wrong results in round " .. round)
          t.x = round
          seen[#seen + 1] = select("#", pair(7))
        end
      end))
    end)
    local stats = assert(app:update { db = dir .. "/state.db" })
    assert.are.same({ calls = 6, hits = 5, misses = 1, errors = 0 },
                    stats.functions.pair)
    assert.are.same({ 2, 2, 2 }, seen)
    -- The next run finds the entry in the store once, then in C.
    seen = {}
    stats = assert(app:update { db = dir .. "/state.db" })
    assert.are.same({ calls = 6, hits = 6, misses = 0, errors = 0 },
                    stats.functions.pair)
    assert.are.same({ 2, 2, 2 }, seen)
    app:close()
  end)
end)
