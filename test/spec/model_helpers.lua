-- The model specs' server (test/server/model_server.lua), started as a
-- real process on 127.0.0.1, and a client for its control endpoints.
local helpers = require "test.spec.helpers"
local cjson = require "cjson"
local tide = require "tide"

local M = {}

-- Starts a server; args is a string of extra arguments. Returns
-- { port, url, stats(), reset(), faults(list), replies(list), stop() }.
function M.start(args)
  local dir = helpers.tmpdir()
  local port_file = dir .. "/port"
  local pid_file = dir .. "/pid"
  os.execute(("lua5.4 %s/test/server/model_server.lua --port-file %s %s "
    .. ">%s/log 2>&1 & echo $! >%s"):format(helpers.q(helpers.root),
    helpers.q(port_file), args or "", helpers.q(dir), helpers.q(pid_file)))
  assert(helpers.wait_for(function() return helpers.exists(port_file) end, 10),
         "the model server did not start: " .. (helpers.read(dir .. "/log")
                                                 or ""))
  local s = { port = tonumber(helpers.read(port_file)),
              pid = tonumber(helpers.read(pid_file)) }
  s.url = "http://127.0.0.1:" .. s.port
  local function control(path, body)
    local r = assert(tide.http.request{ method = body and "POST" or "GET",
      url = s.url .. path, body = body and cjson.encode(body) })
    assert(r.status == 200, r.body)
    return cjson.decode(r.body)
  end
  function s.stats() return control("/control/stats") end
  function s.reset() return control("/control/reset", {}) end
  function s.faults(list) return control("/control/faults", { faults = list }) end
  function s.replies(list) return control("/control/chat", { replies = list }) end
  function s.stop() os.execute("kill " .. s.pid .. " 2>/dev/null") end
  return s
end

return M
