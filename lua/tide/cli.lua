-- The tide command line: every command but `run` and `--version`, which
-- the host handles in C. main(args) returns the exit status: 0 success,
-- 1 some components failed, 2 the pipeline could not run.
local core = require "tide.core"
local report = require "tide.report"
local live = require "tide.live"
local appmod = require "tide.app"

local io_stdout, io_stderr = io.stdout, io.stderr
local type, pairs, ipairs, tostring, tonumber, pcall, loadfile =
  type, pairs, ipairs, tostring, tonumber, pcall, loadfile
local fmt = string.format

local M = {}

local share_options, lead_share

M.usage = [[
usage: tide COMMAND [ARGS]

commands:
  update PIPELINE.lua [--full-reprocess] [--reset] [--preview] [--db PATH]
                      [--allow-empty] [--max-inflight N] [--jobs N]
                      [--quiet] [--json] [--live|-L] [--rescan SECONDS]
                      [--workers N] [--lease SECONDS]
                             bring the pipeline's targets up to date; with
                             --live, then keep them so as files change;
                             with --workers (a PostgreSQL store), N worker
                             processes share the work
  worker PIPELINE.lua --db postgresql://... [--update ID] [--wait SECONDS]
                      [--live] [--after ID] [--lease SECONDS] [--jobs N]
                      [--max-inflight N] [--quiet] [--json]
                             join an update another process runs (tide
                             update --workers) and take a share of it;
                             with --live, every update in turn
  live PIPELINE.lua [...]    update --live
  drop PIPELINE.lua [--force] [--db PATH]
                             delete every target state the app owns, then
                             its state
  show PIPELINE.lua [PATH] [--tree] [--target-states] [--json] [--db PATH]
                             the component tree and what each owns
  why PIPELINE.lua TARGET KEY [--json] [--db PATH]
                             where one target state came from
  verify PIPELINE.lua [--repair] [--json] [--db PATH]
                             compare every target with what the store says
                             it holds; --repair writes back what drifted
  show PIPELINE.lua --workers [--json] [--db PATH]
                             the workers of the app's shared update under
                             way
  ls [--db PATH]             the apps in a state store
  run SCRIPT.lua [ARGS...]   run a Lua 5.4 script with tide preloaded
                             ("-" reads the script from standard input)
  help                       show this help
  --version                  tide's, Lua's, SQLite's and libuv's versions

The state store is --db PATH, else $TIDE_DB, else .tide/state.db beside the
pipeline file; a postgresql:// location, or a libpq "host=... dbname=..."
string, keeps it in PostgreSQL. A pipeline runs from its own folder:
relative paths in it are relative to the pipeline file.
]]

-- The usage lines of one command (each of its forms), after a mistake in
-- its arguments: the whole list is for `tide help`.
local function usage_of(name)
  local out, inside = { "usage of tide " .. name .. ":" }, false
  for line in M.usage:gmatch("[^\n]*\n") do
    local word = line:match("^  (%S+)")
    if word then inside = word == name end
    if inside and (word or line:match("^   ")) then out[#out + 1] = line end
  end
  out[#out + 1] = "(tide help lists every command)\n"
  return (table.concat(out, "\n"):gsub("\n\n", "\n"))
end

local function say(...) io_stderr:write("tide: ", fmt(...), "\n") end

-- Parses flags; `spec` maps a flag to "bool" or "value". Returns the
-- options and the positional arguments, or nil and a message.
local function parse(args, spec, aliases)
  local opts, pos = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a:sub(1, 1) == "-" and a ~= "-" then
      local name, value = a:match("^%-%-([%w-]+)=(.*)$")
      name = name or a:match("^%-%-([%w-]+)$") or (aliases and aliases[a])
      local kind = name and spec[name]
      if not kind then return nil, fmt("unknown option %s", a) end
      if kind == "value" then
        if not value then
          i = i + 1
          value = args[i]
          if value == nil then return nil, fmt("option %s needs a value", a) end
        end
        opts[name] = value
      elseif value then
        return nil, fmt("option --%s takes no value", name)
      else
        opts[name] = true
      end
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end

local function absolute(path, cwd)
  if path:sub(1, 1) == "/" then return path end
  return cwd .. "/" .. path
end

-- A store's location: a path made absolute; a PostgreSQL location as is.
local function store_location(db, cwd)
  if core.store_is_postgres(db) then return db end
  return absolute(db, cwd)
end

-- Loads the pipeline file from its own folder; returns the app, its
-- store path, or nil and a message.
local function load_pipeline(file, db_flag)
  local cwd = assert(core.getcwd())
  local path = absolute(file, cwd)
  local dir = path:match("^(.*)/[^/]*$")
  local db = db_flag or os.getenv("TIDE_DB")
  db = db and store_location(db, cwd) or (dir .. "/.tide/state.db")
  local ok, err = core.chdir(dir)
  if not ok then return nil, err end
  local chunk, lerr = loadfile(path)
  if not chunk then return nil, lerr end
  -- What the user reads names the pipeline's lines, not tide's own (a
  -- tide.record or fs.walk it called at the top level that raised).
  local res = table.pack(xpcall(chunk, function(e)
    local trace = require("tide.traceback").of_user(e, 2)
    return trace
  end))
  if not res[1] then return nil, tostring(res[2]) end
  local app = res[2]
  if not require("tide.app").is_app(app) then
    return nil, fmt("%s must return an app (return tide.app(...)), got %s",
                    file, type(app))
  end
  return app, db
end

-- The pipeline's own code, for live mode to say when it changes: the
-- pipeline file, and the modules it required from its folder.
local function code_files(pipeline)
  pipeline = core.fs_abspath(pipeline) or pipeline -- ./p.lua, ../x/p.lua
  local files, dir = { pipeline }, pipeline:match("^(.*)/[^/]*$") .. "/"
  local names = {}
  for name in pairs(package.loaded) do
    if type(name) == "string" and name ~= "tide"
       and name:sub(1, 5) ~= "tide." then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local found = package.searchpath(name, package.path)
    local abs = found and core.fs_abspath(found) -- from the pipeline's folder
    if abs and abs:sub(1, #dir) == dir and abs ~= pipeline then
      files[#files + 1] = abs
    end
  end
  return files
end

local commands = {}

function commands.help()
  io_stdout:write(M.usage)
  return 0
end
commands["--help"] = commands.help
commands["-h"] = commands.help

-- --workers and --lease: the number of workers (nil when not given) and
-- the lease in milliseconds, or a message.
function share_options(opts, command)
  local workers = opts.workers and math.tointeger(tonumber(opts.workers))
  if opts.workers and (not workers or workers < 1) then
    return nil, nil, command .. ": --workers must be a positive integer"
  end
  local lease = opts.lease and tonumber(opts.lease)
  if opts.lease and (not lease or lease <= 0) then
    return nil, nil, command .. ": --lease must be a positive number of "
      .. "seconds"
  end
  return workers, lease and math.floor(lease * 1000 + 0.5)
end

-- The modules a worker runs, compiled by the lead before it forks.
local WORKER_MODULES = { "tide", "tide.run", "tide.share", "tide.engine",
                         "tide.reconcile", "tide.postgres", "tide.fs",
                         "tide.sqlite" }

-- A worker its lead forked (fork_workers): waits until the lead's update
-- is open and the lead tells it how to join it (the store's location,
-- then `tide worker`'s arguments, NUL-separated), then runs as `tide
-- worker` would, with the environment a spawned worker gets. Ends quietly
-- when the lead ended without telling. Returns the exit status.
local function forked_worker(channel, lead)
  local told = channel:receive()
  channel:close()
  if not told then return 0 end
  local args = {}
  for field in (told .. "\0"):gmatch("(.-)%z") do args[#args + 1] = field end
  core.setenv("TIDE_DB", table.remove(args, 1))
  core.setenv("TIDE_LEAD_PID", tostring(lead))
  local ok, status = pcall(commands.worker, table.unpack(args))
  if ok then return status end
  say("worker: %s", type(status) == "table" and tostring(status.message)
      or tostring(status))
  return 2
end

-- Ends forked workers that were told nothing (they end at once) and
-- reaps them.
local function release_workers(children)
  for _, c in ipairs(children or {}) do c.channel:close() end
  for _, c in ipairs(children or {}) do
    while core.reap(c.pid) == nil do core.sleep(0.001) end
  end
end

-- Forks the n workers of a shared update at the lead's start, before it
-- has threads, connections or a loop at work (lfork.c), tide's modules
-- compiled and libpq loaded: each waits until the update is open. (One
-- that started as early as the lead would open the store as the lead
-- makes it, in a first update, and compete with the lead's own start for
-- the CPUs: it was slower.) Returns { { pid, channel } }, or nil when
-- this process cannot fork (its workers are then spawned at the
-- opening). A forked worker never returns here.
local function fork_workers(n, pipeline)
  core.pg_load() -- a failure is the store's to report
  for _, name in ipairs(WORKER_MODULES) do require(name) end
  local lead, children = core.getpid(), {}
  for i = 1, n do
    local pid, channel = core.fork_worker("tide worker",
                                          "tide worker " .. pipeline)
    if pid == 0 then
      for _, c in ipairs(children) do c.channel:close() end
      core.exit_now(forked_worker(channel, lead))
    end
    if not pid then
      release_workers(children)
      return nil
    end
    children[i] = { pid = pid, channel = channel }
  end
  return children
end

-- The arguments of `tide worker` for a lead's workers, but the update
-- they join.
local function worker_args(pipeline, live, lease_ms, forward)
  local args = { pipeline, "--quiet" }
  if live then args[#args + 1] = "--live" end
  if lease_ms then
    args[#args + 1] = "--lease=" .. tostring(lease_ms / 1000)
  end
  for _, flag in ipairs(forward) do args[#args + 1] = flag end
  return args
end

-- The lead's part of a shared update: n workers, forked at its start
-- (forked: fork_workers) or started as this executable's `worker`
-- command, told to join once the update is open with the flags forward,
-- reaped at the end; starting() says whether one of them still runs.
function lead_share(pipeline, db, n, lease_ms, forward, live, forked)
  local pids, exe = {}, assert(core.exe_path())
  local share = { role = "lead", lease_ms = lease_ms }
  for i, child in ipairs(forked or {}) do pids[i] = child.pid end
  -- What the lead does that a user should hear of (share.lua).
  function share.notice(text) say("%s", text) end
  -- Starts worker i for the update opened (live: for the session's
  -- updates from it on), forked at the lead's start if it was, else as
  -- this executable's `worker`.
  local function start(i, update_id)
    local args = worker_args(pipeline, live, lease_ms, forward)
    args[#args + 1] = live and "--after=" .. tostring(update_id - 1)
      or "--update=" .. tostring(update_id)
    local child = forked and forked[i]
    if child and not child.told then
      -- (One that died is reaped as any other.)
      child.told = true
      child.channel:send(table.concat({ db, table.unpack(args) }, "\0"))
      child.channel:close()
      return
    end
    -- The store's location (which may hold a password) goes in the
    -- environment, not on the command line every user can list.
    local argv = { exe, "worker", table.unpack(args) }
    local pid, err = core.spawn(argv, { "TIDE_DB=" .. db,
      "TIDE_LEAD_PID=" .. tostring(core.getpid()) })
    if not pid then error({ tide_fatal = true, message = err }, 0) end
    pids[i] = pid
  end
  -- Reaps the workers that ended; whether one of them still runs. Those
  -- that ended with a status other than 0 (killed, crashed) wait in
  -- ended for share.ended; those a signal ended, other than a stop's
  -- (SIGINT, SIGTERM: 130 once trapped), in died, by their number, for
  -- live mode.
  local ended, died = {}, {}
  local function reap()
    local running = false
    for i, pid in ipairs(pids) do
      if pids[pid] == nil then
        local status = core.reap(pid)
        if status == nil then
          running = true
        else
          pids[pid] = true
          if status ~= 0 then ended[#ended + 1] = pid end
          if status > 128 and status ~= 128 + 2 and status ~= 128 + 15 then
            died[#died + 1] = { i = i, pid = pid, status = status }
          end
        end
      end
    end
    return running
  end
  share.starting = reap
  -- The pids of the workers that ended badly since the last call.
  function share.ended()
    reap()
    local out = ended
    ended = {}
    return out
  end
  local told = false
  function share.on_open(update_id)
    if live and told then
      -- Live mode: the workers are started once and take every cycle's
      -- update in turn; one that was killed (or crashed) is started
      -- again, so that the session keeps its n workers.
      reap()
      for _, d in ipairs(died) do
        start(d.i, update_id)
        share.notice(("worker %d (pid %d) was ended by signal %d: "
          .. "started again (pid %d)"):format(d.i, d.pid, d.status - 128,
                                               pids[d.i]))
      end
      died = {}
      return
    end
    told = true
    for i = 1, n do start(i, update_id) end
  end
  -- A lead that was stopped (SIGINT, SIGTERM) stops the workers it
  -- started that still run, as a stop would stop them (what each finished
  -- is committed, and it leaves), and waits for them, at most wait_s
  -- seconds. It asks (core.ask_stop): a worker that the same Ctrl-C
  -- reached, which stops already, must not take it for a second signal,
  -- which would end it at once.
  function share.stop_workers(wait_s)
    reap()
    for _, pid in ipairs(pids) do
      if not pids[pid] then core.ask_stop(pid) end
    end
    local deadline = core.now_ms() + wait_s * 1000
    while reap() and core.now_ms() < deadline do core.sleep(0.005) end
  end
  -- Workers that are still running when the update ends are waited for:
  -- they end once no item is left. Live mode's, and those of an update
  -- that failed (they may wait for it to be listed), are stopped.
  function share.finish(failed)
    -- Forked workers not told to join (the update never opened) end.
    for _, child in ipairs(forked or {}) do child.channel:close() end
    for _, pid in ipairs(pids) do
      if (live or failed) and not pids[pid] then core.stop(pid) end
    end
    for _, pid in ipairs(pids) do
      while not pids[pid] and core.reap(pid) == nil do core.sleep(0.005) end
      pids[pid] = true
    end
  end
  return share
end

-- A command that ends (not --live) has no frames to keep short, and
-- collects with Lua's incremental collector instead of the generational
-- one the engine starts its state in (for live mode). A cold run's heap
-- grows from start to end: the generational collector's major
-- collections then free little, and it falls back to full collections
-- that stop everything before it goes back to minor ones. In a cold run
-- of 10k files it spent 8% of the time collecting, the incremental one 4%.
local function collect_for(live)
  if not live then collectgarbage("incremental") end
end

-- tide update and tide live (update --live): name is the command the
-- user typed, which every message about its arguments names.
local function update_command(name, ...)
  local opts, pos = parse({ ... }, {
    ["full-reprocess"] = "bool", reset = "bool", preview = "bool",
    db = "value", jobs = "value", quiet = "bool", json = "bool",
    live = "bool", ["allow-empty"] = "bool", ["max-inflight"] = "value",
    rescan = "value", workers = "value", lease = "value",
  }, { ["-L"] = "live" })
  if not opts then
    say("%s: %s", name, pos)
    io_stderr:write(usage_of("update"))
    return 2
  end
  if #pos ~= 1 then
    say("%s: expected one pipeline file", name)
    io_stderr:write(usage_of("update"))
    return 2
  end
  collect_for(opts.live)
  -- --max-inflight, else TIDE_MAX_INFLIGHT, else the app's own.
  local given, from = opts["max-inflight"], "--max-inflight"
  if not given and os.getenv("TIDE_MAX_INFLIGHT") then
    given, from = os.getenv("TIDE_MAX_INFLIGHT"), "TIDE_MAX_INFLIGHT"
  end
  local inflight = given and math.tointeger(tonumber(given))
  if given and (not inflight or inflight < 1) then
    say("%s: %s must be a positive integer", name, from)
    return 2
  end
  local jobs = opts.jobs and math.tointeger(tonumber(opts.jobs))
  if opts.jobs and (not jobs or jobs < 1 or jobs > appmod.MAX_JOBS) then
    say("%s: --jobs must be a positive integer, at most %d", name,
        appmod.MAX_JOBS)
    return 2
  end
  local rescan = opts.rescan and tonumber(opts.rescan)
  if opts.rescan and (not opts.live or not rescan or rescan <= 0) then
    say(opts.live and "%s: --rescan must be a positive number of seconds"
        or "%s: --rescan is for live mode (--live)", name)
    return 2
  end
  if opts.live and opts.preview then
    say(name == "live" and "live: --preview is for tide update: live mode "
        .. "writes as it goes" or "update: --live cannot --preview: live "
        .. "mode writes as it goes")
    return 2
  end
  local workers, lease, why = share_options(opts, name)
  if why then
    say("%s", why)
    return 2
  end
  if opts.lease and not workers then
    say("%s: --lease is for --workers", name)
    return 2
  end
  if workers and opts.preview then
    say("%s: --workers shares an update; it cannot preview", name)
    return 2
  end
  local pipeline = absolute(pos[1], assert(core.getcwd()))
  local forked = workers and fork_workers(workers, pipeline)
  local app, db = load_pipeline(pos[1], opts.db)
  if not app then
    release_workers(forked)
    say("%s", db)
    return 2
  end
  local share
  if workers then
    if not core.store_is_postgres(db) then
      release_workers(forked)
      say("%s: --workers needs a PostgreSQL state store (--db "
          .. "postgresql://...): workers share the update through it", name)
      return 2
    end
    -- Each worker runs as this process would.
    local forward = {}
    if jobs then forward[#forward + 1] = "--jobs=" .. tostring(jobs) end
    if inflight then
      forward[#forward + 1] = "--max-inflight=" .. tostring(inflight)
    end
    share = lead_share(pipeline, db, workers, lease, forward, opts.live,
                       forked)
  end
  -- The first SIGINT or SIGTERM stops the run: the components stuck in
  -- their code are interrupted, what completed is committed, and the exit
  -- status is 130; a second signal exits at once (lsignal.c). Code from
  -- tide's own folder is never interrupted half-way.
  core.trap_signals(debug.getinfo(1, "S").source:match("^(@.*/)[^/]*$"))
  local progress = report.progress(opts.quiet or not core.isatty(2))
  local failures = report.error_printer(say)
  local live_hooks = opts.live and M.live_output(opts, progress, failures)
    or {}
  -- A preview with --json lists its changes in the one JSON object.
  local changes = opts.preview and opts.json and {} or nil
  local stats, errors = app:update {
    db = db, full_reprocess = opts["full-reprocess"], reset = opts.reset,
    preview = opts.preview, jobs = jobs, allow_empty = opts["allow-empty"],
    max_inflight = inflight, live = opts.live, rescan = rescan,
    on_cycle = live_hooks.on_cycle, on_message = live_hooks.on_message,
    on_watching = live_hooks.on_watching,
    on_cycle_start = opts.live and progress.restart or nil,
    code_files = opts.live and code_files(pipeline) or nil,
    on_error = function(path, message, kind)
      progress.clear()
      -- A target's own failure names the target: it is no component.
      if kind == "source" or kind == "store" or kind == "target" then
        say("%s", message)
      elseif path ~= "" then
        -- main's own failure is the run's, reported once below.
        failures.component(path, message)
      end
    end,
    on_preview = opts.preview and report.preview_printer(io_stdout,
                                                         changes) or nil,
    on_progress = progress.update, share = share,
  }
  if share then share.finish(not stats) end
  app:close()
  progress.clear()
  failures.finish()
  if not stats then
    say("%s", errors)
    return 2
  end
  if opts.live then
    -- Every cycle was reported as it ended; a stop is how live mode ends.
    live_hooks.finish()
    return 0
  end
  if opts.json then -- interrupted: one more member in the one object
    stats.changes = changes
    io_stdout:write(report.stats_json(stats), "\n")
  elseif not opts.quiet then
    io_stdout:write(report.stats_line(stats), "\n")
  end
  if stats.interrupted then
    local n = stats.components.added + stats.components.reprocessed
    say("interrupted: %d component%s committed; run tide update again to "
        .. "finish", n, n == 1 and "" or "s")
    return 130
  end
  -- A shared update's workers report their components' errors themselves
  -- (on their own stderr, the lead's for those it started): their counts
  -- reach the lead's.
  return (#errors > 0 or stats.components.errors > 0) and 1 or 0
end

-- What `tide update --live` prints: with --json one stats object per
-- cycle, one per line; else, on a terminal, a status line (rewritten in
-- place) saying what is watched, how many changes were applied and the
-- last one, and otherwise one stats line per cycle; failures as a
-- catch-up run prints them, each cycle's own (failures: the error
-- printer, finished at every cycle's end); nothing but failures with
-- --quiet.
function M.live_output(opts, progress, failures)
  local tty = core.isatty(2) and not opts.quiet
  local folders, sources, files, applied, last = 0, 0, 0, 0, nil
  local function status()
    if tty then
      io_stderr:write("\r\27[K", live.status(folders, applied, last,
                                               sources, files))
      io_stderr:flush()
    end
  end
  local function clear()
    if tty then io_stderr:write("\r\27[K") end
  end
  local hooks = {}
  function hooks.on_watching(n, watched_sources, watched_files)
    folders, sources, files = n, watched_sources, watched_files
    if tty then
      status()
    elseif not opts.quiet then
      say("watching %s for changes", live.watching(n, sources, files))
    end
  end
  function hooks.on_message(text)
    clear()
    say("%s", text)
    status()
  end
  function hooks.on_cycle(stats, _, changes)
    progress.clear()
    clear()
    if failures then failures.finish() end
    for _, c in ipairs(changes or {}) do
      applied = applied + 1
      if c.source then
        last = c.source .. ": " .. tostring(c.key)
      else
        last = c.path and (c.dir .. "/" .. c.path) or (c.dir .. " (rescan)")
      end
    end
    if opts.json then
      io_stdout:write(report.stats_json(stats), "\n")
      io_stdout:flush()
    elseif not opts.quiet and not tty then
      io_stdout:write(report.stats_line(stats), "\n")
      io_stdout:flush()
    end
    status()
  end
  function hooks.finish() clear() end
  return hooks
end

function commands.update(...)
  return update_command("update", ...)
end

function commands.live(...)
  return update_command("live", "--live", ...)
end

-- tide worker: joins an update the lead runs, takes items until none is
-- left, and prints its own counts.
function commands.worker(...)
  local opts, pos = parse({ ... }, {
    db = "value", update = "value", wait = "value", lease = "value",
    jobs = "value", quiet = "bool", json = "bool", ["max-inflight"] = "value",
    live = "bool", after = "value",
  }, { ["-L"] = "live" })
  if not opts or #pos ~= 1 then
    say("worker: %s", opts and "expected one pipeline file" or pos)
    io_stderr:write(usage_of("worker"))
    return 2
  end
  collect_for(opts.live)
  local _, lease, why = share_options(opts, "worker")
  if why then
    say("%s", why)
    return 2
  end
  local update = opts.update and math.tointeger(tonumber(opts.update))
  local after = opts.after and math.tointeger(tonumber(opts.after))
  if (opts.after and (not after or after < 0)) or (opts.live and update) then
    say("worker: --after takes an update id; --live takes every update in "
        .. "turn, not one --update")
    return 2
  end
  local wait = opts.wait and tonumber(opts.wait)
  local jobs = opts.jobs and math.tointeger(tonumber(opts.jobs))
  local inflight = opts["max-inflight"]
    and math.tointeger(tonumber(opts["max-inflight"]))
  if (opts.update and (not update or update < 1))
     or (opts.wait and (not wait or wait < 0))
     or (opts.jobs and (not jobs or jobs < 1 or jobs > appmod.MAX_JOBS))
     or (opts["max-inflight"] and (not inflight or inflight < 1)) then
    say("worker: --update, --jobs and --max-inflight take a positive "
        .. "integer (--jobs at most %d), --wait a number of seconds",
        appmod.MAX_JOBS)
    return 2
  end
  local app, db = load_pipeline(pos[1], opts.db)
  if not app then
    say("%s", db)
    return 2
  end
  if not core.store_is_postgres(db) then
    say("worker: a worker joins an update through a PostgreSQL state store "
        .. "(--db postgresql://...)")
    return 2
  end
  -- A worker its lead started ends with it, at once (kill -9 of the lead
  -- included): the lead's end is the update's.
  local lead = math.tointeger(tonumber(os.getenv("TIDE_LEAD_PID") or ""))
  if lead and not core.die_with_parent(lead) then
    say("worker: the update's lead (pid %d) is gone", lead)
    return 1
  end
  -- A stop (SIGTERM, SIGINT) ends the worker: what it finished is
  -- committed, and what it holds is free for others at once.
  core.trap_signals(debug.getinfo(1, "S").source:match("^(@.*/)[^/]*$"))
  local failures = report.error_printer(say)
  -- Live mode: one update after another, each heard of through the
  -- store's notifications, until a signal stops the worker.
  local livemod = live
  local live = opts.live and { location = db } or nil
  local status = 0
  -- Live mode: an update the worker could not take part in (the server
  -- restarted, its main failed here) is said once and tried again, after
  -- a delay that grows while the failures go on: the worker stays.
  local retry_ms, failed_with
  repeat
    local stats, errors = app:update {
      db = db, jobs = jobs, max_inflight = inflight,
      share = { role = "worker", update_id = update, lease_ms = lease,
                wait_s = wait, live = live, after = after },
      on_error = function(path, message, kind)
        if kind == "left" or kind == "target" then
          say("%s", message)
        elseif path ~= "" then
          failures.component(path, message)
        end
      end,
    }
    failures.finish()
    if not stats and live then
      retry_ms = livemod.next_retry(retry_ms)
      if errors ~= failed_with then
        say("%s", livemod.retry_message(errors, retry_ms))
        failed_with = errors
      end
      local deadline = core.now_ms() + retry_ms
      while core.now_ms() < deadline and not core.stop_requested() do
        core.sleep(0.01)
      end
      stats = { interrupted = core.stop_requested() or nil }
      errors = {}
    elseif not stats then
      app:close()
      say("%s", errors)
      return 2
    else
      retry_ms, failed_with = nil, nil
    end
    if stats.update then
      if opts.json then
        io_stdout:write(report.stats_json(stats), "\n")
      elseif not opts.quiet then
        io_stdout:write(report.stats_line(stats), "\n")
      end
      io_stdout:flush()
      after = stats.update
    end
    if stats.interrupted then status = 130 end
    if #errors > 0 then status = math.max(status, 1) end
  until not live or stats.interrupted
  if live and live.listener then live.listener:close() end
  app:close()
  return status
end

-- Parses a command that takes one pipeline file and loads it: returns
-- the options, the app and its store path, or nil and the exit status.
local function with_pipeline(name, args, flags)
  local opts, pos = parse(args, flags)
  if not opts or #pos ~= 1 then
    say("%s: %s", name, opts and "expected one pipeline file" or pos)
    io_stderr:write(usage_of(name))
    return nil, 2
  end
  local app, db = load_pipeline(pos[1], opts.db)
  if not app then
    say("%s", db)
    return nil, 2
  end
  return opts, app, db
end

function commands.drop(...)
  local opts, app, db = with_pipeline("drop", { ... },
                                      { force = "bool", db = "value" })
  if not opts then return app end
  if not opts.force and core.isatty(0) and core.isatty(2) then
    io_stderr:write(fmt("Delete every target state app %s owns, then its "
                        .. "state in %s? [y/N] ", app.name,
                        core.store_public(db) or "its store"))
    local answer = io.read("l")
    if not answer or not answer:match("^[yY]") then
      say("drop cancelled")
      return 1
    end
  end
  local deleted, err = app:drop { db = db }
  app:close()
  if not deleted then
    say("%s", err)
    return 2
  end
  if err == false then -- nothing of it there (dropped before, or never run)
    io_stdout:write(fmt("nothing to drop: app %s has no state in %s\n",
                        app.name, core.store_public(db) or "its store"))
    return 0
  end
  io_stdout:write(fmt("dropped app %s: %d target states deleted\n", app.name,
                      deleted))
  return 0
end

-- tide verify: exit 0 when every target holds what the store says (or
-- --repair wrote it back), 1 when drift remains, 3 when there is none but
-- a component or a source failed (what it declares was not checked), 2
-- when the pipeline could not run.
function commands.verify(...)
  local opts, app, db = with_pipeline("verify", { ... },
    { repair = "bool", db = "value", json = "bool" })
  if not opts then return app end
  local failures = report.error_printer(say)
  local result, errors = app:verify {
    db = db, repair = opts.repair,
    on_error = function(path, message, kind)
      if kind == "source" or kind == "target" then say("%s", message)
      elseif path ~= "" then failures.component(path, message)
      end
    end,
  }
  app:close()
  failures.finish()
  if not result then
    say("%s", errors)
    return 2
  end
  io_stdout:write(report.verify(app.name, result, opts.json))
  local verify = require "tide.verify"
  if verify.drifted(result) then return 1 end
  return verify.checked_all(result) and 0 or 3
end

-- Runs a report (show, why, ls) on the store opened read-only and prints
-- what it returns; a report returns false as its second value when what
-- was asked for does not exist (exit status 1).
local function report_from(db, f, ...)
  local store, err = core.store_open(db, "read")
  if not store then
    say("%s", err)
    return 2
  end
  local ok, out, found = pcall(f, store, ...)
  store:close()
  if not ok then say("%s", out) return 2 end
  if found == false then say("%s", out) return 1 end
  io_stdout:write(out)
  return 0
end

function commands.show(...)
  local opts, pos = parse({ ... }, { tree = "bool", ["target-states"] = "bool",
                                     json = "bool", db = "value",
                                     workers = "bool" })
  if not opts or #pos < 1 or #pos > 2 then
    say("show: %s", opts and "expected a pipeline file and an optional path"
        or pos)
    io_stderr:write(usage_of("show"))
    return 2
  end
  if opts.workers and (pos[2] or opts.tree or opts["target-states"]) then
    say("show: --workers lists the workers only: no path, --tree or "
        .. "--target-states with it")
    return 2
  end
  local app, db = load_pipeline(pos[1], opts.db)
  if not app then say("%s", db) return 2 end
  if opts.workers then
    if not core.store_is_postgres(db) then
      say("show: --workers: workers share updates through a PostgreSQL "
          .. "state store (--db postgresql://...)")
      return 2
    end
    return report_from(db, report.workers, app, opts)
  end
  return report_from(db, report.show, app, pos[2], opts)
end

function commands.why(...)
  local opts, pos = parse({ ... }, { json = "bool", db = "value" })
  if not opts or #pos ~= 3 then
    say("why: %s", opts and "expected PIPELINE TARGET KEY" or pos)
    io_stderr:write(usage_of("why"))
    return 2
  end
  local app, db = load_pipeline(pos[1], opts.db)
  if not app then say("%s", db) return 2 end
  return report_from(db, report.why, app, pos[2], pos[3], opts)
end

function commands.ls(...)
  local opts, pos = parse({ ... }, { db = "value", json = "bool" })
  if not opts or #pos > 0 then
    say("ls: %s", opts and "takes no arguments" or pos)
    io_stderr:write(usage_of("ls"))
    return 2
  end
  local cwd = assert(core.getcwd())
  return report_from(store_location(opts.db or os.getenv("TIDE_DB")
                                    or ".tide/state.db", cwd),
                     report.ls, opts)
end

function M.main(args)
  local name = args[1]
  local command = name and commands[name]
  if not command then
    if name then say("unknown command '%s'", name) end
    io_stderr:write(M.usage)
    return 2
  end
  return command(table.unpack(args, 2))
end

return M
