-- tide.postgres: PostgreSQL through libpq's asynchronous API on the
-- engine's loop (pg.h). A connection is a libpq connection string or URI
-- ("host=/run/postgresql dbname=docs", "postgresql://user@db.example/docs";
-- "" takes the PG* environment variables). Its identity, user@host:port/
-- dbname, is what messages and the store name; a password never appears.
--
-- postgres.query(conn, sql [, params]) -> result | nil, message
--   One statement with $1..$n bound to params (never spliced into the
--   SQL). Inside a component the component waits and the others run;
--   elsewhere the call blocks. result = { columns, types, rows, command,
--   count }: rows are tables of column = value, integers and floats as
--   numbers, booleans, bytea as bytes, json and jsonb decoded, NULL as
--   nil, any other type as PostgreSQL's text (numeric, dates, ...).
-- postgres.identity(conn) -> "user@host:port/dbname" | nil, message
-- postgres.rows(conn, sql, { key = column or { columns } }) -> a source:
--   the rows of the query keyed by the key column(s), as sqlite.rows; a
--   row's component runs again when its content changes.
-- postgres.rows(conn, { table, key = column or { columns }, live }) -> a
--   source of the table's rows; live = true installs a trigger whose
--   notifications live mode reprocesses exactly the changed rows from
--   (postgres_capture.lua).
-- postgres.table{...}, postgres.search{...}, postgres.hybrid_search{...}:
--   the target and the searches (postgres_table.lua, postgres_search.lua).
-- Connections are kept between calls (lpg.c), a few per connection
-- string.
local core = require "tide.core"
local json = require "tide.json"
local keyed_rows = require "tide.rows"
local ptable = require "tide.postgres_table"
local search = require "tide.postgres_search"
local capture = require "tide.postgres_capture"

local type, error, pairs, ipairs, tostring = type, error, pairs, ipairs,
  tostring
local fmt = string.format
local pg_query, pg_identity = core.pg_query, core.pg_identity

local M = {}

local function check_conn(caller, conn)
  if type(conn) ~= "string" then
    error(fmt("%s: conn must be a libpq connection string or URI, got %s",
              caller, type(conn)), 3)
  end
end

function M.identity(conn)
  check_conn("postgres.identity", conn)
  return pg_identity(conn)
end

function M.query(conn, sql, params)
  check_conn("postgres.query", conn)
  if type(sql) ~= "string" or sql == "" then
    error("postgres.query: sql must be a query string", 2)
  end
  if params ~= nil and type(params) ~= "table" then
    error("postgres.query: params must be a list of values", 2)
  end
  local r, err = pg_query(conn, sql, params)
  if not r then
    local who = pg_identity(conn)
    return nil, who and fmt("postgres %s: %s", who, err)
      or "postgres: " .. err
  end
  for j, kind in ipairs(r.types) do
    if kind == "json" then
      local name = r.columns[j]
      for i, row in ipairs(r.rows) do
        local text = row[name]
        if text ~= nil then
          local v, why = json.decode(text)
          if v == nil then
            return nil, fmt("postgres: row %d, column %s: %s", i, name, why)
          end
          row[name] = v
        end
      end
    end
  end
  return r
end

-- ---- postgres.rows ----

-- The rows of sql, keyed by key (as rows.lua keys them); raises, naming
-- the server's identity, when the query fails or a key does not hold.
-- postgres.rows lists a query with it, change capture a whole table.
function M.listed(conn, identity, sql, key)
  local function fail(msg, ...)
    error(fmt("postgres.rows %s: " .. msg, identity, ...), 0)
  end
  local r, err = M.query(conn, sql)
  -- The query's message names the server as fail does: said once. (The
  -- identity holds a colon, user@host:port/db: a pattern up to the
  -- first colon would not find its end.)
  local said = "postgres " .. identity .. ": "
  if r == nil and err:sub(1, #said) == said then err = err:sub(#said + 1) end
  if not r then fail("%s", err) end
  return keyed_rows.keyed(r.rows, r.columns, key, sql, fail)
end

local function items(self)
  return M.listed(self.conn, self.identity, self.sql, self.key)
end

function M.rows(conn, sql, opts)
  check_conn("postgres.rows", conn)
  if type(sql) == "table" then
    if opts ~= nil then
      error("postgres.rows: give a query and { key }, or { table, key, "
            .. "live }", 2)
    end
    return capture.rows(conn, sql)
  end
  if type(sql) ~= "string" or sql == "" then
    error("postgres.rows: sql must be a query string", 2)
  end
  if type(opts) ~= "table" then
    error("postgres.rows: expected options { key = column or columns }", 2)
  end
  for k in pairs(opts) do
    if k ~= "key" then
      error(fmt("postgres.rows: unknown option %s", tostring(k)), 2)
    end
  end
  local key = keyed_rows.key_option(opts.key)
  if not key then
    error("postgres.rows: key must be a column name or a list of column "
          .. "names", 2)
  end
  local identity, err = pg_identity(conn)
  if not identity then error("postgres.rows: " .. err, 2) end
  -- given: the name a failure of the source is said with (engine.lua),
  -- the server's identity, which the source's own messages start with.
  return { kind = "postgres.rows", conn = conn, identity = identity,
           given = identity, sql = sql, key = key, items = items }
end

-- ---- The target and the searches ----

-- postgres.table{ conn, name, schema, fts, fts_config, vector_index,
-- adopt }: see postgres_table.lua.
M.table, M.target = ptable.table, ptable.target
-- postgres.search{...}, postgres.hybrid_search{...}: see
-- postgres_search.lua.
M.search, M.hybrid_search = search.search, search.hybrid_search
M.capture = capture.target

return M
