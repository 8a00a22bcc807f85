-- A sqlite.table whose key or a field type changes between updates, end to
-- end: the table is recreated, refilled, and the states recorded under
-- the old key go without an error (no row of theirs can be in the new
-- table); a preview says the table will be set up again.
local helpers = require "test.spec.helpers"
local ph = require "test.spec.pipeline_helpers"

local function pipeline(fields, row, opts)
  return ([[
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", { %s })
local process = tide.fn("process", { memo = true }, function(name, out)
  for i = 1, 2 do out:row(Doc(%s)) end
end)
return tide.app("schema", function()
  local out = sqlite.table{ db = "out.db", name = "docs", schema = Doc%s }
  tide.mount_each(process, { a = "a", b = "b" }, out)
end)
]]):format(fields, row, opts or "")
end

local function rows(dir)
  return helpers.run(("sqlite3 %s 'SELECT * FROM docs ORDER BY 1'")
    :format(helpers.q(dir .. "/out.db")))
end

describe("a sqlite.table's key or a field's type changed between updates",
         function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  local function update_clean(expect)
    local stats, err, code = ph.update(dir)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.same(expect, stats.targets)
  end

  it("to other key fields deletes the old states without an error",
     function()
    ph.write_pipeline(dir, pipeline([[{ "id", "string", key = true },
      { "name", "string" }, { "n", "integer" }]],
      [[{ id = name .. i, name = name, n = i }]]))
    update_clean { inserted = 4, updated = 0, deleted = 0 }
    ph.write_pipeline(dir, pipeline([[{ "id", "string" },
      { "name", "string", key = true }, { "n", "integer", key = true }]],
      [[{ id = name .. i, name = name, n = i }]]))
    update_clean { inserted = 4, updated = 0, deleted = 4 }
    assert.are.equal("a1|a|1\na2|a|2\nb1|b|1\nb2|b|2\n", rows(dir))
    update_clean { inserted = 0, updated = 0, deleted = 0 }
    local out = ph.tide(dir, "show pipeline.lua /process/a")
    assert.matches("/process/a +process +ok +2 target states\n", out)
    out = ph.tide(dir, "verify pipeline.lua")
    assert.are.equal("docs: in step (4 states checked)\n", out)
  end)

  it("to another type deletes the old states without an error", function()
    ph.write_pipeline(dir, pipeline([[{ "id", "integer", key = true },
      { "name", "string" }]],
      [[{ id = (name == "a" and 0 or 10) + i, name = name .. i }]]))
    update_clean { inserted = 4, updated = 0, deleted = 0 }
    ph.write_pipeline(dir, pipeline([[{ "id", "string", key = true },
      { "name", "string" }]], [[{ id = name .. i, name = name .. i }]]))
    update_clean { inserted = 4, updated = 0, deleted = 4 }
    assert.are.equal("a1|a1\na2|a2\nb1|b1\nb2|b2\n", rows(dir))
    update_clean { inserted = 0, updated = 0, deleted = 0 }
  end)

  it("is said by --preview, which leaves the table as it is", function()
    ph.write_pipeline(dir, pipeline([[{ "id", "string", key = true },
      { "n", "integer" }]], [[{ id = name .. i, n = i }]]))
    update_clean { inserted = 4, updated = 0, deleted = 0 }
    ph.write_pipeline(dir, pipeline([[{ "id", "string", key = true },
      { "n", "number" }]], [[{ id = name .. i, n = i }]]))
    local out, err, code = ph.tide(dir, "update pipeline.lua --preview")
    assert.are.equal(0, code, err)
    assert.matches("^setup docs %(its declaration changed: tide update sets "
      .. "it up again, and one it must make again is refilled by every "
      .. "component that wrote to it%)\nschema: ", out)
    local stats = ph.update(dir, "--preview")
    assert.are.same({ { op = "setup", target = "docs" } }, stats.changes)
    local schema = helpers.run(("sqlite3 %s '.schema docs'")
      :format(helpers.q(dir .. "/out.db")))
    assert.matches('"n" INTEGER NOT NULL', schema, 1, true)
    -- The update does what the preview said.
    update_clean { inserted = 0, updated = 4, deleted = 0 }
    out = ph.tide(dir, "update pipeline.lua --preview")
    assert.matches("^schema: ", out)
  end)

  -- A table docs the user made, with a row of their own, adopted and
  -- filled by a first update.
  local function adopt_docs()
    helpers.run(("sqlite3 %s \"CREATE TABLE docs (id TEXT NOT NULL "
      .. "PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO docs VALUES "
      .. "('mine', 7)\""):format(helpers.q(dir .. "/out.db")))
    ph.write_pipeline(dir, pipeline([[{ "id", "string", key = true },
      { "n", "integer" }]], [[{ id = name .. i, n = i }]], ", adopt = true"))
    update_clean { inserted = 4, updated = 0, deleted = 0 }
  end

  it("is refused for an adopted table, whose other rows stay", function()
    adopt_docs()
    ph.write_pipeline(dir, pipeline([[{ "id", "string", key = true },
      { "n", "number" }]], [[{ id = name .. i, n = i }]], ", adopt = true"))
    local _, err, code = ph.update(dir)
    assert.are.equal(2, code)
    assert.matches("sqlite.table docs in out.db: the table was adopted "
      .. "(adopt = true) and tide never drops it, but Doc's key or a field's "
      .. "type changed, which needs the table made again: run tide drop "
      .. "with the pipeline as it was", err, 1, true)
    assert.are.equal("a1|1\na2|2\nb1|1\nb2|2\nmine|7\n", rows(dir))
  end)

  it("keeps an adopted table's column of a removed field, and says so",
     function()
    adopt_docs()
    ph.write_pipeline(dir, pipeline([[{ "id", "string", key = true }]],
      [[{ id = name .. i }]], ", adopt = true"))
    local _, err, code = ph.update(dir)
    assert.are.equal(2, code)
    assert.matches("sqlite.table docs in out.db: the table was adopted "
      .. "(adopt = true), and Doc no longer has the field n, whose values "
      .. "in your rows tide does not delete: drop the column yourself "
      .. "(ALTER TABLE docs DROP COLUMN n) and update again", err, 1, true)
    assert.are.equal("a1|1\na2|2\nb1|1\nb2|2\nmine|7\n", rows(dir))
    -- Once the user dropped it, the update goes on.
    helpers.run(("sqlite3 %s 'ALTER TABLE docs DROP COLUMN n'")
      :format(helpers.q(dir .. "/out.db")))
    update_clean { inserted = 0, updated = 4, deleted = 0 }
    assert.are.equal("a1\na2\nb1\nb2\nmine\n", rows(dir))
  end)
end)
