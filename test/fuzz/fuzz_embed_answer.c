/*
** Fuzz target for the C reader of embeddings answers (embed_answer.h),
** against lua-cjson reading the same bytes: an answer the reader takes
** must be one lua-cjson decodes, holding the same vectors, number for
** number once rounded to float32 (in the OpenAI shape, ordered by index
** when there is one). A reader failure other than a refusal aborts.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "embed_answer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The vectors lua-cjson reads, as float32s packed in a string, or
** nothing when it cannot read them. */
static const char lua_reading[] =
  "local cjson = require('cjson').new()\n"
  "cjson.decode_invalid_numbers(false)\n"
  "return function(body)\n"
  "  local ok, obj = pcall(cjson.decode, body)\n"
  "  if not ok or type(obj) ~= 'table' then return end\n"
  "  local list = obj.embeddings\n"
  "  if obj.data ~= nil then\n"
  "    list = {}\n"
  "    for i, e in ipairs(obj.data) do\n"
  "      list[(type(e.index) == 'number' and e.index or i - 1) + 1] =\n"
  "        e.embedding\n"
  "    end\n"
  "  end\n"
  "  local out = {}\n"
  "  for _, v in ipairs(list or {}) do\n"
  "    for _, x in ipairs(v) do out[#out + 1] = string.pack('<f', x) end\n"
  "  end\n"
  "  return table.concat(out)\n"
  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tide_EmbedAnswer a;
  lua_State *L;
  const char *floats;
  size_t len;
  int rc;
  tide_embed_answer_init(&a, tide_alloc_default, NULL);
  rc = tide_embed_answer_read(&a, (const char *)data, size);
  if (rc != 0 && rc != TIDE_EINVAL) {
    fprintf(stderr, "reader failed: %d\n", rc);
    abort();
  }
  if (rc != 0) {
    tide_embed_answer_close(&a);
    return 0;
  }
  L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_dostring(L, lua_reading) != LUA_OK) {
    fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_pushlstring(L, (const char *)data, size);
  lua_call(L, 1, 1);
  floats = lua_tolstring(L, -1, &len);
  if (floats == NULL) {
    fprintf(stderr, "taken in C, not read by lua-cjson\n");
    abort();
  }
  if (len != a.floats.len ||
      (len > 0 && memcmp(floats, a.floats.data, len) != 0)) {
    fprintf(stderr, "the vectors differ\n");
    abort();
  }
  lua_close(L);
  tide_embed_answer_close(&a);
  return 0;
}
