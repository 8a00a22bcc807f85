-- Vectors in SQLite: the vector functions on tide's connections and in the
-- sqlite3 shell (build/tide_vec.so), and sqlite.search, over rows a
-- pipeline wrote with a tide.vector field.
local helpers = require "test.spec.helpers"
local sqlite = require "tide.sqlite"

local q = helpers.q

-- One row per line "name x y z" of points.txt, its vector the numbers.
local PIPELINE = [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Point = tide.record("Point", {
  { "name", "string", key = true },
  { "kind", "string" },
  { "v", tide.vector(3) },
})
return tide.app("points", function()
  local out = sqlite.table { db = "out.db", name = "points", schema = Point }
  for line in io.lines("points.txt") do
    local name, kind, x, y, z = line:match("(%S+) (%S+) (%S+) (%S+) (%S+)")
    out:row(Point { name = name, kind = kind,
                    v = { tonumber(x), tonumber(y), tonumber(z) } })
  end
end)
]]

local POINTS = {
  { "east", "axis", 1, 0, 0 },
  { "north", "axis", 0, 1, 0 },
  { "up", "axis", 0, 0, 1 },
  { "ne", "mixed", 0.7, 0.7, 0 },
  { "far_east", "mixed", 9, 0.5, 0 },
  { "zero", "mixed", 0, 0, 0 },
}

-- The distances in doubles, from the float32 values tide stored.
local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end
local function cosine(a, b)
  local dot, na, nb = 0, 0, 0
  for i = 1, 3 do
    local x, y = f32(a[i]), f32(b[i])
    dot, na, nb = dot + x * y, na + x * x, nb + y * y
  end
  return 1 - dot / (math.sqrt(na) * math.sqrt(nb))
end
local function l2(a, b)
  local s = 0
  for i = 1, 3 do s = s + (f32(a[i]) - f32(b[i])) ^ 2 end
  return math.sqrt(s)
end

describe("vectors in SQLite", function()
  local dir
  before_each(function()
    dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", PIPELINE)
    local lines = {}
    for _, p in ipairs(POINTS) do lines[#lines + 1] = table.concat(p, " ") end
    helpers.write(dir .. "/points.txt", table.concat(lines, "\n") .. "\n")
    local _, err, code = helpers.run(("cd %s && %s update pipeline.lua")
      :format(q(dir), q(helpers.tide)))
    assert.are.equal(0, code, err)
  end)
  after_each(helpers.cleanup)

  it("sqlite.search ranks the rows by cosine or L2 distance, nearest "
     .. "first, as a reference computation does", function()
    local query = { 1, 0.2, 0 }
    local rows = assert(sqlite.search { db = dir .. "/out.db",
      table = "points", column = "v", vector = query, k = 3 })
    local names = {}
    for i, r in ipairs(rows) do
      names[i] = r.name
      local p
      for _, c in ipairs(POINTS) do if c[1] == r.name then p = c end end
      assert.is_true(math.abs(r.distance
        - cosine(query, { p[3], p[4], p[5] })) < 1e-6)
      assert.are.equal(12, #r.v) -- the stored float32 bytes
    end
    assert.are.same({ "far_east", "east", "ne" }, names)
    -- L2 and a condition on the other columns.
    rows = assert(sqlite.search { db = dir .. "/out.db", table = "points",
      column = "v", vector = query, k = 2, metric = "l2",
      where = "kind = 'axis'" })
    assert.are.same({ "east", "north" }, { rows[1].name, rows[2].name })
    assert.is_true(math.abs(rows[1].distance
      - l2(query, { 1, 0, 0 })) < 1e-6)
    -- A vector of zeros has no cosine distance: it is left out.
    rows = assert(sqlite.search { db = dir .. "/out.db", table = "points",
      column = "v", vector = query, k = 10 })
    assert.are.equal(5, #rows)
  end)

  it("sqlite.search says what is wrong: misuse raises, a query that "
     .. "cannot run returns nil and a message", function()
    local db = dir .. "/out.db"
    assert.has_error(function()
      sqlite.search { db = db, table = "points", column = "v", vector = {} }
    end, "sqlite.search: vector must be a non-empty list of numbers")
    assert.has_error(function()
      sqlite.search { db = db, table = "points", column = "v",
                      vector = { 1, 0 / 0, 0 } }
    end, "sqlite.search: vector[2] is not a finite float32 number")
    assert.has_error(function()
      sqlite.search { db = db, table = "points", column = "v",
                      vector = { 1 }, metric = "dot" }
    end, 'sqlite.search: metric must be "cosine" or "l2"')
    assert.has_error(function()
      sqlite.search { db = db, table = "points", column = "v",
                      vector = { 1 }, limit = 3 }
    end, "sqlite.search: unknown option limit")
    local rows, err = sqlite.search { db = db, table = "points",
      column = "v", vector = { 1, 0 } }
    assert.is_nil(rows)
    assert.matches("vec_distance_cosine: vectors of 3 and 2 dimensions", err,
                   1, true)
    -- A column that is not there is named (not taken for a string).
    rows, err = sqlite.search { db = db, table = "points", column = "w",
      vector = { 1, 0, 0 } }
    assert.is_nil(rows)
    assert.matches("no such column: points.w", err, 1, true)
    rows, err = sqlite.search { db = dir .. "/none.db", table = "points",
      column = "v", vector = { 1, 0, 0 } }
    assert.is_nil(rows)
    assert.matches("none.db", err, 1, true)
  end)

  it("gives the vector functions to sqlite.open's connections and, as "
     .. "build/tide_vec.so, to the sqlite3 shell", function()
    local db = assert(sqlite.open(dir .. "/out.db"))
    local rows = assert(db:rows("SELECT vec_json(v) AS j, "
      .. "vec_dot(v, '[2, 0, 0]') AS d FROM points WHERE name = 'ne'"))
    db:close()
    assert.are.equal("[0.7,0.7,0]", rows[1].j)
    assert.is_true(math.abs(rows[1].d - 2 * f32(0.7)) < 1e-6)
    local ext = helpers.root .. "/" .. helpers.build .. "/tide_vec"
    local out, err, code = helpers.run(("sqlite3 %s %s %s"):format(
      q(dir .. "/out.db"), q(".load " .. ext),
      q("SELECT name, round(vec_distance_l2(v, '[0, 0, 0]'), 4) FROM points "
        .. "ORDER BY 2 DESC LIMIT 1")))
    assert.are.equal(0, code, err)
    assert.are.equal("far_east|9.0139\n", out)
  end)
end)
