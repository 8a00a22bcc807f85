-- An update shared by worker processes on a PostgreSQL state store, with
-- a real PostgreSQL 15 started for this spec: 4 workers give the targets
-- and the store a one-process run gives, through cold, edited and
-- no-change runs; a worker killed with SIGKILL is taken over and the
-- result is the same, each component committed once but for the ones the
-- lead runs again; a lead stopped stops its workers cleanly; a killed
-- worker the lead started has its items freed at once, or is started
-- again in live mode; when every worker dies, the lead runs what is left
-- itself; a worker started by hand joins and takes work; SIGTERM frees a
-- worker's items at once; show --workers lists them; and what cannot be
-- shared is refused with a message.
local helpers = require "test.spec.helpers"
local pg = require "test.spec.pg_helpers"
local postgres = require "tide.postgres"
local sqlite = require "tide.sqlite"
local cjson = require "cjson"

local q = helpers.q
local dir, conn

setup(function() dir, conn = pg.start() end)

teardown(function()
  pg.stop(dir)
  helpers.cleanup()
end)

local must = pg.must

local function rows(sql, params) return pg.rows(conn, sql, params) end

local function location(schema)
  return pg.store_location(dir, schema)
end

-- Each document is counted by a memoized function (a memo entry per
-- text, shared by the workers) and written as a row; SLEEP_MS stands in
-- for a model call, BUSY_MS for a long computation. With MOST_DIR, each
-- process writes there (most.PID) the most items it had under way at once.
local PIPELINE = [[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local most_dir = os.getenv("MOST_DIR")
-- In a table: a function's logic counts a table upvalue by its presence,
-- a number by its value, which changes here.
local track = { under_way = 0, most = 0 }
local function started()
  track.under_way = track.under_way + 1
  if most_dir and track.under_way > track.most then
    track.most = track.under_way
    local f = assert(io.open(most_dir .. "/most."
                             .. require("tide.core").getpid(), "w"))
    f:write(track.most)
    f:close()
  end
end
local Doc = tide.record("Doc", {
  { "path", "string", key = true },
  { "title", "string" },
  { "words", "integer" },
})
local count = tide.fn("count", { memo = true }, function(text)
  local n = 0
  for _ in text:gmatch("%S+") do n = n + 1 end
  return n
end)
local pause = tonumber(os.getenv("SLEEP_MS") or "0") / 1000
local busy = tonumber(os.getenv("BUSY_MS") or "0") / 1000
local process = tide.fn("process", { memo = true }, function(file, docs)
  started()
  if pause > 0 then tide.sleep(pause) end
  if busy > 0 then
    local t = os.clock()
    repeat until os.clock() - t >= busy
  end
  local text = file:text()
  -- A document that says so has no row.
  if text:match("^skip") then
    track.under_way = track.under_way - 1
    return
  end
  docs:row(Doc { path = file.path, title = text:match("^([^\n]*)"),
                 words = count(text) })
  track.under_way = track.under_way - 1
end)
return tide.app("docs", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(process, fs.walk("docs", { include = { "*.txt" } }), docs)
end)
]]

local function project(n)
  local d = helpers.tmpdir()
  helpers.write(d .. "/pipeline.lua", PIPELINE)
  for i = 1, n do
    helpers.write(("%s/docs/d%03d.txt"):format(d, i),
                  ("Document %d\n%s\n"):format(i, ("w "):rep(i % 5 + 1)))
  end
  return d
end

-- A project of n documents whose pipeline is the one given; @LINE@ in
-- it stands for a record Line (id, text) and a memoized component
-- line(id, text, t) that writes one to t.
local LINE = [[
local Line = tide.record("Line", { { "id", "string", key = true },
                                   { "text", "string" } })
local line = tide.fn("line", { memo = true }, function(id, text, t)
  t:row(Line { id = id, text = text })
end)]]

local function project_with(n, pipeline)
  local d = project(n)
  helpers.write(d .. "/pipeline.lua",
                (pipeline:gsub("@LINE@", function() return LINE end)))
  return d
end

-- The rows of the table lines of out.db, as one string.
local function lines_of(d)
  local db = assert(sqlite.open(d .. "/out.db", "read"))
  local out = {}
  for _, r in ipairs(assert(db:rows("SELECT * FROM lines ORDER BY id"))) do
    out[#out + 1] = r.id .. "=" .. r.text
  end
  db:close()
  return table.concat(out, " ")
end

local function tide(d, env, args)
  return helpers.run(("cd %s && env %s %s %s"):format(q(d), env or "",
                                                        helpers.tide, args))
end

local function update(d, db, extra, env)
  local out, err, code = tide(d, env, ("update pipeline.lua --db %s --json %s")
    :format(q(db), extra or ""))
  assert(code == 0, "update failed: " .. tostring(err) .. out)
  return cjson.decode(out)
end

local function target_rows(d)
  local db = assert(sqlite.open(d .. "/out.db", "read"))
  local lines = {}
  for _, r in ipairs(assert(db:rows("SELECT * FROM docs ORDER BY path"))) do
    lines[#lines + 1] = ("%s|%s|%d"):format(r.path, r.title, r.words)
  end
  db:close()
  return table.concat(lines, "\n")
end

-- What a schema's store holds that does not depend on which process
-- wrote it (ids, times and file identities aside).
local function store_content(schema)
  local parts = {}
  local function add(sql)
    for _, r in ipairs(rows((sql:gsub("S%.", schema .. ".")))) do
      local cells = {}
      for k, v in pairs(r) do cells[#cells + 1] = k .. "=" .. tostring(v) end
      table.sort(cells)
      parts[#parts + 1] = table.concat(cells, " ")
    end
  end
  add("SELECT encode(path, 'escape') AS path, encode(fn_name, 'escape') AS fn,"
      .. " encode(logic_fp, 'hex') AS logic, encode(input_fp, 'hex') AS input,"
      .. " encode(source_key, 'escape') AS source_key,"
      .. " encode(state, 'hex') AS state, encode(deps_fp, 'hex') AS deps,"
      .. " status FROM S.components ORDER BY path")
  add("SELECT encode(c.kind, 'escape') AS kind,"
      .. " encode(c.identity, 'escape') AS identity,"
      .. " encode(t.key, 'hex') AS key, encode(t.value_fp, 'hex') AS value,"
      .. " t.pending, encode(o.path, 'escape') AS owner"
      .. " FROM S.target_states t JOIN S.containers c ON c.id = t.container_id"
      .. " JOIN S.components o ON o.id = t.owner_id ORDER BY 1, 2, 3")
  add("SELECT encode(key, 'hex') AS key, encode(fn_name, 'escape') AS fn,"
      .. " encode(value, 'hex') AS value, encode(targets, 'hex') AS targets"
      .. " FROM S.memos ORDER BY key")
  add("SELECT encode(source, 'escape') AS source,"
      .. " encode(key, 'escape') AS key, size,"
      .. " encode(content_fp, 'hex') AS fp FROM S.source_items ORDER BY 1, 2")
  add("SELECT count(*) AS intents FROM S.intents")
  return table.concat(parts, "\n")
end

-- Documents 1..n of both projects given the same new text, "Document
-- <i>, <how>".
local function edit_both(d, clean, n, how)
  for i = 1, n do
    local text = ("Document %d, %s\nw w\n"):format(i, how)
    helpers.write(("%s/docs/d%03d.txt"):format(d, i), text)
    helpers.write(("%s/docs/d%03d.txt"):format(clean, i), text)
  end
end

-- Runs the PL/pgSQL body (which ends with RETURN NEW) on each row written
-- to schema's components, when ("BEFORE" or "AFTER"), as function name.
local function on_component_write(schema, name, when, body)
  must(postgres.query(conn, ("CREATE FUNCTION %s() RETURNS trigger "
    .. "LANGUAGE plpgsql AS $$ BEGIN %s END $$"):format(name, body)))
  must(postgres.query(conn, ("CREATE TRIGGER %s %s INSERT OR UPDATE ON "
    .. "%s.components FOR EACH ROW EXECUTE FUNCTION %s()")
    :format(name, when, schema, name)))
end

local function edit(d)
  helpers.write(d .. "/docs/d010.txt", "Ten, edited\nw w w\n")
  helpers.write(d .. "/docs/d011.txt", "Document 1\nw w \n") -- a memo hit
  os.remove(d .. "/docs/d012.txt")
  helpers.write(d .. "/docs/d999.txt", "New\nw\n")
end

-- The counts a report gives, as one string.
-- The workers of the update under way, as show --workers --json lists
-- them, or nil.
local function shown_workers(d, db)
  local o = tide(d, "", ("show pipeline.lua --workers --json --db %s")
    :format(q(db)))
  local ok, shown = pcall(cjson.decode, o)
  return ok and type(shown) == "table" and shown.workers or nil
end

-- Sends signal (KILL, TERM) to the processes whose pids are given (JSON
-- numbers, which cjson reads as floats, or text; "-PID" for a process
-- group) and checks that it was sent.
local function kill(signal, ...)
  local pids = {}
  for i, pid in ipairs { ... } do
    -- "-PID": the process group PID
    local group, n = tostring(pid):match("^(%-?)(%d+)")
    pids[i] = group .. n
  end
  local _, err, code = helpers.run(("kill -s %s -- %s")
    :format(signal, table.concat(pids, " ")))
  assert(code == 0, "kill: " .. tostring(err))
end

-- Starts a shared update of project d on store db in the background,
-- with the environment and flags given; returns a function that waits
-- for it and gives its exit status (a string), its --json report and
-- what it wrote on stderr.
local function start_update(d, db, env, flags)
  local out, err = os.tmpname(), os.tmpname()
  local lead = io.popen(("cd %s && %s %s update pipeline.lua --db %s %s "
    .. "--json > %s 2> %s; echo $?"):format(q(d), env, helpers.tide, q(db),
    flags, q(out), q(err)))
  return function()
    local code = lead:read("a"):match("%d+")
    lead:close()
    local said = helpers.read(err) or ""
    local ok, r = pcall(cjson.decode, helpers.read(out) or "")
    os.remove(out)
    os.remove(err)
    return code, ok and r or nil, said
  end
end

-- The workers show --workers lists once pred(workers) holds (20 s at
-- most), or nil.
local function workers_when(d, db, pred)
  local found
  helpers.wait_for(function()
    local w = shown_workers(d, db)
    if w and pred(w) then
      found = w
      return true
    end
  end, 20)
  return found
end

-- The pids of the workers of the project in d (their command lines name
-- its pipeline), in order.
local function worker_pids(d)
  local pids = {}
  for pid, args in helpers.run("ps -eo pid,args"):gmatch("(%d+) ([^\n]*)") do
    if args:find("worker", 1, true)
       and args:find(d .. "/pipeline.lua", 1, true) then
      pids[#pids + 1] = math.tointeger(tonumber(pid))
    end
  end
  table.sort(pids)
  return pids
end

-- The rows of the project in d's target now, "" while it cannot be read.
local function rows_now(d)
  local ok, got = pcall(target_rows, d)
  return ok and got or ""
end

local function counts(r)
  return cjson.encode({ r.components, r.targets })
end

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

  it("deletes what a worker's item no longer mounts, as one process does",
     function()
    -- Each document mounts a component per line, which writes its row.
    local function lines_project()
      local d = project_with(10, [=[
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
      for i = 1, 10 do
        helpers.write(("%s/docs/d%03d.txt"):format(d, i),
                      ("a%d\nb%d\nc%d\n"):format(i, i, i))
      end
      return d
    end
    local one, two = lines_project(), lines_project()
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

  it("records main's own components once: use_mount's value in a worker",
     function()
    local d = helpers.tmpdir()
    helpers.write(d .. "/pipeline.lua", [=[
local tide = require "tide"
local sqlite = require "tide.sqlite"
local Row = tide.record("Row", { { "name", "string", key = true },
                                 { "n", "integer" } })
local list = tide.fn("list", function()
  local t = {}
  for i = 1, 40 do t[("k%02d"):format(i)] = i end
  return t
end)
local put = tide.fn("put", { memo = true }, function(n, rows)
  rows:row(Row { name = "x" .. n, n = n })
end)
return tide.app("listed", function()
  local rows = sqlite.table { db = "out.db", name = "rows", schema = Row }
  tide.mount_each(put, tide.use_mount(list), rows)
end)
]=])
    local r = update(d, location("listed"), "--workers 2")
    assert.are.equal(41, r.components.added)
    assert.are.equal(40, r.targets.inserted)
    assert.are.equal(0, r.components.errors)
    local again = update(d, location("listed"), "--workers 2")
    assert.are.equal(40, again.components.unchanged)
    assert.are.equal(1, again.components.reprocessed) -- list: not memoized
  end)

  it("lets workers claim items while the lead still lists, and waits for "
     .. "the containers main declares after its first items", function()
    -- WAIT: the lead's main (not its workers': theirs only say what each
    -- item runs) waits, after its first items, until one of them has
    -- run: it would wait for ever if the workers waited for the whole
    -- listing. LATER: main declares a second table after its first items,
    -- which a worker's main waits for the lead to make (it could not claim
    -- before: WAIT and LATER together would wait for ever).
    local pipeline = [=[
local tide = require "tide"
local sqlite = require "tide.sqlite"
@LINE@
local marker = os.getenv("MARKER")
local first = tide.fn("first", { memo = true }, function(id, t)
  local f = assert(io.open(marker, "a"))
  f:write(id, "\n")
  f:close()
  t:row(Line { id = id, text = "first" })
end)
local second = tide.fn("second", { memo = true }, function(id, t)
  t:row(Line { id = id, text = "second" })
end)
local function items(prefix, n)
  local t = {}
  for i = 1, n do
    local id = ("%s%02d"):format(prefix, i)
    t[id] = id
  end
  return t
end
return tide.app("early", function()
  local early = sqlite.table { db = "out.db", name = "lines", schema = Line }
  tide.mount_each(first, items("a", 20), early)
  if os.getenv("WAIT") and not os.getenv("TIDE_LEAD_PID") then
    local t = require("tide.core").now_ms()
    while not io.open(marker) do
      if require("tide.core").now_ms() - t > 30000 then
        error("no item ran while main was listing")
      end
      tide.sleep(0.01)
    end
  end
  if os.getenv("LATER") then
    -- The lead makes it late: a worker's main comes to it first.
    if not os.getenv("TIDE_LEAD_PID") then tide.sleep(0.3) end
    local later = sqlite.table { db = "out.db", name = "later",
                                 schema = Line }
    tide.mount_each(second, items("b", 20), later)
  end
end)
]=]
    for _, case in ipairs { { env = "WAIT=1", n = 20, tables = 1 },
                            { env = "LATER=1", n = 40, tables = 2 } } do
      local one = project_with(0, pipeline)
      local two = project_with(0, pipeline)
      local s1, s2 = "early_one" .. case.tables, "early_two" .. case.tables
      local a = update(one, location(s1), "",
                       case.env .. " MARKER=marker")
      local b = update(two, location(s2), "--workers 2",
                       case.env .. " MARKER=marker")
      assert.are.equal(case.n, b.components.added)
      assert.are.equal(0, b.components.errors)
      assert.are.equal(counts(a), counts(b))
      assert.are.equal(lines_of(one), lines_of(two))
      assert.are.equal(store_content(s1), store_content(s2))
      -- Each table made once, by the lead.
      assert.are.equal(case.tables,
                       #rows("SELECT id FROM " .. s2 .. ".containers"))
      if case.tables == 2 then
        local db = assert(sqlite.open(two .. "/out.db", "read"))
        assert.are.equal(20, db:rows("SELECT count(*) AS n FROM later")[1].n)
        db:close()
      end
      local again = update(two, location(s2), "--workers 2",
                           case.env .. " MARKER=marker")
      assert.are.equal(case.n, again.components.unchanged)
    end
  end)

  it("makes main's containers in the lead only, one declared late "
     .. "included: a worker's main waits for it", function()
    -- The lead declares the second target 0.3 s after its first items,
    -- which the workers claim at once: their main comes to that
    -- declaration first, and must wait for the lead to make it (each
    -- setup is logged with its process).
    local d = helpers.tmpdir()
    helpers.write(d .. "/pipeline.lua", [=[
local tide = require "tide"
local core = require "tide.core"
local logged = tide.target_type {
  name = "logged",
  setup = function(spec)
    local f = assert(io.open("setups", "a"))
    f:write(spec.name, " ", core.getpid(), "\n")
    f:close()
    return true
  end,
  apply = function(spec, changes)
    for _, ch in ipairs(changes) do
      local f = assert(io.open(spec.name .. "-" .. ch.key[1], "w"))
      f:write(ch.value.text)
      f:close()
    end
  end,
}
local function items(prefix)
  local t = {}
  for i = 1, 20 do
    local key = ("%s%02d"):format(prefix, i)
    t[key] = key
  end
  return t
end
local put_a = tide.fn("put_a", { memo = true }, function(key, t)
  t:declare({ key }, { text = key })
end)
local put_b = tide.fn("put_b", { memo = true }, function(key, t)
  t:declare({ key }, { text = key })
end)
return tide.app("late", function()
  local early = tide.declare_target(logged, { name = "early" })
  tide.mount_each(put_a, items("a"), early)
  if not os.getenv("TIDE_LEAD_PID") then tide.sleep(0.3) end
  local late = tide.declare_target(logged, { name = "late" })
  tide.mount_each(put_b, items("b"), late)
end)
]=])
    local r = update(d, location("late"), "--workers 2")
    assert.are.equal(40, r.components.added)
    assert.are.equal(0, r.components.errors)
    local worker_pids = {}
    for _, w in ipairs(r.workers) do
      worker_pids[math.tointeger(w.pid)] = true
    end
    assert.are.equal(2, #r.workers)
    local setups = {}
    for name, pid in (helpers.read(d .. "/setups") or ""):gmatch("(%S+) (%d+)")
    do
      assert.is_nil(worker_pids[math.tointeger(tonumber(pid))],
                    name .. " was set up by a worker")
      setups[#setups + 1] = name
    end
    table.sort(setups)
    assert.are.same({ "early", "late" }, setups)
    for i = 1, 20 do
      assert.are.equal(("a%02d"):format(i),
                       helpers.read(("%s/early-a%02d"):format(d, i)))
      assert.are.equal(("b%02d"):format(i),
                       helpers.read(("%s/late-b%02d"):format(d, i)))
    end
  end)

  -- Main makes two mount_each calls of put under /put, into two tables;
  -- with LEAD_ONLY set, the second in the lead only.
  local TWO_CALLS = [=[
local tide = require "tide"
local sqlite = require "tide.sqlite"
@LINE@
local put = tide.fn("put", { memo = true }, function(id, t)
  t:row(Line { id = id, text = "put" })
end)
local function items(prefix)
  local t = {}
  for i = 1, 15 do
    local id = ("%s%02d"):format(prefix, i)
    t[id] = id
  end
  return t
end
return tide.app("twice", function()
  local a = sqlite.table { db = "out.db", name = "lines", schema = Line }
  local b = sqlite.table { db = "out.db", name = "others", schema = Line }
  tide.mount_each(put, items("a"), a)
  if not (os.getenv("LEAD_ONLY") and os.getenv("TIDE_LEAD_PID")) then
    tide.mount_each(put, items("b"), b)
  end
end)
]=]

  it("tells apart main's mount_each calls of one function with other "
     .. "arguments", function()
    -- Both calls mount under /put: each item's worker must give it its
    -- own call's table.
    local one = project_with(0, TWO_CALLS)
    local two = project_with(0, TWO_CALLS)
    local a = update(one, location("twice_one"))
    local b = update(two, location("twice_two"), "--workers 2")
    assert.are.equal(counts(a), counts(b))
    assert.are.equal(30, b.components.added)
    assert.are.equal(lines_of(one), lines_of(two))
    local db = assert(sqlite.open(two .. "/out.db", "read"))
    local others = db:rows("SELECT id FROM others ORDER BY id")
    db:close()
    assert.are.equal(15, #others)
    assert.are.equal("b01", others[1].id)
    assert.are.equal(store_content("twice_one"), store_content("twice_two"))
  end)

  it("fails, naming it, an item whose worker's main makes fewer "
     .. "mount_each calls than the lead's", function()
    -- The lead's main makes a second call under /put that its workers'
    -- mains do not make: the second call's items fail in the workers,
    -- each with the message, and the update ends with errors.
    local d = project_with(0, TWO_CALLS)
    local out, err, code = tide(d, "LEAD_ONLY=1", ("update pipeline.lua "
      .. "--db %s --workers 2 --json"):format(q(location("fewer"))))
    local r = cjson.decode(out)
    assert.are.equal(1, code, err)
    assert.are.equal(15, r.components.added)
    assert.are.equal(15, r.components.errors)
    assert.is_truthy(err:find("this worker's main makes fewer than 2 "
      .. "mount_each calls under /put: is it the lead's pipeline?", 1, true),
      err)
    assert.is_truthy(err:find("/put/b01", 1, true), err)
    assert.is_nil(err:find("/put/a", 1, true), err)
  end)

  it("ends the update when the lead's main fails after its workers "
     .. "began, and the next update gives one process's result", function()
    -- The lead's main fails once a worker has written a row.
    local main = [=[
return tide.app("docs", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(process, fs.walk("docs", { include = { "*.txt" } }), docs)
  if os.getenv("FAIL") and not os.getenv("TIDE_LEAD_PID") then
    local t0, n = require("tide.core").now_ms(), 0
    repeat
      tide.sleep(0.02)
      local db = sqlite.open("out.db", "read")
      if db then
        local got = db:rows("SELECT count(*) AS n FROM docs")
        n = got and got[1].n or 0
        db:close()
      end
    until n > 0 or require("tide.core").now_ms() - t0 > 30000
    error("main stops here")
  end
end)
]=]
    local function failing(n)
      local d = project(n)
      local text = PIPELINE:gsub("return tide%.app.*$", function()
        return main
      end)
      helpers.write(d .. "/pipeline.lua", text)
      return d
    end
    local d, clean = failing(40), failing(40)
    assert.is_truthy(helpers.read(d .. "/pipeline.lua"):find("main stops"))
    local out, err, code = tide(d, "FAIL=1 SLEEP_MS=50", ("update "
      .. "pipeline.lua --db %s --workers 2 --max-inflight 2 --json")
      :format(q(location("main_fails"))))
    assert.are.equal(2, code, out .. err)
    assert.is_truthy(err:find("main stops here", 1, true), err)
    -- The workers had begun: some documents are written, not all.
    local written = select(2, target_rows(d):gsub("[^\n]+", ""))
    assert.is_true(written > 0 and written < 40, tostring(written))
    -- The update ended: the next one runs the rest, as one process would.
    local r = update(d, location("main_fails"), "--workers 2")
    assert.are.equal(0, r.components.errors)
    update(clean, location("main_fails_clean"))
    assert.are.equal(target_rows(clean), target_rows(d))
    assert.are.equal(store_content("main_fails_clean"),
                     store_content("main_fails"))
    assert.are.equal(40, update(d, location("main_fails"), "--workers 2")
                           .components.unchanged)
  end)

  it("refuses what it cannot share, with a message", function()
    local d = project(3)
    local out, err, code = tide(d, "", "update pipeline.lua --workers 2")
    assert.are.equal(2, code)
    assert.is_truthy((out .. err):find("--workers needs a PostgreSQL state "
      .. "store", 1, true))
    out, err, code = tide(d, "", ("update pipeline.lua --db %s --workers 2 "
      .. "--preview"):format(q(location("x"))))
    assert.are.equal(2, code)
    assert.is_truthy((out .. err):find("it cannot preview", 1, true))
    out, err, code = tide(d, "", ("update pipeline.lua --db %s --workers 0")
      :format(q(location("x"))))
    assert.are.equal(2, code)
    assert.is_truthy(err:find("--workers must be a positive integer", 1,
                              true))
    -- A lead whose main fails ends the update: its workers do not wait.
    helpers.write(d .. "/broken.lua", "return require('tide').app('docs', "
      .. "function() error('main breaks') end)")
    local started = os.time()
    out, err, code = tide(d, "", ("update broken.lua --db %s --workers 2")
      :format(q(location("broken"))))
    assert.are.equal(2, code)
    assert.is_truthy(err:find("main breaks", 1, true))
    assert.is_true(os.time() - started < 10)
    -- A worker with no update to join waits --wait seconds, then says so.
    update(d, location("quiet"))
    out, err, code = tide(d, "", ("worker pipeline.lua --db %s --wait 0.2")
      :format(q(location("quiet"))))
    assert.are.equal(2, code)
    assert.is_truthy(err:find("no update of app docs to join in 0.2 s", 1,
                              true), err)
    out, err, code = tide(d, "", ("worker pipeline.lua --db %s --wait 0.2")
      :format(q(location("nothing"))))
    assert.are.equal(2, code)
    assert.is_truthy(err:find("no such state store", 1, true), err)
  end)
end)
