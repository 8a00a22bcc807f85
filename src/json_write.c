/* The JSON writer (see json_write.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "json_write.h"
#include "utf8.h"

/* One key of an object being written: a string key, or an integer key
** written in decimal into num. */
typedef struct {
  const char *s; /* borrowed from the table, NULL for an integer key */
  size_t len;
  lua_Integer i;
  char num[24];
} Key;

void tide_json_init(tide_JsonWriter *w, tide_Buf *out, int flags,
                    tide_Alloc alloc, void *ud) {
  w->out = out;
  w->flags = flags;
  w->depth = 0;
  w->where[0] = w->err[0] = '\0';
  tide_buf_init(&w->keys, alloc, ud);
}

void tide_json_close(tide_JsonWriter *w) {
  if (w) tide_buf_close(&w->keys);
}

/* ---- Pieces ---- */

#define PUT(b, lit) tide_buf_append((b), (lit), sizeof(lit) - 1)

int tide_json_put_integer(tide_Buf *b, int64_t i) {
  char num[32];
  int n = snprintf(num, sizeof num, "%lld", (long long)i);
  return tide_buf_append(b, num, (size_t)n);
}

int tide_json_put_float(tide_Buf *b, double d) {
  char num[40];
  int n = 0, prec, i;
  for (prec = 15; prec <= 17; prec++) {
    n = snprintf(num, sizeof num, "%.*g", prec, d);
    if (strtod(num, NULL) == d) break;
  }
  for (i = 0; i < n; i++)
    if (num[i] == ',') num[i] = '.'; /* a comma locale */
  if (!strpbrk(num, ".e")) {
    memcpy(num + n, ".0", 3);
    n += 2;
  }
  return tide_buf_append(b, num, (size_t)n);
}

int tide_json_put_string(tide_Buf *b, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const uint8_t *p = (const uint8_t *)s;
  size_t i = 0, run = 0, n;
  int rc = PUT(b, "\"");
  while (i < len && rc == 0) {
    uint8_t c = p[i];
    char esc[6] = {'\\', 0, '0', '0', 0, 0};
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0x80) {
      if ((n = tide_utf8_seqlen(p + i, len - i)) != 0) {
        i += n;
        continue;
      }
      rc = tide_buf_append(b, s + run, i - run);
      if (rc == 0) rc = PUT(b, "\\ufffd");
      run = ++i;
      continue;
    }
    rc = tide_buf_append(b, s + run, i - run);
    run = ++i;
    n = 2;
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    default:
      esc[1] = 'u';
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      n = 6;
    }
    if (rc == 0) rc = tide_buf_append(b, esc, n);
  }
  if (rc == 0) rc = tide_buf_append(b, s + run, len - run);
  return rc ? rc : PUT(b, "\"");
}

/* ---- Lua values ---- */

/* Records the reason and the place of a failure; returns code. */
static int fail(tide_JsonWriter *w, int code, const char *fmt, ...) {
  char *p = w->where, *end = w->where + sizeof w->where;
  int d;
  va_list ap;
  *p = '\0';
  for (d = 1; d <= w->depth && p < end; d++) {
    const char *s = w->path[d].s;
    size_t len = w->path[d].len;
    if (w->depth > 12 && d == 6) { /* keep both ends of a long path */
      p += snprintf(p, (size_t)(end - p), "...");
      d = w->depth - 4;
      s = w->path[d].s;
      len = w->path[d].len;
    }
    if (p >= end) break;
    if (s == NULL)
      p += snprintf(p, (size_t)(end - p), "[%lld]",
                    (long long)w->path[d].i);
    else if (tide_is_identifier(s, len))
      p += snprintf(p, (size_t)(end - p), ".%s", s);
    else
      p += snprintf(p, (size_t)(end - p), "[\"%.*s\"]",
                    (int)(len < 40 ? len : 40), s);
  }
  va_start(ap, fmt);
  vsnprintf(w->err, sizeof w->err, fmt, ap);
  va_end(ap);
  return code;
}

static int nomem(tide_JsonWriter *w) {
  return fail(w, TIDE_ENOMEM, "out of memory");
}

/* What a value is, for messages: integer and float told apart. */
static const char *got(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER)
    return lua_isinteger(L, idx) ? "integer" : "float";
  return luaL_typename(L, idx);
}

static int write_value(tide_JsonWriter *w, lua_State *L, int v);

/* Writes the value at v under key k (an object's member). */
static int write_member(tide_JsonWriter *w, lua_State *L, const Key *k,
                        int v, int first) {
  int rc = first ? 0 : PUT(w->out, ",");
  if (rc == 0)
    rc = tide_json_put_string(w->out, k->s ? k->s : k->num, k->len);
  if (rc == 0) rc = PUT(w->out, ":");
  if (rc != 0) return nomem(w);
  w->path[w->depth].s = k->s;
  w->path[w->depth].len = k->len;
  w->path[w->depth].i = k->i;
  return write_value(w, L, v);
}

static int key_order(const void *a, const void *b) {
  const Key *x = a, *y = b;
  const char *xs = x->s ? x->s : x->num, *ys = y->s ? y->s : y->num;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(xs, ys, n);
  if (c) return c;
  if (x->len != y->len) return x->len < y->len ? -1 : 1;
  return (x->s == NULL) - (y->s == NULL); /* "1" and [1]: string first */
}

/* Whether the key on top of the stack is one of the n keys of the order
** list at idx. */
static int in_order(lua_State *L, int order, lua_Integer n) {
  lua_Integer i;
  for (i = 1; i <= n; i++) {
    int same;
    lua_rawgeti(L, order, i);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
    if (same) return 1;
  }
  return 0;
}

/* The array t[1..n]. */
static int write_array(tide_JsonWriter *w, lua_State *L, int t,
                       lua_Integer n) {
  lua_Integer i;
  int rc = PUT(w->out, "[");
  for (i = 1; i <= n && rc == 0; i++) {
    if (i > 1 && PUT(w->out, ",") != 0) return nomem(w);
    w->path[w->depth].s = NULL;
    w->path[w->depth].i = i;
    lua_rawgeti(L, t, i);
    rc = write_value(w, L, lua_gettop(L));
    lua_pop(L, 1);
  }
  if (rc == 0 && PUT(w->out, "]") != 0) return nomem(w);
  return rc;
}

/* A table: an array, or an object with the keys of the order list at
** `order` (0: none) first, then the others sorted. */
static int write_table(tide_JsonWriter *w, lua_State *L, int t, int type,
                       int order) {
  size_t base = w->keys.len / sizeof(Key), n = 0, i;
  lua_Integer len = (lua_Integer)lua_rawlen(L, t), norder = 0;
  int array = type != 'o', rc = 0, first = 1;
  if (type == 'a') return write_array(w, L, t, len);
  if (order) norder = (lua_Integer)lua_rawlen(L, order);
  /* Collect the keys, telling whether they make an array. */
  lua_pushnil(L);
  while (lua_next(L, t)) {
    Key k;
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      k.s = lua_tolstring(L, -1, &k.len);
      k.i = 0;
      array = 0;
    } else if (lua_isinteger(L, -1)) {
      k.s = NULL;
      k.i = lua_tointeger(L, -1);
      k.len = (size_t)snprintf(k.num, sizeof k.num, LUA_INTEGER_FMT,
                               (LUAI_UACINT)k.i);
      if (k.i < 1 || k.i > len) array = 0;
    } else {
      w->depth--; /* the fault is the table's, not one of its members' */
      rc = fail(w, TIDE_EENCODE, "expected json, got a %s key", got(L, -1));
      w->depth++;
      lua_pop(L, 1);
      break;
    }
    if (norder > 0 && in_order(L, order, norder)) {
      array = 0;
      continue;
    }
    if (tide_buf_append(&w->keys, &k, sizeof k) != 0) {
      lua_pop(L, 1);
      rc = nomem(w);
      break;
    }
    n++;
  }
  if (rc == 0 && array && norder == 0 && n > 0 && (lua_Integer)n == len) {
    w->keys.len = base * sizeof(Key);
    return write_array(w, L, t, len);
  }
  if (rc == 0 && PUT(w->out, "{") != 0) rc = nomem(w);
  /* The ordered keys, then the others. */
  for (i = 1; rc == 0 && i <= (size_t)norder; i++) {
    Key k;
    lua_rawgeti(L, order, (lua_Integer)i);
    if (lua_type(L, -1) == LUA_TSTRING) {
      k.s = lua_tolstring(L, -1, &k.len);
      k.i = 0;
    } else if (lua_isinteger(L, -1)) {
      k.s = NULL;
      k.i = lua_tointeger(L, -1);
      k.len = (size_t)snprintf(k.num, sizeof k.num, LUA_INTEGER_FMT,
                               (LUAI_UACINT)k.i);
    } else {
      w->depth--;
      rc = fail(w, TIDE_EENCODE, "__jsonorder lists a %s", got(L, -1));
      w->depth++;
      lua_pop(L, 1);
      break;
    }
    lua_pushvalue(L, -1);
    lua_rawget(L, t);
    rc = write_member(w, L, &k, lua_gettop(L), first);
    first = 0;
    lua_pop(L, 2);
  }
  if (rc == 0 && n > 0) {
    qsort((Key *)w->keys.data + base, n, sizeof(Key), key_order);
    for (i = 0; i < n && rc == 0; i++) {
      Key *k = (Key *)w->keys.data + base + i; /* the buffer may move */
      Key copy = *k;
      if (copy.s) {
        lua_pushlstring(L, copy.s, copy.len);
        lua_rawget(L, t);
      } else {
        lua_rawgeti(L, t, copy.i);
      }
      rc = write_member(w, L, &copy, lua_gettop(L), first);
      first = 0;
      lua_pop(L, 1);
    }
  }
  if (rc == 0 && PUT(w->out, "}") != 0) rc = nomem(w);
  w->keys.len = base * sizeof(Key);
  return rc;
}

/* A table's metatable: its __jsontype ('a', 'o' or 0) and, when it has a
** __jsonorder list, that list pushed (else nothing pushed, *order 0). */
static int table_kind(lua_State *L, int t, int *order) {
  int type = 0, kind;
  *order = 0;
  if ((kind = luaL_getmetafield(L, t, "__jsontype")) != LUA_TNIL) {
    if (kind == LUA_TSTRING) {
      const char *s = lua_tostring(L, -1);
      type = strcmp(s, "array") == 0    ? 'a'
             : strcmp(s, "object") == 0 ? 'o'
                                        : 0;
    }
    lua_pop(L, 1);
  }
  if ((kind = luaL_getmetafield(L, t, "__jsonorder")) == LUA_TTABLE)
    *order = lua_gettop(L);
  else if (kind != LUA_TNIL)
    lua_pop(L, 1);
  return type;
}

static int write_value(tide_JsonWriter *w, lua_State *L, int v) {
  int rc;
  switch (lua_type(L, v)) {
  case LUA_TNIL:
    return PUT(w->out, "null") ? nomem(w) : 0;
  case LUA_TBOOLEAN:
    rc = lua_toboolean(L, v) ? PUT(w->out, "true") : PUT(w->out, "false");
    return rc ? nomem(w) : 0;
  case LUA_TNUMBER: {
    double d;
    if (lua_isinteger(L, v))
      return tide_json_put_integer(w->out, lua_tointeger(L, v)) ? nomem(w)
                                                                : 0;
    d = (double)lua_tonumber(L, v);
    if (isfinite(d)) return tide_json_put_float(w->out, d) ? nomem(w) : 0;
    if (w->flags & TIDE_JSON_NONFINITE_NULL)
      return PUT(w->out, "null") ? nomem(w) : 0;
    return fail(w, TIDE_EENCODE, "expected a finite number, got %s",
                isnan(d) ? "NaN" : d > 0 ? "inf" : "-inf");
  }
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, v, &len);
    return tide_json_put_string(w->out, s, len) ? nomem(w) : 0;
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, v) == NULL)
      return PUT(w->out, "null") ? nomem(w) : 0;
    break;
  case LUA_TTABLE: {
    int type, order, top = lua_gettop(L);
    if (w->depth >= TIDE_JSON_MAX_DEPTH || !lua_checkstack(L, 8))
      return fail(w, TIDE_EENCODE, "json nested too deeply (a cycle?)");
    type = table_kind(L, v, &order);
    w->depth++;
    rc = write_table(w, L, v, type, order);
    if (rc == 0) w->depth--;
    lua_settop(L, top);
    return rc;
  }
  default:
    break;
  }
  return fail(w, TIDE_EENCODE, "expected json, got %s", got(L, v));
}

int tide_json_write(tide_JsonWriter *w, lua_State *L, int idx) {
  int rc;
  w->depth = 0;
  w->where[0] = w->err[0] = '\0';
  rc = write_value(w, L, lua_absindex(L, idx));
  w->keys.len = 0;
  w->depth = 0;
  return rc;
}
