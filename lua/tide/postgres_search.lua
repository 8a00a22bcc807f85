-- Searching a PostgreSQL table that postgres.table keeps: nearest vectors
-- (postgres.search) and reciprocal rank fusion of vector and full-text
-- ranks (postgres.hybrid_search), as sqlite.search and
-- sqlite.hybrid_search do for SQLite. tide.postgres exposes them.
--
-- A vector column is pgvector's vector(N) or real[] (postgres.table makes
-- the first when the database has the extension). With pgvector the
-- distance is its operator (<=> cosine, <-> L2), so an HNSW index serves
-- the search; with real[] an exact scan computes it in SQL, in doubles.
-- The query vector and text are always parameters; `where` is an SQL
-- condition on the table's columns, written by the caller, as for SQLite.
local json = require "tide.json"
local ptable = require "tide.postgres_table"
local core = require "tide.core"
local checks = require "tide.search_options"

local type, error, pairs, ipairs, tostring, tonumber =
  type, error, pairs, ipairs, tostring, tonumber
local fmt, concat = string.format, table.concat
local pg_query, pg_identity = core.pg_query, core.pg_identity
local ident, table_ident = ptable.ident, ptable.table_ident

local M = {}

local FLOAT32_MAX = 3.4028234663852886e38

-- The query vector as array text, checked.
local function vector_text(v, caller, pgvector)
  local out = {}
  for i = 1, #v do
    local x = v[i]
    if type(x) ~= "number" or x ~= x or x > FLOAT32_MAX
       or x < -FLOAT32_MAX then
      error(fmt("%s: vector[%d] is not a finite float32 number", caller, i),
            3)
    end
    out[i] = fmt("%.9g", x)
  end
  local s = concat(out, ",")
  return pgvector and "[" .. s .. "]" or "{" .. s .. "}"
end

-- A vector column's text ({1,2} or [1,2]) as a list of numbers.
local function vector_of(text)
  if type(text) ~= "string" then return text end
  local v = {}
  for x in text:gmatch("[^{}%[%],]+") do v[#v + 1] = tonumber(x) end
  return v
end

-- One statement, with json and jsonb columns decoded; nil, message.
local function select(conn, sql, params)
  local r, err = pg_query(conn, sql, params)
  if not r then return nil, err end
  for j, kind in ipairs(r.types) do
    if kind == "json" then
      local name = r.columns[j]
      for _, row in ipairs(r.rows) do
        if row[name] ~= nil then row[name] = json.decode(row[name]) end
      end
    end
  end
  return r.rows
end

-- The type of table.column (as format_type names it), nil when there is
-- no such column, or nil and a message.
local function column_type(conn, tbl, column)
  local rows, err = select(conn, "SELECT format_type(a.atttypid, "
    .. "a.atttypmod) AS type FROM pg_attribute a WHERE a.attrelid = "
    .. "to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped",
    { table_ident(tbl), column })
  if not rows then return nil, err end
  return rows[1] and rows[1].type or false
end

-- The SQL distance of column c of row alias t to the vector in the
-- parameter p ("$1").
local function distance_sql(c, metric, pgvector, p)
  if pgvector then
    return fmt("(t.%s %s %s::vector)", c, metric == "l2" and "<->" or "<=>",
               p)
  end
  if metric == "l2" then
    return fmt("(SELECT sqrt(sum((a - b) * (a - b))) FROM unnest(t.%s::"
      .. "float8[], %s::float8[]) AS u(a, b))", c, p)
  end
  return fmt("(SELECT 1 - sum(a * b) / nullif(sqrt(sum(a * a)) * sqrt("
    .. "sum(b * b)), 0) FROM unnest(t.%s::float8[], %s::float8[]) AS "
    .. "u(a, b))", c, p)
end

-- The options every search checks; returns k and the metric.
local function check_common(name, opts, allowed, need_column, optional)
  checks.table(name, opts, allowed, 4)
  if optional then checks.vector_or_text(name, opts, 4) end
  if type(opts.conn) ~= "string" then
    error(name .. ": conn must be a libpq connection string or URI", 3)
  end
  if type(opts.table) ~= "string" or not (opts.table:match "^[%a_][%w_]*$"
     or opts.table:match "^[%a_][%w_]*%.[%a_][%w_]*$") then
    error(name .. ": table must be an identifier, or schema.name", 3)
  end
  if need_column and (type(opts.column) ~= "string" or opts.column == "")
  then
    error(name .. ": column must be a non-empty string", 3)
  end
  return checks.ranking(name, opts, optional, 4)
end

-- Checks the vector column and says whether it is pgvector's; nil and a
-- message when there is no such column or its vectors have another
-- dimension than the query's (real[] has no fixed one: a row is read).
local function vector_column(conn, opts)
  local ctype, err = column_type(conn, opts.table, opts.column)
  if ctype == nil then return nil, err end
  if not ctype then
    return nil, fmt("no column %s in table %s", opts.column, opts.table)
  end
  local pgvector = ctype:match("^vector") ~= nil
  if not pgvector and ctype ~= "real[]" and ctype ~= "double precision[]"
  then
    return nil, fmt("column %s of table %s is %s, not a vector", opts.column,
                    opts.table, ctype)
  end
  local dims = pgvector and tonumber(ctype:match("%((%d+)%)"))
  if not pgvector then
    local rows
    rows, err = select(conn, fmt("SELECT cardinality(%s) AS n FROM %s "
      .. "WHERE %s IS NOT NULL LIMIT 1", ident(opts.column),
      table_ident(opts.table), ident(opts.column)))
    if not rows then return nil, err end
    dims = rows[1] and rows[1].n
  end
  if dims and dims ~= #opts.vector then
    return nil, fmt("column %s holds vectors of %d dimensions, the query "
      .. "vector has %d", opts.column, dims, #opts.vector)
  end
  return pgvector
end

local function failed(name, conn, err)
  local who = pg_identity(conn) or "postgres"
  return nil, fmt("%s: %s: %s", name, who, err)
end

local search_options = { conn = true, table = true, column = true,
                         vector = true, k = true, where = true,
                         metric = true }

-- postgres.search{ conn, table, column, vector, k = 10, where, metric =
-- "cosine" } -> the k rows nearest to vector by column, nearest first,
-- each with its columns (the vector as a list of numbers, tide_fts left
-- out) and distance (1 - cosine similarity, or the Euclidean distance).
-- Rows whose distance is undefined (a vector of zeros, NULL) are left
-- out. Misuse raises; nil, message when the search cannot run.
function M.search(opts)
  local name = "postgres.search"
  local k, metric = check_common(name, opts, search_options, true)
  local pgvector, err = vector_column(opts.conn, opts)
  if pgvector == nil then return failed(name, opts.conn, err) end
  local d = distance_sql(ident(opts.column), metric, pgvector, "$1")
  local rows
  rows, err = select(opts.conn, fmt("SELECT * FROM (SELECT t.*, %s AS "
    .. "distance FROM %s t%s ORDER BY %s LIMIT %d) s WHERE distance IS NOT "
    .. "NULL AND distance = distance ORDER BY distance", d,
    table_ident(opts.table), opts.where and (" WHERE (" .. opts.where ..
    ")") or "", d, k), { vector_text(opts.vector, name, pgvector) })
  if not rows then return failed(name, opts.conn, err) end
  for _, row in ipairs(rows) do
    row.tide_fts = nil
    row[opts.column] = vector_of(row[opts.column])
  end
  return rows
end

-- The text search configuration of the table's tide_fts column, or false
-- when it has none.
local function fts_config(conn, tbl)
  local rows, err = select(conn, "SELECT pg_get_expr(d.adbin, d.adrelid) "
    .. "AS expr FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = "
    .. "d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = to_regclass($1) "
    .. "AND a.attname = 'tide_fts'", { table_ident(tbl) })
  if not rows then return nil, err end
  return rows[1] and rows[1].expr:match("'([^']+)'::regconfig") or false
end

-- A user's text as a websearch_to_tsquery argument matching any of its
-- words: runs of letters and digits joined by "or", so that quotes,
-- minus signs and the word "or" in the text are only words (or dropped).
local function any_word(text)
  local words = {}
  for w in text:gmatch("[%w\128-\255]+") do
    if w:lower() ~= "or" then words[#words + 1] = w end
  end
  return concat(words, " or ")
end

local hybrid_options = { conn = true, table = true, column = true,
  vector = true, text = true, k = true, where = true, metric = true,
  rrf_k = true, candidates = true }

-- postgres.hybrid_search{ conn, table, column, vector, text, k = 10,
-- where, metric = "cosine", rrf_k = 60, candidates = max(4 * k, 50) } ->
-- up to k rows, best first, ranked by reciprocal rank fusion of the
-- `candidates` rows nearest to vector (as postgres.search ranks them) and
-- the `candidates` best matches of text in the table's tide_fts column
-- (postgres.table{ fts = ... }) by ts_rank_cd, with any word of the text
-- matching. A row's score is the sum over the lists it is in of 1 /
-- (rrf_k + its rank there); each row has its columns and score,
-- vector_rank and distance, text_rank and text_score (nil when it is not
-- in that list). Without text only the vector list ranks, without vector
-- only the text list. Misuse raises; nil, message when it cannot run.
function M.hybrid_search(opts)
  local name = "postgres.hybrid_search"
  local k, metric = check_common(name, opts, hybrid_options,
                                 type(opts) == "table" and opts.vector,
                                 true)
  local n, rrf_k = checks.fusion(name, opts, k)
  local conn, t = opts.conn, table_ident(opts.table)
  local cond = opts.where and (" AND (" .. opts.where .. ")") or ""
  local params, lists = {}, {}
  local function param(v)
    params[#params + 1] = v
    return "$" .. #params
  end
  if opts.vector then
    local pgvector, err = vector_column(conn, opts)
    if pgvector == nil then return failed(name, conn, err) end
    local d = distance_sql(ident(opts.column), metric, pgvector,
                           param(vector_text(opts.vector, name, pgvector)))
    lists[#lists + 1] = fmt("v AS (SELECT r, distance, row_number() OVER "
      .. "(ORDER BY distance, r) AS rank FROM (SELECT t.ctid AS r, %s AS "
      .. "distance FROM %s t WHERE true%s ORDER BY %s LIMIT %d) v0 WHERE "
      .. "distance IS NOT NULL AND distance = distance)", d, t, cond, d, n)
  else
    lists[#lists + 1] = "v AS (SELECT NULL::tid AS r, NULL::float8 AS "
      .. "distance, NULL::bigint AS rank WHERE false)"
  end
  local words = opts.text and any_word(opts.text) or ""
  if words ~= "" then
    local config, err = fts_config(conn, opts.table)
    if config == nil then return failed(name, conn, err) end
    if not config then
      return failed(name, conn, fmt("table %s has no full-text column "
        .. "(postgres.table makes tide_fts when given fts = { fields })",
        opts.table))
    end
    lists[#lists + 1] = fmt("x AS (SELECT r, text_score, row_number() OVER "
      .. "(ORDER BY text_score DESC, r) AS rank FROM (SELECT t.ctid AS r, "
      .. "ts_rank_cd(t.tide_fts, q) AS text_score FROM %s t, "
      .. "websearch_to_tsquery('%s'::regconfig, %s) q WHERE t.tide_fts @@ "
      .. "q%s ORDER BY text_score DESC, t.ctid LIMIT %d) x0)", t, config,
      param(words), cond, n)
  else
    lists[#lists + 1] = "x AS (SELECT NULL::tid AS r, NULL::float4 AS "
      .. "text_score, NULL::bigint AS rank WHERE false)"
  end
  local sql = fmt("WITH %s, f AS (SELECT coalesce(v.r, x.r) AS r, "
    .. "coalesce(1.0 / (%.17g + v.rank), 0) + coalesce(1.0 / (%.17g + "
    .. "x.rank), 0) AS score, v.rank AS vector_rank, v.distance, x.rank AS "
    .. "text_rank, x.text_score FROM v FULL JOIN x ON v.r = x.r ORDER BY "
    .. "score DESC, r LIMIT %d) SELECT t.*, f.score::float8 AS score, "
    .. "f.vector_rank, f.distance, f.text_rank, f.text_score::float8 AS "
    .. "text_score FROM f JOIN %s t ON t.ctid = f.r ORDER BY f.score DESC, "
    .. "f.r", concat(lists, ", "), rrf_k, rrf_k, k, t)
  local rows, err = select(conn, sql, params)
  if not rows then return failed(name, conn, err) end
  for _, row in ipairs(rows) do
    row.tide_fts = nil
    if opts.column then row[opts.column] = vector_of(row[opts.column]) end
  end
  return rows
end

return M
