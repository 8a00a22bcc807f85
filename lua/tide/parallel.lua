-- The main side of parallel Lua: a call of a `parallel` tide.fn whose
-- memo said it must run goes to a worker (lworkers.c, worker.lua) while
-- the caller's task waits and the others run.
--
-- A function can run in a worker when its body comes from a file (the
-- worker loads that file to define it) and captures nothing that loading
-- the file again cannot remake: no userdata (an open connection), no
-- coroutine, no target handle (pass a handle as an argument instead: its
-- calls come back to the caller). That is checked at the first call, when
-- the values it captures are set, and a function that cannot run there is
-- refused with the reason: never run somewhere else instead.
local core = require "tide.core"
local worker = require "tide.worker"

local type, error, getmetatable, select, pcall =
  type, error, getmetatable, select, pcall
local unpack = table.unpack
local getupvalue, getinfo = debug.getupvalue, debug.getinfo
local fmt = string.format
local encode = core.cbor_encode

local M = {}

-- The absolute path of the file that defines f, or nil and why there is
-- none.
function M.source_file(f)
  local src = getinfo(f, "S").source
  if src:sub(1, 1) ~= "@" then
    return nil, "its code was not loaded from a file"
  end
  local path = src:sub(2)
  if path:sub(1, 1) ~= "/" then
    local cwd = core.getcwd()
    if not cwd then return nil, "the current folder cannot be read" end
    path = cwd .. "/" .. path
  end
  return path
end

local HANDLES = { ["tide.target"] = true, ["tide.sqlite.table"] = true,
                  ["tide.fs.dir"] = true }

-- What f (or a function it captures) captures that a worker cannot
-- remake, as "name (what)", or nil.
local function capture_problem(f, seen)
  seen[f] = true
  for i = 1, 255 do
    local name, v = getupvalue(f, i)
    if not name then break end
    local t = type(v)
    if name ~= "_ENV" then
      if t == "userdata" then
        local mt = getmetatable(v)
        return fmt("%s (%s)", name, type(mt) == "table" and mt.__name
                   or "a userdata")
      elseif t == "thread" then
        return fmt("%s (a coroutine)", name)
      elseif t == "table" then
        local mt = getmetatable(v)
        if type(mt) == "table" and HANDLES[mt.__name] then
          return fmt("%s (a target handle: pass it as an argument)", name)
        end
      elseif t == "function" and not seen[v] then
        local why = capture_problem(v, seen)
        if why then return why end
      end
    end
  end
  return nil
end

-- true, or why fn cannot run in a worker (checked once).
local function check(fn)
  local verdict = fn._parallel_ok
  if verdict ~= nil then return verdict end
  local body = fn.batch_body or fn.body
  local file, why = M.source_file(body)
  if file then
    local captured = capture_problem(body, {})
    if captured then why = "it captures " .. captured end
  end
  verdict = why or true
  fn._parallel_ok, fn._file = verdict, file
  return verdict
end

-- What every call of fn sends: the encoding of [file, name, logic], kept
-- on fn with the name its arguments get in messages, once fn passed the
-- check. Raises when fn cannot run in a worker.
local function prepare(fn)
  local verdict = check(fn)
  if verdict ~= true then
    error(fmt("tide.fn %s cannot run in a worker: %s", fn.name, verdict), 0)
  end
  fn._argument_what = fn.name .. " argument"
  fn._request_head = encode({ fn._file, fn.name, fn:logic() })
  return fn._request_head
end

-- What a worker's answer means: true and the results packed ({ n }),
-- after the calls the body made through handles are made on them, in the
-- caller's component; or false, the error and the worker's traceback (or
-- nil). err is the pool's message when there is no answer.
local function outcome(fn, answer, err, handles)
  if not answer then return false, fmt("tide.fn %s: %s", fn.name, err) end
  local count = answer.n
  if count == nil then
    local traceback = answer.traceback
    if traceback and not traceback:find("\nstack traceback:", 1, true) then
      -- None of the user's frames: the mark still reads as a frame.
      traceback = traceback .. "\nstack traceback:"
    end
    return false, answer.error, traceback and traceback .. "\n\t(in a worker)"
  end
  local made = answer.calls
  if made then
    answer.calls = nil
    for i = 1, #made do
      local c = made[i]
      local h, a = handles[c.i], worker.unpack(c.args)
      h[c.method](h, table.unpack(a, 1, a.n))
    end
  end
  for i = 1, count do
    if type(answer[i]) == "table" then return true, worker.unpack(answer) end
  end
  return true, answer
end

-- Whether the arguments must be packed (worker.pack): a table may hold
-- files, records or handles, and a nil needs a packed table.
local function needs_pack(n, ...)
  for i = 1, n do
    local v = (select(i, ...))
    if v == nil or type(v) == "table" then return true end
  end
  return false
end

-- fn(...) run by a worker for task; returns its results packed ({ n }).
-- The answer (worker.lua) is that table itself, or { error, traceback }.
function M.call(run, task, fn, ...)
  local head = fn._request_head or prepare(fn)
  local what = fn._argument_what
  local pool = run.pool or run:workers()
  local n = select("#", ...)
  local answer, err, handles
  if needs_pack(n, ...) then
    handles = {}
    local args = worker.pack(table.pack(...), handles, what)
    answer, err = pool:call(head, what, -1, args)
  else
    answer, err = pool:call(head, what, n, ...)
  end
  local ok, results, traceback = outcome(fn, answer, err, handles)
  if not ok then
    -- The component reports the worker's traceback (engine.lua).
    if traceback then task.traceback_of = { err = results, text = traceback } end
    error(results, 0)
  end
  return results
end

-- tide.map(fn, list, ...) over a parallel fn that is neither memoized,
-- batched nor limited, for task: the calls go out from task itself, at
-- most `window` at a time, with no task per item, and their answers are
-- taken in input order, so handle calls are made in input order too.
-- on_item(i, ok, results, traceback) gets each item's outcome as
-- outcome() gives it (an argument that cannot cross, or handle calls
-- that raise, fail that item alone).
function M.map(run, fn, list, n, extra, window, on_item)
  local head = fn._request_head or prepare(fn)
  local what = fn._argument_what
  local pool = run.pool or run:workers()
  local batch = pool:batch(head, what)
  local ne = extra.n
  local plain = not needs_pack(ne, unpack(extra, 1, ne))
  local queue, handles_of = {}, {}
  local qhead, qtail, submitted = 1, 0, 0
  while submitted < n or qhead <= qtail do
    while submitted < n and qtail - qhead + 1 < window do
      submitted = submitted + 1
      local i, v = submitted, list[submitted]
      local ok, err
      if plain and v ~= nil and type(v) ~= "table" then
        ok, err = batch:submit(ne + 1, v, unpack(extra, 1, ne))
      else
        local handles = {}
        ok, err = pcall(worker.pack, table.pack(v, unpack(extra, 1, ne)),
                        handles, what)
        if ok then ok, err = batch:submit(-1, err) end
        handles_of[i] = handles
      end
      if ok then
        qtail = qtail + 1
        queue[qtail] = i
      else
        handles_of[i] = nil
        on_item(i, false, err)
      end
    end
    if qhead <= qtail then
      local i = queue[qhead]
      queue[qhead] = nil
      qhead = qhead + 1
      local answer, err = batch:next()
      local fine, ok, results, traceback = pcall(outcome, fn, answer, err,
                                                 handles_of[i])
      handles_of[i] = nil
      if fine then
        on_item(i, ok, results, traceback)
      else
        on_item(i, false, ok)
      end
    end
  end
end

return M
