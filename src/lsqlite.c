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
**   db:apply_send(plan, changes) -> true | nil, err, db:apply_wait() ->
**     true | nil, err: the same write on the connection's own thread
**     (sqlite_send.h); every other method waits for it first
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
#include "lcore.h"
#include "lrows.h"
#include "sqlite_db.h"
#include "sqlite_send.h"

#define DB_TYPE "tide.SqliteDb"
#define QUERY_TYPE "tide.SqliteQuery"

typedef struct {
  tide_SqliteDb *db;    /* owned; NULL once closed */
  tide_SqliteSend send; /* over db, while it is open */
} Db;

/* ---- Connections ---- */

/* The connection is the caller's once a batch sent is written. */
static Db *check_db(lua_State *L) {
  Db *d = luaL_checkudata(L, 1, DB_TYPE);
  if (d->db == NULL) luaL_argerror(L, 1, "database is closed");
  tide_sqlite_send_settle(&d->send);
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
  if (d->db) tide_sqlite_send_close(&d->send);
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
  tide_sqlite_send_init(&d->send, d->db, alloc, ud);
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

/* Converts and writes the rows of one db:apply. It runs under lua_pcall,
** so an error Lua raises (out of memory) cannot leave the transaction
** open. Arguments: changes, scratch, names, types. Returns nothing, or
** the message of a row that could not be written. */
static int apply_rows(lua_State *L) {
  tide_RowPlan *s = lua_touserdata(L, 2);
  tide_SqliteDb *db = lua_touserdata(L, lua_upvalueindex(1));
  lua_Integer i, n = luaL_len(L, 1);
  for (i = 1; i <= n; i++) {
    int is_delete, rc;
    lua_rawgeti(L, 1, i);
    if (tide_rowplan_change(s, L, i, lua_gettop(L), 3, 4, &is_delete)) {
      lua_pushstring(L, s->err);
      return 1;
    }
    /* By the value, not the count: a record of key fields only has as
    ** many values as keys. */
    rc = is_delete == TIDE_ROW_NONE ? 0
         : is_delete ? tide_sqlite_batch_delete(db, s->vals)
                     : tide_sqlite_batch_upsert(db, s->vals);
    if (rc != 0) {
      lua_pushstring(L, tide_sqlite_db_errmsg(db));
      return 1;
    }
    lua_pop(L, 1);
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
  tide_RowPlan *s;
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  s = tide_rowplan_push(L, 2); /* 4: scratch, 5: names, 6: types */
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

/*
** db:apply_send(plan, changes): what db:apply does, on the connection's
** own thread: the rows are converted and copied here, and written there
** while the caller goes on. Returns true once they are sent, or nil and
** the message of a row that cannot be converted (nothing is sent). The
** outcome comes from db:apply_wait(), which must be called before the
** next send (misuse otherwise).
*/
static int db_apply_send(lua_State *L) {
  Db *d = check_db(L);
  tide_RowPlan *s;
  lua_Integer i, n;
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  if (d->send.unreported)
    return luaL_error(L, "db:apply_send: the outcome of the batch sent "
                      "before was not waited for (db:apply_wait)");
  s = tide_rowplan_push(L, 2); /* 4: scratch, 5: names, 6: types */
  if (tide_sqlite_send_begin(&d->send, &s->table) != 0)
    return luaL_error(L, "%s", d->send.msg);
  n = luaL_len(L, 3);
  for (i = 1; i <= n; i++) {
    int is_delete;
    lua_rawgeti(L, 3, i);
    if (tide_rowplan_change(s, L, i, lua_gettop(L), 5, 6, &is_delete)) {
      luaL_pushfail(L);
      lua_pushstring(L, s->err);
      return 2;
    }
    if (is_delete != TIDE_ROW_NONE
        && tide_sqlite_send_row(&d->send, is_delete, s->vals) != 0)
      return luaL_error(L, "%s", d->send.msg);
    lua_pop(L, 1);
  }
  tide_sqlite_send_go(&d->send);
  lua_pushboolean(L, 1);
  return 1;
}

static int db_apply_wait(lua_State *L) {
  Db *d = check_db(L);
  if (tide_sqlite_send_wait(&d->send) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, d->send.msg);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

void tide_lsqlite_open(lua_State *L) {
  static const luaL_Reg db_methods[] = {
    {"exec", db_exec},
    {"rows", db_rows},
    {"apply", db_apply},
    {"apply_send", db_apply_send},
    {"apply_wait", db_apply_wait},
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
  tide_lrows_open(L);
  luaL_setfuncs(L, funcs, 0);
}
