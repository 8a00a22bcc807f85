-- Record checks cost what they check: a value that fits makes no string
-- (the path of a field exists only in a message), and every way a value
-- can fail is worded as it always was.
local tide = require "tide"

local R3 = tide.record("R3", {
  { "id", "string", key = true },
  { "line", "integer" },
  { "score", "number" },
})
local Doc = tide.record("Doc", {
  { "id", "string" },
  { "embedding", tide.vector(256) },
})
local Tagged = tide.record("Tagged", { { "tags", tide.list("string") } })

-- Bytes allocated by f(), with the collector stopped.
local function allocated(f)
  f() -- warm up
  collectgarbage("collect")
  collectgarbage("stop")
  local before = collectgarbage("count")
  local keep = f()
  local bytes = (collectgarbage("count") - before) * 1024
  collectgarbage("restart")
  assert(keep ~= nil)
  return bytes
end

local function err_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok)
  return err
end

describe("a record check", function()
  it("allocates its result and nothing more", function()
    local mt = {}
    local input = { id = "a", line = 7, score = 0.5 }
    local copy = allocated(function()
      return setmetatable({ id = input.id, line = input.line,
                            score = input.score }, mt)
    end)
    local checked = allocated(function() return R3(input) end)
    -- one path string ("R3.score") would take 30 bytes or more
    assert.is_true(checked <= copy + 16,
                   ("%d bytes against %d"):format(checked, copy))

    local emb = {}
    for i = 1, 256 do emb[i] = i / 256 end
    local doc = { id = "d", embedding = emb }
    local vcopy = allocated(function()
      return setmetatable({ id = doc.id,
        embedding = table.move(emb, 1, 256, 1, {}) }, mt)
    end)
    local vchecked = allocated(function() return Doc(doc) end)
    assert.is_true(vchecked <= vcopy + 16,
                   ("%d bytes against %d"):format(vchecked, vcopy))

    local tags = { tags = { "a", "b", "c", "d", "e", "f", "g", "h" } }
    local lcopy = allocated(function()
      return setmetatable({ tags = table.move(tags.tags, 1, 8, 1, {}) }, mt)
    end)
    local lchecked = allocated(function() return Tagged(tags) end)
    assert.is_true(lchecked <= lcopy + 16,
                   ("%d bytes against %d"):format(lchecked, lcopy))
  end)

  it("normalises numbers as before", function()
    local r = R3 { id = "a", line = 3.0, score = -0.0 }
    assert.are.equal("integer", math.type(r.line))
    assert.are.equal("float", math.type(r.score))
    assert.are.equal(math.huge, 1 / r.score) -- -0.0 + 0.0 is 0.0
    local V = tide.record("V", { { "v", tide.vector(3) } })
    local v = V { v = { 1, -0.0, 2.5 } }.v
    assert.are.equal("float", math.type(v[1]))
    assert.are.equal(-math.huge, 1 / v[2]) -- a vector keeps its floats
    assert.are.same({ 1, 2 },
      tide.check(tide.list("integer"), { 1.0, 2 }))
    assert.are.equal(3, tide.check("integer", 3.0))
    assert.are.equal("integer", math.type(tide.check("integer", 3.0)))
  end)

  it("returns a copy, never the table it was given", function()
    local emb = { 0.5, 0.25, 0.125 }
    local V = tide.record("V", { { "v", tide.vector(3) } })
    local r = V { v = emb }
    assert.are_not.equal(emb, r.v)
    emb[1] = "changed"
    assert.are.equal(0.5, r.v[1])
    local tags = { "a" }
    local t = Tagged { tags = tags }
    assert.are_not.equal(tags, t.tags)
    local j = tide.record("J", { { "j", "json" } })
    local doc = { a = { 1, 2 } }
    assert.are.equal(doc, j { j = doc }.j) -- JSON is taken as it is
  end)

  it("reads fields and elements through __index and __len", function()
    local base = { line = 2, score = 1 }
    local r = R3(setmetatable({ id = "x" }, { __index = base }))
    assert.are.equal(2, r.line)
    assert.is_nil(getmetatable(r).__index)
    local V = tide.record("V", { { "v", tide.vector(3) } })
    -- Keys set in any order (some in the table's hash part).
    local backwards = {}
    for i = 3, 1, -1 do backwards[i] = i end
    assert.are.same({ 1.0, 2.0, 3.0 }, V { v = backwards }.v)
    assert.are.equal("float", math.type(V { v = backwards }.v[3]))
    local holed = setmetatable({ 1, nil, 3 },
      { __index = { [2] = 2 }, __len = function() return 3 end })
    assert.are.same({ 1.0, 2.0, 3.0 }, V { v = holed }.v)
  end)

  it("words every failure as before", function()
    local V = tide.record("V", { { "v", tide.vector(3) } })
    local J = tide.record("J", { { "j", "json" } })
    local N = tide.record("N", { { "inner", R3 },
                                 { "list", tide.list(R3) } })
    local cycle = { a = 1 }
    cycle.self = cycle
    local r3 = { id = "a", line = 1, score = 1 }
    local cases = {
      { V, { v = { 1, 2 } }, "V.v: expected vector of 3 numbers, got 2" },
      { V, { v = { 1, nil, 3 } },
        "V.v[2]: expected number, got nil" },
      { V, { v = { 1, 2, 3, n = 3 } },
        "V.v: expected vector of 3 numbers, got a table with key n" },
      { V, { v = { 1, 2, 3, 4 } },
        "V.v: expected vector of 3 numbers, got 4" },
      { V, { v = { 1, 2, 3, [0] = 0 } },
        "V.v: expected vector of 3 numbers, got a table with key 0" },
      { V, { v = { 1, 2, 3, [2.5] = 0 } },
        "V.v: expected vector of 3 numbers, got a table with key 2.5" },
      { V, { v = { 1, 2, 0 / 0 } }, "V.v[3]: expected a finite number "
        .. "within float32 range, got NaN" },
      { V, { v = "x" }, "V.v: expected vector of 3 numbers, got string" },
      { V, {}, "V.v: expected vector of 3 numbers, got nil" },
      { J, { j = cycle }, "J.j.self: expected json, got a cycle" },
      { J, { j = { [true] = 1 } }, "J.j: expected json, got a boolean key" },
      { J, { j = { a = { 1, { print } } } },
        "J.j.a[2][1]: expected json, got function" },
      { R3, { id = "a", line = 1, score = 1, [1] = "x" },
        "R3.1: unknown field of R3" },
      { R3, { id = "a", line = 2 ^ 63, score = 1 },
        "R3.line: expected integer, got float 9.2233720368548e+18" },
      { R3, { id = "\xed\xa0\x80", line = 1, score = 1 },
        "R3.id: expected string, got invalid UTF-8 at byte 1 (use bytes "
        .. "for binary data)" },
      { N, { inner = "x", list = {} },
        "N.inner: expected a table for R3, got string" },
      { N, { list = {} }, "N.inner: expected R3, got nil" },
      { N, { inner = r3, list = { r3, { id = "b", line = 1 } } },
        "N.list[2].score: expected number, got nil" },
      { N, { inner = r3, list = { r3, { id = "b", line = 1, x = 1 } } },
        "N.list[2].x: unknown field of R3" },
      { N, { inner = r3, list = { [3] = r3 } },
        "N.list: expected list of R3, got a table with key 3" },
    }
    for _, c in ipairs(cases) do
      local rt, value, message = c[1], c[2], c[3]
      local v, err = tide.check(rt, value)
      assert.is_nil(v)
      assert.are.equal(message, err)
      assert.are.equal(message, err_of(rt, value))
    end
    assert.are.equal("R3: expected a table for R3, got nil", err_of(R3))
    assert.are.same({ nil, "R3: expected R3, got nil" },
                    { tide.check(R3, nil) })
    assert.are.same({ nil, "doc: expected R3, got nil" },
                    { tide.check(R3, nil, "doc") })
    assert.matches("^tide.check: unknown type \"nope\"",
                   err_of(tide.check, "nope", 1))
  end)

  it("refuses JSON nested deeper than can be stored", function()
    local J = tide.record("J", { { "j", "json" } })
    local deep = {}
    local t = deep
    for _ = 1, 200 do
      t[1] = {}
      t = t[1]
    end
    local err = err_of(J, { j = deep })
    assert.matches("^J%.j%[1%]%[1%].*%[1%]: expected json, got a value "
      .. "nested deeper than 128 levels$", err)
  end)
end)
