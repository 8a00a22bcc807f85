-- The PostgreSQL table target (postgres.table), over tide.core's pg_script
-- (lpg.c) and pg_copy_rows (lpg_copy.c). tide.postgres exposes it.
--
-- A spec is plain data the engine stores between runs:
--   { conn = the connection string without its password, server = its
--     identity (user@host:port/dbname), name = table name (or
--     "schema.table"), schema = rt.schema, fields = { { name, type, key
--     }... }, fts = { field names } or nil, fts_config = text search
--     configuration, vectors = "array" | "pgvector", vector_index =
--     "hnsw" or nil, adopt = true or nil }
-- The password, when the connection string holds one, is kept in this
-- process only (given, below) and never enters a spec.
--
-- Columns: string text, bytes bytea, integer bigint, number double
-- precision, boolean boolean, json, lists and records jsonb (the same
-- JSON text as the SQLite target writes), vector(N) pgvector's vector(N)
-- when the database has the extension, else real[]; optional(T) is T
-- but nullable, every other column NOT NULL; key fields make the primary
-- key. With fts, a generated column tide_fts holds to_tsvector over those
-- fields, under a GIN index, so any writer keeps it right.
--
-- A batch (target.apply) is one script, one transaction: its rows go as
-- COPY data into a temporary table, then one DELETE ... USING and one
-- INSERT ... SELECT ... ON CONFLICT DO UPDATE write them. Identifiers are
-- always quoted; values only ever travel as COPY data or parameters.
-- Applies are idempotent (an upsert or delete by key), so replaying a
-- batch a kill interrupted converges.
local core = require "tide.core"
local sql_table = require "tide.sql_table"

local type, error, pairs, ipairs, setmetatable =
  type, error, pairs, ipairs, setmetatable
local fmt, concat = string.format, table.concat
local pg_script, pg_query, pg_copy_rows, pg_copy_begin, pg_identity,
      public_conninfo = core.pg_script, core.pg_query, core.pg_copy_rows,
  core.pg_copy_begin, core.pg_identity, core.pg_public_conninfo
local cbor_encode, nul_at = core.cbor_encode, core.nul_at

local M = {}

-- The connection string this process was given (with its password, if
-- it holds one) for each public one a spec keeps.
local given = {}

local function conn_of(spec) return given[spec.conn] or spec.conn end

-- Another spec keeping public (postgres.rows' capture) was given conn.
local function remember_conn(public, conn) given[public] = conn end

local function ident(name) return '"' .. name:gsub('"', '""') .. '"' end

-- A table name, "name" or "schema.name", quoted.
local function table_ident(name)
  local ns, t = name:match("^([^.]+)%.([^.]+)$")
  if ns then return ident(ns) .. "." .. ident(t) end
  return ident(name)
end

local function where(spec)
  return fmt("postgres.table %s in %s", spec.name, spec.server)
end

local function fail(spec, msg) error(where(spec) .. ": " .. msg, 0) end

-- Runs a script (blocking: a setup must not let another component in
-- before it is done) and returns its last result, or raises naming spec.
local function run(spec, sql, copies)
  local r, err = pg_script(conn_of(spec), sql, copies or {}, true)
  if not r then fail(spec, err) end
  return r
end

-- One statement with parameters, blocking; its rows.
local function query(spec, sql, params)
  local r, err = pg_query(conn_of(spec), sql, params, true)
  if not r then fail(spec, err) end
  return r.rows
end

-- ---- Columns ----

local scalar_sql = { string = "text", bytes = "bytea", integer = "bigint",
                     number = "double precision", boolean = "boolean",
                     json = "jsonb" }
local scalar_kind = { string = "text", bytes = "blob", integer = "integer",
                      number = "real", boolean = "boolean", json = "json" }
-- What an added NOT NULL column holds in existing rows until they are
-- written again.
local scalar_default = { string = "''", bytes = "'\\x'::bytea",
                         integer = "0", number = "0", boolean = "false",
                         json = "'null'::jsonb" }

-- A described type's column: SQL type (as format_type names it), plan
-- kind, nullable, vector size, default for ADD COLUMN.
local function column_of(t, vectors)
  local nullable = false
  while type(t) == "table" and t[1] == "optional" do
    nullable, t = true, t[2]
  end
  if type(t) == "string" then
    return scalar_sql[t], scalar_kind[t], nullable, nil, scalar_default[t]
  elseif t[1] == "vector" then
    if vectors == "pgvector" then
      return fmt("vector(%d)", t[2]), "vector", nullable, t[2],
        fmt("array_fill(0, ARRAY[%d])::vector", t[2])
    end
    return "real[]", "vector", nullable, t[2], "'{}'::real[]"
  elseif t[1] == "list" then
    return "jsonb", "json", nullable, nil, "'[]'::jsonb"
  end
  return "jsonb", "json", nullable, nil, "'{}'::jsonb"
end

-- Key text compares as bytes, as tide compares keys, whatever the
-- database's locale (and its index is built without strcoll).
local function key_collation(f, sql)
  return f.key and sql == "text" and ' COLLATE "C"' or ""
end

-- What pg_copy_rows needs, built once per spec.
local plans = setmetatable({}, { __mode = "k" })

local function plan_of(spec)
  local plan = plans[spec]
  if plan then return plan end
  plan = sql_table.plan(spec, column_of)
  plans[spec] = plan
  return plan
end

local function wanted_columns(spec)
  return sql_table.wanted_columns(spec, column_of)
end

-- The columns of the table (but tide_fts) in the same shape, or nil when
-- there is none; the relation's kind when it is not a table (a view).
local function table_columns(spec)
  local rel = query(spec, "SELECT c.oid::bigint AS oid, c.relkind::text AS "
    .. "kind FROM pg_class c WHERE c.oid = to_regclass($1)",
    { table_ident(spec.name) })[1]
  if not rel then return nil end
  if rel.kind ~= "r" and rel.kind ~= "p" then return nil, rel.kind end
  local cols = {}
  for _, r in ipairs(query(spec, "SELECT a.attname AS name, "
      .. "format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "
      .. "notnull, coalesce(array_position(i.indkey::int2[], a.attnum) - "
      .. "array_lower(i.indkey::int2[], 1) + 1, 0) AS pk FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = "
      .. "a.attrelid AND i.indisprimary WHERE a.attrelid = $1 AND a.attnum "
      .. "> 0 AND NOT a.attisdropped", { rel.oid })) do
    if r.name ~= "tide_fts" then
      cols[r.name] = { type = r.type, notnull = r.notnull, pk = r.pk }
    end
  end
  return cols
end

local must_recreate = sql_table.must_recreate

local function key_columns(spec)
  local keys = {}
  for _, f in ipairs(spec.fields) do
    if f.key then keys[#keys + 1] = ident(f.name) end
  end
  return concat(keys, ", ")
end

-- The table, without its primary key when keyed is false (a new table
-- is loaded first and keyed after: see ensure_key).
local function create_sql(spec, keyed)
  local defs = {}
  for i, f in ipairs(spec.fields) do
    local sql, _, nullable = column_of(f.type, spec.vectors)
    defs[i] = ident(f.name) .. " " .. sql .. key_collation(f, sql)
      .. (nullable and "" or " NOT NULL")
  end
  if keyed then
    defs[#defs + 1] = "PRIMARY KEY (" .. key_columns(spec) .. ")"
  end
  return fmt("CREATE TABLE %s (%s);", table_ident(spec.name),
             concat(defs, ", "))
end

-- A table this process made is loaded before it has its primary key:
-- PostgreSQL builds the key's index from the loaded rows at the end of
-- the run (finish) far faster than it grows it row by row, as pg_restore
-- does. Only the new keys of a fresh table are written meanwhile, by COPY
-- (the store knows the table held none); anything else (an upsert, a
-- delete) keys the table first. Another process, or this one once it
-- applied, checks the key is there before its first write to the table
-- (a run killed while loading left it unkeyed): identity -> true.
local loading, keyed = {}, {}

local function ensure_key(spec)
  local id = spec.server .. "#" .. spec.name
  if keyed[id] then return end
  local has = query(spec, "SELECT EXISTS (SELECT 1 FROM pg_index WHERE "
    .. "indrelid = to_regclass($1) AND indisprimary) AS found",
    { table_ident(spec.name) })[1].found
  if not has then
    local r, err = pg_script(conn_of(spec), fmt("ALTER TABLE %s ADD "
      .. "PRIMARY KEY (%s)", table_ident(spec.name), key_columns(spec)), {},
      true)
    if not r then
      fail(spec, "its primary key cannot be made: " .. err .. " (rows "
        .. "with the same key were written by another writer while tide "
        .. "loaded the table: delete them and run again)")
    end
  end
  loading[id], keyed[id] = nil, true
end

-- ADD and DROP COLUMN statements bringing have to want.
local function alter_sql(spec, have, want)
  local t, out = table_ident(spec.name), {}
  for name in pairs(have) do
    if not want[name] then
      out[#out + 1] = fmt("ALTER TABLE %s DROP COLUMN %s;", t, ident(name))
    end
  end
  table.sort(out)
  for _, f in ipairs(spec.fields) do
    local w = want[f.name]
    if not have[f.name] then
      out[#out + 1] = fmt("ALTER TABLE %s ADD COLUMN %s %s%s;", t,
        ident(f.name), w.type, w.notnull and " NOT NULL DEFAULT "
        .. w.default or "")
      if w.notnull then
        out[#out + 1] = fmt("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT;",
                            t, ident(f.name))
      end
    end
  end
  return concat(out, "\n")
end

-- The index names tide makes, from the table's own name.
local function index_name(spec, what)
  local base = spec.name:match("([^.]+)$")
  return ident(base .. "_" .. what)
end

local function fts_sql(spec)
  local t, parts = table_ident(spec.name), {}
  for i, c in ipairs(spec.fts) do
    parts[i] = fmt("coalesce(%s, '')", ident(c))
  end
  return fmt("ALTER TABLE %s ADD COLUMN tide_fts tsvector GENERATED ALWAYS "
    .. "AS (to_tsvector(%s::regconfig, %s)) STORED; CREATE INDEX %s ON %s "
    .. "USING gin (tide_fts);", t, "'" .. spec.fts_config .. "'",
    concat(parts, " || ' ' || "), index_name(spec, "fts"), t)
end

local function vector_index_sql(spec)
  local t, out = table_ident(spec.name), {}
  for _, f in ipairs(spec.fields) do
    local inner = f.type
    while type(inner) == "table" and inner[1] == "optional" do
      inner = inner[2]
    end
    if type(inner) == "table" and inner[1] == "vector" then
      out[#out + 1] = fmt("CREATE INDEX %s ON %s USING hnsw (%s "
        .. "vector_cosine_ops);", index_name(spec, f.name .. "_hnsw"), t,
        ident(f.name))
    end
  end
  return concat(out, "\n")
end

-- ---- Owners ----

-- Which state store keeps which table: a tide_owners table in the
-- database (in the connection's first schema), as the SQLite target
-- keeps one in its file, so that a second store is refused instead of
-- fighting over the rows.
local OWNERS = "tide_owners"

-- "mine" when owner claimed the table already, "orphan" when a store
-- that no longer keeps it did, nil when no one did; raises when another
-- live store keeps it.
local function claim_state(spec, owner)
  if not owner then return nil end
  local found = query(spec, "SELECT to_regclass($1) IS NOT NULL AS found",
                      { OWNERS })[1].found
  local r = found and query(spec, "SELECT owner, store FROM " .. OWNERS
    .. " WHERE name = $1", { spec.name })[1]
  if not r then return nil end
  if r.owner == owner.id then return "mine" end
  if sql_table.claim_alive(r) then
    fail(spec, sql_table.kept_by_another(spec.name, r, owner))
  end
  return "orphan"
end

-- ---- Setup ----

local function foreign(spec, name, why, advice)
  fail(spec, fmt("table %s exists and was not created by tide%s; %s", name,
                 why, advice or "choose another name"))
end

-- COPY text for one row of text values.
local function copy_line(values)
  local out = {}
  for i, v in ipairs(values) do
    out[i] = v:gsub("[\\\t\n\r]", { ["\\"] = "\\\\", ["\t"] = "\\t",
                                     ["\n"] = "\\n", ["\r"] = "\\r" })
  end
  return concat(out, "\t") .. "\n"
end

-- Batches of 2048 components: each apply is a round trip to the server
-- and a statement or three, which a batch of 256 rows pays for ten times
-- over (bench_postgres.sh).
local target = { name = "postgres.table", batch_size = 2048 }
M.target = target

function target.identity(spec) return spec.server .. "#" .. spec.name end

function target.short_name(spec) return spec.name end

-- Creates, alters or recreates the table (with its full-text column and
-- indexes) in one transaction; returns whether the rows written last run
-- are still there.
function target.setup(spec, prev, owner)
  if spec.vector_index and spec.vectors ~= "pgvector" then
    fail(spec, "vector_index = \"hnsw\" needs the pgvector extension in "
      .. "the database (CREATE EXTENSION vector); without it vectors are "
      .. "real[] and postgres.search scans them exactly")
  end
  local claimed = claim_state(spec, owner)
  local have, other = table_columns(spec)
  local t = table_ident(spec.name)
  local script = { "BEGIN;" }
  local function add(sql) script[#script + 1] = sql end
  -- Made by tide for a store that is gone, or by this store in a first
  -- setup a kill interrupted before the store recorded it (unkeyed, and
  -- holding nothing the store knows of): made again, empty, unless it is
  -- an adopted table.
  if claimed and have and prev == nil and not spec.adopt then
    add(fmt("DROP TABLE %s;", t))
    have = nil
  end
  local want = wanted_columns(spec)
  local fresh, survived = false, true
  sql_table.refuse_foreign("postgres.table", spec, prev, claimed, have,
    other and "relation of kind " .. other, want, function(...)
      foreign(spec, ...)
    end)
  if have then
    add(fmt("ALTER TABLE %s DROP COLUMN IF EXISTS tide_fts;", t))
    add(fmt("DROP INDEX IF EXISTS %s;", index_name(spec, "fts")))
  end
  if not have then
    fresh, survived = true, prev == nil
  elseif prev and must_recreate(spec, prev, have, want) then
    -- Its other rows are the user's.
    if spec.adopt or prev.adopt then
      fail(spec, sql_table.adopted_remake("postgres.table", spec))
    end
    add(fmt("DROP TABLE %s;", t))
    fresh, survived = true, false
  elseif prev then
    local refused = (spec.adopt or prev.adopt)
      and sql_table.adopted_drops(spec, have, want)
    if refused then fail(spec, refused) end
    add(alter_sql(spec, have, want))
  end
  local id = target.identity(spec)
  loading[id], keyed[id] = nil, nil
  if fresh then
    add(create_sql(spec, false))
    if spec.vector_index then add(vector_index_sql(spec)) end
  end
  if spec.fts then add(fts_sql(spec)) end
  local copies = {}
  if owner then
    add(fmt("CREATE TABLE IF NOT EXISTS %s (name text PRIMARY KEY, owner "
      .. "text NOT NULL, store text NOT NULL);", OWNERS))
    add("CREATE TEMP TABLE tide_claim (name text, owner text, store text) "
      .. "ON COMMIT DROP; COPY tide_claim FROM STDIN;")
    add(fmt("INSERT INTO %s SELECT * FROM tide_claim ON CONFLICT (name) DO "
      .. "UPDATE SET owner = excluded.owner, store = excluded.store;",
      OWNERS))
    copies[1] = copy_line { spec.name, owner.id, owner.store }
  end
  add("COMMIT;")
  run(spec, concat(script, "\n"), copies)
  if fresh then loading[id] = true end
  return survived
end

-- A table loaded unkeyed in this run is keyed now.
function target.finish(spec)
  if loading[target.identity(spec)] then ensure_key(spec) end
end

-- ---- Apply ----

-- The staging table's columns: the position of the change, whether it
-- deletes, and every column without its constraints.
local function stage_sql(spec)
  local defs = { "tide_seq bigint", "tide_delete boolean" }
  for _, f in ipairs(spec.fields) do
    local sql = column_of(f.type, spec.vectors)
    defs[#defs + 1] = ident(f.name) .. " " .. sql .. key_collation(f, sql)
  end
  return fmt("CREATE TEMP TABLE tide_stage (%s) ON COMMIT DROP;",
             concat(defs, ", "))
end

-- The statements of a batch, built once per spec.
local batch_sql = setmetatable({}, { __mode = "k" })

local function statements(spec)
  local s = batch_sql[spec]
  if s then return s end
  local t = table_ident(spec.name)
  local cols, keys, on, set = {}, {}, {}, {}
  for _, f in ipairs(spec.fields) do
    local c = ident(f.name)
    cols[#cols + 1] = c
    if f.key then
      keys[#keys + 1] = c
      on[#on + 1] = fmt("t.%s = s.%s", c, c)
    else
      set[#set + 1] = fmt("%s = excluded.%s", c, c)
    end
  end
  local cl = concat(cols, ", ")
  s = {
    copy = fmt("COPY %s (%s) FROM STDIN", t, cl),
    begin = "BEGIN; " .. stage_sql(spec) .. " COPY tide_stage FROM STDIN;",
    delete = fmt("DELETE FROM %s t USING tide_stage s WHERE s.tide_delete "
      .. "AND %s;", t, concat(on, " AND ")),
    upsert = fmt("INSERT INTO %s (%s) SELECT %s FROM tide_stage WHERE NOT "
      .. "tide_delete ON CONFLICT (%s) DO %s;", t, cl, cl,
      concat(keys, ", "), #set > 0 and "UPDATE SET " .. concat(set, ", ")
      or "NOTHING"),
  }
  batch_sql[spec] = s
  return s
end

-- The changes with only the last one of each key (a key deleted by one
-- component and declared by another in the same batch): the statements
-- above write each key once.
local function last_per_key(changes)
  local last, dup = {}, false
  for i = 1, #changes do
    local c = changes[i]
    local kb = c.kb or cbor_encode(c.key)
    if last[kb] then dup = true end
    last[kb] = i
  end
  if not dup then return changes end
  local out = {}
  for i = 1, #changes do
    local c = changes[i]
    if last[c.kb or cbor_encode(c.key)] == i then out[#out + 1] = c end
  end
  return out
end

-- Whether every change inserts a key the store says the table does not
-- hold (the engine's write = "inserted").
local function all_new(changes)
  for i = 1, #changes do
    local c = changes[i]
    if c.value == nil or c.write ~= "inserted" then return false end
  end
  return true
end

-- Rows sent to the server as they are made: it stores a chunk while the
-- next is made.
local CHUNK = 256

-- COPYs new rows straight into the table; what pg_script returns.
local function copy_new(spec, conn, sql, changes, vectors)
  local copy, err, state = pg_copy_begin(conn, sql)
  if not copy then return nil, err, state end
  local plan, n = plan_of(spec), #changes
  for first = 1, n, CHUNK do
    local ok, why = copy:send_rows(plan, changes, vectors, first,
                                   first + CHUNK - 1 < n
                                   and first + CHUNK - 1 or n)
    if not ok then
      copy:abort()
      -- A record that cannot be a row fails the batch; a lost
      -- connection is the apply's failure.
      if why:match("^change %d+: ") then fail(spec, why) end
      return nil, why
    end
  end
  return copy:finish()
end

-- Upserts and deletes a batch of { key, value } in one transaction. A
-- batch of new keys only (a cold run's) is copied straight into the
-- table, a third of the work of staging and upserting; should a key be
-- there after all (a kill between an apply and its record, a row written
-- by someone else), the unique violation sends the batch the staged way.
-- Inside a component the apply waits on the engine's loop.
function target.apply(spec, changes)
  if #changes == 0 then return end
  changes = last_per_key(changes)
  local conn, s = conn_of(spec), statements(spec)
  local vectors = spec.vectors or "array"
  local fresh = all_new(changes)
  if not (fresh and loading[target.identity(spec)]) then ensure_key(spec) end
  if fresh then
    local ok, err, state = copy_new(spec, conn, s.copy, changes, vectors)
    if ok then return end
    if state ~= "23505" then fail(spec, err) end
  end
  local data, err = pg_copy_rows(plan_of(spec), changes, vectors)
  if not data then fail(spec, err) end
  local deletes, upserts = false, false
  for i = 1, #changes do
    if changes[i].value == nil then deletes = true else upserts = true end
  end
  local ok
  ok, err = pg_script(conn, concat { s.begin, deletes and s.delete or "",
                      upserts and s.upsert or "", " COMMIT;" }, { data })
  if not ok then fail(spec, err) end
end

-- Whether the table is still there (dropped by hand, the database gone).
function target.exists(spec)
  local r, err = pg_query(conn_of(spec), "SELECT to_regclass($1) IS NOT "
    .. "NULL AS found", { table_ident(spec.name) }, true)
  if not r then fail(spec, err) end
  return r.rows[1].found
end

-- Drops the table tide created; an adopted one stays (the engine has
-- deleted the rows tide wrote). The claim goes, and the owners table
-- when it is empty.
function target.drop(spec, owner)
  local id = target.identity(spec)
  loading[id], keyed[id] = nil, nil
  local script = { "BEGIN;" }
  if not spec.adopt then
    script[2] = fmt("DROP TABLE IF EXISTS %s;", table_ident(spec.name))
  end
  local owners = query(spec, "SELECT to_regclass($1) IS NOT NULL AS found",
                       { OWNERS })[1].found
  local copies = {}
  if owners then
    script[#script + 1] = "CREATE TEMP TABLE tide_claim (name text, owner "
      .. "text) ON COMMIT DROP; COPY tide_claim FROM STDIN;"
    script[#script + 1] = fmt("DELETE FROM %s o USING tide_claim c WHERE "
      .. "o.name = c.name AND (c.owner = '' OR o.owner = c.owner);", OWNERS)
    script[#script + 1] = fmt("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM "
      .. "%s) THEN DROP TABLE %s; END IF; END $$;", OWNERS, OWNERS)
    copies[1] = copy_line { spec.name, owner and owner.id or "" }
  end
  script[#script + 1] = "COMMIT;"
  run(spec, concat(script, "\n"), copies)
end

-- Compares the table with the rows tide says it holds (see the SQLite
-- target's verify): the expected rows are staged through the same COPY
-- as apply and compared in SQL, so a value counts as changed exactly when
-- apply would write something else.
function target.verify(spec, expected, others)
  if not target.exists(spec) then return sql_table.all_missing(expected) end
  local changes = {}
  for i, e in ipairs(expected) do
    changes[i] = { key = e.key, value = e.value }
  end
  local data, err = pg_copy_rows(plan_of(spec), changes,
                                    spec.vectors or "array")
  if not data then fail(spec, err) end
  local t = table_ident(spec.name)
  local keysel, on, differs = {}, {}, {}
  for _, f in ipairs(spec.fields) do
    local c = ident(f.name)
    if f.key then
      keysel[#keysel + 1] = c
      on[#on + 1] = fmt("m.%s = v.%s", c, c)
    end
    differs[#differs + 1] = fmt("m.%s IS DISTINCT FROM v.%s", c, c)
  end
  on = concat(on, " AND ")
  local mks = "m." .. concat(keysel, ", m.")
  local vks = "v." .. concat(keysel, ", v.")
  local sql = concat({
    "BEGIN;", stage_sql(spec), "COPY tide_stage FROM STDIN;",
    fmt("SELECT 'missing' AS what, %s FROM tide_stage v WHERE NOT EXISTS "
      .. "(SELECT 1 FROM %s m WHERE %s) UNION ALL SELECT 'changed', %s FROM "
      .. "tide_stage v JOIN %s m ON %s WHERE %s%s;", vks, t, on, vks, t, on,
      concat(differs, " OR "), spec.adopt and "" or fmt(" UNION ALL SELECT "
      .. "'extra', %s FROM %s m WHERE NOT EXISTS (SELECT 1 FROM tide_stage "
      .. "v WHERE %s)", mks, t, on)),
  }, "\n")
  -- The script ends inside its transaction, so that its result is the
  -- comparison's: the connection, not idle, is closed, which ends it.
  local r, e = pg_script(conn_of(spec), sql, { data }, true)
  if not r then fail(spec, e) end
  local known = {}
  for _, k in ipairs(others) do known[cbor_encode(k)] = true end
  local out = { missing = {}, changed = {}, extra = {} }
  for _, row in ipairs(r.rows) do
    local key = {}
    for _, f in ipairs(spec.fields) do
      if f.key then key[#key + 1] = row[f.name] end
    end
    if row.what ~= "extra" or not known[cbor_encode(key)] then
      local list = out[row.what]
      list[#list + 1] = key
    end
  end
  return out
end

-- ---- postgres.table ----

-- A row whose text (a text column's, or a string inside a jsonb one)
-- holds a NUL byte, which PostgreSQL cannot store, fails its component
-- where it is declared: in a batch, it would fail every component the
-- batch writes to the table.
local function check_row(self, v)
  for _, name in ipairs(self.text_fields) do
    local at = nul_at(v[name])
    if at then
      local what = "the text at " .. at
      if at == "" then
        what = "text"
      elseif at:sub(-8) == " (a key)" then
        what = at == " (a key)" and "a key" or "a key at " .. at:sub(1, -9)
      end
      error(fmt("postgres.table %s: column %s: %s holds a NUL byte, which "
        .. "PostgreSQL cannot store", self.spec.name, name, what), 3)
    end
  end
end

local Table = sql_table.handle_class("tide.postgres.table", target,
                                     check_row)

local table_options = { conn = true, name = true, schema = true, fts = true,
                        fts_config = true, vector_index = true,
                        adopt = true }

local function has_vector(fields)
  for _, f in ipairs(fields) do
    local t = f.type
    while type(t) == "table" and t[1] == "optional" do t = t[2] end
    if type(t) == "table" and t[1] == "vector" then return true end
  end
  return false
end

-- Whether each server has pgvector in its database, asked once per
-- process (a table declared by every component asks once).
local pgvector = {}

local function vectors_style(conn, server)
  local found = pgvector[server]
  if found == nil then
    local r, err = pg_query(conn, "SELECT EXISTS (SELECT 1 FROM "
      .. "pg_extension WHERE extname = 'vector') AS found")
    if not r then error("postgres.table: " .. server .. ": " .. err, 3) end
    found = r.rows[1].found
    pgvector[server] = found
  end
  return found and "pgvector" or "array"
end

function M.table(opts)
  if type(opts) ~= "table" then
    error("postgres.table: expected a table { conn = connection string, "
      .. "name = table name, schema = record type }", 2)
  end
  sql_table.check_options("postgres.table", opts, table_options)
  local conn, name, rt = opts.conn, opts.name, opts.schema
  if type(conn) ~= "string" then
    error("postgres.table: conn must be a libpq connection string or URI "
      .. "(\"\" takes the PG* environment variables)", 2)
  end
  if type(name) ~= "string" or not (name:match "^[%a_][%w_]*$"
     or name:match "^[%a_][%w_]*%.[%a_][%w_]*$") then
    error("postgres.table: name must be an identifier, or schema.name", 2)
  end
  if name:lower():match("^pg_") or name:lower():match("%.pg_") or
     name == "tide_owners" then
    error("postgres.table: name must not start with pg_ (reserved by "
      .. "PostgreSQL) or be tide_owners (tide's own)", 2)
  end
  local fields = sql_table.fields("postgres.table", rt)
  for _, f in ipairs(fields) do
    if f.name:match("^tide_") then
      error(fmt("postgres.table: field %s.%s: names starting with tide_ "
        .. "are tide's own columns", rt.name, f.name), 2)
    end
  end
  local fts = sql_table.check_fts("postgres.table", rt, opts.fts)
  local fts_config = opts.fts_config or "english"
  if type(fts_config) ~= "string" or not fts_config:match("^[%a_][%w_.]*$")
  then
    error("postgres.table: fts_config must name a text search "
      .. "configuration (\"english\", \"simple\", ...)", 2)
  end
  if opts.fts_config ~= nil and not fts then
    error("postgres.table: fts_config needs fts = { fields }", 2)
  end
  if opts.vector_index ~= nil and opts.vector_index ~= "hnsw" then
    error("postgres.table: vector_index must be \"hnsw\"", 2)
  end
  if opts.vector_index and not has_vector(fields) then
    error("postgres.table: vector_index needs a tide.vector field in " ..
          rt.name, 2)
  end
  if opts.adopt ~= nil and type(opts.adopt) ~= "boolean" then
    error("postgres.table: adopt must be a boolean", 2)
  end
  local server, err = pg_identity(conn)
  if not server then error("postgres.table: " .. err, 2) end
  local public = public_conninfo(conn)
  given[public] = conn
  local spec = { conn = public, server = server, name = name,
                 schema = rt.schema, fields = fields, fts = fts,
                 fts_config = fts and fts_config or nil,
                 vectors = has_vector(fields) and vectors_style(conn, server)
                   or nil,
                 vector_index = opts.vector_index, adopt = opts.adopt or nil }
  -- The fields that may hold text: all but bytes and vectors.
  local text_fields = {}
  for _, f in ipairs(fields) do
    local t = f.type
    while type(t) == "table" and t[1] == "optional" do t = t[2] end
    if t ~= "bytes" and not (type(t) == "table" and t[1] == "vector") then
      text_fields[#text_fields + 1] = f.name
    end
  end
  local engine = require "tide.engine"
  return setmetatable({ target = engine.declare_target(target, spec),
                        spec = spec, schema = rt, text_fields = text_fields },
                      Table)
end

M.ident, M.table_ident, M.conn_of, M.remember_conn = ident, table_ident,
  conn_of, remember_conn

return M
