/* Records as table rows for the SQL targets (lrows.h). */
#include <lauxlib.h>
#include <lua.h>

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lrows.h"
#include "tide.h"

#define ROWPLAN_TYPE "tide.RowPlan"

static int scratch_gc(lua_State *L) {
  tide_RowPlan *s = luaL_checkudata(L, 1, ROWPLAN_TYPE);
  tide_buf_close(&s->out);
  tide_json_close(&s->json);
  return 0;
}

static int conv_fail(tide_RowPlan *s, const char *fmt, ...) {
  int n = snprintf(s->err, sizeof s->err, "column %s: ", s->column);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof s->err)
    vsnprintf(s->err + n, sizeof s->err - (size_t)n, fmt, ap);
  va_end(ap);
  return TIDE_EINVAL;
}

static int put(tide_RowPlan *s, const char *p, size_t n) {
  return tide_buf_append(&s->out, p, n) ? conv_fail(s, "out of memory") : 0;
}

#define PUTS(s, lit) put((s), (lit), sizeof(lit) - 1)

/* The pieces of JSON text come from the shared writer (json_write.h). */
static int put_integer(tide_RowPlan *s, lua_Integer i) {
  return tide_json_put_integer(&s->out, (int64_t)i)
             ? conv_fail(s, "out of memory") : 0;
}

/* A number column keeps what sqlite.lua documents: NaN and infinities
** as null. */
static int put_float(tide_RowPlan *s, double d) {
  if (!isfinite(d)) return PUTS(s, "null");
  return tide_json_put_float(&s->out, d) ? conv_fail(s, "out of memory")
                                          : 0;
}

static int put_string(tide_RowPlan *s, const char *p, size_t len) {
  return tide_json_put_string(&s->out, p, len)
             ? conv_fail(s, "out of memory") : 0;
}

/* Bytes inside JSON: a base64 string (RFC 4648, with padding). */
static int put_base64(tide_RowPlan *s, const unsigned char *p, size_t len) {
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
static int check_float32(tide_RowPlan *s, lua_Integer i, double d) {
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
static int json_any(tide_RowPlan *s, lua_State *L, int v) {
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

static int json_typed(tide_RowPlan *s, lua_State *L, int v, int t, int depth);

static int json_list(tide_RowPlan *s, lua_State *L, int v, int t, int depth,
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
static int json_record(tide_RowPlan *s, lua_State *L, int v, int t, int depth) {
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
static int json_typed(tide_RowPlan *s, lua_State *L, int v, int t, int depth) {
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
static int put_vector(tide_RowPlan *s, lua_State *L, int v, int size) {
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
static int convert(tide_RowPlan *s, lua_State *L, int c, int types,
                   tide_SqlValue *out) {
  const tide_RowColumn *col = &s->cols[c];
  int v = lua_gettop(L), tv = lua_type(L, v), rc = 0, ok;
  s->column = s->names[c];
  out->p = NULL;
  out->len = 0;
  if (tv == LUA_TNIL) {
    out->type = TIDE_SQL_NULL;
    if (!col->nullable) rc = conv_fail(s, "missing value");
  } else if (col->kind == TIDE_COL_TEXT || col->kind == TIDE_COL_BLOB) {
    out->type = col->kind == TIDE_COL_TEXT ? TIDE_SQL_TEXT : TIDE_SQL_BLOB;
    if (tv == LUA_TSTRING)
      out->p = lua_tolstring(L, v, &out->len);
    else
      rc = conv_fail(s, "expected %s, got %s",
                     col->kind == TIDE_COL_TEXT ? "string" : "bytes", got(L, v));
  } else if (col->kind == TIDE_COL_INTEGER) {
    out->type = TIDE_SQL_INTEGER;
    out->i = tv == LUA_TNUMBER ? (int64_t)lua_tointegerx(L, v, &ok)
                               : (ok = 0);
    if (!ok) rc = conv_fail(s, "expected integer, got %s", got(L, v));
  } else if (col->kind == TIDE_COL_REAL) {
    out->type = TIDE_SQL_REAL;
    out->d = (double)lua_tonumber(L, v);
    if (tv != LUA_TNUMBER)
      rc = conv_fail(s, "expected number, got %s", got(L, v));
  } else if (col->kind == TIDE_COL_BOOLEAN) {
    out->type = TIDE_SQL_INTEGER;
    out->i = lua_toboolean(L, v);
    if (tv != LUA_TBOOLEAN)
      rc = conv_fail(s, "expected boolean, got %s", got(L, v));
  } else {
    size_t start = s->out.len;
    out->type = col->kind == TIDE_COL_JSON ? TIDE_SQL_TEXT : TIDE_SQL_BLOB;
    if (col->kind == TIDE_COL_VECTOR && tv != LUA_TTABLE) {
      rc = conv_fail(s, "expected a vector, got %s", got(L, v));
    } else if (col->kind == TIDE_COL_VECTOR) {
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

static void fix_row(tide_RowPlan *s, tide_SqlValue *vals, int n) {
  int i;
  for (i = 0; i < n; i++)
    if (vals[i].p == NULL && vals[i].type >= TIDE_SQL_TEXT)
      vals[i].p = s->out.data + vals[i].i;
}


static int kind_of(const char *name) {
  static const char *const kinds[] = {"text", "blob", "integer", "real",
                                      "boolean", "json", "vector", NULL};
  int i;
  for (i = 0; kinds[i]; i++)
    if (strcmp(kinds[i], name) == 0) return i;
  return -1;
}

tide_RowPlan *tide_rowplan_push(lua_State *L, int plan) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  int ncols, nkeys, i;
  size_t size;
  tide_RowPlan *s;
  char *p;
  lua_getfield(L, plan, "columns");
  luaL_argcheck(L, lua_type(L, -1) == LUA_TTABLE, plan, "plan.columns missing");
  lua_getfield(L, plan, "keys");
  luaL_argcheck(L, lua_type(L, -1) == LUA_TTABLE, plan, "plan.keys missing");
  ncols = (int)luaL_len(L, -2);
  nkeys = (int)luaL_len(L, -1);
  luaL_argcheck(L, ncols > 0 && nkeys > 0 && nkeys <= ncols && ncols < 32768,
                2, "plan needs columns and keys");
  size = sizeof *s + (size_t)ncols * (sizeof(tide_SqlValue) +
         sizeof(const char *) + sizeof(tide_RowColumn)) + (size_t)nkeys * sizeof(int);
  s = lua_newuserdatauv(L, size, 0);
  memset(s, 0, sizeof *s);
  tide_buf_init(&s->out, alloc, ud);
  tide_json_init(&s->json, &s->out, TIDE_JSON_NONFINITE_NULL, alloc, ud);
  luaL_setmetatable(L, ROWPLAN_TYPE);
  p = (char *)(s + 1);
  s->vals = (tide_SqlValue *)(void *)p;
  p += (size_t)ncols * sizeof(tide_SqlValue);
  s->names = (const char **)(void *)p;
  p += (size_t)ncols * sizeof(const char *);
  s->cols = (tide_RowColumn *)(void *)p;
  p += (size_t)ncols * sizeof(tide_RowColumn);
  s->keyidx = (int *)(void *)p;
  lua_insert(L, -3); /* scratch, columns, keys */
  lua_createtable(L, ncols, 0); /* names */
  lua_createtable(L, ncols, 0); /* types */
  for (i = 0; i < ncols; i++) {
    lua_rawgeti(L, -4, i + 1);
    luaL_argcheck(L, lua_type(L, -1) == LUA_TTABLE, plan, "bad plan column");
    lua_getfield(L, -1, "name");
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, plan, "bad plan column");
    s->names[i] = lua_tostring(L, -1);
    lua_rawseti(L, -4, i + 1);
    lua_getfield(L, -1, "kind");
    s->cols[i].kind = lua_type(L, -1) == LUA_TSTRING
                      ? kind_of(lua_tostring(L, -1)) : -1;
    luaL_argcheck(L, s->cols[i].kind >= 0, plan, "bad plan column kind");
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
  lua_getfield(L, plan, "table");
  luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, plan, "plan.table missing");
  s->table.name = lua_tostring(L, -1); /* kept alive by the plan */
  lua_pop(L, 1);
  s->table.columns = s->names;
  s->table.ncols = ncols;
  s->table.keys = s->keyidx;
  s->table.nkeys = nkeys;
  lua_getfield(L, plan, "staged");
  s->table.staged = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return s;
}

int tide_rowplan_change(tide_RowPlan *s, lua_State *L, lua_Integer i,
                        int change, int names, int types, int *is_delete) {
  int top = lua_gettop(L), value, c, rc = 0, nvals = s->table.ncols;
  s->out.len = 0;
  if (lua_type(L, change) != LUA_TTABLE) {
    snprintf(s->err, sizeof s->err, "change %lld is not a table",
             (long long)i);
    return TIDE_EINVAL;
  }
  lua_getfield(L, change, "value");
  value = lua_gettop(L);
  *is_delete = lua_type(L, value) == LUA_TNIL ? TIDE_ROW_DELETE
                                               : TIDE_ROW_UPSERT;
  if (*is_delete) {
    nvals = s->table.nkeys;
    if (lua_getfield(L, change, "key") != LUA_TTABLE) {
      lua_settop(L, top);
      snprintf(s->err, sizeof s->err, "change %lld: key must be a list",
               (long long)i);
      return TIDE_EINVAL;
    }
    /* A key of another shape was recorded under an earlier schema, in a
    ** table since recreated: no row of it can be there. */
    if (lua_rawlen(L, value + 1) != (lua_Unsigned)nvals)
      *is_delete = TIDE_ROW_NONE;
    for (c = 0; c < nvals && *is_delete == TIDE_ROW_DELETE; c++) {
      lua_rawgeti(L, value + 1, c + 1);
      if (convert(s, L, s->keyidx[c], types, &s->vals[c]) != 0)
        *is_delete = TIDE_ROW_NONE;
    }
  } else if (lua_type(L, value) != LUA_TTABLE) {
    snprintf(s->err, sizeof s->err, "change %lld: value must be a record, "
             "got %s", (long long)i, luaL_typename(L, value));
    lua_settop(L, top);
    return TIDE_EINVAL;
  } else {
    for (c = 0; c < nvals && rc == 0; c++) {
      lua_rawgeti(L, names, c + 1);
      lua_rawget(L, value);
      rc = convert(s, L, c, types, &s->vals[c]);
    }
  }
  lua_settop(L, top);
  if (rc != 0) {
    char why[sizeof s->err];
    memcpy(why, s->err, sizeof why);
    snprintf(s->err, sizeof s->err, "change %lld: %.200s", (long long)i,
             why);
    return rc;
  }
  /* A delete that does nothing sets no value (one it could not convert
  ** is half made): none is read. */
  if (*is_delete != TIDE_ROW_NONE) fix_row(s, s->vals, nvals);
  return 0;
}

void tide_lrows_open(lua_State *L) {
  if (luaL_newmetatable(L, ROWPLAN_TYPE)) {
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}
