local tide = require "tide"
local helpers = require "test.spec.helpers"
local function lfp(f) return tide.logic_fingerprint(f) end

-- Loads a chunk that returns a function, with its own globals table.
local function fn(src, env)
  env = env or setmetatable({}, { __index = _G })
  return assert(load(src, "=pipeline", "t", env))(), env
end

describe("tide.logic_fingerprint", function()
  after_each(helpers.cleanup)

  it("is 32 hex digits and the same for the same code loaded twice", function()
    local src = "return function(x) return x * 2 end"
    assert.matches("^%x+$", lfp(fn(src)))
    assert.are.equal(32, #lfp(fn(src)))
    assert.are.equal(lfp(fn(src)), lfp(fn(src)))
  end)

  it("ignores comments, blank lines and moved lines", function()
    local a = fn([[
local function helper(s) return s:upper() end
return function(doc)
  return helper(doc.title) .. "!"
end]])
    local b = fn([[
-- a comment at the top



local function helper(s)
  -- the title, shouted
  return s:upper()
end

--[==[ a long
comment ]==]
return function(doc)

  return helper(doc.title)     -- trailing comment
    .. "!"
end]])
    assert.are.equal(lfp(a), lfp(b))
  end)

  it("changes when the function's own code changes", function()
    assert.are_not.equal(lfp(fn "return function(x) return x + 1 end"),
                         lfp(fn "return function(x) return x + 2 end"))
    assert.are_not.equal(lfp(fn "return function(x) return x + 1 end"),
                         lfp(fn "return function(x) return x - 1 end"))
  end)

  it("changes when a local helper reached through an upvalue changes", function()
    local tpl = [[
local function clean(s) return (s:gsub("%%s+", "%s")) end
local function helper(s) return clean(s):sub(1, %d) end
return function(doc) return helper(doc) end]]
    local base = lfp(fn(tpl:format(" ", 80)))
    assert.are.equal(base, lfp(fn(tpl:format(" ", 80))))
    assert.are_not.equal(base, lfp(fn(tpl:format(" ", 81))))
    -- two levels down: the helper of the helper
    assert.are_not.equal(base, lfp(fn(tpl:format("_", 80))))
  end)

  it("reads a long function, whose bytecode is many kilobytes", function()
    -- Its dump outgrows the first buffer Lua's C API gives a dump.
    local function long(k)
      local lines = { "return function(s)", "  local n = 0" }
      for i = 1, 300 do
        lines[#lines + 1] = ("  n = n + %d * #s"):format(i == 150 and k or i)
      end
      lines[#lines + 1] = "  return n"
      lines[#lines + 1] = "end"
      return table.concat(lines, "\n")
    end
    assert.is_true(#string.dump(fn(long(150)), true) > 4096)
    local base = lfp(fn(long(150)))
    assert.are.equal(base, lfp(fn(long(150))))
    assert.are_not.equal(base, lfp(fn(long(151))))
  end)

  it("changes when a helper read from a table upvalue changes, not when "
     .. "the table's other values do", function()
    -- util.head: a module's helper (local util = require "util" reads
    -- the same way), also from a closure made inside the function.
    local src = [[
local util = { hits = 0 }
function util.head(s) return s:sub(1, LEN) end
return function(s)
  util.hits = util.hits + 1
  local function first(x) return util.head(x) end
  return first(s)
end]]
    local f20 = fn((src:gsub("LEN", "20")))
    assert.are.equal(lfp(f20), lfp(fn((src:gsub("LEN", "20")))))
    assert.are_not.equal(lfp(f20), lfp(fn((src:gsub("LEN", "2")))))
    -- A value it writes (a counter) is not its logic.
    local before = lfp(f20)
    f20("text")
    assert.are.equal(before, lfp(f20))
    -- Nor is tide's own code, reached through its modules (fs.walk).
    local fsmod = require "tide.fs"
    local walks = fn([[
local fs = require "tide.fs"
return function(dir) return fs.walk(dir) end]])
    local walk, was = fsmod.walk, lfp(walks)
    fsmod.walk = function(dir) return dir end
    local now = lfp(walks)
    fsmod.walk = walk
    assert.are.equal(was, now)
  end)

  it("changes when a class's method or a sub-module's helper it calls "
     .. "changes, not when another function of theirs does", function()
    -- Parser:parse is called on an object, util.text.clean through a
    -- table read from a table upvalue: neither is read from an upvalue
    -- by name.
    local src = [[
local Parser = {}
Parser.__index = Parser
function Parser.new(s) return setmetatable({ s = s }, Parser) end
function Parser:parse() return self.s:upper() end
function Parser:unused() return OTHER end
local util = { text = {} }
function util.text.clean(s) return (s:gsub("%s+", SEP)) end
function util.text.unused() return OTHER end
return function(s) return util.text.clean(Parser.new(s):parse()) end]]
    local function variant(upper, sep, other)
      return lfp(fn((src:gsub("upper", upper):gsub("SEP", sep)
                        :gsub("OTHER", other))))
    end
    local base = variant("upper", '" "', "1")
    assert.are.equal(base, variant("upper", '" "', "1"))
    assert.are_not.equal(base, variant("lower", '" "', "1"))
    assert.are_not.equal(base, variant("upper", '"_"', "1"))
    assert.are.equal(base, variant("upper", '" "', "2"))
  end)

  it("changes when a scalar upvalue changes", function()
    local tpl = "local SIZE, NAME, ON = %s, %q, %s\n"
      .. "return function() return SIZE, NAME, ON end"
    local base = lfp(fn(tpl:format("800", "a", "true")))
    assert.are_not.equal(base, lfp(fn(tpl:format("900", "a", "true"))))
    assert.are_not.equal(base, lfp(fn(tpl:format("800.0", "a", "true"))))
    assert.are_not.equal(base, lfp(fn(tpl:format("800", "b", "true"))))
    assert.are_not.equal(base, lfp(fn(tpl:format("800", "a", "false"))))
  end)

  it("changes when a global helper function it reads changes", function()
    local main = "return function(doc) return shout(doc) .. tostring(1) end"
    local f1, env1 = fn(main)
    local f2, env2 = fn(main)
    env1.shout = fn "return function(s) return s:upper() end"
    env2.shout = fn "return function(s) return s:upper() end"
    assert.are.equal(lfp(f1), lfp(f2))
    env2.shout = fn "return function(s) return s:lower() end"
    assert.are_not.equal(lfp(f1), lfp(f2))
    -- a global read only inside a nested closure counts too
    local g1, genv1 = fn "return function() return function() return h() end end"
    local g2, genv2 = fn "return function() return function() return h() end end"
    genv1.h = fn "return function() return 1 end"
    genv2.h = fn "return function() return 2 end"
    assert.are_not.equal(lfp(g1), lfp(g2))
  end)

  it("finds globals defined in the same chunk", function()
    local tpl = [[
function format_title(s) return "# " .. s .. "%s" end
return function(doc) return format_title(doc.title) end]]
    assert.are_not.equal(lfp(fn(tpl:format("!"))), lfp(fn(tpl:format("?"))))
  end)

  it("terminates on mutually recursive helpers and still sees edits", function()
    local tpl = [[
local is_even, is_odd
function is_even(n) if n == 0 then return true end return is_odd(n - 1) end
function is_odd(n) if n == 0 then return %s end return is_even(n - 1) end
return function(n) return is_even(n) end]]
    local a = lfp(fn(tpl:format("false")))
    assert.are.equal(a, lfp(fn(tpl:format("false"))))
    assert.are_not.equal(a, lfp(fn(tpl:format("nil"))))
    -- recursion through globals, and a function that reaches itself
    local g = [[
function ping(n) if n > 0 then return pong(n - 1) end return %d end
function pong(n) return ping(n) end
return ping]]
    assert.are_not.equal(lfp(fn(g:format(1))), lfp(fn(g:format(2))))
    local self_rec = fn [[
local function fact(n) if n <= 1 then return 1 end return n * fact(n - 1) end
return fact]]
    assert.matches("^%x+$", lfp(self_rec))
  end)

  it("does not count Lua's own C functions or tables in upvalues", function()
    local a = fn "local insert = table.insert\nreturn function(t) insert(t, 1) end"
    local b = fn "local insert = table.insert\nreturn function(t) insert(t, 1) end"
    assert.are.equal(lfp(a), lfp(b))
    assert.matches("^%x+$", lfp(print))
  end)

  it("includes a __tide_logic value's fingerprint", function()
    local function tracked(code)
      return setmetatable({}, { __tide_logic = function() return code end })
    end
    local tpl = "local dep = ...\nreturn function() return dep() end"
    local a = assert(load(tpl))(tracked("aaaa"))
    local b = assert(load(tpl))(tracked("bbbb"))
    local c = assert(load(tpl))(tracked("aaaa"))
    assert.are.equal(lfp(a), lfp(c))
    assert.are_not.equal(lfp(a), lfp(b))
  end)

  it("is the same in another process", function()
    local dir = helpers.tmpdir()
    local script = helpers.write(dir .. "/fp.lua", [[
local tide = require "tide"
local function helper(s) return s .. "!" end
function global_helper(s) return helper(s):rep(2) end
print(tide.logic_fingerprint(function(s) return global_helper(s) end))]])
    local out1 = helpers.run(helpers.q(helpers.tide) .. " run " .. script)
    local out2 = helpers.run(helpers.q(helpers.tide) .. " run " .. script)
    assert.matches("^%x+\n$", out1)
    assert.are.equal(out1, out2)
  end)

  it("raises for a value that is not a function", function()
    local ok, err = pcall(lfp, 42)
    assert.is_false(ok)
    assert.matches("expected a function, got number", err)
  end)
end)
