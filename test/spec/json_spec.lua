local json = require "tide.json"
local helpers = require "test.spec.helpers"

local function err_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok)
  return (tostring(err):gsub("^[^:]+:%d+: ", ""))
end

-- All key, object pairs of a source, in order.
local function pairs_of(src)
  local keys, objs = {}, {}
  for k, o in src:items() do
    keys[#keys + 1], objs[#objs + 1] = k, o
  end
  return keys, objs
end

local function lines_file(content)
  return helpers.write(helpers.tmpdir() .. "/products.jsonl", content)
end

-- The error items() raises for a file holding content.
local function lines_error(content, opts)
  local path = lines_file(content)
  local src = json.lines(path, opts)
  local ok, err = pcall(src.items, src)
  assert.is_false(ok)
  return (err:gsub("^" .. path:gsub("%p", "%%%0"), "products.jsonl"))
end

describe("tide.json", function()
  after_each(helpers.cleanup)

  describe("decode and encode", function()
    it("decode JSON into Lua values, integers as integers", function()
      local v = json.decode('{"a":[1,2.5,{"b":"x"}],"id":7,"f":7.0,'
        .. '"big":1e300,"neg":-3,"t":true}')
      assert.are.same({ a = { 1, 2.5, { b = "x" } }, id = 7, f = 7,
                        big = 1e300, neg = -3, t = true }, v)
      assert.are.equal("integer", math.type(v.id))
      assert.are.equal("integer", math.type(v.a[1]))
      assert.are.equal("float", math.type(v.a[2]))
      assert.are.equal("float", math.type(v.big))
      assert.are.equal(42, json.decode("42"))
      assert.are.equal("integer", math.type(json.decode("42")))
      assert.are.equal("s", json.decode('"s"'))
    end)

    it("keep null as json.null", function()
      local v = json.decode('{"a":null,"l":[1,null]}')
      assert.are.equal(json.null, v.a)
      assert.are.equal(json.null, v.l[2])
      assert.are.equal('{"a":null}', json.encode({ a = json.null }))
    end)

    it("return nil and a message on bad input", function()
      local v, err = json.decode("[1")
      assert.is_nil(v)
      assert.are.equal("expected comma or array end but found T_END at "
        .. "character 3", err)
      v, err = json.decode("NaN")
      assert.is_nil(v)
      assert.is_string(err)
      v, err = json.encode({ f = print })
      assert.is_nil(v)
      assert.matches("Cannot serialise function", err)
      assert.are.equal("json.decode: expected a string, got nil",
                       err_of(json.decode))
    end)

    it("use their own cjson instance", function()
      local cjson = require "cjson"
      assert.are.equal(json.null, cjson.null)
      -- the shared module still reads NaN; tide's instance is strict
      assert.is_true(cjson.decode("NaN") ~= cjson.decode("NaN"))
      assert.is_nil(json.decode("NaN"))
    end)

    it("encode Lua values", function()
      assert.are.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
      assert.are.equal('{"a":"x"}', json.encode({ a = "x" }))
      assert.are.same({ k = { 1, { 2 } } },
                      json.decode(json.encode({ k = { 1, { 2 } } })))
    end)
  end)

  describe("lines", function()
    it("is a source with a project-relative path and its key", function()
      local src = json.lines("data/p.jsonl", { key = "sku" })
      assert.are.equal("json.lines", src.kind)
      assert.are.equal("data/p.jsonl", src.path)
      assert.are.equal("sku", src.key)
      assert.are.equal("function", type(src.items))
    end)

    it("yields key, object in file order, nested values kept", function()
      local path = lines_file(table.concat({
        '{"id":"b","tags":["x","y"],"dims":{"w":1.5,"h":2}}',
        "",
        "   ",
        '{"id":"a","list":[{"n":1},{"n":2}]}\r',
        '{"id":7}',
      }, "\n"))
      local keys, objs = pairs_of(json.lines(path))
      assert.are.same({ "b", "a", "7" }, keys)
      assert.are.same({ id = "b", tags = { "x", "y" },
                        dims = { w = 1.5, h = 2 } }, objs[1])
      assert.are.same({ id = "a", list = { { n = 1 }, { n = 2 } } }, objs[2])
      assert.are.equal("integer", math.type(objs[1].dims.h))
      assert.are.same({ id = 7 }, objs[3])
    end)

    it("takes the key from a field or a function", function()
      local path = lines_file('\239\187\191{"sku":"p1"}\n\n{"sku":"p2"}\n')
      local keys = pairs_of(json.lines(path, { key = "sku" }))
      assert.are.same({ "p1", "p2" }, keys)
      local seen = {}
      keys = pairs_of(json.lines(path, { key = function(obj, lineno)
        seen[#seen + 1] = lineno
        return obj.sku .. "@" .. lineno
      end }))
      assert.are.same({ "p1@1", "p2@3" }, keys)
      assert.are.same({ 1, 3 }, seen)
    end)

    it("leaves out null fields", function()
      local path = lines_file('{"id":"a","gone":null,"o":{"x":null,"y":1}}')
      local _, objs = pairs_of(json.lines(path))
      assert.are.same({ id = "a", o = { y = 1 } }, objs[1])
    end)

    it("errors name the file and the line", function()
      assert.are.equal("products.jsonl:3: expected a JSON object",
        lines_error('{"id":"a"}\n\n[1,2]\n'))
      assert.are.equal("products.jsonl:1: expected a JSON object",
        lines_error('"text"'))
      assert.are.equal("products.jsonl:2: expected object key string but "
        .. "found invalid token at character 2",
        lines_error('{"id":"a"}\n{x}\n'))
      assert.are.equal([[products.jsonl:3: duplicate key "a" (first on ]]
        .. "line 1)", lines_error('{"id":"a"}\n{"id":"b"}\n{"id":"a"}\n'))
      assert.are.equal([[products.jsonl:2: no "id" field to key the ]]
        .. "object by (pass { key = field or function })",
        lines_error('{"id":"a"}\n{"name":"b"}\n'))
      assert.are.equal([[products.jsonl:1: no "sku" field to key the ]]
        .. "object by (pass { key = field or function })",
        lines_error('{"id":"a"}', { key = "sku" }))
      assert.are.equal([[products.jsonl:1: key field "id" is a table; a ]]
        .. "key must be a non-empty string or an integer",
        lines_error('{"id":{"x":1}}'))
      assert.are.equal([[products.jsonl:1: key field "id" is the number ]]
        .. "1.5; a key must be a non-empty string or an integer",
        lines_error('{"id":1.5}'))
      assert.are.equal([[products.jsonl:1: key field "id" is an empty ]]
        .. "string; a key must be a non-empty string or an integer",
        lines_error('{"id":""}'))
      assert.are.equal("products.jsonl:1: the key function returned nil; a "
        .. "key must be a non-empty string or an integer",
        lines_error('{"id":"a"}', { key = function() end }))
      assert.are.equal("products.jsonl:2: null at tags[2]: a null inside an "
        .. "array has no Lua value tide can store",
        lines_error('{"id":"a"}\n{"id":"b","tags":["x",null]}\n'))
      assert.are.equal("products.jsonl:1: null at o.l[1]: a null inside an "
        .. "array has no Lua value tide can store",
        lines_error('{"id":"a","o":{"l":[null]}}'))
    end)

    it("raises naming the file when it cannot be read", function()
      local path = helpers.tmpdir() .. "/missing.jsonl"
      local src = json.lines(path)
      local ok, err = pcall(src.items, src)
      assert.is_false(ok)
      assert.are.equal("json.lines: " .. path .. ": no such file or "
        .. "directory", err)
    end)

    it("rejects misuse with a message for the caller", function()
      local ok, err = pcall(function()
        local src = json.lines(1)
        return src
      end)
      assert.is_false(ok)
      assert.matches("json_spec.lua:%d+: json.lines: path must be a "
        .. "non%-empty string, got number", err)
      assert.are.equal("json.lines: unknown option keys (expected key)",
                       err_of(json.lines, "p.jsonl", { keys = "id" }))
      assert.are.equal("json.lines: key must be a field name or a "
        .. "function(obj, lineno)", err_of(json.lines, "p.jsonl", { key = 1 }))
      assert.are.equal("json.lines: options must be a table, got string",
                       err_of(json.lines, "p.jsonl", "id"))
    end)
  end)

  -- core.nul_at: what postgres.table refuses before PostgreSQL would.
  it("finds the place of a NUL byte in a string, a key or below", function()
    local nul_at = require("tide.core").nul_at
    assert.is_nil(nul_at("plain"))
    assert.is_nil(nul_at(42))
    assert.is_nil(nul_at({ a = "x", b = { 1, "y", { c = true } } }))
    assert.are.equal("", nul_at("x\0y"))
    assert.are.equal("[2]", nul_at({ "a", "b\0" }))
    assert.are.equal(".tags[2].b", nul_at({ tags = { "a", { b = "c\0" } } }))
    assert.are.equal(" (a key)", nul_at({ ["k\0"] = 1 }))
    assert.are.equal(".a (a key)", nul_at({ a = { ["k\0"] = 1 } }))
    -- A cycle ends where the JSON writer would stop.
    local loop = {}
    loop.self = loop
    assert.is_nil(nul_at(loop))
  end)
end)
