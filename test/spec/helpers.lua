-- Shared helpers for the specs: temp dirs, files, running processes.
local M = {}

M.root = os.getenv("PWD")
M.build = os.getenv("TIDE_BUILD") or "build"
M.tide = M.root .. "/" .. M.build .. "/tide"

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.q = shell_quote

local temps = {}

-- A fresh temporary directory, removed by M.cleanup().
function M.tmpdir()
  local p = io.popen("mktemp -d /tmp/tide-spec.XXXXXX")
  local dir = p:read("l")
  p:close()
  temps[#temps + 1] = dir
  return dir
end

function M.cleanup()
  for _, d in ipairs(temps) do os.execute("rm -rf " .. shell_quote(d)) end
  temps = {}
end

function M.write(path, content)
  local dir = path:match("^(.*)/[^/]*$")
  if dir then os.execute("mkdir -p " .. shell_quote(dir)) end
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

function M.exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

-- Polls pred every 50 ms for at most `seconds`; returns its last answer.
function M.wait_for(pred, seconds)
  local deadline = os.time() + seconds
  repeat
    if pred() then return true end
    os.execute("sleep 0.05")
  until os.time() > deadline
  return pred() and true or false
end

function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Starts `tide live pipeline.lua --json ARGS` in dir in the background
-- (its pid in dir/pid, its output in dir/stdout and dir/stderr, its exit
-- status in dir/status; SIGINT given back its default action, which a
-- shell's background job inherits ignored) and returns its pid once it
-- watches (after its catch-up cycle).
function M.start_live(dir, args)
  os.execute(("cd %s && (sh -c 'echo $$ >pid; exec env --default-signal=INT "
    .. "\"$0\" live pipeline.lua --json %s' %s >stdout 2>stderr; "
    .. "echo $? >status) >/dev/null 2>&1 &"):format(M.q(dir), args or "",
                                                    M.q(M.tide)))
  assert(M.wait_for(function()
    return (M.read(dir .. "/stderr") or ""):find("watching") ~= nil
  end, 60), "live mode never watched: " .. tostring(M.read(dir .. "/stderr")))
  return assert(tonumber(M.read(dir .. "/pid"):match("%d+")))
end

-- Runs a shell command; returns stdout, stderr and the exit status.
function M.run(cmd, stdin)
  local dir = M.tmpdir()
  local full = cmd .. " >" .. dir .. "/out 2>" .. dir .. "/err"
  if stdin then
    M.write(dir .. "/in", stdin)
    full = full .. " <" .. dir .. "/in"
  end
  local _, _, code = os.execute(full)
  return M.read(dir .. "/out"), M.read(dir .. "/err"), code
end

-- The environment that lets the stock lua5.4 find tide in the build tree.
function M.stock_lua_env()
  local env = ("LUA_PATH=%s LUA_CPATH=%s"):format(
    shell_quote(M.root .. "/lua/?.lua;" .. M.root .. "/lua/?/init.lua;;"),
    shell_quote(M.root .. "/" .. M.build .. "/?.so;;"))
  local preload = os.getenv("TIDE_ASAN_PRELOAD")
  if preload and preload ~= "" then
    env = env .. " LD_PRELOAD=" .. shell_quote(preload)
      .. " ASAN_OPTIONS=detect_leaks=0"
  end
  return env
end

function M.hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

function M.unhex(h)
  return (h:gsub("%s", ""):gsub("..", function(x)
    return string.char(tonumber(x, 16))
  end))
end

-- BLAKE2b-128 of a file, computed by coreutils' b2sum as a reference.
function M.b2sum(path)
  local out = M.run("b2sum -l 128 " .. shell_quote(path))
  return out:match("^(%x+)")
end

return M
