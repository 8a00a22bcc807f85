-- Helpers for end-to-end specs: write a pipeline into a temp dir, run
-- `tide update --json` on it, read what its targets hold.
local helpers = require "test.spec.helpers"
local cjson = require "cjson"

local M = {}

-- A custom target type every generated pipeline can use: a JSON object
-- file, key -> value, rewritten on each apply.
M.KV_TARGET = [[
local tide = require "tide"
local cjson = require "cjson"
local function read_kv(file)
  local f = io.open(file)
  if not f then return {} end
  local t = cjson.decode(f:read("a"))
  f:close()
  return t
end
local kv_type = tide.target_type{
  name = "kv",
  identity = function(spec) return spec.file end,
  short_name = function(spec) return spec.file end,
  apply = function(spec, changes)
    local t = read_kv(spec.file)
    for _, c in ipairs(changes) do t[c.key] = c.value end
    local f = assert(io.open(spec.file .. ".tmp", "w"))
    f:write(cjson.encode(t))
    f:close()
    assert(os.rename(spec.file .. ".tmp", spec.file))
  end,
  drop = function(spec) os.remove(spec.file) end,
}
local function kv(file) return tide.declare_target(kv_type, { file = file }) end
]]

function M.write_pipeline(dir, body)
  helpers.write(dir .. "/pipeline.lua", M.KV_TARGET .. body)
end

-- Runs `tide CMD pipeline.lua ARGS --json`; returns the decoded stats (or
-- nil), stderr and the exit status.
function M.update(dir, args)
  local out, err, code = helpers.run(("%s update %s/pipeline.lua --json %s")
    :format(helpers.q(helpers.tide), helpers.q(dir), args or ""))
  local ok, stats = pcall(cjson.decode, out or "")
  return ok and stats or nil, err, code, out
end

function M.tide(dir, args)
  return helpers.run(("cd %s && %s %s"):format(helpers.q(dir),
                                                helpers.q(helpers.tide), args))
end

function M.kv(path)
  local s = helpers.read(path)
  if not s then return nil end
  return cjson.decode(s)
end

-- Counts rows of a table in the state store with the sqlite3 CLI.
function M.store_count(dir, sql)
  local out = helpers.run(("sqlite3 %s %s"):format(
    helpers.q(dir .. "/.tide/state.db"), helpers.q(sql)))
  return tonumber((out or ""):match("%d+"))
end

return M
