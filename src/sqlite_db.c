/*
** The SQLite connector's C layer: connections (opened and worded by
** sqlite_conn.c, as the state store's are), batches of upserts and deletes
** inside one transaction with statements prepared once per batch, and
** read-only queries. See sqlite_db.h for the contract.
*/
#include "sqlite_db.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "buf.h"
#include "sqlite_vec.h"

struct tide_SqliteDb {
  sqlite3 *db;            /* owned */
  sqlite3_stmt *upsert;   /* owned, while a batch is open */
  sqlite3_stmt *del;      /* owned, while a batch is open */
  const tide_SqliteTable *table; /* borrowed, while a batch is open */
  int mode;               /* TIDE_SQLITE_CREATE, _WRITE or _READONLY */
  int have_id;            /* dev and ino hold the opened file's identity */
  dev_t dev;
  ino_t ino;
  tide_Alloc alloc;
  void *ud;
  size_t size;            /* of this allocation */
  char errmsg[TIDE_SQLITE_MSG_SIZE];
  char path[];            /* owned, part of this allocation */
};

static int fail(tide_SqliteDb *db, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
  va_end(ap);
  return code;
}

/* Words the failed call as every SQLite failure is worded (sqlite_conn.h):
** "what: SQLite's message", or the message alone when what is NULL. */
static int sql_fail(tide_SqliteDb *db, int rc, const char *what) {
  return tide_sqlite_conn_explain(db->db, rc, db->path, db->mode, "database",
                                  what, db->errmsg, sizeof db->errmsg);
}

/* ---- Connections ---- */

static void remember_identity(tide_SqliteDb *db) {
  struct stat st;
  if (stat(db->path, &st) == 0) {
    db->have_id = 1;
    db->dev = st.st_dev;
    db->ino = st.st_ino;
  }
}

int tide_sqlite_db_open(tide_SqliteDb **out, const char *path, int mode,
                        tide_Alloc alloc, void *ud) {
  size_t n = strlen(path) + 1;
  size_t size = sizeof(tide_SqliteDb) + n;
  tide_SqliteDb *db;
  int rc;
  if (alloc == NULL) alloc = tide_alloc_default;
  db = alloc(ud, NULL, 0, size);
  *out = db;
  if (db == NULL) return TIDE_ENOMEM;
  memset(db, 0, sizeof *db);
  memcpy(db->path, path, n);
  db->mode = mode;
  db->alloc = alloc;
  db->ud = ud;
  db->size = size;
  rc = tide_sqlite_conn_open(&db->db, path, mode, "database", db->errmsg,
                             sizeof db->errmsg);
  if (rc == 0)
    rc = tide_sqlite_conn_settle(db->db, path, mode, "database", db->errmsg,
                                 sizeof db->errmsg);
  if (rc == 0 && tide_sqlite_vec_register(db->db) != SQLITE_OK)
    rc = sql_fail(db, sqlite3_errcode(db->db), "cannot add the vector "
                  "functions");
  if (rc != 0) return rc;
  remember_identity(db);
  return 0;
}

static void end_batch(tide_SqliteDb *db) {
  sqlite3_finalize(db->upsert);
  sqlite3_finalize(db->del);
  db->upsert = db->del = NULL;
  db->table = NULL;
}

void tide_sqlite_db_close(tide_SqliteDb *db) {
  if (db == NULL) return;
  tide_sqlite_batch_rollback(db);
  sqlite3_close_v2(db->db);
  db->alloc(db->ud, db, db->size, 0);
}

const char *tide_sqlite_db_errmsg(const tide_SqliteDb *db) {
  return db ? db->errmsg : "out of memory";
}

void tide_sqlite_db_set_busy_timeout(tide_SqliteDb *db, int ms) {
  if (db->db) sqlite3_busy_timeout(db->db, ms > 0 ? ms : TIDE_SQLITE_BUSY_MS);
}

int tide_sqlite_db_stale(const tide_SqliteDb *db) {
  struct stat st;
  if (!db->have_id || stat(db->path, &st) != 0) return 1;
  return st.st_dev != db->dev || st.st_ino != db->ino;
}

int tide_sqlite_db_exec(tide_SqliteDb *db, const char *sql) {
  int rc;
  if (db->db == NULL) return fail(db, TIDE_EINVAL, "database is not open");
  rc = sqlite3_exec(db->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : sql_fail(db, rc, NULL);
}

/* ---- Queries ---- */

/* 1 when s holds nothing but white space and semicolons. */
static int only_blank(const char *s) {
  for (; *s; s++)
    if (!strchr(" \t\r\n\f\v;", *s)) return 0;
  return 1;
}

int tide_sqlite_query_begin(tide_SqliteQuery *q, tide_SqliteDb *db,
                            const char *sql) {
  sqlite3_stmt *st = NULL;
  const char *tail = NULL;
  int rc;
  q->db = db;
  q->stmt = NULL;
  q->ncols = 0;
  if (db->db == NULL) return fail(db, TIDE_EINVAL, "database is not open");
  rc = sqlite3_prepare_v2(db->db, sql, -1, &st, &tail);
  if (rc != SQLITE_OK) return sql_fail(db, rc, NULL);
  q->stmt = st;
  if (st == NULL) return fail(db, TIDE_EINVAL, "the query is empty");
  if (tail && !only_blank(tail))
    return fail(db, TIDE_EINVAL, "the query must be a single statement");
  if (!sqlite3_stmt_readonly(st))
    return fail(db, TIDE_EINVAL, "the query must only read");
  q->ncols = sqlite3_column_count(st);
  return 0;
}

int tide_sqlite_query_next(tide_SqliteQuery *q) {
  int rc;
  if (q->stmt == NULL) return fail(q->db, TIDE_EINVAL, "no query");
  rc = sqlite3_step(q->stmt);
  if (rc == SQLITE_ROW) return 1;
  if (rc == SQLITE_DONE) return 0;
  return sql_fail(q->db, rc, NULL);
}

const char *tide_sqlite_query_column(const tide_SqliteQuery *q, int i) {
  const char *name = sqlite3_column_name(q->stmt, i);
  return name ? name : "";
}

void tide_sqlite_query_value(const tide_SqliteQuery *q, int i,
                             tide_SqlValue *v) {
  sqlite3_stmt *st = q->stmt;
  v->type = TIDE_SQL_NULL;
  v->p = NULL;
  v->len = 0;
  switch (sqlite3_column_type(st, i)) {
  case SQLITE_INTEGER:
    v->type = TIDE_SQL_INTEGER;
    v->i = sqlite3_column_int64(st, i);
    break;
  case SQLITE_FLOAT:
    v->type = TIDE_SQL_REAL;
    v->d = sqlite3_column_double(st, i);
    break;
  case SQLITE_TEXT:
    v->type = TIDE_SQL_TEXT;
    v->p = sqlite3_column_text(st, i);
    v->len = (size_t)sqlite3_column_bytes(st, i);
    if (v->p == NULL) v->p = ""; /* out of memory reads as empty */
    break;
  case SQLITE_BLOB:
    v->type = TIDE_SQL_BLOB;
    v->p = sqlite3_column_blob(st, i);
    v->len = (size_t)sqlite3_column_bytes(st, i);
    if (v->p == NULL) v->p = "";
    break;
  default:
    break;
  }
}

void tide_sqlite_query_close(tide_SqliteQuery *q) {
  sqlite3_finalize(q->stmt);
  q->stmt = NULL;
}

/* ---- Batches ---- */

/* The staging table of a staged batch, and its operation column: a name no
** record field can have. 1 upserts the row, 0 deletes its key. */
#define STAGE "temp.\"tide_stage\""
#define STAGE_OP "\"tide:op\""

/* Appends "name" as a quoted SQL identifier. */
static void put_ident(sqlite3_str *s, const char *name) {
  sqlite3_str_appendf(s, "\"%w\"", name);
}

/* Appends sep, then the quoted names of the n columns idx[] (or of the
** first n columns when idx is NULL), separated by commas. */
static void put_columns(sqlite3_str *s, const char *sep,
                        const tide_SqliteTable *t, const int *idx, int n) {
  int i;
  for (i = 0; i < n; i++) {
    sqlite3_str_appendall(s, i ? ", " : sep);
    put_ident(s, t->columns[idx ? idx[i] : i]);
  }
}

static int is_key(const tide_SqliteTable *t, int col) {
  int k;
  for (k = 0; k < t->nkeys; k++)
    if (t->keys[k] == col) return 1;
  return 0;
}

/* " ON CONFLICT (a) DO UPDATE SET b = excluded.b, c = excluded.c" */
static void put_conflict(sqlite3_str *s, const tide_SqliteTable *t) {
  int i, n = 0;
  put_columns(s, " ON CONFLICT (", t, t->keys, t->nkeys);
  for (i = 0; i < t->ncols; i++) {
    if (is_key(t, i)) continue;
    sqlite3_str_appendall(s, n++ ? ", " : ") DO UPDATE SET ");
    put_ident(s, t->columns[i]);
    sqlite3_str_appendall(s, " = excluded.");
    put_ident(s, t->columns[i]);
  }
  if (n == 0) sqlite3_str_appendall(s, ") DO NOTHING");
}

/* Takes the built text, or NULL (out of memory, recorded). */
static char *finish(tide_SqliteDb *db, sqlite3_str *s) {
  int rc = sqlite3_str_errcode(s);
  char *sql = sqlite3_str_finish(s);
  if (rc == SQLITE_OK && sql) return sql;
  sqlite3_free(sql);
  fail(db, TIDE_ENOMEM, "out of memory");
  return NULL;
}

/* Builds and prepares one statement; the builder is consumed. */
static int prepare_built(tide_SqliteDb *db, sqlite3_str *s,
                         sqlite3_stmt **out) {
  char *sql = finish(db, s);
  int rc;
  if (sql == NULL) return TIDE_ENOMEM;
  rc = sqlite3_prepare_v2(db->db, sql, -1, out, NULL);
  sqlite3_free(sql);
  return rc == SQLITE_OK ? 0 : sql_fail(db, rc, NULL);
}

/* Builds and runs statements; the builder is consumed. */
static int exec_built(tide_SqliteDb *db, sqlite3_str *s, const char *what) {
  char *sql = finish(db, s);
  int rc;
  if (sql == NULL) return TIDE_ENOMEM;
  rc = sqlite3_exec(db->db, sql, NULL, NULL, NULL);
  sqlite3_free(sql);
  return rc == SQLITE_OK ? 0 : sql_fail(db, rc, what);
}

/* INSERT INTO main.t (a, b, c) VALUES (?1, ?2, ?3) ON CONFLICT ..., or,
** staged: INSERT OR REPLACE INTO stage VALUES (1, ?1, ?2, ?3). */
static int prepare_upsert(tide_SqliteDb *db, const tide_SqliteTable *t) {
  sqlite3_str *s = sqlite3_str_new(db->db);
  int i;
  if (t->staged) {
    sqlite3_str_appendall(s, "INSERT OR REPLACE INTO " STAGE " VALUES (1");
  } else {
    sqlite3_str_appendall(s, "INSERT INTO main.");
    put_ident(s, t->name);
    put_columns(s, " (", t, NULL, t->ncols);
    sqlite3_str_appendall(s, ") VALUES (?1");
  }
  for (i = t->staged ? 0 : 1; i < t->ncols; i++)
    sqlite3_str_appendf(s, ", ?%d", i + 1);
  sqlite3_str_appendall(s, ")");
  if (!t->staged) put_conflict(s, t);
  return prepare_built(db, s, &db->upsert);
}

/* DELETE FROM main.t WHERE a = ?1 AND b = ?2, or, staged:
** INSERT OR REPLACE INTO stage (op, a, b) VALUES (0, ?1, ?2). */
static int prepare_delete(tide_SqliteDb *db, const tide_SqliteTable *t) {
  sqlite3_str *s = sqlite3_str_new(db->db);
  int i;
  if (t->staged) {
    sqlite3_str_appendall(s, "INSERT OR REPLACE INTO " STAGE " (" STAGE_OP);
    put_columns(s, ", ", t, t->keys, t->nkeys);
    sqlite3_str_appendall(s, ") VALUES (0");
    for (i = 0; i < t->nkeys; i++) sqlite3_str_appendf(s, ", ?%d", i + 1);
    sqlite3_str_appendall(s, ")");
    return prepare_built(db, s, &db->del);
  }
  sqlite3_str_appendall(s, "DELETE FROM main.");
  put_ident(s, t->name);
  for (i = 0; i < t->nkeys; i++) {
    sqlite3_str_appendall(s, i ? " AND " : " WHERE ");
    put_ident(s, t->columns[t->keys[i]]);
    sqlite3_str_appendf(s, " = ?%d", i + 1);
  }
  return prepare_built(db, s, &db->del);
}

/* A staging table with the table's columns (no types, so values stay as
** bound) and its key, so a later change of a key replaces an earlier one. */
static int create_stage(tide_SqliteDb *db, const tide_SqliteTable *t) {
  sqlite3_str *s = sqlite3_str_new(db->db);
  sqlite3_str_appendall(s, "DROP TABLE IF EXISTS " STAGE "; "
                        "CREATE TABLE " STAGE " (" STAGE_OP);
  put_columns(s, ", ", t, NULL, t->ncols);
  put_columns(s, ", PRIMARY KEY (", t, t->keys, t->nkeys);
  sqlite3_str_appendall(s, "))");
  return exec_built(db, s, "cannot create the staging table");
}

/* Writes a staged batch: one statement deletes, one upserts. */
static int flush_stage(tide_SqliteDb *db, const tide_SqliteTable *t) {
  sqlite3_str *s = sqlite3_str_new(db->db);
  sqlite3_str_appendall(s, "DELETE FROM main.");
  put_ident(s, t->name);
  put_columns(s, " WHERE (", t, t->keys, t->nkeys);
  put_columns(s, ") IN (SELECT ", t, t->keys, t->nkeys);
  sqlite3_str_appendall(s, " FROM " STAGE " WHERE " STAGE_OP " = 0); "
                        "INSERT INTO main.");
  put_ident(s, t->name);
  put_columns(s, " (", t, NULL, t->ncols);
  put_columns(s, ") SELECT ", t, NULL, t->ncols);
  /* The WHERE clause keeps ON CONFLICT from parsing as a join's ON. */
  sqlite3_str_appendall(s, " FROM " STAGE " WHERE " STAGE_OP " = 1");
  put_conflict(s, t);
  sqlite3_str_appendall(s, "; DROP TABLE " STAGE);
  return exec_built(db, s, "cannot write the rows");
}

int tide_sqlite_batch_begin(tide_SqliteDb *db, const tide_SqliteTable *t) {
  int i, rc;
  if (db->db == NULL) return fail(db, TIDE_EINVAL, "database is not open");
  if (t->ncols < 1 || t->nkeys < 1 || t->nkeys > t->ncols)
    return fail(db, TIDE_EINVAL, "a table needs columns and a key");
  for (i = 0; i < t->nkeys; i++)
    if (t->keys[i] < 0 || t->keys[i] >= t->ncols)
      return fail(db, TIDE_EINVAL, "key column %d out of range", t->keys[i]);
  tide_sqlite_batch_rollback(db);
  rc = sqlite3_exec(db->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return sql_fail(db, rc, "cannot start a write transaction");
  db->table = t;
  if ((t->staged && (rc = create_stage(db, t)) != 0) ||
      (rc = prepare_upsert(db, t)) != 0 ||
      (rc = prepare_delete(db, t)) != 0) {
    tide_sqlite_batch_rollback(db);
    return rc;
  }
  return 0;
}

static int bind_value(sqlite3_stmt *st, int i, const tide_SqlValue *v) {
  const void *p = v->p ? v->p : "";
  /* SQLITE_STATIC: the bytes are only read by the step that follows. */
  switch (v->type) {
  case TIDE_SQL_INTEGER: return sqlite3_bind_int64(st, i, v->i);
  case TIDE_SQL_REAL: return sqlite3_bind_double(st, i, v->d);
  case TIDE_SQL_TEXT:
    return sqlite3_bind_text64(st, i, p, v->len, SQLITE_STATIC, SQLITE_UTF8);
  case TIDE_SQL_BLOB:
    return sqlite3_bind_blob64(st, i, p, v->len, SQLITE_STATIC);
  default: return sqlite3_bind_null(st, i);
  }
}

/* Binds n values, steps once and resets the statement. */
static int run(tide_SqliteDb *db, sqlite3_stmt *st, const tide_SqlValue *v,
               int n, const char *what) {
  int i, rc = SQLITE_OK;
  if (st == NULL) return fail(db, TIDE_EINVAL, "no batch is open");
  for (i = 0; i < n && rc == SQLITE_OK; i++) rc = bind_value(st, i + 1, &v[i]);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) {
    rc = sql_fail(db, rc, what);
    sqlite3_reset(st);
    return rc;
  }
  sqlite3_reset(st);
  return 0;
}

int tide_sqlite_batch_upsert(tide_SqliteDb *db, const tide_SqlValue *row) {
  return run(db, db->upsert, row, db->table ? db->table->ncols : 0,
             "cannot write a row");
}

int tide_sqlite_batch_delete(tide_SqliteDb *db, const tide_SqlValue *key) {
  return run(db, db->del, key, db->table ? db->table->nkeys : 0,
             "cannot delete a row");
}

int tide_sqlite_batch_commit(tide_SqliteDb *db) {
  const tide_SqliteTable *t = db->table;
  int rc;
  if (t == NULL) return fail(db, TIDE_EINVAL, "no batch is open");
  end_batch(db);
  if (t->staged && (rc = flush_stage(db, t)) != 0) {
    tide_sqlite_batch_rollback(db);
    return rc;
  }
  rc = sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL);
  if (rc == SQLITE_OK) return 0;
  rc = sql_fail(db, rc, "cannot commit");
  tide_sqlite_batch_rollback(db);
  return rc;
}

void tide_sqlite_batch_rollback(tide_SqliteDb *db) {
  if (db->db == NULL) return;
  end_batch(db);
  if (!sqlite3_get_autocommit(db->db))
    sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
}
