-- tide.app: an app is a name and a main function, the root component.
-- app:update(opts) runs it once against the state store; app:drop(opts)
-- deletes every target state the app owns, then its state.
local core = require "tide.core"
local fnmod = require "tide.fn"
local target = require "tide.target"
local runmod = require "tide.run"
local engine = require "tide.engine"
local live = require "tide.live"

local type, error, pairs, ipairs, tostring, pcall, setmetatable =
  type, error, pairs, ipairs, tostring, pcall, setmetatable
local fmt = string.format
local decode = core.cbor_decode

local M = {}

local App = { __name = "tide.app" }
App.__index = App

local APP_OPTIONS = { context = true, max_inflight = true }
-- The options only live mode reads.
local LIVE_OPTIONS = {
  rescan = true, on_cycle = true, on_message = true, on_watching = true,
  on_cycle_start = true, code_files = true,
}
local UPDATE_OPTIONS = {
  db = true, full_reprocess = true, preview = true, reset = true,
  live = true, jobs = true, max_inflight = true, batch_size = true,
  on_error = true, on_preview = true, on_progress = true,
  allow_empty = true, empty_guard = true,
  rescan = true, on_cycle = true, on_message = true, on_watching = true,
  on_cycle_start = true, code_files = true, loop = true,
  -- A shared update's part (share.lua): what the CLI's update --workers
  -- and worker commands give.
  share = true,
}

-- What app:drop and app:verify take of app:update's options (loop: the
-- luv module, undocumented).
local function options_of(method, list)
  local names = { loop = true }
  for _, k in ipairs(list) do names[k] = true end
  return { method = method, names = names,
           list = table.concat(list, ", ") }
end
local DROP_OPTIONS = options_of("app:drop", { "db" })
local VERIFY_OPTIONS = options_of("app:verify", {
  "db", "jobs", "max_inflight", "batch_size", "allow_empty", "on_error",
  "on_progress" })

-- The update options that are true or false.
local SWITCHES = { "full_reprocess", "reset", "preview", "allow_empty",
                   "live" }

-- The most worker threads a run may have for parallel functions.
M.MAX_JOBS = runmod.MAX_JOBS

-- A limit option's value: a positive integer. [level: the caller's]
local function check_limit(what, name, v, level)
  if v ~= nil and (math.type(v) ~= "integer" or v < 1) then
    error(fmt("%s: %s must be a positive integer", what, name), level + 1)
  end
end

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
  check_limit("tide.app " .. name, "max_inflight", opts.max_inflight, 2)
  for k in pairs(opts.context or {}) do
    if getmetatable(k) ~= engine.Key then
      error(fmt("tide.app %s: context keys must be tide.key values", name), 2)
    end
  end
  return setmetatable({
    name = name, main = main, context = opts.context,
    max_inflight = opts.max_inflight,
    root_fn = fnmod.new(name, {}, main, true),
    engines = {}, -- store path -> engine: the app's sessions
    luv_of = setmetatable({}, { __mode = "k" }), -- engine -> luv, its loop's
    fns_seen = {}, -- name -> the tide.fn its cycles called last
    -- deps fingerprint -> dependencies that can change between the
    -- cycles of a session (a folder listed, a source's file read):
    -- checked again by every cycle (Run:index_ready).
    volatile_deps = {},
  }, App)
end

function M.is_app(v) return getmetatable(v) == App end

-- Checks the options of app:update, or of another method that takes
-- fewer (only: the names it takes, which its message lists), and returns
-- a copy. [level: the caller's]
local function check_options(app, opts, level, only)
  if opts ~= nil and type(opts) ~= "table" then
    error(fmt("app %s: options must be a table", app.name), level + 1)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if not UPDATE_OPTIONS[k] then
      error(fmt("app %s: unknown option %s", app.name, tostring(k)),
            level + 1)
    end
    -- An update's option another method would ignore is refused: a drop
    -- given preview = true would delete all the same.
    if only and not only.names[k] then
      error(fmt("app %s: %s has no option %s (it takes %s)", app.name,
                only.method, tostring(k), only.list), level + 1)
    end
  end
  if opts.db ~= nil and (type(opts.db) ~= "string" or opts.db == "") then
    error(fmt("app %s: db must be a non-empty string (a state store's "
              .. "path or location), got %s", app.name, type(opts.db)),
          level + 1)
  end
  -- A switch given a string or a number is a mistake, not a yes: 0 and
  -- "no" are true in Lua, and would reprocess, reset or preview.
  for _, k in ipairs(SWITCHES) do
    local v = opts[k]
    if v ~= nil and type(v) ~= "boolean" then
      error(fmt("app %s: %s must be true or false, got %s", app.name, k,
                type(v)), level + 1)
    end
  end
  for k, v in pairs(opts) do
    if type(k) == "string" and k:match("^on_") and v ~= false
       and type(v) ~= "function" then
      error(fmt("app %s: %s must be a function, got %s", app.name, k,
                type(v)), level + 1)
    end
  end
  check_limit("app " .. app.name, "max_inflight", opts.max_inflight,
              level + 1)
  check_limit("app " .. app.name, "jobs", opts.jobs, level + 1)
  if opts.jobs ~= nil and opts.jobs > M.MAX_JOBS then
    error(fmt("app %s: jobs must be at most %d", app.name, M.MAX_JOBS),
          level + 1)
  end
  check_limit("app " .. app.name, "batch_size", opts.batch_size, level + 1)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if o.max_inflight == nil then o.max_inflight = app.max_inflight end
  return o
end


-- The engine (core.engine_new, lengine.c) that keeps this app's session
-- with the store at db: made by the first update and kept, so that the
-- next updates reuse the open store, the loop and the index. An app a C
-- host loaded (tide_engine_load) has its host's engine. loop: the luv
-- module, whose loop the engine is made on (the first update only).
local function engine_for(app, db, loop, shared)
  local bound = app.engine
  if bound then
    if db ~= nil and db ~= bound:db() then
      return nil, fmt("app %s runs on the engine of its host, whose store "
                       .. "is %s: it cannot update %s", app.name,
                       core.store_public(bound:db()) or "elsewhere",
                       core.store_public(db) or "another store")
    end
    if loop ~= nil then
      return nil, fmt("app %s runs on the engine of its host, and on its "
                      .. "host's loop: it cannot take another", app.name)
    end
    return bound
  end
  local cwd = assert(core.getcwd())
  db = db or ".tide/state.db"
  local abs = (db:sub(1, 1) == "/" or core.store_is_postgres(db)) and db
    or (cwd .. "/" .. db)
  -- A worker's engine writes without the writer lock: not the lead's.
  local key = shared and abs .. "\0worker" or abs
  local e = app.engines[key]
  if e then
    if loop ~= nil and app.luv_of[e] ~= loop then
      return nil, fmt("app %s: the loop option is for the first update "
                      .. "of a store: its engine for %s runs on %s already",
                      app.name, abs, app.luv_of[e] and "another loop"
                      or "a loop of its own")
    end
    return e
  end
  local luv_loop, err, code
  if loop ~= nil then
    if type(loop) ~= "table" or loop ~= package.loaded.luv then
      return nil, fmt("app %s: the loop option takes the luv module "
                      .. "(require \"luv\")", app.name)
    end
    luv_loop, err = core.luv_loop()
    if not luv_loop then return nil, fmt("app %s: %s", app.name, err) end
  end
  e, err, code = core.engine_new { base = cwd, db = abs, loop = luv_loop,
                                  shared = shared }
  if not e then return nil, err, code end
  app.engines[key] = e
  app.luv_of[e] = loop
  return e
end

-- A cycle runs the engine's loop: not from inside a run of the same loop
-- (a callback of luv's uv.run when the app shares luv's loop, or, for a
-- step or a stop, of the run a live step makes: stepped is the live
-- session), which libuv does not allow. Returns a message saying so, or
-- nil.
local function inside_loop(app, e, what, stepped)
  local luv = app.luv_of[e]
  if luv and (luv.loop_mode() or stepped and stepped:busy()) then
    return fmt("app %s: %s from inside a run of luv's loop: the app runs "
      .. "on luv's loop, which cannot be run again from one of its "
      .. "callbacks; call it between runs of the loop (uv.run(\"nowait\") "
      .. "in a loop of your own)", app.name, what)
  end
end

-- Runs one cycle on the app's engine: fn(parts) between the engine's
-- cycle_begin and cycle_end, parts = { engine, store, index, loop, sched }.
-- Returns what fn returns, or nil, message, code when the cycle could not
-- run or raised (what it wrote to the store is then rolled back). With
-- counted, fn's first result is the run's stats, which the engine keeps
-- as the last cycle's counts (tide_engine_stats).
local function cycle(app, opts, fn, counted)
  if M.in_worker then
    -- Definition mode (worker.lua): a worker loads the pipeline only to
    -- define its functions.
    error(fmt("app %s does not run in a tide worker", app.name), 3)
  end
  local e, err, code = engine_for(app, opts.db, opts.loop,
                                  opts.share and opts.share.role == "worker")
  if not e then return nil, err, code end
  err = inside_loop(app, e, "an update")
  if err then return nil, err end
  local store, index, loop, sched, reopened = e:cycle_begin()
  if not store then
    err, code = index, loop
    e:fail(err)
    return nil, err, code
  end
  local results = table.pack(pcall(fn, { engine = e, store = store,
                                         index = index, loop = loop,
                                         sched = sched,
                                         reopened = reopened }))
  if not results[1] then
    local raised = results[2]
    pcall(store.rollback, store)
    runmod.close_target_connections()
    e:cycle_end()
    local message = engine.clean_message(type(raised) == "table"
      and raised.message or tostring(raised))
    e:fail(message)
    return nil, message, type(raised) == "table" and raised.code or nil
  end
  local fine, end_err, end_code = e:cycle_end(counted and results[2] or nil)
  if not fine then
    e:fail(end_err)
    return nil, end_err, end_code
  end
  return table.unpack(results, 2, results.n)
end

-- Runs the app once. Returns the stats table and the list of component
-- errors ({ path, message }), or nil and a message (and a code name such
-- as "locked") when the run could not happen (the store cannot be opened
-- or is locked, main failed). stats.interrupted is true when a stop (a
-- signal the tide command traps, see lsignal.c) ended the run early,
-- after committing what completed.
function App:update(opts)
  opts = check_options(self, opts, 2)
  if opts.live then return self:live(opts) end
  for k in pairs(LIVE_OPTIONS) do
    if opts[k] ~= nil then
      error(fmt("app %s: option %s is for live mode (live = true, or "
                .. "app:start_live)", self.name, k), 2)
    end
  end
  return self:cycle(opts)
end

-- What live mode runs on (live.lua): the engine, the cycle function
-- (update(changes, emits): one cycle that walks only the file changes
-- given and processes only what live sources emitted, nil for every
-- folder and source whole), what cycles saw, and the hooks. nil, message, code
-- when it cannot run.
local function live_parts(app, opts, level)
  if opts.preview or opts.verify then
    return nil, "live mode cannot preview or verify: it writes as it goes"
  end
  local rescan = opts.rescan or live.DEFAULT_RESCAN
  if type(rescan) ~= "number" or rescan <= 0 then
    error(fmt("app %s: rescan must be a positive number of seconds",
              app.name), level + 1)
  end
  local e, err, code = engine_for(app, opts.db, opts.loop)
  if not e then return nil, err, code end
  local seen = {}
  local folders, why = live.folders(e:loop(),
                                   opts.on_message or function() end)
  if not folders then return nil, why end
  -- live_walks: what each folder's last walk was (engine.lua,
  -- mount_each_walk), so that the next walks only what changed;
  -- watch_folder watches a folder before a walk lists it, watch_file a
  -- file before a source reads it.
  local cycle_opts = { live_cycle = true, live_walks = {},
                       watch_folder = folders.add,
                       watch_file = folders.add_file }
  for k, v in pairs(opts) do
    if k ~= "live" then cycle_opts[k] = v end
  end
  -- Only the first cycle reprocesses in full: the others answer changes.
  local function update(changes, emits)
    local by_dir
    if changes then
      by_dir = {}
      for _, c in ipairs(changes) do
        local list = by_dir[c.dir]
        if c.path == nil then
          by_dir[c.dir] = true
        elseif list ~= true then
          if not list then
            list = {}
            by_dir[c.dir] = list
          end
          list[#list + 1] = c.path
        end
      end
    end
    cycle_opts.live_changes = by_dir
    cycle_opts.live_emits = emits
    if opts.on_cycle_start then opts.on_cycle_start() end
    local stats, errors, c = app:cycle(cycle_opts, seen)
    -- A host stepping live mode (tide_engine_step) finds a component's
    -- failure on the engine, as after tide_engine_update: the stats only
    -- count it.
    if stats and errors and errors[1] then
      e:fail(errors[1].path .. ": " .. errors[1].message)
    end
    -- (A catch-up that could not run is tried again as it was asked.)
    if stats then cycle_opts.full_reprocess, cycle_opts.reset = nil, nil end
    -- Only the walks and live sources of a cycle that finished are known
    -- to the next.
    local finished = stats and not stats.interrupted
    cycle_opts.live_walks = finished and seen.walks or {}
    cycle_opts.live_watched = finished and seen.watched or {}
    return stats, errors, c
  end
  local code_files = opts.code_files
  if code_files ~= nil then
    local ok = type(code_files) == "table"
    for _, path in ipairs(ok and code_files or {}) do
      ok = ok and type(path) == "string" and path:sub(1, 1) == "/"
    end
    if not ok then
      error(fmt("app %s: code_files must be a list of absolute paths",
                app.name), level + 1)
    end
  end
  return e, update, seen, {
    on_cycle = opts.on_cycle or function() end,
    on_message = opts.on_message, on_watching = opts.on_watching,
    rescan = rescan, folders = folders, code_files = code_files,
  }
end

-- Live mode (live.lua): a catch-up cycle, then a cycle per batch of file
-- changes, until a trapped signal or opts.on_cycle returns false.
function App:live(opts)
  local e, update, seen, hooks = live_parts(self, opts, 2)
  if not e then return nil, update, seen end
  local results = table.pack(pcall(live.run, e, update, seen, hooks))
  runmod.end_live_targets()
  if not results[1] then error(results[2], 0) end
  return table.unpack(results, 2, results.n)
end

-- The apps a host steps (tide.step): weak, so that an app dropped by its
-- host is not kept.
M.stepped = setmetatable({}, { __mode = "k" })

-- Live mode in the host's own loop: a catch-up cycle now, then
-- app:step(budget_ms) (or tide.step for every such app) advances it by at
-- most about that much work, and app:stop() ends it. Returns the
-- catch-up's stats and errors, or nil, message, code.
function App:start_live(opts)
  opts = check_options(self, opts, 2)
  if self.live_session then
    -- (The code name is what tide_engine_live_start turns into
    -- TIDE_EINVAL: a host's misuse, not an error in its Lua code.)
    return nil, fmt("app %s is live already", self.name), "invalid"
  end
  local e, update, seen, hooks = live_parts(self, opts, 2)
  if not e then return nil, update, seen end
  local stats, errors, code = update()
  if not stats then
    live.close(e, hooks.folders)
    runmod.end_live_targets()
    return nil, errors, code
  end
  hooks.on_cycle(stats, errors, nil)
  self.live_session = live.start(e, update, seen, hooks, stats)
  self.live_engine = e
  M.stepped[self] = true
  return stats, errors
end

-- One step of the live app a; false once it ended (an error in a cycle
-- raises). [level: the caller's, for misuse]
function M.step(a, budget_ms, level)
  local session = a.live_session
  if not session then error(fmt("app %s is not live", a.name), level + 1) end
  local busy = inside_loop(a, a.live_engine, "a step", session)
  if busy then error(busy, level + 1) end
  return session:step(budget_ms)
end

function App:step(budget_ms)
  if type(budget_ms) ~= "number" or budget_ms < 0 then
    error("app:step: budget_ms must be a number of milliseconds", 2)
  end
  return M.step(self, budget_ms, 2)
end

-- Ends live mode: the cycle under way finishes and commits. Returns the
-- last cycle's stats and errors.
function App:stop()
  local session = self.live_session
  if not session then return nil, fmt("app %s is not live", self.name) end
  local busy = inside_loop(self, self.live_engine, "a stop", session)
  if busy then error(busy, 2) end
  self.live_session, self.live_engine = nil, nil
  M.stepped[self] = nil
  local results = table.pack(pcall(session.stop, session))
  runmod.end_live_targets()
  if not results[1] then error(results[2], 0) end
  return table.unpack(results, 2, results.n)
end

-- One catch-up cycle. seen (a table, may be nil) receives what live mode
-- follows: seen.walked, the folders the cycle listed (absolute path ->
-- fs.walk), seen.refresh, the shortest auto_refresh period, if any,
-- seen.walks, what each of its walks was, seen.watched, the sources
-- with a watch function it mounted (base path -> { source, signature },
-- engine.lua), seen.own, the files and folders tide itself writes
-- (absolute paths: Run:own_paths), and seen.walks_at, the walks listed at
-- each folder: events on what they leave out start no cycle.
function App:cycle(opts, seen)
  local stats, errors, code = cycle(self, opts, function(parts)
    local run = runmod.new(self, opts, parts)
    local results = table.pack(run:execute())
    if seen then
      seen.walked, seen.refresh = run.walked, run.refresh_every
      seen.walks = run.walks_now
      seen.watched = run.watched_now
      seen.own = run:own_paths()
      -- Kept over the session: a walk checked in an earlier cycle only
      -- (its verdict warm since) still decides for its folder's events.
      local at = seen.walks_at or {}
      for abs, walks in pairs(run.walks_at) do
        at[abs] = at[abs] or {}
        for key, walk in pairs(walks) do at[abs][key] = walk end
      end
      seen.walks_at = at
    end
    return table.unpack(results, 1, results.n)
  end, true)
  if not stats then return nil, errors, code end
  for _, e in ipairs(errors) do
    -- A stop may have interrupted main: the run still committed.
    if e.path == "" and e.kind == nil and not stats.interrupted then
      local message = "main of app " .. self.name .. " failed: " .. e.message
      -- The cycle ran on this engine: its host reads the message there.
      engine_for(self, opts.db, nil,
                 opts.share and opts.share.role == "worker"):fail(message)
      return nil, message, stats
    end
  end
  return stats, errors
end

-- The path of the SQLite store file at db when it is not there and no
-- session of the app has it open; else nil.
local function absent_store(app, db)
  db = db or ".tide/state.db"
  if app.engine or core.store_is_postgres(db) then return nil end
  local abs = db:sub(1, 1) == "/" and db or (assert(core.getcwd()) .. "/"
                                              .. db)
  if app.engines[abs] or core.exists(abs) then return nil end
  return abs
end

-- Runs every component without writing anything and compares every
-- target with what the store says it holds (tide.verify); with
-- opts.repair, writes back what drifted. Returns the report (a list per
-- container) and the component errors, or nil and a message.
function App:verify(opts)
  local repair = opts and opts.repair
  local o = {}
  for k, v in pairs(opts or {}) do if k ~= "repair" then o[k] = v end end
  o = check_options(self, o, 2, VERIFY_OPTIONS)
  o.verify, o.repair = true, repair
  -- Verify compares the targets with what an update recorded: with no
  -- record there is nothing to compare, which must not read as "in step"
  -- (a mistyped --db would pass), nor make an empty store.
  local absent = absent_store(self, o.db)
  if absent then
    return nil, fmt("%s: no such state store: nothing to verify (run tide "
                    .. "update first)", core.store_public(absent) or absent)
  end
  local report, errors = cycle(self, o, function(parts)
    if not parts.store:app(self.name, false) then return false end
    local run = runmod.new(self, o, parts)
    run:execute()
    return run.verify_report, run.errors
  end)
  if report == false then
    return nil, fmt("nothing to verify: app %s has no state in %s (run tide "
                    .. "update first)", self.name,
                    core.store_public(o.db or ".tide/state.db") or "its store")
  end
  if not report then return nil, errors end
  for _, e in ipairs(errors) do
    if e.path == "" and e.kind == nil then
      return nil, "main of app " .. self.name .. " failed: " .. e.message
    end
  end
  return report, errors
end

-- Binds the app to an engine a C host made (host.c, tide_engine_load).
-- A pipeline (named name) that returned something else is the user's
-- mistake, said as the tide command says it: nil, message.
function M.attach(app, e, name)
  if not M.is_app(app) then
    return nil, fmt("%s must return an app (return tide.app(...)), got %s",
                    name, type(app))
  end
  app.engine = e
  return true
end

-- Closes the app's sessions: their stores and loops. The app can update
-- again (it opens a new session).
function App:close()
  for db, e in pairs(self.engines) do
    e:close()
    self.engines[db] = nil
  end
end

-- Deletes every target state the app owns and drops its containers, then
-- forgets the app. Returns the number of target states deleted.
function App:drop(opts)
  opts = check_options(self, opts, 2, DROP_OPTIONS)
  return cycle(self, opts, function(parts)
    local store = parts.store
    local deleted = 0
    local app_id = store:app(self.name, false)
    if not app_id then return 0, false end
    local owner = runmod.owner(store, self.name)
    local dropped = {}
    local containers = store:containers(app_id)
    -- Before a target is touched, every state becomes unknown, in a commit
    -- of its own: a kill during the deletions leaves states the store
    -- would otherwise call applied, and the next update, which trusts
    -- them, would carry over components whose rows and files are gone.
    -- Unknown, their owners run again and write them back (a drop run
    -- again deletes them all the same).
    for _, row in ipairs(containers) do
      store:targets_mark_unknown(row.id)
    end
    store:flush()
    for _, row in ipairs(containers) do
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
        dropped[#dropped + 1] = { type = tt, spec = spec,
                                  made = target.folders_made(row.state) }
      end
      store:container_delete(row.id)
    end
    -- Before the commit that forgets them (a kill in between leaves them
    -- to the next drop); one that cannot be removed (a permission) is
    -- said after it, the app dropped all the same.
    runmod.close_target_connections()
    local ok, err = target.remove_made_folders(dropped)
    store:app_delete(app_id)
    store:flush()
    if not ok then
      error(fmt("app %s dropped, but a folder made for its targets could "
                .. "not be removed: %s", self.name, err), 0)
    end
    return deleted, true
  end)
end

return M
