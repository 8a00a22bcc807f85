/*
** The loop of the luv module loaded in this Lua state, for a Lua host
** that runs luv and hands its loop to tide (app.lua, option loop).
**
** core.luv_loop() -> the uv_loop_t luv runs, as a light userdata (for
** core.engine_new's loop), or nil and a message when luv is not loaded.
**
** luv keeps its loop in its own context, reached through luv_loop(L), a
** function of its public C API (luv.h). Lua loads C modules without
** making their symbols global, so the function is looked up in the
** libraries this state loaded, which Lua lists in the registry table
** _CLIBS (path -> handle from dlopen). Both sides use the one libuv of
** the process (luv and tide link the system's libuv dynamically).
*/
#include <dlfcn.h>

#include <lauxlib.h>
#include <lua.h>

#include "lcore.h"

typedef void *(*LuvLoop)(lua_State *L);

/* luv_loop from a library this state loaded, or NULL. */
static LuvLoop find_luv_loop(lua_State *L) {
  LuvLoop found = NULL;
  if (lua_getfield(L, LUA_REGISTRYINDEX, "_CLIBS") != LUA_TTABLE) {
    lua_pop(L, 1);
    return NULL;
  }
  lua_pushnil(L);
  while (found == NULL && lua_next(L, -2) != 0) {
    void *handle = lua_touserdata(L, -1);
    if (lua_type(L, -2) == LUA_TSTRING && handle != NULL) {
      /* POSIX leaves a function pointer's conversion to the system: on
      ** the ones dlsym runs on, it is exact. */
      *(void **)&found = dlsym(handle, "luv_loop");
    }
    lua_pop(L, 1);
  }
  if (found != NULL) lua_pop(L, 1); /* the key lua_next stopped at */
  lua_pop(L, 1);
  return found;
}

static int core_luv_loop(lua_State *L) {
  LuvLoop luv_loop = find_luv_loop(L);
  void *loop;
  if (luv_loop == NULL || (loop = luv_loop(L)) == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "luv is not loaded in this Lua state (require "
                       "\"luv\" first)");
    return 2;
  }
  lua_pushlightuserdata(L, loop);
  return 1;
}

void tide_lluv_open(lua_State *L) {
  lua_pushcfunction(L, core_luv_loop);
  lua_setfield(L, -2, "luv_loop");
}
