-- The crash campaign: kills `tide update` with SIGKILL at random moments
-- of real runs over a few thousand files, reruns to completion, and
-- compares every target with a clean run's.
--
--   tide run test/crash/campaign.lua [--trials N] [--seed S] [--only K]
--     [--files N] [--work N] [--apply-ms N] [--tide PATH] [--dir SCRATCH]
--     [--workers N] [--scenario NAME] [--keep] [--verbose]
--
-- With --workers N, every run but the reference is an update shared by N
-- worker processes (`--workers N --lease 1`) on a PostgreSQL state store
-- (a server of the campaign's own, scripts/pg_server.sh; a database per
-- folder, copied with it), and a kill takes the lead (a third of them) or
-- one of its workers. An update whose worker was killed must itself end
-- with exit status 0 and the clean run's targets (another worker or the
-- lead takes the dead one's items over): its differences count as lost
-- or stale too.
--
-- The pipeline (pipeline.lua.in) writes three targets: a sqlite.table, an
-- fs.dir and a custom target type whose apply takes --apply-ms per batch.
--
-- Scenarios (each trial picks one): a cold run, an edit run (a third of
-- the files edited, paragraphs added and removed, files and a folder
-- deleted, files added), a logic change (the transform's code edited), a
-- delete run, a mixed run (edits and a logic change at once), and a
-- revert (the killed updates run the changed code, the last one the old
-- code again); --scenario NAME runs only that one. A trial
-- copies the scenario's "before" folder (inputs, targets and store after a
-- clean run), applies the change, starts `tide update`, kills it at a
-- random moment within the scenario's clean duration; a third of the
-- trials also kill the recovery run. Then it runs `tide update` to the end
-- and compares the three targets with those of a clean run
-- of the same inputs and code in a fresh folder:
--   missing  a row or file of the clean run is absent   (lost)
--   extra    a row or file the clean run does not have  (stale)
--   old      present in both with other content         (stale)
-- A converged trial has no difference, exit status 0 on the final run, no
-- pending state in the store, and a further run that writes nothing.
--
-- Each trial draws from its own generator seeded by (seed, trial number),
-- so `--seed S --only K` replays trial K alone. The last lines are
--   trials T, converged C, lost L, stale S
--   C passed, T-C failed
-- and the exit status is 0 only when every trial converged.
local core = require "tide.core"
local sqlite = require "tide.sqlite"

local fmt, concat = string.format, table.concat
local now_ms = core.now_ms

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local C = dofile(here .. "/common.lua")
local q, sh, capture, write, read, mkdirs =
  C.q, C.sh, C.capture, C.write, C.read, C.mkdirs
local file_name, content = C.file_name, C.content
local snapshot, compare, show = C.snapshot, C.compare, C.show

-- ---- Options ----

local opts = { trials = 20, seed = nil, only = nil, files = 2000,
               work = 30000, apply_ms = 15, tide = os.getenv("TIDE") or "build/tide",
               keep = false, verbose = false, dir = nil, workers = nil }
local VALUED = { trials = true, seed = true, only = true, files = true,
                 work = true, tide = true, dir = true, ["apply-ms"] = true,
                 workers = true, scenario = true }
C.options(opts, VALUED, "campaign")

-- ---- Inputs and code ----

local function pipeline(version)
  return C.pipeline(version, opts.work, opts["apply-ms"] or opts.apply_ms)
end

-- An input state: relative path -> content.
local function state_A()
  local files = {}
  for i = 1, opts.files do
    files[file_name(i)] = content(i, 1 + i % 3, 0)
  end
  return files
end

-- A third edited (paragraph counts change both ways: 2 -> 1, 1 -> 3),
-- every seventh deleted, one whole folder deleted, a tenth more added.
local function state_B()
  local files = state_A()
  for i = 1, opts.files do
    local name = file_name(i)
    if i % 20 == 13 or i % 7 == 0 then
      files[name] = nil
    elseif i % 3 == 0 then
      files[name] = content(i, i % 2 == 0 and 1 or 3, 1)
    elseif i % 3 == 1 and i % 5 == 0 then
      files[name] = content(i, 1, 0) -- 2 paragraphs -> the first one
    end
  end
  for i = opts.files + 1, opts.files + opts.files // 10 do
    files[file_name(i)] = content(i, 2, 2)
  end
  return files
end

-- Every third file and one folder deleted.
local function state_D()
  local files = state_A()
  for i = 1, opts.files do
    if i % 3 == 1 or i % 20 == 5 then files[file_name(i)] = nil end
  end
  return files
end

local SCENARIOS = {
  { name = "cold", before = nil, after = { "A", "v1" } },
  { name = "edit", before = { "A", "v1" }, after = { "B", "v1" } },
  { name = "logic", before = { "A", "v1" }, after = { "A", "v2" } },
  { name = "delete", before = { "A", "v1" }, after = { "D", "v1" } },
  { name = "mixed", before = { "A", "v1" }, after = { "B", "v2" } },
  -- The killed updates run v2; the last one runs v1 again: what a killed
  -- update recorded must not stand for v1 (a component recorded under v1
  -- over children recorded under v2).
  { name = "revert", before = { "A", "v1" }, via = { "A", "v2" },
    after = { "A", "v1" } },
}

local states = { A = state_A(), B = state_B(), D = state_D() }

-- Brings dir/in from the `from` state to the `to` state, touching only
-- what differs (so unchanged files keep their stat).
local function apply_state(dir, from, to)
  local made = {}
  for name, text in pairs(to) do
    if from[name] ~= text then
      local folder = dir .. "/in/" .. name:match("^(.*)/")
      if not made[folder] then
        mkdirs(folder)
        made[folder] = true
      end
      write(dir .. "/in/" .. name, text)
    end
  end
  for name in pairs(from) do
    if to[name] == nil then os.remove(dir .. "/in/" .. name) end
  end
end

-- ---- The state store: each folder's own ----

-- With --workers, a PostgreSQL server of the campaign's own (started
-- below): each folder's store is a database named after the folder,
-- made, copied and dropped with it.
local pg

local function db_name(dir)
  return (dir:match("([^/]+)$"):gsub("[^%w]", "_"))
end

local function store_flag(dir)
  if not pg then return "" end
  return "--db " .. q(fmt("postgresql:///%s?host=%s&user=tide", db_name(dir),
                          pg.dir))
end

local function pg_exec(sql)
  local ok, err = require("tide.postgres").query(pg.conn, sql)
  if not ok then error("campaign: " .. sql .. ": " .. tostring(err), 0) end
end

-- rm -rf dir, its store with it.
local function remove_dir(dir)
  sh("rm -rf " .. q(dir))
  if pg then
    pg_exec(fmt('DROP DATABASE IF EXISTS "%s" WITH (FORCE)', db_name(dir)))
  end
end

-- A fresh folder dir, with an empty store.
local function fresh_dir(dir)
  remove_dir(dir)
  mkdirs(dir)
  if pg then pg_exec(fmt('CREATE DATABASE "%s"', db_name(dir))) end
end

-- A copy of the folder from (inputs, targets and store) at dir.
local function copy_dir(from, dir)
  remove_dir(dir)
  sh(fmt("cp -a %s %s", q(from), q(dir)))
  if pg then
    pg_exec(fmt('CREATE DATABASE "%s" TEMPLATE "%s"', db_name(dir),
                db_name(from)))
  end
end

-- ---- Running tide ----

local function shared_flags(dir)
  if not pg then return "" end
  return fmt("%s --workers %d --lease 1", store_flag(dir), opts.workers)
end

-- A run to its end: shared by the workers, unless it is the reference
-- (one process, what the others must give).
local function update(dir, extra, alone)
  return capture(fmt("%s update %s --quiet %s %s 2>&1", q(opts.tide),
                     q(dir .. "/pipeline.lua"),
                     alone and store_flag(dir) or shared_flags(dir),
                     extra or ""))
end

-- Starts `tide update` and kills it with SIGKILL after delay_ms, or with
-- --workers the victim-th of its workers (0: the lead); true when the
-- kill found the process still running, and the update's exit status
-- when its lead lived on.
local function update_killed(dir, delay_ms, victim)
  local out = capture(fmt(
    "%s update %s --quiet %s >%s 2>&1 & pid=$!; sleep %.4f; "
    .. "v=$pid; if [ %d -gt 0 ]; then "
    .. "v=$(pgrep -P $pid | sed -n %dp); fi; "
    .. "if [ -n \"$v\" ] && kill -9 $v 2>/dev/null; then echo killed; fi; "
    .. "wait $pid 2>/dev/null; echo status $?", q(opts.tide),
    q(dir .. "/pipeline.lua"), shared_flags(dir), q(dir .. "/killed.out"),
    delay_ms / 1000,
    victim or 0, math.max(victim or 0, 1)))
  return out:find("killed", 1, true) ~= nil,
    tonumber(out:match("status (%d+)"))
end

local function pending_states(dir)
  if pg then
    local r = require("tide.postgres").query(fmt(
      "host=%s user=tide dbname=%s", pg.dir, db_name(dir)),
      "SELECT count(*) AS n FROM tide.target_states WHERE pending <> 0")
    return r and tonumber(r.rows[1].n) or -1
  end
  local db = sqlite.open(dir .. "/.tide/state.db", "read")
  if not db then return -1 end
  local rows = db:rows("SELECT count(*) AS n FROM target_states "
                       .. "WHERE pending <> 0")
  db:close()
  return rows and rows[1].n or -1
end

-- ---- Preparing the scenarios ----

-- In memory when it can be: SIGKILL does not need fsync to be tested, and
-- a run over thousands of files spends most of its time in fsync on disk.
local scratch = opts.dir or (sh("test -d /dev/shm -a -w /dev/shm") == 0
                             and "/dev/shm" or "/tmp")
local base = capture(fmt("mktemp -d %s/tide-crash.XXXXXX", q(scratch)))
  :gsub("%s+$", "")

if opts.workers then
  -- Its own folder: the server's user cannot enter base.
  local dir = capture(fmt("mktemp -u %s/tide-crash-pg.XXXXXX", q(scratch)))
    :gsub("%s+$", "")
  local out, code = capture(fmt("sh %s/../../scripts/pg_server.sh start %s "
                                .. "2>&1", q(here), q(dir)))
  if code ~= 0 then
    io.stderr:write("campaign: cannot start PostgreSQL: ", out, "\n")
    os.exit(2)
  end
  pg = { dir = dir, conn = out:gsub("%s+$", "") }
end

local function stop_pg()
  if pg then
    sh(fmt("sh %s/../../scripts/pg_server.sh stop %s >/dev/null 2>&1",
           q(here), q(pg.dir)))
  end
end

local function setup_dir(dir, state, version)
  fresh_dir(dir)
  mkdirs(dir .. "/in")
  write(dir .. "/pipeline.lua", pipeline(version))
  apply_state(dir, {}, states[state])
end

local function must_update(dir, what, alone)
  local out, code = update(dir, nil, alone)
  if code ~= 0 then
    io.stderr:write(fmt("campaign: %s: tide update exited %d:\n%s\n", what,
                        code, out))
    stop_pg()
    os.exit(2)
  end
end

local function prepare(sc)
  -- The reference: a clean run of the final inputs and code, from nothing.
  local ref = base .. "/ref-" .. sc.name
  setup_dir(ref, sc.after[1], sc.after[2])
  must_update(ref, sc.name .. " reference", true)
  sc.expected = snapshot(ref)
  -- With workers, an update that lost one is checked as it ends: against
  -- a clean run of what it ran.
  if sc.via and pg then
    setup_dir(ref, sc.via[1], sc.via[2])
    must_update(ref, sc.name .. " reference of the killed updates", true)
    sc.expected_via = snapshot(ref)
  end
  -- The folder a trial starts from, after a clean run of the "before"
  -- inputs and code.
  sc.start = base .. "/before-" .. sc.name
  if sc.before then
    setup_dir(sc.start, sc.before[1], sc.before[2])
    must_update(sc.start, sc.name .. " before")
  else
    fresh_dir(sc.start)
  end
  -- The clean duration of the change, so kills land all over it.
  local timing = base .. "/timing-" .. sc.name
  local durations = {}
  for r = 1, 1 do
    copy_dir(sc.start, timing)
    sc.change(timing)
    local t0 = now_ms()
    must_update(timing, sc.name .. " timing")
    durations[r] = now_ms() - t0
  end
  sc.duration = durations[1]
  remove_dir(timing)
  remove_dir(ref)
end

-- change: from before to what the killed updates run (via, or after);
-- settle: from via to after, before the last update.
local function changer(from, to)
  return function(dir)
    if not from or from[2] ~= to[2] then
      write(dir .. "/pipeline.lua", pipeline(to[2]))
    end
    mkdirs(dir .. "/in")
    apply_state(dir, from and states[from[1]] or {}, states[to[1]])
  end
end
if opts.scenario then
  for _, sc in ipairs(SCENARIOS) do
    if sc.name == opts.scenario then SCENARIOS = { sc } end
  end
  if #SCENARIOS > 1 or SCENARIOS[1].name ~= opts.scenario then
    io.stderr:write("campaign: no scenario named ", opts.scenario, "\n")
    os.exit(2)
  end
end
for _, sc in ipairs(SCENARIOS) do
  sc.change = changer(sc.before, sc.via or sc.after)
  if sc.via then sc.settle = changer(sc.via, sc.after) end
end

print(fmt("crash campaign: seed %d, %d trials, %d files%s (replay with "
          .. "--seed %d [--only K])", opts.seed, opts.trials, opts.files,
          pg and fmt(", %d workers on PostgreSQL", opts.workers) or "",
          opts.seed))
io.stdout:flush()
for _, sc in ipairs(SCENARIOS) do
  prepare(sc)
  if opts.verbose then
    print(fmt("  %s: clean run %.0f ms", sc.name, sc.duration))
  end
end

-- ---- Trials ----

local totals = { trials = 0, converged = 0, lost = 0, stale = 0,
                 landed = 0, double = 0 }

local function trial(k)
  local rng = math.random
  math.randomseed(opts.seed, k)
  local sc = SCENARIOS[rng(#SCENARIOS)]
  local double = rng() < 1 / 3
  local d1 = rng() * sc.duration * 1.1
  local d2 = rng() * sc.duration * 1.1
  -- With workers: the lead, or which of its workers.
  local function victim()
    if not pg or rng() < 1 / 3 then return 0 end
    return rng(opts.workers)
  end
  local v1, v2 = victim(), victim()
  local dir = fmt("%s/trial-%04d", base, k)
  copy_dir(sc.start, dir)
  sc.change(dir)
  local problems = {}
  local d = { missing = {}, extra = {}, old = {} }
  local landed, status = update_killed(dir, d1, v1)
  local landed2, status2
  -- An update that lost a worker ends as a clean one: checked now.
  local function lived_on(status_, landed_, v)
    if not landed_ or v == 0 then return end
    if status_ ~= 0 then
      problems[#problems + 1] = fmt("the update whose worker %d was killed "
                                    .. "exited %s: %s", v, tostring(status_),
                                    (read(dir .. "/killed.out") or "")
                                      :sub(1, 2000))
    end
    local early = compare(sc.expected_via or sc.expected, snapshot(dir))
    for kind, list in pairs(early) do
      for _, what in ipairs(list) do
        d[kind][#d[kind] + 1] = what .. " (when a worker was killed)"
      end
    end
  end
  lived_on(status, landed, v1)
  if double then
    landed2, status2 = update_killed(dir, d2, v2)
    lived_on(status2, landed2, v2)
  end
  if sc.settle then sc.settle(dir) end
  local out, code = update(dir)
  if code ~= 0 then
    problems[#problems + 1] = fmt("final run exited %d: %s", code,
                                  out:sub(1, 2000))
  end
  for kind, list in pairs(compare(sc.expected, snapshot(dir))) do
    for _, what in ipairs(list) do d[kind][#d[kind] + 1] = what end
  end
  local pending = pending_states(dir)
  if pending ~= 0 then
    problems[#problems + 1] = fmt("%d target states still pending", pending)
  end
  local again, code2 = update(dir, "--json")
  if code2 ~= 0 or not again:find('"targets":{"inserted":0,"updated":0,'
                                  .. '"deleted":0}', 1, true)
     or not again:find('"reprocessed":0', 1, true) then
    problems[#problems + 1] = "a further run was not all unchanged: "
      .. again:sub(1, 500)
  end
  totals.trials = totals.trials + 1
  if landed then totals.landed = totals.landed + 1 end
  if landed2 then totals.double = totals.double + 1 end
  local lost = #d.missing > 0
  local stale = #d.extra > 0 or #d.old > 0
  if lost then totals.lost = totals.lost + 1 end
  if stale then totals.stale = totals.stale + 1 end
  local ok = not lost and not stale and #problems == 0
  if ok then totals.converged = totals.converged + 1 end
  if not ok or opts.verbose then
    print(fmt("trial %d (%s, kill%s at %.0f ms%s%s, %s): %s", k, sc.name,
              pg and (v1 == 0 and " of the lead" or " of worker " .. v1)
                or "", d1,
              landed and "" or " after the end",
              double and fmt(", again at %.0f ms%s", d2,
                             landed2 and "" or " after the end") or "",
              fmt("replay: --seed %d --only %d", opts.seed, k),
              ok and "converged" or "FAILED"))
    if #d.missing > 0 then print("  missing: " .. show(d.missing, 5)) end
    if #d.extra > 0 then print("  extra: " .. show(d.extra, 5)) end
    if #d.old > 0 then print("  old content: " .. show(d.old, 5)) end
    for _, p in ipairs(problems) do print("  " .. p) end
    if not ok then print("  trial folder: " .. dir) end
    io.stdout:flush()
  end
  if ok and not opts.keep then remove_dir(dir) end
  return ok
end

local failed_dirs = false
if opts.only then
  failed_dirs = not trial(opts.only)
else
  for k = 1, opts.trials do
    if not trial(k) then failed_dirs = true end
  end
end

print(fmt("kills that landed: %d of %d, second kills: %d", totals.landed,
          totals.trials, totals.double))
print(fmt("trials %d, converged %d, lost %d, stale %d", totals.trials,
          totals.converged, totals.lost, totals.stale))
print(fmt("%d passed, %d failed", totals.converged,
          totals.trials - totals.converged))
if not failed_dirs and not opts.keep then sh("rm -rf " .. q(base)) end
-- The server goes (its databases with it) unless a failed trial's store
-- must be looked at.
if not failed_dirs and not opts.keep then stop_pg()
elseif pg then print("PostgreSQL left running: host=" .. pg.dir) end
os.exit(totals.converged == totals.trials and 0 or 1)
