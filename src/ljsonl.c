/*
** Lua binding of JSON Lines in C (jsonl.h), for tide.json.lines under
** mount_each:
**
**   jsonl_open(path, field, each) -> cursor | nil, message
**   cursor:next() -> lineno, line | nil | nil, message
**   cursor:close()
**   jsonl_read(line, field) -> encoding, key | nil
**
** jsonl_read is what the C reader makes of one line: the canonical
** encoding of the object and its key, or nil for a line it leaves to Lua
** (the specs compare it with json.lua's reading).
**
** The cursor reads the file a line at a time and skips blank lines (only
** spaces, as Lua's %s). A line the C reader takes (jsonl.h), keyed by
** field, whose key was not listed yet and whose component the each
** (index_each.h) carries over, is listed and carried over there; every
** other line comes back as its number and its text, for json.lua to read.
** A file that cannot be opened or read is a runtime failure: nil and
** "PATH: reason".
*/
#include <ctype.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "index_each.h"
#include "jsonl.h"
#include "lcore.h"

#define CURSOR_TYPE "tide.JsonlCursor"
#define VALUE_TYPE "tide.JsonlValue"

typedef struct {
  tide_JsonlFile file;
  tide_JsonlValue value;
  int64_t lineno;
  int open;
} Cursor;

static int cursor_close(lua_State *L) {
  Cursor *c = luaL_checkudata(L, 1, CURSOR_TYPE);
  if (c->open) {
    tide_jsonl_close(&c->file);
    tide_jsonl_value_close(&c->value);
  }
  c->open = 0;
  return 0;
}

static int jsonl_open(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  Cursor *c;
  int rc;
  luaL_checkstring(L, 2);
  tide_lindex_check_each(L, 3);
  luaL_argcheck(L, strlen(path) == len, 1, "path contains a NUL byte");
  c = lua_newuserdatauv(L, sizeof *c, 2);
  c->open = 0;
  luaL_setmetatable(L, CURSOR_TYPE);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1); /* the field */
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, -2, 2); /* the each */
  c->open = 1;
  c->lineno = 0;
  tide_jsonl_value_init(&c->value, alloc, ud);
  rc = tide_jsonl_open(&c->file, path, alloc, ud);
  if (rc == TIDE_ENOMEM) return luaL_error(L, "out of memory");
  if (rc != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, c->file.err);
    return 2;
  }
  return 1;
}

static int blank(const char *line, size_t len) {
  size_t i;
  for (i = 0; i < len; i++)
    if (!isspace((unsigned char)line[i])) return 0;
  return 1;
}

/* Whether the line was carried over: read in C, its key new, its
** component unchanged. Raises on out of memory. */
static int carried(lua_State *L, Cursor *c, tide_IndexEach *each,
                   const char *field, size_t field_len, const char *line,
                   size_t len) {
  tide_JsonlValue *v = &c->value;
  uint8_t input[TIDE_FP_SIZE];
  int rc = tide_jsonl_read(v, line, len, field, field_len);
  if (rc == TIDE_ENOMEM ||
      (rc == 1 && tide_index_each_find(each, (const char *)v->key.data,
                                       v->key.len) != 0))
    luaL_error(L, "out of memory");
  if (rc != 1 || tide_index_each_first(each) != 0) return 0;
  tide_index_each_input(each, v->out.data, v->out.len, input);
  if (!tide_index_each_carry(each, input)) return 0;
  if (tide_index_each_list(each, c->lineno) != 0)
    luaL_error(L, "out of memory");
  return 1;
}

static int cursor_next(lua_State *L) {
  Cursor *c = luaL_checkudata(L, 1, CURSOR_TYPE);
  tide_IndexEach *each;
  const char *field, *line;
  size_t field_len, len;
  int rc;
  if (!c->open) return luaL_error(L, "cursor is closed");
  lua_getiuservalue(L, 1, 1);
  field = lua_tolstring(L, -1, &field_len);
  lua_getiuservalue(L, 1, 2);
  each = tide_lindex_check_each(L, -1);
  for (;;) {
    rc = tide_jsonl_next(&c->file, &line, &len);
    if (rc == 0) return 0;
    if (rc == TIDE_ENOMEM) return luaL_error(L, "out of memory");
    if (rc < 0) {
      luaL_pushfail(L);
      lua_pushstring(L, c->file.err);
      return 2;
    }
    c->lineno++;
    if (blank(line, len) ||
        carried(L, c, each, field, field_len, line, len))
      continue;
    lua_pushinteger(L, (lua_Integer)c->lineno);
    lua_pushlstring(L, line, len);
    return 2;
  }
}

static int jsonl_read(lua_State *L) {
  size_t len, field_len;
  const char *line = luaL_checklstring(L, 1, &len);
  const char *field = luaL_checklstring(L, 2, &field_len);
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  tide_JsonlValue *v = lua_newuserdatauv(L, sizeof *v, 0);
  int rc;
  tide_jsonl_value_init(v, alloc, ud);
  luaL_setmetatable(L, VALUE_TYPE);
  rc = tide_jsonl_read(v, line, len, field, field_len);
  if (rc == TIDE_ENOMEM) return luaL_error(L, "out of memory");
  if (rc != 1) return 0;
  lua_pushlstring(L, (const char *)v->out.data, v->out.len);
  lua_pushlstring(L, (const char *)v->key.data, v->key.len);
  return 2;
}

static int value_gc(lua_State *L) {
  tide_jsonl_value_close(luaL_checkudata(L, 1, VALUE_TYPE));
  return 0;
}

void tide_ljsonl_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"next", cursor_next}, {"close", cursor_close}, {NULL, NULL},
  };
  if (luaL_newmetatable(L, CURSOR_TYPE)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, cursor_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, VALUE_TYPE)) {
    lua_pushcfunction(L, value_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, jsonl_open);
  lua_setfield(L, -2, "jsonl_open");
  lua_pushcfunction(L, jsonl_read);
  lua_setfield(L, -2, "jsonl_read");
}
