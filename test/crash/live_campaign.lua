-- The live crash campaign: `tide live` over a folder that a random stream
-- of changes keeps changing, killed with SIGKILL at random moments and
-- started again, must end with the targets of a clean run over what the
-- folder finally holds.
--
--   tide run test/crash/live_campaign.lua [--trials N] [--seed S]
--     [--only K] [--files N] [--ops N] [--tide PATH] [--keep] [--verbose]
--
-- A trial makes a folder of --files inputs (campaign.lua's pipeline and
-- inputs, common.lua), runs `tide update`, starts `tide live`, then makes
-- --ops changes one after the other, as users and tools make them: files
-- written, deleted and renamed (also out of the walk's include), folders
-- made, deleted, renamed, moved out of the walked folder and back in,
-- trees made elsewhere and moved or copied in, and now and then the
-- transform's code changed (live mode runs the code it loaded: tide live
-- is started again then). After about one change in 25 it kills tide
-- live with SIGKILL, a few milliseconds later (often within a cycle),
-- and starts it again. Then a clean `tide update` over a copy of the
-- final inputs, in a fresh folder, gives the expected targets; tide live
-- must reach them (within 60 s), stop on SIGTERM, and leave a store with
-- no pending state, over which a further `tide update` is all unchanged
-- and writes nothing. The targets are compared as campaign.lua does
-- (lost: missing; stale: extra or old).
--
-- Each trial draws from its own generator seeded by (seed, trial number):
-- `--seed S --only K` replays the changes of trial K (the kills land
-- where the machine's timing puts them). The last lines are
--   trials T, converged C, lost L, stale S
--   C passed, T-C failed
-- and the exit status is 0 only when every trial converged.
local core = require "tide.core"

local fmt = string.format
local now_ms = core.now_ms

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local C = dofile(here .. "/common.lua")
local q, sh, capture, write, mkdirs = C.q, C.sh, C.capture, C.write,
  C.mkdirs

-- ---- Options ----

local opts = { trials = 10, seed = nil, only = nil, files = 300, ops = 200,
               tide = os.getenv("TIDE") or "build/tide", keep = false,
               verbose = false }
local VALUED = { trials = true, seed = true, only = true, files = true,
                 ops = true, tide = true }
C.options(opts, VALUED, "live campaign")

-- Light work per file and a quick custom target: a live cycle is short,
-- and kills land in cycles as often as between them.
local function pipeline(version) return C.pipeline(version, 2000, 2) end

local function sleep_ms(ms) sh(fmt("sleep %.3f", ms / 1000)) end

-- ---- tide ----

local function update(dir, extra)
  return capture(fmt("cd %s && %s update pipeline.lua %s 2>&1", q(dir),
                     q(opts.tide), extra or "--quiet"))
end

-- Starts tide live in dir; its pid.
local function start_live(dir)
  local out = capture(fmt("cd %s && { %s live pipeline.lua >>live.log 2>&1 "
                          .. "& echo $!; }", q(dir), q(opts.tide)))
  return tonumber(out:match("%d+"))
end

local function alive(pid)
  return sh(fmt("kill -0 %d 2>/dev/null", pid)) == 0
end

-- SIGTERM, then up to 10 s for it to end; whether it did.
local function stop_live(pid)
  sh(fmt("kill -TERM %d 2>/dev/null", pid))
  for _ = 1, 100 do
    if not alive(pid) then return true end
    sleep_ms(100)
  end
  sh(fmt("kill -9 %d 2>/dev/null", pid))
  return false
end

local function pending_states(dir)
  local out = capture(fmt("sqlite3 %s 'SELECT count(*) FROM target_states "
                          .. "WHERE pending <> 0' 2>&1",
                          q(dir .. "/.tide/state.db")))
  return tonumber(out:match("^%s*(%d+)%s*$")) or -1
end

-- ---- The changes ----

-- The folders under in/ (in/ first), and the files, as paths from dir.
local function listing(dir)
  local folders, files = {}, {}
  local out = capture(fmt("cd %s && find in -type d -printf 'd%%p\\n' "
                          .. "-o -type f -printf 'f%%p\\n'", q(dir)))
  for kind, path in out:gmatch("([df])([^\n]+)") do
    local list = kind == "d" and folders or files
    list[#list + 1] = path
  end
  table.sort(folders)
  table.sort(files)
  return folders, files
end

-- One random change of dir/in (rng: the trial's generator; op: its
-- number, which names what it makes); what it did, in words.
local function change(dir, rng, op, state)
  local folders, files = listing(dir)
  local function pick(list) return list[rng(#list)] end
  local function folder() return dir .. "/" .. pick(folders) end
  -- A folder below in/, or nil when there is none.
  local function below()
    if #folders < 2 then return nil end
    return dir .. "/" .. folders[1 + rng(#folders - 1)]
  end
  local outside = dir .. "/outside"
  local r = rng(100)
  if r <= 35 then
    local i = rng(opts.files * 2)
    local at = fmt("%s/f%05d.md", folder(), i)
    write(at, C.content(i, rng(3), op))
    return "write " .. at
  elseif r <= 45 and #files > 0 then
    local at = dir .. "/" .. pick(files)
    os.remove(at)
    return "delete " .. at
  elseif r <= 53 and #files > 0 then
    local from = dir .. "/" .. pick(files)
    -- Now and then out of the walk's include (**/*.md).
    local to = fmt("%s/n%d.%s", folder(), op, rng(5) == 1 and "txt" or "md")
    os.rename(from, to)
    return "rename " .. from .. " " .. to
  elseif r <= 60 then
    local at = fmt("%s/m%d", folder(), op)
    mkdirs(at)
    return "mkdir " .. at
  elseif r <= 66 then
    local tree = fmt("%s/t%d", outside, op)
    mkdirs(tree .. "/sub")
    write(tree .. "/g.md", C.content(op, 2, 3))
    write(tree .. "/sub/h.md", C.content(op + 1, 1, 3))
    local at = fmt("%s/t%d", folder(), op)
    sh(fmt("mv %s %s", q(tree), q(at)))
    return "tree moved in at " .. at
  elseif r <= 72 then
    local from = below()
    if not from then return "nothing" end
    sh(fmt("mv %s %s", q(from), q(fmt("%s/o%d", outside, op))))
    return "moved out " .. from
  elseif r <= 78 then
    local out = capture(fmt("ls -d %s/o* 2>/dev/null", q(outside)))
    local gone = {}
    for path in out:gmatch("[^\n]+") do gone[#gone + 1] = path end
    if #gone == 0 then return "nothing" end
    table.sort(gone)
    local at = fmt("%s/b%d", folder(), op)
    sh(fmt("mv %s %s", q(pick(gone)), q(at)))
    return "moved back in at " .. at
  elseif r <= 83 then
    local at = below()
    if not at then return "nothing" end
    sh(fmt("rm -rf %s", q(at)))
    return "rm -rf " .. at
  elseif r <= 89 then
    local from, into = below(), folder()
    if not from or into:sub(1, #from) == from then return "nothing" end
    local to = fmt("%s/r%d", into, op)
    sh(fmt("mv %s %s", q(from), q(to)))
    return "renamed " .. from .. " " .. to
  elseif r <= 94 then
    local from = below()
    if not from then return "nothing" end
    local copy = fmt("%s/c%d", outside, op)
    local to = fmt("%s/c%d", folder(), op)
    sh(fmt("cp -r %s %s && mv %s %s", q(from), q(copy), q(copy), q(to)))
    return "copied " .. from .. " to " .. to
  elseif r <= 97 then
    state.version = state.version == "v1" and "v2" or "v1"
    write(dir .. "/pipeline.lua", pipeline(state.version))
    state.restart = true
    return "code changed to " .. state.version
  end
  return "nothing"
end

-- ---- Trials ----

local scratch = sh("test -d /dev/shm -a -w /dev/shm") == 0 and "/dev/shm"
  or "/tmp"
local base = capture(fmt("mktemp -d %s/tide-live-crash.XXXXXX", q(scratch)))
  :gsub("%s+$", "")

print(fmt("live crash campaign: seed %d, %d trials, %d files, %d changes "
          .. "a trial (replay with --seed %d [--only K])", opts.seed,
          opts.trials, opts.files, opts.ops, opts.seed))
io.stdout:flush()

local totals = { trials = 0, converged = 0, lost = 0, stale = 0, kills = 0 }

local function trial(k)
  local rng = math.random
  math.randomseed(opts.seed, k)
  local dir = fmt("%s/trial-%04d", base, k)
  sh("rm -rf " .. q(dir))
  mkdirs(dir .. "/in")
  mkdirs(dir .. "/outside")
  local state = { version = "v1" }
  write(dir .. "/pipeline.lua", pipeline(state.version))
  local folders = {}
  for i = 1, math.min(opts.files, 20) do
    folders[i] = q(dir .. "/in/" .. C.file_name(i):match("^(.*)/"))
  end
  sh("mkdir -p " .. table.concat(folders, " "))
  for i = 1, opts.files do
    write(dir .. "/in/" .. C.file_name(i), C.content(i, 1 + i % 3, 0))
  end
  local problems = {}
  local out, code = update(dir)
  if code ~= 0 then
    problems[#problems + 1] = fmt("first update exited %d: %s", code, out)
  end
  local pid = start_live(dir)
  local kills, log = 0, {}
  for op = 1, opts.ops do
    log[#log + 1] = change(dir, rng, op, state)
    if rng(10) == 1 then sleep_ms(20) end
    if state.restart or rng(25) == 1 then
      sleep_ms(rng(0, 80))
      sh(fmt("kill -9 %d 2>/dev/null", pid))
      local waited = 0
      while alive(pid) and waited < 2000 do
        sleep_ms(5)
        waited = waited + 1
      end
      if alive(pid) then
        problems[#problems + 1] = fmt("tide live (pid %d) outlived SIGKILL "
                                      .. "by 10 s", pid)
      end
      kills = kills + 1
      log[#log + 1] = "kill -9 and start again"
      state.restart = false
      pid = start_live(dir)
    end
  end
  -- The expected targets: a clean run over a copy of the final inputs.
  local ref = fmt("%s/ref-%04d", base, k)
  sh("rm -rf " .. q(ref))
  mkdirs(ref)
  sh(fmt("cp -a %s %s %s/", q(dir .. "/in"), q(dir .. "/pipeline.lua"),
         q(ref)))
  out, code = update(ref)
  if code ~= 0 then
    problems[#problems + 1] = fmt("the reference run exited %d: %s", code,
                                  out)
  end
  local expected = C.snapshot(ref)
  local d
  local t0 = now_ms()
  repeat
    d = C.compare(expected, C.snapshot(dir))
    local same = #d.missing + #d.extra + #d.old == 0
    if not same then sleep_ms(250) end
  until same or now_ms() - t0 > 60000
  local reached_ms = now_ms() - t0
  if #d.missing + #d.extra + #d.old > 0 then
    problems[#problems + 1] = "tide live did not reach the clean run's "
      .. "targets within 60 s"
  end
  if not stop_live(pid) then
    problems[#problems + 1] = "tide live did not stop on SIGTERM in 10 s"
  end
  local pending = pending_states(dir)
  if pending ~= 0 then
    problems[#problems + 1] = fmt("%d target states still pending", pending)
  end
  local again
  again, code = update(dir, "--json")
  if code ~= 0 or not again:find('"targets":{"inserted":0,"updated":0,'
                                 .. '"deleted":0}', 1, true)
     or not again:find('"reprocessed":0', 1, true) then
    problems[#problems + 1] = "a further update was not all unchanged: "
      .. again:sub(1, 500)
  end
  -- What a further update changed is a difference too.
  for kind, list in pairs(C.compare(expected, C.snapshot(dir))) do
    for _, what in ipairs(list) do d[kind][#d[kind] + 1] = what end
  end
  totals.trials = totals.trials + 1
  totals.kills = totals.kills + kills
  local lost = #d.missing > 0
  local stale = #d.extra > 0 or #d.old > 0
  if lost then totals.lost = totals.lost + 1 end
  if stale then totals.stale = totals.stale + 1 end
  local ok = not lost and not stale and #problems == 0
  if ok then totals.converged = totals.converged + 1 end
  if not ok or opts.verbose then
    print(fmt("trial %d (%d changes, %d kills, targets reached in %.0f ms, "
              .. "replay: --seed %d --only %d): %s", k, opts.ops, kills,
              reached_ms, opts.seed, k, ok and "converged" or "FAILED"))
    if #d.missing > 0 then print("  missing: " .. C.show(d.missing, 5)) end
    if #d.extra > 0 then print("  extra: " .. C.show(d.extra, 5)) end
    if #d.old > 0 then print("  old content: " .. C.show(d.old, 5)) end
    for _, p in ipairs(problems) do print("  " .. p) end
    if not ok then
      write(dir .. "/changes.txt", table.concat(log, "\n") .. "\n")
      print("  trial folder: " .. dir .. " (changes.txt, live.log)")
    end
    io.stdout:flush()
  end
  if ok and not opts.keep then sh(fmt("rm -rf %s %s", q(dir), q(ref))) end
  return ok
end

local failed = false
if opts.only then
  failed = not trial(opts.only)
else
  for k = 1, opts.trials do
    if not trial(k) then failed = true end
  end
end

print(fmt("kills: %d in %d trials", totals.kills, totals.trials))
print(fmt("trials %d, converged %d, lost %d, stale %d", totals.trials,
          totals.converged, totals.lost, totals.stale))
print(fmt("%d passed, %d failed", totals.converged,
          totals.trials - totals.converged))
if not failed and not opts.keep then sh("rm -rf " .. q(base)) end
os.exit(totals.converged == totals.trials and 0 or 1)
