-- examples/code_index, run as a user runs it: from a copy of its folder,
-- on a small source tree written here (CODE_INDEX_SRC) and on this
-- repository's src/.
local helpers = require "test.spec.helpers"
local cjson = require "cjson"

local q = helpers.q
local concat = table.concat

-- Three C functions of 600 to 700 bytes with blank lines inside them:
-- no two fit in one chunk of 1200 bytes, so the C splitter cuts between
-- them, where cutting at blank lines alone would cut inside one.
local RING_C = [==[
/* A fixed-size ring buffer of bytes. */
#include <string.h>

#include "ring.h"

/* Sets up an empty ring over the caller's storage; cap must be a power
** of two so that positions wrap with a mask instead of a division. */
int ring_init(ring_t *r, unsigned char *storage, size_t cap) {
  if (r == NULL || storage == NULL) return -1;
  if (cap == 0 || (cap & (cap - 1)) != 0) return -2;

  r->data = storage;
  r->cap = cap;
  r->head = 0;
  r->tail = 0;
  r->pushed = 0;
  r->popped = 0;
  r->dropped = 0;

  memset(storage, 0, cap);
  /* Positions grow without bound and are masked on access, so a full
  ** ring (head - tail == cap) and an empty one (head == tail) differ,
  ** and no slot has to be left unused to tell them apart. */
  return 0;
}

/* Appends len bytes; what does not fit is counted in dropped and the
** number of bytes actually stored is returned. */
size_t ring_push(ring_t *r, const unsigned char *src, size_t len) {
  size_t room = r->cap - (r->head - r->tail);
  size_t n = len < room ? len : room;
  size_t i;
  for (i = 0; i < n; i++) {
    r->data[(r->head + i) & (r->cap - 1)] = src[i];
  }

  r->head += n;
  r->pushed += n;
  r->dropped += len - n;
  /* A caller that needs every byte checks the return value against len
  ** and waits for ring_pop to make room before pushing the rest; one
  ** that streams samples lets the oldest go and reads dropped later. */
  return n;
}

size_t ring_pop(ring_t *r, unsigned char *dst, size_t len) {
  /* Up to len bytes go into dst, oldest first; an empty ring gives 0
  ** and leaves dst untouched. */
  size_t avail = r->head - r->tail;
  size_t n = len < avail ? len : avail;
  size_t i;
  for (i = 0; i < n; i++) {
    dst[i] = r->data[(r->tail + i) & (r->cap - 1)];
  }

  r->tail += n;
  r->popped += n;
  /* When the ring becomes empty both positions go back to zero, which
  ** keeps them small in long-running programs; the mask alone would
  ** handle the wrap, so this is only for readable debugger output. */
  if (r->tail == r->head) r->head = r->tail = 0;
  return n;
}
]==]

local RING_H = [==[
#ifndef RING_H
#define RING_H

#include <stddef.h>

typedef struct ring_t {
  unsigned char *data;
  size_t cap, head, tail;
  size_t pushed, popped, dropped;
} ring_t;

int ring_init(ring_t *r, unsigned char *storage, size_t cap);
size_t ring_push(ring_t *r, const unsigned char *src, size_t len);
size_t ring_pop(ring_t *r, unsigned char *dst, size_t len);

#endif
]==]

-- Two Lua functions, the second with blank lines inside: the Lua
-- splitter cuts between them, blank lines alone would cut in the second.
local WORDFREQ_LUA = [==[
-- Word frequencies of a text, and the most frequent words.
local M = {}

local lower, gmatch = string.lower, string.gmatch
local sort = table.sort

-- Counts each word of s, case folded; words are runs of letters, digits
-- and apostrophes, so "don't" is one word and "well-known" is two.
function M.count(s, counts)
  counts = counts or {}
  local total = 0
  for word in gmatch(lower(s), "[%w']+") do
    counts[word] = (counts[word] or 0) + 1
    total = total + 1
  end
  return counts, total
end

-- The n most frequent words of counts, most frequent first; ties are
-- broken alphabetically so that the result does not depend on the
-- order in which pairs() happens to visit the table.
function M.top(counts, n)
  local words = {}
  for word in pairs(counts) do words[#words + 1] = word end
  sort(words, function(a, b)
    if counts[a] ~= counts[b] then return counts[a] > counts[b] end
    return a < b
  end)

  -- Sorting every word costs n log n in the number of distinct words;
  -- a heap of size n would be cheaper for a short top list out of a
  -- large vocabulary, but texts here are small and this is simpler to
  -- read, so the whole list is sorted and then cut.
  local result = {}
  for i = 1, math.min(n, #words) do
    result[i] = { word = words[i], count = counts[words[i]] }
  end

  -- A list of records rather than two parallel lists: callers print
  -- them or turn them into JSON, and both read better this way.
  return result
end

return M
]==]

-- Copies the example's folder without its state or output.
local function copy_example()
  local dir = helpers.tmpdir()
  os.execute(("cp -r %s/examples/code_index/. %s && rm -rf %s/.tide %s/out")
    :format(q(helpers.root), q(dir), q(dir), q(dir)))
  return dir
end

-- The fixture tree: three source files and two files it must not index.
local function write_sources()
  local src = helpers.tmpdir()
  helpers.write(src .. "/ring.c", RING_C)
  helpers.write(src .. "/include/ring.h", RING_H)
  helpers.write(src .. "/lua/wordfreq.lua", WORDFREQ_LUA)
  helpers.write(src .. "/README.txt", "A ring buffer and word counts.\n")
  helpers.write(src .. "/notes.xyz", "int not_code(void) { return 0; }\n")
  return src
end

-- `tide update main.lua --json` in dir on the tree src.
local function update(dir, src)
  local out, err, code = helpers.run(
    ("cd %s && CODE_INDEX_SRC=%s %s update main.lua --json")
    :format(q(dir), q(src), q(helpers.tide)))
  assert.are.equal(0, code, err)
  return cjson.decode(out)
end

local function sql(db, query)
  local out, err, code = helpers.run(("sqlite3 -separator '|' %s %s")
    :format(q(db), q(query)))
  assert(code == 0, err)
  return out
end

-- The rows of the chunks table, in file and line order, as a list and
-- by id.
local function chunks(dir, where)
  local list, by_id = {}, {}
  local out = sql(dir .. "/out/code.db", "SELECT id, file, language, "
    .. "line_start, line_end, hex(text) FROM chunks "
    .. (where and "WHERE " .. where .. " " or "")
    .. "ORDER BY file, line_start")
  for line in out:gmatch("[^\n]+") do
    local id, file, language, a, b, hex =
      line:match("^([^|]*)|([^|]*)|([^|]*)|(%d+)|(%d+)|(%x*)$")
    local row = { id = id, file = file, language = language,
                  line_start = tonumber(a), line_end = tonumber(b),
                  text = helpers.unhex(hex) }
    list[#list + 1], by_id[id] = row, row
  end
  return list, by_id
end

local function lines_of(s)
  local lines = {}
  for l in s:gmatch("[^\n]*\n?") do
    if l ~= "" then lines[#lines + 1] = l end
  end
  return lines
end

-- The number of the first line of s that starts with prefix.
local function line_of(s, prefix)
  for i, l in ipairs(lines_of(s)) do
    if l:sub(1, #prefix) == prefix then return i end
  end
  error("no line starts with " .. prefix)
end

-- A file's chunks are exact: each one's text is its lines line_start to
-- line_end, ids count from 1 in line order, and together they give the
-- file back.
local function check_exact(content, rows)
  local lines, texts = lines_of(content), {}
  for i, row in ipairs(rows) do
    assert.are.equal(row.file .. "#" .. i, row.id)
    assert.are.equal(concat(lines, "", row.line_start, row.line_end),
                     row.text)
    texts[i] = row.text
  end
  assert.are.equal(content, concat(texts))
end

-- The line ranges of rows, { { line_start, line_end }, ... }.
local function ranges(rows)
  local r = {}
  for i, row in ipairs(rows) do r[i] = { row.line_start, row.line_end } end
  return r
end

describe("examples/code_index", function()
  after_each(helpers.cleanup)

  it("indexes each source file in chunks cut at function boundaries", function()
    local dir, src = copy_example(), write_sources()
    local stats = update(dir, src)
    assert.are.same({ added = 3, reprocessed = 0, deleted = 0, unchanged = 0,
                      errors = 0 }, stats.components)
    assert.are.same({ inserted = 6, updated = 0, deleted = 0 }, stats.targets)
    local rows = chunks(dir)
    assert.are.equal(stats.targets.inserted, #rows)
    -- README.txt and notes.xyz give no rows; .h is C.
    local languages = {}
    for _, row in ipairs(rows) do
      languages[row.file] = languages[row.file] or {}
      languages[row.file][row.language] = true
    end
    assert.are.same({ ["ring.c"] = { c = true },
                      ["include/ring.h"] = { c = true },
                      ["lua/wordfreq.lua"] = { lua = true } }, languages)
    -- C: the second chunk starts with the comment above ring_push, the
    -- third on ring_pop's signature.
    local push = line_of(RING_C, "/* Appends len bytes")
    local pop = line_of(RING_C, "size_t ring_pop(")
    local last = #lines_of(RING_C)
    local c_rows = chunks(dir, "file = 'ring.c'")
    assert.are.same({ { 1, push - 1 }, { push, pop - 1 }, { pop, last } },
                    ranges(c_rows))
    check_exact(RING_C, c_rows)
    local top = line_of(WORDFREQ_LUA, "-- The n most frequent")
    local lua_rows = chunks(dir, "file = 'lua/wordfreq.lua'")
    assert.are.same({ { 1, top - 1 }, { top, #lines_of(WORDFREQ_LUA) } },
                    ranges(lua_rows))
    check_exact(WORDFREQ_LUA, lua_rows)
    local h_rows = chunks(dir, "file = 'include/ring.h'")
    assert.are.same({ { 1, #lines_of(RING_H) } }, ranges(h_rows))
    check_exact(RING_H, h_rows)
    -- Nothing changed: nothing runs, nothing is written.
    stats = update(dir, src)
    assert.are.same({ added = 0, reprocessed = 0, deleted = 0, unchanged = 3,
                      errors = 0 }, stats.components)
    assert.are.same({ inserted = 0, updated = 0, deleted = 0 }, stats.targets)
  end)

  it("reprocesses one edited file, writes only its changed chunks", function()
    local dir, src = copy_example(), write_sources()
    update(dir, src)
    local _, before = chunks(dir)
    -- One line of ring_push's body, edited in place: one chunk's text.
    local edited = RING_C:gsub("r%->dropped %+= len %- n;",
                               "r->dropped += len > n ? len - n : 0;")
    assert.are_not.equal(RING_C, edited)
    helpers.write(src .. "/ring.c", edited)
    local stats = update(dir, src)
    assert.are.same({ added = 0, reprocessed = 1, deleted = 0, unchanged = 2,
                      errors = 0 }, stats.components)
    assert.are.same({ inserted = 0, updated = 1, deleted = 0 }, stats.targets)
    assert.are.same({ calls = 1, hits = 0, misses = 1, errors = 0 },
                    stats.functions.split)
    local rows, after = chunks(dir)
    for id, row in pairs(before) do
      if id ~= "ring.c#2" then assert.are.same(row, after[id]) end
    end
    assert.are_not.equal(before["ring.c#2"].text, after["ring.c#2"].text)
    assert.are.equal(6, #rows)
    check_exact(edited, chunks(dir, "file = 'ring.c'"))
    -- A line added to ring_init: its chunk's text changes, and the two
    -- below it move down one line, so all three are written.
    local longer = edited:gsub("  r%->dropped = 0;\n",
                               "  r->dropped = 0;\n  r->spare = 0;\n")
    helpers.write(src .. "/ring.c", longer)
    stats = update(dir, src)
    assert.are.same({ added = 0, reprocessed = 1, deleted = 0, unchanged = 2,
                      errors = 0 }, stats.components)
    assert.are.same({ inserted = 0, updated = 3, deleted = 0 }, stats.targets)
    local c_rows = chunks(dir, "file = 'ring.c'")
    assert.are.equal(before["ring.c#3"].line_start + 1, c_rows[3].line_start)
    check_exact(longer, c_rows)
  end)

  it("indexes this repository's src/", function()
    local dir, src = copy_example(), helpers.root .. "/src"
    -- The files the example's include globs select.
    local listing = helpers.run(("find %s -type f -name '*.[ch]' -o -type f "
      .. "-name '*.lua' -o -type f -name '*.py' -o -type f -name '*.js' -o "
      .. "-type f -name '*.go' -o -type f -name '*.rs' -o -type f -name "
      .. "'*.sh'"):format(q(src)))
    local files = select(2, listing:gsub("\n", ""))
    assert.is_true(files > 10)
    local stats = update(dir, src)
    assert.are.same({ added = files, reprocessed = 0, deleted = 0,
                      unchanged = 0, errors = 0 }, stats.components)
    local count = tonumber(sql(dir .. "/out/code.db",
                               "SELECT count(*) FROM chunks"):match("%d+"))
    assert.are.equal(count, stats.targets.inserted)
    local rows = chunks(dir, "file = 'cbor.c'")
    assert.is_true(#rows > 1)
    for _, row in ipairs(rows) do
      assert.are.equal("c", row.language)
      assert.is_true(#row.text <= 1200)
    end
    check_exact(helpers.read(src .. "/cbor.c"), rows)
  end)
end)
