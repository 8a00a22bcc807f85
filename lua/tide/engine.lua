-- The incremental engine: one run (`app:update`) of an app.
--
-- A run loads what the store remembers of the app's components, runs the
-- app's main function as the root component, and every mounted child as a
-- component of its own, each in a coroutine on the scheduler (run.lua).
-- A memoized component whose function logic, arguments and recorded
-- dependencies are unchanged is carried over with its subtree and target
-- states without running. A component that runs declares target states;
-- on success they are diffed against what it owned (reconcile.lua) and
-- submitted in batches. Components no longer mounted are deleted at the
-- end with their target states.
local core = require "tide.core"
local fnmod = require "tide.fn"
local target = require "tide.target"
local sched = require "tide.sched"
local reconcile = require "tide.reconcile"
local calls = require "tide.calls"
local parallel = require "tide.parallel"
local sharemod = require "tide.share"
local depsmod = require "tide.deps"
local flights = require "tide.flights"
local tracebacks = require "tide.traceback"

local type, error, pairs, ipairs, tostring, setmetatable, select, pcall,
      next = type, error, pairs, ipairs, tostring, setmetatable, select,
      pcall, next
local xpcall, getinfo = xpcall, debug.getinfo
local fmt, concat = string.format, table.concat
local new_deps, deps_of, merge_deps, deps_valid, scope_of =
  depsmod.new, depsmod.of, depsmod.merge, depsmod.valid, depsmod.scope_of
local encode, decode = core.cbor_encode, core.cbor_decode
local memo_key = core.memo_key
local fingerprint_args = core.fingerprint_args
local unpack = table.unpack

local errno_text = core.errno_text -- "permission denied"

local M = {}

-- A component's status in the store: ok; failed; incomplete (ok itself,
-- but something below it failed: it runs again next time).
local STATUS_OK, STATUS_ERROR, STATUS_INCOMPLETE = 0, 1, 2

-- The component frame of the running coroutine, or nil.
local current_frame = sched.current_frame
M.current_frame = current_frame

local function fail(msg, level) error(msg, (level or 1) + 1) end

-- A function's counts in the run's stats, also found by the function
-- itself (run.fstats: the memo-hit path in C reads it).
local function fn_stats(run, fn)
  local s = run.fstats[fn]
  if s then return s end
  s = run.stats.functions[fn.name]
  if not s then
    s = { calls = 0, hits = 0, misses = 0, errors = 0 }
    run.stats.functions[fn.name] = s
    run.fns[fn.name] = fn
  end
  -- The app's own function of that name, for the next cycles' checks of
  -- recorded dependencies (deps.lua, valid).
  run.app.fns_seen[fn.name] = fn
  run.fstats[fn] = s
  return s
end

-- ---- Components ----

local function child_path(parent, ...)
  local parts = { parent.path }
  for i = 1, select("#", ...) do
    local seg = select(i, ...)
    parts[#parts + 1] = tostring(seg)
  end
  return concat(parts, "/")
end

-- Messages and tracebacks as a user reads them (traceback.lua).
M.clean_message = tracebacks.clean_message
local user_frame, user_traceback = tracebacks.user_frame, tracebacks.of_user

-- Runs a component's function in protected mode inside its coroutine.
-- The message handler of a component's body (the frame is the running
-- task's): no closure per component.
local function body_handler(e)
  if type(e) == "table" and e.tide_error then return e end
  local frame = current_frame()
  local nested = frame and frame.traceback_of
  if nested and nested.err == e then return nested.text end
  -- Not a tail call: that would drop this frame, and level 2 would then
  -- skip the function a runtime error (not error()) happened in.
  local trace = user_traceback(e, 2)
  return trace
end

-- What a body that returned nothing returns: shared, never changed.
local NO_RESULTS = { n = 0 }

local function body_done(ok, ...)
  if ok then
    if select("#", ...) == 0 then return true, NO_RESULTS end
    return true, fnmod.pack(...)
  end
  return false, (...)
end

local function process(run, frame, fn, args)
  return body_done(xpcall(fn.body, body_handler, unpack(args, 1, args.n)))
end

-- The input of a component over a file the walk did not read:
-- frame.defer_input is the walk's cursor (index:walk), the file is its
-- first argument, and the file's fingerprint is what the component read
-- of it (or the file read now).
local function deferred_input(run, frame)
  local file = frame.args[1]
  -- What the read-ahead read and the component did not take is let go.
  file._content = nil
  return frame.defer_input:input(file.abs, run:file_fp(file))
end

-- The files among a component's arguments that are large enough to be
-- hashed on the thread pool are hashed here, where the task may wait for
-- it; core.fingerprint_args then finds their states recorded (it calls
-- File.__tide_key from C, where the task cannot wait).
local File -- tide.fs's, once loaded (it requires this module)
local function hash_large_files(run, args)
  File = File or require("tide.fs").File
  for i = 1, args.n do
    local a = args[i]
    if getmetatable(a) == File and (a.size or 0) >= core.large_file then
      run:file_fp(a)
    end
  end
end

-- Whether the previous run's record of this component can stand for this
-- run: same function, same logic, same input, dependencies still valid.
local function unchanged(run, frame, prev)
  if not prev or prev.status ~= STATUS_OK or run.opts.full_reprocess
     or run.opts.verify
     or run.forced[frame.path] or not frame.fn.memo or frame.refresh then
    return false
  end
  -- The input and the logic first: the index has them (Run:prev_row),
  -- and a component whose input changed needs nothing else of its row.
  if prev.input ~= frame.input or prev.logic ~= frame.fn:logic_raw()
     or prev.fn ~= frame.fn.name then
    return false
  end
  local state = prev.state and decode(prev.state)
  if not state then return false end
  if not deps_valid(run, state.deps or {}) then return false end
  frame.prev_state = state
  return true
end

local worker_of = sharemod.is_worker

-- A verify run checks the targets against what the last update wrote; it
-- runs nothing new (verify.lua). What would run again is raised as this:
-- the component is out of date, left to `tide update`, neither run nor
-- counted as a failure.
local function out_of_date(why)
  error({ tide_error = true, out_of_date = true, message = why }, 0)
end

-- Whether a memoized component's sources or code changed since the last
-- update that ran it (or it never succeeded): a verify leaves it alone.
local function changed_since(frame, prev)
  return not prev or prev.input ~= frame.input
    or prev.logic ~= frame.fn:logic_raw() or prev.fn ~= frame.fn.name
end

-- A component a verify did not run, or stopped where it would have run
-- something again: it keeps what it had, and what it owns is counted out
-- of date (verify.lua). Its parent's use_mount is out of date too.
local function component_out_of_date(run, frame, message)
  if frame.prev then run:keep_subtree(frame.path) end
  frame.out_of_date, frame.error = true, message
  run.verify_out_of_date = run.verify_out_of_date + 1
  return false, message
end

-- A component that failed keeps what it had: its target states and its
-- children stay as the last successful run left them.
function M.component_failed(run, frame, message)
  -- A worker whose batch the server rolled back leaves its items to the
  -- others, who run them again (share.lua, M.batch_lost): a failure from
  -- then on (the loss itself, met in a component's memo write or in the
  -- worker's own claims, or any after it) is not this worker's to count
  -- or record. It tells the loss once, as it leaves (run.lua).
  if worker_of(run) and sharemod.batch_lost(run) then
    frame.incomplete = true
    return false, message
  end
  local fs = not frame.is_root and fn_stats(run, frame.fn)
  if fs then fs.errors = fs.errors + 1 end
  if not frame.is_root then
    run.stats.components.errors = run.stats.components.errors + 1
  end
  run:mark(frame.path, "failed")
  if frame.prev then run:keep_subtree(frame.path) end
  if frame.is_root then run.main_failed = true end
  frame.error = message
  run:report_error(frame.path, message)
  run:record_failure(frame, message)
  return false, message
end

-- How a component that ran and succeeded counts: one that never
-- succeeded before is added now.
local function counted_as(prev)
  return (prev and (prev.status == STATUS_OK or prev.logic))
    and "reprocessed" or "added"
end

-- The body of a component's task (the scheduler's runner: the frame is the
-- task).
local function run_component(frame)
  local run, fn, prev = frame.run, frame.fn, frame.prev
  local stats = run.stats
  local fs
  if not frame.is_root then fs = fn_stats(run, fn) end
  if fs then fs.calls = fs.calls + 1 end
  -- The input is fingerprinted here, in the component's own task, so an
  -- argument that cannot be read (an unreadable file) is its error.
  local input_ok, input_err = true, nil
  if fn.memo and not frame.is_root and not frame.input
     and not frame.defer_input then
    input_ok, input_err = pcall(hash_large_files, run, frame.args)
    if input_ok then
      input_ok, input_err = pcall(core.fingerprint_args, fn.name,
                                  frame.args.n, fnmod.unpack(frame.args))
    end
    if input_ok then frame.input = input_err end
  end
  if input_ok and run.opts.verify and fn.memo and not frame.is_root
     and changed_since(frame, prev) then
    return component_out_of_date(run, frame, "out of date: its sources or "
                                 .. "code changed since the last update")
  end
  if input_ok and not frame.is_root and unchanged(run, frame, prev) then
    run:keep_subtree(frame.path)
    stats.components.unchanged = stats.components.unchanged + 1
    fs.hits = fs.hits + 1
    frame.value = frame.prev_state.value
    return true
  end
  if fs and fn.memo then fs.misses = fs.misses + 1 end
  -- The root is marked once main has run: the index may still be loading
  -- meanwhile (Run:load).
  if not frame.is_root then run:mark(frame.path, "ran") end
  local ok, results
  if input_ok then
    ok, results = process(run, frame, fn, frame.args)
    -- A shared update: the lead waits for the workers, a worker claims
    -- and runs items, once main has said what they are (share.lua).
    local share = frame.is_root and run.share
    if ok and share then
      local fine, err = pcall(share.after_main, run)
      if not fine then ok, results = false, err end
      -- A worker's root is the lead's to record.
      if ok and share.role == "worker" then return true end
    end
    if ok and frame.value_only then
      frame.value = results
      return true
    end
  else
    ok, results = false, input_err
  end
  if ok and frame.is_root then run:mark(frame.path, "ran") end
  if ok and frame.defer_input then
    -- A file the walk did not read: its input, from the content the
    -- component read (or read now), computed by the walk's own code.
    local fine, fp = pcall(deferred_input, run, frame)
    if fine then
      frame.input = fp
    else
      ok, results = false, fp
    end
  end
  if ok then
    frame.value = results
    -- A component is recorded only after everything it mounted, so that
    -- a crash never leaves it recorded (and carried over next time) over
    -- children that never ran; one whose subtree failed is recorded as
    -- incomplete, so that it runs again next time and so do they.
    local children = frame.child_frames
    if children then
      for _, child in ipairs(children) do
        if not child.done then sched.wait(run.sched, child) end
        if child.error or child.incomplete then frame.incomplete = true end
      end
      frame.child_frames = nil
    end
    -- A worker counts a component in the batch that records it
    -- (reconcile.lua, share.send_counts), which the submit may write.
    if not frame.is_root and run.share and worker_of(run) then
      frame.count_as = counted_as(prev)
    end
    ok, results = pcall(reconcile.submit, run, frame)
  end
  if not ok then
    -- A worker of a shared update that a stop ends (a SIGTERM scales the
    -- workers down) leaves what the stop cut short (the interrupt raised
    -- in its code, lsignal.c) to the others, as a worker that dies does:
    -- neither recorded nor counted, its item freed when the worker
    -- leaves, and run in full by whoever claims it next (share.lua).
    if not frame.is_root and worker_of(run) and core.stop_requested() then
      frame.incomplete = true
      return false
    end
    if run.opts.verify and not frame.is_root and type(results) == "table"
       and results.out_of_date then
      return component_out_of_date(run, frame, results.message)
    end
    return M.component_failed(run, frame,
      type(results) == "table" and results.message or results)
  end
  if not frame.is_root and not (run.share and worker_of(run)) then
    local as = counted_as(prev)
    stats.components[as] = stats.components[as] + 1
  end
  return true
end

-- A path is mounted once a run; two mount_each over different sources with
-- one function (fs.walk("a") and fs.walk("b") holding the same name) meet
-- under the function's name unless one is given a path of its own.
function M.same_path_message(path)
  return fmt("two components mounted at the same path %s (give each "
    .. "mount its own path: tide.mount_each(\"name\", fn, items, ...), "
    .. "tide.mount(\"name\", fn, ...))", path)
end

-- Creates a child component frame and its task. `mode` is "mount" (a
-- failure stays in the child) or "use" (the caller gets the value).
local function mount(parent, path, fn, args, source_key, work_item)
  local run = parent.run
  -- The memoized calls of the running task (a map item's are its own).
  local task = sched.current()
  local stack = task and task.memo_stack
  if stack and #stack > 0 then
    fail(fmt("cannot mount a component inside memoized function %s",
             stack[#stack].fn.name), 3)
  end
  -- Paths are unique in the run (the run's claims, lclaims.c), which
  -- covers a parent's own children: no per-parent set. A shared update's
  -- item run by the lead in a second round was mounted (delegated) once
  -- already.
  if not work_item then
    local seen = run:seen(path)
    if (seen and seen ~= "none") or not run.claims:mount(path) then
      fail(M.same_path_message(path), 3)
    end
  end
  -- memo_stack, deps, memos and declared are made when
  -- first needed: most components never need some of them. The fields
  -- named nil size the table for those a component that runs sets, so
  -- that it is not grown twice on the way.
  -- A shared update's second round, run by the lead, records what its
  -- workers recorded meanwhile, which its index (loaded before) lacks:
  -- the items and what they mount; so does a worker below an item it
  -- took over from one that died (frame.redo, share.lua).
  local prev = run:prev_row(path)
  if not prev and (parent.redo or run.share and run.share.redoing) then
    prev = run.store:component(run.app_id, path)
  end
  local frame = {
    run = run, path = path, fn = fn, args = args, parent = parent,
    prev = prev, source_key = source_key,
    co = nil, done = nil, input = nil, defer_input = nil, value = nil,
    declared = nil, state_bytes = nil, id = nil,
  }
  frame.work_item = work_item
  if parent.redo then frame.redo = true end
  -- The frame is the scheduler's task (co and done are the scheduler's).
  run.sched:spawn(frame)
  -- A component waits for its children before it is recorded (see
  -- run_component); the root is never carried over, so it keeps no list.
  if not parent.is_root then
    local list = parent.child_frames
    if not list then
      list = {}
      parent.child_frames = list
    end
    list[#list + 1] = frame
  end
  return frame
end

-- ---- The public component API (tide.mount and friends) ----

-- Why what cannot be called here, outside any component: a parallel
-- function's body runs in a worker (worker.lua), apart from the component
-- that called it, which "inside a component" would not tell its author.
local function outside_component(what)
  local app = package.loaded["tide.app"]
  if app and app.in_worker then
    return what .. " cannot be called in a parallel function: it runs in "
      .. "a worker, apart from its caller's component (pass what it needs "
      .. "as arguments, or call it where the function is called)"
  end
  return what .. " can only be called inside a component"
end

local function need_frame(what, level)
  local frame = current_frame()
  if not frame then fail(outside_component(what), level + 1) end
  return frame
end

local function check_fn(fn, what, level)
  if type(fn) == "function" then
    fail(fmt("%s: a plain function was given where a tide.fn is needed: "
             .. "wrap it, tide.fn(\"name\", function(...) ... end)", what),
         level + 1)
  end
  if not fnmod.is_fn(fn) then
    fail(fmt("%s: expected a tide.fn, got %s", what, type(fn)), level + 1)
  end
end

-- Splits the optional leading path argument from fn and its arguments.
local function path_and_fn(what, level, a, ...)
  if fnmod.is_fn(a) then return nil, a, fnmod.pack(...) end
  if type(a) == "function" then check_fn(a, what, level + 1) end
  local fn = ...
  check_fn(fn, what, level + 1)
  return a, fn, fnmod.pack(select(2, ...))
end

local Path = { __name = "tide.path" }
function M.path(...)
  local segs = fnmod.pack(...)
  for i = 1, segs.n do
    local s = segs[i]
    if type(s) ~= "string" and type(s) ~= "number" then
      fail("tide.path: segments must be strings or numbers", 2)
    end
  end
  return setmetatable({ segs = segs }, Path)
end

function M.sym(name)
  if type(name) ~= "string" then fail("tide.sym: name must be a string", 2) end
  return setmetatable({ segs = { n = 1, name } }, Path)
end

local function resolve_path(parent, p, fn)
  if p == nil then return child_path(parent, fn.name) end
  if getmetatable(p) == Path then
    return child_path(parent, fnmod.unpack(p.segs))
  end
  return child_path(parent, p)
end

local Mounted = { __name = "tide.mounted" }
Mounted.__index = Mounted
function Mounted:ready()
  sched.wait(self.frame.run.sched, self.frame)
  if self.frame.error then return nil, self.frame.error end
  return true
end

function M.mount(...)
  local parent = need_frame("tide.mount", 2)
  local p, fn, args = path_and_fn("tide.mount", 2, ...)
  if parent.is_root and worker_of(parent.run) then
    -- The lead runs main's own components.
    return setmetatable({ frame = { done = true } }, Mounted)
  end
  local frame = mount(parent, resolve_path(parent, p, fn), fn, args)
  return setmetatable({ frame = frame }, Mounted)
end

-- tide.auto_refresh(fn, seconds, ...): a component that runs on every
-- update whatever its memo says (its source is outside tide's view: a
-- web page, an API), at parent/<fn name>. Live mode runs a cycle, and so
-- re-runs it, at least every `seconds`.
function M.auto_refresh(fn, seconds, ...)
  local parent = need_frame("tide.auto_refresh", 2)
  check_fn(fn, "tide.auto_refresh", 2)
  if type(seconds) ~= "number" or seconds <= 0 then
    fail("tide.auto_refresh: seconds must be a positive number", 2)
  end
  if parent.is_root and worker_of(parent.run) then
    -- The lead runs main's own components.
    return setmetatable({ frame = { done = true } }, Mounted)
  end
  local frame = mount(parent, child_path(parent, fn.name), fn,
                      fnmod.pack(...))
  frame.refresh = seconds
  -- Live mode runs a cycle at least this often (live.lua).
  local run = parent.run
  if not run.refresh_every or seconds < run.refresh_every then
    run.refresh_every = seconds
  end
  return setmetatable({ frame = frame }, Mounted)
end

function M.use_mount(...)
  local parent = need_frame("tide.use_mount", 2)
  local p, fn, args = path_and_fn("tide.use_mount", 2, ...)
  local path = resolve_path(parent, p, fn)
  -- A worker of a shared update runs main's component for its value
  -- only: the lead records it and writes what it declares. Its index
  -- reads what the store remembers of it first (share.lua), so that it
  -- is carried over as in the lead.
  local value_only = parent.is_root and worker_of(parent.run)
  if value_only then parent.run:load_under({ path }) end
  local frame = mount(parent, path, fn, args)
  frame.value_only = value_only
  sched.wait(parent.run.sched, frame)
  if frame.out_of_date then out_of_date(frame.error) end
  if frame.error then
    error(fmt("component %s failed: %s", frame.path, frame.error), 0)
  end
  return fnmod.unpack(frame.value or { n = 0 })
end

-- How a source is named in messages: its kind and what it reads.
local function source_label(items)
  local what = items.given or items.dir or items.path or items.db
    or items.name
  return what and (items.kind .. " " .. tostring(what)) or items.kind
end

-- An iterator over a plain table's key, value pairs, keys sorted.
local function table_items(items, level)
  local keys = {}
  for k in pairs(items) do
    if type(k) ~= "string" and math.type(k) ~= "integer" then
      fail("tide.mount_each: keys must be strings or integers", level + 1)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  local i = 0
  return function()
    i = i + 1
    local k = keys[i]
    if k ~= nil then return k, items[k] end
  end
end

-- Iterates a source or a plain table: returns next() -> key, value (nil at
-- the end). What a source cannot read (a failed query, a missing file, a
-- directory it cannot open, a malformed line) goes to on_error(relpath or
-- nil, message) and the iteration goes on, or ends when the source itself
-- failed.
local function each_item(items, level, on_error, each)
  if type(items) ~= "table" then
    fail("tide.mount_each: items must be a source or a table", level + 1)
  end
  if type(items.items) ~= "function" then
    return table_items(items, level + 1)
  end
  local ok, it, state, ctl = pcall(items.items, items, on_error, each)
  if not ok then
    on_error(nil, tostring(it))
    return function() return nil end
  end
  if type(it) == "table" then return table_items(it, level + 1) end
  return function()
    if it == nil then return nil end
    local fine, k, v = pcall(it, state, ctl)
    if not fine then
      on_error(nil, tostring(k))
      it = nil
      return nil
    end
    ctl = k
    return k, v
  end
end

-- The each (index_each.h) a source that reads its items in C (json.lines,
-- sqlite.rows) carries unchanged items over with, for components at base
-- of fn(item, rest[2], ...): nil when an extra argument cannot be encoded
-- (then every item fails its own component, as the loop below finds).
local function source_each(index, base, logic, rest)
  local extra = {}
  for i = 2, rest.n do
    local ok, bytes = pcall(encode, rest[i])
    if not ok then return nil end
    extra[i - 1] = bytes
  end
  return index:each(base, logic, rest.n, concat(extra))
end

-- A source that returned nothing where the store remembers more than
-- this many components is refused unless allow_empty: an unmounted disk
-- must not wipe an index.
local EMPTY_GUARD = 100

-- What a live session remembers of the walk of items mounted at base
-- (run.walks_now, the next cycle's live_walks).
local function walk_key(base, items) return base .. "\0" .. items.abs end

-- A walk that could not be read whole, or whose empty listing was
-- refused, is not remembered: the next cycle of a live session lists it
-- whole, so that what this one kept is looked at again (the files whose
-- deletion it refused).
local function forget_walk(run, base, items)
  if type(items) == "table" and items.kind == "fs.walk" then
    run.walks_now[walk_key(base, items)] = nil
  end
end

-- After a mount_each: the components under a part of the source that
-- could not be read are kept, and so is everything when the source came
-- back empty where it had many items (unless allowed).
local function keep_what_failed(run, base, items, mounted, failed)
  local index = run.index
  for _, scope in ipairs(failed) do index:keep_subtree(scope) end
  if #failed > 0 then forget_walk(run, base, items) end
  if mounted > 0 or #failed > 0 or run.opts.allow_empty then return end
  local guard = run.opts.empty_guard or EMPTY_GUARD
  local prefix, before = base .. "/", 0
  for _, e in ipairs(index:unseen()) do
    if e.path:sub(1, #prefix) == prefix then before = before + 1 end
  end
  if before > guard then
    index:keep_subtree(base)
    forget_walk(run, base, items)
    run.stats.components.errors = run.stats.components.errors + 1
    run:report_error(base, fmt("source %s returned no items where it had "
      .. "%d: nothing was deleted (is a disk unmounted?); run with "
      .. "--allow-empty to accept it", source_label(items), before),
      "source")
  end
end

-- A source's message without the name it starts with (a source's own
-- errors name it, to stand alone where its items() is called directly):
-- the report names the source once.
local function without_source_name(message, items)
  if type(items) ~= "table" or type(items.kind) ~= "string" then
    return message
  end
  local what = items.given or items.dir or items.path or items.db
    or items.name
  local prefixes = { source_label(items) .. ": " }
  if what then
    prefixes[2] = items.kind .. ": " .. tostring(what) .. ": "
    prefixes[3] = tostring(what) .. ": "
  end
  prefixes[#prefixes + 1] = items.kind .. ": "
  for _, prefix in ipairs(prefixes) do
    if message:sub(1, #prefix) == prefix then
      return message:sub(#prefix + 1)
    end
  end
  return message
end

-- The on_error a mount_each gives its source: on_error(relpath, why) for
-- a part it could not read (a directory), on_error(nil, message) when it
-- failed as a whole or for an item it cannot key. Reports the error (exit
-- 1) and remembers which components to keep.
local function source_error_handler(run, base, items, failed)
  return function(relpath, message)
    run.stats.components.errors = run.stats.components.errors + 1
    failed[#failed + 1] = relpath and (base .. "/" .. relpath) or base
    if relpath then
      message = fmt("cannot read %s: %s", relpath, message)
    elseif type(message) == "string" then
      message = without_source_name(message, items)
    end
    run:report_error(base, fmt("source %s: %s", source_label(items),
                               message), "source")
  end
end

-- tide.source{ name, items, watch }: a custom source. items() returns an
-- iterator of key, value (or a table of key -> value): what the source
-- holds now. watch(emit), for live mode, reports its changes as they
-- happen (live.lua runs it): mount_each over it gets the same
-- memoization and lineage as over the built-in sources.
local Source = { __name = "tide.source" }
Source.__index = Source

-- What mount_each keys a live source's changes by: one cycle's changes
-- apply to the components it mounted last cycle only when they are
-- still of the same function, logic and extra arguments.
local function mount_signature(fn, rest)
  local extra = { fn:logic_raw(), tostring(rest.n) }
  for i = 2, rest.n do
    local ok, bytes = pcall(encode, rest[i])
    if not ok then return nil end
    extra[i + 1] = bytes
  end
  return concat(extra, "\0")
end

-- A mount_each over a source with a watch function, in live mode: noted
-- in run.watched_now (base -> { source, signature }) for live.lua to run
-- the watch; returns the changes it emitted since the last cycle ({
-- keys, values, paths }, live.lua) when this cycle processes only them,
-- else nil (it is listed in full: a first or full cycle, a watch that
-- failed, a function or arguments that changed).
local function watched_changes(run, base, fn, rest)
  local source = rest[1]
  if not source.watch or not run.opts.live_cycle then return nil end
  local signature = mount_signature(fn, rest)
  if not signature then return nil end
  run.watched_now[base] = { source = source, signature = signature }
  local changes = run.opts.live_emits and run.opts.live_emits[base]
  local last = run.opts.live_watched and run.opts.live_watched[base]
  if not changes or not last or last.signature ~= signature
     or run.reopened or run.list_whole or run.opts.full_reprocess
     or run.opts.verify then
    return nil
  end
  -- A component of a key it did not emit that failed (or is incomplete)
  -- runs again, as a whole cycle would run it: that takes its value, so
  -- the source is listed whole while one does.
  run:index_ready()
  if run.index:failed_below(base) > 0 then return nil end
  return changes
end

-- next() over the keys a live source upserted, and how many there are.
local function emitted_items(changes)
  local keys, values, i = changes.keys, changes.values, 0
  local n = 0
  for _, k in ipairs(keys) do
    if values[tostring(k)] ~= M.DELETED then n = n + 1 end
  end
  return function()
    repeat
      i = i + 1
      local k = keys[i]
      if k == nil then return nil end
      local v = values[tostring(k)]
      if v ~= M.DELETED then return k, v end
    until false
  end, n
end

-- What a live source's emit(key, nil) stands as among its changes.
M.DELETED = setmetatable({}, { __name = "tide.deleted" })

function M.mount_each(...)
  local parent = need_frame("tide.mount_each", 2)
  local p, fn, rest
  if fnmod.is_fn((...)) then
    fn, rest = ..., fnmod.pack(select(2, ...))
  else
    if type((...)) == "function" then check_fn((...), "tide.mount_each", 2) end
    p, fn, rest = ..., select(2, ...), fnmod.pack(select(3, ...))
    check_fn(fn, "tide.mount_each", 2)
  end
  local items = rest[1]
  local base = p and resolve_path(parent, p, fn) or child_path(parent, fn.name)
  local run = parent.run
  -- A shared update: main's items are work items (share.lua). A worker
  -- only learns which function and arguments they take.
  local share = parent.is_root and run.share
  local call
  if share then
    call = sharemod.register(run, base, fn, rest, items)
    if share.role == "worker" then return end
  end
  local failed = {}
  local on_error = source_error_handler(run, base, items, failed)
  if type(items) == "table" and items.kind == "fs.walk" and fn.memo
     and not run.opts.full_reprocess and not run.opts.verify then
    local mounted = M.mount_each_walk(parent, base, fn, rest, on_error, call)
    keep_what_failed(run, base, items, mounted, failed)
    return
  end
  local source_name = type(items) == "table" and items.kind
    and (items.kind .. ":" .. tostring(items.dir or items.path or items.db or ""))
  -- A live source's changes, when this cycle processes only them.
  local emitted = getmetatable(items) == Source
    and watched_changes(run, base, fn, rest)
  -- An item whose component is unchanged is carried over by the C index
  -- (index:carry, the same verdict as the walk's) without a frame or a
  -- task; its input fingerprint, computed here, serves the others. A
  -- source that reads its items in C is handed an each and carries them
  -- over itself: only the others come back here.
  local carry = fn.memo and not run.opts.full_reprocess
    and not run.opts.verify
  local index, logic, n = run.index, carry and fn:logic_raw(), rest.n
  if carry then run:index_ready() end
  local each = carry and not emitted and type(items) == "table"
    and type(items.items) == "function"
    and source_each(index, base, logic, rest) or nil
  local next_item, expected
  if emitted then
    -- The components of the keys it did not emit stay as they are; those
    -- of the keys it deleted are not mounted, so they are deleted.
    local kept = index:keep_below(base, emitted.paths)
    if kept > 0 then
      if fn.memo then
        local fs = fn_stats(run, fn)
        fs.calls, fs.hits = fs.calls + kept, fs.hits + kept
      end
      run.stats.components.unchanged = run.stats.components.unchanged + kept
      sched.carry(run.sched, kept)
    end
    next_item, expected = emitted_items(emitted)
  else
    next_item = each_item(items, 2, on_error, each)
  end
  -- Progress: a plain table's length is known, a source's is not.
  if not emitted and type(items.items) ~= "function" then
    expected = 0
    for _ in pairs(items) do expected = expected + 1 end
  end
  sched.expect(run.sched, expected)
  local carried = 0
  local mounted = 0
  local each_carried = 0
  while true do
    local key, value = next_item()
    if each then
      -- What the source carried over before this item (or the end).
      local now = each:count()
      if now > each_carried then
        sched.carry(run.sched, now - each_carried)
        carried = carried + now - each_carried
        mounted = mounted + now - each_carried
        each_carried = now
      end
    end
    if key == nil then break end
    local path = base .. "/" .. tostring(key)
    local input
    if carry then
      -- A value that cannot be fingerprinted fails its own component.
      local ok, fp = pcall(fingerprint_args, fn.name, n, value,
                           unpack(rest, 2, n))
      if ok then
        if index:carry(path, logic, fp) then
          carried = carried + 1
          sched.carry(run.sched, 1)
          goto next
        end
        input = fp
      end
    end
    do
      local source_key = source_name
        and (source_name .. ":" .. tostring(key)) or tostring(key)
      if call and sharemod.delegate(run, path, call, key, nil, value,
                                    source_key) then
        goto next
      end
      local args = { n = n }
      args[1] = value
      for i = 2, n do args[i] = rest[i] end
      local frame = mount(parent, path, fn, args, source_key)
      frame.input = input
      -- It runs when it was not carried over, or when nothing is (every
      -- body runs, or its function is not memoized): its states are read
      -- ahead for it.
      if frame.prev and (input or not carry) then
        reconcile.will_run(run, frame)
      end
      run.sched:throttle()
    end
    ::next::
    mounted = mounted + 1
  end
  if carried > 0 then
    local fs = fn_stats(run, fn)
    fs.calls = fs.calls + carried
    fs.hits = fs.hits + carried
    run.stats.components.unchanged = run.stats.components.unchanged + carried
  end
  sched.listed(run.sched)
  if not emitted and type(items) == "table"
     and type(items.items) == "function" then
    keep_what_failed(run, base, items, mounted, failed)
  end
end

-- mount_each over fs.walk: the C index walks the folder and carries over
-- every file whose component is unchanged without entering Lua; only the
-- other files come back here to be mounted. Returns how many files the
-- walk listed. call: in a shared update's lead, what share.register gave
-- this mount_each (its changed files become work items).
function M.mount_each_walk(parent, base, fn, rest, on_error, call)
  local run = parent.run
  local fsmod = require "tide.fs"
  local File = fsmod.File
  local items = rest[1]
  local extra = {}
  for i = 2, rest.n do
    extra[i - 1] = encode(rest[i], fmt("%s argument %d", fn.name, i))
  end
  local source = "fs:" .. items.dir
  items:listed()
  -- The sets fs.walk compiled once (not the pattern lists again).
  local include, exclude = fsmod.Walk.globs(items, run)
  local spec = {
    store = run.store, app_id = run.app_id, dir = items.dir,
    source = source, base = base, logic = fn:logic_raw(),
    file_type = File.__name, extra = concat(extra), nargs = rest.n,
    include = include, exclude = exclude,
    follow_symlinks = items.follow_symlinks,
    ready = function() run:index_ready() end,
    -- A shared update's lead hands most files to workers, which read them.
    read_ahead = run.share == nil,
  }
  -- Live mode: a folder the session's last cycle walked with the same
  -- components is walked for the paths file events named only.
  local walks, key, signature = run.opts.live_walks
  if walks then
    key = walk_key(base, items)
    signature = concat({ spec.logic, spec.extra, rest.n,
      concat(items.include or {}, "\n"), concat(items.exclude or {}, "\n"),
      tostring(items.follow_symlinks) }, "\0")
    local changes = run.opts.live_changes
    if changes and not run.reopened and not run.list_whole
       and walks[key] == signature then
      local here = changes[items.abs]
      if here ~= true then spec.changes = here or {} end
    end
  end
  local changed, unchanged = run.index:walk(spec)
  if walks and changed then run.walks_now[key] = signature end
  if not changed then
    on_error(nil, unchanged)
    return 0
  end
  local fs = fn_stats(run, fn)
  fs.calls = fs.calls + unchanged
  fs.hits = fs.hits + unchanged
  run.stats.components.unchanged = run.stats.components.unchanged + unchanged
  -- Progress: the walk listed every file; the unchanged ones are done.
  local expected = changed:files()
  sched.carry(run.sched, unchanged)
  sched.expect(run.sched, expected)
  local source_name = "fs.walk:" .. items.dir
  local dir, n = items.dir, rest.n
  while true do
    -- A File, or false with what the walk could not read.
    local file, relpath, errno = changed:next(File, dir)
    if file == nil then break end
    if not file then
      on_error(relpath, errno_text(errno))
    elseif call and sharemod.delegate(run, base .. "/" .. file.path, call,
           file.path, file.path, nil, source_name .. ":" .. file.path) then
      sched.carry(run.sched, 1) -- done here: a worker runs it
    else
      -- Made at its size (most components take the file and a target).
      local args
      if n == 2 then
        args = { n = 2, file, rest[2] }
      else
        args = { n = n, file }
        for i = 2, n do args[i] = rest[i] end
      end
      local frame = mount(parent, base .. "/" .. file.path, fn, args,
                          source_name .. ":" .. file.path)
      -- The walk found it changed: it runs.
      if frame.prev then reconcile.will_run(run, frame) end
      -- file._walk: true when the walk did not read the file (it is
      -- fingerprinted from the bytes the component reads, File:bytes, and
      -- its input computed once it has run), else the input fingerprint,
      -- computed by the walk exactly as core.fingerprint_args does (the
      -- no-change check relies on it).
      local walked = file._walk
      if walked == true then
        frame.defer_input = changed
      else
        frame.input = walked
        file._walk = nil
      end
      run.sched:throttle()
    end
  end
  return unchanged + expected
end

-- ---- tide.map: items that run concurrently ----

-- Each item of a tide.map runs fn(value, ...) in a task of its own, so
-- that one waiting (a program, a timer, later a request or a worker)
-- lets the others run. An item works for the component that called map:
-- its dependencies and memo entries are the component's (the tables are
-- shared), the target states it declares are the component's, and the
-- memoized calls it is inside of are copied to its own stack, so that
-- the items' calls nest apart.

-- The traceback of an item of tide.map that failed (i, in input order),
-- ended with the line that called tide.map (the caller at level, from
-- map_site's caller): an item runs in a task of its own, whose stack
-- starts at the item.
local function map_site(trace, i, level)
  if type(trace) ~= "string" then return trace end
  local info = getinfo(level + 1, "Sl")
  if not info or not user_frame(info) then return trace end
  if not trace:find("\nstack traceback:", 1, true) then
    trace = trace .. "\nstack traceback:"
  end
  return fmt("%s\n\t%s:%d: in tide.map, at item %d", trace, info.short_src,
             info.currentline, i)
end

-- Whether a traceback (user_traceback's) names a line of Lua code.
local function has_user_frame(trace)
  for line in trace:gmatch("\n\t([^\n]*)") do
    if line:sub(1, 4) ~= "[C]:" then return true end
  end
  return false
end

-- The traceback of item i that failed with err, given the one kept where
-- it failed (trace, or nil), ended with the line that called tide.map
-- (level as for map_site). When no Lua code of the user's failed there
-- (an argument that cannot be encoded, a function of C's or tide's own),
-- the message alone is ended so: which item failed is what a user needs.
local function item_traceback(trace, err, i, level)
  if trace == nil or (type(trace) == "string" and not has_user_frame(trace))
  then
    if type(err) ~= "string" then return trace end
    trace = M.clean_message(err)
  end
  -- Not a tail call, which would take this frame off the count.
  trace = map_site(trace, i, level + 1)
  return trace
end

-- The message handler of an item: keeps the traceback where the error
-- happened (or where a memoized call inside it caught it) for the
-- component's report, and the error value as raised.
local function item_error(e)
  local item = sched.current()
  if item then
    local nested = item.traceback_of
    if nested and nested.err == e then
      item.trace = nested.text
    else
      item.trace = type(e) == "table" and e or user_traceback(e, 2)
    end
  end
  return e
end

local function item_call(item)
  local extra = item.extra
  return item.fn(item.value, unpack(extra, 1, extra.n))
end

local function run_item(item)
  local ok, result = xpcall(item_call, item_error, item)
  if ok then
    item.result = result
  else
    item.failed, item.err = true, result
  end
end

local function copy_list(t)
  local c = {}
  for i = 1, #t do c[i] = t[i] end
  return c
end

-- tide.map over a parallel fn that nothing else is asked of (no memo,
-- batch or limit): no task per item; the calls go out from the caller's
-- task, as many at a time as tasks may be in flight (parallel.lua), and
-- count as the caller's calls of fn, as the items' would.
local function map_parallel(task, run, fn, list, n, extra, out)
  local fs = run.fstats[fn] or fn_stats(run, fn)
  fs.calls = fs.calls + n
  deps_of(scope_of(task)).fns[fn.name] = fn._logic or fn:logic()
  local first, first_err, first_trace
  parallel.map(run, fn, list, n, extra, run.sched:limit(),
    function(i, ok, results, traceback)
      if ok then
        out[i] = results[1]
      else
        fs.errors = fs.errors + 1
        if first == nil or i < first then
          first, first_err, first_trace = i, results, traceback
        end
      end
    end)
  if first then
    -- The component reports the item's traceback (body_handler).
    local trace = item_traceback(first_trace, first_err, first, 3)
    if trace then task.traceback_of = { err = first_err, text = trace } end
    error(first_err, 0)
  end
  return out
end

-- tide.map(fn, list, ...): { fn(list[1], ...), fn(list[2], ...), ... },
-- the items run concurrently, the results in input order. When items
-- fail, the first failure in input order is raised in the caller once
-- every item has finished.
function M.map(fn, list, ...)
  local task = sched.current()
  if not task then
    fail(outside_component("tide.map"), 2)
  end
  if type(list) ~= "table" then fail("tide.map: expected a list", 2) end
  local n = #list
  local out = {}
  if n == 0 then return out end
  local frame = task.frame or task
  local run = frame.run
  local s = run.sched
  local extra = fnmod.pack(...)
  if type(fn) == "table" and fn.parallel and not fn.memo
     and not fn.batch and not fn.concurrency then
    -- Not a tail call: map_parallel names this call's caller by level.
    out = map_parallel(task, run, fn, list, n, extra, out)
    return out
  end
  local stack = task.memo_stack
  if stack and #stack == 0 then stack = nil end
  local deps = deps_of(frame)
  local memos = frame.memos
  if not memos then
    memos = {}
    frame.memos = memos
  end
  local items = {}
  for i = 1, n do
    local item = { item = true, frame = frame, run = run, fn = fn,
                   value = list[i], extra = extra, deps = deps,
                   memos = memos, memo_stack = stack and copy_list(stack),
                   co = nil, done = nil, result = nil }
    items[i] = item
    s:spawn(item)
    s:throttle()
  end
  for i = 1, n do
    local item = items[i]
    if not item.done then s:wait(item) end
  end
  for i = 1, n do
    local item = items[i]
    if item.failed then
      -- The component reports the item's traceback (body_handler), or
      -- this call's when the item's holds none of the user's code (fn is
      -- tide's own: an embedder's failure is the map's).
      task.traceback_of = { err = item.err,
                            text = item_traceback(item.trace, item.err, i, 2) }
      error(item.err, 0)
    end
    out[i] = item.result
  end
  return out
end

-- ---- Memoized calls (tide.fn called inside a component) ----

-- Runs f(...) in protected mode with scope as the innermost recording
-- scope of task (pushed on its memo stack); the scope is popped whatever
-- happened, so that a caller's pcall leaves the task usable, and what f
-- raised is raised again.
local function within(task, scope, f, ...)
  local stack = task.memo_stack
  if not stack then
    stack = {}
    task.memo_stack = stack
  end
  local depth = #stack
  stack[depth + 1] = scope
  local ok, results = pcall(f, ...)
  for i = #stack, depth + 1, -1 do stack[i] = nil end
  if not ok then error(results, 0) end
  return results
end

-- Runs body(...) in protected mode for task; on an error, keeps the
-- traceback where it happened (the component reports it) and raises the
-- original value again, so that a user's own pcall sees what it expects.
local function protected(task, body, ...)
  local ok, results = xpcall(function(...) return fnmod.pack(body(...)) end,
    function(e)
      if task.traceback_of == nil or task.traceback_of.err ~= e then
        task.traceback_of = { err = e, text = type(e) == "table" and e
                              or user_traceback(e, 2) }
      end
      return e
    end, ...)
  if not ok then error(results, 0) end
  return results
end

-- f(...), counted as an error of fn (its stats fs) when it raises.
local function counted(fs, f, ...)
  local ok, results = pcall(f, ...)
  if not ok then
    fs.errors = fs.errors + 1
    error(results, 0)
  end
  return results
end

-- fn's body called once for task.
local function protected_body(task, fs, fn, ...)
  return counted(fs, protected, task, fn.body, ...)
end

-- A batched fn's call (calls.lua): the item joins a batch, whose body
-- runs in the task that leads it, recording what it calls in a scope of
-- its own that then joins every caller's.
local function batched_call(task, fs, fn, n, item)
  if n ~= 1 then
    fail(fmt("tide.fn %s is batched: it takes one argument per call",
             fn.name), 4)
  end
  local scope = scope_of(task)
  local body_scope = { fn = fn, deps = new_deps(), targets = {} }
  local function call_body(items)
    local results = within(task, body_scope, protected, task, fn.batch_body,
                           items)
    if #body_scope.targets > 0 then
      error(fmt("tide.fn %s is batched: its body cannot declare target "
                .. "states (declare them where it is called)", fn.name), 0)
    end
    return results[1]
  end
  local function done(caller_scope)
    merge_deps(deps_of(caller_scope), body_scope.deps)
  end
  local ok, result = calls.batched(task.run, task, fn, item, scope,
                                   call_body, done)
  if not ok then
    fs.errors = fs.errors + 1
    error(result, 0)
  end
  return { n = 1, result }
end

-- A parallel fn's body, run by a worker (parallel.lua).
local function parallel_body(task, fs, fn, ...)
  return counted(fs, parallel.call, task.run, task, fn, ...)
end

-- fn's body called for task once the memo said it must run: alone, in a
-- worker, under fn's concurrency limit, or in a batch (calls.lua).
local function invoke(task, fs, fn, ...)
  if fn.batch then return batched_call(task, fs, fn, select("#", ...), ...) end
  local body = fn.parallel and parallel_body or protected_body
  if fn.concurrency then
    return calls.limited(task.run, task, fn, body, task, fs, fn, ...)
  end
  return body(task, fs, fn, ...)
end

-- The component uses memo entry id (its reference is recorded with the
-- component; ids stand for memo keys in frame.memos, see lmemo.c).
local function use_entry(frame, id)
  local memos = frame.memos
  if not memos then
    memos = {}
    frame.memos = memos
  end
  memos[id] = true
end

-- A memo hit: counted, its recorded dependencies and target states (when
-- it has any) go to the caller, and its results (pushed by the memo cache)
-- are returned.
local function hit(frame, scope, fs, id, ...)
  fs.hits = fs.hits + 1
  local extra = frame.run.memo_extra[id]
  if extra then
    merge_deps(deps_of(scope), extra.deps)
    local targets = extra.targets
    for i = 1, #targets do reconcile.declare_replayed(frame, targets[i]) end
  end
  use_entry(frame, id)
  return ...
end

-- Registers a valid entry with the run's memo cache (lmemo.c) and returns
-- its id; what it depends on or declares is kept beside it.
local function remember(run, fs, logic, key, value, deps, targets, n, ...)
  local cache = run.memo_hits
  local id = cache:put(logic, key, value, fs, n, ...)
  if next(deps.fns) or next(deps.ctx) or #targets > 0 then
    run.memo_extra[id] = { deps = deps, targets = targets }
    cache:set_extra(id, true) -- a hit replays them: the Lua path
  end
  return id
end

-- A memo miss: the body runs in a recording scope of its own, whose
-- dependencies and target states go to the caller's, and its results are
-- stored and join the run's memo cache.
local function compute(frame, scope, fs, fn, logic, key, n, ...)
  local run = frame.run
  local memo = { fn = fn, deps = new_deps(), targets = {} }
  local results = within(frame, memo, invoke, frame, fs, fn, ...)
  merge_deps(deps_of(scope), memo.deps)
  local stack = frame.memo_stack
  local outer = stack[#stack]
  if outer then
    for _, t in ipairs(memo.targets) do outer.targets[#outer.targets + 1] = t end
  end
  local value = encode(results, fn.result_what)
  run:memo_store(key, fn.name, value, encode(memo.deps), encode(memo.targets))
  use_entry(frame, remember(run, fs, logic, key, value, memo.deps,
                            memo.targets, n, ...))
  return results
end

-- Every tide.fn called inside a component: its hit path (a valid entry
-- this run already knows) is written for speed, one probe of the memo
-- cache in C and no table made.
local function call(frame, fn, ...)
  local run = frame.run
  local fs = run.fstats[fn] or fn_stats(run, fn)
  fs.calls = fs.calls + 1
  local stack = frame.memo_stack
  local scope = stack and stack[#stack] or frame
  local deps = scope.deps or deps_of(scope)
  deps.fns[fn.name] = fn._logic or fn:logic()
  if not fn.memo then
    return fnmod.unpack(invoke(frame, fs, fn, ...))
  end
  local logic, n = fn._logic_raw or fn:logic_raw(), select("#", ...)
  local cache = run.memo_hits
  -- A full reprocess runs every body again, but records the entries as a
  -- clean run would.
  if not run.opts.full_reprocess then
    -- (Most hits never get here: tide.fn's __call answers them in C.)
    local id = cache:probe(logic, n, ...)
    if id then return hit(frame, scope, fs, id, cache:results(id)) end
  end
  local key = memo_key(fn.name, logic, n, ...)
  local entry = not run.opts.full_reprocess and run:memo_lookup(key)
  if entry then
    -- A stored entry's dependencies are checked once per run: logic and
    -- context do not change within a run, and a valid entry joins the
    -- cache.
    local deps = decode(entry.deps or "") or new_deps()
    local targets = decode(entry.targets or "") or {}
    if deps_valid(run, deps) then
      local id = remember(run, fs, logic, key, entry.value, deps, targets,
                          n, ...)
      return hit(frame, scope, fs, id, cache:results(id))
    end
  end
  -- A lookup read in a group (Run:memo_lookup) let the other tasks run:
  -- one that called with the same key meanwhile has put its entry in the
  -- cache, and this call is a hit, as it would be had it come later.
  if run.remote_store and not run.opts.full_reprocess then
    local id = cache:probe(logic, n, ...)
    if id then return hit(frame, scope, fs, id, cache:results(id)) end
  end
  if run.opts.verify then
    out_of_date(fmt("memoized function %s would run again: its inputs or "
                    .. "code changed since the last update (run tide update "
                    .. "first)", fn.name))
  end
  -- A full reprocess runs every call's body again.
  if run.in_flight[key] and not run.opts.full_reprocess then
    flights.await(run, key)
    local id = cache:probe(logic, n, ...)
    if id then return hit(frame, scope, fs, id, cache:results(id)) end
  end
  fs.misses = fs.misses + 1
  -- Landed however it ends (a body that fails, a result that cannot be
  -- stored), so that no caller waits for it past its end.
  local flight = flights.take_off(run, key)
  local ok, results = pcall(compute, frame, scope, fs, fn, logic, key, n,
                            ...)
  flights.land(run, key, flight)
  if not ok then error(results, 0) end
  return fnmod.unpack(results)
end

M.call = call

-- ---- Context ----

local Key = { __name = "tide.key" }
Key.__index = Key

function M.key(name, opts)
  if type(name) ~= "string" then fail("tide.key: name must be a string", 2) end
  if opts ~= nil and type(opts) ~= "table" then
    fail(fmt("tide.key %s: options must be a table, got %s", name,
             type(opts)), 2)
  end
  for k, v in pairs(opts or {}) do
    if k ~= "detect_change" then
      fail(fmt("tide.key %s: unknown option %s (expected detect_change)",
               name, tostring(k)), 2)
    elseif type(v) ~= "boolean" then
      fail(fmt("tide.key %s: detect_change must be true or false, got %s",
               name, type(v)), 2)
    end
  end
  return setmetatable({ name = name,
                        detect_change = opts and opts.detect_change or false },
                      Key)
end

function M.use(key)
  if getmetatable(key) ~= Key then fail("tide.use: expected a tide.key", 2) end
  local frame = need_frame("tide.use", 2)
  local run = frame.run
  -- Recorded in the innermost memoized call of the running task (a map
  -- item's own), else in the component.
  local task = sched.current()
  local value = run.context[key]
  if value == nil and run.context_by_name[key.name] ~= nil then
    value = run.context_by_name[key.name]
  end
  if key.detect_change then
    deps_of(scope_of(task)).ctx[key.name] = run:context_fp(key)
  end
  return value
end

function Source:items()
  local it, state, init = self.def.items()
  if type(it) == "table" then return table_items(it, 1) end
  return it, state, init
end

function M.source(def)
  if type(def) ~= "table" or type(def.items) ~= "function" then
    fail("tide.source: expected a table with an items function", 2)
  end
  if def.watch ~= nil and type(def.watch) ~= "function" then
    fail("tide.source: watch must be a function", 2)
  end
  return setmetatable({ kind = def.name or "source", def = def,
                        watch = def.watch }, Source)
end

M.Key = Key
M.declare_target = target.declare_target
M.STATUS_OK, M.STATUS_ERROR, M.STATUS_INCOMPLETE =
  STATUS_OK, STATUS_ERROR, STATUS_INCOMPLETE
M.run_component = run_component

-- The scheduler's runner: a component, or an item of a tide.map.
function M.run_task(task)
  if task.item then return run_item(task) end
  return run_component(task)
end

-- The scheduler's on_abort: a task whose own code yielded to the
-- scheduler fails (an item fails its map's caller).
function M.abort_component(task, message)
  flights.abort(task.run or task.frame.run, task)
  if task.item then
    task.failed, task.err, task.trace = true, message, message
    return
  end
  return M.component_failed(task.run, task, message)
end

-- What share.lua mounts a claimed item with.
M.mount_component = mount

return M
