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
