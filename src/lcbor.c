/*
** Lua binding of the canonical encoding (cbor.h).
**
**   cbor_encode(v [, name]) -> bytes   raises when v cannot be encoded (a
**                                      function, a cycle: misuse), the
**                                      message naming the place in v
**   cbor_decode(bytes) -> v | nil, message   bytes that are not a
**                                      canonical encoding: a runtime
**                                      failure
**   record_metatable(name) -> the shared metatable of records of the type
*/
#include <lauxlib.h>
#include <lua.h>

#include "cbor.h"
#include "lcore.h"

#define ENCODER_TYPE "tide.CborEncoder"

typedef struct {
  tide_CborEnc enc;
  int busy; /* set while encoding: a __tide_key may encode again */
} Encoder;

static int encoder_gc(lua_State *L) {
  Encoder *e = luaL_checkudata(L, 1, ENCODER_TYPE);
  tide_cbor_enc_close(&e->enc);
  return 0;
}

/* Pushes a new encoder userdata. [-0, +1, m] */
static Encoder *new_encoder(lua_State *L) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  Encoder *e = lua_newuserdatauv(L, sizeof *e, 0);
  tide_cbor_enc_init(&e->enc, alloc, ud);
  e->busy = 0;
  if (luaL_newmetatable(L, ENCODER_TYPE)) {
    lua_pushcfunction(L, encoder_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return e;
}

/* Registry key of the shared encoder. */
static const char shared_encoder_key = 0;

const uint8_t *tide_lcbor_encode(lua_State *L, int idx, const char *root,
                                 size_t *len) {
  const uint8_t *p = tide_lcbor_encode_try(L, idx, root, len);
  if (p == NULL) {
    Encoder *e = lua_touserdata(L, -1);
    luaL_where(L, 1);
    lua_pushstring(L, e->enc.err);
    lua_concat(L, 2);
    lua_error(L);
  }
  return p;
}

const uint8_t *tide_lcbor_encode_try(lua_State *L, int idx, const char *root,
                                     size_t *len) {
  Encoder *e;
  int rc;
  idx = lua_absindex(L, idx);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &shared_encoder_key) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    new_encoder(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &shared_encoder_key);
  }
  e = lua_touserdata(L, -1);
  if (e->busy) { /* re-entered from a __tide_key: use a fresh encoder */
    lua_pop(L, 1);
    e = new_encoder(L);
  }
  e->enc.out.len = 0;
  e->enc.root = root;
  e->busy = 1;
  rc = tide_cbor_encode(&e->enc, L, idx);
  e->busy = 0;
  if (rc != 0) return NULL;
  /* The encoder stays on the stack, so it outlives the caller's use. */
  *len = e->enc.out.len;
  return e->enc.out.data;
}

static int cbor_encode(lua_State *L) {
  size_t len;
  const uint8_t *s;
  luaL_checkany(L, 1);
  s = tide_lcbor_encode(L, 1, luaL_optstring(L, 2, "value"), &len);
  lua_pushlstring(L, (const char *)s, len);
  return 1;
}

static int cbor_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  char err[160];
  if (tide_cbor_decode(L, (const uint8_t *)s, len, err, sizeof err) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

static int record_metatable(lua_State *L) {
  tide_cbor_record_metatable(L, luaL_checkstring(L, 1));
  return 1;
}

void tide_lcbor_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"cbor_encode", cbor_encode},
    {"cbor_decode", cbor_decode},
    {"record_metatable", record_metatable},
    {NULL, NULL},
  };
  luaL_setfuncs(L, funcs, 0);
}
