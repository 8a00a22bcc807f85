-- What the crash campaigns share (campaign.lua, live_campaign.lua): shell
-- and file helpers, the pipeline they run (pipeline.lua.in) and its
-- inputs, and the snapshot of its three targets a trial is compared by.
--   local C = dofile(here .. "/common.lua")
local sqlite = require "tide.sqlite"

local fmt, concat = string.format, table.concat

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."

local M = {}

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local ok, _, code = os.execute(cmd)
  return ok and 0 or code
end

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local function write(path, content)
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function mkdirs(path) sh("mkdir -p " .. q(path)) end

M.q, M.sh, M.capture, M.write, M.read, M.mkdirs =
  q, sh, capture, write, read, mkdirs

-- ---- Options ----

-- Reads the command line into opts (its defaults): --keep and --verbose
-- set true, the names in valued take a value (a number when it reads as
-- one); anything else ends the campaign (who names it). Then a seed from
-- the clock unless given, and the tide binary's path made absolute.
function M.options(opts, valued, who)
  local i = 1
  while i <= #arg do
    local a = arg[i]
    local name = a:match("^%-%-([%w-]+)$")
    if name == "keep" or name == "verbose" then
      opts[name] = true
    elseif name and valued[name] then
      i = i + 1
      local v = arg[i]
      if v == nil then error("option " .. a .. " needs a value", 0) end
      opts[name] = tonumber(v) or v
    else
      io.stderr:write(who, ": unknown argument ", a, "\n")
      os.exit(2)
    end
    i = i + 1
  end
  local now_ms = require("tide.core").now_ms
  opts.seed = opts.seed or (os.time() * 1000 + math.floor(now_ms()) % 1000)
  if opts.tide:sub(1, 1) ~= "/" then
    opts.tide = os.getenv("PWD") .. "/" .. opts.tide
  end
  return opts
end

-- ---- The pipeline and its inputs ----

local template = assert(read(here .. "/pipeline.lua.in"),
                        "campaign: cannot read pipeline.lua.in")

local SHAPES = {
  v1 = "return s:upper()",
  v2 = 'return (s:gsub("%w+", function(w) return w:reverse() end))',
}

-- The pipeline with the transform of version ("v1" or "v2": changing it
-- is a logic change), work iterations of busy work per file and a custom
-- target whose apply takes apply_ms a batch.
function M.pipeline(version, work, apply_ms)
  return (template:gsub("@([%u_]+)@", { SHAPE = SHAPES[version],
    WORK = tostring(work), APPLY_MS = tostring(apply_ms) }))
end

local WORDS = { "tide", "crash", "state", "store", "row", "file", "kill",
                "commit", "batch", "intent", "apply", "pending", "memo" }

local function paragraph(i, p, salt)
  local out = {}
  for w = 1, 4 + (i + p) % 9 do
    out[w] = WORDS[(i * 7 + p * 3 + w + salt) % #WORDS + 1]
  end
  return concat(out, " ") .. " " .. i .. "." .. p
end

-- Input file i's path under in/, and a content of it.
function M.file_name(i)
  return fmt("d%02d/f%05d.md", i % 20, i)
end

function M.content(i, paragraphs, salt)
  local ps = {}
  for p = 1, paragraphs do ps[p] = paragraph(i, p, salt) end
  return concat(ps, "\n\n") .. "\n"
end

-- ---- What the targets hold ----

-- { rows = { id = text }, files = { path = content },
--   ledger = { key = words } }
function M.snapshot(dir)
  local snap = { rows = {}, files = {}, ledger = {} }
  local ledger = sqlite.open(dir .. "/out/ledger.db", "read")
  if ledger then
    for _, r in ipairs(ledger:rows("SELECT key, words FROM ledger") or {}) do
      snap.ledger[r.key] = tostring(r.words)
    end
    ledger:close()
  end
  local db_path = dir .. "/out/chunks.db"
  if read(db_path) then
    local db = sqlite.open(db_path, "read")
    if db then
      local rows = db:rows("SELECT id, file, words, text FROM chunks")
      if rows then
        for _, r in ipairs(rows) do
          snap.rows[r.id] = concat({ r.file, tostring(r.words), r.text },
                                   "\0")
        end
      end
      db:close()
    end
  end
  local list = capture(fmt("cd %s 2>/dev/null && find out/site -type f "
                           .. "2>/dev/null", q(dir)))
  for path in list:gmatch("[^\n]+") do
    snap.files[path] = read(dir .. "/" .. path)
  end
  return snap
end

-- Differences of got against want, as { missing, extra, old } lists.
function M.compare(want, got)
  local d = { missing = {}, extra = {}, old = {} }
  for _, kind in ipairs { "rows", "files", "ledger" } do
    for k, v in pairs(want[kind]) do
      local g = got[kind][k]
      if g == nil then
        d.missing[#d.missing + 1] = kind .. " " .. k
      elseif g ~= v then
        d.old[#d.old + 1] = kind .. " " .. k
      end
    end
    for k in pairs(got[kind]) do
      if want[kind][k] == nil then d.extra[#d.extra + 1] = kind .. " " .. k end
    end
  end
  for _, l in pairs(d) do table.sort(l) end
  return d
end

-- At most n of list, as one line.
function M.show(list, n)
  local out = {}
  for i = 1, math.min(n, #list) do out[i] = list[i] end
  if #list > n then out[#out + 1] = fmt("... (%d in all)", #list) end
  return concat(out, ", ")
end

return M
