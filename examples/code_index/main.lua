-- code_index: a source tree into a SQLite table of chunks, cut at
-- function boundaries, each with its file, language and line range.
-- Run from this folder (the tree is ../../src unless CODE_INDEX_SRC names
-- another):
--   tide update main.lua --json
--   sqlite3 out/code.db "SELECT file, line_start, line_end FROM chunks
--                        WHERE file = 'cbor.c' ORDER BY line_start"
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local text = require "tide.text"

local getenv = os.getenv

local SRC = getenv("CODE_INDEX_SRC") or "../../src"
-- Source files by extension; text.language knows all of these, so every
-- walked file gets a language.
local SOURCES = { "**/*.c", "**/*.h", "**/*.lua", "**/*.py", "**/*.js",
                  "**/*.go", "**/*.rs", "**/*.sh" }

local Chunk = tide.record("Chunk", {
  { "id", "string", key = true },
  { "file", "string" },
  { "language", "string" },
  { "line_start", "integer" },
  { "line_end", "integer" },
  { "text", "string" },
})

-- Chunks of a source file: cut between functions first, then at blank
-- lines, then at lines. The language is an argument, so it joins the
-- memo key.
local split = tide.fn("split", { memo = true }, function(content, language)
  return text.split(content, { size = 1200, language = language })
end)

local index_file = tide.fn("index_file", { memo = true }, function(file, chunks)
  local language = text.language(file.path)
  for i, c in ipairs(split(file:text(), language)) do
    chunks:row(Chunk {
      id = file.path .. "#" .. i, file = file.path, language = language,
      line_start = c.start.line, line_end = c.stop.line, text = c.text,
    })
  end
end)

return tide.app("code_index", function()
  local chunks = sqlite.table { db = "out/code.db", name = "chunks",
                                schema = Chunk, fts = { "text" } }
  tide.mount_each(index_file, fs.walk(SRC, { include = SOURCES }), chunks)
end)
