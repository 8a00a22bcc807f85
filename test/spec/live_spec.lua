-- Live mode (issue 10): `tide live` catches up, then watches the folders
-- of its fs.walk sources through inotify and applies each change, with
-- real files, real file events, a real SQLite target and a real process
-- stopped by real signals.
local helpers = require "test.spec.helpers"
local sqlite = require "tide.sqlite"
local cjson = require "cjson"

local q, exists, wait_for = helpers.q, helpers.exists, helpers.wait_for

-- One row per Markdown file under docs: its path and its first line.
local PIPELINE = [[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", {
  { "path", "string", key = true },
  { "title", "string" },
})
local index_file = tide.fn("index_file", { memo = true }, function(file, docs)
  docs:row(Doc { path = file.path, title = file:text():match("^[^\n]*") })
end)
return tide.app("live", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(index_file, fs.walk("docs", { include = { "**/*.md" },
                                                live = LIVE }), docs)
end)
]]

-- A tide.source over the lines "key value" of feed.txt, whose watch
-- function polls the file every 20 ms and emits what changed.
local FEED_PIPELINE = [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", {
  { "path", "string", key = true },
  { "title", "string" },
})
local function load()
  local t = {}
  local f = io.open("feed.txt")
  for line in f:lines() do
    local k, v = line:match("^(%S+) (.*)$")
    if k then t[k] = { key = k, title = v } end
  end
  f:close()
  return t
end
local feed = tide.source { name = "feed",
  items = function()
    local f = io.open("listed", "a")
    f:write("x")
    f:close()
    return load()
  end,
  watch = function(emit)
    local last = load()
    while true do
      tide.sleep(0.02)
      local now = load()
      --FAIL--
      for k, v in pairs(now) do
        if not last[k] or last[k].title ~= v.title then emit(k, v) end
      end
      for k in pairs(last) do
        if now[k] == nil then emit(k, nil) end
      end
      last = now
    end
  end,
}
local each = tide.fn("each", { memo = true }, function(item, docs)
  docs:row(Doc { path = item.key, title = item.title })
end)
return tide.app("feed", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(each, feed, docs)
end)
]]

-- Another app, for the same store, whose one component holds the
-- store's writer lock for a second and a half.
local SLOW_PIPELINE = [[
local tide = require "tide"
local wait = tide.fn("wait", function()
  local f = io.open("holding", "w")
  f:close()
  tide.sleep(1.5)
end)
return tide.app("slow", function() tide.mount(wait, "only") end)
]]

local running = {}

-- Starts `tide live pipeline.lua --json ARGS` in dir; returns its pid
-- once it watches (after its catch-up cycle).
local function start(dir, args)
  local pid = helpers.start_live(dir, args)
  running[#running + 1] = pid
  return pid
end

-- Sends sig and waits for the exit status.
local function stop(dir, pid, sig)
  os.execute(("kill -%s %d"):format(sig or "INT", pid))
  assert.is_true(wait_for(function()
    return (helpers.read(dir .. "/status") or ""):match("%d") ~= nil
  end, 60), "tide live did not exit")
  return tonumber(helpers.read(dir .. "/status"):match("%d+"))
end

-- One `tide update --json` in dir, which must pass: its components'
-- counts.
local function updated_components(dir)
  local out, err, code = helpers.run(("cd %s && %s update pipeline.lua "
    .. "--json"):format(q(dir), helpers.tide))
  assert(code == 0, tostring(err) .. out)
  return cjson.decode(out).components
end

-- path -> title, as the target holds them now.
local function rows(dir)
  local db = sqlite.open(dir .. "/out.db")
  if not db then return {} end
  local ok, list = pcall(db.rows, db, "SELECT path, title FROM docs")
  db:close()
  local t = {}
  for _, r in ipairs(ok and list or {}) do t[r.path] = r.title end
  return t
end

local function same(a, b)
  for k, v in pairs(a) do if b[k] ~= v then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- Waits until the target holds exactly want.
local function reaches(dir, want, seconds)
  local ok = wait_for(function() return same(rows(dir), want) end,
                      seconds or 20)
  if not ok then
    assert.are.same(want, rows(dir), "live mode's output:\n"
      .. tostring(helpers.read(dir .. "/stdout"))
      .. tostring(helpers.read(dir .. "/stderr")))
  end
end

-- The stats lines printed so far.
local function cycles(dir)
  local list = {}
  for line in (helpers.read(dir .. "/stdout") or ""):gmatch("[^\n]+") do
    list[#list + 1] = cjson.decode(line)
  end
  return list
end

-- Asserts that live mode in dir stops starting cycles: none for half a
-- second within 10 s, then none for a second more.
local function comes_to_rest(dir)
  local function count() return #cycles(dir) end
  local settled = wait_for(function()
    local n = count()
    os.execute("sleep 0.5")
    return count() == n
  end, 10)
  assert.is_true(settled, "cycles go on: " .. count())
  local n = count()
  os.execute("sleep 1")
  assert.are.equal(n, count())
end

local function setup(live)
  local dir = helpers.tmpdir()
  helpers.write(dir .. "/pipeline.lua",
                (PIPELINE:gsub("LIVE", tostring(live ~= false))))
  helpers.write(dir .. "/docs/a.md", "alpha\n")
  helpers.write(dir .. "/docs/b.md", "beta\n")
  helpers.write(dir .. "/docs/c.md", "gamma\n")
  return dir
end

describe("tide live", function()
  after_each(function()
    for _, pid in ipairs(running) do os.execute("kill -9 " .. pid
      .. " 2>/dev/null") end
    running = {}
    helpers.cleanup()
  end)

  it("names itself, not tide update, in what it says of its arguments",
     function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", PIPELINE)
    local function said(args)
      local out, err, code = helpers.run(("cd %s && %s live pipeline.lua %s")
        :format(q(dir), helpers.tide, args))
      assert.are.equal(2, code, out)
      return err:match("^[^\n]*")
    end
    assert.are.equal("tide: live: --jobs must be a positive integer, at most "
                     .. "1024", said("--jobs 0"))
    assert.are.equal("tide: live: unknown option --bogus", said("--bogus"))
    assert.are.equal("tide: live: --preview is for tide update: live mode "
                     .. "writes as it goes", said("--preview"))
    assert.are.equal("tide: live: --rescan must be a positive number of "
                     .. "seconds", said("--rescan -1"))
    assert.are.equal("tide: live: --workers must be a positive integer",
                     said("--workers x"))
    assert.are.equal("tide: live: expected one pipeline file",
                     said("other.lua"))
    -- tide update says what it always said.
    local _, err = helpers.run(("cd %s && %s update pipeline.lua --live "
      .. "--preview"):format(q(dir), helpers.tide))
    assert.are.equal("tide: update: --live cannot --preview: live mode "
                     .. "writes as it goes\n", err)
  end)

  it("says what it watches again when a cycle changed it", function()
    local dir = setup()
    local pid = start(dir)
    local function said()
      local list = {}
      for n in (helpers.read(dir .. "/stderr") or ""):gmatch(
          "watching (%d+) folders? for changes") do
        list[#list + 1] = tonumber(n)
      end
      return list
    end
    assert.are.same({ 1 }, said())
    helpers.write(dir .. "/docs/sub/d.md", "delta\n")
    reaches(dir, { ["a.md"] = "alpha", ["b.md"] = "beta", ["c.md"] = "gamma",
                   ["sub/d.md"] = "delta" })
    assert.is_true(wait_for(function() return #said() == 2 end, 10),
                   helpers.read(dir .. "/stderr"))
    assert.are.same({ 1, 2 }, said())
    -- A cycle that watches what it watched says nothing more.
    helpers.write(dir .. "/docs/a.md", "alpha 2\n")
    reaches(dir, { ["a.md"] = "alpha 2", ["b.md"] = "beta",
                   ["c.md"] = "gamma", ["sub/d.md"] = "delta" })
    assert.are.same({ 1, 2 }, said())
    assert.are.equal(0, stop(dir, pid, "INT"))
  end)

  it("applies a create, a modify, a delete and a rename, a new folder and "
     .. "a deleted one, and exits 0 on SIGINT", function()
    local dir = setup()
    local pid = start(dir)
    reaches(dir, { ["a.md"] = "alpha", ["b.md"] = "beta", ["c.md"] = "gamma" })
    helpers.write(dir .. "/docs/d.md", "delta\n")
    reaches(dir, { ["a.md"] = "alpha", ["b.md"] = "beta", ["c.md"] = "gamma",
                   ["d.md"] = "delta" })
    helpers.write(dir .. "/docs/a.md", "ALPHA\n")
    reaches(dir, { ["a.md"] = "ALPHA", ["b.md"] = "beta", ["c.md"] = "gamma",
                   ["d.md"] = "delta" })
    os.remove(dir .. "/docs/b.md")
    reaches(dir, { ["a.md"] = "ALPHA", ["c.md"] = "gamma",
                   ["d.md"] = "delta" })
    assert(os.rename(dir .. "/docs/c.md", dir .. "/docs/e.md"))
    reaches(dir, { ["a.md"] = "ALPHA", ["e.md"] = "gamma",
                   ["d.md"] = "delta" })
    -- A folder made after the start, with files, then one more file in
    -- it: the folder is watched as soon as it appears.
    os.execute("mkdir -p " .. q(dir .. "/docs/new/deep"))
    helpers.write(dir .. "/docs/new/deep/f.md", "phi\n")
    reaches(dir, { ["a.md"] = "ALPHA", ["e.md"] = "gamma", ["d.md"] = "delta",
                   ["new/deep/f.md"] = "phi" })
    helpers.write(dir .. "/docs/new/deep/g.md", "gee\n")
    reaches(dir, { ["a.md"] = "ALPHA", ["e.md"] = "gamma", ["d.md"] = "delta",
                   ["new/deep/f.md"] = "phi", ["new/deep/g.md"] = "gee" })
    -- A folder moved in whole, then one deleted whole.
    os.execute("mkdir -p " .. q(dir .. "/outside/m"))
    helpers.write(dir .. "/outside/m/h.md", "aitch\n")
    assert(os.rename(dir .. "/outside/m", dir .. "/docs/m"))
    reaches(dir, { ["a.md"] = "ALPHA", ["e.md"] = "gamma", ["d.md"] = "delta",
                   ["new/deep/f.md"] = "phi", ["new/deep/g.md"] = "gee",
                   ["m/h.md"] = "aitch" })
    os.execute("rm -r " .. q(dir .. "/docs/new"))
    reaches(dir, { ["a.md"] = "ALPHA", ["e.md"] = "gamma", ["d.md"] = "delta",
                   ["m/h.md"] = "aitch" })
    -- A file in the folder moved in is watched too.
    helpers.write(dir .. "/docs/m/h.md", "AITCH\n")
    reaches(dir, { ["a.md"] = "ALPHA", ["e.md"] = "gamma", ["d.md"] = "delta",
                   ["m/h.md"] = "AITCH" })
    assert.are.equal(0, stop(dir, pid, "INT"))
    -- One JSON object per cycle: the catch-up, then the changes.
    local list = cycles(dir)
    assert.is_true(#list >= 8)
    assert.are.equal(3, list[1].components.added)
    -- The store agrees: a catch-up run now changes nothing.
    local out = helpers.run(("cd %s && %s update pipeline.lua --json")
      :format(q(dir), q(helpers.tide)))
    local stats = cjson.decode(out)
    assert.are.equal(4, stats.components.unchanged)
    assert.are.equal(0, stats.components.added + stats.components.reprocessed
                        + stats.components.deleted)
  end)

  it("applies three files changed at the same instant, and ends a burst "
     .. "of 50 edits of one file with its last content in a few cycles",
     function()
    local dir = setup()
    local pid = start(dir)
    os.execute(("cd %s && printf 'A1\\n' >a.md && printf 'B1\\n' >b.md && "
      .. "printf 'C1\\n' >c.md"):format(q(dir .. "/docs")))
    reaches(dir, { ["a.md"] = "A1", ["b.md"] = "B1", ["c.md"] = "C1" })
    local before = #cycles(dir)
    os.execute(("cd %s && i=1; while [ $i -le 50 ]; do "
      .. "printf 'edit %%s\\n' $i >a.md; i=$((i+1)); done")
      :format(q(dir .. "/docs")))
    reaches(dir, { ["a.md"] = "edit 50", ["b.md"] = "B1", ["c.md"] = "C1" })
    -- Let any cycle still due end, then count the reprocesses.
    os.execute("sleep 0.3")
    local reprocessed = 0
    local list = cycles(dir)
    for i = before + 1, #list do
      reprocessed = reprocessed + list[i].components.reprocessed
    end
    assert.is_true(reprocessed >= 1 and reprocessed <= 5,
                   "reprocessed " .. reprocessed .. " times")
    assert.are.equal(0, stop(dir, pid, "TERM"))
  end)

  it("ends a stream of random changes as a fresh catch-up run does",
     function()
    local dir = setup()
    local pid = start(dir)
    math.randomseed(7)
    for i = 1, 500 do
      local name = ("docs/%s/f%d.md"):format(
        ({ "x", "y", "x/z" })[math.random(3)], math.random(40))
      local r = math.random(10)
      if r <= 7 then
        helpers.write(dir .. "/" .. name, "v" .. i .. "\n")
      elseif r <= 9 then
        os.remove(dir .. "/" .. name)
      else
        os.rename(dir .. "/" .. name, dir .. "/" .. name .. ".md")
      end
    end
    -- The reference: a fresh catch-up run over the same files, with its
    -- own store and target.
    local ref = helpers.tmpdir()
    os.execute(("cp -r %s/docs %s/pipeline.lua %s/"):format(q(dir), q(dir),
                                                           q(ref)))
    local _, err, code = helpers.run(("cd %s && %s update pipeline.lua")
      :format(q(ref), q(helpers.tide)))
    assert.are.equal(0, code, err)
    reaches(dir, rows(ref), 30)
    assert.are.equal(0, stop(dir, pid, "INT"))
  end)

  it("converges after SIGKILL, with files deleted while it was down",
     function()
    local dir = setup()
    local pid = start(dir)
    helpers.write(dir .. "/docs/d.md", "delta\n")
    reaches(dir, { ["a.md"] = "alpha", ["b.md"] = "beta", ["c.md"] = "gamma",
                   ["d.md"] = "delta" })
    assert.are.equal(137, stop(dir, pid, "KILL"))
    os.remove(dir .. "/docs/a.md")
    helpers.write(dir .. "/docs/b.md", "BETA\n")
    for _, f in ipairs { "status", "stdout", "stderr", "pid" } do
      os.remove(dir .. "/" .. f)
    end
    pid = start(dir)
    reaches(dir, { ["b.md"] = "BETA", ["c.md"] = "gamma",
                   ["d.md"] = "delta" })
    assert.are.equal(0, stop(dir, pid, "INT"))
  end)

  it("refills a target database deleted while it runs at its next cycle",
     function()
    local dir = setup()
    local pid = start(dir)
    reaches(dir, { ["a.md"] = "alpha", ["b.md"] = "beta", ["c.md"] = "gamma" })
    for _, side in ipairs { "", "-wal", "-shm" } do
      os.remove(dir .. "/out.db" .. side)
    end
    helpers.write(dir .. "/docs/a.md", "ALPHA\n")
    -- Every row again, not only the changed file's.
    reaches(dir, { ["a.md"] = "ALPHA", ["b.md"] = "beta", ["c.md"] = "gamma" })
    assert.are.equal(0, stop(dir, pid, "TERM"))
  end)

  it("waits for another update that holds the store to catch up, rather "
     .. "than exit", function()
    local dir = setup()
    local _, err, code = helpers.run(("cd %s && %s update pipeline.lua "
      .. "--quiet"):format(q(dir), q(helpers.tide)))
    assert.are.equal(0, code, err)
    helpers.write(dir .. "/slow.lua", SLOW_PIPELINE)
    os.execute(("cd %s && %s update slow.lua --db .tide/state.db --quiet "
      .. ">slow.out 2>&1 &"):format(q(dir), q(helpers.tide)))
    assert.is_true(wait_for(function() return exists(dir .. "/holding") end,
                            30), "the other update never started")
    -- The catch-up, tried again, is still the one asked for.
    local pid = start(dir, "--full-reprocess")
    reaches(dir, { ["a.md"] = "alpha", ["b.md"] = "beta", ["c.md"] = "gamma" })
    assert.matches("state.db: locked by another running update %(pid %d+%); "
      .. "trying again in 800 ms", helpers.read(dir .. "/stderr"))
    assert.are.equal(3, cycles(dir)[1].components.reprocessed)
    assert.are.equal(0, stop(dir, pid, "TERM"))
    assert.are.equal("", helpers.read(dir .. "/slow.out"))
  end)

  it("tries a cycle again once another update lets the store go, with no "
     .. "other change", function()
    local dir = setup()
    local pid = start(dir)
    reaches(dir, { ["a.md"] = "alpha", ["b.md"] = "beta", ["c.md"] = "gamma" })
    helpers.write(dir .. "/slow.lua", SLOW_PIPELINE)
    os.execute(("cd %s && %s update slow.lua --db .tide/state.db --quiet "
      .. ">slow.out 2>&1 &"):format(q(dir), q(helpers.tide)))
    assert.is_true(wait_for(function() return exists(dir .. "/holding") end,
                            30), "the other update never started")
    helpers.write(dir .. "/docs/b.md", "BETA\n")
    -- The change's cycle finds the store locked; nothing else changes,
    -- and the next rescan is an hour away: the row comes from the try
    -- after the lock is let go.
    reaches(dir, { ["a.md"] = "alpha", ["b.md"] = "BETA", ["c.md"] = "gamma" })
    -- Said once the wait reaches 800 ms (a short one is routine).
    local said = helpers.read(dir .. "/stderr")
    assert.matches("state.db: locked by another running update %(pid %d+%); "
      .. "trying again in 800 ms", said)
    assert.is_nil(said:find("in 100 ms", 1, true), said)
    assert.are.equal(0, stop(dir, pid, "TERM"))
    assert.are.equal("", helpers.read(dir .. "/slow.out"))
  end)

  it("runs again a memoized component whose own walk's folder changed, "
     .. "in an update and once it watches after a restart", function()
    -- One component per folder under data, memoized on the folder's
    -- name: it lists the folder itself (a row per file, and the count).
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [=[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", { { "path", "string", key = true },
                                 { "title", "string" } })
local per_folder = tide.fn("per_folder", { memo = true }, function(name, docs)
  local n = 0
  for path, file in fs.walk("data/" .. name):items() do
    n = n + 1
    docs:row(Doc { path = name .. "/" .. path,
                   title = file:text():match("^[^\n]*") })
  end
  docs:row(Doc { path = name, title = tostring(n) })
end)
return tide.app("walk_deps", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  for _, name in ipairs { "a", "b" } do
    tide.mount(tide.path("folder", name), per_folder, name, docs)
  end
end)
]=])
    helpers.write(dir .. "/data/a/x.md", "ex\n")
    helpers.write(dir .. "/data/b/y.md", "why\n")
    local function update() return updated_components(dir) end
    assert.are.equal(2, update().added)
    assert.are.equal(2, update().unchanged)
    helpers.write(dir .. "/data/a/z.md", "zed\n")
    local c = update()
    assert.are.equal(1, c.reprocessed)
    assert.are.equal(1, c.unchanged)
    assert.are.same({ a = "2", ["a/x.md"] = "ex", ["a/z.md"] = "zed",
                      b = "1", ["b/y.md"] = "why" }, rows(dir))
    -- Live mode after a restart: both carried over, their folders
    -- watched all the same.
    local pid = start(dir)
    assert.truthy(helpers.read(dir .. "/stderr"):find("watching 2 folders",
                                                      1, true))
    helpers.write(dir .. "/data/b/w.md", "double\n")
    os.remove(dir .. "/data/a/x.md")
    reaches(dir, { a = "1", ["a/z.md"] = "zed", b = "2",
                   ["b/w.md"] = "double", ["b/y.md"] = "why" })
    assert.are.equal(0, stop(dir, pid, "INT"))
  end)

  it("checks a folder or a file a memoized component read at every cycle "
     .. "of a session, not only at its first", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/main.lua", [=[
local tide = require "tide"
local fs = require "tide.fs"
local list = tide.fn("list", { memo = true }, function(name, out)
  local names = {}
  if name == "lines" then
    for key in tide.json.lines("docs/items.jsonl", { key = "id" }):items() do
      names[#names + 1] = key
    end
  else
    for key in fs.walk("docs/" .. name):items() do names[#names + 1] = key end
  end
  table.sort(names)
  out:file(name .. ".txt", table.concat(names, " "))
end)
return tide.app("session_deps", function()
  tide.mount_each(list, { x = "x", lines = "lines" }, fs.dir("out"))
end)
]=])
    helpers.write(dir .. "/docs/x/a.txt", "a")
    helpers.write(dir .. "/docs/items.jsonl", '{"id": "j1"}\n')
    -- Carried over by the session's first cycle, then changed.
    helpers.write(dir .. "/drive.lua", [=[
local app = dofile("main.lua")
local function cycle()
  local s = assert(app:update{})
  io.write(s.components.reprocessed, " ", s.components.unchanged, "\n")
end
cycle()
local f = assert(io.open("docs/x/b.txt", "w")) f:write("b") f:close()
cycle()
cycle()
f = assert(io.open("docs/items.jsonl", "a")) f:write('{"id": "j2"}\n') f:close()
cycle()
]=])
    local _, err, code = helpers.run(("cd %s && %s update main.lua")
      :format(q(dir), helpers.tide))
    assert.are.equal(0, code, err)
    local out
    out, err, code = helpers.run(("cd %s && %s run drive.lua")
      :format(q(dir), helpers.tide))
    assert.are.equal(0, code, err)
    assert.are.equal("0 2\n1 1\n0 2\n1 1\n", out)
    assert.are.equal("a.txt b.txt", helpers.read(dir .. "/out/x.txt"))
    assert.are.equal("j1 j2", helpers.read(dir .. "/out/lines.txt"))
  end)

  it("runs again a memoized component whose own JSON Lines file or "
     .. "database changed, in an update and once it watches after a restart",
     function()
    -- One component per source, memoized on its name: it reads the
    -- source itself (a row per item).
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [=[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", { { "path", "string", key = true },
                                 { "title", "string" } })
local read = tide.fn("read", { memo = true }, function(name, docs)
  local source = name == "lines"
    and tide.json.lines("data/items.jsonl", { key = "id" })
    or sqlite.rows("data/src.db", "SELECT id, title FROM t", { key = "id" })
  for key, item in source:items() do
    docs:row(Doc { path = name .. "/" .. key, title = item.title })
  end
end)
return tide.app("file_deps", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  for _, name in ipairs { "lines", "rows" } do
    tide.mount(tide.path("source", name), read, name, docs)
  end
end)
]=])
    helpers.write(dir .. "/data/items.jsonl", '{"id": "j1", "title": "one"}\n')
    local function src(sql)
      local db = assert(sqlite.open(dir .. "/data/src.db", "create"))
      assert(db:exec(sql))
      db:close()
    end
    src("PRAGMA journal_mode = WAL; CREATE TABLE t(id TEXT PRIMARY KEY, "
        .. "title TEXT); INSERT INTO t VALUES ('s1', 'first')")
    local function update() return updated_components(dir) end
    assert.are.equal(2, update().added)
    assert.are.equal(2, update().unchanged)
    helpers.write(dir .. "/data/items.jsonl", '{"id": "j1", "title": "ONE"}\n')
    local c = update()
    assert.are.equal(1, c.reprocessed)
    assert.are.equal(1, c.unchanged)
    src("INSERT INTO t VALUES ('s2', 'second')")
    c = update()
    assert.are.equal(1, c.reprocessed)
    assert.are.same({ ["lines/j1"] = "ONE", ["rows/s1"] = "first",
                      ["rows/s2"] = "second" }, rows(dir))
    -- Settled (the read that checkpointed the log is behind it).
    update()
    assert.are.equal(2, update().unchanged)
    -- Live mode after a restart: both carried over, their files watched
    -- all the same.
    local pid = start(dir)
    assert.truthy(helpers.read(dir .. "/stderr"):find(
      "watching 0 folders and 2 files", 1, true),
      helpers.read(dir .. "/stderr"))
    helpers.write(dir .. "/data/items.jsonl", '{"id": "j2", "title": "two"}\n')
    src("UPDATE t SET title = 'FIRST' WHERE id = 's1'")
    reaches(dir, { ["lines/j2"] = "two", ["rows/s1"] = "FIRST",
                   ["rows/s2"] = "second" })
    assert.are.equal(0, stop(dir, pid, "INT"))
  end)

  it("watches again a walked folder deleted or moved away and made again",
     function()
    local dir = setup()
    local pid = start(dir)
    assert.is_true(os.execute("rm -rf " .. q(dir .. "/docs")))
    assert.is_true(wait_for(function()
      return (helpers.read(dir .. "/stderr") or ""):find(
        "no such file or directory", 1, true) ~= nil
    end, 20))
    helpers.write(dir .. "/docs/d.md", "delta\n")
    reaches(dir, { ["d.md"] = "delta" })
    -- Watched again: a later change is seen, not left to the rescan.
    helpers.write(dir .. "/docs/e.md", "epsilon\n")
    reaches(dir, { ["d.md"] = "delta", ["e.md"] = "epsilon" })
    -- Moved away (the watch would follow it) and another made in its place.
    assert(os.rename(dir .. "/docs", dir .. "/away"))
    helpers.write(dir .. "/away/x.md", "not here\n")
    helpers.write(dir .. "/docs/f.md", "phi\n")
    reaches(dir, { ["f.md"] = "phi" })
    helpers.write(dir .. "/docs/g.md", "gamma\n")
    reaches(dir, { ["f.md"] = "phi", ["g.md"] = "gamma" })
    assert.are.equal(0, stop(dir, pid, "INT"))
    local said = helpers.read(dir .. "/stderr") or ""
    assert.is_nil(said:find("cannot watch", 1, true), said)
  end)

  it("says that the pipeline or a module of it changed, and runs no cycle "
     .. "for it", function()
    local dir = setup()
    helpers.write(dir .. "/titles.lua", "return { first = 1 }\n")
    helpers.write(dir .. "/pipeline.lua", 'local titles = require "titles"\n'
                  .. helpers.read(dir .. "/pipeline.lua"))
    local pid = start(dir)
    local before = #cycles(dir)
    for _, name in ipairs { "pipeline.lua", "titles.lua" } do
      helpers.write(dir .. "/" .. name, helpers.read(dir .. "/" .. name)
                    .. "-- edited\n")
      assert.is_true(wait_for(function()
        return (helpers.read(dir .. "/stderr") or ""):find(dir .. "/" .. name
          .. " changed: live mode runs the code it loaded; restart it to "
          .. "run the new code", 1, true) ~= nil
      end, 20), helpers.read(dir .. "/stderr"))
    end
    os.execute("sleep 0.3")
    assert.are.equal(before, #cycles(dir))
    -- Data changes go on as before.
    helpers.write(dir .. "/docs/a.md", "ALPHA\n")
    reaches(dir, { ["a.md"] = "ALPHA", ["b.md"] = "beta", ["c.md"] = "gamma" })
    assert.are.equal(0, stop(dir, pid, "INT"))
  end)

  it("lists whole, at the next cycle, a folder whose emptying it refused",
     function()
    local dir = setup()
    for i = 1, 120 do
      helpers.write(("%s/docs/n%03d.md"):format(dir, i), "n" .. i .. "\n")
    end
    local pid = start(dir)
    assert.are.equal(123, #cycles(dir) > 0 and cycles(dir)[1].components.added)
    -- Emptied at once (a cycle between two of many deletions would see
    -- the folder half full): refused, as a disk unmounted would be.
    assert(os.rename(dir .. "/docs", dir .. "/gone"))
    assert.is_true(os.execute("mkdir " .. q(dir .. "/docs")))
    assert.is_true(wait_for(function()
      return (helpers.read(dir .. "/stderr") or ""):find(
        "returned no items where it had 123", 1, true) ~= nil
    end, 20))
    -- The next change: the folder is listed whole, the deletions the
    -- refused cycle kept are made.
    helpers.write(dir .. "/docs/new.md", "new\n")
    reaches(dir, { ["new.md"] = "new" })
    assert.are.equal(0, stop(dir, pid, "INT"))
  end)

  it("leaves a walk with live = false to the periodic rescan", function()
    local dir = setup(false)
    local pid = start(dir, "--rescan 1")
    helpers.write(dir .. "/docs/a.md", "ALPHA\n")
    -- Not watched: found by the rescan, within about a second.
    reaches(dir, { ["a.md"] = "ALPHA", ["b.md"] = "beta", ["c.md"] = "gamma" },
            10)
    assert.are.equal(0, stop(dir, pid, "INT"))
  end)

  it("follows a JSON Lines file and an SQLite database a component reads, "
     .. "and comes to rest", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", {
  { "path", "string", key = true },
  { "title", "string" },
})
local put = tide.fn("put", { memo = true }, function(item, docs)
  docs:row(Doc { path = item.id, title = item.title })
end)
return tide.app("files", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(put, tide.json.lines("data/items.jsonl", { key = "id" }),
                  docs)
  tide.mount_each(put, sqlite.rows("data/src.db", "SELECT id, title FROM t",
                                   { key = "id" }), docs)
end)
]])
    helpers.write(dir .. "/data/items.jsonl",
                  '{"id": "j1", "title": "one"}\n')
    local function src(sql)
      local db = assert(sqlite.open(dir .. "/data/src.db", "create"))
      assert(db:exec(sql))
      db:close()
    end
    src("PRAGMA journal_mode = WAL; CREATE TABLE t(id TEXT PRIMARY KEY, "
        .. "title TEXT); INSERT INTO t VALUES ('s1', 'first')")
    local pid = start(dir, "--rescan 3600")
    assert.truthy(helpers.read(dir .. "/stderr"):find(
      "watching 0 folders and 2 files for changes", 1, true),
      helpers.read(dir .. "/stderr"))
    reaches(dir, { j1 = "one", s1 = "first" })
    -- An editor's save (a new file renamed over it), an append.
    helpers.write(dir .. "/data/items.tmp", '{"id": "j1", "title": "ONE"}\n'
                  .. '{"id": "j2", "title": "two"}\n')
    assert(os.rename(dir .. "/data/items.tmp", dir .. "/data/items.jsonl"))
    reaches(dir, { j1 = "ONE", j2 = "two", s1 = "first" })
    -- Another process writes the database (into its log, in WAL mode).
    src("UPDATE t SET title = 'FIRST'; INSERT INTO t VALUES ('s2', 'second')")
    reaches(dir, { j1 = "ONE", j2 = "two", s1 = "FIRST", s2 = "second" })
    -- Its own reads of the database start no cycle: it comes to rest.
    comes_to_rest(dir)
    assert.are.equal(0, stop(dir, pid, "INT"))
  end)

  it("walks a folder holding its own store and targets and comes to rest",
     function()
    local dir = helpers.tmpdir()
    -- The live command's own output files are the user's: left out here.
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", {
  { "path", "string", key = true },
  { "title", "string" },
})
local put = tide.fn("put", { memo = true }, function(file, docs, site)
  docs:row(Doc { path = file.path, title = file:text() })
  site:file(file.path .. ".txt", file:text())
end)
local item = tide.fn("item", function(it, docs)
  docs:row(Doc { path = it.id, title = it.title })
end)
return tide.app("own", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(put, fs.walk(".", { exclude = { "stdout", "stderr",
    "pid", "status", "items.jsonl" } }), docs, fs.dir("site"))
  -- A file a source reads, which the walk leaves out, is followed.
  tide.mount_each(item, tide.json.lines("items.jsonl", { key = "id" }), docs)
end)
]])
    helpers.write(dir .. "/a.md", "alpha")
    helpers.write(dir .. "/items.jsonl", '{"id": "i1", "title": "one"}\n')
    local code = helpers.read(dir .. "/pipeline.lua")
    local pid = start(dir, "--rescan 3600")
    reaches(dir, { ["a.md"] = "alpha", ["pipeline.lua"] = code, i1 = "one" })
    helpers.write(dir .. "/b.md", "beta")
    reaches(dir, { ["a.md"] = "alpha", ["b.md"] = "beta",
                   ["pipeline.lua"] = code, i1 = "one" })
    helpers.write(dir .. "/items.jsonl", '{"id": "i1", "title": "ONE"}\n')
    reaches(dir, { ["a.md"] = "alpha", ["b.md"] = "beta",
                   ["pipeline.lua"] = code, i1 = "ONE" })
    -- Its own writes (the store, out.db, site/) start no cycle.
    comes_to_rest(dir)
    assert.are.equal(0, stop(dir, pid, "INT"))
    assert.is_nil(helpers.read(dir .. "/site/site/a.md.txt.txt"))
  end)

  it("follows a folder a carried-over component listed, though another "
     .. "walk excludes it", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", {
  { "path", "string", key = true },
  { "title", "string" },
})
local count = tide.fn("count", { memo = true }, function(docs)
  local n = 0
  for _ in fs.walk("data"):items() do n = n + 1 end
  docs:row(Doc { path = "data", title = tostring(n) })
end)
local put = tide.fn("put", function(file, docs)
  docs:row(Doc { path = file.path, title = file:text() })
end)
return tide.app("carried", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(put, fs.walk(".", { exclude = { "data/**", "*.lua",
    "stdout", "stderr", "pid", "status" } }), docs)
  tide.mount("count", count, docs)
end)
]])
    helpers.write(dir .. "/a.md", "alpha")
    helpers.write(dir .. "/data/one.txt", "1")
    -- Live mode after an update: its cycles carry count over (its folder
    -- unchanged), never listing that folder themselves...
    updated_components(dir)
    local pid = start(dir, "--rescan 3600")
    reaches(dir, { ["a.md"] = "alpha", data = "1" })
    helpers.write(dir .. "/a.md", "ALPHA")
    reaches(dir, { ["a.md"] = "ALPHA", data = "1" })
    -- ...and its folder's events start a cycle.
    helpers.write(dir .. "/data/two.txt", "2")
    reaches(dir, { ["a.md"] = "ALPHA", data = "2" })
    assert.are.equal(0, stop(dir, pid, "INT"))
  end)

  it("re-runs an auto_refresh component every period", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/price.txt", "10")
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Row = tide.record("Row", { { "path", "string", key = true },
                                 { "title", "string" } })
local fetch = tide.fn("fetch", function(out)
  local f = assert(io.open("price.txt"))
  out:row(Row { path = "price", title = f:read("a") })
  f:close()
end)
return tide.app("refresh", function()
  local out = sqlite.table { db = "out.db", name = "docs", schema = Row }
  tide.auto_refresh(fetch, 0.2, out)
end)
]])
    local pid = start(dir)
    reaches(dir, { price = "10" })
    helpers.write(dir .. "/price.txt", "11")
    reaches(dir, { price = "11" }, 10)
    assert.are.equal(0, stop(dir, pid, "INT"))
  end)

  it("runs a tide.source's watch function: what it emits is applied, "
     .. "and only that", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/feed.txt", "a alpha\nb beta\nc gamma\n")
    helpers.write(dir .. "/pipeline.lua", FEED_PIPELINE)
    local pid = start(dir)
    assert.matches("watching 0 folders and 1 source",
                   helpers.read(dir .. "/stderr"))
    reaches(dir, { a = "alpha", b = "beta", c = "gamma" })
    -- Listed by the catch-up, and once more once the watch ran (what
    -- changed in between).
    assert.is_true(wait_for(function()
      return helpers.read(dir .. "/listed") == "xx"
    end, 10), helpers.read(dir .. "/listed"))
    -- An update, a delete and an insert, seen by the watch's polling. The
    -- file is replaced whole: a poll between the truncation and the write
    -- of a rewrite in place would see an empty feed and emit three
    -- deletes, then three inserts.
    helpers.write(dir .. "/feed.new", "a ALPHA\nc gamma\nd delta\n")
    assert(os.rename(dir .. "/feed.new", dir .. "/feed.txt"))
    reaches(dir, { a = "ALPHA", c = "gamma", d = "delta" }, 10)
    -- The cycle processed the three keys emitted and kept the fourth,
    -- without listing the source. Its rows are written before its report
    -- is: both are waited for.
    wait_for(function()
      local l = cycles(dir)
      local c = #l >= 2 and l[#l].components
      return c and c.added + c.reprocessed + c.deleted > 0
    end, 10)
    local list = cycles(dir)
    local last = list[#list]
    assert.are.same({ added = 1, reprocessed = 1, deleted = 1,
                      unchanged = 1, errors = 0 }, last.components)
    assert.are.same({ calls = 3, hits = 1, misses = 2, errors = 0 },
                    last.functions.each)
    assert.are.equal("xx", helpers.read(dir .. "/listed"))
    assert.are.equal(0, stop(dir, pid, "INT"))
    -- What live mode left is what a catch-up run finds current.
    local out, err, code = helpers.run(("cd %s && %s update pipeline.lua "
      .. "--json"):format(q(dir), q(helpers.tide)))
    assert.are.equal(0, code, err)
    local stats = cjson.decode(out)
    assert.are.same({ added = 0, reprocessed = 0, deleted = 0,
                      unchanged = 3, errors = 0 }, stats.components)
  end)

  it("runs again, in a cycle of what a tide.source emitted, a component "
     .. "of a key it did not emit that failed", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/feed.txt", "a alpha\n")
    -- Each item fails while a file "down" is there, as a model call fails
    -- while its server is down: nothing the source emits says when it is
    -- back.
    helpers.write(dir .. "/pipeline.lua", (FEED_PIPELINE:gsub(
      "  docs:row%(", [[
  local down = io.open("down")
  if down then down:close(); error("the service is down", 0) end
  docs:row(]], 1)))
    local pid = start(dir)
    reaches(dir, { a = "alpha" })
    helpers.write(dir .. "/down", "")
    helpers.write(dir .. "/feed.new", "a alpha\nb beta\n")
    assert(os.rename(dir .. "/feed.new", dir .. "/feed.txt"))
    assert.is_true(wait_for(function()
      local l = cycles(dir)
      return l[#l].components.errors == 1
    end, 10), helpers.read(dir .. "/stdout"))
    os.remove(dir .. "/down")
    -- Only a's title changes: b, not emitted, runs again all the same.
    helpers.write(dir .. "/feed.new", "a ALPHA\nb beta\n")
    assert(os.rename(dir .. "/feed.new", dir .. "/feed.txt"))
    reaches(dir, { a = "ALPHA", b = "beta" }, 10)
    assert.are.equal(0, stop(dir, pid, "INT"))
  end)

  it("says when a watch function fails, and lists its source in full "
     .. "from then on", function()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/feed.txt", "a alpha\n")
    helpers.write(dir .. "/pipeline.lua", (FEED_PIPELINE:gsub(
      "%-%-FAIL%-%-", "if next(now) == nil then error('feed is empty') end")))
    local pid = start(dir, "--rescan 0.3")
    reaches(dir, { a = "alpha" })
    helpers.write(dir .. "/feed.txt", "")
    assert.is_true(wait_for(function()
      return (helpers.read(dir .. "/stderr") or "")
        :find("its watch function failed: [^\n]*feed is empty") ~= nil
    end, 10), helpers.read(dir .. "/stderr"))
    -- The rescans list it: an empty source where there were few items is
    -- an empty source.
    reaches(dir, {}, 10)
    helpers.write(dir .. "/feed.txt", "b beta\n")
    reaches(dir, { b = "beta" }, 10)
    assert.are.equal(0, stop(dir, pid, "INT"))
  end)

  it("refuses --rescan without --live, and --live with --preview", function()
    local dir = setup()
    -- The Lua API's live-only options, outside live mode.
    local tide = require "tide"
    local app = tide.app("not_live", function() end)
    for _, option in ipairs { "rescan", "on_cycle", "on_message",
                              "on_watching", "on_cycle_start" } do
      local ok, err = pcall(app.update, app, { db = dir .. "/x.db",
        [option] = option == "rescan" and 5 or function() end })
      assert.is_false(ok)
      assert.matches("option " .. option .. " is for live mode", err)
    end
    local _, err, code = helpers.run(("cd %s && %s update pipeline.lua "
      .. "--rescan 5"):format(q(dir), q(helpers.tide)))
    assert.are.equal(2, code)
    assert.matches("%-%-rescan is for live mode", err)
    _, err, code = helpers.run(("cd %s && %s live pipeline.lua --rescan 0")
      :format(q(dir), q(helpers.tide)))
    assert.are.equal(2, code)
    assert.matches("positive number of seconds", err)
    _, err, code = helpers.run(("cd %s && %s update pipeline.lua -L "
      .. "--preview"):format(q(dir), q(helpers.tide)))
    assert.are.equal(2, code)
    assert.matches("cannot %-%-preview", err)
  end)

  it("collects garbage incrementally in an update that ends, by "
     .. "generations in live mode", function()
    local dir = setup()
    -- Each cycle's main appends the collector's mode it runs under
    -- (asking for one mode answers the mode before; it is set back).
    local pipeline = helpers.read(dir .. "/pipeline.lua"):gsub(
      'return tide.app%("live", function%(%)', [[
return tide.app("live", function()
  local mode = collectgarbage("incremental")
  collectgarbage(mode)
  local f = assert(io.open("modes", "a"))
  f:write(mode, "\n")
  f:close()]])
    helpers.write(dir .. "/pipeline.lua", pipeline)
    local _, err, code = helpers.run(("cd %s && %s update pipeline.lua "
      .. "--quiet"):format(q(dir), q(helpers.tide)))
    assert.are.equal(0, code, err)
    assert.are.equal("incremental\n", helpers.read(dir .. "/modes"))
    os.remove(dir .. "/modes")
    local pid = start(dir)
    assert.are.equal(0, stop(dir, pid, "INT"))
    assert.matches("^generational\n", helpers.read(dir .. "/modes"))
    assert.is_nil(helpers.read(dir .. "/modes"):find("incremental"))
  end)
end)

-- The stock lua5.4 cannot load a ThreadSanitizer build (make tsan): its
-- hosts are pending there.
local function needs_stock_lua()
  if os.getenv("TIDE_TSAN") then pending("a ThreadSanitizer build") end
end

-- title(path) in a host script: the title the target holds for path.
local HOST_TITLE = [[
local function title(path)
  local db = sqlite.open("out.db")
  local rows = db:rows("SELECT title FROM docs WHERE path = '" .. path .. "'")
  db:close()
  return rows[1] and rows[1].title
end
]] .. "\n" -- what follows it begins with a [[ that skips its newline

-- Runs dir/host.lua with the stock lua5.4; returns its output once it
-- exited 0.
local function run_host(dir)
  local out, err, code = helpers.run(("cd %s && %s lua5.4 host.lua")
    :format(q(dir), helpers.stock_lua_env()))
  assert.are.equal(0, code, err)
  return out
end

describe("live mode in a Lua host's own loop", function()
  after_each(helpers.cleanup)

  it("app:start_live, tide.step and app:stop from the stock lua5.4",
     function()
    needs_stock_lua()
    local dir = setup()
    helpers.write(dir .. "/host.lua", [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local app = dofile("pipeline.lua")
assert(app:start_live { db = "state.db" })
]] .. HOST_TITLE .. [[
local f = assert(io.open("docs/b.md", "w"))
f:write("BETA\n")
f:close()
local steps = 0
while title("b.md") ~= "BETA" and steps < 2000 do
  assert(tide.step(5) == 1)
  steps = steps + 1
  os.execute("sleep 0.002")
end
local stats = app:stop()
assert(tide.step(5) == 0)
print(title("b.md"), steps > 0, stats.components.unchanged)
]])
    local out = run_host(dir)
    assert.matches("^BETA\ttrue\t%d+\n$", out)
  end)

  it("two live apps of one Lua state on one store take turns with its "
     .. "lock", function()
    needs_stock_lua()
    local dir = helpers.tmpdir()
    for _, name in ipairs { "a", "b" } do
      helpers.write(dir .. "/" .. name .. "/1.txt", name .. " one\n")
    end
    helpers.write(dir .. "/host.lua", [[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Row = tide.record("Row", { { "path", "string", key = true },
                                 { "text", "string" } })
-- App a's component takes 1.2 s: its cycles span many steps, and hold
-- the store's writer lock through them.
local function app(name, seconds)
  local f = tide.fn(name .. "_row", function(file, out)
    if seconds then
      io.open("started", "w"):close()
      tide.sleep(seconds)
    end
    out:row(Row { path = file.path, text = file:text() })
  end)
  return tide.app(name, function()
    local t = sqlite.table { db = name .. ".db", name = "rows", schema = Row }
    tide.mount_each(f, fs.walk(name), t)
  end)
end
local said = {}
local function say(m) said[#said + 1] = m end
local a, b = app("a", 1.2), app("b")
assert(a:start_live { db = "state.db", on_message = say })
assert(b:start_live { db = "state.db", on_message = say })
local function count(name)
  local db = sqlite.open(name .. ".db")
  local rows = db:rows("SELECT count(*) AS n FROM rows")
  db:close()
  return rows[1].n
end
local function put(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end
put("a/2.txt", "a two\n")
-- a's cycle starts and sleeps; b's change comes while it holds the lock.
os.remove("started")
local steps = 0
while not io.open("started") and steps < 5000 do
  assert(tide.step(1) == 2)
  steps = steps + 1
  os.execute("sleep 0.002")
end
put("b/2.txt", "b two\n")
put("b/3.txt", "b three\n")
while (count("a") < 2 or count("b") < 3) and steps < 5000 do
  tide.step(1)
  steps = steps + 1
  os.execute("sleep 0.002")
end
a:stop()
b:stop()
print(count("a"), count("b"))
print(table.concat(said, "\n"))
]])
    local out = run_host(dir)
    assert.matches("^2\t3\n", out)
    assert.matches("state.db: locked by another running update in this "
      .. "process %(another app's, on the same store%); trying again in "
      .. "800 ms", out)
  end)

  it("live cycles keep the target's log, and app:stop copies it back "
     .. "into the database file", function()
    needs_stock_lua()
    local dir = setup()
    helpers.write(dir .. "/host.lua", [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local app = dofile("pipeline.lua")
local cycles = 0
local function on_cycle() cycles = cycles + 1 end
assert(app:start_live { db = "state.db", on_cycle = on_cycle })
local function size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end
-- The catch-up cycle's commits wait in out.db-wal, read by every
-- connection: live mode keeps one open, so no close copied them back.
print("after catch-up", size("out.db-wal") > 0)
local f = assert(io.open("docs/b.md", "w"))
f:write("BETA\n")
f:close()
local steps = 0
while cycles < 2 and steps < 2000 do
  tide.step(5)
  steps = steps + 1
  os.execute("sleep 0.002")
end
print("after a change", cycles, size("out.db-wal") > 0)
app:stop()
-- Copied back: the database file alone holds every row.
print("after stop", size("out.db-wal"))
local copy = assert(io.open("copy.db", "wb"))
local src = assert(io.open("out.db", "rb"))
copy:write(src:read("a"))
copy:close()
src:close()
local db = sqlite.open("copy.db")
local rows = db:rows("SELECT path, title FROM docs ORDER BY path")
db:close()
for _, r in ipairs(rows) do io.write(r.path, "=", r.title, " ") end
print()
]])
    local out = run_host(dir)
    assert.are.equal("after catch-up\ttrue\nafter a change\t2\ttrue\n"
      .. "after stop\tnil\na.md=alpha b.md=BETA c.md=gamma \n", out)
  end)

  it("a luv host hands its loop to tide and steps it between its runs",
     function()
    needs_stock_lua()
    local dir = setup()
    helpers.write(dir .. "/host.lua", [[
local uv = require "luv"
local tide = require "tide"
local sqlite = require "tide.sqlite"
local app = dofile("pipeline.lua")
assert(app:start_live { db = "state.db", loop = uv })
]] .. HOST_TITLE .. [[
-- The host's own handle, on the loop tide watches on; a step from inside
-- one of luv's callbacks is refused (libuv's run is not reentrant).
local ticks, inside = 0, nil
local timer = uv.new_timer()
timer:start(1, 1, function()
  ticks = ticks + 1
  if not inside then inside = select(2, pcall(tide.step, 1)) end
end)
local f = assert(io.open("docs/b.md", "w"))
f:write("BETA\n")
f:close()
local frames = 0
while title("b.md") ~= "BETA" and frames < 2000 do
  uv.run("nowait")
  tide.step(2)
  frames = frames + 1
  uv.sleep(2)
end
timer:close()
app:stop()
uv.run("nowait")
print(title("b.md"), ticks > 0, inside)
-- A catch-up update on the same engine, between runs of the loop; a loop
-- that is not luv's is refused.
print(app:update { db = "state.db" } ~= nil,
      (select(2, app:update { db = "other.db", loop = {} })))
]])
    local out = run_host(dir)
    -- Whether the timer fires in the host's uv.run or in the run a step
    -- makes, the step it calls is refused with the same words.
    assert.are.equal("BETA\ttrue\tapp live: a step from inside a run of "
      .. "luv's loop: the app runs on luv's loop, which cannot be run again "
      .. "from one of its callbacks; call it between runs of the loop "
      .. "(uv.run(\"nowait\") in a loop of your own)\n"
      .. "true\tapp live: the loop option takes the luv module "
      .. "(require \"luv\")\n", out)
  end)

  it("a host pushes changes through the emit a watch function kept",
     function()
    needs_stock_lua()
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/host.lua", [[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Row = tide.record("Row", { { "k", "string", key = true },
                                 { "v", "string" } })
-- The host's own data, and the emit tide hands the watch function.
local data, emit = { a = "1", b = "2" }, nil
local items = tide.source { name = "host data",
  items = function()
    local t = {}
    for k, v in pairs(data) do t[k] = { k = k, v = v } end
    return t
  end,
  watch = function(e) emit = e end,
}
local each = tide.fn("each", { memo = true }, function(item, out)
  out:row(Row { k = item.k, v = item.v })
end)
local app = tide.app("host", function()
  local out = sqlite.table { db = "out.db", name = "rows", schema = Row }
  tide.mount_each(each, items, out)
end)
local function rows()
  local db = sqlite.open("out.db")
  local t = {}
  for _, r in ipairs(db:rows("SELECT k, v FROM rows ORDER BY k")) do
    t[#t + 1] = r.k .. "=" .. r.v
  end
  db:close()
  return table.concat(t, " ")
end
local seen = {}
assert(app:start_live { db = "state.db", on_cycle = function(stats)
  seen[#seen + 1] = stats.components
end })
tide.step(1)
assert(emit, "the watch function ran")
local ok, err = pcall(function() emit(1.5, {}) end)
print(ok, err)
data.b, data.c = "22", "3"
emit("b", { k = "b", v = "22" })
emit("c", { k = "c", v = "3" })
data.a = nil
emit("a", nil)
local steps = 0
-- A step may end between the cycle's writes and its report: both waited
-- for.
while (rows() ~= "b=22 c=3" or #seen < 2) and steps < 2000 do
  tide.step(5)
  steps = steps + 1
  os.execute("sleep 0.002")
end
print(rows())
local last = seen[#seen]
print(last.added, last.reprocessed, last.deleted, last.unchanged)
app:stop()
print(emit("d", { k = "d", v = "4" }))
]])
    local out = run_host(dir)
    assert.matches("^false\thost%.lua:%d+: tide%.source host data: emit: "
      .. "the key must be a string or an integer, not a float\n"
      .. "b=22 c=3\n1\t1\t1\t0\nfalse\n$", out)
  end)
end)
