-- Issue 9's figures, each against a floor measured in the same run
-- (medians of BENCH_RUNS rounds, wall time of the part timed):
-- 1. a CPU-bound parallel tide.map (a pure-Lua hash over 10k strings) at
--    --jobs 2 against --jobs 1, and --jobs 1 against the same loop in
--    plain Lua;
-- 2. 200 tide.exec calls of a program that sleeps 50 ms, through tide.map
--    with concurrency = 16, against the ideal 200/16 x 50 ms;
-- 3. a function with a fixed 2 ms cost per call (CPU: a busy loop, as a
--    model server that answers one call at a time) with batch = 64,
--    against no batching (per call; the unbatched run is 1000 calls, the
--    batched 10k);
-- 4. the dispatch overhead of a parallel call of a trivial function
--    through tide.map, against a plain call.
-- With 1, as context: the machine's own ceiling for two CPU-bound
-- threads, the plain loop run in two processes at once against one (a
-- shared machine's two CPUs may not give twice the work).
-- Usage: tide run bench_concurrency.lua WORKDIR TIDE
local tide = require "tide"
local core = require "tide.core"

local work = assert(arg[1], "usage: bench_concurrency.lua WORKDIR TIDE")
local tide_exe = assert(arg[2], "usage: bench_concurrency.lua WORKDIR TIDE")
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local fns = dofile(here .. "concurrency_fns.lua")
local RUNS = tonumber(os.getenv("BENCH_RUNS") or "") or 5
local now = core.now_ms

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local db_n = 0
local function fresh_db()
  db_n = db_n + 1
  return ("%s/state%d.db"):format(work, db_n)
end

-- The worker threads start at the first parallel call (each makes its
-- Lua state and loads concurrency_fns.lua): a map of a few trivial calls
-- before the clock starts keeps that out of the figures, and its time is
-- reported apart.
local warm_ms = {}
local function warm_up()
  local t = now()
  local few = {}
  for i = 1, 32 do few[i] = i end
  tide.map(fns.trivial_parallel, few)
  warm_ms[#warm_ms + 1] = now() - t
end

-- Times body() once inside a component of a fresh app; returns ms. opts
-- go to app:update; opts.jobs warms the workers up first.
local function timed_once(name, body, opts)
  local ms
  local app = tide.app(name, function()
    tide.mount("timed", tide.fn(name .. "_timed", function()
      if opts and opts.jobs then warm_up() end
      local t = now()
      body()
      ms = now() - t
    end))
  end)
  local o = { db = fresh_db() }
  for k, v in pairs(opts or {}) do o[k] = v end
  local stats, errors = app:update(o)
  assert(stats, errors)
  assert(#errors == 0, errors[1] and errors[1].message)
  app:close()
  return ms
end

-- The median of RUNS timings of body (as timed_once).
local function timed(name, body, opts)
  local times = {}
  for r = 1, RUNS do times[r] = timed_once(name, body, opts) end
  return median(times)
end

local function verdict(ok, text)
  print(("budget %s: %s"):format(text, ok and "met" or "NOT met"))
end

-- 1. CPU-bound parallel map.
local N = 10000
local strings = {}
for i = 1, N do strings[i] = ("string number %d of the benchmark"):format(i) end
-- The floor and the two runs alternate, round by round, so that a
-- machine that gets busier or quieter meanwhile weighs on all three.
local floors, ones, twos = {}, {}, {}
local function par() tide.map(fns.hash_parallel, strings) end
-- The plain loop as a program of its own, for the machine's ceiling.
local plain = work .. "/plain_loop.lua"
do
  local f = assert(io.open(plain, "w"))
  f:write(("local fns = dofile(%q)\nfor i = 1, %d do\n"
    .. "  fns.hash((\"string number %%d of the benchmark\"):format(i))\n"
    .. "end\n"):format(here .. "concurrency_fns.lua", N))
  f:close()
end
local function processes(n)
  local cmd = {}
  for i = 1, n do cmd[i] = ("'%s' run '%s' &"):format(tide_exe, plain) end
  local t = now()
  assert(os.execute(table.concat(cmd, " ") .. " wait"))
  return now() - t
end
local one_proc, two_procs = {}, {}
for r = 1, RUNS do
  local t = now()
  local out = {}
  for i = 1, N do out[i] = fns.hash(strings[i]) end
  floors[r] = now() - t
  ones[r] = timed_once("bench_jobs1", par, { jobs = 1 })
  twos[r] = timed_once("bench_jobs2", par, { jobs = 2 })
  one_proc[r] = processes(1)
  two_procs[r] = processes(2)
end
local floor, j1, j2 = median(floors), median(ones), median(twos)
local ceiling = 2 * median(one_proc) / median(two_procs)
print(("parallel tide.map, pure-Lua hash over %d strings: --jobs 2 %.0f ms,"
  .. " --jobs 1 %.0f ms: %.2fx faster"):format(N, j2, j1, j1 / j2))
verdict(j1 / j2 >= 1.8, ">= 1.8x faster with --jobs 2")
print(("  context: the machine's own ceiling, the plain loop in two processes"
  .. " at once against one: %.2fx the work per second (one %.0f ms, two"
  .. " %.0f ms); --jobs 2 reaches %.0f%% of it"):format(ceiling,
  median(one_proc), median(two_procs), 100 * (j1 / j2) / ceiling))
print(("the same at --jobs 1 against a plain Lua loop (%.0f ms): ratio %.2f")
  :format(floor, j1 / floor))
verdict(j1 / floor <= 1.1, "<= 1.1x a plain Lua loop at --jobs 1")

-- 2. 200 programs that sleep 50 ms, 16 at a time.
local sleeper = tide.fn("bench_sleeper", { concurrency = 16 }, function()
  assert(tide.exec({ "sleep", "0.05" }))
end)
local list = {}
for i = 1, 200 do list[i] = i end
local ex = timed("bench_exec", function() tide.map(sleeper, list) end)
local ideal = 200 / 16 * 50
print(("200 tide.exec of a 50 ms program, concurrency 16: %.0f ms, ideal"
  .. " %.0f ms: ratio %.2f"):format(ex, ideal, ex / ideal))
verdict(ex / ideal <= 1.5, "<= 1.5x the ideal")

-- 3. Batching a call with a fixed 2 ms cost.
local function busy(ms)
  local stop = now() + ms
  while now() < stop do end
end
local batched = tide.fn("bench_batched", { batch = 64 }, function(items)
  busy(2)
  local out = {}
  for i = 1, #items do out[i] = items[i] end
  return out
end)
local single = tide.fn("bench_single", function(x)
  busy(2)
  return x
end)
local many = {}
for i = 1, N do many[i] = i end
local few = {}
for i = 1, 1000 do few[i] = i end
local b = timed("bench_batch", function() tide.map(batched, many) end)
local u = timed("bench_unbatched", function() tide.map(single, few) end)
local per_b, per_u = b / N, u / #few
print(("a 2 ms call, batch = 64: %.3f ms per call (10k calls), no batching:"
  .. " %.3f ms per call (1000 calls): %.0fx faster"):format(per_b, per_u,
  per_u / per_b))
verdict(per_u / per_b >= 30, ">= 30x faster with batch = 64")

-- 4. Dispatch overhead of a parallel call.
local d = timed("bench_dispatch", function()
  tide.map(fns.trivial_parallel, many)
end, { jobs = 1 })
local plain = {}
for r = 1, RUNS do
  local t = now()
  local out = {}
  for i = 1, N do out[i] = fns.trivial(many[i]) end
  plain[r] = now() - t
end
local dp = median(plain)
local over = (d - dp) * 1000 / N
print(("dispatch overhead of a parallel call of a trivial function through"
  .. " tide.map: %.1f us per call (floor: a plain call, %.3f us)")
  :format(over, dp * 1000 / N))
verdict(over <= 10, "<= 10 us per parallel call")
print(("  context: starting the workers (threads, Lua states, loading the"
  .. " file) and 32 first calls took %.0f ms (median)"):format(
  median(warm_ms)))
