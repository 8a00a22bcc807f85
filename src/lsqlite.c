/*
** Lua binding of the SQLite connector (sqlite_db.h): connections, batches
** of record rows written in one transaction, and queries. tide.sqlite
** composes the `sqlite.table` target and the `sqlite.rows` source on top.
**
** Added to tide.core:
**   sqlite_open(path, mode) -> db | nil, err     mode "create"|"write"|"read"
**   db:exec(sql) -> true | nil, err
**   db:rows(sql) -> rows, column names | nil, err
**   db:apply(plan, changes) -> true | nil, err   (see db_apply)
**   db:stale() -> boolean, db:busy_timeout(ms), db:close()
*/
#include <lauxlib.h>
#include <lua.h>

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "json_write.h"
#include "lcore.h"
#include "sqlite_db.h"

#define DB_TYPE "tide.SqliteDb"
#define QUERY_TYPE "tide.SqliteQuery"
#define SCRATCH_TYPE "tide.SqliteScratch"

typedef struct {
  tide_SqliteDb *db; /* owned; NULL once closed */
} Db;

/* ---- Connections ---- */

static Db *check_db(lua_State *L) {
  Db *d = luaL_checkudata(L, 1, DB_TYPE);
  if (d->db == NULL) luaL_argerror(L, 1, "database is closed");
  return d;
}

/* Pushes nil and the connection's message: a runtime failure. */
static int push_fail(lua_State *L, const tide_SqliteDb *db) {
  luaL_pushfail(L);
  lua_pushstring(L, tide_sqlite_db_errmsg(db));
  return 2;
}

static int db_close(lua_State *L) {
  Db *d = luaL_checkudata(L, 1, DB_TYPE);
  tide_sqlite_db_close(d->db);
  d->db = NULL;
  return 0;
}

static int sqlite_open(lua_State *L) {
  static const char *const modes[] = {"create", "write", "read", NULL};
  static const int codes[] = {TIDE_SQLITE_CREATE, TIDE_SQLITE_WRITE,
                              TIDE_SQLITE_READONLY};
  const char *path = luaL_checkstring(L, 1);
  int mode = codes[luaL_checkoption(L, 2, "create", modes)];
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  Db *d = lua_newuserdatauv(L, sizeof *d, 0);
  d->db = NULL;
  luaL_setmetatable(L, DB_TYPE);
  if (tide_sqlite_db_open(&d->db, path, mode, alloc, ud) != 0) {
    lua_pushstring(L, tide_sqlite_db_errmsg(d->db));
    tide_sqlite_db_close(d->db);
    d->db = NULL;
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
  }
  return 1;
}

static int db_exec(lua_State *L) {
  Db *d = check_db(L);
  if (tide_sqlite_db_exec(d->db, luaL_checkstring(L, 2)) != 0)
    return push_fail(L, d->db);
  lua_pushboolean(L, 1);
  return 1;
}

static int db_stale(lua_State *L) {
  lua_pushboolean(L, tide_sqlite_db_stale(check_db(L)->db));
  return 1;
}

static int db_busy_timeout(lua_State *L) {
  Db *d = check_db(L);
  tide_sqlite_db_set_busy_timeout(d->db, (int)luaL_checkinteger(L, 2));
  return 0;
}

/* ---- Queries ---- */

static int query_gc(lua_State *L) {
  tide_sqlite_query_close(luaL_checkudata(L, 1, QUERY_TYPE));
  return 0;
}

static void push_sql_value(lua_State *L, const tide_SqlValue *v) {
  switch (v->type) {
  case TIDE_SQL_INTEGER: lua_pushinteger(L, (lua_Integer)v->i); break;
  case TIDE_SQL_REAL: lua_pushnumber(L, (lua_Number)v->d); break;
  case TIDE_SQL_TEXT:
  case TIDE_SQL_BLOB: lua_pushlstring(L, v->p, v->len); break;
  default: lua_pushnil(L); break;
  }
}

/* db:rows(sql): every row as a table column -> value (NULL leaves the
** column out), and the list of column names. The statement lives in a
** userdata, so it is finalized even if pushing a row raises. */
static int db_rows(lua_State *L) {
  Db *d = check_db(L);
  const char *sql = luaL_checkstring(L, 2);
  tide_SqliteQuery *q = lua_newuserdatauv(L, sizeof *q, 0);
  tide_SqlValue v;
  lua_Integer n = 0;
  int i, rc;
  q->stmt = NULL;
  luaL_setmetatable(L, QUERY_TYPE);
  if (tide_sqlite_query_begin(q, d->db, sql) != 0) {
    tide_sqlite_query_close(q);
    return push_fail(L, d->db);
  }
  lua_newtable(L); /* rows */
  lua_createtable(L, q->ncols, 0); /* names */
  for (i = 0; i < q->ncols; i++) {
    lua_pushstring(L, tide_sqlite_query_column(q, i));
    lua_rawseti(L, -2, i + 1);
  }
  while ((rc = tide_sqlite_query_next(q)) == 1) {
    lua_createtable(L, 0, q->ncols);
    for (i = 0; i < q->ncols; i++) {
      tide_sqlite_query_value(q, i, &v);
      if (v.type == TIDE_SQL_NULL) continue;
      lua_rawgeti(L, -2, i + 1);
      push_sql_value(L, &v);
      lua_rawset(L, -3);
    }
    lua_rawseti(L, -3, ++n);
  }
  tide_sqlite_query_close(q);
  if (rc < 0) return push_fail(L, d->db);
  return 2;
}

/* ---- Converting record values to column values ---- */

/* How a column's Lua value becomes an SQL value. */
enum { K_TEXT, K_BLOB, K_INTEGER, K_REAL, K_BOOLEAN, K_JSON, K_VECTOR };

typedef struct {
  int kind;
  int nullable;
  int size; /* of a vector */
} Column;

/* Everything a batch needs, in one userdata so nothing leaks if Lua
** raises: the columns, the values of the current row, the bytes of its
** JSON and vector values, and the JSON writer (json_write.h). */
typedef struct {
  tide_Buf out;  /* JSON and vector bytes of the current row */
  tide_JsonWriter json; /* writes json-typed values into out */
  tide_SqliteTable table;
  tide_SqlValue *vals; /* ncols */
  Column *cols;        /* ncols */
  const char **names;  /* ncols, borrowed from the plan */
  int *keyidx;         /* nkeys */
  const char *column;  /* the column being converted, for messages */
  char err[256];
} Scratch;

static int scratch_gc(lua_State *L) {
  Scratch *s = luaL_checkudata(L, 1, SCRATCH_TYPE);
  tide_buf_close(&s->out);
  tide_json_close(&s->json);
  return 0;
}

static int conv_fail(Scratch *s, const char *fmt, ...) {
  int n = snprintf(s->err, sizeof s->err, "column %s: ", s->column);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof s->err)
    vsnprintf(s->err + n, sizeof s->err - (size_t)n, fmt, ap);
  va_end(ap);
  return TIDE_EINVAL;
}

static int put(Scratch *s, const char *p, size_t n) {
  return tide_buf_append(&s->out, p, n) ? conv_fail(s, "out of memory") : 0;
}

#define PUTS(s, lit) put((s), (lit), sizeof(lit) - 1)

/* The pieces of JSON text come from the shared writer (json_write.h). */
static int put_integer(Scratch *s, lua_Integer i) {
  return tide_json_put_integer(&s->out, (int64_t)i)
             ? conv_fail(s, "out of memory") : 0;
}

/* A number column keeps what sqlite.lua documents: NaN and infinities
** as null. */
static int put_float(Scratch *s, double d) {
  if (!isfinite(d)) return PUTS(s, "null");
  return tide_json_put_float(&s->out, d) ? conv_fail(s, "out of memory")
                                          : 0;
}

static int put_string(Scratch *s, const char *p, size_t len) {
  return tide_json_put_string(&s->out, p, len)
             ? conv_fail(s, "out of memory") : 0;
}

/* Bytes inside JSON: a base64 string (RFC 4648, with padding). */
static int put_base64(Scratch *s, const unsigned char *p, size_t len) {
  static const char abc[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i;
  int rc = PUTS(s, "\"");
  for (i = 0; i < len && rc == 0; i += 3) {
    uint32_t w = (uint32_t)p[i] << 16;
    char q[4];
    if (i + 1 < len) w |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < len) w |= p[i + 2];
    q[0] = abc[w >> 18];
    q[1] = abc[(w >> 12) & 63];
    q[2] = i + 1 < len ? abc[(w >> 6) & 63] : '=';
    q[3] = i + 2 < len ? abc[w & 63] : '=';
    rc = put(s, q, 4);
  }
  return rc ? rc : PUTS(s, "\"");
}

/* A vector is stored as float32s: an element must be finite and within
** FLT_MAX, or the conversion would store an infinity (and be undefined
** behaviour in C). Element i (from 1) of the vector is bad. */
static int check_float32(Scratch *s, lua_Integer i, double d) {
  char num[32];
  if (d >= -FLT_MAX && d <= FLT_MAX) return 0; /* false for NaN too */
  if (isnan(d))
    memcpy(num, "NaN", 4);
  else
    snprintf(num, sizeof num, "%.14g", d);
  return conv_fail(s, "expected a finite number within float32 range at "
                   "[%d], got %s", (int)i, num);
}

static const char *got(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER)
    return lua_isinteger(L, idx) ? "integer" : "float";
  return luaL_typename(L, idx);
}

/* A json-typed value: any nesting of tables, strings, numbers, booleans,
** written by the shared writer. */
static int json_any(Scratch *s, lua_State *L, int v) {
  int rc = tide_json_write(&s->json, L, v);
  if (rc == TIDE_ENOMEM) return conv_fail(s, "out of memory");
  return rc ? conv_fail(s, "%s", s->json.err) : 0;
}

/* The kind of the described type at t (tide.record's describe): a scalar
** kind name, or the first element of a { kind, ... } list. Pushes nothing
** when t is a string, else pushes the kind. */
static const char *type_kind(lua_State *L, int t) {
  if (lua_type(L, t) == LUA_TSTRING) return lua_tostring(L, t);
  if (lua_type(L, t) != LUA_TTABLE) return "?";
  lua_rawgeti(L, t, 1);
  return lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
}

static int json_typed(Scratch *s, lua_State *L, int v, int t, int depth);

static int json_list(Scratch *s, lua_State *L, int v, int t, int depth,
                     int vector) {
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, v);
  int rc = PUTS(s, "[");
  lua_rawgeti(L, t, 2); /* element type, or the vector's size */
  for (i = 1; i <= n && rc == 0; i++) {
    if (i > 1) rc = PUTS(s, ",");
    lua_rawgeti(L, v, i);
    if (rc == 0 && vector) {
      double d = (double)lua_tonumber(L, -1);
      if (lua_type(L, -1) != LUA_TNUMBER)
        rc = conv_fail(s, "expected a number in a vector, got %s",
                       got(L, -1));
      else if ((rc = check_float32(s, i, d)) == 0)
        rc = put_float(s, d);
    } else if (rc == 0) {
      rc = json_typed(s, L, lua_gettop(L), lua_gettop(L) - 1, depth + 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return rc ? rc : PUTS(s, "]");
}

/* A record as an object, fields in declared order, a missing optional
** field as null. */
static int json_record(Scratch *s, lua_State *L, int v, int t, int depth) {
  lua_Integer i, n;
  int fields, rc = PUTS(s, "{");
  lua_rawgeti(L, t, 3);
  fields = lua_gettop(L);
  n = lua_type(L, fields) == LUA_TTABLE ? (lua_Integer)lua_rawlen(L, fields)
                                         : 0;
  for (i = 1; i <= n && rc == 0; i++) {
    size_t len;
    const char *name;
    lua_rawgeti(L, fields, i);  /* { name, type, key } */
    lua_rawgeti(L, -1, 1);
    name = lua_tolstring(L, -1, &len);
    if (name == NULL) {
      lua_pop(L, 2);
      rc = conv_fail(s, "malformed record type");
      break;
    }
    if (i > 1) rc = PUTS(s, ",");
    if (rc == 0) rc = put_string(s, name, len);
    if (rc == 0) rc = PUTS(s, ":");
    lua_rawget(L, v);             /* the field's value */
    lua_rawgeti(L, -2, 2);        /* its type */
    if (rc == 0) rc = json_typed(s, L, lua_gettop(L) - 1, lua_gettop(L),
                                 depth + 1);
    lua_pop(L, 3);
  }
  lua_pop(L, 1);
  return rc ? rc : PUTS(s, "}");
}

/* A value as JSON, following its described type t. */
static int json_typed(Scratch *s, lua_State *L, int v, int t, int depth) {
  int top = lua_gettop(L), tv = lua_type(L, v), rc;
  const char *kind;
  if (depth >= TIDE_JSON_MAX_DEPTH || !lua_checkstack(L, 8))
    return conv_fail(s, "value nested too deeply");
  kind = type_kind(L, t);
  if (strcmp(kind, "optional") == 0) {
    if (tv == LUA_TNIL) {
      rc = PUTS(s, "null");
    } else {
      lua_rawgeti(L, t, 2);
      rc = json_typed(s, L, v, lua_gettop(L), depth + 1);
    }
  } else if (strcmp(kind, "json") == 0) {
    rc = tv == LUA_TNIL ? conv_fail(s, "expected json, got nil")
                        : json_any(s, L, v);
  } else if (strcmp(kind, "string") == 0 || strcmp(kind, "bytes") == 0) {
    size_t len;
    const char *p = tv == LUA_TSTRING ? lua_tolstring(L, v, &len) : NULL;
    if (p == NULL)
      rc = conv_fail(s, "expected %s, got %s", kind, got(L, v));
    else
      rc = kind[0] == 's' ? put_string(s, p, len)
                          : put_base64(s, (const unsigned char *)p, len);
  } else if (strcmp(kind, "integer") == 0) {
    int ok;
    lua_Integer i = tv == LUA_TNUMBER ? lua_tointegerx(L, v, &ok) : (ok = 0);
    rc = ok ? put_integer(s, i)
            : conv_fail(s, "expected integer, got %s", got(L, v));
  } else if (strcmp(kind, "number") == 0) {
    rc = tv == LUA_TNUMBER ? put_float(s, (double)lua_tonumber(L, v))
                           : conv_fail(s, "expected number, got %s",
                                       got(L, v));
  } else if (strcmp(kind, "boolean") == 0) {
    rc = tv != LUA_TBOOLEAN ? conv_fail(s, "expected boolean, got %s",
                                        got(L, v))
         : lua_toboolean(L, v) ? PUTS(s, "true") : PUTS(s, "false");
  } else if (tv != LUA_TTABLE) {
    rc = conv_fail(s, "expected %s, got %s", kind, got(L, v));
  } else if (strcmp(kind, "list") == 0 || strcmp(kind, "vector") == 0) {
    rc = json_list(s, L, v, t, depth, kind[0] == 'v');
  } else if (strcmp(kind, "record") == 0) {
    rc = json_record(s, L, v, t, depth);
  } else {
    rc = conv_fail(s, "unknown type %s", kind);
  }
  lua_settop(L, top);
  return rc;
}

/* Little-endian float32s, one per element. */
static int put_vector(Scratch *s, lua_State *L, int v, int size) {
  lua_Integer i;
  if ((lua_Integer)lua_rawlen(L, v) != size)
    return conv_fail(s, "expected a vector of %d numbers, got %d", size,
                     (int)lua_rawlen(L, v));
  if (tide_buf_reserve(&s->out, (size_t)size * 4) != 0)
    return conv_fail(s, "out of memory");
  for (i = 1; i <= size; i++) {
    double d;
    float f;
    uint32_t u;
    int rc;
    uint8_t *b = s->out.data + s->out.len;
    if (lua_rawgeti(L, v, i) != LUA_TNUMBER) {
      rc = conv_fail(s, "expected a number at [%d], got %s", (int)i,
                     got(L, -1));
      lua_pop(L, 1);
      return rc;
    }
    d = (double)lua_tonumber(L, -1);
    lua_pop(L, 1);
    if ((rc = check_float32(s, i, d)) != 0) return rc;
    f = (float)d;
    memcpy(&u, &f, 4);
    b[0] = (uint8_t)u;
    b[1] = (uint8_t)(u >> 8);
    b[2] = (uint8_t)(u >> 16);
    b[3] = (uint8_t)(u >> 24);
    s->out.len += 4;
  }
  return 0;
}

/* Converts the value on top of the stack for column c into *out. JSON and
** vector bytes go to s->out; until fix_row, such a value has p == NULL
** and its offset in i. Pops the value. */
static int convert(Scratch *s, lua_State *L, int c, int types,
                   tide_SqlValue *out) {
  const Column *col = &s->cols[c];
  int v = lua_gettop(L), tv = lua_type(L, v), rc = 0, ok;
  s->column = s->names[c];
  out->p = NULL;
  out->len = 0;
  if (tv == LUA_TNIL) {
    out->type = TIDE_SQL_NULL;
    if (!col->nullable) rc = conv_fail(s, "missing value");
  } else if (col->kind == K_TEXT || col->kind == K_BLOB) {
    out->type = col->kind == K_TEXT ? TIDE_SQL_TEXT : TIDE_SQL_BLOB;
    if (tv == LUA_TSTRING)
      out->p = lua_tolstring(L, v, &out->len);
    else
      rc = conv_fail(s, "expected %s, got %s",
                     col->kind == K_TEXT ? "string" : "bytes", got(L, v));
  } else if (col->kind == K_INTEGER) {
    out->type = TIDE_SQL_INTEGER;
    out->i = tv == LUA_TNUMBER ? (int64_t)lua_tointegerx(L, v, &ok)
                               : (ok = 0);
    if (!ok) rc = conv_fail(s, "expected integer, got %s", got(L, v));
  } else if (col->kind == K_REAL) {
    out->type = TIDE_SQL_REAL;
    out->d = (double)lua_tonumber(L, v);
    if (tv != LUA_TNUMBER)
      rc = conv_fail(s, "expected number, got %s", got(L, v));
  } else if (col->kind == K_BOOLEAN) {
    out->type = TIDE_SQL_INTEGER;
    out->i = lua_toboolean(L, v);
    if (tv != LUA_TBOOLEAN)
      rc = conv_fail(s, "expected boolean, got %s", got(L, v));
  } else {
    size_t start = s->out.len;
    out->type = col->kind == K_JSON ? TIDE_SQL_TEXT : TIDE_SQL_BLOB;
    if (col->kind == K_VECTOR && tv != LUA_TTABLE) {
      rc = conv_fail(s, "expected a vector, got %s", got(L, v));
    } else if (col->kind == K_VECTOR) {
      rc = put_vector(s, L, v, col->size);
    } else {
      lua_rawgeti(L, types, c + 1);
      rc = json_typed(s, L, v, lua_gettop(L), 0);
    }
    out->i = (int64_t)start;
    out->len = s->out.len - start;
  }
  lua_settop(L, v - 1);
  return rc;
}

static void fix_row(Scratch *s, tide_SqlValue *vals, int n) {
  int i;
  for (i = 0; i < n; i++)
    if (vals[i].p == NULL && vals[i].type >= TIDE_SQL_TEXT)
      vals[i].p = s->out.data + vals[i].i;
}

/* ---- Batches ---- */

static int kind_of(const char *name) {
  static const char *const kinds[] = {"text", "blob", "integer", "real",
                                      "boolean", "json", "vector", NULL};
  int i;
  for (i = 0; kinds[i]; i++)
    if (strcmp(kinds[i], name) == 0) return i;
  return -1;
}

/* Reads plan (at index 2) into a new scratch userdata, pushed with the
** plan's column names and types as two lists: [-0, +3, v]. */
static Scratch *new_scratch(lua_State *L) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  int ncols, nkeys, i;
  size_t size;
  Scratch *s;
  char *p;
  lua_getfield(L, 2, "columns");
  luaL_argcheck(L, lua_type(L, -1) == LUA_TTABLE, 2, "plan.columns missing");
  lua_getfield(L, 2, "keys");
  luaL_argcheck(L, lua_type(L, -1) == LUA_TTABLE, 2, "plan.keys missing");
  ncols = (int)luaL_len(L, -2);
  nkeys = (int)luaL_len(L, -1);
  luaL_argcheck(L, ncols > 0 && nkeys > 0 && nkeys <= ncols && ncols < 32768,
                2, "plan needs columns and keys");
  size = sizeof *s + (size_t)ncols * (sizeof(tide_SqlValue) +
         sizeof(const char *) + sizeof(Column)) + (size_t)nkeys * sizeof(int);
  s = lua_newuserdatauv(L, size, 0);
  memset(s, 0, sizeof *s);
  tide_buf_init(&s->out, alloc, ud);
  tide_json_init(&s->json, &s->out, TIDE_JSON_NONFINITE_NULL, alloc, ud);
  luaL_setmetatable(L, SCRATCH_TYPE);
  p = (char *)(s + 1);
  s->vals = (tide_SqlValue *)(void *)p;
  p += (size_t)ncols * sizeof(tide_SqlValue);
  s->names = (const char **)(void *)p;
  p += (size_t)ncols * sizeof(const char *);
  s->cols = (Column *)(void *)p;
  p += (size_t)ncols * sizeof(Column);
  s->keyidx = (int *)(void *)p;
  lua_insert(L, -3); /* scratch, columns, keys */
  lua_createtable(L, ncols, 0); /* names */
  lua_createtable(L, ncols, 0); /* types */
  for (i = 0; i < ncols; i++) {
    lua_rawgeti(L, -4, i + 1);
    luaL_argcheck(L, lua_type(L, -1) == LUA_TTABLE, 2, "bad plan column");
    lua_getfield(L, -1, "name");
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2, "bad plan column");
    s->names[i] = lua_tostring(L, -1);
    lua_rawseti(L, -4, i + 1);
    lua_getfield(L, -1, "kind");
    s->cols[i].kind = lua_type(L, -1) == LUA_TSTRING
                      ? kind_of(lua_tostring(L, -1)) : -1;
    luaL_argcheck(L, s->cols[i].kind >= 0, 2, "bad plan column kind");
    lua_getfield(L, -2, "nullable");
    s->cols[i].nullable = lua_toboolean(L, -1);
    lua_getfield(L, -3, "size");
    s->cols[i].size = (int)lua_tointeger(L, -1);
    lua_getfield(L, -4, "type");
    lua_rawseti(L, -6, i + 1);
    lua_pop(L, 4);
  }
  for (i = 0; i < nkeys; i++) {
    lua_rawgeti(L, -3, i + 1);
    s->keyidx[i] = (int)lua_tointeger(L, -1) - 1;
    luaL_argcheck(L, s->keyidx[i] >= 0 && s->keyidx[i] < ncols, 2,
                  "bad plan key");
    lua_pop(L, 1);
  }
  lua_remove(L, -3); /* keys */
  lua_remove(L, -3); /* columns */
  lua_getfield(L, 2, "table");
  luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2, "plan.table missing");
  s->table.name = lua_tostring(L, -1); /* kept alive by the plan */
  lua_pop(L, 1);
  s->table.columns = s->names;
  s->table.ncols = ncols;
  s->table.keys = s->keyidx;
  s->table.nkeys = nkeys;
  lua_getfield(L, 2, "staged");
  s->table.staged = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return s;
}

/* Converts and writes the rows of one db:apply. It runs under lua_pcall,
** so an error Lua raises (out of memory) cannot leave the transaction
** open. Arguments: changes, scratch, names, types. Returns nothing, or
** the message of a row that could not be written. */
static int apply_rows(lua_State *L) {
  Scratch *s = lua_touserdata(L, 2);
  tide_SqliteDb *db = lua_touserdata(L, lua_upvalueindex(1));
  lua_Integer i, n = luaL_len(L, 1);
  for (i = 1; i <= n; i++) {
    int change, value, c, rc = 0, nvals = s->table.ncols, is_delete;
    lua_rawgeti(L, 1, i);
    change = lua_gettop(L);
    if (lua_type(L, change) != LUA_TTABLE) {
      lua_pushfstring(L, "change %I is not a table", (LUAI_UACINT)i);
      return 1;
    }
    s->out.len = 0;
    lua_getfield(L, change, "value");
    value = lua_gettop(L);
    is_delete = lua_type(L, value) == LUA_TNIL;
    if (is_delete) {
      nvals = s->table.nkeys;
      if (lua_getfield(L, change, "key") != LUA_TTABLE) {
        lua_pushfstring(L, "change %I: key must be a list",
                        (LUAI_UACINT)i);
        return 1;
      }
      for (c = 0; c < nvals && rc == 0; c++) {
        lua_rawgeti(L, value + 1, c + 1);
        rc = convert(s, L, s->keyidx[c], 4, &s->vals[c]);
      }
    } else if (lua_type(L, value) != LUA_TTABLE) {
      lua_pushfstring(L, "change %I: value must be a record, got %s",
                      (LUAI_UACINT)i, luaL_typename(L, value));
      return 1;
    } else {
      for (c = 0; c < nvals && rc == 0; c++) {
        lua_rawgeti(L, 3, c + 1);
        lua_rawget(L, value);
        rc = convert(s, L, c, 4, &s->vals[c]);
      }
    }
    if (rc != 0) {
      lua_pushfstring(L, "change %I: %s", (LUAI_UACINT)i, s->err);
      return 1;
    }
    fix_row(s, s->vals, nvals);
    /* By the value, not the count: a record of key fields only has as
    ** many values as keys. */
    rc = is_delete ? tide_sqlite_batch_delete(db, s->vals)
                   : tide_sqlite_batch_upsert(db, s->vals);
    if (rc != 0) {
      lua_pushstring(L, tide_sqlite_db_errmsg(db));
      return 1;
    }
    lua_settop(L, change - 1);
  }
  return 0;
}

/*
** db:apply(plan, changes): writes changes into one table in one
** transaction. plan = { table = name, columns = { { name, kind, nullable,
** size, type }... }, keys = { column indexes in key order } }, where kind
** is "text", "blob", "integer", "real", "boolean", "json" (type: the
** described type to follow) or "vector" (size: its length); staged = true
** stages the rows (see tide_SqliteTable). changes is a
** list of { key = { key values }, value = record or nil (delete) }.
** Returns true, or nil and a message after rolling everything back.
*/
static int db_apply(lua_State *L) {
  Db *d = check_db(L);
  Scratch *s;
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  s = new_scratch(L); /* 4: scratch, 5: names, 6: types */
  if (tide_sqlite_batch_begin(d->db, &s->table) != 0)
    return push_fail(L, d->db);
  lua_pushlightuserdata(L, d->db);
  lua_pushcclosure(L, apply_rows, 1);
  lua_pushvalue(L, 3);
  lua_pushvalue(L, 4);
  lua_pushvalue(L, 5);
  lua_pushvalue(L, 6);
  if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
    tide_sqlite_batch_rollback(d->db);
    return lua_error(L);
  }
  if (!lua_isnil(L, -1)) {
    tide_sqlite_batch_rollback(d->db);
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
  }
  if (tide_sqlite_batch_commit(d->db) != 0) return push_fail(L, d->db);
  lua_pushboolean(L, 1);
  return 1;
}

void tide_lsqlite_open(lua_State *L) {
  static const luaL_Reg db_methods[] = {
    {"exec", db_exec},
    {"rows", db_rows},
    {"apply", db_apply},
    {"stale", db_stale},
    {"busy_timeout", db_busy_timeout},
    {"close", db_close},
    {NULL, NULL},
  };
  static const luaL_Reg funcs[] = {
    {"sqlite_open", sqlite_open},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, DB_TYPE)) {
    luaL_newlib(L, db_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, db_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, db_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, QUERY_TYPE)) {
    lua_pushcfunction(L, query_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, SCRATCH_TYPE)) {
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, funcs, 0);
}
