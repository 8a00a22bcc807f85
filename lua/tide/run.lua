-- One run of an app: opening the store, recovering from a crash, running
-- the root component, deleting what is no longer mounted, collecting
-- unreachable memo entries and logging the run. Also `drop`.
local core = require "tide.core"
local fnmod = require "tide.fn"
local target = require "tide.target"
local sched = require "tide.sched"
local engine = require "tide.engine"
local reconcile = require "tide.reconcile"
local verify = require "tide.verify"
local sharemod = require "tide.share"
local depsmod = require "tide.deps"

local type, error, pairs, ipairs, tostring, setmetatable, pcall, rawget,
      next = type, error, pairs, ipairs, tostring, setmetatable, pcall,
      rawget, next
local fmt, concat = string.format, table.concat
local encode, decode = core.cbor_encode, core.cbor_decode

local M = {}

local Run = {}
Run.__index = Run

local function auto_tables()
  return setmetatable({}, { __index = function(t, k)
    local v = {}
    t[k] = v
    return v
  end })
end

local now_ms = core.now_ms

local function new_stats(app)
  return {
    app = app.name, elapsed_ms = 0,
    components = { added = 0, reprocessed = 0, deleted = 0, unchanged = 0,
                   errors = 0 },
    targets = { inserted = 0, updated = 0, deleted = 0 },
    functions = {},
  }
end

-- parts: the engine's { engine, store, index, loop, sched } for this
-- cycle.
function M.new(app, opts, parts)
  local store = parts.store
  local run = setmetatable({
    app = app, opts = opts, store = store, engine = parts.engine,
    loop = parts.loop, sched = parts.sched,
    stats = new_stats(app), fns = {},
    forced = {}, index = parts.index, deps_checked = false,
    reopened = parts.reopened, -- another connection wrote the store
    list_whole = false, -- a container is gone (find_gone_containers)
    released = auto_tables(), taken = auto_tables(),
    held = {}, -- owners of taken states held open (reconcile.lua)
    taken_under = {}, -- their paths by their ancestors' (reconcile.lua)
    lost0 = store:batches_lost(), -- the store's lost batches before it
    read_ahead = {}, -- components about to run again (reconcile.will_run)
    -- Reads that cross a connection are grouped (sched.gather): the
    -- groups open now, of target states and of memo entries.
    remote_store = store:backend() == "postgresql", rows_wave = nil,
    memo_wave = nil,
    -- Who declared each (container, key), and the paths mounted
    -- (lclaims.c).
    claims = core.claims_new(),
    containers = {}, containers_id = {}, stored_containers = {},
    batch = {}, batch_size = opts.batch_size or 256,
    flushing = false, flush_queue = sched.line(),
    memo_hits = core.memo_cache_new(), memo_extra = {}, memo_candidates = {},
    in_flight = {}, -- memo key -> the task computing it (engine.lua)
    flight_lines = {}, -- memo key -> the tasks waiting for it
    memo_stored = {},
    call_states = {}, -- tide.fn -> its calls' limit and batch queue (calls.lua)
    file_sources = {}, -- walked folder -> its file-state source name
    walked = {}, -- absolute folder -> the fs.walk a component listed (live mode)
    walk_fps = {}, -- walk dependency key -> its listing's fingerprint
    own_globs = setmetatable({}, { __mode = "k" }), -- fs.walk -> its
      -- exclude set with tide's own files (fs.lua)
    source_file_fps = {}, -- a file a source read -> its stat (file_listed)
    walks_now = {}, -- what each walk of this cycle was (live mode)
    walks_at = {}, -- absolute folder -> { dependency key -> fs.walk }
    watched_now = {}, -- the live sources it mounted (live mode)
    fstats = setmetatable({}, { __mode = "k" }), context = {}, context_by_name = {},
    apply_failed = {}, retry = {}, retry_order = {}, shrunk = {},
    declared_ids = {}, gone = {},
    source_items = {},
    context_fps = {}, errors = {}, on_error = opts.on_error,
    on_preview = opts.on_preview,
  }, Run)
  for key, value in pairs(app.context or {}) do
    run.context[key] = value
    run.context_by_name[key.name] = value
  end
  -- A reset trusts nothing it remembers (memo entries, file
  -- fingerprints): every component runs and every file is read again.
  -- What tide wrote stays recorded, so that whatever is no longer
  -- declared is deleted and the targets end as a clean run's.
  if opts.reset then opts.full_reprocess = true end
  -- A verify run is a preview in which every component runs.
  if opts.verify then
    opts.preview = true
    run.verified, run.verify_out_of_date = {}, 0
  end
  run.app_id = store:app(app.name, true)
  -- A shared update (share.lua): opts.share = { role = "lead" | "worker",
  -- update_id (a worker's), lease_ms, starting (the lead's: whether
  -- workers it started may still join), ended (the lead's: the pids of
  -- those that ended badly since it last asked), stop_workers (the
  -- lead's: stops those it started and waits for them), notice (the
  -- lead's: says what a user should hear of) }.
  if opts.share then
    run.share = {
      role = opts.share.role, update_id = opts.share.update_id,
      lease_ms = opts.share.lease_ms or sharemod.LEASE_MS,
      starting = opts.share.starting, on_open = opts.share.on_open,
      ended = opts.share.ended, notice = opts.share.notice,
      stop_workers = opts.share.stop_workers,
      wait_s = opts.share.wait_s, bases = {}, base_calls = {},
      fresh = {},
      -- A worker in live mode: updates one after another (after: the
      -- last it joined), heard of through the store's notifications.
      live = opts.share.live, after = opts.share.after,
      failed_items = {}, per_worker = {},
      -- A live session's lead: the paths of the items it handed out
      -- (M.delegate), until too many to read again one subtree each.
      delegated = opts.live_cycle and opts.share.role == "lead" and {}
        or false,
      -- A worker's items that its end finishes (share.finish_later).
      ran_items = {},
      -- The counts a worker sent the store so far (share.send_counts);
      -- the lead's own rows among the workers' (share.lua, lead_round).
      sent = {}, lead_rows = {},
      -- A worker's intents whose changes it applied in full (reconcile).
      applied_intents = {},
      after_main = opts.share.role == "lead" and sharemod.lead
        or function(r) sharemod.work(r, r.share.worker_id) end,
    }
    -- A worker records its items in small batches: what it finished is
    -- done for all to see, and not redone if it dies.
    if run.share.role == "worker" then
      run.batch_size = math.min(run.batch_size, sharemod.BATCH)
    end
  end
  run.owner = M.owner(store, app.name)
  if opts.preview then store:set_batch_limits(1 << 62, 1 << 62) end
  -- The memo cache answers hits unless every body must run again.
  if not opts.full_reprocess then run.memo_probe = run.memo_hits end
  for _, f in pairs(fnmod.registry) do f:forget_logic() end
  for _, f in pairs(app.fns_seen) do f:forget_logic() end
  app.root_fn:forget_logic()
  return run
end

-- ---- What the store remembers ----

function Run:load()
  local store, app_id = self.store, self.app_id
  if sharemod.is_worker(self) then
    -- A worker's index holds what is below the items it claims, read as
    -- it claims them (Run:load_under), not the app's whole index.
    self.index:scope()
  else
    -- The index loads on a thread of its own while main runs and its
    -- walks list their folders; whatever reads it first waits for it.
    self.index:load(store, app_id)
  end
  for _, c in ipairs(store:containers(app_id)) do
    self.stored_containers[c.id] = c
  end
  self:find_gone_containers()
end

-- Each distinct set of dependencies the index holds is checked once,
-- before the first verdict that trusts it (index:walk, index:carry,
-- index:each); until then no component is carried over on it. The index
-- of a session stays warm from cycle to cycle, and so do its verdicts,
-- but for the sets that hold a folder listed or a source's file read:
-- those may change between two cycles, and every cycle checks them.
function Run:index_ready()
  if self.deps_checked then return end
  self.deps_checked = true
  self:check_volatile_deps()
  self:check_deps()
end

-- Whether deps can change between the cycles of a session.
local function volatile(deps)
  return deps.walks ~= nil or deps.files ~= nil
end

-- Checks the dependency sets the index holds that are not checked yet.
function Run:check_deps()
  local store, app_id, index = self.store, self.app_id, self.index
  local kept = self.app.volatile_deps
  for _, d in ipairs(index:deps(true)) do
    local row = store:component(app_id, d[2])
    local state = row and row.state and decode(row.state)
    local deps = state and state.deps or {}
    if kept and volatile(deps) then kept[d[1]] = deps end
    index:set_deps_valid(d[3], state ~= nil
                         and depsmod.valid(self, deps))
  end
end

-- Checks again the sets an earlier cycle of the session said valid or
-- not that can have changed since.
function Run:check_volatile_deps()
  local kept, index = self.app.volatile_deps, self.index
  if not kept or next(kept) == nil then return end
  for _, d in ipairs(index:deps(false)) do
    local deps = kept[d[1]]
    if deps then index:set_deps_valid(d[3], depsmod.valid(self, deps)) end
  end
end

-- A worker's index: what the store remembers at each of paths and below
-- (the items it claimed, a use_mount of main's), read before they mount,
-- its new dependency sets checked; the owners of the states a crash left
-- unknown that it now holds are forced (M.work, share.lua).
function Run:load_under(paths)
  self.index:load_under(self.store, self.app_id, paths)
  self:check_deps()
  for _, path in ipairs(self.crash_owners or {}) do self:force(path) end
end

-- A container removed by hand (a database deleted, a table dropped, a
-- folder removed) is found before anything runs: whoever declared it and
-- every owner of a state in it run again, so that it is declared (and
-- then recreated and refilled, see setup_container) even when they would
-- have been carried over. Found again by every run until it is made.
function Run:find_gone_containers()
  for id, c in pairs(self.stored_containers) do
    local tt = c.spec and not target.setup_pending(c.state)
               and target.type_named(c.kind)
    if tt and tt.exists then
      local ok, spec = pcall(decode, c.spec)
      local fine, present = pcall(tt.exists, ok and spec or nil)
      if ok and fine and not present then
        self.gone[id] = true
        -- A live cycle then lists every source whole: the owners it forces
        -- run again although no file of theirs changed.
        self.list_whole = true
        local owner = self:path_of(c.owner_id)
        if owner then self:force(owner) end
        for _, path in ipairs(self.store:target_owners(id)) do
          self:force(path)
        end
      end
    end
  end
end

-- Fills a row prev_row made with the rest of what the store recorded.
local function read_rest(run, prev)
  setmetatable(prev, nil)
  local row = run.store:component(run.app_id, prev.path)
  if not row then return nil end
  for k, v in pairs(row) do
    if rawget(prev, k) == nil then prev[k] = v end
  end
  return row
end

-- The metatable of prev_row's rows: the first field they lack reads the
-- whole row, and then they lack nothing.
local function prev_rest(run)
  return { __index = function(prev, field)
    local row = read_rest(run, prev)
    return row and row[field]
  end }
end

-- What the store remembers of the component at path, or nil: its id,
-- status and fingerprints as the index loaded them (a row nothing in this
-- run has written yet), and the rest of its row (its function's name, its
-- state, its error) read from the store when first asked for. A component
-- that runs again because its input changed never needs the rest: reading
-- it would wait for the store's writer (store_sqlite_queue.c).
function Run:prev_row(path)
  local prev = self.index:prev(path)
  if not prev then return nil end
  local rest = self.prev_rest
  if not rest then
    rest = prev_rest(self)
    self.prev_rest = rest
  end
  return setmetatable(prev, rest)
end

-- Keeps what a failure needs of a component's previous row before the run
-- records the component anew: a failure after that (its apply) records
-- the previous row again (record_failure: the index's fingerprints and
-- the state), which the store then no longer holds. Only the state is
-- kept, from states ({ [row id] = state }: store:components_before, which
-- the batch reads for all its components at once); the row stops reading
-- the rest, which would now be the new row's.
function Run:keep_prev_row(frame, states)
  local prev = frame.prev
  if prev and getmetatable(prev) == self.prev_rest then
    setmetatable(prev, nil)
    prev.state = states[prev.id]
  end
end

-- The path of the component with row id id (asked rarely: conflicts,
-- containers' owners, recovery): the store's, else, for one this run
-- deleted, the index's. The run keeps no table of the paths it recorded,
-- and the index makes its map by id only when the store cannot answer.
function Run:path_of(id)
  return self.store:component_path(id) or self.index:path_of(id)
end

-- "none", "unchanged", "ran" or "failed" for a component of the previous
-- run, nil for a new one.
function Run:seen(path) return self.index:seen(path) end
function Run:mark(path, state) self.index:mark(path, state) end

-- Marks a carried-over component and every component below it as alive.
function Run:keep_subtree(path) return self.index:keep_subtree(path) end

-- Forces a component and its ancestors to run again.
function Run:force(path)
  while path and path ~= "" do
    self.forced[path] = true
    self.index:force(path)
    path = path:match("^(.*)/[^/]*$")
  end
end

-- Pending states are what a crash left to do (see reconcile.lua): an
-- upsert that may or may not have reached the target becomes UNKNOWN, and
-- the owner of every UNKNOWN state runs again, in this run and in every
-- run until it has written it (the state itself is the durable record of
-- that); a delete and a release are done again.
function Run:recover()
  local store = self.store
  -- A batch whose apply a crash interrupted: each state it names that is
  -- recorded applied may not be in the target; it becomes UNKNOWN, and
  -- its owner runs again (below).
  for _, intent in ipairs(store:intents(self.app_id)) do
    local cid = intent.container_id
    for _, kb in ipairs(decode(intent.keys) or {}) do
      local row = store:target(cid, kb)
      if row and row.pending == reconcile.APPLIED then
        store:target_put(cid, kb, row.owner_id, nil, reconcile.UNKNOWN)
      end
    end
    store:intent_delete(intent.id)
  end
  for _, row in ipairs(store:targets_pending(self.app_id)) do
    local p = row.pending
    if p == reconcile.PENDING_UPSERT or p == reconcile.UNKNOWN then
      if p == reconcile.PENDING_UPSERT then
        store:target_put(row.container_id, row.key, row.owner_id, nil,
                         reconcile.UNKNOWN)
      end
      local path = self:path_of(row.owner_id)
      if path then self:force(path) end
    else
      self.released[row.container_id][row.key] = true
    end
  end
  -- A run that never finished may have left partial writes in targets
  -- (a temporary file); each target type that can clean them up does.
  if self.crashed then self:clean_up_targets() end
  if not self.opts.preview then store:flush() end
end

-- What a process that died in a target's apply may have left there (a
-- temporary file) is removed by each target type that can: after a run
-- that never finished, and at the end of a shared update one of whose
-- workers died (share.lua).
function Run:clean_up_targets()
  if self.opts.preview then return end
  local ids = {}
  for id in pairs(self.stored_containers) do ids[id] = true end
  for id in pairs(self.containers_id) do ids[id] = true end
  for id in pairs(ids) do
    local ok, c = pcall(self.container_by_id, self, id)
    if ok and c.type.recover then
      local fine, err = pcall(c.type.recover, c.spec)
      if not fine then
        self:report_error(c.short, "cleaning up " .. c.short .. " after "
                          .. "a crash failed: " .. tostring(err), "target")
      end
    end
  end
end

-- ---- Containers ----

-- What tide writes in this run, as absolute paths, which no walk lists
-- (fs.lua): the state store's files (SQLite's), and the files and
-- folders of the targets declared so far whose type names them
-- (own_files(spec)).
function Run:own_paths()
  local paths = {}
  local function add(path)
    paths[#paths + 1] = core.fs_abspath(path) or path
  end
  local store = self.store:path()
  if store:sub(1, 1) == "/" then
    for _, side in ipairs { "", "-wal", "-shm", "-journal", "-lock" } do
      add(store .. side)
    end
  end
  -- The containers of earlier runs too: a target a component declares
  -- after (or below) the walk that would list it is known from the start.
  for _, c in pairs(self.containers) do
    local own = c.type.own_files
    if own then
      for _, path in ipairs(own(c.spec)) do add(path) end
    end
  end
  for _, c in pairs(self.stored_containers) do
    local tt = c.spec and target.type_named(c.kind)
    if tt and tt.own_files then
      local ok, spec = pcall(decode, c.spec)
      local fine, list = pcall(tt.own_files, ok and spec or nil)
      if ok and fine and type(list) == "table" then
        for _, path in ipairs(list) do
          if type(path) == "string" then add(path) end
        end
      end
    end
  end
  return paths
end

function Run:container(tt, spec, frame, level)
  local identity = tt.identity(spec)
  local ckey = tt.name .. "\0" .. identity
  local c = self.containers[ckey]
  if c then
    frame.declared_containers = frame.declared_containers or {}
    frame.declared_containers[c] = true
    return c
  end
  local spec_bytes = encode(spec, tt.name .. " spec")
  -- Main's containers are the lead's to make (share.lua); a component's
  -- are made by the process that runs it, as always.
  if self.share and frame.is_root then
    sharemod.await_container(self, tt, spec, identity, spec_bytes)
  end
  local row, created = self.store:container(self.app_id, tt.name, identity)
  local short = tt.short_name(spec)
  -- key_what and value_what name a declared key and value in messages:
  -- made once, not for every declaration.
  c = { id = row.id, type = tt, kind = tt.name, identity = identity,
        short = short, spec = spec, spec_bytes = spec_bytes,
        owner_id = row.owner_id,
        -- Made in this run, or in the shared update a worker joined (the
        -- lead says which): no state is in it yet.
        fresh = created or (self.share ~= nil and self.share.fresh[row.id]
                            == true),
        key_what = short .. " key", value_what = short .. " value" }
  if not self.opts.preview then
    self:setup_container(tt, spec, c, row)
  elseif row.spec and row.spec ~= spec_bytes then
    -- What a setup would do is the target's to find out (a table
    -- altered in place, or made again and refilled by every component
    -- that wrote to it), which a preview must not do: it says so rather
    -- than count the components as unchanged and nothing more.
    self:preview(c, {}, "setup")
  end
  -- A target whose writes cost much per batch (a database round trip)
  -- asks for bigger ones, unless the run was given a size.
  if tt.batch_size and not self.opts.batch_size
     and tt.batch_size > self.batch_size then
    self.batch_size = tt.batch_size
  end
  self.containers[ckey] = c
  self.containers_id[c.id] = c
  self.declared_ids[c.id] = true
  if self.share then sharemod.finish_later(self, frame) end
  frame.declared_containers = frame.declared_containers or {}
  frame.declared_containers[c] = true
  return c
end

-- How many of dir and its parents are not there: the folders a setup
-- that makes dir (mkdir -p) will make.
local function missing_folders(dir)
  local n = 0
  while dir and not core.exists(dir) do
    n = n + 1
    dir = dir:match("^(.*[^/])/+[^/]+/*$")
  end
  return n
end

-- Sets the container up when its spec changed, a setup was interrupted,
-- or it is gone from the target (a deleted database, a dropped table, a
-- removed folder). When what it held did not survive, every state in it
-- becomes UNKNOWN and its owners run again to fill it: recorded, so that a
-- crash before they ran still leaves the instruction.
function Run:setup_container(tt, spec, c, row)
  local prev_spec = row.spec and decode(row.spec) or nil
  local interrupted = target.setup_pending(row.state)
  local made = target.folders_made(row.state)
  c.made = made
  -- Looked for once, when the run started (find_gone_containers).
  local gone = self.gone[row.id] and row.spec == c.spec_bytes or false
  if row.spec == c.spec_bytes and not interrupted and not gone then return end
  -- A container this run makes is unmade if main fails (finish_deletions):
  -- a run that cannot run leaves no table or folder behind.
  if prev_spec == nil and tt.exists then c.made_now = not tt.exists(spec) end
  local store = self.store
  -- The folders it will make are recorded before it runs: a kill after
  -- its mkdir leaves them counted (a setup run again finds them there).
  local missing = tt.folder and missing_folders(tt.folder(spec)) or 0
  store:container_update {
    id = row.id, spec = row.spec, owner_id = row.owner_id,
    state = target.container_state(true, math.max(made, missing)) }
  store:flush()
  local ok, survived, made_now = pcall(tt.setup, spec, prev_spec, self.owner)
  if ok and made_now ~= nil
     and (math.type(made_now) ~= "integer" or made_now < 0) then
    ok, survived = false, fmt("target type %s: setup returned %s as the "
      .. "number of folders it made (expected nil or a count)", tt.name,
      tostring(made_now))
  end
  if not ok then
    -- Refused or failed: as if it had never been tried, the folders it
    -- made removed again (those that stayed empty).
    if missing > 0 then
      target.remove_made_folders { { type = tt, spec = spec, made = missing } }
    end
    store:container_update {
      id = row.id, spec = row.spec, owner_id = row.owner_id,
      state = target.container_state(false, made) }
    store:flush()
    error(survived, 0)
  end
  -- Folders a setup found there are not its own; those it made join the
  -- count (a folder of the chain removed and made again is counted once).
  c.made = math.max(made, missing, made_now or 0)
  -- What it held may be gone (recreated, or a setup a kill interrupted):
  -- every state in it becomes UNKNOWN and its owners run again, recorded
  -- in the same commit that ends the setup.
  if prev_spec ~= nil and (survived == false or gone or interrupted) then
    for _, path in ipairs(store:target_owners(row.id, true)) do
      self:force(path)
    end
    store:targets_mark_unknown(row.id)
  end
  store:container_update {
    id = row.id, spec = c.spec_bytes, owner_id = row.owner_id,
    state = target.container_state(false, c.made) }
  store:flush()
end

-- A container by id: declared this run, or as the store recorded it.
function Run:container_by_id(id)
  local c = self.containers_id[id]
  if c then return c end
  local row = self.stored_containers[id]
  if not row then error(fmt("unknown target container %d", id), 0) end
  local tt = target.type_named(row.kind)
  if not tt then
    error({ tide_fatal = true, code = "type", message = fmt(
      "target type %s (of %s) is not loaded: require the module that "
      .. "defines it in the pipeline", row.kind, row.identity) }, 0)
  end
  local spec = decode(row.spec or "")
  c = { id = row.id, type = tt, kind = row.kind, identity = row.identity,
        short = tt.short_name(spec), spec = spec }
  c.key_what, c.value_what = c.short .. " key", c.short .. " value"
  self.containers_id[id] = c
  return c
end

-- ---- What user code reaches through its frame (no module hooks) ----

-- A tide.fn called inside a component (tide.fn's __call).
Run.call = engine.call

-- The most worker threads a pool holds (lengine.c refuses more).
M.MAX_JOBS = 1024

-- The engine's worker pool for this run's parallel functions (opts.jobs
-- threads, by default one per CPU), started at the first parallel call.
function Run:workers()
  local pool = self.pool
  if not pool then
    -- One per CPU by default, within what the pool can hold.
    local jobs = self.opts.jobs
      or math.min(core.cpu_count(), M.MAX_JOBS)
    pool = self.engine:workers(jobs, package.path, package.cpath)
    self.pool = pool
  end
  return pool
end

-- ---- Memo entries and context ----

-- A stored memo entry, or nil (looked up once per key and run: a valid one
-- joins the run's memo cache, an invalid one is replaced by the call's
-- result). On a store whose reads cross a connection the lookups of the
-- tasks that call at about the same time are read together
-- (sched.gather): a call misses on the key of what was not computed
-- before, which no read ahead can know.
function Run:memo_lookup(key)
  if not self.remote_store or not sched.current() then
    return self.store:memo_get(self.app_id, key)
  end
  local store, app_id, stored = self.store, self.app_id, self.memo_stored
  return sched.gather(self.sched, self, "memo_wave", function(group)
    local keys = group.keys or {}
    group.keys = keys
    keys[#keys + 1] = key
  end, function(group)
    -- A key this run stored while the group gathered is not read: its
    -- caller finds it in the run's memo cache (engine.lua's call). Read,
    -- it would send the batch's memo entries before its commit, which
    -- must send them in one statement (store_pg_bulk.c).
    local keys, n = {}, 0
    for _, k in ipairs(group.keys) do
      if not stored[k] then
        n = n + 1
        keys[n] = k
      end
    end
    group.found = n > 0 and store:memos_of(app_id, keys) or {}
  end).found[key]
end

function Run:memo_store(key, fn_name, value, deps, targets)
  self.store:memo_put(self.app_id, key, fn_name, value, deps, targets)
  self.memo_candidates[key] = true -- collected unless a component uses it
  if self.remote_store then self.memo_stored[key] = true end -- memo_lookup
end

-- What the walk of a dependency key lists now (engine's walk_listed,
-- deps_valid), read once a run: a memoized component carried over on it
-- has its folder watched in live mode, as one that listed it has.
function Run:walk_fp(key)
  local fp = self.walk_fps[key]
  if fp ~= nil then return fp end
  local fs = require "tide.fs"
  local ok, walk = pcall(fs.walk_of, key)
  local watch_folder = self.opts.watch_folder
  if ok and watch_folder and walk.live then -- before it is listed
    watch_folder(walk.abs, walk.follow_symlinks)
  end
  -- A walk a memoized component carried over on is one of the cycle's
  -- walks for live mode's events too (live.lua), as if listed.
  if ok then
    local at = self.walks_at[walk.abs] or {}
    self.walks_at[walk.abs] = at
    at[key] = walk
    self.walked[walk.abs] = self.walked[walk.abs] or walk
  end
  fp = ok and walk:listing_fp(self) or false
  self.walk_fps[key] = fp
  return fp
end

-- A file a source reads, and its log (a database's, or nil), watched in
-- a live cycle (engine's file_listed); the log is not named as watched.
function Run:watch_source_file(path, log)
  local watch_file = self.opts.watch_file
  if not watch_file then return end
  local abs = core.fs_abspath(path)
  if abs then watch_file(abs) end
  abs = log and core.fs_abspath(log)
  if abs then watch_file(abs, true) end
end

-- A file's size, modification time and inode, or "none" (missing or
-- empty: a reader of an SQLite database in WAL mode leaves an empty log
-- behind).
local function stat_fp(path)
  local dir, name = path:match("^(.*)/([^/]+)$")
  local f = core.fs_file(dir or ".", name or path, {})
  return f and f.size > 0 and fmt("%d:%d:%d", f.size, f.mtime_ns, f.inode)
    or "none"
end

-- What a file a source read inside a memoized scope is now, with its log
-- (engine's file_listed, deps_valid): read once a run; in a live cycle
-- it is watched from then on.
function Run:source_file_fp(path, log)
  local fp = self.source_file_fps[path]
  if fp then return fp end
  self:watch_source_file(path, log)
  fp = stat_fp(path) .. (log and "|" .. stat_fp(log) or "")
  self.source_file_fps[path] = fp
  return fp
end

function Run:context_fp(key)
  local name = type(key) == "table" and key.name or key
  local fp = self.context_fps[name]
  if not fp then
    fp = core.fingerprint({ self.context_by_name[name] })
    self.context_fps[name] = fp
  end
  return fp
end

-- ---- Source items: file states ----

-- The content fingerprint (16 raw bytes) of a walked file: the stored one
-- when (size, mtime_ns, inode) are unchanged, else the file is hashed and
-- its new state recorded.
function Run:file_fp(file)
  local dir = file.dir
  local source = self.file_sources[dir]
  if not source then
    source = "fs:" .. dir
    self.file_sources[dir] = source
  end
  local fp = not self.opts.reset and
    self.index:file_fp(self.store, self.app_id, source, file.path,
                       file.size, file.mtime_ns, file.inode)
  if fp then return fp end
  -- What the component read of a file the walk did not read (fs.lua),
  -- what the walk's read-ahead read of it, or the file read now.
  fp = file._walk
  if type(fp) ~= "string" and file._content_fp then
    fp = file._content_fp
    file._walk = fp
  end
  if type(fp) ~= "string" then
    local err
    if (file.size or 0) >= core.large_file then
      fp, err = core.hash_file(file.abs) -- on the pool, in a task
    else
      fp, err = core.fingerprint_file(file.abs, "raw")
    end
    if not fp then error(err, 0) end
    file._walk = fp -- not hashed twice (a reset run asks the index in vain)
  end
  self.index:file_put(self.store, self.app_id, source, file.path, file.size,
                      file.mtime_ns, file.inode, fp)
  return fp
end

-- ---- Errors and previews ----

-- kind is nil for a component's failure, "source" for what a source
-- could not read (path is then where its components are mounted), "left"
-- for a worker that leaves its update early (share.left_why; path "").
-- kind: nil for a component's failure (path is its path; "" for main),
-- "source", "store", "left", or "target" for a target's own (path is its
-- short name, and the message names it: it is no component).
function Run:report_error(path, message, kind)
  message = engine.clean_message(message)
  self.errors[#self.errors + 1] = { path = path, message = message,
                                    kind = kind }
  -- Called where a component's failure is being recorded: an error the
  -- callback raises there would be lost, and the failure not recorded.
  -- The first is kept, and ends the run once its components are done.
  if self.on_error then
    local ok, err = pcall(self.on_error, path, message, kind)
    if not ok and not self.on_error_failed then
      self.on_error_failed = tostring(err)
    end
  end
end

function Run:component_failed(frame, message)
  self.stats.components.errors = self.stats.components.errors + 1
  self:report_error(frame.path, message)
  self:record_failure(frame, message)
end

-- Records a failure in the store (`tide show` lists it). A component
-- that succeeded before keeps its row (id, fingerprints, state), so it
-- keeps owning its target states and children; its status makes it run
-- again next time.
function Run:record_failure(frame, message)
  if self.opts.preview or frame.is_root then return end
  local prev = frame.prev or {}
  local id = self.store:component_put {
    app_id = self.app_id, path = frame.path, fn = frame.fn.name,
    logic = prev.logic, input = prev.input, state = prev.state,
    deps_fp = prev.deps_fp, source_key = frame.source_key,
    status = engine.STATUS_ERROR, error = message,
  }
  -- The memo entries its calls made or hit before it failed stay in use,
  -- beside those of the state it keeps: an embedding paid for is not paid
  -- again while another part of the component fails run after run. (Its
  -- next success records only what it then uses.)
  local cache = self.memo_hits
  for entry in pairs(frame.memos or {}) do
    self.store:memo_ref_add(self.app_id, id, cache:key(entry))
  end
  -- A shared update's item is done, failed: the next update runs it
  -- (unless its batch marked it already: its apply failed).
  if frame.work_item and not frame.item_marked then
    self.store:work_done(frame.work_item, self.share.worker_id)
  end
end

-- what: nil for changes of target states, "setup" (changes empty) for a
-- container whose declaration changed, which an update sets up again.
function Run:preview(container, changes, what)
  if self.on_preview then self.on_preview(container, changes, what) end
end

-- ---- The run ----

-- Removes, once empty, the folders made for the containers just dropped
-- (each with .made: how many its setups made).
function Run:remove_made_folders(dropped)
  local ok, err = target.remove_made_folders(dropped)
  if not ok then
    self:report_error("folders", "removing the folders made for targets "
                      .. "failed: " .. err, "target")
  end
end

-- After main failed: the containers this run made and wrote nothing to
-- are removed again (their record stays, so the next run makes them).
local function unmake_containers(run)
  if run.opts.preview then return end
  local dropped = {}
  for _, c in pairs(run.containers) do
    if c.made_now and #run.store:targets_by_container(c.id) == 0 then
      local ok, err = pcall(c.type.drop, c.spec, run.owner)
      if ok then
        dropped[#dropped + 1] = c
      else
        run:report_error(c.short, "removing " .. c.short .. " failed: "
                         .. tostring(err), "target")
      end
    end
  end
  run:remove_made_folders(dropped)
end

-- How many components going, or states being deleted, are read at once.
local CHUNK = 1024

-- The ids of rows[first .. first + CHUNK - 1] (store rows, with .id).
local function chunk_ids(rows, first)
  local ids = {}
  for i = first, math.min(first + CHUNK - 1, #rows) do
    ids[#ids + 1] = rows[i].id
  end
  return ids
end

-- Components that go (rows: their ids and paths): release(t) for each
-- target state they own, their memo entries become candidates for
-- collection, their references go, and they count as deleted. Read a
-- chunk at a time: on PostgreSQL a statement for their states and one
-- for their references, not two round trips a component. The caller
-- deletes their rows once their states are dealt with.
function Run:let_go(rows, release)
  local store, candidates = self.store, self.memo_candidates
  local components = self.stats.components
  for first = 1, #rows, CHUNK do
    local ids = chunk_ids(rows, first)
    for _, t in ipairs(store:targets_by_owners(ids)) do release(t) end
    local _, refs = store:components_before(ids, true)
    for _, keys in pairs(refs) do
      for _, k in ipairs(keys) do candidates[k] = true end
    end
    for i = first, first + #ids - 1 do
      store:memo_refs_clear(rows[i].id)
      if rows[i].path ~= "" then
        components.deleted = components.deleted + 1
      end
    end
  end
end

-- Deletes the components of rows (store rows, with .id), CHUNK at a
-- time.
function Run:delete_components(rows)
  for first = 1, #rows, CHUNK do
    self.store:components_delete(chunk_ids(rows, first))
  end
end

local function finish_deletions(run)
  local store = run.store
  if run.main_failed then unmake_containers(run) end
  local dead = run.index:unseen()
  local function release(t) run.released[t.container_id][t.key] = true end
  run:let_go(dead, release)
  reconcile.delete_released(run)
  if not run.opts.preview then reconcile.retry_failed(run) end
  run:delete_components(dead)
  reconcile.complete_shrunk(run)
  -- A container is dropped when its owner is gone, or ran again without
  -- declaring it; a carried-over owner still declares it.
  -- It must hold no state any more: components carried over may still
  -- own rows in it.
  local dropped = {}
  for id, row in pairs(run.stored_containers) do
    local owner = run:path_of(row.owner_id)
    local declared = run.declared_ids[id] ~= nil
    local owner_state = owner and run:seen(owner)
    if not declared and row.owner_id ~= 0
       and (owner_state == nil or owner_state == "none"
            or owner_state == "ran")
       and #store:targets_by_container(id) == 0 then
      local c = run:container_by_id(id)
      if not run.opts.preview then
        local ok, err = pcall(c.type.drop, c.spec, run.owner)
        if ok then
          store:container_delete(id)
          c.made = target.folders_made(row.state)
          dropped[#dropped + 1] = c
        else
          run:report_error(c.short, "dropping " .. c.short .. " failed: "
                           .. tostring(err), "target")
        end
      end
    end
  end
  run:remove_made_folders(dropped)
end

-- The containers the run declared whose type has a finish (work a target
-- leaves to the end of the run: postgres.table builds a new table's key
-- after its first load).
local function finish_containers(run)
  if run.opts.preview then return end
  for _, c in pairs(run.containers) do
    if c.type.finish then
      local ok, err = pcall(c.type.finish, c.spec)
      if not ok then
        run:report_error(c.short, "finishing " .. c.short .. " failed: "
                         .. tostring(err), "target")
      end
    end
  end
end

-- Memo entries that lost their last user this run are deleted.
local function collect_memos(run)
  -- The candidates of a run that died (a crash, a shared update's dead
  -- worker) died with it: every entry no component uses goes.
  if run.crashed or run.worker_died then
    run.store:memo_delete_unreferenced(run.app_id)
    return
  end
  local keys = {}
  for key in pairs(run.memo_candidates) do keys[#keys + 1] = key end
  if #keys > 0 then run.store:memo_delete_unused(run.app_id, keys) end
end

-- The status a run is logged with when a signal stopped it (0: every
-- component succeeded, 1: some failed).
local RUN_INTERRUPTED = 2


function Run:execute()
  local started = now_ms()
  local last = self.store:runs(self.app_id, 1)[1]
  -- A run a signal stopped may have interrupted a custom target's apply.
  self.crashed = last ~= nil
    and (last.finished_ns == 0 or last.status == RUN_INTERRUPTED)
  local share = self.share
  local worker = share and share.role == "worker"
  -- A worker's part is logged by the lead's run.
  self.run_id = (not self.opts.preview and not worker) and
    self.store:run_begin(self.app_id) or nil
  -- In a host's step, each part of the cycle may end the step (lsched.c,
  -- give_back): the next one goes on from there.
  local s = self.sched
  s:give_back()
  -- A worker joins its update before it reads the store: what it reads
  -- is then what the update began with, written by whoever ended the one
  -- before (a lead's last round, its deletions), not what the store held
  -- while it waited (a worker in live mode waits from the end of one
  -- update to the next).
  if worker and not sharemod.join(self, share.update_id, share.wait_s) then
    -- Nothing to join: the update ended before this worker came (or a
    -- signal stopped a worker waiting in live mode).
    self.stats.elapsed_ms = now_ms() - started
    self.stats.interrupted = core.stop_requested() or nil
    return self.stats, self.errors
  end
  self:load()
  s:give_back()
  if not worker then self:recover() end
  if share and not worker then
    share.update_id = self.store:update_open(self.app_id)
    self.store:flush()
    if share.on_open then share.on_open(share.update_id) end
  end
  if worker then self.stats.update = share.update_id end
  sched.reset(self.sched, { runner = engine.run_task,
                            on_abort = engine.abort_component,
                            max_inflight = self.opts.max_inflight,
                            on_progress = self.opts.on_progress })
  local root = {
    run = self, path = "", fn = self.app.root_fn, args = { n = 0 },
    memo_stack = {}, deps = depsmod.new(), memos = {},
    declared = {}, prev = self.store:component(self.app_id, ""),
    is_root = true,
  }
  self.claims:mount("")
  sched.spawn(self.sched, root)
  sched.run(self.sched)
  if self.on_error_failed then
    error({ tide_fatal = true, message = "app " .. self.app.name
            .. ": on_error raised an error: " .. self.on_error_failed }, 0)
  end
  -- What was read ahead for components that then did not run
  -- (reconcile.will_run) is not this run's to answer any more.
  self.store:targets_forget_ahead()
  -- The memo hits answered in C join the counts.
  self.memo_hits:count()
  -- A stop (core.stop_requested) leaves components unfinished: what
  -- completed is committed, and nothing is deleted or collected, since
  -- not everything was mounted. Changes whose apply failed stay pending
  -- (the next run redoes them) instead of being tried again.
  local interrupted = self.sched:stopped()
  if not root.done and not interrupted then
    -- Nothing is deleted after a run whose main never finished.
    error({ tide_fatal = true, message = "main of app " .. self.app.name
            .. " never finished: it waits for something that cannot "
            .. "happen" }, 0)
  end
  local inflight = self.sched:inflight()
  if inflight > 0 and not interrupted then
    -- Nor after one where components wait for each other for ever.
    error({ tide_fatal = true, message = fmt("%d components of app %s "
            .. "never finished: they wait for each other",
            inflight, self.app.name) }, 0)
  end
  -- A lead whose main failed (or was stopped) after it opened the update
  -- to claims ends it here (share.lua, end_early).
  if share and not worker and share.opened and not share.finished then
    sharemod.end_early(self, interrupted)
  end
  s:give_back()
  if worker then
    -- A worker's last batch may be the one the server rolls back: it then
    -- leaves as one that lost a batch earlier does (below).
    local ok, err = pcall(reconcile.flush, self)
    if not ok and not sharemod.batch_lost(self) then error(err, 0) end
  else
    reconcile.flush(self)
  end
  s:give_back()
  -- A batch the store lost ends what the run records there (as a kill
  -- would): nothing is deleted or collected, and the next update does
  -- again what it left unrecorded.
  local lost = not worker and reconcile.lost(self)
  if lost then
    self.stats.components.errors = self.stats.components.errors + 1
    self:report_error("", "the state store lost a batch of this run, and "
      .. "nothing after it was recorded (the next update does it again): "
      .. lost, "store")
  end
  if interrupted then
    -- Components record themselves only after all they mounted, so what
    -- was cut short leaves nothing recorded over unfinished children.
    self.stats.interrupted = true
  elseif not worker and not lost then
    finish_deletions(self)
    s:give_back()
    collect_memos(self)
  end
  -- The end of a shared update is the lead's; a worker leaves with its
  -- counts, its unfinished items free for others.
  if worker then
    -- Not after a batch was lost: the others run its items again.
    local why = sharemod.left_why(self)
    local finished = not interrupted and not why
    if finished then sharemod.finish_items(self) end
    if why then self:report_error("", why, "left") end
    sharemod.leave(self, finished)
  else
    finish_containers(self)
  end
  if share and not worker then
    self.stats.workers = share.per_worker
    -- Ended however it ended (main failed, a signal): workers waiting to
    -- join, or for items, stop.
    if not share.finished then
      self.store:update_set(share.update_id, sharemod.FINISHED)
    end
  end
  self.stats.elapsed_ms = now_ms() - started
  if self.run_id then
    self.store:run_finish(self.run_id, interrupted and RUN_INTERRUPTED
                          or #self.errors > 0 and 1 or 0,
                          core.json_encode(self.stats))
  end
  if self.verified then self.verify_report = verify.check(self) end
  if self.opts.preview then
    self.store:rollback()
  else
    self.store:flush()
    -- Live mode: the index is brought up to date for the next cycle now
    -- (a cold run's many writes: loaded whole on its thread while the
    -- session waits for changes), not when a change arrives. A shared
    -- update's lead reads again the subtrees of the items it handed out,
    -- which its workers wrote (the notes of its own writes lack them);
    -- after many items, or a run that ended before the update did, the
    -- whole index. A worker's is read under its next claims.
    if self.opts.live_cycle and not worker then
      if share and share.delegated and share.finished then
        self.index:reload_under(self.store, self.app_id, share.delegated)
      elseif share then
        self.index:cool()
      end
      self.index:load(self.store, self.app_id)
    end
  end
  s:give_back()
  M.close_target_connections(self.opts.live_cycle)
  -- The worker coroutines of this cycle do not stay for the next: a
  -- coroutine keeps the stack its deepest task grew (a cold run's held
  -- megabytes), which every full collection walks.
  self.sched:trim(0)
  s:give_back()
  return self.stats, self.errors
end

-- How targets know this app in this store (sqlite.table's owners table):
-- the app's name and creation time, and the store's path.
function M.owner(store, name)
  for _, a in ipairs(store:apps()) do
    if a.name == name then
      return { id = fmt("%s@%d", name, a.created_ns), store = store:path(),
               app = name }
    end
  end
  return nil
end

-- Target connections are not kept from one run (or live cycle) to the
-- next; a live cycle's leave an anchor each (sqlite.close_connections),
-- which M.end_live_targets closes when live mode ends.
function M.close_target_connections(live_cycle)
  local sqlite = package.loaded["tide.sqlite"]
  if sqlite then sqlite.close_connections(live_cycle) end
end

function M.end_live_targets()
  local sqlite = package.loaded["tide.sqlite"]
  if sqlite then sqlite.end_live() end
end

M.Run = Run
return M
