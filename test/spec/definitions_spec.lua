-- Mistakes in a pipeline's definitions (tide.fn, tide.record, tide.key,
-- ai.embedder) as a user meets them: raised at the user's line, naming
-- the option, and never an option taken and then ignored.
local tide = require "tide"
local ai = require "tide.ai"

-- The message of running src (a chunk named pipeline.lua) under pcall.
local function err_of(src)
  local chunk = assert(load(src, "=pipeline.lua"))
  local ok, err = pcall(chunk)
  assert.is_false(ok, "no error")
  return err
end

describe("a definition's mistake", function()
  it("in tide.fn is said at the line that called it", function()
    assert.are.equal("pipeline.lua:2: tide.fn a: memo must be true or false",
      err_of("local tide = require 'tide'\n"
             .. "tide.fn('a', { memo = 'yes' }, function() end)\n"))
    assert.are.equal("pipeline.lua:3: tide.fn b: unknown option mem",
      err_of("local tide = require 'tide'\n\n"
             .. "local f = tide.fn('b', { mem = true }, function() end)\n"))
  end)

  it("in ai.embedder is said at the line that called it", function()
    assert.are.equal("pipeline.lua:2: tide.fn: name must be a non-empty "
                     .. "string without '/'",
      err_of("local ai = require 'tide.ai'\n"
             .. "ai.embedder { url = 'http://127.0.0.1:9/v1', model = 'm', "
             .. "name = 'a/b' }\n"))
  end)

  it("in a record field's options is refused, not ignored", function()
    local ok, err = pcall(tide.record, "T",
                          { { "id", "string", primary = true } })
    assert.is_false(ok)
    assert.matches("tide.record T.id: unknown option primary (a field is "
                   .. "{ name, type, key = true })", err, 1, true)
    ok, err = pcall(tide.record, "T", { { "id", "string", true } })
    assert.is_false(ok)
    assert.matches("tide.record T.id: unknown option 3 (a field is "
                   .. "{ name, type, key = true })", err, 1, true)
    ok, err = pcall(tide.record, "T", { { "id", "string", key = "yes" } })
    assert.is_false(ok)
    assert.matches("tide.record T.id: key must be true or false, got string",
                   err, 1, true)
    local T = tide.record("T", { { "id", "string", key = true },
                                 { "n", "integer", key = false } })
    assert.are.same({ "id" }, T.keys)
  end)

  it("in tide.key's options is refused, not ignored", function()
    local ok, err = pcall(tide.key, "k", { detect = true })
    assert.is_false(ok)
    assert.matches("tide.key k: unknown option detect (expected "
                   .. "detect_change)", err, 1, true)
    ok, err = pcall(tide.key, "k", { detect_change = "yes" })
    assert.is_false(ok)
    assert.matches("tide.key k: detect_change must be true or false, got "
                   .. "string", err, 1, true)
    ok, err = pcall(tide.key, "k", "yes")
    assert.is_false(ok)
    assert.matches("tide.key k: options must be a table, got string", err, 1,
                   true)
    assert.is_true(tide.key("k", { detect_change = true }).detect_change)
    assert.is_false(tide.key("k").detect_change)
  end)
end)
