-- The pipeline bench_workers.sh times: one memoized component per file of
-- the generated tree (gen_tree.sh) and one SQLite row per file, the
-- component's own work chosen by BENCH_WORK:
--   noop   nothing (the engine's and the store's cost per component);
--   cpu    a pure-Lua hash of the file's text, BENCH_ROUNDS times over;
--   wait   tide.sleep(BENCH_WAIT_MS), standing in for a model call.
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"

local work = os.getenv("BENCH_WORK") or "noop"
local rounds = tonumber(os.getenv("BENCH_ROUNDS") or "200")
local wait_s = tonumber(os.getenv("BENCH_WAIT_MS") or "20") / 1000

local Doc = tide.record("Doc", {
  { "path", "string", key = true },
  { "digest", "integer" },
})

-- workers_hash.lua, beside this file where bench_workers.sh copies both.
local hash = dofile("workers_hash.lua")

local process = tide.fn("process", { memo = true }, function(file, docs)
  local digest = 0
  if work == "cpu" then
    digest = hash(file:text(), rounds)
  elseif work == "wait" then
    tide.sleep(wait_s)
  end
  docs:row(Doc { path = file.path, digest = digest })
end)

return tide.app("bench_workers", function()
  local docs = sqlite.table { db = "out.db", name = "docs", schema = Doc }
  local tree = fs.walk(os.getenv("BENCH_TREE"), { include = { "**/*.md" } })
  tide.mount_each(process, tree, docs)
end)
