-- tide.json: JSON through lua-cjson, and JSON Lines files as a keyed
-- source.
--
-- json.decode(s) returns the value, or nil and the parser's message; it
-- uses a private cjson instance (cjson.new()), so settings made elsewhere
-- do not leak in or out. JSON null decodes to json.null (cjson's
-- sentinel).
--
-- json.encode(v) returns the text, or nil and the message. It is tide's
-- one JSON writer (core.json_encode, the one behind --json and record
-- columns): deterministic text (map keys sorted bytewise), valid UTF-8 (a
-- byte that is not becomes \ufffd), floats in their shortest exact form
-- and always with a fraction ("1.0"). A table whose keys are 1..n is an
-- array, any other one (the empty one too) an object; a metatable's
-- __jsontype = "array" or "object" says which, __jsonorder = { keys }
-- fixes the first keys' order. json.null is null. NaN and infinities are
-- refused with a message naming the field ("value.n[2]: expected a finite
-- number, got NaN"); a value JSON cannot hold keeps lua-cjson's words:
-- "Cannot serialise function at value.f: type not supported".
--
-- json.lines(path, { key = "field" | function(obj, lineno) -> key }) is a
-- source: src:items() reads the file at once and iterates key, object in
-- file order. Each non-blank line must hold one JSON object; nested
-- objects and arrays stay nested. The key is obj[field] for a field name,
-- the function's result for a function, and obj.id when there is no key
-- option; a key must be a non-empty string or an integer (integers become
-- their decimal text, so keys are always strings). Errors name the file as
-- given and the line: "products.jsonl:7: expected a JSON object",
-- "products.jsonl:9: duplicate key \"p1\" (first on line 3)".
--
-- Values decoded here are plain data tide can fingerprint and store:
-- - lua-cjson 2.1 reads every number as a float; a float with an integral
--   value within 2^53 becomes a Lua integer ("id": 7 is 7, as is 7.0).
-- - In json.lines, a null object field is left out (obj.field == nil, as a
--   Lua reader expects), and a null inside an array is an error naming the
--   line and the element ("products.jsonl:4: null at tags[2]: ..."): there
--   is no Lua value for it that keeps the array an array, and json.null (a
--   light userdata) cannot be stored. json.decode keeps json.null.
--
-- Misuse raises error(msg, 2); a missing file or bad data raises
-- error(msg, 0) from items(), with the message above.
local core = require "tide.core"
local cjson = require("cjson").new()

local type, error, pairs, pcall, setmetatable, tostring =
  type, error, pairs, pcall, setmetatable, tostring
local math_type, tointeger = math.type, math.tointeger
local fmt = string.format
local fs_read, fs_abspath, json_encode, jsonl_open = core.fs_read,
  core.fs_abspath, core.json_encode, core.jsonl_open

cjson.decode_invalid_numbers(false) -- strict JSON: no NaN, no hex

local null = cjson.null
local cjson_decode = cjson.decode
local EXACT = 2 ^ 53

local json = { null = null }

-- Makes numbers integers where exact, in place. With `lines`, drops null
-- fields and returns the place of a null array element, if any.
local function normalize(v, lines, where)
  for k, x in pairs(v) do
    local tx = type(x)
    if tx == "number" then
      if math_type(x) == "float" and x >= -EXACT and x <= EXACT then
        v[k] = tointeger(x) or x
      end
    elseif tx == "table" then
      local sub = math_type(k) == "integer" and fmt("%s[%d]", where, k)
        or (where == "" and tostring(k) or where .. "." .. tostring(k))
      local bad = normalize(x, lines, sub)
      if bad then return bad end
    elseif x == null and lines then
      if math_type(k) == "integer" then
        return fmt("%s[%d]", where, k)
      end
      v[k] = nil
    end
  end
  return nil
end

local function clean_message(err)
  return (tostring(err):gsub("^Expected", "expected"))
end

-- json.decode(s) -> value | nil, err
function json.decode(s)
  if type(s) ~= "string" then
    error(fmt("json.decode: expected a string, got %s", type(s)), 2)
  end
  local ok, v = pcall(cjson_decode, s)
  if not ok then return nil, clean_message(v) end
  if type(v) == "number" then
    if math_type(v) == "float" and v >= -EXACT and v <= EXACT then
      v = tointeger(v) or v
    end
  elseif type(v) == "table" then
    normalize(v, false, "")
  end
  return v
end

-- json.encode(v) -> string | nil, err
function json.encode(v)
  local s, err, bad, place = json_encode(v)
  if s then return s end
  if bad then
    return nil, fmt("Cannot serialise %s at %s: type not supported", bad,
                    place)
  end
  return nil, err
end

-- ---- json.lines ----

local Lines = { __name = "tide.json.lines" }
Lines.__index = Lines

local function describe(v)
  if v == "" then return "an empty string" end
  if type(v) == "number" then return "the number " .. tostring(v) end
  return v == nil and "nil" or "a " .. type(v)
end

local function key_text(k)
  if type(k) == "string" and k ~= "" then return k end
  if math_type(k) == "integer" then return tostring(k) end
  return nil
end

-- One line of a JSON Lines file: its key text and object, or raises a
-- message naming the file and the line.
local function parse_line(self, line, start, lineno, first_line)
  if line:sub(start, start) ~= "{" then
    error(fmt("%s:%d: expected a JSON object", self.given, lineno), 0)
  end
  local ok, obj = pcall(cjson_decode, line)
  if not ok then
    error(fmt("%s:%d: %s", self.given, lineno, clean_message(obj)), 0)
  end
  local bad = normalize(obj, true, "")
  if bad then
    error(fmt("%s:%d: null at %s: a null inside an array has no Lua "
      .. "value tide can store", self.given, lineno, bad), 0)
  end
  local k
  if type(self.key) == "function" then
    k = self.key(obj, lineno)
  else
    k = obj[self.key or "id"]
  end
  local text = key_text(k)
  if not text then
    if k == nil and type(self.key) ~= "function" then
      error(fmt("%s:%d: no %q field to key the object by (pass "
        .. "{ key = field or function })", self.given, lineno,
        self.key or "id"), 0)
    end
    error(fmt("%s:%d: %s %s; a key must be a non-empty string or an "
      .. "integer", self.given, lineno, type(self.key) == "function"
      and "the key function returned" or fmt("key field %q is",
      self.key or "id"), describe(k)), 0)
  end
  if first_line[text] then
    error(fmt("%s:%d: duplicate key %q (first on line %d)", self.given,
              lineno, text, first_line[text]), 0)
  end
  return text, obj
end

-- mount_each's iteration when it hands an each (index_each.h) and the key
-- is a field: the file is read in C a line at a time (jsonl.h), and a
-- line whose component is unchanged is carried over there without being
-- decoded in Lua; every other line comes back here and is read as below.
-- The keys seen, for duplicates, are listed with the each, which holds
-- those of the carried lines without a copy.
local function carried_items(self, on_error, each)
  local cursor, err = jsonl_open(self.path, self.key or "id", each)
  if not cursor then error("json.lines: " .. err, 0) end
  local first_line = setmetatable({}, {
    __index = function(_, text) return each:first(text) end,
    __newindex = function(_, text, lineno) each:list(text, lineno) end,
  })
  return function()
    while true do
      local lineno, line = cursor:next()
      if not lineno then
        cursor:close()
        if line then error("json.lines: " .. line, 0) end
        return nil
      end
      local start = line:find("%S")
      if start then
        local ok, text, obj = pcall(parse_line, self, line, start, lineno,
                                    first_line)
        if ok then
          first_line[text] = lineno
          return text, obj
        end
        on_error(nil, text)
      end
    end
  end
end

-- Iterates key, object. With on_error (the engine's mount_each), lines
-- are decoded one at a time as the iteration reaches them (a run over a
-- big file holds its keys, for duplicates, not its objects), and a line
-- that cannot be used is passed to on_error(nil, message) and skipped;
-- with an each too, see carried_items. Without, the file is read and
-- checked as a whole first: a line that cannot be used raises before any
-- item is returned.
function Lines:items(on_error, each)
  require("tide.deps").file_listed(self.path)
  if on_error and each and type(self.key) ~= "function" then
    return carried_items(self, on_error, each)
  end
  local data, err = fs_read(self.path)
  if not data then error("json.lines: " .. err, 0) end
  if data:sub(1, 3) == "\239\187\191" then data = data:sub(4) end
  local first_line = {}
  local pos, len, lineno = 1, #data, 0
  local function step()
    while pos <= len do
      local nl = data:find("\n", pos, true) or len + 1
      local line = data:sub(pos, nl - 1)
      pos = nl + 1
      lineno = lineno + 1
      local start = line:find("%S")
      if start then
        local ok, text, obj = pcall(parse_line, self, line, start, lineno,
                                    first_line)
        if ok then
          first_line[text] = lineno
          return text, obj
        elseif on_error then
          on_error(nil, text)
        else
          error(text, 0)
        end
      end
    end
  end
  if on_error then return step end
  local keys, objects = {}, {}
  for text, obj in step do keys[#keys + 1], objects[#objects + 1] = text, obj end
  local i = 0
  return function()
    i = i + 1
    local k = keys[i]
    if k ~= nil then return k, objects[i] end
  end
end

-- json.lines(path [, { key = field | function(obj, lineno) }])
function json.lines(path, opts)
  if type(path) ~= "string" or path == "" then
    error(fmt("json.lines: path must be a non-empty string, got %s",
              type(path) == "string" and '""' or type(path)), 2)
  end
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error(fmt("json.lines: options must be a table, got %s", type(opts)), 2)
  end
  for k in pairs(opts) do
    if k ~= "key" then
      error(fmt("json.lines: unknown option %s (expected key)",
                tostring(k)), 2)
    end
  end
  local key = opts.key
  if key ~= nil and type(key) ~= "function"
      and (type(key) ~= "string" or key == "") then
    error("json.lines: key must be a field name or a function(obj, lineno)",
          2)
  end
  local abs, err = fs_abspath(path)
  if not abs then error("json.lines: " .. err, 2) end
  return setmetatable({ kind = "json.lines",
    path = require("tide.fs").project_path(abs), given = path,
                        key = key }, Lines)
end

json.Lines = Lines

return json
