-- The pipeline examples/embed_host runs live inside its frame loop: one
-- row per Markdown file of the folder docs (or $EMBED_DOCS), with its
-- title and its size, in out/notes.db.
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"

local Note = tide.record("Note", {
  { "path", "string", key = true },
  { "title", "string" },
  { "bytes", "integer" },
})

local index_note = tide.fn("index_note", { memo = true }, function(file, notes)
  local text = file:text()
  notes:row(Note { path = file.path, bytes = #text,
                   title = text:match("^#%s*([^\n]*)") or file.path })
end)

return tide.app("embed_host", function()
  local notes = sqlite.table { db = "out/notes.db", name = "notes",
                               schema = Note }
  tide.mount_each(index_note,
                  fs.walk(os.getenv("EMBED_DOCS") or "docs",
                          { include = { "**/*.md" } }),
                  notes)
end)
