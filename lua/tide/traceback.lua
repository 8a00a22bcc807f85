-- Messages and tracebacks as a user reads them: positions in tide's own
-- Lua files left out of messages, and tide's frames and C functions out
-- of tracebacks. The main state's components (engine.lua) and a worker's
-- parallel calls (worker.lua) both report through here, so a failure
-- reads the same wherever it ran.
local type, tostring = type, tostring
local getinfo = debug.getinfo
local fmt, concat = string.format, table.concat

local M = {}

-- tide's own Lua files: the folder this one is in.
local own_dir = getinfo(1, "S").source:match("^@(.*/)[^/]*$")
local own_position = own_dir
  and (own_dir:gsub("%p", "%%%0") .. "[%w_]+%.lua:%d+: ")

-- A message without positions in tide's own files.
function M.clean_message(message)
  if not own_position or type(message) ~= "string" then return message end
  return (message:gsub(own_position, ""))
end

-- Whether a frame (debug.getinfo's) is of the user's code: Lua code
-- outside tide's own files.
function M.user_frame(info)
  return info.what ~= "C"
    and not (own_dir and info.source:find(own_dir, 2, true) == 2)
end
local user_frame = M.user_frame

-- A traceback of the user's code, from the given level up (1: the
-- caller of of_user): tide's frames and C functions (error, pcall, the
-- calls tide makes through C) left out. A function is named as its
-- caller named it when that caller is the user's code, else by where it
-- is defined ("function <main.lua:3>"), not by the name tide's own code
-- holds it under.
function M.of_user(message, level)
  local lines = { M.clean_message(tostring(message)), "stack traceback:" }
  local l = level + 1
  local info = getinfo(l, "Sln")
  while info do
    local caller = getinfo(l + 1, "S")
    if user_frame(info) then
      local name
      if info.what == "main" then
        name = "main chunk"
      elseif info.name and caller and user_frame(caller) then
        name = fmt("%s '%s'", info.namewhat == "global" and "function"
                   or info.namewhat, info.name)
      else
        name = fmt("function <%s:%d>", info.short_src, info.linedefined)
      end
      lines[#lines + 1] = fmt("\t%s:%d: in %s", info.short_src,
                              info.currentline, name)
    end
    l = l + 1
    info = getinfo(l, "Sln")
  end
  if #lines == 2 then lines[2] = nil end
  return concat(lines, "\n")
end

return M
