/*
** Lua binding of the JSON writer (json_write.h).
**
**   json_encode(v [, name]) -> text
**                            | nil, message, type, place
**   nul_at(v) -> nil | place: the place of a string inside v (a table's
**                key included) that holds a NUL byte, which PostgreSQL
**                can store neither as text nor inside jsonb: "" for v
**                itself, ".tags[2]", ".meta (a key)"; tables are read raw
**                and no deeper than the writer goes.
**
** A value JSON cannot hold is a runtime failure: nil and a message naming
** the place, "NAME.tags[2]: expected json, got function" (NAME defaults to
** "value"); then, when the trouble is a value of the wrong type, that
** type's name, and the place alone. Misuse (name not a string) raises.
*/
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "json_write.h"
#include "lcore.h"

#define WRITER_TYPE "tide.JsonWriter"

/* The writer and its output live in a userdata, so nothing leaks when
** Lua raises (out of memory) in the middle. */
typedef struct {
  tide_JsonWriter w;
  tide_Buf out;
} Box;

static int box_gc(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, WRITER_TYPE);
  tide_json_close(&b->w);
  tide_buf_close(&b->out);
  return 0;
}

static int json_encode(lua_State *L) {
  const char *name = luaL_optstring(L, 2, "value");
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  Box *b;
  int rc;
  luaL_checkany(L, 1);
  lua_settop(L, 2);
  b = lua_newuserdatauv(L, sizeof *b, 0);
  tide_buf_init(&b->out, alloc, ud);
  tide_json_init(&b->w, &b->out, 0, alloc, ud);
  luaL_setmetatable(L, WRITER_TYPE);
  rc = tide_json_write(&b->w, L, 1);
  if (rc == TIDE_ENOMEM) return luaL_error(L, "out of memory");
  if (rc != 0) {
    const char *prefix = "expected json, got ";
    size_t n = strlen(prefix);
    luaL_pushfail(L);
    lua_pushfstring(L, "%s%s: %s", name, b->w.where, b->w.err);
    if (strncmp(b->w.err, prefix, n) == 0 && strstr(b->w.err, " key") == NULL)
      lua_pushstring(L, b->w.err + n);
    else
      lua_pushnil(L);
    lua_pushfstring(L, "%s%s", name, b->w.where);
    return 4;
  }
  lua_pushlstring(L, (const char *)b->out.data, b->out.len);
  tide_json_close(&b->w);
  tide_buf_close(&b->out);
  return 1;
}

/* Whether the value at idx holds a NUL byte in a string; when it does,
** the place of that string below idx is left on top of the stack. */
static int find_nul(lua_State *L, int idx, int depth) {
  size_t len;
  const char *s;
  if (lua_type(L, idx) == LUA_TSTRING) {
    s = lua_tolstring(L, idx, &len);
    if (memchr(s, 0, len) == NULL) return 0;
    lua_pushliteral(L, "");
    return 1;
  }
  if (lua_type(L, idx) != LUA_TTABLE || depth >= TIDE_JSON_MAX_DEPTH)
    return 0;
  luaL_checkstack(L, 6, "value nested too deeply");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int key = lua_gettop(L) - 1;
    if (lua_type(L, key) == LUA_TSTRING) {
      s = lua_tolstring(L, key, &len);
      if (memchr(s, 0, len) != NULL) {
        lua_pushliteral(L, " (a key)");
        lua_insert(L, key);
        lua_settop(L, key);
        return 1;
      }
    }
    if (find_nul(L, key + 1, depth + 1)) {
      if (lua_type(L, key) == LUA_TNUMBER)
        lua_pushfstring(L, "[%s]", lua_tostring(L, key));
      else if (lua_type(L, key) == LUA_TSTRING)
        lua_pushfstring(L, ".%s", lua_tostring(L, key));
      else
        lua_pushliteral(L, "[?]");
      lua_insert(L, -2);
      lua_concat(L, 2);
      lua_insert(L, key);
      lua_settop(L, key);
      return 1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

static int nul_at(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  if (!find_nul(L, 1, 0)) luaL_pushfail(L);
  return 1;
}

void tide_ljson_open(lua_State *L) {
  if (luaL_newmetatable(L, WRITER_TYPE)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, json_encode);
  lua_setfield(L, -2, "json_encode");
  lua_pushcfunction(L, nul_at);
  lua_setfield(L, -2, "nul_at");
}
