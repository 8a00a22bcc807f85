/*
** One PostgreSQL query on a libuv loop through libpq's asynchronous API:
** no thread, no blocking call. The connection is made with
** PQconnectStart and PQconnectPoll, the query sent with
** PQsendQueryParams and read with PQconsumeInput and PQgetResult; the
** loop watches the connection's socket (a uv_poll_t, made again when
** libpq moves to another socket while it connects) for what libpq waits
** for next.
**
** A query (tide_PgQuery) is the caller's struct and begins with a
** tide_Wait, so that a task can wait on it (scheduler.h). Its lifetime:
** tide_pg_query_start copies what it needs and starts; when the query is
** over (a result, an error, or tide_pg_query_cancel) and its handles are
** closed, its done callback runs once from a loop callback (or from
** tide_pg_query_start itself, for a connection string libpq cannot read);
** tide_pg_query_close then frees the result and the connection.
**
** Kept connections: a caller that runs many queries sets q->conn to a
** connection an earlier query gave up (tide_pg_query_keep) before it
** starts the next; the query then skips connecting. A kept connection is
** checked before it is used (one the server closed since is dropped and a
** new one made; one that fails the query before any result, the server
** having closed it meanwhile, has the query sent again, once, on a new
** connection), and is only given up when it is idle: no transaction
** open, nothing unread.
**
** Scripts: tide_pg_script_start sends statements separated by semicolons
** in one message (libpq's simple protocol, no parameters); each `COPY ...
** FROM STDIN` among them takes the next of the caller's copies as its
** data, so values travel as COPY data, never as SQL. An error stops the
** script where it is (the server skips the rest); the result kept is the
** last statement's.
**
** Secrets: conninfo may hold a password. It is never copied into a
** message: libpq's messages are scrubbed of the password's text, and a
** connection string libpq cannot read is reported without quoting it.
** tide_pg_identity names a server as user@host:port/dbname for messages
** and the store.
*/
#ifndef TIDE_PG_H
#define TIDE_PG_H

#include <stddef.h>

#include <uv.h>

#include "scheduler.h"
#include "tide.h"

typedef struct tide_PgQuery tide_PgQuery;

/* COPY data in PostgreSQL's text format, for one COPY ... FROM STDIN. */
typedef struct tide_PgCopy {
  const char *data;
  size_t len;
} tide_PgCopy;

struct tide_PgQuery {
  tide_Wait w;                /* first: a task waits on the query */
  uv_loop_t *loop;
  tide_Alloc alloc;
  void *ud;
  void *conn;                 /* PGconn, owned */
  void *result;               /* PGresult of the query, owned, once ok */
  char *sql;                  /* owned copies */
  char **params;
  int nparams;
  char *password;             /* owned: to scrub messages; NULL if none */
  int phase;                  /* where the query is (pg.c) */
  int fd;                     /* the socket watched, or -1 */
  void *watch;                /* the poll handle's holder (pg.c) */
  int closing;                /* handles waiting for their close */
  int ok;                     /* the query ran: result is its result */
  int ended;                  /* the outcome is in */
  int simple;                 /* sql is a script (tide_pg_script_start) */
  const struct tide_PgCopy *copies; /* the script's COPY data, borrowed */
  int ncopies, copy_at;       /* how many; the next to send */
  int reused;                 /* conn was kept from an earlier query */
  int retried;                /* sent again on a new connection */
  int stop_at_copy;           /* tide_pg_copy_begin */
  int end_copy;               /* tide_pg_copy_end */
  char *conninfo;             /* owned copy: to connect again */
  void (*done)(tide_PgQuery *q);
  char message[512];          /* why it failed, scrubbed */
  char sqlstate[6];           /* the server's error code, or "" */
};

/* Starts q on loop: conninfo (a libpq connection string or URI; empty:
** the PG* environment variables), sql with nparams text parameters
** ($1..$n; NULL is SQL NULL). q->done must be set; it runs once the query
** is over. 0, or TIDE_ENOMEM (q->done does not run; q must be closed). */
int tide_pg_query_start(tide_PgQuery *q, uv_loop_t *loop, tide_Alloc alloc,
                        void *ud, const char *conninfo, const char *sql,
                        int nparams, const char *const *params);
/* Starts a script on loop (see above): copies (borrowed: they must live
** until q->done runs) feed its COPY statements in order. Otherwise as
** tide_pg_query_start. */
int tide_pg_script_start(tide_PgQuery *q, uv_loop_t *loop, tide_Alloc alloc,
                         void *ud, const char *conninfo, const char *sql,
                         int ncopies, const tide_PgCopy *copies);
/* After q->done: q's connection when the query succeeded and the
** connection is idle (q no longer owns it; the caller frees it with
** tide_pg_conn_free or hands it to the next query as q->conn), else NULL
** (tide_pg_query_close frees it). */
void *tide_pg_query_keep(tide_PgQuery *q);
/*
** A COPY ... FROM STDIN whose data the caller makes as it goes, so that
** the server works on the rows sent while the next are made:
** tide_pg_copy_begin sends sql and is over (ok) once the server waits for
** the data; tide_pg_query_take then gives the connection, in its COPY, to
** the caller, who sends the data with tide_pg_copy_put (1, or 0 with a
** message in out) and ends it with tide_pg_copy_end: a query on that
** connection (q->conn, set by the caller) that is over with the COPY's
** outcome. A connection freed in its COPY ends it on the server, which
** keeps none of its rows.
*/
int tide_pg_copy_begin(tide_PgQuery *q, uv_loop_t *loop, tide_Alloc alloc,
                       void *ud, const char *conninfo, const char *sql);
int tide_pg_copy_put(void *conn, const char *data, size_t len, char *out,
                     size_t size);
int tide_pg_copy_end(tide_PgQuery *q, uv_loop_t *loop, tide_Alloc alloc,
                     void *ud, const char *conninfo);
/* q's connection, whatever its state; q no longer owns it. */
void *tide_pg_query_take(tide_PgQuery *q);
/* Frees a connection tide_pg_query_keep gave. */
void tide_pg_conn_free(void *conn);
/* Ends q early if it is under way (its done callback follows once its
** handle is closed). */
void tide_pg_query_cancel(tide_PgQuery *q);
/* Frees q's result, connection and copies (not q). Accepts a query that
** failed to start; q must be over. */
void tide_pg_query_close(tide_PgQuery *q);

/*
** Waiting for notifications: on a connection that ran LISTEN (kept from
** its query by tide_pg_query_keep), a tide_PgListen waits until the
** connection's socket is readable or timeout_ms pass (-1: no timeout).
** It owns conn while it waits (the caller takes it back after done, or
** tide_pg_listen_close frees it); the caller then reads what came with
** tide_pg_listen_drain. Its done callback runs once, from a loop
** callback, after its handles are closed.
*/
typedef struct tide_PgListen tide_PgListen;

struct tide_PgListen {
  tide_Wait w;                /* first: a task waits on it */
  tide_Alloc alloc;
  void *ud;
  void *conn;                 /* PGconn, owned while waiting */
  uv_poll_t poll;
  uv_timer_t timer;
  int handles;                /* open handles */
  int ended;                  /* the outcome is in */
  int timed_out;
  void (*done)(tide_PgListen *l);
};

/* 0, or a libuv error code (done does not run; close l). */
int tide_pg_listen_start(tide_PgListen *l, uv_loop_t *loop, int timeout_ms);
void tide_pg_listen_cancel(tide_PgListen *l);
/* Frees conn if l still owns it (not l). l must be over or never begun. */
void tide_pg_listen_close(tide_PgListen *l);
/* Reads what the server sent on conn without blocking, and calls each
** with every notification's payload. 1, or 0 when the connection is lost
** (its message, scrubbed of nothing: it holds no password, in out). */
int tide_pg_listen_drain(void *conn, void (*each)(void *arg,
                         const char *payload), void *arg, char *out,
                         size_t size);

/* The server conninfo names, "user@host:port/dbname" with libpq's
** defaults and the PG* variables applied, written to out; or 0 with a
** message in out when libpq cannot read conninfo (not quoting it). */
int tide_pg_identity(const char *conninfo, char *out, size_t size);

#endif
