-- The SQLite connector: the sqlite.table target type (setup, apply, drop)
-- and the sqlite.rows source, on real database files checked with the
-- sqlite3 command-line tool.
local helpers = require "test.spec.helpers"
local tide = require "tide"
local sqlite = require "tide.sqlite"

local q = helpers.q
local target = sqlite.target

-- tide.engine is written elsewhere; a stand-in records what sqlite.table
-- declares so the specs can check the handle and reuse its spec.
local engine = {}
function engine.declare_target(tt, spec)
  local h = { target_type = tt, spec = spec, changes = {} }
  function h:declare(key, value)
    self.changes[#self.changes + 1] = { key = key, value = value }
  end
  return h
end
-- What sqlite.rows tells the engine of the file it reads (watched in live
-- mode, a dependency in a memoized scope): nothing to do outside a run.
function engine.file_listed() end

-- Runs one query with the sqlite3 tool; rows as "a|b" lines.
local function sql(db, query)
  local out, err, code = helpers.run("sqlite3 " .. q(db) .. " " .. q(query))
  assert(code == 0, err)
  return out
end

local function err_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok)
  return err
end

local function pattern(s) return (s:gsub("%p", "%%%0")) end

local Chunk = tide.record("Chunk", {
  { "id", "string", key = true },
  { "file", "string" },
  { "line", "integer" },
  { "text", "string" },
})

local Section = tide.record("Section", {
  { "title", "string" },
  { "note", tide.optional("string") },
})

local Product = tide.record("Product", {
  { "shop", "string", key = true },
  { "sku", "integer", key = true },
  { "price", "number" },
  { "active", "boolean" },
  { "thumb", "bytes" },
  { "tags", tide.list("string") },
  { "sections", tide.list(Section) },
  { "extra", tide.optional("json") },
  { "embedding", tide.optional(tide.vector(3)) },
  { "rating", tide.optional("integer") },
})

describe("tide.sqlite", function()
  local saved_engine, dir

  before_each(function()
    saved_engine = package.loaded["tide.engine"]
    package.loaded["tide.engine"] = engine
    dir = helpers.tmpdir()
  end)

  after_each(function()
    package.loaded["tide.engine"] = saved_engine
    helpers.cleanup()
  end)

  -- The spec and the handle sqlite.table builds.
  local function table_of(opts)
    opts.db = opts.db or dir .. "/out/test.db"
    local h = sqlite.table(opts)
    return h.target.spec, h
  end

  local function chunk_spec(extra)
    local opts = { name = "chunks", schema = Chunk }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return (table_of(opts))
  end

  local function up(rt, v) return { key = (function()
    local k = {}
    for i, name in ipairs(rt.keys) do k[i] = v[name] end
    return k
  end)(), value = rt(v) } end

  local function chunk(id, text, line)
    return up(Chunk, { id = id, file = "a.md", line = line or 1,
                       text = text or "text of " .. id })
  end

  local function del(...) return { key = { ... } } end

  describe("sqlite.table", function()
    it("builds a plain-data spec with a project-relative path", function()
      local spec, h = table_of { db = "out/../out/docs.db", name = "chunks",
                                 schema = Chunk, fts = { "text" } }
      assert.are.equal("out/docs.db", spec.db)
      assert.are.same({
        db = "out/docs.db", name = "chunks", schema = Chunk.schema,
        fts = { "text" },
        fields = {
          { name = "id", type = "string", key = true },
          { name = "file", type = "string", key = false },
          { name = "line", type = "integer", key = false },
          { name = "text", type = "string", key = false },
        },
      }, spec)
      assert.are.equal(target, h.target.target_type)
      -- Plain data: it survives the canonical encoding unchanged.
      assert.are.same(spec, tide.cbor.decode(tide.cbor.encode(spec)))
    end)

    it("names the container by database path and table", function()
      local spec = chunk_spec { db = "/tmp/x/docs.db" }
      assert.are.equal("sqlite.table", target.name)
      assert.are.equal("/tmp/x/docs.db#chunks", target.identity(spec))
      assert.are.equal("chunks", target.short_name(spec))
    end)

    it("declares rows checked against the schema, keyed by key fields",
       function()
      local _, h = table_of { name = "products", schema = Product }
      local v = h:row { shop = "s", sku = 2.0, price = 3, active = false,
                        thumb = "", tags = {}, sections = {} }
      assert.are.equal(Product, tide.type_of(v))
      assert.are.equal(1, #h.target.changes)
      assert.are.same({ "s", 2 }, h.target.changes[1].key)
      assert.are.equal("integer", math.type(h.target.changes[1].key[2]))
      assert.are.equal(v, h.target.changes[1].value)
      local err = err_of(h.row, h, { shop = "s", sku = 1, price = "x" })
      assert.matches("Product.price: expected number, got string$", err)
    end)

    it("raises a record error at the caller's line", function()
      local _, h = table_of { name = "chunks", schema = Chunk }
      local ok, err = pcall(function()
        h:row { id = 1 } -- this line
      end)
      assert.is_false(ok)
      assert.matches("sqlite_spec.lua:%d+: Chunk.id: expected string, got "
        .. "integer 1$", err)
    end)

    it("counts as a memo argument by its identity", function()
      local _, a = table_of { name = "chunks", schema = Chunk }
      local _, b = table_of { name = "chunks", schema = Chunk }
      local _, c = table_of { name = "other", schema = Chunk }
      a:row { id = "x", file = "f", line = 1, text = "t" }
      assert.are.equal(tide.fingerprint(a), tide.fingerprint(b))
      assert.are_not.equal(tide.fingerprint(a), tide.fingerprint(c))
    end)

    it("rejects bad options with clear messages", function()
      local Keyless = tide.record("Keyless", { { "a", "string" } })
      local OptKey = tide.record("OptKey", {
        { "a", tide.optional("string"), key = true } })
      local cases = {
        { nil, "sqlite.table: expected a table { db = path, name = table "
          .. "name, schema = record type }" },
        { { db = "x.db", name = "t", schema = Chunk, colour = 1 },
          "sqlite.table: unknown option colour" },
        { { name = "t", schema = Chunk },
          "sqlite.table: db must be the path of a database file" },
        { { db = "x.db", name = "my table", schema = Chunk },
          "sqlite.table: name must be an identifier" },
        { { db = "x.db", name = "sqlite_master", schema = Chunk },
          "sqlite.table: name must not start with sqlite_ (reserved by "
          .. "SQLite)" },
        { { db = "x.db", name = "t", schema = "Chunk" },
          "sqlite.table: schema must be a record type with at least one key "
          .. "field" },
        { { db = "x.db", name = "t", schema = Keyless },
          "sqlite.table: schema must be a record type with at least one key "
          .. "field" },
        { { db = "x.db", name = "t", schema = OptKey },
          "sqlite.table: key field OptKey.a must not be optional" },
        { { db = "x.db", name = "t", schema = Chunk, fts = "text" },
          "sqlite.table: fts must be a list of field names" },
        { { db = "x.db", name = "t", schema = Chunk, fts = { "body" } },
          "sqlite.table: unknown fts column body (not a field of Chunk)" },
        { { db = "x.db", name = "t", schema = Chunk, fts = { "line" } },
          "sqlite.table: fts column line must be a string field" },
        { { db = "x.db", name = "t", schema = Chunk,
            fts = { "text", "text" } },
          "sqlite.table: fts column text listed twice" },
        { { db = "x.db", name = "t", schema = Chunk, busy_timeout = 0 },
          "sqlite.table: busy_timeout must be a positive integer "
          .. "(milliseconds)" },
      }
      package.loaded["tide.engine"] = nil -- needed only once valid
      for _, case in ipairs(cases) do
        local ok, err = pcall(function()
          sqlite.table(case[1]) -- the caller's line
        end)
        assert.is_false(ok)
        assert.are.equal(case[2], err:match("^.-:%d+: (.*)$"))
        assert.matches("sqlite_spec.lua:", err)
      end
    end)
  end)

  describe("setup", function()
    local function columns(spec)
      return sql(spec.db, ("SELECT name, type, \"notnull\", pk FROM "
        .. "pragma_table_info('%s')"):format(spec.name))
    end

    it("creates the table, folders and WAL-mode file", function()
      local spec = table_of { name = "products", schema = Product }
      assert.is_true(target.setup(spec, nil))
      assert.are.equal(
        "shop|TEXT|1|1\nsku|INTEGER|1|2\nprice|REAL|1|0\nactive|INTEGER|1|0\n"
        .. "thumb|BLOB|1|0\ntags|TEXT|1|0\nsections|TEXT|1|0\n"
        .. "extra|TEXT|0|0\nembedding|BLOB|0|0\nrating|INTEGER|0|0\n",
        columns(spec))
      assert.are.equal("wal\n", sql(spec.db, "PRAGMA journal_mode"))
    end)

    it("keeps an unchanged table and is idempotent", function()
      local spec = chunk_spec()
      assert.is_true(target.setup(spec, nil))
      target.apply(spec, { chunk("a"), chunk("b") })
      assert.is_true(target.setup(spec, spec))
      assert.is_true(target.setup(spec, spec))
      assert.are.equal("2\n", sql(spec.db, "SELECT count(*) FROM chunks"))
    end)

    it("adds a field in place, keeping the rows", function()
      local spec = chunk_spec()
      target.setup(spec, nil)
      target.apply(spec, { chunk("a"), chunk("b") })
      local Chunk2 = tide.record("Chunk", {
        { "id", "string", key = true }, { "file", "string" },
        { "line", "integer" }, { "text", "string" },
        { "score", tide.optional("number") }, { "lang", "string" },
        { "tags", tide.list("string") },
      })
      local spec2 = table_of { name = "chunks", schema = Chunk2 }
      assert.is_true(target.setup(spec2, spec))
      assert.are.equal("a|a.md|null||[]\nb|a.md|null||[]\n", sql(spec.db,
        "SELECT id, file, typeof(score), lang, tags FROM chunks ORDER BY id"))
      -- A replay after a crash (the engine still holds the old spec).
      assert.is_true(target.setup(spec2, spec))
      target.apply(spec2, { up(Chunk2, { id = "a", file = "f", line = 2,
        text = "t", score = 0.5, lang = "en", tags = { "x" } }) })
      assert.are.equal("a|f|2|t|0.5|en|[\"x\"]\nb|a.md|1|text of b|||[]\n",
        sql(spec.db, "SELECT * FROM chunks ORDER BY id"))
    end)

    it("drops a removed field in place, keeping the rows", function()
      local Wide = tide.record("Chunk", {
        { "id", "string", key = true }, { "file", "string" },
        { "line", "integer" }, { "text", "string" }, { "old", "string" },
      })
      local wide = table_of { name = "chunks", schema = Wide,
                              fts = { "text" } }
      target.setup(wide, nil)
      target.apply(wide, { up(Wide, { id = "a", file = "f", line = 1,
                                      text = "kept words", old = "o" }) })
      local spec = chunk_spec { fts = { "text" } }
      assert.is_true(target.setup(spec, wide))
      assert.are.equal("id|TEXT|1|1\nfile|TEXT|1|0\nline|INTEGER|1|0\n"
        .. "text|TEXT|1|0\n", columns(spec))
      assert.are.equal("a|f|1|kept words\n",
                       sql(spec.db, "SELECT * FROM chunks"))
      assert.are.equal("a\n", sql(spec.db, "SELECT id FROM chunks JOIN "
        .. "chunks_fts ON chunks.rowid = chunks_fts.rowid "
        .. "WHERE chunks_fts MATCH 'kept'"))
    end)

    it("recreates an empty table when a key changes", function()
      local spec = chunk_spec()
      target.setup(spec, nil)
      target.apply(spec, { chunk("a") })
      local ByLine = tide.record("Chunk", {
        { "id", "string" }, { "file", "string", key = true },
        { "line", "integer", key = true }, { "text", "string" },
      })
      local spec2 = table_of { name = "chunks", schema = ByLine }
      assert.is_false(target.setup(spec2, spec))
      assert.are.equal("0\n", sql(spec.db, "SELECT count(*) FROM chunks"))
      assert.are.equal("id|TEXT|1|0\nfile|TEXT|1|1\nline|INTEGER|1|2\n"
        .. "text|TEXT|1|0\n", columns(spec2))
      -- Rerun after the engine recorded the new spec: nothing to redo.
      target.apply(spec2, { up(ByLine, { id = "a", file = "f", line = 1,
                                         text = "t" }) })
      assert.is_true(target.setup(spec2, spec2))
      assert.are.equal("1\n", sql(spec.db, "SELECT count(*) FROM chunks"))
    end)

    it("recreates the table when a field changes type", function()
      local spec = chunk_spec()
      target.setup(spec, nil)
      target.apply(spec, { chunk("a") })
      for _, t in ipairs { "number", tide.optional("integer"),
                           tide.list("integer") } do
        local Changed = tide.record("Chunk", {
          { "id", "string", key = true }, { "file", "string" },
          { "line", t }, { "text", "string" },
        })
        local spec2 = table_of { name = "chunks", schema = Changed }
        assert.is_false(target.setup(spec2, spec))
        assert.are.equal("0\n", sql(spec.db, "SELECT count(*) FROM chunks"))
        assert.is_true(target.setup(spec, spec2) == false)
        target.apply(spec, { chunk("a") })
      end
      -- Same SQL column, other described type: list(string) vs json.
      local L1 = tide.record("L", { { "k", "string", key = true },
                                    { "v", tide.list("string") } })
      local L2 = tide.record("L", { { "k", "string", key = true },
                                    { "v", "json" } })
      local s1 = table_of { name = "l", schema = L1 }
      local s2 = table_of { name = "l", schema = L2 }
      target.setup(s1, nil)
      target.apply(s1, { up(L1, { k = "a", v = { "x" } }) })
      assert.is_false(target.setup(s2, s1))
      assert.are.equal("0\n", sql(s1.db, "SELECT count(*) FROM l"))
    end)

    it("recreates the table when it disappeared", function()
      local spec = chunk_spec()
      target.setup(spec, nil)
      sql(spec.db, "DROP TABLE chunks")
      assert.is_false(target.setup(spec, spec))
      target.apply(spec, { chunk("a") })
      assert.are.equal("1\n", sql(spec.db, "SELECT count(*) FROM chunks"))
    end)

    it("never destroys a table it did not create", function()
      local spec = chunk_spec()
      os.execute("mkdir -p " .. q(dir .. "/out"))
      sql(spec.db, "CREATE TABLE chunks (id TEXT PRIMARY KEY, body TEXT); "
        .. "INSERT INTO chunks VALUES ('mine', 'precious')")
      local err = err_of(target.setup, spec, nil)
      assert.are.equal(("sqlite.table chunks in %s: table chunks exists and "
        .. "was not created by tide; set adopt = true in sqlite.table{} to "
        .. "let tide write into it (it then deletes only the rows it wrote), "
        .. "or choose another name"):format(spec.db), err)
      spec.adopt = true
      -- Adopted, it must have the record type's columns: each difference
      -- is said, with what the type wants.
      assert.are.equal(("sqlite.table chunks in %s: table chunks exists and "
        .. "was not created by tide and its columns differ from Chunk's "
        .. "(body is not a field of Chunk; file is missing (Chunk's is TEXT "
        .. "NOT NULL); id is TEXT PRIMARY KEY, Chunk's is TEXT NOT NULL "
        .. "PRIMARY KEY; line is missing (Chunk's is INTEGER NOT NULL); text "
        .. "is missing (Chunk's is TEXT NOT NULL)); make them Chunk's, or "
        .. "choose another name"):format(spec.db),
        err_of(target.setup, spec, nil))
      assert.are.equal("mine|precious\n", sql(spec.db,
        "SELECT * FROM chunks"))
      -- Nothing else was changed either (one transaction).
      assert.are.equal("chunks\n", sql(spec.db,
        "SELECT name FROM sqlite_master WHERE type <> 'index'"))
    end)

    it("refuses a view or a foreign full-text table of the same name",
       function()
      local spec = chunk_spec { fts = { "text" } }
      os.execute("mkdir -p " .. q(dir .. "/out"))
      sql(spec.db, "CREATE VIEW chunks AS SELECT 1 AS id")
      assert.matches("table chunks exists and was not created by tide %(it "
        .. "is a view%)", err_of(target.setup, spec, nil))
      sql(spec.db, "DROP VIEW chunks; CREATE VIRTUAL TABLE chunks_fts "
        .. "USING fts5(body)")
      assert.matches("table chunks_fts exists and was not created by tide",
                     err_of(target.setup, spec, nil))
      assert.are.equal("chunks_fts\n", sql(spec.db, "SELECT name FROM "
        .. "sqlite_master WHERE type = 'table' AND name = 'chunks_fts'"))
    end)

    it("adopts a table of exactly the same shape only when told to",
       function()
      local spec = chunk_spec()
      target.setup(spec, nil)
      target.apply(spec, { chunk("a") })
      assert.matches("set adopt = true", err_of(target.setup, spec, nil), 1,
                     true)
      spec.adopt = true
      assert.is_true(target.setup(spec, nil))
      assert.are.equal("1\n", sql(spec.db, "SELECT count(*) FROM chunks"))
      -- Dropping an adopted table leaves it (tide deletes its rows first).
      target.drop(spec)
      assert.are.equal("1\n", sql(spec.db, "SELECT count(*) FROM chunks"))
    end)

    it("falls back to recreating when SQLite cannot drop a column",
       function()
      local Wide = tide.record("Chunk", {
        { "id", "string", key = true }, { "file", "string" },
        { "line", "integer" }, { "text", "string" }, { "old", "string" },
      })
      local wide = table_of { name = "chunks", schema = Wide }
      target.setup(wide, nil)
      sql(wide.db, "CREATE INDEX chunks_old ON chunks(old)")
      target.apply(wide, { up(Wide, { id = "a", file = "f", line = 1,
                                      text = "t", old = "o" }) })
      assert.is_false(target.setup(chunk_spec(), wide))
      assert.are.equal("0\n", sql(wide.db, "SELECT count(*) FROM chunks"))
    end)
  end)

  describe("apply", function()
    local function dump(spec)
      return sql(spec.db, "SELECT * FROM " .. spec.name .. " ORDER BY 1, 2")
    end

    it("writes exact rows", function()
      local spec = chunk_spec()
      target.setup(spec, nil)
      target.apply(spec, { chunk("b", "bee", 2), chunk("a", "ay", 1) })
      assert.are.equal("a|a.md|1|ay\nb|a.md|2|bee\n", dump(spec))
      assert.are.equal("text|integer\n", sql(spec.db,
        "SELECT DISTINCT typeof(text), typeof(line) FROM chunks"))
    end)

    it("upserts: replaying a batch gives the same table", function()
      local spec = chunk_spec { fts = { "text" } }
      target.setup(spec, nil)
      local batch = { chunk("a", "one"), chunk("b", "two"), del("zz") }
      target.apply(spec, batch)
      local before = dump(spec)
      target.apply(spec, batch)
      target.apply(spec, batch)
      assert.are.equal(before, dump(spec))
      assert.are.equal("a|a.md|1|one\nb|a.md|1|two\n", before)
      assert.are.equal("1\n", sql(spec.db, "SELECT count(*) FROM chunks_fts "
        .. "WHERE chunks_fts MATCH 'one'"))
    end)

    it("updates and deletes by key", function()
      local spec = chunk_spec()
      target.setup(spec, nil)
      target.apply(spec, { chunk("a", "one"), chunk("b", "two"),
                           chunk("c", "three") })
      target.apply(spec, { chunk("b", "TWO", 7), del("a"), del("missing") })
      assert.are.equal("b|a.md|7|TWO\nc|a.md|1|three\n", dump(spec))
      target.apply(spec, {})
      target.apply(spec, { del("b"), del("c") })
      assert.are.equal("", dump(spec))
    end)

    it("maps every field type to its column", function()
      local spec = table_of { name = "products", schema = Product }
      target.setup(spec, nil)
      target.apply(spec, {
        up(Product, {
          shop = "s", sku = 1, price = 2, active = true, thumb = "\0\1\255",
          tags = { "new", "on \"sale\"\n" },
          sections = { { title = "Intro", note = "n" }, { title = "Más" } },
          extra = { z = 1, a = { 1, 2.5, "x", true }, m = { b = {}, a = 1 },
                    [3] = "three" },
          embedding = { 1.5, -2, 0.1 },
          rating = 5,
        }),
        up(Product, { shop = "s", sku = 2, price = 0.1, active = false,
                      thumb = "", tags = {}, sections = {} }),
      })
      assert.are.equal(
        "s|1|2.0|real|1|integer|0001FF|blob|"
        .. '["new","on \\"sale\\"\\n"]|'
        .. '[{"title":"Intro","note":"n"},{"title":"Más","note":null}]|'
        .. '{"3":"three","a":[1,2.5,"x",true],"m":{"a":1,"b":{}},"z":1}|'
        .. "0000C03F000000C0CDCCCC3D|5\n"
        .. "s|2|0.1|real|0|integer||blob|[]|[]|null|null|null\n",
        sql(spec.db, "SELECT shop, sku, printf('%.1f', price) AS p, "
          .. "typeof(price), active, typeof(active), hex(thumb), "
          .. "typeof(thumb), tags, sections, "
          .. "coalesce(extra, typeof(extra)), "
          .. "iif(embedding IS NULL, 'null', hex(embedding)), "
          .. "coalesce(rating, typeof(rating)) FROM products ORDER BY sku"))
      assert.are.equal("0.1\n", sql(spec.db,
        "SELECT price FROM products WHERE sku = 2"))
      assert.are.equal("x|Más\n", sql(spec.db, "SELECT "
        .. "json_extract(extra, '$.a[2]'), json_extract(sections, "
        .. "'$[1].title') FROM products WHERE sku = 1"))
    end)

    it("writes equal values as equal JSON text", function()
      local J = tide.record("J", { { "k", "string", key = true },
                                   { "v", "json" },
                                   { "n", tide.list("number") },
                                   { "b", tide.list("bytes") } })
      local spec = table_of { name = "j", schema = J }
      target.setup(spec, nil)
      local a, b = {}, {}
      for i = 1, 50 do a["k" .. i] = i end
      for i = 50, 1, -1 do b["k" .. i] = i end
      target.apply(spec, {
        up(J, { k = "a", v = a, n = {}, b = {} }),
        up(J, { k = "b", v = b, n = { 1, 1.0, -0.0, 1e300, 0.1 + 0.2,
                                      1 / 0, 2 ^ 53 },
                b = { "", "f", "fo", "foo", "\0\255" } }),
        up(J, { k = "c", v = "a\1\t\\/é", n = { 3 }, b = {} }),
      })
      assert.are.equal("1\n", sql(spec.db, "SELECT count(DISTINCT v) FROM j "
        .. "WHERE k IN ('a', 'b')"))
      assert.are.equal('[1.0,1.0,0.0,1e+300,0.30000000000000004,null,'
        .. '9007199254740992.0]|["","Zg==","Zm8=","Zm9v","AP8="]\n'
        .. '"a\\u0001\\t\\\\/é"|[3.0]\n',
        sql(spec.db, "SELECT n, b FROM j WHERE k = 'b'; "
          .. "SELECT v, n FROM j WHERE k = 'c'"))
    end)

    -- Tables with an FTS index stage their rows (one statement each for
    -- deletes and upserts); both paths must mean the same.
    for _, fts in ipairs { false, true } do
      local label = fts and " (staged, with fts)" or ""

      it("applies changes of one key in batch order" .. label, function()
        local spec = chunk_spec { fts = fts and { "text" } or nil }
        target.setup(spec, nil)
        target.apply(spec, { chunk("a", "old"), chunk("b", "old") })
        target.apply(spec, {
          chunk("a", "first"), chunk("a", "second"), -- last wins
          del("b"), chunk("b", "back"),              -- deleted, then back
          chunk("c", "gone"), del("c"),              -- written, then deleted
          del("d"), chunk("d", "new"), chunk("d", "newer"),
        })
        assert.are.equal("a|a.md|1|second\nb|a.md|1|back\nd|a.md|1|newer\n",
                         dump(spec))
        if fts then
          assert.are.equal("a\n", sql(spec.db, "SELECT id FROM chunks "
            .. "WHERE rowid IN (SELECT rowid FROM chunks_fts WHERE "
            .. "chunks_fts MATCH 'second')"))
          assert.are.equal("", sql(spec.db, "SELECT rowid FROM chunks_fts "
            .. "WHERE chunks_fts MATCH 'old OR first OR gone'"))
        end
      end)

      it("writes composite keys and deletes by them" .. label, function()
        local spec = table_of { name = "products", schema = Product,
                                fts = fts and { "shop" } or nil }
        target.setup(spec, nil)
        local function p(shop, sku, price)
          return up(Product, { shop = shop, sku = sku, price = price or 1,
            active = true, thumb = "", tags = {}, sections = {} })
        end
        target.apply(spec, { p("a", 1), p("a", 2), p("b", 1), p("b", 2) })
        target.apply(spec, { del("a", 1), p("b", 1, 5), del("b", 9) })
        assert.are.equal("a|2|1.0\nb|1|5.0\nb|2|1.0\n",
          sql(spec.db, "SELECT shop, sku, printf('%.1f', price) FROM "
            .. "products ORDER BY 1, 2"))
      end)

      it("writes a batch in one transaction, all or nothing" .. label,
         function()
        local spec = chunk_spec { fts = fts and { "text" } or nil }
        target.setup(spec, nil)
        target.apply(spec, { chunk("keep") })
        local bad = { chunk("a"), del("keep"), chunk("b"),
                      { key = { "c" }, value = { id = "c", file = "f",
                                                 line = "x", text = "t" } } }
        local err = err_of(target.apply, spec, bad)
        assert.are.equal(("sqlite.table chunks in %s: change 4: column "
          .. "line: expected integer, got string"):format(spec.db), err)
        local missing = { chunk("a"), { key = { "c" },
                                        value = { id = "c", file = "f" } } }
        assert.matches("change 2: column line: missing value$",
                       err_of(target.apply, spec, missing))
        assert.are.equal("keep\n", sql(spec.db, "SELECT id FROM chunks"))
        -- The connection is usable again afterwards.
        target.apply(spec, { chunk("a") })
        assert.are.equal("a\nkeep\n", sql(spec.db,
          "SELECT id FROM chunks ORDER BY id"))
      end)

      it("reports a database failure naming the db and table" .. label,
         function()
        local spec = chunk_spec { fts = fts and { "text" } or nil }
        target.setup(spec, nil)
        sql(spec.db, "CREATE TRIGGER no_b BEFORE INSERT ON chunks "
          .. "WHEN new.id = 'b' BEGIN SELECT RAISE(ABORT, 'no b here'); END")
        local err = err_of(target.apply, spec, { chunk("a"), chunk("b") })
        assert.are.equal(("sqlite.table chunks in %s: %s: no b here")
          :format(spec.db, fts and "cannot write the rows"
                           or "cannot write a row"), err)
        assert.are.equal("0\n", sql(spec.db, "SELECT count(*) FROM chunks"))
        if fts then
          assert.are.equal("0\n", sql(spec.db, "SELECT count(*) FROM "
            .. "chunks_fts WHERE chunks_fts MATCH 'text'"))
        end
      end)
    end

    it("writes a batch in the background with apply's outcome", function()
      local spec = chunk_spec {}
      target.setup(spec, nil)
      target.apply_send(spec, { chunk("a"), chunk("b"), del("b") })
      target.apply_wait(spec)
      assert.are.equal("a\n", sql(spec.db, "SELECT id FROM chunks"))
      -- A failure on the connection's thread: nothing written, the same
      -- message as apply's, reported once.
      sql(spec.db, "CREATE TRIGGER no_b BEFORE INSERT ON chunks "
        .. "WHEN new.id = 'b' BEGIN SELECT RAISE(ABORT, 'no b here'); END")
      target.apply_send(spec, { chunk("c"), chunk("b") })
      assert.are.equal(("sqlite.table chunks in %s: cannot write a row: no "
        .. "b here"):format(spec.db), err_of(target.apply_wait, spec))
      target.apply_wait(spec)
      assert.are.equal("a\n", sql(spec.db, "SELECT id FROM chunks"))
      -- A row that cannot be converted raises at the send; nothing is sent.
      local bad = { chunk("d"), { key = { "e" }, value = { id = "e",
                    file = "f", line = "x", text = "t" } } }
      assert.are.equal(("sqlite.table chunks in %s: change 2: column line: "
        .. "expected integer, got string"):format(spec.db),
        err_of(target.apply_send, spec, bad))
      target.apply_wait(spec)
      assert.are.equal("a\n", sql(spec.db, "SELECT id FROM chunks"))
    end)

    it("keeps a background failure when the connection is used before "
       .. "the wait", function()
      local spec = chunk_spec {}
      local other = (table_of { name = "other", schema = Chunk })
      target.setup(spec, nil)
      target.setup(other, nil)
      sql(spec.db, "CREATE TRIGGER no_b BEFORE INSERT ON chunks "
        .. "WHEN new.id = 'b' BEGIN SELECT RAISE(ABORT, 'no b here'); END")
      target.apply_send(spec, { chunk("b") })
      -- Another table of the same database, and a check through the same
      -- connection, each wait for the batch out first.
      target.apply_send(other, { chunk("x") })
      assert.is_true(target.exists(spec))
      target.apply_wait(other)
      assert.matches("cannot write a row: no b here$",
                     err_of(target.apply_wait, spec))
      assert.are.equal("0\n", sql(spec.db, "SELECT count(*) FROM chunks"))
      assert.are.equal("x\n", sql(spec.db, "SELECT id FROM other"))
    end)

    it("refuses a second send before the first is waited for", function()
      local db = assert(require("tide.core").sqlite_open(dir .. "/send.db",
                                                      "create"))
      assert(db:exec("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)"))
      local plan = { table = "t", keys = { 1 }, columns = {
        { name = "k", kind = "text", nullable = false, type = "string" },
        { name = "v", kind = "integer", nullable = true, type = "integer" } } }
      local rows = { { key = { "a" }, value = { k = "a", v = 1 } } }
      assert(db:apply_send(plan, rows))
      assert.matches("db:apply_send: the outcome of the batch sent before "
        .. "was not waited for %(db:apply_wait%)$",
        err_of(db.apply_send, db, plan, rows))
      assert.is_true(db:apply_wait())
      assert.is_true(db:apply_wait()) -- nothing left to report
      db:close()
    end)

    it("names the column of a value that does not fit it", function()
      local V = tide.record("V", { { "k", "string", key = true },
                                   { "emb", tide.vector(2) },
                                   { "j", tide.optional("json") },
                                   { "l", tide.optional(tide.list(Section)) },
                                   { "vs", tide.optional(
                                     tide.list(tide.vector(2))) } })
      local spec = table_of { name = "v", schema = V }
      target.setup(spec, nil)
      local cycle = {}
      cycle.self = cycle
      local cases = {
        { { k = "a", emb = { 1 } },
          "column emb: expected a vector of 2 numbers, got 1" },
        { { k = "a", emb = { 1, "x" } },
          "column emb: expected a number at [2], got string" },
        { { k = "a", emb = "12" },
          "column emb: expected a vector, got string" },
        -- a record changed after it was checked must not store an
        -- infinity either
        { { k = "a", emb = { 1, 0 / 0 } },
          "column emb: expected a finite number within float32 range at "
          .. "[2], got NaN" },
        { { k = "a", emb = { -math.huge, 1 } },
          "column emb: expected a finite number within float32 range at "
          .. "[1], got -inf" },
        { { k = "a", emb = { 1, 1e39 } },
          "column emb: expected a finite number within float32 range at "
          .. "[2], got 1e+39" },
        { { k = "a", emb = { 1, 2 }, vs = { { 1, 2 }, { 3, math.huge } } },
          "column vs: expected a finite number within float32 range at "
          .. "[2], got inf" },
        { { k = "a", emb = { 1, 2 }, j = { print } },
          "column j: expected json, got function" },
        { { k = "a", emb = { 1, 2 }, j = cycle },
          "column j: json nested too deeply (a cycle?)" },
        { { k = "a", emb = { 1, 2 }, l = { { title = 1 } } },
          "column l: expected string, got integer" },
        { { k = 1, emb = { 1, 2 } },
          "column k: expected string, got integer" },
      }
      for _, case in ipairs(cases) do
        local err = err_of(target.apply, spec, { { key = { "a" },
                                                   value = case[1] } })
        assert.are.equal(("sqlite.table v in %s: change 1: %s")
          :format(spec.db, case[2]), err)
      end
      assert.matches(": change 2 is not a table$",
                     err_of(target.apply, spec, { del("a"), 5 }))
      assert.matches(": change 1: key must be a list$",
                     err_of(target.apply, spec, { { key = "a" } }))
      assert.are.equal("0\n", sql(spec.db, "SELECT count(*) FROM v"))
    end)

    it("does not confuse its staging table with a user's", function()
      local T = tide.record("T", { { "k", "string", key = true },
                                   { "v", "string" } })
      local spec = table_of { name = "tide_stage", schema = T,
                              fts = { "v" } }
      target.setup(spec, nil)
      target.apply(spec, { up(T, { k = "a", v = "x" }) })
      target.apply(spec, { up(T, { k = "b", v = "y" }), del("a") })
      assert.are.equal("b|y\n", sql(spec.db, "SELECT * FROM tide_stage"))
    end)

    it("waits for a lock, then reports it", function()
      local spec = chunk_spec { busy_timeout = 50 }
      target.setup(spec, nil)
      local other = assert(sqlite.open(spec.db))
      assert(other:exec("BEGIN IMMEDIATE"))
      local err = err_of(target.apply, spec, { chunk("a") })
      assert.are.equal(("sqlite.table chunks in %s: cannot start a write "
        .. "transaction: database is locked"):format(spec.db), err)
      assert(other:exec("COMMIT"))
      target.apply(spec, { chunk("a") })
      other:close()
      assert.are.equal("1\n", sql(spec.db, "SELECT count(*) FROM chunks"))
    end)

    it("lets another connection read while it writes (WAL)", function()
      local spec = chunk_spec { busy_timeout = 50 }
      target.setup(spec, nil)
      target.apply(spec, { chunk("a") })
      local reader = assert(sqlite.open(spec.db, "read"))
      assert(reader:exec("BEGIN"))
      assert.are.same({ { n = 1 } },
        (reader:rows("SELECT count(*) AS n FROM chunks")))
      -- The reader holds a snapshot; the writer is not blocked by it.
      target.apply(spec, { chunk("b"), chunk("c") })
      assert.are.same({ { n = 1 } },
        (reader:rows("SELECT count(*) AS n FROM chunks")))
      assert(reader:exec("COMMIT"))
      assert.are.same({ { n = 3 } },
        (reader:rows("SELECT count(*) AS n FROM chunks")))
      reader:close()
      -- No transaction is left open between batches.
      assert.are.equal("3\n", sql(spec.db, "BEGIN IMMEDIATE; "
        .. "SELECT count(*) FROM chunks; COMMIT"))
    end)

    it("follows a database file that was replaced", function()
      local spec = chunk_spec()
      target.setup(spec, nil)
      target.apply(spec, { chunk("a") })
      os.execute("rm -f " .. q(spec.db) .. "*")
      assert.is_false(target.setup(spec, spec))
      target.apply(spec, { chunk("b") })
      assert.are.equal("b\n", sql(spec.db, "SELECT id FROM chunks"))
    end)
  end)

  describe("full-text search", function()
    local function match(spec, word)
      return sql(spec.db, ("SELECT c.id FROM chunks_fts f JOIN chunks c "
        .. "ON c.rowid = f.rowid WHERE chunks_fts MATCH '%s' ORDER BY c.id")
        :format(word))
    end

    it("keeps the index in step with upserts and deletes", function()
      local spec = chunk_spec { fts = { "text" } }
      target.setup(spec, nil)
      target.apply(spec, { chunk("a", "the quick fox"),
                           chunk("b", "a lazy dog") })
      assert.are.equal("a\n", match(spec, "quick"))
      assert.are.equal("b\n", match(spec, "dog"))
      target.apply(spec, { chunk("a", "a slow turtle") })
      assert.are.equal("", match(spec, "quick"))
      assert.are.equal("a\n", match(spec, "turtle"))
      target.apply(spec, { chunk("a", "a slow turtle", 9) })
      assert.are.equal("a\n", match(spec, "turtle"))
      target.apply(spec, { del("a"), del("b") })
      assert.are.equal("", match(spec, "turtle"))
      assert.are.equal("", match(spec, "dog"))
      assert.are.equal("ok\n", sql(spec.db, "INSERT INTO chunks_fts"
        .. "(chunks_fts, rank) VALUES ('integrity-check', 1); SELECT 'ok'"))
    end)

    it("indexes existing rows when fts is added or changed", function()
      local Doc = tide.record("Doc", { { "id", "string", key = true },
                                       { "title", "string" },
                                       { "body", tide.optional("string") } })
      local plain = table_of { name = "docs", schema = Doc }
      target.setup(plain, nil)
      target.apply(plain, { up(Doc, { id = "1", title = "red apple",
                                      body = "green leaf" }) })
      local function search(word)
        return sql(plain.db, ("SELECT rowid FROM docs_fts WHERE docs_fts "
          .. "MATCH '%s'"):format(word))
      end
      local by_title = table_of { name = "docs", schema = Doc,
                                  fts = { "title" } }
      assert.is_true(target.setup(by_title, plain))
      assert.are.equal("1\n", search("apple"))
      assert.are.equal("", search("leaf"))
      local by_both = table_of { name = "docs", schema = Doc,
                                 fts = { "title", "body" } }
      assert.is_true(target.setup(by_both, by_title))
      assert.are.equal("1\n", search("leaf"))
      assert.are.equal("1\n", search("body:leaf"))
      assert.is_true(target.setup(plain, by_both))
      assert.are.equal("", sql(plain.db, "SELECT name FROM sqlite_master "
        .. "WHERE name LIKE 'docs_fts%'"))
    end)

    it("starts empty when the table is recreated", function()
      local spec = chunk_spec { fts = { "text" } }
      target.setup(spec, nil)
      target.apply(spec, { chunk("a", "findme") })
      local Keyed = tide.record("Chunk", {
        { "id", "string" }, { "file", "string", key = true },
        { "line", "integer" }, { "text", "string" } })
      local spec2 = table_of { name = "chunks", schema = Keyed,
                               fts = { "text" } }
      assert.is_false(target.setup(spec2, spec))
      assert.are.equal("", match(spec2, "findme"))
      target.apply(spec2, { up(Keyed, { id = "z", file = "f", line = 1,
                                        text = "findme again" }) })
      assert.are.equal("z\n", match(spec2, "findme"))
    end)
  end)

  describe("drop", function()
    it("drops the table and its index", function()
      local spec = chunk_spec { fts = { "text" } }
      target.setup(spec, nil)
      target.apply(spec, { chunk("a") })
      sql(spec.db, "CREATE TABLE keep (x)")
      target.drop(spec)
      assert.are.equal("keep\n", sql(spec.db,
        "SELECT name FROM sqlite_master"))
      target.drop(spec) -- twice is harmless
    end)

    it("does not create a missing database", function()
      local spec = chunk_spec()
      target.drop(spec)
      assert.is_nil(helpers.read(spec.db))
    end)
  end)

  describe("sqlite.rows", function()
    local db

    before_each(function()
      db = dir .. "/in.db"
      sql(db, "CREATE TABLE items (id INTEGER, cat TEXT, title TEXT, "
        .. "price REAL, data BLOB); "
        .. "INSERT INTO items VALUES (1, 'a', 'one', 1.5, x'00ff'), "
        .. "(2, 'a', 'two', NULL, NULL), (3, 'b', 'three', 2, NULL)")
    end)

    local function collect(src)
      local keys, rows = {}, {}
      for k, row in src:items() do
        keys[#keys + 1] = k
        rows[k] = row
      end
      return keys, rows
    end

    it("lists keyed rows", function()
      local src = sqlite.rows(db, "SELECT * FROM items ORDER BY id",
                              { key = "id" })
      assert.are.equal("sqlite.rows", src.kind)
      assert.are.equal(db, src.db)
      local keys, rows = collect(src)
      assert.are.same({ "1", "2", "3" }, keys)
      assert.are.same({ id = 1, cat = "a", title = "one", price = 1.5,
                        data = "\0\255" }, rows["1"])
      assert.are.same({ id = 2, cat = "a", title = "two" }, rows["2"])
      assert.are.equal("integer", math.type(rows["1"].id))
      assert.are.equal("float", math.type(rows["3"].price))
      -- items() runs the query again each time.
      sql(db, "DELETE FROM items WHERE id = 2")
      assert.are.same({ "1", "3" }, (collect(src)))
    end)

    it("joins several key columns with /", function()
      local keys = collect(sqlite.rows(db, "SELECT cat, id, title FROM "
        .. "items ORDER BY id", { key = { "cat", "id" } }))
      assert.are.same({ "a/1", "a/2", "b/3" }, keys)
      -- A part's / and \\ are escaped with \\: two rows, two keys.
      sql(db, "CREATE TABLE t(a, b); INSERT INTO t VALUES ('x/y', 'z'), "
        .. "('x', 'y/z'), ('p\\', 'q'), ('p', '\\q')")
      keys = collect(sqlite.rows(db, "SELECT a, b FROM t ORDER BY rowid",
                                 { key = { "a", "b" } }))
      assert.are.same({ "x\\/y/z", "x/y\\/z", "p\\\\/q", "p/\\\\q" },
                      keys)
      -- One key column is taken as it is.
      keys = collect(sqlite.rows(db, "SELECT a FROM t WHERE b = 'z'",
                                 { key = "a" }))
      assert.are.same({ "x/y" }, keys)
    end)

    it("keeps a path inside the project relative, others absolute", function()
      assert.are.equal("x/in.db",
        sqlite.rows("./x//y/../in.db", "SELECT 1", { key = "a" }).db)
      assert.are.equal("/tmp/in.db",
        sqlite.rows("/tmp/x/../in.db", "SELECT 1", { key = "a" }).db)
    end)

    it("reports query errors naming the db and the SQL", function()
      local function items_err(path, query, key)
        return err_of(function()
          for _ in sqlite.rows(path, query, { key = key }):items() do end
        end)
      end
      assert.are.equal(("sqlite.rows %s: no such table: nope in query: "
        .. "SELECT * FROM nope"):format(db),
        items_err(db, "SELECT * FROM nope", "id"))
      assert.are.equal(("sqlite.rows %s: key column ident is not in the "
        .. "result of: SELECT id FROM items"):format(db),
        items_err(db, "SELECT id FROM items", "ident"))
      assert.are.equal(("sqlite.rows %s: duplicate key a in the result of: "
        .. "SELECT cat FROM items"):format(db),
        items_err(db, "SELECT cat FROM items", "cat"))
      assert.are.equal(("sqlite.rows %s: key column price is NULL in row 2 "
        .. "of: SELECT * FROM items ORDER BY id"):format(db),
        items_err(db, "SELECT * FROM items ORDER BY id", "price"))
      assert.matches("^sqlite.rows " .. pattern(db) .. ": the query must "
        .. "only read in query: DELETE FROM items$",
        items_err(db, "DELETE FROM items", "id"))
      assert.matches("the query must be a single statement",
        items_err(db, "SELECT 1 AS id; SELECT 2", "id"))
      assert.matches("^sqlite.rows " .. pattern(dir) .. "/none.db: cannot "
        .. "open: no such file or directory$",
        items_err(dir .. "/none.db", "SELECT 1", "id"))
      assert.is_nil(helpers.read(dir .. "/none.db"))
      assert.are.equal("3\n", sql(db, "SELECT count(*) FROM items"))
    end)

    it("rejects bad arguments at the caller", function()
      local cases = {
        { { nil, "SELECT 1", { key = "a" } },
          "sqlite.rows: db must be the path of a database file" },
        { { "x.db", 1, { key = "a" } },
          "sqlite.rows: sql must be a query string" },
        { { "x.db", "SELECT 1" },
          "sqlite.rows: expected options { key = column or columns }" },
        { { "x.db", "SELECT 1", { key = {} } },
          "sqlite.rows: key must be a column name or a list of column names" },
        { { "x.db", "SELECT 1", { key = { "a", 2 } } },
          "sqlite.rows: key must be a column name or a list of column names" },
        { { "x.db", "SELECT 1", { key = "a", live = true } },
          "sqlite.rows: unknown option live" },
      }
      for _, case in ipairs(cases) do
        local args = case[1]
        local ok, err = pcall(function()
          sqlite.rows(args[1], args[2], args[3]) -- the caller's line
        end)
        assert.is_false(ok)
        assert.are.equal(case[2], err:match("^.-sqlite_spec.lua:%d+: (.*)$"))
      end
    end)
  end)
end)
