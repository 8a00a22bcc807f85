/*
** The walk fast path: mount_each(fn, fs.walk(dir), extra...) for a
** memoized fn, decided in C so that an unchanged file never enters Lua.
**
** The walk lists the files the include and exclude sets select (walk.h),
** and for each file:
** 1. Its component path is base + "/" + the relative path; the component
**    index gives last run's entry for it, if any.
** 2. The entry is a candidate for "unchanged" when it is not forced, its
**    status is ok, nothing marked it yet this run, it has a logic and an
**    input fingerprint, its logic fingerprint is the fn's, and its
**    dependency set was checked valid this run.
** 3. The content fingerprint comes from the file-state cache when the
**    file's (size, mtime_ns, inode) still match (filestate.h). Otherwise,
**    for a candidate, the file is read and hashed and the new state
**    recorded, unless it is large (TIDE_LARGE_FILE): that one is handed
**    over without fingerprints, for its component's task to hash on the
**    thread pool and decide; a file with no candidate runs whatever its
**    content, so it
**    is not read here: it is handed over "deferred", and the engine
**    fingerprints it from the bytes its component reads (one read per
**    run) and records its state then.
** 4. The input fingerprint is computed exactly as core.fingerprint_args
**    computes fn(file, extra...) (tide_index_file_input below), so the
**    two agree byte for byte.
** 5. A candidate whose input fingerprint is the stored one is unchanged:
**    it is marked, with every entry below it (its children), and counted.
**    Every other file is handed to the engine as a record, with both
**    fingerprints so the engine need not compute them again.
**
** When the index is still loading on its thread, the walk lists the
** folder first (tide_index_list) and goes through the listing once the
** index is there, with the same steps: the listing and the load overlap.
**
** Edge cases: a file that cannot be read is handed over without
** fingerprints (reading it again in the component reports the error
** there); a directory or file the walk cannot read becomes a
** TIDE_WALK_ERROR record with its errno; the walk itself failing (the
** folder is missing) fails the call. Paths may hold any byte but NUL
** (the walk's); the base may hold NUL (a parent's key).
*/
#ifndef TIDE_INDEX_WALK_H
#define TIDE_INDEX_WALK_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "glob.h"
#include "store.h"
#include "walk.h"

typedef struct tide_Index tide_Index;

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
  int deferred;             /* not read: its component runs anyway */
  int has_fp;               /* the file could be read and hashed: */
  uint8_t fp[TIDE_FP_SIZE]; /* its content fingerprint */
  uint8_t input[TIDE_FP_SIZE]; /* and the component's input fingerprint */
} tide_IndexChanged;

/* What a walk found, listed before the index was there to read (it loads
** on a thread of its own meanwhile, tide_index_load_async): the entries
** the walker reported, in its order, and how the walker ended (0, or a
** code with the message in the walker's err). */
typedef struct tide_IndexListing {
  tide_Buf entries;
  int rc;
} tide_IndexListing;

/* Lists the folder as tide_index_walk walks it, without reading the
** index, into out (its entries buffer is emptied first, then grows);
** returns out->rc. */
int tide_index_list(tide_Walker *w, const tide_IndexWalk *spec,
                    tide_IndexListing *out);

/* Walks the folder, or goes through what tide_index_list listed of it
** when listed is not NULL: a file whose component is unchanged is marked
** (with its subtree) and counted in *unchanged; every other file (and
** every walk error) is appended to out, with its content and input
** fingerprints when it could be read, so the engine need not compute
** them again. Scratch memory comes from the walker's allocator. Returns 0
** or a TIDE_E* code with the message on the index. */
int tide_index_walk(tide_Index *ix, tide_Walker *w,
                    const tide_IndexWalk *spec,
                    const tide_IndexListing *listed, tide_Buf *out,
                    size_t *unchanged);

/* In live mode, the walk of a folder whose changes are known (the n
** distinct relative paths, lens[i] bytes each, file events named since the
** last walk of the same folder by the same components): every component
** below the base that no changed path touches (the path itself, or a
** folder above it) is carried over as it is, without a stat, and each
** changed path is handled as the walk would have met it: a file the sets
** select goes through the steps above, one that is gone or not listed is
** left unmarked (so its component is deleted). Valid only when the index
** holds what the last walk left and the fn, its extra arguments and the
** sets are the same (the engine checks). Returns 0, 1 when the whole
** folder must be walked instead (a changed path is a folder now, or the
** walk follows symbolic links) with nothing marked, or a TIDE_E* code
** with the message on the index. */
int tide_index_walk_changes(tide_Index *ix, tide_Walker *w,
                            const tide_IndexWalk *spec,
                            const char *const *paths, const size_t *lens,
                            size_t n, tide_Buf *out, size_t *unchanged);

/* The input fingerprint the engine computes for fn(file, extra...):
** BLAKE2b-128 over the array head, the file's key, the extra encodings. */
int tide_index_file_input(tide_Buf *scratch, const tide_IndexWalk *spec,
                          const char *abs, size_t abs_len,
                          const uint8_t *content_fp, uint8_t *out);

#endif
