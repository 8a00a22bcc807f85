/*
** Lua binding of a run's claims (claims.h): core.claims_new() returns a
** claims object; claims:declare(...) is what reconcile.declare does for
** each declared state in one call: the key's canonical bytes, the claim,
** and the value's fingerprint; claims:mount(path) claims a component's
** path for the one mount a run may make of it; claims:diff(...) diffs a
** component's declared states against those it owned (reconcile.submit).
** Misuse raises, and so does a key or value that cannot be encoded (with
** the message naming it, as core.cbor_encode and core.fingerprint_raw
** do), and a store that cannot be read (its message); a key claimed
** already is an ordinary outcome, returned as nil and the claimant's path
** for the caller to word.
*/
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "claims.h"
#include "fingerprint.h"
#include "lcore.h"
#include "store.h"

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

/* ---- The diff of a component's declared states against its owned ---- */

/* A declared state, as the diff sees it: where it is in the declared
** list, its container and key, its value's fingerprint (the strings are
** the declared entries', held by the list on the stack), and what the
** owned state of the same key, if any, says must happen to it. */
typedef struct {
  int64_t container_id;
  const char *kb;
  size_t kb_len;
  const char *fp;          /* TIDE_FP_SIZE bytes */
  int index;               /* in the declared list, from 1 */
  int owned;               /* the component owned this state */
  int write;               /* ... and its target must be written again */
} Declared;

static int compare_declared(const void *pa, const void *pb) {
  const Declared *a = pa, *b = pb;
  size_t n;
  int c;
  if (a->container_id != b->container_id)
    return a->container_id < b->container_id ? -1 : 1;
  n = a->kb_len < b->kb_len ? a->kb_len : b->kb_len;
  c = memcmp(a->kb, b->kb, n);
  if (c) return c;
  return a->kb_len < b->kb_len ? -1 : a->kb_len > b->kb_len;
}

typedef struct {
  lua_State *L;
  Declared *declared;      /* sorted by container, then key */
  size_t count;
  int full;                /* a full reprocess writes every state again */
  int left;                /* stack index of the list of states let go */
} DiffRun;

/* Whether the target holds the value whose fingerprint is recorded. */
static int holds_value(const tide_StoreTarget *t) {
  return t->pending == TIDE_TARGET_APPLIED ||
         t->pending == TIDE_TARGET_RELEASED;
}

/* One state the component owned: its declared twin learns whether its
** target must be written again; a state it no longer declares joins the
** list, as { container_id, key, pending, value_fp }. */
static int diff_owned_state(void *arg, const tide_StoreTarget *t) {
  DiffRun *d = arg;
  lua_State *L = d->L;
  Declared key, *found;
  key.container_id = t->container_id;
  key.kb = t->key;
  key.kb_len = t->key_len;
  found = d->count ? bsearch(&key, d->declared, d->count, sizeof key,
                             compare_declared)
                   : NULL;
  if (found) {
    found->owned = 1;
    found->write = d->full || !holds_value(t) || t->value_fp == NULL ||
                   memcmp(t->value_fp, found->fp, TIDE_FP_SIZE) != 0;
    return 0;
  }
  if (d->left == 0) {
    lua_newtable(L);
    d->left = lua_gettop(L);
  }
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)t->container_id);
  lua_setfield(L, -2, "container_id");
  lua_pushlstring(L, t->key, t->key_len);
  lua_setfield(L, -2, "key");
  lua_pushinteger(L, t->pending);
  lua_setfield(L, -2, "pending");
  if (t->value_fp) {
    lua_pushlstring(L, (const char *)t->value_fp, TIDE_FP_SIZE);
    lua_setfield(L, -2, "value_fp");
  }
  lua_rawseti(L, d->left, (lua_Integer)lua_rawlen(L, d->left) + 1);
  return 0;
}

/* Reads declared[i]: { container = { id = ... }, kb = ..., fp = ... }. */
static void read_declared(lua_State *L, int list, int i, Declared *out) {
  lua_rawgeti(L, list, i);
  if (lua_getfield(L, -1, "container") != LUA_TTABLE)
    luaL_error(L, "declared state %d has no container", i);
  lua_getfield(L, -1, "id");
  out->container_id = (int64_t)luaL_checkinteger(L, -1);
  lua_pop(L, 2);
  lua_getfield(L, -1, "kb");
  out->kb = luaL_checklstring(L, -1, &out->kb_len);
  lua_getfield(L, -2, "fp");
  {
    size_t n;
    out->fp = luaL_checklstring(L, -1, &n);
    if (n != TIDE_FP_SIZE)
      luaL_error(L, "declared state %d has no value fingerprint", i);
  }
  /* The strings stay reachable from the list, which the caller holds. */
  lua_pop(L, 3);
  out->index = i;
  out->owned = 0;
  out->write = 0;
}

/* claims:diff(store, owner_id, declared, full) -> the states the owner
** owned and no longer declares, as a list, or nil for none. The owned
** states are read as the store last committed them (store.h's
** *_committed reads); each declared entry the owner owned gets owned =
** true and, when its target must be written again (its value changed,
** the target may not hold it, or full is set), write = "updated". The
** other entries are left as they were, for the caller to look up. */
static int claims_diff(lua_State *L) {
  tide_Claims *c = check_claims(L);
  tide_Store *store = tide_lstore_check(L, 2);
  int64_t owner = (int64_t)luaL_checkinteger(L, 3);
  size_t n, i;
  DiffRun d;
  int rc;
  luaL_checktype(L, 4, LUA_TTABLE);
  lua_settop(L, 5);
  n = (size_t)lua_rawlen(L, 4);
  c->diff.len = 0;
  if (n > SIZE_MAX / sizeof(Declared) ||
      tide_buf_reserve(&c->diff, n * sizeof(Declared)) != 0)
    return luaL_error(L, "%s", tide_strerror(TIDE_ENOMEM));
  d.L = L;
  d.declared = (Declared *)c->diff.data;
  d.count = n;
  d.full = lua_toboolean(L, 5);
  d.left = 0;
  for (i = 0; i < n; i++) read_declared(L, 4, (int)i + 1, &d.declared[i]);
  if (n > 1) qsort(d.declared, n, sizeof(Declared), compare_declared);
  rc = tide_store_target_each_by_owner_committed(store, owner,
                                                 diff_owned_state, &d);
  if (rc) {
    /* The store's message names the store; a position would not help. */
    lua_pushstring(L, tide_store_errmsg(store));
    return lua_error(L);
  }
  for (i = 0; i < n; i++) {
    const Declared *e = &d.declared[i];
    if (!e->owned) continue;
    lua_rawgeti(L, 4, e->index);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "owned");
    if (e->write) {
      lua_pushliteral(L, "updated");
      lua_setfield(L, -2, "write");
    }
    lua_pop(L, 1);
  }
  if (d.left == 0) lua_pushnil(L);
  else lua_pushvalue(L, d.left);
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
      {"diff", claims_diff}, {"count", claims_count}, {NULL, NULL},
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
