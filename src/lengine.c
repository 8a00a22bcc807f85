/*
** Lua binding of the engine (engine.h): core.engine_new{ base, db }
** returns the engine an app's updates share (see tide.app). A cycle runs
** between engine:cycle_begin(), which hands out the engine's store, index,
** loop and scheduler as Lua objects that borrow them (and whether another
** connection wrote the store since the last cycle: then the index is read
** whole), and engine:cycle_end(stats); engine:loop() is the loop between
** cycles (live mode waits on it). Misuse raises; runtime failures return
** nil, message, code name.
*/
#include <lauxlib.h>
#include <lua.h>

#include "engine.h"
#include "lcore.h"

#define ENGINE_TYPE "tide.Engine"

/* Uservalue slots: the Lua objects over the engine's parts. */
enum {
  UV_STORE = 1, UV_INDEX, UV_LOOP, UV_SCHED, UV_WORKERS,
  UV_COUNT = UV_WORKERS
};

typedef struct {
  tide_Engine *e;          /* NULL once closed */
  int owned;               /* made here (else by tide_engine_new) */
  const tide_Store *wrapped; /* the store UV_STORE borrows */
} Box;

static Box *check_box(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, ENGINE_TYPE);
  if (b->e == NULL) luaL_error(L, "engine is closed");
  return b;
}

static const char *code_name(int rc) {
  switch (rc) {
  case TIDE_ELOCKED: return "locked";
  case TIDE_EVERSION: return "version";
  case TIDE_ENOTSTORE: return "notstore";
  case TIDE_ENOTFOUND: return "notfound";
  case TIDE_ENOMEM: return "nomem";
  case TIDE_EINVAL: return "invalid"; /* a host's misuse: tide_engine_* */
  default: return "engine";
  }
}

static int fail(lua_State *L, tide_Engine *e, int rc) {
  luaL_pushfail(L);
  lua_pushstring(L, e ? e->msg : tide_strerror(rc));
  lua_pushstring(L, code_name(rc));
  return 3;
}

/* Pushes the uservalue slot's object, made by push when missing. */
static void slot(lua_State *L, int uv, void (*push)(lua_State *, void *),
                 void *part) {
  if (lua_getiuservalue(L, 1, uv) == LUA_TNIL) {
    lua_pop(L, 1);
    push(L, part);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, uv);
  }
}

static void push_store(lua_State *L, void *p) {
  tide_lstore_push_borrowed(L, p);
}
static void push_index(lua_State *L, void *p) {
  tide_lindex_push_borrowed(L, p);
}
static void push_loop(lua_State *L, void *p) {
  tide_lloop_push_borrowed(L, p);
}
static void push_sched(lua_State *L, void *p) {
  tide_lsched_push_borrowed(L, p);
}

/* Lets go of the Lua object in uservalue slot uv of the engine at idx
** (its close lets go of the engine's part without freeing it). */
static void let_go(lua_State *L, int idx, int uv) {
  idx = lua_absindex(L, idx);
  if (lua_getiuservalue(L, idx, uv) != LUA_TNIL &&
      luaL_getmetafield(L, -1, "__index") == LUA_TTABLE) {
    if (lua_getfield(L, -1, "close") == LUA_TFUNCTION) {
      lua_pushvalue(L, -3);
      lua_call(L, 1, 0);
    } else {
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setiuservalue(L, idx, uv);
}

/* Lets go of the Lua objects over all the engine's parts. */
static void detach(lua_State *L, int idx) {
  int uv;
  for (uv = UV_STORE; uv <= UV_COUNT; uv++) let_go(L, idx, uv);
}

/* core.engine_new{ base = absolute folder, db = store path [, loop]
** [, shared] }: loop, a host's loop (core.luv_loop), which the host runs;
** else the engine makes its own. shared: a worker of an update another
** process runs (store.h, TIDE_STORE_SHARED). */
static int engine_new(lua_State *L) {
  const char *base, *db;
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  Box *b;
  int rc;
  uv_loop_t *loop;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "base");
  lua_getfield(L, 1, "db");
  base = luaL_checkstring(L, -2);
  db = luaL_checkstring(L, -1);
  /* A host's loop (core.luv_loop), or NULL for one of its own. */
  lua_getfield(L, 1, "loop");
  luaL_argcheck(L, lua_isnil(L, -1) || lua_islightuserdata(L, -1), 1,
                "loop must come from core.luv_loop");
  loop = lua_touserdata(L, -1);
  lua_pop(L, 1);
  b = lua_newuserdatauv(L, sizeof *b, UV_COUNT);
  b->e = NULL;
  b->owned = 1;
  b->wrapped = NULL;
  luaL_setmetatable(L, ENGINE_TYPE);
  rc = tide_engine_make(&b->e, NULL, base, db, loop, alloc, ud);
  if (rc != 0) {
    int n = fail(L, b->e, rc);
    tide_engine_destroy(b->e);
    b->e = NULL;
    return n;
  }
  lua_getfield(L, 1, "shared");
  b->e->shared = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  b->e->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  return 1;
}

/* The engine made by tide_engine_new, as a Lua object. [-0, +1, m] */
void tide_lengine_push(lua_State *L, tide_Engine *e) {
  Box *b = lua_newuserdatauv(L, sizeof *b, UV_COUNT);
  b->e = e;
  b->owned = 0;
  b->wrapped = NULL;
  luaL_setmetatable(L, ENGINE_TYPE);
}

/* engine:cycle_begin() -> store, index, loop, scheduler, reopened */
static int engine_cycle_begin(lua_State *L) {
  Box *b = check_box(L);
  int reopened, rc = tide_engine_cycle_begin(b->e, &reopened);
  if (rc != 0) return fail(L, b->e, rc);
  if (b->wrapped != b->e->store) {
    /* A store that failed was closed and opened again. */
    let_go(L, 1, UV_STORE);
    b->wrapped = b->e->store;
  }
  /* Another connection wrote the store: the index reads it whole. */
  if (reopened) tide_index_cool(b->e->index);
  slot(L, UV_STORE, push_store, b->e->store);
  slot(L, UV_INDEX, push_index, b->e->index);
  slot(L, UV_LOOP, push_loop, b->e->loop);
  slot(L, UV_SCHED, push_sched, b->e->sched);
  lua_pushboolean(L, reopened);
  return 5;
}

/* engine:loop() -> the engine's loop (between cycles too: live mode waits
** on it for file events) */
static int engine_loop(lua_State *L) {
  Box *b = check_box(L);
  slot(L, UV_LOOP, push_loop, b->e->loop);
  return 1;
}

/* engine:owns_state() -> whether the Lua state is the engine's own
** (tide_engine_new made it), not a host's: live mode may then time its
** full collections (live.lua). */
static int engine_owns_state(lua_State *L) {
  lua_pushboolean(L, tide_engine_owns_state(check_box(L)->e));
  return 1;
}

/* engine:sched() -> the engine's scheduler (between cycles too: a host's
** step sets its deadline) */
static int engine_sched(lua_State *L) {
  Box *b = check_box(L);
  slot(L, UV_SCHED, push_sched, b->e->sched);
  return 1;
}

static int64_t count(lua_State *L, int t, const char *group,
                     const char *name) {
  int64_t v = 0;
  if (lua_getfield(L, t, group) == LUA_TTABLE) {
    lua_getfield(L, -1, name);
    v = (int64_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return v;
}

/* engine:cycle_end([stats]) -> true | nil, message, code: records the
** cycle's counts (the table app:update returns) and lets the writer lock
** go. */
static int engine_cycle_end(lua_State *L) {
  Box *b = check_box(L);
  tide_Stats *st = tide_engine_stats_of(b->e);
  int rc;
  if (lua_istable(L, 2)) {
    st->components.added = count(L, 2, "components", "added");
    st->components.reprocessed = count(L, 2, "components", "reprocessed");
    st->components.deleted = count(L, 2, "components", "deleted");
    st->components.unchanged = count(L, 2, "components", "unchanged");
    st->components.errors = count(L, 2, "components", "errors");
    st->targets.inserted = count(L, 2, "targets", "inserted");
    st->targets.updated = count(L, 2, "targets", "updated");
    st->targets.deleted = count(L, 2, "targets", "deleted");
    lua_getfield(L, 2, "elapsed_ms");
    st->elapsed_ms = (double)lua_tonumber(L, -1);
    lua_getfield(L, 2, "interrupted");
    st->interrupted = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  rc = tide_engine_cycle_end(b->e);
  if (rc != 0) return fail(L, b->e, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* engine:workers(n, path, cpath) -> the pool of n worker threads
** (lworkers.c), made on first use and kept for the session; a different
** n replaces it. */
static int engine_workers(lua_State *L) {
  Box *b = check_box(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  const char *path = luaL_checkstring(L, 3);
  const char *cpath = luaL_checkstring(L, 4);
  luaL_argcheck(L, n >= 1 && n <= 1024, 2, "must be 1 to 1024");
  if (lua_getiuservalue(L, 1, UV_WORKERS) != LUA_TNIL) {
    lua_getfield(L, -1, "count");
    lua_pushvalue(L, -2);
    lua_call(L, 1, 1);
    if (lua_tointeger(L, -1) == n) {
      lua_pop(L, 1);
      return 1;
    }
    lua_pop(L, 2);
    let_go(L, 1, UV_WORKERS);
  } else {
    lua_pop(L, 1);
  }
  tide_lworkers_push(L, b->e->loop, (int)n, path, cpath);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, UV_WORKERS);
  return 1;
}

/* engine:fail(message): the message a C host reads. */
static int engine_fail(lua_State *L) {
  Box *b = check_box(L);
  tide_engine_fail(b->e, TIDE_ELUA, "%s", luaL_checkstring(L, 2));
  return 0;
}

static int engine_message(lua_State *L) {
  lua_pushstring(L, check_box(L)->e->msg);
  return 1;
}

static int engine_base(lua_State *L) {
  lua_pushstring(L, tide_engine_base(check_box(L)->e));
  return 1;
}

static int engine_db(lua_State *L) {
  lua_pushstring(L, tide_engine_db(check_box(L)->e));
  return 1;
}

static int engine_in_cycle(lua_State *L) {
  lua_pushboolean(L, tide_engine_in_cycle(check_box(L)->e));
  return 1;
}

/* engine:cycles() -> how many cycles this engine has run */
static int engine_cycles(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)tide_engine_stats_of(check_box(L)->e)
                       ->cycles);
  return 1;
}

/* engine:close(): closes the store and frees the engine (an engine a C
** host made is the host's to free: it is only let go of). */
static int engine_close(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, ENGINE_TYPE);
  if (b->e == NULL) return 0;
  if (b->e->in_cycle)
    return luaL_error(L, "engine: cannot close during an update");
  detach(L, 1);
  if (b->owned) tide_engine_destroy(b->e);
  b->e = NULL;
  return 0;
}

static int engine_gc(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, ENGINE_TYPE);
  if (b->e == NULL) return 0;
  detach(L, 1);
  if (b->owned) tide_engine_destroy(b->e);
  b->e = NULL;
  return 0;
}

void tide_lengine_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"cycle_begin", engine_cycle_begin}, {"cycle_end", engine_cycle_end},
    {"workers", engine_workers},
    {"fail", engine_fail}, {"message", engine_message},
    {"base", engine_base}, {"db", engine_db}, {"in_cycle", engine_in_cycle},
    {"cycles", engine_cycles}, {"close", engine_close},
    {"loop", engine_loop}, {"sched", engine_sched},
    {"owns_state", engine_owns_state},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, ENGINE_TYPE)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, engine_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, engine_new);
  lua_setfield(L, -2, "engine_new");
}
