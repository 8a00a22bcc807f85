-- Record types: tide.record, tide.list, tide.vector, tide.optional.
-- A constructor call checks a value against its type, normalises it
-- (integral floats in integer fields become integers, integers in number
-- fields become floats) and returns a new record value; errors name the
-- offending field ("Chunk.line: expected integer, got string").
local core = require "tide.core"

local type, error, pairs, ipairs, setmetatable, getmetatable, tostring =
  type, error, pairs, ipairs, setmetatable, getmetatable, tostring
local math_type, tointeger, utf8_len = math.type, math.tointeger, utf8.len
local fmt = string.format

local M = {}

-- Every type is a descriptor table with this metatable; record types also
-- have RecordType (callable) as metatable.
local Descriptor = { __name = "tide.type" }
local RecordType = { __name = "tide.record_type" }

local function is_type(t)
  local mt = getmetatable(t)
  return mt == Descriptor or mt == RecordType
end

local scalars = {}
for _, kind in ipairs { "string", "integer", "number", "boolean", "bytes",
                        "json" } do
  scalars[kind] = setmetatable({ kind = kind }, Descriptor)
end

local function resolve(t, where, level)
  if type(t) == "string" and scalars[t] then return scalars[t] end
  if is_type(t) then return t end
  error(fmt("%s: unknown type %s (expected one of string, integer, number, "
    .. "boolean, bytes, json, tide.list(T), tide.vector(N), tide.optional(T) "
    .. "or a record type)", where, type(t) == "string" and fmt("%q", t)
    or tostring(t)), level + 1)
end

function M.list(t)
  return setmetatable({ kind = "list", elem = resolve(t, "tide.list", 2) },
                      Descriptor)
end

function M.optional(t)
  return setmetatable({ kind = "optional",
                        elem = resolve(t, "tide.optional", 2) }, Descriptor)
end

function M.vector(n)
  if math_type(n) ~= "integer" or n < 1 then
    error("tide.vector: size must be a positive integer", 2)
  end
  return setmetatable({ kind = "vector", size = n }, Descriptor)
end

-- A type as plain data: what the schema fingerprint covers.
local function describe(t)
  if t.kind == "list" or t.kind == "optional" then
    return { t.kind, describe(t.elem) }
  elseif t.kind == "vector" then
    return { "vector", t.size }
  elseif t.kind == "record" then
    local fields = {}
    for i, f in ipairs(t.fields) do
      fields[i] = { f.name, describe(f.type), f.key or false }
    end
    return { "record", t.name, fields }
  end
  return t.kind
end

local function type_name(t)
  if t.kind == "list" then return "list of " .. type_name(t.elem) end
  if t.kind == "optional" then return "optional " .. type_name(t.elem) end
  if t.kind == "vector" then return fmt("vector of %d numbers", t.size) end
  if t.kind == "record" then return t.name end
  return t.kind
end
M.type_name = type_name

local function got(v)
  if v == nil then return "nil" end
  local tv = type(v)
  if tv == "number" then return fmt("%s %s", math_type(v), tostring(v)) end
  return tv
end

local check -- forward

local function check_json(v, path, seen)
  local tv = type(v)
  if tv == "string" or tv == "number" or tv == "boolean" then return v end
  if tv ~= "table" then
    return nil, fmt("%s: expected json, got %s", path, got(v))
  end
  if seen[v] then return nil, path .. ": expected json, got a cycle" end
  seen[v] = true
  for k, x in pairs(v) do
    local tk = type(k)
    if tk ~= "string" and math_type(k) ~= "integer" then
      return nil, fmt("%s: expected json, got a %s key", path, tk)
    end
    local _, err = check_json(x, path .. (tk == "string" and "." .. k
      or "[" .. k .. "]"), seen)
    if err then return nil, err end
  end
  seen[v] = nil
  return v
end

local function check_scalar(t, v, path)
  local kind, tv = t.kind, type(v)
  if kind == "string" then
    if tv ~= "string" then
      return nil, fmt("%s: expected string, got %s", path, got(v))
    end
    local ok, bad = utf8_len(v)
    if not ok then
      return nil, fmt("%s: expected string, got invalid UTF-8 at byte %d "
        .. "(use bytes for binary data)", path, bad)
    end
    return v
  elseif kind == "bytes" then
    if tv ~= "string" then
      return nil, fmt("%s: expected bytes, got %s", path, got(v))
    end
    return v
  elseif kind == "integer" then
    local i = tv == "number" and tointeger(v)
    if not i then
      return nil, fmt("%s: expected integer, got %s", path, got(v))
    end
    return i
  elseif kind == "number" then
    if tv ~= "number" then
      return nil, fmt("%s: expected number, got %s", path, got(v))
    end
    return v + 0.0
  elseif kind == "boolean" then
    if tv ~= "boolean" then
      return nil, fmt("%s: expected boolean, got %s", path, got(v))
    end
    return v
  else -- json
    return check_json(v, path, {})
  end
end

-- The largest finite float32, (2 - 2^-23) * 2^127: a vector is stored as
-- float32s, so an element beyond it (or an infinity, or NaN) is refused
-- rather than written as an infinity.
local FLOAT32_MAX = (2 - 2 ^ -23) * 2 ^ 127

local function vector_fail(x, path, i)
  local what
  if type(x) ~= "number" then
    return nil, fmt("%s[%d]: expected number, got %s", path, i, got(x))
  elseif x ~= x then
    what = "NaN" -- whatever its sign bit, which tostring would show
  else
    what = got(x)
  end
  return nil, fmt("%s[%d]: expected a finite number within float32 range, "
    .. "got %s", path, i, what)
end

-- Fills out with the n elements of v as floats. Hot for embeddings: no
-- string is made unless an element is bad.
local function check_vector(v, n, out, path)
  for i = 1, n do
    local x = v[i]
    if math_type(x) ~= "float" then
      if math_type(x) ~= "integer" then return vector_fail(x, path, i) end
      x = x + 0.0
    end
    -- false for NaN too
    if not (x >= -FLOAT32_MAX and x <= FLOAT32_MAX) then
      return vector_fail(x, path, i)
    end
    out[i] = x
  end
  return out
end

local function build(rt, v, path)
  if type(v) ~= "table" then
    return nil, fmt("%s: expected a table for %s, got %s", path, rt.name,
                    got(v))
  end
  local out = {}
  for k in pairs(v) do
    if not rt.by_name[k] then
      return nil, fmt("%s.%s: unknown field of %s", path, tostring(k),
                      rt.name)
    end
  end
  for _, f in ipairs(rt.fields) do
    local x, err = check(f.type, v[f.name], path .. "." .. f.name)
    if err then return nil, err end
    out[f.name] = x
  end
  return setmetatable(out, rt.mt)
end

function check(t, v, path)
  local kind = t.kind
  if kind == "optional" then
    if v == nil then return nil end
    return check(t.elem, v, path)
  end
  if v == nil then
    return nil, fmt("%s: expected %s, got nil", path, type_name(t))
  end
  if kind == "record" then return build(t, v, path) end
  if kind == "list" or kind == "vector" then
    if type(v) ~= "table" then
      return nil, fmt("%s: expected %s, got %s", path, type_name(t), got(v))
    end
    local n, out = #v, {}
    for k in pairs(v) do
      if math_type(k) ~= "integer" or k < 1 or k > n then
        return nil, fmt("%s: expected %s, got a table with key %s", path,
                        type_name(t), tostring(k))
      end
    end
    if kind == "vector" then
      if n ~= t.size then
        return nil, fmt("%s: expected %s, got %d", path, type_name(t), n)
      end
      return check_vector(v, n, out, path)
    end
    local elem = t.elem
    for i = 1, n do
      local x, err = check(elem, v[i], fmt("%s[%d]", path, i))
      if err then return nil, err end
      out[i] = x
    end
    return out
  end
  return check_scalar(t, v, path)
end

RecordType.__index = RecordType
RecordType.__call = function(rt, v)
  local r, err = build(rt, v, rt.name)
  if err then error(err, 2) end
  return r
end
RecordType.__tostring = function(rt) return "record type " .. rt.name end

-- Checks v against any type; returns the normalised value or nil, err.
function M.check(t, v, path)
  return check(t, v, path or type_name(t))
end

function M.record(name, fields)
  if type(name) ~= "string" or not name:match "^[%a_][%w_.]*$" then
    error("tide.record: name must be an identifier string", 2)
  end
  if type(fields) ~= "table" or #fields == 0 then
    error(fmt("tide.record %s: fields must be a non-empty list of "
      .. "{ name, type }", name), 2)
  end
  local rt = setmetatable({ kind = "record", name = name, fields = {},
                            by_name = {}, keys = {} }, RecordType)
  for i, spec in ipairs(fields) do
    local fname = type(spec) == "table" and spec[1]
    if type(fname) ~= "string" or not fname:match "^[%a_][%w_]*$" then
      error(fmt("tide.record %s: field %d needs an identifier name", name, i),
            2)
    end
    if rt.by_name[fname] then
      error(fmt("tide.record %s: field %s declared twice", name, fname), 2)
    end
    local f = { name = fname, type = resolve(spec[2],
      fmt("tide.record %s.%s", name, fname), 2), key = spec.key and true }
    rt.fields[i], rt.by_name[fname] = f, f
    if f.key then rt.keys[#rt.keys + 1] = fname end
  end
  rt.mt = core.record_metatable(name)
  rt.mt.__name = name
  rt.mt.__tide_type = rt
  rt.schema = describe(rt)
  rt.fingerprint = core.fingerprint(rt.schema)
  return rt
end

-- The record type a value was built by, or nil.
function M.type_of(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__tide_type or nil
end

M.describe = describe
M.is_type = is_type

return M
