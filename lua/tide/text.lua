--[[
tide.text: language-aware text splitting and language detection. The
work is done in C (src/split.c, src/language.c); this module checks
arguments and keeps the languages a program defines.

text.split(s, { size, overlap, min_size, language }) -> { chunk, ... }

  Cuts s into chunks of at most `size` bytes (overlap included), at the
  coarsest boundaries that keep them within size: the language's
  separators, coarse to fine; blank lines; line breaks; sentence ends
  (". ", "? ", "! ", and 。？！); clause punctuation (", ", "; ", ": ",
  and 、，；：); spaces; and as a last resort code point boundaries (a
  word longer than size is cut there, never inside a UTF-8 sequence; a
  single code point longer than size is a chunk of its own). An invalid
  UTF-8 byte counts as one code point.

  size      bytes, a positive integer (required)
  overlap   bytes repeated from the end of the previous chunk, starting
            at a word (after white space or CJK punctuation); at most
            min_size and less than size; default 0
  min_size  chunks shorter than this are penalised; at most size;
            default size // 2
  language  a name from text.language() or text.language_def();
            default plain text

  A chunk is { text, start = pos, stop = pos } where pos is
  { byte, char, line, column }. Bytes are 1-based like string.sub, and
  stop is inclusive: chunk.text == s:sub(start.byte, stop.byte). char
  counts code points from 1; line and column are 1-based, the column in
  code points. stop describes the chunk's last code point (its byte is
  that code point's last byte). With overlap 0, the chunks' texts
  concatenated give s back; with an overlap, s:sub(prev.stop.byte + 1,
  stop.byte) of each chunk does. Empty input gives an empty list.

  How cuts are chosen: a dynamic program over the candidate cuts
  minimises the sum of chunk costs. A chunk costs 0.25, plus a balance
  term (up to 0.25) pulling its length toward the average the text
  needs, plus under min_size a penalty rising to the weight of a
  blank-line cut at length 0; the cut ending it costs 3^level, level
  counting from 0 for the coarsest language separator, so a finer cut
  costs three coarser ones. Finer candidates are only considered inside
  stretches the coarser ones cannot cut within size.

text.language(filename) -> name or nil

  The language of a file from its base name (Makefile, Dockerfile,
  CMakeLists.txt ...) or extension (case-insensitive): "markdown", "c",
  "cpp", "lua", "python", ... Languages defined with language_def win
  over built-in ones.

text.language_def{ name, extensions, filenames, separators, comments,
                   fences } -> name

  Defines (or redefines) a language for split and language.
  separators lists levels coarse to fine; a level is a string or a list
  of strings. Separators are plain strings, not patterns:
    "^text"  text at the start of a line (column 1); "\ntext" is the same
    "text"   text anywhere
  The cut goes before the match. The separator "\n\n" stands for blank
  lines and places them at its level (by default they come after all
  the language's levels). When several separators match at one place,
  the longest decides the level.
  comments: line prefixes (after indentation) of comment or annotation
    lines; such lines directly above a separator's match go with it.
  fences: line prefixes (column 1) opening and closing blocks, such as
    "```", that are kept whole when they fit: inside them no separator
    applies and blank lines count as plain line breaks.
  extensions: "rst" or ".rst"; filenames: whole base names.

text.languages() -> the sorted names of all languages

text.from_html(s) -> text, title | nil, message

  HTML (taken as UTF-8) as Markdown-ish text, through gumbo in C
  (src/html_text.h says exactly what is kept): headings as `# ...`,
  paragraphs separated by blank lines, lists as `- ` and `1. ` (nested ones
  indented), links as [text](href), <pre> as fenced blocks kept verbatim,
  *em*, **strong**, `code`, tables as `| a | b |` rows, blockquotes as
  `> `. head, script, style, nav, svg, forms' controls, hidden elements
  and comments are dropped; entities are decoded; white space collapses
  as a browser's does. title is the <title> (nil without one). The text
  ends with a newline unless it is empty. Nesting deeper than 512
  elements is flattened (its text kept), so any input parses in linear
  time. nil and a message for an input over 1 GiB.

text.from_pdf(file_or_path [, { layout, timeout }]) -> pages | nil, message

  The text of a PDF, page by page, extracted by poppler's pdftotext
  (Debian package poppler-utils) run through tide.exec: inside a
  component it waits without blocking the others. pages is a list of
  { page = n, text = "..." }, one per page in order, empty pages
  included (text ""), so that a pipeline can split each page's text with
  text.split and keep page and line numbers. layout = true keeps the
  physical layout (columns side by side, as pdftotext -layout) instead of
  the reading order; timeout (seconds) kills pdftotext when it runs
  longer. file_or_path is an fs.walk file or a path. A missing pdftotext,
  a file pdftotext cannot read (not a PDF, damaged, encrypted) or a
  timeout return nil and a message naming the file.
]]

local core = require "tide.core"

local error, ipairs, pairs, tostring, type, getmetatable =
  error, ipairs, pairs, tostring, type, getmetatable
local format, lower = string.format, string.lower
local tointeger = math.tointeger
local sort = table.sort

local M = {}

-- Compiled languages by name: those defined here, and built-in ones
-- compiled on first use.
local defined = {}
local builtin = {}
-- Lower-case base names and extensions (no dot) of defined languages.
local by_filename, by_extension = {}, {}

local function compiled(name)
  local lang = defined[name] or builtin[name]
  if lang == nil then
    lang = core.split_language(name)
    builtin[name] = lang
  end
  return lang
end

local split_options = { size = true, overlap = true, min_size = true,
                        language = true }

local function integer_option(opts, key, default, least)
  local v = opts[key]
  if v == nil and default ~= nil then return default end
  local i = type(v) == "number" and tointeger(v)
  if not i or i < least then
    error(format("text.split: %s must be a %s integer", key,
                 least > 0 and "positive" or "non-negative"), 3)
  end
  return i
end

function M.split(s, opts)
  if type(s) ~= "string" then
    error(format("text.split: expected a string, got %s", type(s)), 2)
  end
  if type(opts) ~= "table" then
    error("text.split: expected an options table { size = ... }", 2)
  end
  for k in pairs(opts) do
    if not split_options[k] then
      error(format("text.split: unknown option '%s'", tostring(k)), 2)
    end
  end
  local size = integer_option(opts, "size", nil, 1)
  local overlap = integer_option(opts, "overlap", 0, 0)
  local min_size = integer_option(opts, "min_size", size // 2, 0)
  if min_size > size then
    error("text.split: min_size must be at most size", 2)
  end
  if overlap > min_size then
    error("text.split: overlap must be at most min_size", 2)
  end
  if overlap >= size then
    error("text.split: overlap must be less than size", 2)
  end
  local lang, name = nil, opts.language
  if name ~= nil then
    if type(name) ~= "string" then
      error("text.split: language must be a string", 2)
    end
    lang = compiled(name)
    if lang == nil then
      error(format("text.split: unknown language '%s'", name), 2)
    end
  end
  return core.split(s, size, overlap, min_size, lang)
end

function M.language(filename)
  if type(filename) ~= "string" then
    error(format("text.language: expected a file name, got %s",
                 type(filename)), 2)
  end
  return core.language(filename, by_filename, by_extension)
end

local def_fields = { name = true, extensions = true, filenames = true,
                     separators = true, comments = true, fences = true }

-- A list of strings from the field, checked.
local function string_list(def, key)
  local v = def[key]
  if v == nil then return {} end
  if type(v) ~= "table" then
    error(format("text.language_def: %s must be a list of strings", key), 3)
  end
  for i, s in ipairs(v) do
    if type(s) ~= "string" then
      error(format("text.language_def: %s[%d] must be a string", key, i), 3)
    end
  end
  return v
end

function M.language_def(def)
  if type(def) ~= "table" then
    error("text.language_def: expected a table { name = ..., separators "
          .. "= ... }", 2)
  end
  for k in pairs(def) do
    if not def_fields[k] then
      error(format("text.language_def: unknown field '%s'", tostring(k)), 2)
    end
  end
  local name = def.name
  if type(name) ~= "string" or name == "" then
    error("text.language_def: name must be a non-empty string", 2)
  end
  local levels = {}
  local separators = def.separators or {}
  if type(separators) ~= "table" then
    error("text.language_def: separators must be a list of levels", 2)
  end
  for i, level in ipairs(separators) do
    if type(level) == "string" then
      levels[i] = { level }
    elseif type(level) == "table" then
      for j, s in ipairs(level) do
        if type(s) ~= "string" then
          error(format("text.language_def: separators[%d][%d] must be a "
                       .. "string", i, j), 2)
        end
      end
      levels[i] = level
    else
      error(format("text.language_def: separators[%d] must be a string "
                   .. "or a list of strings", i), 2)
    end
  end
  local extensions = string_list(def, "extensions")
  local filenames = string_list(def, "filenames")
  local lang, why, kind, text = core.split_compile(levels,
    string_list(def, "comments"), string_list(def, "fences"))
  if lang == nil then
    error(format("text.language_def: %s %q %s", kind or "language",
                 text or name, why), 2)
  end
  defined[name] = lang
  for _, ext in ipairs(extensions) do
    by_extension[lower(ext:match("^%.?(.*)$"))] = name
  end
  for _, filename in ipairs(filenames) do
    by_filename[lower(filename)] = name
  end
  return name
end

function M.from_html(s)
  if type(s) ~= "string" then
    error(format("text.from_html: expected a string, got %s", type(s)), 2)
  end
  local out, title = core.html_text(s)
  if out == nil then return nil, "text.from_html: " .. title end
  return out, title
end

local pdf_options = { layout = true, timeout = true }

function M.from_pdf(file, opts)
  local path
  if type(file) == "string" then
    path = file
  elseif getmetatable(file) == require("tide.fs").File then
    path = file.abs
  else
    error(format("text.from_pdf: expected a file or a path, got %s",
                 type(file)), 2)
  end
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error(format("text.from_pdf: options must be a table, got %s",
                 type(opts)), 2)
  end
  for k in pairs(opts) do
    if not pdf_options[k] then
      error(format("text.from_pdf: unknown option %s (expected layout or "
                   .. "timeout)", tostring(k)), 2)
    end
  end
  if opts.layout ~= nil and type(opts.layout) ~= "boolean" then
    error("text.from_pdf: layout must be a boolean", 2)
  end
  local timeout = opts.timeout
  if timeout ~= nil and (type(timeout) ~= "number" or not (timeout > 0)) then
    error("text.from_pdf: timeout must be a positive number of seconds", 2)
  end
  local argv = { "pdftotext", "-enc", "UTF-8" }
  if opts.layout then argv[#argv + 1] = "-layout" end
  -- A relative path starting with "-" would be read as an option.
  argv[#argv + 1] = path:sub(1, 1) == "-" and "./" .. path or path
  argv[#argv + 1] = "-"
  local r, err = core.exec(argv, { timeout = timeout })
  if r == nil then
    if err:find("cannot run pdftotext: no such file or directory", 1, true)
    then
      return nil, format("text.from_pdf: %s: pdftotext is not installed "
        .. "(Debian: apt-get install poppler-utils)", path)
    end
    return nil, format("text.from_pdf: %s: %s", path, err)
  end
  if r.status ~= 0 then
    -- pdftotext's last line of errors says the most: "Couldn't read
    -- xref table", "Incorrect password".
    local why = r.stderr:match("([^\n]+)\n*$")
    return nil, format("text.from_pdf: %s: pdftotext cannot read it (%s)",
      path, why or (r.signal and "killed by signal " .. r.signal)
                or "exit status " .. tostring(r.status))
  end
  local pages, out = {}, r.stdout
  local at, n = 1, 0
  while true do
    local ff = out:find("\f", at, true)
    if not ff then break end
    n = n + 1
    pages[n] = { page = n, text = core.utf8_clean(out:sub(at, ff - 1)) }
    at = ff + 1
  end
  if at <= #out then
    -- Text after the last form feed: a page pdftotext did not close.
    n = n + 1
    pages[n] = { page = n, text = core.utf8_clean(out:sub(at)) }
  end
  return pages
end

function M.languages()
  local names, seen = {}, {}
  for _, name in ipairs(core.split_languages()) do seen[name] = true end
  for name in pairs(defined) do seen[name] = true end
  for name in pairs(seen) do names[#names + 1] = name end
  sort(names)
  return names
end

return M
