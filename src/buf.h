/* A growable byte buffer, allocated through the host's allocator. */
#ifndef TIDE_BUF_H
#define TIDE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "tide.h"

typedef struct tide_Buf {
  uint8_t *data; /* owned */
  size_t len;
  size_t cap;
  tide_Alloc alloc;
  void *ud;
} tide_Buf;

void tide_buf_init(tide_Buf *b, tide_Alloc alloc, void *ud);
void tide_buf_close(tide_Buf *b);
/* Makes room for n more bytes; TIDE_ENOMEM on failure. */
int tide_buf_reserve(tide_Buf *b, size_t n);
int tide_buf_append(tide_Buf *b, const void *p, size_t n);
int tide_buf_push(tide_Buf *b, uint8_t byte);

/* The default allocator: realloc/free, lua_Alloc-shaped. */
void *tide_alloc_default(void *ud, void *ptr, size_t osize, size_t nsize);

#endif
