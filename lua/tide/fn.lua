-- tide.fn: tracked functions. Outside a component a tide.fn is a plain
-- call; inside one it is counted, recorded as a dependency of the running
-- component, and with `memo = true` skipped when its logic and arguments
-- are unchanged (the stored return value is returned and the target
-- states it declared are declared again).
local core = require "tide.core"
local sched = require "tide.sched"
local calls = require "tide.calls"

local type, error, setmetatable, pairs, tostring =
  type, error, setmetatable, pairs, tostring
local fmt = string.format
local pack, unpack = table.pack, table.unpack

local M = {}

local Fn = { __name = "tide.fn" }
Fn.__index = Fn

local LOGIC = { full = true, self = true, none = true }
local OPTIONS = { memo = true, version = true, deps = true, logic = true,
                  batch = true, parallel = true, concurrency = true }

local function hex_to_raw(h)
  return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end))
end

-- The latest tide.fn defined under each name: what recorded dependencies
-- are checked against.
M.registry = setmetatable({}, { __mode = "v" })

function M.new(name, opts, body, unregistered)
  if type(name) ~= "string" or name == "" or name:find("/", 1, true) then
    error("tide.fn: name must be a non-empty string without '/'", 3)
  end
  if body == nil and type(opts) == "function" then opts, body = {}, opts end
  if type(opts) ~= "table" then
    error(fmt("tide.fn %s: options must be a table", name), 3)
  end
  if type(body) ~= "function" then
    error(fmt("tide.fn %s: expected a function", name), 3)
  end
  for k in pairs(opts) do
    if not OPTIONS[k] then
      error(fmt("tide.fn %s: unknown option %s", name, tostring(k)), 3)
    end
  end
  local logic = opts.logic or "full"
  if not LOGIC[logic] then
    error(fmt("tide.fn %s: logic must be \"full\", \"self\" or \"none\"",
              name), 3)
  end
  if opts.version ~= nil and type(opts.version) ~= "number"
     and type(opts.version) ~= "string" then
    error(fmt("tide.fn %s: version must be a number or a string", name), 3)
  end
  if opts.deps ~= nil then
    local ok, err = pcall(core.cbor_encode, opts.deps, name .. " deps")
    if not ok then error("tide.fn " .. err, 3) end
  end
  local c = opts.concurrency
  if c ~= nil and (math.type(c) ~= "integer" or c < 1) then
    error(fmt("tide.fn %s: concurrency must be a positive integer", name), 3)
  end
  if opts.memo ~= nil and type(opts.memo) ~= "boolean" then
    error(fmt("tide.fn %s: memo must be true or false", name), 3)
  end
  if opts.parallel ~= nil and type(opts.parallel) ~= "boolean" then
    error(fmt("tide.fn %s: parallel must be true or false", name), 3)
  end
  if opts.parallel and opts.batch ~= nil then
    error(fmt("tide.fn %s: parallel and batch cannot be used together",
              name), 3)
  end
  local batch
  if opts.batch ~= nil then
    local why
    batch, why = calls.batch_option(opts.batch)
    if not batch then error(fmt("tide.fn %s: %s", name, why), 3) end
  end
  local f = setmetatable({
    name = name, body = body, memo = opts.memo and true or false,
    result_what = name .. " result", -- its results' name in messages
    version = opts.version, deps = opts.deps, logic_mode = logic,
    concurrency = c, batch = batch, parallel = opts.parallel or nil,
  }, Fn)
  if batch then
    -- Its logic is the body's; a plain call runs it on a list of one.
    f.batch_body = body
    f.body = calls.single(name, body)
  end
  if not unregistered then M.registry[name] = f end
  return f
end

-- The logic fingerprint as 32 hex digits: the body's code (and, with
-- logic = "full", everything it reaches), the deps value, the version.
-- Cached for the length of a run (the engine clears it).
function Fn:logic()
  local cached = self._logic
  if cached then return cached end
  local code
  if self.logic_mode == "full" then
    self._logic = "computing" -- a tide.fn that reaches itself
    code = core.logic_fingerprint(self.batch_body or self.body)
  elseif self.logic_mode == "self" then
    code = core.logic_fingerprint(self.batch_body or self.body, "self")
  else
    code = ""
  end
  cached = core.fingerprint({ "tide.fn", self.name, code, self.version or false,
                              self.deps or false })
  self._logic = cached
  self._logic_raw = hex_to_raw(cached)
  return cached
end

function Fn:logic_raw()
  if not self._logic_raw then self:logic() end
  return self._logic_raw
end

function Fn:forget_logic()
  self._logic, self._logic_raw = nil, nil
end

Fn.__tide_logic = function(self)
  if self._logic == "computing" then return "cycle " .. self.name end
  return self:logic()
end

Fn.__tostring = function(self) return "tide.fn " .. self.name end

-- Inside a component the call goes through the run the component belongs
-- to (run.call, tide.engine's call), found from the running coroutine's
-- frame: no module holds a hook. A memo hit of an entry the run already
-- holds is decided and answered in C (lmemo.c); outside a component the
-- body is called.
Fn.__call = core.fn_caller(sched.task_of)

function M.is_fn(v)
  return getmetatable(v) == Fn
end

-- Results as a table that records their count, and back.
M.pack = pack
M.unpack = function(t) return unpack(t, 1, t.n) end

return M
