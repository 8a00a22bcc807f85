-- tide verify: compares every target with what the state store says it
-- holds, and with --repair writes what drifted back.
--
-- A verify run is a preview (nothing is written to the store, and nothing
-- to the targets until the repair) in which every component whose
-- sources and code are unchanged runs, so that what it declares is known
-- (memo hits still stand: a verify does not call a model again). For
-- each container, the states whose
-- declared value is the one the store records as applied are what the
-- target should hold ("expected"); the target type's verify(spec,
-- expected, others) compares the container with them and returns the
-- keys missing, changed and extra (present, never written by tide).
-- States the store does not vouch for (out of date: the sources changed
-- since the last update, or a write is pending) are counted apart and
-- left to `tide update`. A verify runs nothing new: a memoized component
-- whose input or code changed is not run, and a component that would
-- call a memoized function that misses stops there (engine.lua); both are
-- out of date, and what they own is counted so. A component or a source
-- that fails leaves what it declares unchecked: the report says so
-- (checked_all), apart from drift. A repair applies upserts for what is
-- missing or changed and deletes for what is extra, through the target's
-- own idempotent apply; the store already records that state, so it
-- does not change.
local core = require "tide.core"

local ipairs, pairs, sort = ipairs, pairs, table.sort
local encode, decode = core.cbor_encode, core.cbor_decode

local M = {}

-- The drift of one container: { target, kind, checked, missing, changed,
-- extra, out_of_date, unverifiable, repaired, unrepaired }, unrepaired
-- listing { key, message } for each change a repair could not write.
local function check_container(run, container, declared)
  local store = run.store
  local recorded = {}
  for _, row in ipairs(store:targets_by_container(container.id)) do
    recorded[row.key] = row
  end
  local expected, by_kb, out_of_date = {}, {}, 0
  for _, d in ipairs(declared) do
    local row = recorded[d.kb]
    if row and row.pending == 0 and row.value_fp == d.fp then
      expected[#expected + 1] = { key = d.key, value = d.value }
      by_kb[d.kb] = d
    else
      out_of_date = out_of_date + 1
    end
  end
  local others = {}
  for kb in pairs(recorded) do
    if not by_kb[kb] then
      others[#others + 1] = decode(kb)
      if not declared.kbs[kb] then out_of_date = out_of_date + 1 end
    end
  end
  local result = { target = container.short, kind = container.kind,
                   checked = #expected, out_of_date = out_of_date,
                   missing = {}, changed = {}, extra = {}, unrepaired = {} }
  local tt = container.type
  if not tt.verify then
    result.unverifiable = true
    return result
  end
  -- A container removed by hand is `tide update`'s to make again: it
  -- refills it from every component, which a repair cannot.
  if tt.exists then
    local present, why = tt.exists(container.spec)
    result.gone, result.gone_why = not present, why
  end
  local drift = tt.verify(container.spec, expected, others)
  result.missing = drift.missing or {}
  result.changed = drift.changed or {}
  result.extra = drift.extra or {}
  if run.opts.repair and not result.gone and (#result.missing + #result.changed
                          + #result.extra) > 0 then
    local changes = {}
    for _, list in ipairs { result.missing, result.changed } do
      for _, key in ipairs(list) do
        local d = by_kb[encode(key)]
        if d then changes[#changes + 1] = { key = d.key, value = d.value } end
      end
    end
    for _, key in ipairs(result.extra) do
      changes[#changes + 1] = { key = key, value = nil }
    end
    if not pcall(tt.apply, container.spec, changes) then
      -- One change the target refuses (a folder of the user's where a
      -- file goes) fails the whole apply: each is tried alone, so that
      -- the others are repaired and those refused stay drift, with why.
      for _, ch in ipairs(changes) do
        local ok, err = pcall(tt.apply, container.spec, { ch })
        if not ok then
          result.unrepaired[#result.unrepaired + 1] =
            { key = ch.key, message = tostring(err) }
        end
      end
    end
    result.repaired = true
  end
  return result
end

-- The report of a verify run: a list of container results, by name,
-- with how many components were checked, out of date or failed, and how
-- many sources failed.
function M.check(run)
  local out = {}
  local counts = run.stats.components
  local failed, sources_failed = 0, 0
  for _, e in ipairs(run.errors) do
    if e.kind == "source" then sources_failed = sources_failed + 1
    elseif e.path ~= "" then failed = failed + 1
    end
  end
  out.components = { checked = counts.added + counts.reprocessed,
                     out_of_date = run.verify_out_of_date, failed = failed }
  out.sources_failed = sources_failed
  for _, container in pairs(run.containers) do
    out[#out + 1] = check_container(run, container,
      run.verified[container] or { kbs = {} })
  end
  sort(out, function(a, b)
    if a.target ~= b.target then return a.target < b.target end
    return a.kind < b.kind
  end)
  return out
end

-- Records a declared state during a verify run (reconcile.submit).
function M.declared(run, container, kb, d)
  local list = run.verified[container]
  if not list then
    list = { kbs = {} }
    run.verified[container] = list
  end
  list[#list + 1] = { kb = kb, key = d.key, value = d.value, fp = d.fp }
  list.kbs[kb] = true
end

-- Whether a report shows drift that is still there.
function M.drifted(report)
  for _, r in ipairs(report) do
    if r.gone or #r.unrepaired > 0
       or not r.repaired and #r.missing + #r.changed + #r.extra > 0 then
      return true
    end
  end
  return false
end

-- Whether every component ran and every source was read: otherwise what
-- they declare was not checked.
function M.checked_all(report)
  return report.components.failed == 0 and report.sources_failed == 0
end

return M
