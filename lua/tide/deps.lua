-- Dependencies recorded while a component or memoized call runs, and
-- their check at the next run.
--
-- A memoized component or call is carried over (a component) or hit (a
-- call) only when what it read beside its arguments is as it was: the
-- logic of the functions it called, the context values it used, the
-- folders it listed and the files a source read. Each is recorded in the
-- innermost recording scope of the running task (scope_of) as it
-- happens, merged into the caller's scope when a memoized call returns,
-- stored with the component or memo entry, and checked by valid().
local fnmod = require "tide.fn"
local sched = require "tide.sched"

local pairs, next = pairs, next

local M = {}

-- deps = { fns = { name = logic hex }, ctx = { key name = value fp hex },
--          walks = { walk key = listing fp },
--          files = { path = { fp = what its stat says, log } } }
-- (walks only once a folder was listed: fs.Walk:listed, walk_listed;
-- files once a source read one: file_listed)
function M.new() return { fns = {}, ctx = {} } end

-- A recording scope's dependency table, made on first use.
function M.of(scope)
  local deps = scope.deps
  if not deps then
    deps = M.new()
    scope.deps = deps
  end
  return deps
end

function M.merge(into, from)
  if next(from.fns) then
    for k, v in pairs(from.fns) do into.fns[k] = v end
  end
  if next(from.ctx) then
    for k, v in pairs(from.ctx) do into.ctx[k] = v end
  end
  if from.walks then
    local walks = into.walks or {}
    into.walks = walks
    for k, v in pairs(from.walks) do walks[k] = v end
  end
  if from.files then
    local files = into.files or {}
    into.files = files
    for k, v in pairs(from.files) do files[k] = v end
  end
end

-- Whether recorded dependencies still hold in this run.
function M.valid(run, deps)
  for name, fp in pairs(deps.fns or {}) do
    -- This run's function of that name, else the one the app's earlier
    -- cycles called (two apps in one Lua state may each have a function
    -- of that name), else, in an app's first cycle, the latest defined.
    local f = run.fns[name] or run.app.fns_seen[name]
      or fnmod.registry[name]
    if not f or f:logic() ~= fp then return false end
  end
  for name, fp in pairs(deps.ctx or {}) do
    if run:context_fp(name) ~= fp then return false end
  end
  for key, fp in pairs(deps.walks or {}) do
    if run:walk_fp(key) ~= fp then return false end
  end
  for path, f in pairs(deps.files or {}) do
    if run:source_file_fp(path, f.log) ~= f.fp then return false end
  end
  return true
end

-- The innermost recording scope of a task: its innermost memoized call,
-- else the task itself (a component's frame, or a map item, whose deps
-- are its component's).
function M.scope_of(task)
  local stack = task.memo_stack
  return stack and stack[#stack] or task
end

-- A folder listed (fs.Walk:listed) inside a memoized call, or a memoized
-- component, is what it reads beside its arguments: the listing joins
-- its dependencies, so that a file added, removed or changed there makes
-- it run again instead of being carried over.
function M.walk_listed(task, walk)
  local scope, frame = M.scope_of(task), task.frame or task
  if scope == task and (frame.is_root or not frame.fn.memo) then return end
  local key = walk:dependency_key()
  local deps = M.of(scope)
  local walks = deps.walks or {}
  deps.walks = walks
  walks[key] = frame.run:walk_fp(key)
end

-- A file a source reads (a JSON Lines file, an SQLite database; path as
-- the project names it), about to be read: in a live cycle it is watched
-- (live.lua, folders.add_file), so that a change to it starts a cycle,
-- which lists the source again; inside a memoized call or component it
-- joins its dependencies, as a folder listed there does (walk_listed).
-- log: a file written beside it that is part of it (a database's log).
function M.file_listed(path, log)
  local task = sched.current()
  local frame = task and (task.frame or task)
  local run = frame and frame.run
  if not run then return end
  run:watch_source_file(path, log)
  local scope = M.scope_of(task)
  if scope == task and (frame.is_root or not frame.fn.memo) then return end
  local deps = M.of(scope)
  local files = deps.files or {}
  deps.files = files
  files[path] = { fp = run:source_file_fp(path, log), log = log }
end

return M
