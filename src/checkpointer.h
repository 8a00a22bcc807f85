/*
** Checkpoints off the loop: a writer connection's write-ahead log copied
** back into its database on libuv's thread pool, so that a commit never
** waits for the disk.
**
** By itself SQLite checkpoints a WAL database after a commit that leaves
** the log over 1000 pages (wal_autocheckpoint): that commit then waits
** while the log and the database are written back and synced. Attached,
** the checkpointer replaces that: a WAL hook on the writer (called after
** each commit, on the thread that committed, with the log's size in
** pages) notes the size, and tide_ckpt_poll, called on the loop's thread
** once the commit is known, queues a PASSIVE checkpoint on libuv's thread
** pool when the log holds at least TIDE_CKPT_PAGES pages and no
** checkpoint is under way. (The store may commit on a thread of its own,
** where the loop cannot be touched.) The checkpoint
** runs through a connection of its own, opened on the pool the first
** time and kept. A passive checkpoint neither blocks the writer nor waits
** for readers: what it cannot copy yet, the next one copies. Crash safety
** is SQLite's: a checkpoint interrupted anywhere leaves a log that the
** next connection replays.
**
** Detaching gives the writer SQLite's own automatic checkpoint back.
** Edge cases: a writer that closes while a checkpoint runs detaches it
** first: the checkpoint finishes, and its connection is closed and its
** memory freed in the after-work callback, on the loop's thread (the loop
** has to run for that, as uv_loop_close requires anyway). A checkpoint
** that fails (a full disk) is tried again after a later commit, and
** SQLite checkpoints when the last connection closes.
**
** Memory comes from the given allocator, on the loop's thread only.
*/
#ifndef TIDE_CHECKPOINTER_H
#define TIDE_CHECKPOINTER_H

#include <stdint.h>

#include <sqlite3.h>
#include <uv.h>

#include "tide.h"

/* SQLite's own default threshold. */
#define TIDE_CKPT_PAGES 1000

typedef struct tide_Ckpt tide_Ckpt;

/* Attaches a checkpointer to db (a writer in WAL mode, used on the loop's
** thread) for the database at path. 0, or TIDE_ENOMEM with nothing
** attached. */
int tide_ckpt_attach(tide_Ckpt **out, sqlite3 *db, const char *path,
                     uv_loop_t *loop, tide_Alloc alloc, void *ud);

/* After a commit of the writer, on the loop's thread: queues a checkpoint
** when the log has grown enough. Accepts NULL. */
void tide_ckpt_poll(tide_Ckpt *c);

/* Detaches it from its writer, before the writer closes. Accepts NULL. */
void tide_ckpt_detach(tide_Ckpt *c);

/* How many checkpoints it has finished, and how many of them failed. */
int64_t tide_ckpt_done(const tide_Ckpt *c);
int64_t tide_ckpt_failed(const tide_Ckpt *c);

#endif
