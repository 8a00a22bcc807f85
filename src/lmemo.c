/*
** Lua binding of the memo-hit cache: core.memo_cache_new() returns the
** cache one run keeps of the memo entries it has found valid, so that a
** memo hit costs one lookup in C and never hashes with BLAKE2b, decodes a
** dependency set or builds a table for a scalar result.
**
** The algorithm: an entry's cache key is the function's logic fingerprint
** (16 bytes) followed by the canonical encodings of its arguments, the
** same bytes the memo key (core.memo_key) is the BLAKE2b of, so that equal
** keys mean equal memo keys. A hit encodes the arguments with the shared
** encoder (no allocation once it has grown), looks the bytes up in a
** hash map (hashmap.h) and pushes the results: from a table of them when
** every result is a scalar (a string, a number, a boolean or nil: nothing
** a caller could modify), else decoded from the stored encoding, so that
** callers never share a table.
**
** Entries are numbered from 1 in the order they are put; the store's
** memo key of entry i is cache:key(i). An argument that cannot be encoded
** is a miss here (the engine's slow path raises the error naming it).
** Misuse raises; a probe never fails.
*/
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "cbor.h"
#include "fingerprint.h"
#include "hashmap.h"
#include "lcore.h"

#define MEMO_TYPE "tide.MemoCache"

/* Uservalue slots, by entry number: its results (a table of scalars, or
** the encoding), the store's memo key, the counts table of its function
** (the run's stats.functions[name]). */
enum { UV_RESULTS = 1, UV_KEYS, UV_STATS, UV_COUNT = UV_STATS };

typedef struct {
  tide_HashMap map;  /* cache key -> entry number */
  tide_CborEnc enc;  /* its output is the key being looked up */
  tide_Buf hits;     /* uint64_t per entry: hits not yet counted in Lua */
  tide_Buf extra;    /* uint8_t per entry: it has dependencies or target
                     ** states to replay (cache:set_extra), so a hit takes
                     ** the Lua path */
  lua_Integer count;
  int open;
  int busy;          /* building a key (a __tide_key may call back) */
} Cache;

static Cache *check_cache(lua_State *L) {
  Cache *c = luaL_checkudata(L, 1, MEMO_TYPE);
  if (!c->open) luaL_error(L, "memo cache is closed");
  return c;
}

static int cache_gc(lua_State *L) {
  Cache *c = luaL_checkudata(L, 1, MEMO_TYPE);
  if (c->open) {
    tide_hashmap_close(&c->map);
    tide_cbor_enc_close(&c->enc);
    tide_buf_close(&c->hits);
    tide_buf_close(&c->extra);
    c->open = 0;
  }
  return 0;
}

static int cache_new(lua_State *L) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  Cache *c = lua_newuserdatauv(L, sizeof *c, UV_COUNT);
  tide_hashmap_init(&c->map, alloc, ud);
  tide_cbor_enc_init(&c->enc, alloc, ud);
  tide_buf_init(&c->hits, alloc, ud);
  tide_buf_init(&c->extra, alloc, ud);
  c->enc.root = "argument";
  c->count = 0;
  c->open = 1;
  c->busy = 0;
  luaL_setmetatable(L, MEMO_TYPE);
  lua_newtable(L);
  lua_setiuservalue(L, -2, UV_RESULTS);
  lua_newtable(L);
  lua_setiuservalue(L, -2, UV_KEYS);
  lua_newtable(L);
  lua_setiuservalue(L, -2, UV_STATS);
  return 1;
}

/* Builds the cache key of logic (16 bytes) and the n arguments from stack
** index first on in c->enc.out, with the cache's own encoder (a
** __tide_key that probes again meanwhile gets a miss); 0 when an argument
** cannot be encoded or memory ran out. [-0, +0, m] */
static int key_of(lua_State *L, Cache *c, const char *logic, int first,
                  int n) {
  int i, ok = 1;
  if (c->busy) return 0;
  c->busy = 1;
  c->enc.out.len = 0;
  if (tide_buf_append(&c->enc.out, logic, TIDE_FP_SIZE) != 0) ok = 0;
  for (i = 0; ok && i < n; i++)
    ok = tide_cbor_encode(&c->enc, L, first + i) == 0;
  c->busy = 0;
  return ok;
}

/* key_of for the methods: logic at stack index 2, checked. */
static int build_key(lua_State *L, Cache *c, int first, int n) {
  size_t ll;
  const char *logic = luaL_checklstring(L, 2, &ll);
  luaL_argcheck(L, ll == TIDE_FP_SIZE, 2, "16-byte fingerprint expected");
  luaL_argcheck(L, n >= 0 && n <= lua_gettop(L) - first + 1, first - 1,
                "bad count");
  return key_of(L, c, logic, first, n);
}

/* cache:probe(logic, n, ...) -> entry number, or nil */
static int cache_probe(lua_State *L) {
  Cache *c = check_cache(L);
  const uint64_t *id;
  if (!build_key(L, c, 4, (int)luaL_checkinteger(L, 3))) return 0;
  id = tide_hashmap_get(&c->map, c->enc.out.data, c->enc.out.len);
  if (id == NULL) return 0;
  lua_pushinteger(L, (lua_Integer)*id);
  return 1;
}

/* Pushes the n results of the packed table at idx. [-0, +n, m] */
static int push_packed(lua_State *L, int idx) {
  lua_Integer i, n;
  lua_getfield(L, idx, "n");
  n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, (int)n, "too many results");
  for (i = 1; i <= n; i++) lua_rawgeti(L, idx, i);
  return (int)n;
}

/* cache:results(i) -> the results of entry i */
static int cache_results(lua_State *L) {
  char err[160];
  size_t len;
  const char *s;
  int top;
  check_cache(L);
  lua_getiuservalue(L, 1, UV_RESULTS);
  top = lua_gettop(L);
  switch (lua_rawgeti(L, top, luaL_checkinteger(L, 2))) {
  case LUA_TTABLE:
    return push_packed(L, top + 1);
  case LUA_TSTRING:
    s = lua_tolstring(L, -1, &len);
    if (tide_cbor_decode(L, (const uint8_t *)s, len, err, sizeof err) != 0)
      return luaL_error(L, "memo entry: %s", err);
    return push_packed(L, top + 2);
  default:
    return luaL_argerror(L, 2, "no such entry");
  }
}

/* Results encoded in more bytes are kept encoded (see cache_put). */
#define KEEP_DECODED_MAX 1024

/* Whether every result of the packed table on top is a scalar. */
static int all_scalars(lua_State *L) {
  lua_Integer i, n;
  int ok = 1;
  lua_getfield(L, -1, "n");
  n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  for (i = 1; ok && i <= n; i++) {
    int t = lua_rawgeti(L, -1, i);
    ok = t == LUA_TNIL || t == LUA_TBOOLEAN || t == LUA_TNUMBER ||
         t == LUA_TSTRING;
    lua_pop(L, 1);
  }
  return ok;
}

/* cache:put(logic, memo_key, value, counts, n, ...) -> entry number:
** value is the entry's encoded results (a packed table), memo_key the
** store's key, counts the function's counts table (calls, hits), where
** cache:count() adds the hits the C path answered. */
static int cache_put(lua_State *L) {
  Cache *c = check_cache(L);
  size_t kl, vl;
  luaL_checklstring(L, 3, &kl);
  const char *value = luaL_checklstring(L, 4, &vl);
  char err[160];
  lua_Integer id;
  int scalars;
  luaL_argcheck(L, kl == TIDE_FP_SIZE, 3, "16-byte memo key expected");
  luaL_checktype(L, 5, LUA_TTABLE);
  if (!build_key(L, c, 7, (int)luaL_checkinteger(L, 6)))
    return luaL_error(L, "memo cache: cannot encode the arguments");
  /* A large encoding is kept as it is, undecoded: decoding it only to
  ** learn whether its results are scalars would cost more than a hit's
  ** decoding saves (a vector of 384 floats: 2 KB). */
  if (vl > KEEP_DECODED_MAX) {
    lua_pushnil(L);
  } else {
    if (tide_cbor_decode(L, (const uint8_t *)value, vl, err, sizeof err)
        != 0)
      return luaL_error(L, "memo entry: %s", err);
    if (!lua_istable(L, -1))
      return luaL_error(L, "memo entry: not a table");
  }
  {
    uint64_t zero = 0;
    if (tide_buf_reserve(&c->extra, 1) != 0 ||
        tide_buf_append(&c->hits, &zero, sizeof zero) != 0)
      return luaL_error(L, "out of memory");
    c->extra.data[c->extra.len++] = 0;
  }
  id = ++c->count;
  if (tide_hashmap_put(&c->map, c->enc.out.data, c->enc.out.len,
                       (uint64_t)id, NULL) != 0)
    return luaL_error(L, "out of memory");
  lua_getiuservalue(L, 1, UV_STATS);
  lua_pushvalue(L, 5);
  lua_rawseti(L, -2, id);
  lua_pop(L, 1);
  /* The decoded results are on top: kept when no caller could change
  ** them, else their encoding is (decoded again for every hit). */
  scalars = !lua_isnil(L, -1) && all_scalars(L);
  lua_getiuservalue(L, 1, UV_RESULTS);
  lua_pushvalue(L, scalars ? -2 : 4);
  lua_rawseti(L, -2, id);
  lua_getiuservalue(L, 1, UV_KEYS);
  lua_pushvalue(L, 3);
  lua_rawseti(L, -2, id);
  lua_pushinteger(L, id);
  return 1;
}

/* cache:set_extra(id, has): whether entry id has dependencies or target
** states to replay (run.memo_extra), which a hit in C cannot do. */
static int cache_set_extra(lua_State *L) {
  Cache *c = check_cache(L);
  lua_Integer id = luaL_checkinteger(L, 2);
  luaL_argcheck(L, id >= 1 && id <= c->count, 2, "no such entry");
  c->extra.data[id - 1] = (unsigned char)lua_toboolean(L, 3);
  return 0;
}

/* Adds n to the integer field k of the table at idx. */
static void add_to(lua_State *L, int idx, const char *k, uint64_t n) {
  lua_getfield(L, idx, k);
  lua_pushinteger(L, lua_tointeger(L, -1) + (lua_Integer)n);
  lua_setfield(L, idx, k);
  lua_pop(L, 1);
}

/* cache:count(): adds the hits the C path answered to their functions'
** counts (calls and hits), once; the run calls it when its components
** are done, before its counts are read. */
static int cache_count(lua_State *L) {
  Cache *c = check_cache(L);
  uint64_t *hits = (uint64_t *)c->hits.data;
  lua_Integer i;
  lua_getiuservalue(L, 1, UV_STATS);
  for (i = 1; i <= c->count; i++) {
    if (hits[i - 1] == 0) continue;
    lua_rawgeti(L, 2, i);
    add_to(L, 3, "calls", hits[i - 1]);
    add_to(L, 3, "hits", hits[i - 1]);
    lua_pop(L, 1);
    hits[i - 1] = 0;
  }
  return 0;
}

/* cache:key(i) -> the store's memo key of entry i */
static int cache_key(lua_State *L) {
  check_cache(L);
  lua_getiuservalue(L, 1, UV_KEYS);
  lua_rawgeti(L, -1, luaL_checkinteger(L, 2));
  return 1;
}

/* ---- A tide.fn's call (its __call) ----
**
** fn(...) inside a component is a memo hit when the running coroutine's
** frame (task_of[coroutine]: the frame is the scheduler's task) has a run
** whose memo cache holds a valid entry for fn's logic and these
** arguments, and the entry carries
** no dependency or target state to replay. Then everything a hit does is
** done here: the counts (kept in C until cache:count), the caller's
** dependency on fn (deps.fns[name] = logic), the component's use of the
** entry (frame.memos[id]), the results. Every other case calls the run's Lua
** path (run.call(frame, fn, ...)) or, outside a component, fn's body,
** with lua_callk: user code below may yield to the scheduler. */

/* The continuation of a call into Lua: the results above ctx are ours. */
static int call_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return lua_gettop(L) - (int)ctx;
}

/* The closure's upvalues: task_of, the memo cache's metatable, then the
** field names the hit path reads, interned once (a lua_getfield with a C
** string would look each up again). */
enum {
  UP_TASKS = 1, UP_CACHE_MT, K_RUN, K_MEMO, K_PROBE, K_LOGIC_RAW,
  K_STACK, K_DEPS, K_FNS, K_NAME, K_LOGIC, K_MEMOS, K_N,
  UP_COUNT = K_N
};
static const char *const key_names[] = {
  "run", "memo", "memo_probe", "_logic_raw", "memo_stack", "deps",
  "fns", "name", "_logic", "memos", "n",
};

/* Pushes the raw field k (a K_* upvalue) of the table at the absolute
** index idx; whether it is of type t. */
static int field_is(lua_State *L, int idx, int k, int t) {
  lua_pushvalue(L, lua_upvalueindex(k));
  return lua_rawget(L, idx) == t;
}


/* The hit path: returns 1 and the entry's number in *out once the hit is
** counted and recorded, or 0 when the call must take the Lua path (having
** changed nothing). Either way the stack holds what it pushed, for the
** caller to drop. Arguments are at 2..top, frame and run at their
** indexes; the cache is left at *cache_at. */
static int fast_hit(lua_State *L, int top, int frame, int run,
                    int *cache_at, lua_Integer *out) {
  Cache *c;
  const char *logic;
  size_t ll;
  const uint64_t *found;
  lua_Integer id;
  int cache, scope = frame, deps, fns, name;
  if (!field_is(L, 1, K_MEMO, LUA_TBOOLEAN) || !lua_toboolean(L, -1) ||
      !field_is(L, run, K_PROBE, LUA_TUSERDATA))
    return 0;
  cache = *cache_at = lua_gettop(L);
  if (!lua_getmetatable(L, cache) ||
      !lua_rawequal(L, -1, lua_upvalueindex(UP_CACHE_MT)))
    return 0;
  c = lua_touserdata(L, cache);
  if (!c->open || !field_is(L, 1, K_LOGIC_RAW, LUA_TSTRING)) return 0;
  logic = lua_tolstring(L, -1, &ll);
  if (ll != TIDE_FP_SIZE) return 0;
  if (field_is(L, frame, K_STACK, LUA_TTABLE)) {
    lua_Unsigned depth = lua_rawlen(L, -1);
    if (depth > 0) {
      lua_rawgeti(L, -1, (lua_Integer)depth);
      scope = lua_gettop(L);
    }
  }
  if (!field_is(L, scope, K_DEPS, LUA_TTABLE)) return 0;
  deps = lua_gettop(L);
  if (!field_is(L, deps, K_FNS, LUA_TTABLE)) return 0;
  fns = lua_gettop(L);
  if (!key_of(L, c, logic, 2, top - 1)) return 0;
  found = tide_hashmap_get(&c->map, c->enc.out.data, c->enc.out.len);
  if (found == NULL) return 0;
  id = (lua_Integer)*found;
  if (c->extra.data[id - 1] || !field_is(L, 1, K_NAME, LUA_TSTRING))
    return 0;
  name = lua_gettop(L);
  if (!field_is(L, 1, K_LOGIC, LUA_TSTRING)) return 0;
  /* A hit: from here on nothing refuses. fns[name] = logic, unless it
  ** is there already. */
  lua_pushvalue(L, name);
  if (lua_rawget(L, fns) != LUA_TSTRING || !lua_rawequal(L, -1, -2)) {
    lua_pushvalue(L, name);
    lua_pushvalue(L, -3);
    lua_rawset(L, fns);
  }
  ((uint64_t *)c->hits.data)[id - 1]++; /* counted in Lua: cache:count */
  if (!field_is(L, frame, K_MEMOS, LUA_TTABLE)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, lua_upvalueindex(K_MEMOS));
    lua_pushvalue(L, -2);
    lua_rawset(L, frame);
  }
  lua_pushboolean(L, 1);
  lua_rawseti(L, -2, id);
  *out = id;
  return 1;
}

/* Pushes the results of the packed table at idx (fn_call's "n"). */
static int push_results(lua_State *L, int idx) {
  lua_Integer i, n;
  lua_pushvalue(L, lua_upvalueindex(K_N));
  lua_rawget(L, idx);
  n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, (int)n, "too many results");
  for (i = 1; i <= n; i++) lua_rawgeti(L, idx, i);
  return (int)n;
}

/* fn_call(self, ...): tide.fn's __call. */
static int fn_call(lua_State *L) {
  int top = lua_gettop(L), frame, run, cache = 0, i;
  lua_Integer id;
  lua_pushthread(L);
  /* The running coroutine's task is its component's frame. */
  if (lua_rawget(L, lua_upvalueindex(UP_TASKS)) != LUA_TTABLE) {
    /* Outside a component: a plain call of the body. */
    lua_settop(L, top);
    lua_getfield(L, 1, "body");
    for (i = 2; i <= top; i++) lua_pushvalue(L, i);
    lua_callk(L, top - 1, LUA_MULTRET, top, call_k);
    return lua_gettop(L) - top;
  }
  frame = lua_gettop(L);
  field_is(L, frame, K_RUN, LUA_TTABLE);
  run = frame + 1;
  if (fast_hit(L, top, frame, run, &cache, &id)) {
    /* The entry's results, from the run's cache. */
    int results;
    lua_settop(L, cache);
    lua_getiuservalue(L, cache, UV_RESULTS);
    results = lua_gettop(L);
    if (lua_rawgeti(L, results, id) == LUA_TTABLE)
      return push_results(L, results + 1);
    {
      char err[160];
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      if (s == NULL ||
          tide_cbor_decode(L, (const uint8_t *)s, len, err, sizeof err) != 0)
        return luaL_error(L, "memo entry: %s", s ? err : "missing");
      return push_results(L, results + 2);
    }
  }
  /* The run's Lua path: run.call(frame, self, ...). */
  lua_settop(L, run);
  lua_getfield(L, run, "call");
  lua_pushvalue(L, frame);
  for (i = 1; i <= top; i++) lua_pushvalue(L, i);
  lua_callk(L, top + 1, LUA_MULTRET, run, call_k);
  return lua_gettop(L) - run;
}

/* core.fn_caller(task_of) -> the __call of tide.fn objects. */
static int fn_caller(lua_State *L) {
  size_t i;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_getmetatable(L, MEMO_TYPE);
  for (i = 0; i < sizeof key_names / sizeof key_names[0]; i++)
    lua_pushstring(L, key_names[i]);
  lua_pushcclosure(L, fn_call, UP_COUNT);
  return 1;
}

void tide_lmemo_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"probe", cache_probe}, {"results", cache_results}, {"put", cache_put},
    {"set_extra", cache_set_extra},
    {"key", cache_key}, {"count", cache_count}, {"close", cache_gc},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, MEMO_TYPE)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, cache_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, cache_new);
  lua_setfield(L, -2, "memo_cache_new");
  lua_pushcfunction(L, fn_caller);
  lua_setfield(L, -2, "fn_caller");
}
