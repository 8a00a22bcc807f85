/*
** Writing Lua values as JSON: tide's one JSON writer, behind `update
** --json`, `show`, `why`, `ls` and `verify --json` (report.lua),
** tide.json.encode (core.json_encode) and the JSON text of record columns
** in SQLite tables (lsqlite.c).
**
** The text is deterministic (equal values, equal bytes) and always valid
** UTF-8 that any strict parser reads:
** - Strings: `"` and `\` escaped; bytes below 0x20 as \b \f \n \r \t or
**   \u00XX; each byte that is not part of a valid UTF-8 sequence as
**   \ufffd (a file name is any bytes); everything else as it is ("/",
**   "é").
** - Numbers: an integer in decimal; a float in its shortest exact form,
**   always with a fraction or an exponent ("1.0", "1e+300") so that it
**   reads back as a float. JSON has no NaN or infinity: they are refused,
**   naming the field, unless TIDE_JSON_NONFINITE_NULL writes them as null.
** - true, false; nil and json.null (lua-cjson's null, a NULL light
**   userdata) as null.
** - A table whose keys are exactly 1..n (n >= 1) is an array; any other
**   table, the empty one included, an object with its keys sorted
**   bytewise (an integer key is written in decimal, and sorts after an
**   equal string key). Keys must be strings or integers.
** - A metatable may say more: __jsontype = "array" writes t[1..#t] as an
**   array (so an empty list is []), "object" writes an object;
**   __jsonorder = { k1, k2, ... } writes those keys first, in that order,
**   null when absent, then the other keys sorted. Other metafields are
**   ignored: a record is written as its fields.
** - Nesting deeper than TIDE_JSON_MAX_DEPTH (a cycle, say) is refused.
**
** On failure a call returns TIDE_EENCODE (or TIDE_ENOMEM) and leaves the
** reason in w->err ("expected json, got function") and the place inside
** the value in w->where (".tags[2]", "" for the value itself), so that a
** caller can name the field in its own words.
*/
#ifndef TIDE_JSON_WRITE_H
#define TIDE_JSON_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "buf.h"

#define TIDE_JSON_MAX_DEPTH 100

/* Flags. */
#define TIDE_JSON_NONFINITE_NULL 1 /* NaN and infinities as null */

typedef struct tide_JsonWriter {
  tide_Buf *out;  /* borrowed: the text is appended here */
  tide_Buf keys;  /* owned: the sorted keys of the objects being written */
  int flags;
  int depth;
  struct {        /* the key or index being written at each depth */
    const char *s; /* a string key (borrowed from the table), or NULL */
    size_t len;
    lua_Integer i; /* an integer key or array index */
  } path[TIDE_JSON_MAX_DEPTH + 1];
  char where[256];
  char err[128];
} tide_JsonWriter;

/* Sets w up to append to out. alloc NULL means tide_alloc_default. */
void tide_json_init(tide_JsonWriter *w, tide_Buf *out, int flags,
                    tide_Alloc alloc, void *ud);
/* Frees what the writer owns (not out); accepts NULL. */
void tide_json_close(tide_JsonWriter *w);

/* Appends the value at idx as JSON. On failure out holds part of it.
** Reads tables with raw access: no __index, __pairs or __len runs.
** [-0, +0, m] */
int tide_json_write(tide_JsonWriter *w, lua_State *L, int idx);

/* Pieces for writers that follow a schema of their own (record columns):
** a string, an integer, a finite float, each as described above. */
int tide_json_put_string(tide_Buf *b, const char *s, size_t len);
int tide_json_put_integer(tide_Buf *b, int64_t i);
int tide_json_put_float(tide_Buf *b, double d);

#endif
