/*
** The state store: one SQLite file in WAL mode, shared by several apps,
** holding everything tide remembers between runs (DESIGN.md section 4).
** The schema is documented at the top of store_schema.c.
**
** Contract, for every function below unless it says otherwise:
** - It returns 0 or a negative TIDE_E* code, and on failure leaves a
**   message on the store (tide_store_errmsg). TIDE_ENOTFOUND from a get or
**   an update is an ordinary outcome and leaves the message unchanged.
** - Text is bytes: a string argument `name` comes with `name_len`, and a
**   string field `name` of a struct with a field `name_len`. The length is
**   what counts, never a NUL: a component path, a key, a source key or an
**   identity may hold NUL bytes, and two strings that differ only after a
**   NUL are different. Text handed out by a get or an iterator is followed
**   by a NUL byte that its length does not count. Blobs are (pointer,
**   length) too. A NULL string or blob pointer stores SQL NULL, and reads
**   back as NULL with length 0. Fingerprints are TIDE_FP_SIZE raw bytes.
**   Row ids are positive; 0 stands for "none" (SQL NULL). Only the file
**   path given to tide_store_open and the messages are C strings.
** - Pointers in a struct filled by a get are borrowed from the store and
**   stay valid until the next call on the store. Pointers handed to an
**   iterator's callback stay valid only during that callback.
** - An iterator calls fn(arg, row) per row; fn returns 0 to go on, and any
**   other value stops the iteration and is returned as is (so a callback
**   can stop early with 1, or fail with its own negative code). A callback
**   may call other store functions, but must not start the same iteration
**   again (TIDE_EINVAL).
** - Writes go into a batch transaction that the first write opens; see
**   tide_store_flush. A store opened with TIDE_STORE_READ refuses writes.
**   The writes a cycle makes for each component (component, target state
**   and source item puts, memo entries and references, intents) may be
**   kept and run later, in call order, by either backend: such a write
**   that fails fails its batch (rolled back), reported by the next call
**   or flush.
** - A store is used by one thread at a time (a SQLite store runs a sent
**   batch on a thread of its own, which its caller never sees).
*/
#ifndef TIDE_STORE_H
#define TIDE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "tide.h"

/* Open modes: exactly one of them. TIDE_STORE_SHARED writes without the
** writer lock: a worker's, in an update the lock's holder runs (a
** PostgreSQL store's only; the store must exist). */
#define TIDE_STORE_READ 1
#define TIDE_STORE_WRITE 2
#define TIDE_STORE_SHARED 3

/* The on-disk format version this tide writes. A store of an earlier
** version (TIDE_STORE_FORMAT_OLDEST and up) is read as it is and upgraded
** in place when opened for writing (store_sqlite_schema.c says what
** changed). A PostgreSQL store has a format version of its own
** (TIDE_STORE_PG_FORMAT_VERSION), and is upgraded the same way from
** TIDE_STORE_PG_FORMAT_OLDEST (store_pg_schema.c says what changed); a
** store of an older version is not read until a writer upgrades it. */
#define TIDE_STORE_FORMAT_VERSION 3
#define TIDE_STORE_FORMAT_OLDEST 1
#define TIDE_STORE_PG_FORMAT_VERSION 4
#define TIDE_STORE_PG_FORMAT_OLDEST 2

/* The length of a fingerprint (BLAKE2b-128). */
#define TIDE_FP_SIZE 16

/* The run log, and the log of shared updates with their workers, keep
** this many of each app's latest: a live session records one a cycle,
** and its store would otherwise grow with its age, not its content. */
#define TIDE_STORE_LOG_KEPT 100

/* Batch defaults for tide_store_maybe_flush. */
#define TIDE_STORE_BATCH_WRITES 2000
#define TIDE_STORE_BATCH_MS 100

/* Target state pending flags. */
#define TIDE_TARGET_APPLIED 0
#define TIDE_TARGET_UPSERT_PENDING 1
#define TIDE_TARGET_DELETE_PENDING 2
#define TIDE_TARGET_UNKNOWN 3   /* an upsert a crash interrupted */
#define TIDE_TARGET_RELEASED 4  /* its owner let it go; deleted at run end */

typedef struct tide_Store tide_Store;

/* ---- Opening and closing ---- */

/*
** Opens the store at path. TIDE_STORE_WRITE creates the file and its
** parent directories when missing, creates the schema in an empty file and
** takes the writer lock (TIDE_ELOCKED when another process holds it).
** TIDE_STORE_READ opens read-only without a lock (TIDE_ENOTFOUND when the
** file is missing or empty). A file that is not a tide store gives
** TIDE_ENOTSTORE, a format version this tide does not know gives
** TIDE_EVERSION; such files are never modified. An older version it knows
** is upgraded by a write open, in one transaction. On failure *out is
** still a store holding the message, to be closed by the caller, unless
** memory ran out before it existed (then *out is NULL, TIDE_ENOMEM).
** alloc may be NULL for the default allocator; SQLite itself allocates
** through its own allocator.
*/
int tide_store_open(tide_Store **out, const char *path, int flags,
                    tide_Alloc alloc, void *ud);

/*
** Opens the store s was opened on again, with flags and the default
** allocator, as tide_store_open would: a connection of its own, for
** another thread (the index's load, index.h). A PostgreSQL store is
** reached as s reached it, password included; a SQLite store must have
** been opened by an absolute path (else TIDE_EINVAL and *out NULL: an
** in-memory or relative one cannot be found again from elsewhere).
** Opened again read-only, a PostgreSQL store reads from one snapshot,
** what was committed at its first read, until it is closed: a thread's
** reads agree even while the workers of a shared update write. It reads
** only what s's open fixed, so another thread may call it while s
** is in use; s must stay open until it returns. Other failures as
** tide_store_open's.
*/
int tide_store_open_again(tide_Store **out, const tide_Store *s, int flags);

/*
** Commits the open batch, then frees the store and releases the writer
** lock. Accepts NULL. Returns the commit's status; the store is freed even
** when that fails, so call tide_store_flush first to read the message.
*/
int tide_store_close(tide_Store *s);

/*
** A session keeps its store open across update cycles but holds the
** writer lock only during a cycle, so that another process may update
** the store in between. tide_store_unlock commits the open batch and
** lets the lock go (a no-op on a read-only or already unlocked store);
** tide_store_relock takes it again (TIDE_ELOCKED when another writer
** holds it) and sets *changed when another connection committed in
** between, so that what the session keeps in memory is reloaded. On a
** PostgreSQL store, shared (a worker's, which takes no lock) or not,
** it fails with TIDE_EIO when a failure found the connection cut: the
** store is then to be closed and opened anew.
*/
int tide_store_unlock(tide_Store *s);
int tide_store_relock(tide_Store *s, int *changed);

/*
** Makes the store's checkpoints on loop's thread pool (checkpointer.h)
** instead of in the commit that fills the log, so that a commit never
** waits for the disk. For a writer used on loop's thread, once; the store
** detaches it when it closes, and the loop must run afterwards for a
** checkpoint under way to be freed. 0, TIDE_ENOMEM, or TIDE_EINVAL on a
** read-only store.
*/
int tide_store_checkpoint_on(tide_Store *s, uv_loop_t *loop);

/* The last error message, or "" when none; "out of memory" for NULL. The
** string is borrowed until the next call on the store. */
const char *tide_store_errmsg(const tide_Store *s);

/* The location the store was opened with, as messages show it: a file
** path as given, a PostgreSQL location without its password (borrowed). */
const char *tide_store_path(const tide_Store *s);

/* 1 when location names a PostgreSQL store (it starts with postgresql://
** or postgres://, or is a libpq keyword=value string such as
** "host=/run/postgresql dbname=docs"): a location, never a path to join
** to a folder. */
int tide_store_is_postgres(const char *location);

/* Writes location as tide_store_path would show it into out (size bytes,
** strlen(location) + 1 is always enough); 0, or TIDE_EINVAL with a
** message in out for a PostgreSQL location tide cannot read. */
int tide_store_public_location(const char *location, char *out,
                               size_t size);

/* ---- Group commit ---- */

/* Commits the open batch, if any. */
int tide_store_flush(tide_Store *s);
/* Starts committing the open batch and returns, so that the caller works
** while it commits (PostgreSQL: the commit is sent, its answer read
** later; SQLite: the batch's queued writes and its commit run on the
** store's writer thread, store_sqlite.h). The outcome is read by the
** next call on the store, which fails with it when the commit failed,
** and told by tide_store_flush_wait until the next send. */
int tide_store_flush_send(tide_Store *s);
/* Waits for the batch tide_store_flush_send last sent: 0 once it is
** committed, or the code and message of its failure (the batch was
** rolled back). */
int tide_store_flush_wait(tide_Store *s);

/* Commits the open batch when it holds at least max_writes writes or was
** opened at least max_ms milliseconds ago; otherwise does nothing. */
int tide_store_maybe_flush(tide_Store *s);

/* Discards the open batch, if any. */
int tide_store_rollback(tide_Store *s);

/* How many batches a failure rolled back since the store was opened (the
** caller's own rollbacks aside): a shared update's worker whose batch was
** lost leaves the update (its items' records and done marks went with
** it); one process records nothing more in its run. */
int64_t tide_store_batches_lost(const tide_Store *s);

/* The failure that rolled back the last batch lost ("LOCATION: cannot
** record a component: ..."), or NULL when none was. Valid until the next
** batch is lost or the store is closed. */
const char *tide_store_lost_message(const tide_Store *s);

/* Sets the limits tide_store_maybe_flush uses; a value <= 0 restores the
** default (TIDE_STORE_BATCH_WRITES, TIDE_STORE_BATCH_MS). */
void tide_store_set_batch_limits(tide_Store *s, int64_t max_writes,
                                 int64_t max_ms);

/* The number of writes in the open batch (0 when none is open). */
int64_t tide_store_batch_writes(const tide_Store *s);

/* 1 when the open batch holds the memo lock alone, which every other
** batch's commit waits for until this one ends: on PostgreSQL, once it
** has sent memo entries before its commit or deleted some
** (store_pg_bulk.c). Its writer should commit at its next chance rather
** than at its batch's end. Always 0 on SQLite, whose one writer waits
** for no other. */
int tide_store_holds_memo_lock(const tide_Store *s);

/* ---- Space ---- */

/* tide_store_reclaim gives free pages back when more than this percentage
** of the store's pages, and more than this many bytes, are free. */
#define TIDE_STORE_RECLAIM_SHARE 25
#define TIDE_STORE_RECLAIM_MIN_BYTES ((int64_t)1 << 20)

typedef struct tide_StoreSpace {
  int64_t page_size;  /* in bytes */
  int64_t pages;      /* the database's size in pages, free ones included */
  int64_t free_pages; /* pages on the freelist: held for nothing */
  int incremental;    /* 1 when auto_vacuum is INCREMENTAL */
} tide_StoreSpace;

/* Fills *space with the store's size as SQLite counts it (the WAL aside).
** Reads what the last committed batch left. */
int tide_store_space(tide_Store *s, tide_StoreSpace *space);

/*
** Gives the store's free pages back to the file system, so that its size
** tracks what it holds, when they are worth it: more than
** TIDE_STORE_RECLAIM_SHARE percent of its pages and more than
** TIDE_STORE_RECLAIM_MIN_BYTES. Commits the open batch first. A store
** created by this tide has auto_vacuum INCREMENTAL and runs an incremental
** vacuum, which costs the pages it moves. A store created before has
** auto_vacuum NONE; it is rewritten once by VACUUM, which also switches it
** to INCREMENTAL, and costs writing the whole store through the WAL and
** temporary space of its size. Either is one transaction: a crash leaves
** the store as it was before or after. A checkpoint then writes the WAL
** back and truncates both files; a reader holding an older snapshot makes
** it stop short without waiting, and the file shrinks at a later
** checkpoint (not an error). TIDE_EINVAL on a store opened read-only.
** *freed (may be NULL) receives the number of pages given back, 0 when
** the free pages were below the thresholds.
*/
int tide_store_reclaim(tide_Store *s, int64_t *freed);

/* ---- Apps ---- */

typedef struct tide_StoreApp {
  int64_t id;
  const char *name;
  size_t name_len;
  int64_t created_ns;
} tide_StoreApp;

typedef int (*tide_StoreAppFn)(void *arg, const tide_StoreApp *app);

/* Sets *id to the app named name, creating it when missing; *created (may
** be NULL) says which happened. */
int tide_store_app_get_or_create(tide_Store *s, const char *name,
                                 size_t name_len, int64_t *id, int *created);
/* Fills *app for the app named name; TIDE_ENOTFOUND when there is none. */
int tide_store_app_lookup(tide_Store *s, const char *name, size_t name_len,
                          tide_StoreApp *app);
/* Every app, in name order. */
int tide_store_app_each(tide_Store *s, tide_StoreAppFn fn, void *arg);
/* Deletes the app and everything it owns: components, memos, containers
** and their target states, source items, runs. */
int tide_store_app_delete(tide_Store *s, int64_t app_id);

/* ---- Processing components ---- */

/* A put's id for a component the caller knows is not in the store. */
#define TIDE_STORE_NEW_ID (-1)

typedef struct tide_StoreComponent {
  int64_t id;                /* put: see tide_store_component_put */
  int64_t app_id;
  const char *path;          /* may hold NUL: a key is part of it */
  size_t path_len;
  int64_t parent_id;         /* 0 for none */
  const char *fn_name;
  size_t fn_name_len;
  const uint8_t *logic_fp;   /* TIDE_FP_SIZE bytes, or NULL */
  const uint8_t *input_fp;   /* TIDE_FP_SIZE bytes, or NULL */
  const char *source_key;    /* or NULL */
  size_t source_key_len;
  const void *state;         /* CBOR: value, deps, memo keys; or NULL */
  size_t state_len;
  int status;
  const char *error;         /* or NULL */
  size_t error_len;
  int64_t updated_ns;        /* set by put to the current time */
  const uint8_t *deps_fp;    /* TIDE_FP_SIZE bytes, or NULL */
} tide_StoreComponent;

typedef int (*tide_StoreComponentFn)(void *arg,
                                     const tide_StoreComponent *c);

/* Inserts or updates the component at (c->app_id, c->path); *id (may be
** NULL) receives its row id, which stays the same across updates. c->id
** says what the caller knows: 0 nothing (the store finds the component
** by its path), its row id (read from the store), or TIDE_STORE_NEW_ID
** (it is not in the store). A store that must wait for a server to find
** an id (PostgreSQL) does not wait for the other two; a put whose id
** turns out wrong fails the batch when it is next synchronised. */
int tide_store_component_put(tide_Store *s, const tide_StoreComponent *c,
                             int64_t *id);
/* Fills *c; TIDE_ENOTFOUND when there is none. */
int tide_store_component_get(tide_Store *s, int64_t app_id,
                             const char *path, size_t path_len,
                             tide_StoreComponent *c);
int tide_store_component_delete(tide_Store *s, int64_t id);
/* Marks the component with row id id incomplete (status 2) if its row
** says ok, in the open batch, without reading it: a component that runs
** again while its descendants are recorded, which a crash must not leave
** carried over (reconcile.lua). path is its path, for the notes of
** component writes (tide_store_track_components). Queued on SQLite,
** after the puts queued before it. */
int tide_store_component_hold(tide_Store *s, int64_t id, const char *path,
                              size_t path_len);
/* Deletes the components of the n row ids given (one already gone is no
** matter), in the open batch: on PostgreSQL one statement for up to 1024
** of them. */
int tide_store_components_delete(tide_Store *s, const int64_t *ids,
                                 size_t n);
/* Sets *path and *path_len to the path of the component with row id id
** (borrowed until the next call on the store); TIDE_ENOTFOUND if none. */
int tide_store_component_path(tide_Store *s, int64_t id, const char **path,
                              size_t *path_len);
/* Sets *state and *state_len to the state of the component with row id
** id (NULL and 0 for none; borrowed until the next call on the store);
** TIDE_ENOTFOUND if there is no such component. */
int tide_store_component_state(tide_Store *s, int64_t id, const void **state,
                               size_t *state_len);
/*
** What a batch needs of its components' previous rows before it records
** them anew, read in one go: states(arg, id, state, state_len) for each of
** ids[0..n) that is there (state NULL for none; borrowed for the call),
** then refs(arg, id, key) for each memo entry each used (tide_store_memo
** _refs_each). Either callback may be NULL. An id given twice may be
** answered once or twice. The same answers as the calls one by one; on
** PostgreSQL two statements instead of two round trips a component.
*/
typedef int (*tide_StoreStateFn)(void *arg, int64_t id, const void *state,
                                 size_t state_len);
typedef int (*tide_StoreComponentRefFn)(void *arg, int64_t component_id,
                                        const uint8_t *key);
int tide_store_components_before(tide_Store *s, const int64_t *ids, size_t n,
                                 tide_StoreStateFn states,
                                 tide_StoreComponentRefFn refs, void *arg);
/* Every component of the app, in path order (a parent before its
** children), from one sequential statement without allocating. */
int tide_store_component_each(tide_Store *s, int64_t app_id,
                              tide_StoreComponentFn fn, void *arg);
/* Every component of the app in no set order, with only id, app_id, path,
** logic_fp, input_fp, deps_fp and status filled (the rest is 0 or NULL),
** in the order the backend reads fastest: a SQLite file's row order (one
** scan, where path order costs a lookup per row), PostgreSQL's path
** order (pages through the app's path index, the one plan its statistics
** cannot turn into a sort of the whole table). For a caller that orders
** them itself (the component index). */
int tide_store_component_each_brief(tide_Store *s, int64_t app_id,
                                    tide_StoreComponentFn fn, void *arg);
/* The components at each of the n paths (lens[i] bytes) and below them
** (path + "/" and more), filled as tide_store_component_each_brief fills
** them, in no set order; a component under two of the paths comes twice.
** One statement (PostgreSQL: one round trip) for the n paths. */
int tide_store_component_each_under(tide_Store *s, int64_t app_id,
                                    const char *const *paths,
                                    const size_t *lens, size_t n,
                                    tide_StoreComponentFn fn, void *arg);
/* How many components the app has, into *count; with max > 0, no more
** than max: the count stops there, a bound on what it reads (a count of
** a large table is a scan of its index, and of its rows while
** PostgreSQL has not vacuumed them). */
int tide_store_component_count(tide_Store *s, int64_t app_id, int64_t max,
                               int64_t *count);

/*
** Component writes, for a component index kept up to date across the
** cycles of a session (index.h, tide_index_refresh) instead of read again
** whole. While tracking is on, every put notes its path, every delete its
** row id, and deleting an app notes that everything must be read again
** (so do running out of memory for a note and notes past
** TIDE_STORE_WRITTEN_MAX bytes). tide_store_written hands
** the notes over, fn(arg, path, len, id) each (path NULL for a delete by
** id; fn NULL only forgets), sets *all when everything must be read
** again, and forgets them. A
** note says only what to read again: a batch rolled back afterwards is
** read as the store then holds it.
*/
void tide_store_track_components(tide_Store *s, int on);
/* Notes beyond this many bytes become "everything". */
#define TIDE_STORE_WRITTEN_MAX (1 << 20)
typedef int (*tide_StoreWrittenFn)(void *arg, const char *path, size_t len,
                                   int64_t id);
int tide_store_written(tide_Store *s, int *all, tide_StoreWrittenFn fn,
                       void *arg);

/* ---- Memo entries ---- */

typedef struct tide_StoreMemo {
  int64_t app_id;
  const uint8_t *key;        /* TIDE_FP_SIZE bytes */
  const char *fn_name;
  size_t fn_name_len;
  const void *value;         /* CBOR, or NULL */
  size_t value_len;
  const void *deps;          /* CBOR, or NULL */
  size_t deps_len;
  const void *targets;       /* CBOR, or NULL */
  size_t targets_len;
  int64_t updated_ns;        /* set by put to the current time */
} tide_StoreMemo;

typedef int (*tide_StoreMemoKeyFn)(void *arg, const uint8_t *key,
                                   const char *fn_name, size_t fn_name_len);

/* Fills *m; TIDE_ENOTFOUND when there is no entry. */
int tide_store_memo_get(tide_Store *s, int64_t app_id, const uint8_t *key,
                        tide_StoreMemo *m);
/* The entries of the app among the keys keys[0..n) (an entry found is
** answered once, in no set order; those missing are not answered): the
** same answers as tide_store_memo_get for each, on PostgreSQL from one
** statement. */
typedef int (*tide_StoreMemoFn)(void *arg, const tide_StoreMemo *m);
int tide_store_memo_each_of(tide_Store *s, int64_t app_id,
                            const uint8_t *const *keys, size_t n,
                            tide_StoreMemoFn fn, void *arg);
/* Inserts or replaces the entry at (m->app_id, m->key). */
int tide_store_memo_put(tide_Store *s, const tide_StoreMemo *m);
int tide_store_memo_delete(tide_Store *s, int64_t app_id,
                           const uint8_t *key);
/* The key and function name of every memo entry of the app. */
int tide_store_memo_each_key(tide_Store *s, int64_t app_id,
                             tide_StoreMemoKeyFn fn, void *arg);

/* ---- Memo references: which component used which memo entry ---- */

typedef int (*tide_StoreMemoRefFn)(void *arg, const uint8_t *key);

/* Records that the component used the memo entry key. */
int tide_store_memo_ref_add(tide_Store *s, int64_t app_id,
                            int64_t component_id, const uint8_t *key);
/* The keys of the memo entries the component used. */
int tide_store_memo_refs_each(tide_Store *s, int64_t component_id,
                              tide_StoreMemoRefFn fn, void *arg);
/* Forgets every memo entry the component used. */
int tide_store_memo_refs_clear(tide_Store *s, int64_t component_id);
/* *used is 1 when some component of the app uses the memo entry key. */
int tide_store_memo_ref_exists(tide_Store *s, int64_t app_id,
                               const uint8_t *key, int *used);
/* Deletes, of the n memo entries whose keys are at keys (n times
** TIDE_FP_SIZE bytes), those no component of the app uses: the run's end
** collects what lost its last user. On PostgreSQL a few statements, not
** one round trip a key. */
int tide_store_memo_delete_unused(tide_Store *s, int64_t app_id,
                                  const uint8_t *keys, size_t n);
/* Deletes every memo entry of the app that no component uses: after a
** run whose list of entries to collect was lost with a process (a crash,
** a shared update's worker that died). In the open batch. */
int tide_store_memo_delete_unreferenced(tide_Store *s, int64_t app_id);

/* ---- Target containers ---- */

typedef struct tide_StoreContainer {
  int64_t id;
  int64_t app_id;
  const char *kind;          /* the target type's name */
  size_t kind_len;
  const char *identity;      /* may hold NUL: it can be a fingerprint */
  size_t identity_len;
  const void *spec;          /* CBOR, or NULL */
  size_t spec_len;
  const uint8_t *schema_fp;  /* TIDE_FP_SIZE bytes, or NULL */
  int64_t owner_id;          /* owning component, 0 for none */
  int state;
} tide_StoreContainer;

typedef int (*tide_StoreContainerFn)(void *arg,
                                     const tide_StoreContainer *c);

/* Sets *id to the container (app_id, kind, identity), creating it (with no
** spec, schema or owner, state 0) when missing; *created may be NULL. */
int tide_store_container_get_or_create(tide_Store *s, int64_t app_id,
                                       const char *kind, size_t kind_len,
                                       const char *identity,
                                       size_t identity_len, int64_t *id,
                                       int *created);
/* Fills *c for the container with row id id; TIDE_ENOTFOUND if none. */
int tide_store_container_get(tide_Store *s, int64_t id,
                             tide_StoreContainer *c);
/* Sets spec, schema_fp, owner_id and state of the container c->id;
** TIDE_ENOTFOUND when there is none. */
int tide_store_container_update(tide_Store *s,
                                const tide_StoreContainer *c);
/* Deletes the container and its target states. */
int tide_store_container_delete(tide_Store *s, int64_t id);
/* Every container of the app, by kind then identity. */
int tide_store_container_each(tide_Store *s, int64_t app_id,
                              tide_StoreContainerFn fn, void *arg);

/* ---- Target states ---- */

typedef struct tide_StoreTarget {
  int64_t container_id;
  const void *key;           /* CBOR */
  size_t key_len;
  int64_t owner_id;          /* owning component */
  const uint8_t *value_fp;   /* TIDE_FP_SIZE bytes, or NULL */
  int pending;               /* TIDE_TARGET_* */
  int64_t written_ns;        /* set when applied; 0 when never */
  int written;               /* put: 1 records now as when it was written */
} tide_StoreTarget;

typedef int (*tide_StoreTargetFn)(void *arg, const tide_StoreTarget *t);

/* Inserts or updates the target state (t->container_id, t->key) with its
** owner, value fingerprint and pending flag; written_ns becomes now when
** t->written is set, and is kept otherwise. */
int tide_store_target_put(tide_Store *s, const tide_StoreTarget *t);
/* Records that the pending change was applied to the target: an upsert
** becomes applied (written_ns set to now), a delete removes the row. Does
** nothing for a row that is missing or already applied. */
int tide_store_target_mark_applied(tide_Store *s, int64_t container_id,
                                   const void *key, size_t key_len);
/* Marks every pending state of the container applied at once: pending
** deletes are removed, pending upserts become applied. For a batch whose
** apply succeeded when no other state of the container is pending. */
int tide_store_targets_mark_applied(tide_Store *s, int64_t container_id);
int tide_store_target_delete(tide_Store *s, int64_t container_id,
                             const void *key, size_t key_len);
/* Fills *t; TIDE_ENOTFOUND when there is none. */
int tide_store_target_get(tide_Store *s, int64_t container_id,
                          const void *key, size_t key_len,
                          tide_StoreTarget *t);
/* Every target state owned by the component, by container then key. */
int tide_store_target_each_by_owner(tide_Store *s, int64_t owner_id,
                                    tide_StoreTargetFn fn, void *arg);
/*
** The same reads, of the committed state: they may answer without waiting
** for a batch in flight (tide_store_flush_send) and without the writes
** queued since, so they may or may not see those. For rows the caller
** knows neither changes, such as a component's own states before it is
** recorded anew (reconcile.lua: another component's writes to them are
** known to the run). The SQLite store reads them on a read-only
** connection of its own while a batch is in flight; the PostgreSQL store
** as the reads above, but apart from the writes it keeps for its batch's
** set-based statements (they are not sent first).
*/
int tide_store_target_get_committed(tide_Store *s, int64_t container_id,
                                    const void *key, size_t key_len,
                                    tide_StoreTarget *t);
int tide_store_target_each_by_owner_committed(tide_Store *s,
                                              int64_t owner_id,
                                              tide_StoreTargetFn fn,
                                              void *arg);
/*
** Reads ahead the committed states of the owners ids[0..n) (an id given
** twice is read once), so that tide_store_target_each_by_owner_committed
** answers each of them once from what was read, and the next time from
** the store again. For the components about to run again, which are each
** diffed against the states they owned (lclaims.c): on PostgreSQL one
** statement instead of a round trip a component; on SQLite, whose reads
** are local, nothing is read ahead. What was read ahead answers as the
** committed read would have when it was made. tide_store_targets_forget
** _ahead lets go of what was not asked for (the end of a run); a
** rollback does too.
*/
int tide_store_targets_read_ahead(tide_Store *s, const int64_t *ids,
                                  size_t n);
/* Whether the store's reads cross a connection to a server (PostgreSQL):
** the engine then reads what it can in groups (reconcile.lua). */
int tide_store_is_remote(const tide_Store *s);
void tide_store_targets_forget_ahead(tide_Store *s);
/* Every target state owned by the components ids[0..n), by owner in the
** order given (an id given twice is answered twice), then container and
** key: the same answers as tide_store_target_each_by_owner for each, on
** PostgreSQL from one statement. */
int tide_store_target_each_by_owners(tide_Store *s, const int64_t *ids,
                                     size_t n, tide_StoreTargetFn fn,
                                     void *arg);
/* The container's target states among the keys keys[i] (lens[i] bytes,
** i < n), each once, by key (those missing are not answered): the same
** answers as tide_store_target_get for each (committed: as
** tide_store_target_get_committed), on PostgreSQL from one statement. */
int tide_store_target_each_of_keys(tide_Store *s, int64_t container_id,
                                   const char *const *keys,
                                   const size_t *lens, size_t n,
                                   int committed, tide_StoreTargetFn fn,
                                   void *arg);
/* Every target state of the container, by key. */
int tide_store_target_each_by_container(tide_Store *s, int64_t container_id,
                                        tide_StoreTargetFn fn, void *arg);
/* The path of each component that owns a state of the container, once
** each, by path (held_only: only the owners of states the target may
** hold, neither released nor being deleted). What must run again when
** the container's content is lost: one statement, not a read a state. */
typedef int (*tide_StorePathFn)(void *arg, const char *path, size_t len);
int tide_store_target_owner_each(tide_Store *s, int64_t container_id,
                                 int held_only, tide_StorePathFn fn,
                                 void *arg);
/* Every state of the container that the target may hold (neither
** released nor being deleted) becomes unknown (TIDE_TARGET_UNKNOWN, no
** value fingerprint): the container's content was lost, so its owners
** write them again. */
int tide_store_targets_mark_unknown(tide_Store *s, int64_t container_id);
/* Every pending target state of the app, by container then key. */
int tide_store_target_each_pending(tide_Store *s, int64_t app_id,
                                   tide_StoreTargetFn fn, void *arg);

/* ---- Intents: batches of upserts being applied ---- */

typedef struct tide_StoreIntent {
  int64_t id;
  int64_t container_id;
  const void *keys;          /* CBOR: an array of the states' keys */
  size_t keys_len;
} tide_StoreIntent;

typedef int (*tide_StoreIntentFn)(void *arg, const tide_StoreIntent *in);

/* Records that the upserts of the states of container_id named by keys
** are about to be applied to the target; *id (may be NULL) receives the
** intent's id. */
int tide_store_intent_add(tide_Store *s, int64_t app_id,
                          int64_t container_id, const void *keys,
                          size_t keys_len, int64_t *id);
/* Deletes the intent: the target holds what it names. */
int tide_store_intent_delete(tide_Store *s, int64_t id);
/* Every intent of the app, oldest first. */
int tide_store_intent_each(tide_Store *s, int64_t app_id,
                           tide_StoreIntentFn fn, void *arg);

/* ---- Source items ---- */

typedef struct tide_StoreSourceItem {
  int64_t app_id;
  const char *source;
  size_t source_len;
  const char *key;           /* may hold NUL */
  size_t key_len;
  int64_t size;
  int64_t mtime_ns;
  int64_t inode;
  const uint8_t *content_fp; /* TIDE_FP_SIZE bytes, or NULL */
} tide_StoreSourceItem;

typedef int (*tide_StoreSourceItemFn)(void *arg,
                                      const tide_StoreSourceItem *item);

/* Fills *item; TIDE_ENOTFOUND when there is none. */
int tide_store_source_get(tide_Store *s, int64_t app_id, const char *source,
                          size_t source_len, const char *key, size_t key_len,
                          tide_StoreSourceItem *item);
/* Inserts or replaces the item at (app_id, source, key). */
int tide_store_source_put(tide_Store *s, const tide_StoreSourceItem *item);
int tide_store_source_delete(tide_Store *s, int64_t app_id,
                             const char *source, size_t source_len,
                             const char *key, size_t key_len);
/* Every item of the source, by key, from one sequential statement. */
int tide_store_source_each(tide_Store *s, int64_t app_id, const char *source,
                           size_t source_len, tide_StoreSourceItemFn fn,
                           void *arg);
/* Every item of every source of the app, by source then key, from one
** sequential statement (the table's own order). */
int tide_store_source_each_app(tide_Store *s, int64_t app_id,
                               tide_StoreSourceItemFn fn, void *arg);

/* ---- Run log ---- */

typedef struct tide_StoreRun {
  int64_t id;
  int64_t app_id;
  int64_t started_ns;
  int64_t finished_ns;       /* 0 while unfinished */
  int status;                /* meaningful once finished */
  const char *stats;         /* JSON, or NULL */
  size_t stats_len;
} tide_StoreRun;

typedef int (*tide_StoreRunFn)(void *arg, const tide_StoreRun *run);

/* Records the start of a run now; *run_id receives its id. The app's
** runs before its latest TIDE_STORE_LOG_KEPT go, in the same
** transaction. */
int tide_store_run_begin(tide_Store *s, int64_t app_id, int64_t *run_id);
/* Records the end of the run now, with its status and stats (JSON text,
** may be NULL); TIDE_ENOTFOUND when there is no such run. */
int tide_store_run_finish(tide_Store *s, int64_t run_id, int status,
                          const char *stats, size_t stats_len);
/* The app's latest runs, newest first, at most limit of them. */
int tide_store_run_each_latest(tide_Store *s, int64_t app_id, int limit,
                               tide_StoreRunFn fn, void *arg);

/* ---- Shared updates: work items and workers ---- */

/*
** An update shared by several processes (DESIGN.md, scale-out): the
** process that runs it lists the sources and records a work item per
** component to run; workers claim items in small batches, each under the
** worker's lease, run them, and mark each done in the batch that records
** its component, so that an item is committed once. A worker's lease
** lasts while it beats (tide_store_worker_beat) more often than the lease
** time; the items of a worker that stopped beating, or left, are claimed
** again by another. Times of leases are the server's.
**
** These need a store several processes write at once: a PostgreSQL
** store. The SQLite store returns TIDE_EINVAL with a message saying so.
*/

/* Update states. */
#define TIDE_UPDATE_LISTING 0  /* the sources are being listed (the
                                  lead's info may open it to claims) */
#define TIDE_UPDATE_LISTED 1   /* every item is recorded */
#define TIDE_UPDATE_FINISHED 2 /* every item is done, or the update ended */

typedef struct tide_StoreWorkItem {
  int64_t id;
  int64_t tries;             /* claims so far, this one included */
  const char *path;          /* the component's path */
  size_t path_len;
  const void *item;          /* CBOR: what the worker needs to run it */
  size_t item_len;
} tide_StoreWorkItem;

typedef struct tide_StoreWorker {
  int64_t id;
  int64_t update_id;
  const char *host;
  size_t host_len;
  int64_t pid;
  int64_t claimed;           /* items it holds now */
  int64_t done;              /* items it marked done */
  int64_t seen_ms_ago;       /* since its last beat, by the server's clock */
  int left;                  /* it left (or was let go) */
  const char *stats;         /* JSON: what it left the lead; or NULL */
  size_t stats_len;
} tide_StoreWorker;

typedef int (*tide_StoreWorkItemFn)(void *arg, const tide_StoreWorkItem *w);
typedef int (*tide_StoreWorkerFn)(void *arg, const tide_StoreWorker *w);

/* Records a new update of the app, TIDE_UPDATE_LISTING; *id receives it.
** Ends any earlier update of the app left open (its process died), and
** drops that update's work items. The app's finished updates before its
** latest TIDE_STORE_LOG_KEPT go, with their workers and their counts. */
int tide_store_update_open(tide_Store *s, int64_t app_id, int64_t *id);
/* Sets the update's state, and what the lead tells its workers (info,
** CBOR; NULL keeps what it was). Listed, or listing with info (opened to
** claims), it is announced when it commits (PostgreSQL: NOTIFY on the
** channel tide_SCHEMA, the update's id);
** finished, its work items are dropped (its workers keep their counts). */
int tide_store_update_set(tide_Store *s, int64_t id, int state,
                          const void *info, size_t info_len);
/* The app's latest update not finished: *id, *state and *info (borrowed
** until the next call; NULL with length 0 when none), or
** TIDE_ENOTFOUND. */
int tide_store_update_current(tide_Store *s, int64_t app_id, int64_t *id,
                              int *state, const void **info,
                              size_t *info_len);
/* Records a work item of the update (in the open batch). */
int tide_store_work_add(tide_Store *s, int64_t update_id, const char *path,
                        size_t path_len, const void *item, size_t item_len);
/* Records a worker joining the update, on host with pid; *id receives it. */
int tide_store_worker_join(tide_Store *s, int64_t update_id,
                           const char *host, size_t host_len, int64_t pid,
                           int64_t *id);
/* Renews the worker's lease (in the open batch). */
int tide_store_worker_beat(tide_Store *s, int64_t worker_id);
/* Claims up to max items of the update for the worker: items no one
** holds, and items of workers that left or have not beaten for lease_ms;
** calls fn with each, committing first. When it claims none, *open (may
** be NULL) receives how many items of the update are open, claimed ones
** included (tide_store_work_open); else -1. */
int tide_store_work_claim(tide_Store *s, int64_t update_id,
                          int64_t worker_id, int max, int64_t lease_ms,
                          tide_StoreWorkItemFn fn, void *arg,
                          int64_t *open);
/* A claim whose answer the caller's loop waits for (PostgreSQL only):
** tide_store_claim_send sends the first step of tide_store_work_claim
** (up to max of the update's ready items after the last this store
** claimed, renewing the worker's lease), committed with what the open
** batch holds, without reading the answer. While the answer is unread,
** tide_store_claim_socket is the socket to wait on until it is readable
** (else -1). tide_store_claim_read then reads the answer and hands the
** items claimed to fn, in order, *count of them. Any other call of the
** store in between reads the answer first and keeps it for claim_read.
** Finding no item is not a failure: the caller then claims with
** tide_store_work_claim (the items of workers whose lease ran out). */
int tide_store_claim_send(tide_Store *s, int64_t update_id,
                          int64_t worker_id, int max);
int tide_store_claim_socket(tide_Store *s);
int tide_store_claim_read(tide_Store *s, tide_StoreWorkItemFn fn, void *arg,
                          int *count);
/* Starts the worker's heartbeat: a thread with a connection of its own
** renews the worker's lease every interval_ms, whatever this thread does
** meanwhile (a component that runs longer than the lease), until
** tide_store_beat_stop (which accepts NULL). The thread ends with the
** process, so a dead worker's lease still runs out. */
typedef struct tide_StoreBeat tide_StoreBeat;
int tide_store_beat_start(tide_Store *s, int64_t worker_id, int interval_ms,
                          tide_StoreBeat **out);
void tide_store_beat_stop(tide_StoreBeat *b);
/* Marks the item done by the worker, in the open batch; the batch fails
** when it commits if the item is no longer the worker's (its lease ran
** out and another claimed it). */
int tide_store_work_done(tide_Store *s, int64_t item_id, int64_t worker_id);
/* Marks the item run by the worker, in the open batch, when its record is
** not all of it: the worker's end must still finish it (delete what it no
** longer mounts, tell which containers it declared) and then mark it
** done. Until then it is neither open (no claim takes it, work_open does
** not count it) nor done. Fails as tide_store_work_done does. */
int tide_store_work_ran(tide_Store *s, int64_t item_id, int64_t worker_id);
/* Makes the update's items marked run and not done ready again: once no
** worker is left, theirs ended without finishing them (died, or were
** stopped). *n receives how many. In the open batch. */
int tide_store_work_reopen(tide_Store *s, int64_t update_id, int64_t *n);
/* The worker leaves, with what it tells the lead as JSON text (stats, may
** be NULL; its counts are tide_store_worker_count's):
** the items it holds and has not done are free for others at once.
** Commits. */
int tide_store_worker_leave(tide_Store *s, int64_t worker_id,
                            const char *stats, size_t stats_len);
/* How many items of the update are open (neither done nor run), into
** *open. */
int tide_store_work_open(tide_Store *s, int64_t update_id, int64_t *open);
/* Makes the update's item at path ready again (in the open batch): its
** component runs once more, in full. */
int tide_store_work_redo(tide_Store *s, int64_t update_id, const char *path,
                         size_t path_len);
/* How many workers of the update may still be at work, into *alive:
** those that have not left and beat within lease_ms. */
int tide_store_workers_alive(tide_Store *s, int64_t update_id,
                             int64_t lease_ms, int64_t *alive);
/* The workers of the update, in the order they joined. */
int tide_store_worker_each(tide_Store *s, int64_t update_id,
                           tide_StoreWorkerFn fn, void *arg);
/* Adds n to the worker's count called name (bytes, any of them), in the
** open batch: a count goes with the records it counts, so that a worker
** that dies, or whose batch the server rolls back, leaves the counts of
** what it committed, no more, no less. */
int tide_store_worker_count(tide_Store *s, int64_t worker_id,
                            const char *name, size_t name_len, int64_t n);
/* The counts of the update's workers (tide_store_worker_count): fn with
** each worker's id, a count's name and its value, by worker and name. */
typedef int (*tide_StoreCountFn)(void *arg, int64_t worker_id,
                                 const char *name, size_t name_len,
                                 int64_t n);
int tide_store_worker_counts(tide_Store *s, int64_t update_id,
                             tide_StoreCountFn fn, void *arg);

#endif
