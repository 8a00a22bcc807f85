/* A growable byte buffer. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void *tide_alloc_default(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}

void tide_buf_init(tide_Buf *b, tide_Alloc alloc, void *ud) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->alloc = alloc ? alloc : tide_alloc_default;
  b->ud = ud;
}

void tide_buf_close(tide_Buf *b) {
  if (b == NULL) return;
  if (b->data) b->alloc(b->ud, b->data, b->cap, 0);
  b->data = NULL;
  b->len = b->cap = 0;
}

int tide_buf_reserve(tide_Buf *b, size_t n) {
  size_t cap;
  uint8_t *p;
  if (n <= b->cap - b->len) return 0;
  if (n > SIZE_MAX / 2 - b->len) return TIDE_ENOMEM;
  cap = b->cap ? b->cap : 64;
  while (cap - b->len < n) cap *= 2;
  p = b->alloc(b->ud, b->data, b->cap, cap);
  if (p == NULL) return TIDE_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int tide_buf_append(tide_Buf *b, const void *p, size_t n) {
  int rc = tide_buf_reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

int tide_buf_push(tide_Buf *b, uint8_t byte) {
  int rc = tide_buf_reserve(b, 1);
  if (rc) return rc;
  b->data[b->len++] = byte;
  return 0;
}
