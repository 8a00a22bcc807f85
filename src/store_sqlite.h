/*
** The state store's SQLite backend (a file in WAL mode): its functions,
** one per function of store.h with the same contract, which store.c
** calls for a store whose location is a file path; and the internals
** shared by store_sqlite.c (lifecycle, lock, errors, batches),
** store_sqlite_schema.c (schema and format checks),
** store_sqlite_queue.c (queued writes, the writer thread),
** store_sqlite_reader.c (reads beside a batch in flight) and
** store_sqlite_ops.c, store_sqlite_refs.c, store_sqlite_intents.c
** (operations). Nothing but those files and store.c includes this header.
*/
#ifndef TIDE_STORE_SQLITE_H
#define TIDE_STORE_SQLITE_H

#include <stdint.h>

#include <sqlite3.h>
#include <uv.h>

#include "buf.h"
#include "checkpointer.h"
#include "job.h"
#include "store.h"
#include "store_backend.h"

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
  TIDE_STMT_COMPONENT_STATE,
  TIDE_STMT_COMPONENT_DEL,
  TIDE_STMT_COMPONENT_HOLD,
  TIDE_STMT_COMPONENT_EACH,
  TIDE_STMT_COMPONENT_EACH_BRIEF,
  TIDE_STMT_COMPONENT_EACH_UNDER,
  TIDE_STMT_COMPONENT_COUNT,
  TIDE_STMT_MEMO_GET,
  TIDE_STMT_MEMO_PUT,
  TIDE_STMT_MEMO_DEL,
  TIDE_STMT_MEMO_DEL_UNREFERENCED,
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
  TIDE_STMT_TARGET_OWNERS,
  TIDE_STMT_TARGETS_UNKNOWN,
  TIDE_STMT_SOURCE_GET,
  TIDE_STMT_SOURCE_PUT,
  TIDE_STMT_SOURCE_DEL,
  TIDE_STMT_SOURCE_EACH,
  TIDE_STMT_SOURCE_EACH_APP,
  TIDE_STMT_RUN_BEGIN,
  TIDE_STMT_RUN_FINISH,
  TIDE_STMT_RUN_LATEST,
  TIDE_STMT_RUN_TRIM,
  TIDE_STMT_MEMO_REF_ADD,
  TIDE_STMT_MEMO_REFS_EACH,
  TIDE_STMT_MEMO_REFS_CLEAR,
  TIDE_STMT_MEMO_REF_EXISTS,
  TIDE_STMT_INTENT_ADD,
  TIDE_STMT_APP_DEL_INTENTS,
  TIDE_STMT_CONTAINER_DEL_INTENTS,
  TIDE_STMT_INTENT_DEL,
  TIDE_STMT_INTENT_EACH,
  TIDE_STMT_COMPONENT_INSERT,
  TIDE_STMT_COMPONENT_MAX_ID,
  TIDE_STMT_INTENT_MAX_ID,
  TIDE_STMT_COUNT
};

/* The reader's statements (store_sqlite_reader.c). */
enum {
  TIDE_READER_TARGET_GET,
  TIDE_READER_TARGET_EACH_OWNER,
  TIDE_READER_COUNT
};

typedef struct SqStore SqStore;

struct SqStore {
  tide_Store base;           /* first: the backend, for store.c */
  tide_Alloc alloc;
  void *ud;
  sqlite3 *db;               /* owned; NULL until connected */
  char *path;                /* owned, NUL-terminated */
  size_t path_size;
  int flags;                 /* TIDE_STORE_READ or TIDE_STORE_WRITE */
  int version;               /* the file's format version, once checked */
  int lock_fd;               /* the writer lock's file, or -1 */
  int64_t unlocked_version;  /* data_version when the lock was let go */
  sqlite3_stmt *stmts[TIDE_STMT_COUNT]; /* owned, prepared lazily */
  sqlite3_stmt *held;        /* a get's statement, left on its row */
  tide_Ckpt *ckpt;           /* the checkpointer, once attached */
  /* Queued writes (store_sqlite_queue.c); the loop's thread owns them
  ** but for sending, which the writer thread reads while it runs it. */
  tide_Buf queue;            /* written in call order, not run yet */
  tide_Buf sending;          /* handed to the writer with its commit */
  int64_t queued;            /* records in queue */
  int in_flight;             /* sending is the writer's until waited for */
  int64_t next_component_id; /* the next new component's id; 0 unknown */
  int64_t next_intent_id;    /* the same for intents */
  int sent_rc;               /* the failure of the batch sent last */
  tide_Buf sent_msg;         /* its message, NUL-terminated */
  tide_Job writer;           /* runs a sent batch (store_sqlite_queue.c) */
  /* The reader (store_sqlite_reader.c), the loop's thread's only. */
  sqlite3 *reader;           /* owned; NULL until first used */
  sqlite3_stmt *reader_stmts[TIDE_READER_COUNT];
  sqlite3_stmt *reader_held; /* a get's statement, left on its row */
  int reading;               /* its read transaction is open */
};

/* Sets the store's message from fmt and returns code. */
int tide_sqs_fail(SqStore *s, int code, const char *fmt, ...)
  TIDE_STORE_PRINTF(3, 4);

/* Sets the message "PATH: what: <SQLite's message>" and returns the code
** matching SQLite's last error. When the error rolled back the open batch,
** the batch is closed and the message says so. */
int tide_sqs_fail_db(SqStore *s, const char *what);

/* Sets *st to the statement in slot, preparing sql the first time. Ends
** the hold of a previous get first. TIDE_EINVAL when the statement is in
** use by an iteration in progress. */
int tide_sqs_stmt(SqStore *s, int slot, const char *sql,
                    sqlite3_stmt **st);

/* Checks that the store is writable and opens the batch if none is. */
int tide_sqs_write_begin(SqStore *s);

/* Counts one more write in the batch. */
void tide_sqs_write_done(SqStore *s);


/*
** Queued writes (store_sqlite_queue.c). The writes every component makes
** (its record, its target and source states, its memo entries and
** references and the clearing of its old ones, the batch's intents) are
** not run at the call: each is
** copied, in call order, into the store's queue, and the queue runs at
** the next call that needs the connection (any read, any other write, a
** commit), on that call's thread, before that call, or, at
** tide_sqs_flush_send, on the store's writer thread followed by the
** commit, while the caller goes on with the next batch. So the
** connection runs the statements of the calls in the order of the calls;
** only when, and on which thread, changes, and the connection is used by
** one thread at a time: while a batch is in flight the loop's thread only
** queues, and anything else waits for the batch first.
**
** A new component's or intent's id is known at the call: ids are handed
** out from a counter read once as the table's largest id plus one (the
** writer lock keeps other processes from writing meanwhile); a put whose
** path is recorded under another id fails its batch. A queued write that fails
** rolls its batch back, drops what was queued after it, and fails the
** next call, which reports it (as tide_store_flush_wait does): like the
** PostgreSQL store, whose batches fail the same way.
*/

/* Runs what is queued and waits for a batch in flight: every call that
** uses the connection from the loop's thread does this first (on the
** writer thread, while it runs the queue, it does nothing). 0, or the
** failure of a queued write, the batch rolled back. */
int tide_sqs_sync(SqStore *s);

/* Before a read: on the loop's thread of a store that holds its writer
** lock, a read outside a batch opens one, as a write would. A read on
** its own takes SQLite's locks and a snapshot for itself, several times
** what the read costs inside a transaction; the batch is committed as
** any is (tide_sqs_flush_send, tide_sqs_flush), and holds only what was
** written. Elsewhere (the writer thread, a read-only or unlocked store,
** a batch already open) it does nothing. */
int tide_sqs_read_begin(SqStore *s);

/*
** The reader, a read-only connection for reads of the committed state
** while a batch is in flight (store_sqlite_reader.c says when its
** transaction begins and ends). tide_sqs_reader_stmt: the reader's
** statement in slot, prepared the first time, its transaction begun, the
** reader opened at first use. tide_sqs_reader_hold: a get leaves st on
** its row, which the caller borrows until the reader's next call.
** tide_sqs_reader_end: its next read sees every commit so far (the
** store calls it whenever it learns of one). tide_sqs_reader_fail: the
** store's message for the reader's last failure.
*/
int tide_sqs_reader_stmt(SqStore *s, int slot, const char *sql,
                         sqlite3_stmt **st);
void tide_sqs_reader_hold(SqStore *s, sqlite3_stmt *st);
void tide_sqs_reader_end(SqStore *s);
int tide_sqs_reader_fail(SqStore *s, const char *what);
void tide_sqs_reader_close(SqStore *s);

/* Queue the writes of store.h's functions of the same names. */
int tide_sqs_queue_component(SqStore *s, const tide_StoreComponent *c,
                             int64_t *id);
int tide_sqs_queue_target(SqStore *s, const tide_StoreTarget *t);
int tide_sqs_queue_source(SqStore *s, const tide_StoreSourceItem *item);
int tide_sqs_queue_memo(SqStore *s, const tide_StoreMemo *m);
int tide_sqs_queue_memo_ref(SqStore *s, int64_t app_id, int64_t component_id,
                            const uint8_t *key);
int tide_sqs_queue_memo_refs_clear(SqStore *s, int64_t component_id);
int tide_sqs_queue_component_hold(SqStore *s, int64_t id);
int tide_sqs_queue_intent(SqStore *s, int64_t app_id, int64_t container_id,
                          const void *keys, size_t keys_len, int64_t *id);
int tide_sqs_queue_intent_delete(SqStore *s, int64_t id);

/* store.h's tide_store_batch_writes: the open batch's writes, queued
** ones included. */
int64_t tide_sqs_batch_writes(const SqStore *s);

/* store.h's tide_store_flush_send and tide_store_flush_wait. */
int tide_sqs_flush_send(SqStore *s);
int tide_sqs_flush_wait(SqStore *s);

/* After a commit: on the loop's thread, the checkpointer looks at the
** log's size (tide_ckpt_poll) and the reader's transaction ends; on the
** writer thread, the wait does both. */
void tide_sqs_committed(SqStore *s);

/* Drops what is queued, for a rollback, once the batch in flight is done
** (a batch sent is not the open batch: it commits, and a failure of it is
** kept for tide_sqs_flush_wait). */
void tide_sqs_drop_queue(SqStore *s);

/* Stops the writer thread (the store's close, once nothing is in
** flight). */
void tide_sqs_writer_stop(SqStore *s);

/* Forgets the id counters: the next new id is read from the tables again
** (after a rollback, an unlock, a put that let SQLite choose an id). */
void tide_sqs_forget_ids(SqStore *s);

/* Counts a batch a failure lost on the loop's thread (its writes rolled
** back, or never run), keeping the store's message as the failure's
** (tide_store_batches_lost, tide_store_lost_message). */
void tide_sqs_batch_lost(SqStore *s);

/* Whether the calling thread is running queued writes (a failure then
** reaches the loop's thread through the queue, which counts it). */
int tide_sqs_running_queue(void);

/* Checks the file's format: 0 for a tide store of a version this tide
** reads (s->version says which), 1 for a database without any table (a
** new or empty file), or an error. */
int tide_sqs_schema_check(SqStore *s);

/* Creates the schema in an empty database, in one transaction. */
int tide_sqs_schema_create(SqStore *s);

/* Upgrades a store of an older version (s->version) to
** TIDE_STORE_FORMAT_VERSION, in one transaction; 0 when it is current. */
int tide_sqs_schema_upgrade(SqStore *s);

/* ---- The backend's functions: store.h's, for an SqStore ---- */

int tide_sqs_open(SqStore **out, const char *path, int flags, tide_Alloc alloc,
                  void *ud);
int tide_sqs_close(SqStore *s);
int tide_sqs_unlock(SqStore *s);
int tide_sqs_relock(SqStore *s, int *changed);
int tide_sqs_checkpoint_on(SqStore *s, uv_loop_t *loop);
const char *tide_sqs_path(const SqStore *s);
int tide_sqs_flush(SqStore *s);
int tide_sqs_maybe_flush(SqStore *s);
int tide_sqs_rollback(SqStore *s);
int tide_sqs_space(SqStore *s, tide_StoreSpace *space);
int tide_sqs_reclaim(SqStore *s, int64_t *freed);
int tide_sqs_app_get_or_create(SqStore *s, const char *name, size_t name_len,
                               int64_t *id, int *created);
int tide_sqs_app_lookup(SqStore *s, const char *name, size_t name_len,
                        tide_StoreApp *app);
int tide_sqs_app_each(SqStore *s, tide_StoreAppFn fn, void *arg);
int tide_sqs_app_delete(SqStore *s, int64_t app_id);
/* c->id 0: the row at the path is updated, or inserted with an id SQLite
** chooses; > 0: as tide_sqs_component_insert. */
int tide_sqs_component_put(SqStore *s, const tide_StoreComponent *c,
                           int64_t *id);
/* Writes the component with the id c->id (> 0): inserted when its path is
** not recorded, updated when the path's row has that id; fails (and so
** does its batch) when the path is recorded under another id. */
int tide_sqs_component_insert(SqStore *s, const tide_StoreComponent *c);
int tide_sqs_component_get(SqStore *s, int64_t app_id, const char *path,
                           size_t path_len, tide_StoreComponent *c);
int tide_sqs_component_delete(SqStore *s, int64_t id);
int tide_sqs_component_hold(SqStore *s, int64_t id);
int tide_sqs_component_state(SqStore *s, int64_t id, const void **state,
                             size_t *state_len);
int tide_sqs_component_path(SqStore *s, int64_t id, const char **path,
                            size_t *path_len);
int tide_sqs_component_each(SqStore *s, int64_t app_id,
                            tide_StoreComponentFn fn, void *arg);
int tide_sqs_component_each_brief(SqStore *s, int64_t app_id,
                                  tide_StoreComponentFn fn, void *arg);
int tide_sqs_component_each_under(SqStore *s, int64_t app_id,
                                  const char *const *paths,
                                  const size_t *lens, size_t n,
                                  tide_StoreComponentFn fn, void *arg);
int tide_sqs_component_count(SqStore *s, int64_t app_id, int64_t max,
                             int64_t *count);
int tide_sqs_memo_get(SqStore *s, int64_t app_id, const uint8_t *key,
                      tide_StoreMemo *m);
int tide_sqs_memo_put(SqStore *s, const tide_StoreMemo *m);
int tide_sqs_memo_delete(SqStore *s, int64_t app_id, const uint8_t *key);
int tide_sqs_memo_delete_unreferenced(SqStore *s, int64_t app_id);
int tide_sqs_memo_each_key(SqStore *s, int64_t app_id, tide_StoreMemoKeyFn fn,
                           void *arg);
int tide_sqs_memo_ref_add(SqStore *s, int64_t app_id, int64_t component_id,
                          const uint8_t *key);
int tide_sqs_memo_refs_each(SqStore *s, int64_t component_id,
                            tide_StoreMemoRefFn fn, void *arg);
int tide_sqs_memo_refs_clear(SqStore *s, int64_t component_id);
int tide_sqs_memo_ref_exists(SqStore *s, int64_t app_id, const uint8_t *key,
                             int *used);
int tide_sqs_container_get_or_create(SqStore *s, int64_t app_id,
                                     const char *kind, size_t kind_len,
                                     const char *identity, size_t identity_len,
                                     int64_t *id, int *created);
int tide_sqs_container_get(SqStore *s, int64_t id, tide_StoreContainer *c);
int tide_sqs_container_update(SqStore *s, const tide_StoreContainer *c);
int tide_sqs_container_delete(SqStore *s, int64_t id);
int tide_sqs_container_each(SqStore *s, int64_t app_id,
                            tide_StoreContainerFn fn, void *arg);
int tide_sqs_target_put(SqStore *s, const tide_StoreTarget *t);
int tide_sqs_target_mark_applied(SqStore *s, int64_t container_id,
                                 const void *key, size_t key_len);
int tide_sqs_targets_mark_applied(SqStore *s, int64_t container_id);
int tide_sqs_target_delete(SqStore *s, int64_t container_id, const void *key,
                           size_t key_len);
int tide_sqs_target_get(SqStore *s, int64_t container_id, const void *key,
                        size_t key_len, tide_StoreTarget *t);
int tide_sqs_target_each_by_owner(SqStore *s, int64_t owner_id,
                                  tide_StoreTargetFn fn, void *arg);
int tide_sqs_target_get_committed(SqStore *s, int64_t container_id,
                                  const void *key, size_t key_len,
                                  tide_StoreTarget *t);
int tide_sqs_target_each_by_owner_committed(SqStore *s, int64_t owner_id,
                                            tide_StoreTargetFn fn,
                                            void *arg);
int tide_sqs_target_each_by_container(SqStore *s, int64_t container_id,
                                      tide_StoreTargetFn fn, void *arg);
int tide_sqs_target_each_pending(SqStore *s, int64_t app_id,
                                 tide_StoreTargetFn fn, void *arg);
int tide_sqs_target_owner_each(SqStore *s, int64_t container_id,
                               int held_only, tide_StorePathFn fn, void *arg);
int tide_sqs_targets_mark_unknown(SqStore *s, int64_t container_id);
/* Inserts an intent with the id the queue gave it. */
int tide_sqs_intent_add(SqStore *s, int64_t id, int64_t app_id,
                        int64_t container_id, const void *keys,
                        size_t keys_len);
int tide_sqs_intent_delete(SqStore *s, int64_t id);
int tide_sqs_intent_each(SqStore *s, int64_t app_id, tide_StoreIntentFn fn,
                         void *arg);
int tide_sqs_source_get(SqStore *s, int64_t app_id, const char *source,
                        size_t source_len, const char *key, size_t key_len,
                        tide_StoreSourceItem *item);
int tide_sqs_source_put(SqStore *s, const tide_StoreSourceItem *item);
int tide_sqs_source_delete(SqStore *s, int64_t app_id, const char *source,
                           size_t source_len, const char *key, size_t key_len);
int tide_sqs_source_each(SqStore *s, int64_t app_id, const char *source,
                         size_t source_len, tide_StoreSourceItemFn fn,
                         void *arg);
int tide_sqs_source_each_app(SqStore *s, int64_t app_id,
                             tide_StoreSourceItemFn fn, void *arg);
int tide_sqs_run_begin(SqStore *s, int64_t app_id, int64_t *run_id);
int tide_sqs_run_finish(SqStore *s, int64_t run_id, int status,
                        const char *stats, size_t stats_len);
int tide_sqs_run_each_latest(SqStore *s, int64_t app_id, int limit,
                             tide_StoreRunFn fn, void *arg);

#endif
