-- Change capture from a PostgreSQL table: postgres.rows(conn, { table,
-- key, live = true }). tide.postgres exposes it.
--
-- The source lists the whole table (SELECT *), keyed by the key
-- column(s) as postgres.rows keys a query. With live = true it also
-- installs, in the run that lists it, statement-level triggers on the
-- table that send NOTIFY on the channel tide_<table> with the keys of the
-- rows each statement inserted, updated or deleted (JSON arrays of keys,
-- a key the array of its columns' values, as few notifications as fit;
-- "*" for a TRUNCATE, a statement of more than MAX_KEYS rows, or a key
-- too long for a notification). The triggers and their function are a
-- container of the app (target type postgres.capture, holding no
-- states): removed when the pipeline stops asking for them and by `tide
-- drop`, and put back when someone removed them.
--
-- In live mode the source's watch LISTENs on its own connection; each
-- notification has the changed rows read again by key and emitted, so a
-- cycle reprocesses exactly them. When the connection is lost (a server
-- restart) it connects again, with a growing pause, and asks for the
-- table to be listed in full once (changes made meanwhile were not
-- notified); so it does after its first LISTEN, for what changed between
-- the cycle's listing and it.
local core = require "tide.core"
local json = require "tide.json"
local keyed_rows = require "tide.rows"
local ptable = require "tide.postgres_table"

local type, error, ipairs, pairs, tostring = type, error, ipairs, pairs,
  tostring
local fmt, concat = string.format, table.concat
local pg_query, pg_script, pg_listen, pg_identity, public_conninfo =
  core.pg_query, core.pg_script, core.pg_listen, core.pg_identity,
  core.pg_public_conninfo
local ident, table_ident = ptable.ident, ptable.table_ident
local key_text, key_join = keyed_rows.key_text, keyed_rows.key_join

local M = {}

-- A notification holds at most 8000 bytes: the keys go in groups under
-- this size, and a key longer than half of it asks for a rescan instead
-- (the trigger must never fail the user's write).
local MAX_PAYLOAD = 7800

-- A statement that changed more rows than this notifies "*": the table
-- is listed again, which costs less than reading so many rows by key.
local MAX_KEYS = 10000

local TRIGGERS = {
  { name = "tide_capture_insert", event = "INSERT",
    tables = "REFERENCING NEW TABLE AS tide_new" },
  { name = "tide_capture_update", event = "UPDATE",
    tables = "REFERENCING OLD TABLE AS tide_old NEW TABLE AS tide_new" },
  { name = "tide_capture_delete", event = "DELETE",
    tables = "REFERENCING OLD TABLE AS tide_old" },
  { name = "tide_capture_truncate", event = "TRUNCATE", tables = "" },
}

local function names(spec)
  local base = spec.table:match("([^.]+)$")
  local ns = spec.table:match("^([^.]+)%.")
  local fn = "tide_capture_" .. base
  return {
    channel = "tide_" .. base,
    fn = ns and ident(ns) .. "." .. ident(fn) or ident(fn),
  }
end

local function fail(spec, msg)
  error(fmt("postgres.rows %s in %s: %s", spec.table, spec.server, msg), 0)
end

local function run(spec, conn, sql)
  local r, err = pg_script(conn, sql, {}, true)
  if not r then fail(spec, err) end
  return r
end

-- ---- The trigger, as a container ----

local capture = { name = "postgres.capture" }
M.target = capture

function capture.identity(spec)
  return spec.server .. "#" .. spec.table .. "#capture"
end

function capture.short_name(spec) return spec.table .. " capture" end

-- Nothing is ever declared in it.
function capture.apply() end

local function conn_of(spec) return ptable.conn_of(spec) end

-- Installs (or replaces) the function and the triggers.
-- The keys of the rows in source (a transition table), as JSON arrays in
-- text, once each.
local function keys_sql(spec, source)
  local cols = {}
  for i, k in ipairs(spec.key) do cols[i] = "r." .. ident(k) end
  return fmt("SELECT DISTINCT jsonb_build_array(%s)::text AS k FROM %s r",
             concat(cols, ", "), source)
end

-- The trigger function: one per table, its channel and key columns
-- written in. It runs once per statement, over the statement's changed
-- rows (transition tables), and notifies their keys in as few
-- notifications as fit: JSON arrays of keys, each under MAX_PAYLOAD
-- bytes. A statement that changed more than MAX_KEYS rows, a key longer
-- than half a notification, or a TRUNCATE notifies "*" (list the table).
local function function_sql(spec, n)
  local channel = "'" .. n.channel .. "'"
  local per_op = {}
  for op, source in pairs { INSERT = "tide_new", DELETE = "tide_old",
      UPDATE = "(SELECT * FROM tide_old UNION ALL SELECT * FROM tide_new)" } do
    per_op[#per_op + 1] = fmt([[
  IF TG_OP = '%s' THEN
    SELECT count(*), coalesce(max(octet_length(k)), 0) INTO n, longest
      FROM (%s) k0;
    IF n = 0 THEN RETURN NULL; END IF;
    IF n > %d OR longest > %d THEN
      PERFORM pg_notify(%s, '*');
      RETURN NULL;
    END IF;
    FOR payload IN SELECT '[' || string_agg(k, ',' ORDER BY k) || ']'
        FROM (SELECT k, sum(octet_length(k) + 1) OVER (ORDER BY k) / %d AS g
              FROM (%s) k1) k2 GROUP BY g LOOP
      PERFORM pg_notify(%s, payload);
    END LOOP;
  END IF;]], op, keys_sql(spec, source), MAX_KEYS, MAX_PAYLOAD // 2,
      channel, MAX_PAYLOAD // 2, keys_sql(spec, source), channel)
  end
  table.sort(per_op)
  return fmt([[CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql
AS $tide$
DECLARE
  n bigint;
  longest int;
  payload text;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify(%s, '*');
    RETURN NULL;
  END IF;
%s
  RETURN NULL;
END
$tide$;]], n.fn, channel, concat(per_op, "\n"))
end

-- Installs (or replaces) the function and its triggers, one per kind of
-- statement (a transition table belongs to one event).
function capture.setup(spec)
  local n, t = names(spec), table_ident(spec.table)
  local script = { "BEGIN;", function_sql(spec, n) }
  for _, trigger in ipairs(TRIGGERS) do
    script[#script + 1] = fmt("DROP TRIGGER IF EXISTS %s ON %s;",
                              ident(trigger.name), t)
    script[#script + 1] = fmt("CREATE TRIGGER %s AFTER %s ON %s %s FOR "
      .. "EACH STATEMENT EXECUTE FUNCTION %s();", ident(trigger.name),
      trigger.event, t, trigger.tables, n.fn)
  end
  script[#script + 1] = "COMMIT;"
  run(spec, conn_of(spec), concat(script, "\n"))
  return true
end

function capture.exists(spec)
  local list = {}
  for i, trigger in ipairs(TRIGGERS) do
    list[i] = "'" .. trigger.name .. "'"
  end
  local r, err = pg_query(conn_of(spec), "SELECT count(*) AS n FROM "
    .. "pg_trigger WHERE tgrelid = to_regclass($1) AND tgname IN ("
    .. concat(list, ", ") .. ")", { table_ident(spec.table) }, true)
  if not r then fail(spec, err) end
  return r.rows[1].n == #TRIGGERS
end

-- Removes the triggers and the function (the table itself is the user's).
function capture.drop(spec)
  local n = names(spec)
  run(spec, conn_of(spec), fmt("DROP FUNCTION IF EXISTS %s() CASCADE",
                                n.fn))
end

-- ---- The source ----

-- The whole table, keyed.
local function items(self)
  return require("tide.postgres").listed(self.conn, self.spec.server,
    "SELECT * FROM " .. table_ident(self.spec.table), self.spec.key)
end

-- The key columns' types, for reading rows back by key.
local function key_types(spec, conn)
  local r, err = pg_query(conn, "SELECT a.attname AS name, "
    .. "format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a "
    .. "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT "
    .. "a.attisdropped", { table_ident(spec.table) })
  if not r then return nil, err end
  local by_name, out = {}, {}
  for _, row in ipairs(r.rows) do by_name[row.name] = row.type end
  for i, k in ipairs(spec.key) do
    if not by_name[k] then return nil, "no key column " .. k end
    out[i] = ident(k) .. " " .. by_name[k]
  end
  return out
end

-- Reads the rows of the keys notified and emits each (nil: deleted).
-- Returns false when it cannot (the next connection rescans).
local function emit_rows(spec, conn, types, keys, emit)
  local records, on = {}, {}
  for i, values in ipairs(keys) do
    local rec = {}
    for j, k in ipairs(spec.key) do rec[k] = values[j] end
    records[i] = rec
  end
  for j, k in ipairs(spec.key) do
    on[j] = fmt("t.%s = x.%s", ident(k), ident(k))
  end
  local r = require("tide.postgres").query(conn, fmt("SELECT t.* FROM %s t "
    .. "JOIN jsonb_to_recordset($1::jsonb) AS x(%s) ON %s",
    table_ident(spec.table), concat(types, ", "), concat(on, " AND ")),
    { json.encode(records) })
  if not r then return false end
  local found = {}
  for _, row in ipairs(r.rows) do
    local parts = {}
    for j, k in ipairs(spec.key) do parts[j] = key_text(row[k]) end
    local key = key_join(parts)
    found[key] = true
    emit(key, row)
  end
  for _, values in ipairs(keys) do
    local parts = {}
    for j = 1, #spec.key do parts[j] = key_text(values[j]) end
    local key = key_join(parts)
    if not found[key] then
      found[key] = true
      emit(key, nil)
    end
  end
  return true
end

-- The keys in a batch of payloads (each a JSON array of keys, a key an
-- array of its columns' values); nil when one asks for a rescan, or is
-- not what the trigger sends.
local function notified_keys(payloads, nkeys)
  local keys, seen = {}, {}
  for _, p in ipairs(payloads) do
    if p == "*" then return nil end
    local ok, list = pcall(json.decode, p)
    if not ok or type(list) ~= "table" then return nil end
    for _, values in ipairs(list) do
      if type(values) ~= "table" or #values ~= nkeys then return nil end
      local id = json.encode(values)
      if not seen[id] then
        seen[id] = true
        keys[#keys + 1] = values
      end
    end
  end
  return keys
end

local function watch(self)
  local spec, conn = self.spec, self.conn
  local channel = names(spec).channel
  return function(emit, rescan)
    local pause = 0.1 -- seconds
    while true do
      local l = pg_listen(conn, "LISTEN " .. ident(channel))
      local types = l and key_types(spec, conn)
      if l and types then
        pause = 0.1
        -- What changed before the LISTEN (since the cycle's listing, or
        -- while the connection was lost) was not notified.
        rescan()
        while true do
          local payloads = l:wait()
          if not payloads then break end
          local keys = notified_keys(payloads, #spec.key)
          if not keys then
            rescan()
          elseif #keys > 0 and not emit_rows(spec, conn, types, keys, emit)
          then
            break
          end
        end
      end
      if l then l:close() end
      core.sleep(pause)
      pause = pause < 5 and pause * 2 or 5
    end
  end
end

local options = { table = true, key = true, live = true }

-- postgres.rows(conn, { table, key, live }): see the head of this file.
function M.rows(conn, opts)
  for k in pairs(opts) do
    if not options[k] then
      error(fmt("postgres.rows: unknown option %s", tostring(k)), 3)
    end
  end
  local tbl = opts.table
  if type(tbl) ~= "string" or not (tbl:match "^[%a_][%w_]*$"
     or tbl:match "^[%a_][%w_]*%.[%a_][%w_]*$") then
    error("postgres.rows: table must be an identifier, or schema.name", 3)
  end
  local key = keyed_rows.key_option(opts.key)
  if not key then
    error("postgres.rows: key must be a column name or a list of column "
      .. "names", 3)
  end
  if type(key) == "string" then key = { key } end
  if opts.live ~= nil and type(opts.live) ~= "boolean" then
    error("postgres.rows: live must be a boolean", 3)
  end
  -- PostgreSQL's names hold 63 bytes: tide_capture_<table> must fit.
  if opts.live and #tbl:match("([^.]+)$") > 50 then
    error("postgres.rows: change capture needs a table name of at most 50 "
      .. "bytes (its trigger function is named tide_capture_<table>)", 3)
  end
  local server, err = pg_identity(conn)
  if not server then error("postgres.rows: " .. err, 3) end
  -- version: the triggers' form, so that a later one replaces them.
  local spec = { conn = public_conninfo(conn), server = server, table = tbl,
                 key = key, version = 1 }
  local self = { spec = spec, conn = conn }
  local engine = require "tide.engine"
  if opts.live then
    ptable.remember_conn(spec.conn, conn)
    engine.declare_target(capture, spec)
  end
  local source = engine.source { name = "postgres.rows",
    items = function() return items(self) end,
    watch = opts.live and watch(self) or nil }
  -- The name its failures are said with (engine.lua), the server's
  -- identity, which its own messages start with: said once.
  source.given = spec.server
  return source
end

return M
