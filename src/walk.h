/*
** Walking a directory tree, and the file operations the fs source and the
** fs.dir target need: read a whole file, write one atomically, remove one,
** remove a directory when empty (making directories is mkdirs.h).
**
** The walk reports every regular file under a root in a deterministic
** order (the entries of each directory sorted bytewise by name, files and
** subdirectories interleaved), with one fstatat per file and no heap
** allocation per file. It reads d_type from readdir and stats only what it
** reports (or what the file system leaves DT_UNKNOWN).
**
** A file is reported when the include set (NULL: everything) selects its
** relative path and the exclude set (NULL: nothing) does not select it or
** one of its parent directories (see glob.h; `!` patterns re-include). A
** directory is only opened when some include pattern could match under it
** and it is not excluded, or a later `!` exclude pattern could match under
** it: an excluded directory is never read.
**
** Problems below the root never stop the walk and are never silent: a
** directory that cannot be opened or read, and an entry that cannot be
** stat'ed for a reason other than having vanished, are reported to the
** callback as a TIDE_WALK_ERROR entry (like nftw's FTW_DNR), and the walk
** goes on. A file that vanishes between readdir and fstatat is skipped.
** Symbolic links are skipped unless TIDE_WALK_FOLLOW_SYMLINKS is set; then
** a link is reported as what it points to (a dangling link is skipped) and
** a directory already on the path from the root (a cycle) is not entered
** again: its files were reported under the first path.
*/
#ifndef TIDE_WALK_H
#define TIDE_WALK_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "glob.h"
#include "mkdirs.h"
#include "tide.h"

#define TIDE_WALK_FOLLOW_SYMLINKS 1

enum { TIDE_WALK_FILE = 0, TIDE_WALK_ERROR = 1 };

typedef struct tide_WalkEntry {
  int kind;          /* TIDE_WALK_FILE or TIDE_WALK_ERROR */
  const char *path;  /* borrowed for the callback: relative, `/`-separated,
                     ** NUL-terminated */
  size_t len;        /* strlen(path) */
  uint64_t size;     /* TIDE_WALK_FILE: st_size */
  int64_t mtime_ns;  /* TIDE_WALK_FILE: st_mtim in nanoseconds */
  uint64_t inode;    /* TIDE_WALK_FILE: st_ino */
  uint64_t dev;      /* TIDE_WALK_FILE: st_dev */
  int error;         /* TIDE_WALK_ERROR: the errno value */
} tide_WalkEntry;

/* Called once per entry; a non-zero return stops the walk and becomes the
** walk's return value. */
typedef int (*tide_WalkFn)(void *ud, const tide_WalkEntry *e);

/* A walker keeps its scratch buffers (names, path, glob states) between
** walks, so rescanning the same tree allocates nothing. The message of the
** last failure is in err. */
typedef struct tide_Walker {
  tide_Alloc alloc;
  void *ud;
  tide_Buf path;   /* owned: the relative path being built */
  tide_Buf names;  /* owned: names of the directories being walked */
  tide_Buf ents;   /* owned: their sorted entries */
  tide_Buf states; /* owned: glob states, one frame per depth */
  tide_Buf dirs;   /* owned: (dev, inode) of the open directories */
  char err[512];
} tide_Walker;

/* alloc NULL means tide_alloc_default. */
void tide_walker_init(tide_Walker *w, tide_Alloc alloc, void *ud);
void tide_walker_close(tide_Walker *w);

/* Walks root, calling fn for each regular file the include and exclude
** sets select, and for each TIDE_WALK_ERROR entry. Returns
** 0, the callback's non-zero value, or a negative TIDE_E* code with the
** message in w->err: TIDE_ENOTFOUND when root does not exist, TIDE_EIO
** when it cannot be opened, TIDE_ENOMEM. */
int tide_walker_run(tide_Walker *w, const char *root,
                    const tide_GlobSet *include, const tide_GlobSet *exclude,
                    int flags, tide_WalkFn fn, void *ud);

/* Whether a walk with these sets reports the regular file at path
** (relative to the walked directory): 1 or 0, or TIDE_ENOMEM. */
int tide_walk_selects(const tide_GlobSet *include,
                      const tide_GlobSet *exclude, const char *path,
                      size_t len);

/* One walk with a fresh walker on the default allocator; the message goes
** to err. */
int tide_walk(const char *root, const tide_GlobSet *include,
              const tide_GlobSet *exclude, int flags, tide_WalkFn fn,
              void *ud, char *err, size_t errlen);

/* Appends the whole content of path to out. TIDE_ENOTFOUND or TIDE_EIO
** with "PATH: reason" in err, TIDE_ENOMEM. */
int tide_file_read(const char *path, tide_Buf *out, char *err,
                   size_t errlen);

/* Replaces path with len bytes atomically: writes a temporary file in the
** same directory, fsyncs it, renames it over path. Creates the missing
** parent directories; *created (if not NULL) receives how many: the
** nearest *created ancestors of path are new. The rename itself is made
** durable by tide_dir_sync on the parent. TIDE_EIO with "PATH: reason" in
** err. */
int tide_file_write_atomic(const char *path, const void *data, size_t len,
                           int *created, char *err, size_t errlen);

/* fsyncs a directory so the renames in it survive a crash. */
int tide_dir_sync(const char *path, char *err, size_t errlen);

/* Removes a file (never a directory). A missing file is not an error:
** returns 1 when it removed the file, 0 when there was none. */
int tide_file_remove(const char *path, char *err, size_t errlen);

/* Removes a directory only if it is empty: 1 when it removed it, 0 when it
** is not empty or does not exist. */
int tide_dir_remove_if_empty(const char *path, char *err, size_t errlen);

/* The absolute form of path into out (outlen bytes), made lexically from
** the working directory: `.`, `..` and repeated `/` are resolved without
** touching the file system beyond getcwd, symbolic links are kept.
** TIDE_EINVAL when it does not fit, TIDE_EIO when getcwd fails. */
int tide_path_absolute(const char *path, char *out, size_t outlen,
                       char *err, size_t errlen);

#endif
