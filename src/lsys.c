/*
** Lua binding of the few process-level calls the CLI needs and Lua lacks:
** chdir, getcwd, isatty, errno_text for messages, and exists. chdir and
** getcwd return nil, message when the call fails; misuse (a path holding
** a NUL, a number that is no errno value) raises.
*/
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "error.h"
#include "lcore.h"

static int sys_chdir(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  char text[TIDE_ERRNO_TEXT_SIZE];
  luaL_argcheck(L, strlen(path) == len, 1, "path contains a NUL byte");
  if (chdir(path) != 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", path,
                    tide_error_errno_text(errno, text, sizeof text));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int sys_getcwd(lua_State *L) {
  char buf[PATH_MAX];
  if (getcwd(buf, sizeof buf) == NULL) {
    luaL_pushfail(L);
    lua_pushstring(L, tide_error_errno_text(errno, buf, sizeof buf));
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

/* errno_text(n): the description of the errno value n, lowercase
** ("permission denied"), for messages such as "docs/a.md: permission
** denied". */
static int sys_errno_text(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  char text[TIDE_ERRNO_TEXT_SIZE];
  luaL_argcheck(L, n >= 0 && n <= INT_MAX, 1, "not an errno value");
  lua_pushstring(L, tide_error_errno_text((int)n, text, sizeof text));
  return 1;
}

/* exists(path): whether something is at path. It never opens the file:
** closing a descriptor of a database file would drop the locks every
** SQLite connection of this process holds on it (POSIX record locks are
** the process's), and another process could then take the database as
** unused and delete the write-ahead log under them. */
static int sys_exists(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  struct stat st;
  luaL_argcheck(L, strlen(path) == len, 1, "path contains a NUL byte");
  lua_pushboolean(L, stat(path, &st) == 0);
  return 1;
}

void tide_lsys_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"chdir", sys_chdir},
    {"getcwd", sys_getcwd},
    {"isatty", sys_isatty},
    {"errno_text", sys_errno_text},
    {"exists", sys_exists},
    {NULL, NULL},
  };
  luaL_setfuncs(L, funcs, 0);
}
