-- semantic_search: documents (Markdown, HTML, PDF, any of them gzipped)
-- into a SQLite table of chunks with their positions, an embedding of
-- each and an FTS5 index, for search.lua's hybrid search. Run from this
-- folder:
--   tide update main.lua             # this repository's documents
--   TIDE_DOCS=/usr/share/doc tide update main.lua
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local text = require "tide.text"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local embed, dims = dofile(here .. "embedder.lua")
local docs = os.getenv("TIDE_DOCS") or "../.."
local exclude = { "**/build*/**", "**/.tide/**", "**/out/**",
                  "**/node_modules/**", "**/.git/**" }
-- This folder's README quotes the demo's query: it would find itself.
if not os.getenv("TIDE_DOCS") then
  exclude[#exclude + 1] = "examples/semantic_search/**"
end

local Chunk = tide.record("Chunk", {
  { "id", "string", key = true },
  { "file", "string" },
  { "page", tide.optional("integer") },
  { "line_start", "integer" },
  { "line_end", "integer" },
  { "text", "string" },
  { "embedding", tide.vector(dims) },
})

-- The pages of a document as { page, text } (one page but for a PDF).
local function pages_of(file)
  local name = file.path:gsub("%.gz$", "")
  if name:match("%.pdf$") and not file.path:match("%.gz$") then
    return assert(text.from_pdf(file))
  end
  local content = file:text { decompress = true }
  if name:match("%.html?$") then content = assert(text.from_html(content)) end
  return { { text = content } }
end

local index_file = tide.fn("index_file", { memo = true }, function(file, chunks)
  local found, texts = {}, {}
  for _, page in ipairs(pages_of(file)) do
    for _, c in ipairs(text.split(page.text, { size = 800,
                                               language = "markdown" })) do
      found[#found + 1] = { page = page.page, chunk = c }
      texts[#texts + 1] = c.text
    end
  end
  -- All of a document's chunks at once: a model server gets them in
  -- batches, not one request per chunk in turn.
  local vectors = tide.map(embed, texts)
  for n, f in ipairs(found) do
    local c = f.chunk
    chunks:row(Chunk {
      id = file.path .. "#" .. n, file = file.path, page = f.page,
      line_start = c.start.line, line_end = c.stop.line, text = c.text,
      embedding = vectors[n],
    })
  end
end)

return tide.app("semantic_search", function()
  local chunks = sqlite.table { db = "out/search.db", name = "chunks",
                                schema = Chunk, fts = { "text" } }
  tide.mount_each(index_file, fs.walk(docs, {
    include = { "**/*.md", "**/*.html", "**/*.htm", "**/*.pdf",
                "**/*.md.gz", "**/*.html.gz", "**/*.txt.gz" },
    exclude = exclude,
  }), chunks)
end)
