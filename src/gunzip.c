/* Decompressing gzip data in memory through zlib (gunzip.h). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>

#include "gunzip.h"

/* zlib frees without a size and the host's allocator wants one: each
** block zlib asks for carries its size in a header before it. */
typedef union {
  size_t size;
  max_align_t align;
} Header;

static voidpf zalloc(voidpf opaque, uInt items, uInt size) {
  tide_Buf *out = opaque;
  size_t n = (size_t)items * size;
  Header *h;
  if (size != 0 && n / size != items) return Z_NULL;
  if (n > SIZE_MAX - sizeof *h) return Z_NULL;
  h = out->alloc(out->ud, NULL, 0, sizeof *h + n);
  if (h == NULL) return Z_NULL;
  h->size = sizeof *h + n;
  return h + 1;
}

static void zfree(voidpf opaque, voidpf p) {
  tide_Buf *out = opaque;
  Header *h;
  if (p == NULL) return;
  h = (Header *)p - 1;
  out->alloc(out->ud, h, h->size, 0);
}

int tide_gunzip_is_gzip(const uint8_t *p, size_t n) {
  return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

/* Whether the n bytes at p are all zero. */
static int all_zero(const uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (p[i] != 0) return 0;
  return 1;
}

/* The largest piece zlib's unsigned counters take at once. */
#define PIECE ((size_t)1 << 30)

int tide_gunzip(const uint8_t *in, size_t len, size_t limit, tide_Buf *out,
                char *err, size_t size) {
  z_stream z;
  size_t start = out->len, used = 0;
  int rc = Z_OK, result = 0;
  if (!tide_gunzip_is_gzip(in, len)) {
    snprintf(err, size, "not gzip data");
    return TIDE_EDECODE;
  }
  memset(&z, 0, sizeof z);
  z.zalloc = zalloc;
  z.zfree = zfree;
  z.opaque = out;
  /* 16 + MAX_WBITS: the gzip wrapper only, its CRC-32 and size checked. */
  if ((rc = inflateInit2(&z, 16 + MAX_WBITS)) != Z_OK) {
    snprintf(err, size, "%s", rc == Z_MEM_ERROR ? "out of memory"
                                                : "cannot start zlib");
    return rc == Z_MEM_ERROR ? TIDE_ENOMEM : TIDE_EDECODE;
  }
  for (;;) {
    size_t room, in_piece, got;
    /* Room for at least what the input has left, within the cap plus one
    ** byte: a member that fills that byte is over the cap. */
    if (out->cap - out->len < 16384 &&
        tide_buf_reserve(out, out->len - start < len ? len : 65536) != 0) {
      snprintf(err, size, "out of memory");
      result = TIDE_ENOMEM;
      break;
    }
    room = out->cap - out->len;
    if (room > limit + 1 - (out->len - start))
      room = limit + 1 - (out->len - start);
    if (room > PIECE) room = PIECE;
    in_piece = len - used < PIECE ? len - used : PIECE;
    z.next_in = (Bytef *)(uintptr_t)(in + used);
    z.avail_in = (uInt)in_piece;
    z.next_out = out->data + out->len;
    z.avail_out = (uInt)room;
    rc = inflate(&z, Z_NO_FLUSH);
    used += in_piece - z.avail_in;
    got = room - z.avail_out;
    out->len += got;
    if (out->len - start > limit) {
      snprintf(err, size, "decompressed size exceeds the limit of %zu bytes",
               limit);
      result = TIDE_EDECODE;
      break;
    }
    if (rc == Z_STREAM_END) {
      /* Another member follows, or zero padding, or nothing. */
      if (used == len || all_zero(in + used, len - used)) break;
      if (!tide_gunzip_is_gzip(in + used, len - used)) {
        snprintf(err, size, "unexpected data after the gzip stream (at "
                 "byte %zu)", used);
        result = TIDE_EDECODE;
        break;
      }
      if (inflateReset(&z) != Z_OK) {
        snprintf(err, size, "cannot restart zlib");
        result = TIDE_EDECODE;
        break;
      }
      continue;
    }
    if (rc == Z_MEM_ERROR) {
      snprintf(err, size, "out of memory");
      result = TIDE_ENOMEM;
      break;
    }
    if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT || rc == Z_STREAM_ERROR) {
      snprintf(err, size, "corrupt gzip data (%s)",
               z.msg ? z.msg : "invalid stream");
      result = TIDE_EDECODE;
      break;
    }
    /* Z_OK or Z_BUF_ERROR: no progress with all input used is the end. */
    if (used == len && got == 0) {
      snprintf(err, size, "truncated gzip data (the stream ends early)");
      result = TIDE_EDECODE;
      break;
    }
  }
  inflateEnd(&z);
  return result;
}
