-- `tide why TARGET KEY` finds every key `tide show --target-states`
-- prints, whatever the types of its key fields: integers, floats (7.0 is
-- not 7), booleans, and composite keys mixing them; `tide show PATH`
-- takes a path as a shell completes it, and says when nothing is there.
local helpers = require "test.spec.helpers"

local q = helpers.q

local PIPELINE = [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Int = tide.record("Int", { { "k", "integer", key = true } })
local Num = tide.record("Num", { { "k", "number", key = true } })
local Mixed = tide.record("Mixed", {
  { "path", "string", key = true },
  { "chunk", "integer", key = true },
  { "weight", "number", key = true },
})
local Flag = tide.record("Flag", { { "on", "boolean", key = true } })
return tide.app("keys", function()
  local ints = sqlite.table { db = "out.db", name = "ints", schema = Int }
  local nums = sqlite.table { db = "out.db", name = "nums", schema = Num }
  local mixed = sqlite.table { db = "out.db", name = "mixed", schema = Mixed }
  local flags = sqlite.table { db = "out.db", name = "flags", schema = Flag }
  tide.mount("rows", tide.fn("rows", function()
    ints:row { k = 7 }
    nums:row { k = 1.5 }
    nums:row { k = 2.0 }
    mixed:row { path = "a.md", chunk = 1, weight = 4.0 }
    mixed:row { path = "a.md", chunk = 2, weight = 0.25 }
    flags:row { on = true }
  end))
end)
]]

local function tide(dir, args)
  return helpers.run(("cd %s && %s %s"):format(q(dir), q(helpers.tide),
                                                args))
end

describe("tide why and show", function()
  local dir

  before_each(function()
    dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", PIPELINE)
    local _, err, code = tide(dir, "update pipeline.lua")
    assert.are.equal(0, code, err)
  end)

  after_each(helpers.cleanup)

  it("finds every key show prints", function()
    local shown = tide(dir, "show pipeline.lua /rows --target-states")
    local keys = {}
    for name, key in shown:gmatch("\n    (%S+) ([^\n]+)") do
      keys[#keys + 1] = { name, key }
    end
    assert.are.equal(6, #keys, shown)
    for _, k in ipairs(keys) do
      local out, err, code = tide(dir, ("why pipeline.lua %s %s")
        :format(q(k[1]), q(k[2])))
      assert.are.equal(0, code, k[1] .. " " .. k[2] .. ": " .. err)
      assert.matches("owner component: /rows (rows)", out, 1, true)
    end
  end)

  it("why names the targets there are when the one asked for is not one "
     .. "of them", function()
    local out, err, code = tide(dir, "why pipeline.lua chunks 7")
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.are.equal("tide: app keys has no target named chunks (its "
                     .. "targets: flags, ints, mixed, nums)\n", err)
  end)

  it("show keeps its columns in line whatever the length of a path",
     function()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local fail = tide.fn("fail", function() error("no", 0) end)
local ok = tide.fn("ok", function() end)
return tide.app("keys", function()
  tide.mount("a", ok)
  tide.mount("a_folder_deep_down/with_a_name_far_longer_than_forty.txt", ok)
  tide.mount("b", fail)
end)
]])
    tide(dir, "update pipeline.lua")
    local out = tide(dir, "show pipeline.lua")
    local at
    for line in out:gmatch("\n([^\n]+)") do
      local col = line:find("%d+ target states")
      at = at or col
      assert.are.equal(at, col, out)
    end
    assert.matches("\n/b +fail +failed +0 target states  since ", out)
  end)

  it("show takes a path without its first slash or with a last one, and "
     .. "says when no component is there", function()
    for _, path in ipairs { "/rows", "rows", "/rows/", "rows/" } do
      local out, err, code = tide(dir, "show pipeline.lua " .. path)
      assert.are.equal(0, code, err)
      assert.matches("^app keys: 1 components\n/rows ", out)
    end
    local out, err, code = tide(dir, "show pipeline.lua /row")
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.are.equal("tide: app keys has no component at /row or below it\n",
                     err)
  end)

  it("reads a composite key's integers and floats as written", function()
    local out, err, code = tide(dir,
      "why pipeline.lua mixed '[\"a.md\",1,4.0]' --json")
    assert.are.equal(0, code, err)
    assert.matches('"key":["a.md",1,4.0]', out, 1, true)
    -- 4 is an integer, and the key holds the float 4.0: another key.
    _, err, code = tide(dir, "why pipeline.lua mixed '[\"a.md\",1,4]'")
    assert.are.equal(1, code)
    assert.matches('mixed has no target state with key ["a.md",1,4]', err,
                   1, true)
  end)

  it("why names the source item a mounted child came from through its "
     .. "parent", function()
    helpers.write(dir .. "/in.jsonl", '{"id":"a"}\n')
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local fs = require "tide.fs"
local put = tide.fn("put", function(x, out) out:file(x .. ".txt", x) end)
local item = tide.fn("item", { memo = true }, function(obj, out)
  tide.mount("one", put, obj.id .. "1", out)
end)
return tide.app("nested", function()
  local out = fs.dir("out")
  tide.mount_each(item, tide.json.lines("in.jsonl"), out)
  tide.mount("alone", put, "z", out)
end)
]])
    local _, err, code = tide(dir, "update pipeline.lua")
    assert.are.equal(0, code, err)
    local out = tide(dir, "why pipeline.lua out a1.txt")
    assert.are.equal('out "a1.txt"\n  owner component: /item/a/one (put)\n'
      .. "  source item: json.lines:in.jsonl:a (of /item/a)\n", out:match(
      "^(.-  source item: [^\n]*\n)"))
    local why = require("cjson").decode((tide(dir,
      "why pipeline.lua out a1.txt --json")))
    assert.are.equal("json.lines:in.jsonl:a", why.source)
    assert.are.equal("/item/a", why.source_of)
    out = tide(dir, "why pipeline.lua out z.txt")
    assert.matches("\n  source item: none\n", out, 1, true)
  end)
end)
