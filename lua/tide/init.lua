-- tide: the user API, composed over the C core (tide.core).
local core = require "tide.core"
local record = require "tide.record"
local fnmod = require "tide.fn"
local engine = require "tide.engine"
local target = require "tide.target"
local app = require "tide.app"
local calls = require "tide.calls"

local tide = {
  _VERSION = "tide " .. core.version,
  version = core.version,

  -- Canonical values (deterministic CBOR) and fingerprints.
  cbor = { encode = core.cbor_encode, decode = core.cbor_decode },
  fingerprint = core.fingerprint,
  fingerprint_file = core.fingerprint_file,
  logic_fingerprint = core.logic_fingerprint,

  -- Record types.
  record = record.record,
  list = record.list,
  vector = record.vector,
  optional = record.optional,
  check = record.check,
  type_of = record.type_of,

  -- Apps, tracked functions, components, context.
  app = app.app,
  mount = engine.mount,
  use_mount = engine.use_mount,
  auto_refresh = engine.auto_refresh,
  mount_each = engine.mount_each,
  map = engine.map,
  path = engine.path,
  sym = engine.sym,
  key = engine.key,
  use = engine.use,
  source = engine.source,

  -- Calls that wait without blocking the other components.
  exec = core.exec,
  sleep = core.sleep,
  http = { request = core.http_request },
  smaller_batch = calls.smaller_batch,

  -- Targets.
  target_type = target.target_type,
  declare_target = target.declare_target,
}

function tide.fn(name, opts, f)
  -- Not a tail call: fnmod.new raises at level 3, the caller's line.
  local tracked = fnmod.new(name, opts, f)
  return tracked
end

-- One step of every app this Lua state runs live (app:start_live), each
-- given budget_ms; returns how many are still live.
function tide.step(budget_ms)
  if type(budget_ms) ~= "number" or budget_ms < 0 then
    error("tide.step: budget_ms must be a number of milliseconds", 2)
  end
  local live = 0
  for a in pairs(app.stepped) do
    if app.step(a, budget_ms, 2) then live = live + 1 end
  end
  return live
end

-- tide.json loads on first use (it needs lua-cjson).
setmetatable(tide, { __index = function(t, k)
  if k == "json" then
    local json = require "tide.json"
    rawset(t, "json", json)
    return json
  end
end })

return tide
