-- tide.sqlite: the SQLite table target (sqlite.table) and the query source
-- (sqlite.rows), composed over the C connector in tide.core (lsqlite.c).
--
-- A table target's spec is plain data, stored by the engine between runs:
--   { db = absolute path, name = table name, schema = rt.schema,
--     fields = { { name =, type = described type, key = bool }... },
--     fts = { field names } or nil, busy_timeout = ms or nil }
-- Columns: string TEXT, bytes BLOB, integer INTEGER, number REAL, boolean
-- INTEGER 0/1, json, lists and records TEXT holding JSON, vector(N) BLOB of
-- N little-endian float32; optional(T) is T but nullable, every other
-- column NOT NULL. Key fields make the primary key, in field order.
-- JSON text is deterministic (equal values, equal text): record fields in
-- declared order, a missing optional one as null; json objects with keys
-- sorted bytewise, a table with keys 1..n an array, an empty one {}; lists
-- as arrays; bytes as base64; floats in their shortest exact form, always
-- with a fraction or exponent; NaN and infinities as null.
-- With fts, an external-content FTS5 table <name>_fts indexes those
-- columns, kept in step by triggers on the table (so any writer keeps it
-- right); tide's batches then go through a staging table (see
-- tide_SqliteTable in sqlite_db.h), since FTS5 is slow per statement.
local core = require "tide.core"
local keyed_rows = require "tide.rows"
local sql_table = require "tide.sql_table"
local checks = require "tide.search_options"

local type, error, pairs, ipairs, pcall, setmetatable, tostring, next,
      require = type, error, pairs, ipairs, pcall, setmetatable, tostring,
      next, require
local math_type = math.type
local fmt, concat, sort = string.format, table.concat, table.sort
local cbor_encode, sqlite_open, abspath, sqlite_rows_open =
  core.cbor_encode, core.sqlite_open, core.fs_abspath, core.sqlite_rows_open

local keyed, key_option = keyed_rows.keyed, keyed_rows.key_option

local M = {}

-- ---- Columns ----

local scalar_sql = { string = "TEXT", bytes = "BLOB", integer = "INTEGER",
                     number = "REAL", boolean = "INTEGER", json = "TEXT" }
local scalar_kind = { string = "text", bytes = "blob", integer = "integer",
                      number = "real", boolean = "boolean", json = "json" }
-- What an added NOT NULL column holds in existing rows until they are
-- written again.
local scalar_default = { string = "''", bytes = "x''", integer = "0",
                         number = "0.0", boolean = "0", json = "'null'" }

-- A described type's column: SQL type, plan kind, nullable, vector size,
-- default for ALTER TABLE ADD COLUMN.
local function column_of(t)
  local nullable = false
  while type(t) == "table" and t[1] == "optional" do
    nullable, t = true, t[2]
  end
  if type(t) == "string" then
    return scalar_sql[t], scalar_kind[t], nullable, nil, scalar_default[t]
  elseif t[1] == "vector" then
    return "BLOB", "vector", nullable, t[2], "x''"
  elseif t[1] == "list" then
    return "TEXT", "json", nullable, nil, "'[]'"
  end
  return "TEXT", "json", nullable, nil, "'{}'"
end

local function ident(name) return '"' .. name:gsub('"', '""') .. '"' end
local function literal(s) return "'" .. s:gsub("'", "''") .. "'" end

local function where(spec)
  return fmt("sqlite.table %s in %s", spec.name, spec.db)
end

-- What db:apply needs to turn records into rows, built once per spec.
local plans = setmetatable({}, { __mode = "k" })

local function plan_of(spec)
  local plan = plans[spec]
  if plan then return plan end
  plan = sql_table.plan(spec, column_of)
  -- Per-row statements would make FTS5 flush a segment per row: stage.
  plan.staged = spec.fts ~= nil
  plans[spec] = plan
  return plan
end

-- ---- Connections ----

-- One connection per database file and Lua state, reopened when the file
-- was deleted or replaced. It never holds a transaction between calls.
local connections = {}

-- Live mode keeps one more connection to each target database it wrote,
-- an anchor that never reads or writes after it opened (path -> db), so
-- that a cycle's connection is never the last one: closing the last
-- connection copies the write-ahead log back into the database and syncs
-- the file, and opening the first one after reads the whole log again,
-- milliseconds a host's frame cannot give. M.end_live closes the anchors
-- and so copies the log back.
local anchors = {}

-- Batches written on a connection's own thread (target.apply_send): the
-- spec whose batch each connection has out, until apply_wait reports it;
-- and the outcome (false, or the message) of a batch waited for early,
-- because its connection was needed meanwhile (another table of the same
-- database, a check that closed it), until its own apply_wait.
local sent, outcomes = {}, {}

-- Waits for the batch the connection to path has out, keeping its
-- outcome: the connection is free for anything once this returns.
local function settle(path)
  local db = connections[path]
  local spec = db and sent[db]
  if not spec then return end
  sent[db] = nil
  local ok, err = db:apply_wait()
  outcomes[spec] = not ok and err
end

local function connect(spec)
  settle(spec.db)
  -- A live anchor to a file since deleted or replaced holds the old file
  -- open for nothing: it closes as soon as the path is used again (SQLite
  -- leaves the log alone when it closes on a file that was unlinked).
  local a = anchors[spec.db]
  if a and a:stale() then
    a:close()
    anchors[spec.db] = nil
  end
  local db = connections[spec.db]
  if db and db:stale() then
    db:close()
    db = nil
  end
  if not db then
    local err
    db, err = sqlite_open(spec.db, "create")
    if not db then error(where(spec) .. ": " .. err, 0) end
    connections[spec.db] = db
  end
  db:busy_timeout(spec.busy_timeout or 0)
  return db
end

local function anchor(path)
  local a = anchors[path]
  if a and not a:stale() then return end
  if a then a:close() end
  anchors[path] = nil
  a = sqlite_open(path, "write")
  -- A connection opens the log and its shared memory when it first reads.
  if a and a:rows("SELECT 1 FROM sqlite_master LIMIT 1") then
    anchors[path] = a
  elseif a then
    a:close()
  end
end

-- Closes every connection; the engine calls it at the end of each run and
-- drop, so that a program that runs several updates never writes through
-- a connection that another process's checkpoint left behind. live (the
-- end of a live cycle) anchors each database first.
function M.close_connections(live)
  for path, db in pairs(connections) do
    if live then anchor(path) end
    sent[db] = nil
    db:close()
    connections[path] = nil
  end
  outcomes = {}
end

-- Closes the anchors: the last connection to each database copies its log
-- back, so that the database file alone holds every row once live mode
-- ends (a copy of the file alone loses nothing).
function M.end_live()
  for path, a in pairs(anchors) do
    a:close()
    anchors[path] = nil
  end
end

local function must(spec, ok, err)
  if not ok then error(where(spec) .. ": " .. err, 0) end
  return ok, err
end

-- ---- Setup ----

local function wanted_columns(spec)
  return sql_table.wanted_columns(spec, column_of)
end

-- The columns of an existing table in the same shape, or nil when there is
-- no such table; the object's type when it is something else (a view).
local function table_columns(spec, db, name)
  local rows = must(spec, db:rows(fmt("SELECT type FROM sqlite_master "
    .. "WHERE name = %s COLLATE NOCASE", literal(name))))
  if not rows[1] then return nil end
  if rows[1].type ~= "table" then return nil, rows[1].type end
  rows = must(spec, db:rows(fmt('SELECT name, type, "notnull", pk '
    .. "FROM pragma_table_info(%s)", literal(name))))
  local cols = {}
  for _, r in ipairs(rows) do
    cols[r.name] = { type = r.type:upper(), notnull = r.notnull ~= 0,
                     pk = r.pk }
  end
  return cols
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  sort(keys)
  return keys
end

local must_recreate = sql_table.must_recreate

local function create_sql(spec)
  local defs, keys = {}, {}
  for i, f in ipairs(spec.fields) do
    local sql, _, nullable = column_of(f.type)
    defs[i] = ident(f.name) .. " " .. sql .. (nullable and "" or " NOT NULL")
    if f.key then keys[#keys + 1] = ident(f.name) end
  end
  defs[#defs + 1] = "PRIMARY KEY (" .. concat(keys, ", ") .. ")"
  return fmt("CREATE TABLE %s (%s)", ident(spec.name), concat(defs, ", "))
end

-- Adds and drops columns in place; false when SQLite refuses (a column a
-- user's index or view depends on), the changes then undone.
local function alter(spec, db, have, want)
  local t = ident(spec.name)
  must(spec, db:exec("SAVEPOINT tide_alter"))
  for _, name in ipairs(sorted_keys(have)) do
    if not want[name] and not db:exec(fmt("ALTER TABLE %s DROP COLUMN %s",
                                          t, ident(name))) then
      must(spec, db:exec("ROLLBACK TO tide_alter; RELEASE tide_alter"))
      return false
    end
  end
  for _, f in ipairs(spec.fields) do
    local w = want[f.name]
    if not have[f.name] then
      must(spec, db:exec(fmt("ALTER TABLE %s ADD COLUMN %s %s%s", t,
        ident(f.name), w.type, w.notnull and " NOT NULL DEFAULT "
        .. w.default or "")))
    end
  end
  must(spec, db:exec("RELEASE tide_alter"))
  return true
end

local function fts_name(spec) return spec.name .. "_fts" end

local function fts_sql(spec)
  local cols = {}
  for i, c in ipairs(spec.fts) do cols[i] = ident(c) end
  return fmt("CREATE VIRTUAL TABLE %s USING fts5(%s, content=%s, "
    .. "content_rowid='rowid')", ident(fts_name(spec)), concat(cols, ", "),
    literal(spec.name))
end

local trigger_suffixes = { "_ai", "_ad", "_au" }

-- Triggers keep the external-content FTS5 index in step with the table:
-- every insert, delete and update (an upsert's DO UPDATE included) of an
-- indexed column.
local function triggers_sql(spec)
  local t, f = ident(spec.name), ident(fts_name(spec))
  local cols, new, old, changed = {}, {}, {}, { "old.rowid IS NOT new.rowid" }
  for i, c in ipairs(spec.fts) do
    cols[i], new[i], old[i] = ident(c), "new." .. ident(c), "old." .. ident(c)
    changed[i + 1] = fmt("old.%s IS NOT new.%s", ident(c), ident(c))
  end
  cols, new, old = concat(cols, ", "), concat(new, ", "), concat(old, ", ")
  local add = fmt("INSERT INTO %s(rowid, %s) VALUES (new.rowid, %s);", f,
                  cols, new)
  local remove = fmt("INSERT INTO %s(%s, rowid, %s) VALUES ('delete', "
    .. "old.rowid, %s);", f, f, cols, old)
  local name = fts_name(spec)
  return concat {
    fmt("CREATE TRIGGER %s AFTER INSERT ON %s BEGIN %s END;",
        ident(name .. "_ai"), t, add),
    fmt("CREATE TRIGGER %s AFTER DELETE ON %s BEGIN %s END;",
        ident(name .. "_ad"), t, remove),
    fmt("CREATE TRIGGER %s AFTER UPDATE ON %s WHEN %s BEGIN %s %s END;",
        ident(name .. "_au"), t, concat(changed, " OR "), remove, add),
  }
end

local function fts_existing(spec, db)
  local rows = must(spec, db:rows(fmt("SELECT sql FROM sqlite_master "
    .. "WHERE name = %s COLLATE NOCASE", literal(fts_name(spec)))))
  return rows[1] and (rows[1].sql or "")
end

-- A table tide did not create: refused with what the user can do.
local function foreign(spec, name, why, advice)
  error(fmt("%s: table %s exists and was not created by tide%s; %s",
            where(spec), name, why, advice or "choose another name"), 0)
end

-- Brings the FTS index in line with spec.fts; rebuilt when its columns
-- changed or the table was (re)created.
local function sync_fts(spec, prev, db, fresh)
  local existing = fts_existing(spec, db)
  local wanted = spec.fts and fts_sql(spec)
  if existing and prev == nil and existing ~= wanted then
    foreign(spec, fts_name(spec), " (not the full-text index tide makes)")
  end
  if existing and (existing ~= wanted or fresh) then
    must(spec, db:exec("DROP TABLE " .. ident(fts_name(spec))))
    existing = nil
  end
  if wanted and not existing then
    local f = ident(fts_name(spec))
    must(spec, db:exec(wanted))
    must(spec, db:exec(fmt("INSERT INTO %s(%s) VALUES ('rebuild')", f, f)))
  end
  if wanted then must(spec, db:exec(triggers_sql(spec))) end
end

-- Whether the FTS index and the three triggers that keep it in step are
-- all there: one dropped by hand leaves every later write failing (the
-- triggers name the index) or the index behind the table.
local function fts_intact(spec, db)
  local names = { literal(fts_name(spec)) }
  for _, suffix in ipairs(trigger_suffixes) do
    names[#names + 1] = literal(fts_name(spec) .. suffix)
  end
  local rows = must(spec, db:rows(fmt("SELECT count(*) AS n FROM "
    .. "sqlite_master WHERE name IN (%s) COLLATE NOCASE",
    concat(names, ", "))))
  return rows[1].n == #names
end

local function drop_triggers(spec, db)
  for _, suffix in ipairs(trigger_suffixes) do
    must(spec, db:exec("DROP TRIGGER IF EXISTS "
      .. ident(fts_name(spec) .. suffix)))
  end
end

-- Which state store keeps which table: a tide_owners table in the same
-- database, so that a second store (another project, a copy with its own
-- state) is refused instead of fighting over the rows. owner = { id =
-- "app@created_ns" of the app in its store, store = its path }.
local OWNERS = "tide_owners"

-- Claims the table for owner; returns "mine" when owner had claimed it
-- already (a setup a kill interrupted may have made it), "orphan" when
-- tide made it for a store that no longer keeps it.
local function claim(spec, db, owner)
  if not owner then return end
  must(spec, db:exec("CREATE TABLE IF NOT EXISTS " .. OWNERS .. " (name "
    .. "TEXT PRIMARY KEY, owner TEXT NOT NULL, store TEXT NOT NULL)"))
  local rows = must(spec, db:rows(fmt("SELECT owner, store FROM %s WHERE "
    .. "name = %s", OWNERS, literal(spec.name))))
  local r = rows[1]
  local orphan = false
  if r and r.owner == owner.id then return "mine" end
  if r then
    if sql_table.claim_alive(r) then
      error(where(spec) .. ": "
            .. sql_table.kept_by_another(spec.name, r, owner), 0)
    end
    orphan = true
  end
  must(spec, db:exec(fmt("INSERT INTO %s VALUES (%s, %s, %s) ON CONFLICT"
    .. "(name) DO UPDATE SET owner = excluded.owner, store = "
    .. "excluded.store", OWNERS, literal(spec.name), literal(owner.id),
    literal(owner.store))))
  return orphan and "orphan" or nil
end

-- Forgets the claim; the owners table goes when it is empty.
local function unclaim(spec, db, owner)
  local rows = must(spec, db:rows("SELECT name FROM sqlite_master WHERE "
    .. "name = '" .. OWNERS .. "'"))
  if not rows[1] then return end
  must(spec, db:exec(fmt("DELETE FROM %s WHERE name = %s%s", OWNERS,
    literal(spec.name), owner and (" AND owner = " .. literal(owner.id))
    or "")))
  rows = must(spec, db:rows("SELECT count(*) AS n FROM " .. OWNERS))
  if rows[1].n == 0 then must(spec, db:exec("DROP TABLE " .. OWNERS)) end
end

local function setup_in(spec, prev, db, owner)
  local claimed = claim(spec, db, owner)
  local have, other = table_columns(spec, db, spec.name)
  -- Made by tide for a store that is gone (deleted to start over), or by
  -- this store in a first setup a kill interrupted before the store
  -- recorded it (it holds nothing the store knows of): made again, empty,
  -- unless it is an adopted table.
  if claimed and have and prev == nil and not spec.adopt then
    must(spec, db:exec("DROP TABLE IF EXISTS " .. ident(fts_name(spec))
      .. "; DROP TABLE " .. ident(spec.name)))
    have = nil
  end
  local want = wanted_columns(spec)
  local fresh, survived = false, true
  sql_table.refuse_foreign("sqlite.table", spec, prev, claimed, have, other,
    want, function(...) foreign(spec, ...) end)
  -- An index or trigger dropped by hand: the index is made again from
  -- the table's rows.
  local rebuild = spec.fts ~= nil and have ~= nil and prev ~= nil
    and not fts_intact(spec, db)
  drop_triggers(spec, db)
  if have and prev and (spec.adopt or prev.adopt)
     and not must_recreate(spec, prev, have, want) then
    local refused = sql_table.adopted_drops(spec, have, want)
    if refused then error(where(spec) .. ": " .. refused, 0) end
  end
  if not have then
    fresh, survived = true, prev == nil
  elseif prev and (must_recreate(spec, prev, have, want)
                   or not alter(spec, db, have, want)) then
    -- Its other rows are the user's (the transaction rolls back what
    -- alter did).
    if spec.adopt or prev.adopt then
      error(where(spec) .. ": " .. sql_table.adopted_remake("sqlite.table",
                                                            spec), 0)
    end
    must(spec, db:exec("DROP TABLE " .. ident(spec.name)))
    fresh, survived = true, false
  end
  if fresh then must(spec, db:exec(create_sql(spec))) end
  sync_fts(spec, prev, db, fresh or rebuild)
  return survived
end

-- ---- The target type ----

local target = { name = "sqlite.table" }
M.target = target

function target.identity(spec) return spec.db .. "#" .. spec.name end

function target.short_name(spec) return spec.name end

-- The folder the database file is in; nil for one in the current folder.
function target.folder(spec) return spec.db:match("^(.*[^/])/+[^/]+$") end

-- The database and the files SQLite keeps beside it: what a walk over a
-- folder holding them must not list (fs.walk).
function target.own_files(spec)
  return { spec.db, spec.db .. "-wal", spec.db .. "-shm",
           spec.db .. "-journal" }
end

-- Creates or alters the table (and its FTS index) in one transaction;
-- returns whether the rows written last run are still there, and how many
-- folders it made for the database file, counted from its folder up
-- (target.lua). They are made here rather than by the open to learn
-- that; one that cannot be made is left to the open, which says why in
-- its own words.
function target.setup(spec, prev, owner)
  local folder = target.folder(spec)
  local made = folder and core.fs_mkdir(folder) or 0
  local db = connect(spec)
  must(spec, db:exec("BEGIN IMMEDIATE"))
  local ok, survived = pcall(setup_in, spec, prev, db, owner)
  if not ok then
    db:exec("ROLLBACK")
    error(survived, 0)
  end
  must(spec, db:exec("COMMIT"))
  return survived, made
end

-- Upserts and deletes a batch of { key, value } in one transaction.
function target.apply(spec, changes)
  if next(changes) == nil then return end
  local db = connect(spec)
  must(spec, db:apply(plan_of(spec), changes))
end

-- The same, on the connection's own thread: the engine goes on while
-- SQLite writes, and learns the outcome from apply_wait(spec). A row that
-- cannot be converted raises here, and nothing is written.
function target.apply_send(spec, changes)
  if next(changes) == nil then return end
  local db = connect(spec)
  must(spec, db:apply_send(plan_of(spec), changes))
  sent[db] = spec
end

-- Waits for spec's batch sent last; raises if it was not written (then
-- none of it was).
function target.apply_wait(spec)
  local early = outcomes[spec]
  if early ~= nil then
    outcomes[spec] = nil
    if early then error(where(spec) .. ": " .. early, 0) end
    return
  end
  local db = connections[spec.db]
  if not db or sent[db] ~= spec then return end
  sent[db] = nil
  must(spec, db:apply_wait())
end

-- Whether the table itself is still there (the database file may have
-- been deleted, the table dropped).
local function table_exists(spec)
  -- Not opened to look (core.exists): closing a descriptor of the file
  -- would drop the locks of this process's connections to it. Through the
  -- shared connection: closing a second one would do the same.
  if not core.exists(spec.db) then return false end
  local db = connect(spec)
  local rows = must(spec, db:rows(fmt("SELECT 1 AS found FROM sqlite_master "
    .. "WHERE type = 'table' AND name = %s COLLATE NOCASE",
    literal(spec.name))))
  return rows[1] ~= nil
end

-- Whether the table is there whole: with fts, its index and triggers
-- too. When not, also what is missing, for tide verify.
function target.exists(spec)
  if not table_exists(spec) then return false end
  if spec.fts and not fts_intact(spec, connect(spec)) then
    return false, fmt("its full-text index %s or a trigger that keeps it "
                      .. "in step is gone", fts_name(spec))
  end
  return true
end

-- Drops the table tide created; an adopted table stays (the engine has
-- deleted the rows tide wrote). A database left holding nothing is
-- removed (the engine then removes the folders setup made for it).
function target.drop(spec, owner)
  if not core.exists(spec.db) then return end
  local db = connect(spec)
  must(spec, db:exec("BEGIN IMMEDIATE"))
  local ok, err = pcall(function()
    if not spec.adopt then
      must(spec, db:exec(fmt("DROP TABLE IF EXISTS %s; DROP TABLE IF "
        .. "EXISTS %s", ident(fts_name(spec)), ident(spec.name))))
    end
    unclaim(spec, db, owner)
  end)
  if not ok then
    db:exec("ROLLBACK")
    error(err, 0)
  end
  must(spec, db:exec("COMMIT"))
  -- A database left holding nothing is removed, with its WAL files.
  local rows = must(spec, db:rows("SELECT count(*) AS n FROM sqlite_master"))
  if rows[1].n == 0 then
    db:close()
    connections[spec.db] = nil
    for _, suffix in ipairs { "", "-wal", "-shm" } do
      os.remove(spec.db .. suffix)
    end
  end
end

-- Compares the table with the rows tide says it holds: expected is a list
-- of { key, value } (records), others a list of keys tide knows but does
-- not vouch for (out of date). The expected rows are written into a
-- scratch database through the same conversion as apply, and compared
-- with the table in SQL, so a value counts as changed exactly when apply
-- would write something else. Returns { missing, changed, extra } lists
-- of keys; extra is the rows tide did not write, and is empty for an
-- adopted table (its other rows are the user's).
function target.verify(spec, expected, others)
  if not table_exists(spec) then return sql_table.all_missing(expected) end
  local scratch = os.tmpname()
  local sdb, err = sqlite_open(scratch, "create")
  if not sdb then error(where(spec) .. ": scratch database: " .. err, 0) end
  local ok, result = pcall(function()
    must(spec, sdb:exec(create_sql(spec)))
    local plan = plan_of(spec)
    local copy = { table = plan.table, columns = plan.columns,
                   keys = plan.keys, staged = false }
    local changes = {}
    for i, e in ipairs(expected) do
      changes[i] = { key = e.key, value = e.value }
    end
    if #changes > 0 then must(spec, sdb:apply(copy, changes)) end
    must(spec, sdb:exec("ATTACH DATABASE " .. literal(abspath(spec.db))
                        .. " AS target"))
    local t, cols, keycols, on = ident(spec.name), {}, {}, {}
    for _, f in ipairs(spec.fields) do
      cols[#cols + 1] = f.name
      if f.key then
        keycols[#keycols + 1] = "v." .. ident(f.name)
        on[#on + 1] = fmt("m.%s IS v.%s", ident(f.name), ident(f.name))
      end
    end
    local differs = {}
    for _, c in ipairs(cols) do
      differs[#differs + 1] = fmt("m.%s IS NOT v.%s", ident(c), ident(c))
    end
    -- The keys a query returns, as declared keys are: key field values
    -- in field order.
    local function keys_of(sql)
      local out = {}
      for i, r in ipairs(must(spec, sdb:rows(sql))) do
        local key = {}
        for _, f in ipairs(spec.fields) do
          if f.key then key[#key + 1] = r[f.name] end
        end
        out[i] = key
      end
      return out
    end
    local keysel = concat(keycols, ", ")
    local missing = keys_of(fmt("SELECT %s FROM main.%s v WHERE NOT EXISTS "
      .. "(SELECT 1 FROM target.%s m WHERE %s)", keysel, t, t,
      concat(on, " AND ")))
    local changed = keys_of(fmt("SELECT %s FROM main.%s v JOIN target.%s m "
      .. "ON %s WHERE %s", keysel, t, t, concat(on, " AND "),
      concat(differs, " OR ")))
    local extra = {}
    if not spec.adopt then
      local known = {}
      for _, k in ipairs(others) do known[cbor_encode(k)] = true end
      local sel = keysel:gsub("v%.", "m.")
      for _, k in ipairs(keys_of(fmt("SELECT %s FROM target.%s m WHERE NOT "
        .. "EXISTS (SELECT 1 FROM main.%s v WHERE %s)", sel, t, t,
        concat(on, " AND ")))) do
        if not known[cbor_encode(k)] then extra[#extra + 1] = k end
      end
    end
    return { missing = missing, changed = changed, extra = extra }
  end)
  sdb:close()
  os.remove(scratch)
  if not ok then error(result, 0) end
  return result
end

-- ---- sqlite.table ----

local Table = sql_table.handle_class("tide.sqlite.table", target)

local table_options = { db = true, name = true, schema = true, fts = true,
                        busy_timeout = true, adopt = true }

function M.table(opts)
  if type(opts) ~= "table" then
    error("sqlite.table: expected a table { db = path, name = table name, "
      .. "schema = record type }", 2)
  end
  sql_table.check_options("sqlite.table", opts, table_options)
  local db, name, rt = opts.db, opts.name, opts.schema
  if type(db) ~= "string" or db == "" then
    error("sqlite.table: db must be the path of a database file", 2)
  end
  if type(name) ~= "string" or not name:match "^[%a_][%w_]*$" then
    error("sqlite.table: name must be an identifier", 2)
  end
  if name:lower():sub(1, 7) == "sqlite_" then
    error("sqlite.table: name must not start with sqlite_ (reserved by "
      .. "SQLite)", 2)
  end
  local fields = sql_table.fields("sqlite.table", rt)
  local fts = sql_table.check_fts("sqlite.table", rt, opts.fts)
  local busy = opts.busy_timeout
  if busy ~= nil and (math_type(busy) ~= "integer" or busy < 1) then
    error("sqlite.table: busy_timeout must be a positive integer "
      .. "(milliseconds)", 2)
  end
  local path, err = abspath(db)
  if not path then error("sqlite.table: " .. err, 2) end
  path = require("tide.fs").project_path(path)
  if opts.adopt ~= nil and type(opts.adopt) ~= "boolean" then
    error("sqlite.table: adopt must be a boolean", 2)
  end
  local spec = { db = path, name = name, schema = rt.schema,
                 fields = fields, fts = fts, busy_timeout = busy,
                 adopt = opts.adopt or nil }
  local engine = require "tide.engine"
  return setmetatable({ target = engine.declare_target(target, spec),
                        spec = spec, schema = rt }, Table)
end

-- ---- sqlite.rows ----

local function rows_fail(self, msg, ...)
  error(fmt("sqlite.rows %s: " .. msg, self.db, ...), 0)
end

-- mount_each's iteration when it hands an each (index_each.h): the query
-- is read in C (lsqlite_rows.c), checked as below, and a row whose
-- component is unchanged is carried over there without a table being
-- made for it; the others come back here. nil when the result has two
-- columns of one name (then items reads it as below).
local function carried_items(self, each)
  local keys = type(self.key) == "string" and { self.key } or self.key
  local cursor, kind, what, row = sqlite_rows_open(self.db, self.sql, keys,
                                                   each)
  if cursor then
    return function() return cursor:next() end
  elseif kind == "open" then
    rows_fail(self, "%s", what)
  elseif kind == "query" then
    rows_fail(self, "%s in query: %s", what, self.sql)
  elseif kind == "column" then
    rows_fail(self, "key column %s is not in the result of: %s", what,
              self.sql)
  elseif kind == "null" then
    rows_fail(self, "key column %s is NULL in row %d of: %s", what, row,
              self.sql)
  elseif kind == "duplicate" then
    rows_fail(self, "duplicate key %s in the result of: %s", what, self.sql)
  end
  return nil
end

-- Runs the query and iterates key, row; raises on any failure.
local function items(self, _, each)
  -- In live mode a write to the database (to its log first) starts a
  -- cycle; in a memoized scope it is a dependency.
  require("tide.deps").file_listed(self.db, self.db .. "-wal")
  if each then
    local it = carried_items(self, each)
    if it then return it end
  end
  local db, err = sqlite_open(self.db, "read")
  if not db then rows_fail(self, "%s", err) end
  local rows, names = db:rows(self.sql)
  db:close()
  if not rows then rows_fail(self, "%s in query: %s", names, self.sql) end
  return keyed(rows, names, self.key, self.sql, function(msg, ...)
    rows_fail(self, msg, ...)
  end)
end

function M.rows(db, sql, opts)
  if type(db) ~= "string" or db == "" then
    error("sqlite.rows: db must be the path of a database file", 2)
  end
  if type(sql) ~= "string" or sql == "" then
    error("sqlite.rows: sql must be a query string", 2)
  end
  if type(opts) ~= "table" then
    error("sqlite.rows: expected options { key = column or columns }", 2)
  end
  for k in pairs(opts) do
    if k ~= "key" then
      error(fmt("sqlite.rows: unknown option %s", tostring(k)), 2)
    end
  end
  local key = key_option(opts.key)
  if not key then
    error("sqlite.rows: key must be a column name or a list of column "
      .. "names", 2)
  end
  local path, err = abspath(db)
  if not path then error("sqlite.rows: " .. err, 2) end
  path = require("tide.fs").project_path(path)
  return { kind = "sqlite.rows", db = path, sql = sql, key = key,
           items = items }
end

-- A connection for reading results and for tools: mode "write"
-- (default), "read" or "create"; db:exec(sql) -> true | nil, message,
-- db:rows(sql) -> rows, names | nil, message, db:close(). Its SQL has the
-- vector functions (vec_distance_cosine, vec_distance_l2, vec_dot,
-- vec_json: sqlite_vec.h).
function M.open(path, mode)
  local p, err = abspath(path)
  if not p then return nil, err end
  return sqlite_open(p, mode or "write")
end

-- ---- Vector search ----

local METRICS = { cosine = "vec_distance_cosine", l2 = "vec_distance_l2" }

-- A list of numbers as an SQL BLOB literal of little-endian float32s, the
-- bytes tide stores a tide.vector as.
local function vector_literal(v, caller)
  local hex = {}
  for i = 1, #v do
    local x = v[i]
    if type(x) ~= "number" or x ~= x or x > 3.4028234663852886e38
       or x < -3.4028234663852886e38 then
      error(fmt("%s: vector[%d] is not a finite float32 number", caller, i),
            3)
    end
    hex[i] = (string.pack("<f", x):gsub(".", function(c)
      return fmt("%02x", c:byte())
    end))
  end
  return "X'" .. concat(hex) .. "'"
end

-- sqlite.search{ db, table, column, vector, k = 10, where = nil,
-- metric = "cosine" } -> the k rows of table nearest to vector by its
-- vector column, nearest first, each with its columns and `distance`
-- (1 - cosine similarity, or the Euclidean distance with metric = "l2");
-- rows whose distance is undefined (a vector of zeros, NULL) are left
-- out. where is an SQL condition on the table's columns. An exact scan;
-- the table must have a rowid (every table sqlite.table makes has).
-- Misuse raises; nil, message when the query cannot run (no such file,
-- table or column, vectors of another dimension).
local search_options = { db = true, table = true, column = true,
                         vector = true, k = true, where = true,
                         metric = true }

function M.search(opts)
  checks.table("sqlite.search", opts, search_options)
  for _, name in ipairs({ "db", "table", "column" }) do
    if type(opts[name]) ~= "string" or opts[name] == "" then
      error(fmt("sqlite.search: %s must be a non-empty string", name), 2)
    end
  end
  local k, metric = checks.ranking("sqlite.search", opts)
  local fn = METRICS[metric]
  -- The scan sorts rowids and distances only (whole rows, vectors and
  -- all, would each be copied into the sorter); the k rows are read
  -- after. A row without a distance sorts last (9e999 is an infinity) and
  -- is dropped below: a condition on the distance would compute it twice.
  local t = ident(opts.table)
  local sql = fmt("SELECT t.*, s.distance FROM (SELECT rowid AS r, "
    .. "coalesce(%s(%s, %s), 9e999) AS distance FROM %s%s ORDER BY distance "
    .. "LIMIT %d) AS s JOIN %s AS t ON t.rowid = s.r ORDER BY s.distance",
    fn, t .. "." .. ident(opts.column),
    vector_literal(opts.vector, "sqlite.search"), t,
    opts.where and (" WHERE " .. opts.where) or "", k, t)
  local db, err = M.open(opts.db, "read")
  if not db then return nil, fmt("sqlite.search: %s: %s", opts.db, err) end
  local rows
  rows, err = db:rows(sql)
  db:close()
  if not rows then return nil, fmt("sqlite.search: %s: %s", opts.db, err) end
  while #rows > 0 and rows[#rows].distance == math.huge do
    rows[#rows] = nil
  end
  return rows
end


-- ---- Hybrid search ----

local hybrid_options = { db = true, table = true, column = true,
  vector = true, text = true, k = true, where = true, metric = true,
  fts_table = true, rrf_k = true, candidates = true }

-- A user's text as an FTS5 query that cannot be malformed: each run of
-- characters other than spaces that holds a letter or a digit becomes a
-- phrase in double quotes (a quote inside doubled), and the phrases are
-- joined by OR. So AND, OR, NOT, NEAR(, column filters (title:), prefix
-- stars, parentheses and quotes in the text are only words to match; the
-- FTS5 tokenizer splits each phrase as it split the indexed text ("foo-bar"
-- matches foo followed by bar). "" when there is nothing to match.
local function fts_query(text)
  local terms = {}
  for w in (text:gsub("%z", " ")):gmatch("%S+") do
    if w:find("[%w\128-\255]") then
      terms[#terms + 1] = '"' .. w:gsub('"', '""') .. '"'
    end
  end
  return concat(terms, " OR ")
end

-- sqlite.hybrid_search{ db, table, column, vector, text, k = 10, where,
-- metric = "cosine", fts_table = table .. "_fts", rrf_k = 60,
-- candidates = max(4 * k, 50) } -> up to k rows of table, best first,
-- ranked by reciprocal rank fusion of two candidate lists: the
-- `candidates` rows nearest to vector by column (as sqlite.search ranks
-- them) and the `candidates` best matches of text in the FTS5 table
-- fts_table by BM25. A row's score is the sum over the lists it is in of
-- 1 / (rrf_k + its rank there), ranks from 1; ties go to the smaller
-- rowid. Each row has its columns and score, vector_rank and distance
-- (nil when it is not among the vector candidates), text_rank and bm25
-- (FTS5's bm25(), lower is better; nil when not among the text
-- candidates). fts_table's rowid must be the table's rowid, as in the
-- external-content index sqlite.table{ fts = ... } keeps; its rows
-- without a row in table are ignored. where, an SQL condition on the
-- table's columns, filters both lists. text is made safe by fts_query
-- above; text with nothing to match leaves the text list empty. Without
-- text only the vector list ranks (no full-text table needed), without
-- vector only the text list (no column needed); one of them is. Misuse
-- raises; nil, message when the search cannot run (no such file, table,
-- column or full-text table, vectors of another dimension).
function M.hybrid_search(opts)
  local name = "sqlite.hybrid_search"
  checks.table(name, opts, hybrid_options)
  checks.vector_or_text(name, opts)
  -- A column is needed to rank by vector only.
  for _, o in ipairs({ "db", "table", opts.vector ~= nil and "column" }) do
    if o and (type(opts[o]) ~= "string" or opts[o] == "") then
      error(fmt("%s: %s must be a non-empty string", name, o), 2)
    end
  end
  local k, metric = checks.ranking(name, opts, true)
  local n, rrf_k = checks.fusion(name, opts, k)
  local fn = METRICS[metric]
  local fts = opts.fts_table or (opts.table .. "_fts")
  if type(fts) ~= "string" or fts == "" then
    error(name .. ": fts_table must be a non-empty string", 2)
  end
  local t, f = ident(opts.table), ident(fts)
  local match = opts.text and fts_query(opts.text) or ""
  local cond = opts.where and ("(" .. opts.where .. ")")
  local vector_sql = opts.vector and fmt("SELECT rowid AS r, "
    .. "coalesce(%s(%s, %s), 9e999) AS distance FROM %s%s ORDER BY "
    .. "distance LIMIT %d", fn, t .. "." .. ident(opts.column),
    vector_literal(opts.vector, name), t, cond and (" WHERE " .. cond) or "",
    n)
  local text_sql = fmt("SELECT %s.rowid AS r, bm25(%s) AS bm25 FROM %s "
    .. "WHERE %s MATCH %s AND EXISTS (SELECT 1 FROM %s WHERE %s.rowid = "
    .. "%s.rowid%s) ORDER BY bm25 LIMIT %d", f, f, f, f, literal(match), t, t,
    f, cond and (" AND " .. cond) or "", n)

  local db, err = M.open(opts.db, "read")
  if not db then return nil, fmt("%s: %s: %s", name, opts.db, err) end
  -- Both lists and the rows from one snapshot of the database.
  local function run()
    local found, msg
    if opts.text ~= nil then
      found, msg = db:rows(fmt("SELECT 1 AS found FROM sqlite_master "
        .. "WHERE type = 'table' AND name = %s COLLATE NOCASE", literal(fts)))
      if not found then return nil, msg end
      if not found[1] then
        return nil, fmt("no full-text table %s for table %s (sqlite.table "
          .. "makes %s_fts when given fts = { fields }; fts_table names "
          .. "another)", fts, opts.table, opts.table)
      end
    end
    local by_rowid, fused = {}, {}
    local function entry(r)
      local e = by_rowid[r]
      if not e then
        e = { r = r, score = 0 }
        by_rowid[r], fused[#fused + 1] = e, e
      end
      return e
    end
    local rows
    if vector_sql then
      rows, msg = db:rows(vector_sql)
      if not rows then return nil, msg end
      for i, row in ipairs(rows) do
        if row.distance == math.huge then break end
        local e = entry(row.r)
        e.vector_rank, e.distance = i, row.distance
        e.score = e.score + 1 / (rrf_k + i)
      end
    end
    if match ~= "" then
      rows, msg = db:rows(text_sql)
      if not rows then return nil, msg end
      for i, row in ipairs(rows) do
        local e = entry(row.r)
        e.text_rank, e.bm25 = i, row.bm25
        e.score = e.score + 1 / (rrf_k + i)
      end
    end
    sort(fused, function(a, b)
      if a.score ~= b.score then return a.score > b.score end
      return a.r < b.r
    end)
    local ids, order = {}, {}
    for i = 1, k < #fused and k or #fused do
      ids[i] = fmt("%d", fused[i].r)
      order[i] = fmt("WHEN %d THEN %d", fused[i].r, i)
    end
    if #ids == 0 then return {} end
    rows, msg = db:rows(fmt("SELECT * FROM %s WHERE rowid IN (%s) ORDER BY "
      .. "CASE rowid %s END", t, concat(ids, ", "), concat(order, " ")))
    if not rows then return nil, msg end
    for i, row in ipairs(rows) do
      local e = fused[i]
      row.score, row.vector_rank, row.distance = e.score, e.vector_rank,
        e.distance
      row.text_rank, row.bm25 = e.text_rank, e.bm25
    end
    return rows
  end
  local ok, rows
  ok, err = db:exec("BEGIN")
  if ok then
    rows, err = run()
    db:exec("COMMIT")
  end
  db:close()
  if not rows then return nil, fmt("%s: %s: %s", name, opts.db, err) end
  return rows
end

return M
