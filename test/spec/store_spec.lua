-- The state store on disk: what a store whose file or folder is not
-- writable does, and that it works again once the permissions are fixed.
local helpers = require "test.spec.helpers"
local cjson = require "cjson"

local q = helpers.q

local PIPELINE = [[
local tide = require "tide"
local fs = require "tide.fs"
local copy = tide.fn("copy", { memo = true }, function(file, out)
  out:file(file.path, file:text())
end)
return tide.app("perm", function()
  tide.mount_each(copy, fs.walk("in"), fs.dir("out"))
end)
]]

-- Root writes any file whatever its mode: run tide as nobody then, in a
-- folder nobody owns.
local as_user = ""

local function tide(dir, args)
  return helpers.run(("cd %s && %s%s %s"):format(q(dir), as_user,
                                                  q(helpers.tide), args))
end

local function update(dir)
  local out, err, code = tide(dir, "update pipeline.lua --json")
  local ok, stats = pcall(cjson.decode, out or "")
  return ok and stats or nil, err, code
end

-- The mode bits of a file as octal text ("644"), or nil when it is absent.
local function mode(path)
  local out = helpers.run("stat -c %a " .. q(path) .. " 2>/dev/null")
  return out and out:match("^(%d+)\n$")
end

describe("a state store that cannot be written", function()
  local dir, db

  before_each(function()
    if helpers.run("id -u") == "0\n" then
      as_user = "setpriv --reuid=65534 --regid=65534 --clear-groups "
    end
    dir = helpers.tmpdir()
    db = dir .. "/.tide/state.db"
    helpers.write(dir .. "/pipeline.lua", PIPELINE)
    helpers.write(dir .. "/in/a.txt", "one")
    if as_user ~= "" then
      os.execute("chown -R 65534:65534 " .. q(dir))
    end
    os.execute("chmod 755 " .. q(dir))
    local stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(1, stats.components.added)
    helpers.write(dir .. "/in/a.txt", "two")
  end)

  after_each(function()
    os.execute("chmod -R u+w " .. q(dir))
    helpers.cleanup()
  end)

  it("fails, leaves nothing read-only behind, and works once writable",
     function()
    os.execute("chmod a-w " .. q(db))
    local stats, err, code = update(dir)
    assert.are.equal(2, code, err)
    assert.is_nil(stats)
    assert.are.equal(("tide: %s: cannot open the state store for writing: "
                      .. "permission denied\n"):format(db), err)
    assert.is_nil(mode(db .. "-shm"))
    assert.is_nil(mode(db .. "-wal"))
    os.execute("chmod u+w " .. q(db))
    stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(1, stats.components.reprocessed)
    assert.are.equal("two", helpers.read(dir .. "/out/a.txt"))
  end)

  it("names the folder when the folder is read-only", function()
    os.execute("chmod a-w " .. q(dir .. "/.tide"))
    local _, err, code = update(dir)
    assert.are.equal(2, code, err)
    assert.are.equal(("tide: %s: cannot create files in %s, the state "
                      .. "store's folder: permission denied\n")
                     :format(db, dir .. "/.tide"), err)
    os.execute("chmod u+w " .. q(dir .. "/.tide"))
    local stats
    stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(1, stats.components.reprocessed)
  end)

  it("can be read, and written again after a reader left its -wal and "
     .. "-shm read-only", function()
    os.execute("chmod a-w " .. q(db))
    -- SQLite creates -wal and -shm with the store's mode, here 0444, and a
    -- read-only connection cannot remove them when it closes.
    local out, err, code = tide(dir, "show pipeline.lua")
    assert.are.equal(0, code, err)
    assert.matches("/copy/a.txt", out, 1, true)
    assert.are.equal("444", mode(db .. "-shm"))
    os.execute("chmod u+w " .. q(db))
    local stats
    stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(1, stats.components.reprocessed)
    assert.are.equal("two", helpers.read(dir .. "/out/a.txt"))
    for _, side in ipairs { "-wal", "-shm" } do
      local m = mode(db .. side)
      assert.is_true(m == nil or m == mode(db), side .. " has mode "
                     .. tostring(m))
    end
  end)
end)
