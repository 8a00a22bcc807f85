/*
** What the state store's backends share: store.c hands each call of
** store.h to the backend the store was opened with, SQLite
** (store_sqlite.h) for a file path, PostgreSQL (store_pg.h) for a
** postgresql:// or postgres:// location. Every backend's store struct
** begins with a tide_Store, which says which backend it is and holds
** what store.c keeps for every backend (the notes of component writes).
*/
#ifndef TIDE_STORE_BACKEND_H
#define TIDE_STORE_BACKEND_H

#include <stdarg.h>
#include <stdint.h>

#include "buf.h"

enum { TIDE_STORE_SQLITE = 1, TIDE_STORE_POSTGRES = 2 };

struct tide_Store {
  int backend;       /* TIDE_STORE_SQLITE or TIDE_STORE_POSTGRES */
  tide_Alloc alloc;  /* the store's allocator, set by the backend's open */
  void *ud;
  int track;         /* component writes are noted (tide_store_written) */
  int written_all;   /* everything must be read again */
  tide_Buf written;  /* notes: int64 id, uint64 len, path bytes */
  char *msg;         /* owned message buffer */
  size_t msg_cap;
  const char *errmsg; /* msg, or a static string */
  int msg_fixed;     /* msg does not grow: another thread may write it */
  /* The open batch (group commit): both backends keep it alike. */
  int in_batch;
  int64_t batch_writes;
  int64_t batch_started_ns; /* CLOCK_MONOTONIC */
  int64_t max_batch_writes;
  int64_t max_batch_ms;
  int64_t batches_lost; /* batches a failure rolled back */
  char *lost_msg;       /* the last one's failure, or NULL (alloc'd) */
};

/* Sets the store's message from fmt and returns code (store.c); the
** backends' fail functions are this. */
int tide_store_failv(tide_Store *s, int code, const char *fmt, va_list ap);

/* Makes the message buffer hold at least size bytes, so that it need not
** grow while msg_fixed is set; 0 or TIDE_ENOMEM. */
int tide_store_msg_reserve(tide_Store *s, size_t size);

/* Frees the message buffer and the kept message (a backend's close). */
void tide_store_base_close(tide_Store *s);

/* Keeps msg (allocated with the store's allocator, NUL-terminated, now
** the store's) as the failure of the last batch lost, freeing the one
** kept before; NULL frees it. */
void tide_store_keep_lost(tide_Store *s, char *msg);

/* CLOCK_MONOTONIC in nanoseconds, for the batches' age; the wall-clock
** time in nanoseconds since the epoch, for the rows' times. */
int64_t tide_store_monotonic_ns(void);
int64_t tide_store_now_ns(void);

/* Whether the open batch is due for a commit by tide_store_maybe_flush:
** it holds max_batch_writes writes or was opened max_batch_ms ago. */
int tide_store_batch_due(const tide_Store *s);

#endif
