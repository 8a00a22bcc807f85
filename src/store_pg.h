/*
** The state store's PostgreSQL backend: the store kept in a schema of a
** PostgreSQL database, with the content, format version and contract of
** the SQLite store (store.h), for a location
**
**   postgresql://[user[:password]@][host][:port][/dbname][?param=value&...]
**
** (or postgres://), any libpq URI; tide's own parameter schema=NAME names
** the schema (default "tide") and is taken out before libpq reads the
** rest. store.c calls these functions for such a location.
**
** How it talks to the server: one connection in libpq's pipeline mode.
** A write is sent and not waited for: its result is read, and its failure
** found, at the next synchronisation, which the next read, the batch's
** commit, or every PG_PIPELINE_MAX statements make. So a batch of writes
** costs one round trip, not one per row, and a write's failure is the
** failure of the call that synchronises (the batch is then rolled back,
** and the message names what failed: "cannot record a target state").
**
** What differs from SQLite, by necessity:
** - The writer lock is an advisory lock of the session, keyed by the
**   schema: the server drops it when the connection ends, kill -9
**   included. A second writer is refused with the first's
**   application_name, "tide (pid N)".
** - Text is stored as bytea, since PostgreSQL's text cannot hold NUL
**   bytes; orders are byte orders, as SQLite's BINARY collation.
** - Component ids: a put that gives the component's id (read from the
**   store) or TIDE_STORE_NEW_ID (a component the caller knows is new) is
**   not waited for; a put with id 0 waits for the id the server finds.
** - Space is the server's: tide_store_reclaim leaves it to autovacuum
**   and gives nothing back itself; there are no checkpoints to move.
** - Another writer's commits are seen through the generation sequence,
**   which every committed batch advances.
** - Processes that share an update write memo entries alike: a batch
**   writes its entries at its commit, in key order, under the memo lock
**   taken shared, and takes that lock alone before it writes any earlier
**   (store_pg_bulk.c), so that no two batches deadlock over them.
*/
#ifndef TIDE_STORE_PG_H
#define TIDE_STORE_PG_H

#include <stddef.h>
#include <stdint.h>

#include "hashmap.h"
#include "pq_api.h"
#include "store.h"
#include "store_backend.h"

/* Statements sent before the pipeline is synchronised at the latest. */
#define PG_PIPELINE_MAX 512

/* The longest schema name, with its NUL (PostgreSQL's names). */
#define TIDE_PG_SCHEMA_SIZE 64

/* Component ids a writer takes from their sequence at once. */
#define PG_RESERVED_IDS 256

/* The most parameters a statement of the store takes. */
#define PG_MAX_PARAMS 14

/* What a statement's result is awaited for. */
enum {
  PG_WAIT_WRITE,   /* a write: only its failure matters */
  PG_WAIT_PREPARE, /* preparing a statement of slot */
  PG_WAIT_READ,    /* a read: its result is kept */
  PG_WAIT_LATER,   /* a read sent with its commit, its result kept in
                   ** s->later for tide_pgs_write_commit_read */
  PG_WAIT_TXN      /* BEGIN, COMMIT or ROLLBACK */
};

typedef struct PgWait {
  const char *what; /* the failure's words: "cannot record a component" */
  int kind;         /* PG_WAIT_* */
  int slot;         /* the statement's slot (PG_WAIT_PREPARE), or -1 */
} PgWait;

/* The slots of the prepared statements, one per SQL text. */
enum {
  PG_APP_LOOKUP,
  PG_APP_INSERT,
  PG_APP_EACH,
  PG_APP_DELETE,
  PG_COMPONENT_PUT,
  PG_COMPONENT_GET,
  PG_COMPONENT_PATH,
  PG_COMPONENT_STATE,
  PG_COMPONENTS_STATES,
  PG_MEMO_REFS_OF,
  PG_COMPONENT_DEL,
  PG_COMPONENT_HOLD,
  PG_COMPONENTS_DEL,
  PG_COMPONENT_EACH_FIRST,
  PG_COMPONENT_EACH_NEXT,
  PG_COMPONENT_BRIEF,
  PG_COMPONENT_BRIEF_NEXT,
  PG_COMPONENT_UNDER,
  PG_COMPONENT_COUNT,
  PG_COMPONENT_IDS,
  PG_INTENT_IDS,
  PG_MEMO_GET,
  PG_MEMO_DEL,
  PG_MEMO_DEL_UNUSED,
  PG_MEMO_KEYS_FIRST,
  PG_MEMO_KEYS_NEXT,
  PG_MEMO_REFS_EACH,
  PG_MEMO_REF_EXISTS,
  PG_CONTAINER_FIND,
  PG_CONTAINER_INSERT,
  PG_CONTAINER_GET,
  PG_CONTAINER_UPDATE,
  PG_CONTAINER_DEL,
  PG_CONTAINER_EACH,
  PG_TARGET_APPLIED,
  PG_TARGETS_APPLIED,
  PG_TARGET_DEL,
  PG_TARGET_GET,
  PG_TARGET_EACH_OWNER,
  PG_TARGET_EACH_FIRST,
  PG_TARGET_EACH_NEXT,
  PG_TARGET_EACH_PENDING,
  PG_TARGET_AHEAD,
  PG_TARGET_EACH_OWNERS,
  PG_MEMO_EACH_OF,
  PG_TARGET_EACH_KEYS,
  PG_TARGET_OWNERS_FIRST,
  PG_TARGET_OWNERS_NEXT,
  PG_TARGETS_UNKNOWN,
  PG_INTENT_ADD,
  PG_INTENT_DEL,
  PG_INTENT_EACH,
  PG_SOURCE_GET,
  PG_SOURCE_DEL,
  PG_SOURCE_EACH_FIRST,
  PG_SOURCE_EACH_NEXT,
  PG_SOURCE_APP_FIRST,
  PG_SOURCE_APP_NEXT,
  PG_RUN_BEGIN,
  PG_RUN_FINISH,
  PG_RUN_LATEST,
  PG_GENERATION,
  PG_SPACE,
  PG_UPDATE_CLOSE_OLD,
  PG_UPDATE_OPEN,
  PG_UPDATE_SET,
  PG_UPDATE_CURRENT,
  PG_WORKER_JOIN,
  PG_WORKER_BEAT,
  PG_WORK_CLAIM,
  PG_WORK_CLAIM_NEXT,
  PG_WORK_OPEN,
  PG_WORKER_LEAVE,
  PG_WORKER_EACH,
  PG_WORKER_COUNTS,
  PG_WORKERS_ALIVE,
  PG_WORK_REDO,
  PG_WORK_REOPEN,
  PG_MEMO_DELETE_UNREFERENCED,
  PG_MEMO_LOCK_SHARED,
  PG_MEMO_LOCK_ALONE,
  PG_BULK_COMPONENTS,
  PG_BULK_TARGETS,
  PG_BULK_SOURCES,
  PG_BULK_WORK,
  PG_BULK_DONE,
  PG_BULK_COUNTS,
  PG_BULK_MEMOS,
  PG_BULK_REFS_CLEAR,
  PG_BULK_REFS,
  PG_LOCK,
  PG_UNLOCK,
  PG_READ_GENERATION,
  PG_SLOT_COUNT
};

/* The writes kept for a set-based statement (store_pg_bulk.c), in the
** order they are sent. */
enum {
  PG_KIND_COMPONENTS,
  PG_KIND_TARGETS,
  PG_KIND_SOURCES,
  PG_KIND_WORK,
  PG_KIND_DONE,
  PG_KIND_COUNTS,
  PG_KIND_MEMOS,
  PG_KIND_REFS_CLEAR,
  PG_KIND_REFS,
  PG_BULK_KINDS
};

/* The most columns a kind has. */
#define PG_BULK_COLS 13

typedef struct PgBulk {
  int64_t rows;
  tide_Buf cols[PG_BULK_COLS]; /* a text array literal each, being built */
} PgBulk;

/* One value of a kept row: an int8 (i) or bytes (p, len), or NULL. */
typedef struct PgCell {
  int null;
  int64_t i;
  const void *p;
  size_t len;
} PgCell;

/* Appends len bytes at p to the text literal of a bytea[] under way in b
** (empty: the literal's start; the caller closes it with "}"). */
int tide_pgs_array_bytes(tide_Buf *b, const void *p, size_t len);

/* Ids taken from a sequence ahead of the rows that use them. */
typedef struct PgIds {
  int64_t ids[PG_RESERVED_IDS];
  int next, n;               /* ids[next..n) are free */
} PgIds;

typedef struct PgStore PgStore;

struct PgStore {
  tide_Store base;           /* first: the backend, for store.c */
  PGconn *conn;              /* owned; in pipeline mode once open */
  char *location;            /* owned: the location without its password */
  size_t location_size;
  char *conninfo;            /* owned: what libpq reads (schema= taken out) */
  size_t conninfo_size;
  char schema[TIDE_PG_SCHEMA_SIZE]; /* the schema's name */
  int flags;                 /* TIDE_STORE_READ or TIDE_STORE_WRITE */
  int version;               /* the schema's format version, once checked */
  int snapshot;              /* reads from one snapshot (opened again) */
  int locked;                /* this session holds the writer lock */
  int64_t unlocked_generation; /* the generation when the lock was let go */
  unsigned char prepared[PG_SLOT_COUNT];
  PGresult *held;            /* a get's result, borrowed until the next call */
  PgWait *waits;             /* owned: what the pipeline's results are for */
  size_t nwaits, waits_cap;
  PgIds component_ids;       /* ids reserved for new components */
  PgIds intent_ids;          /* and for intents */
  unsigned char iterating[PG_SLOT_COUNT]; /* an iteration of slot runs */
  PgBulk bulk[PG_BULK_KINDS]; /* rows kept for set-based statements */
  tide_HashMap ref_owners;   /* components whose memo references are kept */
  tide_HashMap memos_kept;   /* the keys of the memo entries kept */
  tide_HashMap components_kept; /* the ids of the components kept */
  tide_HashMap ahead;        /* owners whose states were read ahead
                             ** (store_pg_ahead.c) */
  PGresult **ahead_results;  /* owned: what they were read from */
  size_t ahead_count, ahead_cap;
  size_t ahead_left;         /* entries not taken yet */
  int64_t claim_update, claim_worker; /* whose claims claim_mark is */
  int64_t claim_mark;        /* the last item id this worker claimed */
  PGresult *later;           /* owned: tide_pgs_write_commit_send's result,
                             ** read and not taken yet */
  int begun;                 /* the open batch's BEGIN was sent */
  int memo_lock;             /* the open batch's memo lock: PG_MEMOS_* */
  int sent;                  /* a commit was sent, its answer not read */
  int sent_rc;               /* the outcome of the last commit sent */
  char *sent_msg;            /* owned: its message, when it failed */
  size_t sent_msg_size;
};

/* ---- Parameters: every one binary ---- */

typedef struct PgParams {
  int n;
  const char *values[PG_MAX_PARAMS];
  int lengths[PG_MAX_PARAMS];
  int formats[PG_MAX_PARAMS];
  char ints[PG_MAX_PARAMS][8];
} PgParams;

/* Splits a location: conninfo receives what libpq reads (schema= taken
** out), public_location the location without its password (from
** user:password@ and password=), schema the schema's name (at least
** TIDE_PG_SCHEMA_SIZE bytes). conninfo and public_location take
** strlen(location) + 1 bytes. TIDE_EINVAL with *error set for a schema
** name tide does not make. */
int tide_pgs_split_location(const char *location, char *conninfo,
                            char *public_location, char *schema,
                            const char **error);

/* ---- Internals shared by store_pg*.c ---- */

/* Sets the store's message from fmt and returns code. */
int tide_pgs_fail(PgStore *s, int code, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;

/* Sets "LOCATION: what: <the server's message, or libpq's when r is NULL>
** note" and returns TIDE_ESTORE, or TIDE_EIO when the connection is lost. */
int tide_pgs_fail_pg(PgStore *s, const PGresult *r, const char *what,
                     const char *note);

/* Frees the result a get left for its caller. */
void tide_pgs_release(PgStore *s);

/* Sends the statement of slot (prepared the first time) with p, and does
** not wait for its result; a write opens the batch first and counts in
** it. A write that must touch some rows checks it on the server
** (rows_are), so that its failure aborts the transaction. */
int tide_pgs_write(PgStore *s, int slot, const char *sql, const PgParams *p,
                   const char *what);

/* Sends the statement of slot and synchronises: *out receives its
** result, whose rows the caller reads and then frees (PQclear). Any
** failure of a write sent before is this call's. */
int tide_pgs_read(PgStore *s, int slot, const char *sql, const PgParams *p,
                  const char *what, PGresult **out);
/* A read whose answer does not depend on the rows kept for the open
** batch (a sequence's next values): they are not sent before it, so that
** the batch's rows still go as one statement per kind. */
int tide_pgs_read_apart(PgStore *s, int slot, const char *sql,
                        const PgParams *p, const char *what, PGresult **out);

/* Keeps one row of kind (PG_KIND_*) for its set-based statement, in
** the open batch (store_pg_bulk.c). */
int tide_pgs_bulk_row(PgStore *s, int kind, const PgCell *cells);
/* Sends the rows kept, a statement per kind, but memo entries; the next
** statement sent and every synchronisation do it first. */
int tide_pgs_bulk_send(PgStore *s);
/* Sends the memo entries kept, in key order, before a statement that
** reads or deletes memo entries (under the memo lock alone); the commit
** sends them last (tide_pgs_bulk_commit_memos, under the lock shared).
** Whether they are many enough that the batch should commit at its next
** chance. */
int tide_pgs_bulk_send_memos(PgStore *s);
int tide_pgs_bulk_commit_memos(PgStore *s);
int tide_pgs_bulk_memos_due(const PgStore *s);
/* The memo lock, a transaction's advisory lock keyed by the schema: a
** batch takes it shared to send its memo entries at its commit, alone
** before any other statement that writes memo entries (sent early, or
** deleted), and holds it until it ends. See store_pg_bulk.c. */
enum { PG_MEMOS_UNLOCKED, PG_MEMOS_SHARED, PG_MEMOS_ALONE };
int tide_pgs_memos_lock(PgStore *s, int mode);
/* Before a statement that deletes memo entries: the memo lock alone, then
** the entries kept so far sent, so that the statement sees them. */
int tide_pgs_memos_delete_begin(PgStore *s);
/* Keeps a memo reference (tide_store_memo_ref_add), and a clear of a
** component's (tide_store_memo_refs_clear): clears are sent before
** additions, and a clear that follows additions to the same component
** sends the rows kept first, so the order of the calls holds. */
int tide_pgs_bulk_ref(PgStore *s, int64_t app_id, int64_t component_id,
                      const uint8_t *key, size_t key_len);
int tide_pgs_bulk_refs_clear(PgStore *s, int64_t component_id);
/* Keeps a memo entry (tide_store_memo_put); whether one is kept under
** key, which a read of it must send first. */
int tide_pgs_bulk_memo(PgStore *s, const PgCell *cells, const uint8_t *key);
int tide_pgs_bulk_memo_kept(const PgStore *s, const uint8_t *key);
/* Keeps a component's row (its id known); whether one is kept, and
** whether memo references of the component are (added or cleared). */
int tide_pgs_bulk_component(PgStore *s, const PgCell *cells, int64_t id);
int tide_pgs_bulk_component_kept(const PgStore *s, int64_t id);
int tide_pgs_bulk_refs_kept(const PgStore *s, int64_t component_id);
/* Forgets the rows kept (a batch rolled back); frees their buffers. */
void tide_pgs_bulk_drop(PgStore *s);
void tide_pgs_bulk_free(PgStore *s);

/* Sends a prepared write as it is (the rows kept are not sent first). */
int tide_pgs_send(PgStore *s, int slot, const char *sql, const PgParams *p,
                  const char *what);

/* A write whose result is waited for: opens the batch, counts in it, and
** *out receives the result (the caller frees it). */
int tide_pgs_write_returning_rows(PgStore *s, int slot, const char *sql,
                                  const PgParams *p, const char *what,
                                  PGresult **out);

/* A write whose result is waited for, committed with the open batch in
** the same round trip: *out receives its result. */
int tide_pgs_write_commit(PgStore *s, int slot, const char *sql,
                          const PgParams *p, const char *what,
                          PGresult **out);
/* As tide_pgs_write_commit, without waiting for the answer: the statement
** and the commit are sent; tide_pgs_sent_socket is the socket to wait on
** until it is readable, while the answer is unread (else -1). Any call of
** the store reads the answer first; tide_pgs_write_commit_read then gives
** the statement's result (owned by the caller) or the failure. */
int tide_pgs_write_commit_send(PgStore *s, int slot, const char *sql,
                               const PgParams *p, const char *what);
int tide_pgs_sent_socket(PgStore *s);
int tide_pgs_write_commit_read(PgStore *s, const char *what,
                               PGresult **out);

/* The same for a write that returns one row's id into *id (may be NULL);
** TIDE_ENOTFOUND when it returns no row. */
int tide_pgs_write_returning(PgStore *s, int slot, const char *sql,
                             const PgParams *p, const char *what,
                             int64_t *id);

/* tide_pgs_read that leaves the result on the store (s->held), so that
** the caller hands out pointers into its first row; TIDE_ENOTFOUND when
** it has no row. */
int tide_pgs_get(PgStore *s, int slot, const char *sql, const PgParams *p,
                 const char *what, PGresult **out);
/* The same as a read apart (tide_pgs_read_apart). */
int tide_pgs_get_apart(PgStore *s, int slot, const char *sql,
                       const PgParams *p, const char *what, PGresult **out);

/* Checks that the store is writable and opens the batch if none is. */
int tide_pgs_write_begin(PgStore *s);


/* The schema (store_pg_schema.c): 0 for a store of a version this tide
** reads (an older one only when opened for writing), 1 for a schema that
** is missing or holds no table, or an error; its creation; and its
** upgrade to this tide's version, by a writer that holds the lock. All
** on a connection not yet in pipeline mode. */
int tide_pgs_schema_check(PgStore *s);
int tide_pgs_schema_create(PgStore *s);
int tide_pgs_schema_upgrade(PgStore *s);

/* ---- Reading results (binary) ---- */

static inline int64_t pg_int(const PGresult *r, int row, int col) {
  const unsigned char *p;
  uint64_t v = 0;
  int i, n;
  if (PQgetisnull(r, row, col)) return 0;
  p = (const unsigned char *)PQgetvalue(r, row, col);
  n = PQgetlength(r, row, col);
  for (i = 0; i < n && i < 8; i++) v = (v << 8) | p[i];
  if (n == 4) return (int32_t)(uint32_t)v;
  return (int64_t)v;
}

/* Bytes (text or blob): NULL with length 0 for SQL NULL; libpq ends them
** with a NUL byte it does not count. */
static inline const char *pg_bytes(const PGresult *r, int row, int col,
                                   size_t *len) {
  if (PQgetisnull(r, row, col)) {
    *len = 0;
    return NULL;
  }
  *len = (size_t)PQgetlength(r, row, col);
  return PQgetvalue(r, row, col);
}

static inline const uint8_t *pg_fp(const PGresult *r, int row, int col) {
  size_t len;
  const char *p = pg_bytes(r, row, col, &len);
  return len == TIDE_FP_SIZE ? (const uint8_t *)p : NULL;
}

static inline void pg_param_int(PgParams *p, int64_t v) {
  uint64_t u = (uint64_t)v;
  int i;
  for (i = 7; i >= 0; i--) {
    p->ints[p->n][i] = (char)(u & 0xff);
    u >>= 8;
  }
  p->values[p->n] = p->ints[p->n];
  p->lengths[p->n] = 8;
  p->formats[p->n] = 1;
  p->n++;
}

/* len bytes, or SQL NULL for a NULL pointer. */
static inline void pg_param_bytes(PgParams *p, const void *v, size_t len) {
  p->values[p->n] = (const char *)v;
  p->lengths[p->n] = v ? (int)len : 0;
  p->formats[p->n] = 1;
  p->n++;
}

static inline void pg_param_fp(PgParams *p, const uint8_t *fp) {
  pg_param_bytes(p, fp, TIDE_FP_SIZE);
}

/* A row id, 0 standing for NULL. */
static inline void pg_param_id(PgParams *p, int64_t id) {
  if (id)
    pg_param_int(p, id);
  else
    pg_param_bytes(p, NULL, 0);
}

/* ---- The backend's functions: store.h's, for a PgStore ---- */

int tide_pgs_open(PgStore **out, const char *location, int flags,
                  tide_Alloc alloc, void *ud);
int tide_pgs_open_again(PgStore **out, const PgStore *from, int flags);
int tide_pgs_close(PgStore *s);
int tide_pgs_unlock(PgStore *s);
int tide_pgs_relock(PgStore *s, int *changed);
int tide_pgs_checkpoint_on(PgStore *s, uv_loop_t *loop);
const char *tide_pgs_path(const PgStore *s);
int tide_pgs_flush(PgStore *s);
int tide_pgs_flush_send(PgStore *s);
int tide_pgs_flush_wait(PgStore *s);
int tide_pgs_maybe_flush(PgStore *s);
int tide_pgs_rollback(PgStore *s);
int tide_pgs_space(PgStore *s, tide_StoreSpace *space);
int tide_pgs_reclaim(PgStore *s, int64_t *freed);
int tide_pgs_app_get_or_create(PgStore *s, const char *name, size_t name_len,
                               int64_t *id, int *created);
int tide_pgs_app_lookup(PgStore *s, const char *name, size_t name_len,
                        tide_StoreApp *app);
int tide_pgs_app_each(PgStore *s, tide_StoreAppFn fn, void *arg);
int tide_pgs_app_delete(PgStore *s, int64_t app_id);
int tide_pgs_component_put(PgStore *s, const tide_StoreComponent *c,
                           int64_t *id);
int tide_pgs_component_get(PgStore *s, int64_t app_id, const char *path,
                           size_t path_len, tide_StoreComponent *c);
int tide_pgs_component_delete(PgStore *s, int64_t id);
int tide_pgs_component_hold(PgStore *s, int64_t id);
int tide_pgs_components_delete(PgStore *s, const int64_t *ids, size_t n);
int tide_pgs_component_state(PgStore *s, int64_t id, const void **state,
                             size_t *state_len);
int tide_pgs_component_path(PgStore *s, int64_t id, const char **path,
                            size_t *path_len);
int tide_pgs_component_each(PgStore *s, int64_t app_id,
                            tide_StoreComponentFn fn, void *arg);
int tide_pgs_component_each_brief(PgStore *s, int64_t app_id,
                                  tide_StoreComponentFn fn, void *arg);
int tide_pgs_component_each_under(PgStore *s, int64_t app_id,
                                  const char *const *paths,
                                  const size_t *lens, size_t n,
                                  tide_StoreComponentFn fn, void *arg);
int tide_pgs_component_count(PgStore *s, int64_t app_id, int64_t max,
                             int64_t *count);
int tide_pgs_memo_get(PgStore *s, int64_t app_id, const uint8_t *key,
                      tide_StoreMemo *m);
int tide_pgs_memo_put(PgStore *s, const tide_StoreMemo *m);
int tide_pgs_memo_delete(PgStore *s, int64_t app_id, const uint8_t *key);
int tide_pgs_memo_each_key(PgStore *s, int64_t app_id, tide_StoreMemoKeyFn fn,
                           void *arg);
int tide_pgs_memo_ref_add(PgStore *s, int64_t app_id, int64_t component_id,
                          const uint8_t *key);
int tide_pgs_memo_refs_each(PgStore *s, int64_t component_id,
                            tide_StoreMemoRefFn fn, void *arg);
int tide_pgs_memo_refs_clear(PgStore *s, int64_t component_id);
int tide_pgs_memo_ref_exists(PgStore *s, int64_t app_id, const uint8_t *key,
                             int *used);
int tide_pgs_components_before(PgStore *s, const int64_t *ids, size_t n,
                               tide_StoreStateFn states,
                               tide_StoreComponentRefFn refs, void *arg);
int tide_pgs_memo_delete_unused(PgStore *s, int64_t app_id,
                                const uint8_t *keys, size_t n);
int tide_pgs_memo_delete_unreferenced(PgStore *s, int64_t app_id);
int tide_pgs_container_get_or_create(PgStore *s, int64_t app_id,
                                     const char *kind, size_t kind_len,
                                     const char *identity,
                                     size_t identity_len, int64_t *id,
                                     int *created);
int tide_pgs_container_get(PgStore *s, int64_t id, tide_StoreContainer *c);
int tide_pgs_container_update(PgStore *s, const tide_StoreContainer *c);
int tide_pgs_container_delete(PgStore *s, int64_t id);
int tide_pgs_container_each(PgStore *s, int64_t app_id,
                            tide_StoreContainerFn fn, void *arg);
int tide_pgs_target_put(PgStore *s, const tide_StoreTarget *t);
int tide_pgs_target_mark_applied(PgStore *s, int64_t container_id,
                                 const void *key, size_t key_len);
int tide_pgs_targets_mark_applied(PgStore *s, int64_t container_id);
int tide_pgs_target_delete(PgStore *s, int64_t container_id, const void *key,
                           size_t key_len);
int tide_pgs_target_get(PgStore *s, int64_t container_id, const void *key,
                        size_t key_len, tide_StoreTarget *t);
int tide_pgs_target_get_committed(PgStore *s, int64_t container_id,
                                  const void *key, size_t key_len,
                                  tide_StoreTarget *t);
int tide_pgs_target_each_by_owner_committed(PgStore *s, int64_t owner_id,
                                            tide_StoreTargetFn fn,
                                            void *arg);
int tide_pgs_target_each_by_owner(PgStore *s, int64_t owner_id,
                                  tide_StoreTargetFn fn, void *arg);
int tide_pgs_target_each_by_container(PgStore *s, int64_t container_id,
                                      tide_StoreTargetFn fn, void *arg);
int tide_pgs_target_each_pending(PgStore *s, int64_t app_id,
                                 tide_StoreTargetFn fn, void *arg);
int tide_pgs_memo_each_of(PgStore *s, int64_t app_id,
                          const uint8_t *const *keys, size_t n,
                          tide_StoreMemoFn fn, void *arg);
int tide_pgs_target_each_by_owners(PgStore *s, const int64_t *ids, size_t n,
                                   tide_StoreTargetFn fn, void *arg);
int tide_pgs_target_each_of_keys(PgStore *s, int64_t container_id,
                                 const char *const *keys, const size_t *lens,
                                 size_t n, int committed,
                                 tide_StoreTargetFn fn, void *arg);
/* Reads ahead the committed states of the owners ids[0..count) in one
** statement (store_pg_ahead.c). */
int tide_pgs_ahead_read(PgStore *s, const int64_t *ids, size_t count);
/* Answers fn for the owner's states read ahead, once, and sets *taken; 0
** with *taken unset when they were not read ahead. */
int tide_pgs_ahead_take(PgStore *s, int64_t owner, tide_StoreTargetFn fn,
                        void *arg, int *taken);
/* Lets go what was read ahead and not taken. */
void tide_pgs_ahead_forget(PgStore *s);
/* The columns of a target state, and one filled from a row of them. */
#define TIDE_PG_TARGET_COLUMNS \
  "container_id, key, owner_id, value_fp, pending, written_ns"
void tide_pgs_fill_target(const PGresult *r, int row, tide_StoreTarget *t);
int tide_pgs_target_owner_each(PgStore *s, int64_t container_id,
                               int held_only, tide_StorePathFn fn, void *arg);
int tide_pgs_targets_mark_unknown(PgStore *s, int64_t container_id);
int tide_pgs_intent_add(PgStore *s, int64_t app_id, int64_t container_id,
                        const void *keys, size_t keys_len, int64_t *id);
int tide_pgs_intent_delete(PgStore *s, int64_t id);
int tide_pgs_intent_each(PgStore *s, int64_t app_id, tide_StoreIntentFn fn,
                         void *arg);
int tide_pgs_source_get(PgStore *s, int64_t app_id, const char *source,
                        size_t source_len, const char *key, size_t key_len,
                        tide_StoreSourceItem *item);
int tide_pgs_source_put(PgStore *s, const tide_StoreSourceItem *item);
int tide_pgs_source_delete(PgStore *s, int64_t app_id, const char *source,
                           size_t source_len, const char *key,
                           size_t key_len);
int tide_pgs_source_each(PgStore *s, int64_t app_id, const char *source,
                         size_t source_len, tide_StoreSourceItemFn fn,
                         void *arg);
int tide_pgs_source_each_app(PgStore *s, int64_t app_id,
                             tide_StoreSourceItemFn fn, void *arg);
int tide_pgs_run_begin(PgStore *s, int64_t app_id, int64_t *run_id);
int tide_pgs_run_finish(PgStore *s, int64_t run_id, int status,
                        const char *stats, size_t stats_len);
int tide_pgs_run_each_latest(PgStore *s, int64_t app_id, int limit,
                             tide_StoreRunFn fn, void *arg);
int tide_pgs_update_open(PgStore *s, int64_t app_id, int64_t *id);
int tide_pgs_update_set(PgStore *s, int64_t id, int state, const void *info,
                        size_t info_len);
int tide_pgs_update_current(PgStore *s, int64_t app_id, int64_t *id,
                            int *state, const void **info, size_t *info_len);
int tide_pgs_work_add(PgStore *s, int64_t update_id, const char *path,
                      size_t path_len, const void *item, size_t item_len);
int tide_pgs_worker_join(PgStore *s, int64_t update_id, const char *host,
                         size_t host_len, int64_t pid, int64_t *id);
int tide_pgs_worker_beat(PgStore *s, int64_t worker_id);
/* A claim's first step, with the worker's beat: the ready items after
** the last this worker claimed ($1 update, $2 worker, $3 how many at
** most, $4 the mark: store_pg_claim.c). */
extern const char tide_pgs_claim_next_sql[];
/* Hands the work items of a claim's result to fn, in order. */
int tide_pgs_emit_work_items(PGresult *r, tide_StoreWorkItemFn fn,
                             void *arg);
/* A claim's first parameters: update_id, worker_id, max and the mark of
** their claims (the last item claimed), which tide_pgs_claim_advance
** moves past the items of a claim's result. */
void tide_pgs_claim_params(PgStore *s, int64_t update_id, int64_t worker_id,
                           int max, PgParams *p);
void tide_pgs_claim_advance(PgStore *s, const PGresult *r);
int tide_pgs_claim_send(PgStore *s, int64_t update_id, int64_t worker_id,
                        int max);
int tide_pgs_claim_socket(PgStore *s);
int tide_pgs_claim_read(PgStore *s, tide_StoreWorkItemFn fn, void *arg,
                        int *count);
int tide_pgs_work_claim(PgStore *s, int64_t update_id, int64_t worker_id,
                        int max, int64_t lease_ms, tide_StoreWorkItemFn fn,
                        void *arg, int64_t *open);
int tide_pgs_work_done(PgStore *s, int64_t item_id, int64_t worker_id,
                      int state);
int tide_pgs_work_reopen(PgStore *s, int64_t update_id, int64_t *n);
int tide_pgs_worker_leave(PgStore *s, int64_t worker_id, const char *stats,
                          size_t stats_len);
int tide_pgs_work_open(PgStore *s, int64_t update_id, int64_t *open);
int tide_pgs_beat_start(PgStore *s, int64_t worker_id, int interval_ms,
                        tide_StoreBeat **out);
int tide_pgs_work_redo(PgStore *s, int64_t update_id, const char *path,
                       size_t path_len);
int tide_pgs_workers_alive(PgStore *s, int64_t update_id, int64_t lease_ms,
                           int64_t *alive);
int tide_pgs_worker_each(PgStore *s, int64_t update_id,
                         tide_StoreWorkerFn fn, void *arg);
int tide_pgs_worker_count(PgStore *s, int64_t worker_id, const char *name,
                          size_t name_len, int64_t n);
int tide_pgs_worker_counts(PgStore *s, int64_t update_id,
                           tide_StoreCountFn fn, void *arg);

#endif
