-- Every Debian changelog on this machine, one row per entry: each file
-- unpacked by gzip through tide.exec (eight programs at a time), each
-- entry's words counted by a parallel function on every CPU. The folder
-- is /usr/share/doc, or $CHANGELOGS_DIR.
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"

local Entry = tide.record("Entry", {
  { "binary", "string", key = true },
  { "version", "string", key = true },
  { "words", "integer" },
})

-- The text of a .gz file, unpacked by a program: the other components
-- run while it works.
local gunzip = tide.fn("gunzip", { concurrency = 8 }, function(path)
  local r = assert(tide.exec({ "gzip", "-dc", path }, { timeout = 30 }))
  assert(r.status == 0, r.stderr)
  return r.stdout
end)

-- Pure Lua, run by the worker threads (--jobs).
local count_words = tide.fn("count_words", { parallel = true }, function(s)
  local n = 0
  for _ in s:gmatch("%S+") do n = n + 1 end
  return n
end)

-- One component per changelog: its entries, "package (version) ..." then
-- the text up to the " -- " trailer line.
local index_file = tide.fn("index_file", { memo = true },
  function(file, entries)
    local heads, bodies = {}, {}
    for head, body in gunzip(file.abs)
        :gmatch("([^\n]+%([^)]+%)[^\n]*)\n(.-)\n %-%-") do
      heads[#heads + 1], bodies[#bodies + 1] = head, body
    end
    local counts, seen = tide.map(count_words, bodies), {}
    for i, head in ipairs(heads) do
      local version = head:match("%(([^)]+)%)")
      if not seen[version] then
        seen[version] = true
        entries:row(Entry { binary = file.path:match("^[^/]+"),
                            version = version, words = counts[i] })
      end
    end
  end)

return tide.app("changelogs", function()
  local entries = sqlite.table { db = "out/changelogs.db", name = "entries",
                                 schema = Entry }
  tide.mount_each(index_file,
    fs.walk(os.getenv("CHANGELOGS_DIR") or "/usr/share/doc",
            { include = { "**/changelog.Debian.gz" } }),
    entries)
end)
