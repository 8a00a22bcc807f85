/*
** Lua binding of a run's claims (claims.h): core.claims_new() returns a
** claims object; claims:declare(...) is what reconcile.declare does for
** each declared state in one call: the key's canonical bytes, the claim,
** and the value's fingerprint; claims:mount(path) claims a component's
** path for the one mount a run may make of it. Misuse
** raises, and so does a key or value that cannot be encoded (with the
** message naming it, as core.cbor_encode and core.fingerprint_raw do); a
** key claimed already is an ordinary outcome, returned as nil and the
** claimant's path for the caller to word.
*/
#include <lauxlib.h>
#include <lua.h>

#include "claims.h"
#include "fingerprint.h"
#include "lcore.h"

#define CLAIMS_TYPE "tide.Claims"

static tide_Claims *check_claims(lua_State *L) {
  return luaL_checkudata(L, 1, CLAIMS_TYPE);
}

static int claims_gc(lua_State *L) {
  tide_claims_close(check_claims(L));
  return 0;
}

static int claims_new(lua_State *L) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  tide_Claims *c = lua_newuserdatauv(L, sizeof *c, 0);
  tide_claims_init(c, alloc, ud);
  luaL_setmetatable(L, CLAIMS_TYPE);
  return 1;
}

/* claims:declare(container_id, key, value, key_what, value_what, path)
** -> key bytes, value fingerprint (16 raw bytes); or nil and the path of
** the component that claimed the key first (maybe path itself). The key
** is claimed before the value is encoded, as the Lua code did: a value
** that cannot be encoded leaves its key claimed. */
static int claims_declare(lua_State *L) {
  tide_Claims *c = check_claims(L);
  lua_Integer container = luaL_checkinteger(L, 2);
  const char *key_what = luaL_checkstring(L, 5);
  const char *value_what = luaL_checkstring(L, 6);
  size_t path_len, kb_len, v_len, other_len;
  const char *path = luaL_checklstring(L, 7, &path_len), *other;
  const uint8_t *kb, *v;
  tide_Fp fp;
  int rc;
  luaL_checkany(L, 3);
  luaL_checkany(L, 4);
  lua_settop(L, 7);
  kb = tide_lcbor_encode(L, 3, key_what, &kb_len);  /* [8] the encoder */
  rc = tide_claims_take(c, container, kb, kb_len, path, path_len, &other,
                        &other_len);
  if (rc < 0) return luaL_error(L, "%s", tide_strerror(rc));
  if (rc == 1) {
    luaL_pushfail(L);
    lua_pushlstring(L, other, other_len);
    return 2;
  }
  lua_pushlstring(L, (const char *)kb, kb_len);   /* [9] */
  lua_remove(L, 8);
  v = tide_lcbor_encode(L, 4, value_what, &v_len); /* [9] the encoder */
  tide_fp_bytes(&fp, v, v_len);
  lua_pop(L, 1);
  lua_pushlstring(L, (const char *)fp.bytes, TIDE_FP_SIZE);
  return 2;
}

/* claims:mount(path) -> true when the path was not mounted before in
** this run (now it is), false when it was. */
static int claims_mount(lua_State *L) {
  tide_Claims *c = check_claims(L);
  size_t len;
  const char *path = luaL_checklstring(L, 2, &len);
  int rc = tide_claims_take_path(c, path, len);
  if (rc < 0) return luaL_error(L, "%s", tide_strerror(rc));
  lua_pushboolean(L, rc == 0);
  return 1;
}

/* claims:count() -> how many states and paths are claimed */
static int claims_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)tide_claims_count(check_claims(L)));
  return 1;
}

void tide_lclaims_open(lua_State *L) {
  if (luaL_newmetatable(L, CLAIMS_TYPE)) {
    static const luaL_Reg methods[] = {
      {"declare", claims_declare}, {"mount", claims_mount},
      {"count", claims_count}, {NULL, NULL},
    };
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, claims_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, claims_new);
  lua_setfield(L, -2, "claims_new");
}
