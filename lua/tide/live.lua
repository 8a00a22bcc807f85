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
-- runs again.
--
-- The first SIGINT or SIGTERM (trapped by the tide command) stops: a
-- cycle under way commits what completed, and live mode returns; a
-- second one exits at once (lsignal.c).

local core = require "tide.core"

local M = {}

local now_ms = core.now_ms
local fmt = string.format

-- A burst of events ends after this much quiet...
M.QUIET_MS = 3
-- ...or this long after its first event.
M.MAX_DELAY_MS = 100
-- The safety net's period, in seconds.
M.DEFAULT_RESCAN = 3600

-- Watches the roots of walked that are not watched yet; says why one
-- cannot be. Returns whether it watched a new one: what changed in it
-- between the cycle's walk and its watch needs one more cycle.
local function watch_roots(watch, watched, walked, say)
  local added = false
  for abs, walk in pairs(walked) do
    if walk.live and not watched[abs] then
      watched[abs] = true
      added = true
      local root, err = watch:add(abs, walk.follow_symlinks)
      if not root then say(err .. "; it is rescanned every cycle") end
    end
  end
  return added
end

-- Waits for the end of a burst of changes: until QUIET_MS pass without a
-- new one, or MAX_DELAY_MS since first. wait(ms) waits on the loop.
local function settle(watch, stopped, wait)
  local first = now_ms()
  while not stopped() do
    local before = watch:pending()
    local left = M.MAX_DELAY_MS - (now_ms() - first)
    if left <= 0 then return end
    local quiet_until = now_ms() + math.min(M.QUIET_MS, left)
    repeat
      wait(math.max(0, quiet_until - now_ms()))
    until watch:pending() ~= before or now_ms() >= quiet_until
      or stopped()
    if watch:pending() == before then return end
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
-- (a trapped signal). Returns the last stats and errors, or nil, message,
-- code when a cycle could not run.
function M.run(e, update, seen, hooks)
  local say = hooks.on_message or function() end
  local stopped = hooks.stopped or core.stop_requested
  local stats, errors, code
  if hooks.caught_up then
    stats, errors = hooks.caught_up, {}
  else
    stats, errors, code = update()
    if not stats then return nil, errors, code end
    if hooks.on_cycle(stats, errors, nil) == false or stats.interrupted
       or stopped() then
      return stats, errors
    end
  end
  if seen.watched_source then
    return nil, fmt("tide.source %s: live mode does not run watch "
      .. "functions yet; leave watch out, and the source is read again at "
      .. "every cycle (a file change, an auto_refresh period, the periodic "
      .. "rescan)", seen.watched_source)
  end
  local watch, err = core.watch_new(e:loop())
  if not watch then return nil, err end
  local watched = {}
  -- How the loop is waited on: blocking, or, when a host steps live mode
  -- (M.start), polled, the step then given back.
  local wait = hooks.wait and function(ms) hooks.wait(watch, ms) end
    or function(ms) watch:wait(ms) end
  local ok, a, b, c = pcall(function()
    -- The next cycle due without a change: the periodic rescan, or an
    -- auto_refresh component's period, whichever comes first.
    local rescan_ms = hooks.rescan * 1000
    local next_rescan
    local function schedule()
      local period = rescan_ms
      if seen.refresh then period = math.min(period, seen.refresh * 1000) end
      next_rescan = now_ms() + period
      if watch_roots(watch, watched, seen.walked or {}, say) then
        next_rescan = 0
      end
    end
    schedule()
    if hooks.on_watching then hooks.on_watching(watch:count()) end
    while not stopped() do
      if watch:pending() == 0 then
        wait(math.max(0, next_rescan - now_ms()))
      end
      local messages = watch:messages()
      if messages then say(messages) end
      local changes
      if watch:pending() > 0 then
        settle(watch, stopped, wait)
        changes = watch:take()
        messages = watch:messages()
        if messages then say(messages) end
      elseif now_ms() < next_rescan or stopped() then
        goto continue
      end
      if stopped() then break end
      local fresh, errs = update(changes)
      schedule()
      if not fresh then
        -- Main failed, or another process holds the store: said, and
        -- the next change (or rescan) tries again.
        say(errs)
        goto continue
      end
      stats, errors = fresh, errs
      if hooks.on_cycle(stats, errors, changes) == false
         or stats.interrupted then
        break
      end
      ::continue::
    end
    return stats, errors
  end)
  watch:close()
  e:loop():run("nowait") -- the watch's handles close
  if not ok then error(a, 0) end
  return a, b, c
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
  -- step back.
  function h.wait(watch, ms)
    watch:wait(0)
    if ms > 0 and not session.stopping then coroutine.yield() end
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
    return coroutine.status(co) ~= "dead"
  end
  function session:stop()
    self.stopping = true
    while coroutine.status(co) ~= "dead" do resume() end
    local r = self.results
    return table.unpack(r, 1, r.n)
  end
  return session
end

-- The status line of a live run on a terminal.
function M.status(folders, applied, last)
  local text = fmt("tide: watching %d folder%s; %d change%s applied",
                   folders, folders == 1 and "" or "s", applied,
                   applied == 1 and "" or "s")
  if last then text = text .. "; last: " .. last end
  return text
end

return M
