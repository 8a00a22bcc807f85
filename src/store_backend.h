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

#include "buf.h"

enum { TIDE_STORE_SQLITE = 1, TIDE_STORE_POSTGRES = 2 };

struct tide_Store {
  int backend;       /* TIDE_STORE_SQLITE or TIDE_STORE_POSTGRES */
  tide_Alloc alloc;  /* the store's allocator, set by the backend's open */
  void *ud;
  int track;         /* component writes are noted (tide_store_written) */
  int written_all;   /* everything must be read again */
  tide_Buf written;  /* notes: int64 id, uint64 len, path bytes */
};

#endif
