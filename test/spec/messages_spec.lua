-- Messages a user can act on: no positions in tide's own files, errno
-- values in words, a plain function named as such, and one failing
-- function's traceback printed once for all the components it failed.
local helpers = require "test.spec.helpers"
local ph = require "test.spec.pipeline_helpers"

describe("messages", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  local function update()
    local _, err, code = ph.update(dir)
    return err, code
  end

  it("point at the user's code, never at tide's own files", function()
    ph.write_pipeline(dir, [[
local K = setmetatable({}, { __tide_key = function() error("no key here") end })
local f = tide.fn("f", { memo = true }, function(x) return 1 end)
local Doc = tide.record("Doc", { { "id", "string", key = true },
                                 { "n", "integer" } })
local process = tide.fn("process", { memo = true }, function(item, out)
  if item == "a" then error("boom") end
  if item == "b" then f(K) end
  if item == "c" then tide.use(nil) end
  if item == "d" then Doc { id = "d", n = "x" } end
end)
return tide.app("messages", function()
  tide.mount_each(process, { a = "a", b = "b", c = "c", d = "d" },
                  kv("out.json"))
end)
]])
    local err, code = update()
    assert.are.equal(1, code)
    assert.not_matches("/lua/tide/", err, 1, true)
    assert.not_matches("xpcall", err, 1, true)
    local p = (dir .. "/pipeline.lua:"):gsub("%p", "%%%0")
    assert.matches("component /process/a failed: " .. p .. "%d+: boom\n"
                   .. "stack traceback:\n\t" .. p .. "%d+:", err)
    assert.matches("component /process/b failed: f argument 1: its "
                   .. "__tide_key metamethod failed: " .. p .. "%d+: no key "
                   .. "here", err)
    assert.matches("component /process/c failed: " .. p .. "%d+: tide.use: "
                   .. "expected a tide.key", err)
    assert.matches("component /process/d failed: " .. p .. "%d+: Doc.n: "
                   .. "expected integer, got string", err)
  end)

  it("name an item of tide.map that failed, and the line that mapped it",
     function()
    ph.write_pipeline(dir, [[
local function check(x)
  if x == 3 then error("three is bad") end
  return x
end
local sq = tide.fn("sq", { memo = true }, function(x) return check(x) * 2 end)
local all = tide.fn("all", { memo = true }, function(list)
  local out = tide.map(sq, list)
  return out
end)
return tide.app("messages", function()
  tide.mount(all, { 1, 2, 3, 4 })
end)
]])
    local err, code = update()
    assert.are.equal(1, code)
    local p = (dir .. "/pipeline.lua:"):gsub("%p", "%%%0")
    -- The user's frames, each named by where it is defined or by its name
    -- in the user's code; none of tide's, none in C.
    assert.matches("component /all failed: " .. p .. "%d+: three is bad\n"
      .. "stack traceback:\n"
      .. "\t" .. p .. "%d+: in upvalue 'check'\n"
      .. "\t" .. p .. "%d+: in function <" .. p .. "%d+>\n"
      .. "\t" .. p .. "%d+: in tide.map, at item 3", err)
    assert.not_matches("%[C%]", err)
    assert.not_matches("'body'", err, 1, true)
  end)

  it("name the item of tide.map that failed in a worker, or whose "
     .. "argument could not be used", function()
    ph.write_pipeline(dir, [[
local sq = tide.fn("sq", { parallel = true }, function(x)
  if x == 3 then error("three is bad") end
  return x * 2
end)
local echo = tide.fn("echo", { parallel = true }, function(x) return x end)
local memo = tide.fn("memo", { memo = true }, function(x) return x end)
local function mapper(name, f, list)
  return tide.fn(name, function() tide.map(f, list) end)
end
return tide.app("messages", function()
  tide.mount("in_worker", mapper("in_worker", sq, { 1, 2, 3, 4 }))
  tide.mount("to_worker", mapper("to_worker", echo, { 1, 2, print }))
  tide.mount("memo_key", mapper("memo_key", memo, { 1, print }))
end)
]])
    local err, code = update()
    assert.are.equal(1, code)
    local p = (dir .. "/pipeline.lua:"):gsub("%p", "%%%0")
    assert.matches("component /in_worker failed: " .. p .. "%d+: three is "
      .. "bad\nstack traceback:\n.-\t%(in a worker%)\n"
      .. "\t" .. p .. "%d+: in tide.map, at item 3\n", err)
    -- No Lua code of the user's failed: the message, and the item.
    assert.matches("component /to_worker failed: echo argument 1: cannot "
      .. "encode a function\nstack traceback:\n"
      .. "\t" .. p .. "%d+: in tide.map, at item 3\n", err)
    assert.matches("component /memo_key failed: memo argument 1: cannot "
      .. "encode a function\nstack traceback:\n"
      .. "\t" .. p .. "%d+: in tide.map, at item 2\n", err)
  end)

  it("point at the user's code in a worker too, and say what a parallel "
     .. "function cannot call", function()
    ph.write_pipeline(dir, [[
local K = tide.key("k")
local function deep(x) error("deep " .. x) end
local fails = tide.fn("fails", { parallel = true }, function(x)
  local r = deep(x)
  return r
end)
local reads = tide.fn("reads", { parallel = true }, function(x)
  local v = tide.use(K)
  return v
end)
return tide.app("messages", function()
  tide.mount("a", tide.fn("a", function() fails(1) end))
  tide.mount("b", tide.fn("b", function() reads(1) end))
end, { context = { [K] = 1 } })
]])
    local err, code = update()
    assert.are.equal(1, code)
    assert.not_matches("/lua/tide/", err, 1, true)
    assert.not_matches("%[C%]", err)
    assert.not_matches("'fail'", err, 1, true)
    local p = (dir .. "/pipeline.lua:"):gsub("%p", "%%%0")
    assert.matches("component /a failed: " .. p .. "%d+: deep 1\n"
      .. "stack traceback:\n"
      .. "\t" .. p .. "%d+: in upvalue 'deep'\n"
      .. "\t" .. p .. "%d+: in function <" .. p .. "%d+>\n"
      .. "\t%(in a worker%)\n", err)
    assert.matches("component /b failed: " .. p .. "%d+: tide.use cannot be "
      .. "called in a parallel function: it runs in a worker, apart from "
      .. "its caller's component %(pass what it needs as arguments, or "
      .. "call it where the function is called%)\nstack traceback:\n"
      .. "\t" .. p .. "%d+: in function <" .. p .. "%d+>\n"
      .. "\t%(in a worker%)\n", err)
  end)

  it("give a runtime error in a component or in main the traceback "
     .. "error() gets", function()
    ph.write_pipeline(dir, [[
local function field(t) local v = t.nope.deeper; return v end
local f = tide.fn("f", function(v)
  local r = field({})
  return r
end)
return tide.app("t", function()
  tide.mount("f", f, 1)
  local broken = nil
  broken.call()
end)
]])
    local err, code = update()
    assert.are.equal(2, code, err)
    local p = helpers.q(dir):sub(2, -2) .. "/pipeline.lua:"
    local line = #ph.KV_TARGET:gsub("[^\n]", "") + 1
    assert.matches(("component /f failed: %s%d: attempt to index a nil "
      .. "value (field 'nope')\nstack traceback:\n\t%s%d: in upvalue "
      .. "'field'\n\t%s%d: in function <%s%d>\n"):format(p, line, p, line, p,
      line + 2, p, line + 1), err, 1, true)
    assert.matches(("main of app t failed: %s%d: attempt to index a nil "
      .. "value (local 'broken')\nstack traceback:\n\t%s%d: in function "
      .. "<%s%d>"):format(p, line + 8, p, line + 8, p, line + 5), err, 1,
      true)
  end)

  it("of a pipeline that fails as it loads name its lines, not tide's",
     function()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local function field(name, type) return { name, type } end
local R = tide.record("R", { field("id", "strin") })
return tide.app("t", function() end)
]])
    local err, code = update()
    assert.are.equal(2, code, err)
    local p = helpers.q(dir):sub(2, -2) .. "/pipeline.lua:"
    assert.are.equal(("tide: %s3: tide.record R.id: unknown type \"strin\" "
      .. "(expected one of string, integer, number, boolean, bytes, json, "
      .. "tide.list(T), tide.vector(N), tide.optional(T) or a record "
      .. "type)\nstack traceback:\n\t%s3: in main chunk\n"):format(p, p), err)
  end)

  it("say a plain function was given where a tide.fn is needed", function()
    ph.write_pipeline(dir, [[
return tide.app("messages", function()
  tide.mount_each(function() end, { a = 1 })
end)
]])
    local err, code = update()
    assert.are.equal(2, code)
    assert.matches("tide.mount_each: a plain function was given where a "
                   .. "tide.fn is needed", err, 1, true)
  end)

  it("print one failing function's traceback once, with a count", function()
    local items = {}
    for i = 1, 44 do items[i] = ("k%02d = %d"):format(i, i) end
    ph.write_pipeline(dir, ([[
local broken = tide.fn("broken", function(n) error("cannot parse") end)
local process = tide.fn("process", { memo = true }, function(n, out)
  out:declare(tostring(n), broken(n))
end)
return tide.app("messages", function()
  tide.mount_each(process, { %s }, kv("out.json"))
end)
]]):format(table.concat(items, ", ")))
    local err, code = update()
    assert.are.equal(1, code)
    local _, tracebacks = err:gsub("stack traceback:", "")
    assert.are.equal(1, tracebacks)
    assert.matches("component /process/k01 failed: ", err, 1, true)
    assert.matches("tide: 43 more components failed with the same error as "
                   .. "/process/k01: /process/k02, /process/k03, "
                   .. "/process/k04, /process/k05, /process/k06, ...", err,
                   1, true)
  end)

  it("say a target's own failure as the target's, not a component's",
     function()
    ph.write_pipeline(dir, [[
local broken = tide.target_type{
  name = "broken",
  identity = function(spec) return spec.file end,
  short_name = function(spec) return spec.file end,
  apply = function(spec, changes) end,
  finish = function(spec) error("no room left", 0) end,
}
local put = tide.fn("put", function(x, o) o:declare(x, x) end)
return tide.app("finish", function()
  tide.mount_each(put, { a = "a" },
                  tide.declare_target(broken, { file = "out.kv" }))
end)
]])
    local err, code = update()
    assert.are.equal(1, code)
    assert.are.equal("tide: finishing out.kv failed: no room left\n", err)
  end)
end)
