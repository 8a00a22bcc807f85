/* Text checks: UTF-8 validation (RFC 3629: no overlongs, no surrogates,
** <= U+10FFFF), and the identifiers messages name a field by. */
#ifndef TIDE_UTF8_H
#define TIDE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid sequence at p (1-4), or 0 if p starts no valid one. */
size_t tide_utf8_seqlen(const uint8_t *p, size_t avail);

/* 0 when all n bytes at p are valid UTF-8, else the 1-based position of
** the first byte that starts no valid sequence (what Lua's utf8.len
** reports). ASCII runs are skipped eight bytes at a time. */
size_t tide_utf8_invalid_at(const uint8_t *p, size_t n);

/* Whether all n bytes at p are valid UTF-8. */
int tide_utf8_valid(const uint8_t *p, size_t n);

/* Whether len bytes at s are a Lua-style identifier of at most 64 bytes
** (letters, digits, '_', not starting with a digit): a field a message
** names as .name rather than ["..."]. */
int tide_is_identifier(const char *s, size_t len);

#endif
