/*
** Lua binding of one PostgreSQL query (pg.h): core.pg_query, which
** tide.postgres composes.
**
** pg_query(conninfo, sql [, params]) -> result | nil, message
**   conninfo: a libpq connection string or URI ("" takes the PG*
**   environment variables); params: a list of values for $1..$n (strings,
**   numbers, booleans; nil is NULL up to params.n or #params). Inside a
**   component's task the call suspends the task until the answer is in;
**   anywhere else it blocks the caller on a loop of its own. result:
**   { columns = { names }, types = { kinds }, rows = { { name = value } },
**   command = "INSERT 0 3", count = rows the command touched }. Values:
**   smallint, integer, bigint and oid as integers, real and double as
**   numbers, boolean as booleans, bytea as its bytes, NULL as nil, every
**   other type (numeric, json, dates, ...) as PostgreSQL's text; kinds
**   are "integer", "number", "boolean", "bytes", "json" (json and jsonb:
**   the Lua side decodes them) or "text".
** pg_identity(conninfo) -> "user@host:port/dbname" | nil, message
**
** Messages never hold the password (pg.h).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <libpq-fe.h>
#include <lua.h>

#include "lcore.h"
#include "pg.h"

typedef struct {
  tide_PgQuery q; /* first: its tide_Wait is the query's */
  lua_Alloc alloc;
  void *ud;
} Query;

static void query_done(tide_PgQuery *q) { tide_wait_done(&q->w); }

static void query_cancel(tide_Wait *w) {
  tide_pg_query_cancel((tide_PgQuery *)w);
}

static void query_release(tide_Wait *w) {
  Query *x = (Query *)w;
  tide_pg_query_close(&x->q);
  x->alloc(x->ud, x, sizeof *x, 0);
}

enum { K_TEXT, K_INTEGER, K_NUMBER, K_BOOLEAN, K_BYTES, K_JSON };
static const char *const kind_names[] = {"text", "integer", "number",
                                         "boolean", "bytes", "json"};

static int kind_of(Oid type) {
  switch (type) {
  case 20: case 21: case 23: case 26: return K_INTEGER; /* int8/2/4, oid */
  case 700: case 701: return K_NUMBER;                   /* float4/8 */
  case 16: return K_BOOLEAN;
  case 17: return K_BYTES;
  case 114: case 3802: return K_JSON;
  default: return K_TEXT;
  }
}

static int hex(int c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Pushes one value of the result. [-0, +1, m] */
static void push_value(lua_State *L, const PGresult *r, int row, int col,
                       int kind) {
  const char *v = PQgetvalue(r, row, col);
  int len = PQgetlength(r, row, col);
  if (PQgetisnull(r, row, col)) {
    lua_pushnil(L);
    return;
  }
  switch (kind) {
  case K_INTEGER:
    lua_pushinteger(L, (lua_Integer)strtoll(v, NULL, 10));
    break;
  case K_NUMBER:
    if (strcmp(v, "NaN") == 0) lua_pushnumber(L, (lua_Number)NAN);
    else lua_pushnumber(L, (lua_Number)strtod(v, NULL)); /* Infinity too */
    break;
  case K_BOOLEAN:
    lua_pushboolean(L, v[0] == 't');
    break;
  case K_BYTES:
    if (len >= 2 && v[0] == '\\' && v[1] == 'x') {
      luaL_Buffer b;
      int i;
      luaL_buffinit(L, &b);
      for (i = 2; i + 1 < len; i += 2)
        luaL_addchar(&b, (char)(hex(v[i]) << 4 | hex(v[i + 1])));
      luaL_pushresult(&b);
    } else {
      lua_pushlstring(L, v, (size_t)len); /* bytea_output = escape */
    }
    break;
  default:
    lua_pushlstring(L, v, (size_t)len);
    break;
  }
}

/* The outcome of a finished query, pushed; x is released. */
static int query_result(lua_State *L, Query *x) {
  PGresult *r = x->q.result;
  int n = 1;
  if (!x->q.ok) {
    luaL_pushfail(L);
    lua_pushstring(L, x->q.message);
    n = 2;
  } else {
    int rows = PQntuples(r), cols = PQnfields(r), i, j;
    int *kinds = lua_newuserdatauv(L, (size_t)(cols + 1) * sizeof *kinds, 0);
    lua_createtable(L, 0, 5);
    lua_createtable(L, cols, 0);
    lua_createtable(L, cols, 0);
    for (j = 0; j < cols; j++) {
      kinds[j] = kind_of(PQftype(r, j));
      lua_pushstring(L, PQfname(r, j));
      lua_rawseti(L, -3, j + 1);
      lua_pushstring(L, kind_names[kinds[j]]);
      lua_rawseti(L, -2, j + 1);
    }
    lua_setfield(L, -3, "types");
    lua_setfield(L, -2, "columns");
    lua_createtable(L, rows, 0);
    for (i = 0; i < rows; i++) {
      lua_createtable(L, 0, cols);
      for (j = 0; j < cols; j++) {
        push_value(L, r, i, j, kinds[j]);
        lua_setfield(L, -2, PQfname(r, j));
      }
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "rows");
    lua_pushstring(L, PQcmdStatus(r));
    lua_setfield(L, -2, "command");
    lua_pushinteger(L, (lua_Integer)atoll(PQcmdTuples(r)));
    lua_setfield(L, -2, "count");
  }
  tide_sched_wait_end(&x->q.w);
  return n;
}

static int query_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return query_result(L, (Query *)ctx);
}

/* The parameters (the table at idx) as strings in a userdata array it
** pushes (the strings stay on the table or in a table it pushes first). */
static const char **check_params(lua_State *L, int idx, int *n) {
  const char **list;
  int i, count;
  lua_newtable(L); /* keeps converted strings */
  if (lua_isnoneornil(L, idx)) {
    *n = 0;
    return lua_newuserdatauv(L, sizeof *list, 0);
  }
  luaL_checktype(L, idx, LUA_TTABLE);
  count = lua_getfield(L, idx, "n") == LUA_TNUMBER
            ? (int)lua_tointeger(L, -1) : (int)lua_rawlen(L, idx);
  lua_pop(L, 1);
  list = lua_newuserdatauv(L, (size_t)(count + 1) * sizeof *list, 0);
  for (i = 1; i <= count; i++) {
    int t = lua_rawgeti(L, idx, i);
    if (t == LUA_TNIL) {
      list[i - 1] = NULL;
    } else if (t == LUA_TBOOLEAN) {
      list[i - 1] = lua_toboolean(L, -1) ? "true" : "false";
    } else if (t == LUA_TSTRING || t == LUA_TNUMBER) {
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      if (strlen(s) != len)
        luaL_error(L, "tide.postgres: parameter $%d holds a NUL byte", i);
      lua_pushvalue(L, -1);
      lua_rawseti(L, -4, i); /* kept alive by the table */
      list[i - 1] = s;
    } else {
      luaL_error(L, "tide.postgres: parameter $%d must be a string, a "
                 "number, a boolean or nil, got %s", i, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
  }
  *n = count;
  return list;
}

/* pg_query(conninfo, sql [, params]) */
static int pg_query(lua_State *L) {
  const char *conninfo = luaL_checkstring(L, 1);
  const char *sql = luaL_checkstring(L, 2);
  const char **params;
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  tide_Sched *s;
  Query *x;
  int n, anchor, rc;
  lua_settop(L, 3);
  params = check_params(L, 3, &n); /* 4: strings, 5: the array */
  s = tide_lsched_suspend(L, &anchor);
  x = alloc(ud, NULL, 0, sizeof *x);
  if (x == NULL) return luaL_error(L, "not enough memory");
  memset(x, 0, sizeof *x);
  x->alloc = alloc;
  x->ud = ud;
  x->q.done = query_done;
  x->q.w.cancel = query_cancel;
  x->q.w.release = query_release;
  if (s != NULL) {
    tide_sched_wait_begin(s, &x->q.w, anchor);
    rc = tide_pg_query_start(&x->q, tide_sched_loop(s), alloc, ud, conninfo,
                             sql, n, params);
    if (rc != 0) {
      x->q.ended = 1;
      snprintf(x->q.message, sizeof x->q.message, "out of memory");
      tide_wait_done(&x->q.w);
    }
    lua_settop(L, 3);
    return tide_lsched_yield(L, (lua_KContext)x, query_k);
  }
  {
    uv_loop_t loop;
    if ((rc = uv_loop_init(&loop)) != 0) {
      x->q.w.done = 1;
      snprintf(x->q.message, sizeof x->q.message,
               "cannot create an event loop: %s", uv_strerror(rc));
      return query_result(L, x);
    }
    rc = tide_pg_query_start(&x->q, &loop, alloc, ud, conninfo, sql, n,
                             params);
    if (rc != 0) {
      x->q.w.done = 1;
      snprintf(x->q.message, sizeof x->q.message, "out of memory");
    }
    while (!x->q.w.done) uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    lua_settop(L, 3);
    return query_result(L, x);
  }
}

/* pg_identity(conninfo) */
static int pg_identity(lua_State *L) {
  char out[512];
  if (!tide_pg_identity(luaL_checkstring(L, 1), out, sizeof out)) {
    luaL_pushfail(L);
    lua_pushstring(L, out);
    return 2;
  }
  lua_pushstring(L, out);
  return 1;
}

void tide_lpg_open(lua_State *L) {
  lua_pushcfunction(L, pg_query);
  lua_setfield(L, -2, "pg_query");
  lua_pushcfunction(L, pg_identity);
  lua_setfield(L, -2, "pg_identity");
}
