/* Feature-hashing text embedding (hash_embed.h). */
#include "hash_embed.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "utf8.h"

#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)
#define WORD_SEED UINT64_C(0x9e3779b97f4a7c15)
#define TRIGRAM_SEED UINT64_C(0x6a09e667f3bcc909)
#define BOUNDARY UINT32_C(0x1fffff)
#define WORD_WEIGHT 1.0f
#define TRIGRAM_WEIGHT 0.5f

/* The splitmix64 finaliser. */
static uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* Adds a feature's signed weight to its element. */
static void add(float *out, uint64_t dims, uint64_t f, float weight) {
  out[((f >> 32) * dims) >> 32] += (f & 1) ? -weight : weight;
}

static uint64_t trigram(uint32_t a, uint32_t b, uint32_t c) {
  return mix(((uint64_t)a << 42 | (uint64_t)b << 21 | c) ^ TRIGRAM_SEED);
}

/* Whether a code point of two bytes or more is a separator (the ranges
** of the header). */
static int separator(uint32_t c) {
  if (c < 0x2000) {
    return (c <= 0xbf && c != 0xaa && c != 0xb5 && c != 0xba) ||
           c == 0xd7 || c == 0xf7;
  }
  if (c <= 0x2bff) return 1;
  if (c < 0xfe30) return c >= 0x3000 && c <= 0x303f;
  if (c <= 0xffff) {
    return c <= 0xfe4f || c == 0xfeff || (c >= 0xff00 && c <= 0xff0f) ||
           (c >= 0xff1a && c <= 0xff20) || (c >= 0xff3b && c <= 0xff40) ||
           (c >= 0xff5b && c <= 0xff65);
  }
  return c >= 0x1f000 && c <= 0x1faff;
}

/* A byte's character when it is ASCII: the byte itself for a digit or a
** lower-case letter, lowercased for an upper-case one, 0 for a
** separator; 1 for a byte of 0x80 or more (a UTF-8 sequence starts there,
** or the byte is invalid). */
static const uint8_t ascii[256] = {
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 0, 0, 0, 0, 0, 0,
  0, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
  112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 0, 0, 0, 0, 0,
  0, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
  112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 0, 0, 0, 0, 0,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* The code point of a valid sequence of n (2-4) bytes. */
static uint32_t decode(const uint8_t *p, size_t n) {
  uint32_t c = p[0] & (0x7f >> n);
  size_t i;
  for (i = 1; i < n; i++) c = c << 6 | (p[i] & 0x3f);
  return c;
}

/* The character at *p (before end), which it steps over: 0 for a
** separator. */
static uint32_t next(const uint8_t **p, const uint8_t *end) {
  const uint8_t *s = *p;
  uint32_t c = ascii[*s];
  size_t n;
  if (c != 1) {
    *p = s + 1;
    return c;
  }
  if ((n = tide_utf8_seqlen(s, (size_t)(end - s))) == 0) {
    *p = s + 1;
    return UINT32_C(0x110000) + *s;
  }
  *p = s + n;
  c = decode(s, n);
  return separator(c) ? 0 : c;
}

size_t tide_hash_embed(const char *text, size_t len, float *out,
                       size_t dims) {
  const uint8_t *p = (const uint8_t *)text, *end = p + len;
  uint64_t d = dims;
  size_t features = 0, i;
  double sum = 0, scale;
  memset(out, 0, dims * sizeof *out);
  while (p < end) {
    uint32_t c = next(&p, end), prev2 = BOUNDARY, prev1 = c;
    uint64_t h = (FNV_OFFSET ^ c) * FNV_PRIME;
    size_t chars = 1;
    if (c == 0) continue;
    /* A word: a 3-gram ends at each of its characters after the first,
    ** one more at its end, and then the word itself. */
    while (p < end && (c = next(&p, end)) != 0) {
      add(out, d, trigram(prev2, prev1, c), TRIGRAM_WEIGHT);
      h = (h ^ c) * FNV_PRIME;
      prev2 = prev1;
      prev1 = c;
      chars++;
    }
    add(out, d, trigram(prev2, prev1, BOUNDARY), TRIGRAM_WEIGHT);
    add(out, d, mix(h ^ WORD_SEED), WORD_WEIGHT);
    features += chars + 1;
  }
  for (i = 0; i < dims; i++) sum += (double)out[i] * out[i];
  if (sum == 0) return features;
  scale = 1 / sqrt(sum);
  for (i = 0; i < dims; i++) out[i] = (float)(out[i] * scale);
  return features;
}
