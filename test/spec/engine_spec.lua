-- The incremental engine end to end: `tide update` on real pipeline files,
-- checking exact --json counts and exact target contents.
local helpers = require "test.spec.helpers"
local ph = require "test.spec.pipeline_helpers"
local cjson = require "cjson"

local update, kv = ph.update, ph.kv

-- A pipeline over items.json ({ key = text }): one memoized component per
-- item, each declaring one kv row through a memoized inner function.
local function keyed_pipeline(opts)
  opts = opts or {}
  return ([[
local cjson = require "cjson"
%s
local function clean(s) return (s:gsub("%%s+", " ")) end
local shout = tide.fn("shout", { memo = true %s }, function(s)
  return clean(s):upper()%s
end)
local process = tide.fn("process", { memo = true }, function(item, out)
  out:declare(item.key, shout(item.text))
end)
return tide.app("items", function()
  local f = assert(io.open("items.json"))
  local raw = cjson.decode(f:read("a"))
  f:close()
  local items = {}
  for k, v in pairs(raw) do items[k] = { key = k, text = v } end
  tide.mount_each(process, items, kv("out.json"))
end)
]]):format(opts.prelude or "", opts.shout_opts or "", opts.suffix or "")
end

local function write_items(dir, items)
  helpers.write(dir .. "/items.json", cjson.encode(items))
end

describe("tide update", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  local function items(n)
    local t = {}
    for i = 1, n do t["k" .. i] = "text " .. i end
    return t
  end

  it("adds everything on the first run and nothing on the second", function()
    ph.write_pipeline(dir, keyed_pipeline())
    write_items(dir, items(5))
    local stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ added = 5, reprocessed = 0, deleted = 0, unchanged = 0,
                      errors = 0 }, stats.components)
    assert.are.same({ inserted = 5, updated = 0, deleted = 0 }, stats.targets)
    assert.are.same({ calls = 5, hits = 0, misses = 5, errors = 0 },
                    stats.functions.process)
    assert.are.same({ calls = 5, hits = 0, misses = 5, errors = 0 },
                    stats.functions.shout)
    assert.are.equal("items", stats.app)
    assert.are.equal("number", type(stats.elapsed_ms))
    assert.are.equal("TEXT 3", kv(dir .. "/out.json").k3)

    stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.same({ added = 0, reprocessed = 0, deleted = 0, unchanged = 5,
                      errors = 0 }, stats.components)
    assert.are.same({ inserted = 0, updated = 0, deleted = 0 }, stats.targets)
    assert.are.same({ calls = 5, hits = 5, misses = 0, errors = 0 },
                    stats.functions.process)
    assert.is_nil(stats.functions.shout)
  end)

  it("prints exactly one JSON object with the contract's keys", function()
    ph.write_pipeline(dir, keyed_pipeline())
    write_items(dir, items(1))
    local _, _, code, out = update(dir)
    assert.are.equal(0, code)
    assert.matches('^{"app":"items","elapsed_ms":[%d.]+,"components":{"added":1,'
      .. '"reprocessed":0,"deleted":0,"unchanged":0,"errors":0},"targets":'
      .. '{"inserted":1,"updated":0,"deleted":0},"functions":{"process":'
      .. '{"calls":1,"hits":0,"misses":1,"errors":0},"shout":{"calls":1,'
      .. '"hits":0,"misses":1,"errors":0}}}\n$', out)
  end)

  it("reprocesses exactly the edited items and deletes removed ones", function()
    ph.write_pipeline(dir, keyed_pipeline())
    write_items(dir, items(6))
    update(dir)
    local changed = items(6)
    changed.k2 = "edited two"
    changed.k5 = "edited five"
    changed.k6 = nil
    changed.k7 = "new seven"
    write_items(dir, changed)
    local stats = update(dir)
    assert.are.same({ added = 1, reprocessed = 2, deleted = 1, unchanged = 3,
                      errors = 0 }, stats.components)
    assert.are.same({ inserted = 1, updated = 2, deleted = 1 }, stats.targets)
    assert.are.same({ calls = 3, hits = 0, misses = 3, errors = 0 },
                    stats.functions.shout)
    assert.are.same({ k1 = "TEXT 1", k2 = "EDITED TWO", k3 = "TEXT 3",
                      k4 = "TEXT 4", k5 = "EDITED FIVE", k7 = "NEW SEVEN" },
                    kv(dir .. "/out.json"))
  end)

  it("hits the inner memo when an item's content is unchanged under a new key",
     function()
    ph.write_pipeline(dir, keyed_pipeline())
    write_items(dir, { a = "same text" })
    update(dir)
    write_items(dir, { b = "same text" })
    local stats = update(dir)
    assert.are.same({ added = 1, reprocessed = 0, deleted = 1, unchanged = 0,
                      errors = 0 }, stats.components)
    assert.are.same({ calls = 1, hits = 1, misses = 0, errors = 0 },
                    stats.functions.shout)
    assert.are.same({ b = "SAME TEXT" }, kv(dir .. "/out.json"))
  end)

  describe("sees code changes", function()
    local function run_with(opts)
      ph.write_pipeline(dir, keyed_pipeline(opts))
      local stats, err, code = update(dir)
      assert.are.equal(0, code, err)
      return stats
    end

    before_each(function()
      write_items(dir, items(3))
      run_with {}
    end)

    it("reprocesses nothing for a comment-only edit", function()
      local stats = run_with { prelude = "-- a new comment\n\n\n-- and more" }
      assert.are.equal(3, stats.components.unchanged)
      assert.are.equal(0, stats.targets.updated)
    end)

    it("reprocesses callers when the transform's code changes", function()
      local stats = run_with { suffix = ' .. "!"' }
      assert.are.equal(3, stats.components.reprocessed)
      assert.are.equal(3, stats.targets.updated)
      assert.are.equal("TEXT 1!", kv(dir .. "/out.json").k1)
    end)

    it("reprocesses callers when an undecorated local helper changes", function()
      -- The helper `clean` is redefined with a different pattern.
      local p = keyed_pipeline():gsub('gsub%("%%s%+", " "%)',
                                      'gsub("%%s+", "_")')
      ph.write_pipeline(dir, p)
      local stats = update(dir)
      assert.are.equal(3, stats.components.reprocessed)
      assert.are.equal("TEXT_1", kv(dir .. "/out.json").k1)
    end)

    it("reprocesses callers when a global helper changes", function()
      local with_global = function(sep)
        return keyed_pipeline():gsub("local function clean%(s%) return "
          .. "%(s:gsub%(\"%%s%+\", \" \"%)%) end", ("function clean(s) return "
          .. "(s:gsub(\"%%%%s+\", %q)) end"):format(sep))
      end
      ph.write_pipeline(dir, with_global(" "))
      local stats = update(dir)
      assert.are.equal(3, stats.components.unchanged + stats.components.reprocessed)
      ph.write_pipeline(dir, with_global("-"))
      stats = update(dir)
      assert.are.equal(3, stats.components.reprocessed)
      assert.are.equal("TEXT-1", kv(dir .. "/out.json").k1)
    end)

    it("reprocesses when version or deps change", function()
      local stats = run_with { shout_opts = ", version = 2" }
      assert.are.equal(3, stats.components.reprocessed)
      assert.are.equal(0, stats.targets.updated)
      stats = run_with { shout_opts = ", version = 2" }
      assert.are.equal(3, stats.components.unchanged)
      stats = run_with { shout_opts = ", version = 2, deps = { model = 'a' }" }
      assert.are.equal(3, stats.components.reprocessed)
      stats = run_with { shout_opts = ", version = 2, deps = { model = 'b' }" }
      assert.are.equal(3, stats.components.reprocessed)
      stats = run_with { shout_opts = ", version = 2, deps = { model = 'b' }" }
      assert.are.equal(3, stats.components.unchanged)
    end)

    it("reprocesses everything with --full-reprocess and writes every "
       .. "declared state again", function()
      -- Changed and deleted outside tide: a full reprocess repairs both.
      local t = kv(dir .. "/out.json")
      t.k1, t.k2 = "changed by hand", nil
      helpers.write(dir .. "/out.json", require("cjson").encode(t))
      local stats = update(dir, "--full-reprocess")
      assert.are.equal(3, stats.components.reprocessed)
      assert.are.same({ inserted = 0, updated = 3, deleted = 0 },
                      stats.targets)
      assert.are.same({ k1 = "TEXT 1", k2 = "TEXT 2", k3 = "TEXT 3" },
                      kv(dir .. "/out.json"))
      -- And the next run finds nothing to do.
      stats = update(dir)
      assert.are.equal(3, stats.components.unchanged)
      assert.are.equal(0, stats.targets.updated)
    end)
  end)

  it("invalidates exactly the memo entries that read a changed context value",
     function()
    local function pipeline(lang, unit)
      return ([[
local LANG = tide.key("lang", { detect_change = true })
local UNIT = tide.key("unit", { detect_change = true })
local greet = tide.fn("greet", { memo = true }, function(name)
  return tide.use(LANG) .. " " .. name
end)
local measure = tide.fn("measure", { memo = true }, function(n)
  return n .. tide.use(UNIT)
end)
local process = tide.fn("process", { memo = true }, function(item, out)
  if item.kind == "greet" then out:declare(item.key, greet(item.value))
  else out:declare(item.key, measure(item.value)) end
end)
return tide.app("ctx", function()
  tide.mount_each(process, {
    a = { key = "a", kind = "greet", value = "ann" },
    b = { key = "b", kind = "greet", value = "bob" },
    c = { key = "c", kind = "measure", value = 3 },
  }, kv("out.json"))
end, { context = { [LANG] = %q, [UNIT] = %q } })
]]):format(lang, unit)
    end
    ph.write_pipeline(dir, pipeline("hello", "m"))
    local stats, err = update(dir)
    assert.are.equal(3, stats.components.added, err)
    ph.write_pipeline(dir, pipeline("bonjour", "m"))
    stats = update(dir)
    assert.are.same({ added = 0, reprocessed = 2, deleted = 0, unchanged = 1,
                      errors = 0 }, stats.components)
    assert.are.same({ calls = 2, hits = 0, misses = 2, errors = 0 },
                    stats.functions.greet)
    assert.are.same({ a = "bonjour ann", b = "bonjour bob", c = "3m" },
                    kv(dir .. "/out.json"))
    ph.write_pipeline(dir, pipeline("bonjour", "cm"))
    stats = update(dir)
    assert.are.equal(1, stats.components.reprocessed)
    assert.are.equal("3cm", kv(dir .. "/out.json").c)
  end)

  describe("errors", function()
    it("isolates a failing component and exits 1", function()
      ph.write_pipeline(dir, [[
local process = tide.fn("process", { memo = true }, function(item, out)
  if item.fail then error("cannot process " .. item.key) end
  out:declare(item.key, item.key)
end)
return tide.app("errs", function()
  local f = io.open("fail.txt")
  local failing = f and f:read("l")
  if f then f:close() end
  local items = {}
  for _, k in ipairs { "a", "b", "c" } do
    items[k] = { key = k, fail = k == failing }
  end
  tide.mount_each(process, items, kv("out.json"))
end)
]])
      helpers.write(dir .. "/fail.txt", "b\n")
      local stats, err, code = update(dir)
      assert.are.equal(1, code)
      assert.are.equal(2, stats.components.added)
      assert.are.equal(1, stats.components.errors)
      assert.are.same({ calls = 3, hits = 0, misses = 3, errors = 1 },
                      stats.functions.process)
      assert.matches("tide: component /process/b failed: ", err, 1, true)
      assert.matches("cannot process b\nstack traceback:", err, 1, true)
      assert.are.same({ a = "a", c = "c" }, kv(dir .. "/out.json"))
      -- Fixed: only the failed component runs again.
      os.remove(dir .. "/fail.txt")
      stats, err, code = update(dir)
      assert.are.equal(0, code, err)
      assert.are.same({ added = 1, reprocessed = 0, deleted = 0,
                        unchanged = 2, errors = 0 }, stats.components)
      assert.are.same({ a = "a", b = "b", c = "c" }, kv(dir .. "/out.json"))
    end)

    it("exits 2 on a syntax error in the pipeline", function()
      helpers.write(dir .. "/pipeline.lua", "return tide.app(\n")
      local stats, err, code = update(dir)
      assert.is_nil(stats)
      assert.are.equal(2, code)
      assert.matches("pipeline.lua:2: unexpected symbol near <eof>", err, 1,
                     true)
    end)

    it("exits 2 when main fails", function()
      ph.write_pipeline(dir, [[
return tide.app("bad", function() error("main is broken") end)]])
      local _, err, code = update(dir)
      assert.are.equal(2, code)
      assert.matches("main of app bad failed: .*main is broken", err)
      local _, reported = err:gsub("main is broken", "")
      assert.are.equal(1, reported)
    end)

    it("exits 2 when the file does not return an app", function()
      helpers.write(dir .. "/pipeline.lua", "return 42")
      local _, err, code = update(dir)
      assert.are.equal(2, code)
      assert.matches("must return an app", err, 1, true)
    end)

    it("names the function and argument that cannot be encoded", function()
      ph.write_pipeline(dir, [[
local inner = tide.fn("inner", { memo = true }, function(x, opts) return 1 end)
local process = tide.fn("process", { memo = true }, function(item, out)
  out:declare("k", inner(1, { callback = print }))
end)
return tide.app("enc", function()
  tide.mount(process, { }, kv("out.json"))
end)]])
      local _, err, code = update(dir)
      assert.are.equal(1, code)
      assert.matches("inner argument 2.callback: cannot encode a function",
                     err, 1, true)
    end)

    it("hands a pcall the argument's message without tide's position",
       function()
      ph.write_pipeline(dir, [[
local inner = tide.fn("inner", { memo = true }, function(x, opts) return 1 end)
local process = tide.fn("process", { memo = true }, function(item, out)
  local ok, err = pcall(inner, 1, { callback = print })
  out:declare("k", err)
end)
return tide.app("enc", function()
  tide.mount(process, { }, kv("out.json"))
end)]])
      local _, err, code = update(dir)
      assert.are.equal(0, code, err)
      assert.are.same({ k = "inner argument 2.callback: cannot encode a "
                        .. "function" }, ph.kv(dir .. "/out.json"))
    end)

    it("names both components declaring the same target key", function()
      ph.write_pipeline(dir, [[
local process = tide.fn("process", { memo = true }, function(item, out)
  out:declare("same", item)
end)
return tide.app("dup", function()
  tide.mount_each(process, { a = "a", b = "b" }, kv("out.json"))
end)]])
      local _, err, code = update(dir)
      assert.are.equal(1, code)
      assert.matches('target key "same" of out.json declared by both '
                     .. '/process/a and /process/b', err, 1, true)
    end)

    it("keeps a key for a carried-over component that a component run "
       .. "before it declared as well", function()
      -- x, run first, declares y's key k in v2; y is carried over after
      -- it, its record still declaring k: the conflict is reported (by the
      -- next update, where y runs), and once x lets k go it is y's again.
      ph.write_pipeline(dir, [[
local part = tide.fn("part", { memo = true }, function(name, v, out)
  if name == "y" or v == "v2" then out:declare("k", name) end
end)
return tide.app("taken", function()
  local f = io.open("version")
  local v = f and f:read("l") or "v1"
  if f then f:close() end
  local out = kv("out.json")
  tide.mount("x", part, "x", v, out)
  tide.mount("y", part, "y", "v1", out)
end)]])
      local _, err, code = update(dir)
      assert.are.equal(0, code, err)
      helpers.write(dir .. "/version", "v2\n")
      local errs = {}
      for _ = 1, 2 do
        _, err = update(dir)
        errs[#errs + 1] = err
      end
      assert.matches('target key "k" of out.json declared by both /x and /y',
                     table.concat(errs), 1, true)
      helpers.write(dir .. "/version", "v1\n")
      _, err, code = update(dir)
      assert.are.equal(0, code, err)
      assert.are.same({ k = "y" }, kv(dir .. "/out.json"))
    end)

    it("keeps a key for a component carried over inside a parent that "
       .. "ran again, when one run before it declared the key as well",
       function()
      -- g runs again (its input changed) and carries y over, after x took
      -- y's key k: g, recorded ok, would carry y's record, which still
      -- declares k, over from then on, and k be deleted once x lets it go.
      ph.write_pipeline(dir, [[
local part = tide.fn("part", { memo = true }, function(name, v, out)
  if name == "y" or v == "v2" then out:declare("k", name) end
end)
local group = tide.fn("group", { memo = true }, function(g, out)
  tide.mount("y", part, "y", "v1", out)
end)
local function read(file, default)
  local f = io.open(file)
  local v = f and f:read("l") or default
  if f then f:close() end
  return v
end
return tide.app("taken_below", function()
  local out = kv("out.json")
  tide.mount("x", part, "x", read("version", "v1"), out)
  tide.mount("g", group, read("group", "g1"), out)
end)]])
      local _, err, code = update(dir)
      assert.are.equal(0, code, err)
      helpers.write(dir .. "/version", "v2\n")
      helpers.write(dir .. "/group", "g2\n")
      _, err = update(dir)
      assert.are.same({ k = "x" }, kv(dir .. "/out.json"))
      helpers.write(dir .. "/version", "v1\n")
      _, err, code = update(dir)
      assert.are.equal(0, code, err)
      assert.are.same({ k = "y" }, kv(dir .. "/out.json"))
    end)

    it("refuses to mount inside a memoized function", function()
      ph.write_pipeline(dir, [[
local leaf = tide.fn("leaf", function() end)
local inner = tide.fn("inner", { memo = true }, function()
  tide.mount(leaf)
end)
local process = tide.fn("process", function() inner() end)
return tide.app("m", function() tide.mount(process) end)]])
      local _, err, code = update(dir)
      assert.are.equal(1, code)
      assert.matches("cannot mount a component inside memoized function inner",
                     err, 1, true)
    end)

    it("refuses two siblings on the same path", function()
      ph.write_pipeline(dir, [[
local leaf = tide.fn("leaf", function() end)
return tide.app("m", function()
  tide.mount("x", leaf)
  tide.mount("x", leaf)
end)]])
      local _, err, code = update(dir)
      assert.are.equal(2, code)
      assert.matches("two components mounted at the same path /x", err, 1,
                     true)
    end)

    it("says how to part two mount_each of one function whose items "
       .. "share a key", function()
      ph.write_pipeline(dir, [[
local leaf = tide.fn("leaf", function() end)
return tide.app("m", function()
  tide.mount_each(leaf, { a = 1, b = 2 })
  tide.mount_each(leaf, { b = 3 })
end)]])
      local _, err, code = update(dir)
      assert.are.equal(2, code)
      assert.matches("two components mounted at the same path /leaf/b "
        .. "(give each mount its own path: tide.mount_each(\"name\", fn, "
        .. "items, ...)", err, 1, true)
      assert.matches("pipeline%.lua:%d+: two components mounted", err)
    end)
  end)

  it("returns a child's value through use_mount and raises its failure", function()
    ph.write_pipeline(dir, [[
local double = tide.fn("double", { memo = true }, function(n)
  if n < 0 then error("negative") end
  return n * 2
end)
return tide.app("use", function()
  local out = kv("out.json")
  local v = tide.use_mount("d", double, 21)
  local ok, err = pcall(tide.use_mount, "neg", double, -1)
  tide.mount("write", tide.fn("write", function()
    out:declare("v", v)
    out:declare("err", tostring(err):match("negative") and "raised" or "?")
  end))
end)]])
    local stats, err = update(dir)
    assert.are.same({ v = 42, err = "raised" }, kv(dir .. "/out.json"), err)
    assert.are.equal(1, stats.components.errors)
    stats = update(dir)
    assert.are.same({ v = 42, err = "raised" }, kv(dir .. "/out.json"))
  end)

  it("mounts one component per item of a custom source", function()
    ph.write_pipeline(dir, [[
local cjson = require "cjson"
local numbers = tide.source {
  name = "numbers",
  items = function()
    local f = assert(io.open("n.json"))
    local t = cjson.decode(f:read("a"))
    f:close()
    local i = 0
    return function()
      i = i + 1
      if t[i] then return "n" .. i, t[i] end
    end
  end,
}
local square = tide.fn("square", { memo = true }, function(n, out, key)
  out:declare(("%d"):format(n), math.tointeger(n * n))
end)
return tide.app("src", function()
  tide.mount_each(square, numbers, kv("out.json"))
end)]])
    helpers.write(dir .. "/n.json", "[2, 3, 4]")
    local stats, err = update(dir)
    assert.are.equal(3, stats.components.added, err)
    assert.are.same({ ["2"] = 4, ["3"] = 9, ["4"] = 16 }, kv(dir .. "/out.json"))
    helpers.write(dir .. "/n.json", "[2, 5, 4]")
    stats = update(dir)
    assert.are.same({ added = 0, reprocessed = 1, deleted = 0, unchanged = 2,
                      errors = 0 }, stats.components)
    assert.are.same({ ["2"] = 4, ["5"] = 25, ["4"] = 16 }, kv(dir .. "/out.json"))
    local out = ph.tide(dir, "show pipeline.lua /square/n2")
    assert.matches("/square/n2%s+square%s+ok%s+1 target states", out)
  end)

  it("runs an auto_refresh component on every update", function()
    ph.write_pipeline(dir, [[
local fetch = tide.fn("fetch", { memo = true }, function(out)
  local f = assert(io.open("remote.txt"))
  out:declare("remote", f:read("a"))
  f:close()
end)
return tide.app("refresh", function()
  tide.auto_refresh(fetch, 60, kv("out.json"))
end)]])
    helpers.write(dir .. "/remote.txt", "v1")
    local stats, err = update(dir)
    assert.are.equal(1, stats.components.added, err)
    helpers.write(dir .. "/remote.txt", "v2")
    stats = update(dir)
    assert.are.same({ added = 0, reprocessed = 1, deleted = 0, unchanged = 0,
                      errors = 0 }, stats.components)
    assert.are.equal("v2", kv(dir .. "/out.json").remote)
  end)

  it("answers show, why and ls from the store", function()
    ph.write_pipeline(dir, keyed_pipeline())
    write_items(dir, items(2))
    update(dir)
    local out, err, code = ph.tide(dir, "show pipeline.lua --json")
    assert.are.equal(0, code, err)
    local shown = cjson.decode(out)
    assert.are.equal("items", shown.app)
    assert.are.equal(3, #shown.components)
    assert.are.equal("/process/k1", shown.components[2].path)
    assert.are.same({ { target = "out.json", key = "k1", pending = false } },
                    shown.components[2].target_states)
    out, err, code = ph.tide(dir, "why pipeline.lua out.json k2 --json")
    assert.are.equal(0, code, err)
    local why = cjson.decode(out)
    assert.are.equal("/process/k2", why.owner)
    assert.are.equal("process", why.fn)
    assert.are.equal("applied", why.state)
    out, err, code = ph.tide(dir, "why pipeline.lua out.json nope")
    assert.are.equal(1, code)
    assert.are.equal("tide: out.json has no target state with key nope\n", err)
    out, err, code = ph.tide(dir, "why pipeline.lua nosuch k1")
    assert.are.equal(1, code)
    assert.matches("app items has no target named nosuch", err, 1, true)
    out, err, code = ph.tide(dir, "ls --db .tide/state.db --json")
    assert.are.equal(0, code, err)
    local apps = cjson.decode(out)
    assert.are.equal("items", apps[1].name)
    assert.are.equal("ok", apps[1].status)
    local _, err2, code2 = ph.tide(dir, "ls --db nowhere.db")
    assert.are.equal(2, code2)
    assert.matches("nowhere.db", err2, 1, true)
  end)

  it("shows a progress line on a terminal for runs over a second", function()
    ph.write_pipeline(dir, [[
local slow = tide.fn("slow", { memo = true }, function(i)
  local t = os.clock()
  while os.clock() - t < 0.01 do end
end)
local items = {}
for i = 1, 150 do items["k" .. i] = i end
return tide.app("slow", function() tide.mount_each(slow, items) end)]])
    -- script(1) gives tide a terminal; its stdout carries both streams.
    local out, err, code = helpers.run(("cd %s && script -qec %s /dev/null")
      :format(helpers.q(dir), helpers.q(helpers.q(helpers.tide)
      .. " update pipeline.lua")))
    assert.are.equal(0, code, err)
    assert.matches("\r\27%[Ktide: %d+/151 components, [%d.]+/s, "
                   .. "1%.%d s elapsed, ETA %d+ s", out)
    assert.matches("\r\27%[Kslow: components 150 added", out)
    -- Without a terminal, nothing on stderr.
    os.execute("rm -rf " .. helpers.q(dir .. "/.tide"))
    local _, err2 = ph.tide(dir, "update pipeline.lua")
    assert.are.equal("", err2)
  end)

  it("previews changes without making them", function()
    ph.write_pipeline(dir, keyed_pipeline())
    write_items(dir, items(2))
    local out, err, code = ph.tide(dir, "update pipeline.lua --preview")
    assert.are.equal(0, code, err)
    assert.matches('insert out.json "k1"\ninsert out.json "k2"\n', out, 1,
                   true)
    assert.is_nil(kv(dir .. "/out.json"))
    -- With --json, the changes are members of the one JSON object.
    out, err, code = ph.tide(dir, "update pipeline.lua --preview --json")
    assert.are.equal(0, code, err)
    local r = require("cjson").decode(out)
    assert.are.same({ { op = "insert", target = "out.json", key = "k1" },
                      { op = "insert", target = "out.json", key = "k2" } },
                    r.changes)
    assert.are.equal(2, r.targets.inserted)
    assert.is_nil(kv(dir .. "/out.json"))
    local stats = update(dir)
    assert.are.equal(2, stats.components.added)
  end)

  it("keeps the store bounded when one item is edited many times", function()
    ph.write_pipeline(dir, keyed_pipeline())
    write_items(dir, items(3))
    update(dir)
    local memos = ph.store_count(dir, "SELECT count(*) FROM memos")
    for i = 1, 12 do
      local t = items(3)
      t.k1 = "edit " .. i
      write_items(dir, t)
      update(dir)
    end
    assert.are.equal(memos, ph.store_count(dir, "SELECT count(*) FROM memos"))
    assert.are.equal(4, ph.store_count(dir, "SELECT count(*) FROM components"))
  end)

  it("drop leaves the targets as before the first run and forgets the app",
     function()
    ph.write_pipeline(dir, keyed_pipeline())
    write_items(dir, items(3))
    update(dir)
    assert.is_table(kv(dir .. "/out.json"))
    local out, err, code = ph.tide(dir, "drop pipeline.lua --force")
    assert.are.equal(0, code, err)
    assert.are.equal("dropped app items: 3 target states deleted\n", out)
    assert.is_nil(kv(dir .. "/out.json"))
    assert.are.equal(0, ph.store_count(dir, "SELECT count(*) FROM apps"))
    assert.are.equal(0, ph.store_count(dir, "SELECT count(*) FROM components"))
    assert.are.equal(0, ph.store_count(dir, "SELECT count(*) FROM memos"))
    -- Once more: nothing of it is left to drop, and it says so.
    out, err, code = ph.tide(dir, "drop pipeline.lua --force")
    assert.are.equal(0, code, err)
    assert.matches("^nothing to drop: app items has no state in ", out)
  end)

  it("records a memo hit's dependencies in every component that hits it",
     function()
    ph.write_pipeline(dir, [[
local f = assert(io.open("factor.txt"))
local factor = f:read("a")
f:close()
local FACTOR = tide.key("factor", { detect_change = true })
local mid = tide.fn("mid", { memo = true }, function(x)
  return x * tonumber(tide.use(FACTOR))
end)
local base = tide.fn("base", { memo = true }, function() return 0 end)
local use = tide.fn("use", { memo = true }, function(key, out)
  -- base first: mid's hit is then answered where the fast path would be
  -- taken, were it not for the dependency to record.
  out:declare(key, base() + mid(1))
end)
return tide.app("deps", function()
  tide.mount_each(use, { a = "a", b = "b" }, kv("out.json"))
end, { context = { [FACTOR] = factor } })]])
    helpers.write(dir .. "/factor.txt", "2")
    local stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    -- b's call of mid was a hit of the entry a's call made this run: the
    -- context mid read is b's dependency too.
    assert.are.same({ calls = 2, hits = 1, misses = 1, errors = 0 },
                    stats.functions.mid)
    assert.are.same({ a = 2, b = 2 }, kv(dir .. "/out.json"))
    helpers.write(dir .. "/factor.txt", "3")
    stats, err, code = update(dir)
    assert.are.equal(0, code, err)
    assert.are.equal(2, stats.components.reprocessed)
    assert.are.same({ a = 3, b = 3 }, kv(dir .. "/out.json"))
  end)

  it("exits 2 while another update holds the store", function()
    ph.write_pipeline(dir, [[
return tide.app("slow", function() os.execute("sleep 2") end)]])
    local pid_file = dir .. "/pid"
    os.execute(("(%s update %s/pipeline.lua --quiet & echo $! > %s; wait) "
      .. ">/dev/null 2>&1 &"):format(helpers.q(helpers.tide), helpers.q(dir),
      helpers.q(pid_file)))
    os.execute("sleep 0.7")
    local _, err, code = update(dir)
    assert.are.equal(2, code)
    assert.matches("locked by another running update", err, 1, true)
    os.execute("sleep 2")
  end)
end)
