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
** tide_pg_query_close then frees the result and the connection. One
** connection per query: the caller that runs many keeps its own (a later
** step).
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
  void (*done)(tide_PgQuery *q);
  char message[512];          /* why it failed, scrubbed */
};

/* Starts q on loop: conninfo (a libpq connection string or URI; empty:
** the PG* environment variables), sql with nparams text parameters
** ($1..$n; NULL is SQL NULL). q->done must be set; it runs once the query
** is over. 0, or TIDE_ENOMEM (q->done does not run; q must be closed). */
int tide_pg_query_start(tide_PgQuery *q, uv_loop_t *loop, tide_Alloc alloc,
                        void *ud, const char *conninfo, const char *sql,
                        int nparams, const char *const *params);
/* Ends q early if it is under way (its done callback follows once its
** handle is closed). */
void tide_pg_query_cancel(tide_PgQuery *q);
/* Frees q's result, connection and copies (not q). Accepts a query that
** failed to start; q must be over. */
void tide_pg_query_close(tide_PgQuery *q);

/* The server conninfo names, "user@host:port/dbname" with libpq's
** defaults and the PG* variables applied, written to out; or 0 with a
** message in out when libpq cannot read conninfo (not quoting it). */
int tide_pg_identity(const char *conninfo, char *out, size_t size);

#endif
