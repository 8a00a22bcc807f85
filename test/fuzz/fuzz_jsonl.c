/*
** Fuzz target for the C reader of JSON Lines (jsonl.h), against the Lua
** reading it stands in for: any line must be taken or left; a line it
** takes must be one lua-cjson decodes and json.lua's normalize accepts
** (a copy of it below), with the same key, and whose object the encoder
** writes as the very bytes the reader made.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "cbor.h"
#include "jsonl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* json.lua's reading of one line keyed by "id": the object and its key
** text, or nothing when it would be an error. */
static const char lua_reading[] =
  "local cjson = require('cjson').new()\n"
  "cjson.decode_invalid_numbers(false)\n"
  "local null, EXACT = cjson.null, 2 ^ 53\n"
  "local function normalize(v)\n"
  "  for k, x in pairs(v) do\n"
  "    if type(x) == 'number' then\n"
  "      if math.type(x) == 'float' and x >= -EXACT and x <= EXACT then\n"
  "        v[k] = math.tointeger(x) or x\n"
  "      end\n"
  "    elseif type(x) == 'table' then\n"
  "      if normalize(x) then return true end\n"
  "    elseif x == null then\n"
  "      if math.type(k) == 'integer' then return true end\n"
  "      v[k] = nil\n"
  "    end\n"
  "  end\n"
  "end\n"
  "return function(line)\n"
  "  local start = line:find('%S')\n"
  "  if not start or line:sub(start, start) ~= '{' then return end\n"
  "  local ok, obj = pcall(cjson.decode, line)\n"
  "  if not ok or type(obj) ~= 'table' or normalize(obj) then return end\n"
  "  local k = obj.id\n"
  "  if type(k) == 'string' and k ~= '' then return obj, k end\n"
  "  if math.type(k) == 'integer' then return obj, tostring(k) end\n"
  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *nl = memchr(data, '\n', size);
  size_t len = nl ? (size_t)(nl - (const char *)data) : size;
  tide_JsonlValue v;
  lua_State *L;
  tide_CborEnc enc;
  const char *key;
  size_t key_len;
  int rc;
  tide_jsonl_value_init(&v, NULL, NULL);
  rc = tide_jsonl_read(&v, (const char *)data, len, "id", 2);
  if (rc != 0 && rc != 1) {
    fprintf(stderr, "reader failed: %d\n", rc);
    abort();
  }
  if (rc == 0) {
    tide_jsonl_value_close(&v);
    return 0;
  }
  L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_dostring(L, lua_reading) != LUA_OK) {
    fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_pushlstring(L, (const char *)data, len);
  lua_call(L, 1, 2);
  if (lua_isnil(L, -2)) {
    fprintf(stderr, "taken in C, an error in Lua\n");
    abort();
  }
  key = lua_tolstring(L, -1, &key_len);
  if (key_len != v.key.len || memcmp(key, v.key.data, key_len) != 0) {
    fprintf(stderr, "the keys differ\n");
    abort();
  }
  tide_cbor_enc_init(&enc, NULL, NULL);
  if (tide_cbor_encode(&enc, L, -2) != 0 || enc.out.len != v.out.len ||
      memcmp(enc.out.data, v.out.data, v.out.len) != 0) {
    fprintf(stderr, "the encodings differ\n");
    abort();
  }
  tide_cbor_enc_close(&enc);
  tide_jsonl_value_close(&v);
  lua_close(L);
  return 0;
}
