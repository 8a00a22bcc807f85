-- A method called with a dot instead of a colon (t.row{...}, a Lua
-- mistake every user makes once) is said at the user's line, naming the
-- method, not as an error inside tide ("attempt to index a nil value").
local helpers = require "test.spec.helpers"
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"

local R = tide.record("R", { { "id", "string", key = true } })

-- The first line of the message of the one component running body, from
-- a chunk named pipeline.lua whose line 2 is the call.
local function failure(dir, body)
  local chunk = assert(load("local tide, fs, sqlite, R, dir = ...\n"
    .. body .. "\n", "=pipeline.lua"))
  local app = tide.app("colon", function()
    tide.mount("x", tide.fn("x", function()
      chunk(tide, fs, sqlite, R, dir)
    end))
  end)
  local stats, errors = app:update { db = dir .. "/s.db" }
  app:close()
  assert(stats, errors)
  assert.are.equal(1, stats.components.errors)
  return (errors[1].message:match("^[^\n]*"))
end

describe("a method called with a dot", function()
  after_each(helpers.cleanup)

  it("is said at the line of the call, naming the method", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/docs/a.md", "alpha\n")
    assert.are.equal("pipeline.lua:2: sqlite.table: call row with a colon "
      .. "(t:row{...}), not a dot", failure(dir,
      "local t = sqlite.table { db = dir .. '/out.db', name = 'r', "
      .. "schema = R }; t.row { id = 'a' }"))
    assert.are.equal("pipeline.lua:2: fs.dir: call file with a colon "
      .. "(d:file(name, content)), not a dot", failure(dir,
      "local d = fs.dir(dir .. '/out'); d.file('a.txt', 'x')"))
    assert.are.equal("pipeline.lua:2: fs.walk: call items with a colon "
      .. "(walk:items()), not a dot", failure(dir,
      "for k in fs.walk(dir .. '/docs').items() do end"))
    assert.are.equal("pipeline.lua:2: file:text: call it with a colon "
      .. "(file:text()), not a dot", failure(dir,
      "for _, f in fs.walk(dir .. '/docs'):items() do f.text() end"))
    assert.are.equal("pipeline.lua:2: file:bytes: call it with a colon "
      .. "(file:bytes()), not a dot", failure(dir,
      "for _, f in fs.walk(dir .. '/docs'):items() do f.bytes() end"))
    assert.are.equal("pipeline.lua:2: target: call declare with a colon "
      .. "(h:declare(key, value)), not a dot", failure(dir,
      "local tt = tide.target_type { name = 'mine', apply = function() end, "
      .. "identity = function(s) return s.n end }; "
      .. "tide.declare_target(tt, { n = 'z' }).declare('k', 1)"))
  end)
end)
