-- The tide command line: every command but `run` and `--version`, which
-- the host handles in C. main(args) returns the exit status.
local io_stdout, io_stderr = io.stdout, io.stderr

local M = {}

M.usage = [[
usage: tide COMMAND [ARGS]

commands:
  run SCRIPT.lua [ARGS...]   run a Lua 5.4 script with tide preloaded
                             ("-" reads the script from standard input)
  help                       show this help
  --version                  tide's, Lua's, SQLite's and libuv's versions
]]

local commands = {}

function commands.help()
  io_stdout:write(M.usage)
  return 0
end
commands["--help"] = commands.help
commands["-h"] = commands.help

function M.main(args)
  local name = args[1]
  local command = name and commands[name]
  if not command then
    if name then
      io_stderr:write(("tide: unknown command '%s'\n"):format(name))
    end
    io_stderr:write(M.usage)
    return 2
  end
  return command(table.unpack(args, 2))
end

return M
