-- Workers that join an update shared on a PostgreSQL state store
-- (test/spec/pg_workers.lua): a worker's failed writes are tried again;
-- a worker started by hand joins and takes work, and SIGTERM frees its
-- items at once; a worker whose pipeline differs leaves, or is refused
-- when it does not find the lead's targets; the store's password stays
-- off command lines; show --workers lists them; in live mode the workers
-- share the cycles, a killed one is started again, and they outlive a
-- server restart.

local helpers = require "test.spec.helpers"
local pg = require "test.spec.pg_helpers"
local workers = require "test.spec.pg_workers"
local cjson = require "cjson"

local q = helpers.q
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
local tide = workers.tide
local update = workers.update
local target_rows = workers.target_rows
local store_content = workers.store_content
local shown_workers = workers.shown_workers
local kill = workers.kill
local start_update = workers.start_update
local workers_when = workers.workers_when
local worker_pids = workers.worker_pids
local rows_now = workers.rows_now
local counts = workers.counts

describe("workers that join an update", function()
  it("tries a worker's failed writes again at its end, and fails their "
     .. "components as one process does", function()
    -- A target whose writes fail: the first time in each process with
    -- FAIL=once, every time with FAIL=always.
    local pipeline = [=[
local tide = require "tide"
local failed = {}
local flaky = tide.target_type {
  name = "flaky",
  apply = function(spec, changes)
    local mode = os.getenv("FAIL")
    if mode == "always" or (mode == "once" and not failed.once) then
      failed.once = true
      error("the disk said no")
    end
    for _, ch in ipairs(changes) do
      local f = assert(io.open("files/" .. ch.key[1], "w"))
      f:write(ch.value.text)
      f:close()
    end
  end,
}
local put = tide.fn("put", { memo = true }, function(n, t)
  t:declare({ ("f%02d"):format(n) }, { text = "item " .. n })
end)
return tide.app("flaky", function()
  local t = tide.declare_target(flaky, { name = "files" })
  local items = {}
  for i = 1, 12 do items["k" .. i] = i end
  tide.mount_each(put, items, t)
end)
]=]
    local function files(d)
      local out = {}
      for i = 1, 12 do
        local name = ("%s/files/f%02d"):format(d, i)
        out[#out + 1] = helpers.exists(name) and helpers.read(name) or "-"
      end
      return table.concat(out, ",")
    end
    local results = {}
    for _, workers in ipairs { "", "--workers 2" } do
      for _, mode in ipairs { "once", "always" } do
        local d = project_with(0, pipeline)
        helpers.run("mkdir -p " .. q(d .. "/files"))
        local schema = "flaky_" .. mode .. (workers == "" and "1" or "2")
        local out, err, code = tide(d, "FAIL=" .. mode, ("update pipeline.lua "
          .. "--db %s --json %s"):format(q(location(schema)), workers))
        local r = cjson.decode(out)
        results[#results + 1] = { mode = mode, files = files(d), code = code,
                                  errors = r.components.errors, err = err }
      end
    end
    -- Once: written on the second try, in each process.
    assert.are.equal(0, results[1].errors)
    assert.are.equal(0, results[1].code)
    assert.is_truthy(results[1].files:find("item 12", 1, true))
    -- Always: every component failed, with the message, exit status 1.
    assert.are.equal(12, results[2].errors)
    assert.are.equal(1, results[2].code)
    assert.is_truthy(results[2].err:find("the disk said no", 1, true))
    for i = 1, 2 do
      local one, shared = results[i], results[i + 2]
      assert.are.equal(one.files, shared.files)
      assert.are.equal(one.errors, shared.errors)
      assert.are.equal(one.code, shared.code)
    end
    assert.is_truthy(results[4].err:find("the disk said no", 1, true))
  end)

  it("lets a worker started by hand join and take work, and frees a "
     .. "stopped worker's items at once", function()
    local d = project(120)
    local db = location("joined")
    update(d, db, "", "SLEEP_MS=15")
    for i = 1, 120 do
      helpers.write(("%s/docs/d%03d.txt"):format(d, i), "Edited " .. i .. "\n")
    end
    local out = os.tmpname()
    -- One worker, whose lease would last a minute.
    local lead = io.popen(("cd %s && SLEEP_MS=15 %s update pipeline.lua "
      .. "--db %s --workers 1 --lease 60 --max-inflight 1 --json > %s; "
      .. "echo $?"):format(q(d), helpers.tide, q(db), q(out)))
    local first
    helpers.wait_for(function()
      local w = shown_workers(d, db)
      first = w and w[1]
      return first and first.claimed > 0
    end, 20)
    assert.is_table(first)
    -- A second worker, by hand, joins the update under way.
    local joined = io.popen(("cd %s && SLEEP_MS=15 %s worker pipeline.lua "
      .. "--db %s --max-inflight 1 --json"):format(q(d), helpers.tide, q(db)))
    helpers.run("sleep 0.3")
    -- SIGTERM: the first leaves at once, its items free without waiting
    -- a minute for its lease.
    kill("TERM", first.pid)
    local started = os.time()
    local w = cjson.decode(joined:read("a"))
    joined:close()
    assert.is_true(lead:read("a"):match("%d+") == "0")
    lead:close()
    assert.is_true(os.time() - started < 30)
    local r = cjson.decode(helpers.read(out))
    os.remove(out)
    assert.are.equal(120, r.components.reprocessed)
    assert.is_true(w.components.reprocessed > 0)
    local left
    for _, x in ipairs(r.workers) do
      if x.pid == first.pid then left = x end
    end
    assert.is_table(left)
    assert.is_true(left.done < 120)
  end)

  it("lets a worker whose pipeline has other code leave, and runs its "
     .. "items elsewhere", function()
    local d, clean = project(40), project(40)
    update(clean, location("other_code_clean"), "", "SLEEP_MS=40")
    -- pipeline2.lua, beside it (the same relative paths), counts words
    -- another way: its items would give other rows.
    helpers.write(d .. "/pipeline2.lua", (helpers.read(d .. "/pipeline.lua")
      :gsub('for _ in text:gmatch%("%%S%+"%) do n = n %+ 1 end',
            'for _ in text:gmatch("%%S+") do n = n + 2 end')))
    assert.are_not.equal(helpers.read(d .. "/pipeline.lua"),
                         helpers.read(d .. "/pipeline2.lua"))
    local db = location("other_code")
    local finish = start_update(d, db, "SLEEP_MS=40",
                                "--workers 1 --max-inflight 2")
    assert.is_table(workers_when(d, db, function(w) return #w >= 1 end))
    local _, err, code = tide(d, "SLEEP_MS=40", ("worker pipeline2.lua --db %s "
      .. "--max-inflight 2"):format(q(db)))
    assert.are.equal(1, code, err)
    assert.is_truthy(err:find("left the update: its pipeline is not the "
      .. "lead's: function process (mounted under /process) has other code "
      .. "here", 1, true), err)
    local status, r, said = finish()
    assert.are.equal("0", status, said)
    assert.are.equal(40, r.components.added)
    assert.are.equal(0, r.components.errors)
    assert.are.equal(target_rows(clean), target_rows(d))
    assert.are.equal(store_content("other_code_clean"),
                     store_content("other_code"))
  end)

  it("refuses a worker that does not find the lead's targets where it "
     .. "looks", function()
    -- The same pipeline, from another folder: its out.db is not the
    -- lead's.
    local d, elsewhere = project(30), helpers.tmpdir()
    helpers.write(elsewhere .. "/pipeline.lua",
                  helpers.read(d .. "/pipeline.lua"))
    local db = location("elsewhere")
    local finish = start_update(d, db, "SLEEP_MS=40",
                                "--workers 1 --max-inflight 2")
    assert.is_table(workers_when(d, db, function(w) return #w >= 1 end))
    local _, err, code = tide(elsewhere, "SLEEP_MS=40", ("worker "
      .. "pipeline.lua --db %s"):format(q(db)))
    assert.are.equal(2, code, err)
    assert.is_truthy(err:find("sqlite.table out.db#docs: not found where "
      .. "this worker looks for it, though the lead made it", 1, true), err)
    -- It wrote nothing there, and the update is whole.
    assert.is_nil(io.open(elsewhere .. "/out.db"))
    local status, r, said = finish()
    assert.are.equal("0", status, said)
    assert.are.equal(30, r.components.added)
    local clean = project(30)
    update(clean, location("elsewhere_clean"), "", "SLEEP_MS=40")
    assert.are.equal(target_rows(clean), target_rows(d))
  end)

  it("keeps the store's password off the workers' command lines",
     function()
    local d = project(30)
    local secret = "pw-Workers-51-hidden"
    local db = location("hidden") .. "&password=" .. secret
    local lead = io.popen(("cd %s && SLEEP_MS=30 %s update pipeline.lua "
      .. "--db %s --workers 2 --max-inflight 1 --json; echo $?")
      :format(q(d), helpers.tide, q(db)))
    -- The lead was given it on its own command line; its workers get
    -- it in their environment.
    local workers = {}
    helpers.wait_for(function()
      workers = {}
      for line in helpers.run("ps -eo args"):gmatch("[^\n]+") do
        if line:find(" worker ", 1, true) and line:find("tide", 1, true)
        then
          workers[#workers + 1] = line
        end
      end
      return #workers > 0
    end, 20)
    assert.is_true(#workers > 0)
    for _, line in ipairs(workers) do
      assert.is_nil(line:find(secret, 1, true), line)
    end
    local out = lead:read("a")
    lead:close()
    assert.is_truthy(out:match("\n0\n$"), out)
    assert.is_nil(out:find(secret, 1, true))
  end)

  it("shares live mode's cycles: a file written is picked up by a worker",
     function()
    local d = project(20)
    local db = location("live")
    local out = os.tmpname()
    local lead = io.popen(("cd %s && exec %s update pipeline.lua --db %s "
      .. "--workers 2 --live --json > %s 2>&1"):format(q(d), helpers.tide,
      q(db), q(out)))
    assert.is_true(helpers.wait_for(function()
      return select(2, rows_now(d):gsub("\n", "")) == 19
    end, 20))
    helpers.write(d .. "/docs/d005.txt", "Five, live\nw w w w\n")
    helpers.write(d .. "/docs/d021.txt", "Twenty-one\nw\n")
    assert.is_true(helpers.wait_for(function()
      local t = rows_now(d)
      return t:find("d005.txt|Five, live|6", 1, true)
        and t:find("d021.txt|Twenty-one|2", 1, true)
    end, 20))
    -- A file a worker indexed in the first cycle, deleted: its row goes
    -- (the lead knows what the workers recorded), and a file a later
    -- cycle's worker indexed, edited again: its row follows.
    os.remove(d .. "/docs/d007.txt")
    helpers.write(d .. "/docs/d021.txt", "Twenty-one again\nw w\n")
    assert.is_true(helpers.wait_for(function()
      local t = rows_now(d)
      return not t:find("d007.txt", 1, true)
        and t:find("d021.txt|Twenty-one again|4", 1, true)
    end, 20), rows_now(d))
    -- The workers did it (the cycles' lines say so once the lead has
    -- ended them: a worker writes the rows before), and stop with the
    -- session.
    local function shared_done()
      local lines = {}
      for line in (helpers.read(out) or ""):gmatch("[^\n]+") do
        local ok, o = pcall(cjson.decode, line)
        if ok and type(o) == "table" then lines[#lines + 1] = o end
      end
      local shared = 0
      for i = 2, #lines do
        for _, w in ipairs(lines[i].workers or {}) do
          shared = shared + w.done
        end
      end
      return shared
    end
    helpers.wait_for(function() return shared_done() >= 2 end, 20)
    assert.is_true(shared_done() >= 2, "items done by workers: "
                   .. shared_done())
    helpers.run("pkill -TERM -f 'update pipeline.lua --db .*schema=live '")
    lead:close()
    os.remove(out)
    assert.is_true(helpers.wait_for(function()
      return not helpers.run("ps -eo args"):find("worker pipeline.lua", 1,
                                                 true)
    end, 10))
  end)

  it("starts again, in live mode, a worker that was killed", function()
    local d = project(20)
    local db = location("live_again")
    local err = os.tmpname()
    local lead = io.popen(("cd %s && exec %s update pipeline.lua --db %s "
      .. "--workers 2 --live --quiet 2> %s"):format(q(d), helpers.tide,
      q(db), q(err)))
    assert.is_true(helpers.wait_for(function()
      return select(2, rows_now(d):gsub("\n", "")) == 19
    end, 20))
    local before = worker_pids(d)
    assert.are.equal(2, #before)
    kill("KILL", before[1])
    -- Dead (a zombie until the lead reaps it: the kernel may take a
    -- moment on a busy machine), so that the next cycle's lead sees it.
    assert.is_true(helpers.wait_for(function()
      local stat = helpers.read(("/proc/%d/stat"):format(before[1]))
      return stat == nil or stat:match("^%d+ %b() (%a)") == "Z"
    end, 10))
    -- The next cycle starts another, and its files are written.
    helpers.write(d .. "/docs/d005.txt", "Five, live\nw w w w\n")
    assert.is_true(helpers.wait_for(function()
      return rows_now(d):find("d005.txt|Five, live|6", 1, true) ~= nil
    end, 20))
    local now
    assert.is_true(helpers.wait_for(function()
      now = worker_pids(d)
      return #now == 2 and now[1] ~= before[1] and now[2] ~= before[1]
    end, 20), ("workers %s, killed %d; the lead said: %s")
      :format(table.concat(now, " "), before[1], helpers.read(err)))
    assert.is_truthy(helpers.read(err):find(("worker %%d+ %%(pid %d%%) was "
      .. "ended by signal 9: started again %%(pid %%d+%%)"):format(before[1])),
      helpers.read(err))
    helpers.write(d .. "/docs/d021.txt", "Twenty-one\nw\n")
    assert.is_true(helpers.wait_for(function()
      return rows_now(d):find("d021.txt|Twenty-one|2", 1, true) ~= nil
    end, 20))
    helpers.run("pkill -TERM -f 'update pipeline.lua --db .*schema=live_again'")
    lead:close()
    os.remove(err)
    assert.is_true(helpers.wait_for(function()
      return #worker_pids(d) == 0
    end, 10))
  end)

  it("keeps its workers through a server restart in live mode: the "
     .. "changes after it are applied, by the same workers", function()
    local d = project(20)
    local db = location("live_restart")
    local out, err = os.tmpname(), os.tmpname()
    local lead = io.popen(("cd %s && exec %s update pipeline.lua --db %s "
      .. "--workers 2 --live --json > %s 2> %s"):format(q(d), helpers.tide,
      q(db), q(out), q(err)))
    assert.is_true(helpers.wait_for(function()
      return select(2, rows_now(d):gsub("\n", "")) == 19
    end, 20))
    local before = worker_pids(d)
    assert.are.equal(2, #before)
    local cycles_before = select(2, (helpers.read(out) or ""):gsub("\n", ""))
    -- The server cuts every connection off: the lead's, the workers'.
    pg.restart(dir)
    for i = 1, 6 do
      helpers.write(("%s/docs/d%03d.txt"):format(d, i),
                    ("After %d\nw w\n"):format(i))
    end
    assert.is_true(helpers.wait_for(function()
      local t = rows_now(d)
      for i = 1, 6 do
        if not t:find(("d%03d.txt|After %d|4"):format(i, i), 1, true) then
          return false
        end
      end
      return true
    end, 30), rows_now(d) .. "\n" .. tostring(helpers.read(err)))
    helpers.write(d .. "/docs/d021.txt", "Twenty-one\nw\n")
    assert.is_true(helpers.wait_for(function()
      return rows_now(d):find("d021.txt|Twenty-one|2", 1, true) ~= nil
    end, 20), tostring(helpers.read(err)))
    -- The workers stayed (each said what cut it off, and tried again),
    -- and took part in the cycles after the restart.
    assert.are.same(before, worker_pids(d), helpers.read(err))
    assert.is_truthy(helpers.read(err):find("trying again in", 1, true))
    local function done_after()
      local done, n = 0, 0
      for line in (helpers.read(out) or ""):gmatch("[^\n]+") do
        n = n + 1
        local ok, o = pcall(cjson.decode, line)
        if n > cycles_before and ok and type(o) == "table" then
          for _, w in ipairs(o.workers or {}) do done = done + w.done end
        end
      end
      return done
    end
    helpers.wait_for(function() return done_after() >= 1 end, 20)
    assert.is_true(done_after() >= 1, helpers.read(out))
    helpers.run("pkill -TERM -f 'update pipeline.lua --db .*schema=live_restart'")
    lead:close()
    os.remove(out)
    os.remove(err)
    assert.is_true(helpers.wait_for(function()
      return #worker_pids(d) == 0
    end, 10))
  end)
end)
