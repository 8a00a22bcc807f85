-- The examples run as a user runs them, from a copy of their folder.
local helpers = require "test.spec.helpers"
local ph = require "test.spec.pipeline_helpers"
local cjson = require "cjson"

local q = helpers.q

local function copy_example(name)
  local dir = helpers.tmpdir()
  os.execute(("cp -r %s/examples/%s/. %s && rm -rf %s/.tide %s/out")
    :format(q(helpers.root), name, q(dir), q(dir), q(dir)))
  return dir
end

local function update(dir)
  local out, err, code = ph.tide(dir, "update main.lua --json")
  assert.are.equal(0, code, err)
  return cjson.decode(out)
end

local function sql(db, query)
  local out, err, code = helpers.run(("sqlite3 -separator '|' %s %s")
    :format(q(db), q(query)))
  assert(code == 0, err)
  return out
end

describe("examples/docs_search", function()
  after_each(helpers.cleanup)

  it("indexes the docs, redoes nothing, and finds text by MATCH", function()
    local dir = copy_example("docs_search")
    local stats = update(dir)
    local chunks = tonumber(sql(dir .. "/out/docs.db",
                                "SELECT count(*) FROM chunks"):match("%d+"))
    assert.are.same({ added = 4, reprocessed = 0, deleted = 0, unchanged = 0,
                      errors = 0 }, stats.components)
    assert.are.equal(chunks, stats.targets.inserted)
    assert.is_true(chunks > 4)
    stats = update(dir)
    assert.are.same({ added = 0, reprocessed = 0, deleted = 0, unchanged = 4,
                      errors = 0 }, stats.components)
    assert.are.same({ inserted = 0, updated = 0, deleted = 0 }, stats.targets)
    assert.are.equal("guide/memoization.md|Logic\noverview.md|What it remembers\n",
      sql(dir .. "/out/docs.db", "SELECT c.file, c.heading FROM chunks_fts"
        .. " JOIN chunks c ON c.rowid = chunks_fts.rowid"
        .. " WHERE chunks_fts MATCH 'fingerprint' ORDER BY c.file"))
    -- Every chunk's line range is exact: its text is those lines.
    local f = assert(io.open(dir .. "/docs/guide/targets.md"))
    local lines = {}
    for l in f:lines("L") do lines[#lines + 1] = l end
    f:close()
    for row in sql(dir .. "/out/docs.db", "SELECT line_start, line_end, "
        .. "hex(text) FROM chunks WHERE file = 'guide/targets.md'"):gmatch("[^\n]+") do
      local a, b, hex = row:match("^(%d+)|(%d+)|(%x*)$")
      local text = helpers.unhex(hex)
      local expected = table.concat(lines, "", tonumber(a), tonumber(b))
      assert.are.equal(expected:sub(1, #text), text)
    end
  end)

  it("reprocesses one edited file and writes only its changed chunks", function()
    local dir = copy_example("docs_search")
    update(dir)
    local path = dir .. "/docs/guide/cli.md"
    local text = helpers.read(path)
    helpers.write(path, text:gsub("forgets the app%.", "forgets the app "
                                  .. "and its state."))
    local stats = update(dir)
    assert.are.same({ added = 0, reprocessed = 1, deleted = 0, unchanged = 3,
                      errors = 0 }, stats.components)
    assert.are.same({ inserted = 0, updated = 1, deleted = 0 }, stats.targets)
  end)
end)

describe("examples/products", function()
  after_each(helpers.cleanup)

  local function edit_section(dir, product, title, body)
    local path = dir .. "/products.jsonl"
    local lines = {}
    for line in io.lines(path) do
      local obj = cjson.decode(line)
      if obj.id == product then
        for _, s in ipairs(obj.sections) do
          if s.title == title then s.body = body end
        end
        line = cjson.encode(obj)
      end
      lines[#lines + 1] = line
    end
    helpers.write(path, table.concat(lines, "\n") .. "\n")
  end

  it("keeps nested rows, section rows and pages in step", function()
    local dir = copy_example("products")
    local stats = update(dir)
    assert.are.same({ added = 4, reprocessed = 0, deleted = 0, unchanged = 0,
                      errors = 0 }, stats.components)
    assert.are.same({ inserted = 18, updated = 0, deleted = 0 }, stats.targets)
    assert.are.same({ calls = 10, hits = 0, misses = 10, errors = 0 },
                    stats.functions.summarize_section)
    local db = dir .. "/out/catalog.db"
    assert.are.equal('mug|[{"sku":"M-S","color":"white","size":"small",'
      .. '"stock":40},{"sku":"M-L","color":"white","size":"large",'
      .. '"stock":25}]||["Overview","Care"]\n',
      sql(db, "SELECT id, variants, image, section_titles FROM products"
        .. " WHERE id = 'mug'"))
    assert.are.equal('{"url":"https://example.com/lamp.png","alt":"A brass '
      .. 'desk lamp","width":640,"height":960}\n',
      sql(db, "SELECT image FROM products WHERE id = 'lamp'"))
    assert.are.equal("kettle#1|Overview|14|A 1.7 litre kettle that boils in "
      .. "three minutes.\n", sql(db, "SELECT id, title, words, summary FROM"
        .. " sections WHERE id = 'kettle#1'"))
    assert.are.equal("lamp#2\n", sql(db, "SELECT s.id FROM sections_fts JOIN"
      .. " sections s ON s.rowid = sections_fts.rowid WHERE sections_fts"
      .. " MATCH 'lumen'"))
    assert.are.equal("# Desk lamp\n\nPrice: 64.00\n\n## Overview\n\nAn "
      .. "articulated arm and a warm LED.\n\n## Specifications\n\n8 W, "
      .. "2700 K, 600 lumen.\n\n## Care\n\nDust with a dry cloth.\n",
      helpers.read(dir .. "/out/pages/lamp.md"))

    stats = update(dir)
    assert.are.equal(4, stats.components.unchanged)
    assert.are.same({ inserted = 0, updated = 0, deleted = 0 }, stats.targets)
  end)

  it("recomputes only the edited section of one product", function()
    local dir = copy_example("products")
    update(dir)
    edit_section(dir, "kettle", "Care", "Descale every week. Never immerse "
                 .. "the base.")
    local stats = update(dir)
    assert.are.same({ added = 0, reprocessed = 1, deleted = 0, unchanged = 3,
                      errors = 0 }, stats.components)
    assert.are.same({ calls = 3, hits = 2, misses = 1, errors = 0 },
                    stats.functions.summarize_section)
    -- The section row and the page; the product row is unchanged.
    assert.are.same({ inserted = 0, updated = 2, deleted = 0 }, stats.targets)
    assert.are.equal("kettle#2|Descale every week.\n", sql(dir
      .. "/out/catalog.db", "SELECT id, summary FROM sections WHERE id ="
      .. " 'kettle#2'"))
    assert.matches("## Care\n\nDescale every week.\n",
                   helpers.read(dir .. "/out/pages/kettle.md"), 1, true)
  end)

  it("removes a product's rows and page with its line", function()
    local dir = copy_example("products")
    update(dir)
    local lines = {}
    for line in io.lines(dir .. "/products.jsonl") do
      if not line:match('"id":"mug"') then lines[#lines + 1] = line end
    end
    helpers.write(dir .. "/products.jsonl", table.concat(lines, "\n") .. "\n")
    local stats = update(dir)
    assert.are.equal(1, stats.components.deleted)
    assert.are.same({ inserted = 0, updated = 0, deleted = 4 }, stats.targets)
    assert.is_nil(helpers.read(dir .. "/out/pages/mug.md"))
    assert.are.equal("0\n", sql(dir .. "/out/catalog.db",
      "SELECT count(*) FROM sections WHERE product = 'mug'"))
  end)

  it("writes the same rows into PostgreSQL with main_postgres.lua",
     function()
    local postgres = require "tide.postgres"
    local pg = require "test.spec.pg_helpers"
    local server, conn = pg.start()
    local ok, failure = pcall(function()
      local err, code
      local dir = copy_example("products")
      local function tide(args)
        return helpers.run(("cd %s && TIDE_PG=%s %s %s"):format(q(dir),
          q(conn), q(helpers.tide), args))
      end
      local out
      out, err, code = tide("update main_postgres.lua --json")
      assert.are.equal(0, code, err)
      local stats = cjson.decode(out)
      assert.are.equal(4, stats.components.added)
      assert.are.same({ inserted = 18, updated = 0, deleted = 0 },
                      stats.targets)
      local r = assert(postgres.query(conn, "SELECT variants FROM products "
        .. "WHERE id = 'mug'"))
      assert.are.same({ { sku = "M-S", color = "white", size = "small",
        stock = 40 }, { sku = "M-L", color = "white", size = "large",
        stock = 25 } }, r.rows[1].variants)
      r = assert(postgres.query(conn, "SELECT id FROM sections WHERE "
        .. "tide_fts @@ websearch_to_tsquery('english', 'lumen')"))
      assert.are.same({ { id = "lamp#2" } }, r.rows)
      local found = assert(postgres.hybrid_search { conn = conn,
        table = "sections", text = "clean with a dry cloth", k = 3 })
      assert.are.equal("lamp#3", found[1].id)
      assert.are.equal(helpers.read(dir .. "/out/pages_pg/lamp.md"),
        "# Desk lamp\n\nPrice: 64.00\n\n## Overview\n\nAn articulated "
        .. "arm and a warm LED.\n\n## Specifications\n\n8 W, 2700 K, 600 "
        .. "lumen.\n\n## Care\n\nDust with a dry cloth.\n")
      out, err, code = tide("drop main_postgres.lua")
      assert.are.equal(0, code, err)
      r = assert(postgres.query(conn, "SELECT to_regclass('products') IS "
        .. "NULL AS gone"))
      assert.is_true(r.rows[1].gone)
    end)
    pg.stop(server)
    assert(ok, failure)
  end)
end)

describe("examples/changelogs", function()
  after_each(helpers.cleanup)

  -- Three small gzipped changelogs in a folder of the spec's own.
  local function changelogs(dir)
    local entries = {
      ["alpha"] = "alpha (1.1-1) unstable; urgency=low\n\n  * Two words.\n\n"
        .. " -- A <a@example.org>  Mon, 01 Jan 2024 00:00:00 +0000\n\n"
        .. "alpha (1.0-1) unstable; urgency=low\n\n  * One.\n\n"
        .. " -- A <a@example.org>  Mon, 01 Jan 2023 00:00:00 +0000\n",
      ["beta"] = "beta (2.0) unstable; urgency=low\n\n  * Three more words.\n\n"
        .. " -- B <b@example.org>  Mon, 01 Jan 2024 00:00:00 +0000\n",
    }
    for pkg, text in pairs(entries) do
      helpers.write(("%s/doc/%s/changelog.Debian"):format(dir, pkg), text)
      os.execute(("gzip -n %s"):format(q(("%s/doc/%s/changelog.Debian")
        :format(dir, pkg))))
    end
    helpers.write(dir .. "/doc/gamma/README", "not a changelog")
  end

  local function run(dir, args)
    local out, err, code = helpers.run(("cd %s && CHANGELOGS_DIR=%s %s "
      .. "update main.lua --json %s"):format(q(dir), q(dir .. "/doc"),
      q(helpers.tide), args or ""))
    assert.are.equal(0, code, err)
    return cjson.decode(out)
  end

  it("indexes the entries with gzip and parallel word counts", function()
    local one, two = copy_example("changelogs"), copy_example("changelogs")
    changelogs(one)
    changelogs(two)
    local s1 = run(one, "--jobs 1")
    local s2 = run(two, "--jobs 2")
    s1.elapsed_ms, s2.elapsed_ms = nil, nil
    assert.are.same(s1, s2)
    assert.are.equal(2, s1.components.added)
    assert.are.equal(3, s1.targets.inserted)
    assert.are.equal(2, s1.functions.gunzip.calls)
    assert.are.equal(3, s1.functions.count_words.calls)
    -- Words of each entry's text: "*" counts as one.
    local want = "alpha|1.0-1|2\nalpha|1.1-1|3\nbeta|2.0|4\n"
    for _, dir in ipairs { one, two } do
      assert.are.equal(want, sql(dir .. "/out/changelogs.db",
        "SELECT binary, version, words FROM entries ORDER BY 1, 2"))
    end
    local again = run(one)
    assert.are.same({ added = 0, reprocessed = 0, deleted = 0,
                      unchanged = 2, errors = 0 }, again.components)
  end)
end)

describe("examples/embed_host", function()
  after_each(helpers.cleanup)

  it("runs a live pipeline inside a 60-frame loop and applies a change "
     .. "within its frames", function()
    local dir = copy_example("embed_host")
    local host = helpers.root .. "/" .. helpers.build .. "/examples/embed_host"
    -- A note written a second after the start, while the frames run.
    os.execute(("(sleep 1; printf '# Written live\\n' >%s/docs/live.md) "
      .. ">/dev/null 2>&1 &"):format(q(dir)))
    local out, err, code = helpers.run(("cd %s && %s main.lua 3")
      :format(q(dir), q(host)))
    assert.are.equal(0, code, err)
    out = out:gsub("\r", "\n")
    assert.matches("caught up: 2 added, 0 unchanged; watching", out)
    assert.matches("cycle %d+: 1 added, 0 reprocessed, 0 deleted", out)
    local frames = tonumber(out:match("\n(%d+) frames, %d+ cycles; longest "
      .. "tide step"))
    assert.is_true(frames > 100, "only " .. tostring(frames) .. " frames")
    assert.are.equal("live.md|Written live\n",
      sql(dir .. "/out/notes.db",
          "SELECT path, title FROM notes WHERE path = 'live.md'"))
  end)
end)

describe("examples/semantic_search", function()
  after_each(helpers.cleanup)

  it("indexes Markdown, HTML and gzipped documents and finds them by "
     .. "hybrid search, with no model", function()
    local dir = copy_example("semantic_search")
    local docs = helpers.tmpdir()
    helpers.write(docs .. "/garden.md", "# Garden\n\nTomatoes need sun, "
      .. "water and a stake to climb.\n\nBasil grows beside them.\n")
    helpers.write(docs .. "/ships.html", "<html><head><title>Ships</title>"
      .. "</head><body><h1>Sailing ships</h1><p>A schooner has two masts "
      .. "and fore-and-aft sails.</p><script>var x = 'tomatoes';</script>"
      .. "</body></html>")
    helpers.write(docs .. "/kitchen.txt", "not indexed: not a document type")
    helpers.write(docs .. "/bread.md", "# Bread\n\nKnead the dough, let it "
      .. "rise, bake it hot.\n")
    os.execute("gzip " .. q(docs .. "/bread.md"))
    local env = "TIDE_DOCS=" .. q(docs) .. " TIDE_EMBED_URL= "
    local out, err, code = helpers.run(("cd %s && %s %s update main.lua --json")
      :format(q(dir), env, helpers.tide))
    assert.are.equal(0, code, err)
    local report = cjson.decode(out)
    assert.are.equal(3, report.components.added)
    assert.are.equal("bread.md.gz|1\ngarden.md|1\nships.html|1\n",
      sql(dir .. "/out/search.db", "SELECT file, count(*) FROM chunks "
        .. "GROUP BY file ORDER BY file"))
    assert.are.equal("# Bread\n\nKnead the dough, let it rise, bake it "
      .. "hot.\n\n# Sailing ships\n\nA schooner has two masts and "
      .. "fore-and-aft sails.\n\n", sql(dir .. "/out/search.db", "SELECT "
        .. "text FROM chunks WHERE file IN ('bread.md.gz', 'ships.html') "
        .. "ORDER BY file"))
    -- The script's text is not indexed.
    assert.are.equal("0\n", sql(dir .. "/out/search.db", "SELECT count(*) "
      .. "FROM chunks WHERE text LIKE '%var x%'"))
    out, err, code = helpers.run(("cd %s && %s %s run search.lua "
      .. "'how many masts does a schooner have' 2"):format(q(dir), env,
      helpers.tide))
    assert.are.equal(0, code, err)
    assert.matches("^1%. ships%.html:%d+%-%d+  %(score [%d.]+; vector rank 1, "
      .. "text rank 1%)\n   # Sailing ships A schooner has two masts", out)
    local again = cjson.decode((helpers.run(("cd %s && %s %s update main.lua "
      .. "--json"):format(q(dir), env, helpers.tide))))
    assert.are.equal(3, again.components.unchanged)
  end)

  it("sends a long document's chunks to an embedding server in batches",
     function()
    local server = require("test.spec.model_helpers").start("--dims 16")
    finally(server.stop)
    local dir = copy_example("semantic_search")
    local docs = helpers.tmpdir()
    local parts = {}
    for i = 1, 200 do
      parts[i] = ("## Section %d\n\n%s\n"):format(i,
        ("Words of section " .. i .. ", told at length. "):rep(20))
    end
    helpers.write(docs .. "/long.md", "# Long\n\n" .. table.concat(parts))
    local env = ("TIDE_DOCS=%s TIDE_EMBED_URL=%s/v1 TIDE_EMBED_MODEL=m "
      .. "TIDE_EMBED_DIMS=16"):format(q(docs), server.url)
    local out, err, code = helpers.run(("cd %s && %s %s update main.lua --json")
      :format(q(dir), env, helpers.tide))
    assert.are.equal(0, code, err)
    assert.are.equal(1, cjson.decode(out).components.added)
    local chunks = tonumber(sql(dir .. "/out/search.db",
                                "SELECT count(*) FROM chunks"))
    assert.is_true(chunks >= 200, chunks)
    -- Not a request a chunk, each waiting for the last: the embedder's
    -- batches (64 texts at most) carry the document's chunks together.
    local stats = server.stats()
    assert.is_true(stats.requests <= chunks // 16, stats.requests)
  end)
end)
