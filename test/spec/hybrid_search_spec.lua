-- sqlite.hybrid_search: FTS5 BM25 ranks and vector ranks fused by
-- reciprocal rank fusion, over tables a pipeline wrote with sqlite.table{
-- fts = ... }, kept in step by tide's updates, verify, repair and drop.
local helpers = require "test.spec.helpers"
local ph = require "test.spec.pipeline_helpers"
local sqlite = require "tide.sqlite"

local q = helpers.q

-- One row per line "id kind x y z body" of docs.txt.
local PIPELINE = [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", {
  { "id", "string", key = true },
  { "kind", "string" },
  { "body", "string" },
  { "v", tide.vector(3) },
})
return tide.app("docs", function()
  local out = sqlite.table { db = "out.db", name = "docs", schema = Doc,
                             fts = { "body" } }
  for line in io.lines("docs.txt") do
    local id, kind, x, y, z, body =
      line:match("^(%S+) (%S+) (%S+) (%S+) (%S+) (.*)$")
    out:row(Doc { id = id, kind = kind, body = body,
                  v = { tonumber(x), tonumber(y), tonumber(z) } })
  end
end)
]]

-- For the query text "solar" and the vector { 1, 0, 0 }: by vector,
-- vector_only (distance 0), both, neither, text_only (distance 1); by
-- BM25, text_only (the shorter body) then both; the others do not match.
local DOCS = {
  "both a 0.9 0.3 0 solar panels for a roof over a long garage",
  "text_only b 0 0 1 solar",
  "vector_only a 1 0 0 roof tiles and gutters",
  "neither b 0.1 1 0 garden hose",
}

local function update(dir, lines)
  helpers.write(dir .. "/docs.txt", table.concat(lines, "\n") .. "\n")
  local _, err, code = ph.tide(dir, "update pipeline.lua")
  assert.are.equal(0, code, err)
end

local function sql(db, query)
  local out, err, code = helpers.run("sqlite3 " .. q(db) .. " " .. q(query))
  assert(code == 0, err)
  return out
end

local function ids(rows)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r.id end
  return out
end

local function by_id(rows)
  local out = {}
  for _, r in ipairs(rows) do out[r.id] = r end
  return out
end

local function near(a, b) return math.abs(a - b) < 1e-12 end

describe("sqlite.hybrid_search", function()
  local dir, db
  local function search(opts)
    opts.db = opts.db or db
    opts.table = opts.table or "docs"
    opts.column = opts.column or "v"
    opts.vector = opts.vector or { 1, 0, 0 }
    if opts.text == nil then opts.text = "solar" end
    return sqlite.hybrid_search(opts)
  end

  before_each(function()
    dir = helpers.tmpdir()
    db = dir .. "/out.db"
    helpers.write(dir .. "/pipeline.lua", PIPELINE)
    update(dir, DOCS)
  end)
  after_each(helpers.cleanup)

  it("ranks a document that matches both ways above one that matches "
     .. "either", function()
    local rows = assert(search {})
    -- both is second on each side, and first once they are fused.
    assert.are.same({ "both", "text_only", "vector_only", "neither" },
                    ids(rows))
    local r = by_id(rows)
    assert.are.same({ 2, 2 }, { r.both.vector_rank, r.both.text_rank })
    assert.are.same({ 4, 1 }, { r.text_only.vector_rank,
                                r.text_only.text_rank })
    assert.are.equal(1, r.vector_only.vector_rank)
    assert.is_nil(r.vector_only.text_rank)
    assert.is_nil(r.vector_only.bm25)
    assert.are.equal(3, r.neither.vector_rank)
    assert.is_nil(r.neither.text_rank)
    assert.is_true(near(r.both.score, 1 / 62 + 1 / 62))
    assert.is_true(near(r.text_only.score, 1 / 64 + 1 / 61))
    assert.is_true(near(r.vector_only.score, 1 / 61))
    assert.is_true(near(r.neither.score, 1 / 63))
    -- The distances are sqlite.search's, the text scores FTS5's bm25().
    local f32 = function(x) return (string.unpack("<f", string.pack("<f", x)))
    end
    local x, y = f32(0.9), f32(0.3)
    assert.is_true(math.abs(r.both.distance - (1 - x / math.sqrt(x * x
      + y * y))) < 1e-6)
    assert.are.equal(0, r.vector_only.distance)
    assert.is_true(r.text_only.bm25 < r.both.bm25 and r.both.bm25 < 0)
    -- Each row has its columns.
    assert.are.same({ "a", "solar panels for a roof over a long garage", 12 },
                    { r.both.kind, r.both.body, #r.both.v })
    -- Without fusion the single lists disagree: only both is near the top
    -- of each.
    assert.are.equal("vector_only", assert(sqlite.search { db = db,
      table = "docs", column = "v", vector = { 1, 0, 0 }, k = 1 })[1].id)
  end)

  it("ranks by one side alone when the other is left out", function()
    -- Vector alone: sqlite.search's order, with fused scores; no FTS5
    -- table is needed.
    local rows = assert(sqlite.hybrid_search { db = db, table = "docs",
      column = "v", vector = { 1, 0, 0 }, fts_table = "none_at_all" })
    assert.are.same({ "vector_only", "both", "neither", "text_only" },
                    ids(rows))
    assert.is_nil(rows[1].text_rank)
    assert.is_true(near(rows[1].score, 1 / 61))
    -- Text alone: BM25's order; no column is needed.
    rows = assert(sqlite.hybrid_search { db = db, table = "docs",
                                         text = "solar" })
    assert.are.same({ "text_only", "both" }, ids(rows))
    assert.is_nil(rows[1].vector_rank)
    assert.are.same({ 1, 2 }, { rows[1].text_rank, rows[2].text_rank })
    assert.has_error(function() sqlite.hybrid_search { db = db,
      table = "docs" } end, "sqlite.hybrid_search: give vector, text or both")
    assert.has_error(function() sqlite.hybrid_search { db = db,
      table = "docs", vector = { 1, 0, 0 } } end,
      "sqlite.hybrid_search: column must be a non-empty string")
  end)

  it("keeps k rows, takes candidates from each side and weighs ranks by "
     .. "rrf_k", function()
    assert.are.same({ "both", "text_only" }, ids(assert(search { k = 2 })))
    assert.are.same({ "both" }, ids(assert(search { k = 1 })))
    -- One candidate a side: vector_only and text_only, one rank each.
    local rows = assert(search { candidates = 1 })
    assert.are.equal(2, #rows)
    local r = by_id(rows)
    assert.are.same({ 1, 1 }, { r.vector_only.vector_rank,
                                r.text_only.text_rank })
    assert.is_nil(r.vector_only.text_rank)
    assert.is_nil(r.text_only.vector_rank)
    -- With rrf_k = 0 a first place outweighs two second places.
    rows = assert(search { rrf_k = 0 })
    assert.are.same({ "text_only", "both", "vector_only", "neither" },
                    ids(rows))
    assert.is_true(near(rows[1].score, 1 + 1 / 4))
    assert.is_true(near(rows[2].score, 1 / 2 + 1 / 2))
  end)

  it("filters both sides with where, even on a column the full-text "
     .. "table shares", function()
    local rows = assert(search { where = "kind = 'b'" })
    assert.are.same({ "text_only", "neither" }, ids(rows))
    assert.are.same({ 2, 1 }, { rows[1].vector_rank, rows[1].text_rank })
    assert.are.same({ 1 }, { rows[2].vector_rank, rows[2].text_rank })
    rows = assert(search { where = "body LIKE '%roof%'" })
    assert.are.same({ "both", "vector_only" }, ids(rows))
    assert.are.equal(1, rows[1].text_rank)
    rows = assert(search { where = "docs.kind = 'a' AND id <> 'both'" })
    assert.are.same({ "vector_only" }, ids(rows))
  end)

  it("takes any text as words to match, never as FTS5 syntax", function()
    for _, text in ipairs { 'solar NOT "bar', "solar OR", "NEAR(solar",
        "body:solar*", "solar)(", '"solar"', "-solar", "^solar +",
        "'; DROP TABLE docs; --", "solar\0garage" } do
      local rows, err = search { text = text }
      assert.is_table(rows, err)
      assert.are.equal(4, #rows)
    end
    -- The operators are only words: "solar NOT bar" finds what "solar"
    -- finds, and neither NOT nor bar is in any body.
    local r = by_id(assert(search { text = 'solar NOT "bar' }))
    assert.are.same({ 1, 2 }, { r.text_only.text_rank, r.both.text_rank })
    r = by_id(assert(search { text = "NEAR(" }))
    for _, row in pairs(r) do assert.is_nil(row.text_rank) end
    -- A quoted word and a hyphenated pair match as the indexed text does.
    r = by_id(assert(search { text = 'a "long" long-garage' }))
    assert.are.equal(1, r.both.text_rank)
    assert.is_nil(r.text_only.text_rank)
    -- Nothing to match: the vector ranks alone.
    for _, text in ipairs { "", "   ", "!!! ... ()" } do
      local rows = assert(search { text = text })
      assert.are.same({ "vector_only", "both", "neither", "text_only" },
                      ids(rows))
    end
    assert.are.equal("4\n", sql(db, "SELECT count(*) FROM docs"))
  end)

  it("says what is wrong: misuse raises, a search that cannot run "
     .. "returns nil and a message naming the database and table",
     function()
    assert.has_error(function() search { text = 5 } end,
      "sqlite.hybrid_search: text must be a string")
    assert.has_error(function() search { rrf_k = -1 } end,
      "sqlite.hybrid_search: rrf_k must be a number >= 0")
    assert.has_error(function() search { candidates = 0 } end,
      "sqlite.hybrid_search: candidates must be a positive integer")
    assert.has_error(function() search { limit = 3 } end,
      "sqlite.hybrid_search: unknown option limit")
    assert.has_error(function() search { vector = { 1, 0 / 0, 0 } } end,
      "sqlite.hybrid_search: vector[2] is not a finite float32 number")
    local rows, err = search { fts_table = "nope" }
    assert.is_nil(rows)
    assert.are.equal("sqlite.hybrid_search: " .. db .. ": no full-text "
      .. "table nope for table docs (sqlite.table makes docs_fts when given "
      .. "fts = { fields }; fts_table names another)", err)
    sql(db, "CREATE TABLE plain (v BLOB, body TEXT)")
    rows, err = search { table = "plain" }
    assert.is_nil(rows)
    assert.matches(": no full-text table plain_fts for table plain (", err,
                   1, true)
    rows, err = search { vector = { 1, 0 } }
    assert.is_nil(rows)
    assert.matches("vec_distance_cosine: vectors of 3 and 2 dimensions", err,
                   1, true)
    rows, err = search { column = "nope" }
    assert.is_nil(rows)
    assert.matches("no such column: docs.nope", err, 1, true)
    rows, err = search { db = dir .. "/none.db" }
    assert.is_nil(rows)
    assert.matches("sqlite.hybrid_search: " .. dir .. "/none.db: ", err, 1,
                   true)
  end)

  it("finds what tide's updates, deletes, repairs and drops leave",
     function()
    update(dir, { DOCS[2]:gsub("solar$", "wind turbine"), DOCS[3], DOCS[4],
                  "new b 0 0.5 0.5 solar farm" })
    local rows = assert(search {})
    assert.are.same({ "new", "vector_only", "neither", "text_only" },
                    ids(rows))
    local r = by_id(rows)
    assert.are.equal(1, r.new.text_rank)
    assert.is_nil(r.text_only.text_rank)
    r = by_id(assert(search { text = "turbine" }))
    assert.are.equal(1, r.text_only.text_rank)
    -- The full-text table's own tables do not count as drift.
    local out, err, code = ph.tide(dir, "verify pipeline.lua")
    assert.are.equal(0, code, err)
    assert.matches("docs: in step (4 states checked)", out, 1, true)
    -- A row deleted behind tide's back is repaired, and found again.
    sql(db, "DELETE FROM docs WHERE id = 'new'")
    assert.is_nil(by_id(assert(search {})).new)
    out, err, code = ph.tide(dir, "verify pipeline.lua --repair")
    assert.are.equal(0, code, err)
    assert.matches("docs: 1 missing, 0 changed, 0 extra: repaired", out, 1,
                   true)
    assert.are.equal(1, by_id(assert(search {})).new.text_rank)
    assert.are.equal("ok\n", sql(db, "INSERT INTO docs_fts(docs_fts, rank) "
      .. "VALUES ('integrity-check', 1); SELECT 'ok'"))
    -- Dropped with its table: the database, left empty, goes too.
    _, err, code = ph.tide(dir, "drop pipeline.lua --force")
    assert.are.equal(0, code, err)
    assert.is_false(helpers.exists(db))
    rows, err = search {}
    assert.is_nil(rows)
    assert.matches("sqlite.hybrid_search: " .. db .. ": ", err, 1, true)
  end)
end)

-- The built-in embedding end to end: a table of hash-embedded chunks
-- with a full-text index, searched with the embedding of the query.
describe("sqlite.hybrid_search over hash embeddings", function()
  after_each(helpers.cleanup)

  it("finds the chunk that shares the query's words and word parts",
     function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local core = require "tide.core"
local sqlite = require "tide.sqlite"
local Chunk = tide.record("Chunk", {
  { "id", "integer", key = true },
  { "text", "string" },
  { "embedding", tide.vector(256) },
})
return tide.app("chunks", function()
  local out = sqlite.table { db = "out.db", name = "chunks", schema = Chunk,
                             fts = { "text" } }
  local i = 0
  for line in io.lines("chunks.txt") do
    i = i + 1
    out:row(Chunk { id = i, text = line,
                    embedding = core.hash_embed(line, 256) })
  end
end)
]])
    helpers.write(dir .. "/chunks.txt", table.concat({
      "Incremental processing keeps the SQLite tables in step with the files",
      "The recipe needs two cups of flour, sugar and butter",
      "Embeddings are vectors; nearest neighbours are found by a scan",
      "A garden hose waters the tomatoes every evening",
    }, "\n") .. "\n")
    local _, err, code = ph.tide(dir, "update pipeline.lua")
    assert.are.equal(0, code, err)
    local core = require "tide.core"
    local query = "incrementally processed sqlite table"
    local rows = assert(sqlite.hybrid_search { db = dir .. "/out.db",
      table = "chunks", column = "embedding", text = query,
      vector = core.hash_embed(query, 256), k = 2 })
    assert.are.equal(1, rows[1].id)
    assert.are.same({ 1, 1 }, { rows[1].vector_rank, rows[1].text_rank })
    rows = assert(sqlite.search { db = dir .. "/out.db", table = "chunks",
      column = "embedding", vector = core.hash_embed("embedding vector", 256),
      k = 1 })
    assert.are.equal(3, rows[1].id)
  end)
end)
