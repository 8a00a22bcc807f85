-- Workers that die or stop in an update shared on a PostgreSQL state
-- store (test/spec/pg_workers.lua): a lead killed ends its workers and the
-- next update gives one process's result; a lead stopped stops its
-- workers cleanly, keeping what they finished; a worker killed with
-- SIGKILL is taken over, each component committed once but for the ones
-- the lead runs again; a killed worker the lead started has its items
-- freed at once; when every worker dies, the lead runs what is left
-- itself; and what a dead worker recorded but did not write is written
-- again.

local helpers = require "test.spec.helpers"
local pg = require "test.spec.pg_helpers"
local workers = require "test.spec.pg_workers"
local postgres = require "tide.postgres"
local sqlite = require "tide.sqlite"

local q = helpers.q
local must = pg.must
local dir, conn

setup(function() dir, conn = workers.start() end)

teardown(function()
  workers.stop()
  helpers.cleanup()
end)

local rows = workers.rows
local location = workers.location
local project = workers.project
local project_with = workers.project_with
local lines_of = workers.lines_of
local tide = workers.tide
local update = workers.update
local target_rows = workers.target_rows
local store_content = workers.store_content
local edit_both = workers.edit_both
local on_component_write = workers.on_component_write
local shown_workers = workers.shown_workers
local kill = workers.kill
local start_update = workers.start_update
local workers_when = workers.workers_when
local counts = workers.counts

describe("an update shared by workers that die or stop", function()
  it("ends the workers a lead started when the lead is killed; the next "
     .. "update gives one process's result", function()
    local d, clean = project(120), project(120)
    update(clean, location("clean_lead"), "", "SLEEP_MS=100")
    local db = location("lead_killed")
    local pidfile = os.tmpname()
    local lead = io.popen(("cd %s && { SLEEP_MS=100 %s update pipeline.lua "
      .. "--db %s --workers 2 --max-inflight 2 --quiet & echo $! > %s; "
      .. "wait; }"):format(q(d), helpers.tide, q(db), q(pidfile)))
    local workers
    helpers.wait_for(function()
      local w = shown_workers(d, db)
      if w and #w == 2 and w[1].claimed > 0 and w[2].claimed > 0 then
        workers = w
        return true
      end
    end, 20)
    assert.is_table(workers)
    helpers.run("kill -9 " .. helpers.read(pidfile):match("%d+"))
    lead:close()
    os.remove(pidfile)
    -- The workers end with it, long before their items would be done
    -- (about 3 s of them: 100 ms each, 4 at a time).
    local function alive(pid) -- a zombie (not reaped yet) is not
      local stat = helpers.read(("/proc/%d/stat"):format(pid))
      return stat ~= nil and stat:match("^%d+ %b() (%a)") ~= "Z"
    end
    assert.is_true(helpers.wait_for(function()
      return not alive(workers[1].pid) and not alive(workers[2].pid)
    end, 1))
    local r = update(d, db, "--workers 2", "SLEEP_MS=100")
    assert.are.equal(0, r.components.errors)
    assert.are.equal(target_rows(clean), target_rows(d))
  end)

  -- An update of 60 items stopped by SIGTERM half-way, sent to its lead
  -- alone, or (group) to the lead and its workers at once, as a Ctrl-C
  -- in a terminal is: what the workers finished is kept and counted, and
  -- the next update runs the rest.
  local function stopped_halfway(schema, group)
    local d, clean = project(60), project(60)
    update(clean, location("clean_" .. schema), "", "SLEEP_MS=200")
    local db = location(schema)
    local pidfile, codefile, err = os.tmpname(), os.tmpname(), os.tmpname()
    -- 200 ms a component, 4 at a time: about 3 s of work. setsid: the
    -- lead and the workers it forks in a process group of their own.
    local lead = io.popen(("cd %s && { SLEEP_MS=200 setsid %s update "
      .. "pipeline.lua --db %s --workers 2 --max-inflight 2 >/dev/null 2> %s "
      .. "& echo $! > %s; wait $!; echo $? > %s; }"):format(q(d),
      helpers.tide, q(db), q(err), q(pidfile), q(codefile)))
    assert.is_table(workers_when(d, db, function(w)
      return #w == 2 and w[1].done >= 5 and w[2].done >= 5
    end))
    local pid = helpers.read(pidfile):match("%d+")
    kill("TERM", group and "-" .. pid or pid)
    lead:close()
    local said = helpers.read(err)
    local code = helpers.read(codefile)
    for _, f in ipairs { pidfile, codefile, err } do os.remove(f) end
    assert.are.equal("130", code:match("%d+"), said)
    -- Each worker stopped once, as a stop stops it: no batch of theirs
    -- failed, none exited at once, and what they committed is counted.
    assert.is_nil(said:find("cannot mark", 1, true), said)
    assert.is_nil(said:find("exiting at once", 1, true), said)
    local n = tonumber(said:match("interrupted: (%d+) components committed"))
    assert.is_true(n ~= nil and n >= 10, said)
    assert.is_false(helpers.run("ps -eo args"):find(d .. "/pipeline.lua", 1,
                                                   true) ~= nil)
    -- The next update runs the rest, and keeps what they committed.
    local r = update(d, db, "", "SLEEP_MS=200")
    assert.are.equal(n, r.components.unchanged)
    assert.are.equal(60 - n, r.components.added)
    assert.are.equal(target_rows(clean), target_rows(d))
  end

  it("stops the workers it started when it is stopped: what they "
     .. "finished is kept and counted", function()
    stopped_halfway("lead_stopped", false)
  end)

  it("stops each worker once when a stop reaches the lead and its workers "
     .. "together, as a Ctrl-C does", function()
    stopped_halfway("group_stopped", true)
  end)

  it("leaves what a worker's stop cut short to the others, not counted "
     .. "as a failure", function()
    -- Each item computes for 300 ms in the pipeline's own code, where the
    -- interrupt of a stop lands (lsignal.c): the component it cuts short
    -- is run again by the other worker, in this update.
    local d, one = project(12), project(12)
    update(one, location("cut_one"), "", "BUSY_MS=300")
    local db = location("cut_short")
    local finish = start_update(d, db, "BUSY_MS=300",
                                "--workers 2 --max-inflight 1")
    local seen = workers_when(d, db, function(w)
      return #w == 2 and w[1].claimed > 0 and w[2].claimed > 0
    end)
    assert.is_table(seen)
    kill("TERM", seen[1].pid)
    local code, r, said = finish()
    assert.are.equal("0", code, said)
    assert.are.equal(0, r.components.errors)
    assert.are.equal(12, r.components.added)
    assert.is_nil(said:find("interrupted", 1, true), said)
    assert.are.equal(target_rows(one), target_rows(d))
    assert.are.equal(store_content("cut_one"), store_content("cut_short"))
  end)

  it("takes a killed worker's items over, each committed once",
     function()
    local d, clean = project(150), project(150)
    update(clean, location("clean_kill"), "", "SLEEP_MS=40")
    local db = location("killed")
    -- The store's components, counted as each commit writes them.
    must(postgres.query(conn, "CREATE SCHEMA killed"))
    must(postgres.query(conn, "CREATE TABLE public.killed_audit(path bytea)"))
    update(d, db, "", "SLEEP_MS=40") -- makes the schema
    on_component_write("killed", "killed_audit", "AFTER",
      "INSERT INTO public.killed_audit VALUES (NEW.path); RETURN NEW;")
    edit_both(d, clean, 150, "again")
    -- 40 ms a component (in every run here: the pause is part of the
    -- function's logic): the work lasts long enough (about 3 s) for both
    -- workers to be seen claiming, however slowly they start (a sanitizer
    -- build, a busy machine).
    local finish = start_update(d, db, "SLEEP_MS=40",
                                "--workers 2 --lease 1 --max-inflight 2")
    -- Once both work, and one has committed some of its items (and so
    -- the references to the memo entries they no longer use), it dies.
    local seen = workers_when(d, db, function(w)
      return #w == 2 and w[1].done >= 10 and w[1].claimed > 0
        and w[2].claimed > 0
    end)
    assert.is_table(seen)
    local victim = seen[1]
    kill("KILL", victim.pid)
    local code, r, said = finish()
    assert.are.equal("0", code, said)
    assert.are.equal(0, r.components.errors)
    update(clean, location("clean_kill"), "", "SLEEP_MS=40")
    assert.are.equal(target_rows(clean), target_rows(d))
    -- The memo entries the dead worker's components stopped using are
    -- collected as one process collects them (its list died with it).
    assert.are.same(rows("SELECT encode(key, 'hex') AS k FROM "
                         .. "clean_kill.memos ORDER BY 1"),
                    rows("SELECT encode(key, 'hex') AS k FROM killed.memos "
                         .. "ORDER BY 1"))
    -- Every component was committed; twice only when the lead ran it
    -- again because the dead worker's last batch never reached the
    -- target (its intent, turned unknown); never more.
    local twice = 0
    for _, row in ipairs(rows("SELECT count(*) AS n FROM killed_audit "
                              .. "WHERE path <> ''::bytea GROUP BY path")) do
      local n = tonumber(row.n)
      assert.is_true(n == 1 or n == 2)
      if n == 2 then twice = twice + 1 end
    end
    assert.is_true(twice <= 32, "committed twice: " .. twice)
    assert.are.equal(150, #rows("SELECT DISTINCT path FROM killed_audit "
                                .. "WHERE path <> ''::bytea"))
    -- The counts are the commits': a worker's commit with its batches,
    -- so the workers' add up to each item once (the dead worker's what
    -- it committed, the other's the rest), and the lead's are those it
    -- ran again (twice).
    local victim_done, sum = nil, 0
    for _, w in ipairs(r.workers) do
      if w.pid == victim.pid then victim_done = w.done end
      if type(w.components) == "table" then
        sum = sum + w.components.reprocessed
      end
    end
    assert.is_true(victim_done >= 10)
    assert.are.equal(150 + twice, r.components.reprocessed)
    assert.are.equal(150, sum)
    -- And a run after it has nothing to do.
    local again = update(d, db, "", "SLEEP_MS=40")
    assert.are.equal(150, again.components.unchanged)
    assert.are.equal(0, again.targets.inserted + again.targets.updated)
  end)

  it("frees at once the items of a worker it started that was killed, "
     .. "whatever its lease", function()
    local d, clean = project(40), project(40)
    update(clean, location("clean_freed"), "", "SLEEP_MS=300")
    local db = location("freed")
    -- A lease of a minute: the items are taken over long before it ends.
    -- 300 ms a component, 4 at a time: about 3 s of work, so that the
    -- worker killed holds items when it dies.
    local finish = start_update(d, db, "SLEEP_MS=300",
                                "--workers 2 --lease 60 --max-inflight 2")
    local seen = workers_when(d, db, function(w)
      return #w == 2 and w[1].done >= 3 and w[1].claimed > 0
        and w[2].claimed > 0
    end)
    assert.is_table(seen)
    kill("KILL", seen[1].pid)
    local code, r, said = finish()
    assert.are.equal("0", code, said)
    assert.are.equal(0, r.components.errors)
    -- The lead saw it end and let it go, with what it held: the update
    -- ended long before the lease could run out (until then the lead
    -- would wait for the dead worker to leave, or for its items).
    assert.is_true(r.elapsed_ms < 60000, r.elapsed_ms .. " ms")
    assert.are.equal(target_rows(clean), target_rows(d))
    assert.are.equal(store_content("clean_freed"), store_content("freed"))
    local again = update(d, db, "", "SLEEP_MS=300")
    assert.are.equal(40, again.components.unchanged)
  end)

  it("runs the items left itself when every worker died, and gives one "
     .. "process's result", function()
    local d, clean = project(80), project(80)
    update(clean, location("clean_all_dead"), "", "SLEEP_MS=100")
    local db = location("all_dead")
    -- 100 ms a component, 4 at a time: about 2 s of work, long enough for
    -- both workers to be seen at work, however slowly they start.
    local finish = start_update(d, db, "SLEEP_MS=100",
                                "--workers 2 --lease 1 --max-inflight 2")
    -- Once both work and have done some of their items, both die.
    local seen = workers_when(d, db, function(w)
      return #w == 2 and w[1].done >= 5 and w[2].done >= 5
    end)
    assert.is_table(seen)
    kill("KILL", seen[1].pid, seen[2].pid)
    local code, r, said = finish()
    assert.are.equal("0", code, said)
    assert.is_truthy(said:find("no worker is left: the lead runs the %d+ "
                               .. "items not done itself"), said)
    assert.are.equal(0, r.components.errors)
    -- The lead's own rounds are among the update's workers, with what
    -- they did: the items the workers left.
    local lead_done = 0
    for _, w in ipairs(r.workers) do
      if w.host == "lead" then lead_done = lead_done + w.done end
    end
    assert.is_true(lead_done > 0, "the lead did " .. lead_done)
    assert.are.equal(target_rows(clean), target_rows(d))
    assert.are.equal(store_content("clean_all_dead"),
                     store_content("all_dead"))
    -- And a run after it has nothing to do.
    local again = update(d, db, "", "SLEEP_MS=100")
    assert.are.equal(80, again.components.unchanged)
    assert.are.equal(0, again.targets.inserted + again.targets.updated)
  end)

  it("writes again what a worker recorded but died before writing",
     function()
    -- A target whose first apply in a worker kills the worker: its batch
    -- is recorded (the items done) but never written, its intent left.
    local d = helpers.tmpdir()
    helpers.write(d .. "/pipeline.lua", [=[
local tide = require "tide"
local core = require "tide.core"
local out = "files"
local dying = tide.target_type {
  name = "dying",
  -- What a process that died in apply may have left is cleaned up.
  recover = function(spec) io.open("recovered", "w"):close() end,
  apply = function(spec, changes)
    -- The first of the workers the lead started to get here dies: mkdir
    -- makes the folder for one of them only, however close they come.
    if os.getenv("TIDE_DB") and os.execute("mkdir died 2>/dev/null") then
      os.execute("kill -9 " .. core.getpid())
    end
    for _, ch in ipairs(changes) do
      local name = out .. "/" .. ch.key[1]
      if ch.value == nil then
        os.remove(name)
      else
        local f = assert(io.open(name, "w"))
        f:write(ch.value.text)
        f:close()
      end
    end
  end,
}
-- A memo entry an item's component uses, one per item and version.
local label = tide.fn("label", { memo = true }, function(n, v)
  return ("item %d"):format(n) .. (v > 1 and (" v" .. v) or "")
end)
local put = tide.fn("put", { memo = true }, function(item, t)
  t:declare({ ("f%03d"):format(item.n) }, { text = label(item.n, item.v) })
end)
return tide.app("dying", function()
  local t = tide.declare_target(dying, { name = "files" })
  local items = {}
  local v = tonumber(os.getenv("V") or "1")
  for i = 1, 100 do items["k" .. i] = { n = i, v = v } end
  tide.mount_each(put, items, t)
end)
]=])
    helpers.run("mkdir -p " .. q(d .. "/files"))
    local r = update(d, location("dying"), "--workers 2 --lease 1")
    assert.is_true(helpers.exists(d .. "/died"))
    -- The lead's end cleaned up after the dead worker.
    assert.is_true(helpers.exists(d .. "/recovered"))
    -- The dead worker's counts were committed with its batch: each
    -- component is added once, and those whose intent it left are run
    -- again by the lead, which counts them again.
    assert.are.equal(0, r.components.errors)
    assert.are.equal(100, r.components.added)
    assert.is_true(r.components.reprocessed >= 1)
    -- Every file is written, the intent left by the dead worker redone.
    for i = 1, 100 do
      assert.are.equal("item " .. i,
                       helpers.read(("%s/files/f%03d"):format(d, i)))
    end
    assert.are.equal(0, tonumber(rows("SELECT count(*) AS n FROM "
      .. "dying.intents")[1].n))
    local again = update(d, location("dying"), "--workers 2")
    assert.are.equal(100, again.components.unchanged)
    -- Every item changes, and the first write dies again: the memo
    -- entries the dead worker's components stopped using are collected
    -- all the same (its list of them died with it).
    os.remove(d .. "/died")
    r = update(d, location("dying"), "--workers 2 --lease 1", "V=2")
    assert.is_true(helpers.exists(d .. "/died"))
    assert.are.equal("item 7 v2", helpers.read(d .. "/files/f007"))
    assert.are.equal(100, tonumber(rows("SELECT count(*) AS n FROM "
      .. "dying.memos")[1].n))
  end)

  it("writes again what a worker died before writing, when the update "
     .. "began by recovering a crash over the same items", function()
    -- The first update (one process) dies in its first apply: its
    -- items' states are left unknown, and the next update runs them again
    -- from its start. There, the first worker to write dies too: what its
    -- batch recorded is left unwritten again, for the lead's end to redo.
    local d = helpers.tmpdir()
    helpers.write(d .. "/pipeline.lua", [=[
local tide = require "tide"
local core = require "tide.core"
local dying = tide.target_type {
  name = "dying",
  apply = function(spec, changes)
    local worker = os.getenv("TIDE_DB") ~= nil
    if (worker or os.getenv("DIE_ALONE"))
       and os.execute("mkdir died" .. (worker and "" or "-alone")
                      .. " 2>/dev/null") then
      os.execute("kill -9 " .. core.getpid())
    end
    for _, ch in ipairs(changes) do
      local f = assert(io.open("files/" .. ch.key[1], "w"))
      f:write(ch.value.text)
      f:close()
    end
  end,
}
local put = tide.fn("put", { memo = true }, function(n, t)
  t:declare({ ("f%d"):format(n) }, { text = ("item %d"):format(n) })
end)
return tide.app("dying_twice", function()
  local t = tide.declare_target(dying, { name = "files" })
  tide.mount_each(put, { k1 = 1, k2 = 2, k3 = 3 }, t)
end)
]=])
    helpers.run("mkdir -p " .. q(d .. "/files"))
    local db = location("dying_twice")
    local _, _, code = tide(d, "DIE_ALONE=1", ("update pipeline.lua --db %s")
                              :format(q(db)))
    assert.are_not.equal(0, code)
    assert.is_true(helpers.exists(d .. "/died-alone"))
    assert.is_nil(helpers.read(d .. "/files/f1"))
    update(d, db, "--workers 2 --lease 1")
    assert.is_true(helpers.exists(d .. "/died"))
    for i = 1, 3 do
      assert.are.equal("item " .. i,
                       helpers.read(("%s/files/f%d"):format(d, i)))
    end
    assert.are.equal(0, tonumber(rows("SELECT count(*) AS n FROM "
      .. "dying_twice.intents")[1].n))
    assert.are.equal(3, update(d, db, "--workers 2").components.unchanged)
  end)

  it("runs again, in the lead, the items of a worker that died before it "
     .. "finished them, and gives one process's result", function()
    -- Each document mounts a component per line, which writes its row;
    -- one that starts with "own" has a table of its own too, empty;
    -- sub/zz.txt (a key that holds "/") also writes a file through a
    -- target whose apply kills the worker (with DIE set, the first
    -- time). One worker runs the items one at a time, in order: when it
    -- dies, d03 is recorded but what it no longer mounts is not deleted
    -- yet, nor has d05 told the lead of its table (its worker's end does
    -- both), and zz is recorded but not written. The lead runs the three
    -- again.
    local pipeline = [=[
local tide = require "tide"
local core = require "tide.core"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local dying = tide.target_type {
  name = "dying",
  apply = function(spec, changes)
    if os.getenv("DIE") and os.getenv("TIDE_DB")
       and os.execute("mkdir died 2>/dev/null") then
      os.execute("kill -9 " .. core.getpid())
    end
    for _, ch in ipairs(changes) do
      local name = "files/" .. ch.key[1]
      if ch.value == nil then
        os.remove(name)
      else
        local f = assert(io.open(name, "w"))
        f:write(ch.value.text)
        f:close()
      end
    end
  end,
}
@LINE@
local process = tide.fn("process", { memo = true }, function(file, t, f)
  local i = 0
  for l in file:text():gmatch("[^\n]+") do
    i = i + 1
    tide.mount(tostring(i), line, file.path .. "#" .. i, l, t)
  end
  if file:text():match("^own") then
    sqlite.table { db = "out.db", name = "t_" .. file.path:sub(1, 3),
                   schema = Line }
  end
  if file.path == "sub/zz.txt" then
    f:declare({ "zz" }, { text = file:text() })
  end
end)
return tide.app("finish", function()
  local t = sqlite.table { db = "out.db", name = "lines", schema = Line }
  local f = tide.declare_target(dying, { name = "files" })
  tide.mount_each(process, fs.walk("docs", { include = { "**/*.txt" } }),
                  t, f)
end)
]=]
    local function make()
      local d = project_with(0, pipeline)
      helpers.run("mkdir -p " .. q(d .. "/files"))
      for i = 1, 6 do
        helpers.write(("%s/docs/d%02d.txt"):format(d, i),
                      ("a%d\nb%d\nc%d\n"):format(i, i, i))
      end
      helpers.write(d .. "/docs/d05.txt", "own\n")
      helpers.write(d .. "/docs/sub/zz.txt", "z1\nz2\n")
      return d
    end
    local function result(d)
      local db = assert(sqlite.open(d .. "/out.db", "read"))
      local out = {}
      for _, r in ipairs(assert(db:rows("SELECT name FROM sqlite_master "
          .. "WHERE type = 'table' AND name LIKE 't_%' ORDER BY name"))) do
        out[#out + 1] = r.name
      end
      db:close()
      return lines_of(d) .. " " .. table.concat(out, " ") .. " | "
        .. (helpers.read(d .. "/files/zz") or "(no file zz)")
    end
    local one, two = make(), make()
    local workers = "--workers 1 --max-inflight 1 --lease 1"
    -- Cold: zz's components are new, recorded by the dead worker only.
    update(one, location("one_finish"))
    update(two, location("two_finish"), workers, "DIE=1")
    assert.is_true(helpers.exists(two .. "/died"))
    assert.are.equal(result(one), result(two))
    assert.are.equal(store_content("one_finish"),
                     store_content("two_finish"))
    -- d03 shrinks, d05 and zz change: all are handed out, below what the
    -- lead kept of them.
    os.remove(two .. "/died")
    for _, d in ipairs { one, two } do
      helpers.write(d .. "/docs/d03.txt", "a3\n")
      helpers.write(d .. "/docs/d05.txt", "own\n\n") -- writes no row
      helpers.write(d .. "/docs/sub/zz.txt", "z1\nz2\nz3\n")
    end
    local a = update(one, location("one_finish"))
    local b = update(two, location("two_finish"), workers, "DIE=1")
    assert.is_true(helpers.exists(two .. "/died"))
    assert.are.equal(0, b.components.errors)
    assert.are.equal(2, a.components.deleted)
    local kept = result(one)
    assert.is_nil(kept:find("d03.txt#2", 1, true))
    assert.is_truthy(kept:find("t_d05", 1, true))
    assert.is_truthy(kept:find("z1\nz2\nz3", 1, true))
    assert.are.equal(kept, result(two))
    assert.are.equal(store_content("one_finish"),
                     store_content("two_finish"))
    b = update(two, location("two_finish"), workers)
    assert.are.equal(0, b.components.reprocessed + b.components.deleted)
  end)

  it("writes again, in a worker, what a component below an item recorded "
     .. "and its process died before writing", function()
    -- Each item mounts a component that writes a file; the first write
    -- in a worker (with DIE set) kills the update's lead, and so the
    -- worker with it: the states are recorded, the files not written.
    local d = project_with(0, [=[
local tide = require "tide"
local dying = tide.target_type {
  name = "dying",
  apply = function(spec, changes)
    local lead = os.getenv("TIDE_LEAD_PID")
    if os.getenv("DIE") and lead then
      os.execute("kill -9 " .. lead .. "; sleep 5")
    end
    for _, ch in ipairs(changes) do
      local f = assert(io.open("files/" .. ch.key[1], "w"))
      f:write(ch.value.text)
      f:close()
    end
  end,
}
local leaf = tide.fn("leaf", { memo = true }, function(n, t)
  t:declare({ ("f%02d"):format(n) }, { text = "item " .. n })
end)
local put = tide.fn("put", { memo = true }, function(n, t)
  tide.mount("a", leaf, n, t)
end)
return tide.app("orphaned", function()
  local t = tide.declare_target(dying, { name = "files" })
  local items = {}
  for i = 1, 20 do items["k" .. i] = i end
  tide.mount_each(put, items, t)
end)
]=])
    helpers.run("mkdir -p " .. q(d .. "/files"))
    local db = location("orphaned")
    local _, _, code = tide(d, "DIE=1", ("update pipeline.lua --db %s "
      .. "--workers 1 --quiet"):format(q(db)))
    assert.are_not.equal(0, code)
    assert.is_nil(helpers.read(d .. "/files/f01"))
    -- The next update: the lead finds the states unknown, its worker
    -- runs the items, and what they mount, again.
    local r = update(d, db, "--workers 1")
    assert.are.equal(0, r.components.errors)
    for i = 1, 20 do
      assert.are.equal("item " .. i,
                       helpers.read(("%s/files/f%02d"):format(d, i)))
    end
    assert.are.equal(0, tonumber(rows("SELECT count(*) AS n FROM "
      .. "orphaned.target_states WHERE pending <> 0")[1].n))
  end)

  it("takes over an item whose dead worker recorded some of what it "
     .. "mounts, and gives one process's result", function()
    -- Each document mounts a component that writes its row, and takes
    -- 0.1 s. a.txt's, in a worker (with DIE set), waits long enough for
    -- its child to be recorded with the worker's other items (at its
    -- next claim), then kills the worker.
    local pipeline = [=[
local tide = require "tide"
local core = require "tide.core"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
@LINE@
local process = tide.fn("process", { memo = true }, function(file, t)
  tide.mount("1", line, file.path, file:text(), t)
  if file.path == "a.txt" and os.getenv("DIE") and os.getenv("TIDE_DB")
     and os.execute("mkdir died 2>/dev/null") then
    tide.sleep(1)
    os.execute("kill -9 " .. core.getpid())
  end
  tide.sleep(0.1)
end)
return tide.app("takeover", function()
  local t = sqlite.table { db = "out.db", name = "lines", schema = Line }
  tide.mount_each(process, fs.walk("docs", { include = { "*.txt" } }), t)
end)
]=]
    local function make()
      local d = project_with(0, pipeline)
      for c in ("abcdefghijklmnopqrst"):gmatch(".") do
        helpers.write(d .. "/docs/" .. c .. ".txt", "text of " .. c)
      end
      return d
    end
    local one, two = make(), make()
    update(one, location("one_takeover"))
    local r = update(two, location("two_takeover"),
                     "--workers 2 --lease 1 --max-inflight 4", "DIE=1")
    assert.is_true(helpers.exists(two .. "/died"))
    assert.are.equal(0, r.components.errors)
    -- Each of the 40 components was added once, the dead worker's among
    -- them (its counts are committed with its batches), and each row
    -- inserted once; what the lead ran again, the crash's, counts again.
    assert.are.equal(40, r.components.added)
    assert.are.equal(20, r.targets.inserted)
    assert.is_truthy(lines_of(one):find("a.txt=text of a", 1, true))
    assert.are.equal(lines_of(one), lines_of(two))
    assert.are.equal(store_content("one_takeover"),
                     store_content("two_takeover"))
  end)
end)
