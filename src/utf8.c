/* Text checks (see utf8.h). */
#include "utf8.h"

#include <string.h>

size_t tide_utf8_seqlen(const uint8_t *p, size_t avail) {
  uint8_t c = p[0];
  if (c < 0x80) return 1;
  if (c < 0xc2) return 0; /* continuation byte or overlong lead */
  if (c < 0xe0) {
    return (avail >= 2 && (p[1] & 0xc0) == 0x80) ? 2 : 0;
  }
  if (c < 0xf0) {
    if (avail < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80) return 0;
    if (c == 0xe0 && p[1] < 0xa0) return 0; /* overlong */
    if (c == 0xed && p[1] >= 0xa0) return 0; /* surrogate */
    return 3;
  }
  if (c < 0xf5) {
    if (avail < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
        (p[3] & 0xc0) != 0x80)
      return 0;
    if (c == 0xf0 && p[1] < 0x90) return 0; /* overlong */
    if (c == 0xf4 && p[1] >= 0x90) return 0; /* above U+10FFFF */
    return 4;
  }
  return 0;
}

size_t tide_utf8_invalid_at(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t len;
    uint64_t word;
    if (n - i >= sizeof word) {
      memcpy(&word, p + i, sizeof word);
      if ((word & UINT64_C(0x8080808080808080)) == 0) {
        i += sizeof word;
        continue;
      }
    }
    if (p[i] < 0x80) {
      i++;
      continue;
    }
    if ((len = tide_utf8_seqlen(p + i, n - i)) == 0) return i + 1;
    i += len;
  }
  return 0;
}

int tide_utf8_valid(const uint8_t *p, size_t n) {
  return tide_utf8_invalid_at(p, n) == 0;
}

int tide_is_identifier(const char *s, size_t len) {
  size_t i;
  if (len == 0 || len > 64) return 0;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (i > 0 && c >= '0' && c <= '9')))
      return 0;
  }
  return 1;
}
