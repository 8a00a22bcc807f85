-- json.lines and sqlite.rows under mount_each read their items in C and
-- carry unchanged ones over there (index_each.h): the C reading must give
-- the bytes the Lua reading gives, and the runs the same counts, rows
-- and messages as when every item went through Lua.
local core = require "tide.core"
local json = require "tide.json"
local helpers = require "test.spec.helpers"
local ph = require "test.spec.pipeline_helpers"

local q = helpers.q

-- What json.lua makes of one line: its key and the object's encoding.
local function lua_reading(line)
  local path = helpers.write(helpers.tmpdir() .. "/one.jsonl", line .. "\n")
  for key, obj in json.lines(path):items() do
    return core.cbor_encode(obj), key
  end
end

local function sql(db, statement)
  return helpers.run(("sqlite3 %s %s"):format(q(db), q(statement)))
end

describe("sources read in C", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  it("read a JSON line as json.lua reads it", function()
    local lines = {
      '{"id":"a","n":1,"f":2.5,"t":true,"no":false}',
      '{"id":7,"x":[1,2.5,{"y":null,"z":[]}],"o":{},"gone":null}',
      '{"id":"e","big":1e300,"int":1e3,"neg":-0,"exact":9007199254740993,'
        .. '"huge":12345678901234567890,"tiny":2.5e-7,"i":-42}',
      '{"id":"\\u00e9\\ud83d\\ude00","s":"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t",'
        .. '"raw":"\xc3\xa9","bad":"\xff","nul":"\\u0000"}',
      '  {"bb":1,"a":2,"id":"k","aa":{"c":1,"b":[{"q":[]}]}}\r',
      '{"id":"s/t","v":"x"}',
    }
    for _, line in ipairs(lines) do
      local enc, key = core.jsonl_read(line, "id")
      assert.is_not_nil(enc, line)
      local want, want_key = lua_reading(line)
      assert.are.equal(want_key, key, line)
      assert.are.equal(want, enc, line)
    end
    -- Left to Lua: what it refuses, and what C does not mimic.
    for _, line in ipairs {
      '{"id":"a","id":"b"}', '{"id":"a","l":[null]}', '{"id":1.5}',
      '{"id":""}', '{"x":1}', '[1]', '{"id":1} x', '{"id":01}',
      '{"id":"a","x":1e999}', '{"id":"a","x":"\\ud800"}',
    } do
      assert.is_nil(core.jsonl_read(line, "id"), line)
    end
  end)

  it("carry unchanged JSON lines over and list their keys", function()
    ph.write_pipeline(dir, [[
local process = tide.fn("process", { memo = true }, function(item, out)
  out:declare(tostring(item.id), item.v)
end)
return tide.app("lines", function()
  tide.mount_each(process, tide.json.lines("items.jsonl"), kv("out.json"))
end)
]])
    local function lines(...)
      helpers.write(dir .. "/items.jsonl", table.concat({ ... }, "\n") .. "\n")
    end
    lines('{"id":"a","v":1}', '{"id":"b","v":1}', '', '{"id":"c","v":1}')
    local stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(3, stats.components.added)
    stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ added = 0, reprocessed = 0, deleted = 0,
                      unchanged = 3, errors = 0 }, stats.components)
    assert.are.same({ calls = 3, hits = 3, misses = 0, errors = 0 },
                    stats.functions.process)
    -- b changes and comes first; its old line, later, is a duplicate of
    -- a key Lua listed; a's old line after a carried one is one too.
    lines('{"id":"b","v":2}', '{"id":"a","v":1}', '{"id":"b","v":1}',
          '{"id":"c","v":1}', '{"id":"a","v":3}')
    stats, err, code = ph.update(dir)
    assert.are.equal(1, code, err)
    assert.matches('items.jsonl:3: duplicate key "b" (first on line 1)', err,
                   1, true)
    assert.matches('items.jsonl:5: duplicate key "a" (first on line 2)', err,
                   1, true)
    assert.are.same({ added = 0, reprocessed = 1, deleted = 0,
                      unchanged = 2, errors = 2 }, stats.components)
    assert.are.same({ a = 1, b = 2, c = 1 }, ph.kv(dir .. "/out.json"))
    -- A line gone is deleted; the others stay carried over.
    lines('{"id":"b","v":2}', '{"id":"c","v":1}')
    stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ added = 0, reprocessed = 0, deleted = 1,
                      unchanged = 2, errors = 0 }, stats.components)
    assert.are.same({ b = 2, c = 1 }, ph.kv(dir .. "/out.json"))
  end)

  it("carry unchanged rows over and check a query as sqlite.lua does",
     function()
    local db = dir .. "/in.db"
    sql(db, "CREATE TABLE items(id, part, v, b BLOB, r REAL, t TEXT);"
      .. "INSERT INTO items VALUES (1, 'x', 1, x'00ff', 0.1, 'é'),"
      .. " (2.5, 'y', 2, NULL, -0.0, CAST(x'ff' AS TEXT)),"
      .. " ('s', 'z', 3, x'41', 1e300, NULL)")
    ph.write_pipeline(dir, [[
local sqlite = require "tide.sqlite"
local process = tide.fn("process", { memo = true }, function(row, out)
  out:declare(tostring(row.id) .. "/" .. row.part, row.v)
end)
return tide.app("rows", function()
  tide.mount_each(process, sqlite.rows("in.db",
    os.getenv("QUERY") or "SELECT * FROM items", { key = { "id", "part" } }),
    kv("out.json"))
end)
]])
    local function run(query)
      local out, err, code = helpers.run(
        ("QUERY=%s %s update %s/pipeline.lua --json"):format(q(query or ""),
          q(helpers.tide), q(dir)))
      return require("cjson").decode(out ~= "" and out or "null"), err, code
    end
    local stats, err, code = run("SELECT * FROM items")
    assert.are.equal(0, code, err)
    assert.are.equal(3, stats.components.added)
    assert.are.same({ ["1/x"] = 1, ["2.5/y"] = 2, ["s/z"] = 3 },
                    ph.kv(dir .. "/out.json"))
    stats, err, code = run("SELECT * FROM items")
    assert.are.equal(0, code, err)
    assert.are.same({ added = 0, reprocessed = 0, deleted = 0,
                      unchanged = 3, errors = 0 }, stats.components)
    sql(db, "UPDATE items SET v = 20 WHERE part = 'y'")
    stats, err, code = run("SELECT * FROM items")
    assert.are.equal(0, code, err)
    assert.are.same({ added = 0, reprocessed = 1, deleted = 0,
                      unchanged = 2, errors = 0 }, stats.components)
    -- A query that fails its checks carries nothing over and keeps all.
    for query, message in pairs {
      ["SELECT * FROM items UNION ALL SELECT 1, 'x', 9, 1, 1, 1"] =
        "duplicate key 1/x in the result of: ",
      ["SELECT * FROM items UNION ALL SELECT NULL, 'w', 9, 1, 1, 1"] =
        "key column id is NULL in row 4 of: ",
      ["SELECT id, v FROM items"] = "key column part is not in the "
        .. "result of: ",
      ["SELECT * FROM missing"] = "no such table: missing in query: ",
    } do
      stats, err, code = run(query)
      assert.are.equal(1, code, err)
      assert.matches("tide: source sqlite.rows in.db: " .. message .. query
                     .. "\n", err, 1, true)
      assert.are.same({ added = 0, reprocessed = 0, deleted = 0,
                        unchanged = 0, errors = 1 }, stats.components)
    end
    -- Two columns of one name: read in Lua, the last non-NULL one kept.
    stats, err, code = run("SELECT *, NULL AS v FROM items")
    assert.are.equal(0, code, err)
    assert.are.same({ added = 0, reprocessed = 0, deleted = 0,
                      unchanged = 3, errors = 0 }, stats.components)
    stats, err, code = run("SELECT * FROM items WHERE part <> 'z'")
    assert.are.equal(0, code, err)
    assert.are.same({ added = 0, reprocessed = 0, deleted = 1,
                      unchanged = 2, errors = 0 }, stats.components)
  end)

  it("keeps rows whose key parts hold / or \\ apart", function()
    local db = dir .. "/in.db"
    sql(db, "CREATE TABLE t(a, b, v); INSERT INTO t VALUES ('x/y', 'z', 3),"
      .. " ('x', 'y/z', 4), ('p\\', 'q', 5), ('p', '\\q', 6),"
      .. " ('m', 'n', 7)")
    ph.write_pipeline(dir, [[
local sqlite = require "tide.sqlite"
local process = tide.fn("process", { memo = true }, function(row, out)
  out:declare(row.a .. "|" .. row.b, row.v)
end)
return tide.app("rows", function()
  tide.mount_each(process, sqlite.rows("in.db", "SELECT a, b, v FROM t",
                                       { key = { "a", "b" } }), kv("out.json"))
end)
]])
    local stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(5, stats.components.added)
    assert.are.same({ ["x/y|z"] = 3, ["x|y/z"] = 4, ["p\\|q"] = 5,
                      ["p|\\q"] = 6, ["m|n"] = 7 }, ph.kv(dir .. "/out.json"))
    -- Each part's / and \\ escaped with \\; a key without them as before.
    local out = ph.tide(dir, "show pipeline.lua --json")
    local paths = {}
    for _, c in ipairs(require("cjson").decode(out).components) do
      paths[#paths + 1] = c.path
    end
    table.sort(paths)
    assert.are.same({ "/", "/process/m/n", "/process/p/\\\\q",
                      "/process/p\\\\/q", "/process/x/y\\/z",
                      "/process/x\\/y/z" }, paths)
    stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(5, stats.components.unchanged)
  end)
end)
