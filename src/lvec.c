/*
** Lua binding of the vector helpers the model code needs in C:
**
** vector_f32(list [, dims]) -> a new list | nil, message
**   The numbers of list rounded to float32 (what a tide.vector stores),
**   checked: a list of dims numbers (any length >= 1 without dims), each
**   finite once rounded. Doing this in C saves the model functions a Lua
**   loop over every element of every vector, and their memo entries hold
**   4-byte floats (cbor.h writes a float32-exact double in 5 bytes).
**   The message names the element: "[3] is not a number (a string)",
**   "[7] is not finite as a float32", "has 5 numbers, not 8".
*/
#include <math.h>

#include <lauxlib.h>
#include <lua.h>

#include "lcore.h"

/* Pushes nil and the message (already pushed above the result list). */
static int fail(lua_State *L) {
  luaL_pushfail(L);
  lua_insert(L, -2);
  return 2;
}

/* vector_f32(list [, dims]) */
static int vector_f32(lua_State *L) {
  lua_Integer dims = luaL_optinteger(L, 2, 0), n, i;
  if (lua_type(L, 1) != LUA_TTABLE) {
    luaL_pushfail(L);
    lua_pushfstring(L, "is not a list of numbers (a %s)", luaL_typename(L, 1));
    return 2;
  }
  n = (lua_Integer)lua_rawlen(L, 1);
  if (n == 0) {
    lua_pushliteral(L, "is an empty list");
    return fail(L);
  }
  if (dims > 0 && n != dims) {
    luaL_pushfail(L);
    lua_pushfstring(L, "has %I numbers, not %I", (LUAI_UACINT)n,
                    (LUAI_UACINT)dims);
    return 2;
  }
  lua_createtable(L, (int)n, 0);
  for (i = 1; i <= n; i++) {
    int isnum;
    lua_Number x;
    float f;
    lua_rawgeti(L, 1, i);
    x = lua_tonumberx(L, -1, &isnum);
    if (!isnum || lua_type(L, -1) != LUA_TNUMBER) {
      lua_pushfstring(L, "[%I] is not a number (a %s)", (LUAI_UACINT)i,
                      luaL_typename(L, -1));
      return fail(L);
    }
    lua_pop(L, 1);
    f = (float)x;
    if (!isfinite(f)) {
      lua_pushfstring(L, "[%I] is not finite as a float32", (LUAI_UACINT)i);
      return fail(L);
    }
    lua_pushnumber(L, (lua_Number)f);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

void tide_lvec_open(lua_State *L) {
  lua_pushcfunction(L, vector_f32);
  lua_setfield(L, -2, "vector_f32");
}
