/*
** The SQLite store's reader: a second, read-only connection, used on the
** loop's thread for reads of the committed state (store.h's *_committed
** calls) while the writer thread holds the store's connection with a
** batch in flight. Without it such a read waits for that batch's commit:
** in a run that reruns components, the first component read after each
** batch was sent did, and the components stopped while the store
** committed.
**
** The reader reads in a transaction of its own, begun by its first read
** and ended (tide_sqs_reader_end) whenever the loop's thread learns of a
** commit or lets the writer lock go. So a read sees every batch committed
** before its transaction began, and nothing of the batch in flight or of
** the writes queued since: the caller's promise is that those leave the
** rows it reads alone. In WAL mode a reader never waits for the writer,
** and the writer never waits for a reader (a checkpoint stops at the
** reader's snapshot until its transaction ends, a batch later).
**
** Edge cases: the reader is opened at its first use, after the store's
** own connection has made the file a store in WAL mode; a statement a
** get left on its row stays there until the reader's next call or the
** end of its transaction; a failure sets the store's message as the
** store's own connection would.
*/
#include <string.h>

#include "sqlite_conn.h"
#include "store_sqlite.h"

static int reader_fail(SqStore *s, int rc, const char *what) {
  char msg[TIDE_SQLITE_MSG_SIZE];
  int code;
  switch (rc & 0xff) {
  case SQLITE_NOMEM: code = TIDE_ENOMEM; break;
  case SQLITE_IOERR:
  case SQLITE_CANTOPEN: code = TIDE_EIO; break;
  default: code = TIDE_ESTORE; break;
  }
  tide_sqlite_conn_explain(s->reader, rc, s->path, TIDE_SQLITE_READONLY,
                           "state store", what, msg, sizeof msg);
  return tide_sqs_fail(s, code, "%s: %s", s->path, msg);
}

int tide_sqs_reader_fail(SqStore *s, const char *what) {
  return reader_fail(s, sqlite3_extended_errcode(s->reader), what);
}

static void release_held(SqStore *s) {
  if (s->reader_held) sqlite3_reset(s->reader_held);
  s->reader_held = NULL;
}

static int reader_open(SqStore *s) {
  char msg[TIDE_SQLITE_MSG_SIZE];
  int rc = tide_sqlite_conn_open(&s->reader, s->path, TIDE_SQLITE_READONLY,
                                 "state store", msg, sizeof msg);
  if (rc == 0) return 0;
  sqlite3_close_v2(s->reader);
  s->reader = NULL;
  return tide_sqs_fail(s, rc, "%s: %s", s->path, msg);
}

/* Runs BEGIN or COMMIT on the reader. */
static int reader_exec(SqStore *s, const char *sql, const char *what) {
  int rc = sqlite3_exec(s->reader, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : reader_fail(s, rc, what);
}

int tide_sqs_reader_stmt(SqStore *s, int slot, const char *sql,
                         sqlite3_stmt **st) {
  sqlite3_stmt **p = &s->reader_stmts[slot];
  int rc;
  release_held(s);
  if (s->reader == NULL && (rc = reader_open(s)) != 0) return rc;
  if (!s->reading) {
    if ((rc = reader_exec(s, "BEGIN", "cannot read")) != 0) return rc;
    s->reading = 1;
  }
  if (*p == NULL &&
      (rc = sqlite3_prepare_v3(s->reader, sql, -1, SQLITE_PREPARE_PERSISTENT,
                               p, NULL)) != SQLITE_OK) {
    *p = NULL;
    return reader_fail(s, rc, "cannot prepare a statement");
  }
  *st = *p;
  return 0;
}

void tide_sqs_reader_hold(SqStore *s, sqlite3_stmt *st) {
  s->reader_held = st;
}

void tide_sqs_reader_end(SqStore *s) {
  if (!s->reading) return;
  release_held(s);
  /* A read transaction's end cannot fail in a way that matters: were it
  ** to, the next BEGIN would report it. */
  sqlite3_exec(s->reader, "COMMIT", NULL, NULL, NULL);
  s->reading = 0;
}

void tide_sqs_reader_close(SqStore *s) {
  int i;
  if (s->reader == NULL) return;
  tide_sqs_reader_end(s);
  for (i = 0; i < TIDE_READER_COUNT; i++) {
    sqlite3_finalize(s->reader_stmts[i]);
    s->reader_stmts[i] = NULL;
  }
  sqlite3_close_v2(s->reader);
  s->reader = NULL;
}
