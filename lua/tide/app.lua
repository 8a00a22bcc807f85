-- tide.app: an app is a name and a main function, the root component.
-- app:update(opts) runs it once against the state store; app:drop(opts)
-- deletes every target state the app owns, then its state.
local core = require "tide.core"
local fnmod = require "tide.fn"
local target = require "tide.target"
local runmod = require "tide.run"
local engine = require "tide.engine"

local type, error, pairs, ipairs, tostring, pcall, setmetatable =
  type, error, pairs, ipairs, tostring, pcall, setmetatable
local fmt = string.format
local decode = core.cbor_decode

local M = {}

local App = { __name = "tide.app" }
App.__index = App

local APP_OPTIONS = { context = true }
local UPDATE_OPTIONS = {
  db = true, full_reprocess = true, preview = true, reset = true,
  live = true, jobs = true, max_inflight = true, batch_size = true,
  on_error = true, on_preview = true, on_progress = true, quiet = true,
  allow_empty = true, empty_guard = true,
}

function M.app(name, main, opts)
  if type(name) ~= "string" or not name:match("^[%w_.%-]+$") then
    error("tide.app: name must be a non-empty string of letters, digits, "
          .. "'_', '.' or '-'", 2)
  end
  if type(main) ~= "function" then
    error(fmt("tide.app %s: main must be a function", name), 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if not APP_OPTIONS[k] then
      error(fmt("tide.app %s: unknown option %s", name, tostring(k)), 2)
    end
  end
  for k in pairs(opts.context or {}) do
    if getmetatable(k) ~= engine.Key then
      error(fmt("tide.app %s: context keys must be tide.key values", name), 2)
    end
  end
  return setmetatable({
    name = name, main = main, context = opts.context,
    root_fn = fnmod.new(name, {}, main, true),
  }, App)
end

function M.is_app(v) return getmetatable(v) == App end

local function default_db(opts)
  return opts.db or os.getenv("TIDE_DB") or ".tide/state.db"
end

local function check_options(app, opts, level)
  if opts ~= nil and type(opts) ~= "table" then
    error(fmt("app %s: options must be a table", app.name), level + 1)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if not UPDATE_OPTIONS[k] then
      error(fmt("app %s: unknown option %s", app.name, tostring(k)),
            level + 1)
    end
  end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.db = default_db(opts)
  return o
end

-- Runs the app once. Returns the stats table and the list of component
-- errors ({ path, message }), or nil and a message when the run could
-- not happen (the store cannot be opened or is locked, main failed).
-- stats.interrupted is true when a stop (a signal the tide command traps,
-- see lsignal.c) ended the run early, after committing what completed.
function App:update(opts)
  opts = check_options(self, opts, 2)
  if opts.live then
    return nil, "live mode is not available yet in this version"
  end
  local ok, run = pcall(runmod.new, self, opts)
  if not ok then
    return nil, engine.clean_message(type(run) == "table" and run.message
                                     or tostring(run))
  end
  local stats, errors
  ok, stats, errors = pcall(run.execute, run)
  if not ok then
    pcall(run.store.rollback, run.store)
    pcall(run.store.close, run.store)
    runmod.close_target_connections()
    local err = stats
    return nil, engine.clean_message(type(err) == "table" and err.message
                                     or tostring(err))
  end
  for _, e in ipairs(errors) do
    -- A stop may have interrupted main: the run still committed.
    if e.path == "" and e.kind == nil and not stats.interrupted then
      return nil, "main of app " .. self.name .. " failed: " .. e.message,
        stats
    end
  end
  return stats, errors
end

-- Runs every component without writing anything and compares every
-- target with what the store says it holds (tide.verify); with
-- opts.repair, writes back what drifted. Returns the report (a list per
-- container) and the component errors, or nil and a message.
function App:verify(opts)
  local repair = opts and opts.repair
  local o = {}
  for k, v in pairs(opts or {}) do if k ~= "repair" then o[k] = v end end
  o = check_options(self, o, 2)
  o.verify, o.repair = true, repair
  local ok, run = pcall(runmod.new, self, o)
  if not ok then
    return nil, engine.clean_message(type(run) == "table" and run.message
                                     or tostring(run))
  end
  local err
  ok, err = pcall(run.execute, run)
  if not ok then
    pcall(run.store.rollback, run.store)
    pcall(run.store.close, run.store)
    runmod.close_target_connections()
    return nil, engine.clean_message(type(err) == "table" and err.message
                                     or tostring(err))
  end
  for _, e in ipairs(run.errors) do
    if e.path == "" and e.kind == nil then
      return nil, "main of app " .. self.name .. " failed: " .. e.message
    end
  end
  return run.verify_report, run.errors
end

-- Deletes every target state the app owns and drops its containers, then
-- forgets the app. Returns the number of target states deleted.
function App:drop(opts)
  opts = check_options(self, opts, 2)
  local ok, store = pcall(runmod.open_store, opts.db)
  if not ok then
    return nil, type(store) == "table" and store.message or tostring(store)
  end
  local deleted = 0
  local result, err = pcall(function()
    local app_id = store:app(self.name, false)
    if not app_id then return end
    local owner = runmod.owner(store, self.name)
    for _, row in ipairs(store:containers(app_id)) do
      local tt = target.type_named(row.kind)
      if not tt then
        error(fmt("target type %s (of %s) is not loaded", row.kind,
                  row.identity), 0)
      end
      local spec = decode(row.spec or "")
      if spec ~= nil then
        local changes = {}
        for _, t in ipairs(store:targets_by_container(row.id)) do
          changes[#changes + 1] = { key = decode(t.key), value = nil }
        end
        -- A container removed by hand has nothing left to delete.
        local present = not tt.exists or tt.exists(spec)
        if #changes > 0 and present then tt.apply(spec, changes) end
        deleted = deleted + #changes
        tt.drop(spec, owner)
      end
      store:container_delete(row.id)
    end
    store:app_delete(app_id)
    store:flush()
  end)
  store:close()
  runmod.close_target_connections()
  if not result then return nil, tostring(err) end
  return deleted
end

return M
