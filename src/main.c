/*
** The tide host: a Lua 5.4 interpreter with tide preloaded (modelled on
** lua.c) and the command line. `tide run` and `tide --version` are handled
** here; every other command is tide.cli's.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <sqlite3.h>
#include <uv.h>

#include "tide.h"

static const char progname[] = "tide";

static void print_message(const char *msg) {
  fprintf(stderr, "%s: %s\n", progname, msg);
  fflush(stderr);
}

/* Adds a traceback to an error message, as lua.c does. */
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

/* Calls the function below narg arguments under the message handler. */
static int docall(lua_State *L, int narg, int nres) {
  int status, base = lua_gettop(L) - narg;
  lua_pushcfunction(L, message_handler);
  lua_insert(L, base);
  status = lua_pcall(L, narg, nres, base);
  lua_remove(L, base);
  return status;
}

static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    print_message(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return status;
}

static int file_exists(const char *path) { return access(path, R_OK) == 0; }

/* Puts tide's Lua files first on package.path: beside the executable in
** the build tree (build/tide -> lua/), or under PREFIX/share after
** `make install` (PREFIX/bin/tide -> PREFIX/share/lua/5.4). */
static void set_lua_path(lua_State *L) {
  char exe[PATH_MAX], probe[PATH_MAX + 64];
  const char *dirs[] = {"/../lua", "/../share/lua/5.4"};
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  char *slash;
  size_t i;
  if (n <= 0) return;
  exe[n] = '\0';
  if ((slash = strrchr(exe, '/')) == NULL) return;
  *slash = '\0';
  for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    snprintf(probe, sizeof probe, "%s%s/tide/init.lua", exe, dirs[i]);
    if (!file_exists(probe)) continue;
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s%s/?.lua;%s%s/?/init.lua;", exe, dirs[i], exe,
                    dirs[i]);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    return;
  }
}

static void preload_core(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_tide_core);
  lua_setfield(L, -2, "tide.core");
  lua_pop(L, 1);
}

/* arg[0] is the script, arg[1..] its arguments, arg[-1] "run" and so on,
** as lua.c lays them out. */
static void create_arg_table(lua_State *L, char **argv, int argc,
                             int script) {
  int i;
  lua_createtable(L, argc - script - 1, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int run_script(lua_State *L, char **argv, int argc) {
  const char *name;
  int status, i, nargs;
  if (argc < 3) {
    print_message("run: missing script (usage: tide run SCRIPT.lua [ARGS])");
    return 2;
  }
  create_arg_table(L, argv, argc, 2);
  name = strcmp(argv[2], "-") == 0 ? NULL : argv[2];
  status = luaL_loadfile(L, name);
  if (status == LUA_OK) {
    nargs = argc - 3;
    luaL_checkstack(L, nargs, "too many arguments to script");
    for (i = 3; i < argc; i++) lua_pushstring(L, argv[i]);
    status = docall(L, nargs, LUA_MULTRET);
  }
  return report(L, status) == LUA_OK ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int print_version(void) {
  printf("tide %s\n%s\nSQLite %s\nlibuv %s\n", TIDE_VERSION, LUA_RELEASE,
         sqlite3_libversion(), uv_version_string());
  return EXIT_SUCCESS;
}

/* Every other command: exit status = require("tide.cli").main(args). */
static int run_cli(lua_State *L, char **argv, int argc) {
  int i, status;
  create_arg_table(L, argv, argc, 0);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "tide.cli");
  status = docall(L, 1, 1);
  if (status == LUA_OK) {
    lua_getfield(L, -1, "main");
    lua_createtable(L, argc - 1, 0);
    for (i = 1; i < argc; i++) {
      lua_pushstring(L, argv[i]);
      lua_rawseti(L, -2, i);
    }
    status = docall(L, 1, 1);
  }
  if (report(L, status) != LUA_OK) return 2;
  return (int)luaL_optinteger(L, -1, 0);
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int code;
  luaL_checkversion(L);
  luaL_openlibs(L);
  preload_core(L);
  set_lua_path(L);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);
  if (argc >= 2 && strcmp(argv[1], "run") == 0)
    code = run_script(L, argv, argc);
  else if (argc >= 2 && (strcmp(argv[1], "--version") == 0 ||
                         strcmp(argv[1], "version") == 0))
    code = print_version();
  else
    code = run_cli(L, argv, argc);
  lua_pushinteger(L, code);
  return 1;
}

int main(int argc, char **argv) {
  int status, code;
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    print_message("cannot create state: not enough memory");
    return 2;
  }
  lua_gc(L, LUA_GCSTOP);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  code = status == LUA_OK ? (int)lua_tointeger(L, -1) : 2;
  if (status != LUA_OK) report(L, status);
  lua_close(L);
  return code;
}
