/*
** A small layer over SQLite for the SQLite connector: the table target
** (`sqlite.table`) and the query source (`sqlite.rows`). It knows nothing
** of Lua: values cross as tide_SqlValue.
**
** Contract, for every function below unless it says otherwise:
** - It returns 0 or a negative TIDE_E* code, and on failure leaves a
**   message on the connection (tide_sqlite_db_errmsg).
** - Strings are NUL-terminated and borrowed for the duration of the call.
** - A connection is used by one thread at a time.
*/
#ifndef TIDE_SQLITE_DB_H
#define TIDE_SQLITE_DB_H

#include <stddef.h>
#include <stdint.h>

#include "sqlite_conn.h" /* the open modes, TIDE_SQLITE_BUSY_MS */
#include "tide.h"

/* Value types, as SQLite's fundamental datatypes. */
#define TIDE_SQL_NULL 0
#define TIDE_SQL_INTEGER 1
#define TIDE_SQL_REAL 2
#define TIDE_SQL_TEXT 3
#define TIDE_SQL_BLOB 4

/* One SQL value. TEXT and BLOB point at `len` borrowed bytes. */
typedef struct tide_SqlValue {
  int type;
  int64_t i;
  double d;
  const void *p;
  size_t len;
} tide_SqlValue;

/*
** A table as a batch writes it: its columns in order, and which of them
** make the primary key, in key order. Everything is borrowed.
** A staged batch collects its rows in a temporary table (the last change
** of a key wins, as when rows are written one by one) and writes them at
** commit with one DELETE and one INSERT ... SELECT ... ON CONFLICT. Use it
** for a table with triggers that cost much per statement: an FTS5 index
** flushes a new segment at every statement that writes it.
*/
typedef struct tide_SqliteTable {
  const char *name;
  const char *const *columns;
  int ncols;
  const int *keys; /* nkeys indexes into columns */
  int nkeys;
  int staged;
} tide_SqliteTable;

typedef struct tide_SqliteDb tide_SqliteDb;

/* ---- Connections ---- */

/*
** Opens the database file at path in a mode of sqlite_conn.h, with the
** settings and messages every tide connection has (tide_sqlite_conn_open
** and _settle): TIDE_SQLITE_CREATE creates the file and its parent folders
** when missing and puts the database in WAL mode with synchronous =
** NORMAL, so other programs can read it while tide writes; a writer
** refuses a file it cannot write. Every connection waits up to
** TIDE_SQLITE_BUSY_MS for a lock. On failure *out is still a connection
** holding the message, to be closed by the caller, unless memory ran out
** before it existed (then *out is NULL, TIDE_ENOMEM). A missing file with
** WRITE or READONLY gives TIDE_ENOTFOUND. alloc may be NULL for the
** default allocator; SQLite itself allocates through its own allocator.
*/
int tide_sqlite_db_open(tide_SqliteDb **out, const char *path, int mode,
                        tide_Alloc alloc, void *ud);

/* Rolls back an open batch, then closes and frees. Accepts NULL. */
void tide_sqlite_db_close(tide_SqliteDb *db);

/* The last error message, or ""; borrowed until the next call. */
const char *tide_sqlite_db_errmsg(const tide_SqliteDb *db);

/* Sets how long statements wait for a lock; ms <= 0 restores the
** default. */
void tide_sqlite_db_set_busy_timeout(tide_SqliteDb *db, int ms);

/*
** 1 when the file at the path the connection was opened with is no longer
** the file it opened (deleted, or replaced by another file), else 0. A
** long-lived connection checks this before writing, so it never writes
** into an unlinked file.
*/
int tide_sqlite_db_stale(const tide_SqliteDb *db);

/* Runs one or more SQL statements that return no rows of interest. */
int tide_sqlite_db_exec(tide_SqliteDb *db, const char *sql);

/* ---- Queries ---- */

/* A running query: caller-owned, between _begin and _close. */
typedef struct tide_SqliteQuery {
  tide_SqliteDb *db; /* borrowed */
  void *stmt;        /* owned: a sqlite3_stmt */
  int ncols;
} tide_SqliteQuery;

/*
** Prepares sql, which must be exactly one statement that only reads
** (TIDE_EINVAL otherwise). The query must be closed with
** tide_sqlite_query_close even when this fails.
*/
int tide_sqlite_query_begin(tide_SqliteQuery *q, tide_SqliteDb *db,
                            const char *sql);

/* Steps to the next row: 1 when there is one, 0 at the end. */
int tide_sqlite_query_next(tide_SqliteQuery *q);

/* The name of column i (0-based) of the query; borrowed until close. */
const char *tide_sqlite_query_column(const tide_SqliteQuery *q, int i);

/* Column i of the current row; TEXT and BLOB stay valid until the next
** step. */
void tide_sqlite_query_value(const tide_SqliteQuery *q, int i,
                             tide_SqlValue *v);

/* Finalizes the statement. Accepts a query that never began. */
void tide_sqlite_query_close(tide_SqliteQuery *q);

/* ---- Batches ---- */

/*
** Starts a batch of writes into one table: opens a write transaction
** (BEGIN IMMEDIATE, so a lock held elsewhere is waited for up front) and
** prepares the table's upsert and delete statements once. The table
** description must stay valid until the batch ends. One batch at a time
** per connection.
*/
int tide_sqlite_batch_begin(tide_SqliteDb *db, const tide_SqliteTable *t);

/*
** Inserts a row, or updates every non-key column of the row with the same
** key (INSERT ... ON CONFLICT DO UPDATE), so replaying a batch is
** harmless. row holds ncols values in column order; TEXT and BLOB bytes
** need only live for the duration of the call.
*/
int tide_sqlite_batch_upsert(tide_SqliteDb *db, const tide_SqlValue *row);

/* Deletes the row whose key is key (nkeys values in key order); a missing
** row is not an error. */
int tide_sqlite_batch_delete(tide_SqliteDb *db, const tide_SqlValue *key);

/* Commits the batch (writing a staged batch's rows first). On failure the
** batch is rolled back. */
int tide_sqlite_batch_commit(tide_SqliteDb *db);

/* Rolls the batch back, keeping the message already on the connection.
** Does nothing when no batch is open. */
void tide_sqlite_batch_rollback(tide_SqliteDb *db);

#endif
