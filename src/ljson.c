/*
** Lua binding of the JSON writer (json_write.h).
**
**   json_encode(v [, name]) -> text
**                            | nil, message, type, place
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

void tide_ljson_open(lua_State *L) {
  if (luaL_newmetatable(L, WRITER_TYPE)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, json_encode);
  lua_setfield(L, -2, "json_encode");
}
