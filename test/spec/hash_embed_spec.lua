-- The built-in embedding's C core (hash_embed.h) as Lua sees it:
-- core.hash_embed and core.hash_embed_many, which ai.hash_embedder wraps.
local core = require "tide.core"

local embed, embed_many = core.hash_embed, core.hash_embed_many

local function dot(a, b)
  local s = 0
  for i = 1, #a do s = s + a[i] * b[i] end
  return s
end

local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

describe("core.hash_embed", function()
  it("returns dims float32 numbers of norm 1, the same every time",
     function()
    for _, dims in ipairs { 1, 3, 256, 65536 } do
      local v = embed("The quick brown fox jumps over the lazy dog", dims)
      assert.are.equal(dims, #v)
      for i = 1, dims do
        assert.are.equal("float", math.type(v[i]))
        assert.are.equal(f32(v[i]), v[i])
      end
      assert.is_true(math.abs(dot(v, v) - 1) < 1e-6)
      assert.are.same(v, embed("The quick brown fox jumps over the lazy dog",
                               dims))
    end
    -- The bits of hash_embed.h's algorithm, computed outside C (as in
    -- test/c/test_hash_embed.c): stored vectors depend on them.
    assert.are.same({ f32(-0.150755674), f32(0.301511347), 0.0,
      f32(0.301511347), f32(0.452267021), f32(0.452267021),
      f32(-0.603022695), f32(0.150755674) },
      embed("The quick brown fox", 8))
    assert.are.equal(1, core.hash_embed_version)
  end)

  it("gives the zero vector for a text without word characters", function()
    for _, text in ipairs { "", "   ", "--- !!! ...",
                            "\u{201c}\u{2014}\u{201d}" } do
      assert.are.same({ 0.0, 0.0, 0.0, 0.0 }, embed(text, 4))
    end
  end)

  it("measures lexical similarity: shared words and subwords", function()
    local q = embed("incremental processing of documents into SQLite", 256)
    local near = embed("tide processes documents incrementally into SQLite "
                       .. "tables", 256)
    local far = embed("two cups of flour, sugar and butter", 256)
    assert.is_true(dot(q, near) > 0.3)
    assert.is_true(dot(q, near) > dot(q, far) + 0.2)
    -- Case and punctuation do not matter.
    assert.are.same(embed("Hello, World!", 64), embed("hello world", 64))
  end)

  it("embeds a list of texts in one call, as one at a time does", function()
    local texts = { "alpha beta", "", "gamma \u{3b4}\u{3b5}\u{3bb}\u{3c4}"
                    .. "\u{3b1}", string.rep("word ", 1000) }
    local vs = embed_many(texts, 32)
    assert.are.equal(#texts, #vs)
    for i, t in ipairs(texts) do assert.are.same(embed(t, 32), vs[i]) end
    assert.are.same({}, embed_many({}, 32))
  end)

  it("raises on misuse, naming the argument", function()
    for _, dims in ipairs { 0, -1, 65537 } do
      assert.has_error(function() core.hash_embed("x", dims) end,
        "bad argument #2 to 'hash_embed' (dims must be between 1 and "
        .. "65536)")
    end
    assert.has_error(function() core.hash_embed("x", 2.5) end,
      "bad argument #2 to 'hash_embed' (number has no integer "
      .. "representation)")
    assert.has_error(function() core.hash_embed(42, 8) end,
      "bad argument #1 to 'hash_embed' (string expected, got number)")
    assert.has_error(function() core.hash_embed_many({ "a", true }, 8) end,
      "bad argument #1 to 'hash_embed_many' (item 2 is a boolean, not a "
      .. "string)")
    assert.has_error(function() core.hash_embed_many("a", 8) end,
      "bad argument #1 to 'hash_embed_many' (table expected, got string)")
    assert.has_error(function() core.hash_embed_many({ "a" }, 0) end,
      "bad argument #2 to 'hash_embed_many' (dims must be between 1 and "
      .. "65536)")
  end)
end)
