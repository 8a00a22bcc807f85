/*
** The public C API (tide.h's tide_engine_*): an engine on its own Lua
** state. tide_engine_load runs the pipeline file, which returns an app,
** and binds the app to the engine (tide.app's attach); every update is
** then that app's `app:update`, one cycle of the same session, so the C
** host, the tide command and a Lua program share one code path. Every
** entry into Lua goes through tide_lua_pcall.
*/
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "buf.h"
#include "engine.h"
#include "lcore.h"

/* Opens the standard libraries, preloads tide.core and puts lua_dir first
** on package.path. Runs in protected mode. */
static int prepare_state(lua_State *L) {
  const char *lua_dir = lua_tostring(L, 1);
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_tide_core);
  lua_setfield(L, -2, "tide.core");
  lua_pop(L, 1);
  if (lua_dir) {
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", lua_dir, lua_dir);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
  }
  return 0;
}

/* The message of a failed call, popped. */
static int lua_failed(tide_Engine *e, int code) {
  lua_State *L = e->L;
  const char *msg = lua_tostring(L, -1);
  tide_engine_fail(e, code, "%s", msg ? msg : "error in Lua code");
  lua_pop(L, 1);
  return code;
}

/* A lua_dir without tide's Lua files is said now, naming it, rather than
** at load as Lua's list of the dozen places `require "tide"` looked. */
static int check_lua_dir(tide_Engine *e, const char *lua_dir) {
  char path[PATH_MAX];
  if (lua_dir == NULL) return 0;
  if ((size_t)snprintf(path, sizeof path, "%s/tide/init.lua", lua_dir) <
      sizeof path && access(path, R_OK) == 0)
    return 0;
  return tide_engine_fail(e, TIDE_EINVAL, "lua_dir %s holds no "
                          "tide/init.lua: give the folder of tide's Lua "
                          "files (lua/ in tide's repository, "
                          "PREFIX/share/lua/5.4 after make install)",
                          lua_dir);
}

int tide_engine_new(tide_Engine **out, const tide_EngineOptions *opts) {
  static const tide_EngineOptions none = {0};
  tide_Alloc alloc;
  void *ud;
  lua_State *L;
  tide_Engine *e;
  char cwd[PATH_MAX];
  int rc;
  if (out == NULL) return TIDE_EINVAL;
  *out = NULL;
  if (opts == NULL) opts = &none;
  alloc = opts->alloc ? opts->alloc : tide_alloc_default;
  ud = opts->alloc_ud;
  if (getcwd(cwd, sizeof cwd) == NULL) strcpy(cwd, "/");
  /* The store path is known once the pipeline is (tide_engine_load). */
  rc = tide_engine_make(&e, NULL, cwd, opts->db, opts->loop, alloc, ud);
  *out = e;
  if (rc) return rc;
  e->owns_state = 1;
  L = lua_newstate((lua_Alloc)alloc, ud);
  if (L == NULL) return tide_engine_fail(e, TIDE_ENOMEM, "out of memory");
  e->L = L;
  /* Generational collection: a live session allocates little per cycle,
  ** and minor collections keep a host's frames from the long pauses an
  ** incremental cycle's atomic phase takes over the whole heap. */
  lua_gc(L, LUA_GCGEN, 0, 0);
  lua_pushcfunction(L, prepare_state);
  if (opts->lua_dir)
    lua_pushstring(L, opts->lua_dir);
  else
    lua_pushnil(L);
  if (tide_lua_pcall(L, 1, 0) != LUA_OK) return lua_failed(e, TIDE_ELUA);
  return check_lua_dir(e, opts->lua_dir);
}

/* Replaces the engine's store path with dir + "/" + path. */
static int set_db(tide_Engine *e, const char *dir, const char *path) {
  char *p = tide_engine_path(e, dir && dir[0] ? dir : NULL, path);
  if (p == NULL) return tide_engine_fail(e, TIDE_ENOMEM, "out of memory");
  tide_engine_free_path(e, e->db);
  e->db = p;
  return 0;
}

/* require("tide.app").attach(app, engine, pipeline): binds the app to
** the engine; true, or nil and a message when the value is not an app. */
static int attach(lua_State *L) {
  tide_Engine *e = lua_touserdata(L, 2);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "tide.app");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "attach");
  lua_pushvalue(L, 1);
  tide_lengine_push(L, e);
  lua_pushvalue(L, 3);
  lua_call(L, 3, 2);
  return 2;
}

int tide_engine_load(tide_Engine *e, const char *pipeline) {
  lua_State *L;
  char dir[PATH_MAX];
  const char *slash;
  int rc;
  if (e == NULL || (L = e->L) == NULL || e->db == NULL) return TIDE_EINVAL;
  if (pipeline == NULL)
    return tide_engine_fail(e, TIDE_EINVAL, "tide_engine_load: pipeline "
                            "must be the path of a Lua file, got NULL");
  if (e->app_ref != LUA_NOREF)
    return tide_engine_fail(e, TIDE_EINVAL, "a pipeline is already loaded");
  e->msg[0] = '\0';
  if (e->db[0] == '\0') {
    /* .tide/state.db beside the pipeline file. */
    slash = strrchr(pipeline, '/');
    if (slash == NULL) {
      rc = set_db(e, e->base, ".tide/state.db");
    } else if ((size_t)(slash - pipeline) + 1 > sizeof dir) {
      return tide_engine_fail(e, TIDE_EINVAL, "%s: path too long", pipeline);
    } else {
      memcpy(dir, pipeline, (size_t)(slash - pipeline));
      dir[slash - pipeline] = '\0';
      rc = set_db(e, pipeline[0] == '/' ? NULL : e->base, dir);
      if (rc == 0) rc = set_db(e, e->db, ".tide/state.db");
    }
    if (rc) return rc;
  }
  if (luaL_loadfile(L, pipeline) != LUA_OK) return lua_failed(e, TIDE_ELUA);
  if (tide_lua_pcall(L, 0, 1) != LUA_OK) return lua_failed(e, TIDE_ELUA);
  lua_pushvalue(L, -1);
  e->app_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushcfunction(L, attach);
  lua_insert(L, -2);
  lua_pushlightuserdata(L, e);
  lua_pushstring(L, pipeline);
  rc = tide_lua_pcall(L, 3, 2) != LUA_OK ? TIDE_ELUA
       : lua_isnil(L, -2) ? TIDE_EINVAL : 0;
  if (rc == 0) {
    lua_pop(L, 2);
    return 0;
  }
  if (rc == TIDE_EINVAL) lua_remove(L, -2); /* nil, message */
  luaL_unref(L, LUA_REGISTRYINDEX, e->app_ref);
  e->app_ref = LUA_NOREF;
  return lua_failed(e, rc);
}

/* The flags tide_engine_update knows: any other bit is refused, not
** ignored (a host built against a later tide.h asks for something this
** one cannot do). */
#define UPDATE_FLAGS (TIDE_UPDATE_FULL_REPROCESS | TIDE_UPDATE_RESET | \
                      TIDE_UPDATE_PREVIEW | TIDE_UPDATE_ALLOW_EMPTY)

/* The engine's code for the code name an app method returned with nil
** and its message (app.lua: "locked", "store", "invalid"). */
static int code_of(const char *name) {
  if (name == NULL) return TIDE_ELUA;
  if (strcmp(name, "locked") == 0) return TIDE_ELOCKED;
  if (strcmp(name, "store") == 0) return TIDE_ESTORE;
  if (strcmp(name, "invalid") == 0) return TIDE_EINVAL;
  return TIDE_ELUA;
}

/* After a call of an app method that returns stats, errors | nil,
** message, code name: TIDE_E* with the message on e and the three
** results popped when it failed, else 0 with them left. */
static int method_failed(tide_Engine *e, lua_State *L) {
  int code;
  if (!lua_isnil(L, -3)) return 0;
  code = code_of(lua_tostring(L, -1));
  lua_pop(L, 1);
  lua_remove(L, -2);
  return lua_failed(e, code);
}

/* Pushes app.METHOD and the app, for a call with more arguments pushed
** after them; TIDE_EINVAL (message on e) when no pipeline is loaded. */
static int push_method(tide_Engine *e, lua_State *L, const char *method) {
  if (e->app_ref == LUA_NOREF)
    return tide_engine_fail(e, TIDE_EINVAL, "no pipeline is loaded");
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->app_ref);
  lua_getfield(L, -1, method);
  lua_insert(L, -2);
  return 0;
}

/* app:update(opts) -> stats, errors | nil, message, code name */
int tide_engine_update(tide_Engine *e, int flags) {
  lua_State *L;
  int code;
  if (e == NULL || (L = e->L) == NULL) return TIDE_EINVAL;
  if (flags & ~UPDATE_FLAGS)
    return tide_engine_fail(e, TIDE_EINVAL, "tide_engine_update: unknown "
                            "flags 0x%x (expected TIDE_UPDATE_* values)",
                            (unsigned)(flags & ~UPDATE_FLAGS));
  if ((code = push_method(e, L, "update")) != 0) return code;
  lua_createtable(L, 0, 4);
  lua_pushboolean(L, flags & TIDE_UPDATE_FULL_REPROCESS);
  lua_setfield(L, -2, "full_reprocess");
  lua_pushboolean(L, flags & TIDE_UPDATE_RESET);
  lua_setfield(L, -2, "reset");
  lua_pushboolean(L, flags & TIDE_UPDATE_PREVIEW);
  lua_setfield(L, -2, "preview");
  lua_pushboolean(L, flags & TIDE_UPDATE_ALLOW_EMPTY);
  lua_setfield(L, -2, "allow_empty");
  if (tide_lua_pcall(L, 2, 3) != LUA_OK) return lua_failed(e, TIDE_ELUA);
  if ((code = method_failed(e, L)) != 0) return code;
  if (lua_istable(L, -2) && lua_rawgeti(L, -2, 1) == LUA_TTABLE) {
    lua_getfield(L, -1, "path");
    lua_getfield(L, -2, "message");
    tide_engine_fail(e, TIDE_EFAILED, "%s: %s", lua_tostring(L, -2),
                     lua_tostring(L, -1));
    lua_pop(L, 2);
    code = TIDE_EFAILED;
  }
  lua_pop(L, 4);
  return code;
}

/* app:start_live{} -> stats, errors | nil, message, code name */
int tide_engine_live_start(tide_Engine *e) {
  lua_State *L;
  int rc;
  if (e == NULL || (L = e->L) == NULL) return TIDE_EINVAL;
  e->msg[0] = '\0';
  if ((rc = push_method(e, L, "start_live")) != 0) return rc;
  lua_newtable(L);
  if (tide_lua_pcall(L, 2, 3) != LUA_OK) return lua_failed(e, TIDE_ELUA);
  if ((rc = method_failed(e, L)) != 0) return rc;
  lua_pop(L, 3);
  return 0;
}

/* app:step(budget_us / 1000) -> whether live mode goes on */
int tide_engine_step(tide_Engine *e, long budget_us) {
  lua_State *L;
  int rc, live;
  if (e == NULL || (L = e->L) == NULL) return TIDE_EINVAL;
  e->msg[0] = '\0';
  if (budget_us < 0)
    return tide_engine_fail(e, TIDE_EINVAL, "tide_engine_step: budget_us "
                            "must be 0 or more, got %ld", budget_us);
  if (e->app_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, e->app_ref);
    live = lua_getfield(L, -1, "live_session") != LUA_TNIL;
    lua_pop(L, 2);
    if (!live)
      return tide_engine_fail(e, TIDE_EINVAL, "live mode is not running "
                              "(tide_engine_live_start)");
  }
  if ((rc = push_method(e, L, "step")) != 0) return rc;
  lua_pushnumber(L, (lua_Number)budget_us / 1000.0);
  if (tide_lua_pcall(L, 2, 1) != LUA_OK) return lua_failed(e, TIDE_ELUA);
  lua_pop(L, 1);
  return 0;
}

/* app:stop() */
int tide_engine_live_stop(tide_Engine *e) {
  lua_State *L;
  int rc;
  if (e == NULL || (L = e->L) == NULL) return TIDE_EINVAL;
  e->msg[0] = '\0';
  if ((rc = push_method(e, L, "stop")) != 0) return rc;
  if (tide_lua_pcall(L, 1, 2) != LUA_OK) return lua_failed(e, TIDE_ELUA);
  if (lua_isnil(L, -2)) {
    lua_remove(L, -2);
    return lua_failed(e, TIDE_EINVAL);
  }
  lua_pop(L, 2);
  return 0;
}

int tide_engine_stats(const tide_Engine *e, tide_Stats *out) {
  if (e == NULL || out == NULL) return TIDE_EINVAL;
  *out = e->stats;
  return 0;
}

const char *tide_engine_errmsg(const tide_Engine *e) {
  return e ? e->msg : "out of memory";
}

lua_State *tide_engine_lua(tide_Engine *e) { return e ? e->L : NULL; }

void tide_engine_free(tide_Engine *e) {
  if (e == NULL) return;
  /* The Lua objects over the engine let go of it as the state closes. */
  if (e->owns_state && e->L) lua_close(e->L);
  e->L = NULL;
  tide_engine_destroy(e);
}
