/*
** Lua binding of fingerprints: values, files, logic (fingerprint.h,
** logic.h). Misuse raises, and a value that cannot be encoded is misuse:
** fingerprint, fingerprint_raw, fingerprint_args and memo_key raise with a
** message naming the function and the argument ("embed argument 2.opts:
** cannot encode a function"), which is how a memoized call with such an
** argument fails. fingerprint_file returns nil, message when the file
** cannot be read. logic_fingerprint raises when its argument is not a
** function or a __tide_logic metamethod fails: both are the caller's code
** at fault.
*/
#include <string.h>

#include <blake2.h>
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

/* raise_encode_error(value, name): raises the encoder's message for
** value. Called through lua_pcall from C, it has no Lua caller, so the
** message carries no position: the one luaL_where would add is tide's own
** code that computes the key, never the user's. */
static int raise_encode_error(lua_State *L) {
  size_t len;
  tide_lcbor_encode(L, 1, lua_tostring(L, 2), &len);
  return 0;
}

/* Feeds st the canonical encodings of the n values from stack index
** first on, each named "<name> argument i" in error messages: the name is
** formatted only for a value that cannot be encoded (then encoded again to
** raise the message). Encodings delimit themselves, so they are simply
** concatenated. [-0, +0, e] */
static void hash_args(lua_State *L, blake2b_state *st, const char *name,
                      int first, int n) {
  int i;
  for (i = 0; i < n; i++) {
    size_t len;
    const uint8_t *p = tide_lcbor_encode_try(L, first + i, "argument", &len);
    if (p == NULL) {
      lua_pushcfunction(L, raise_encode_error);
      lua_pushvalue(L, first + i);
      lua_pushfstring(L, "%s argument %d", name, i + 1);
      lua_pcall(L, 2, 0, 0);
      lua_error(L);
    }
    blake2b_update(st, p, len);
    lua_pop(L, 1);
  }
}

/* fingerprint_args(fn_name, n, ...) -> 16 raw bytes: the fingerprint of
** the array of the n arguments, each encoded with its own name in error
** messages ("embed argument 2.opts: cannot encode a function"). */
static int fingerprint_args(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  int n = (int)luaL_checkinteger(L, 2);
  blake2b_state st;
  uint8_t head[9], out[TIDE_FP_SIZE];
  size_t head_len = 1;
  luaL_argcheck(L, n >= 0 && n <= lua_gettop(L) - 2, 2, "bad count");
  /* The array head of n items, as the CBOR encoder writes it. */
  if (n < 24) {
    head[0] = (uint8_t)(0x80 | n);
  } else if (n < 256) {
    head[0] = 0x98, head[1] = (uint8_t)n, head_len = 2;
  } else {
    head[0] = 0x99, head[1] = (uint8_t)(n >> 8), head[2] = (uint8_t)n;
    head_len = 3;
  }
  blake2b_init(&st, TIDE_FP_SIZE);
  blake2b_update(&st, head, head_len);
  hash_args(L, &st, name, 3, n);
  blake2b_final(&st, out, TIDE_FP_SIZE);
  lua_pushlstring(L, (const char *)out, TIDE_FP_SIZE);
  return 1;
}

/* memo_key(fn_name, logic, n, ...) -> 16 raw bytes: the key of a memoized
** call, BLAKE2b-128 over the function's name and logic fingerprint and
** the encodings of its n arguments (named in errors as for
** fingerprint_args). */
static int memo_key(lua_State *L) {
  size_t name_len, logic_len;
  const char *name = luaL_checklstring(L, 1, &name_len);
  const char *logic = luaL_checklstring(L, 2, &logic_len);
  int n = (int)luaL_checkinteger(L, 3);
  uint64_t len64 = name_len;
  blake2b_state st;
  uint8_t out[TIDE_FP_SIZE];
  luaL_argcheck(L, n >= 0 && n <= lua_gettop(L) - 3, 3, "bad count");
  blake2b_init(&st, TIDE_FP_SIZE);
  blake2b_update(&st, (const uint8_t *)"tide-memo/1", 11);
  blake2b_update(&st, (const uint8_t *)&len64, sizeof len64);
  blake2b_update(&st, (const uint8_t *)name, name_len);
  blake2b_update(&st, (const uint8_t *)logic, logic_len);
  hash_args(L, &st, name, 4, n);
  blake2b_final(&st, out, TIDE_FP_SIZE);
  lua_pushlstring(L, (const char *)out, TIDE_FP_SIZE);
  return 1;
}

/* fingerprint_raw(v) -> 16 raw bytes. */
static int fingerprint_raw(lua_State *L) {
  size_t len;
  const uint8_t *s;
  tide_Fp fp;
  luaL_checkany(L, 1);
  s = tide_lcbor_encode(L, 1, luaL_optstring(L, 2, "value"), &len);
  tide_fp_bytes(&fp, s, len);
  lua_pop(L, 1);
  lua_pushlstring(L, (const char *)fp.bytes, TIDE_FP_SIZE);
  return 1;
}

/* fingerprint_bytes(s) -> 16 raw bytes of the string's bytes. */
static int fingerprint_bytes(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  tide_Fp fp;
  tide_fp_bytes(&fp, s, len);
  lua_pushlstring(L, (const char *)fp.bytes, TIDE_FP_SIZE);
  return 1;
}

/* fingerprint_file(path [, "raw"]) -> 32 hex digits, or 16 raw bytes */
static int fingerprint_file(lua_State *L) {
  static const char *const forms[] = {"hex", "raw", NULL};
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  int raw = luaL_checkoption(L, 2, "hex", forms) == 1;
  char err[512];
  tide_Fp fp;
  luaL_argcheck(L, strlen(path) == len, 1, "path contains a NUL byte");
  if (tide_fp_file(&fp, path, err, sizeof err) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  if (raw)
    lua_pushlstring(L, (const char *)fp.bytes, TIDE_FP_SIZE);
  else
    push_hex(L, &fp);
  return 1;
}

static int logic_fingerprint(lua_State *L) {
  char err[256];
  tide_Fp fp;
  static const char *const modes[] = {"full", "self", NULL};
  int self_only;
  luaL_checkany(L, 1);
  self_only = luaL_checkoption(L, 2, "full", modes) == 1;
  if (tide_logic_fingerprint(L, 1, self_only, &fp, err, sizeof err) != 0)
    return luaL_error(L, "logic_fingerprint: %s", err);
  push_hex(L, &fp);
  return 1;
}

void tide_lfingerprint_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"fingerprint", fingerprint},
    {"fingerprint_file", fingerprint_file},
    {"fingerprint_args", fingerprint_args},
    {"fingerprint_raw", fingerprint_raw},
    {"memo_key", memo_key},
    {"fingerprint_bytes", fingerprint_bytes},
    {"logic_fingerprint", logic_fingerprint},
    {NULL, NULL},
  };
  luaL_setfuncs(L, funcs, 0);
}
