-- The KEY a user gives `tide why`, read back into the key values it may
-- name. `show` prints a key as tide's JSON writer writes it (report.lua's
-- key_text): a single string as is, other keys as JSON, where an integer
-- has no fraction and a float always has one (7 and 7.0 are two keys).
-- lua-cjson reads every number as a float, so the literal's own spelling
-- decides which of the two a number is.
local cjson = require "cjson"

local type, pcall, ipairs, tointeger = type, pcall, ipairs, math.tointeger

local M = {}

-- For each number literal of the JSON text s, in order: true when it is
-- written as an integer (no fraction, no exponent).
local function integer_literals(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:sub(i, i)
    if c == '"' then
      i = i + 1
      while i <= n do
        local d = s:sub(i, i)
        if d == "\\" then i = i + 2
        elseif d == '"' then break
        else i = i + 1 end
      end
      i = i + 1
    elseif c:match("[%-%d]") then
      local lit = s:match("^%-?[%d.eE+%-]+", i)
      out[#out + 1] = not lit:find("[.eE]")
      i = i + #lit
    else
      i = i + 1
    end
  end
  return out
end

-- A decoded number as the literal it came from spells it.
local function typed(x, literals, at)
  if type(x) ~= "number" then return x, at end
  at = at + 1
  if literals[at] then return tointeger(x) or x, at end
  return x, at
end

-- The JSON text s as a key value: a scalar, or a list of scalars (a
-- composite key), numbers typed as written; nil when s is not one.
local function decode_key(s)
  local ok, v = pcall(cjson.decode, s)
  if not ok or v == nil or v == cjson.null then return nil end
  local literals, at = integer_literals(s), 0
  if type(v) ~= "table" then return (typed(v, literals, at)) end
  local list = {}
  for i, x in ipairs(v) do
    if type(x) == "table" or x == cjson.null then return nil end
    list[i], at = typed(x, literals, at)
  end
  if #list == 0 then return nil end
  return list
end

-- The key values text may name, most likely first: the text itself as a
-- string key, then what it reads as in JSON. A target keeps a key either
-- bare (a folder's file name) or as the list of its key fields (a table's
-- row), so each is tried both ways.
function M.candidates(text)
  local out = { { text }, text }
  local v = decode_key(text)
  if v ~= nil then
    if type(v) == "table" then
      out[#out + 1] = v
    else
      out[#out + 1] = { v }
      out[#out + 1] = v
    end
  end
  return out
end

return M
