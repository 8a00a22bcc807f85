-- What the CLI prints: the stats of a run (a line, or one JSON object), a
-- progress line on a terminal, previews, and `show`, `why`, `ls`.
local core = require "tide.core"
local target = require "tide.target"

local type, pairs, ipairs, tostring, pcall = type, pairs, ipairs, tostring,
  pcall
local fmt, concat, sort = string.format, table.concat, table.sort

-- Control bytes (a NUL in a key) as \xHH in text output.
local function printable(s)
  return (s:gsub("%c", function(ch) return fmt("\\x%02x", ch:byte()) end))
end
local utf8_len = utf8.len
local decode = core.cbor_decode

local M = {}

-- ---- JSON with a fixed key order ----

local NAMED = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n",
                ["\r"] = "\\r", ["\t"] = "\\t" }

local function escape(c)
  return NAMED[c] or fmt("\\u%04x", c:byte())
end

-- s as the body of a JSON string. Every string tide prints as JSON is
-- valid UTF-8: a byte that is not part of a valid UTF-8 sequence (a file
-- name is any bytes) is written as \ufffd, U+FFFD, as file:text() does.
local function json_chars(s)
  local out = s:gsub('[%c"\\]', escape)
  return out
end

local function json_string(s)
  if utf8_len(s) then return '"' .. json_chars(s) .. '"' end
  local parts, i = {}, 1
  while i <= #s do
    local _, bad = utf8_len(s, i)
    if not bad then
      parts[#parts + 1] = json_chars(s:sub(i))
      break
    end
    parts[#parts + 1] = json_chars(s:sub(i, bad - 1))
    parts[#parts + 1] = "\\ufffd"
    i = bad + 1
  end
  return '"' .. concat(parts) .. '"'
end

local function json_value(v)
  local t = type(v)
  if t == "string" then return json_string(v) end
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return fmt("%.1f", v)
  end
  if t == "boolean" then return tostring(v) end
  if v == nil then return "null" end
  -- A table: an array if it is a sequence, else an object, keys sorted.
  if #v > 0 or next(v) == nil then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = json_value(x) end
    return "[" .. concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do
    parts[i] = json_string(k) .. ":" .. json_value(v[k])
  end
  return "{" .. concat(parts, ",") .. "}"
end
M.json = json_value

local function ordered(obj, keys)
  local parts = {}
  for i, k in ipairs(keys) do
    parts[i] = json_string(k) .. ":" .. json_value(obj[k])
  end
  return "{" .. concat(parts, ",") .. "}"
end

function M.stats_json(stats)
  local fns, names = {}, {}
  for name in pairs(stats.functions) do names[#names + 1] = name end
  sort(names)
  for i, name in ipairs(names) do
    fns[i] = json_string(name) .. ":" .. ordered(stats.functions[name],
      { "calls", "hits", "misses", "errors" })
  end
  return "{" .. concat({
    '"app":' .. json_string(stats.app),
    '"elapsed_ms":' .. fmt("%.1f", stats.elapsed_ms),
    '"components":' .. ordered(stats.components,
      { "added", "reprocessed", "deleted", "unchanged", "errors" }),
    '"targets":' .. ordered(stats.targets, { "inserted", "updated",
                                             "deleted" }),
    '"functions":{' .. concat(fns, ",") .. "}",
  }, ",") .. "}"
end

function M.stats_line(stats)
  local c, t = stats.components, stats.targets
  return fmt("%s: components %d added, %d reprocessed, %d deleted, "
    .. "%d unchanged, %d errors; targets %d inserted, %d updated, "
    .. "%d deleted (%.1f ms)", stats.app, c.added, c.reprocessed, c.deleted,
    c.unchanged, c.errors, t.inserted, t.updated, t.deleted,
    stats.elapsed_ms)
end

-- ---- Progress on a terminal ----

function M.progress(disabled)
  local started = core.now_ms()
  local shown, last = false, 0
  local p = {}
  function p.update(done, total)
    if disabled then return end
    local now = core.now_ms()
    local elapsed = now - started
    if elapsed < 1000 or now - last < 100 then return end
    last = now
    shown = true
    io.stderr:write(fmt("\r\27[Ktide: %d/%d components, %.0f/s, %.1fs",
                        done, total, done / (elapsed / 1000),
                        elapsed / 1000))
  end
  function p.clear()
    if shown then
      io.stderr:write("\r\27[K")
      shown = false
    end
  end
  return p
end

-- ---- Previews ----

local function key_text(key)
  if type(key) == "table" and #key == 1 then key = key[1] end
  if type(key) == "string" then return json_string(key) end
  local ok, s = pcall(json_value, key)
  return ok and s or tostring(key)
end
M.key_text = key_text

function M.preview_printer(out, quiet)
  return function(container, changes)
    if quiet then return end
    for _, ch in ipairs(changes) do
      local what = ch.value == nil and "delete"
        or (ch.write == "inserted" and "insert" or "update")
      out:write(fmt("%s %s %s\n", what, container.short, key_text(ch.key)))
    end
  end
end

-- ---- show, why, ls ----

local STATUS = { [0] = "ok", [1] = "failed" }

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

function M.show(store, app, under, opts)
  local app_id = app_id_of(store, app)
  local containers = containers_by_id(store, app_id)
  local rows, paths = store:components(app_id), {}
  for path in pairs(rows) do
    if not under or under == "/" or path == under
       or path:sub(1, #under + 1) == under .. "/" then
      paths[#paths + 1] = path
    end
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
      for j, s in ipairs(c.states) do
        states[j] = ordered({ target = s.target, key = s.key,
                              pending = s.pending },
                            { "target", "key", "pending" })
      end
      items[i] = ordered(c, { "path", "fn", "status", "error", "source",
                              "updated" }):sub(1, -2)
        .. ',"target_states":[' .. concat(states, ",") .. "]}"
    end
    return '{"app":' .. json_string(app.name) .. ',"components":['
      .. concat(items, ",") .. "]}\n"
  end
  local out = { fmt("app %s: %d components\n", app.name, #list) }
  for _, c in ipairs(list) do
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
    out[#out + 1] = fmt("%-40s %-16s %-6s %3d target states%s\n",
      printable(label), printable(c.fn), c.status, #c.states, c.error and fmt("  since %s: %s", c.updated,
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
    return fmt("app %s has no target named %s", app.name, target_name), false
  end
  local candidates = { { key_text_arg }, key_text_arg }
  local n = math.tointeger(tonumber(key_text_arg))
  if n then
    candidates[#candidates + 1] = { n }
    candidates[#candidates + 1] = n
  end
  local ok, parsed = pcall(function()
    return require("cjson").decode(key_text_arg)
  end)
  if ok and parsed ~= nil then candidates[#candidates + 1] = parsed end
  for _, c in ipairs(matches) do
    for _, key in ipairs(candidates) do
      local okk, kb = pcall(core.cbor_encode, key)
      local t = okk and store:target(c.id, kb)
      if t then
        local owner
        for _, row in pairs(store:components(app_id)) do
          if row.id == t.owner_id then owner = row break end
        end
        local info = {
          target = c.short, key = decode(kb),
          owner = owner and (owner.path == "" and "/" or owner.path) or nil,
          fn = owner and owner.fn, source = owner and owner.source_key,
          written = iso_time(t.written_ns),
          state = t.pending == 0 and "applied" or "pending",
        }
        if opts.json then
          return ordered(info, { "target", "key", "owner", "fn", "source",
                                 "written", "state" }) .. "\n", true
        end
        return fmt("%s %s\n  owner component: %s (%s)\n  source item: %s\n"
          .. "  last written: %s (%s)\n", info.target, key_text(info.key),
          info.owner or "?", info.fn or "?", info.source or "none",
          info.written, info.state), true
      end
    end
  end
  return fmt("%s has no target state with key %s", target_name,
             key_text_arg), false
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
                   or (last.status == 0 and "ok" or "errors")) or "none" }
    out[i] = fmt("%-24s last run %s (%s)\n", app.name, items[i].last_run,
                 items[i].status)
  end
  if opts.json then
    local parts = {}
    for i, it in ipairs(items) do
      parts[i] = ordered(it, { "name", "last_run", "status" })
    end
    return "[" .. concat(parts, ",") .. "]\n"
  end
  return concat(out)
end

return M
