/*
** Files read, and hashed, on a thread a window ahead of their consumer:
** the walk's fast path hands the engine files whose components read them
** (file:text()), one at a time; their bytes are read meanwhile, so the
** engine's thread does not wait for open, read and close, nor hash.
**
** The consumer says which files may come (next: its candidates in the
** order it will ask for them, each with a key that grows, a path below
** dir and the size the walk saw) and asks for each by key
** (tide_readahead_take). Two windows of at most TIDE_AHEAD_FILES files
** and TIDE_AHEAD_BYTES bytes: the thread fills one while the consumer
** takes from the other; taking past a window waits for the other and
** hands the thread the next. The first window is read on the consumer's
** thread at its first take, which it would wait for anyway: a walk of a
** few files (a live cycle's) starts no thread.
**
** A file is read ahead only when it is read whole at the size the walk
** saw; anything else (it changed size, it cannot be opened or read, the
** path is too long, memory ran out) leaves it to the consumer, which
** reads it itself and so meets its error where it always did. The bytes
** are the file's when the thread read it, which is the content the
** fingerprint is of.
**
** Memory: the windows' buffers are allocated on the consumer's thread
** (the host's allocator need not be thread-safe) and kept for the next
** windows; the thread only fills them.
*/
#ifndef TIDE_READAHEAD_H
#define TIDE_READAHEAD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "fingerprint.h"
#include "job.h"

#define TIDE_AHEAD_FILES 64
#define TIDE_AHEAD_BYTES ((int64_t)4 << 20)

/* The next candidate: 1 with its key, path (borrowed until close) and
** size, or 0 when there is none left. */
typedef int (*tide_AheadNext)(void *ud, size_t *key, const char **path,
                              size_t *len, int64_t *size);

typedef struct tide_AheadSlot {
  size_t key;
  const char *path; /* below dir */
  size_t len;
  int64_t size;
  tide_Buf bytes;   /* the content, when ok */
  int ok;           /* read whole at size, and hashed */
  uint8_t fp[TIDE_FP_SIZE];
} tide_AheadSlot;

typedef struct tide_ReadAhead {
  tide_Job job;
  tide_AheadSlot slots[2][TIDE_AHEAD_FILES];
  int count[2];     /* slots in each window */
  int current;      /* the window taken from */
  int taken;        /* its slots taken or passed */
  int filling;      /* the other window is with the thread */
  int job_window;   /* the window the thread fills */
  int started;
  tide_AheadNext next;
  void *ud;
  char *dir;        /* owned */
  size_t dir_len;
  tide_Alloc alloc;
  void *aud;
} tide_ReadAhead;

/* dir (copied) is where the paths are; next and ud give the candidates;
** alloc may be NULL for the default allocator. 0, or TIDE_ENOMEM (then
** nothing is read ahead; close it all the same). */
int tide_readahead_init(tide_ReadAhead *ra, const char *dir, size_t dir_len,
                        tide_AheadNext next, void *ud, tide_Alloc alloc,
                        void *aud);

/* The file with that key: 1 with its bytes and content fingerprint
** (borrowed until the next call), or 0 when it was not read ahead (read
** it yourself). Keys are asked in growing order; one next never gave
** gives 0. */
int tide_readahead_take(tide_ReadAhead *ra, size_t key,
                        const uint8_t **data, size_t *len,
                        const uint8_t **fp);

/* Waits for the thread, ends it and frees the buffers. Its consumer
** closes it as soon as it has taken its last file: a thread waiting for
** the collector would outlive its walk. */
void tide_readahead_close(tide_ReadAhead *ra);

#endif
