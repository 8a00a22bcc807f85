local tide = require "tide"

local Chunk = tide.record("Chunk", {
  { "id", "string", key = true },
  { "file", "string" },
  { "line", "integer" },
  { "text", "string" },
  { "score", tide.optional("number") },
})

local Section = tide.record("Section", {
  { "title", "string" },
  { "body", "string" },
})

local Product = tide.record("Product", {
  { "sku", "string", key = true },
  { "price", "number" },
  { "tags", tide.list("string") },
  { "sections", tide.list(Section) },
  { "image", tide.optional(tide.record("Image", { { "url", "string" },
                                                  { "alt", "string" } })) },
  { "embedding", tide.optional(tide.vector(3)) },
  { "extra", tide.optional("json") },
  { "thumb", tide.optional("bytes") },
  { "active", "boolean" },
})

local function product(over)
  local p = { sku = "p1", price = 10, tags = { "a" }, active = true,
              sections = { { title = "Intro", body = "x" } } }
  for k, v in pairs(over or {}) do p[k] = v end
  return p
end

local function err_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok)
  return err
end

describe("tide.record", function()
  it("builds a checked record value", function()
    local c = Chunk { id = "a.md#1", file = "a.md", line = 3, text = "hi" }
    assert.are.equal("a.md#1", c.id)
    assert.are.equal(3, c.line)
    assert.is_nil(c.score)
    assert.are.equal(Chunk, tide.type_of(c))
  end)

  it("normalises numbers to the field's type", function()
    local c = Chunk { id = "x", file = "f", line = 3.0, text = "", score = 2 }
    assert.are.equal("integer", math.type(c.line))
    assert.are.equal("float", math.type(c.score))
  end)

  it("names the offending field", function()
    assert.matches("Chunk.line: expected integer, got string$",
      err_of(Chunk, { id = "x", file = "f", line = "3", text = "" }))
    assert.matches("Chunk.line: expected integer, got float 3.5$",
      err_of(Chunk, { id = "x", file = "f", line = 3.5, text = "" }))
    assert.matches("Chunk.text: expected string, got nil$",
      err_of(Chunk, { id = "x", file = "f", line = 1 }))
    assert.matches("Chunk.colour: unknown field of Chunk$",
      err_of(Chunk, { id = "x", file = "f", line = 1, text = "", colour = 1 }))
    assert.matches("Chunk: expected a table for Chunk, got string$",
      err_of(Chunk, "nope"))
    assert.matches("Chunk.text: expected string, got invalid UTF%-8 at "
      .. "byte 2 %(use bytes for binary data%)$",
      err_of(Chunk, { id = "x", file = "f", line = 1, text = "a\xffb" }))
  end)

  it("reports the caller's line, not tide's", function()
    local err = err_of(function()
      local c = Chunk { id = 1, file = "f", line = 1, text = "" }
      return c
    end)
    assert.matches("^test/spec/record_spec.lua:%d+: Chunk.id: expected "
      .. "string, got integer 1$", err)
  end)

  it("checks nested records and lists of records", function()
    local p = Product(product {
      sections = { { title = "A", body = "a" }, { title = "B", body = "b" } },
      image = { url = "http://x/i.png", alt = "pic" },
      embedding = { 1, 2, 3 },
      extra = { colour = "red", sizes = { 1, 2 } },
      thumb = "\xff\xd8",
    })
    assert.are.equal(Section, tide.type_of(p.sections[2]))
    assert.are.equal("B", p.sections[2].title)
    assert.are.equal("pic", p.image.alt)
    assert.are.same({ 1.0, 2.0, 3.0 }, p.embedding)
    assert.are.equal("float", math.type(p.embedding[1]))
    assert.matches("Product.sections%[2%].title: expected string, got nil$",
      err_of(Product, product { sections = { { title = "A", body = "a" },
                                             { body = "b" } } }))
    assert.matches("Product.tags%[2%]: expected string, got integer 5$",
      err_of(Product, product { tags = { "a", 5 } }))
    assert.matches("Product.tags: expected list of string, got a table "
      .. "with key x$", err_of(Product, product { tags = { x = "a" } }))
    assert.matches("Product.embedding: expected vector of 3 numbers, got 2$",
      err_of(Product, product { embedding = { 1, 2 } }))
    assert.matches("Product.embedding%[2%]: expected number, got string$",
      err_of(Product, product { embedding = { 1, "2", 3 } }))
    assert.matches("Product.image.url: expected string, got nil$",
      err_of(Product, product { image = { alt = "x" } }))
    assert.matches("Product.extra.f: expected json, got function$",
      err_of(Product, product { extra = { f = print } }))
    assert.matches("Product.active: expected boolean, got string$",
      err_of(Product, product { active = "yes" }))
  end)

  it("rejects vector elements a float32 cannot hold, naming the index",
     function()
    local Emb = tide.record("Chunk", { { "embedding", tide.vector(4) } })
    local function emb(x) return { embedding = { 1, 2, x, 4 } } end
    local expect = "^Chunk.embedding%[3%]: expected a finite "
      .. "number within float32 range, got "
    assert.matches(expect .. "NaN$", err_of(Emb, emb(0 / 0)))
    assert.matches(expect .. "NaN$", err_of(Emb, emb(-(0 / 0))))
    assert.matches(expect .. "float inf$", err_of(Emb, emb(math.huge)))
    assert.matches(expect .. "float %-inf$", err_of(Emb, emb(-math.huge)))
    assert.matches(expect .. "float 1e%+39$", err_of(Emb, emb(1e39)))
    assert.matches(expect .. "float %-3.5e%+38$", err_of(Emb, emb(-3.5e38)))
    -- the largest float32 and the smallest subnormal are fine
    local max = (2 - 2 ^ -23) * 2 ^ 127
    assert.are.same({ 1.0, 2.0, -max, 4.0 }, Emb(emb(-max)).embedding)
    assert.are.same({ 1.0, 2.0, 2 ^ -149, 4.0 },
                    Emb(emb(2 ^ -149)).embedding)
    assert.matches("Product.embedding%[1%]: expected a finite number within "
      .. "float32 range, got float inf$",
      err_of(Product, product { embedding = { math.huge, 0, 0 } }))
  end)

  it("checks a vector without allocating per element", function()
    local function cost(n)
      local V = tide.record("V", { { "v", tide.vector(n) } })
      local input = { v = {} }
      for i = 1, n do input.v[i] = i / 7 end
      V(input) -- warm up
      collectgarbage("collect")
      collectgarbage("stop")
      local before = collectgarbage("count")
      V(input)
      local bytes = (collectgarbage("count") - before) * 1024
      collectgarbage("restart")
      return bytes
    end
    -- the record's array part grows by 16 bytes an element; a string per
    -- element (a path such as "V.v[123]") would add 40 more
    local per_element = (cost(512) - cost(256)) / 256
    assert.is_true(per_element <= 20, ("%.1f bytes per element")
                                      :format(per_element))
  end)

  it("does not change the table it was given", function()
    local input = { id = "x", file = "f", line = 2.0, text = "t" }
    local c = Chunk(input)
    assert.are.equal("float", math.type(input.line))
    assert.is_nil(getmetatable(input))
    assert.are_not.equal(input, c)
  end)

  it("records its fields and keys", function()
    assert.are.equal("Chunk", Chunk.name)
    assert.are.same({ "id" }, Chunk.keys)
    assert.are.same({ "id", "file", "line", "text", "score" },
      (function()
        local names = {}
        for i, f in ipairs(Chunk.fields) do names[i] = f.name end
        return names
      end)())
  end)

  it("has a schema fingerprint that follows its fields", function()
    local function make(fields) return tide.record("S", fields) end
    local a = make { { "id", "string", key = true }, { "n", "integer" } }
    local b = make { { "id", "string", key = true }, { "n", "integer" } }
    assert.matches("^%x+$", a.fingerprint)
    assert.are.equal(32, #a.fingerprint)
    assert.are.equal(a.fingerprint, b.fingerprint)
    local diffs = {
      make { { "id", "string", key = true }, { "n", "number" } },
      make { { "id", "string" }, { "n", "integer" } },
      make { { "id", "string", key = true }, { "m", "integer" } },
      make { { "id", "string", key = true }, { "n", "integer" },
             { "x", "json" } },
      make { { "id", "string", key = true },
             { "n", tide.optional("integer") } },
    }
    for _, d in ipairs(diffs) do
      assert.are_not.equal(a.fingerprint, d.fingerprint)
    end
    -- a nested record type's fields count too
    local Inner1 = tide.record("Inner", { { "v", "integer" } })
    local Outer1 = tide.record("Outer", { { "i", Inner1 } })
    local Inner2 = tide.record("Inner", { { "v", "string" } })
    local Outer2 = tide.record("Outer", { { "i", Inner2 } })
    assert.are_not.equal(Outer1.fingerprint, Outer2.fingerprint)
  end)

  it("rejects malformed type definitions", function()
    assert.matches("tide.record: name must be an identifier string",
      err_of(tide.record, 42, {}))
    assert.matches("tide.record T: fields must be a non%-empty list",
      err_of(tide.record, "T", {}))
    assert.matches("tide.record T: field a declared twice",
      err_of(tide.record, "T", { { "a", "string" }, { "a", "integer" } }))
    assert.matches("tide.record T.a: unknown type \"strin\"",
      err_of(tide.record, "T", { { "a", "strin" } }))
    assert.matches("tide.vector: size must be a positive integer",
      err_of(tide.vector, 0))
    assert.matches("tide.list: unknown type", err_of(tide.list, "nope"))
  end)
end)
