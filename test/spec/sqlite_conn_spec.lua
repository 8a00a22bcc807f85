-- The state store and the SQLite target open SQLite the same way and word
-- its failures the same way: SUBJECT: OPERATION: REASON, the subject naming
-- the database, the reason saying what the user can fix, and no position
-- in tide's own code.
local helpers = require "test.spec.helpers"
local core = require "tide.core"

local q = helpers.q

-- Root may write any file whatever its mode: the scripts run as nobody.
local function as_user()
  if helpers.run("id -u") == "0\n" then
    return "setpriv --reuid=65534 --regid=65534 --clear-groups "
  end
  return ""
end

local TRY = [[
local core = require "tide.core"
local dir = arg[1]
local s, err = core.store_open(dir .. "/state.db", "write")
print(err or "ok")
if s then s:close() end
for _, mode in ipairs { "create", "write" } do
  local db, e = core.sqlite_open(dir .. "/out.db", mode)
  print(e or "ok")
  if db then db:close() end
end
for _, path in ipairs { "/new.db", "/sub/new.db" } do
  local db, e = core.sqlite_open(dir .. path, "create")
  print(e or "ok")
  if db then db:close() end
end
]]

describe("SQLite connections", function()
  local dir, d

  before_each(function()
    dir = helpers.tmpdir()
    d = dir .. "/d"
    assert(core.store_open(d .. "/state.db", "write")):close()
    local db = assert(core.sqlite_open(d .. "/out.db", "create"))
    assert(db:exec("CREATE TABLE t (a)"))
    db:close()
    helpers.write(dir .. "/try.lua", TRY)
    if as_user() ~= "" then os.execute("chown -R 65534:65534 " .. q(dir)) end
    os.execute("chmod 755 " .. q(dir) .. " " .. q(d))
  end)

  after_each(function()
    os.execute("chmod -R u+w " .. q(dir))
    helpers.cleanup()
  end)

  local function try()
    local out, err, code = helpers.run(("%s%s run %s %s"):format(as_user(),
      q(helpers.tide), q(dir .. "/try.lua"), q(d)))
    assert.are.equal(0, code, err)
    local lines = {}
    for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    return lines
  end

  it("name the folder the user must make writable", function()
    os.execute("chmod a-w " .. q(d))
    local folder = "cannot create files in " .. d .. ", the database's "
      .. "folder: permission denied"
    assert.are.same({
      d .. "/state.db: cannot create files in " .. d .. ", the state "
        .. "store's folder: permission denied",
      folder, folder, folder,
      "cannot create folder " .. d .. "/sub: permission denied",
    }, try())
  end)

  it("refuse a file they could only read, at once", function()
    os.execute("chmod a-w " .. q(d .. "/state.db") .. " " .. q(d .. "/out.db"))
    assert.are.same({
      d .. "/state.db: cannot open the state store for writing: permission "
        .. "denied",
      "cannot open the database for writing: permission denied",
      "cannot open the database for writing: permission denied",
      "ok", "ok",
    }, try())
  end)

  it("open as before when all is writable", function()
    assert.are.same({ "ok", "ok", "ok", "ok", "ok" }, try())
  end)

  it("refuse a folder in the database's place", function()
    local s, err = core.store_open(d, "write")
    assert.is_nil(s)
    assert.are.equal(d .. ": cannot open: is a directory", err)
    for _, mode in ipairs { "create", "write", "read" } do
      local db, e = core.sqlite_open(d, mode)
      assert.is_nil(db)
      assert.are.equal("cannot open: is a directory", e)
    end
  end)

  it("name a missing database and create none", function()
    local db, err = core.sqlite_open(dir .. "/none.db", "write")
    assert.is_nil(db)
    assert.are.equal("cannot open: no such file or directory", err)
    assert.is_nil(helpers.read(dir .. "/none.db"))
    local s, serr, code = core.store_open(dir .. "/none.db", "read")
    assert.is_nil(s)
    assert.are.equal(dir .. "/none.db: no such state store", serr)
    assert.are.equal("notfound", code)
  end)

  it("raise a store failure in words, without a position in tide's code",
     function()
    local store = assert(core.store_open(d .. "/state.db", "write"))
    local db = assert(core.sqlite_open(d .. "/state.db", "write"))
    assert(db:exec("CREATE TRIGGER full BEFORE INSERT ON apps BEGIN "
                   .. "SELECT RAISE(ABORT, 'database or disk is full'); END"))
    db:close()
    local ok, err = pcall(function() return store:app("docs", true) end)
    assert.is_false(ok)
    assert.are.equal(d .. "/state.db: cannot record an app: database or "
                     .. "disk is full", err)
    store:close()
  end)
end)
