/*
** Batches of rows written into one table of a connection on a thread of
** the connection's own, so that the caller goes on while SQLite writes
** (the sqlite.table target's apply overlaps the next components).
**
** A batch is begun (the table described, copied), filled row by row (each
** row's values copied, so the caller's may change at once), and sent:
** the thread writes it in one transaction as tide_sqlite_batch_* do
** (sqlite_db.h) and commits, or rolls it all back. The caller learns the
** outcome from tide_sqlite_send_wait, which reports a failure once.
**
** The connection is the thread's from the send until the batch is done:
** the caller settles (waits for it) before any other use of the
** connection; settling keeps the outcome for the next wait. A batch may
** not be begun while the outcome of the last one is unreported (misuse:
** TIDE_EINVAL, the message left as it is), so no failure goes unseen.
**
** Contract: 0 or a negative TIDE_E* code, the message in the sender's
** msg (the connection's message copied, for a failure on the thread).
** The thread allocates only through SQLite's allocator. When the thread
** cannot start, a send writes the batch on the caller's thread.
*/
#ifndef TIDE_SQLITE_SEND_H
#define TIDE_SQLITE_SEND_H

#include "buf.h"
#include "job.h"
#include "sqlite_db.h"

typedef struct tide_SqliteSend {
  tide_SqliteDb *db;     /* borrowed */
  tide_Job job;
  tide_Buf rows;         /* the batch: per row a delete flag, its values */
  tide_Buf names;        /* the table's name and column names */
  tide_Buf meta;         /* the column name pointers, then the key indexes */
  tide_Buf vals;         /* the thread's row of values (ncols) */
  tide_SqliteTable table; /* the batch's table, over names and meta */
  int begun;             /* a batch is being filled */
  int out;               /* a batch is with the thread */
  int unreported;        /* the last batch's outcome is not waited for */
  int rc;                /* the last batch's outcome */
  char msg[TIDE_SQLITE_MSG_SIZE];
} tide_SqliteSend;

void tide_sqlite_send_init(tide_SqliteSend *s, tide_SqliteDb *db,
                           tide_Alloc alloc, void *ud);

/* Begins a batch into table t (copied; t may go once this returns). */
int tide_sqlite_send_begin(tide_SqliteSend *s, const tide_SqliteTable *t);

/* Adds a row: every column's value in column order (ncols), or only the
** key's (nkeys, in key order) when is_delete. The values are copied. */
int tide_sqlite_send_row(tide_SqliteSend *s, int is_delete,
                         const tide_SqlValue *vals);

/* Hands the begun batch to the thread. */
int tide_sqlite_send_go(tide_SqliteSend *s);

/* Waits for the batch with the thread, if any, keeping its outcome. The
** connection is the caller's again on return. */
void tide_sqlite_send_settle(tide_SqliteSend *s);

/* Settles, then reports the last batch's outcome (0 when it is reported
** already, or none was sent) and forgets it. */
int tide_sqlite_send_wait(tide_SqliteSend *s);

/* Settles, stops the thread and frees the buffers; a batch being filled
** is dropped. The connection is left open. */
void tide_sqlite_send_close(tide_SqliteSend *s);

#endif
