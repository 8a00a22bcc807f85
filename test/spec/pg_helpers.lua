-- A PostgreSQL 15 server of the spec's own (scripts/pg_server.sh: a new
-- cluster in a temporary folder, run by an unprivileged user, listening
-- on a Unix socket in that folder only).
local helpers = require "test.spec.helpers"

local q = helpers.q
local M = {}

-- Starts one; returns its folder and its libpq connection string.
function M.start()
  local dir = os.tmpname()
  os.remove(dir)
  local out, err, code = helpers.run(("sh %s/scripts/pg_server.sh start %s")
    :format(q(helpers.root), q(dir)))
  assert(code == 0, "cannot start PostgreSQL: " .. tostring(err))
  return dir, (out:gsub("%s+$", ""))
end

-- Stops it (its clients are cut off) and starts it again.
function M.restart(dir)
  local _, err, code = helpers.run(("sh %s/scripts/pg_server.sh restart %s")
    :format(q(helpers.root), q(dir)))
  assert(code == 0, "cannot restart PostgreSQL: " .. tostring(err))
end

-- Stops it and removes its folder.
function M.stop(dir)
  helpers.run(("sh %s/scripts/pg_server.sh stop %s"):format(q(helpers.root),
                                                             q(dir)))
end

-- A state store location in schema of the server in dir; extra (such
-- as "&password=...") is appended.
function M.store_location(dir, schema, extra)
  return ("postgresql:///postgres?host=%s&user=tide&schema=%s%s")
    :format(dir, schema, extra or "")
end

-- r, or an error with err: what a call that returns nil, message gave.
function M.must(r, err)
  assert(r, err)
  return r
end

-- The rows sql gives on conn (a tide.postgres connection), or an error.
function M.rows(conn, sql, params)
  return M.must(require("tide.postgres").query(conn, sql, params)).rows
end

return M
