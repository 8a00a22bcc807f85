-- The worker side of parallel Lua, and how values cross between the main
-- state and a worker's (both sides use M.pack and M.unpack).
--
-- A worker state (lworkers.c) loads this module; M.run is its job runner.
-- A job is a call of a `parallel` tide.fn: [file, fn name, logic, n,
-- args...] (lworkers.c writes it straight from the caller's values). The
-- worker loads file, the file that defined the function, once, in
-- definition mode (an app does not run here: app:update raises, and so
-- does os.exit), finds the function by name, checks that its logic
-- fingerprint is the caller's (the same code, the same helpers), and
-- calls its body. The answer is its results as table.pack makes them,
-- with calls (below) when there are some, or { error, traceback }.
--
-- What crosses is canonical CBOR of plain values. Before encoding, M.pack
-- turns a file (fs.File) into a marked table the other side turns back
-- into a file, a record value into its plain fields, and a target handle
-- into a numbered stand-in: in the worker, a method called on the
-- stand-in (docs:row(...), dir:file(...)) is recorded, and the main side
-- calls it on the real handle, in order, when the result comes back, so
-- that target states declared in a worker land in the caller's component.
local core = require "tide.core"
local tracebacks = require "tide.traceback"

local type, pairs, getmetatable, setmetatable, select, error, tostring =
  type, pairs, getmetatable, setmetatable, select, error, tostring
local encode, decode = core.cbor_encode, core.cbor_decode
local fmt = string.format

local M = {}

-- The key that marks a table standing for a file or a handle.
local MARK = "\0tide"

local function is_handle(mt)
  -- Target handles are what declares target states: tide.target and the
  -- handles built on it (sqlite.table's, fs.dir's), which hold one.
  local name = mt.__name
  return name == "tide.target" or name == "tide.sqlite.table"
    or name == "tide.fs.dir"
end

-- v as plain values, with files, records and handles marked; handles is
-- the list the marks number (nil: a handle cannot cross here).
local function pack(v, handles, seen, what)
  if type(v) ~= "table" then return v end
  if seen[v] then
    error(fmt("%s: a table that contains itself cannot cross to a worker",
              what), 0)
  end
  local mt = getmetatable(v)
  local File = package.loaded["tide.fs"] and package.loaded["tide.fs"].File
  if mt ~= nil and mt == File then
    return { [MARK] = "file", path = v.path, dir = v.dir, abs = v.abs,
             size = v.size, mtime = v.mtime, mtime_ns = v.mtime_ns,
             inode = v.inode }
  end
  if type(mt) == "table" and is_handle(mt) then
    if not handles then
      error(fmt("%s: a target handle cannot come back from a worker", what),
            0)
    end
    handles[#handles + 1] = v
    return { [MARK] = "handle", i = #handles }
  end
  seen[v] = true
  local out = {}
  for k, x in pairs(v) do out[k] = pack(x, handles, seen, what) end
  seen[v] = nil
  return out
end

function M.pack(v, handles, what)
  return pack(v, handles, {}, what or "value")
end

-- A handle's stand-in in a worker: every method call is recorded.
local function stand_in(i, calls)
  return setmetatable({}, {
    __name = "tide.worker.handle",
    __index = function(_, method)
      return function(_, ...)
        calls[#calls + 1] = { i = i, method = method,
                              args = M.pack(table.pack(...), nil,
                                            "a target handle's argument") }
      end
    end,
  })
end

-- The value pack made, back: files are files again, handles stand-ins
-- whose calls go to calls (nil: none may be there).
local function unpack_value(v, calls)
  if type(v) ~= "table" then return v end
  local mark = v[MARK]
  if mark == "file" then
    v[MARK] = nil
    return setmetatable(v, require("tide.fs").File)
  elseif mark == "handle" then
    return stand_in(v.i, calls)
  end
  for k, x in pairs(v) do v[k] = unpack_value(x, calls) end
  return v
end
M.unpack = unpack_value

-- ---- The worker's side ----

local loaded = {} -- file -> true, or the message its loading raised
-- The functions defined so far, held: tide.fn's registry holds them
-- weakly, and nothing else here keeps what a file defined.
local defined = {}

local function load(file)
  if loaded[file] == nil then
    local chunk, err = loadfile(file)
    if not chunk then
      loaded[file] = err
    else
      local ok, e = pcall(chunk)
      loaded[file] = ok or tostring(e)
    end
    for name, fn in pairs(require("tide.fn").registry) do
      defined[name] = fn
    end
  end
  return loaded[file]
end

-- The function a job names, or nil and why it cannot run here.
local function find(file, name, logic)
  local outcome = load(file)
  local fn = defined[name]
  if not fn then
    if outcome ~= true then
      return nil, fmt("a worker could not load %s: %s", file, outcome)
    end
    return nil, fmt("%s does not define tide.fn %s when it loads (a "
                    .. "parallel function is defined at the top level of "
                    .. "its file)", file, name)
  end
  if fn:logic() ~= logic then
    return nil, fmt("the tide.fn %s a worker finds in %s is not the one "
                    .. "called (its code or what it reaches differs when "
                    .. "the file loads again)", name, file)
  end
  return fn
end

-- A traceback of the user's code, as a component's failure has it
-- (traceback.lua): tide's frames, this file's and the C functions
-- between them left out. The message handler of the body's call.
local traceback_text
local function user_traceback(e)
  traceback_text = tracebacks.of_user(e, 2)
  return e
end

-- An error value as it crosses back: a table that can be encoded as it
-- is (the caller's pcall sees what was raised), anything else as text.
local function error_value(e)
  if type(e) == "table" and pcall(encode, e) then return e end
  return tostring(e)
end

local pack_results = table.pack

local function run_job(job)
  local fn, why = find(job[1], job[2], job[3])
  if not fn then return { error = why } end
  local calls = {}
  local args, first, n = job, 5, job[4]
  if n == -1 then
    -- The arguments packed, nils and all ({ n = ... }).
    args, first = unpack_value(job[5], calls), 1
    n = args.n
  else
    for i = 5, 4 + n do
      if type(job[i]) == "table" then job[i] = unpack_value(job[i], calls) end
    end
  end
  traceback_text = nil
  local results = pack_results(xpcall(fn.body, user_traceback,
                                      table.unpack(args, first, first + n - 1)))
  if not results[1] then
    return { error = error_value(results[2]), traceback = traceback_text }
  end
  -- The results after the status, nils where they were.
  local count = results.n - 1
  table.move(results, 2, results.n, 1)
  results[results.n] = nil
  results.n = count
  for i = 1, results.n do
    if type(results[i]) == "table" then
      results = M.pack(results, nil, fn.name .. " result")
      break
    end
  end
  if calls[1] then results.calls = calls end
  return results, fn.result_what
end

-- The job runner (lworkers.c decodes the request and encodes the
-- answer): the request in, the answer and its name in messages out.
function M.run(job)
  local ok, answer, what = pcall(run_job, job)
  if ok then return answer, what end
  return { error = tostring(answer) }
end

-- Definition mode: nothing here runs an app or ends the process.
function M.enter()
  require("tide.app").in_worker = true
  os.exit = function()
    error("os.exit is not available in a tide worker", 2)
  end
end

return M
