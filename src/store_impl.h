/*
** Internals shared by store.c (lifecycle, lock, errors, batches),
** store_schema.c (schema and format checks) and store_ops.c (operations).
** Nothing outside those files includes this header.
*/
#ifndef TIDE_STORE_IMPL_H
#define TIDE_STORE_IMPL_H

#include <stdint.h>

#include <sqlite3.h>

#include "buf.h"
#include "checkpointer.h"
#include "store.h"

#if defined(__GNUC__)
#define TIDE_STORE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TIDE_STORE_PRINTF(f, a)
#endif

/* The slots of the prepared-statement cache, one per SQL text. */
enum {
  TIDE_STMT_BEGIN,
  TIDE_STMT_COMMIT,
  TIDE_STMT_ROLLBACK,
  TIDE_STMT_APP_LOOKUP,
  TIDE_STMT_APP_INSERT,
  TIDE_STMT_APP_EACH,
  TIDE_STMT_APP_DEL_TARGETS,
  TIDE_STMT_APP_DEL_CONTAINERS,
  TIDE_STMT_APP_DEL_MEMOS,
  TIDE_STMT_APP_DEL_MEMO_REFS,
  TIDE_STMT_APP_DEL_COMPONENTS,
  TIDE_STMT_APP_DEL_SOURCES,
  TIDE_STMT_APP_DEL_RUNS,
  TIDE_STMT_APP_DEL_APP,
  TIDE_STMT_COMPONENT_PUT,
  TIDE_STMT_COMPONENT_GET,
  TIDE_STMT_COMPONENT_ID,
  TIDE_STMT_COMPONENT_PATH,
  TIDE_STMT_COMPONENT_DEL,
  TIDE_STMT_COMPONENT_EACH,
  TIDE_STMT_COMPONENT_EACH_BRIEF,
  TIDE_STMT_COMPONENT_COUNT,
  TIDE_STMT_MEMO_GET,
  TIDE_STMT_MEMO_PUT,
  TIDE_STMT_MEMO_DEL,
  TIDE_STMT_MEMO_EACH_KEY,
  TIDE_STMT_CONTAINER_FIND,
  TIDE_STMT_CONTAINER_INSERT,
  TIDE_STMT_CONTAINER_GET,
  TIDE_STMT_CONTAINER_UPDATE,
  TIDE_STMT_CONTAINER_DEL_TARGETS,
  TIDE_STMT_CONTAINER_DEL,
  TIDE_STMT_CONTAINER_EACH,
  TIDE_STMT_TARGET_PUT,
  TIDE_STMT_TARGET_APPLIED_DEL,
  TIDE_STMT_TARGET_APPLIED_SET,
  TIDE_STMT_TARGET_DEL,
  TIDE_STMT_TARGETS_APPLIED_DEL,
  TIDE_STMT_TARGETS_APPLIED_SET,
  TIDE_STMT_TARGET_GET,
  TIDE_STMT_TARGET_EACH_OWNER,
  TIDE_STMT_TARGET_EACH_CONTAINER,
  TIDE_STMT_TARGET_EACH_PENDING,
  TIDE_STMT_SOURCE_GET,
  TIDE_STMT_SOURCE_PUT,
  TIDE_STMT_SOURCE_DEL,
  TIDE_STMT_SOURCE_EACH,
  TIDE_STMT_SOURCE_EACH_APP,
  TIDE_STMT_RUN_BEGIN,
  TIDE_STMT_RUN_FINISH,
  TIDE_STMT_RUN_LATEST,
  TIDE_STMT_MEMO_REF_ADD,
  TIDE_STMT_MEMO_REFS_EACH,
  TIDE_STMT_MEMO_REFS_CLEAR,
  TIDE_STMT_MEMO_REF_EXISTS,
  TIDE_STMT_INTENT_ADD,
  TIDE_STMT_APP_DEL_INTENTS,
  TIDE_STMT_CONTAINER_DEL_INTENTS,
  TIDE_STMT_INTENT_DEL,
  TIDE_STMT_INTENT_EACH,
  TIDE_STMT_COUNT
};

struct tide_Store {
  tide_Alloc alloc;
  void *ud;
  sqlite3 *db;               /* owned; NULL until connected */
  char *path;                /* owned, NUL-terminated */
  size_t path_size;
  int flags;                 /* TIDE_STORE_READ or TIDE_STORE_WRITE */
  int version;               /* the file's format version, once checked */
  int lock_fd;               /* the writer lock's file, or -1 */
  int64_t unlocked_version;  /* data_version when the lock was let go */
  char *msg;                 /* owned message buffer */
  size_t msg_cap;
  const char *errmsg;        /* msg, or a static string */
  sqlite3_stmt *stmts[TIDE_STMT_COUNT]; /* owned, prepared lazily */
  sqlite3_stmt *held;        /* a get's statement, left on its row */
  int in_batch;              /* a batch transaction is open */
  int64_t batch_writes;
  int64_t batch_started_ns;  /* CLOCK_MONOTONIC */
  int64_t max_batch_writes;
  int64_t max_batch_ms;
  tide_Ckpt *ckpt;           /* the checkpointer, once attached */
  int track;                 /* component writes are noted (written) */
  int written_all;           /* everything must be read again */
  tide_Buf written;          /* notes: int64 id, uint64 len, path bytes */
};

/* Notes a component write while tracking (store_ops.c): its path, or
** (path NULL) the row id it deleted. */
void tide_store_note_written(tide_Store *s, const char *path, size_t len,
                             int64_t id);

/* Sets the store's message from fmt and returns code. */
int tide_store_fail(tide_Store *s, int code, const char *fmt, ...)
  TIDE_STORE_PRINTF(3, 4);

/* Sets the message "PATH: what: <SQLite's message>" and returns the code
** matching SQLite's last error. When the error rolled back the open batch,
** the batch is closed and the message says so. */
int tide_store_fail_db(tide_Store *s, const char *what);

/* Sets *st to the statement in slot, preparing sql the first time. Ends
** the hold of a previous get first. TIDE_EINVAL when the statement is in
** use by an iteration in progress. */
int tide_store_stmt(tide_Store *s, int slot, const char *sql,
                    sqlite3_stmt **st);

/* Checks that the store is writable and opens the batch if none is. */
int tide_store_write_begin(tide_Store *s);

/* Counts one more write in the batch. */
void tide_store_write_done(tide_Store *s);

/* The wall-clock time in nanoseconds since the epoch. */
int64_t tide_store_now_ns(void);

/* Checks the file's format: 0 for a tide store of a version this tide
** reads (s->version says which), 1 for a database without any table (a
** new or empty file), or an error. */
int tide_store_schema_check(tide_Store *s);

/* Creates the schema in an empty database, in one transaction. */
int tide_store_schema_create(tide_Store *s);

/* Upgrades a store of an older version (s->version) to
** TIDE_STORE_FORMAT_VERSION, in one transaction; 0 when it is current. */
int tide_store_schema_upgrade(tide_Store *s);

#endif
