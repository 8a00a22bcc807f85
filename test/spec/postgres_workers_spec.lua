-- An update shared by worker processes on a PostgreSQL state store, with
-- a real PostgreSQL 15 started for this spec (test/spec/pg_workers.lua):
-- 4 workers give the targets and the store a one-process run gives,
-- through cold, edited and no-change runs; rows, containers and mounts a
-- worker's components stop declaring go as in one process; long items
-- are spread over the workers and claimed no faster than their slots; a
-- batch rolled back, --full-reprocess and --reset, a free slot and a slow
-- claim all give one process's result. Workers that die or stop:
-- postgres_workers_death_spec.lua; workers that join, and live mode:
-- postgres_workers_join_spec.lua; main's own components and what cannot
-- be shared: postgres_workers_main_spec.lua.

local helpers = require "test.spec.helpers"
local pg = require "test.spec.pg_helpers"
local workers = require "test.spec.pg_workers"
local postgres = require "tide.postgres"
local sqlite = require "tide.sqlite"
local cjson = require "cjson"

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
local edit = workers.edit
local counts = workers.counts

describe("an update shared by workers", function()
  it("gives a one-process run's targets and store, with 4 workers",
     function()
    -- Each component waits 10 ms, one at a time in each worker, so that
    -- all four join before the work is done.
    local env, shared = "SLEEP_MS=10", "--workers 4 --max-inflight 1"
    local one, four = project(200), project(200)
    local a = update(one, location("one"), "", env)
    local b = update(four, location("four"), shared, env)
    assert.are.equal(counts(a), counts(b))
    assert.are.equal(200, b.components.added)
    assert.are.equal(4, #b.workers)
    local done = 0
    for _, w in ipairs(b.workers) do
      assert.is_true(w.done > 0)
      done = done + w.done
    end
    assert.are.equal(200, done)
    assert.are.equal(target_rows(one), target_rows(four))
    assert.are.equal(store_content("one"), store_content("four"))
    edit(one)
    edit(four)
    a = update(one, location("one"), "", env)
    b = update(four, location("four"), shared, env)
    assert.are.equal(counts(a), counts(b))
    assert.are.equal(1, b.components.deleted)
    -- Each worker read of the store only what is below the items it
    -- claimed, not the app's 200 components: the two edited documents
    -- (the new one has nothing stored yet).
    local read = 0
    for _, w in ipairs(b.workers) do read = read + w.read end
    assert.are.equal(2, read)
    assert.are.equal(target_rows(one), target_rows(four))
    assert.are.equal(store_content("one"), store_content("four"))
    -- Nothing to do: the lead ends at once, its workers with it.
    b = update(four, location("four"), shared, env)
    assert.are.equal(200, b.components.unchanged)
    assert.are.equal(0, b.components.added + b.components.reprocessed)
  end)

  it("commits the memo entries two workers compute alike without a "
     .. "deadlock", function()
    -- Each document holds 40 of 60 lines, in its own order, and a
    -- memoized function counts each line's words: the two workers
    -- record the same entries in their batches, in other orders. Sent
    -- as they came, two batches could each hold an entry the other
    -- waits for, and the server rolled one back (its worker left the
    -- update, the lead ran its items again).
    local pipeline = [=[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", { { "path", "string", key = true },
                                 { "words", "integer" } })
local count = tide.fn("count", { memo = true }, function(line)
  local n = 0
  for _ in line:gmatch("%S+") do n = n + 1 end
  return n
end)
local process = tide.fn("process", { memo = true }, function(file, docs)
  local words = 0
  for line in file:text():gmatch("[^\n]+") do words = words + count(line) end
  docs:row(Doc { path = file.path, words = words })
end)
return tide.app("alike", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(process, fs.walk("docs", { include = { "*.txt" } }), docs)
end)
]=]
    local d = project_with(0, pipeline)
    local pool = {}
    for i = 1, 60 do pool[i] = ("line %d of the shared text"):format(i) end
    math.randomseed(7)
    for f = 1, 300 do
      for i = 60, 2, -1 do
        local j = math.random(i)
        pool[i], pool[j] = pool[j], pool[i]
      end
      helpers.write(("%s/docs/d%03d.txt"):format(d, f),
                    table.concat(pool, "\n", 1, 40) .. "\n")
    end
    for run = 1, 3 do
      os.remove(d .. "/out.db")
      local out, err, code = tide(d, "", ("update pipeline.lua --db %s "
        .. "--workers 2 --json"):format(q(location("alike" .. run))))
      assert.are.equal(0, code, err)
      assert.are.equal("", err)
      local r = cjson.decode(out)
      assert.are.equal(300, r.components.added)
      assert.are.equal(0, r.components.errors)
      -- Each item done once: none ran again after a lost batch.
      local done = 0
      for _, w in ipairs(r.workers) do done = done + w.done end
      assert.are.equal(300, done)
      assert.are.equal(12000, r.functions.count.calls)
    end
  end)

  it("deletes the rows a worker's component stopped declaring, as one "
     .. "process does", function()
    local env, shared = "SLEEP_MS=5", "--workers 2 --max-inflight 2"
    local one, two = project(40), project(40)
    update(one, location("one_skip"), "", env)
    update(two, location("two_skip"), shared, env)
    for _, d in ipairs { one, two } do
      for i = 1, 6 do
        helpers.write(("%s/docs/d%03d.txt"):format(d, i * 5), "skip\n")
      end
    end
    local a = update(one, location("one_skip"), "", env)
    local b = update(two, location("two_skip"), shared, env)
    assert.are.equal(6, a.targets.deleted)
    assert.are.equal(counts(a), counts(b))
    assert.are.equal(6, b.components.reprocessed)
    local rows_two = target_rows(two)
    assert.are.equal(target_rows(one), rows_two)
    assert.is_nil(rows_two:find("d005.txt", 1, true))
    assert.are.equal(store_content("one_skip"), store_content("two_skip"))
  end)

  it("keeps the containers a worker's components declare, rows or none",
     function()
    -- Each document has a table of its own, owned by its component,
    -- which writes a row into it unless the document says skip.
    local function tables_project()
      return project_with(12, [=[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", { { "path", "string", key = true } })
local process = tide.fn("process", { memo = true }, function(file)
  local t = sqlite.table { db = "out.db", name = "t_" .. file.path:sub(1, 4),
                           schema = Doc }
  if not file:text():match("^skip") then t:row(Doc { path = file.path }) end
end)
return tide.app("tables", function()
  tide.mount_each(process, fs.walk("docs", { include = { "*.txt" } }))
end)
]=])
    end
    local function tables(d)
      local db = assert(sqlite.open(d .. "/out.db", "read"))
      local names = {}
      for _, r in ipairs(assert(db:rows("SELECT name FROM sqlite_master "
          .. "WHERE type = 'table' AND name LIKE 't_%' ORDER BY name"))) do
        local n = assert(db:rows("SELECT count(*) AS n FROM " .. r.name))
        names[#names + 1] = r.name .. "=" .. n[1].n
      end
      db:close()
      return table.concat(names, " ")
    end
    local one, two = tables_project(), tables_project()
    update(one, location("one_tables"))
    update(two, location("two_tables"), "--workers 2")
    assert.are.equal(tables(one), tables(two))
    for _, d in ipairs { one, two } do
      helpers.write(d .. "/docs/d002.txt", "skip\n")
      helpers.write(d .. "/docs/d003.txt", "Document 3, edited\n")
    end
    update(one, location("one_tables"))
    update(two, location("two_tables"), "--workers 2")
    local kept = tables(one)
    assert.is_truthy(kept:find("t_d002=0", 1, true), kept)
    assert.are.equal(kept, tables(two))
  end)

  -- A project of n documents of `lines` lines each ("a1", "b1", ...),
  -- each mounting a component per line, which writes its row.
  local function lines_project(n, lines)
    local d = project_with(n, [=[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
@LINE@
local process = tide.fn("process", { memo = true }, function(file, t)
  local i = 0
  for l in file:text():gmatch("[^\n]+") do
    i = i + 1
    tide.mount(tostring(i), line, file.path .. "#" .. i, l, t)
  end
end)
return tide.app("lines", function()
  local t = sqlite.table { db = "out.db", name = "lines", schema = Line }
  tide.mount_each(process, fs.walk("docs", { include = { "*.txt" } }), t)
end)
]=])
    for i = 1, n do
      local text = {}
      for k = 1, lines do
        text[k] = ("abcdefghij"):sub(k, k) .. i .. "\n"
      end
      helpers.write(("%s/docs/d%03d.txt"):format(d, i), table.concat(text))
    end
    return d
  end

  it("deletes what a worker's item no longer mounts, as one process does",
     function()
    local one, two = lines_project(10, 3), lines_project(10, 3)
    update(one, location("one_lines"))
    update(two, location("two_lines"), "--workers 2")
    for _, d in ipairs { one, two } do
      helpers.write(d .. "/docs/d003.txt", "a3\n")
      helpers.write(d .. "/docs/d007.txt", "a7\nB7\n")
    end
    local a = update(one, location("one_lines"))
    local b = update(two, location("two_lines"), "--workers 2")
    assert.are.equal(3, a.components.deleted)
    assert.are.equal(counts(a), counts(b))
    local kept = lines_of(one)
    assert.is_nil(kept:find("d003.txt#2", 1, true))
    assert.are.equal(kept, lines_of(two))
    assert.are.equal(store_content("one_lines"), store_content("two_lines"))
    -- Nothing left to do, nothing recorded incomplete.
    b = update(two, location("two_lines"), "--workers 2")
    assert.are.equal(0, b.components.reprocessed + b.components.deleted)
  end)

  it("counts every component a worker records, in batches its items' "
     .. "components fill before its next claim", function()
    -- 100 documents of 5 lines: a worker holds more items than a batch
    -- records components (256), so a batch fills, and is written, as a
    -- component submits.
    local one, two = lines_project(100, 5), lines_project(100, 5)
    local a = update(one, location("one_many_lines"))
    local b = update(two, location("two_many_lines"), "--workers 1")
    assert.are.equal(600, a.components.added)
    assert.are.equal(counts(a), counts(b))
    assert.are.equal(600, b.workers[1].components.added)
    assert.are.equal(lines_of(one), lines_of(two))
  end)

  it("spreads long items over the workers: none takes them all at once",
     function()
    -- 30 items of 100 ms of CPU each: a worker holds about a second of
    -- work once it has measured one, and 8 items before.
    local d = project(30)
    local r = update(d, location("long"), "--workers 2", "BUSY_MS=100")
    assert.are.equal(30, r.components.added)
    assert.are.equal(2, #r.workers)
    for _, w in ipairs(r.workers) do
      assert.is_true(w.done >= 5, cjson.encode(r.workers))
    end
  end)

  it("claims items that mostly wait several slots' worth at a time, and "
     .. "runs no more of them at once than its slots", function()
    local d = project(120)
    local db = location("queued")
    update(d, db, "", "SLEEP_MS=20") -- makes the schema
    for i = 1, 120 do
      helpers.write(("%s/docs/d%03d.txt"):format(d, i), "Edited " .. i .. "\n")
    end
    -- Every statement that sets a work item's worker: a claim (or a
    -- worker's leave, which sets none).
    must(postgres.query(conn, "CREATE TABLE public.queued_updates(n int)"))
    must(postgres.query(conn, "CREATE FUNCTION queued_count() RETURNS "
      .. "trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO "
      .. "public.queued_updates VALUES (1); RETURN NULL; END $$"))
    must(postgres.query(conn, "CREATE TRIGGER counted AFTER UPDATE OF "
      .. "worker_id ON queued.work_items FOR EACH STATEMENT EXECUTE "
      .. "FUNCTION queued_count()"))
    local most = helpers.tmpdir()
    local r = update(d, db, "--workers 1 --max-inflight 2",
                     "SLEEP_MS=20 MOST_DIR=" .. q(most))
    assert.are.equal(120, r.components.reprocessed)
    assert.are.equal(120, r.workers[1].done)
    -- The worker ran at most 2 at once (the lead ran none).
    local files = helpers.run("ls " .. q(most))
    assert.are.equal(1, select(2, files:gsub("most%.", "")), files)
    assert.are.equal("2", helpers.read(most .. "/"
                                       .. files:match("most%.%d+")))
    -- Holding no more than it ran, it would claim one or two items at a
    -- time (and a second statement for each claim that finds none
    -- after the worker's last): 120 claim statements at least. It holds
    -- about a tenth of a second of its items beyond its slots, some 12.
    local statements = tonumber(rows("SELECT count(*) AS n FROM "
      .. "public.queued_updates")[1].n)
    assert.is_true(statements < 60, statements .. " statements")
  end)

  it("ends the update when a worker's batch is rolled back: its items run "
     .. "again, and the targets are one process's", function()
    local d, clean = project(60), project(60)
    local db = location("lost_batch")
    update(d, db) -- makes the schema
    -- The server refuses, once, the record of one component: the batch
    -- that holds it is rolled back, and with it what the worker recorded
    -- of its other items since its last commit (their done marks too).
    must(postgres.query(conn, "CREATE SEQUENCE public.lost_once"))
    on_component_write("lost_batch", "lost_once", "BEFORE",
      "IF NEW.path = '/process/d030.txt'::bytea AND "
      .. "nextval('public.lost_once') = 1 THEN RAISE EXCEPTION 'refused "
      .. "once'; END IF; RETURN NEW;")
    edit_both(d, clean, 60, "edited")
    -- It ends (the worker leaves, its items are run by the others or the
    -- lead), and says why it failed.
    local out, err, code = helpers.run(("cd %s && SLEEP_MS=40 timeout 60 %s "
      .. "update pipeline.lua --db %s --workers 2 --max-inflight 2 --json")
      :format(q(d), helpers.tide, q(db)))
    assert.are_not.equal(124, code, err)
    -- The update is whole: the worker says why it left, blames no
    -- component for the server's failure, and the lead ends well.
    assert.are.equal(0, code, err)
    assert.is_truthy(err:find("left the update: the server rolled back a "
      .. "batch of its writes (", 1, true), err)
    assert.is_truthy(err:find("refused once", 1, true), err)
    assert.is_falsy(err:find("component /process/", 1, true), err)
    assert.is_falsy(err:find("traceback", 1, true), err)
    -- Its counts are one process's: each component counted once, by
    -- whoever committed it (the lost batch's, by those that ran them
    -- again), its workers' adding up to them.
    local lost = cjson.decode(out)
    assert.are.equal(60, lost.components.reprocessed)
    assert.are.equal(60, lost.targets.updated)
    local sum = 0
    for _, w in ipairs(lost.workers) do
      if type(w.components) == "table" then
        sum = sum + w.components.reprocessed
      end
    end
    assert.are.equal(60, sum)
    update(clean, location("lost_clean"))
    assert.are.equal(target_rows(clean), target_rows(d))
    local r = update(d, db, "--workers 2")
    assert.are.equal(0, r.components.errors)
    assert.are.equal(target_rows(clean), target_rows(d))
    assert.are.equal(store_content("lost_clean"),
                     store_content("lost_batch"))
    -- And a run after it has nothing to do.
    local again = update(d, db, "--workers 2")
    assert.are.equal(60, again.components.unchanged)
  end)

  it("runs an update's --full-reprocess and --reset in its workers too, "
     .. "as one process does", function()
    local d, clean = project(30), project(30)
    local db = location("full_workers")
    update(d, db, "--workers 2")
    update(clean, location("full_clean"))
    -- Rows changed outside tide: a full reprocess writes every declared
    -- state again, whoever runs its components.
    local out = assert(sqlite.open(d .. "/out.db", "write"))
    assert(out:exec("DELETE FROM docs WHERE path = 'd003.txt'"))
    assert(out:exec("UPDATE docs SET title = 'tampered' WHERE path = "
                    .. "'d004.txt'"))
    out:close()
    local r = update(d, db, "--workers 2 --full-reprocess")
    assert.are.equal(30, r.components.reprocessed)
    assert.are.equal(30, r.targets.updated)
    assert.are.equal(target_rows(clean), target_rows(d))
    -- A file edited behind the store's back (same size, inode and time):
    -- only a reset, which trusts no file state, reads it again.
    local path = d .. "/docs/d005.txt"
    assert(os.execute(("touch -r %s %s.t"):format(q(path), q(path))))
    local f = assert(io.open(path, "r+"))
    f:write("Dokument")
    f:close()
    assert(os.execute(("touch -r %s.t %s"):format(q(path), q(path))))
    os.remove(path .. ".t")
    update(d, db, "--workers 2")
    assert.is_falsy(target_rows(d):find("Dokument 5", 1, true))
    r = update(d, db, "--workers 2 --reset")
    assert.are.equal(30, r.components.reprocessed)
    assert.is_truthy(target_rows(d):find("d005.txt|Dokument 5|", 1, true))
    -- And the update after them is a plain one again.
    assert.are.equal(30, update(d, db, "--workers 2").components.unchanged)
  end)

  it("gives a worker's free slot the next item at once, while a long "
     .. "one runs", function()
    -- a.txt takes 1 s, the 40 others 20 ms; one worker, two slots: the
    -- short items go on through the other slot while a.txt runs.
    local d = project_with(0, [=[
local tide = require "tide"
local core = require "tide.core"
local fs = require "tide.fs"
local function log(what, path)
  local f = assert(io.open("log", "a"))
  f:write(what, " ", path, " ", core.now_ms(), "\n")
  f:close()
end
local process = tide.fn("process", { memo = true }, function(file)
  log("start", file.path)
  tide.sleep(file.path == "a.txt" and 1 or 0.02)
  log("end", file.path)
end)
return tide.app("slots", function()
  tide.mount_each(process, fs.walk("docs", { include = { "*.txt" } }))
end)
]=])
    for i = 1, 40 do
      helpers.write(("%s/docs/s%02d.txt"):format(d, i), "short")
    end
    helpers.write(d .. "/docs/a.txt", "long")
    update(d, location("slots"), "--workers 1 --max-inflight 2")
    local at = {}
    for what, path, t in helpers.read(d .. "/log"):gmatch("(%a+) (%S+) (%S+)")
    do
      at[what .. " " .. path] = tonumber(t)
    end
    local from, to, during = at["start a.txt"], at["end a.txt"], 0
    for i = 1, 40 do
      local path = ("s%02d.txt"):format(i)
      if at["start " .. path] > from and at["end " .. path] < to then
        during = during + 1
      end
    end
    -- About 40 fit in that second; waiting for a.txt before mounting
    -- more let one or two through.
    assert.is_true(during >= 20, "short items run beside a.txt: " .. during)
  end)

  it("runs its items on while a claim waits for the server", function()
    -- A trigger holds every claimed item back 0.3 s on the server (a
    -- claim sets the item's worker; marking it done does not); the items
    -- wait 20 to 80 ms each, so that a claim is made while some run. A
    -- worker that waited for a claim's answer with its loop blocked would
    -- hold the items under way as long.
    local d = project_with(0, [=[
local tide = require "tide"
local core = require "tide.core"
local fs = require "tide.fs"
local process = tide.fn("process", { memo = true }, function(file)
  local from = core.now_ms()
  tide.sleep(0.02 * (tonumber(file.path:match("%d+")) % 4 + 1))
  local f = assert(io.open("log", "a"))
  f:write(file.path, " ", core.now_ms() - from, "\n")
  f:close()
end)
return tide.app("claims", function()
  tide.mount_each(process, fs.walk("docs", { include = { "*.txt" } }))
end)
]=])
    local db = location("slow_claims")
    helpers.run("mkdir -p " .. q(d .. "/docs"))
    tide(d, "", "update pipeline.lua --quiet --allow-empty --db " .. q(db))
    must(postgres.query(conn, "CREATE FUNCTION slow_claim() RETURNS "
      .. "trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.3); "
      .. "RETURN NEW; END $$"))
    must(postgres.query(conn, "CREATE TRIGGER slow BEFORE UPDATE OF "
      .. "worker_id ON slow_claims.work_items FOR EACH ROW WHEN "
      .. "(OLD.worker_id IS NULL AND NEW.worker_id IS NOT NULL) EXECUTE "
      .. "FUNCTION slow_claim()"))
    for i = 1, 24 do
      helpers.write(("%s/docs/s%02d.txt"):format(d, i), "item")
    end
    local r = update(d, db, "--workers 1 --max-inflight 3")
    assert.are.equal(24, r.workers[1].done)
    local n, longest = 0, 0
    for ms in helpers.read(d .. "/log"):gmatch("%S+ (%S+)\n") do
      n = n + 1
      longest = math.max(longest, tonumber(ms))
    end
    assert.are.equal(24, n)
    -- A claim made while items run lasts 0.3 s or more; the items it
    -- overlaps end on time nonetheless (the longest waits 80 ms).
    assert.is_true(longest < 250, "the longest item took " .. longest
                   .. " ms")
  end)
end)
