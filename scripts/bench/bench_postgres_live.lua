-- bench_postgres.sh's live figure, against the server in $BENCH_PG while
-- `tide live` runs postgres_live_pipeline.lua over the table src: ROUNDS
-- times, one row of src is changed and the time taken until the row
-- tide writes into dst changes is measured (a trigger on dst notifies
-- bench_dst). The floor, in the same rounds: the time until the
-- notification of the change to src reaches a bare listener. Prints
-- medians and the 90th percentile.
-- Usage: tide run bench_postgres_live.lua ROUNDS N
local core = require "tide.core"
local postgres = require "tide.postgres"

local conn = assert(os.getenv("BENCH_PG"), "BENCH_PG: a connection string")
local rounds, n = tonumber(arg[1] or 30), tonumber(arg[2] or 100000)
local now = core.now_ms
local fmt = string.format

local function must(r, err) return assert(r, err) end

must(core.pg_script(conn, [[
CREATE OR REPLACE FUNCTION bench_notify() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN PERFORM pg_notify('bench_dst', NEW.id::text); RETURN NULL; END $$;
DROP TRIGGER IF EXISTS bench_dst ON dst;
CREATE TRIGGER bench_dst AFTER UPDATE ON dst FOR EACH ROW
  EXECUTE FUNCTION bench_notify();]], {}))
local l = must(core.pg_listen(conn, 'LISTEN "bench_dst"; LISTEN "tide_src"'))

local total, floor = {}, {}
for round = 1, rounds do
  local id = (round * 7919) % n + 1
  l:wait(0) -- what came before
  local t0 = now()
  must(postgres.query(conn, "UPDATE src SET title = $1 WHERE id = $2",
                      { fmt("changed %d", round), id }))
  local got_src, got_dst
  while not got_dst do
    local payloads = must(l:wait(10000))
    assert(#payloads > 0, "no change reached dst in 10 s")
    for _, p in ipairs(payloads) do
      if p == tostring(id) then got_dst = now() - t0
      elseif not got_src then got_src = now() - t0 end
    end
  end
  total[round], floor[round] = got_dst, got_src or got_dst
end

local function pick(t, q)
  table.sort(t)
  return t[math.max(1, math.ceil(#t * q))]
end
print(fmt("one row changed among %d, live through NOTIFY, until its row in "
  .. "postgres.table changed: median %.1f ms, p90 %.1f ms (floor: the "
  .. "notification reaching a bare listener, median %.2f ms, p90 %.2f ms)",
  n, pick(total, 0.5), pick(total, 0.9), pick(floor, 0.5),
  pick(floor, 0.9)))
print(fmt("budget median <= 50 ms: %s",
  pick(total, 0.5) <= 50 and "met" or "NOT met"))
