/*
** The sqlite.rows source read in C, for mount_each with an each
** (index_each.h): a row whose component is unchanged is carried over
** without a Lua table ever being made for it.
**
**   sqlite_rows_open(db, sql, keys, each) -> cursor
**                                         | nil, kind, what, row
**   cursor:next() -> key, row | nil
**
** The query runs to its end first, as db:rows runs it, and its rows are
** checked as sqlite.lua checks them, in the same order, so a failure is
** the same and leaves nothing carried over: kind is "open" or "query"
** (what: the connection's message), "column" (what: a key column the
** result lacks), "null" (what: the key column, row: the row's number),
** "duplicate" (what: the key), or "lua" when the result has two columns
** of one name (the Lua table keeps one of them: sqlite.lua reads such a
** query itself). Each row is held as its key text, the key columns'
** values joined with "/" as sqlite.lua writes them, and the canonical
** encoding of the table db:rows makes of it (column -> value, NULL
** columns left out). Then, in row order, each row whose component the
** each carries over is dropped, and the cursor hands out the others,
** decoded into that same table.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "cbor.h"
#include "index_each.h"
#include "lcore.h"
#include "sqlite_db.h"

#define ROWS_TYPE "tide.SqliteRowsCursor"

enum { MAJOR_UINT = 0, MAJOR_NINT = 1, MAJOR_ARRAY = 4, MAJOR_MAP = 5 };

/* Everything a read holds, in a userdata so nothing leaks when Lua
** raises. */
typedef struct {
  tide_SqliteDb *db;     /* owned while the query runs */
  tide_SqliteQuery q;
  tide_Buf rows;         /* per row: a Held, the key, the encoding */
  tide_Buf names;        /* the columns' encoded names, one after another */
  tide_Buf key, enc;     /* the current row's key text and encoding */
  size_t *name_at;       /* ncols + 1 offsets into names */
  int *order;            /* ncols: columns in the order of their names */
  int *keycols;          /* nkeys column indexes */
  int ncols, nkeys;
  size_t at;             /* the next row the cursor hands out */
  tide_Alloc alloc;
  void *ud;
} Rows;

static void *alloc_array(Rows *r, size_t n, size_t size) {
  void *p = r->alloc(r->ud, NULL, 0, n * size + 1);
  if (p) memset(p, 0, n * size + 1);
  return p;
}

static void rows_release(Rows *r) {
  tide_sqlite_query_close(&r->q);
  r->q.stmt = NULL;
  tide_sqlite_db_close(r->db);
  r->db = NULL;
}

static int rows_gc(lua_State *L) {
  Rows *r = luaL_checkudata(L, 1, ROWS_TYPE);
  rows_release(r);
  tide_buf_close(&r->rows);
  tide_buf_close(&r->names);
  tide_buf_close(&r->key);
  tide_buf_close(&r->enc);
  if (r->name_at)
    r->alloc(r->ud, r->name_at, (size_t)(r->ncols + 1) * sizeof(size_t) + 1,
             0);
  if (r->order)
    r->alloc(r->ud, r->order, (size_t)r->ncols * sizeof(int) + 1, 0);
  if (r->keycols)
    r->alloc(r->ud, r->keycols, (size_t)r->nkeys * sizeof(int) + 1, 0);
  r->name_at = NULL;
  r->order = r->keycols = NULL;
  return 0;
}

static void nomem(lua_State *L) { luaL_error(L, "out of memory"); }

/* The failure of a read: nil, kind, what[, row]; the connection is let go
** at once (what may be its message: pushed first). */
static int failed(lua_State *L, Rows *r, const char *kind, const char *what,
                  lua_Integer row) {
  luaL_pushfail(L);
  lua_pushstring(L, kind);
  lua_pushstring(L, what);
  rows_release(r);
  if (row == 0) return 3;
  lua_pushinteger(L, row);
  return 4;
}

/* Sorts the columns by their encoded names (shorter first on a common
** prefix, as the encoder sorts map keys); 0 when two names are equal. */
static int order_columns(Rows *r) {
  int i, j;
  for (i = 0; i < r->ncols; i++) r->order[i] = i;
  for (i = 1; i < r->ncols; i++) { /* insertion sort: few columns */
    int c = r->order[i];
    for (j = i; j > 0; j--) {
      int d = r->order[j - 1];
      size_t la = r->name_at[c + 1] - r->name_at[c];
      size_t lb = r->name_at[d + 1] - r->name_at[d];
      int cmp = memcmp(r->names.data + r->name_at[c],
                       r->names.data + r->name_at[d], la < lb ? la : lb);
      if (cmp == 0 && la == lb) return 0;
      if (cmp > 0 || (cmp == 0 && la > lb)) break;
      r->order[j] = d;
    }
    r->order[j] = c;
  }
  return 1;
}

/* Appends text with each '\\' and '/' escaped by a '\\': a part of a key
** of several columns, joined as rows.lua's key_join joins them. */
static int put_escaped(tide_Buf *b, const char *p, size_t len) {
  size_t i, from = 0;
  int rc;
  for (i = 0; i < len; i++) {
    if (p[i] != '\\' && p[i] != '/') continue;
    if ((rc = tide_buf_append(b, p + from, i - from)) != 0 ||
        (rc = tide_buf_push(b, '\\')) != 0)
      return rc;
    from = i;
  }
  return tide_buf_append(b, p + from, len - from);
}

/* Appends a key column's value as sqlite.lua's key_text writes it, its
** text escaped when the key has several columns (numbers need none). */
static int put_key_part(tide_Buf *b, const tide_SqlValue *v, int escaped) {
  char num[40];
  int n;
  switch (v->type) {
  case TIDE_SQL_INTEGER:
    n = snprintf(num, sizeof num, "%lld", (long long)v->i);
    return tide_buf_append(b, num, (size_t)n);
  case TIDE_SQL_REAL:
    /* %.15g when Lua's tonumber reads it back exactly (it reads no inf
    ** or nan), else %.17g. */
    n = snprintf(num, sizeof num, "%.15g", v->d);
    if (!isfinite(v->d) || strtod(num, NULL) != v->d)
      n = snprintf(num, sizeof num, "%.17g", v->d);
    return tide_buf_append(b, num, (size_t)n);
  default:
    return escaped ? put_escaped(b, v->p, v->len)
                   : tide_buf_append(b, v->p, v->len);
  }
}

/* The current row's encoding: the table db:rows makes of it. */
static int encode_row(Rows *r) {
  tide_Buf *enc = &r->enc;
  tide_SqlValue v;
  int i, count = 0, rc;
  enc->len = 0;
  for (i = 0; i < r->ncols; i++) {
    tide_sqlite_query_value(&r->q, i, &v);
    if (v.type != TIDE_SQL_NULL) count++;
  }
  if ((rc = tide_cbor_put_head(enc, count ? MAJOR_MAP : MAJOR_ARRAY,
                               (uint64_t)count)) != 0)
    return rc;
  for (i = 0; i < r->ncols; i++) {
    int c = r->order[i];
    tide_sqlite_query_value(&r->q, c, &v);
    if (v.type == TIDE_SQL_NULL) continue;
    if ((rc = tide_buf_append(enc, r->names.data + r->name_at[c],
                              r->name_at[c + 1] - r->name_at[c])) != 0)
      return rc;
    switch (v.type) {
    case TIDE_SQL_INTEGER:
      rc = v.i >= 0 ? tide_cbor_put_head(enc, MAJOR_UINT, (uint64_t)v.i)
                    : tide_cbor_put_head(enc, MAJOR_NINT, ~(uint64_t)v.i);
      break;
    case TIDE_SQL_REAL: rc = tide_cbor_put_float(enc, v.d); break;
    default: rc = tide_cbor_put_string(enc, v.p, v.len); break;
    }
    if (rc) return rc;
  }
  return 0;
}

/* What a row holds before its key and encoding. */
typedef struct {
  int64_t entry;                /* its component's entry, or -1 */
  uint8_t input[TIDE_FP_SIZE];  /* its input fingerprint */
  size_t key_len, len;
} Held;

/* Reads one row: its key, listed with the each (r->key holds it), its
** encoding and input fingerprint, appended to rows. Returns 0, a TIDE_E*
** code, or 1 for a row that fails the checks, with *kind and *key_at
** (the NULL key column's place in the key list). */
static int read_row(Rows *r, tide_IndexEach *each, int64_t row,
                    const char **kind, int *key_at) {
  tide_SqlValue v;
  Held h;
  int j, rc;
  r->key.len = 0;
  for (j = 0; j < r->nkeys; j++) {
    tide_sqlite_query_value(&r->q, r->keycols[j], &v);
    if (v.type == TIDE_SQL_NULL) {
      *kind = "null";
      *key_at = j;
      return 1;
    }
    if ((j > 0 && (rc = tide_buf_push(&r->key, '/')) != 0) ||
        (rc = put_key_part(&r->key, &v, r->nkeys > 1)) != 0)
      return rc;
  }
  if ((rc = tide_index_each_find(each, (const char *)r->key.data,
                                 r->key.len)) != 0)
    return rc;
  if (tide_index_each_first(each) != 0) {
    *kind = "duplicate";
    return 1;
  }
  if ((rc = tide_index_each_list(each, row)) != 0 ||
      (rc = encode_row(r)) != 0)
    return rc;
  h.entry = tide_index_each_entry(each);
  tide_index_each_input(each, r->enc.data, r->enc.len, h.input);
  h.key_len = r->key.len;
  h.len = r->enc.len;
  if ((rc = tide_buf_append(&r->rows, &h, sizeof h)) != 0 ||
      (rc = tide_buf_append(&r->rows, r->key.data, r->key.len)) != 0 ||
      (rc = tide_buf_append(&r->rows, r->enc.data, r->enc.len)) != 0)
    return rc;
  return 0;
}

/* Carries over, in row order, the rows whose components are unchanged,
** keeping the others in rows. */
static void carry_rows(Rows *r, tide_IndexEach *each) {
  tide_Buf *b = &r->rows;
  size_t at = 0, kept = 0;
  while (at < b->len) {
    Held h;
    size_t start = at;
    memcpy(&h, b->data + at, sizeof h);
    at += sizeof h + h.key_len + h.len;
    if (h.entry >= 0) {
      tide_index_each_resume(each, h.entry);
      if (tide_index_each_carry(each, h.input)) continue;
    }
    memmove(b->data + kept, b->data + start, at - start);
    kept += at - start;
  }
  b->len = kept;
}

static int rows_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1), *sql = luaL_checkstring(L, 2);
  tide_IndexEach *each;
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  Rows *r;
  const char *kind = NULL;
  int i, j, rc, key_at = -1, missing = -1;
  lua_Integer row = 0, failed_row = 0;
  luaL_checktype(L, 3, LUA_TTABLE);
  each = tide_lindex_check_each(L, 4);
  r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  r->alloc = alloc;
  r->ud = ud;
  tide_buf_init(&r->rows, alloc, ud);
  tide_buf_init(&r->names, alloc, ud);
  tide_buf_init(&r->key, alloc, ud);
  tide_buf_init(&r->enc, alloc, ud);
  luaL_setmetatable(L, ROWS_TYPE);
  rc = tide_sqlite_db_open(&r->db, path, TIDE_SQLITE_READONLY, alloc, ud);
  if (r->db == NULL) nomem(L);
  if (rc != 0) return failed(L, r, "open", tide_sqlite_db_errmsg(r->db), 0);
  if (tide_sqlite_query_begin(&r->q, r->db, sql) != 0)
    return failed(L, r, "query", tide_sqlite_db_errmsg(r->db), 0);
  r->ncols = r->q.ncols;
  r->nkeys = (int)luaL_len(L, 3);
  r->name_at = alloc_array(r, (size_t)r->ncols + 1, sizeof(size_t));
  r->order = alloc_array(r, (size_t)r->ncols, sizeof(int));
  r->keycols = alloc_array(r, (size_t)r->nkeys, sizeof(int));
  if (!r->name_at || !r->order || !r->keycols) nomem(L);
  for (i = 0; i < r->ncols; i++) {
    const char *name = tide_sqlite_query_column(&r->q, i);
    r->name_at[i] = r->names.len;
    if (tide_cbor_put_string(&r->names, name, strlen(name)) != 0) nomem(L);
  }
  r->name_at[r->ncols] = r->names.len;
  if (!order_columns(r))
    return failed(L, r, "lua", "two columns of one name", 0);
  for (j = 0; j < r->nkeys; j++) {
    const char *k;
    lua_rawgeti(L, 3, j + 1);
    k = luaL_checkstring(L, -1);
    r->keycols[j] = -1;
    for (i = 0; i < r->ncols; i++)
      if (strcmp(tide_sqlite_query_column(&r->q, i), k) == 0)
        r->keycols[j] = i;
    lua_pop(L, 1);
    if (r->keycols[j] < 0 && missing < 0) missing = j;
  }
  /* Every row, as db:rows reads them; the checks stop at the first
  ** failure, but the query runs on: its own failure comes first. */
  while ((rc = tide_sqlite_query_next(&r->q)) == 1) {
    row++;
    if (missing >= 0 || kind != NULL) continue;
    rc = read_row(r, each, row, &kind, &key_at);
    if (rc < 0) nomem(L);
    if (rc == 1) failed_row = row;
  }
  if (rc < 0) return failed(L, r, "query", tide_sqlite_db_errmsg(r->db), 0);
  if (missing >= 0) {
    lua_rawgeti(L, 3, missing + 1);
    return failed(L, r, "column", lua_tostring(L, -1), 0);
  }
  if (kind != NULL && key_at >= 0) {
    lua_rawgeti(L, 3, key_at + 1);
    return failed(L, r, kind, lua_tostring(L, -1), failed_row);
  }
  if (kind != NULL) {
    lua_pushlstring(L, (const char *)r->key.data, r->key.len);
    return failed(L, r, kind, lua_tostring(L, -1), 0);
  }
  rows_release(r);
  carry_rows(r, each);
  return 1;
}

/* cursor:next() -> key, row | nil */
static int rows_next(lua_State *L) {
  Rows *r = luaL_checkudata(L, 1, ROWS_TYPE);
  const uint8_t *p;
  Held h;
  char err[160];
  if (r->at >= r->rows.len) return 0;
  memcpy(&h, r->rows.data + r->at, sizeof h);
  p = r->rows.data + r->at + sizeof h;
  lua_pushlstring(L, (const char *)p, h.key_len);
  if (tide_cbor_decode(L, p + h.key_len, h.len, err, sizeof err) != 0)
    return luaL_error(L, "sqlite.rows: %s", err);
  r->at += sizeof h + h.key_len + h.len;
  return 2;
}

void tide_lsqlite_rows_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"next", rows_next}, {NULL, NULL},
  };
  if (luaL_newmetatable(L, ROWS_TYPE)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, rows_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, rows_open);
  lua_setfield(L, -2, "sqlite_rows_open");
}
