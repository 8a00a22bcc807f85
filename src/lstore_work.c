/*
** The state store's methods for shared updates (store.h: a PostgreSQL
** store's updates, work items, workers and their leases), added to the
** store object of lstore.c by tide_lstore_work_methods. Same convention:
** misuse raises; a runtime failure is a read or write the engine cannot go
** on without and raises the store's message as it is. store:work_claim
** with wait, in a task, lets the other tasks run until the claim's answer
** may be in (the store's socket readable).
*/
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "lcore.h"
#include "lstore.h"
#include "scheduler.h"
#include "store.h"

/* store:update_open(app_id) -> id */
static int store_update_open(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  int64_t id;
  int rc = tide_store_update_open(s, luaL_checkinteger(L, 2), &id);
  if (rc) return tide_lstore_ok_or_raise(L, s, rc);
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

/* store:update_set(id, state[, info]) */
static int store_update_set(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  size_t len;
  const char *info = luaL_optlstring(L, 4, NULL, &len);
  return tide_lstore_ok_or_raise(L, s, tide_store_update_set(s, luaL_checkinteger(L, 2),
                                                 (int)luaL_checkinteger(L, 3),
                                                 info, info ? len : 0));
}

/* store:update_current(app_id) -> id, state, info | nothing */
static int store_update_current(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  int64_t id;
  int state;
  const void *info;
  size_t len;
  int rc = tide_store_update_current(s, luaL_checkinteger(L, 2), &id,
                                     &state, &info, &len);
  if (rc == TIDE_ENOTFOUND) return 0;
  if (rc) return tide_lstore_ok_or_raise(L, s, rc);
  lua_pushinteger(L, (lua_Integer)id);
  lua_pushinteger(L, state);
  if (info)
    lua_pushlstring(L, (const char *)info, len);
  else
    lua_pushnil(L);
  return 3;
}

/* store:work_add(update_id, path, item) */
static int store_work_add(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  size_t path_len, item_len;
  const char *path = luaL_checklstring(L, 3, &path_len);
  const char *item = luaL_optlstring(L, 4, NULL, &item_len);
  return tide_lstore_ok_or_raise(L, s, tide_store_work_add(s, luaL_checkinteger(L, 2),
                                               path, path_len, item,
                                               item ? item_len : 0));
}

/* store:worker_join(update_id, host, pid) -> id */
static int store_worker_join(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  size_t host_len;
  const char *host = luaL_checklstring(L, 3, &host_len);
  int64_t id;
  int rc = tide_store_worker_join(s, luaL_checkinteger(L, 2), host, host_len,
                                  luaL_checkinteger(L, 4), &id);
  if (rc) return tide_lstore_ok_or_raise(L, s, rc);
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

/* store:worker_beat(worker_id) */
static int store_worker_beat(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  return tide_lstore_ok_or_raise(L, s, tide_store_worker_beat(s, luaL_checkinteger(L,
                                                                       2)));
}

static int add_work_item(void *arg, const tide_StoreWorkItem *w) {
  lua_State *L = arg;
  lua_createtable(L, 0, 3);
  set_int(L, "id", w->id);
  set_int(L, "tries", w->tries);
  set_str(L, "path", w->path, w->path_len);
  set_blob(L, "item", w->item, w->item_len);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

/* The claim of tide_store_work_claim, its arguments at 2..5: pushes its
** items and how many items of the update are open (-1 when it took
** some). */
static int claim_now(lua_State *L, tide_Store *s) {
  int64_t open = 0;
  int rc;
  lua_newtable(L);
  rc = tide_store_work_claim(s, lua_tointeger(L, 2), lua_tointeger(L, 3),
                             (int)lua_tointeger(L, 4), lua_tointeger(L, 5),
                             add_work_item, L, &open);
  if (rc) return tide_lstore_ok_or_raise(L, s, rc);
  lua_pushinteger(L, (lua_Integer)open);
  return 2;
}

/* A task's wait for a claim's answer: the store's socket readable, or
** the answer read meanwhile by another call of the store (a task's read),
** which a timer looks for every millisecond. Its callbacks touch neither
** the store nor Lua: they close the handles, and the task, resumed,
** looks, and reads or waits again. */
typedef struct {
  tide_Wait w; /* first */
  uv_poll_t poll;
  uv_timer_t timer;
  int made;     /* handles made and not closed yet */
  int readable; /* the socket was (or cannot be watched: read at once) */
  lua_Alloc alloc;
  void *ud;
} Answer;

static void answer_closed(uv_handle_t *h) {
  Answer *a = h->data;
  if (--a->made == 0) tide_wait_done(&a->w);
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, answer_closed);
}

/* Ends the wait: its handles closed, then done. */
static void answer_stop(Answer *a) {
  if (a->poll.data) close_handle((uv_handle_t *)&a->poll);
  if (a->timer.data) close_handle((uv_handle_t *)&a->timer);
}

static void answer_readable(uv_poll_t *p, int status, int events) {
  Answer *a = p->data;
  (void)status; /* an error on the socket: the read reports it */
  (void)events;
  a->readable = 1;
  answer_stop(a);
}

static void answer_tick(uv_timer_t *t) { answer_stop(t->data); }

static void answer_cancel(tide_Wait *w) { answer_stop((Answer *)w); }

static void answer_release(tide_Wait *w) {
  Answer *a = (Answer *)w;
  a->alloc(a->ud, a, sizeof *a, 0);
}

/* Reads a claim sent: pushes its items and -1, or, when it took none (and
** max, at 4, asked for some), what tide_store_work_claim gives. */
static int claim_read(lua_State *L, tide_Store *s) {
  int count = 0, rc;
  lua_newtable(L);
  rc = tide_store_claim_read(s, add_work_item, L, &count);
  if (rc) return tide_lstore_ok_or_raise(L, s, rc);
  if (count == 0 && lua_tointeger(L, 4) > 0) {
    lua_pop(L, 1);
    return claim_now(L, s);
  }
  lua_pushinteger(L, -1);
  return 2;
}

static int claim_k(lua_State *L, int status, lua_KContext ctx);

/* Suspends the task until the answer of the claim sent may be in
** (claim_k), or reads it now when the task cannot wait. */
static int claim_wait(lua_State *L, tide_Store *s) {
  int fd = tide_store_claim_socket(s), anchor;
  tide_Sched *sched;
  uv_loop_t *loop;
  Answer *a;
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  if (fd < 0) return claim_read(L, s);
  if ((a = alloc(ud, NULL, 0, sizeof *a)) == NULL)
    return luaL_error(L, "not enough memory");
  if ((sched = tide_lsched_suspend(L, &anchor)) == NULL) {
    alloc(ud, a, sizeof *a, 0);
    return claim_read(L, s);
  }
  memset(a, 0, sizeof *a);
  a->alloc = alloc;
  a->ud = ud;
  a->w.cancel = answer_cancel;
  a->w.release = answer_release;
  tide_sched_wait_begin(sched, &a->w, anchor);
  loop = tide_sched_loop(sched);
  if (uv_poll_init_socket(loop, &a->poll, fd) == 0) {
    a->poll.data = a;
    a->made++;
    if (uv_poll_start(&a->poll, UV_READABLE, answer_readable) != 0)
      a->readable = 1;
  } else {
    a->readable = 1;
  }
  /* Without its timer, an answer another call read would go unnoticed. */
  if (!a->readable && uv_timer_init(loop, &a->timer) == 0) {
    a->timer.data = a;
    a->made++;
    if (uv_timer_start(&a->timer, answer_tick, 1, 1) != 0) a->readable = 1;
  } else {
    a->readable = 1;
  }
  if (a->made == 0) tide_wait_done(&a->w);
  else if (a->readable) answer_stop(a);
  return tide_lsched_yield(L, (lua_KContext)a, claim_k);
}

static int claim_k(lua_State *L, int status, lua_KContext ctx) {
  Answer *a = (Answer *)ctx;
  int readable = a->readable;
  tide_Store *s;
  (void)status;
  tide_sched_wait_end(&a->w);
  lua_settop(L, 5);
  s = tide_lstore_check(L, 1);
  if (!readable && tide_store_claim_socket(s) >= 0) return claim_wait(L, s);
  return claim_read(L, s);
}

/* store:work_claim(update_id, worker_id, max, lease_ms [, wait]) -> {
** {id, path, item, tries} ... }, open (the items of the update not done,
** or -1 when some were claimed). wait, in a task: the first step's answer
** is waited for while the other tasks run (tide_store_claim_send);
** elsewhere, or without wait, the call blocks. */
static int store_work_claim(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  int rc;
  luaL_checkinteger(L, 2);
  luaL_checkinteger(L, 3);
  luaL_checkinteger(L, 4);
  luaL_checkinteger(L, 5);
  if (!lua_toboolean(L, 6) || !lua_isyieldable(L)) {
    lua_settop(L, 5);
    return claim_now(L, s);
  }
  lua_settop(L, 5);
  rc = tide_store_claim_send(s, lua_tointeger(L, 2), lua_tointeger(L, 3),
                             (int)lua_tointeger(L, 4));
  if (rc) return tide_lstore_ok_or_raise(L, s, rc);
  return claim_wait(L, s);
}

#define BEAT_TYPE "tide.StoreBeat"

static int beat_stop(lua_State *L) {
  tide_StoreBeat **b = luaL_checkudata(L, 1, BEAT_TYPE);
  tide_store_beat_stop(*b);
  *b = NULL;
  return 0;
}

/* store:beat_start(worker_id, interval_ms) -> beat, whose :stop() (or
** collection) ends it */
static int store_beat_start(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  tide_StoreBeat **b = lua_newuserdatauv(L, sizeof *b, 0);
  int rc;
  *b = NULL;
  if (luaL_newmetatable(L, BEAT_TYPE)) {
    lua_pushcfunction(L, beat_stop);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    lua_pushcfunction(L, beat_stop);
    lua_setfield(L, -2, "stop");
    lua_setfield(L, -2, "__index");
  }
  lua_setmetatable(L, -2);
  rc = tide_store_beat_start(s, luaL_checkinteger(L, 2),
                             (int)luaL_checkinteger(L, 3), b);
  if (rc) return tide_lstore_ok_or_raise(L, s, rc);
  return 1;
}

/* store:work_done(item_id, worker_id) */
static int store_work_done(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  return tide_lstore_ok_or_raise(L, s, tide_store_work_done(s, luaL_checkinteger(L, 2),
                                                luaL_checkinteger(L, 3)));
}

/* store:work_ran(item_id, worker_id) */
static int store_work_ran(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  return tide_lstore_ok_or_raise(L, s, tide_store_work_ran(s, luaL_checkinteger(L, 2),
                                               luaL_checkinteger(L, 3)));
}

/* store:work_reopen(update_id) -> how many items run and not done it
** made ready again */
static int store_work_reopen(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  int64_t n;
  int rc = tide_store_work_reopen(s, luaL_checkinteger(L, 2), &n);
  if (rc) return tide_lstore_ok_or_raise(L, s, rc);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* store:worker_leave(worker_id, stats JSON) */
static int store_worker_leave(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  size_t len;
  const char *stats = luaL_optlstring(L, 3, NULL, &len);
  return tide_lstore_ok_or_raise(L, s, tide_store_worker_leave(s, luaL_checkinteger(L,
                                                                        2),
                                                   stats, stats ? len : 0));
}

/* store:work_open(update_id) -> the items not done */
static int store_work_open(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  int64_t open;
  int rc = tide_store_work_open(s, luaL_checkinteger(L, 2), &open);
  if (rc) return tide_lstore_ok_or_raise(L, s, rc);
  lua_pushinteger(L, (lua_Integer)open);
  return 1;
}

/* store:workers_alive(update_id, lease_ms) -> how many may be at work */
static int store_workers_alive(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  int64_t alive;
  int rc = tide_store_workers_alive(s, luaL_checkinteger(L, 2),
                                    luaL_checkinteger(L, 3), &alive);
  if (rc) return tide_lstore_ok_or_raise(L, s, rc);
  lua_pushinteger(L, (lua_Integer)alive);
  return 1;
}

/* store:work_redo(update_id, path) */
static int store_work_redo(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  size_t len;
  const char *path = luaL_checklstring(L, 3, &len);
  return tide_lstore_ok_or_raise(L, s, tide_store_work_redo(s, luaL_checkinteger(L, 2),
                                                path, len));
}

static int add_worker(void *arg, const tide_StoreWorker *w) {
  lua_State *L = arg;
  lua_createtable(L, 0, 8);
  set_int(L, "id", w->id);
  set_int(L, "update_id", w->update_id);
  set_str(L, "host", w->host, w->host_len);
  set_int(L, "pid", w->pid);
  set_int(L, "claimed", w->claimed);
  set_int(L, "done", w->done);
  set_int(L, "seen_ms_ago", w->seen_ms_ago);
  lua_pushboolean(L, w->left);
  lua_setfield(L, -2, "left");
  set_str(L, "stats", w->stats, w->stats_len);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

/* store:workers(update_id) -> { worker ... } */
static int store_workers(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  int rc;
  lua_newtable(L);
  rc = tide_store_worker_each(s, luaL_checkinteger(L, 2), add_worker, L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

/* store:worker_count(worker_id, name, n): adds n to the worker's count,
** in the open batch */
static int store_worker_count(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  size_t len;
  const char *name = luaL_checklstring(L, 3, &len);
  return tide_lstore_ok_or_raise(L, s, tide_store_worker_count(s, luaL_checkinteger(L,
                                                                        2),
                                                   name, len,
                                                   luaL_checkinteger(L, 4)));
}

static int add_count(void *arg, int64_t worker_id, const char *name,
                     size_t name_len, int64_t n) {
  lua_State *L = arg;
  lua_rawgeti(L, -1, (lua_Integer)worker_id);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, (lua_Integer)worker_id);
  }
  lua_pushlstring(L, name, name_len);
  lua_pushinteger(L, (lua_Integer)n);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  return 0;
}

/* store:worker_counts(update_id) -> { [worker_id] = { [name] = n } } */
static int store_worker_counts(lua_State *L) {
  tide_Store *s = tide_lstore_check(L, 1);
  int rc;
  lua_newtable(L);
  rc = tide_store_worker_counts(s, luaL_checkinteger(L, 2), add_count, L);
  return rc ? tide_lstore_ok_or_raise(L, s, rc) : 1;
}

void tide_lstore_work_methods(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"update_open", store_update_open}, {"update_set", store_update_set},
    {"update_current", store_update_current},
    {"work_add", store_work_add}, {"worker_join", store_worker_join},
    {"worker_beat", store_worker_beat}, {"work_claim", store_work_claim},
    {"work_done", store_work_done}, {"worker_leave", store_worker_leave},
    {"workers", store_workers}, {"worker_count", store_worker_count},
    {"worker_counts", store_worker_counts},
    {"workers_alive", store_workers_alive}, {"work_open", store_work_open},
    {"beat_start", store_beat_start},
    {"work_redo", store_work_redo}, {"work_ran", store_work_ran},
    {"work_reopen", store_work_reopen},
    {NULL, NULL},
  };
  luaL_setfuncs(L, methods, 0);
}
