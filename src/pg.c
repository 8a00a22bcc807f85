/* One PostgreSQL query on a libuv loop through libpq (pg.h). */
#include <stdio.h>
#include <string.h>

#include "pg.h"
#include "pq_api.h"

enum { CONNECTING, FLUSHING, READING, COPYING, OVER };

typedef struct {
  uv_poll_t poll;
  tide_PgQuery *q;
} Watch;

static char *copy(tide_PgQuery *q, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = q->alloc(q->ud, NULL, 0, n);
  if (p) memcpy(p, s, n);
  return p;
}

static void release(tide_PgQuery *q, char *s) {
  if (s) q->alloc(q->ud, s, strlen(s) + 1, 0);
}

/* The message, with the password's text (when there is one) replaced. */
static void set_message(tide_PgQuery *q, const char *text) {
  char *at;
  size_t n;
  snprintf(q->message, sizeof q->message, "%s", text);
  n = strlen(q->message);
  while (n > 0 && (q->message[n - 1] == '\n' || q->message[n - 1] == ' '))
    q->message[--n] = '\0';
  if (q->password == NULL || q->password[0] == '\0') return;
  while ((at = strstr(q->message, q->password)) != NULL) {
    size_t pl = strlen(q->password), rest = strlen(at + pl);
    memmove(at + 3, at + pl, rest + 1);
    memcpy(at, "***", 3);
  }
}

static void watch_closed(uv_handle_t *h) {
  Watch *w = h->data;
  tide_PgQuery *q = w->q;
  q->alloc(q->ud, w, sizeof *w, 0);
  if (--q->closing == 0 && q->ended) q->done(q);
}

static void unwatch(tide_PgQuery *q) {
  Watch *w = q->watch;
  if (w == NULL) return;
  q->watch = NULL;
  q->fd = -1;
  uv_poll_stop(&w->poll);
  q->closing++;
  uv_close((uv_handle_t *)&w->poll, watch_closed);
}

static int start_connecting(tide_PgQuery *q);

/* A kept connection the server closed while it was idle (a restart)
** fails the query it is given before any result comes: the query is sent
** again once, on a new connection. */
static int retry_fresh(tide_PgQuery *q) {
  if (!q->reused || q->retried || q->conn == NULL || q->conninfo == NULL ||
      PQstatus(q->conn) != CONNECTION_BAD || q->result != NULL ||
      q->copy_at > 0)
    return 0;
  q->retried = 1;
  q->reused = 0;
  unwatch(q);
  PQfinish(q->conn);
  q->conn = NULL;
  q->message[0] = q->sqlstate[0] = '\0';
  if (start_connecting(q) == 0) return 1;
  set_message(q, "out of memory");
  return 0;
}

/* The query is over: its handle closes, then done runs. */
static void end(tide_PgQuery *q, int ok) {
  if (q->ended) return;
  if (!ok && retry_fresh(q)) return;
  q->ended = 1;
  q->ok = ok;
  q->phase = OVER;
  unwatch(q);
  if (q->closing == 0) q->done(q);
}

static void fail(tide_PgQuery *q, const char *text) {
  set_message(q, text);
  end(q, 0);
}

static void step(tide_PgQuery *q, int readable);

static void on_poll(uv_poll_t *h, int status, int events) {
  Watch *w = h->data;
  (void)status;
  if (w->q->ended || w != w->q->watch) return;
  step(w->q, (events & UV_READABLE) != 0);
}

/* Waits for events on the connection's socket (another one than before
** when libpq moved to another while connecting). */
static void watch(tide_PgQuery *q, int events) {
  int fd = PQsocket(q->conn);
  Watch *w = q->watch;
  if (fd < 0) {
    fail(q, "the connection has no socket");
    return;
  }
  if (w == NULL || q->fd != fd) {
    unwatch(q);
    w = q->alloc(q->ud, NULL, 0, sizeof *w);
    if (w == NULL) {
      fail(q, "out of memory");
      return;
    }
    if (uv_poll_init_socket(q->loop, &w->poll, fd) != 0) {
      q->alloc(q->ud, w, sizeof *w, 0);
      fail(q, "cannot watch the connection's socket");
      return;
    }
    w->poll.data = w;
    w->q = q;
    q->watch = w;
    q->fd = fd;
  }
  uv_poll_start(&w->poll, events, on_poll);
}

static void flush(tide_PgQuery *q);

/* Sends the data of the COPY the server waits for, then its end: the
** next of the caller's copies, or an error when there is none left (the
** server then fails the COPY). In non-blocking mode libpq queues the data
** in its buffer; flush sends it as the socket takes it. */
static void put_copy(tide_PgQuery *q) {
  PGconn *c = q->conn;
  int r;
  if (q->copy_at < q->ncopies) {
    const tide_PgCopy *d = &q->copies[q->copy_at++];
    size_t at = 0;
    while (at < d->len) {
      size_t n = d->len - at < 65536 ? d->len - at : 65536;
      if (PQputCopyData(c, d->data + at, (int)n) != 1) {
        fail(q, PQerrorMessage(c));
        return;
      }
      at += n;
    }
    r = PQputCopyEnd(c, NULL);
  } else {
    r = PQputCopyEnd(c, "the script has more COPY statements than data");
  }
  if (r != 1) {
    fail(q, PQerrorMessage(c));
    return;
  }
  q->phase = FLUSHING;
  flush(q);
}

/* Reads what has come; at the last result the query is over. */
static void read_results(tide_PgQuery *q) {
  PGconn *c = q->conn;
  if (!PQconsumeInput(c)) {
    fail(q, PQerrorMessage(c));
    return;
  }
  while (!PQisBusy(c)) {
    PGresult *r = PQgetResult(c);
    if (r == NULL) {
      if (q->message[0]) end(q, 0);
      else if (q->result == NULL) fail(q, "the server sent no result");
      else end(q, 1);
      return;
    }
    switch (PQresultStatus(r)) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
    case PGRES_EMPTY_QUERY:
      if (q->result) PQclear(q->result);
      q->result = r;
      break;
    case PGRES_COPY_IN:
      PQclear(r);
      if (q->stop_at_copy) {
        /* The caller sends the data (tide_pg_query_take). */
        end(q, 1);
        return;
      }
      if (q->simple) {
        q->phase = COPYING;
        put_copy(q);
        return;
      }
      /* fall through */
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH:
      /* The connection is in a COPY no one will end: it is dropped. */
      PQclear(r);
      fail(q, "COPY is not a statement a query can run");
      return;
    default:
      if (q->message[0] == '\0') {
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        set_message(q, PQresultErrorMessage(r));
        snprintf(q->sqlstate, sizeof q->sqlstate, "%s", code ? code : "");
      }
      PQclear(r);
      break;
    }
  }
  watch(q, UV_READABLE);
}

/* Sends what libpq holds: the query's bytes may not fit the socket. */
static void flush(tide_PgQuery *q) {
  int r = PQflush(q->conn);
  if (r < 0) {
    fail(q, PQerrorMessage(q->conn));
  } else if (r > 0) {
    watch(q, UV_READABLE | UV_WRITABLE);
  } else {
    /* What came while sending (an error the server raised early) is
    ** already read into libpq's buffer: no socket event would tell. */
    q->phase = READING;
    read_results(q);
  }
}

static void send_query(tide_PgQuery *q) {
  int sent;
  if (PQsetnonblocking(q->conn, 1) != 0) {
    fail(q, PQerrorMessage(q->conn));
    return;
  }
  sent = q->simple ? PQsendQuery(q->conn, q->sql)
                   : PQsendQueryParams(q->conn, q->sql, q->nparams, NULL,
                                       (const char *const *)q->params, NULL,
                                       NULL, 0);
  if (!sent) {
    fail(q, PQerrorMessage(q->conn));
    return;
  }
  q->phase = FLUSHING;
  flush(q);
}

/* Ends the COPY the connection is in and reads its outcome. */
static void end_copy(tide_PgQuery *q) {
  if (PQsetnonblocking(q->conn, 1) != 0 || PQputCopyEnd(q->conn, NULL) != 1) {
    fail(q, PQerrorMessage(q->conn));
    return;
  }
  q->phase = FLUSHING;
  flush(q);
}

static void step(tide_PgQuery *q, int readable) {
  switch (q->phase) {
  case CONNECTING:
    switch (PQconnectPoll(q->conn)) {
    case PGRES_POLLING_OK: send_query(q); break;
    case PGRES_POLLING_READING: watch(q, UV_READABLE); break;
    case PGRES_POLLING_WRITING: watch(q, UV_WRITABLE); break;
    default: fail(q, PQerrorMessage(q->conn)); break;
    }
    break;
  case FLUSHING:
    if (readable && !PQconsumeInput(q->conn)) {
      fail(q, PQerrorMessage(q->conn));
      return;
    }
    flush(q);
    break;
  case READING:
    read_results(q);
    break;
  case COPYING:
    flush(q);
    break;
  default:
    break;
  }
}

/* The password conninfo holds (a copy), or none: 0, 1 when libpq cannot
** read conninfo, or TIDE_ENOMEM. */
static int find_password(tide_PgQuery *q, const char *conninfo) {
  char *err = NULL;
  PQconninfoOption *o = PQconninfoParse(conninfo, &err), *i;
  if (o == NULL) {
    PQfreemem(err);
    return 1;
  }
  for (i = o; i->keyword; i++)
    if (strcmp(i->keyword, "password") == 0 && i->val && i->val[0]) {
      q->password = copy(q, i->val);
      if (q->password == NULL) {
        PQconninfoFree(o);
        return TIDE_ENOMEM;
      }
    }
  PQconninfoFree(o);
  return 0;
}

/* Whether a kept connection can take a query: the server may have closed
** it since (a restart, an idle timeout), which reading what is pending
** finds out without blocking (libpq's sockets never block). */
static int still_usable(PGconn *c) {
  return PQstatus(c) == CONNECTION_OK && PQconsumeInput(c) &&
         PQstatus(c) == CONNECTION_OK &&
         PQtransactionStatus(c) == PQTRANS_IDLE && !PQisBusy(c);
}

/* Notices (a table that was not there to drop) are not errors: libpq
** would print them on stderr. */
static void ignore_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* Connects (or takes the kept connection) and sends once connected. */
static int connect_and_send(tide_PgQuery *q, const char *conninfo,
                            void *reuse) {
  const char *why;
  int rc;
  /* A connection kept from before means libpq is loaded. */
  if (reuse == NULL && tide_pq_need(&why) != 0) {
    fail(q, why);
    return 0;
  }
  rc = find_password(q, conninfo);
  if (rc == TIDE_ENOMEM) {
    if (reuse) PQfinish(reuse);
    return rc;
  }
  if (rc == 1) {
    if (reuse) PQfinish(reuse);
    fail(q, "the connection string is not one libpq reads (check its "
         "keywords and quoting)");
    return 0;
  }
  if ((q->conninfo = copy(q, conninfo)) == NULL) {
    if (reuse) PQfinish(reuse);
    return TIDE_ENOMEM;
  }
  if (reuse && q->end_copy) {
    q->conn = reuse; /* in its COPY: not kept, never sent again */
    end_copy(q);
    return 0;
  }
  if (reuse && still_usable(reuse)) {
    q->conn = reuse;
    q->reused = 1;
    send_query(q);
    return 0;
  }
  if (reuse) PQfinish(reuse);
  return start_connecting(q);
}

static int start_connecting(tide_PgQuery *q) {
  q->conn = PQconnectStart(q->conninfo);
  if (q->conn == NULL) return TIDE_ENOMEM;
  PQsetNoticeProcessor(q->conn, ignore_notice, NULL);
  if (PQstatus(q->conn) == CONNECTION_BAD) {
    fail(q, PQerrorMessage(q->conn));
    return 0;
  }
  /* As if PQconnectPoll had last said PGRES_POLLING_WRITING. */
  q->phase = CONNECTING;
  watch(q, UV_WRITABLE);
  return 0;
}

/* Clears q but for what its caller set: done, the wait, a kept conn. */
static void *reset(tide_PgQuery *q, uv_loop_t *loop, tide_Alloc alloc,
                   void *ud) {
  void (*done)(tide_PgQuery *) = q->done;
  tide_Wait w = q->w;
  void *reuse = q->conn;
  memset(q, 0, sizeof *q);
  q->w = w;
  q->done = done;
  q->loop = loop;
  q->alloc = alloc;
  q->ud = ud;
  q->fd = -1;
  return reuse;
}

int tide_pg_script_start(tide_PgQuery *q, uv_loop_t *loop, tide_Alloc alloc,
                         void *ud, const char *conninfo, const char *sql,
                         int ncopies, const tide_PgCopy *copies) {
  void *reuse = reset(q, loop, alloc, ud);
  q->simple = 1;
  q->copies = copies;
  q->ncopies = ncopies;
  q->sql = copy(q, sql);
  if (q->sql == NULL) {
    if (reuse) PQfinish(reuse);
    return TIDE_ENOMEM;
  }
  return connect_and_send(q, conninfo, reuse);
}

int tide_pg_copy_begin(tide_PgQuery *q, uv_loop_t *loop, tide_Alloc alloc,
                       void *ud, const char *conninfo, const char *sql) {
  void *reuse = reset(q, loop, alloc, ud);
  q->simple = q->stop_at_copy = 1;
  if ((q->sql = copy(q, sql)) == NULL) {
    if (reuse) PQfinish(reuse);
    return TIDE_ENOMEM;
  }
  return connect_and_send(q, conninfo, reuse);
}

int tide_pg_copy_end(tide_PgQuery *q, uv_loop_t *loop, tide_Alloc alloc,
                     void *ud, const char *conninfo) {
  void *conn = reset(q, loop, alloc, ud);
  q->end_copy = 1;
  if (conn == NULL) {
    fail(q, "no COPY is under way on the connection");
    return 0;
  }
  if ((q->sql = copy(q, "")) == NULL) {
    PQfinish(conn);
    return TIDE_ENOMEM;
  }
  return connect_and_send(q, conninfo, conn);
}

/* In blocking mode libpq sends what it holds as soon as it holds 8 KiB,
** waiting for the socket when the server is behind, so that its buffer
** stays small: in non-blocking mode it would keep the whole COPY and move
** what is left to the buffer's start at every partial send. The server
** reads what the socket holds while the caller makes the next data. */
int tide_pg_copy_put(void *conn, const char *data, size_t len, char *out,
                     size_t size) {
  int ok = PQsetnonblocking(conn, 0) == 0 &&
           PQputCopyData(conn, data, (int)len) == 1;
  if (!ok) snprintf(out, size, "%s", PQerrorMessage(conn));
  PQsetnonblocking(conn, 1);
  return ok;
}

void *tide_pg_query_take(tide_PgQuery *q) {
  void *c = q->conn;
  q->conn = NULL;
  return c;
}

int tide_pg_query_start(tide_PgQuery *q, uv_loop_t *loop, tide_Alloc alloc,
                        void *ud, const char *conninfo, const char *sql,
                        int nparams, const char *const *params) {
  void *reuse = reset(q, loop, alloc, ud);
  int i;
  if ((q->sql = copy(q, sql)) == NULL) goto nomem;
  if (nparams > 0) {
    q->params = alloc(ud, NULL, 0, (size_t)nparams * sizeof *q->params);
    if (q->params == NULL) goto nomem;
    memset(q->params, 0, (size_t)nparams * sizeof *q->params);
    q->nparams = nparams;
    for (i = 0; i < nparams; i++)
      if (params[i] && (q->params[i] = copy(q, params[i])) == NULL)
        goto nomem;
  }
  return connect_and_send(q, conninfo, reuse);
nomem:
  if (reuse) PQfinish(reuse);
  return TIDE_ENOMEM;
}

void tide_pg_query_cancel(tide_PgQuery *q) {
  if (!q->ended) fail(q, "the query was cancelled");
}

void *tide_pg_query_keep(tide_PgQuery *q) {
  PGconn *c = q->conn;
  if (!q->ok || c == NULL || PQstatus(c) != CONNECTION_OK ||
      PQtransactionStatus(c) != PQTRANS_IDLE || PQisBusy(c))
    return NULL;
  q->conn = NULL;
  return c;
}

void tide_pg_conn_free(void *conn) {
  if (conn) PQfinish(conn);
}

void tide_pg_query_close(tide_PgQuery *q) {
  int i;
  if (q->result) PQclear(q->result);
  if (q->conn) PQfinish(q->conn);
  q->result = q->conn = NULL;
  release(q, q->sql);
  for (i = 0; i < q->nparams; i++) release(q, q->params[i]);
  if (q->params)
    q->alloc(q->ud, q->params, (size_t)q->nparams * sizeof *q->params, 0);
  release(q, q->password);
  release(q, q->conninfo);
  q->sql = q->password = q->conninfo = NULL;
  q->params = NULL;
  q->nparams = 0;
}

int tide_pg_identity(const char *conninfo, char *out, size_t size) {
  char *err = NULL;
  PQconninfoOption *given, *defaults, *i;
  const char *host = NULL, *port = NULL, *db = NULL, *user = NULL, *why;
  if (tide_pq_need(&why) != 0) {
    snprintf(out, size, "%s", why);
    return 0;
  }
  given = PQconninfoParse(conninfo, &err);
  if (given == NULL) {
    PQfreemem(err);
    snprintf(out, size, "the connection string is not one libpq reads "
             "(check its keywords and quoting)");
    return 0;
  }
  defaults = PQconndefaults();
  for (i = given; i->keyword; i++) {
    const char *v = i->val && i->val[0] ? i->val : NULL;
    if (!v) continue;
    if (strcmp(i->keyword, "host") == 0) host = v;
    else if (strcmp(i->keyword, "port") == 0) port = v;
    else if (strcmp(i->keyword, "dbname") == 0) db = v;
    else if (strcmp(i->keyword, "user") == 0) user = v;
  }
  for (i = defaults; i && i->keyword; i++) {
    const char *v = i->val && i->val[0] ? i->val : NULL;
    if (!v) continue;
    if (!host && strcmp(i->keyword, "host") == 0) host = v;
    else if (!port && strcmp(i->keyword, "port") == 0) port = v;
    else if (!db && strcmp(i->keyword, "dbname") == 0) db = v;
    else if (!user && strcmp(i->keyword, "user") == 0) user = v;
  }
  snprintf(out, size, "%s@%s:%s/%s", user ? user : "", host ? host :
           "/var/run/postgresql", port ? port : "5432", db ? db : user ?
           user : "");
  PQconninfoFree(given);
  if (defaults) PQconninfoFree(defaults);
  return 1;
}
