/*
** Lua binding of watching folders (watch.h), for live mode (live.lua):
** core.watch_new(loop) returns a watch on the engine's loop, or nil and a
** message when the system refuses one. watch:add(dir, follow_symlinks)
** watches a folder and returns its root number (nil, message when it is
** not a folder); watch:add_file(path) watches a file through its folder
** (nil, message when the folder is not there or cannot be watched);
** watch:take() returns the changes waiting, a list of { dir = root
** folder (a file root's folder), path = relative path (a file root's
** name), or nil for the whole root },
** and forgets them; watch:messages() returns what was lost or could not
** be watched (nil when nothing); watch:wait([ms]) runs the loop until
** something happens, at most ms milliseconds when given; watch:pending()
** and watch:count() count the changes waiting and the directories
** watched; watch:close() stops watching. Misuse raises.
*/
#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "buf.h"
#include "lcore.h"
#include "watch.h"

#define WATCH_TYPE "tide.Watch"

typedef struct {
  tide_Watch *w;
  uv_timer_t *timer; /* for wait's bound; freed by its close callback */
} Box;

static Box *check_box(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, WATCH_TYPE);
  if (b->w == NULL) luaL_error(L, "watch is closed");
  return b;
}

static void free_timer(uv_handle_t *h) {
  tide_alloc_default(NULL, h, sizeof(uv_timer_t), 0);
}

static int watch_close(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, WATCH_TYPE);
  if (b->w) {
    tide_watch_free(b->w);
    b->w = NULL;
  }
  if (b->timer) {
    uv_close((uv_handle_t *)b->timer, free_timer);
    b->timer = NULL;
  }
  return 0;
}

static int watch_new(lua_State *L) {
  uv_loop_t *loop = tide_lloop_check(L, 1);
  Box *b = lua_newuserdatauv(L, sizeof *b, 0);
  int rc;
  b->w = NULL;
  b->timer = NULL;
  luaL_setmetatable(L, WATCH_TYPE);
  rc = tide_watch_new(&b->w, loop, NULL, NULL);
  if (rc == TIDE_ENOMEM && b->w == NULL)
    return luaL_error(L, "out of memory");
  if (rc == 0) {
    b->timer = tide_alloc_default(NULL, NULL, 0, sizeof *b->timer);
    if (b->timer == NULL) rc = TIDE_ENOMEM;
    else uv_timer_init(loop, b->timer);
  }
  if (rc != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, rc == TIDE_ENOMEM ? "out of memory"
                                        : tide_watch_errmsg(b->w));
    watch_close(L);
    return 2;
  }
  return 1;
}

/* What an add returns: the root's number, or nil and the message. */
static int push_root(lua_State *L, Box *b, int rc, size_t root) {
  if (rc == TIDE_ENOMEM) return luaL_error(L, "out of memory");
  if (rc != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, tide_watch_errmsg(b->w));
    return 2;
  }
  lua_pushinteger(L, (lua_Integer)root + 1);
  return 1;
}

/* watch:add(dir, follow_symlinks) -> root number | nil, message */
static int watch_add(lua_State *L) {
  Box *b = check_box(L);
  const char *dir = luaL_checkstring(L, 2);
  size_t root = 0;
  int rc = tide_watch_add(b->w, dir, lua_toboolean(L, 3), &root);
  return push_root(L, b, rc, root);
}

/* watch:add_file(path) -> root number | nil, message */
static int watch_add_file(lua_State *L) {
  Box *b = check_box(L);
  size_t root = 0;
  int rc = tide_watch_add_file(b->w, luaL_checkstring(L, 2), &root);
  return push_root(L, b, rc, root);
}

static int push_change(void *arg, const tide_WatchChange *c) {
  lua_State *L = arg;
  Box *b = lua_touserdata(L, 1);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, tide_watch_root(b->w, c->root));
  lua_setfield(L, -2, "dir");
  if (c->path) {
    lua_pushlstring(L, c->path, c->len);
    lua_setfield(L, -2, "path");
  }
  lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
  return 0;
}

/* watch:take() -> { { dir, path }... } */
static int watch_take(lua_State *L) {
  Box *b = check_box(L);
  lua_createtable(L, (int)tide_watch_pending(b->w), 0);
  tide_watch_take(b->w, push_change, L);
  return 1;
}

/* watch:messages() -> the lines left, or nil */
static int watch_messages(lua_State *L) {
  const char *m = tide_watch_messages(check_box(L)->w);
  if (m[0] == '\0') return 0;
  lua_pushstring(L, m);
  return 1;
}

static int watch_pending(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)tide_watch_pending(check_box(L)->w));
  return 1;
}

static int watch_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)tide_watch_count(check_box(L)->w));
  return 1;
}

static void on_timer(uv_timer_t *t) { (void)t; }

/* watch:wait([ms]): one turn of the loop, which blocks until an event
** (a file event, the stop signal's pipe, any handle of the loop) or, when
** ms is given, at most that long. */
static int watch_wait(lua_State *L) {
  Box *b = check_box(L);
  lua_Number ms = luaL_optnumber(L, 2, -1);
  uv_loop_t *loop = b->timer->loop;
  if (ms >= 0 && ms < 1) {
    uv_run(loop, UV_RUN_NOWAIT);
    return 0;
  }
  if (ms >= 1) {
    /* Repeating: a libuv that runs due timers before it polls would
    ** otherwise poll without a bound once this one fired. */
    uv_update_time(loop);
    uv_timer_start(b->timer, on_timer, (uint64_t)ms, (uint64_t)ms);
  }
  uv_run(loop, UV_RUN_ONCE);
  uv_timer_stop(b->timer);
  return 0;
}

void tide_lwatch_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"add", watch_add}, {"add_file", watch_add_file},
    {"take", watch_take}, {"messages", watch_messages},
    {"pending", watch_pending}, {"count", watch_count},
    {"wait", watch_wait}, {"close", watch_close}, {NULL, NULL},
  };
  if (luaL_newmetatable(L, WATCH_TYPE)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, watch_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, watch_new);
  lua_setfield(L, -2, "watch_new");
}
