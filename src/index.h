/*
** The component index: what the store remembers of an app's components,
** held in memory for one run, so that telling an unchanged component from
** a changed one costs a hash lookup and a fingerprint in C, and never
** enters Lua (DESIGN.md section 5). The file states of walked sources
** (filestate.h) and the walk fast path (index_walk.h) build on it.
**
** Entries are the components of the previous run, loaded per cycle, in path
** order (bytewise, as SQLite's BINARY collation sorts them). During the
** run each is marked: unchanged (carried over with its subtree), ran, or
** failed; those left unmarked at the end are deleted by the engine.
**
** The algorithm:
** - Entries are read in the order the store reads fastest (a SQLite
**   file's row order: one scan, where path order would cost a lookup per
**   row) and then sorted by path; their paths' bytes are kept once, in
**   one buffer.
** - A path finds its entry through the index's own table of paths (open
**   addressing, 8 bytes a slot), after a look at the entry that follows
**   the last one found: the engine asks in about path order (a walk, a
**   source read in key order), so most lookups read the next entry in
**   memory instead of a random slot. A row id finds its entry through a
**   hash map (hashmap.h) made on first use: only rare paths ask by id.
** - The entries below a path P are those that start with P + "/". In path
**   order they form one run, found by binary search without building the
**   prefix. The run need not start right after P's own entry: a sibling
**   such as P + ".x" or P + "\0x" sorts between them (bytes '.' and NUL
**   are below '/').
** - Dependency sets: the entries' distinct deps fingerprints are numbered
**   at load; the engine checks each once and says which are valid. Until
**   then a set counts as invalid, so its components run.
**
** Edge cases: paths are (pointer, length) and may hold NUL bytes (the keys
** a component was mounted under); paths of any length are handled; a
** component without deps never has a valid set.
*/
#ifndef TIDE_INDEX_H
#define TIDE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "filestate.h"
#include "index_walk.h"
#include "store.h"

enum {
  TIDE_SEEN_NONE = 0,
  TIDE_SEEN_UNCHANGED = 1,
  TIDE_SEEN_RAN = 2,
  TIDE_SEEN_FAILED = 3
};

/* One component of the last run, 48 bytes: an index holds one per
** component, so a million of them must stay small. The logic and deps
** fingerprints, shared by many components, are held once each by the
** index and numbered. */
typedef struct tide_IndexEntry {
  int64_t id;
  uint32_t path_off, path_len; /* where tide_index_path finds the path */
  uint32_t deps_set;           /* 1 + its dependency set's number, or 0 */
  uint32_t logic_set;          /* 1 + its logic fingerprint's number, or 0 */
  uint8_t input[TIDE_FP_SIZE];
  uint8_t has_input;
  uint8_t status;  /* the store's component status: 0 ok */
  uint8_t seen;    /* TIDE_SEEN_* */
  uint8_t forced;  /* must run again whatever its fingerprints say */
} tide_IndexEntry;

typedef struct tide_Index tide_Index;

int tide_index_new(tide_Index **out, tide_Alloc alloc, void *ud);
void tide_index_free(tide_Index *ix);
const char *tide_index_errmsg(const tide_Index *ix);

/* Loads every component of the app, forgetting what an earlier load held
** (an engine loads its index at the start of every cycle). */
int tide_index_load(tide_Index *ix, tide_Store *s, int64_t app_id);

/*
** The same load, and the file states of every source of the app, on a
** thread of its own, so that the caller goes on meanwhile (a walk lists
** its folder): the thread reads through a read-only connection of its
** own to s's store (tide_store_open_again), and touches nothing but the
** index. Until tide_index_wait, the caller must neither read nor change
** the index (tide_index_loading and tide_index_free aside: freeing
** waits), nor write the app's components or source items through s: the
** thread reads what was committed when it began. The load runs at once
** instead, as tide_index_load, when the index's allocator is not the
** default one (the only one known to be thread-safe), when s is a SQLite
** store not named by an absolute path, or a PostgreSQL store whose app
** has fewer than 20000 components (counted first: below that, the
** thread's connection, a server process started for it, costs more than
** the load).
** tide_index_wait returns 0 at once when no load is under way; when the
** thread failed (its connection could not be opened), it loads again
** through s, and file states then load per source on first use.
*/
int tide_index_load_async(tide_Index *ix, tide_Store *s, int64_t app_id);
/* Whether the thread still loads (once it has ended, tide_index_wait
** returns at once). */
int tide_index_loading(tide_Index *ix);
int tide_index_wait(tide_Index *ix);

/*
** Kept up to date: an index that tide_index_load_async loaded whole turns
** on the store's notes of component writes (store.h,
** tide_store_track_components). The next tide_index_load_async for the
** same store and app then reads again only the components noted since,
** keeps the others (their marks cleared) and the file states, and returns
** at once: a session's second cycle costs what it changed, not a reload.
** It loads whole again (on the thread) when the store says everything
** must be read, when the notes are many (more than 512 components and a
** quarter of the index: a cold run's), or after tide_index_cool: the
** engine cools it when another connection wrote the store between
** cycles, and a shared update's lead when its workers wrote it during the
** cycle (the notes know only this connection's writes).
*/
void tide_index_cool(tide_Index *ix);

/*
** Scoped: a shared update's worker runs only the items it claims, and
** reads of the store only what is below them, as it claims them, not the
** app's whole index (a million components, read by every worker at
** every update it joins). tide_index_scope empties the index (what an
** earlier load held is forgotten) and makes it scoped until the next
** tide_index_load or tide_index_load_async: file states then come only
** from tide_index_file_put (a source is never read whole; a file without
** a state is fingerprinted from its content). tide_index_load_under adds
** the components at each of the n paths (lens[i] bytes) and below them
** that the index does not hold yet, in one store call; those it holds
** keep their marks. Entries move (they stay in path order) and new
** dependency sets come unchecked (tide_index_deps_checked): entry
** pointers and set numbers from before the call are stale after it.
*/
void tide_index_scope(tide_Index *ix);
int tide_index_load_under(tide_Index *ix, tide_Store *s, int64_t app_id,
                          const char *const *paths, const size_t *lens,
                          size_t n);

/*
** Reloaded under paths: the lead of a shared update keeps its whole index
** warm across the cycles of a live session, but its workers wrote the
** store below the items they claimed, which the notes of its own writes
** lack. tide_index_reload_under replaces the entries at and below each of
** the n paths by what the store holds there now, in one store call, and
** keeps the others; marks are cleared and dependency sets come unchecked,
** as after a refresh. An index that is not warm for s and app_id is left
** as it is (its next load reads it whole); so is one given many paths
** (more than 512 that are a quarter of the index or more, as a refresh
** counts them: a cold cycle's items), which it cools instead. On failure
** the index is left as it was, cooled.
*/
int tide_index_reload_under(tide_Index *ix, tide_Store *s, int64_t app_id,
                            const char *const *paths, const size_t *lens,
                            size_t n);

size_t tide_index_count(const tide_Index *ix);
tide_IndexEntry *tide_index_at(tide_Index *ix, size_t i);
/* The entry's path: e->path_len bytes, which may hold NUL (a component
** path holds the keys it was mounted under), then a NUL not counted. */
const char *tide_index_path(const tide_Index *ix, const tide_IndexEntry *e);
/* The entry for a path (len bytes) or a row id, or NULL. The first lookup
** by id maps every id (most runs never make one). */
tide_IndexEntry *tide_index_find(tide_Index *ix, const char *path,
                                 size_t len);
tide_IndexEntry *tide_index_find_id(tide_Index *ix, int64_t id);
/* What the store recorded of e when the index loaded it: its id, path,
** status and logic, input and deps fingerprints (borrowed from the index,
** valid until its next load); the other fields are zero. */
void tide_index_view(const tide_Index *ix, const tide_IndexEntry *e,
                     tide_StoreComponent *c);

/* Marks the entry at path and every entry below it (path + "/") as
** unchanged, unless already marked; returns how many it marked. Paths of
** any length are handled. */
size_t tide_index_keep_subtree(tide_Index *ix, const char *path, size_t len);

/* Undoes tide_index_keep_subtree below path: the entries below it (not
** path's own) marked unchanged are marked none again, the others stay as
** they are. A shared update's lead keeps what is below each item it hands
** out; when it runs one itself, what the item mounts marks them anew. */
void tide_index_unkeep_below(tide_Index *ix, const char *path, size_t len);

/* How many entries below path (not path's own), not marked in this run,
** were not recorded ok last time (they failed, or are incomplete): a live
** source's cycle that processes only what it emitted keeps the others
** as they are, which for these would be to keep them failed. */
size_t tide_index_failed_below(tide_Index *ix, const char *path,
                               size_t len);

/* Marks every entry below path (not path's own) as unchanged, unless
** already marked, except that the n entries at except[i] (of lens[i]
** bytes) and those below them stay as they are: the items of a live
** source a cycle processes (their components mounted, or deleted when
** not) among those it keeps. Returns how many subtrees it kept (for a
** mount_each's base, how many of its components). */
size_t tide_index_keep_below_except(tide_Index *ix, const char *path,
                                    size_t len, const char *const *except,
                                    const size_t *lens, size_t n);

/* The entries below path (path + "/" and more) are the run that starts at
** tide_index_below_first and goes on while tide_index_is_below holds
** (entries are in path order). */
size_t tide_index_below_first(tide_Index *ix, const char *path,
                              size_t len);
int tide_index_is_below(tide_Index *ix, const tide_IndexEntry *e,
                        const char *path, size_t len);

/* Dependency sets: each distinct deps fingerprint is checked once by the
** engine; until then it counts as invalid. */
size_t tide_index_deps_count(const tide_Index *ix);
/* The i-th distinct deps fingerprint and one component that has it. */
const uint8_t *tide_index_deps_at(const tide_Index *ix, size_t i,
                                  const tide_IndexEntry **example);
void tide_index_deps_set_valid(tide_Index *ix, size_t i, int valid);
/* Whether the i-th set was said valid or not (tide_index_deps_set_valid)
** since it was loaded. */
int tide_index_deps_checked(const tide_Index *ix, size_t i);

/* File states of one walked source, keyed by relative path (a
** tide_FileStates cache per source, filestate.h). Source names and paths
** are (pointer, length), as in the store: bytes, NUL included. Loading a
** source that is loaded already does nothing. */
int tide_index_load_source(tide_Index *ix, tide_Store *s, int64_t app_id,
                           const char *source, size_t source_len);
/* The stored content fingerprint of a file when its (size, mtime_ns,
** inode) still match, else NULL (also when the source is not loaded). */
const uint8_t *tide_index_file_fp(tide_Index *ix, const char *source,
                                  size_t source_len, const char *path,
                                  size_t len, int64_t size, int64_t mtime_ns,
                                  int64_t inode);
/* Records a file's new state (in the index and the store); the source
** must have been loaded (else TIDE_EINVAL). */
int tide_index_file_put(tide_Index *ix, tide_Store *s, int64_t app_id,
                        const char *source, size_t source_len,
                        const char *path, size_t len, int64_t size,
                        int64_t mtime_ns, int64_t inode, const uint8_t *fp);

/* ---- For the walk fast path (index_walk.c) ---- */

/* The file states of a source into *out, loading them on first use.
** Returns 0 or a TIDE_E* code with the message on the index. */
int tide_index_source(tide_Index *ix, tide_Store *s, int64_t app_id,
                      const char *source, size_t source_len,
                      tide_FileStates **out);

/* Whether the entry's dependency set was found valid this run. */
int tide_index_deps_valid(const tide_Index *ix, const tide_IndexEntry *e);

/* The one verdict on a component of the last run, whatever its source:
** whether e may be carried over for a component of this logic. It may when
** it succeeded last time, is neither forced nor marked yet in this run,
** has the same logic and a recorded input, and its dependencies still
** hold; the caller then compares its input fingerprint with e->input. */
int tide_index_may_carry(const tide_Index *ix, const tide_IndexEntry *e,
                         const uint8_t *logic);

/* Carries the component at path (len bytes) over when the verdict above
** holds and its input is `input`: it and its subtree are marked unchanged
** and 1 is returned; otherwise 0 and nothing is marked. */
int tide_index_carry(tide_Index *ix, const char *path, size_t len,
                     const uint8_t *logic, const uint8_t *input);

/* Marks e unchanged, unless already marked, and every entry below it that
** is not marked yet: tide_index_keep_subtree without the lookup. */
void tide_index_keep(tide_Index *ix, tide_IndexEntry *e);

/* Formats the index's message; returns code. */
int tide_index_fail(tide_Index *ix, int code, const char *fmt, ...);

#endif
