local helpers = require "test.spec.helpers"
local q = helpers.q
local tide = q(helpers.tide)

describe("the tide host", function()
  after_each(helpers.cleanup)

  describe("tide run", function()
    it("passes arguments as lua5.4 does", function()
      local dir = helpers.tmpdir()
      local script = helpers.write(dir .. "/args.lua", [[
print(select("#", ...), ...)
print(arg[0], arg[1], arg[2], arg[-1], #arg)
return 1]])
      local out, err, code = helpers.run(tide .. " run " .. script .. " a 'b c'")
      assert.are.equal(0, code)
      assert.are.equal("", err)
      assert.are.equal(("2\ta\tb c\n%s\ta\tb c\trun\t2\n"):format(script), out)
    end)

    it("has tide preloaded", function()
      local out = helpers.run(tide .. " run -",
        'print(require("tide").fingerprint(1))')
      assert.are.equal("4a9e6f9b8d43f6ad008f8c291929dee2\n", out)
    end)

    it("reports a runtime error like lua5.4, with traceback and status 1", function()
      local dir = helpers.tmpdir()
      local script = helpers.write(dir .. "/boom.lua", [[
local function inner() error("boom") end
local function outer() inner() end
outer()]])
      local _, err, code = helpers.run(tide .. " run " .. script)
      local _, lua_err, lua_code = helpers.run("lua5.4 " .. script)
      assert.are.equal(1, code)
      assert.are.equal(lua_code, code)
      assert.are.equal(lua_err:gsub("^lua5.4: ", "tide: "), err)
      assert.matches("^tide: " .. script:gsub("%p", "%%%0") .. ":1: boom\n"
        .. "stack traceback:\n", err)
      assert.matches("in local 'outer'", err)
    end)

    it("reports a syntax error like lua5.4", function()
      local dir = helpers.tmpdir()
      local script = helpers.write(dir .. "/syntax.lua", "local x = = 1\n")
      local _, err, code = helpers.run(tide .. " run " .. script)
      local _, lua_err = helpers.run("lua5.4 " .. script)
      assert.are.equal(1, code)
      assert.are.equal(lua_err:gsub("^lua5.4: ", "tide: "), err)
    end)

    it("reports a non-string error object", function()
      local _, err, code = helpers.run(tide .. " run -", "error({})")
      assert.are.equal(1, code)
      assert.matches("^tide: %(error object is a table value%)", err)
    end)

    it("exits with os.exit's status", function()
      local _, _, code = helpers.run(tide .. " run -", "os.exit(3)")
      assert.are.equal(3, code)
    end)

    it("needs a script", function()
      local _, err, code = helpers.run(tide .. " run")
      assert.are.equal(2, code)
      assert.matches("missing script", err)
    end)

    it("reports a missing script file", function()
      local _, err, code = helpers.run(tide .. " run /nonexistent.lua")
      assert.are.equal(1, code)
      assert.matches("cannot open /nonexistent.lua", err, 1, true)
    end)
  end)

  it("prints tide's, Lua's, SQLite's and libuv's versions", function()
    local out, _, code = helpers.run(tide .. " --version")
    assert.are.equal(0, code)
    local lua_version = helpers.run("lua5.4 -v"):match("^(Lua %d+%.%d+%.%d+)")
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(4, #lines)
    assert.matches("^tide %d+%.%d+%.%d+$", lines[1])
    assert.are.equal(lua_version, lines[2])
    assert.matches("^SQLite 3%.%d+%.%d+$", lines[3])
    assert.matches("^libuv 1%.%d+%.%d+$", lines[4])
  end)

  it("lists its commands with help", function()
    local out, _, code = helpers.run(tide .. " help")
    assert.are.equal(0, code)
    assert.matches("usage: tide COMMAND", out, 1, true)
    assert.matches("run SCRIPT.lua", out, 1, true)
  end)

  it("prints usage and exits 2 on an unknown command or none", function()
    local out, err, code = helpers.run(tide .. " frobnicate")
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.matches("^tide: unknown command 'frobnicate'\nusage: tide", err)
    out, err, code = helpers.run(tide)
    assert.are.equal(2, code)
    assert.matches("^usage: tide", err)
    -- A command's own mistake shows that command's usage, not the list.
    out, err, code = helpers.run(tide .. " update x.lua --bogus")
    assert.are.equal(2, code)
    assert.matches("^tide: update: unknown option %-%-bogus\nusage of tide "
      .. "update:\n  update PIPELINE%.lua", err)
    assert.is_nil(err:find("worker PIPELINE", 1, true))
    assert.matches("(tide help lists every command)", err, 1, true)
    -- So does every command that reads a store.
    for _, case in ipairs {
      { "show x.lua --bogus", "show: unknown option %-%-bogus", "show" },
      { "why x.lua t", "why: expected PIPELINE TARGET KEY", "why" },
      { "ls extra", "ls: takes no arguments", "ls" },
      { "verify x.lua --bogus", "verify: unknown option %-%-bogus", "verify" },
      { "drop x.lua --bogus", "drop: unknown option %-%-bogus", "drop" },
    } do
      out, err, code = helpers.run(tide .. " " .. case[1])
      assert.are.equal(2, code, case[1])
      assert.matches("^tide: " .. case[2] .. "\nusage of tide " .. case[3]
        .. ":\n  " .. case[3] .. " ", err)
    end
  end)

  it("works as require \"tide\" from the stock lua5.4", function()
    local out, err, code = helpers.run(helpers.stock_lua_env()
      .. " lua5.4 -e 'local t = require \"tide\"; print(t.fingerprint(1), "
      .. "package.searchpath(\"tide\", package.path))'")
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("4a9e6f9b8d43f6ad008f8c291929dee2\t" .. helpers.root
      .. "/lua/tide/init.lua\n", out)
  end)

  it("finds its Lua files after make install, and so does lua5.4", function()
    if os.getenv("TIDE_ASAN_PRELOAD") then return end -- a plain build only
    local dest = helpers.tmpdir()
    local _, err, code = helpers.run(("make -s -C %s install BUILD=%s "
      .. "PREFIX=/opt/tide DESTDIR=%s"):format(q(helpers.root),
      q(helpers.build), q(dest)))
    assert.are.equal(0, code, err)
    local prefix = dest .. "/opt/tide"
    local bin = prefix .. "/bin/tide"
    assert.is_not_nil(helpers.read(prefix .. "/include/tide.h"))
    assert.is_not_nil(helpers.read(prefix .. "/lib/libtide.a"))
    -- run from elsewhere, so the build tree cannot be found by accident
    local out = helpers.run("cd / && " .. q(bin) .. " run - ",
      'print(require("tide").fingerprint(1), package.searchpath("tide", package.path))')
    assert.are.equal("4a9e6f9b8d43f6ad008f8c291929dee2\t" .. prefix
      .. "/bin/../share/lua/5.4/tide/init.lua\n", out)
    out, err = helpers.run(("cd / && LUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s")
      :format(q(prefix .. "/share/lua/5.4/?.lua;" .. prefix
        .. "/share/lua/5.4/?/init.lua;;"),
        q(prefix .. "/lib/lua/5.4/?.so;;"),
        q('print(require("tide").fingerprint(1))')))
    assert.are.equal("", err)
    assert.are.equal("4a9e6f9b8d43f6ad008f8c291929dee2\n", out)
  end)
end)
