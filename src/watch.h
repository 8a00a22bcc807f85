/*
** Watching folders for live mode (DESIGN.md section 6): inotify, one watch
** per directory, read through a poll handle on the engine's loop, so that
** an idle live run uses no CPU between events.
**
** A watch has roots (the folders of fs.walk sources). For each it keeps
** the relative paths that changed since the last take, each once however
** many events it had (an editor's write, rename and chmod of one file are
** one change), and whether the whole root must be walked again because
** events were lost. The rules:
** - A root's own folder deleted or moved away marks it whole and loses
**   its watches; the place it was at is then watched as a file root, so
**   that a folder made or moved back there is a change, and adding the
**   root again (tide_watch_add) watches it again and marks it whole.
** - Adding a root watches it and every directory under it; symbolic links
**   to directories below it are followed only when asked (a directory met
**   twice on the way is watched once); a root that is a link is followed,
**   as a walk lists it.
** - An event on a name in a watched directory marks its path changed. A
**   directory created or moved in is watched, with everything under it,
**   and marked changed; one deleted or moved away is forgotten with
**   everything under it (the kernel drops the watches of a deleted one).
** - The kernel's queue overflowing (events lost), or a directory that
**   cannot be watched (the user's limit of watches, a permission), marks
**   the root for a full rescan and leaves a message saying so.
** - A file root (a file a source reads: a JSON Lines file, an SQLite
**   database) watches the directory holding it, not what is below it, and
**   marks its name when an event names it (written, replaced by a rename,
**   deleted, made again) and the file's stat (size, modification time,
**   inode; or its absence, as an empty file's) is not what it was when
**   the file root was last
**   added: adding it again as a source starts to read it keeps that
**   read's own traces (SQLite's log made and removed by a reader) from
**   starting a cycle. The directory deleted marks the file root whole
**   and loses its watch; adding the file root again watches it again. A
**   directory that is both in a folder root and holding a file root has
**   one watch, which serves both.
** - A change is a hint: the engine walks and compares as a catch-up run
**   does, so a path marked changed that did not change costs a stat.
**
** Paths are relative to the root, `/`-separated, without NUL (the
** kernel's names). Memory comes from the allocator given; every call
** returns 0 or a negative TIDE_E* code with the message on the watch.
** A watch is used by its loop's thread only.
*/
#ifndef TIDE_WATCH_H
#define TIDE_WATCH_H

#include <stddef.h>

#include <uv.h>

#include "tide.h"

typedef struct tide_Watch tide_Watch;

/* A change taken from a watch: a path under a root, or (path NULL) the
** whole root, to be walked again because events were lost. */
typedef struct tide_WatchChange {
  size_t root;      /* the root's number, from tide_watch_add */
  const char *path; /* relative, NUL-terminated; NULL: the whole root */
  size_t len;
} tide_WatchChange;

/* Makes a watch on loop (an inotify instance and its poll handle). On
** failure other than TIDE_ENOMEM, *out holds the message and must still
** be freed. alloc NULL means tide_alloc_default. */
int tide_watch_new(tide_Watch **out, uv_loop_t *loop, tide_Alloc alloc,
                   void *ud);

/* Stops watching and frees the watch once its poll handle is closed: the
** loop must run again for that (it frees the watch itself then). Accepts
** NULL. */
void tide_watch_free(tide_Watch *w);

/* Watches the folder dir (absolute, a C string) and everything under it;
** *root receives its number (a root added again keeps its number, and its
** follow flag is the latest one). A directory below it that cannot be
** watched is not an error: the root is marked for a rescan and the
** message kept (tide_watch_messages). TIDE_ENOTFOUND when dir is not a
** folder that can be read. */
int tide_watch_add(tide_Watch *w, const char *dir, int follow_symlinks,
                   size_t *root);

/* Watches the file at the absolute path file through its directory (the
** file itself need not exist); *root receives its number, whose folder is
** the directory and whose changes name the file. A file root added again
** keeps its number, and is watched again if its directory's watch was
** lost. TIDE_ENOTFOUND when the directory is not there; TIDE_EIO when the
** system refuses the watch (the message says why). */
int tide_watch_add_file(tide_Watch *w, const char *file, size_t *root);

/* How many changes are waiting to be taken. */
size_t tide_watch_pending(const tide_Watch *w);

/* Calls fn(arg, change) for every change waiting, in the order they came,
** and forgets them; fn returns 0 to go on. The change's path is borrowed
** for the call. */
typedef int (*tide_WatchFn)(void *arg, const tide_WatchChange *change);
int tide_watch_take(tide_Watch *w, tide_WatchFn fn, void *arg);

/* The messages left since the last call (events lost, directories that
** could not be watched), one per line, and forgets them; "" when none.
** Borrowed until the next call on the watch. */
const char *tide_watch_messages(tide_Watch *w);

/* The root folder numbered root (borrowed), NULL when there is none. */
const char *tide_watch_root(const tide_Watch *w, size_t root);

/* The number of directories watched under folder roots (not those
** watched only for file roots). */
size_t tide_watch_count(const tide_Watch *w);

const char *tide_watch_errmsg(const tide_Watch *w);

#endif
