/*
** Lua binding of the state store: core.store_open(path, mode) returns a
** store object whose methods mirror store.h; core.store_is_postgres and
** core.store_public read a location (store.h); the shared-update methods
** are lstore_work.c's. Fingerprints and CBOR blobs cross as Lua strings.
** Misuse (a bad argument, a closed store) raises; runtime failures of
** opening, closing, store:reclaim() and store:space() return nil,
** message, code name; any other runtime failure is a write or read the
** engine cannot go on without, and raises the store's message as it is
** ("PATH: cannot record a component: database or disk is full"), without
** a position in tide's own code. Text crosses with its length both ways
** (lua_tolstring, lua_pushlstring), so a path, key or identity holding
** NUL reaches the store whole.
*/
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lcore.h"
#include "lstore.h"
#include "store.h"

#define STORE_TYPE "tide.Store"

typedef struct {
  tide_Store *s; /* NULL once closed */
  int borrowed;  /* an engine's store: close and __gc only let go of it */
} Box;

tide_Store *tide_lstore_check(lua_State *L, int idx) {
  Box *b = luaL_checkudata(L, idx, STORE_TYPE);
  if (b->s == NULL) luaL_error(L, "state store is closed");
  return b->s;
}

static tide_Store *check_store(lua_State *L) {
  return tide_lstore_check(L, 1);
}

static const char *code_name(int rc) {
  switch (rc) {
  case TIDE_ELOCKED: return "locked";
  case TIDE_EVERSION: return "version";
  case TIDE_ENOTSTORE: return "notstore";
  case TIDE_ENOTFOUND: return "notfound";
  case TIDE_ENOMEM: return "nomem";
  default: return "store";
  }
}

/* nil, message, code name. */
static int fail(lua_State *L, tide_Store *s, int rc) {
  luaL_pushfail(L);
  lua_pushstring(L, s ? tide_store_errmsg(s) : tide_strerror(rc));
  lua_pushstring(L, code_name(rc));
  return 3;
}

int tide_lstore_ok_or_raise(lua_State *L, tide_Store *s, int rc) {
  if (rc != 0) {
    lua_pushstring(L, tide_store_errmsg(s));
    return lua_error(L);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static const uint8_t *opt_fp(lua_State *L, int idx) {
  size_t len;
  const char *p = luaL_optlstring(L, idx, NULL, &len);
  if (p && len != TIDE_FP_SIZE)
    luaL_argerror(L, idx, "fingerprint of 16 bytes expected");
  return (const uint8_t *)p;
}

/* Table fields read for puts: a string (or NULL) and its length. The
** string stays reachable from the table. */
static const char *get_str(lua_State *L, int t, const char *k, size_t *n) {
  const char *v;
  lua_getfield(L, t, k);
  v = lua_tolstring(L, -1, n);
  lua_pop(L, 1);
  if (v == NULL) *n = 0;
  return v;
}

static const void *get_blob(lua_State *L, int t, const char *k, size_t *n) {
  return get_str(L, t, k, n);
}

static const uint8_t *get_fp(lua_State *L, int t, const char *k) {
  size_t n;
  const void *v = get_blob(L, t, k, &n);
  if (v && n != TIDE_FP_SIZE)
    luaL_error(L, "field %s: 16-byte fingerprint expected", k);
  return v;
}

/* The strings of the list at t, borrowed: pointers and lengths in two
** userdata pushed on the stack, valid while the list is (the caller's
** argument, so for the call). Raises for a list holding a non-string. */
static const char **borrow_keys(lua_State *L, int t, size_t *n,
                                size_t **lens) {
  size_t i, count, room;
  const char **keys;
  luaL_checktype(L, t, LUA_TTABLE);
  count = (size_t)lua_rawlen(L, t);
  room = count > 0 ? count : 1;
  keys = lua_newuserdatauv(L, room * sizeof *keys, 0);
  *lens = lua_newuserdatauv(L, room * sizeof **lens, 0);
  for (i = 0; i < count; i++) {
    lua_rawgeti(L, t, (lua_Integer)i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, t, "a list of strings expected");
    keys[i] = lua_tolstring(L, -1, &(*lens)[i]);
    lua_pop(L, 1);
  }
  *n = count;
  return keys;
}

static int64_t get_int(lua_State *L, int t, const char *k) {
  int64_t v;
  lua_getfield(L, t, k);
  v = (int64_t)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

/* ---- Open, close, batches ---- */


/* core.store_is_postgres(location) -> whether it names a PostgreSQL
** store (a location, not a file path). */
static int store_is_postgres(lua_State *L) {
  lua_pushboolean(L, tide_store_is_postgres(luaL_checkstring(L, 1)));
  return 1;
}

/* core.store_public(location) -> the location as messages show it (a
** PostgreSQL location without its password), or nil and a message. */
static int store_public(lua_State *L) {
  size_t len;
  const char *location = luaL_checklstring(L, 1, &len);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, len + 80);
  if (tide_store_public_location(location, out, len + 80) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, out);
    return 2;
  }
  luaL_pushresultsize(&b, strlen(out));
  return 1;
}

static int store_open(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  const char *mode = luaL_optstring(L, 2, "write");
  int flags = strcmp(mode, "read") == 0 ? TIDE_STORE_READ : TIDE_STORE_WRITE;
  Box *b;
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  int rc;
  /* A file path is a C string: a NUL would cut it short. */
  luaL_argcheck(L, strlen(path) == len, 1, "path contains a NUL byte");
  b = lua_newuserdatauv(L, sizeof *b, 0);
  b->s = NULL;
  b->borrowed = 0;
  luaL_setmetatable(L, STORE_TYPE);
  rc = tide_store_open(&b->s, path, flags, alloc, ud);
  if (rc != 0) {
    int n = fail(L, b->s, rc);
    tide_store_close(b->s);
    b->s = NULL;
    return n;
  }
  return 1;
}

void tide_lstore_push_borrowed(lua_State *L, tide_Store *s) {
  Box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->s = s;
  b->borrowed = 1;
  luaL_setmetatable(L, STORE_TYPE);
}

static int store_close(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, STORE_TYPE);
  int rc = 0;
  if (b->borrowed) {
    b->s = NULL;
  } else if (b->s) {
    rc = tide_store_flush(b->s);
    if (rc != 0) {
      int n = fail(L, b->s, rc);
      tide_store_close(b->s);
      b->s = NULL;
      return n;
    }
    tide_store_close(b->s);
    b->s = NULL;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int store_flush(lua_State *L) {
  tide_Store *s = check_store(L);
  return tide_lstore_ok_or_raise(L, s, tide_store_flush(s));
}

static int store_flush_send(lua_State *L) {
  tide_Store *s = check_store(L);
  return tide_lstore_ok_or_raise(L, s, tide_store_flush_send(s));
}

static int store_flush_wait(lua_State *L) {
  tide_Store *s = check_store(L);
  return tide_lstore_ok_or_raise(L, s, tide_store_flush_wait(s));
}

static int store_maybe_flush(lua_State *L) {
  tide_Store *s = check_store(L);
  return tide_lstore_ok_or_raise(L, s, tide_store_maybe_flush(s));
}

/* store:holds_memo_lock() -> tide_store_holds_memo_lock, as a boolean */
static int store_holds_memo_lock(lua_State *L) {
  lua_pushboolean(L, tide_store_holds_memo_lock(check_store(L)));
  return 1;
}

static int store_rollback(lua_State *L) {
  tide_Store *s = check_store(L);
  return tide_lstore_ok_or_raise(L, s, tide_store_rollback(s));
}

/* store:batches_lost() -> tide_store_batches_lost, and
** tide_store_lost_message (or nil) */
static int store_batches_lost(lua_State *L) {
  tide_Store *s = check_store(L);
  lua_pushinteger(L, (lua_Integer)tide_store_batches_lost(s));
  lua_pushstring(L, tide_store_lost_message(s));
  return 2;
}

static int store_set_batch_limits(lua_State *L) {
  tide_Store *s = check_store(L);
  tide_store_set_batch_limits(s, luaL_checkinteger(L, 2),
                              luaL_checkinteger(L, 3));
  return 0;
}

/* store:reclaim() -> bytes given back (0 when free pages were below the
** thresholds), or nil, message, code: the run that calls it succeeded
** whatever becomes of its free space. */
static int store_reclaim(lua_State *L) {
  tide_Store *s = check_store(L);
  tide_StoreSpace space;
  int64_t freed;
  int rc = tide_store_reclaim(s, &freed);
  if (rc == 0 && freed > 0) rc = tide_store_space(s, &space);
  if (rc != 0) return fail(L, s, rc);
  lua_pushinteger(L, freed > 0 ? (lua_Integer)(freed * space.page_size) : 0);
  return 1;
}

/* store:space() -> { page_size, pages, free_pages, incremental }. */
static int store_space(lua_State *L) {
  tide_Store *s = check_store(L);
  tide_StoreSpace space;
  int rc = tide_store_space(s, &space);
  if (rc != 0) return fail(L, s, rc);
  lua_createtable(L, 0, 4);
  set_int(L, "page_size", space.page_size);
  set_int(L, "pages", space.pages);
  set_int(L, "free_pages", space.free_pages);
  lua_pushboolean(L, space.incremental);
  lua_setfield(L, -2, "incremental");
  return 1;
}

static int store_path(lua_State *L) {
  lua_pushstring(L, tide_store_path(check_store(L)));
  return 1;
}

/* ---- Apps ---- */

static int store_app(lua_State *L) {
  tide_Store *s = check_store(L);
  size_t len;
  const char *name = luaL_checklstring(L, 2, &len);
  int64_t id;
  int created = 0, rc;
  if (lua_toboolean(L, 3)) {
    rc = tide_store_app_get_or_create(s, name, len, &id, &created);
  } else {
    tide_StoreApp app;
    rc = tide_store_app_lookup(s, name, len, &app);
    id = app.id;
  }
  if (rc == TIDE_ENOTFOUND) return 0;
  if (rc != 0) return tide_lstore_ok_or_raise(L, s, rc);
  lua_pushinteger(L, (lua_Integer)id);
  lua_pushboolean(L, created);
  return 2;
}

static int push_app(void *arg, const tide_StoreApp *a) {
  lua_State *L = arg;
  lua_createtable(L, 0, 3);
  set_int(L, "id", a->id);
  set_str(L, "name", a->name, a->name_len);
  set_int(L, "created_ns", a->created_ns);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

static int store_apps(lua_State *L) {
  tide_Store *s = check_store(L);
  int rc;
  lua_newtable(L);
  rc = tide_store_app_each(s, push_app, L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

static int store_app_delete(lua_State *L) {
  tide_Store *s = check_store(L);
  return tide_lstore_ok_or_raise(L, s, tide_store_app_delete(s, luaL_checkinteger(L, 2)));
}

/* ---- Components ---- */

static void push_component(lua_State *L, const tide_StoreComponent *c) {
  lua_createtable(L, 0, 12);
  set_int(L, "id", c->id);
  set_str(L, "path", c->path, c->path_len);
  set_int(L, "parent_id", c->parent_id);
  set_str(L, "fn", c->fn_name, c->fn_name_len);
  set_blob(L, "logic", c->logic_fp, c->logic_fp ? TIDE_FP_SIZE : 0);
  set_blob(L, "input", c->input_fp, c->input_fp ? TIDE_FP_SIZE : 0);
  set_str(L, "source_key", c->source_key, c->source_key_len);
  set_blob(L, "state", c->state, c->state_len);
  set_int(L, "status", c->status);
  set_str(L, "error", c->error, c->error_len);
  set_int(L, "updated_ns", c->updated_ns);
  set_blob(L, "deps_fp", c->deps_fp, c->deps_fp ? TIDE_FP_SIZE : 0);
}

static int add_component(void *arg, const tide_StoreComponent *c) {
  lua_State *L = arg;
  lua_pushlstring(L, c->path, c->path_len);
  push_component(L, c);
  lua_rawset(L, -3);
  return 0;
}

/* store:components(app_id) -> { [path] = row } */
static int store_components(lua_State *L) {
  tide_Store *s = check_store(L);
  int rc;
  lua_newtable(L);
  rc = tide_store_component_each(s, luaL_checkinteger(L, 2), add_component,
                                 L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

static int store_component(lua_State *L) {
  tide_Store *s = check_store(L);
  tide_StoreComponent c;
  size_t len;
  const char *path = luaL_checklstring(L, 3, &len);
  int rc = tide_store_component_get(s, luaL_checkinteger(L, 2), path, len,
                                    &c);
  if (rc == TIDE_ENOTFOUND) return 0;
  if (rc != 0) return tide_lstore_ok_or_raise(L, s, rc);
  push_component(L, &c);
  return 1;
}

/* store:component_put{ app_id, path, parent_id, fn, logic, input,
** source_key, state, status, error } -> id */
static int store_component_put(lua_State *L) {
  tide_Store *s = check_store(L);
  tide_StoreComponent c;
  int64_t id;
  int rc;
  luaL_checktype(L, 2, LUA_TTABLE);
  memset(&c, 0, sizeof c);
  c.app_id = get_int(L, 2, "app_id");
  c.path = get_str(L, 2, "path", &c.path_len);
  c.parent_id = get_int(L, 2, "parent_id");
  c.fn_name = get_str(L, 2, "fn", &c.fn_name_len);
  c.logic_fp = get_fp(L, 2, "logic");
  c.input_fp = get_fp(L, 2, "input");
  c.source_key = get_str(L, 2, "source_key", &c.source_key_len);
  c.state = get_blob(L, 2, "state", &c.state_len);
  c.status = (int)get_int(L, 2, "status");
  c.error = get_str(L, 2, "error", &c.error_len);
  c.deps_fp = get_fp(L, 2, "deps_fp");
  if (c.path == NULL || c.fn_name == NULL)
    return luaL_error(L, "component_put: path and fn are required");
  rc = tide_store_component_put(s, &c, &id);
  if (rc != 0) return tide_lstore_ok_or_raise(L, s, rc);
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

/* The optional fingerprint argument at idx (nil or 16 bytes). */
static const uint8_t *arg_fp(lua_State *L, int idx) {
  size_t n;
  const char *v = luaL_optlstring(L, idx, NULL, &n);
  if (v && n != TIDE_FP_SIZE)
    luaL_argerror(L, idx, "16-byte fingerprint expected");
  return (const uint8_t *)v;
}

/* store:component_record(app_id, path, fn, logic, input, source_key,
** state, deps_fp, status[, known]) -> id: component_put for a component
** that ran, its fields as arguments (the engine's path for every
** component: no table to build and read). known is what the caller knows
** of its id (store.h): its row id, -1 for a component not in the store,
** nil or 0 for nothing. */
static int store_component_record(lua_State *L) {
  tide_Store *s = check_store(L);
  tide_StoreComponent c;
  int64_t id;
  int rc;
  memset(&c, 0, sizeof c);
  c.app_id = (int64_t)luaL_checkinteger(L, 2);
  c.path = luaL_checklstring(L, 3, &c.path_len);
  c.fn_name = luaL_checklstring(L, 4, &c.fn_name_len);
  c.logic_fp = arg_fp(L, 5);
  c.input_fp = arg_fp(L, 6);
  c.source_key = luaL_optlstring(L, 7, NULL, &c.source_key_len);
  c.state = luaL_optlstring(L, 8, NULL, &c.state_len);
  c.deps_fp = arg_fp(L, 9);
  c.status = (int)luaL_checkinteger(L, 10);
  c.id = (int64_t)luaL_optinteger(L, 11, 0);
  if (c.id < TIDE_STORE_NEW_ID)
    return luaL_argerror(L, 11, "a row id, -1 (new) or 0 expected");
  if (c.source_key == NULL) c.source_key_len = 0;
  if (c.state == NULL) c.state_len = 0;
  rc = tide_store_component_put(s, &c, &id);
  if (rc != 0) return tide_lstore_ok_or_raise(L, s, rc);
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

/* store:component_path(id) -> the path of the component, or nil. */
static int store_component_path(lua_State *L) {
  tide_Store *s = check_store(L);
  const char *path;
  size_t len;
  int rc = tide_store_component_path(s, luaL_checkinteger(L, 2), &path,
                                     &len);
  if (rc == TIDE_ENOTFOUND) return 0;
  if (rc != 0) return tide_lstore_ok_or_raise(L, s, rc);
  lua_pushlstring(L, path, len);
  return 1;
}

/* store:component_state(id) -> the state of the component, or nil (no
** state, or no such component). */
static int store_component_state(lua_State *L) {
  tide_Store *s = check_store(L);
  const void *state;
  size_t len;
  int rc = tide_store_component_state(s, luaL_checkinteger(L, 2), &state,
                                      &len);
  if (rc == TIDE_ENOTFOUND) return 0;
  if (rc != 0) return tide_lstore_ok_or_raise(L, s, rc);
  if (state == NULL) return 0;
  lua_pushlstring(L, state, len);
  return 1;
}

/* Into the tables at -2 (states: id -> state) and -1 (refs: id -> list
** of keys). */
static int put_state(void *arg, int64_t id, const void *state, size_t len) {
  lua_State *L = arg;
  if (state == NULL) return 0;
  lua_pushlstring(L, state, len);
  lua_rawseti(L, -3, (lua_Integer)id);
  return 0;
}

static int put_ref(void *arg, int64_t id, const uint8_t *key) {
  lua_State *L = arg;
  if (lua_rawgeti(L, -1, (lua_Integer)id) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, (lua_Integer)id);
  }
  lua_pushlstring(L, (const char *)key, TIDE_FP_SIZE);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 1);
  return 0;
}

/* The ids in the list at index i, in a userdata pushed (freed with it). */
static int64_t *check_ids(lua_State *L, int i, size_t *n) {
  lua_Integer k, len = (lua_Integer)lua_rawlen(L, i);
  int64_t *ids = lua_newuserdatauv(L, (size_t)(len > 0 ? len : 1)
                                        * sizeof *ids, 0);
  for (k = 0; k < len; k++) {
    lua_rawgeti(L, i, k + 1);
    ids[k] = (int64_t)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  *n = (size_t)len;
  return ids;
}

/* store:components_before({ id, ... }, refs_only) -> { [id] = state },
** { [id] = { memo key, ... } }: what a batch keeps of its components'
** previous rows, read in one go (a component without a state or
** references has no entry; refs_only: the states are not read). */
static int store_components_before(lua_State *L) {
  tide_Store *s = check_store(L);
  int refs_only = lua_toboolean(L, 3);
  size_t n;
  int64_t *ids;
  int rc;
  luaL_checktype(L, 2, LUA_TTABLE);
  ids = check_ids(L, 2, &n);
  lua_newtable(L);
  lua_newtable(L);
  rc = tide_store_components_before(s, ids, n,
                                    refs_only ? NULL : put_state,
                                    put_ref, L);
  if (rc != 0) return tide_lstore_ok_or_raise(L, s, rc);
  return 2;
}

/* store:targets_read_ahead({ owner id, ... }): the committed states of
** those owners read in one go, for their diffs (store.h). */
static int store_targets_read_ahead(lua_State *L) {
  tide_Store *s = check_store(L);
  size_t n;
  int64_t *ids;
  luaL_checktype(L, 2, LUA_TTABLE);
  ids = check_ids(L, 2, &n);
  return tide_lstore_ok_or_raise(L, s, tide_store_targets_read_ahead(s, ids, n));
}

/* store:backend() -> "sqlite" or "postgresql": whether its reads cross a
** connection to a server, which the engine then groups. */
static int store_backend(lua_State *L) {
  tide_Store *s = check_store(L);
  lua_pushstring(L, tide_store_is_remote(s) ? "postgresql" : "sqlite");
  return 1;
}

static int store_targets_forget_ahead(lua_State *L) {
  tide_store_targets_forget_ahead(check_store(L));
  return 0;
}

static int store_component_delete(lua_State *L) {
  tide_Store *s = check_store(L);
  return tide_lstore_ok_or_raise(L, s,
                     tide_store_component_delete(s, luaL_checkinteger(L, 2)));
}

/* store:component_hold(id, path): tide_store_component_hold. */
static int store_component_hold(lua_State *L) {
  tide_Store *s = check_store(L);
  size_t len;
  const char *path = luaL_checklstring(L, 3, &len);
  return tide_lstore_ok_or_raise(L, s, tide_store_component_hold(s,
                                 luaL_checkinteger(L, 2), path, len));
}

/* store:components_delete({ id, ... }) */
static int store_components_delete(lua_State *L) {
  tide_Store *s = check_store(L);
  size_t n;
  int64_t *ids;
  luaL_checktype(L, 2, LUA_TTABLE);
  ids = check_ids(L, 2, &n);
  return tide_lstore_ok_or_raise(L, s,
                                 tide_store_components_delete(s, ids, n));
}

/* ---- Memo entries ---- */

static void push_memo(lua_State *L, const tide_StoreMemo *m) {
  lua_createtable(L, 0, 4);
  set_str(L, "fn", m->fn_name, m->fn_name_len);
  set_blob(L, "value", m->value, m->value_len);
  set_blob(L, "deps", m->deps, m->deps_len);
  set_blob(L, "targets", m->targets, m->targets_len);
}

static int store_memo_get(lua_State *L) {
  tide_Store *s = check_store(L);
  tide_StoreMemo m;
  int rc = tide_store_memo_get(s, luaL_checkinteger(L, 2), opt_fp(L, 3), &m);
  if (rc == TIDE_ENOTFOUND) return 0;
  if (rc != 0) return tide_lstore_ok_or_raise(L, s, rc);
  push_memo(L, &m);
  return 1;
}

/* Into the table at -1: key -> entry. */
static int put_memo(void *arg, const tide_StoreMemo *m) {
  lua_State *L = arg;
  lua_pushlstring(L, (const char *)m->key, TIDE_FP_SIZE);
  push_memo(L, m);
  lua_rawset(L, -3);
  return 0;
}

/* store:memos_of(app_id, { key, ... }) -> { [key] = entry }: the entries
** found among those keys, as memo_get gives them, read in one go. */
static int store_memos_of(lua_State *L) {
  tide_Store *s = check_store(L);
  int64_t app = luaL_checkinteger(L, 2);
  size_t i, n, *lens;
  const char **keys = borrow_keys(L, 3, &n, &lens);
  int rc;
  for (i = 0; i < n; i++)
    luaL_argcheck(L, lens[i] == TIDE_FP_SIZE, 3, "memo keys expected");
  lua_newtable(L);
  rc = tide_store_memo_each_of(s, app, (const uint8_t **)keys, n, put_memo,
                               L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

/* store:memo_put(app_id, key, fn, value, deps, targets) */
static int store_memo_put(lua_State *L) {
  tide_Store *s = check_store(L);
  tide_StoreMemo m;
  memset(&m, 0, sizeof m);
  m.app_id = luaL_checkinteger(L, 2);
  m.key = opt_fp(L, 3);
  m.fn_name = luaL_checklstring(L, 4, &m.fn_name_len);
  m.value = luaL_optlstring(L, 5, NULL, &m.value_len);
  m.deps = luaL_optlstring(L, 6, NULL, &m.deps_len);
  m.targets = luaL_optlstring(L, 7, NULL, &m.targets_len);
  luaL_argcheck(L, m.key != NULL, 3, "memo key expected");
  return tide_lstore_ok_or_raise(L, s, tide_store_memo_put(s, &m));
}

static int store_memo_delete(lua_State *L) {
  tide_Store *s = check_store(L);
  return tide_lstore_ok_or_raise(L, s, tide_store_memo_delete(s, luaL_checkinteger(L, 2),
                                                  opt_fp(L, 3)));
}

static int add_memo_key(void *arg, const uint8_t *key, const char *fn,
                        size_t fn_len) {
  lua_State *L = arg;
  lua_pushlstring(L, (const char *)key, TIDE_FP_SIZE);
  if (fn) lua_pushlstring(L, fn, fn_len);
  else lua_pushnil(L);
  lua_rawset(L, -3);
  return 0;
}

/* store:memo_keys(app_id) -> { [key] = fn name } */
static int store_memo_keys(lua_State *L) {
  tide_Store *s = check_store(L);
  int rc;
  lua_newtable(L);
  rc = tide_store_memo_each_key(s, luaL_checkinteger(L, 2), add_memo_key, L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

/* ---- Memo references ---- */

static int store_memo_ref_add(lua_State *L) {
  tide_Store *s = check_store(L);
  return tide_lstore_ok_or_raise(L, s, tide_store_memo_ref_add(
                               s, luaL_checkinteger(L, 2),
                               luaL_checkinteger(L, 3), opt_fp(L, 4)));
}

static int add_ref(void *arg, const uint8_t *key) {
  lua_State *L = arg;
  lua_pushlstring(L, (const char *)key, TIDE_FP_SIZE);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

/* store:memo_refs(component_id) -> { key, ... } */
static int store_memo_refs(lua_State *L) {
  tide_Store *s = check_store(L);
  int rc;
  lua_newtable(L);
  rc = tide_store_memo_refs_each(s, luaL_checkinteger(L, 2), add_ref, L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

static int store_memo_refs_clear(lua_State *L) {
  tide_Store *s = check_store(L);
  return tide_lstore_ok_or_raise(L, s,
                     tide_store_memo_refs_clear(s, luaL_checkinteger(L, 2)));
}

/* store:memo_delete_unreferenced(app_id): every entry no component uses */
static int store_memo_delete_unreferenced(lua_State *L) {
  tide_Store *s = check_store(L);
  return tide_lstore_ok_or_raise(L, s, tide_store_memo_delete_unreferenced(
                              s, luaL_checkinteger(L, 2)));
}

/* store:memo_delete_unused(app_id, { key, ... }): the entries no
** component uses go. */
static int store_memo_delete_unused(lua_State *L) {
  tide_Store *s = check_store(L);
  lua_Integer app_id = luaL_checkinteger(L, 2);
  lua_Integer i, n;
  luaL_Buffer b;
  luaL_checktype(L, 3, LUA_TTABLE);
  n = (lua_Integer)lua_rawlen(L, 3);
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *key;
    lua_rawgeti(L, 3, i);
    key = lua_tolstring(L, -1, &len);
    luaL_argcheck(L, key != NULL && len == TIDE_FP_SIZE, 3,
                  "memo keys expected");
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return tide_lstore_ok_or_raise(L, s, tide_store_memo_delete_unused(
                               s, app_id, (const uint8_t *)lua_tostring(L, -1),
                               (size_t)n));
}

/* ---- Containers ---- */

static void push_container(lua_State *L, const tide_StoreContainer *c) {
  lua_createtable(L, 0, 7);
  set_int(L, "id", c->id);
  set_str(L, "kind", c->kind, c->kind_len);
  set_str(L, "identity", c->identity, c->identity_len);
  set_blob(L, "spec", c->spec, c->spec_len);
  set_blob(L, "schema_fp", c->schema_fp, c->schema_fp ? TIDE_FP_SIZE : 0);
  set_int(L, "owner_id", c->owner_id);
  set_int(L, "state", c->state);
}

/* store:container(app_id, kind, identity) -> row, created */
static int store_container(lua_State *L) {
  tide_Store *s = check_store(L);
  int64_t id;
  int created, rc;
  tide_StoreContainer c;
  size_t kind_len, identity_len;
  int64_t app_id = luaL_checkinteger(L, 2);
  const char *kind = luaL_checklstring(L, 3, &kind_len);
  const char *identity = luaL_checklstring(L, 4, &identity_len);
  rc = tide_store_container_get_or_create(s, app_id, kind, kind_len,
                                          identity, identity_len, &id,
                                          &created);
  if (rc == 0) rc = tide_store_container_get(s, id, &c);
  if (rc != 0) return tide_lstore_ok_or_raise(L, s, rc);
  push_container(L, &c);
  lua_pushboolean(L, created);
  return 2;
}

/* store:container_update{ id, spec, schema_fp, owner_id, state } */
static int store_container_update(lua_State *L) {
  tide_Store *s = check_store(L);
  tide_StoreContainer c;
  luaL_checktype(L, 2, LUA_TTABLE);
  memset(&c, 0, sizeof c);
  c.id = get_int(L, 2, "id");
  c.spec = get_blob(L, 2, "spec", &c.spec_len);
  c.schema_fp = get_fp(L, 2, "schema_fp");
  c.owner_id = get_int(L, 2, "owner_id");
  c.state = (int)get_int(L, 2, "state");
  return tide_lstore_ok_or_raise(L, s, tide_store_container_update(s, &c));
}

static int store_container_delete(lua_State *L) {
  tide_Store *s = check_store(L);
  return tide_lstore_ok_or_raise(L, s,
                     tide_store_container_delete(s, luaL_checkinteger(L, 2)));
}

static int add_container(void *arg, const tide_StoreContainer *c) {
  lua_State *L = arg;
  push_container(L, c);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

static int store_containers(lua_State *L) {
  tide_Store *s = check_store(L);
  int rc;
  lua_newtable(L);
  rc = tide_store_container_each(s, luaL_checkinteger(L, 2), add_container,
                                 L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

/* ---- Target states ---- */

static void push_target(lua_State *L, const tide_StoreTarget *t) {
  lua_createtable(L, 0, 6);
  set_int(L, "container_id", t->container_id);
  set_blob(L, "key", t->key, t->key_len);
  set_int(L, "owner_id", t->owner_id);
  set_blob(L, "value_fp", t->value_fp, t->value_fp ? TIDE_FP_SIZE : 0);
  set_int(L, "pending", t->pending);
  set_int(L, "written_ns", t->written_ns);
}

static int add_target(void *arg, const tide_StoreTarget *t) {
  lua_State *L = arg;
  push_target(L, t);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

/* store:target_put(container_id, key, owner_id, value_fp, pending,
** written): written true records the time as when it was written; else
** the recorded time is kept. */
static int store_target_put(lua_State *L) {
  tide_Store *s = check_store(L);
  tide_StoreTarget t;
  memset(&t, 0, sizeof t);
  t.container_id = luaL_checkinteger(L, 2);
  t.key = luaL_checklstring(L, 3, &t.key_len);
  t.owner_id = luaL_checkinteger(L, 4);
  t.value_fp = opt_fp(L, 5);
  t.pending = (int)luaL_optinteger(L, 6, TIDE_TARGET_APPLIED);
  t.written = lua_toboolean(L, 7);
  return tide_lstore_ok_or_raise(L, s, tide_store_target_put(s, &t));
}

static int store_target_mark_applied(lua_State *L) {
  tide_Store *s = check_store(L);
  size_t len;
  int64_t container = luaL_checkinteger(L, 2);
  const char *key = luaL_checklstring(L, 3, &len);
  return tide_lstore_ok_or_raise(L, s,
                     tide_store_target_mark_applied(s, container, key, len));
}

static int store_targets_mark_applied(lua_State *L) {
  tide_Store *s = check_store(L);
  return tide_lstore_ok_or_raise(L, s, tide_store_targets_mark_applied(
                               s, luaL_checkinteger(L, 2)));
}

static int store_target_delete(lua_State *L) {
  tide_Store *s = check_store(L);
  size_t len;
  int64_t container = luaL_checkinteger(L, 2);
  const char *key = luaL_checklstring(L, 3, &len);
  return tide_lstore_ok_or_raise(L, s, tide_store_target_delete(s, container, key, len));
}

static int store_target(lua_State *L) {
  tide_Store *s = check_store(L);
  size_t len;
  int64_t container = luaL_checkinteger(L, 2);
  const char *key = luaL_checklstring(L, 3, &len);
  tide_StoreTarget t;
  int rc = tide_store_target_get(s, container, key, len, &t);
  if (rc == TIDE_ENOTFOUND) return 0;
  if (rc != 0) return tide_lstore_ok_or_raise(L, s, rc);
  push_target(L, &t);
  return 1;
}

static int store_targets_by_owner(lua_State *L) {
  tide_Store *s = check_store(L);
  int rc;
  lua_newtable(L);
  rc = tide_store_target_each_by_owner(s, luaL_checkinteger(L, 2), add_target,
                                       L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

/* store.h's committed read of a state, for reconcile.lua's submit (the
** owned states' read is claims:diff's, in C). */
static int store_target_committed(lua_State *L) {
  tide_Store *s = check_store(L);
  size_t len;
  int64_t container = luaL_checkinteger(L, 2);
  const char *key = luaL_checklstring(L, 3, &len);
  tide_StoreTarget t;
  int rc = tide_store_target_get_committed(s, container, key, len, &t);
  if (rc == TIDE_ENOTFOUND) return 0;
  if (rc != 0) return tide_lstore_ok_or_raise(L, s, rc);
  push_target(L, &t);
  return 1;
}

static int store_targets_by_container(lua_State *L) {
  tide_Store *s = check_store(L);
  int rc;
  lua_newtable(L);
  rc = tide_store_target_each_by_container(s, luaL_checkinteger(L, 2),
                                           add_target, L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

static int add_path(void *arg, const char *path, size_t len) {
  lua_State *L = arg;
  lua_pushlstring(L, path, len);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

/* store:target_owners(container_id, held_only) -> the paths of the
** components that own states of the container (held_only: of states the
** target may hold), each once. */
static int store_target_owners(lua_State *L) {
  tide_Store *s = check_store(L);
  int64_t container = luaL_checkinteger(L, 2);
  int held_only = lua_toboolean(L, 3), rc;
  lua_newtable(L);
  rc = tide_store_target_owner_each(s, container, held_only, add_path, L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

static int store_targets_mark_unknown(lua_State *L) {
  tide_Store *s = check_store(L);
  return tide_lstore_ok_or_raise(L, s, tide_store_targets_mark_unknown(
                               s, luaL_checkinteger(L, 2)));
}

/* store:targets_by_owners({ owner id, ... }) -> the states each owns, as
** targets_by_owner gives them, one after the other. */
static int store_targets_by_owners(lua_State *L) {
  tide_Store *s = check_store(L);
  size_t n;
  int64_t *ids;
  int rc;
  luaL_checktype(L, 2, LUA_TTABLE);
  ids = check_ids(L, 2, &n);
  lua_newtable(L);
  rc = tide_store_target_each_by_owners(s, ids, n, add_target, L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

/* store:targets_of_keys(container_id, { key, ... }, committed) -> the
** container's states among those keys, by key (a missing one is left
** out); committed: as target_committed reads them. */
static int store_targets_of_keys(lua_State *L) {
  tide_Store *s = check_store(L);
  int64_t container = luaL_checkinteger(L, 2);
  int committed = lua_toboolean(L, 4);
  size_t n, *lens;
  const char **keys = borrow_keys(L, 3, &n, &lens);
  int rc;
  lua_newtable(L);
  rc = tide_store_target_each_of_keys(s, container, keys, lens, n,
                                      committed, add_target, L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

static int store_targets_pending(lua_State *L) {
  tide_Store *s = check_store(L);
  int rc;
  lua_newtable(L);
  rc = tide_store_target_each_pending(s, luaL_checkinteger(L, 2), add_target,
                                      L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

/* ---- Intents ---- */

/* store:intent_add(app_id, container_id, keys) -> id, keys being the CBOR
** array of the keys of the batch. */
static int store_intent_add(lua_State *L) {
  tide_Store *s = check_store(L);
  size_t len;
  const char *keys = luaL_checklstring(L, 4, &len);
  int64_t id = 0;
  int rc = tide_store_intent_add(s, luaL_checkinteger(L, 2),
                                 luaL_checkinteger(L, 3), keys, len, &id);
  if (rc) return tide_lstore_ok_or_raise(L, s, rc);
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

static int store_intent_delete(lua_State *L) {
  tide_Store *s = check_store(L);
  return tide_lstore_ok_or_raise(L, s,
                     tide_store_intent_delete(s, luaL_checkinteger(L, 2)));
}

static int add_intent(void *arg, const tide_StoreIntent *in) {
  lua_State *L = arg;
  lua_createtable(L, 0, 3);
  set_int(L, "id", in->id);
  set_int(L, "container_id", in->container_id);
  set_blob(L, "keys", in->keys, in->keys_len);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

/* store:intents(app_id) -> { { id, container_id, keys }... } */
static int store_intents(lua_State *L) {
  tide_Store *s = check_store(L);
  int rc;
  lua_newtable(L);
  rc = tide_store_intent_each(s, luaL_checkinteger(L, 2), add_intent, L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

/* ---- Source items ---- */

static void push_source(lua_State *L, const tide_StoreSourceItem *i) {
  lua_createtable(L, 0, 5);
  set_str(L, "key", i->key, i->key_len);
  set_int(L, "size", i->size);
  set_int(L, "mtime_ns", i->mtime_ns);
  set_int(L, "inode", i->inode);
  set_blob(L, "content_fp", i->content_fp,
           i->content_fp ? TIDE_FP_SIZE : 0);
}

static int add_source(void *arg, const tide_StoreSourceItem *i) {
  lua_State *L = arg;
  lua_pushlstring(L, i->key, i->key_len);
  push_source(L, i);
  lua_rawset(L, -3);
  return 0;
}

/* store:source_items(app_id, source) -> { [key] = item } */
static int store_source_items(lua_State *L) {
  tide_Store *s = check_store(L);
  int64_t app_id = luaL_checkinteger(L, 2);
  size_t len;
  const char *source = luaL_checklstring(L, 3, &len);
  int rc;
  lua_newtable(L);
  rc = tide_store_source_each(s, app_id, source, len, add_source, L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

/* store:source_put(app_id, source, key, size, mtime_ns, inode, fp) */
static int store_source_put(lua_State *L) {
  tide_Store *s = check_store(L);
  tide_StoreSourceItem i;
  i.app_id = luaL_checkinteger(L, 2);
  i.source = luaL_checklstring(L, 3, &i.source_len);
  i.key = luaL_checklstring(L, 4, &i.key_len);
  i.size = luaL_checkinteger(L, 5);
  i.mtime_ns = luaL_checkinteger(L, 6);
  i.inode = luaL_checkinteger(L, 7);
  i.content_fp = opt_fp(L, 8);
  return tide_lstore_ok_or_raise(L, s, tide_store_source_put(s, &i));
}

static int store_source_delete(lua_State *L) {
  tide_Store *s = check_store(L);
  size_t source_len, key_len;
  int64_t app_id = luaL_checkinteger(L, 2);
  const char *source = luaL_checklstring(L, 3, &source_len);
  const char *key = luaL_checklstring(L, 4, &key_len);
  return tide_lstore_ok_or_raise(L, s, tide_store_source_delete(s, app_id, source,
                                                    source_len, key,
                                                    key_len));
}

/* ---- Runs ---- */

static int store_run_begin(lua_State *L) {
  tide_Store *s = check_store(L);
  int64_t id;
  int rc = tide_store_run_begin(s, luaL_checkinteger(L, 2), &id);
  if (rc != 0) return tide_lstore_ok_or_raise(L, s, rc);
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

static int store_run_finish(lua_State *L) {
  tide_Store *s = check_store(L);
  size_t len;
  int64_t run_id = luaL_checkinteger(L, 2);
  int status = (int)luaL_checkinteger(L, 3);
  const char *stats = luaL_optlstring(L, 4, NULL, &len);
  return tide_lstore_ok_or_raise(L, s,
                     tide_store_run_finish(s, run_id, status, stats, len));
}

static int add_run(void *arg, const tide_StoreRun *r) {
  lua_State *L = arg;
  lua_createtable(L, 0, 5);
  set_int(L, "id", r->id);
  set_int(L, "started_ns", r->started_ns);
  set_int(L, "finished_ns", r->finished_ns);
  set_int(L, "status", r->status);
  set_str(L, "stats", r->stats, r->stats_len);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

static int store_runs(lua_State *L) {
  tide_Store *s = check_store(L);
  int rc;
  lua_newtable(L);
  rc = tide_store_run_each_latest(s, luaL_checkinteger(L, 2),
                                  (int)luaL_optinteger(L, 3, 10), add_run, L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

static int store_gc(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, STORE_TYPE);
  if (b->s && !b->borrowed) {
    tide_store_rollback(b->s); /* an abandoned store commits nothing */
    tide_store_close(b->s);
    b->s = NULL;
  }
  return 0;
}

void tide_lstore_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"close", store_close}, {"flush", store_flush},
    {"flush_send", store_flush_send}, {"flush_wait", store_flush_wait},
    {"maybe_flush", store_maybe_flush}, {"rollback", store_rollback},
    {"holds_memo_lock", store_holds_memo_lock},
    {"batches_lost", store_batches_lost},
    {"set_batch_limits", store_set_batch_limits}, {"path", store_path},
    {"reclaim", store_reclaim}, {"space", store_space},
    {"app", store_app}, {"apps", store_apps},
    {"app_delete", store_app_delete}, {"components", store_components},
    {"component", store_component}, {"component_put", store_component_put},
    {"component_delete", store_component_delete},
    {"component_hold", store_component_hold},
    {"components_delete", store_components_delete},
    {"component_record", store_component_record},
    {"component_path", store_component_path},
    {"component_state", store_component_state},
    {"components_before", store_components_before},
    {"targets_read_ahead", store_targets_read_ahead},
    {"memos_of", store_memos_of},
    {"backend", store_backend},
    {"targets_forget_ahead", store_targets_forget_ahead},
    {"memo_get", store_memo_get}, {"memo_put", store_memo_put},
    {"memo_delete", store_memo_delete}, {"memo_keys", store_memo_keys},
    {"intent_add", store_intent_add}, {"intent_delete", store_intent_delete},
    {"intents", store_intents},
    {"memo_ref_add", store_memo_ref_add}, {"memo_refs", store_memo_refs},
    {"memo_refs_clear", store_memo_refs_clear},
    {"memo_delete_unused", store_memo_delete_unused},
    {"memo_delete_unreferenced", store_memo_delete_unreferenced},
    {"container", store_container},
    {"container_update", store_container_update},
    {"container_delete", store_container_delete},
    {"containers", store_containers}, {"target", store_target},
    {"target_put", store_target_put},
    {"target_mark_applied", store_target_mark_applied},
    {"target_delete", store_target_delete},
    {"targets_mark_applied", store_targets_mark_applied},
    {"targets_by_owner", store_targets_by_owner},
    {"target_committed", store_target_committed},
    {"targets_by_container", store_targets_by_container},
    {"target_owners", store_target_owners},
    {"targets_by_owners", store_targets_by_owners},
    {"targets_of_keys", store_targets_of_keys},
    {"targets_mark_unknown", store_targets_mark_unknown},
    {"targets_pending", store_targets_pending},
    {"source_items", store_source_items}, {"source_put", store_source_put},
    {"source_delete", store_source_delete}, {"run_begin", store_run_begin},
    {"run_finish", store_run_finish}, {"runs", store_runs},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, STORE_TYPE)) {
    luaL_newlib(L, methods);
    tide_lstore_work_methods(L);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, store_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, store_open);
  lua_setfield(L, -2, "store_open");
  lua_pushcfunction(L, store_is_postgres);
  lua_setfield(L, -2, "store_is_postgres");
  lua_pushcfunction(L, store_public);
  lua_setfield(L, -2, "store_public");
}
