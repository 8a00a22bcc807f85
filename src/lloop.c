/*
** Lua binding of the engine's event loop: core.loop_new() returns a libuv
** loop the scheduler advances between coroutine steps. Asynchronous work
** (file events, the thread pool) registers handles on it. Misuse (a closed
** loop, an unknown run mode) raises. loop_new raises too when libuv cannot
** make a loop: that is resource exhaustion (no file descriptor or memory
** left), which raises as out of memory does.
*/
#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "lcore.h"

#define LOOP_TYPE "tide.Loop"

typedef struct {
  uv_loop_t own;
  uv_loop_t *loop; /* &own, or an engine's (borrowed) */
  int open;
} Loop;

static Loop *check_loop(lua_State *L) {
  Loop *l = luaL_checkudata(L, 1, LOOP_TYPE);
  if (!l->open) luaL_error(L, "loop is closed");
  return l;
}

static int loop_new(lua_State *L) {
  Loop *l = lua_newuserdatauv(L, sizeof *l, 0);
  int rc;
  l->open = 0;
  l->loop = &l->own;
  luaL_setmetatable(L, LOOP_TYPE);
  if ((rc = uv_loop_init(&l->own)) != 0)
    return luaL_error(L, "cannot create the event loop: %s", uv_strerror(rc));
  l->open = 1;
  return 1;
}

/* loop:run("nowait" | "once" | "default") -> whether handles are alive */
static int loop_run(lua_State *L) {
  static const char *const modes[] = {"nowait", "once", "default", NULL};
  static const uv_run_mode values[] = {UV_RUN_NOWAIT, UV_RUN_ONCE,
                                       UV_RUN_DEFAULT};
  Loop *l = check_loop(L);
  int mode = luaL_checkoption(L, 2, "nowait", modes);
  lua_pushboolean(L, uv_run(l->loop, values[mode]) != 0);
  return 1;
}

static int loop_alive(lua_State *L) {
  lua_pushboolean(L, uv_loop_alive(check_loop(L)->loop));
  return 1;
}

static void close_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static int loop_close(lua_State *L) {
  Loop *l = luaL_checkudata(L, 1, LOOP_TYPE);
  if (l->open && l->loop == &l->own) {
    uv_walk(l->loop, close_handle, NULL);
    uv_run(l->loop, UV_RUN_DEFAULT); /* lets the close callbacks run */
    uv_loop_close(l->loop);
  }
  l->open = 0;
  return 0;
}

uv_loop_t *tide_lloop_check(lua_State *L, int idx) {
  Loop *l = luaL_checkudata(L, idx, LOOP_TYPE);
  if (!l->open) luaL_error(L, "loop is closed");
  return l->loop;
}

void tide_lloop_push_borrowed(lua_State *L, uv_loop_t *loop) {
  Loop *l = lua_newuserdatauv(L, sizeof *l, 0);
  l->loop = loop;
  l->open = 1;
  luaL_setmetatable(L, LOOP_TYPE);
}

/* now_ms() -> milliseconds from a monotonic clock, as a float. */
static int now_ms(lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e6);
  return 1;
}

/* cpu_count() -> the number of CPUs this process may use. */
static int cpu_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)uv_available_parallelism());
  return 1;
}

void tide_lloop_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"run", loop_run}, {"alive", loop_alive}, {"close", loop_close},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, LOOP_TYPE)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, loop_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, loop_new);
  lua_setfield(L, -2, "loop_new");
  lua_pushcfunction(L, now_ms);
  lua_setfield(L, -2, "now_ms");
  lua_pushcfunction(L, cpu_count);
  lua_setfield(L, -2, "cpu_count");
}
