/*
** Batches of rows written on a connection's own thread (sqlite_send.h).
**
** A row in s->rows: one byte, 1 for a delete; then its values (nkeys for
** a delete, ncols otherwise), each a type byte and, for an integer or a
** real, its 8 bytes, for text or a blob a uint64 length and the bytes.
*/
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sqlite_send.h"

static int fail(tide_SqliteSend *s, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->msg, sizeof s->msg, fmt, ap);
  va_end(ap);
  return rc;
}

void tide_sqlite_send_init(tide_SqliteSend *s, tide_SqliteDb *db,
                           tide_Alloc alloc, void *ud) {
  memset(s, 0, sizeof *s);
  s->db = db;
  tide_buf_init(&s->rows, alloc, ud);
  tide_buf_init(&s->names, alloc, ud);
  tide_buf_init(&s->meta, alloc, ud);
  tide_buf_init(&s->vals, alloc, ud);
}

/* ---- The thread's side ---- */

static const uint8_t *read_value(const uint8_t *p, tide_SqlValue *v) {
  uint64_t len;
  v->type = *p++;
  switch (v->type) {
  case TIDE_SQL_INTEGER:
    memcpy(&v->i, p, sizeof v->i);
    return p + sizeof v->i;
  case TIDE_SQL_REAL:
    memcpy(&v->d, p, sizeof v->d);
    return p + sizeof v->d;
  case TIDE_SQL_TEXT:
  case TIDE_SQL_BLOB:
    memcpy(&len, p, sizeof len);
    v->p = p + sizeof len;
    v->len = (size_t)len;
    return p + sizeof len + len;
  default:
    return p;
  }
}

/* The job: the whole batch in one transaction, or nothing. */
static int write_batch(void *arg) {
  tide_SqliteSend *s = arg;
  tide_SqliteDb *db = s->db;
  tide_SqlValue *vals = (tide_SqlValue *)s->vals.data;
  const uint8_t *p = s->rows.data, *end = p + s->rows.len;
  int rc = tide_sqlite_batch_begin(db, &s->table);
  while (rc == 0 && p < end) {
    int is_delete = *p++, i;
    int n = is_delete ? s->table.nkeys : s->table.ncols;
    for (i = 0; i < n; i++) p = read_value(p, &vals[i]);
    rc = is_delete ? tide_sqlite_batch_delete(db, vals)
                   : tide_sqlite_batch_upsert(db, vals);
  }
  if (rc == 0) rc = tide_sqlite_batch_commit(db); /* rolls back if it fails */
  else tide_sqlite_batch_rollback(db);
  if (rc) snprintf(s->msg, sizeof s->msg, "%s", tide_sqlite_db_errmsg(db));
  return rc;
}

/* ---- The caller's side ---- */

void tide_sqlite_send_settle(tide_SqliteSend *s) {
  if (!s->out) return;
  s->rc = tide_job_wait(&s->job);
  s->out = 0;
}

int tide_sqlite_send_wait(tide_SqliteSend *s) {
  tide_sqlite_send_settle(s);
  if (!s->unreported) return 0;
  s->unreported = 0;
  return s->rc;
}

/* Copies t's names, one after another, into s->names and its arrays
** into s->meta; the pointers are set once names no longer moves. */
static int copy_table(tide_SqliteSend *s, const tide_SqliteTable *t) {
  size_t cols_size = (size_t)t->ncols * sizeof(char *);
  const char **columns, *p;
  int i;
  s->names.len = 0;
  if (tide_buf_reserve(&s->meta, cols_size + (size_t)t->nkeys * sizeof(int))
      != 0 ||
      tide_buf_reserve(&s->vals, (size_t)t->ncols * sizeof(tide_SqlValue))
      != 0 ||
      tide_buf_append(&s->names, t->name, strlen(t->name) + 1) != 0)
    return TIDE_ENOMEM;
  for (i = 0; i < t->ncols; i++) {
    if (tide_buf_append(&s->names, t->columns[i], strlen(t->columns[i]) + 1)
        != 0)
      return TIDE_ENOMEM;
  }
  columns = (const char **)s->meta.data;
  p = (const char *)s->names.data;
  for (i = 0; i < t->ncols; i++) {
    p += strlen(p) + 1;
    columns[i] = p;
  }
  memcpy(s->meta.data + cols_size, t->keys, (size_t)t->nkeys * sizeof(int));
  s->table = *t;
  s->table.name = (const char *)s->names.data;
  s->table.columns = columns;
  s->table.keys = (const int *)(s->meta.data + cols_size);
  return 0;
}

int tide_sqlite_send_begin(tide_SqliteSend *s, const tide_SqliteTable *t) {
  tide_sqlite_send_settle(s);
  /* Misuse; the message kept is the unreported batch's. */
  if (s->unreported) return TIDE_EINVAL;
  if (t->ncols < 1 || t->nkeys < 1 || t->nkeys > t->ncols)
    return fail(s, TIDE_EINVAL, "a table needs columns and a key");
  s->begun = 0;
  s->rows.len = 0;
  if (copy_table(s, t) != 0) return fail(s, TIDE_ENOMEM, "out of memory");
  s->begun = 1;
  return 0;
}

static int put_value(tide_Buf *b, const tide_SqlValue *v) {
  uint8_t type = (uint8_t)v->type;
  uint64_t len = v->len;
  int rc = tide_buf_push(b, type);
  if (rc) return rc;
  switch (v->type) {
  case TIDE_SQL_INTEGER: return tide_buf_append(b, &v->i, sizeof v->i);
  case TIDE_SQL_REAL: return tide_buf_append(b, &v->d, sizeof v->d);
  case TIDE_SQL_TEXT:
  case TIDE_SQL_BLOB:
    if ((rc = tide_buf_append(b, &len, sizeof len)) != 0) return rc;
    return v->len ? tide_buf_append(b, v->p, v->len) : 0;
  default: return 0;
  }
}

int tide_sqlite_send_row(tide_SqliteSend *s, int is_delete,
                         const tide_SqlValue *vals) {
  size_t before = s->rows.len;
  int i, n = is_delete ? s->table.nkeys : s->table.ncols, rc;
  if (!s->begun) return fail(s, TIDE_EINVAL, "no batch is begun");
  rc = tide_buf_push(&s->rows, is_delete ? 1 : 0);
  for (i = 0; i < n && rc == 0; i++) rc = put_value(&s->rows, &vals[i]);
  if (rc) {
    s->rows.len = before; /* a row is whole or absent */
    return fail(s, TIDE_ENOMEM, "out of memory");
  }
  return 0;
}

int tide_sqlite_send_go(tide_SqliteSend *s) {
  if (!s->begun) return fail(s, TIDE_EINVAL, "no batch is begun");
  s->begun = 0;
  s->unreported = 1;
  if (tide_job_send(&s->job, write_batch, s) == 0) {
    s->out = 1;
    return 0;
  }
  s->rc = write_batch(s); /* no thread: written here */
  return 0;
}

void tide_sqlite_send_close(tide_SqliteSend *s) {
  tide_sqlite_send_settle(s);
  tide_job_stop(&s->job);
  tide_buf_close(&s->rows);
  tide_buf_close(&s->names);
  tide_buf_close(&s->meta);
  tide_buf_close(&s->vals);
  s->begun = s->unreported = 0;
}
