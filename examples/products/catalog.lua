-- The catalog's record types and functions, which main.lua (SQLite) and
-- main_postgres.lua (PostgreSQL) both run: one component per product
-- writes its row, one row per section and a Markdown page.
local tide = require "tide"

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

return { Product = Product, Section = Section,
         process_product = process_product }
