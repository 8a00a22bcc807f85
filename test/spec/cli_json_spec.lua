-- What `tide show`, `why` and `update` print with --json: JSON that
-- any strict parser reads, whatever bytes the names in it hold.
local helpers = require "test.spec.helpers"
local cjson = require "cjson"

local q = helpers.q

-- A pipeline over in/, one component and one row per file, keyed by the
-- file's name as bytes (a name need not be UTF-8).
local PIPELINE = [[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Row = tide.record("Row", {
  { "name", "bytes", key = true },
  { "size", "integer" },
})
local copy = tide.fn("copy", { memo = true }, function(file, rows)
  if file:text():match("fail") then error("cannot take " .. file.path) end
  rows:row(Row { name = file.path, size = file.size })
end)
return tide.app("names", function()
  local rows = sqlite.table { db = "out.db", name = "files", schema = Row }
  tide.mount_each(copy, fs.walk("in"), rows)
end)
]]

local function tide(dir, args)
  return helpers.run(("cd %s && %s %s"):format(q(dir), q(helpers.tide),
                                                args))
end

-- Decodes out as JSON after checking it is valid UTF-8 (lua-cjson passes
-- any byte through, so it cannot tell).
local function decode(out)
  assert.is_truthy(utf8.len(out), "output is not valid UTF-8: " .. out)
  return cjson.decode(out)
end

describe("tide --json output", function()
  local dir
  local bad = "a\xffb.txt"         -- not UTF-8: byte 0xFF
  local cut = "c\xe2\x82.txt"     -- not UTF-8: a sequence cut short
  local good = "d\xe2\x82\xac.txt" -- valid UTF-8: a euro sign
  local R = "\xef\xbf\xbd"         -- U+FFFD, as UTF-8

  before_each(function()
    dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", PIPELINE)
    helpers.write(dir .. "/in/" .. bad, "one")
    helpers.write(dir .. "/in/" .. cut, "fail")
    helpers.write(dir .. "/in/" .. good, "three")
    local _, err, code = tide(dir, "update pipeline.lua --json")
    assert.are.equal(1, code, err)
  end)

  after_each(helpers.cleanup)

  it("show writes each byte that is not UTF-8 as \\ufffd", function()
    local out, err, code = tide(dir, "show pipeline.lua --json "
                                     .. "--target-states")
    assert.are.equal(0, code, err)
    assert.matches('"path":"/copy/a\\ufffdb.txt"', out, 1, true)
    assert.matches('"path":"/copy/c\\ufffd\\ufffd.txt"', out, 1, true)
    local shown = decode(out)
    assert.are.equal("names", shown.app)
    local by_path = {}
    for _, c in ipairs(shown.components) do by_path[c.path] = c end
    local a = by_path["/copy/a" .. R .. "b.txt"]
    assert.is_table(a)
    assert.are.equal("ok", a.status)
    assert.are.equal("fs.walk:in:a" .. R .. "b.txt", a.source)
    assert.are.same({ { target = "files", key = { "a" .. R .. "b.txt" },
                        pending = false } }, a.target_states)
    local c = by_path["/copy/c" .. R .. R .. ".txt"]
    assert.are.equal("failed", c.status)
    assert.matches("cannot take c" .. R .. R .. ".txt", c.error, 1, true)
    -- valid UTF-8 is left as it is
    assert.is_table(by_path["/copy/" .. good])
  end)

  it("why writes each byte that is not UTF-8 as \\ufffd", function()
    local out, err, code = tide(dir, "why pipeline.lua files " .. q(bad)
                                     .. " --json")
    assert.are.equal(0, code, err)
    local why = decode(out)
    assert.are.equal("files", why.target)
    assert.are.same({ "a" .. R .. "b.txt" }, why.key)
    assert.are.equal("/copy/a" .. R .. "b.txt", why.owner)
    assert.are.equal("copy", why.fn)
    assert.are.equal("fs.walk:in:a" .. R .. "b.txt", why.source)
    assert.are.equal("applied", why.state)
    -- the text output shows the bytes as they are
    out = tide(dir, "why pipeline.lua files " .. q(bad))
    assert.matches("owner component: /copy/" .. bad, out, 1, true)
  end)

  it("why shows a key's control bytes as \\xHH in its text", function()
    local _, err, code = tide(dir, "why pipeline.lua files "
                                   .. q("bad\xff\x01name"))
    assert.are.equal(1, code)
    assert.are.equal("tide: files has no target state with key bad\xff"
                     .. "\\x01name\n", err)
    helpers.write(dir .. "/in/e\x01f.txt", "four")
    tide(dir, "update pipeline.lua")
    local out
    out, err, code = tide(dir, "why pipeline.lua files " .. q("e\x01f.txt"))
    assert.are.equal(0, code, err)
    assert.matches('^files "e\\u0001f%.txt"\n  owner component: '
                   .. '/copy/e\\x01f%.txt %(copy%)\n  source item: '
                   .. 'fs%.walk:in:e\\x01f%.txt\n', out)
  end)

  it("update writes \\ufffd in a function name that is not UTF-8",
     function()
    helpers.write(dir .. "/pipeline.lua",
                  (PIPELINE:gsub('"copy", { memo', '"copy\\xff", { memo')))
    local out, err, code = tide(dir, "update pipeline.lua --json")
    assert.are.equal(1, code, err)
    assert.matches('"copy\\ufffd":{"calls":3,', out, 1, true)
    local stats = decode(out)
    assert.are.equal(3, stats.functions["copy" .. R].calls)
  end)
end)
