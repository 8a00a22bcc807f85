-- Query results as keyed sources: what sqlite.rows and postgres.rows
-- share (the option `key`, and the rows keyed by it).
local type, ipairs, tostring, tonumber =
  type, ipairs, tostring, tonumber
local fmt, concat = string.format, table.concat
local math_type = math.type

local M = {}

-- The key option as a column name or a list of names, or nil.
function M.key_option(key)
  if type(key) == "table" and #key > 0 then
    local copy = {}
    for i, k in ipairs(key) do
      if type(k) ~= "string" then return nil end
      copy[i] = k
    end
    return copy
  elseif type(key) == "string" then
    return key
  end
  return nil
end

-- A key column's value as key text (a float as its shortest exact form).
local function key_text(v)
  if math_type(v) == "float" then
    local s = fmt("%.15g", v)
    return tonumber(s) == v and s or fmt("%.17g", v)
  end
  return tostring(v)
end
M.key_text = key_text

-- The key of several key columns' texts: joined with "/", each part's "\"
-- and "/" escaped with a "\", so that two rows whose parts differ have two
-- keys ("x/y", "z" is x\/y/z; "x", "y/z" is x/y\/z); a key whose parts
-- hold neither keeps the plain form. One part is the key as it is.
-- (lsqlite_rows.c joins them the same way.)
local function key_join(parts)
  if #parts == 1 then return parts[1] end
  for i, part in ipairs(parts) do
    parts[i] = part:gsub("[\\/]", "\\%0")
  end
  return concat(parts, "/")
end
M.key_join = key_join

-- An iterator of key, row over rows (tables of column = value) whose
-- columns are names, keyed by key (a name or a list: values joined by
-- key_join). fail(msg, ...) raises; it is called for a key column missing
-- from names, NULL in a row, or a key found twice, naming sql.
function M.keyed(rows, names, key, sql, fail)
  local keys = type(key) == "string" and { key } or key
  local columns = {}
  for _, n in ipairs(names) do columns[n] = true end
  for _, k in ipairs(keys) do
    if not columns[k] then
      fail("key column %s is not in the result of: %s", k, sql)
    end
  end
  local out, seen = {}, {}
  for i, row in ipairs(rows) do
    local parts = {}
    for j, k in ipairs(keys) do
      local v = row[k]
      if v == nil then
        fail("key column %s is NULL in row %d of: %s", k, i, sql)
      end
      parts[j] = key_text(v)
    end
    local k = key_join(parts)
    if seen[k] then fail("duplicate key %s in the result of: %s", k, sql) end
    seen[k], out[i] = true, k
  end
  local i = 0
  return function()
    i = i + 1
    if rows[i] then return out[i], rows[i] end
  end
end

return M
