/*
** The Lua binding of the splitter and the language table. tide.text
** (lua/tide/text.lua) checks the options and shapes the API; these
** functions check only what could make the C side misbehave, and raise
** when it is wrong (misuse: sizes that do not fit, a separator that is not
** a string). split_compile returns nil and why (then the kind and text of
** the bad entry) for a language definition that cannot work, a runtime
** failure tide.text reports. Out of memory raises.
*/
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <string.h>

#include "language.h"
#include "lcore.h"
#include "split.h"
#include "tide.h"

/* A compiled language is a userdata of this metatable holding the
** tide_SplitLang itself (userdata memory never moves). */
#define LANG_MT "tide.splitlang"

/* A splitter in a userdata, so that a Lua error while chunks become
** tables cannot leak its memory: __gc closes it. */
#define BOX_MT "tide.splitbox"

typedef struct Box {
  tide_Split split;
  int open;
} Box;

static int box_gc(lua_State *L) {
  Box *box = luaL_checkudata(L, 1, BOX_MT);
  if (box->open) tide_split_close(&box->split);
  box->open = 0;
  return 0;
}

/* Pushes a position as { byte, char, line, column }. [-0, +1, m] */
static void push_pos(lua_State *L, const tide_SplitPos *p) {
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)p->byte);
  lua_setfield(L, -2, "byte");
  lua_pushinteger(L, (lua_Integer)p->chr);
  lua_setfield(L, -2, "char");
  lua_pushinteger(L, (lua_Integer)p->line);
  lua_setfield(L, -2, "line");
  lua_pushinteger(L, (lua_Integer)p->column);
  lua_setfield(L, -2, "column");
}

static size_t check_size(lua_State *L, int arg) {
  lua_Integer v = luaL_checkinteger(L, arg);
  luaL_argcheck(L, v >= 0, arg, "must not be negative");
  return (size_t)v;
}

/* split(s, size, overlap, min_size [, language]) -> { chunk, ... } */
static int split_split(lua_State *L) {
  size_t len, k;
  const char *s = luaL_checklstring(L, 1, &len);
  tide_SplitOptions opt;
  const tide_SplitLang *lang = NULL;
  lua_Alloc alloc;
  void *ud;
  Box *box;
  int rc;
  opt.size = check_size(L, 2);
  opt.overlap = check_size(L, 3);
  opt.min_size = check_size(L, 4);
  if (!lua_isnoneornil(L, 5)) lang = luaL_checkudata(L, 5, LANG_MT);
  alloc = lua_getallocf(L, &ud);
  box = lua_newuserdatauv(L, sizeof *box, 0);
  box->open = 0;
  luaL_setmetatable(L, BOX_MT);
  tide_split_init(&box->split, alloc, ud);
  box->open = 1;
  rc = tide_split_run(&box->split, (const uint8_t *)s, len, &opt, lang);
  if (rc != 0) {
    tide_split_close(&box->split);
    box->open = 0;
    return luaL_error(L, "text.split: %s", tide_strerror(rc));
  }
  lua_createtable(L, box->split.count < INT_MAX ? (int)box->split.count : 0,
                  0);
  for (k = 0; k < box->split.count; k++) {
    const tide_SplitChunk *c = &box->split.chunks[k];
    lua_createtable(L, 0, 3);
    lua_pushlstring(L, s + c->start.byte - 1,
                    c->stop.byte - c->start.byte + 1);
    lua_setfield(L, -2, "text");
    push_pos(L, &c->start);
    lua_setfield(L, -2, "start");
    push_pos(L, &c->stop);
    lua_setfield(L, -2, "stop");
    lua_rawseti(L, -2, (lua_Integer)k + 1);
  }
  tide_split_close(&box->split);
  box->open = 0;
  return 1;
}

/* Compiles entries into a new language userdata. [-0, +1, m] */
static void push_compiled(lua_State *L, const tide_SplitEntry *entries,
                          size_t count) {
  size_t size = tide_splitlang_size(entries, count);
  void *mem = lua_newuserdatauv(L, size, 0);
  tide_splitlang_build(mem, entries, count);
  luaL_setmetatable(L, LANG_MT);
}

/* split_language(name) -> a built-in language, or nil */
static int split_language(lua_State *L) {
  size_t len, count;
  const char *name = luaL_checklstring(L, 1, &len);
  const tide_Language *lang = tide_language_find(name, len);
  tide_SplitEntry *entries;
  if (lang == NULL) return 0;
  count = tide_language_entries(lang, NULL);
  entries = lua_newuserdatauv(L, (count ? count : 1) * sizeof *entries, 0);
  tide_language_entries(lang, entries);
  push_compiled(L, entries, count);
  return 1;
}

/* Reads the strings of the list at index `list` as entries of one kind;
** with out NULL, only counts them. Returns the new count. */
static size_t read_list(lua_State *L, int list, int kind, int level,
                        tide_SplitEntry *out, size_t n) {
  lua_Integer i, len = (lua_Integer)lua_rawlen(L, list);
  for (i = 1; i <= len; i++, n++) {
    lua_rawgeti(L, list, i);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "text.language_def: separators must be strings");
    if (out) {
      out[n].text = lua_tolstring(L, -1, &out[n].len);
      out[n].kind = kind;
      out[n].level = level;
    }
    lua_pop(L, 1); /* the string stays alive in its table */
  }
  return n;
}

/* Reads levels (index 1, a list of lists), comments (2) and fences (3). */
static size_t read_entries(lua_State *L, tide_SplitEntry *out) {
  size_t n = 0;
  lua_Integer level, nlevels = (lua_Integer)lua_rawlen(L, 1);
  for (level = 1; level <= nlevels; level++) {
    lua_rawgeti(L, 1, level);
    luaL_checktype(L, -1, LUA_TTABLE);
    n = read_list(L, lua_gettop(L), TIDE_SPLIT_SEP,
                  level <= TIDE_SPLIT_MAXLEVELS ? (int)level - 1
                                                : TIDE_SPLIT_MAXLEVELS,
                  out, n);
    lua_pop(L, 1);
  }
  n = read_list(L, 2, TIDE_SPLIT_COMMENT, 0, out, n);
  return read_list(L, 3, TIDE_SPLIT_FENCE, 0, out, n);
}

/* split_compile(levels, comments, fences) -> a language, or nil, why,
** kind ("separator", "comment", "fence") and the entry's text */
static int split_compile(lua_State *L) {
  static const char *const kinds[] = {"separator", "comment", "fence"};
  size_t count, bad;
  tide_SplitEntry *entries;
  const char *why;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  count = read_entries(L, NULL);
  entries = lua_newuserdatauv(L, (count ? count : 1) * sizeof *entries, 0);
  read_entries(L, entries);
  if ((why = tide_splitlang_check(entries, count, &bad)) != NULL) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    if (bad < count) {
      lua_pushstring(L, kinds[entries[bad].kind]);
      lua_pushlstring(L, entries[bad].text, entries[bad].len);
      return 4;
    }
    return 2;
  }
  push_compiled(L, entries, count);
  return 1;
}

/* split_languages() -> the names of the built-in languages */
static int split_languages(lua_State *L) {
  const tide_Language *lang;
  size_t i;
  lua_newtable(L);
  for (i = 0; (lang = tide_language_at(i)) != NULL; i++) {
    lua_pushstring(L, lang->name);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* Pushes table[key] when it is a string and returns 1, else pushes
** nothing and returns 0. [-0, +(0|1), e] */
static int lookup(lua_State *L, int table, const char *key) {
  if (!lua_istable(L, table)) return 0;
  if (lua_getfield(L, table, key) == LUA_TSTRING) return 1;
  lua_pop(L, 1);
  return 0;
}

/* language(path [, filenames, extensions]) -> a language name, or nil.
** The optional tables map lower-case base names and extensions to the
** names of user-defined languages; they win over built-in ones of the
** same kind, and a file name wins over an extension. */
static int split_language_of(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  const char *ext;
  const tide_Language *lang;
  char name[256];
  if (tide_language_key(path, len, name, sizeof name, &ext) != 0) return 0;
  if (lookup(L, 2, name)) return 1;
  if ((lang = tide_language_by_filename(name)) != NULL) {
    lua_pushstring(L, lang->name);
    return 1;
  }
  if (ext == NULL) return 0;
  if (lookup(L, 3, ext)) return 1;
  if ((lang = tide_language_by_extension(ext)) == NULL) return 0;
  lua_pushstring(L, lang->name);
  return 1;
}

void tide_lsplit_open(lua_State *L) {
  static const luaL_Reg functions[] = {
    {"split", split_split},
    {"split_language", split_language},
    {"split_compile", split_compile},
    {"split_languages", split_languages},
    {"language", split_language_of},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, BOX_MT)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newmetatable(L, LANG_MT);
  lua_pop(L, 1);
  luaL_setfuncs(L, functions, 0);
}
