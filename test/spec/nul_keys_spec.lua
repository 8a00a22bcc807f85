-- Keys are bytes: a key holding NUL (a JSON Lines id "a\u0000b", a
-- sqlite.rows key built with char(0)) names one component and one target
-- row, and an unchanged run leaves both alone.
local helpers = require "test.spec.helpers"
local ph = require "test.spec.pipeline_helpers"

local q = helpers.q

local function sql(db, query)
  local out, err, code = helpers.run(("sqlite3 -separator '|' %s %s")
    :format(q(db), q(query)))
  assert(code == 0, err)
  return out
end

local UNCHANGED_TARGETS = { inserted = 0, updated = 0, deleted = 0 }

-- Runs the pipeline three times: the first run adds every item, the next
-- two find everything unchanged and write nothing.
local function update_three_times(dir, count)
  local stats, err, code = ph.update(dir)
  assert.are.equal(0, code, err)
  assert.are.same({ added = count, reprocessed = 0, deleted = 0,
                    unchanged = 0, errors = 0 }, stats.components)
  assert.are.same({ inserted = count, updated = 0, deleted = 0 },
                  stats.targets)
  for _ = 2, 3 do
    stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ added = 0, reprocessed = 0, deleted = 0,
                      unchanged = count, errors = 0 }, stats.components)
    assert.are.same(UNCHANGED_TARGETS, stats.targets)
  end
end

describe("keys holding NUL", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  it("are stable through JSON Lines", function()
    helpers.write(dir .. "/items.jsonl",
      '{"id":"a\\u0000b","name":"with nul"}\n'
      .. '{"id":"a","name":"prefix"}\n'
      .. '{"id":"c","name":"plain"}\n')
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Item = tide.record("Item", {
  { "id", "string", key = true },
  { "name", "string" },
})
local copy = tide.fn("copy", { memo = true }, function(obj, items)
  items:row(Item { id = obj.id, name = obj.name })
end)
return tide.app("nul_lines", function()
  local items = sqlite.table { db = "out.db", name = "items", schema = Item }
  tide.mount_each(copy, tide.json.lines("items.jsonl"), items)
end)]])
    update_three_times(dir, 3)
    assert.are.equal("61|prefix\n610062|with nul\n63|plain\n",
      sql(dir .. "/out.db", "SELECT hex(id), name FROM items ORDER BY id"))
    assert.are.equal("1\n", sql(dir .. "/out.db",
      "SELECT count(*) FROM items WHERE id = char(97, 0, 98)"))
    assert.are.equal(3, ph.store_count(dir,
      "SELECT count(*) FROM components WHERE path LIKE '/copy/%'"))
    assert.are.equal(1, ph.store_count(dir,
      "SELECT count(*) FROM components"
      .. " WHERE path = '/copy/' || char(97, 0, 98)"
      .. " AND hex(source_key) LIKE '%3A610062'"))
  end)

  it("are stable through sqlite.rows", function()
    sql(dir .. "/in.db", "CREATE TABLE t(x);")
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Row = tide.record("Row", {
  { "id", "string", key = true },
  { "title", "string" },
})
local copy = tide.fn("copy", { memo = true }, function(row, out)
  out:row(Row { id = row.id, title = row.title })
end)
return tide.app("nul_rows", function()
  local out = sqlite.table { db = "out.db", name = "rows", schema = Row }
  tide.mount_each(copy, sqlite.rows("in.db",
    "SELECT char(97, 0, 98) AS id, 'with nul' AS title"
    .. " UNION ALL SELECT 'a', 'prefix'"
    .. " UNION ALL SELECT 'c', 'plain'", { key = "id" }), out)
end)]])
    update_three_times(dir, 3)
    assert.are.equal("61|prefix\n610062|with nul\n63|plain\n",
      sql(dir .. "/out.db", "SELECT hex(id), title FROM rows ORDER BY id"))
    assert.are.equal("1\n", sql(dir .. "/out.db",
      "SELECT count(*) FROM rows WHERE id = char(97, 0, 98)"))
    assert.are.equal(1, ph.store_count(dir,
      "SELECT count(*) FROM components"
      .. " WHERE path = '/copy/' || char(97, 0, 98)"))
  end)

  -- Component paths sort bytewise, so "/copy/a\0b" comes between
  -- "/copy/a" and its child "/copy/a/inner".
  it("keep the children of an unchanged component beside a NUL sibling",
     function()
    helpers.write(dir .. "/items.jsonl",
      '{"id":"a","name":"prefix"}\n{"id":"a\\u0000b","name":"with nul"}\n')
    helpers.write(dir .. "/pipeline.lua", ph.KV_TARGET .. [[
local inner = tide.fn("inner", {}, function(obj, out)
  out:declare(obj.name, #obj.id)
end)
local outer = tide.fn("outer", { memo = true }, function(obj, out)
  tide.mount(inner, obj, out)
end)
return tide.app("nul_children", function()
  tide.mount_each(outer, tide.json.lines("items.jsonl"), kv("out.json"))
end)]])
    local stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ added = 4, reprocessed = 0, deleted = 0, unchanged = 0,
                      errors = 0 }, stats.components)
    for _ = 2, 3 do
      stats, err, code = ph.update(dir)
      assert.are.equal(0, code, err)
      assert.are.same({ added = 0, reprocessed = 0, deleted = 0,
                        unchanged = 2, errors = 0 }, stats.components)
      assert.are.same(UNCHANGED_TARGETS, stats.targets)
    end
    assert.are.same({ prefix = 1, ["with nul"] = 3 }, ph.kv(dir .. "/out.json"))
    assert.are.equal(4, ph.store_count(dir,
      "SELECT count(*) FROM components WHERE path LIKE '/outer/%'"))
  end)

  -- The same order holds for any byte below "/": a walked file a.md sorts
  -- after its sibling a.md.bak's prefix and before its own children.
  it("do not hide the children of a walked file from its siblings",
     function()
    helpers.write(dir .. "/docs/a.md", "a\n")
    helpers.write(dir .. "/docs/a.md.bak", "b\n")
    helpers.write(dir .. "/pipeline.lua", ph.KV_TARGET .. [[
local fs = require "tide.fs"
local inner = tide.fn("inner", {}, function(path, text, out)
  out:declare(path, text)
end)
local per_file = tide.fn("per_file", { memo = true }, function(file, out)
  tide.mount(inner, file.path, file:text(), out)
end)
return tide.app("walk_children", function()
  tide.mount_each(per_file, fs.walk("docs"), kv("out.json"))
end)]])
    local stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ added = 4, reprocessed = 0, deleted = 0, unchanged = 0,
                      errors = 0 }, stats.components)
    for _ = 2, 3 do
      stats, err, code = ph.update(dir)
      assert.are.equal(0, code, err)
      assert.are.same({ added = 0, reprocessed = 0, deleted = 0,
                        unchanged = 2, errors = 0 }, stats.components)
      assert.are.same(UNCHANGED_TARGETS, stats.targets)
    end
    assert.are.same({ ["a.md"] = "a\n", ["a.md.bak"] = "b\n" },
                    ph.kv(dir .. "/out.json"))
    assert.are.equal(4, ph.store_count(dir,
      "SELECT count(*) FROM components WHERE path LIKE '/per_file/%'"))
  end)

  it("are shown as \\xHH in the messages of the components that fail",
     function()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local f = tide.fn("f", { memo = true }, function(v) error("bad " .. v) end)
local g = tide.fn("g", { memo = true }, function(v) error("same") end)
return tide.app("shown", function()
  tide.mount_each(f, { ["a\0b"] = "x", ["c\1d"] = "y" })
  tide.mount_each(g, { ["e\nf"] = 1, ["h\0i"] = 2 })
end)]])
    local _, err = ph.update(dir)
    assert.truthy(err:find("component /f/a\\x00b failed: ", 1, true), err)
    assert.truthy(err:find("component /f/c\\x01d failed: ", 1, true), err)
    assert.truthy(err:find("1 more component failed with the same error as "
      .. "/g/e\\x0af: /g/h\\x00i", 1, true) or err:find("1 more component "
      .. "failed with the same error as /g/h\\x00i: /g/e\\x0af", 1, true), err)
    assert.is_nil(err:find("[%z\1]"), err)
  end)
end)
