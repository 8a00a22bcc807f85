/* `tide.core`: the C half of the Lua module, composed from the bindings. */
#include <lauxlib.h>
#include <lua.h>

#include "lcore.h"
#include "tide.h"

typedef void (*Opener)(lua_State *L);

static const Opener openers[] = {
  tide_lcbor_open,
  tide_lfingerprint_open,
  tide_lstore_open,
  tide_lloop_open,
  tide_lsys_open,
  tide_lindex_open,
  tide_lsplit_open,
  tide_lfs_open,
  tide_lsqlite_open,
  tide_lsignal_open,
  tide_lrecord_open,
  NULL,
};

static int core_strerror(lua_State *L) {
  lua_pushstring(L, tide_strerror((int)luaL_checkinteger(L, 1)));
  return 1;
}

int luaopen_tide_core(lua_State *L) {
  const Opener *open;
  lua_newtable(L);
  for (open = openers; *open; open++) (*open)(L);
  lua_pushcfunction(L, core_strerror);
  lua_setfield(L, -2, "strerror");
  lua_pushliteral(L, TIDE_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
