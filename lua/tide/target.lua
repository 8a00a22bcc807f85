-- Targets: target types, containers (a table, a folder) and the handles
-- components declare target states through.
--
-- A target type is { name, identity(spec), short_name(spec),
-- setup(spec, prev, owner) -> survived, made, apply(spec, changes),
-- drop(spec, owner), recover(spec), exists(spec), folder(spec),
-- own_files(spec), batch_size }; see tide.target_type. own_files, optional,
-- lists the files and folders the container writes, which no walk lists
-- (fs.lua). made, optional, is how many folders
-- the setup created for the container, counted from folder(spec) up (a
-- database's folder and its parents): the store keeps it, and once the
-- container is dropped the engine removes them when they are empty
-- (remove_made_folders).
-- batch_size, optional, is the number of components a run's batches
-- should hold at least once the target is declared (a target whose
-- every apply costs a round trip to a server). finish(spec), optional,
-- runs at the end of every run that declared the container. exists, optional,
-- says whether the container is still there (a run recreates and refills
-- one that is gone). recover, optional, is called
-- before a run that follows one that never finished (killed), to clean up
-- partial writes apply may have left (a temporary file). apply_send(spec,
-- changes) and apply_wait(spec), optional (sqlite.table's), do what apply
-- does in the background: the engine sends a batch's changes once its
-- commit is known, runs the next components meanwhile, and waits (the
-- wait raises what apply would have) before it sends the container's
-- next batch and drops the batch's intent. A container is one (type, spec) declared in a run; it
-- is set up once per run when its spec changed, and batches of changes
-- { key, value } (nil value = delete) are applied to it.
local core = require "tide.core"
local sched = require "tide.sched"

local type, error, pairs, ipairs, setmetatable, tostring, pcall =
  type, error, pairs, ipairs, setmetatable, tostring, pcall
local fmt, sort = string.format, table.sort

local M = {}

local types = {} -- name -> target type

local function ipairs_has(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

function M.register(tt)
  types[tt.name] = tt
  return tt
end

-- A container's state in the store, one integer: whether its setup is
-- under way (a kill then leaves the instruction to set it up again) and
-- how many folders setups made for it: pending + 2 * made.
function M.container_state(pending, made)
  return (pending and 1 or 0) + 2 * made
end

function M.setup_pending(state) return state % 2 == 1 end

function M.folders_made(state) return state // 2 end

local function depth(path)
  local _, n = path:gsub("/", "")
  return n
end

-- Removes the folders setups made for the dropped containers list ({
-- type, spec, made }), each once empty: deepest first, since one
-- container's folder may hold another's (out/ made for out/docs.db, and
-- out/site). A folder that is not empty stays, and so do its parents.
-- Returns true, or nil and a message naming the first folder that could
-- not be removed for another reason.
function M.remove_made_folders(list)
  local seen, folders = {}, {}
  for _, c in ipairs(list) do
    local dir = c.made > 0 and c.type.folder and c.type.folder(c.spec)
    for _ = 1, dir and c.made or 0 do
      if not seen[dir] then
        seen[dir] = true
        folders[#folders + 1] = dir
      end
      dir = dir:match("^(.*[^/])/+[^/]+/*$")
      if not dir then break end
    end
  end
  sort(folders, function(a, b)
    local da, db = depth(a), depth(b)
    if da ~= db then return da > db end
    return a < b
  end)
  local first
  for _, dir in ipairs(folders) do
    local ok, err = core.fs_rmdir(dir)
    if ok == nil then first = first or err end
  end
  if first then return nil, first end
  return true
end

-- Built-in target types live in modules a pipeline may not have loaded
-- when `tide drop` or a recovery needs them.
local builtin = {
  ["fs.dir"] = function() return require("tide.fs").dir_target end,
  ["sqlite.table"] = function() return require("tide.sqlite").target end,
  ["postgres.table"] = function()
    return require("tide.postgres").target
  end,
  ["postgres.capture"] = function()
    return require("tide.postgres").capture
  end,
}

function M.type_named(name)
  local tt = types[name]
  if not tt and builtin[name] then
    local ok, found = pcall(builtin[name])
    if ok and found then tt = M.register(found) end
  end
  return tt
end

-- tide.target_type{ name, apply, setup, drop, identity, short_name }
function M.target_type(def)
  if type(def) ~= "table" then
    error("tide.target_type: expected a table", 2)
  end
  if type(def.name) ~= "string" or def.name == "" then
    error("tide.target_type: name must be a non-empty string", 2)
  end
  if type(def.apply) ~= "function" then
    error(fmt("tide.target_type %s: apply must be a function", def.name), 2)
  end
  local functions = { "setup", "drop", "identity", "short_name", "recover",
                      "exists", "finish", "folder", "verify", "own_files" }
  for _, k in ipairs(functions) do
    if def[k] ~= nil and type(def[k]) ~= "function" then
      error(fmt("tide.target_type %s: %s must be a function", def.name, k),
            2)
    end
  end
  for k in pairs(def) do
    if k ~= "name" and k ~= "apply" and k ~= "batch_size"
       and not ipairs_has(functions, k) then
      error(fmt("tide.target_type %s: unknown field %s (expected name, "
        .. "apply, batch_size, %s)", def.name, tostring(k),
        table.concat(functions, ", ")), 2)
    end
  end
  local batch = def.batch_size
  if batch ~= nil and (math.type(batch) ~= "integer" or batch < 1) then
    error(fmt("tide.target_type %s: batch_size must be a positive integer",
              def.name), 2)
  end
  local tt = {
    name = def.name, apply = def.apply, exists = def.exists,
    recover = def.recover, finish = def.finish, folder = def.folder,
    verify = def.verify, own_files = def.own_files, batch_size = batch,
    setup = def.setup or function() return true end,
    drop = def.drop or function() end,
    identity = def.identity or function(spec)
      return type(spec) == "table" and spec.name and tostring(spec.name)
        or core.fingerprint(spec)
    end,
    short_name = def.short_name or function(spec)
      return type(spec) == "table" and spec.name and tostring(spec.name)
        or def.name
    end,
    -- A custom type: its handle declares with :declare(key, value).
    custom = true,
  }
  return M.register(tt)
end

-- Handles: what a target constructor returns. As a memo argument a handle
-- counts by its container's identity.
local Handle = { __name = "tide.target" }
Handle.__index = Handle
Handle.__tide_key = function(h)
  return { h.container.kind, h.container.identity }
end
Handle.__tostring = function(h)
  return fmt("target %s %s", h.container.kind, h.container.identity)
end

-- reconcile.declare (which requires this module): looked up once, at the
-- first declaration.
local declare_in
declare_in = function(...)
  declare_in = require("tide.reconcile").declare
  return declare_in(...)
end

-- Declarations go to the run of the component they are made in.
function Handle:declare(key, value)
  if getmetatable(self) ~= Handle then
    error("target: call declare with a colon (h:declare(key, value)), not "
          .. "a dot", 2)
  end
  if key == nil then error("target key must not be nil", 2) end
  -- The running task: its component's frame, or an item of a concurrent
  -- map working for one (whose memoized calls nest in the item).
  local task = sched.current()
  if not task then
    error("target states can only be declared inside a component", 2)
  end
  declare_in(task, self.container, key, value, 2)
end

-- Declares the container in the running component and returns a handle.
-- Errors name the caller of the target constructor (level 3).
function M.declare_target(tt, spec)
  if type(tt) ~= "table" or type(tt.apply) ~= "function" then
    error("declare_target: expected a target type", 2)
  end
  if not types[tt.name] then M.register(tt) end
  local frame = sched.current_frame()
  if not frame then
    error(tt.name .. ": a target can only be declared inside a component",
          3)
  end
  local container = frame.run:container(tt, spec, frame, 3)
  return setmetatable({ container = container }, Handle)
end

M.Handle = Handle
M.types = types

return M
