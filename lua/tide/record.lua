-- Record types: tide.record, tide.list, tide.vector, tide.optional.
-- A constructor call checks a value against its type, normalises it
-- (integral floats in integer fields become integers, integers in number
-- fields become floats) and returns a new record value; errors name the
-- offending field ("Chunk.line: expected integer, got string").
local core = require "tide.core"

local type, error, ipairs, setmetatable, getmetatable, tostring =
  type, error, ipairs, setmetatable, getmetatable, tostring
local math_type = math.type
local fmt = string.format

local M = {}

-- Every type is a descriptor table with this metatable, but record types:
-- each has a metatable of its own, whose __call is its check in C.
local Descriptor = { __name = "tide.type" }
local record_types = setmetatable({}, { __mode = "k" })

local function is_type(t)
  return getmetatable(t) == Descriptor or record_types[t] == true
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

-- The checks themselves are C (src/lrecord.c: core.record_plan compiles a
-- type into a plan, core.record_check and a record type's __call walk it)
-- and make no string when a value fits; a failure comes back as a reason,
-- the failing type, the offending value and the path to it, which explain
-- words.
local plan_of, check_plan, caller_of = core.record_plan, core.record_check,
  core.record_caller
local concat = table.concat

-- constructor: the value was given to the record type's constructor, which
-- words a missing value as it words any other non-table.
local function explain(root, why, t, bad, segs, constructor)
  local parts = { root }
  for i = 1, #segs do
    local s = segs[i]
    parts[i + 1] = type(s) == "string" and "." .. s or "[" .. s .. "]"
  end
  local path = concat(parts)
  if why == "type" then
    if t.kind == "record" and (bad ~= nil or constructor and #segs == 0) then
      return fmt("%s: expected a table for %s, got %s", path, t.name,
                 got(bad))
    end
    return fmt("%s: expected %s, got %s", path, type_name(t), got(bad))
  elseif why == "unknown" then
    return fmt("%s.%s: unknown field of %s", path, tostring(bad), t.name)
  elseif why == "key" then
    return fmt("%s: expected %s, got a table with key %s", path,
               type_name(t), tostring(bad))
  elseif why == "size" then
    return fmt("%s: expected %s, got %d", path, type_name(t), bad)
  elseif why == "element" then
    if type(bad) ~= "number" then
      return fmt("%s: expected number, got %s", path, got(bad))
    end
    -- NaN whatever its sign bit, which tostring would show
    return fmt("%s: expected a finite number within float32 range, got %s",
               path, bad ~= bad and "NaN" or got(bad))
  elseif why == "utf8" then
    return fmt("%s: expected string, got invalid UTF-8 at byte %d "
      .. "(use bytes for binary data)", path, bad)
  elseif why == "cycle" then
    return path .. ": expected json, got a cycle"
  elseif why == "jsonkey" then
    return fmt("%s: expected json, got a %s key", path, type(bad))
  end -- "deep"
  return fmt("%s: expected %s, got a value nested deeper than %d levels",
             path, type_name(t), bad)
end

-- Plans of types other than record types (which keep theirs in .plan).
local plans = setmetatable({}, { __mode = "k" })

local function plan_for(t)
  local p = t.plan or plans[t]
  if not p then
    p = plan_of(t)
    plans[t] = p
  end
  return p
end

local function record_type_tostring(rt) return "record type " .. rt.name end

-- Checks v against any type (a descriptor or a scalar type's name);
-- returns the normalised value or nil, err.
function M.check(t, v, path)
  t = resolve(t, "tide.check", 2)
  local r, why, ft, bad, segs = check_plan(plan_for(t), v)
  if why then return nil, explain(path or type_name(t), why, ft, bad, segs) end
  return r
end

-- A field is { name, type, key = true }: anything else in it (primary =
-- true, a third entry) would be ignored, the field not made a key.
-- [level: M.record's caller]
local function check_field_options(name, fname, spec)
  for k in pairs(spec) do
    if k ~= 1 and k ~= 2 and k ~= "key" then
      error(fmt("tide.record %s.%s: unknown option %s (a field is { name, "
        .. "type, key = true })", name, fname, tostring(k)), 3)
    end
  end
  if spec.key ~= nil and type(spec.key) ~= "boolean" then
    error(fmt("tide.record %s.%s: key must be true or false, got %s", name,
              fname, type(spec.key)), 3)
  end
end

function M.record(name, fields)
  if type(name) ~= "string" or not name:match "^[%a_][%w_.]*$" then
    error("tide.record: name must be an identifier string", 2)
  end
  if type(fields) ~= "table" or #fields == 0 then
    error(fmt("tide.record %s: fields must be a non-empty list of "
      .. "{ name, type }", name), 2)
  end
  local rt = { kind = "record", name = name, fields = {}, by_name = {},
               keys = {} }
  for i, spec in ipairs(fields) do
    local fname = type(spec) == "table" and spec[1]
    if type(fname) ~= "string" or not fname:match "^[%a_][%w_]*$" then
      error(fmt("tide.record %s: field %d%s needs an identifier name "
        .. "(letters, digits and _, not starting with a digit)", name, i,
        type(fname) == "string" and fmt(" (%q)", fname) or ""), 2)
    end
    if rt.by_name[fname] then
      error(fmt("tide.record %s: field %s declared twice", name, fname), 2)
    end
    check_field_options(name, fname, spec)
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
  rt.plan = plan_of(rt)
  record_types[rt] = true
  -- rt(v) checks v and returns a new record value, or raises what explain
  -- words at the caller's line.
  return setmetatable(rt, { __name = "tide.record_type",
                            __call = caller_of(rt.plan, explain),
                            __tostring = record_type_tostring })
end

-- The record type a value was built by, or nil.
function M.type_of(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__tide_type or nil
end

M.describe = describe
M.is_type = is_type

return M
