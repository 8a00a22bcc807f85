/*
** Records as PostgreSQL COPY data: the rows postgres.table stages before
** it upserts and deletes them in one statement each.
**
** Added to tide.core:
**   pg_copy_rows(plan, changes, vectors [, bare [, first, last]]) -> data
**     | nil, message
**     plan and changes as db:apply takes them (lrows.h); vectors is
**     "array" (real[] text, {1,2}) or "pgvector" ([1,2]). data is COPY
**     text, one line per change in order: its position (from 1), whether
**     it deletes (t/f), then every column of the plan, in PostgreSQL's
**     text format; a delete holds its key columns and \N for the others.
**     bare leaves the first two columns out (rows to COPY straight into
**     the table: the changes must all be upserts). first and last (default
**     all) are the changes to write, by position.
**
** Text format (PostgreSQL's COPY documentation): columns separated by a
** tab, NULL as \N, and in a value a backslash, tab, newline and carriage
** return written as \\, \t, \n and \r; bytea as \\x and hex digits (the
** backslash itself escaped). A string holding a NUL byte is refused:
** PostgreSQL's text cannot store one. Floats are written so they read
** back exactly: %.17g for doubles, %.9g for a vector's float32s; NaN and
** the infinities by their PostgreSQL names.
*/
#include <lauxlib.h>
#include <lua.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lcore.h"
#include "lpg_copy.h"
#include "lrows.h"

#define COPY_TYPE "tide.PgCopyOut"

/* The data being written, in a userdata so it is freed if Lua raises. */
typedef struct {
  tide_Buf out;
} CopyOut;

static int copy_gc(lua_State *L) {
  tide_buf_close(&((CopyOut *)luaL_checkudata(L, 1, COPY_TYPE))->out);
  return 0;
}

static int put(tide_Buf *b, const char *p, size_t n) {
  return tide_buf_append(b, p, n);
}

#define PUTS(b, lit) put((b), (lit), sizeof(lit) - 1)

/* The bytes a text value cannot hold as they are. */
static const unsigned char special[256] = {
  ['\0'] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, ['\\'] = 1,
};

/* A text value, escaped; TIDE_EINVAL at a NUL byte. Runs of plain bytes
** are copied whole. */
static int put_text(tide_Buf *b, const char *p, size_t len) {
  const unsigned char *u = (const unsigned char *)p;
  size_t i = 0, from = 0;
  int rc = 0;
  for (;;) {
    while (i < len && !special[u[i]]) i++;
    if (i == len) break;
    rc = put(b, p + from, i - from);
    if (rc == 0) {
      switch (p[i]) {
      case '\\': rc = put(b, "\\\\", 2); break;
      case '\t': rc = put(b, "\\t", 2); break;
      case '\n': rc = put(b, "\\n", 2); break;
      case '\r': rc = put(b, "\\r", 2); break;
      default: return TIDE_EINVAL;
      }
    }
    if (rc) return rc;
    from = ++i;
  }
  return put(b, p + from, len - from);
}

static int put_bytea(tide_Buf *b, const unsigned char *p, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t i;
  if (PUTS(b, "\\\\x") || tide_buf_reserve(b, len * 2)) return TIDE_ENOMEM;
  for (i = 0; i < len; i++) {
    b->data[b->len++] = (uint8_t)hex[p[i] >> 4];
    b->data[b->len++] = (uint8_t)hex[p[i] & 15];
  }
  return 0;
}

static int put_double(tide_Buf *b, double d, const char *format) {
  char num[40];
  int n;
  if (isnan(d)) return PUTS(b, "NaN");
  if (isinf(d)) return d > 0 ? PUTS(b, "Infinity") : PUTS(b, "-Infinity");
  n = snprintf(num, sizeof num, format, d);
  return put(b, num, (size_t)n);
}

/* A vector's little-endian float32s as an array literal. */
static int put_vector(tide_Buf *b, const uint8_t *p, size_t len,
                      int pgvector) {
  size_t i;
  int rc = put(b, pgvector ? "[" : "{", 1);
  for (i = 0; i + 4 <= len && rc == 0; i += 4) {
    uint32_t u = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 |
                 (uint32_t)p[i + 2] << 16 | (uint32_t)p[i + 3] << 24;
    float f;
    memcpy(&f, &u, 4);
    if (i > 0) rc = PUTS(b, ",");
    if (rc == 0) rc = put_double(b, (double)f, "%.9g");
  }
  return rc ? rc : put(b, pgvector ? "]" : "}", 1);
}

static int put_value(tide_Buf *b, const tide_RowColumn *col,
                     const tide_SqlValue *v, int pgvector) {
  char num[24];
  switch (v->type) {
  case TIDE_SQL_NULL:
    return PUTS(b, "\\N");
  case TIDE_SQL_INTEGER:
    if (col->kind == TIDE_COL_BOOLEAN) return put(b, v->i ? "t" : "f", 1);
    return put(b, num, (size_t)snprintf(num, sizeof num, "%lld",
                                        (long long)v->i));
  case TIDE_SQL_REAL:
    return put_double(b, v->d, "%.17g");
  case TIDE_SQL_TEXT:
    return put_text(b, v->p, v->len);
  default:
    if (col->kind == TIDE_COL_VECTOR)
      return put_vector(b, v->p, v->len, pgvector);
    return put_bytea(b, v->p, v->len);
  }
}

/* The line of change i, whose values are in s->vals. A text holding a
** NUL byte, which PostgreSQL cannot store, fails the change; but a delete
** of a key that holds one has no row to delete (none could have been
** stored; tide refuses such a row where it is declared, postgres.table's
** check_row) and writes no line, so that such a state, recorded by a
** version that did not refuse it, goes without blocking the table. */
static int put_line(tide_RowPlan *s, tide_Buf *b, lua_Integer i,
                    int is_delete, int pgvector, int bare) {
  char head[32];
  size_t start = b->len;
  int c, k, rc = bare ? 0 : put(b, head, (size_t)snprintf(head, sizeof head,
                     "%lld\t%s", (long long)i, is_delete ? "t" : "f"));
  for (c = 0; c < s->table.ncols && rc == 0; c++) {
    const tide_SqlValue *v = &s->vals[c];
    if (c > 0 || !bare) rc = PUTS(b, "\t");
    if (is_delete) { /* the key's values are in key order */
      v = NULL;
      for (k = 0; k < s->table.nkeys; k++)
        if (s->keyidx[k] == c) v = &s->vals[k];
      if (v == NULL) {
        if (rc == 0) rc = PUTS(b, "\\N");
        continue;
      }
    }
    if (rc == 0) rc = put_value(b, &s->cols[c], v, pgvector);
    if (rc == TIDE_EINVAL && is_delete) {
      b->len = start;
      return 0;
    }
    if (rc == TIDE_EINVAL) {
      snprintf(s->err, sizeof s->err, "change %lld: column %.100s: text "
               "holds a NUL byte, which PostgreSQL cannot store",
               (long long)i, s->names[c]);
      return rc;
    }
  }
  if (rc == 0) rc = PUTS(b, "\n");
  if (rc == TIDE_ENOMEM)
    snprintf(s->err, sizeof s->err, "out of memory");
  return rc;
}

/* A delete cannot be a bare row: the caller's mistake, reported. */
static int bare_delete(tide_RowPlan *s, lua_Integer i) {
  snprintf(s->err, sizeof s->err, "change %lld: a delete among bare rows",
           (long long)i);
  return TIDE_EINVAL;
}

int tide_lpg_copy_rows(lua_State *L, int plan, int changes, int pgvector,
                       int bare, lua_Integer first, lua_Integer last,
                       tide_Buf *out, char *err, size_t size) {
  int top = lua_gettop(L), names, rc = 0;
  lua_Integer i;
  tide_RowPlan *s = tide_rowplan_push(L, plan);
  names = top + 2;
  for (i = first; i <= last && rc == 0; i++) {
    int is_delete;
    lua_rawgeti(L, changes, i);
    rc = tide_rowplan_change(s, L, i, lua_gettop(L), names, names + 1,
                             &is_delete);
    if (rc == 0 && is_delete == TIDE_ROW_NONE) {
      lua_pop(L, 1);
      continue;
    }
    if (rc == 0 && is_delete && bare) rc = bare_delete(s, i);
    if (rc == 0) rc = put_line(s, out, i, is_delete, pgvector, bare);
    lua_pop(L, 1);
  }
  if (rc != 0) snprintf(err, size, "%s", s->err);
  lua_settop(L, top);
  return rc;
}

/* pg_copy_rows(plan, changes, vectors [, bare [, first, last]]) */
static int pg_copy_rows(lua_State *L) {
  static const char *const styles[] = {"array", "pgvector", NULL};
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  CopyOut *o;
  lua_Integer first, last;
  int pgvector, bare;
  char err[256];
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  pgvector = luaL_checkoption(L, 3, NULL, styles) == 1;
  bare = lua_toboolean(L, 4);
  first = luaL_optinteger(L, 5, 1);
  last = luaL_optinteger(L, 6, luaL_len(L, 2));
  lua_settop(L, 2);
  o = lua_newuserdatauv(L, sizeof *o, 0);
  tide_buf_init(&o->out, alloc, ud);
  luaL_setmetatable(L, COPY_TYPE);
  if (tide_lpg_copy_rows(L, 1, 2, pgvector, bare, first, last, &o->out,
                         err, sizeof err)) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushlstring(L, (const char *)o->out.data, o->out.len);
  tide_buf_close(&o->out);
  return 1;
}

void tide_lpg_copy_open(lua_State *L) {
  if (luaL_newmetatable(L, COPY_TYPE)) {
    lua_pushcfunction(L, copy_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, pg_copy_rows);
  lua_setfield(L, -2, "pg_copy_rows");
}
