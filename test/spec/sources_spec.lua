-- A source that fails must not delete: what it could not read keeps its
-- components and target states, the error names the source and the
-- place, the run exits 1; a source that suddenly returns nothing is
-- refused unless --allow-empty.
local helpers = require "test.spec.helpers"
local ph = require "test.spec.pipeline_helpers"

local q = helpers.q

local function pipeline(source, memo)
  return ([[
local fs = require "tide.fs"
local process = tide.fn("process", { memo = %s }, function(item, out)
  if getmetatable(item) == fs.File then
    out:declare(item.path, item:text())
  else
    out:declare(tostring(item.id), item.text or item.title)
  end
end)
return tide.app("sources", function()
  tide.mount_each(process, %s, kv("out.json"))
end)
]]):format(memo and "true" or "false", source)
end

describe("failing sources", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  for _, memo in ipairs { true, false } do
    it(("keep what an unreadable directory held (%s)"):format(
         memo and "memoized, the C walk" or "not memoized"), function()
      ph.write_pipeline(dir, pipeline('fs.walk("docs")', memo))
      helpers.write(dir .. "/docs/a.md", "A")
      helpers.write(dir .. "/docs/sub/b.md", "B")
      helpers.write(dir .. "/docs/sub/c.md", "C")
      -- Root reads any directory: run tide as nobody, in a folder nobody
      -- owns.
      os.execute("chown -R 65534:65534 " .. q(dir))
      local function update()
        local out, err, code = helpers.run(("setpriv --reuid=65534 "
          .. "--regid=65534 --clear-groups %s update %s --json"):format(
          q(helpers.tide), q(dir .. "/pipeline.lua")))
        return require("cjson").decode(out ~= "" and out or "null"), err,
          code
      end
      local stats, err, code = update()
      assert.are.equal(0, code, err)
      os.execute("chmod 000 " .. q(dir .. "/docs/sub"))
      stats, err, code = update()
      os.execute("chmod 755 " .. q(dir .. "/docs/sub"))
      assert.are.equal(1, code, err)
      assert.matches("tide: source fs.walk docs: cannot read sub: permission "
                     .. "denied", err, 1, true)
      assert.not_matches("component", err)
      assert.are.equal(0, stats.components.deleted)
      assert.are.same({ ["a.md"] = "A", ["sub/b.md"] = "B",
                        ["sub/c.md"] = "C" }, ph.kv(dir .. "/out.json"))
      stats, err, code = update()
      assert.are.equal(0, code, err)
      assert.are.equal(0, stats.components.deleted)
      assert.are.equal(0, stats.targets.deleted)
    end)
  end

  it("keeps what a missing JSON Lines file held", function()
    ph.write_pipeline(dir, pipeline('tide.json.lines("items.jsonl")', true))
    helpers.write(dir .. "/items.jsonl", '{"id":1,"text":"one"}\n'
                  .. '{"id":2,"text":"two"}\n')
    local _, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    os.rename(dir .. "/items.jsonl", dir .. "/moved.jsonl")
    local stats
    stats, err, code = ph.update(dir)
    assert.are.equal(1, code, err)
    -- The source is named once.
    assert.matches("tide: source json.lines items.jsonl: no such file or "
                   .. "directory\n", err, 1, true)
    assert.are.equal(0, stats.components.deleted)
    assert.are.same({ ["1"] = "one", ["2"] = "two" }, ph.kv(dir .. "/out.json"))
    os.rename(dir .. "/moved.jsonl", dir .. "/items.jsonl")
    stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(2, stats.components.unchanged)
  end)

  it("makes a malformed JSON Lines line the error of that item only",
     function()
    ph.write_pipeline(dir, pipeline('tide.json.lines("items.jsonl")', true))
    helpers.write(dir .. "/items.jsonl", '{"id":1,"text":"one"}\n'
                  .. '{"id":2,"text":"two"}\n{"id":3,"text":"three"}\n')
    local _, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    -- Line 2 breaks; line 3 changes.
    helpers.write(dir .. "/items.jsonl", '{"id":1,"text":"one"}\n'
                  .. '{"id":2,"text":\n{"id":3,"text":"THREE"}\n')
    local stats
    stats, err, code = ph.update(dir)
    assert.are.equal(1, code, err)
    assert.matches("tide: source json.lines items.jsonl: items.jsonl:2: ",
                   err, 1, true)
    assert.are.equal(1, stats.components.reprocessed)
    assert.are.equal(0, stats.components.deleted)
    -- Item 2 keeps what it had: its key is unknown while the line is bad.
    assert.are.same({ ["1"] = "one", ["2"] = "two", ["3"] = "THREE" },
                    ph.kv(dir .. "/out.json"))
  end)

  it("keeps what a failing query returned before", function()
    ph.write_pipeline(dir, pipeline('require("tide.sqlite").rows("in.db", '
      .. '"SELECT id, title FROM items", { key = "id" })', true))
    helpers.run(("sqlite3 %s %s"):format(q(dir .. "/in.db"), q(
      "CREATE TABLE items(id INTEGER PRIMARY KEY, title TEXT); "
      .. "INSERT INTO items VALUES (1, 'one'), (2, 'two')")))
    local _, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    helpers.run(("sqlite3 %s %s"):format(q(dir .. "/in.db"),
      q("ALTER TABLE items RENAME TO gone")))
    local stats
    stats, err, code = ph.update(dir)
    assert.are.equal(1, code, err)
    assert.matches("tide: source sqlite.rows in.db: no such table: items "
                   .. "in query: SELECT id, title FROM items\n", err, 1, true)
    assert.are.equal(0, stats.components.deleted)
    assert.are.same({ ["1"] = "one", ["2"] = "two" }, ph.kv(dir .. "/out.json"))
  end)

  it("refuses a source that comes back empty unless --allow-empty",
     function()
    ph.write_pipeline(dir, pipeline('fs.walk("docs")', true))
    for i = 1, 150 do helpers.write(("%s/docs/%03d.md"):format(dir, i), "x") end
    local stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    os.execute("rm -f " .. q(dir) .. "/docs/*.md")
    stats, err, code = ph.update(dir)
    assert.are.equal(1, code, err)
    assert.matches("tide: source fs.walk docs returned no items where it "
                   .. "had 150: nothing was deleted", err, 1, true)
    assert.are.equal(0, stats.components.deleted)
    assert.are.equal(150, #(function()
      local n = {}
      for k in pairs(ph.kv(dir .. "/out.json")) do n[#n + 1] = k end
      return n
    end)())
    stats, err, code = ph.update(dir, "--allow-empty")
    assert.are.equal(0, code, err)
    assert.are.equal(150, stats.components.deleted)
    assert.are.same({}, ph.kv(dir .. "/out.json"))
  end)

  it("deletes normally when a small source becomes empty", function()
    ph.write_pipeline(dir, pipeline('fs.walk("docs")', true))
    helpers.write(dir .. "/docs/a.md", "A")
    local _, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    os.remove(dir .. "/docs/a.md")
    local stats
    stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(1, stats.components.deleted)
  end)
end)
