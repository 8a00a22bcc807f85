-- What the SQL table targets (sqlite.table, postgres.table) share: the
-- handle a target constructor returns, the checks of a record type and
-- of an fts list, the comparison of a table's columns with the ones a
-- spec wants, and whether the store that claimed a table still keeps it.
-- caller is the constructor's name ("sqlite.table"), which messages
-- start with.
local core = require "tide.core"
local record = require "tide.record"

local type, error, pairs, ipairs, tostring, setmetatable, getmetatable,
      pcall = type, error, pairs, ipairs, tostring, setmetatable,
  getmetatable, pcall
local fmt = string.format
local concat = table.concat
local check, describe, is_type = record.check, record.describe,
  record.is_type
local cbor_encode = core.cbor_encode

local M = {}

-- ---- Handles ----

-- A handle class for a target type: handle:row(rec) declares one row
-- (a record of the schema's type, or a plain table, checked, then given
-- to check_row(handle, record) when there is one, which raises at level
-- 3 what the table cannot hold); as a memo argument a handle counts by
-- its container's identity.
function M.handle_class(name, target, check_row)
  local Table = { __name = name }
  Table.__index = Table
  function Table.__tide_key(self) return target.identity(self.spec) end
  local dotted = name:gsub("^tide%.", "") .. ": call row with a colon "
    .. "(t:row{...}), not a dot"
  function Table:row(rec)
    local rt = self.schema
    -- t.row{...}: self is the row, rec nil (checked only then: a hot path).
    if rt == nil and getmetatable(self) ~= Table then error(dotted, 2) end
    local v, err = rec, nil
    -- A record built by this type's constructor was checked when built.
    local mt = getmetatable(rec)
    if type(mt) ~= "table" or mt.__tide_type ~= rt then
      v, err = check(rt, rec, rt.name)
      if err then error(err, 2) end
    end
    if check_row then check_row(self, v) end
    -- Made at its size: a key grown one field at a time is rehashed.
    local keys = rt.keys
    local n, key = #keys, nil
    if n == 1 then
      key = { v[keys[1]] }
    elseif n == 2 then
      key = { v[keys[1]], v[keys[2]] }
    else
      key = {}
      for i = 1, n do key[i] = v[keys[i]] end
    end
    self.target:declare(key, v)
    return v
  end
  return Table
end

-- ---- Options ----

-- Raises, at the constructor's caller, for a key not in allowed.
function M.check_options(caller, opts, allowed)
  for k in pairs(opts) do
    if not allowed[k] then
      error(fmt("%s: unknown option %s", caller, tostring(k)), 3)
    end
  end
end

-- The fields of the record type rt as a spec keeps them ({ name, type =
-- described, key }); raises when rt is not a record type with a key, or a
-- key field is optional.
function M.fields(caller, rt)
  if not is_type(rt) or rt.kind ~= "record" or #rt.keys == 0 then
    error(caller .. ": schema must be a record type with at least one key "
      .. "field", 3)
  end
  local fields = {}
  for i, f in ipairs(rt.fields) do
    if f.key and f.type.kind == "optional" then
      error(fmt("%s: key field %s.%s must not be optional", caller,
                rt.name, f.name), 3)
    end
    fields[i] = { name = f.name, type = describe(f.type), key = f.key or
                  false }
  end
  return fields
end

-- The fts option: a copy of the list of string fields to index, or nil.
function M.check_fts(caller, rt, fts)
  if fts == nil then return nil end
  if type(fts) ~= "table" or #fts == 0 then
    error(caller .. ": fts must be a list of field names", 3)
  end
  local out, seen = {}, {}
  for i, name in ipairs(fts) do
    local f = rt.by_name[name]
    if not f then
      error(fmt("%s: unknown fts column %s (not a field of %s)", caller,
                tostring(name), rt.name), 3)
    end
    local t = f.type.kind == "optional" and f.type.elem or f.type
    if t.kind ~= "string" then
      error(fmt("%s: fts column %s must be a string field", caller, name), 3)
    end
    if seen[name] then
      error(fmt("%s: fts column %s listed twice", caller, name), 3)
    end
    out[i], seen[name] = name, true
  end
  return out
end

-- ---- Columns ----

-- The columns a spec wants: name -> { type, notnull, pk (1-based position
-- in the key, 0 when not a key), default }. column_of(described type)
-- returns the SQL type, the plan kind, nullable, the vector size and the
-- default for ADD COLUMN.
function M.wanted_columns(spec, column_of)
  local cols, pk = {}, 0
  for _, f in ipairs(spec.fields) do
    local sql, _, nullable, _, default = column_of(f.type, spec.vectors)
    if f.key then pk = pk + 1 end
    cols[f.name] = { type = sql, notnull = not nullable,
                     pk = f.key and pk or 0, default = default }
  end
  return cols
end

-- The plan by which lrows.c turns spec's records into rows ({ table,
-- columns, keys }: lrows.h), column_of as for wanted_columns.
function M.plan(spec, column_of)
  local columns, keys = {}, {}
  for i, f in ipairs(spec.fields) do
    local _, kind, nullable, size = column_of(f.type, spec.vectors)
    columns[i] = { name = f.name, kind = kind, nullable = nullable,
                   size = size, type = f.type }
    if f.key then keys[#keys + 1] = i end
  end
  return { table = spec.name, columns = columns, keys = keys }
end

local function same_column(a, b)
  return a.type == b.type and a.notnull == b.notnull and a.pk == b.pk
end

-- Whether an existing table's columns (in wanted_columns' shape) are the
-- ones wanted.
function M.same_columns(have, want)
  for name, c in pairs(have) do
    if not want[name] or not same_column(c, want[name]) then return false end
  end
  for name in pairs(want) do
    if not have[name] then return false end
  end
  return true
end

-- A column as a reader of the table's definition knows it.
local function column_text(c)
  return c.type .. (c.notnull and " NOT NULL" or "")
    .. (c.pk > 0 and " PRIMARY KEY" or "")
end

-- How an existing table's columns differ from the record type's (name,
-- its type's name), one column after another in name order: what to
-- change for the type to adopt it.
function M.column_differences(have, want, name)
  local names, seen, out = {}, {}, {}
  for n in pairs(have) do names[#names + 1], seen[n] = n, true end
  for n in pairs(want) do
    if not seen[n] then names[#names + 1] = n end
  end
  table.sort(names)
  for _, n in ipairs(names) do
    local h, w = have[n], want[n]
    if not w then
      out[#out + 1] = fmt("%s is not a field of %s", n, name)
    elseif not h then
      out[#out + 1] = fmt("%s is missing (%s's is %s)", n, name,
                          column_text(w))
    elseif not same_column(h, w) then
      out[#out + 1] = fmt("%s is %s, %s's is %s", n, column_text(h), name,
                          column_text(w))
    end
  end
  return concat(out, "; ")
end

-- Whether the table must be dropped and recreated: a key changed, or a
-- field kept its name but changed its type.
function M.must_recreate(spec, prev, have, want)
  for name, c in pairs(have) do
    local w = want[name]
    if c.pk > 0 and not w then return true end
    if w and not same_column(c, w) then return true end
  end
  for name, w in pairs(want) do
    if w.pk > 0 and not have[name] then return true end
  end
  local before = {}
  for _, f in ipairs(prev.fields or {}) do before[f.name] = f end
  for _, f in ipairs(spec.fields) do
    local p = before[f.name]
    if p and ((p.key or false) ~= (f.key or false)
              or cbor_encode(p.type) ~= cbor_encode(f.type)) then
      return true
    end
  end
  return false
end

-- What an adopted table's setup says when the record type changed so
-- that the table would have to be made again (its key, or a field's
-- type): an adopted table holds the user's rows, and is never dropped.
function M.adopted_remake(caller, spec)
  return fmt("the table was adopted (adopt = true) and tide never drops "
    .. "it, but %s's key or a field's type changed, which needs the table "
    .. "made again: run tide drop with the pipeline as it was (it deletes "
    .. "only the rows tide wrote), change the table to the new columns "
    .. "yourself and update again, or give %s{} another name", spec.schema[2],
    caller)
end

-- The columns an alter would drop from an adopted table (fields removed
-- from its record type), or nil: they hold the user's rows' values too,
-- so tide leaves dropping them to the user.
function M.adopted_drops(spec, have, want)
  local drops = {}
  for name in pairs(have) do
    if not want[name] then drops[#drops + 1] = name end
  end
  if #drops == 0 then return nil end
  table.sort(drops)
  return fmt("the table was adopted (adopt = true), and %s no longer has "
    .. "%s %s, whose values in your rows tide does not delete: drop %s "
    .. "yourself (ALTER TABLE %s DROP COLUMN %s) and update again",
    spec.schema[2], #drops == 1 and "the field" or "the fields", concat(drops, ", "),
    #drops == 1 and "the column" or "the columns", spec.name, drops[1])
end

-- Raises, through refuse(name, why, advice), for an existing table tide
-- may not write into: another kind of object (other names it), a table
-- it did not make (unless adopted; claimed says whether the store's
-- owner claimed it already, "mine"), or an adopted one whose columns are
-- not the record type's. have: its columns, or nil when there is none.
function M.refuse_foreign(caller, spec, prev, claimed, have, other, want,
                          refuse)
  if other then
    refuse(spec.name, " (it is a " .. other .. ")")
  elseif have and prev == nil and not spec.adopt and claimed ~= "mine" then
    refuse(spec.name, "", "set adopt = true in " .. caller .. "{} to let "
      .. "tide write into it (it then deletes only the rows it wrote), or "
      .. "choose another name")
  elseif have and prev == nil and not M.same_columns(have, want) then
    local name = spec.schema[2]
    refuse(spec.name, fmt(" and its columns differ from %s's (%s)", name,
      M.column_differences(have, want, name)), fmt("make them %s's, or "
      .. "choose another name", name))
  end
end

-- ---- Verify ----

-- A verify's report for a table that is not there: every expected row
-- missing.
function M.all_missing(expected)
  local missing = {}
  for i, e in ipairs(expected) do missing[i] = e.key end
  return { missing = missing, changed = {}, extra = {} }
end

-- ---- Owners ----

-- Whether the store that claimed a table (r = { owner = "app@created_ns",
-- store = path }, from a tide_owners table) still keeps that app: a store
-- deleted (or reset by deleting it) has let its tables go.
function M.claim_alive(r)
  local store = core.store_open(r.store, "read")
  if not store then return false end
  local ok, apps = pcall(store.apps, store)
  store:close()
  if not ok then return false end
  for _, a in ipairs(apps) do
    if fmt("%s@%d", a.name, a.created_ns) == r.owner then return true end
  end
  return false
end

-- The message for owner (run.lua's M.owner) claiming a table that
-- another app keeps (r, as in claim_alive): of another store, or of the
-- same store.
function M.kept_by_another(name, r, owner)
  local app = r.owner:match("^(.*)@%d+$") or r.owner
  if owner and owner.store == r.store then
    return fmt("table %s is kept by app %s of this tide state store, %s: a "
      .. "table has one owner; drop that app first (tide drop), or choose "
      .. "another name", name, app, r.store)
  end
  return fmt("table %s is kept by another tide state store, %s (app %s): "
    .. "a table has one owner; drop the app there first, or choose "
    .. "another name", name, r.store, app)
end

return M
