-- What the specs of updates shared by workers on a PostgreSQL state store
-- (postgres_workers*_spec.lua) share: a server of their own (start, stop),
-- a project of documents and its pipeline, tide run in it, and readings
-- of its targets, its store and its workers.
local helpers = require "test.spec.helpers"
local pg = require "test.spec.pg_helpers"
local postgres = require "tide.postgres"
local sqlite = require "tide.sqlite"
local cjson = require "cjson"

local q = helpers.q
local must = pg.must
local dir, conn

local M = {}

-- Starts the server; returns its folder and its connection string.
function M.start()
  dir, conn = pg.start()
  return dir, conn
end

-- Stops it and removes its folder.
function M.stop() pg.stop(dir) end

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

-- The counts a report gives, as one string.
local function counts(r)
  return cjson.encode({ r.components, r.targets })
end

M.rows = rows
M.location = location
M.PIPELINE = PIPELINE
M.project = project
M.project_with = project_with
M.lines_of = lines_of
M.tide = tide
M.update = update
M.target_rows = target_rows
M.store_content = store_content
M.edit_both = edit_both
M.on_component_write = on_component_write
M.edit = edit
M.shown_workers = shown_workers
M.kill = kill
M.start_update = start_update
M.workers_when = workers_when
M.worker_pids = worker_pids
M.rows_now = rows_now
M.counts = counts

return M
