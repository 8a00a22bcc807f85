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

#include "lcore.h"
#include "tide.h"

static const char progname[] = "tide";

static void print_message(const char *msg) {
  fprintf(stderr, "%s: %s\n", progname, msg);
  fflush(stderr);
}

static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    print_message(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return status;
}

static int file_exists(const char *path) { return access(path, R_OK) == 0; }

/* The folder of tide's Lua files: beside the executable in the build
** tree (build/tide -> lua/), or under PREFIX/share after `make install`
** (PREFIX/bin/tide -> PREFIX/share/lua/5.4). NULL: Lua's package.path. */
static const char *find_lua_dir(char *out, size_t size) {
  char exe[PATH_MAX], probe[PATH_MAX + 64];
  const char *dirs[] = {"/../lua", "/../share/lua/5.4"};
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  char *slash;
  size_t i;
  if (n <= 0) return NULL;
  exe[n] = '\0';
  if ((slash = strrchr(exe, '/')) == NULL) return NULL;
  *slash = '\0';
  for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    snprintf(probe, sizeof probe, "%s%s/tide/init.lua", exe, dirs[i]);
    if (!file_exists(probe)) continue;
    if ((size_t)snprintf(out, size, "%.4000s%s", exe, dirs[i]) >= size)
      return NULL;
    return out;
  }
  return NULL;
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
    status = tide_lua_pcall(L, nargs, LUA_MULTRET);
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
  status = tide_lua_pcall(L, 1, 1);
  if (status == LUA_OK) {
    lua_getfield(L, -1, "main");
    lua_createtable(L, argc - 1, 0);
    for (i = 1; i < argc; i++) {
      lua_pushstring(L, argv[i]);
      lua_rawseti(L, -2, i);
    }
    status = tide_lua_pcall(L, 1, 1);
  }
  if (report(L, status) != LUA_OK) return 2;
  return (int)luaL_optinteger(L, -1, 0);
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int code;
  luaL_checkversion(L);
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

/* The host is the engine's first client: the engine makes the Lua state
** (standard libraries, tide.core preloaded, tide's Lua files on the
** path) and every command runs in it. */
int main(int argc, char **argv) {
  char dir[PATH_MAX];
  tide_EngineOptions opts;
  tide_Engine *e;
  lua_State *L;
  int status, code;
  memset(&opts, 0, sizeof opts);
  tide_lfork_set_args(argc, argv);
  opts.lua_dir = find_lua_dir(dir, sizeof dir);
  if (tide_engine_new(&e, &opts) != 0) {
    print_message(e ? tide_engine_errmsg(e) : "not enough memory");
    tide_engine_free(e);
    return 2;
  }
  L = tide_engine_lua(e);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  code = status == LUA_OK ? (int)lua_tointeger(L, -1) : 2;
  if (status != LUA_OK) report(L, status);
  tide_engine_free(e);
  return code;
}
