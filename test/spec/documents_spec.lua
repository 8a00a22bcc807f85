-- Documents AI pipelines start from: gzip files read through zlib
-- (file:bytes and file:text with decompress), HTML as Markdown-ish text
-- (text.from_html, gumbo) and PDFs page by page (text.from_pdf,
-- poppler's pdftotext through tide.exec).
local helpers = require "test.spec.helpers"
local core = require "tide.core"
local fs = require "tide.fs"
local text = require "tide.text"

local q = helpers.q

-- The file at relpath in dir, as fs.walk hands it to a component.
local function file_of(dir, relpath)
  for path, f in fs.walk(dir):items() do
    if path == relpath then return f end
  end
  error("no file " .. relpath)
end

-- The gzip compression of s, made by the gzip tool.
local function gzip(s)
  local dir = helpers.tmpdir()
  helpers.write(dir .. "/in", s)
  local _, err, code = helpers.run("gzip -n " .. q(dir .. "/in"))
  assert(code == 0, err)
  return helpers.read(dir .. "/in.gz")
end

local function err_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok)
  return err
end

-- A minimal valid PDF: one page per list of lines, Helvetica, with a
-- correct cross-reference table.
local function make_pdf(pages)
  local objs = {
    "<< /Type /Catalog /Pages 2 0 R >>", false,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  }
  local kids = {}
  for i, lines in ipairs(pages) do
    local page, content = 2 + 2 * i, 3 + 2 * i
    kids[i] = page .. " 0 R"
    local ops = { "BT /F1 14 Tf 72 720 Td 18 TL" }
    for _, l in ipairs(lines) do ops[#ops + 1] = "(" .. l .. ") Tj T*" end
    ops[#ops + 1] = "ET"
    local stream = table.concat(ops, "\n")
    objs[page] = ("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
      .. "/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>")
      :format(content)
    objs[content] = ("<< /Length %d >>\nstream\n%s\nendstream")
      :format(#stream, stream)
  end
  objs[2] = ("<< /Type /Pages /Kids [%s] /Count %d >>")
    :format(table.concat(kids, " "), #pages)
  local out, offsets = { "%PDF-1.4\n" }, {}
  local pos = #out[1]
  for i, o in ipairs(objs) do
    offsets[i] = pos
    out[#out + 1] = ("%d 0 obj\n%s\nendobj\n"):format(i, o)
    pos = pos + #out[#out]
  end
  out[#out + 1] = ("xref\n0 %d\n0000000000 65535 f \n"):format(#objs + 1)
  for _, off in ipairs(offsets) do
    out[#out + 1] = ("%010d 00000 n \n"):format(off)
  end
  out[#out + 1] = ("trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n"
    .. "%%%%EOF\n"):format(#objs + 1, pos)
  return table.concat(out)
end

describe("file:bytes and file:text with decompress", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  it("decompress a .gz file", function()
    local binary = "\0\1\2\255" .. ("tide "):rep(10000) .. "\0"
    helpers.write(dir .. "/data.bin.gz", gzip(binary))
    helpers.write(dir .. "/notes.txt.gz",
                  gzip("\xef\xbb\xbfcaf\xc3\xa9 \xff\n"))
    local f = file_of(dir, "data.bin.gz")
    assert.are.equal(binary, f:bytes { decompress = true })
    assert.are.equal(gzip(binary), f:bytes())
    assert.are.equal(gzip(binary), f:bytes { decompress = false })
    -- text: decompressed, then cleaned as file:text() cleans
    assert.are.equal("caf\xc3\xa9 \xef\xbf\xbd\n",
                     file_of(dir, "notes.txt.gz"):text { decompress = true })
  end)

  it("read concatenated members whole, and an empty one", function()
    helpers.write(dir .. "/two.gz", gzip("first\n") .. gzip("second\n"))
    helpers.write(dir .. "/empty.gz", gzip(""))
    assert.are.equal("first\nsecond\n",
                     file_of(dir, "two.gz"):text { decompress = true })
    assert.are.equal("", file_of(dir, "empty.gz"):bytes { decompress = true })
  end)

  it("return a file that is not gzip data as it is", function()
    helpers.write(dir .. "/plain.txt", "just text\n")
    helpers.write(dir .. "/empty.txt", "")
    helpers.write(dir .. "/one.txt", "\31")
    assert.are.equal("just text\n",
                     file_of(dir, "plain.txt"):text { decompress = true })
    assert.are.equal("", file_of(dir, "empty.txt"):bytes { decompress = true })
    assert.are.equal("\31", file_of(dir, "one.txt"):bytes { decompress = true })
  end)

  it("name the file when its gzip data is truncated or corrupt", function()
    local gz = gzip(("some text to compress "):rep(200))
    helpers.write(dir .. "/cut.gz", gz:sub(1, #gz // 2))
    -- The CRC-32 in the trailer no longer matches the content.
    local crc = #gz - 7
    helpers.write(dir .. "/crc.gz", gz:sub(1, crc - 1)
      .. string.char(gz:byte(crc) ~ 0xff) .. gz:sub(crc + 1))
    helpers.write(dir .. "/bad.gz", "\31\139\8\0\0\0\0\0\0\3garbage!!")
    helpers.write(dir .. "/tail.gz", gz .. "not gzip")
    local cut = file_of(dir, "cut.gz")
    assert.are.equal(cut.abs .. ": truncated gzip data (the stream ends "
      .. "early)", err_of(cut.text, cut, { decompress = true }))
    local f = file_of(dir, "crc.gz")
    assert.are.equal(f.abs .. ": corrupt gzip data (incorrect data check)",
                     err_of(f.bytes, f, { decompress = true }))
    f = file_of(dir, "bad.gz")
    assert.matches("^" .. f.abs:gsub("%p", "%%%0") .. ": corrupt gzip data %(",
                   err_of(f.bytes, f, { decompress = true }))
    f = file_of(dir, "tail.gz")
    assert.are.equal(f.abs .. ": unexpected data after the gzip stream (at "
      .. "byte " .. #gz .. ")", err_of(f.bytes, f, { decompress = true }))
    -- zero padding after the stream (as tar leaves) is fine
    helpers.write(dir .. "/padded.gz", gz .. ("\0"):rep(512))
    assert.are.equal(("some text to compress "):rep(200),
                     file_of(dir, "padded.gz"):text { decompress = true })
  end)

  it("cap the decompressed size (1 GiB by default)", function()
    assert.are.equal(1 << 30, core.gunzip_limit)
    local zeros = gzip(("\0"):rep(100000))
    assert.is_true(#zeros < 1000)
    local out, err = core.gunzip(zeros, "bomb.gz", 99999)
    assert.is_nil(out)
    assert.are.equal("bomb.gz: decompressed size exceeds the limit of 99999 "
                     .. "bytes", err)
    assert.are.equal(100000, #core.gunzip(zeros, "bomb.gz", 100000))
    assert.are.equal(100000, #core.gunzip(zeros, "bomb.gz"))
    out, err = core.gunzip("plain", "p.txt")
    assert.is_nil(out)
    assert.are.equal("p.txt: not gzip data", err)
  end)

  it("reject unknown options, naming them", function()
    helpers.write(dir .. "/a.txt", "a")
    local f = file_of(dir, "a.txt")
    assert.matches("file:text: unknown option decompres %(expected "
      .. "decompress%)", err_of(function() return f:text { decompres = true }
      end))
    assert.matches("file:bytes: unknown option level",
      err_of(function() return f:bytes { decompress = true, level = 9 } end))
    assert.matches("file:bytes: options must be a table, got string",
      err_of(function() return f:bytes("gz") end))
    assert.matches("file:text: decompress must be a boolean, got string",
      err_of(function() return f:text { decompress = "yes" } end))
  end)
end)

describe("text.from_html", function()
  it("keeps headings, paragraphs, lists, links, code and tables", function()
    local html = [[<!DOCTYPE html>
<html><head><title> Release
  notes </title>
<style>p { color: red }</style><script>document.write("<p>no</p>")</script>
</head><body>
<nav><a href="/">Home</a> <a href="/docs">Docs</a></nav>
<h1>tide &amp; friends</h1>
<p>Tide   keeps
   <em>derived</em> data <strong>fresh</strong>: see
<a href="https://example.org/a?b=1&amp;c=2">the guide</a>
&mdash; &lt;fast&gt;&nbsp;and&#32;small.</p>
<h2>Steps</h2>
<ol><li>Walk the files</li>
<li>Split them<ul><li>by headings</li>
<li>by <a href="#para">paragraphs</a></li></ul></li>
<li><p>Store the chunks</p></li></ol>
<pre><code class="language-lua">local x = 1
if x &lt; 2 then
    print("  spaced  ")
end
</code></pre>
<table><thead><tr><th>Name</th><th>Size</th></tr></thead>
<tbody><tr><td>a|b</td><td>1 KB</td></tr>
<tr><td>c</td><td>2 KB</td></tr></tbody></table>
<blockquote><p>Quoted words.</p></blockquote>
<div>One line</div><div>Another<br>broken line</div>
<p hidden>secret</p><noscript>enable js</noscript><!-- a comment -->
<p><img src="logo.png" alt="The logo"> and <code>tide.fn()</code></p>
</body></html>]]
    local out, title = text.from_html(html)
    assert.are.equal("Release notes", title)
    assert.are.equal(table.concat({
      "# tide & friends",
      "",
      "Tide keeps *derived* data **fresh**: see "
        .. "[the guide](https://example.org/a?b=1&c=2) \u{2014} "
        .. "<fast>\u{a0}and small.",
      "",
      "## Steps",
      "",
      "1. Walk the files",
      "2. Split them",
      "   - by headings",
      "   - by paragraphs",
      "3. Store the chunks",
      "",
      "```lua",
      "local x = 1",
      "if x < 2 then",
      "    print(\"  spaced  \")",
      "end",
      "```",
      "",
      "| Name | Size |",
      "| --- | --- |",
      "| a\\|b | 1 KB |",
      "| c | 2 KB |",
      "",
      "> Quoted words.",
      "",
      "One line",
      "Another",
      "broken line",
      "",
      "![The logo](logo.png) and `tide.fn()`",
      "",
    }, "\n"), out)
  end)

  it("collapses white space, drops empty markup, has no title", function()
    local out, title = text.from_html("  <p>  a \n\t b  </p><p></p>"
      .. "<p><em> </em>c<a href='x'></a></p>  ")
    assert.are.equal("a b\n\nc\n", out)
    assert.is_nil(title)
    assert.are.equal("", (text.from_html("")))
    assert.are.equal("", (text.from_html("<script>x()</script>")))
  end)

  it("fences a block holding backticks with a longer fence", function()
    assert.are.equal("````\nuse ``` here\n````\n",
                     (text.from_html("<pre>use ``` here</pre>")))
  end)

  it("reads 100,000 nested elements in linear time", function()
    for _, open in ipairs { "<div>", "<ul><li>", "<blockquote>",
                            "<table><tr><td>", "<div/>" } do
      local t0 = os.clock()
      local out = text.from_html(open:rep(100000) .. "deep text")
      assert.is_true(os.clock() - t0 < 5, open .. " took too long")
      assert.matches("deep text", out, 1, true)
    end
    assert.are.equal(512, core.html_max_depth)
  end)

  it("rejects what is not a string", function()
    assert.matches("text.from_html: expected a string, got nil",
                   err_of(text.from_html))
  end)
end)

describe("text.from_pdf", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  it("gives the text of each page with its number", function()
    helpers.write(dir .. "/doc.pdf", make_pdf {
      { "Hello page one.", "Second line (one)." }, {}, { "Page three." } })
    local pages = assert(text.from_pdf(dir .. "/doc.pdf"))
    assert.are.same({
      { page = 1, text = "Hello page one.\nSecond line (one).\n\n" },
      { page = 2, text = "" },
      { page = 3, text = "Page three.\n\n" },
    }, pages)
    -- a file from fs.walk, and the physical layout
    pages = assert(text.from_pdf(file_of(dir, "doc.pdf"), { layout = true }))
    assert.are.equal(3, #pages)
    assert.matches("^%s*Hello page one%.", pages[1].text)
  end)

  it("lets a pipeline split each page and keep the page", function()
    helpers.write(dir .. "/doc.pdf", make_pdf {
      { "Alpha one.", "Alpha two." }, { "Beta one." } })
    local found = {}
    for _, p in ipairs(assert(text.from_pdf(dir .. "/doc.pdf"))) do
      for _, c in ipairs(text.split(p.text, { size = 12 })) do
        found[#found + 1] = ("%d:%d:%s"):format(p.page, c.start.line,
                                                (c.text:gsub("%s+$", "")))
      end
    end
    assert.are.same({ "1:1:Alpha one.", "1:2:Alpha two.", "2:1:Beta one." },
                    found)
  end)

  it("names the file it cannot read", function()
    helpers.write(dir .. "/bad.pdf", "%PDF-1.4\nnot really\n")
    local pages, err = text.from_pdf(dir .. "/bad.pdf")
    assert.is_nil(pages)
    assert.matches("^text.from_pdf: " .. (dir .. "/bad.pdf"):gsub("%p", "%%%0")
                   .. ": pdftotext cannot read it %(.+%)$", err)
    pages, err = text.from_pdf(dir .. "/missing.pdf")
    assert.is_nil(pages)
    assert.matches("missing.pdf: pdftotext cannot read it", err, 1, true)
  end)

  it("names the package to install when pdftotext is missing", function()
    helpers.write(dir .. "/doc.pdf", make_pdf { { "x" } })
    helpers.write(dir .. "/script.lua", [[
local text = require "tide.text"
print(text.from_pdf(arg[1]))
]])
    local out, err, code = helpers.run(("cd %s && env PATH=/nonexistent "
      .. "%s run %s %s"):format(q(helpers.root), q(helpers.tide),
      q(dir .. "/script.lua"), q(dir .. "/doc.pdf")))
    assert.are.equal(0, code, err)
    assert.are.equal("nil\ttext.from_pdf: " .. dir .. "/doc.pdf: pdftotext "
      .. "is not installed (Debian: apt-get install poppler-utils)\n", out)
  end)

  it("rejects bad arguments", function()
    assert.matches("expected a file or a path, got number",
                   err_of(text.from_pdf, 1))
    assert.matches("unknown option pages %(expected layout or timeout%)",
                   err_of(text.from_pdf, "a.pdf", { pages = 1 }))
  end)
end)

describe("a pipeline over documents", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(helpers.cleanup)

  it("indexes .gz, .html and .pdf files into SQLite", function()
    helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local text = require "tide.text"
local Chunk = tide.record("Chunk", {
  { "id", "string", key = true },
  { "file", "string" },
  { "page", "integer" },
  { "line", "integer" },
  { "text", "string" },
})
local index = tide.fn("index", { memo = true }, function(file, chunks)
  local pages
  if file.path:match("%.pdf$") then
    pages = assert(text.from_pdf(file))
  else
    local s = file:text { decompress = true }
    if file.path:match("%.html?$") or file.path:match("%.html?%.gz$") then
      s = text.from_html(s)
    end
    pages = { { page = 1, text = s } }
  end
  for _, p in ipairs(pages) do
    for i, c in ipairs(text.split(p.text, { size = 20 })) do
      chunks:row(Chunk { id = ("%s#%d.%d"):format(file.path, p.page, i),
        file = file.path, page = p.page, line = c.start.line,
        text = (c.text:gsub("%s+$", "")) })
    end
  end
end)
return tide.app("docs", function()
  local chunks = sqlite.table { db = "out.db", name = "chunks",
                                schema = Chunk }
  tide.mount_each(index, fs.walk("docs"), chunks)
end)
]])
    helpers.write(dir .. "/docs/notes.md.gz", gzip("# Notes\n\nPlain words.\n"))
    helpers.write(dir .. "/docs/page.html", "<h1>Page</h1><ul><li>first"
      .. "</li><li><a href='/x'>second</a></li></ul><script>no()</script>")
    helpers.write(dir .. "/docs/old.html.gz",
                  gzip("<p>Zipped &amp; <b>bold</b></p>"))
    helpers.write(dir .. "/docs/doc.pdf", make_pdf { { "On page one." },
                                                     { "On page two." } })
    local out, err, code = helpers.run(("cd %s && %s update pipeline.lua "
      .. "--json"):format(q(dir), q(helpers.tide)))
    assert.are.equal(0, code, err)
    assert.matches('"added":4', out, 1, true)
    local rows = helpers.run(("sqlite3 %s %s"):format(q(dir .. "/out.db"),
      q("SELECT file, page, line, text FROM chunks ORDER BY id")))
    assert.are.equal(table.concat({
      "doc.pdf|1|1|On page one.",
      "doc.pdf|2|1|On page two.",
      "notes.md.gz|1|1|# Notes",
      "notes.md.gz|1|3|Plain words.",
      "old.html.gz|1|1|Zipped & **bold**",
      "page.html|1|1|# Page\n\n- first",
      "page.html|1|4|- [second](/x)",
      "",
    }, "\n"), rows)
    -- nothing changed: nothing runs again
    out, err, code = helpers.run(("cd %s && %s update pipeline.lua --json")
      :format(q(dir), q(helpers.tide)))
    assert.are.equal(0, code, err)
    assert.matches('"unchanged":4', out, 1, true)
  end)
end)
