-- docs_search: a folder of Markdown into a SQLite table of chunks with
-- their positions, searchable with FTS5. Run from this folder:
--   tide update main.lua --json
--   sqlite3 out/docs.db "SELECT file, line_start FROM chunks_fts
--                        JOIN chunks ON chunks.rowid = chunks_fts.rowid WHERE chunks_fts MATCH 'memo'"
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local text = require "tide.text"

local Chunk = tide.record("Chunk", {
  { "id", "string", key = true },
  { "file", "string" },
  { "heading", "string" },
  { "line_start", "integer" },
  { "line_end", "integer" },
  { "text", "string" },
})

-- Chunks of a document: cut at headings first, then paragraphs.
local split = tide.fn("split", { memo = true }, function(content)
  return text.split(content, { size = 400, language = "markdown" })
end)

local index_file = tide.fn("index_file", { memo = true }, function(file, chunks)
  local heading = ""
  for i, c in ipairs(split(file:text())) do
    heading = c.text:match("^#+%s+([^\n]*)") or heading
    chunks:row(Chunk {
      id = file.path .. "#" .. i, file = file.path, heading = heading,
      line_start = c.start.line, line_end = c.stop.line, text = c.text,
    })
  end
end)

return tide.app("docs_search", function()
  local chunks = sqlite.table { db = "out/docs.db", name = "chunks",
                                schema = Chunk, fts = { "text" } }
  tide.mount_each(index_file, fs.walk("docs", { include = { "**/*.md" } }),
                  chunks)
end)
