/*
** Decompressing gzip data (RFC 1952) in memory through zlib, for
** file:bytes{ decompress = true } and file:text{ decompress = true }.
** Every allocation, zlib's own included, goes through the output buffer's
** allocator. The output is capped, so that a small file that inflates to
** terabytes (a decompression bomb) fails instead of exhausting memory.
*/
#ifndef TIDE_GUNZIP_H
#define TIDE_GUNZIP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The default cap on the decompressed size: 1 GiB. */
#define TIDE_GUNZIP_LIMIT ((size_t)1 << 30)

/* Whether the n bytes at p start with the gzip magic number (1f 8b). */
int tide_gunzip_is_gzip(const uint8_t *p, size_t n);

/* Appends the decompressed content of the len bytes at in to out (owned
** by the caller, who closes it whatever the result). The input is one
** gzip member or several concatenated ones (as `cat a.gz b.gz` makes),
** optionally followed by zero bytes (tar's padding). Returns 0, or
** TIDE_EDECODE with a message in err (size bytes, at least 1) when the
** input is not gzip data, is corrupt or truncated, has other bytes after
** its last member, or inflates to more than limit bytes; TIDE_ENOMEM when
** an allocation fails (err says so too). */
int tide_gunzip(const uint8_t *in, size_t len, size_t limit, tide_Buf *out,
                char *err, size_t size);

#endif
