/*
** Lua binding of PostgreSQL queries (pg.h): core.pg_query and
** core.pg_script, which tide.postgres composes.
**
** pg_query(conninfo, sql [, params [, block]]) -> result | nil, message,
**   sqlstate (the server's error code, nil for a failure of the client)
**   conninfo: a libpq connection string or URI ("" takes the PG*
**   environment variables); params: a list of values for $1..$n (strings,
**   numbers, booleans; nil is NULL up to params.n or #params). Inside a
**   component's task the call suspends the task until the answer is in;
**   anywhere else, or when block is true, it blocks the caller on a loop
**   of its own (a target's setup must not let another component in). result:
**   { columns = { names }, types = { kinds }, rows = { { name = value } },
**   command = "INSERT 0 3", count = rows the command touched }. Values:
**   smallint, integer, bigint and oid as integers, real and double as
**   numbers, boolean as booleans, bytea as its bytes, NULL as nil, every
**   other type (numeric, json, dates, ...) as PostgreSQL's text; kinds
**   are "integer", "number", "boolean", "bytes", "json" (json and jsonb:
**   the Lua side decodes them) or "text".
** pg_script(conninfo, sql, copies [, block]) -> result | nil, message,
**   sqlstate
**   sql: statements separated by semicolons, without parameters; copies:
**   a list of strings, the data of its `COPY ... FROM STDIN` statements
**   in order (pg.h's scripts). result: the last statement's, as above.
** pg_listen(conninfo, sql) -> listener | nil, message, sqlstate
**   runs sql (LISTEN "channel") on a connection of its own, kept for
**   listener:wait([timeout_ms]) -> { payloads } | nil, message (the
**   connection lost), which waits as pg_query does; listener:close().
** pg_copy_begin(conninfo, sql [, block]) -> copy | nil, message, sqlstate
**   sql ends with COPY ... FROM STDIN: its data is sent as it is made,
**   copy:send_rows(plan, changes, vectors, first, last) -> true | nil,
**   message (the data of records, as core.pg_copy_rows makes it, bare),
**   then copy:finish([block]) -> result | nil, message, sqlstate;
**   copy:abort() (or collecting it) ends it with none of its rows kept.
** pg_identity(conninfo) -> "user@host:port/dbname" | nil, message
** pg_public_conninfo(conninfo) -> the string without its password | nil,
**   message
** pg_load() -> true | nil, message: loads libpq now (else its first use
**   does), for a lead about to fork its workers (lfork.c)
**
** Connections are kept between calls: each Lua state keeps up to
** POOL_SIZE idle connections per connection string (a registry table),
** so that a target's batches and a source's queries do not connect
** again each time; one the server closed since is dropped when next
** taken (pg.h). A connection is kept only when its query succeeded and
** it is idle.
**
** Messages never hold the password (pg.h).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lcore.h"
#include "lpg_copy.h"
#include "pg.h"
#include "pq_api.h"

enum { POOL_SIZE = 4 };

#define CONN_TYPE "tide.PgConn"
#define LISTENER_TYPE "tide.PgListener"
#define COPY_TYPE "tide.PgCopy"
#define POOL_KEY "tide.pg_pool"

typedef struct {
  tide_PgQuery q; /* first: its tide_Wait is the query's */
  lua_Alloc alloc;
  void *ud;
  tide_PgCopy *copies; /* a script's COPY data, owned */
  int ncopies;
  int listen;          /* pg_listen: the connection becomes a listener */
  int copy_begin;      /* pg_copy_begin: it becomes a Copy */
} Query;

/* An idle connection in the pool. */
typedef struct {
  void *conn; /* NULL once taken back */
} Conn;

static int conn_gc(lua_State *L) {
  Conn *c = luaL_checkudata(L, 1, CONN_TYPE);
  tide_pg_conn_free(c->conn);
  c->conn = NULL;
  return 0;
}

/* The pool's list for conninfo, pushed (made when missing). */
static int push_pool(lua_State *L, const char *conninfo) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, POOL_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, POOL_KEY);
  }
  if (lua_getfield(L, -1, conninfo) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, conninfo);
  }
  lua_remove(L, -2);
  return lua_gettop(L);
}

/* An idle connection to conninfo, or NULL. */
static void *take_conn(lua_State *L, const char *conninfo) {
  int pool = push_pool(L, conninfo);
  lua_Integer n = (lua_Integer)lua_rawlen(L, pool);
  void *conn = NULL;
  if (n > 0) {
    Conn *c;
    lua_rawgeti(L, pool, n);
    c = lua_touserdata(L, -1);
    conn = c->conn;
    c->conn = NULL;
    lua_pushnil(L);
    lua_rawseti(L, pool, n);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return conn;
}

/* Keeps q's connection for the next call when it may be. */
static void give_back(lua_State *L, const char *conninfo, tide_PgQuery *q) {
  void *conn = tide_pg_query_keep(q);
  int pool;
  Conn *c;
  if (conn == NULL) return;
  pool = push_pool(L, conninfo);
  if (lua_rawlen(L, pool) >= POOL_SIZE) {
    tide_pg_conn_free(conn);
    lua_pop(L, 1);
    return;
  }
  c = lua_newuserdatauv(L, sizeof *c, 0);
  c->conn = conn;
  luaL_setmetatable(L, CONN_TYPE);
  lua_rawseti(L, pool, (lua_Integer)lua_rawlen(L, pool) + 1);
  lua_pop(L, 1);
}

static void query_done(tide_PgQuery *q) { tide_wait_done(&q->w); }

static void query_cancel(tide_Wait *w) {
  tide_pg_query_cancel((tide_PgQuery *)w);
}

static void query_release(tide_Wait *w) {
  Query *x = (Query *)w;
  int i;
  tide_pg_query_close(&x->q);
  for (i = 0; i < x->ncopies; i++)
    if (x->copies[i].data)
      x->alloc(x->ud, (void *)x->copies[i].data, x->copies[i].len + 1, 0);
  if (x->copies)
    x->alloc(x->ud, x->copies, (size_t)x->ncopies * sizeof *x->copies, 0);
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

/* The outcome of a finished query, pushed; x is released and its
** connection kept when it may be (conninfo at index 1). */
static void push_listener(lua_State *L, void *conn);
static void push_copy(lua_State *L, void *conn);

static int query_result(lua_State *L, Query *x) {
  PGresult *r = x->q.result;
  int n = 1;
  if (x->listen && x->q.ok) {
    void *conn = tide_pg_query_keep(&x->q);
    tide_sched_wait_end(&x->q.w);
    if (conn == NULL) {
      luaL_pushfail(L);
      lua_pushstring(L, "the connection is not idle after LISTEN");
      return 2;
    }
    push_listener(L, conn);
    return 1;
  }
  if (x->copy_begin && x->q.ok) {
    void *conn = tide_pg_query_take(&x->q);
    tide_sched_wait_end(&x->q.w);
    push_copy(L, conn);
    return 1;
  }
  give_back(L, lua_tostring(L, 1), &x->q);
  if (!x->q.ok) {
    luaL_pushfail(L);
    lua_pushstring(L, x->q.message);
    if (x->q.sqlstate[0]) lua_pushstring(L, x->q.sqlstate);
    else lua_pushnil(L);
    n = 3;
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

/* A new query for the caller, its connection taken from the pool unless
** conninfo is NULL (the caller gives it one, or it connects anew). */
static Query *new_query(lua_State *L, const char *conninfo) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  Query *x = alloc(ud, NULL, 0, sizeof *x);
  if (x == NULL) luaL_error(L, "not enough memory");
  memset(x, 0, sizeof *x);
  x->alloc = alloc;
  x->ud = ud;
  x->q.done = query_done;
  x->q.w.cancel = query_cancel;
  x->q.w.release = query_release;
  x->q.conn = conninfo ? take_conn(L, conninfo) : NULL;
  return x;
}

typedef int (*Start)(Query *x, uv_loop_t *loop, lua_State *L);

/* Starts x on the task's scheduler and yields, or, outside a task, on a
** loop of its own until it is over; then pushes the outcome. The stack
** above index 3 is dropped first. */
static int run_query(lua_State *L, Query *x, Start start, int block) {
  int anchor, rc;
  tide_Sched *s = block ? NULL : tide_lsched_suspend(L, &anchor);
  if (s != NULL) {
    tide_sched_wait_begin(s, &x->q.w, anchor);
    rc = start(x, tide_sched_loop(s), L);
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
      tide_pg_conn_free(x->q.conn);
      x->q.conn = NULL;
      snprintf(x->q.message, sizeof x->q.message,
               "cannot create an event loop: %s", uv_strerror(rc));
      lua_settop(L, 3);
      return query_result(L, x);
    }
    rc = start(x, &loop, L);
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

/* Arguments: conninfo, sql, params; 4: kept strings, 5: the array. */
static int start_query(Query *x, uv_loop_t *loop, lua_State *L) {
  int n = (int)lua_tointeger(L, 6);
  return tide_pg_query_start(&x->q, loop, x->alloc, x->ud,
                             lua_tostring(L, 1), lua_tostring(L, 2), n,
                             lua_touserdata(L, 5));
}

/* pg_query(conninfo, sql [, params [, block]]) */
static int pg_query(lua_State *L) {
  int n, block = lua_toboolean(L, 4);
  luaL_checkstring(L, 1);
  luaL_checkstring(L, 2);
  lua_settop(L, 3);
  check_params(L, 3, &n); /* 4: strings, 5: the array */
  lua_pushinteger(L, n);  /* 6 */
  return run_query(L, new_query(L, lua_tostring(L, 1)), start_query, block);
}

static int start_script(Query *x, uv_loop_t *loop, lua_State *L) {
  return tide_pg_script_start(&x->q, loop, x->alloc, x->ud,
                              lua_tostring(L, 1), lua_tostring(L, 2),
                              x->ncopies, x->copies);
}

/* Copies the strings of the list at index 3 into x, which owns them from
** then on (the task may be given up while the query runs). */
static void copy_copies(lua_State *L, Query *x) {
  int i, n = (int)lua_rawlen(L, 3);
  if (n == 0) return;
  x->copies = x->alloc(x->ud, NULL, 0, (size_t)n * sizeof *x->copies);
  if (x->copies == NULL) goto nomem;
  memset(x->copies, 0, (size_t)n * sizeof *x->copies);
  x->ncopies = n;
  for (i = 0; i < n; i++) {
    size_t len;
    const char *p;
    char *mine;
    lua_rawgeti(L, 3, i + 1);
    p = lua_tolstring(L, -1, &len);
    if (p == NULL) {
      query_release(&x->q.w);
      luaL_error(L, "tide.postgres: copies[%d] must be a string", i + 1);
    }
    if ((mine = x->alloc(x->ud, NULL, 0, len + 1)) == NULL) goto nomem;
    memcpy(mine, p, len + 1);
    x->copies[i].data = mine;
    x->copies[i].len = len;
    lua_pop(L, 1);
  }
  return;
nomem:
  query_release(&x->q.w);
  luaL_error(L, "not enough memory");
}

/* pg_script(conninfo, sql, copies [, block]) */
static int pg_script(lua_State *L) {
  Query *x;
  int block = lua_toboolean(L, 4);
  luaL_checkstring(L, 1);
  luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  x = new_query(L, lua_tostring(L, 1));
  copy_copies(L, x);
  return run_query(L, x, start_script, block);
}

static int pg_load(lua_State *L) {
  const char *why;
  if (tide_pq_need(&why) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, why);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* pg_public_conninfo(conninfo): the same connection string without its
** password, in keyword = 'value' form (a URI is rewritten), or nil and a
** message when libpq cannot read it. What a target keeps in the store:
** the password then comes from PGPASSWORD or ~/.pgpass when the string
** is used alone (`tide drop`). */
static int pg_public_conninfo(lua_State *L) {
  char *err = NULL;
  const char *conninfo = luaL_checkstring(L, 1), *why;
  PQconninfoOption *o, *i;
  luaL_Buffer b;
  int first = 1;
  if (tide_pq_need(&why) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, why);
    return 2;
  }
  o = PQconninfoParse(conninfo, &err);
  if (o == NULL) {
    PQfreemem(err);
    luaL_pushfail(L);
    lua_pushstring(L, "the connection string is not one libpq reads (check "
                   "its keywords and quoting)");
    return 2;
  }
  luaL_buffinit(L, &b);
  for (i = o; i->keyword; i++) {
    const char *v;
    if (i->val == NULL || i->val[0] == '\0' ||
        strcmp(i->keyword, "password") == 0)
      continue;
    if (!first) luaL_addchar(&b, ' ');
    first = 0;
    luaL_addstring(&b, i->keyword);
    luaL_addstring(&b, "='");
    for (v = i->val; *v; v++) {
      if (*v == '\'' || *v == '\\') luaL_addchar(&b, '\\');
      luaL_addchar(&b, *v);
    }
    luaL_addchar(&b, '\'');
  }
  PQconninfoFree(o);
  luaL_pushresult(&b);
  return 1;
}

/* ---- Listeners ---- */

typedef struct {
  void *conn; /* PGconn that ran LISTEN; NULL while a wait holds it */
} Listener;

typedef struct {
  tide_PgListen l; /* first: its tide_Wait is the wait's */
  lua_Alloc alloc;
  void *ud;
  int started;
} ListenWait;

static void push_listener(lua_State *L, void *conn) {
  Listener *li = lua_newuserdatauv(L, sizeof *li, 0);
  li->conn = conn;
  luaL_setmetatable(L, LISTENER_TYPE);
}

static int listener_close(lua_State *L) {
  Listener *li = luaL_checkudata(L, 1, LISTENER_TYPE);
  tide_pg_conn_free(li->conn);
  li->conn = NULL;
  return 0;
}

static void listen_done(tide_PgListen *l) { tide_wait_done(&l->w); }

static void listen_cancel(tide_Wait *w) {
  tide_pg_listen_cancel((tide_PgListen *)w);
}

/* Frees the wait, and its connection when no task came back for it. */
static void listen_release(tide_Wait *w) {
  ListenWait *x = (ListenWait *)w;
  tide_pg_listen_close(&x->l);
  x->alloc(x->ud, x, sizeof *x, 0);
}

static void add_payload(void *arg, const char *payload) {
  lua_State *L = arg;
  lua_pushstring(L, payload);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

/* Pushes the payloads that came (a list), or nil and a message when the
** connection is lost (it is then closed). */
static int drained(lua_State *L, Listener *li) {
  char why[512];
  lua_newtable(L);
  if (tide_pg_listen_drain(li->conn, add_payload, L, why, sizeof why))
    return 1;
  tide_pg_conn_free(li->conn);
  li->conn = NULL;
  luaL_pushfail(L);
  lua_pushstring(L, why);
  return 2;
}

/* After a wait: the connection back to the listener (index 1), then
** what came. */
static int listen_result(lua_State *L, ListenWait *x) {
  Listener *li = lua_touserdata(L, 1);
  li->conn = x->l.conn;
  x->l.conn = NULL;
  tide_sched_wait_end(&x->l.w);
  return drained(L, li);
}

static int listen_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return listen_result(L, (ListenWait *)ctx);
}

/* listener:wait([timeout_ms]) -> payloads | nil, message. Returns what
** came already at once; else waits for the server (the task yields, or
** the caller blocks) at most timeout_ms (none: no limit). An empty list:
** the time ran out. */
static int listener_wait(lua_State *L) {
  Listener *li = luaL_checkudata(L, 1, LISTENER_TYPE);
  int timeout = (int)luaL_optinteger(L, 2, -1), anchor, rc, n;
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  tide_Sched *s;
  ListenWait *x;
  if (li->conn == NULL) return luaL_error(L, "the listener is closed");
  lua_settop(L, 1);
  n = drained(L, li);
  if (n == 2 || lua_rawlen(L, -1) > 0) return n;
  lua_settop(L, 1);
  x = alloc(ud, NULL, 0, sizeof *x);
  if (x == NULL) return luaL_error(L, "not enough memory");
  memset(x, 0, sizeof *x);
  x->alloc = alloc;
  x->ud = ud;
  x->l.done = listen_done;
  x->l.w.cancel = listen_cancel;
  x->l.w.release = listen_release;
  x->l.conn = li->conn;
  li->conn = NULL;
  s = tide_lsched_suspend(L, &anchor);
  if (s != NULL) {
    tide_sched_wait_begin(s, &x->l.w, anchor);
    if ((rc = tide_pg_listen_start(&x->l, tide_sched_loop(s), timeout))
        != 0) {
      x->l.ended = 1;
      tide_wait_done(&x->l.w);
    }
    return tide_lsched_yield(L, (lua_KContext)x, listen_k);
  }
  {
    uv_loop_t loop;
    if ((rc = uv_loop_init(&loop)) == 0) {
      if (tide_pg_listen_start(&x->l, &loop, timeout) == 0)
        while (!x->l.w.done) uv_run(&loop, UV_RUN_ONCE);
      uv_run(&loop, UV_RUN_DEFAULT);
      uv_loop_close(&loop);
    }
    x->l.w.done = 1;
    return listen_result(L, x);
  }
}

/* A script: LISTEN statements, one per channel. */
static int start_listen(Query *x, uv_loop_t *loop, lua_State *L) {
  return tide_pg_script_start(&x->q, loop, x->alloc, x->ud,
                              lua_tostring(L, 1), lua_tostring(L, 2), 0,
                              NULL);
}

/* pg_listen(conninfo, sql) -> listener | nil, message, sqlstate: runs sql
** (LISTEN "channel"; one or more) on a connection of its own, which then
** waits for notifications (listener:wait, listener:close). */
static int pg_listen(lua_State *L) {
  Query *x;
  luaL_checkstring(L, 1);
  luaL_checkstring(L, 2);
  lua_settop(L, 3);
  x = new_query(L, NULL); /* a connection of its own */
  x->listen = 1;
  return run_query(L, x, start_listen, 0);
}

/* ---- COPY made as it goes ---- */

typedef struct {
  void *conn;    /* PGconn in its COPY; NULL once ended */
  tide_Buf rows; /* send_rows' lines, reused chunk after chunk */
} Copy;

/* The Copy keeps its connection string as its user value. */
static void push_copy(lua_State *L, void *conn) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  Copy *c = lua_newuserdatauv(L, sizeof *c, 1);
  c->conn = conn;
  tide_buf_init(&c->rows, alloc, ud);
  luaL_setmetatable(L, COPY_TYPE);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
}

/* Frees the connection: the server ends the COPY and keeps none of it. */
static int copy_abort(lua_State *L) {
  Copy *c = luaL_checkudata(L, 1, COPY_TYPE);
  tide_pg_conn_free(c->conn);
  c->conn = NULL;
  tide_buf_close(&c->rows);
  return 0;
}

/* copy:send_rows(plan, changes, vectors, first, last) -> true | nil,
** message: the COPY lines of those changes (lpg_copy.h, bare), made and
** sent without a Lua string between. A record that cannot be a line
** leaves the COPY as it was; a failed send ends it. */
static int copy_send_rows(lua_State *L) {
  static const char *const styles[] = {"array", "pgvector", NULL};
  Copy *c = luaL_checkudata(L, 1, COPY_TYPE);
  int pgvector;
  lua_Integer first, last;
  char why[512];
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  pgvector = luaL_checkoption(L, 4, NULL, styles) == 1;
  first = luaL_checkinteger(L, 5);
  last = luaL_checkinteger(L, 6);
  if (c->conn == NULL) return luaL_error(L, "the COPY is over");
  c->rows.len = 0;
  if (tide_lpg_copy_rows(L, 2, 3, pgvector, 1, first, last, &c->rows, why,
                         sizeof why) == 0) {
    if (tide_pg_copy_put(c->conn, (const char *)c->rows.data, c->rows.len,
                         why, sizeof why)) {
      lua_pushboolean(L, 1);
      return 1;
    }
    tide_pg_conn_free(c->conn);
    c->conn = NULL;
  }
  luaL_pushfail(L);
  lua_pushstring(L, why);
  return 2;
}

static int start_copy_end(Query *x, uv_loop_t *loop, lua_State *L) {
  return tide_pg_copy_end(&x->q, loop, x->alloc, x->ud, lua_tostring(L, 1));
}

/* copy:finish([block]) -> result | nil, message, sqlstate: ends the COPY
** and gives its outcome, as pg_script does. */
static int copy_finish(lua_State *L) {
  Copy *c = luaL_checkudata(L, 1, COPY_TYPE);
  int block = lua_toboolean(L, 2);
  Query *x;
  if (c->conn == NULL) return luaL_error(L, "the COPY is over");
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, 1);
  lua_replace(L, 1); /* the connection string, as run_query wants it */
  x = new_query(L, NULL);
  x->q.conn = c->conn; /* the COPY's */
  c->conn = NULL;
  tide_buf_close(&c->rows);
  return run_query(L, x, start_copy_end, block);
}

static int start_copy_begin(Query *x, uv_loop_t *loop, lua_State *L) {
  return tide_pg_copy_begin(&x->q, loop, x->alloc, x->ud,
                            lua_tostring(L, 1), lua_tostring(L, 2));
}

/* pg_copy_begin(conninfo, sql [, block]) -> copy | nil, message, sqlstate:
** sql ends with COPY ... FROM STDIN; the copy takes the data as it is
** made (copy:send), then copy:finish() or copy:abort(). */
static int pg_copy_begin(lua_State *L) {
  Query *x;
  int block = lua_toboolean(L, 3);
  luaL_checkstring(L, 1);
  luaL_checkstring(L, 2);
  lua_settop(L, 3);
  x = new_query(L, lua_tostring(L, 1));
  x->copy_begin = 1;
  return run_query(L, x, start_copy_begin, block);
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
  static const luaL_Reg listener_methods[] = {
    {"wait", listener_wait},
    {"close", listener_close},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, CONN_TYPE)) {
    lua_pushcfunction(L, conn_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LISTENER_TYPE)) {
    luaL_newlib(L, listener_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, listener_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, COPY_TYPE)) {
    static const luaL_Reg copy_methods[] = {
      {"send_rows", copy_send_rows},
      {"finish", copy_finish},
      {"abort", copy_abort},
      {NULL, NULL},
    };
    luaL_newlib(L, copy_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, copy_abort);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, pg_copy_begin);
  lua_setfield(L, -2, "pg_copy_begin");
  lua_pushcfunction(L, pg_listen);
  lua_setfield(L, -2, "pg_listen");
  lua_pushcfunction(L, pg_script);
  lua_setfield(L, -2, "pg_script");
  lua_pushcfunction(L, pg_query);
  lua_setfield(L, -2, "pg_query");
  lua_pushcfunction(L, pg_public_conninfo);
  lua_setfield(L, -2, "pg_public_conninfo");
  lua_pushcfunction(L, pg_identity);
  lua_setfield(L, -2, "pg_identity");
  lua_pushcfunction(L, pg_load);
  lua_setfield(L, -2, "pg_load");
}
