-- tide.live: live mode (DESIGN.md section 6; `tide live`, `app:update{
-- live = true }`).
--
-- After a catch-up cycle, the folders of the app's fs.walk sources (those
-- a component listed, unless fs.walk said live = false) are watched
-- through inotify (watch.c: one watch per directory, folders created
-- later included). A change starts a cycle once events have been quiet
-- for QUIET_MS, and at most MAX_DELAY_MS after the first, so that a burst
-- (an editor's write, rename and chmod; a copy of many files) is one
-- cycle; changes that arrive during a cycle start another after it, so no
-- change is ever lost. Each cycle is a catch-up cycle of the engine's
-- session (the store stays open): the walk compares every file as a
-- catch-up run does, so the targets after any sequence of changes are
-- those of a fresh catch-up run. A folder is watched once a cycle has
-- listed it, and one more cycle then covers what changed in between. A
-- cycle also runs every `rescan` seconds
-- (default one hour) as a safety net, and at once when events were lost
-- or a folder could not be watched; and at least as often as the shortest
-- period of the app's tide.auto_refresh components, which every cycle
-- runs again. A tide.source with a watch function reports its own
-- changes (Watchers below): a cycle processes only what it emitted.
--
-- The first SIGINT or SIGTERM (trapped by the tide command) stops: a
-- cycle under way commits what completed, and live mode returns; a
-- second one exits at once (lsignal.c).

local core = require "tide.core"
local engine = require "tide.engine"
local sched = require "tide.sched"

local M = {}

local now_ms = core.now_ms
local fmt = string.format

-- A burst of events ends after this much quiet...
M.QUIET_MS = 3
-- ...or this long after its first event.
M.MAX_DELAY_MS = 100
-- The safety net's period, in seconds.
M.DEFAULT_RESCAN = 3600
-- A cycle that could not run (the store locked by another update, its
-- server gone, main failed) is tried again after this long, doubled at
-- each failure in a row up to RETRY_MAX_MS (or the rescan period).
M.RETRY_MS = 100
M.RETRY_MAX_MS = 30000
-- After a cycle that ends with failed components, a whole walk runs them
-- again this long after, doubled while they go on failing up to
-- FAILED_RETRY_MAX_MS (or the rescan period): a failure from outside the
-- sources (a model's server down) ends without a change to wait for.
M.FAILED_RETRY_MS = 1000
M.FAILED_RETRY_MAX_MS = 300000

-- The delay before the next try after one of retry_ms (nil: the first).
function M.next_retry(retry_ms)
  return retry_ms and math.min(retry_ms * 2, M.RETRY_MAX_MS) or M.RETRY_MS
end

-- What is said of a failure tried again after retry_ms.
function M.retry_message(message, retry_ms)
  return fmt("%s; trying again in %s", message, retry_ms < 1000
    and fmt("%d ms", retry_ms) or fmt("%.0f s", retry_ms / 1000))
end

-- A store locked by another update's cycle is routine for apps that
-- share a store: said only once the wait reaches this long.
M.LOCKED_QUIET_MS = 800

-- Whether a failure with this code, tried again after retry_ms, is said.
local function worth_saying(code, retry_ms)
  return code ~= "locked" or retry_ms >= M.LOCKED_QUIET_MS
end
-- A stepped session in a Lua state of the engine's own collects in full,
-- when idle, once the heap has grown this many times since the last.
M.GC_GROWTH = 1.5

-- The folders a live session watches, on the engine's loop: folders:add
-- (abs, follow_symlinks) watches one (once, and again after it was
-- deleted or moved away and made again), and a cycle's walk calls it
-- before it walks (fs.lua, Walk:listed, through the cycle's option
-- watch_folder), so that nothing changes unseen between the walk and the
-- watch. A folder that cannot be watched is said, and walked whole at
-- every cycle (folders.unwatched). nil, message when the system refuses
-- a watch.
--
-- folders.add_file(abs) watches a file a source reads (a JSON Lines file,
-- an SQLite database and its log) through its folder, so that a change
-- to it starts a cycle, which lists the source again (json.lua,
-- sqlite.lua, when a cycle lists them). Called at every listing: a file
-- whose folder was deleted and made again is watched again. One that
-- cannot be watched is said once; its changes wait for the next cycle.
-- A side file (a database's log) is watched but not counted in what live
-- mode says it watches.
function M.folders(loop, say)
  local watch, err = core.watch_new(loop)
  if not watch then return nil, err end
  local folders = { watch = watch, watched = {}, unwatched = {},
                    files = {}, file_roots = {} }
  -- Called at every walk: a folder deleted or moved away and made again
  -- since is watched again (watch.h), and walked whole.
  function folders.add(abs, follow_symlinks)
    folders.watched[abs] = true
    local root, why = watch:add(abs, follow_symlinks)
    -- Made again between the watch's look and the one below (a folder
    -- moved away and another made in its place): tried once more, not
    -- said to be unwatchable.
    if not root and core.exists(abs) then
      root, why = watch:add(abs, follow_symlinks)
    end
    if root then
      folders.unwatched[abs] = nil
      return
    end
    -- One not there (yet: never made, or gone before live mode started)
    -- is watched as a file is, through its folder, so that its making
    -- starts a cycle, which walks it whole and watches it then.
    local there = core.exists(abs)
    if not there then watch:add_file(abs) end
    if not folders.unwatched[abs] then
      folders.unwatched[abs] = true
      -- One that is gone is said by its walk, and watched once back.
      if there then say(why .. "; it is walked whole at every cycle") end
    end
  end
  function folders.add_file(abs, side)
    local root, why = watch:add_file(abs)
    folders.file_roots[abs] = true
    if root then
      folders.files[abs] = not side and true or nil
    elseif folders.files[abs] ~= false then
      folders.files[abs] = false
      say(why .. "; its changes are found at the next cycle (another "
          .. "change, or the periodic rescan)")
    end
  end
  return folders
end

-- Watches the roots of walked that are not watched yet (a walk listed
-- other than through Walk:listed). Returns whether it watched a new one:
-- what changed in it between the cycle's walk and its watch needs one
-- more cycle.
local function watch_roots(folders, walked)
  local added = false
  for abs, walk in pairs(walked) do
    if walk.live and not folders.watched[abs] then
      folders.add(abs, walk.follow_symlinks)
      added = true
    end
  end
  return added
end

-- ---- Live sources ----

-- Every tide.source with a watch function that a cycle mounted (seen.watched:
-- base path -> { source, signature }) has watch(emit) run once, in a task
-- of its own on a scheduler apart from the cycles' (sched.own), resumed
-- between cycles: a watch that waits (tide.sleep, tide.exec) lets live
-- mode go on, and one that returns at once may keep emit for later (a
-- host's callback). emit(key, value) upserts, emit(key, nil) deletes; the
-- next cycle processes only the keys emitted since the last (the last
-- value of each) and keeps the source's other components (engine.lua,
-- watched_changes). watch(emit, rescan): rescan() has the next cycle list
-- the source in full instead, once (a watch that may have missed changes
-- while it could not watch). A watch that raises is said, and its source is
-- listed in full (items()) at once and at every cycle after.
local Watchers = {}
Watchers.__index = Watchers

local function new_watchers(loop)
  return setmetatable({ loop = loop, tasks = {}, pending = {}, count = 0,
                        stopped = false, rescan = false }, Watchers)
end

local function run_watch(task)
  local ok, err = pcall(task.watch, task.emit, task.rescan)
  if not ok then task.failed = tostring(err) end
end

local function watch_yielded(task)
  task.failed = "coroutine.yield() was called outside a coroutine the "
    .. "watch function created"
end

-- The emit of the source mounted at base: true when the change was taken,
-- false once live mode stopped or the watch failed.
function Watchers:emitter(base, name)
  return function(key, value)
    local kt = type(key)
    if kt ~= "string" and math.type(key) ~= "integer" then
      error(fmt("tide.source %s: emit: the key must be a string or an "
        .. "integer, not %s", name, kt == "number" and "a float" or kt), 2)
    end
    local task = self.tasks[base]
    if self.stopped or task.failed then return false end
    local p = self.pending[base]
    if not p then
      p = { keys = {}, values = {} }
      self.pending[base] = p
    end
    local id = tostring(key)
    if p.values[id] == nil then
      p.keys[#p.keys + 1] = key
      self.count = self.count + 1
    end
    if value == nil then value = engine.DELETED end
    p.values[id] = value
    return true
  end
end

-- The rescan of the source mounted at base: the next cycle lists it in
-- full (what it emitted meanwhile is read again with the rest), for a
-- watch that may have missed changes (a connection lost and made again).
function Watchers:rescanner(base)
  return function()
    local task = self.tasks[base]
    if self.stopped or task.failed then return false end
    if not task.rescan_due then
      task.rescan_due = true
      self.count = self.count + 1
    end
    return true
  end
end

-- Starts the watch of every source of watched not watched yet; returns
-- whether it started one.
function Watchers:start(watched)
  local started = false
  for base, w in pairs(watched or {}) do
    if not self.tasks[base] then
      self.sched = self.sched
        or sched.own(self.loop, run_watch, watch_yielded)
      local task = { base = base, name = w.source.kind,
                     watch = w.source.watch }
      task.emit = self:emitter(base, task.name)
      task.rescan = self:rescanner(base)
      self.tasks[base] = task
      self.sched:spawn(task)
      started = true
    end
  end
  return started
end

-- Resumes the watches that can go on; says which failed (and asks for a
-- rescan: what they would have emitted is read from items()).
function Watchers:run(say)
  if not self.sched then return end
  self.sched:run_ready()
  for _, task in pairs(self.tasks) do
    if task.failed and not task.said then
      task.said = true
      self.rescan = true
      say(fmt("tide.source %s: its watch function failed: %s; the source "
        .. "is listed in full at every cycle", task.name, task.failed))
    end
  end
end

-- What the next cycle processes of each watched source: base -> { keys,
-- values, paths }, for every one whose watch has not failed (empty:
-- nothing changed, its components are kept); and the list of what
-- changed ({ source, key }). The pending changes start over.
function Watchers:take()
  local emits, list = {}, {}
  for base, task in pairs(self.tasks) do
    if task.rescan_due then
      -- Listed in full: no emits for it this cycle.
      task.rescan_due = false
      for _, k in ipairs((self.pending[base] or { keys = {} }).keys) do
        list[#list + 1] = { source = task.name, key = k }
      end
    elseif not task.failed then
      local p = self.pending[base] or { keys = {}, values = {} }
      p.paths = {}
      for i, k in ipairs(p.keys) do
        p.paths[i] = base .. "/" .. tostring(k)
        list[#list + 1] = { source = task.name, key = k }
      end
      emits[base] = p
    end
  end
  self.pending, self.count = {}, 0
  return emits, list
end

function Watchers:close()
  self.stopped = true
  if self.sched then self.sched:close() end
end

-- Waits for the end of a burst of changes: until QUIET_MS pass without a
-- new one, or MAX_DELAY_MS since first. wait(ms) waits on the loop;
-- pending() counts the changes waiting.
local function settle(pending, stopped, wait)
  local first = now_ms()
  while not stopped() do
    local before = pending()
    local left = M.MAX_DELAY_MS - (now_ms() - first)
    if left <= 0 then return end
    local quiet_until = now_ms() + math.min(M.QUIET_MS, left)
    repeat
      wait(math.max(0, quiet_until - now_ms()))
    until pending() ~= before or now_ms() >= quiet_until
      or stopped()
    if pending() == before then return end
  end
end

-- Runs the app live on its engine e. update(changes) runs one cycle (the
-- app's update), walking only the changes given (nil: every folder
-- whole), and fills seen: seen.walked, the folders the last cycle listed
-- (absolute path -> fs.walk), seen.refresh, the shortest period of its
-- auto_refresh components (nil for none).
-- hooks: on_cycle(stats, errors, changes) after every cycle, the first
-- (catch-up) one included, with the list of changes that started it
-- ({ dir, path }, path nil for a whole folder; nil for the catch-up and
-- periodic rescans); it may return false to stop. on_message(text) for
-- what was lost or could not be watched. stopped() says whether to stop
-- (a trapped signal). folders (M.folders) watches the folders; the
-- cycles' walks add to it, and it is closed on return. Returns the last
-- stats and errors, or nil, message, code when a cycle could not run.
function M.run(e, update, seen, hooks)
  local say = hooks.on_message or function() end
  local stopped = hooks.stopped or core.stop_requested
  local folders = hooks.folders
  local watch = folders.watch
  local stats, errors, code
  if hooks.caught_up then
    stats, errors = hooks.caught_up, {}
  else
    stats, errors, code = update()
    -- Another update holds the store (another app's cycle, a one-off
    -- tide update): the catch-up waits for it, as later cycles do.
    local retry_ms, said
    while not stats and code == "locked" and not stopped() do
      retry_ms = M.next_retry(retry_ms)
      if errors ~= said and worth_saying(code, retry_ms) then
        say(M.retry_message(errors, retry_ms))
        said = errors
      end
      local deadline = now_ms() + retry_ms
      repeat
        core.sleep(0.01)
      until now_ms() >= deadline or stopped()
      if not stopped() then stats, errors, code = update() end
    end
    if not stats or hooks.on_cycle(stats, errors, nil) == false
       or stats.interrupted or stopped() then
      M.close(e, folders)
      return stats, errors, code
    end
  end
  local watchers = new_watchers(e:loop())
  local function pending() return watch:pending() + watchers.count end
  -- The pipeline's own files: live mode runs the code it loaded, so a
  -- change to one is said, not processed.
  local code = {}
  for _, path in ipairs(hooks.code_files or {}) do
    code[path] = true
    folders.add_file(path, true)
  end
  -- Whether a walked folder holds path: then its change is a file's too.
  local function walked(path)
    for abs in pairs(folders.watched) do
      if path:sub(1, #abs + 1) == abs .. "/" then return true end
    end
    return false
  end
  local function under(path, folder)
    return path == folder or path:sub(1, #folder + 1) == folder .. "/"
  end
  -- tide's own write (the store's files, a target's below a walked
  -- folder: seen.own), which no walk lists; a folder walked on purpose (a
  -- target's folder read back) is not one.
  local function own_write(path)
    for _, own in ipairs(seen.own or {}) do
      if under(path, own) then
        for root in pairs(seen.walked or {}) do
          if under(root, own) then return false end
        end
        return true
      end
    end
    return false
  end
  -- A path that every walk over it excludes (a log the user writes
  -- there, the live command's own output redirected there).
  local function excluded(path)
    local any = false
    for root, walks in pairs(seen.walks_at or {}) do
      if path:sub(1, #root + 1) == root .. "/" then
        local rel = path:sub(#root + 2)
        for _, walk in pairs(walks) do
          if not walk:excludes(rel) then return false end
          any = true
        end
      end
    end
    return any
  end
  -- The changes that may change what a source lists: not tide's own
  -- writes, nor what every walk over them excludes; the pipeline's code
  -- changed is said.
  local function listed_changes(changes)
    local kept, said = {}, {}
    for _, c in ipairs(changes) do
      local path = c.path and c.dir .. "/" .. c.path
      if path and code[path] then
        -- Once, though a walked folder holding it marks it too.
        if not said[path] then
          said[path] = true
          say(fmt("%s changed: live mode runs the code it loaded; restart "
                  .. "it to run the new code", path))
          folders.add_file(path, true)
        end
      end
      -- What no walk lists starts no cycle; a file a source reads is its
      -- source's change, whatever the walks.
      local source_file = path and folders.file_roots[path]
        and not code[path]
      local unlisted = path and not source_file and (own_write(path)
        or excluded(path) or code[path] and not walked(path))
      if not unlisted then kept[#kept + 1] = c end
    end
    return kept
  end
  -- How the loop is waited on: blocking, or, when a host steps live mode
  -- (M.start), polled, the step then given back. The watches go on after.
  local wait_loop = hooks.wait and function(ms) hooks.wait(watch, ms) end
    or function(ms) watch:wait(ms) end
  local function wait(ms)
    wait_loop(ms)
    watchers:run(say)
  end
  local ok, a, b, c = pcall(function()
    -- The next cycle due without a change: the periodic rescan, or an
    -- auto_refresh component's period, whichever comes first.
    local rescan_ms = hooks.rescan * 1000
    local next_rescan, relist
    -- After a cycle that could not run: the delay before the next try,
    -- and what was said of the failure (said again only when it changes).
    local retry_ms, failed_with
    -- Whether a component may still be failed since the last whole walk:
    -- a failed component runs again at every cycle, but one that failed
    -- over something another component held (a target key) succeeds only
    -- once that one's state is gone, deleted at the end of a cycle. A
    -- cycle that deletes then has a whole walk follow.
    local failed_left = stats.components.errors > 0
    local failed_retry_ms
    -- Brings the next whole walk forward while components fail.
    local function retry_failed()
      if stats.components.errors == 0 then
        failed_retry_ms = nil
        return
      end
      failed_retry_ms = math.min(failed_retry_ms and failed_retry_ms * 2
        or M.FAILED_RETRY_MS, M.FAILED_RETRY_MAX_MS, rescan_ms)
      next_rescan = math.min(next_rescan, now_ms() + failed_retry_ms)
    end
    local function schedule()
      local period = rescan_ms
      if seen.refresh then period = math.min(period, seen.refresh * 1000) end
      next_rescan = now_ms() + period
      if watch_roots(folders, seen.walked or {}) then next_rescan = 0 end
      -- A watch that starts now (and runs until it first waits) did not
      -- see what changed since the cycle listed its source: the next
      -- cycle lists the sources again (not the folders).
      if watchers:start(seen.watched) then relist = true end
      watchers:run(say)
    end
    -- What is watched, said at the start and again when a cycle changed
    -- it (a folder made or removed, a file a component reads).
    local told
    local function tell_watching()
      if not hooks.on_watching then return end
      local sources, files = 0, 0
      for _ in pairs(watchers.tasks) do sources = sources + 1 end
      for _, watched in pairs(folders.files) do
        if watched then files = files + 1 end
      end
      local now = fmt("%d %d %d", watch:count(), sources, files)
      if now == told then return end
      told = now
      hooks.on_watching(watch:count(), sources, files)
    end
    schedule()
    retry_failed()
    tell_watching()
    while not stopped() do
      if watchers.rescan then
        watchers.rescan, next_rescan = false, 0
      end
      if pending() == 0 and not relist then
        wait(math.max(0, next_rescan - now_ms()))
      end
      local messages = watch:messages()
      if messages then say(messages) end
      local changes, emits, emitted
      if pending() > 0 or relist then
        settle(pending, stopped, wait)
        local files_only = watchers.count == 0 and not relist
        changes = listed_changes(watch:take())
        for abs in pairs(folders.unwatched) do
          changes[#changes + 1] = { dir = abs }
        end
        -- Only the pipeline's code changed: no cycle.
        if files_only and #changes == 0 then goto continue end
        emits, emitted = watchers:take()
        -- Listed again, the sources hold what they emitted.
        if relist then emits, emitted, relist = nil, nil, false end
        messages = watch:messages()
        if messages then say(messages) end
      elseif now_ms() < next_rescan or stopped() then
        goto continue
      else
        -- A full cycle lists every source: what was emitted is in it.
        watchers:take()
      end
      if stopped() then break end
      local fresh, errs, code_now = update(changes, emits)
      schedule()
      tell_watching()
      if not fresh then
        -- Main failed, or another update holds the store (another
        -- process, or another app of this one on the same store): the
        -- changes taken are not lost, since the next cycle lists every
        -- folder and source whole (app.lua keeps no walk of a cycle
        -- that failed); it comes with the next change, or after a
        -- delay that grows while the failures go on.
        retry_ms = math.min(M.next_retry(retry_ms), rescan_ms)
        next_rescan = math.min(next_rescan, now_ms() + retry_ms)
        if errs ~= failed_with and worth_saying(code_now, retry_ms) then
          say(M.retry_message(errs, retry_ms))
          failed_with = errs
        end
        goto continue
      end
      retry_ms, failed_with = nil, nil
      stats, errors = fresh, errs
      if changes == nil then failed_left = false end
      failed_left = failed_left or stats.components.errors > 0
      if failed_left and changes ~= nil and (stats.components.deleted > 0
                                             or stats.targets.deleted > 0) then
        next_rescan = 0
      end
      retry_failed()
      if emitted then table.move(emitted, 1, #emitted, #changes + 1, changes) end
      if hooks.on_cycle(stats, errors, changes) == false
         or stats.interrupted then
        break
      end
      ::continue::
    end
    return stats, errors
  end)
  watchers:close()
  M.close(e, folders)
  if not ok then error(a, 0) end
  return a, b, c
end

-- Stops watching the folders of a live session on engine e.
function M.close(e, folders)
  folders.watch:close()
  e:loop():run("nowait") -- the watch's handles close
end

-- Live mode a host steps from its own loop (app:start_live, tide.step,
-- tide_engine_step): M.run in a coroutine that never blocks. A step
-- resumes it for at most budget_ms: the scheduler gives the step back
-- between tasks once the budget is spent, and so does the wait for file
-- events when nothing is due. caught_up is the stats of the catch-up
-- cycle the caller ran. Returns a session: session:step(budget_ms) ->
-- true while live (raises what live mode raised), session:stop() finishes
-- the cycle under way, unwatches and returns M.run's results.
function M.start(e, update, seen, hooks, caught_up)
  local session = { stopping = false }
  local h = setmetatable({}, { __index = hooks })
  local outer = hooks.stopped or function() return false end
  h.caught_up = caught_up
  function h.stopped() return session.stopping or outer() end
  -- Waiting for time to pass (no event yet, a burst's quiet) gives the
  -- step back; the session is idle until the next resume.
  local idle = false
  function h.wait(watch, ms)
    watch:wait(0)
    if ms > 0 and not session.stopping then
      idle = true
      coroutine.yield()
      idle = false
    end
  end
  -- A full collection of the Lua heap takes milliseconds. In a state the
  -- engine owns (not a host's), live mode makes it itself, in a step that
  -- found nothing to do, once the heap has grown GC_GROWTH times since
  -- the last: before the collector would, in the middle of a cycle.
  local own_gc = e:owns_state()
  local gc_base
  if own_gc then
    collectgarbage()
    gc_base = collectgarbage("count")
  end
  local co = coroutine.create(function()
    return M.run(e, update, seen, h)
  end)
  local function resume()
    local r = table.pack(coroutine.resume(co))
    if not r[1] then error(r[2], 0) end
    if coroutine.status(co) == "dead" then
      session.results = table.pack(table.unpack(r, 2, r.n))
    end
  end
  function session:step(budget_ms)
    if coroutine.status(co) == "dead" then return false end
    local sched = e:sched()
    sched:step(co, budget_ms)
    local ok, err = pcall(resume)
    sched:step()
    if not ok then error(err, 0) end
    if own_gc and idle and collectgarbage("count") > gc_base * M.GC_GROWTH
    then
      collectgarbage()
      gc_base = collectgarbage("count")
    end
    return coroutine.status(co) ~= "dead"
  end
  -- Whether the session is running now: a call from a callback of the
  -- loop a step is running (a host's handle on a shared loop).
  function session:busy()
    local status = coroutine.status(co)
    return status == "running" or status == "normal"
  end
  function session:stop()
    self.stopping = true
    while coroutine.status(co) ~= "dead" do resume() end
    local r = self.results
    return table.unpack(r, 1, r.n)
  end
  return session
end

-- "N folders[, F files][ and M sources]": what a live run watches.
function M.watching(folders, sources, files)
  local text = fmt("%d folder%s", folders, folders == 1 and "" or "s")
  if (files or 0) > 0 then
    text = text .. fmt("%s%d file%s", (sources or 0) > 0 and ", " or " and ",
                       files, files == 1 and "" or "s")
  end
  if (sources or 0) > 0 then
    text = text .. fmt(" and %d source%s", sources,
                       sources == 1 and "" or "s")
  end
  return text
end

-- The status line of a live run on a terminal.
function M.status(folders, applied, last, sources, files)
  local text = fmt("tide: watching %s; %d change%s applied",
                   M.watching(folders, sources, files), applied,
                   applied == 1 and "" or "s")
  if last then text = text .. "; last: " .. last end
  return text
end

return M
