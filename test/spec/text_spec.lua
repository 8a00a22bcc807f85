local text = require "tide.text"

-- Reference positions, computed here in plain Lua: the length of the
-- code point at byte i (RFC 3629; an invalid byte is one code point).
local function seqlen(s, i)
  local c = s:byte(i)
  local function cont(k, lo, hi)
    local b = s:byte(i + k)
    return b ~= nil and b >= (lo or 0x80) and b <= (hi or 0xbf)
  end
  if c < 0x80 then return 1 end
  if c >= 0xc2 and c <= 0xdf then return cont(1) and 2 or 1 end
  if c >= 0xe0 and c <= 0xef then
    local lo = c == 0xe0 and 0xa0 or 0x80
    local hi = c == 0xed and 0x9f or 0xbf
    return (cont(1, lo, hi) and cont(2)) and 3 or 1
  end
  if c >= 0xf0 and c <= 0xf4 then
    local lo = c == 0xf0 and 0x90 or 0x80
    local hi = c == 0xf4 and 0x8f or 0xbf
    return (cont(1, lo, hi) and cont(2) and cont(3)) and 4 or 1
  end
  return 1
end

-- For each byte: the position { char, line, column } of its code point,
-- whether a code point starts there, and where that code point ends.
local function reference(s)
  local pos, first, last = {}, {}, {}
  local i, char, line, column = 1, 1, 1, 1
  while i <= #s do
    local len = seqlen(s, i)
    first[i] = true
    for k = i, i + len - 1 do
      pos[k] = { char = char, line = line, column = column }
      last[k] = i + len - 1
    end
    char = char + 1
    if s:byte(i) == 10 then
      line, column = line + 1, 1
    else
      column = column + 1
    end
    i = i + len
  end
  first[#s + 1] = true
  return pos, first, last
end

local function is_space(c) return c ~= nil and c:match("^%s$") ~= nil end

local cjk_marks = { ["。"] = true, ["、"] = true, ["！"] = true,
                    ["？"] = true, ["，"] = true, ["；"] = true,
                    ["："] = true, ["．"] = true }

-- Checks every property the splitter promises for these chunks of s.
local function check_chunks(s, chunks, opts)
  local pos, first, last = reference(s)
  local size, overlap = opts.size, opts.overlap or 0
  local rebuilt, prev_stop, prev_core = {}, 0, 1
  for k, c in ipairs(chunks) do
    local start, stop = c.start.byte, c.stop.byte
    local core = prev_stop + 1
    assert.are.equal(s:sub(start, stop), c.text)
    assert.is_true(stop > prev_stop, "stops increase")
    assert.is_true(start <= core, "no gap before chunk " .. k)
    assert.is_true(start >= prev_core, "overlap within the previous chunk")
    assert.is_true(core - start <= overlap, "overlap at most asked")
    assert.is_true(first[start] and first[stop + 1] == true,
                   "chunk " .. k .. " cut inside a UTF-8 sequence")
    if #c.text > size then
      -- Only a single code point longer than size may exceed it.
      assert.are.equal(core, start)
      assert.are.equal(stop, last[start])
    end
    if start < core then
      -- An overlap starts at a word.
      local before = s:sub(start - 1, start - 1)
      assert.is_false(is_space(s:sub(start, start)))
      assert.is_true(is_space(before) or
                     cjk_marks[s:sub(start - 3, start - 1)] == true)
    end
    assert.are.same({ byte = start, char = pos[start].char,
                      line = pos[start].line, column = pos[start].column },
                    c.start)
    assert.are.same({ byte = stop, char = pos[stop].char,
                      line = pos[stop].line, column = pos[stop].column },
                    c.stop)
    assert.are.equal(last[stop], stop)
    rebuilt[#rebuilt + 1] = s:sub(core, stop)
    prev_core, prev_stop = core, stop
  end
  assert.are.equal(s, table.concat(rebuilt))
  if overlap == 0 then
    local texts = {}
    for i, c in ipairs(chunks) do texts[i] = c.text end
    assert.are.equal(s, table.concat(texts))
  end
end

local function texts(chunks)
  local out = {}
  for i, c in ipairs(chunks) do out[i] = c.text end
  return out
end

-- A deterministic pseudo-random generator, so failures reproduce.
local function generator(seed)
  local x = seed
  return function(n)
    x = (x * 1103515245 + 12345) % 2147483648
    return x % n + 1
  end
end

local words = { "the", "splitter", "cuts", "text", "into", "chunks", "at",
                "boundaries", "a", "language", "gives", "日本語", "テキスト",
                "😀", "naïve", "café", "x", "supercalifragilistic" }
local puncts = { " ", " ", " ", " ", ". ", ", ", "; ", "! ", "\n", "\n\n",
                 "。", "、", "\t", "  " }

local function random_text(rand, n)
  local out = {}
  for i = 1, n do
    out[#out + 1] = words[rand(#words)]
    out[#out + 1] = puncts[rand(#puncts)]
    if rand(40) == 1 then out[#out + 1] = "\n# Heading " .. i .. "\n" end
    if rand(60) == 1 then out[#out + 1] = "\xff\xe3\x81" end
  end
  return table.concat(out)
end

local function lines(n, fmt)
  local out = {}
  for i = 1, n do out[i] = fmt:format(i) end
  return table.concat(out)
end

describe("tide.text.split", function()
  it("gives no chunks for empty input", function()
    assert.are.same({}, text.split("", { size = 10 }))
    assert.are.same({}, text.split("", { size = 10, language = "markdown" }))
  end)

  it("returns short input as one chunk with exact positions", function()
    assert.are.same({ {
      text = "héllo\nwörld",
      start = { byte = 1, char = 1, line = 1, column = 1 },
      stop = { byte = 13, char = 11, line = 2, column = 5 },
    } }, text.split("héllo\nwörld", { size = 100 }))
  end)

  it("cuts at spaces into balanced chunks", function()
    assert.are.same({ "one two ", "three ", "four ", "five six" },
      texts(text.split("one two three four five six", { size = 10 })))
  end)

  it("prefers sentence ends, then clauses, to spaces", function()
    local s = "First sentence here. Second one, with a clause; "
      .. "and more. Third!"
    assert.are.same({ "First sentence here. ",
                      "Second one, with a clause; ", "and more. Third!" },
                    texts(text.split(s, { size = 30 })))
  end)

  it("prefers blank lines to line breaks", function()
    local s = "aaaa aaaa\nbbbb bbbb\n\ncccc cccc\ndddd dddd\n"
    assert.are.same({ "aaaa aaaa\nbbbb bbbb\n\n", "cccc cccc\ndddd dddd\n" },
                    texts(text.split(s, { size = 30 })))
  end)

  it("holds every property on random text, sizes and overlaps", function()
    local rand = generator(7)
    local langs = { false, "markdown", "c", "lua", "python", "html", "json" }
    for round = 1, 120 do
      local s = random_text(rand, rand(150))
      local size = rand(round % 3 == 0 and 12 or 400)
      local min_size = rand(size + 1) - 1
      local overlap = rand(math.min(min_size, size - 1) + 1) - 1
      local opts = { size = size, min_size = min_size, overlap = overlap,
                     language = langs[rand(#langs)] or nil }
      check_chunks(s, text.split(s, opts), opts)
      opts.overlap = 0
      check_chunks(s, text.split(s, opts), opts)
    end
  end)

  it("splits Markdown at headings before paragraphs", function()
    local para = "A paragraph of the section, long enough to matter.\n\n"
    local sections = {
      "# Guide\n\n" .. para, "## Install\n\n" .. para:rep(3),
      "## Use\n\n" .. para, "### Details\n\n" .. para:rep(3),
    }
    local s = table.concat(sections)
    local opts = { size = 200, language = "markdown" }
    local chunks = text.split(s, opts)
    check_chunks(s, chunks, opts)
    assert.are.same(sections, texts(chunks))
    assert.are.same({ 1, 5, 13, 17 },
      { chunks[1].start.line, chunks[2].start.line, chunks[3].start.line,
        chunks[4].start.line })
    -- As plain text nothing marks headings, and a balanced cut at a
    -- blank line inside a section wins.
    local inside = 0
    for _, c in ipairs(text.split(s, { size = 200 })) do
      if not c.text:match("^#") then inside = inside + 1 end
    end
    assert.is_true(inside > 0)
  end)

  it("keeps a Markdown code fence whole when it fits", function()
    local fence = "```sh\n# not a heading\necho one\n\necho two\n```\n"
    local s = "# Title\n\nSome words before the code.\n\n" .. fence
      .. "\nWords after the code block, a few of them.\n"
    local opts = { size = 80, language = "markdown" }
    local chunks = text.split(s, opts)
    check_chunks(s, chunks, opts)
    local whole = false
    for _, c in ipairs(chunks) do
      if c.text:find(fence, 1, true) then whole = true end
    end
    assert.is_true(whole)
  end)

  it("splits code at blank lines between functions before lines",
     function()
    local function fn(name, n)
      local body = {}
      for i = 1, n do
        body[i] = ("  local v%d = a + b * %d\n"):format(i, i)
      end
      return "local function " .. name .. "(a, b)\n"
        .. table.concat(body) .. "\n  return v1\nend\n\n"
    end
    local parts = {
      "-- A module.\nlocal M = {}\n\n" .. fn("add", 1),
      "-- Subtracts.\n" .. fn("sub", 4), fn("mul", 1),
      fn("div", 4) .. "return M\n",
    }
    local s = table.concat(parts)
    local opts = { size = 150, language = "lua" }
    local chunks = text.split(s, opts)
    check_chunks(s, chunks, opts)
    assert.are.same(parts, texts(chunks))
    -- As plain text a blank line inside a function is as good a cut.
    local plain = texts(text.split(s, { size = 150 }))
    assert.are.equal("  return v1\nend\n\n" .. fn("mul", 1), plain[3])
  end)

  it("never splits Japanese or emoji inside a character", function()
    local ja = "日本語の文章です。これは二番目の文です、そして続きます。"
      .. "最後の文！句読点のない長い文字列がここから続いていきます"
    for size = 1, 40 do
      local opts = { size = size }
      local chunks = text.split(ja, opts)
      check_chunks(ja, chunks, opts)
      for _, c in ipairs(chunks) do assert.is_truthy(utf8.len(c.text)) end
    end
    assert.are.same({ "日本語の文章です。", "これは二番目の文です、",
                      "そして続きます。最後の文！" },
      texts(text.split(ja:sub(1, 99), { size = 40 })))
    local emoji = string.rep("😀", 5)
    assert.are.same({ "😀", "😀", "😀", "😀", "😀" },
                    texts(text.split(emoji, { size = 6 })))
    -- A code point longer than size is a chunk of its own.
    assert.are.same({ "😀", "😀", "😀", "😀", "😀" },
                    texts(text.split(emoji, { size = 3 })))
    assert.are.same({ "😀😀", "😀😀", "😀" },
                    texts(text.split(emoji, { size = 8 })))
  end)

  it("cuts a word longer than size at code point boundaries", function()
    assert.are.same({ "aaaaaaaaa", "aaaaaaa", "aaaaaaaaa" },
      texts(text.split(string.rep("a", 25), { size = 10 })))
    local s = string.rep("é", 12)
    local chunks = text.split(s, { size = 9 })
    assert.are.same({ "éééé", "éééé", "éééé" }, texts(chunks))
    check_chunks(s, chunks, { size = 9 })
  end)

  it("counts invalid bytes as one character each", function()
    local s = "a\xffb\xe3\x81\n\xc3\xa9"
    assert.are.same({ {
      text = s,
      start = { byte = 1, char = 1, line = 1, column = 1 },
      stop = { byte = 8, char = 7, line = 2, column = 1 },
    } }, text.split(s, { size = 20 }))
    local chunks = text.split(s, { size = 1 })
    check_chunks(s, chunks, { size = 1 })
    assert.are.same({ "a", "\xff", "b", "\xe3", "\x81", "\n", "é" },
                    texts(chunks))
  end)

  it("repeats the end of the previous chunk from a word", function()
    local s = "alpha beta gamma delta epsilon zeta eta theta"
    local opts = { size = 20, overlap = 8 }
    local chunks = text.split(s, opts)
    check_chunks(s, chunks, opts)
    assert.are.same({ "alpha beta ", "beta gamma delta ", "delta epsilon ",
                      "epsilon zeta eta ", "eta theta" }, texts(chunks))
    -- No word start within reach: no overlap rather than half a word.
    local long = "abcdefghijklmnopqrstuvwxyz0123456789"
    local opts2 = { size = 12, overlap = 4 }
    local chunks2 = text.split(long, opts2)
    check_chunks(long, chunks2, opts2)
    assert.are.equal(long, table.concat(texts(chunks2)))
  end)

  it("splits with a language defined by the program", function()
    assert.are.equal("notes", text.language_def{
      name = "notes", extensions = { "notes", ".NTS" },
      filenames = { "NOTEBOOK" },
      separators = { "^=== ", { "^--- ", "^~~~ " } },
      comments = { "//" },
    })
    assert.are.equal("notes", text.language("a/b/todo.notes"))
    assert.are.equal("notes", text.language("x.nts"))
    assert.are.equal("notes", text.language("dir/Notebook"))
    local s = "=== One\nalpha alpha alpha\n\nbeta beta beta\n"
      .. "// about two\n=== Two\ngamma gamma\n\ndelta delta delta\n"
    local opts = { size = 60, language = "notes" }
    local chunks = text.split(s, opts)
    check_chunks(s, chunks, opts)
    assert.are.same({
      "=== One\nalpha alpha alpha\n\nbeta beta beta\n",
      "// about two\n=== Two\ngamma gamma\n\ndelta delta delta\n",
    }, texts(chunks))
    -- Blank lines placed before a level make that level finer.
    text.language_def{ name = "notes2", separators = { "\n\n", "^=== " } }
    assert.are.same({
      "=== One\nalpha alpha alpha\n\n",
      "beta beta beta\n// about two\n=== Two\ngamma gamma\n\n",
      "delta delta delta\n",
    }, texts(text.split(s, { size = 60, language = "notes2" })))
    -- Unanchored separators cut before the match.
    text.language_def{ name = "tags", separators = { "<b>" } }
    assert.are.same({ "xx yy zz ", "<b>bold</b> tail" },
      texts(text.split("xx yy zz <b>bold</b> tail", { size = 18,
                                                       language = "tags" })))
    local names = text.languages()
    assert.is_truthy(#names >= 18)
    local set = {}
    for _, n in ipairs(names) do set[n] = true end
    for _, n in ipairs({ "markdown", "c", "cpp", "lua", "python",
                         "javascript", "typescript", "go", "rust", "java",
                         "shell", "html", "xml", "json", "yaml", "sql",
                         "text", "notes" }) do
      assert.is_true(set[n], n)
    end
  end)

  it("reports option errors at the caller", function()
    local function err(f)
      local ok, msg = pcall(f)
      assert.is_false(ok)
      return (msg:gsub("^[^:]*text_spec%.lua:%d+: ", ""))
    end
    local cases = {
      { {}, "text.split: size must be a positive integer" },
      { { size = 0 }, "text.split: size must be a positive integer" },
      { { size = 1.5 }, "text.split: size must be a positive integer" },
      { { size = "10" }, "text.split: size must be a positive integer" },
      { { size = 10, overlap = -1 },
        "text.split: overlap must be a non-negative integer" },
      { { size = 10, min_size = 11 },
        "text.split: min_size must be at most size" },
      { { size = 10, overlap = 6 },
        "text.split: overlap must be at most min_size" },
      { { size = 10, min_size = 10, overlap = 10 },
        "text.split: overlap must be less than size" },
      { { size = 10, language = "klingon" },
        "text.split: unknown language 'klingon'" },
      { { size = 10, language = 3 },
        "text.split: language must be a string" },
      { { size = 10, sise = 3 }, "text.split: unknown option 'sise'" },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], err(function() return text.split("x", c[1]) end))
    end
    assert.are.equal("text.split: expected a string, got nil",
                     err(function() return text.split(nil, { size = 1 }) end))
    assert.are.equal("text.split: expected an options table { size = ... }",
                     err(function() return text.split("x") end))
    -- The message points at the line that called split.
    local ok, msg = pcall(text.split, "x", {})
    assert.is_false(ok)
    assert.are.equal("text.split: size must be a positive integer", msg)
    local ok2, msg2 = pcall(function() text.split("x", {}) end)
    assert.is_false(ok2)
    assert.is_truthy(msg2:match("^[^:]*text_spec%.lua:%d+: "))
    assert.are.equal(
      "text.language_def: separator \"\\\n\" is empty after its anchor",
      err(function()
        text.language_def{ name = "bad", separators = { "\n" } }
      end))
    assert.are.equal(
      "text.language_def: separator \"\x80x\" starts with a UTF-8 "
        .. "continuation byte",
      err(function()
        text.language_def{ name = "bad", separators = { "\x80x" } }
      end))
    assert.are.equal("text.language_def: unknown field 'seps'",
      err(function() text.language_def{ name = "bad", seps = {} } end))
    assert.are.equal("text.language_def: name must be a non-empty string",
      err(function() text.language_def{ separators = {} } end))
  end)
end)

describe("tide.text.language", function()
  it("knows file names and extensions", function()
    local cases = {
      Makefile = "make", makefile = "make", GNUmakefile = "make",
      Dockerfile = "dockerfile", ["CMakeLists.txt"] = "cmake",
      ["a.h"] = "c", ["a.c"] = "c", ["README.md"] = "markdown",
      ["x.mdx"] = "markdown", ["x.markdown"] = "markdown",
      ["x.lua"] = "lua", ["x.py"] = "python", ["x.js"] = "javascript",
      ["x.mjs"] = "javascript", ["x.cjs"] = "javascript",
      ["x.jsx"] = "javascript", ["x.ts"] = "typescript",
      ["x.tsx"] = "typescript", ["x.go"] = "go", ["x.rs"] = "rust",
      ["x.java"] = "java", ["x.sh"] = "shell", ["x.bash"] = "shell",
      ["x.zsh"] = "shell", ["x.html"] = "html", ["x.htm"] = "html",
      ["x.xml"] = "xml", ["x.json"] = "json", ["x.yaml"] = "yaml",
      ["x.yml"] = "yaml", ["x.sql"] = "sql", ["x.toml"] = "toml",
      ["x.txt"] = "text", ["x.rb"] = "ruby", ["x.php"] = "php",
      ["x.cs"] = "csharp", ["x.kt"] = "kotlin", ["x.swift"] = "swift",
      ["x.scala"] = "scala", ["x.hpp"] = "cpp", ["x.cc"] = "cpp",
      ["x.cpp"] = "cpp", ["x.cxx"] = "cpp", ["x.css"] = "css",
      ["x.ini"] = "ini", ["x.tex"] = "latex", ["x.proto"] = "protobuf",
      [".bashrc"] = "shell", ["x.svg"] = "xml", ["Gemfile"] = "ruby",
    }
    local n = 0
    for name, lang in pairs(cases) do
      assert.are.equal(lang, text.language(name), name)
      n = n + 1
    end
    assert.is_true(n >= 40)
  end)

  it("ignores directories and the case of extensions", function()
    assert.are.equal("c", text.language("src/foo.H"))
    assert.are.equal("markdown", text.language("/a/b.c/docs/Guide.MD"))
    assert.are.equal("make", text.language("sub/dir/Makefile"))
    assert.are.equal("cmake", text.language("x/CMakeLists.txt"))
  end)

  it("returns nil when it does not know", function()
    assert.is_nil(text.language("a.tar.gz"))
    assert.is_nil(text.language("noextension"))
    assert.is_nil(text.language("dir.md/"))
    assert.is_nil(text.language("file."))
    assert.is_nil(text.language(""))
    assert.is_nil(text.language(".md"))
  end)

  it("gives names that split accepts", function()
    for _, name in ipairs(text.languages()) do
      local opts = { size = 50, language = name }
      local s = "# x\n\nint f(void) {\n  return 0;\n}\n\n<p>para</p>\n"
      check_chunks(s, text.split(s, opts), opts)
    end
  end)
end)
