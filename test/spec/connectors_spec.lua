-- Connectors through the engine: fs.walk into SQLite and fs.dir targets,
-- the JSON Lines and SQLite sources, schema changes, exact counts and rows.
local helpers = require "test.spec.helpers"
local ph = require "test.spec.pipeline_helpers"
local cjson = require "cjson"

local q = helpers.q

local function sql(db, query)
  local out, err, code = helpers.run(("sqlite3 -separator '|' %s %s")
    :format(q(db), q(query)))
  assert(code == 0, err)
  return out
end

-- docs/*.md -> one row per file in out.db (table docs, FTS on body), and a
-- memoized inner function per file's text.
local function docs_pipeline(extra_field)
  return ([[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", {
  { "path", "string", key = true },
  { "title", "string" },
  { "body", "string" },
  %s
})
local summarize = tide.fn("summarize", { memo = true }, function(text)
  return { title = text:match("^# ([^\n]*)") or "", body = text }
end)
local process_file = tide.fn("process_file", { memo = true }, function(file, docs)
  local s = summarize(file:text())
  docs:row { path = file.path, title = s.title, body = s.body %s }
end)
return tide.app("docs", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc,
                              fts = { "body" } }
  tide.mount_each(process_file, fs.walk("docs", { include = { "**/*.md" } }),
                  docs)
end)
]]):format(extra_field and '{ "words", "integer" },' or "",
           extra_field and ', words = select(2, s.body:gsub("%S+", ""))' or "")
end

describe("connectors through the engine", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  local function doc(name, title, body)
    helpers.write(dir .. "/docs/" .. name, "# " .. title .. "\n\n" .. body
                  .. "\n")
  end

  local function rows()
    return sql(dir .. "/out.db", "SELECT path, title FROM docs ORDER BY path")
  end

  it("keeps a SQLite table equal to the folder through edits", function()
    helpers.write(dir .. "/pipeline.lua", docs_pipeline())
    doc("a.md", "Alpha", "first doc about apples")
    doc("b.md", "Beta", "second doc about bananas")
    doc("sub/c.md", "Gamma", "third doc about cherries")
    helpers.write(dir .. "/docs/skip.txt", "not markdown")
    local stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ added = 3, reprocessed = 0, deleted = 0, unchanged = 0,
                      errors = 0 }, stats.components)
    assert.are.same({ inserted = 3, updated = 0, deleted = 0 }, stats.targets)
    assert.are.equal("a.md|Alpha\nb.md|Beta\nsub/c.md|Gamma\n", rows())
    assert.are.equal("b.md\n", sql(dir .. "/out.db",
      "SELECT d.path FROM docs_fts JOIN docs d ON d.rowid = docs_fts.rowid"
      .. " WHERE docs_fts MATCH 'bananas'"))

    -- Nothing changed: nothing runs, nothing is written.
    stats = ph.update(dir)
    assert.are.same({ added = 0, reprocessed = 0, deleted = 0, unchanged = 3,
                      errors = 0 }, stats.components)
    assert.are.same({ inserted = 0, updated = 0, deleted = 0 }, stats.targets)
    assert.are.same({ calls = 3, hits = 3, misses = 0, errors = 0 },
                    stats.functions.process_file)

    -- Touched but identical: still nothing.
    os.execute("sleep 0.01; touch " .. q(dir .. "/docs/a.md"))
    stats = ph.update(dir)
    assert.are.equal(3, stats.components.unchanged)
    assert.are.same({ inserted = 0, updated = 0, deleted = 0 }, stats.targets)

    -- Edit one, delete one, add one.
    doc("a.md", "Alpha two", "first doc now about apricots")
    os.remove(dir .. "/docs/b.md")
    doc("d.md", "Delta", "fourth doc")
    stats = ph.update(dir)
    assert.are.same({ added = 1, reprocessed = 1, deleted = 1, unchanged = 1,
                      errors = 0 }, stats.components)
    assert.are.same({ inserted = 1, updated = 1, deleted = 1 }, stats.targets)
    assert.are.same({ calls = 2, hits = 0, misses = 2, errors = 0 },
                    stats.functions.summarize)
    assert.are.equal("a.md|Alpha two\nd.md|Delta\nsub/c.md|Gamma\n", rows())
    assert.are.equal("", sql(dir .. "/out.db", "SELECT rowid FROM docs_fts"
      .. " WHERE docs_fts MATCH 'bananas'"))
    assert.are.equal("a.md\n", sql(dir .. "/out.db",
      "SELECT d.path FROM docs_fts JOIN docs d ON d.rowid = docs_fts.rowid"
      .. " WHERE docs_fts MATCH 'apricots'"))
  end)

  it("renames: old rows gone, new rows written, the inner memo hits", function()
    helpers.write(dir .. "/pipeline.lua", docs_pipeline())
    doc("old.md", "Same", "unchanged content")
    ph.update(dir)
    assert(os.rename(dir .. "/docs/old.md", dir .. "/docs/new.md"))
    local stats = ph.update(dir)
    assert.are.same({ added = 1, reprocessed = 0, deleted = 1, unchanged = 0,
                      errors = 0 }, stats.components)
    assert.are.same({ inserted = 1, updated = 0, deleted = 1 }, stats.targets)
    assert.are.same({ calls = 1, hits = 1, misses = 0, errors = 0 },
                    stats.functions.summarize)
    assert.are.equal("new.md|Same\n", rows())
  end)

  it("alters the table in place for an added field and backfills a new key",
     function()
    helpers.write(dir .. "/pipeline.lua", docs_pipeline())
    doc("a.md", "A", "one two three")
    doc("b.md", "B", "four five")
    ph.update(dir)
    -- A field added: the table is altered, every component runs again (its
    -- code changed) and the rows get the new column.
    helpers.write(dir .. "/pipeline.lua", docs_pipeline(true))
    local stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(2, stats.components.reprocessed)
    assert.are.equal("a.md|5\nb.md|4\n", sql(dir .. "/out.db",
      "SELECT path, words FROM docs ORDER BY path"))
    -- A changed key: the table is recreated and refilled by the components
    -- that wrote to it, although their own code did not change.
    local keyed = docs_pipeline(true):gsub('{ "path", "string", key = true }',
      '{ "path", "string" }'):gsub('{ "title", "string" }',
      '{ "title", "string", key = true }')
    helpers.write(dir .. "/pipeline.lua", keyed)
    stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(2, stats.components.reprocessed)
    assert.are.equal("A|a.md\nB|b.md\n", sql(dir .. "/out.db",
      "SELECT title, path FROM docs ORDER BY title"))
    assert.matches("PRIMARY KEY %(\"?title\"?%)", sql(dir .. "/out.db",
      "SELECT sql FROM sqlite_master WHERE name = 'docs'"))
  end)

  it("writes a folder target and never deletes files it did not write",
     function()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local fs = require "tide.fs"
local render = tide.fn("render", { memo = true }, function(file, out)
  out:file("html/" .. file.path:gsub("%.md$", ".html"), "<p>" .. file:text() .. "</p>")
end)
return tide.app("site", function()
  tide.mount_each(render, fs.walk("docs", { include = { "**/*.md" } }), fs.dir("site"))
end)]])
    doc("a.md", "A", "x")
    doc("deep/b.md", "B", "y")
    helpers.write(dir .. "/site/mine.txt", "a user's file")
    local stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(2, stats.targets.inserted)
    assert.are.equal("<p># A\n\nx\n</p>", helpers.read(dir .. "/site/html/a.html"))
    assert.is_not_nil(helpers.read(dir .. "/site/html/deep/b.html"))
    os.remove(dir .. "/docs/deep/b.md")
    stats = ph.update(dir)
    assert.are.equal(1, stats.targets.deleted)
    assert.is_nil(helpers.read(dir .. "/site/html/deep/b.html"))
    local _, _, gone = helpers.run("test -d " .. q(dir .. "/site/html/deep"))
    assert.are_not.equal(0, gone)
    assert.are.equal("a user's file", helpers.read(dir .. "/site/mine.txt"))
    -- drop removes what tide wrote and keeps the user's file
    local out, derr, dcode = ph.tide(dir, "drop pipeline.lua --force")
    assert.are.equal(0, dcode, derr)
    assert.matches("1 target states deleted", out, 1, true)
    assert.is_nil(helpers.read(dir .. "/site/html/a.html"))
    assert.are.equal("a user's file", helpers.read(dir .. "/site/mine.txt"))
  end)

  it("moves a record between JSON Lines files as one update", function()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local fs = require "tide.fs"
local Product = tide.record("Product", {
  { "id", "string", key = true },
  { "name", "string" },
  { "tags", tide.list("string") },
})
local load_file = tide.fn("load_file", { memo = true }, function(file, products)
  for id, obj in tide.json.lines(file.abs, { key = "id" }):items() do
    products:row(Product { id = id, name = obj.name, tags = obj.tags })
  end
end)
return tide.app("catalog", function()
  local products = sqlite.table { db = "out.db", name = "products", schema = Product }
  tide.mount_each(load_file, fs.walk("data", { include = { "*.jsonl" } }), products)
end)]])
    helpers.write(dir .. "/data/a.jsonl",
      '{"id":"p1","name":"Kettle","tags":["kitchen","steel"]}\n'
      .. '{"id":"p2","name":"Mug","tags":[]}\n')
    helpers.write(dir .. "/data/b.jsonl", '{"id":"p3","name":"Lamp","tags":["light"]}\n')
    local stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(3, stats.targets.inserted)
    assert.are.equal('p1|Kettle|["kitchen","steel"]\np2|Mug|[]\np3|Lamp|["light"]\n',
      sql(dir .. "/out.db", "SELECT id, name, tags FROM products ORDER BY id"))
    -- p2 moves from a.jsonl to b.jsonl, unchanged: no delete, no insert.
    helpers.write(dir .. "/data/a.jsonl",
      '{"id":"p1","name":"Kettle","tags":["kitchen","steel"]}\n')
    helpers.write(dir .. "/data/b.jsonl", '{"id":"p3","name":"Lamp","tags":["light"]}\n'
      .. '{"id":"p2","name":"Mug","tags":[]}\n')
    stats = ph.update(dir)
    assert.are.equal(2, stats.components.reprocessed)
    assert.are.same({ inserted = 0, updated = 0, deleted = 0 }, stats.targets)
    local why = ph.tide(dir, "why pipeline.lua products p2")
    assert.matches("owner component: /load_file/b.jsonl", why, 1, true)
  end)

  it("reads a SQLite query as a keyed source", function()
    sql(dir .. "/in.db", "CREATE TABLE items(id INTEGER PRIMARY KEY, title TEXT);"
      .. " INSERT INTO items VALUES (1, 'one'), (2, 'two');")
    helpers.write(dir .. "/pipeline.lua", ph.KV_TARGET .. [[
local sqlite = require "tide.sqlite"
local copy = tide.fn("copy", { memo = true }, function(row, out)
  out:declare(tostring(row.id), row.title:upper())
end)
return tide.app("rows", function()
  tide.mount_each(copy, sqlite.rows("in.db", "SELECT id, title FROM items",
                                    { key = "id" }), kv("out.json"))
end)]])
    local stats, err, code = ph.update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(2, stats.components.added)
    assert.are.same({ ["1"] = "ONE", ["2"] = "TWO" }, ph.kv(dir .. "/out.json"))
    sql(dir .. "/in.db", "UPDATE items SET title = 'deux' WHERE id = 2")
    stats = ph.update(dir)
    assert.are.same({ added = 0, reprocessed = 1, deleted = 0, unchanged = 1,
                      errors = 0 }, stats.components)
    assert.are.equal("DEUX", ph.kv(dir .. "/out.json")["2"])
  end)

  it("reports an unreadable file as that component's error", function()
    helpers.write(dir .. "/pipeline.lua", docs_pipeline())
    doc("a.md", "A", "fine")
    doc("b.md", "B", "locked")
    -- Root reads any file: run tide as nobody, in a folder nobody owns.
    os.execute(("chown -R 65534:65534 %s && chmod 000 %s"):format(q(dir),
      q(dir .. "/docs/b.md")))
    local out, err, code = helpers.run(("setpriv --reuid=65534 --regid=65534 "
      .. "--clear-groups %s update %s --json"):format(q(helpers.tide),
      q(dir .. "/pipeline.lua")))
    assert(out ~= "", err)
    local stats = cjson.decode(out)
    assert.are.equal(1, code, err)
    assert.are.equal(1, stats.components.added)
    assert.are.equal(1, stats.components.errors)
    assert.matches("component /process_file/b.md failed: [^\n]*b.md: "
                   .. "permission denied", err)
    assert.are.equal("a.md|A\n", rows())
  end)

end)
