/*
** The one way C enters Lua code: a protected call under a message handler
** that adds a traceback (as lua.c does), used by the tide host (main.c),
** the C API (host.c) and every binding that calls back into a pipeline.
*/
#include <lauxlib.h>
#include <lua.h>

#include "lcore.h"

static int message_handler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int tide_lua_pcall(lua_State *L, int nargs, int nres) {
  int status, base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, message_handler);
  lua_insert(L, base);
  status = lua_pcall(L, nargs, nres, base);
  lua_remove(L, base);
  return status;
}
