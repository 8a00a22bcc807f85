-- What the CLI prints: the stats of a run (a line, or one JSON object), a
-- progress line on a terminal, previews, and `show`, `why`, `ls`.
local core = require "tide.core"
local target = require "tide.target"
local key_arg = require "tide.key_arg"

local type, pairs, ipairs, tostring, pcall = type, pairs, ipairs, tostring,
  pcall
local fmt, concat, sort = string.format, table.concat, table.sort

-- Control bytes (a NUL in a key) as \xHH in text output.
local function printable(s)
  return (s:gsub("%c", function(ch) return fmt("\\x%02x", ch:byte()) end))
end
local decode = core.cbor_decode

local M = {}

-- ---- JSON ----

-- All JSON is written by tide's one writer (core.json_encode, in C): valid
-- UTF-8 whatever bytes a name holds (each byte that is not part of a valid
-- UTF-8 sequence becomes \ufffd), keys of maps sorted, floats exact.
-- Objects the contract fixes the order of say so in their metatable
-- (__jsonorder, written null when absent); lists say they are lists
-- (__jsontype), so an empty one is [] and not {}.
local json_encode = core.json_encode

local function order(keys) return { __jsonorder = keys } end
local LIST = { __jsontype = "array" }

local STATS = order { "app", "elapsed_ms", "components", "targets",
                      "functions" }
local STATS_INTERRUPTED = order { "app", "elapsed_ms", "components",
                                  "targets", "functions", "interrupted" }
-- A shared update's (update --workers) add what each worker did.
local STATS_SHARED = order { "app", "elapsed_ms", "components", "targets",
                             "functions", "workers" }
local STATS_SHARED_INTERRUPTED = order { "app", "elapsed_ms", "components",
                                         "targets", "functions", "workers",
                                         "interrupted" }
local WORKER = order { "id", "host", "pid", "done", "read", "components" }
local WORKER_SHOWN = order { "id", "host", "pid", "claimed", "done",
                             "seen_ms_ago", "left" }
local WORKERS_SHOWN = order { "app", "update", "listed", "workers" }
local COMPONENTS = order { "added", "reprocessed", "deleted", "unchanged",
                           "errors" }
local TARGETS = order { "inserted", "updated", "deleted" }
local CHANGE = order { "op", "target", "key" }
local SETUP = order { "op", "target" }
local CALLS = order { "calls", "hits", "misses", "errors" }
local SHOWN = order { "app", "components" }
local COMPONENT = order { "path", "fn", "status", "error", "source",
                          "updated", "target_states" }
local STATE = order { "target", "key", "pending" }
local WHY = order { "target", "key", "owner", "fn", "source", "source_of",
                    "written", "state" }
local VERIFIED = order { "app", "drift", "checked_all", "components",
                         "sources_failed", "targets" }
local VERIFY_COMPONENTS = order { "checked", "out_of_date", "failed" }
local VERIFY_TARGET = order { "target", "kind", "checked", "missing",
                              "changed", "extra", "out_of_date",
                              "unverifiable", "repaired", "gone",
                              "unrepaired" }
local UNREPAIRED = order { "key", "message" }
local APP = order { "name", "last_run", "status" }

-- A copy of the keys of obj that mt orders, to be written in that order.
local function ordered(obj, mt)
  local o = {}
  for _, k in ipairs(mt.__jsonorder) do o[k] = obj[k] end
  return setmetatable(o, mt)
end

local function as_list(t) return setmetatable(t, LIST) end

-- The JSON text of data tide built itself: it always encodes.
local function json(v)
  local s, err = json_encode(v)
  if not s then error(err, 2) end
  return s
end

local function json_string(s) return json(s) end

function M.stats_json(stats)
  local fns = {}
  for name, f in pairs(stats.functions) do fns[name] = ordered(f, CALLS) end
  local shared = stats.workers ~= nil
  local o = ordered(stats, stats.interrupted
    and (shared and STATS_SHARED_INTERRUPTED or STATS_INTERRUPTED)
    or (shared and STATS_SHARED or STATS))
  -- Milliseconds to one decimal, as a float: 123.4, 5.0.
  o.elapsed_ms = math.floor(stats.elapsed_ms * 10 + 0.5) / 10
  o.components = ordered(stats.components, COMPONENTS)
  o.targets = ordered(stats.targets, TARGETS)
  o.functions = fns
  -- A preview's: the changes it would make (preview_printer's list).
  if stats.changes then
    local list = {}
    for i, ch in ipairs(stats.changes) do
      list[i] = ordered(ch, ch.op == "setup" and SETUP or CHANGE)
    end
    o.changes = as_list(list)
  end
  -- A shared update's: what each worker did.
  if stats.workers then
    local list = {}
    for i, w in ipairs(stats.workers) do
      list[i] = ordered(w, WORKER)
      list[i].components = w.components
        and ordered(w.components, COMPONENTS) or nil
    end
    o.workers = as_list(list)
  end
  return json(o)
end

-- One line of counts; a run a signal stopped says so (what it did not
-- reach is left to the next run).
function M.stats_line(stats)
  local c, t = stats.components, stats.targets
  return fmt("%s: components %d added, %d reprocessed, %d deleted, "
    .. "%d unchanged, %d errors; targets %d inserted, %d updated, "
    .. "%d deleted (%.1f ms%s)", stats.app, c.added, c.reprocessed,
    c.deleted, c.unchanged, c.errors, t.inserted, t.updated, t.deleted,
    stats.elapsed_ms, stats.interrupted and ", interrupted" or "")
end

-- ---- Progress on a terminal ----

local PROGRESS_DELAY_MS = 1000   -- no line for runs shorter than this
local PROGRESS_EVERY_MS = 250    -- at most four updates a second
local RATE_SAMPLES = 16          -- the rate is over the last 4 s or so

local function duration(s)
  s = math.ceil(s)
  if s < 60 then return fmt("%d s", s) end
  if s < 3600 then return fmt("%d min %02d s", s // 60, s % 60) end
  return fmt("%d h %02d min", s // 3600, s % 3600 // 60)
end

-- The text of the progress line: done of total components (total + when
-- it is only a lower bound: a source of unknown length is being listed),
-- components processed per second, elapsed time, and the time left at
-- that rate when the total is known.
function M.progress_text(done, total, rate, elapsed_ms, open)
  local parts = { fmt("tide: %d/%d%s components", done, total,
                      open and "+" or "") }
  parts[2] = fmt(rate < 10 and "%.1f/s" or "%.0f/s", rate)
  parts[3] = fmt("%.1f s elapsed", elapsed_ms / 1000)
  if not open and rate > 0 and done < total then
    parts[4] = "ETA " .. duration((total - done) / rate)
  end
  return concat(parts, ", ")
end

-- p.update(done, total, processed, open) is the scheduler's on_progress:
-- processed counts the components that ran (done also counts those
-- carried over unchanged), for the rate.
function M.progress(disabled)
  local started = core.now_ms()
  local shown, last = false, 0
  -- A ring of (time, processed) samples; the oldest is the rate's base,
  -- the start of the run until the ring is full.
  local times, counts, oldest, size = { started }, { 0 }, 1, 1
  local p = {}
  function p.update(done, total, processed, open)
    if disabled then return end
    local now = core.now_ms()
    local elapsed = now - started
    if elapsed < PROGRESS_DELAY_MS or now - last < PROGRESS_EVERY_MS then
      return
    end
    last = now
    processed = processed or done
    local span = (now - times[oldest]) / 1000
    local rate = span > 0 and (processed - counts[oldest]) / span or 0
    if size < RATE_SAMPLES then
      size = size + 1
      times[size], counts[size] = now, processed
    else
      times[oldest], counts[oldest] = now, processed
      oldest = oldest % RATE_SAMPLES + 1
    end
    shown = true
    io.stderr:write("\r\27[K", M.progress_text(done, total, rate, elapsed,
                                                open))
  end
  function p.clear()
    if shown then
      io.stderr:write("\r\27[K")
      shown = false
    end
  end
  -- A new run begins (a live cycle): elapsed time and rate start over.
  function p.restart()
    started, last = core.now_ms(), 0
    times, counts, oldest, size = { started }, { 0 }, 1, 1
  end
  return p
end

-- ---- Previews ----

local function key_text(key)
  if type(key) == "table" and #key == 1 then key = key[1] end
  if type(key) == "string" then return json_string(key) end
  return json_encode(key) or tostring(key)
end
M.key_text = key_text

-- What a preview would change, a line each on out ("insert chunks
-- "a.md#1""); or, given a list (--json), appended to it as { op, target,
-- key } for stats_json (stats.changes). A container whose declaration
-- changed (what = "setup") is a line of its own, { op = "setup", target }.
function M.preview_printer(out, list)
  return function(container, changes, what)
    if what == "setup" then
      if list then
        list[#list + 1] = { op = "setup", target = container.short }
      else
        out:write(fmt("setup %s (its declaration changed: tide update sets "
          .. "it up again, and one it must make again is refilled by every "
          .. "component that wrote to it)\n", container.short))
      end
    end
    for _, ch in ipairs(changes) do
      local what = ch.value == nil and "delete"
        or (ch.write == "inserted" and "insert" or "update")
      if list then
        local key = ch.key
        if type(key) == "table" and #key == 1 then key = key[1] end
        list[#list + 1] = { op = what, target = container.short, key = key }
      else
        out:write(fmt("%s %s %s\n", what, container.short, key_text(ch.key)))
      end
    end
  end
end

-- ---- show, why, ls ----

local STATUS = { [0] = "ok", [1] = "failed", [2] = "incomplete" }
-- A finished run's status in the run log (run.lua).
local RUN_STATUS = { [0] = "ok", [1] = "errors", [2] = "interrupted" }

local function containers_by_id(store, app_id)
  local by_id = {}
  for _, row in ipairs(store:containers(app_id)) do
    local tt = target.type_named(row.kind)
    local spec = row.spec and decode(row.spec)
    row.short = (tt and spec ~= nil) and tt.short_name(spec) or row.identity
    by_id[row.id] = row
  end
  return by_id
end

local function app_id_of(store, app)
  local id = store:app(app.name, false)
  if not id then error(fmt("app %s has never run with this state store",
                           app.name), 0) end
  return id
end

local function iso_time(ns)
  if not ns or ns == 0 then return "never" end
  return os.date("!%Y-%m-%d %H:%M:%S UTC", ns // 1000000000)
end

-- show --workers: the workers of the app's shared update under way,
-- with what they hold and have done and how long since each beat.
function M.workers(store, app, opts)
  local app_id = app_id_of(store, app)
  local update, state = store:update_current(app_id)
  local list = update and store:workers(update) or {}
  if opts.json then
    local out = {}
    for i, w in ipairs(list) do
      out[i] = ordered({ id = w.id, host = w.host, pid = w.pid,
                         claimed = w.claimed, done = w.done,
                         seen_ms_ago = w.seen_ms_ago, left = w.left },
                       WORKER_SHOWN)
    end
    return json(ordered({ app = app.name, update = update,
                          listed = update and state >= 1 or nil,
                          workers = as_list(out) }, WORKERS_SHOWN)) .. "\n"
  end
  if not update then
    return fmt("%s: no shared update is under way\n", app.name)
  end
  local lines = { fmt("%s: update %d, %s", app.name, update,
                      state >= 1 and "listed" or "listing") }
  for _, w in ipairs(list) do
    lines[#lines + 1] = fmt("  worker %d  %s pid %d  %d held, %d done, %s",
      w.id, w.host or "?", w.pid or 0, w.claimed, w.done,
      w.left and "left" or fmt("last beat %.1f s ago", w.seen_ms_ago / 1000))
  end
  if #list == 0 then lines[#lines + 1] = "  no worker has joined" end
  return table.concat(lines, "\n") .. "\n"
end

function M.show(store, app, under, opts)
  local app_id = app_id_of(store, app)
  local containers = containers_by_id(store, app_id)
  local rows, paths = store:components(app_id), {}
  -- A path as show prints it, or as a shell completes it: index/a.md and
  -- /index/ name /index/a.md and /index.
  if under then
    under = "/" .. under:gsub("^/+", ""):gsub("/+$", "")
  end
  for path in pairs(rows) do
    if not under or under == "/" or path == under
       or path:sub(1, #under + 1) == under .. "/" then
      paths[#paths + 1] = path
    end
  end
  if under and under ~= "/" and #paths == 0 then
    return printable(fmt("app %s has no component at %s or below it",
                         app.name, under)), false
  end
  sort(paths)
  local list = {}
  for i, path in ipairs(paths) do
    local row = rows[path]
    local states = {}
    for _, t in ipairs(store:targets_by_owner(row.id)) do
      local c = containers[t.container_id]
      states[#states + 1] = { target = c and c.short or "?",
                              key = decode(t.key),
                              pending = t.pending ~= 0 }
    end
    list[i] = { path = path == "" and "/" or path, fn = row.fn,
                status = STATUS[row.status] or tostring(row.status),
                error = row.error, source = row.source_key,
                updated = iso_time(row.updated_ns), states = states }
  end
  if opts.json then
    local items = {}
    for i, c in ipairs(list) do
      local states = {}
      for j, st in ipairs(c.states) do states[j] = ordered(st, STATE) end
      items[i] = ordered(c, COMPONENT)
      items[i].target_states = as_list(states)
    end
    return json(ordered({ app = app.name, components = as_list(items) },
                        SHOWN)) .. "\n"
  end
  local out = { fmt("app %s: %d components\n", app.name, #list) }
  local rows = {}
  -- Columns as wide as their longest cell (at least the widths a short
  -- listing had), so that a deep path or an incomplete status does not
  -- push the rest of its line out of line with the others.
  local widths = { 40, 16, 6 }
  for i, c in ipairs(list) do
    local label = c.path
    if opts.tree then
      local depth = 0
      for _, other in ipairs(list) do
        local p = other.path
        if p ~= c.path and (p == "/" or c.path:sub(1, #p + 1) == p .. "/") then
          depth = depth + 1
        end
      end
      label = ("  "):rep(depth) .. c.path
    end
    rows[i] = { printable(label), printable(c.fn), c.status }
    for j, cell in ipairs(rows[i]) do
      local n = utf8.len(cell) or #cell
      if n > widths[j] then widths[j] = n end
    end
  end
  -- Padded by hand: format's widths stop at 99 and count bytes.
  local function pad(cell, width)
    return cell .. (" "):rep(width - (utf8.len(cell) or #cell))
  end
  for i, c in ipairs(list) do
    local cells = rows[i]
    out[#out + 1] = fmt("%s %s %s %3d target states%s\n",
      pad(cells[1], widths[1]), pad(cells[2], widths[2]),
      pad(cells[3], widths[3]), #c.states,
      c.error and fmt("  since %s: %s", c.updated,
                      c.error:match("[^\n]*")) or "")
    if opts["target-states"] then
      for _, s in ipairs(c.states) do
        out[#out + 1] = fmt("    %s %s%s\n", s.target, key_text(s.key),
                            s.pending and " (pending)" or "")
      end
    end
  end
  return concat(out)
end

-- The target state named by a user: TARGET is a container's short name,
-- KEY the text of its key (a single key value, or JSON for a composite
-- key).
function M.why(store, app, target_name, key_text_arg, opts)
  local app_id = app_id_of(store, app)
  local containers = containers_by_id(store, app_id)
  local matches = {}
  for _, c in pairs(containers) do
    if c.short == target_name or c.identity == target_name then
      matches[#matches + 1] = c
    end
  end
  if #matches == 0 then
    -- A user who guessed the name (a variable's, a folder's last part)
    -- learns the names that work.
    local names = {}
    for _, c in pairs(containers) do names[#names + 1] = c.short end
    sort(names)
    return printable(fmt("app %s has no target named %s (%s)", app.name,
      target_name, #names == 0 and "it has none"
      or "its targets: " .. concat(names, ", "))), false
  end
  local candidates = key_arg.candidates(key_text_arg)
  for _, c in ipairs(matches) do
    for _, key in ipairs(candidates) do
      local okk, kb = pcall(core.cbor_encode, key)
      local t = okk and store:target(c.id, kb)
      if t then
        local owner
        local by_path = {}
        for _, row in pairs(store:components(app_id)) do
          if row.id == t.owner_id then owner = row end
          by_path[row.path] = row
        end
        -- A component its parent mounted (tide.mount) came from the source
        -- item its nearest ancestor came from: that one is named, with
        -- the ancestor's path.
        local from = owner
        while from and not from.source_key and from.path ~= "" do
          from = by_path[from.path:match("^(.*)/[^/]*$")]
        end
        local source = from and from.source_key
        local info = {
          target = c.short, key = decode(kb),
          owner = owner and (owner.path == "" and "/" or owner.path) or nil,
          fn = owner and owner.fn, source = source,
          source_of = source and from ~= owner and from.path or nil,
          written = iso_time(t.written_ns),
          state = t.pending == 0 and "applied" or "pending",
        }
        if opts.json then return json(ordered(info, WHY)) .. "\n", true end
        return fmt("%s %s\n  owner component: %s (%s)\n  source item: %s%s\n"
          .. "  last written: %s (%s)\n", printable(info.target),
          printable(key_text(info.key)), printable(info.owner or "?"),
          printable(info.fn or "?"), printable(info.source or "none"),
          info.source_of and " (of " .. printable(info.source_of) .. ")"
          or "", info.written, info.state), true
      end
    end
  end
  return printable(fmt("%s has no target state with key %s", target_name,
                       key_text_arg)), false
end

-- The report of tide verify, as text or one JSON object.
function M.verify(app, result, as_json)
  if as_json then
    local items = {}
    local function plain(keys)
      local out = {}
      for i, k in ipairs(keys) do
        out[i] = type(k) == "table" and #k == 1 and k[1] or k
      end
      return as_list(out)
    end
    for i, r0 in ipairs(result) do
      local r = { target = r0.target, kind = r0.kind, checked = r0.checked,
                  missing = plain(r0.missing), changed = plain(r0.changed),
                  extra = plain(r0.extra), out_of_date = r0.out_of_date,
                  unverifiable = r0.unverifiable or false,
                  repaired = r0.repaired or false, gone = r0.gone or false }
      local unrepaired = {}
      for j, u in ipairs(r0.unrepaired or {}) do
        local key = u.key
        if type(key) == "table" and #key == 1 then key = key[1] end
        unrepaired[j] = ordered({ key = key, message = u.message },
                                UNREPAIRED)
      end
      r.unrepaired = as_list(unrepaired)
      items[i] = ordered(r, VERIFY_TARGET)
    end
    local verify = require "tide.verify"
    return json(ordered({ app = app,
      drift = verify.drifted(result) and true or false,
      checked_all = verify.checked_all(result),
      components = ordered(result.components, VERIFY_COMPONENTS),
      sources_failed = result.sources_failed,
      targets = as_list(items) }, VERIFIED)) .. "\n"
  end
  local out = {}
  for _, r in ipairs(result) do
    local n = #r.missing + #r.changed + #r.extra
    local line
    if r.unverifiable then
      line = fmt("%s: cannot be verified (target type %s has no verify)",
                 r.target, r.kind)
    elseif n == 0 then
      line = fmt("%s: in step (%d states checked)", r.target, r.checked)
    else
      local repaired = ""
      if r.repaired and #r.unrepaired > 0 then
        repaired = fmt(": repaired but for %d", #r.unrepaired)
      elseif r.repaired then
        repaired = ": repaired"
      end
      line = fmt("%s: %d missing, %d changed, %d extra%s", r.target,
                 #r.missing, #r.changed, #r.extra, repaired)
    end
    if r.gone then
      line = line .. "; " .. (r.gone_why or "it is gone")
        .. ": tide update makes it again and refills it"
    end
    if r.out_of_date > 0 then
      line = line .. fmt("; %d states out of date (run tide update)",
                         r.out_of_date)
    end
    out[#out + 1] = printable(line) .. "\n"
    for _, what in ipairs { "missing", "changed", "extra" } do
      for i, key in ipairs(r[what]) do
        if i > 10 then
          out[#out + 1] = fmt("  ... %d more %s\n", #r[what] - 10, what)
          break
        end
        out[#out + 1] = fmt("  %s %s\n", what, printable(key_text(key)))
      end
    end
    for i, u in ipairs(r.unrepaired or {}) do
      if i > 10 then
        out[#out + 1] = fmt("  ... %d more not repaired\n",
                            #r.unrepaired - 10)
        break
      end
      out[#out + 1] = fmt("  not repaired %s: %s\n",
                          printable(key_text(u.key)), printable(u.message))
    end
  end
  local counts = result.components
  if counts.out_of_date > 0 then
    out[#out + 1] = fmt("%d %s out of date (their sources or code changed "
      .. "since the last update: run tide update)\n", counts.out_of_date,
      counts.out_of_date == 1 and "component" or "components")
  end
  local unchecked = {}
  if counts.failed > 0 then
    unchecked[#unchecked + 1] = fmt("%d %s failed", counts.failed,
      counts.failed == 1 and "component" or "components")
  end
  if result.sources_failed > 0 then
    unchecked[#unchecked + 1] = fmt("%d %s failed", result.sources_failed,
      result.sources_failed == 1 and "source" or "sources")
  end
  if #unchecked > 0 then
    out[#out + 1] = fmt("not checked: %s (see above)\n",
                        concat(unchecked, ", "))
  end
  return concat(out)
end

function M.ls(store, opts)
  local out, items = {}, {}
  for i, app in ipairs(store:apps()) do
    local runs = store:runs(app.id, 1)
    local last = runs[1]
    items[i] = { name = app.name,
                 last_run = last and iso_time(last.finished_ns ~= 0
                   and last.finished_ns or last.started_ns) or "never",
                 status = last and (last.finished_ns == 0 and "unfinished"
                   or RUN_STATUS[last.status] or "errors") or "none" }
    out[i] = fmt("%-24s last run %s (%s)\n", app.name, items[i].last_run,
                 items[i].status)
  end
  if opts.json then
    local apps = {}
    for i, it in ipairs(items) do apps[i] = ordered(it, APP) end
    return json(as_list(apps)) .. "\n"
  end
  return concat(out)
end

-- Prints component failures as they come, each traceback once: a
-- failure with the same message as one printed before is counted, not
-- printed again, and one with the same traceback under another first line
-- prints that line only. finish() then says how many repeated, and
-- starts over: live mode finishes each cycle, so that a failure a later
-- cycle meets again is said again, not only counted until the end.
-- say(fmt, ...) prints one "tide: " line.
function M.error_printer(say)
  local seen, same_trace, repeats, order = {}, {}, {}, {}
  local p = {}
  -- A path is any bytes: its control bytes are shown as \xHH, as show
  -- shows them, not written to the terminal.
  function p.component(path, message)
    path = printable(path)
    local first, trace = message:match("^([^\n]*)\n(.*)$")
    first, trace = first or message, trace or ""
    local earlier = seen[message]
    if earlier then
      local r = repeats[earlier]
      if not r then
        r = { first = earlier, paths = {} }
        repeats[earlier] = r
        order[#order + 1] = r
      end
      r.paths[#r.paths + 1] = path
      return
    end
    seen[message] = path
    local twin = trace ~= "" and same_trace[trace]
    if twin then
      say("component %s failed: %s (traceback as for %s)", path, first, twin)
    else
      if trace ~= "" then same_trace[trace] = path end
      say("component %s failed: %s", path, message)
    end
  end
  function p.finish()
    for _, r in ipairs(order) do
      local shown = {}
      for i = 1, math.min(5, #r.paths) do shown[i] = r.paths[i] end
      say("%d more component%s failed with the same error as %s: %s%s",
          #r.paths, #r.paths == 1 and "" or "s", r.first, concat(shown, ", "),
          #r.paths > 5 and ", ..." or "")
    end
    seen, same_trace, repeats, order = {}, {}, {}, {}
  end
  return p
end

return M
