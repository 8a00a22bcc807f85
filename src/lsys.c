/*
** Lua binding of the few process-level calls the CLI needs and Lua lacks:
** chdir, getcwd, isatty.
*/
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "lcore.h"

static int sys_chdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (chdir(path) != 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int sys_getcwd(lua_State *L) {
  char buf[PATH_MAX];
  if (getcwd(buf, sizeof buf) == NULL) {
    luaL_pushfail(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_pushstring(L, buf);
  return 1;
}

/* isatty(fd): whether the descriptor (0, 1 or 2) is a terminal. */
static int sys_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

void tide_lsys_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"chdir", sys_chdir},
    {"getcwd", sys_getcwd},
    {"isatty", sys_isatty},
    {NULL, NULL},
  };
  luaL_setfuncs(L, funcs, 0);
}
