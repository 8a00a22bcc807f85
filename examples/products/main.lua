-- products: a JSON Lines catalog of nested products into
--   - a table of products, variants and image kept as nested JSON columns,
--   - a table of sections, one row per section, each summarised by a
--     memoized function called through tide.map,
--   - a folder with one Markdown page per product.
-- Editing one section of one product runs the summary of that section
-- only: the other sections' calls are memo hits.
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"

local Variant = tide.record("Variant", {
  { "sku", "string" },
  { "color", "string" },
  { "size", tide.optional("string") },
  { "stock", "integer" },
})

local Image = tide.record("Image", {
  { "url", "string" },
  { "alt", "string" },
  { "width", "integer" },
  { "height", "integer" },
})

local Product = tide.record("Product", {
  { "id", "string", key = true },
  { "name", "string" },
  { "price", "number" },
  { "variants", tide.list(Variant) },
  { "image", tide.optional(Image) },
  { "section_titles", tide.list("string") },
})

local Section = tide.record("Section", {
  { "id", "string", key = true },
  { "product", "string" },
  { "position", "integer" },
  { "title", "string" },
  { "words", "integer" },
  { "summary", "string" },
})

-- The expensive step, once per section: imagine a language model here.
local summarize = tide.fn("summarize_section", { memo = true },
  function(section)
    local words = select(2, section.body:gsub("%S+", ""))
    local first = section.body:match("^(.-[.!?])%s") or section.body
    return { title = section.title, words = words, summary = first }
  end)

local function page(product, summaries)
  local out = { "# " .. product.name, "",
                ("Price: %.2f"):format(product.price), "" }
  for _, s in ipairs(summaries) do
    out[#out + 1] = "## " .. s.title
    out[#out + 1] = ""
    out[#out + 1] = s.summary
    out[#out + 1] = ""
  end
  return table.concat(out, "\n")
end

local process_product = tide.fn("process_product", { memo = true },
  function(p, products, sections, pages)
    local summaries = tide.map(summarize, p.sections or {})
    local titles = {}
    for i, s in ipairs(summaries) do
      titles[i] = s.title
      sections:row(Section {
        id = p.id .. "#" .. i, product = p.id, position = i,
        title = s.title, words = s.words, summary = s.summary,
      })
    end
    products:row(Product {
      id = p.id, name = p.name, price = p.price, variants = p.variants or {},
      image = p.image, section_titles = titles,
    })
    pages:file(p.id .. ".md", page(p, summaries))
  end)

return tide.app("products", function()
  local products = sqlite.table { db = "out/catalog.db", name = "products",
                                  schema = Product }
  local sections = sqlite.table { db = "out/catalog.db", name = "sections",
                                  schema = Section, fts = { "summary" } }
  tide.mount_each(process_product,
                  tide.json.lines("products.jsonl", { key = "id" }),
                  products, sections, fs.dir("out/pages"))
end)
