/*
** The component index: what the store remembers of an app's components
** and of its walked files, held in memory for one run, so that telling an
** unchanged component from a changed one costs a hash lookup and a
** fingerprint in C, and never enters Lua (DESIGN.md section 5).
**
** Entries are the components of the previous run, in path order. During
** the run each is marked: unchanged (carried over with its subtree), ran,
** or failed; those left unmarked at the end are deleted by the engine.
*/
#ifndef TIDE_INDEX_H
#define TIDE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "fingerprint.h"
#include "glob.h"
#include "store.h"
#include "walk.h"

enum {
  TIDE_SEEN_NONE = 0,
  TIDE_SEEN_UNCHANGED = 1,
  TIDE_SEEN_RAN = 2,
  TIDE_SEEN_FAILED = 3
};

typedef struct tide_IndexEntry {
  int64_t id;
  uint32_t path_off, path_len; /* in the index's path arena */
  uint8_t logic[TIDE_FP_SIZE];
  uint8_t input[TIDE_FP_SIZE];
  uint8_t deps[TIDE_FP_SIZE];
  uint8_t has_logic, has_input, has_deps;
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

size_t tide_index_count(const tide_Index *ix);
tide_IndexEntry *tide_index_at(tide_Index *ix, size_t i);
/* The entry's path: e->path_len bytes, which may hold NUL (a component
** path holds the keys it was mounted under), then a NUL not counted. */
const char *tide_index_path(const tide_Index *ix, const tide_IndexEntry *e);
/* The entry for a path (len bytes) or a row id, or NULL. */
tide_IndexEntry *tide_index_find(tide_Index *ix, const char *path,
                                 size_t len);
tide_IndexEntry *tide_index_find_id(tide_Index *ix, int64_t id);

/* Marks the entry at path and every entry below it (path + "/") as
** unchanged, unless already marked; returns how many it marked. Paths of
** any length are handled. */
size_t tide_index_keep_subtree(tide_Index *ix, const char *path, size_t len);

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

/* File states of one walked source, keyed by relative path. Source names
** and paths are (pointer, length), as in the store: bytes, NUL included. */
int tide_index_load_source(tide_Index *ix, tide_Store *s, int64_t app_id,
                           const char *source, size_t source_len);
/* The stored content fingerprint of a file when its (size, mtime_ns,
** inode) still match, else NULL. */
const uint8_t *tide_index_file_fp(tide_Index *ix, const char *source,
                                  size_t source_len, const char *path,
                                  size_t len, int64_t size, int64_t mtime_ns,
                                  int64_t inode);
/* Records a file's new state (in the index and the store); the source
** must have been loaded. */
int tide_index_file_put(tide_Index *ix, tide_Store *s, int64_t app_id,
                        const char *source, size_t source_len,
                        const char *path, size_t len, int64_t size,
                        int64_t mtime_ns, int64_t inode, const uint8_t *fp);

/* mount_each(fn, fs.walk(dir), extra...) for a memoized fn. */
typedef struct tide_IndexWalk {
  const char *dir;          /* absolute walked folder, a C string */
  const char *source;       /* the source's name for file states */
  size_t source_len;
  const char *base;         /* component path prefix: parent/fn-name, */
  size_t base_len;          /* which may hold NUL (from a parent's key) */
  const uint8_t *logic;     /* the fn's logic fingerprint */
  const char *file_type;    /* the file objects' type name (__name) */
  size_t file_type_len;
  const void *extra;        /* the encodings of the extra arguments */
  size_t extra_len;
  int nargs;                /* 1 + the number of extra arguments */
  const tide_GlobSet *include, *exclude;
  int flags;                /* TIDE_WALK_FOLLOW_SYMLINKS */
  tide_Store *store;        /* where new file states go */
  int64_t app_id;
} tide_IndexWalk;

/* One record per file the engine must handle in Lua, appended to out:
** this struct, then the relative path's bytes and a NUL, padded to 8. */
typedef struct tide_IndexChanged {
  int kind;                 /* TIDE_WALK_FILE or TIDE_WALK_ERROR */
  int error;                /* errno, for TIDE_WALK_ERROR */
  int64_t size, mtime_ns, inode;
  size_t len;
  int has_fp;               /* the file could be read and hashed: */
  uint8_t fp[TIDE_FP_SIZE]; /* its content fingerprint */
  uint8_t input[TIDE_FP_SIZE]; /* and the component's input fingerprint */
} tide_IndexChanged;

/* Walks the folder: a file whose component is unchanged is marked (with
** its subtree) and counted in *unchanged; every other file (and every
** walk error) is appended to out, with its content and input
** fingerprints when it could be read, so the engine need not compute
** them again. Returns 0 or a TIDE_E* code with the
** message on the index. */
int tide_index_walk(tide_Index *ix, tide_Walker *w,
                    const tide_IndexWalk *spec, tide_Buf *out,
                    size_t *unchanged);

/* The input fingerprint the engine computes for fn(file, extra...):
** BLAKE2b-128 over the array head, the file's key, the extra encodings. */
int tide_index_file_input(tide_Buf *scratch, const tide_IndexWalk *spec,
                          const char *abs, size_t abs_len,
                          const uint8_t *content_fp, uint8_t *out);

#endif
