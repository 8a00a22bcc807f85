-- The state store on PostgreSQL (--db postgresql://...?schema=NAME), with
-- a real PostgreSQL 15 started for this spec: the same pipeline run on a
-- SQLite store and on a PostgreSQL one gives the same reports and rows
-- through a cold run, a no-change run, edits and deletions; kill -9 at
-- random moments converges; show, ls, verify and drop read it; a schema
-- that is not a store is refused; and the password never reaches the
-- output, the targets or the store.
local helpers = require "test.spec.helpers"
local pg = require "test.spec.pg_helpers"
local postgres = require "tide.postgres"
local sqlite = require "tide.sqlite"
local cjson = require "cjson"

local q = helpers.q
local dir, conn
local SECRET = "pw-Store-77-never-shown"

setup(function() dir, conn = pg.start() end)

teardown(function()
  pg.stop(dir)
  helpers.cleanup()
end)

local must = pg.must

local function rows(sql, params) return pg.rows(conn, sql, params) end

-- A store location in schema name, with a password libpq sends and the
-- server (trust on its socket) does not ask for.
local function location(name, with_password)
  return pg.store_location(dir, name,
                           with_password and ("&password=" .. SECRET))
end

local PIPELINE = [[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", {
  { "path", "string", key = true },
  { "title", "string" },
  { "words", "integer" },
})
local process = tide.fn("process", { memo = true }, function(file, docs)
  local text = file:text()
  local n = 0
  for _ in text:gmatch("%S+") do n = n + 1 end
  docs:row(Doc { path = file.path, title = text:match("^([^\n]*)"),
                 words = n })
end)
return tide.app("docs", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  tide.mount_each(process, fs.walk("docs", { include = { "*.txt" } }), docs)
end)
]]

-- A project folder with the pipeline and n documents.
local function project(n)
  local d = helpers.tmpdir()
  helpers.write(d .. "/pipeline.lua", PIPELINE)
  assert(os.execute("mkdir -p " .. q(d .. "/docs")))
  local name = n > 999 and "%s/docs/d%05d.txt" or "%s/docs/d%03d.txt"
  for i = 1, n do
    local f = assert(io.open(name:format(d, i), "wb"))
    f:write(("Document %d\nwith %d words %s\n"):format(i, i,
                                                     ("x "):rep(i % 7)))
    f:close()
  end
  return d
end

local function tide(d, db, ...)
  return helpers.run(("cd %s && %s %s pipeline.lua --db %s %s")
    :format(q(d), helpers.tide, table.concat({ ... }, " "), q(db), ""))
end

local function update(d, db)
  local out, err, code = tide(d, db, "update --json")
  assert(code == 0, "update failed: " .. tostring(err) .. out)
  return cjson.decode(out)
end

-- The rows of a table of out.db, as one string in key order.
local function target_rows(d, name)
  local db = assert(sqlite.open(d .. "/out.db", "read"))
  local lines = {}
  for _, r in ipairs(assert(db:rows(("SELECT * FROM %s ORDER BY 1")
                                    :format(name or "docs")))) do
    local cells = {}
    for k, v in pairs(r) do cells[#cells + 1] = k .. "=" .. tostring(v) end
    table.sort(cells)
    lines[#lines + 1] = table.concat(cells, " ")
  end
  db:close()
  return table.concat(lines, "\n")
end

-- What a run's report says, without times.
local function counts(report)
  return cjson.encode({ report.components, report.targets })
end

describe("the state store on PostgreSQL", function()
  it("gives a SQLite store's reports and rows through cold, no-change, "
     .. "edited and deleting runs", function()
    local a, b = project(40), project(40)
    local lite, srv = a .. "/state.db", location("same_as_sqlite")
    local function both()
      local ra, rb = update(a, lite), update(b, srv)
      assert.are.equal(counts(ra), counts(rb))
      assert.are.equal(target_rows(a), target_rows(b))
      return rb
    end
    local r = both()
    assert.are.equal(40, r.components.added)
    r = both()
    assert.are.equal(40, r.components.unchanged)
    for _, d in ipairs { a, b } do
      helpers.write(d .. "/docs/d007.txt", "Seven, edited\n")
      os.remove(d .. "/docs/d008.txt")
      helpers.write(d .. "/docs/d041.txt", "A new one\n")
    end
    r = both()
    assert.are.equal(1, r.components.added)
    assert.are.equal(1, r.components.reprocessed)
    assert.are.equal(1, r.components.deleted)
    assert.are.equal(1, r.targets.deleted)
    r = both()
    assert.are.equal(40, r.components.unchanged)
    -- The store is the schema's tables.
    assert.are.equal(40, tonumber(rows("SELECT count(*) AS n FROM "
      .. "same_as_sqlite.components WHERE path LIKE '%.txt'::bytea")[1].n))
  end)

  -- From 20000 components the index and the file states are read on a
  -- thread with a connection of its own (index.h), beside main and the
  -- walk; the thread reaches the store as the run does, password included.
  it("reads a large store's index beside the walk: the same reports and "
     .. "rows, alone and with workers", function()
    local a, b = project(20000), project(20000)
    local lite, srv = a .. "/state.db", location("large", true)
    local function both(...)
      local ra = update(a, lite)
      local out, err, code = tide(b, srv, "update --json", ...)
      assert(code == 0, "update failed: " .. tostring(err) .. out)
      local rb = cjson.decode(out)
      assert.are.equal(counts(ra), counts(rb))
      assert.are.equal(target_rows(a), target_rows(b))
      return rb
    end
    assert.are.equal(20000, both().components.added)
    assert.are.equal(20000, both().components.unchanged)
    for _, d in ipairs { a, b } do
      helpers.write(d .. "/docs/d00007.txt", "Seven, edited\n")
      os.remove(d .. "/docs/d00008.txt")
      helpers.write(d .. "/docs/d20001.txt", "A new one\n")
    end
    local r = both()
    assert.are.equal(1, r.components.added)
    assert.are.equal(1, r.components.reprocessed)
    assert.are.equal(1, r.components.deleted)
    assert.are.equal(19998, r.components.unchanged)
    -- Workers too read it on a thread, while they wait to join.
    for _, d in ipairs { a, b } do
      helpers.write(d .. "/docs/d00009.txt", "Nine, edited\n")
      helpers.write(d .. "/docs/d00010.txt", "Ten, edited\n")
    end
    r = both("--workers", "2")
    assert.are.equal(2, r.components.reprocessed)
    assert.are.equal(19998, r.components.unchanged)
    assert.are.equal(20000, both().components.unchanged)
  end)

  -- On PostgreSQL the states the components owned are read ahead, those
  -- they declare and did not own are read in waves, and a run's
  -- deletions a chunk at a time (reconcile.lua): the same verdicts as
  -- the SQLite store's reads one by one.
  it("reads states in groups: the same reports, rows and conflicts as a "
     .. "SQLite store through additions, conflicts, deletions and a full "
     .. "reprocess", function()
    local keyed = PIPELINE:gsub('{ "path", "string", key = true },\n'
      .. '  { "title", "string" },', '{ "path", "string" },\n'
      .. '  { "title", "string", key = true },')
    assert.are_not.equal(PIPELINE, keyed)
    local a, b = project(60), project(60)
    for _, d in ipairs { a, b } do helpers.write(d .. "/pipeline.lua", keyed) end
    local lite, srv = a .. "/state.db", location("grouped_reads")
    local function both(...)
      local ra, ea, ca = tide(a, lite, "update --json", ...)
      local rb, eb, cb = tide(b, srv, "update --json", ...)
      assert.are.equal(ca, cb, eb)
      ra, rb = cjson.decode(ra), cjson.decode(rb)
      assert.are.equal(counts(ra), counts(rb))
      assert.are.equal(target_rows(a), target_rows(b))
      -- The same components fail, for the same reasons.
      local function failed(err)
        local lines = {}
        for line in err:gmatch("component (%S+ failed: [^\n]*)") do
          lines[#lines + 1] = line
        end
        table.sort(lines)
        return table.concat(lines, "\n")
      end
      assert.are.equal(failed(ea), failed(eb))
      return rb, eb
    end
    assert.are.equal(60, both().components.added)
    -- 40 more: 38 new titles, 2 that files left unchanged hold.
    for _, d in ipairs { a, b } do
      for i = 61, 100 do
        local title = (i == 70 and "Document 5") or (i == 80 and "Document 9")
          or ("Document %d"):format(i)
        helpers.write(("%s/docs/d%03d.txt"):format(d, i), title .. "\nmore\n")
      end
    end
    local r, err = both()
    assert.are.equal(38, r.components.added)
    assert.are.equal(2, r.components.errors)
    assert.are.equal(38, r.targets.inserted)
    assert.is_truthy(err:find('"Document 5" of docs declared by both '
                              .. "/process/d005.txt and /process/d070.txt",
                              1, true), err)
    -- 30 go, among them the holders of both: d070 and d080 take them.
    for _, d in ipairs { a, b } do
      for i = 1, 30 do os.remove(("%s/docs/d%03d.txt"):format(d, i)) end
    end
    r = both()
    assert.are.equal(30, r.components.deleted)
    assert.are.equal(2, r.components.added)
    assert.are.equal(0, r.components.errors)
    r = both("--full-reprocess")
    assert.are.equal(70, r.components.reprocessed)
    assert.are.equal(0, r.components.errors)
  end)

  -- On PostgreSQL the memo lookups of the calls made at about the same
  -- time are read together (Run:memo_lookup): the same hits and misses.
  it("looks memo entries up in groups: the same hits, misses and rows as "
     .. "a SQLite store", function()
    local memoized = PIPELINE:gsub('local process = tide.fn',
      'local words = tide.fn("words", { memo = true }, function(text)\n'
      .. '  local n = 0\n'
      .. '  for _ in text:gmatch("%%S+") do n = n + 1 end\n'
      .. '  return n\n'
      .. 'end)\n'
      .. 'local process = tide.fn'):gsub('words = n }', 'words = words(text) }')
    assert.is_truthy(memoized:find("words(text)", 1, true))
    local a, b = project(50), project(50)
    local lite, srv = a .. "/state.db", location("grouped_memos")
    local function both(code)
      for _, d in ipairs { a, b } do
        helpers.write(d .. "/pipeline.lua", code)
        -- Two files alike: one key asked twice in a group, computed once.
        helpers.write(d .. "/docs/d002.txt",
                      "Document 1\nwith 1 words x \n")
      end
      local ra, rb = update(a, lite), update(b, srv)
      assert.are.equal(counts(ra), counts(rb))
      assert.are.equal(cjson.encode(ra.functions), cjson.encode(rb.functions))
      assert.are.equal(target_rows(a), target_rows(b))
      return rb
    end
    local r = both(memoized)
    assert.are.equal(50, r.functions.words.calls)
    assert.are.equal(1, r.functions.words.hits)
    -- The components' code changes, not words': every component runs
    -- again and finds words' entries in the store.
    r = both((memoized:gsub("local text = file:text%(%)",
                            'local text = file:text() .. ""')))
    assert.are.equal(50, r.components.reprocessed)
    assert.are.equal(50, r.functions.words.hits)
    assert.are.equal(0, r.functions.words.misses)
    -- An entry a component stops using stays in the store until the
    -- run's end collects what none uses: another component that asks
    -- for it later in the same run finds it there. One component a
    -- batch, one at a time (app:update's options): d001's batch is
    -- written (its old entry let go) before d040 asks for that entry.
    local function one_by_one(d, db)
      helpers.write(d .. "/one_by_one.lua", [=[
local app = dofile("pipeline.lua")
local stats = assert(app:update { db = arg[1], batch_size = 1,
                                  max_inflight = 1 })
io.write(require("cjson").encode(stats.functions.words))
]=])
      local out, err, code = helpers.run(("cd %s && %s run one_by_one.lua %s")
        :format(q(d), helpers.tide, q(db)))
      assert(code == 0, tostring(err) .. out)
      return cjson.decode(out)
    end
    for _, d in ipairs { a, b } do
      helpers.write(d .. "/docs/d001.txt", "Document 1, edited\n")
      helpers.write(d .. "/docs/d040.txt", "Document 1\nwith 1 words x \n")
    end
    local wa, wb = one_by_one(a, lite), one_by_one(b, srv)
    assert.are.equal(1, wa.hits)
    assert.are.equal(1, wa.misses)
    assert.are.same(wa, wb)
    assert.are.equal(target_rows(a), target_rows(b))
  end)

  it("commits a batch that holds the memo lock alone once the component "
     .. "it was written for is recorded", function()
    -- many's 20,000 memo entries are more than a batch keeps for its
    -- commit: some go before it, under the memo lock alone, which holds
    -- back any other process's commit. One component at a time: later
    -- runs once many is recorded, and looks for many's row from a
    -- connection of its own; the batch would otherwise commit at the
    -- run's end.
    local d = helpers.tmpdir()
    local db = location("memo_lock_alone")
    helpers.write(d .. "/pipeline.lua", [=[
local tide = require "tide"
local postgres = require "tide.postgres"
local sqlite = require "tide.sqlite"
local Row = tide.record("Row", { { "id", "string", key = true },
                                 { "seen", "integer" } })
local square = tide.fn("square", { memo = true }, function(i) return i * i end)
local many = tide.fn("many", { memo = true }, function(t)
  for i = 1, 20000 do square(i) end
  t:row(Row { id = "many", seen = 0 })
end)
local later = tide.fn("later", { memo = true }, function(t)
  local sql = "SELECT count(*) AS n FROM memo_lock_alone.components"
    .. " WHERE fn_name = 'many'::bytea"
  local n
  for _ = 1, 400 do -- 20 s at most: what an ASan build may need
    local r = assert(postgres.query(os.getenv("PG_CONN"), sql))
    n = math.tointeger(r.rows[1].n)
    if n > 0 then break end
    tide.sleep(0.05)
  end
  t:row(Row { id = "later", seen = n })
end)
return tide.app("lock", function()
  local t = sqlite.table { db = "out.db", name = "rows", schema = Row }
  tide.mount("many", many, t)
  tide.mount("later", later, t)
end)
]=])
    local out, err, code = helpers.run(("cd %s && PG_CONN=%s %s update "
      .. "pipeline.lua --db %s --max-inflight 1 --json"):format(q(d), q(conn),
      helpers.tide, q(db)))
    assert(code == 0, tostring(err) .. out)
    assert.are.equal(20000, cjson.decode(out).functions.square.misses)
    local db_out = assert(sqlite.open(d .. "/out.db", "read"))
    local seen = assert(db_out:rows("SELECT seen FROM rows WHERE id = 'later'"))
    db_out:close()
    assert.are.equal(1, seen[1].seen)
  end)

  it("converges after kill -9 at random moments", function()
    local d = project(300)
    local clean = project(300)
    local db = location("killed")
    update(clean, location("clean"))
    local want = target_rows(clean)
    math.randomseed(os.time())
    for trial = 1, 6 do
      -- Edits between trials, so that each run has work to cut short.
      for i = 1, 300, 7 do
        local text = ("Document %d, trial %d\n"):format(i, trial)
        helpers.write(("%s/docs/d%03d.txt"):format(d, i), text)
        helpers.write(("%s/docs/d%03d.txt"):format(clean, i), text)
      end
      local ms = math.random(20, 400)
      helpers.run(("cd %s && (%s update pipeline.lua --db %s --quiet & "
        .. "pid=$!; sleep %.3f; kill -9 $pid; wait $pid) 2>/dev/null")
        :format(q(d), helpers.tide, q(db), ms / 1000))
    end
    update(d, db)
    update(clean, location("clean"))
    want = target_rows(clean)
    assert.are.equal(want, target_rows(d))
    local r = update(d, db)
    assert.are.equal(300, r.components.unchanged)
    assert.are.equal(0, r.targets.inserted + r.targets.updated
                        + r.targets.deleted)
  end)

  it("keeps a live session through a server restart: a change made after "
     .. "it is applied", function()
    local d = project(5)
    local db = location("restarted")
    os.execute(("cd %s && (sh -c 'echo $$ >pid; exec \"$0\" live "
      .. "pipeline.lua --db \"$1\" --json' %s %s >stdout 2>stderr; "
      .. "echo $? >status) >/dev/null 2>&1 &"):format(q(d), q(helpers.tide),
                                                     q(db)))
    assert.is_true(helpers.wait_for(function()
      return (helpers.read(d .. "/stderr") or ""):find("watching") ~= nil
    end, 60), "live mode never watched")
    -- The restart cuts the session's connection off: the next cycle's
    -- store is opened anew, not tried again on the dead connection.
    pg.restart(dir)
    helpers.write(d .. "/docs/d002.txt", "Retitled\nafter the restart\n")
    local title
    assert.is_true(helpers.wait_for(function()
      local ok, t = pcall(target_rows, d)
      title = ok and t:match("path=d002.txt title=([^\n]*)") or title
      return title == "Retitled words=4"
    end, 30), "the change after the restart was not applied: "
      .. tostring(title) .. "\n" .. tostring(helpers.read(d .. "/stderr")))
    local pid = assert(tonumber(helpers.read(d .. "/pid"):match("%d+")))
    os.execute("kill -TERM " .. pid)
    assert.is_true(helpers.wait_for(function()
      return (helpers.read(d .. "/status") or ""):match("%d") ~= nil
    end, 60), "tide live did not exit")
    assert.are.equal("0", helpers.read(d .. "/status"):match("%d+"))
    -- The store holds the change: a plain update carries every file over.
    local report = update(d, db)
    assert.are.equal(5, report.components.unchanged)
  end)

  it("runs an app's next update after a server restart on a store opened "
     .. "anew", function()
    local d = project(5)
    local db = location("reconnected")
    helpers.write(d .. "/host.lua", ([[
local app = dofile("pipeline.lua")
local db = %q
local first = assert(app:update { db = db })
-- The server restarts between the two updates of one session.
assert(os.execute(%q))
local f = assert(io.open("docs/d002.txt", "w"))
f:write("Retitled\nafter the restart\n")
f:close()
local second, err = app:update { db = db }
assert(second, err)
app:close()
print(first.components.added, second.components.reprocessed,
      second.components.unchanged)
]]):format(db, ("cd / && sh %s/scripts/pg_server.sh restart %s")
               :format(q(helpers.root), q(dir))))
    local out, err, code = helpers.run(("cd %s && %s run host.lua")
      :format(q(d), q(helpers.tide)))
    assert.are.equal(0, code, err)
    assert.are.equal("5\t1\t4\n", out)
    assert.matches("path=d002.txt title=Retitled words=4", target_rows(d))
  end)

  it("is read by show, ls and verify, and dropped by drop", function()
    local d = project(5)
    local db = location("reports")
    update(d, db)
    local out, err, code = tide(d, db, "show --json")
    assert.are.equal(0, code, err)
    local shown = cjson.decode(out)
    assert.is_truthy(out:find("d003.txt", 1, true))
    assert.is_table(shown)
    out, err, code = helpers.run(("%s ls --db %s"):format(helpers.tide,
                                                          q(db)))
    assert.are.equal(0, code, err)
    assert.is_truthy(out:find("docs", 1, true))
    out, err, code = tide(d, db, "verify --json")
    assert.are.equal(0, code, err .. out)
    out, err, code = tide(d, db, "drop --force")
    assert.are.equal(0, code, err .. out)
    assert.are.equal(0, tonumber(rows("SELECT count(*) AS n FROM "
      .. "reports.components")[1].n))
  end)

  it("never shows the password: output, messages, targets, store",
     function()
    local d = project(3)
    local db = location("secret", true)
    local out, err, code = tide(d, db, "update --json")
    assert.are.equal(0, code, err)
    assert.is_nil(out:find(SECRET, 1, true))
    -- The target records which store owns it: without the password.
    local owners = target_rows(d, "tide_owners")
    assert.is_truthy(owners:find("schema=secret", 1, true))
    assert.is_nil(owners:find(SECRET, 1, true))
    -- A server that cannot be reached: the message names the location
    -- without the password given in either form.
    out, err, code = tide(d, ("postgresql://tide:%s@/postgres?host=%s/none"
      .. "&password=%s&schema=secret"):format(SECRET, dir, SECRET), "update")
    assert.are_not.equal(0, code)
    assert.is_truthy((out .. err):find("postgresql://tide@/postgres?host="
      .. dir .. "/none&schema=secret: cannot connect", 1, true), out .. err)
    assert.is_nil((out .. err):find(SECRET, 1, true))
    for _, r in ipairs(rows("SELECT encode(string_agg(coalesce(state, "
      .. "''::bytea), ''::bytea), 'escape') AS s FROM secret.components")) do
      assert.is_nil((r.s or ""):find(SECRET, 1, true))
    end
  end)

  it("takes a keyword=value location as libpq does, its password unshown",
     function()
    local d = project(3)
    local db = ("host=%s dbname=postgres user=tide schema=keywords "
      .. "password='%s'"):format(dir, SECRET)
    local stats = update(d, db)
    assert.are.equal(3, stats.components.added)
    assert.are.equal(3, tonumber(rows("SELECT count(*) AS n FROM "
      .. "keywords.components WHERE path LIKE '/process/%'")[1].n))
    -- Not a SQLite file named after the location, beside the pipeline.
    local listed = helpers.run(("ls -A %s"):format(q(d)))
    assert.is_nil(listed:find("host=", 1, true), listed)
    -- The same store again (blanks around '=' as libpq allows): nothing
    -- to do.
    stats = update(d, ("host=%s  dbname = postgres user=tide "
      .. "schema=keywords"):format(dir))
    assert.are.equal(3, stats.components.unchanged)
    local owners = target_rows(d, "tide_owners")
    assert.is_truthy(owners:find("schema=keywords", 1, true), owners)
    assert.is_nil(owners:find(SECRET, 1, true))
    -- Unreachable: the message shows the location without the password.
    local out, err, code = tide(d, ("host=%s/none dbname=postgres "
      .. "password=%s schema=keywords"):format(dir, SECRET), "update")
    assert.are_not.equal(0, code)
    assert.is_truthy((out .. err):find(("host=%s/none dbname=postgres "
      .. "schema=keywords: cannot connect"):format(dir), 1, true), out .. err)
    assert.is_nil((out .. err):find(SECRET, 1, true))
    out, err, code = tide(d, "host=" .. dir .. " dbname='postgres", "update")
    assert.are.equal(2, code)
    assert.is_truthy(err:find("a quoted value has no closing quote", 1,
                              true), err)
  end)

  it("refuses a schema that is not a store, and a bad schema name",
     function()
    local d = project(2)
    must(postgres.query(conn, "CREATE SCHEMA theirs"))
    must(postgres.query(conn, "CREATE TABLE theirs.t(x int)"))
    local out, err, code = tide(d, location("theirs"), "update")
    assert.are_not.equal(0, code)
    assert.is_truthy((out .. err):find("not a tide state store (schema "
      .. "theirs holds other tables)", 1, true), out .. err)
    assert.are.equal(1, #rows("SELECT tablename FROM pg_tables "
      .. "WHERE schemaname = 'theirs'"))
    out, err, code = tide(d, location("Bad-Name"), "update")
    assert.are_not.equal(0, code)
    assert.is_truthy((out .. err):find("the schema must be lowercase "
      .. "letters", 1, true), out .. err)
  end)
end)
