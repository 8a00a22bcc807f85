/*
** SQL helpers shared by the store's operation files: binding parameters,
** reading columns, stepping statements. Only store_*.c include this.
*/
#ifndef TIDE_STORE_SQLITE_SQL_H
#define TIDE_STORE_SQLITE_SQL_H

#include <string.h>

#include "store_sqlite.h"

/* What a zero-length blob points at, as SQLite gives NULL for it. */
static const uint8_t empty_blob[1] = { 0 };

/* ---- Binding and reading columns ---- */

/* Binds len bytes of text, NUL bytes included; NULL binds SQL NULL. */
static inline int bind_text(sqlite3_stmt *st, int i, const char *v,
                            size_t len) {
  return v ? sqlite3_bind_text64(st, i, v, len, SQLITE_STATIC, SQLITE_UTF8)
           : sqlite3_bind_null(st, i);
}

static inline int bind_blob(sqlite3_stmt *st, int i, const void *p,
                            size_t n) {
  return p ? sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC)
           : sqlite3_bind_null(st, i);
}

static inline int bind_fp(sqlite3_stmt *st, int i, const uint8_t *fp) {
  return bind_blob(st, i, fp, TIDE_FP_SIZE);
}

/* Binds a row id, 0 standing for NULL. */
static inline int bind_id(sqlite3_stmt *st, int i, int64_t id) {
  return id ? sqlite3_bind_int64(st, i, id) : sqlite3_bind_null(st, i);
}

static inline int bind_int(sqlite3_stmt *st, int i, int64_t v) {
  return sqlite3_bind_int64(st, i, v);
}

/* A text column and its length in bytes, NUL bytes included; NULL with
** length 0 for SQL NULL. SQLite ends the text with a NUL it does not
** count. */
static inline const char *col_text(sqlite3_stmt *st, int i, size_t *len) {
  const char *p = (const char *)sqlite3_column_text(st, i);
  *len = p ? (size_t)sqlite3_column_bytes(st, i) : 0;
  return p;
}

static inline const void *col_blob(sqlite3_stmt *st, int i, size_t *len) {
  const void *p;
  if (sqlite3_column_type(st, i) == SQLITE_NULL) {
    *len = 0;
    return NULL;
  }
  p = sqlite3_column_blob(st, i);
  *len = (size_t)sqlite3_column_bytes(st, i);
  return p ? p : empty_blob;
}

/* A fingerprint column; NULL when it is NULL or not TIDE_FP_SIZE bytes. */
static inline const uint8_t *col_fp(sqlite3_stmt *st, int i) {
  size_t len;
  const void *p = col_blob(st, i, &len);
  return len == TIDE_FP_SIZE ? p : NULL;
}

static inline int64_t col_int(sqlite3_stmt *st, int i) {
  return sqlite3_column_int64(st, i);
}

/* ---- Running statements ---- */

/* Steps an INSERT ... RETURNING id to its end; *id (when id is not NULL)
** receives the id. */
static inline int run_returning(SqStore *s, sqlite3_stmt *st,
                                const char *what, int64_t *id) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    if (id) *id = col_int(st, 0);
    rc = sqlite3_step(st);
  }
  if (rc != SQLITE_DONE) {
    rc = tide_sqs_fail_db(s, what);
    sqlite3_reset(st);
    return rc;
  }
  sqlite3_reset(st);
  return 0;
}

/* Steps a statement without result rows to its end. */
static inline int run(SqStore *s, sqlite3_stmt *st, const char *what) {
  return run_returning(s, st, what, NULL);
}

/* Steps a query to its first row, where it is left until the next call on
** the store, so the caller borrows its columns; TIDE_ENOTFOUND if none. */
static inline int get_row(SqStore *s, sqlite3_stmt *st,
                          const char *what) {
  int rc = tide_sqs_read_begin(s);
  if (rc) {
    sqlite3_reset(st);
    return rc;
  }
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    s->held = st;
    return 0;
  }
  if (rc == SQLITE_DONE) {
    sqlite3_reset(st);
    return TIDE_ENOTFOUND;
  }
  rc = tide_sqs_fail_db(s, what);
  sqlite3_reset(st);
  return rc;
}

/* Reads the integer of a one-column query's first row. */
static inline int find_id(SqStore *s, sqlite3_stmt *st, const char *what,
                   int64_t *id) {
  int rc = get_row(s, st, what);
  if (rc) return rc;
  *id = col_int(st, 0);
  s->held = NULL;
  sqlite3_reset(st);
  return 0;
}

/* Turns the current row into a struct and hands it to the callback that
** cb points at. */
typedef int (*Emit)(sqlite3_stmt *st, const void *cb, void *arg);

static inline int each(SqStore *s, sqlite3_stmt *st, const char *what,
                Emit emit, const void *cb, void *arg) {
  int rc = tide_sqs_read_begin(s);
  if (rc) {
    sqlite3_reset(st);
    return rc;
  }
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    rc = emit(st, cb, arg);
    if (rc) {
      sqlite3_reset(st);
      return rc;
    }
  }
  if (rc != SQLITE_DONE) {
    rc = tide_sqs_fail_db(s, what);
    sqlite3_reset(st);
    return rc;
  }
  sqlite3_reset(st);
  return 0;
}

static inline int bind_failed(SqStore *s, const char *what) {
  return tide_sqs_fail_db(s, what);
}

/* Runs a write statement in the batch and counts it. */
static inline int run_write(SqStore *s, sqlite3_stmt *st,
                            const char *what) {
  int rc = run(s, st, what);
  if (rc) return rc;
  tide_sqs_write_done(s);
  return 0;
}

/* Runs a single-parameter delete keyed by an id. */
static inline int delete_by_id(SqStore *s, int slot, const char *sql,
                        int64_t id, const char *what) {
  sqlite3_stmt *st;
  int rc = tide_sqs_stmt(s, slot, sql, &st);
  if (rc) return rc;
  if (bind_int(st, 1, id)) return bind_failed(s, what);
  return run(s, st, what);
}

/* A write that is one statement keyed by an id (a delete, an update), in
** the open batch. */
static inline int write_by_id(SqStore *s, int slot,
                                     const char *sql, int64_t id,
                                     const char *what) {
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  if ((rc = delete_by_id(s, slot, sql, id, what)) != 0) return rc;
  tide_sqs_write_done(s);
  return 0;
}

#endif
