-- A store that stays small: once most of its pages are free,
-- store:reclaim() gives them back and the file shrinks to what it holds.
local helpers = require "test.spec.helpers"
local core = require "tide.core"
local cjson = require "cjson"

local q = helpers.q

local function size(path)
  local f = assert(io.open(path, "rb"))
  local n = f:seek("end")
  f:close()
  return n
end

local function key(i) return ("%016d"):format(i) end

-- Memo entries first..last of app, 3000 bytes each.
local function fill(store, app, first, last)
  for i = first, last do
    store:memo_put(app, key(i), "f", ("%04d"):format(i % 10000):rep(750))
  end
  store:flush()
end

describe("store:reclaim", function()
  local dir, path

  before_each(function()
    dir = helpers.tmpdir()
    path = dir .. "/state.db"
  end)

  after_each(helpers.cleanup)

  it("gives the free pages of a store back", function()
    local store = assert(core.store_open(path, "write"))
    assert.is_true(store:space().incremental)
    local app = store:app("a", true)
    fill(store, app, 1, 4000)
    assert.are.equal(0, store:reclaim()) -- nothing is free
    for i = 1, 3600 do store:memo_delete(app, key(i)) end
    store:flush()
    local full, space = size(path), store:space()
    assert.is_true(full > 12e6, full)
    assert.is_true(space.free_pages > space.pages * 0.8)
    local freed = store:reclaim()
    assert.is_true(freed >= space.free_pages * space.page_size)
    local small = size(path)
    assert.is_true(small < full / 5, ("%d bytes, from %d"):format(small, full))
    assert.are.equal(0, store:space().free_pages)
    assert.are.equal(small, store:space().pages * space.page_size)
    -- what it holds is intact
    assert.are.equal(("4000"):rep(750), store:memo_get(app, key(4000)).value)
    assert.is_nil(store:memo_get(app, key(3600)))
    assert.are.equal(0, store:reclaim()) -- nothing more to do
    assert.is_true(store:close())
  end)

  it("leaves a store with few free pages as it is", function()
    local store = assert(core.store_open(path, "write"))
    local app = store:app("a", true)
    fill(store, app, 1, 2000)
    for i = 1, 400 do store:memo_delete(app, key(i)) end
    store:flush()
    local before = size(path)
    assert.are.equal(0, store:reclaim())
    assert.are.equal(before, size(path))
    assert.is_true(store:close())
  end)

  it("compacts a store made before auto_vacuum once, and switches it",
     function()
    assert(core.store_open(path, "write")):close()
    local db = assert(core.sqlite_open(path, "write"))
    assert(db:exec("PRAGMA auto_vacuum = NONE; VACUUM"))
    db:close()
    local store = assert(core.store_open(path, "write"))
    assert.is_false(store:space().incremental)
    local app = store:app("a", true)
    fill(store, app, 1, 3000)
    for i = 1, 2700 do store:memo_delete(app, key(i)) end
    store:flush()
    local full = size(path)
    assert.is_true(store:reclaim() > 0)
    assert.is_true(size(path) < full / 5)
    assert.is_true(store:space().incremental)
    assert.are.equal(("3000"):rep(750), store:memo_get(app, key(3000)).value)
    assert.is_true(store:close())
  end)

  it("is refused by a store open for reading", function()
    assert(core.store_open(path, "write")):close()
    local store = assert(core.store_open(path, "read"))
    local ok, err, code = store:reclaim()
    assert.is_nil(ok)
    assert.are.equal(path .. ": state store is open read-only", err)
    assert.are.equal("store", code)
    store:close()
  end)

  it("shrinks with the update of an app whose sources mostly went away",
     function()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local fs = require "tide.fs"
local keep = tide.fn("keep", { memo = true }, function(file)
  return file:text():rep(100)
end)
return tide.app("shrink", function()
  tide.mount_each(keep, fs.walk("in"))
end)
]])
    for i = 1, 1000 do
      helpers.write(("%s/in/%04d.txt"):format(dir, i),
                    ("line %04d of a file\n"):format(i))
    end
    local function update()
      local out, err, code = helpers.run(("cd %s && %s update pipeline.lua "
        .. "--json"):format(q(dir), q(helpers.tide)))
      assert.are.equal(0, code, err)
      return cjson.decode(out)
    end
    assert.are.equal(1000, update().components.added)
    local db = dir .. "/.tide/state.db"
    local full = size(db)
    os.execute("rm " .. q(dir) .. "/in/0*.txt")
    helpers.write(dir .. "/in/1000.txt", "line 1000 of a file\n")
    -- The update that deleted most of it gave the pages back itself (the
    -- engine reclaims at the end of every cycle).
    assert.are.equal(999, update().components.deleted)
    assert.is_true(size(db) < full / 2, ("%d from %d"):format(size(db), full))
    local store = assert(core.store_open(db, "write"))
    local space = store:space()
    assert.is_true(space.free_pages * 100 <= space.pages * 25,
                   ("%d free of %d"):format(space.free_pages, space.pages))
    assert.are.equal(0, store:reclaim())
    assert.is_true(store:close())
    -- and the app runs on from the smaller store
    local stats = update()
    assert.are.equal(1, stats.components.unchanged)
    assert.are.equal(0, stats.components.added)
  end)
end)
