/* Lua binding of fingerprints: values, files, logic. */
#include <lauxlib.h>
#include <lua.h>

#include "fingerprint.h"
#include "lcore.h"
#include "logic.h"

static void push_hex(lua_State *L, const tide_Fp *fp) {
  char hex[2 * TIDE_FP_SIZE + 1];
  tide_fp_hex(fp, hex);
  lua_pushlstring(L, hex, 2 * TIDE_FP_SIZE);
}

static int fingerprint(lua_State *L) {
  size_t len;
  const uint8_t *s;
  tide_Fp fp;
  luaL_checkany(L, 1);
  s = tide_lcbor_encode(L, 1, luaL_optstring(L, 2, "value"), &len);
  tide_fp_bytes(&fp, s, len);
  lua_pop(L, 1);
  push_hex(L, &fp);
  return 1;
}

static int fingerprint_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char err[512];
  tide_Fp fp;
  if (tide_fp_file(&fp, path, err, sizeof err) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  push_hex(L, &fp);
  return 1;
}

static int logic_fingerprint(lua_State *L) {
  char err[256];
  tide_Fp fp;
  luaL_checkany(L, 1);
  if (tide_logic_fingerprint(L, 1, &fp, err, sizeof err) != 0)
    return luaL_error(L, "logic_fingerprint: %s", err);
  push_hex(L, &fp);
  return 1;
}

void tide_lfingerprint_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"fingerprint", fingerprint},
    {"fingerprint_file", fingerprint_file},
    {"logic_fingerprint", logic_fingerprint},
    {NULL, NULL},
  };
  luaL_setfuncs(L, funcs, 0);
}
