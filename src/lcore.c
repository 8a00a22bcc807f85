/*
** `tide.core`: the C half of the Lua module, composed from the bindings
** (their convention is in lcore.h), with strerror(code) and errname(code)
** for TIDE_E* codes and the version string. Misuse raises.
*/
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
  tide_lfork_open,
  tide_lindex_open,
  tide_lsplit_open,
  tide_ldocs_open,
  tide_lhash_embed_open,
  tide_lfs_open,
  tide_lfs_apply_open,
  tide_lsqlite_open,
  tide_lsqlite_rows_open,
  tide_lsignal_open,
  tide_lengine_open,
  tide_lmemo_open,
  tide_lrecord_open,
  tide_ljson_open,
  tide_ljsonl_open,
  tide_lsched_open,
  tide_lwait_open,
  tide_lhttp_open,
  tide_lvec_open,
  tide_lpg_open,
  tide_lpg_copy_open,
  tide_lworkers_open,
  tide_lclaims_open,
  tide_lwatch_open,
  tide_lluv_open,
  NULL,
};

void tide_lcore_push_errname(lua_State *L, int code) {
  const char *name = tide_err_name(code);
  char lower[32];
  size_t i;
  if (name[0] == 'E') name++;
  for (i = 0; name[i] && i < sizeof lower; i++)
    lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a'
                                                        : name[i]);
  lua_pushlstring(L, lower, i);
}

/* strerror(code) -> the code's description ("out of memory") */
static int core_strerror(lua_State *L) {
  lua_pushstring(L, tide_strerror((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* errname(code) -> the code's name as Lua sees it ("nomem") */
static int core_errname(lua_State *L) {
  tide_lcore_push_errname(L, (int)luaL_checkinteger(L, 1));
  return 1;
}

int luaopen_tide_core(lua_State *L) {
  const Opener *open;
  lua_newtable(L);
  for (open = openers; *open; open++) (*open)(L);
  lua_pushcfunction(L, core_strerror);
  lua_setfield(L, -2, "strerror");
  lua_pushcfunction(L, core_errname);
  lua_setfield(L, -2, "errname");
  lua_pushliteral(L, TIDE_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
