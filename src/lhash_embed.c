/*
** The Lua binding of the hash embedding (hash_embed.h), which
** ai.hash_embedder wraps:
**   core.hash_embed(text, dims) -> { dims numbers }
**   core.hash_embed_many(texts, dims) -> { { dims numbers }... }, one list
**     per string of the list texts, in order
**   core.hash_embed_version: TIDE_HASH_EMBED_VERSION, for fingerprints.
** Each number is a float32 value held in a double. Misuse raises: a text
** that is not a string, dims not an integer in 1..65536. Nothing else can
** fail but memory, which raises as Lua's own allocations do. The float32
** scratch vector is a userdata, so a raise never leaks it.
*/
#include <lauxlib.h>
#include <lua.h>

#include "hash_embed.h"
#include "lcore.h"

/* dims at arg, raising when it is out of range. [-0, +0, v] */
static size_t check_dims(lua_State *L, int arg) {
  lua_Integer dims = luaL_checkinteger(L, arg);
  if (dims < 1 || dims > TIDE_HASH_EMBED_MAX_DIMS) {
    luaL_argerror(L, arg, lua_pushfstring(L, "dims must be between 1 and "
                                          "%d", TIDE_HASH_EMBED_MAX_DIMS));
  }
  return (size_t)dims;
}

/* Embeds the string at idx into scratch and pushes it as a list.
** [-0, +1, m] */
static void push_embedding(lua_State *L, int idx, float *scratch,
                           size_t dims) {
  size_t len, i;
  const char *text = lua_tolstring(L, idx, &len);
  tide_hash_embed(text, len, scratch, dims);
  lua_createtable(L, (int)dims, 0);
  for (i = 0; i < dims; i++) {
    lua_pushnumber(L, (lua_Number)scratch[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* hash_embed(text, dims) -> list of dims numbers */
static int hash_embed(lua_State *L) {
  size_t dims;
  float *scratch;
  luaL_checktype(L, 1, LUA_TSTRING);
  dims = check_dims(L, 2);
  scratch = lua_newuserdatauv(L, dims * sizeof *scratch, 0);
  push_embedding(L, 1, scratch, dims);
  return 1;
}

/* hash_embed_many(texts, dims) -> list of lists */
static int hash_embed_many(lua_State *L) {
  size_t dims;
  float *scratch;
  lua_Integer n, i;
  luaL_checktype(L, 1, LUA_TTABLE);
  dims = check_dims(L, 2);
  n = (lua_Integer)lua_rawlen(L, 1);
  for (i = 1; i <= n; i++) {
    if (lua_rawgeti(L, 1, i) != LUA_TSTRING) {
      luaL_argerror(L, 1, lua_pushfstring(L, "item %I is a %s, not a "
                                          "string", i, luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
  }
  scratch = lua_newuserdatauv(L, dims * sizeof *scratch, 0);
  lua_createtable(L, n < 0x7fffffff ? (int)n : 0, 0);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    push_embedding(L, -1, scratch, dims);
    lua_rawseti(L, -3, i);
    lua_pop(L, 1);
  }
  return 1;
}

void tide_lhash_embed_open(lua_State *L) {
  lua_pushcfunction(L, hash_embed);
  lua_setfield(L, -2, "hash_embed");
  lua_pushcfunction(L, hash_embed_many);
  lua_setfield(L, -2, "hash_embed_many");
  lua_pushinteger(L, TIDE_HASH_EMBED_VERSION);
  lua_setfield(L, -2, "hash_embed_version");
}
