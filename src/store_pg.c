/*
** The PostgreSQL store's lifecycle (store_pg.h): the location, the
** connection, the writer lock, messages, the pipeline and group commit.
** The schema lives in store_pg_schema.c, the operations in
** store_pg_ops.c.
**
** The pipeline: every statement is sent with PQsendQueryPrepared and a
** PgWait saying what its result is for. Nothing is read until a
** synchronisation (sync_pipeline): then each result is read in order, the
** first failure kept, a read's result handed back. A failure inside the
** batch has aborted the server's transaction; it is rolled back at once,
** so the store is usable again and the message says the batch is lost.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "store_pg.h"

static const char out_of_memory[] = "out of memory";

/* The writer lock's first key: "TIDE"; the second is the schema's hash. */
#define LOCK_CLASS 1414087749

/* ---- Messages ---- */

int tide_pgs_fail(PgStore *s, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  code = tide_store_failv(&s->base, code, fmt, ap);
  va_end(ap);
  return code;
}

static int nomem(PgStore *s) {
  return tide_pgs_fail(s, TIDE_ENOMEM, "%s", out_of_memory);
}

/* libpq's message on one line, without its trailing newline. */
static void one_line(const char *in, char *out, size_t size) {
  size_t n = 0;
  for (; in && *in && n + 1 < size; in++) {
    char c = *in == '\n' || *in == '\r' || *in == '\t' ? ' ' : *in;
    if (c == ' ' && (n == 0 || out[n - 1] == ' ')) continue;
    out[n++] = c;
  }
  while (n > 0 && out[n - 1] == ' ') n--;
  out[n] = '\0';
}

/* "LOCATION: what: <the server's or libpq's message>", the code by what
** failed: the connection (TIDE_EIO) or a statement (TIDE_ESTORE). */
int tide_pgs_fail_pg(PgStore *s, const PGresult *r, const char *what,
                     const char *note) {
  char msg[512];
  const char *text = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
                       : NULL;
  one_line(text ? text : PQerrorMessage(s->conn), msg, sizeof msg);
  if (msg[0] == '\0') snprintf(msg, sizeof msg, "the server closed the "
                               "connection");
  return tide_pgs_fail(s, PQstatus(s->conn) == CONNECTION_OK ? TIDE_ESTORE
                                                              : TIDE_EIO,
                       "%s: %s: %s%s", s->location, what, msg, note);
}

const char *tide_pgs_path(const PgStore *s) {
  return s && s->location ? s->location : "";
}

/* ---- Clocks ---- */



/* ---- The pipeline ---- */

void tide_pgs_release(PgStore *s) {
  if (s->held) PQclear(s->held);
  s->held = NULL;
}

static int push_wait(PgStore *s, const char *what, int kind, int slot) {
  if (s->nwaits == s->waits_cap) {
    size_t cap = s->waits_cap ? s->waits_cap * 2 : 64;
    PgWait *w = s->base.alloc(s->base.ud, s->waits,
                              s->waits_cap * sizeof *w, cap * sizeof *w);
    if (w == NULL) return nomem(s);
    s->waits = w;
    s->waits_cap = cap;
  }
  s->waits[s->nwaits].what = what;
  s->waits[s->nwaits].kind = kind;
  s->waits[s->nwaits].slot = slot;
  s->nwaits++;
  return 0;
}

static int sync_pipeline(PgStore *s, PGresult **read);
static int finish_sent(PgStore *s);

static int send_text(PgStore *s, const char *sql, const char *what) {
  if (!PQsendQueryParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 1))
    return tide_pgs_fail_pg(s, NULL, what, "");
  return push_wait(s, what, PG_WAIT_TXN, -1);
}

/* The open batch's BEGIN goes with its first statement: until then its
** rows are only kept here, and a commit sent earlier is not waited for. */
static int send_begin(PgStore *s) {
  if (!s->base.in_batch || s->begun) return 0;
  s->begun = 1;
  return send_text(s, "BEGIN", "cannot start a write transaction");
}

/* Ends the open batch with COMMIT or ROLLBACK. */
static int send_plain(PgStore *s, const char *sql, const char *what) {
  int rc;
  if ((rc = finish_sent(s)) != 0) return rc;
  if (strcmp(sql, "ROLLBACK") == 0) {
    tide_pgs_bulk_drop(s);
    s->memo_lock = PG_MEMOS_UNLOCKED;
    if (!s->begun) return 0; /* nothing of it reached the server */
  } else if ((rc = tide_pgs_bulk_send(s)) != 0 ||
             (rc = tide_pgs_bulk_commit_memos(s)) != 0 ||
             (rc = send_begin(s)) != 0) {
    return rc;
  }
  s->memo_lock = PG_MEMOS_UNLOCKED; /* the transaction's end frees it */
  return send_text(s, sql, what);
}

static int send_raw(PgStore *s, int slot, const char *sql,
                    const PgParams *p, const char *what, int kind) {
  char name[16];
  int rc;
  if ((rc = finish_sent(s)) != 0 || (rc = send_begin(s)) != 0) return rc;
  snprintf(name, sizeof name, "tide%d", slot);
  if (!s->prepared[slot]) {
    if (!PQsendPrepare(s->conn, name, sql, 0, NULL))
      return tide_pgs_fail_pg(s, NULL, what, "");
    s->prepared[slot] = 1;
    if ((rc = push_wait(s, what, PG_WAIT_PREPARE, slot)) != 0) return rc;
  }
  if (!PQsendQueryPrepared(s->conn, name, p ? p->n : 0,
                           p ? p->values : NULL, p ? p->lengths : NULL,
                           p ? p->formats : NULL, 1))
    return tide_pgs_fail_pg(s, NULL, what, "");
  return push_wait(s, what, kind, slot);
}

int tide_pgs_send(PgStore *s, int slot, const char *sql, const PgParams *p,
                  const char *what) {
  return send_raw(s, slot, sql, p, what, PG_WAIT_WRITE);
}

/* Any statement but the set-based ones goes after the rows kept. */
static int send_prepared(PgStore *s, int slot, const char *sql,
                         const PgParams *p, const char *what, int kind) {
  int rc = tide_pgs_bulk_send(s);
  return rc ? rc : send_raw(s, slot, sql, p, what, kind);
}

/* Reads what a result says of its statement. The first failure of a
** synchronisation sets the message and *failed (its code); a read's
** result goes to *read, and 1 says it was kept there. */
static int check_result(PgStore *s, const PgWait *w, PGresult *r,
                        PGresult **read, int *failed) {
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    if (w->kind == PG_WAIT_PREPARE) s->prepared[w->slot] = 0;
    /* A statement after a failure is skipped, not failed. */
    if (st != PGRES_PIPELINE_ABORTED && !*failed)
      *failed = tide_pgs_fail_pg(s, r, w->what, "");
    return 0;
  }
  if (w->kind == PG_WAIT_READ && read && !*failed) {
    *read = r;
    return 1;
  }
  if (w->kind == PG_WAIT_LATER && !*failed) {
    if (s->later) PQclear(s->later);
    s->later = r;
    return 1;
  }
  return 0;
}

/* Ends a failed batch: the server's transaction is aborted, so it is
** rolled back at once (the store is usable again), and the message says
** what was lost. The failure is kept (tide_store_lost_message): a worker
** tells it when it leaves, whatever failed after it. */
static void roll_back_failed(PgStore *s) {
  size_t len = strlen(s->base.errmsg);
  char *kept = s->base.alloc(s->base.ud, NULL, 0, len + 1);
  s->base.in_batch = 0;
  s->base.batch_writes = 0;
  s->base.batches_lost++;
  if (kept) memcpy(kept, s->base.errmsg, len + 1);
  if (send_plain(s, "ROLLBACK", "cannot roll back") == 0)
    sync_pipeline(s, NULL);
  if (kept) {
    tide_pgs_fail(s, TIDE_ESTORE, "%s (the uncommitted batch was rolled "
                  "back)", kept);
    tide_store_keep_lost(&s->base, kept);
  }
}

static int read_pipeline(PgStore *s, PGresult **read, int lost);

/* Marks the end of what was sent (with the rows kept, when send_kept),
** reads every result in order and then the synchronisation's own.
** Returns the first failure's code. */
static int sync_sent(PgStore *s, PGresult **read, int send_kept) {
  int rc;
  if (read) *read = NULL;
  if ((rc = finish_sent(s)) != 0 ||
      (send_kept && (rc = tide_pgs_bulk_send(s)) != 0))
    return rc;
  if (s->nwaits == 0) return 0;
  return read_pipeline(s, read, !PQpipelineSync(s->conn));
}

static int sync_pipeline(PgStore *s, PGresult **read) {
  return sync_sent(s, read, 1);
}

/* Reads the results of what a synchronisation ended (lost: the sync
** could not be sent). */
static int read_pipeline(PgStore *s, PGresult **read, int lost) {
  size_t i;
  int failed = 0, later = 0;
  for (i = 0; i < s->nwaits && !lost; i++) {
    PGresult *r;
    /* A statement's results, then NULL. */
    while ((r = PQgetResult(s->conn)) != NULL)
      if (!check_result(s, &s->waits[i], r, read, &failed)) PQclear(r);
      else if (s->waits[i].kind == PG_WAIT_LATER) later = 1;
    if (PQstatus(s->conn) != CONNECTION_OK) lost = 1;
  }
  /* Its transaction did not commit: the result says nothing that holds. */
  if ((lost || failed) && later && s->later) {
    PQclear(s->later);
    s->later = NULL;
  }
  if (!lost) {
    PGresult *r = PQgetResult(s->conn);
    if (r == NULL || PQresultStatus(r) != PGRES_PIPELINE_SYNC) lost = 1;
    PQclear(r);
  }
  s->nwaits = 0;
  if ((lost || failed) && read && *read) {
    PQclear(*read);
    *read = NULL;
  }
  if (lost) {
    int in_batch = s->base.in_batch;
    tide_pgs_bulk_drop(s);
    memset(s->prepared, 0, sizeof s->prepared);
    s->base.in_batch = 0;
    s->base.batch_writes = 0;
    if (!failed)
      failed = tide_pgs_fail_pg(s, NULL, "lost its connection",
                       in_batch ? " (the uncommitted batch was lost)" : "");
    return failed;
  }
  if (failed && s->base.in_batch) roll_back_failed(s);
  return failed;
}

int tide_pgs_write_begin(PgStore *s) {
  if (s->flags == TIDE_STORE_READ)
    return tide_pgs_fail(s, TIDE_EINVAL, "%s: state store is open read-only",
                         s->location);
  if (s->base.in_batch) return 0;
  s->base.in_batch = 1;
  s->begun = 0;
  s->memo_lock = PG_MEMOS_UNLOCKED;
  s->base.batch_writes = 0;
  s->base.batch_started_ns = tide_store_monotonic_ns();
  return 0;
}

int tide_pgs_write(PgStore *s, int slot, const char *sql, const PgParams *p,
                   const char *what) {
  int rc;
  tide_pgs_release(s);
  if ((rc = tide_pgs_write_begin(s)) != 0 ||
      (rc = send_prepared(s, slot, sql, p, what, PG_WAIT_WRITE)) != 0)
    return rc;
  s->base.batch_writes++;
  /* The server answers every statement: read the answers now and then,
  ** so that neither side's buffers fill while the other waits. */
  if (s->nwaits >= PG_PIPELINE_MAX) return sync_pipeline(s, NULL);
  return 0;
}

int tide_pgs_read(PgStore *s, int slot, const char *sql, const PgParams *p,
                  const char *what, PGresult **out) {
  int rc;
  tide_pgs_release(s);
  *out = NULL;
  rc = send_prepared(s, slot, sql, p, what, PG_WAIT_READ);
  if (rc == 0) rc = sync_pipeline(s, out);
  if (rc == 0 && *out == NULL)
    rc = tide_pgs_fail(s, TIDE_ESTORE, "%s: %s: no result", s->location,
                       what);
  return rc;
}

int tide_pgs_read_apart(PgStore *s, int slot, const char *sql,
                        const PgParams *p, const char *what, PGresult **out) {
  int rc;
  tide_pgs_release(s);
  *out = NULL;
  rc = send_raw(s, slot, sql, p, what, PG_WAIT_READ);
  if (rc == 0) rc = sync_sent(s, out, 0);
  if (rc == 0 && *out == NULL)
    rc = tide_pgs_fail(s, TIDE_ESTORE, "%s: %s: no result", s->location,
                       what);
  return rc;
}

int tide_pgs_write_returning_rows(PgStore *s, int slot, const char *sql,
                                  const PgParams *p, const char *what,
                                  PGresult **out) {
  int rc = tide_pgs_write_begin(s);
  if (rc) return rc;
  if ((rc = tide_pgs_read(s, slot, sql, p, what, out)) != 0) return rc;
  s->base.batch_writes++;
  return 0;
}

int tide_pgs_write_commit(PgStore *s, int slot, const char *sql,
                          const PgParams *p, const char *what,
                          PGresult **out) {
  int rc;
  tide_pgs_release(s);
  *out = NULL;
  if ((rc = tide_pgs_write_begin(s)) != 0 ||
      (rc = send_prepared(s, slot, sql, p, what, PG_WAIT_READ)) != 0 ||
      (rc = send_prepared(s, PG_GENERATION, "SELECT nextval('generation')",
                          NULL, "cannot commit", PG_WAIT_WRITE)) != 0 ||
      (rc = send_plain(s, "COMMIT", "cannot commit")) != 0)
    return rc;
  rc = sync_pipeline(s, out);
  s->base.in_batch = 0;
  s->base.batch_writes = 0;
  if (rc == 0 && *out == NULL)
    rc = tide_pgs_fail(s, TIDE_ESTORE, "%s: %s: no result", s->location,
                       what);
  return rc;
}

int tide_pgs_write_commit_send(PgStore *s, int slot, const char *sql,
                               const PgParams *p, const char *what) {
  int rc;
  tide_pgs_release(s);
  if (s->later) { /* a result no one took: its claim is over */
    PQclear(s->later);
    s->later = NULL;
  }
  if ((rc = tide_pgs_write_begin(s)) != 0 ||
      (rc = send_prepared(s, slot, sql, p, what, PG_WAIT_LATER)) != 0 ||
      (rc = tide_pgs_flush_send(s)) != 0)
    return rc;
  return 0;
}

/* Nothing is read but when a result is asked for (in a pipeline, libpq
** parses what comes only then), and the answer to the synchronisation,
** sent last, comes after the last byte sent: while it is unread, the
** socket becomes readable. */
int tide_pgs_sent_socket(PgStore *s) {
  return s->sent && s->conn ? PQsocket(s->conn) : -1;
}

int tide_pgs_write_commit_read(PgStore *s, const char *what,
                               PGresult **out) {
  int rc = tide_pgs_flush_wait(s);
  *out = s->later;
  s->later = NULL;
  if (rc == 0 && *out == NULL)
    rc = tide_pgs_fail(s, TIDE_ESTORE, "%s: %s: no result", s->location,
                       what);
  if (rc != 0 && *out) {
    PQclear(*out);
    *out = NULL;
  }
  return rc;
}

int tide_pgs_write_returning(PgStore *s, int slot, const char *sql,
                             const PgParams *p, const char *what,
                             int64_t *id) {
  PGresult *r;
  int rc = tide_pgs_write_returning_rows(s, slot, sql, p, what, &r);
  if (rc) return rc;
  rc = PQntuples(r) == 1 ? 0 : TIDE_ENOTFOUND;
  if (rc == 0 && id) *id = pg_int(r, 0, 0);
  PQclear(r);
  return rc;
}

/* What a get read into *out: held, or TIDE_ENOTFOUND for no row. */
static int hold_row(PgStore *s, PGresult **out) {
  if (PQntuples(*out) == 0) {
    PQclear(*out);
    *out = NULL;
    return TIDE_ENOTFOUND;
  }
  s->held = *out;
  return 0;
}

int tide_pgs_get_apart(PgStore *s, int slot, const char *sql,
                       const PgParams *p, const char *what, PGresult **out) {
  int rc = tide_pgs_read_apart(s, slot, sql, p, what, out);
  return rc ? rc : hold_row(s, out);
}

int tide_pgs_get(PgStore *s, int slot, const char *sql, const PgParams *p,
                 const char *what, PGresult **out) {
  int rc = tide_pgs_read(s, slot, sql, p, what, out);
  return rc ? rc : hold_row(s, out);
}

/* ---- Group commit ---- */

int tide_pgs_flush(PgStore *s) {
  int rc;
  tide_pgs_release(s);
  if (!s->base.in_batch) return sync_pipeline(s, NULL);
  /* The generation moves with every commit: how a session that let the
  ** lock go sees that another process wrote meanwhile. */
  if ((rc = send_prepared(s, PG_GENERATION, "SELECT nextval('generation')",
                          NULL, "cannot commit", PG_WAIT_WRITE)) != 0 ||
      (rc = send_plain(s, "COMMIT", "cannot commit")) != 0)
    return rc;
  rc = sync_pipeline(s, NULL);
  s->base.in_batch = 0;
  s->base.batch_writes = 0;
  return rc;
}

/* Keeps a failure of the commit sent last, with its message, for
** tide_pgs_flush_wait; returns rc. */
static int keep_sent_failure(PgStore *s, int rc) {
  size_t len = strlen(s->base.errmsg) + 1;
  s->sent_rc = rc;
  if (len > s->sent_msg_size) {
    char *m = s->base.alloc(s->base.ud, s->sent_msg, s->sent_msg_size, len);
    if (m == NULL) return rc;
    s->sent_msg = m;
    s->sent_msg_size = len;
  }
  memcpy(s->sent_msg, s->base.errmsg, len);
  return rc;
}

/* A commit sent and not read yet: what it sent is all the pipeline
** holds, since every call that sends or reads reads it first. */
int tide_pgs_flush_send(PgStore *s) {
  int rc;
  tide_pgs_release(s);
  if ((rc = finish_sent(s)) != 0) return rc;
  s->sent_rc = 0;
  if (!s->base.in_batch) return sync_pipeline(s, NULL);
  if ((rc = send_prepared(s, PG_GENERATION, "SELECT nextval('generation')",
                          NULL, "cannot commit", PG_WAIT_WRITE)) != 0 ||
      (rc = send_plain(s, "COMMIT", "cannot commit")) != 0)
    return keep_sent_failure(s, rc);
  /* Sent now, so that the server starts on it while this process goes
  ** on. */
  if (!PQpipelineSync(s->conn) || PQflush(s->conn) < 0)
    return keep_sent_failure(s, read_pipeline(s, NULL, 1));
  s->base.in_batch = 0;
  s->base.batch_writes = 0;
  s->sent = 1;
  return 0;
}

/* Reads the commit sent last, if not read yet; its failure is kept for
** tide_pgs_flush_wait. */
static int finish_sent(PgStore *s) {
  int in_batch = s->base.in_batch, begun = s->begun, rc;
  if (!s->sent) return 0;
  s->sent = 0;
  /* Read as the batch it was: its failure left the server's transaction
  ** aborted, and rolls it back with the rows kept for the next. */
  s->base.in_batch = 1;
  s->begun = 1;
  rc = read_pipeline(s, NULL, 0);
  if (rc != 0) return keep_sent_failure(s, rc);
  s->base.in_batch = in_batch;
  s->begun = begun;
  return 0;
}

int tide_pgs_flush_wait(PgStore *s) {
  int rc = finish_sent(s);
  if (rc == 0 && s->sent_rc != 0) {
    rc = s->sent_rc;
    tide_pgs_fail(s, rc, "%s", s->sent_msg ? s->sent_msg : "cannot commit");
  }
  return rc;
}

int tide_pgs_maybe_flush(PgStore *s) {
  return tide_store_batch_due(&s->base) || tide_pgs_bulk_memos_due(s)
         ? tide_pgs_flush(s) : 0;
}

int tide_pgs_rollback(PgStore *s) {
  int rc;
  tide_pgs_release(s);
  tide_pgs_ahead_forget(s);
  if (!s->base.in_batch) return sync_pipeline(s, NULL);
  rc = send_plain(s, "ROLLBACK", "cannot roll back");
  s->base.in_batch = 0;
  s->base.batch_writes = 0;
  if (rc == 0) rc = sync_pipeline(s, NULL);
  return rc;
}

/* ---- Space: the server's ---- */

/* The pages of the schema's tables and indexes, as the server counts
** them; none is counted free, as the server reuses them itself. */
int tide_pgs_space(PgStore *s, tide_StoreSpace *space) {
  PGresult *r;
  PgParams p = {0};
  int rc;
  memset(space, 0, sizeof *space);
  pg_param_bytes(&p, s->schema, strlen(s->schema));
  rc = tide_pgs_read(s, PG_SPACE,
                     "SELECT current_setting('block_size')::int8,"
                     " coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8"
                     " FROM pg_class c JOIN pg_namespace n"
                     " ON n.oid = c.relnamespace"
                     " WHERE n.nspname = convert_from($1::bytea, 'UTF8')"
                     " AND c.relkind IN ('r', 'S')",
                     &p, "cannot read its size", &r);
  if (rc) return rc;
  space->page_size = pg_int(r, 0, 0);
  space->pages = space->page_size > 0 ? pg_int(r, 0, 1) / space->page_size
                                      : 0;
  PQclear(r);
  return 0;
}

int tide_pgs_reclaim(PgStore *s, int64_t *freed) {
  if (freed) *freed = 0;
  if (s->flags == TIDE_STORE_READ)
    return tide_pgs_fail(s, TIDE_EINVAL, "%s: state store is open read-only",
                         s->location);
  return tide_pgs_flush(s);
}

int tide_pgs_checkpoint_on(PgStore *s, uv_loop_t *loop) {
  (void)loop;
  if (s->flags == TIDE_STORE_READ) return TIDE_EINVAL;
  return 0;
}

/* ---- The location ---- */

/* Whether c may be in a schema name tide makes: lowercase letters,
** digits and underscores, so that it never needs quoting. */
static int schema_char(char c, int first) {
  return (c >= 'a' && c <= 'z') || c == '_' || (!first && c >= '0' &&
                                                c <= '9');
}

/* Checks a schema name of n bytes at p and copies it into schema. */
static int take_schema(const char *p, size_t n, char *schema,
                       const char **error) {
  size_t i;
  if (n == 0 || n >= TIDE_PG_SCHEMA_SIZE) {
    *error = "state store location: the schema must be 1 to 63 "
             "characters long";
    return TIDE_EINVAL;
  }
  for (i = 0; i < n; i++)
    if (!schema_char(p[i], i == 0)) {
      *error = "state store location: the schema must be lowercase "
               "letters, digits and underscores, not starting with a "
               "digit";
      return TIDE_EINVAL;
    }
  memcpy(schema, p, n);
  schema[n] = '\0';
  return 0;
}

static int blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The keyword=value form: pairs apart by blanks, a value bare (a
** backslash escapes the next character) or in single quotes (inside
** which \' and \\ are escapes), as libpq reads it. Each pair is copied
** as written, bar the blanks around its '='; schema= is taken out of
** what libpq reads, and password= out of the public form. */
static int split_keywords(const char *p, char *conninfo,
                          char *public_location, char *schema,
                          const char **error) {
  size_t c = 0, l = 0;
  for (;;) {
    const char *key, *value;
    size_t key_len, value_len;
    while (blank(*p)) p++;
    if (*p == '\0') break;
    for (key = p; *p && *p != '=' && !blank(*p); p++) {}
    key_len = (size_t)(p - key);
    while (blank(*p)) p++;
    if (*p != '=' || key_len == 0) {
      *error = "state store location: expected keyword=value pairs "
               "(host=/run/postgresql dbname=docs) or a postgresql:// URI";
      return TIDE_EINVAL;
    }
    for (p++; blank(*p); p++) {}
    value = p;
    if (*p == '\'') {
      for (p++; *p && *p != '\''; p++)
        if (*p == '\\' && p[1]) p++;
      if (*p != '\'') {
        *error = "state store location: a quoted value has no closing "
                 "quote";
        return TIDE_EINVAL;
      }
      /* A blank before the next pair: the copy puts one there, and the
      ** copies take no more room than the location. */
      if (*++p != '\0' && !blank(*p)) {
        *error = "state store location: a quoted value must be followed "
                 "by a blank";
        return TIDE_EINVAL;
      }
    } else {
      for (; *p && !blank(*p); p++)
        if (*p == '\\' && p[1]) p++;
    }
    value_len = (size_t)(p - value);
    if (key_len == 6 && memcmp(key, "schema", 6) == 0) {
      int quoted = value_len >= 2 && value[0] == '\'';
      int rc = take_schema(value + quoted, value_len - 2 * (size_t)quoted,
                           schema, error);
      if (rc != 0) return rc;
    } else {
      if (c > 0) conninfo[c++] = ' ';
      memcpy(conninfo + c, key, key_len);
      conninfo[c + key_len] = '=';
      memcpy(conninfo + c + key_len + 1, value, value_len);
      c += key_len + 1 + value_len;
    }
    if (!(key_len == 8 && memcmp(key, "password", 8) == 0)) {
      if (l > 0) public_location[l++] = ' ';
      memcpy(public_location + l, key, key_len);
      public_location[l + key_len] = '=';
      memcpy(public_location + l + key_len + 1, value, value_len);
      l += key_len + 1 + value_len;
    }
  }
  conninfo[c] = '\0';
  public_location[l] = '\0';
  return 0;
}

int tide_pgs_split_location(const char *location, char *conninfo,
                            char *public_location, char *schema,
                            const char **error) {
  size_t len = strlen(location), c, l;
  const char *auth = strncmp(location, "postgresql://", 13) == 0
                         ? location + 13
                     : strncmp(location, "postgres://", 11) == 0
                         ? location + 11 : NULL;
  const char *end, *query, *p, *userinfo;
  const char *stop;
  int c_first = 1, l_first = 1;
  *error = NULL;
  strcpy(schema, "tide");
  if (auth == NULL)
    return split_keywords(location, conninfo, public_location, schema,
                          error);
  end = auth + strcspn(auth, "/?");
  query = end + strcspn(end, "?");
  /* Up to the query, whole for libpq; without the password for messages:
  ** user:password@host becomes user@host. */
  c = (size_t)(query - location);
  memcpy(conninfo, location, c);
  for (userinfo = end; userinfo > auth && userinfo[-1] != '@'; userinfo--) {}
  p = userinfo > auth ? memchr(auth, ':', (size_t)(userinfo - 1 - auth))
                      : NULL;
  if (p) {
    l = (size_t)(p - location);
    memcpy(public_location, location, l);
    memcpy(public_location + l, userinfo - 1,
           (size_t)(query - (userinfo - 1)));
    l += (size_t)(query - (userinfo - 1));
  } else {
    l = c;
    memcpy(public_location, location, l);
  }
  /* The parameters one by one: schema= is tide's, password= is secret. */
  for (p = query + 1; *query; p = stop + 1) {
    size_t n;
    stop = p + strcspn(p, "&");
    n = (size_t)(stop - p);
    if (n >= 7 && memcmp(p, "schema=", 7) == 0) {
      int rc = take_schema(p + 7, n - 7, schema, error);
      if (rc != 0) return rc;
    } else if (n > 0) {
      conninfo[c++] = c_first ? '?' : '&';
      c_first = 0;
      memcpy(conninfo + c, p, n);
      c += n;
    }
    if (n > 0 && !(n >= 9 && memcmp(p, "password=", 9) == 0)) {
      public_location[l++] = l_first ? '?' : '&';
      l_first = 0;
      memcpy(public_location + l, p, n);
      l += n;
    }
    if (*stop == '\0') break;
  }
  conninfo[c] = '\0';
  public_location[l] = '\0';
  (void)len;
  return 0;
}

/* Reads location into s->conninfo, s->location and s->schema. */
static int parse_location(PgStore *s, const char *location) {
  size_t len = strlen(location);
  const char *error;
  if ((s->conninfo = s->base.alloc(s->base.ud, NULL, 0, len + 1)) == NULL ||
      (s->location = s->base.alloc(s->base.ud, NULL, 0, len + 1)) == NULL)
    return nomem(s);
  s->conninfo_size = s->location_size = len + 1;
  if (tide_pgs_split_location(location, s->conninfo, s->location, s->schema,
                              &error) != 0) {
    s->location[0] = '\0';
    return tide_pgs_fail(s, TIDE_EINVAL, "%s", error);
  }
  return 0;
}

/* ---- Opening ---- */

/* Runs sql (no parameters, any number of statements) before the pipeline
** starts; 0 or the failure. */
static int exec_setup(PgStore *s, const char *sql, const char *what) {
  PGresult *r = PQexec(s->conn, sql);
  int rc = 0;
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    rc = tide_pgs_fail_pg(s, r, what, "");
  PQclear(r);
  return rc;
}

/* Runs a one-parameter query (the schema's name) before the pipeline
** starts; *out receives its result. */
static int query_setup(PgStore *s, const char *sql, const char *what,
                       PGresult **out) {
  const char *values[1] = { s->schema };
  PGresult *r = PQexecParams(s->conn, sql, 1, NULL, values, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    int rc = tide_pgs_fail_pg(s, r, what, "");
    PQclear(r);
    return rc;
  }
  *out = r;
  return 0;
}

/* The writer lock: an advisory lock of the session, keyed by the schema.
** A second writer hears the first's pid from its application_name. */
#define LOCK_KEYS "1414087749, hashtext($1::text)"

static int lock_writer(PgStore *s) {
  PGresult *r;
  int rc = query_setup(s, "SELECT pg_try_advisory_lock(" LOCK_KEYS ")",
                       "cannot take the writer lock", &r);
  int taken;
  long pid = 0;
  if (rc) return rc;
  taken = PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  if (taken) {
    s->locked = 1;
    return 0;
  }
  if (query_setup(s, "SELECT a.application_name FROM pg_locks l"
                  " JOIN pg_stat_activity a ON a.pid = l.pid"
                  " WHERE l.locktype = 'advisory' AND l.granted"
                  " AND l.classid = 1414087749"
                  " AND l.objid = (hashtext($1::text)::int8"
                  " & 4294967295)::oid AND l.objsubid = 2",
                  "cannot take the writer lock", &r) == 0) {
    if (PQntuples(r) > 0 &&
        sscanf(PQgetvalue(r, 0, 0), "tide pid %ld", &pid) != 1)
      pid = 0;
    PQclear(r);
  }
  if (pid > 0)
    return tide_pgs_fail(s, TIDE_ELOCKED,
                         "%s: locked by another running update (pid %ld)",
                         s->location, pid);
  return tide_pgs_fail(s, TIDE_ELOCKED,
                       "%s: locked by another running update", s->location);
}

/* The server's notices (a NOTICE of CREATE ... IF NOT EXISTS) are not
** the store's to print. */
static void ignore_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static int connect_server(PgStore *s) {
  char name[64], sql[128];
  const char *keys[] = { "dbname", "fallback_application_name", NULL };
  const char *values[] = { s->conninfo, name, NULL };
  const char *why;
  if (tide_pq_need(&why) != 0)
    return tide_pgs_fail(s, TIDE_EIO, "%s", why);
  snprintf(name, sizeof name, "tide pid %ld", (long)getpid());
  s->conn = PQconnectdbParams(keys, values, 1);
  if (s->conn == NULL) return nomem(s);
  if (PQstatus(s->conn) != CONNECTION_OK)
    return tide_pgs_fail_pg(s, NULL, "cannot connect", "");
  PQsetNoticeProcessor(s->conn, ignore_notice, NULL);
  /* The schema's name needs no quoting (schema_char). Bitmap scans off:
  ** the store's statements are key lookups and ordered scans, and on a
  ** table just filled (its statistics not yet made) the planner would
  ** read every ready work item into a bitmap and sort it at each claim,
  ** where an ordered index scan reads the few it claims. */
  snprintf(sql, sizeof sql, "SET search_path TO %s; SET enable_bitmapscan"
           " = off", s->schema);
  return exec_setup(s, sql, "cannot open");
}

static int open_server(PgStore *s) {
  int rc = connect_server(s), empty;
  if (rc) return rc;
  empty = tide_pgs_schema_check(s);
  if (empty < 0) return empty;
  if (s->flags != TIDE_STORE_WRITE) {
    if (empty == 1)
      return tide_pgs_fail(s, TIDE_ENOTFOUND, "%s: no such state store",
                           s->location);
  } else {
    /* Checked again once locked: another writer may have made it. */
    if ((rc = lock_writer(s)) != 0) return rc;
    empty = tide_pgs_schema_check(s);
    if (empty < 0) return empty;
    if (empty == 1 && (rc = tide_pgs_schema_create(s)) != 0) return rc;
    if ((rc = tide_pgs_schema_upgrade(s)) != 0) return rc;
  }
  /* The transaction stays open across the pipeline's synchronisations:
  ** every read sees what was committed at the first. */
  if (s->snapshot &&
      (rc = exec_setup(s, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                       "cannot open")) != 0)
    return rc;
  if (!PQenterPipelineMode(s->conn))
    return tide_pgs_fail_pg(s, NULL, "cannot open", "");
  return 0;
}

/* A store not connected yet, in *out (NULL when memory ran out). */
static int make_store(PgStore **out, tide_Alloc alloc, void *ud) {
  PgStore *s;
  *out = NULL;
  if (alloc == NULL) alloc = tide_alloc_default;
  s = alloc(ud, NULL, 0, sizeof *s);
  if (s == NULL) return TIDE_ENOMEM;
  memset(s, 0, sizeof *s);
  s->base.backend = TIDE_STORE_POSTGRES;
  s->base.alloc = alloc;
  s->base.ud = ud;
  s->base.errmsg = "";
  tide_hashmap_init(&s->ref_owners, alloc, ud);
  tide_hashmap_init(&s->memos_kept, alloc, ud);
  tide_hashmap_init(&s->components_kept, alloc, ud);
  tide_hashmap_init(&s->ahead, alloc, ud);
  tide_store_set_batch_limits(&s->base, 0, 0);
  *out = s;
  return 0;
}

static int check_flags(PgStore *s, int flags) {
  if (flags != TIDE_STORE_READ && flags != TIDE_STORE_WRITE &&
      flags != TIDE_STORE_SHARED)
    return tide_pgs_fail(s, TIDE_EINVAL, "%s: invalid open flags %d",
                         s->location, flags);
  s->flags = flags;
  return 0;
}

int tide_pgs_open(PgStore **out, const char *location, int flags,
                  tide_Alloc alloc, void *ud) {
  PgStore *s;
  int rc;
  if (out == NULL) return TIDE_EINVAL;
  if ((rc = make_store(out, alloc, ud)) != 0) return rc;
  s = *out;
  if ((rc = parse_location(s, location)) != 0 ||
      (rc = check_flags(s, flags)) != 0)
    return rc;
  return open_server(s);
}

/* Copies n bytes of from into *to, allocated by s. */
static int copy_owned(PgStore *s, char **to, size_t *size, const char *from,
                      size_t n) {
  if ((*to = s->base.alloc(s->base.ud, NULL, 0, n)) == NULL) return nomem(s);
  memcpy(*to, from, n);
  *size = n;
  return 0;
}

int tide_pgs_open_again(PgStore **out, const PgStore *from, int flags) {
  PgStore *s;
  int rc;
  if (out == NULL) return TIDE_EINVAL;
  if ((rc = make_store(out, NULL, NULL)) != 0) return rc;
  s = *out;
  /* What from's open fixed, read only: from may be in use meanwhile. */
  if ((rc = copy_owned(s, &s->conninfo, &s->conninfo_size, from->conninfo,
                       from->conninfo_size)) != 0 ||
      (rc = copy_owned(s, &s->location, &s->location_size, from->location,
                       from->location_size)) != 0)
    return rc;
  memcpy(s->schema, from->schema, sizeof s->schema);
  if ((rc = check_flags(s, flags)) != 0) return rc;
  s->snapshot = flags == TIDE_STORE_READ;
  return open_server(s);
}

/* The generation now: the sequence every committed batch advances. */
static int read_generation(PgStore *s, int64_t *out) {
  PGresult *r;
  int rc = tide_pgs_read(s, PG_READ_GENERATION,
                         "SELECT last_value FROM generation", NULL,
                         "cannot read the store's generation", &r);
  if (rc) return rc;
  *out = PQntuples(r) ? pg_int(r, 0, 0) : 0;
  PQclear(r);
  return 0;
}

int tide_pgs_unlock(PgStore *s) {
  PGresult *r;
  PgParams p = {0};
  int rc;
  if (s->flags != TIDE_STORE_WRITE || !s->locked) return 0;
  if ((rc = tide_pgs_flush(s)) != 0 ||
      (rc = read_generation(s, &s->unlocked_generation)) != 0)
    return rc;
  pg_param_bytes(&p, s->schema, strlen(s->schema));
  p.formats[0] = 0; /* text */
  rc = tide_pgs_read(s, PG_UNLOCK, "SELECT pg_advisory_unlock(" LOCK_KEYS ")",
                     &p, "cannot let the writer lock go", &r);
  if (rc) return rc;
  PQclear(r);
  s->locked = 0;
  return 0;
}

int tide_pgs_relock(PgStore *s, int *changed) {
  PGresult *r;
  PgParams p = {0};
  int64_t now;
  int rc, taken;
  *changed = 0;
  /* A connection a failure of the last cycle found cut (a server
  ** restart): the engine opens the store anew rather than use it. */
  if (PQstatus(s->conn) != CONNECTION_OK)
    return tide_pgs_fail(s, TIDE_EIO, "%s: lost its connection to the "
                         "server", s->location);
  if (s->flags != TIDE_STORE_WRITE || s->locked) return 0;
  pg_param_bytes(&p, s->schema, strlen(s->schema));
  p.formats[0] = 0;
  rc = tide_pgs_read(s, PG_LOCK, "SELECT pg_try_advisory_lock(" LOCK_KEYS
                     ")", &p, "cannot take the writer lock", &r);
  if (rc) return rc;
  taken = PQgetvalue(r, 0, 0)[0] != 0;
  PQclear(r);
  if (!taken)
    return tide_pgs_fail(s, TIDE_ELOCKED,
                         "%s: locked by another running update",
                         s->location);
  s->locked = 1;
  if ((rc = read_generation(s, &now)) != 0) return rc;
  *changed = now != s->unlocked_generation;
  return 0;
}

int tide_pgs_close(PgStore *s) {
  int rc = 0;
  if (s == NULL) return 0;
  tide_pgs_release(s);
  if (s->conn && PQpipelineStatus(s->conn) == PQ_PIPELINE_ON) {
    rc = tide_pgs_flush(s);
    if (rc) tide_pgs_rollback(s);
  }
  /* Closing the connection lets the writer lock go. */
  if (s->conn) PQfinish(s->conn);
  if (s->later) PQclear(s->later);
  tide_pgs_ahead_forget(s);
  tide_hashmap_close(&s->ahead);
  tide_pgs_bulk_free(s);
  if (s->sent_msg)
    s->base.alloc(s->base.ud, s->sent_msg, s->sent_msg_size, 0);
  if (s->waits)
    s->base.alloc(s->base.ud, s->waits, s->waits_cap * sizeof *s->waits, 0);
  if (s->conninfo) s->base.alloc(s->base.ud, s->conninfo, s->conninfo_size,
                                 0);
  if (s->location) s->base.alloc(s->base.ud, s->location, s->location_size,
                                 0);
  tide_store_base_close(&s->base);
  s->base.alloc(s->base.ud, s, sizeof *s, 0);
  return rc;
}
