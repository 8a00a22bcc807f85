-- An update shared by worker processes (DESIGN.md, scale-out), on a
-- PostgreSQL state store (store.h, "Shared updates").
--
-- The lead (`tide update --workers N`) runs the update as one process
-- would, but each item of a mount_each of main that must run becomes a
-- work item in the store: the component's path, what the source gave
-- (a file's path, a row), and the item's source key. Then it waits until
-- every item is done, and ends the update itself: deletions, memo
-- collection, the run's record.
--
-- A worker (`tide worker`, or one the lead starts) loads the same
-- pipeline and runs main, whose mount_each calls only say which function
-- and which extra arguments each set of items takes (the walk is the
-- lead's); then it claims items in small batches, mounts each as a
-- component of its own run (always run in full), and marks it done in
-- the store batch that records the component, so an item is committed
-- once (or run, when its worker's end must finish it: M.finish_later).
-- A worker whose lease runs out (it died, or stopped beating) has its
-- items claimed by another; one that lost an item fails the batch that
-- would record it twice. A worker leaves when no item is left, with
-- its counts, which the lead adds to its own.
--
-- A batch a worker recorded but did not finish applying (it died in
-- between) leaves its intent; once every worker is gone the lead turns
-- such states unknown (the crash protocol, Run:recover) and runs their
-- components again itself, so the update ends with the targets whole;
-- and so it runs the items a worker ran but did not finish.
--
-- What runs where: the items of mount_each calls made by main are
-- shared; components main mounts one by one (tide.mount, auto_refresh,
-- use_mount) are the lead's to run and record (a worker runs use_mount's
-- for its value only), and what an item mounts below itself runs in the
-- worker that runs the item.
local core = require "tide.core"
local sched = require "tide.sched"
local target = require "tide.target"

local encode, decode = core.cbor_encode, core.cbor_decode
local fmt = string.format

local M = {}

M.LISTING, M.LISTED, M.FINISHED = 0, 1, 2

-- Items a worker holds at most: few, so that work spreads evenly.
local HELD = 128
-- And about this much of its own CPU's work, at the CPU time per item it
-- measured (FIRST before any item is done): a worker does not hoard long
-- items while others wait, nor claim short ones a few at a time.
local HOLD_S = 1
local FIRST = 8
-- Beyond the items it runs at once (its slots, max_inflight), about
-- this much wall time of the items it finishes: items that mostly wait
-- (a model call) are claimed, and recorded, several slots' worth at a
-- time, and the last of them keep another worker idle this long at most.
local QUEUE_S = 0.1
-- The components a worker records in one store batch, at most: it
-- records what it finished at each claim (M.work), and only a batch
-- that grows while it waits for a long component records itself.
M.BATCH = 2 * HELD
-- How often a worker with nothing to claim, or the lead, looks again.
local POLL_S = 0.02
-- How often the lead commits the items it lists, at most (publish).
local OPEN_S = 0.02
-- How long a worker's lease lasts without a beat, by default.
M.LEASE_MS = 30000
-- How long a stopped lead waits for the workers it stops (M.end_early).
local STOP_WAIT_S = 30
-- How many item paths the lead keeps for its index to read again below
-- them at the end of a live cycle (Run:execute); beyond, it reads it whole.
local DELEGATED_MAX = 65536

local function sleep(s)
  -- In a task, the other tasks run meanwhile.
  core.sleep(s)
end

local function hex(s)
  return (s:gsub(".", function(c) return fmt("%02x", c:byte()) end))
end

local function unhex(h)
  return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end))
end

-- ---- The lead ----

local File -- tide.fs's, once loaded (it requires the engine, which
           -- requires this module)

-- What the update tells its workers (told_of reads it): the containers
-- it made, by id (no state can be in them from before, so the workers do
-- not look their keys up one by one), whether it is still open to claims
-- while the lead lists, and how it runs: --full-reprocess (every declared
-- state written again) and --reset (nothing remembered trusted) are the
-- update's, whoever runs its items, a worker started by hand included.
local function update_info(run, open)
  local fresh = {}
  for _, c in pairs(run.containers) do
    if c.fresh then fresh[#fresh + 1] = c.id end
  end
  table.sort(fresh)
  return encode({ fresh = fresh, open = open or nil,
                  full = run.opts.full_reprocess or nil,
                  reset = run.opts.reset or nil })
end

-- The items listed so far are committed: at the first, with the update
-- opened to claims (the workers need not wait for the whole listing),
-- then every OPEN_S at least, so that the workers find items at once.
-- What main declared before its first item is committed with it (the
-- containers a worker's main looks for, M.await_container).
local function publish(run)
  local share, store = run.share, run.store
  local now = core.now_ms()
  if not share.opened then
    share.opened = true
    store:update_set(share.update_id, M.LISTING, update_info(run, true))
  elseif now - share.published_ms < OPEN_S * 1000 then
    return store:maybe_flush()
  end
  store:flush()
  share.published_ms = now
end

-- Records the work item of the component at path instead of mounting it;
-- false when what the source gave cannot be recorded (a function, a
-- handle), and the lead mounts it itself. A file (a walk's item) goes as
-- its path in the walked folder, which the worker stats again. call:
-- what M.register gave for the mount_each call that lists the item.
function M.delegate(run, path, call, key, file_path, value, source_key)
  local share = run.share
  File = File or require("tide.fs").File
  if value ~= nil and getmetatable(value) == File then
    local items = call.items
    if type(items) ~= "table" or value.dir ~= items.dir then return false end
    file_path, value = value.path, nil
  end
  -- Whether the store holds the component or some below it (the lead's
  -- index is whole): a worker reads those, and only those, as it claims.
  local stored = run.index:holds(path)
  -- The function's logic goes with each item: a worker whose pipeline
  -- has other code for it leaves the update to those that run the
  -- lead's (mount_item).
  local ok, bytes = pcall(encode, { call.id, tostring(key),
                                    file_path or false, value,
                                    source_key or false, stored,
                                    call.logic })
  if not ok then return false end
  if not run.claims:mount(path) then
    error(require("tide.engine").same_path_message(path), 0)
  end
  run.store:work_add(share.update_id, path, bytes)
  local delegated = share.delegated
  if delegated then
    delegated[#delegated + 1] = path
    if #delegated > DELEGATED_MAX then share.delegated = false end
  end
  -- Seen by this run: not deleted at its end, nor what it mounts below.
  run:mark(path, "ran")
  run:keep_subtree(path)
  publish(run)
  return true
end

-- What main's mount_each calls give each set of items: in a worker (and
-- in the lead, for a second round) the function and extra arguments.
-- Calls are told apart by their base path and, when main makes several
-- under one path (one function, other arguments), by their order among
-- those: main runs the same calls in the lead and in each worker.
function M.register(run, base, fn, rest, items)
  local share = run.share
  local n = (share.base_calls[base] or 0) + 1
  share.base_calls[base] = n
  local call = { id = n == 1 and base or fmt("%s\0%d", base, n),
                 base = base, fn = fn, rest = rest, items = items,
                 logic = fn._logic_raw or fn:logic_raw() }
  share.bases[call.id] = call
  return call
end

-- Counts as integers (JSON gives numbers).
local function counts(t)
  local out = {}
  for k, v in pairs(t or {}) do
    if type(v) == "number" then out[k] = math.tointeger(v) or v end
  end
  return out
end

-- A worker's counts travel to the lead through the store, each in the
-- batch that commits what it counts (M.send_counts): named
-- "components.added", "targets.inserted", "functions.calls.NAME". So the
-- totals of an update are those of what was committed, as one process's
-- are, whatever worker died or had a batch rolled back (the others ran
-- its items again, and counted them). A worker counts a component, and
-- its target writes, as it records them (engine.lua, reconcile.lua),
-- not as it finishes and applies them, as one process does.

-- Whether the run is a worker's part of a shared update.
function M.is_worker(run)
  return run.share ~= nil and run.share.role == "worker"
end

-- Queues in the store's open batch what the worker's counts grew by
-- since it last sent them; called before each commit of a worker's
-- records: its batches (reconcile.lua), its claims and its leave.
function M.send_counts(run)
  local share = run.share
  if not share or share.role ~= "worker" or not share.worker_id then
    return
  end
  local store, id, sent = run.store, share.worker_id, share.sent
  local function send(name, now)
    if math.type(now) ~= "integer" then return end
    local grew = now - (sent[name] or 0)
    if grew ~= 0 then
      store:worker_count(id, name, grew)
      sent[name] = now
    end
  end
  for _, group in ipairs { "components", "targets" } do
    for k, v in pairs(run.stats[group]) do send(group .. "." .. k, v) end
  end
  for name, f in pairs(run.stats.functions) do
    for k, v in pairs(f) do send("functions." .. k .. "." .. name, v) end
  end
end

-- A worker's counts as the store keeps them ({ [name] = n }), added to
-- the lead's stats; returns its components' counts alone.
local function add_counts(into, named)
  local components = { added = 0, reprocessed = 0, deleted = 0,
                       unchanged = 0, errors = 0 }
  for name, n in pairs(named or {}) do
    local group, rest = name:match("^(%a+)%.(.+)$")
    if group == "components" or group == "targets" then
      into[group][rest] = (into[group][rest] or 0) + n
      if group == "components" then components[rest] = n end
    elseif group == "functions" then
      local k, fn = rest:match("^(%a+)%.(.+)$")
      if k then
        local mine = into.functions[fn]
        if not mine then
          mine = { calls = 0, hits = 0, misses = 0, errors = 0 }
          into.functions[fn] = mine
        end
        mine[k] = (mine[k] or 0) + n
      end
    end
  end
  return components
end

-- The workers this lead started that ended without leaving the update
-- (killed, crashed: share.ended, the pids reaped since) leave it now: a
-- process that ended cannot write any more, so its items are free for
-- the others at once, not once its lease runs out. Such an end counts as
-- a death at the update's end (share.lost, M.lead).
local function release_ended(run)
  local share = run.share
  local ended = share.ended and share.ended()
  if not ended or #ended == 0 then return end
  local host, gone = core.hostname() or "?", {}
  for _, pid in ipairs(ended) do gone[pid] = true end
  for _, w in ipairs(run.store:workers(share.update_id)) do
    if not w.left and gone[w.pid] and w.host == host then
      run.store:worker_leave(w.id)
      share.lost = true
    end
  end
end

-- Whether some worker of the update may still be at work: one that has
-- not left and has beaten within the lease.
local function workers_alive(run)
  local share = run.share
  release_ended(run)
  return run.store:workers_alive(share.update_id, share.lease_ms) > 0
end

-- The owners of the states left unknown by batches whose apply a worker
-- did not finish (their intents): their items run again, here.
local function redo(run)
  local store, share = run.store, run.share
  if #store:intents(run.app_id) == 0 then return 0 end
  -- The owners this recovery finds, forced before or not: an item the
  -- update began by running again (its first run died) may have died
  -- again in a worker's apply, and runs a third time.
  local forced = run.forced
  run.forced = {}
  run:recover()
  local found = run.forced
  run.forced = forced
  for path in pairs(found) do forced[path] = true end
  local n, asked = 0, {}
  for path in pairs(found) do
    if path ~= "" then
      -- The item the owner belongs to: the path it is under that is one of
      -- the update's items. An item's key may hold "/" (a walked file's
      -- path), so each of the owner's ancestors below a base may be it.
      for base in pairs(share.base_calls) do
        if path:sub(1, #base + 1) == base .. "/" then
          n = n + 1
          local stop = #base + 1
          local at = #path + 1
          while at > stop do
            local item = path:sub(1, at - 1)
            if not asked[item] then
              asked[item] = true
              store:work_redo(share.update_id, item)
            end
            at = item:match("^.*()/") or 0
          end
        end
      end
    end
  end
  store:flush()
  return n
end

-- A round of the update's items run by the lead itself, as a worker that
-- leaves once none is left to claim (its counts are its run's already):
-- what its workers left when none of them is left.
local function lead_round(run)
  local store, share = run.store, run.share
  share.redoing = true
  local id = store:worker_join(share.update_id, "lead", core.getpid())
  share.lead_rows[id] = true
  M.work(run, id)
  share.redoing = false
  share.beat:stop()
  store:worker_leave(share.worker_id)
end

-- The lead's wait, in its root task once main has listed everything:
-- until every item is done and every worker gone. When every worker has
-- died (or never joined) with items left, the lead runs them itself, once
-- their leases have run out (at once for the workers it started and saw
-- end: release_ended), and says so (share.notice).
function M.lead(run)
  local store, share = run.store, run.share
  -- The workers learn which containers this update made (update_info).
  store:update_set(share.update_id, M.LISTED, update_info(run))
  store:flush()
  -- Looked at often at first, then less and less while it waits (each
  -- look costs the server a count of the items not done).
  local wait = POLL_S / 4
  while true do
    local open = store:work_open(share.update_id)
    -- Every item is done (or run, M.finish_later): none can become open
    -- again but by the lead (below), and the workers are about to leave:
    -- looked at often again (a dead one's lease may take longer).
    local gone = POLL_S / 4
    while open == 0 and workers_alive(run) do
      sleep(gone)
      gone = math.min(gone * 1.5, POLL_S * 2)
    end
    if open == 0 then
      -- Items whose worker ended before it finished them (M.finish_later)
      -- are ready again, with those whose batch a worker did not write.
      if store:work_reopen(share.update_id) + redo(run) == 0 then break end
      -- A second round, run by the lead itself.
      lead_round(run)
    elseif open > 0 and not workers_alive(run)
           and not (share.starting and share.starting()) then
      if share.notice then
        share.notice(fmt("no worker is left: the lead runs the %d items "
                         .. "not done itself", open))
      end
      lead_round(run)
    else
      sleep(wait)
      wait = math.min(wait * 2, POLL_S * 2)
    end
  end
  -- What the workers' components stopped declaring (released in their
  -- batches) is deleted at the update's end with what the lead's own
  -- released: a worker's run deletes nothing. Read back from the store,
  -- as Run:recover reads what a crash left, so that a worker that died
  -- after its commit counts too.
  local reconcile = require "tide.reconcile"
  for _, row in ipairs(store:targets_pending(run.app_id)) do
    if row.pending == reconcile.RELEASED
       or row.pending == reconcile.PENDING_DELETE then
      run.released[row.container_id][row.key] = true
    end
  end
  local died = share.lost or false
  local named = store:worker_counts(share.update_id)
  for _, w in ipairs(store:workers(share.update_id)) do
    died = died or not w.left
    -- (The lead's own row, which it joins to run items itself, counts
    -- nothing: its counts are its run's.)
    local components = not share.lead_rows[w.id]
      and add_counts(run.stats, named[w.id]) or nil
    local stats = w.stats and require("cjson").decode(w.stats)
    if type(stats) == "table" then
      -- Memo entries the worker's components stopped using: collected at
      -- the end of the update, once no worker can still record a use.
      for _, k in ipairs(stats.memo_candidates or {}) do
        run.memo_candidates[unhex(k)] = true
      end
      -- Containers the worker's components declared are kept, as the
      -- lead's own are (run.lua, the end of a run).
      for _, id in ipairs(stats.declared or {}) do
        run.declared_ids[math.tointeger(id) or id] = true
      end
    end
    share.per_worker[#share.per_worker + 1] = {
      id = w.id, host = w.host, pid = w.pid, done = w.done,
      read = type(stats) == "table" and math.tointeger(stats.read) or nil,
      components = components and counts(components) or nil,
    }
  end
  -- A worker that died in a target's apply may have left a partial write
  -- there; no worker is left to be writing one now. The memo entries its
  -- components stopped using are collected by a sweep (run.lua).
  if died then
    run:clean_up_targets()
    run.worker_died = true
  end
  store:update_set(share.update_id, M.FINISHED)
  share.finished = true
end

-- A lead whose run ends before its wait did (main failed, or a signal
-- stopped it after it opened the update to claims): no worker claims or
-- records more of the update from now (a batch fails the check of the
-- item it holds), before the run's end looks at what the containers
-- hold. Stopped, it first stops the workers it started (share.
-- stop_workers), which commit what they finished and leave with their
-- counts, added to the lead's; its stop is the session's end, where a
-- failed main in live mode is one cycle's, and its workers stay.
function M.end_early(run, stopped)
  local store, share = run.store, run.share
  if stopped and share.stop_workers then share.stop_workers(STOP_WAIT_S) end
  store:update_set(share.update_id, M.FINISHED)
  store:flush()
  share.finished = true
  if not stopped then return end
  for _, named in pairs(store:worker_counts(share.update_id)) do
    add_counts(run.stats, named)
  end
end

-- ---- A worker ----

-- The channel a store announces its listed updates on (store.h), and
-- the location as libpq reads it (without tide's own schema=).
local function channel_of(location)
  local schema = location:match("[?&]schema=([^&]*)") or "tide"
  local conninfo = location:gsub("([?&])schema=[^&]*&?", "%1")
  return "tide_" .. schema, (conninfo:gsub("[?&]$", ""))
end

-- What an update's info tells (update_info): { fresh = container ids,
-- open = true while listing, full, reset }, empty when it tells nothing.
local function told_of(info)
  local ok, told = pcall(decode, info or "")
  return ok and type(told) == "table" and told or {}
end

-- Takes in the containers the update made (Run:container's fresh ones).
local function take_fresh(share, told)
  for _, cid in ipairs(told.fresh or {}) do share.fresh[cid] = true end
end

-- Waits until a listed update comes: for a worker in live mode, a
-- notification of the store (or a second); else a short sleep.
local function wait_for_update(share)
  local live = share.live
  if not live then return sleep(POLL_S / 2) end
  if not live.listener and live.location then
    local channel, conninfo = channel_of(live.location)
    live.listener = core.pg_listen(conninfo, "LISTEN " .. channel)
    live.location = live.listener and live.location or nil
  end
  if not live.listener or not live.listener:wait(1000) then
    if live.listener then live.listener:close() end
    live.listener = nil
    sleep(POLL_S)
  end
end

-- Waits for the app's update to be listed (the one given, or the latest
-- after share.after) and joins it; returns false when the update given
-- is over already (a lead with nothing to share ends before its workers
-- start) or a signal stops a worker in live mode, and fails when none
-- comes within wait_s seconds (a worker in live mode waits for ever).
function M.join(run, want, wait_s)
  local store, share = run.store, run.share
  local deadline = core.now_ms() + (wait_s or 60) * 1000
  while true do
    local id, state, info = store:update_current(run.app_id)
    if want and id ~= want and (id == nil or id > want) then
      return false
    end
    if core.stop_requested() then return false end
    local told = told_of(id and info)
    if id and (not want or id == want)
       and (state == M.LISTED or state == M.LISTING and told.open)
       and (not share.after or id > share.after) then
      share.update_id = id
      -- Joined while the lead lists: items may come until it is listed.
      share.listing = state == M.LISTING
      take_fresh(share, told)
      -- The update's mode is this run's (Run.new reads it as given).
      if told.reset then run.opts.reset = true end
      if told.full or told.reset then
        run.opts.full_reprocess = true
        run.memo_probe = nil
      end
      share.worker_id = store:worker_join(id, core.hostname() or "?",
                                          core.getpid())
      return true
    end
    if not share.live and core.now_ms() > deadline then
      error({ tide_fatal = true, message = fmt("no update of app %s to "
              .. "join in %g s (start one with tide update --workers, or "
              .. "give --wait more seconds)", run.app.name, wait_s or 60) },
            0)
    end
    wait_for_update(share)
  end
end

-- Waits until the update this worker joined while it was listing is
-- listed: main has run in the lead, every container it declares is made.
local function await_listed(run)
  local store, share = run.store, run.share
  local beat = core.now_ms()
  while share.listing do
    -- Its lease is renewed meanwhile: its heartbeat starts with its
    -- claims (M.work), and the listing may last longer than the lease.
    if core.now_ms() - beat > share.lease_ms / 4 then
      store:worker_beat(share.worker_id)
      store:flush()
      beat = core.now_ms()
    end
    local id, state, info = store:update_current(run.app_id)
    if id ~= share.update_id then
      error({ tide_fatal = true, message = fmt("update %d ended before "
              .. "it was listed (its lead failed or was stopped)",
              share.update_id) }, 0)
    end
    if state == M.LISTED then
      share.listing = false
      take_fresh(share, told_of(info))
    else
      sleep(POLL_S / 2)
    end
  end
end

-- Before a worker's main declares a container (Run:container): one the
-- lead has not made yet, while it lists, is waited for; the lead makes
-- it (a worker would race it), and it is ready once the update is listed.
-- Then it must be the lead's and be there, or the worker's main fails.
-- (The containers its items' components declare are the worker's own.)
function M.await_container(run, tt, spec, identity, spec_bytes)
  local share = run.share
  if share.role ~= "worker" then return end
  local function made()
    for _, row in ipairs(run.store:containers(run.app_id)) do
      if row.kind == tt.name and row.identity == identity then
        return row.spec == spec_bytes
               and not target.setup_pending(row.state)
      end
    end
    return false
  end
  -- Where this worker reaches it: a table the lead made in a database
  -- file it cannot see (another machine's disk, another folder's copy)
  -- is not there.
  local function here() return not tt.exists or tt.exists(spec) end
  if share.listing and made() and here() then return end
  await_listed(run)
  -- Listed: the lead's main has made (or made again) every container it
  -- declares. One this worker's main declares otherwise (another path,
  -- schema or option) means another pipeline; one it cannot find, a
  -- target it does not reach: its rows would go where the lead's are not.
  if not made() then
    error(fmt("%s %s: this worker's main declares a target the lead's "
      .. "main does not (or declares it otherwise): a worker runs the "
      .. "lead's pipeline", tt.name, identity), 0)
  end
  if not here() then
    error(fmt("%s %s: not found where this worker looks for it, though "
      .. "the lead made it: a worker writes the lead's targets, and must "
      .. "reach them at the same place (a database file in a folder it "
      .. "shares with the lead, a PostgreSQL table)", tt.name, identity), 0)
  end
end

-- An item that cannot run here fails as a component does: counted (the
-- update ends with errors) and reported; it is done, not left to others,
-- where it would fail the same way.
local function item_failed(run, item, message)
  run.stats.components.errors = run.stats.components.errors + 1
  run:report_error(item.path, message)
  run.share.failed_items[#run.share.failed_items + 1] = item.id
end

-- What M.delegate recorded of an item, decoded once: a table, or false
-- when it cannot be read.
local function item_of(item)
  if item.t == nil then
    local ok, t = pcall(decode, item.item)
    item.t = ok and type(t) == "table" and t
  end
  return item.t
end

-- Mounts a claimed item as a component of the worker's run; returns its
-- frame, or nil when it cannot run here.
local function mount_item(run, root, item, mount)
  local share = run.share
  local t = item_of(item)
  local id = t and t[1]
  local b = id and share.bases[id]
  if not b then
    local base, n = tostring(id):match("^(.-)%z(%d+)$")
    return item_failed(run, item, base
      and fmt("this worker's main makes fewer than %s mount_each calls "
              .. "under %s: is it the lead's pipeline?", n, base)
      or fmt("this worker's pipeline does not mount %s: is it the lead's?",
             tostring(id)))
  end
  if t[7] and t[7] ~= b.logic then
    share.differs = share.differs or fmt("its pipeline is not the lead's: "
      .. "function %s (mounted under %s) has other code here, or calls "
      .. "code that differs; run the same pipeline on every machine",
      b.fn.name, b.base)
    return nil
  end
  local rest, value = b.rest, t[4]
  if t[3] then
    File = File or require("tide.fs").File
    local file, err = core.fs_file(b.items.dir, t[3], File)
    if not file then return item_failed(run, item, err) end
    file._walk = true -- not read yet: fingerprinted from what is read
    value = file
  end
  local args = { n = rest.n, value }
  for i = 2, rest.n do args[i] = rest[i] end
  -- Always in full: the lead found it changed, or its first run died.
  run.forced[item.path] = true
  -- The lead kept what is below each item it handed out (M.delegate):
  -- running one itself, it marks what the item mounts now, and deletes
  -- at the end of its run what the item no longer mounts.
  if share.role == "lead" then run.index:unkeep_below(item.path) end
  local frame = mount(root, item.path, b.fn, args, t[5] or nil, item.id)
  if frame.prev then require("tide.reconcile").will_run(run, frame) end
  -- Claimed before, by a worker that died: it may have recorded some of
  -- what the item mounts, which the lead's index (loaded at its start)
  -- lacks; those components are read from the store (engine.mount).
  if item.tries > 1 then frame.redo = true end
  return frame
end

-- How many items a worker may hold: FIRST before any is done (at most
-- as many as run at once, cap); then as many as HOLD_S of its CPU time
-- and QUEUE_S of wall time beyond those running take, at the rates it
-- measured since its first claim, and never fewer than its parallel
-- functions' threads take (plus one).
local function hold_limit(run, cap, done, cpu0, wall0)
  if done == 0 then return math.min(cap, FIRST) end
  -- Its parallel functions' threads count in the CPU time, and may run
  -- that many items at once.
  local threads = run.pool and (run.opts.jobs or core.cpu_count()) or 1
  local per_item = (os.clock() - cpu0) / done
  local by_cpu = per_item > 0 and math.ceil(threads * HOLD_S / per_item)
    or HELD
  local wall = (core.now_ms() - wall0) / 1000
  local by_wall = wall > 0 and cap + math.ceil(done / wall * QUEUE_S) or cap
  return math.max(math.min(by_cpu, by_wall, HELD),
                  math.min(cap, threads + 1))
end

-- Claims and runs items until none is left; in the root task of the
-- worker's run, after main. worker_id: this process's row.
function M.work(run, worker_id)
  local store, share = run.store, run.share
  local mount = require("tide.engine").mount_component
  share.worker_id = worker_id
  share.lost0 = store:batches_lost()
  local reconcile = require "tide.reconcile"
  local root = sched.current_frame()
  -- The lead's index (loading on its thread) says which items ran
  -- before: it is waited for, and its dependencies checked, before the
  -- first mount. A worker's reads what is below each claim's items.
  run:index_ready()
  -- The owners of the states a crash left unknown (the lead's recover
  -- turned them so) run again, as in one process: an item runs in full
  -- here, and so must those of its descendants (forced again as the
  -- index reads them, Run:load_under).
  if share.role == "worker" then
    local owners = {}
    for _, row in ipairs(store:targets_pending(run.app_id)) do
      if row.pending == reconcile.UNKNOWN
         or row.pending == reconcile.PENDING_UPSERT then
        local path = run:path_of(row.owner_id)
        if path then
          owners[#owners + 1] = path
          run:force(path)
        end
      end
    end
    run.crash_owners = owners
  end
  -- The lease is renewed by a thread of its own, however long a
  -- component runs without yielding.
  share.beat = store:beat_start(worker_id,
                                math.max(share.lease_ms // 4, 50))
  -- Claimed items are mounted no more than the run's slots at once (and
  -- HELD): the others wait in claimed[first..last], in the order claimed.
  -- (A mounted item runs whatever the slots: the worker's root task is
  -- its only spawner, and this is its throttle.)
  local cap = math.min(run.sched:limit(), HELD)
  local running, claimed, first, last = {}, {}, 1, 0
  local done, limit, cpu0, wall0 = 0, 0, nil, nil
  while not run.sched:stopped() do
    -- A batch of this worker's was rolled back (a failure on the server):
    -- what it recorded since its last commit is lost, its items' done
    -- marks with it. It claims and starts no more; what it runs ends, and
    -- it leaves the update, whose other workers (or, once none is left,
    -- the lead) run its items again (run.lua, M.batch_lost).
    -- So does one whose pipeline turned out not to be the lead's
    -- (mount_item): others run its items.
    local lost = M.batch_lost(run) or share.differs ~= nil
    local n = 0
    for i = 1, #running do
      if not running[i].done then
        n = n + 1
        running[n] = running[i]
      end
    end
    done = done + #running - n
    for i = #running, n + 1, -1 do running[i] = nil end
    while n < cap and first <= last and not lost and not share.differs do
      local frame = mount_item(run, root, claimed[first], mount)
      claimed[first], first = nil, first + 1
      if frame then
        n = n + 1
        running[n] = frame
      end
    end
    if share.differs then lost = true end
    -- Items that cannot run here are done with an error, not left.
    if #share.failed_items > 0 then
      for _, id in ipairs(share.failed_items) do
        store:work_done(id, worker_id)
      end
      share.failed_items = {}
      M.send_counts(run)
      store:flush()
    end
    -- A claim once half of what it may hold is done, for as many: each is
    -- a round trip and a commit, and the items it holds run while the
    -- server commits the last batch (below). The limit at most doubles
    -- from one claim to the next: the first rates measured are rough.
    local held = n + last - first + 1
    limit = math.min(hold_limit(run, cap, done, cpu0, wall0),
                     math.max(2 * limit, cap))
    if lost then
      if n == 0 then break end
      sched.wait_any(run.sched, running, n)
      goto again
    end
    if held > limit // 2 then
      -- Until one of them ends, whichever: its slot is filled at once (a
      -- wait for the first would leave the others' slots empty meanwhile,
      -- a long item among short ones).
      sched.wait_any(run.sched, running, n)
      goto again
    end
    do
      cpu0, wall0 = cpu0 or os.clock(), wall0 or core.now_ms()
      -- While items run, they go on while the server answers: the claim
      -- waits for its answer as a task does (with none, nothing would).
      -- (A claim commits what the store's open batch holds.)
      M.send_counts(run)
      local items = store:work_claim(share.update_id, worker_id,
                                     limit - held, share.lease_ms, n > 0)
      -- A worker's index reads what is below the items it claimed (the
      -- lead's, in its second round, holds all).
      -- Not the items under which the lead found nothing stored, unless
      -- claimed before (a worker that died may have recorded some).
      if #items > 0 and share.role == "worker" then
        local paths = {}
        for _, item in ipairs(items) do
          local t = item_of(item)
          if not t or t[6] ~= false or item.tries > 1 then
            paths[#paths + 1] = item.path
          end
        end
        if #paths > 0 then run:load_under(paths) end
      end
      -- What finished since the last claim is recorded now: after the
      -- claim, which would wait for its commit, and before the items
      -- just claimed start, which run while the server commits it.
      reconcile.flush(run, true)
      for _, item in ipairs(items) do
        last = last + 1
        claimed[last] = item
      end
      if #items > 0 then goto again end
    end
    -- Nothing to claim: what this worker ran is recorded (and its items
    -- marked done) before it looks again, or waits for what others hold.
    if n > 0 then
      sched.wait_any(run.sched, running, n)
    else
      reconcile.flush(run)
      -- The lead ended the update (it failed or was stopped): what is
      -- left is the next update's. While it lists, more items may come;
      -- once it is listed (read first), none is left when none is open.
      local id, state = store:update_current(run.app_id)
      if id ~= share.update_id then break end
      if state ~= M.LISTING and store:work_open(share.update_id) == 0 then
        break
      end
      sleep(POLL_S)
    end
    ::again::
  end
end

-- Whether a batch of this worker's was rolled back since it began to
-- claim (M.work).
function M.batch_lost(run)
  local lost0 = run.share.lost0
  return lost0 ~= nil and run.store:batches_lost() > lost0
end

-- Why a worker leaves its update before it is done, or nil: a batch of
-- its the server rolled back (M.batch_lost), or a pipeline that is not
-- the lead's (mount_item). What it held runs again, on the others.
function M.left_why(run)
  local share, why = run.share, nil
  if M.batch_lost(run) then
    local _, failure = run.store:batches_lost()
    why = fmt("the server rolled back a batch of its writes (%s)",
              failure or "no message")
  elseif share.differs then
    why = share.differs
  else
    return nil
  end
  return fmt("worker %s left the update: %s; the items it held run again "
    .. "in this update, on the other workers or the lead", share.worker_id,
    why)
end

-- An item whose worker's end must finish it: frame (or a component
-- below it) no longer mounts some of what it did, which the end deletes
-- (M.finish_items), or declared a container, which the end tells the
-- lead of (M.leave). Its batch marks it run, not done; the end marks it
-- done with what it does, in one commit. If the worker dies (or is
-- stopped) before, the lead runs the item again once no worker is left.
function M.finish_later(run, frame)
  if run.share.role ~= "worker" then return end
  while frame and not frame.work_item do frame = frame.parent end
  if frame then frame.finish_later = true end
end

-- At the end of a worker's run, the changes whose apply failed are
-- tried once more, and their components fail if that fails too, as at a
-- one-process run's end (there after its deletions, which are the
-- lead's here: a change that needs one first, a file that became a
-- folder, fails in the worker and is written by the next update). Then
-- what its items no longer mount is deleted, as a one-process run's end
-- deletes every component it did not see (the lead cannot: it does not
-- know which of an item's descendants the worker saw). Their target
-- states are released for the lead to delete from the targets at the
-- update's end (M.lead), their memo entries become candidates for its
-- collection, and the items that shrank are recorded complete, in the
-- commit of the worker's leave (M.leave), which marks the items done.
-- Until then those items stay recorded incomplete, and run (not done):
-- the lead runs them again if this worker dies first.
function M.finish_items(run)
  local store = run.store
  local reconcile = require "tide.reconcile"
  if not run.opts.preview then reconcile.retry_failed(run) end
  if #run.shrunk == 0 then return end
  local function release(t)
    if t.pending ~= reconcile.RELEASED
       and t.pending ~= reconcile.PENDING_DELETE then
      store:target_put(t.container_id, t.key, t.owner_id,
        t.pending == reconcile.APPLIED and t.value_fp or nil,
        reconcile.RELEASED)
    end
  end
  local below, going = {}, {}
  for _, frame in ipairs(run.shrunk) do
    below[#below + 1] = frame.path .. "/"
  end
  for _, row in ipairs(run.index:unseen()) do
    for _, prefix in ipairs(below) do
      if row.path:sub(1, #prefix) == prefix then
        going[#going + 1] = row
        break
      end
    end
  end
  run:let_go(going, release)
  run:delete_components(going)
  reconcile.complete_shrunk(run)
end

-- What a worker's run leaves in the store when it ends: its counts, and
-- the memo entries its components stopped using, for the lead; and,
-- finished (its run not stopped, M.finish_items done), the items it ran
-- are done, in the same commit.
function M.leave(run, finished)
  local share = run.share
  if not share.worker_id then return end
  if share.beat then share.beat:stop() end
  if finished then
    for _, item in ipairs(share.ran_items) do
      run.store:work_done(item, share.worker_id)
    end
  elseif M.batch_lost(run) then
    -- A lost batch may have held the drop of intents whose changes this
    -- worker had applied in full, after the batch that recorded them
    -- committed: dropped again (a drop of one gone is nothing), or the
    -- lead would take them for a crash's and run their items once more,
    -- items done and counted already.
    for _, intent in ipairs(share.applied_intents) do
      run.store:intent_delete(intent)
    end
  end
  local cjson = require "cjson"
  local candidates = {}
  for k in pairs(run.memo_candidates) do
    candidates[#candidates + 1] = hex(k)
  end
  table.sort(candidates)
  -- The containers its components declared: the lead keeps them (a
  -- container whose owner ran is dropped unless someone declared it).
  local declared = {}
  for id in pairs(run.declared_ids) do declared[#declared + 1] = id end
  table.sort(declared)
  -- Its counts (M.send_counts): those of the items it finishes now too.
  M.send_counts(run)
  run.store:worker_leave(share.worker_id, cjson.encode({
    read = run.index:count(), memo_candidates = candidates,
    declared = declared,
  }))
end

return M
