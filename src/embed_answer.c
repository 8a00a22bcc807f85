/* The answer of an embeddings endpoint, read in C (embed_answer.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed_answer.h"

typedef struct {
  const char *start, *p, *end;
  tide_EmbedAnswer *a;
  tide_Buf index;       /* a size_t per vector: its index, or SIZE_MAX */
  size_t with_index, without_index;
  int depth;
  int rc;               /* 0, or the first failure */
} Parser;

static const double pow10_exact[] = {
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static int fail(Parser *P, const char *fmt, ...) {
  va_list ap;
  int n;
  if (P->rc) return P->rc;
  n = snprintf(P->a->err, sizeof P->a->err, "offset %zu: ",
               (size_t)(P->p - P->start));
  va_start(ap, fmt);
  vsnprintf(P->a->err + n, sizeof P->a->err - (size_t)n, fmt, ap);
  va_end(ap);
  return P->rc = TIDE_EINVAL;
}

static int nomem(Parser *P) {
  if (!P->rc) snprintf(P->a->err, sizeof P->a->err, "out of memory");
  return P->rc = TIDE_ENOMEM;
}

static void ws(Parser *P) {
  while (P->p < P->end && (*P->p == ' ' || *P->p == '\t' || *P->p == '\n' ||
                           *P->p == '\r'))
    P->p++;
}

/* Consumes c after whitespace, or fails with what was expected. */
static int expect(Parser *P, char c, const char *what) {
  ws(P);
  if (P->p < P->end && *P->p == c) {
    P->p++;
    return 0;
  }
  return fail(P, "expected %s", what);
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

/* Appends code point u as UTF-8 to name (up to cap bytes; *len counts
** past cap so that a longer name never matches). */
static void put_utf8(char *name, size_t cap, size_t *len, unsigned u) {
  char b[4];
  size_t n, i;
  if (u < 0x80) { b[0] = (char)u; n = 1; }
  else if (u < 0x800) { b[0] = (char)(0xc0 | u >> 6); n = 2; }
  else if (u < 0x10000) { b[0] = (char)(0xe0 | u >> 12); n = 3; }
  else { b[0] = (char)(0xf0 | u >> 18); n = 4; }
  for (i = 1; i < n; i++)
    b[i] = (char)(0x80 | ((u >> (6 * (n - 1 - i))) & 0x3f));
  for (i = 0; i < n; i++, (*len)++)
    if (*len < cap) name[*len] = b[i];
}

/* A string, checked; its text (unescaped) into name when name is not
** NULL, *len its length (more than cap when it did not fit). */
static int read_string(Parser *P, char *name, size_t cap, size_t *len) {
  const char *p;
  size_t n = 0;
  ws(P);
  if (P->p >= P->end || *P->p != '"') return fail(P, "expected a string");
  p = ++P->p;
  while (p < P->end && *p != '"') {
    unsigned char c = (unsigned char)*p;
    if (c < 0x20) {
      P->p = p;
      return fail(P, "a control character in a string");
    }
    if (c != '\\') {
      if (name && n < cap) name[n] = (char)c;
      n++;
      p++;
      continue;
    }
    if (++p >= P->end) break;
    if (*p == 'u') {
      unsigned u, lo;
      if (P->end - p < 5 || !hex4(p + 1, &u)) {
        P->p = p;
        return fail(P, "a bad \\u escape");
      }
      p += 5;
      if (u >= 0xd800 && u <= 0xdbff) {
        if (P->end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
            !hex4(p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff) {
          P->p = p;
          return fail(P, "a lone surrogate in a \\u escape");
        }
        u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        p += 6;
      } else if (u >= 0xdc00 && u <= 0xdfff) {
        P->p = p;
        return fail(P, "a lone surrogate in a \\u escape");
      }
      if (name) put_utf8(name, cap, &n, u);
      continue;
    }
    {
      const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
      const char *at = strchr(from, *p);
      if (*p == '\0' || at == NULL) {
        P->p = p;
        return fail(P, "a bad escape in a string");
      }
      if (name && n < cap) name[n] = to[at - from];
      n++;
      p++;
    }
  }
  if (p >= P->end) {
    P->p = p;
    return fail(P, "a string without its closing quote");
  }
  P->p = p + 1;
  if (len) *len = n;
  return 0;
}

/* A number, checked and read as strtod reads it. */
static int read_number(Parser *P, double *out) {
  const char *s, *p = P->p, *end = P->end;
  uint64_t m = 0;
  int digits = 0, exp10 = 0, slow = 0, neg = 0;
  long e = 0;
  ws(P);
  s = p = P->p;
  if (p < end && *p == '-') neg = 1, p++;
  if (p < end && *p == '0') {
    p++;
  } else if (p < end && *p >= '1' && *p <= '9') {
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
      if (digits < 19) m = m * 10 + (uint64_t)(*p - '0'), digits++;
      else exp10++, slow |= *p != '0';
    }
  } else {
    return fail(P, "expected a number");
  }
  if (p < end && *p == '.') {
    p++;
    if (p >= end || *p < '0' || *p > '9') {
      P->p = p;
      return fail(P, "expected a digit after '.'");
    }
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
      if (m == 0 && *p == '0') exp10--;
      else if (digits < 19) m = m * 10 + (uint64_t)(*p - '0'), digits++,
                            exp10--;
      else slow |= *p != '0';
    }
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    int eneg = 0;
    p++;
    if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
    if (p >= end || *p < '0' || *p > '9') {
      P->p = p;
      return fail(P, "expected a digit in an exponent");
    }
    for (; p < end && *p >= '0' && *p <= '9'; p++)
      if (e < 100000) e = e * 10 + (*p - '0');
    exp10 += (int)(eneg ? -e : e);
  }
  if (!slow && m <= ((uint64_t)1 << 53) && exp10 >= -22 && exp10 <= 22) {
    double d = (double)m;
    d = exp10 < 0 ? d / pow10_exact[-exp10] : d * pow10_exact[exp10];
    *out = neg ? -d : d;
  } else {
    char buf[512];
    size_t n = (size_t)(p - s);
    if (n >= sizeof buf) return fail(P, "a number of %zu characters", n);
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, NULL);
  }
  P->p = p;
  return 0;
}

static int skip_value(Parser *P);

static int skip_container(Parser *P, char close) {
  int first = 1;
  if (++P->depth > TIDE_EMBED_ANSWER_MAX_DEPTH)
    return fail(P, "nested more than %d deep", TIDE_EMBED_ANSWER_MAX_DEPTH);
  P->p++;
  for (;;) {
    ws(P);
    if (P->p < P->end && *P->p == close && first) break;
    if (close == '}') {
      if (read_string(P, NULL, 0, NULL) || expect(P, ':', "':'"))
        return P->rc;
    }
    if (skip_value(P)) return P->rc;
    ws(P);
    if (P->p < P->end && *P->p == ',') {
      P->p++;
      first = 0;
      continue;
    }
    if (P->p < P->end && *P->p == close) break;
    return fail(P, close == '}' ? "expected ',' or '}'" : "expected ',' or "
                "']'");
  }
  P->p++;
  P->depth--;
  return 0;
}

static int literal(Parser *P, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(P->end - P->p) < n || memcmp(P->p, word, n) != 0)
    return fail(P, "expected a value");
  P->p += n;
  return 0;
}

static int skip_value(Parser *P) {
  double d;
  ws(P);
  if (P->p >= P->end) return fail(P, "expected a value");
  switch (*P->p) {
  case '{': return skip_container(P, '}');
  case '[': return skip_container(P, ']');
  case '"': return read_string(P, NULL, 0, NULL);
  case 't': return literal(P, "true");
  case 'f': return literal(P, "false");
  case 'n': return literal(P, "null");
  default: return read_number(P, &d);
  }
}

/* A vector: an array of numbers appended to the floats. */
static int read_vector(Parser *P) {
  tide_EmbedAnswer *a = P->a;
  size_t n = 0, vector = a->count + 1;
  if (expect(P, '[', "a vector (an array of numbers)")) return P->rc;
  ws(P);
  if (P->p < P->end && *P->p == ']') return fail(P, "vector %zu is empty",
                                                  vector);
  for (;;) {
    double d;
    float f;
    if (read_number(P, &d)) return P->rc;
    f = (float)d;
    if (!isfinite(f))
      return fail(P, "vector %zu, number %zu is not finite as a float32",
                  vector, n + 1);
    if (tide_buf_append(&a->floats, &f, sizeof f) != 0) return nomem(P);
    n++;
    ws(P);
    if (P->p < P->end && *P->p == ',') {
      P->p++;
      continue;
    }
    if (expect(P, ']', "',' or ']' in a vector")) return P->rc;
    break;
  }
  if (a->count == 0) a->dims = n;
  else if (n != a->dims)
    return fail(P, "vector %zu has %zu numbers, vector 1 has %zu", vector,
                n, a->dims);
  a->count++;
  return 0;
}

/* {"embedding": [...], "index": i, ...} */
static int read_entry(Parser *P) {
  size_t index = SIZE_MAX;
  int have = 0, first = 1;
  if (expect(P, '{', "an object in data")) return P->rc;
  for (;;) {
    char name[16];
    size_t len;
    ws(P);
    if (first && P->p < P->end && *P->p == '}') break;
    first = 0;
    if (read_string(P, name, sizeof name, &len) || expect(P, ':', "':'"))
      return P->rc;
    if (len == 9 && memcmp(name, "embedding", 9) == 0) {
      if (have) return fail(P, "two embedding members in one entry");
      if (read_vector(P)) return P->rc;
      have = 1;
    } else if (len == 5 && memcmp(name, "index", 5) == 0) {
      double d;
      if (read_number(P, &d)) return P->rc;
      if (!(d >= 0 && d < 1e15 && d == floor(d)))
        return fail(P, "index is not an integer 0 or more");
      index = (size_t)d;
    } else if (skip_value(P)) {
      return P->rc;
    }
    ws(P);
    if (P->p < P->end && *P->p == ',') {
      P->p++;
      continue;
    }
    if (expect(P, '}', "',' or '}'")) return P->rc;
    break;
  }
  if (!have) return fail(P, "an entry of data has no embedding");
  if (tide_buf_append(&P->index, &index, sizeof index) != 0)
    return nomem(P);
  if (index == SIZE_MAX) P->without_index++;
  else P->with_index++;
  return 0;
}

/* An array of what each (read_entry or read_vector) reads. */
static int read_list(Parser *P, int (*each)(Parser *P)) {
  if (expect(P, '[', "an array")) return P->rc;
  ws(P);
  if (P->p < P->end && *P->p == ']') {
    P->p++;
    return 0;
  }
  for (;;) {
    if (each(P)) return P->rc;
    ws(P);
    if (P->p < P->end && *P->p == ',') {
      P->p++;
      continue;
    }
    return expect(P, ']', "',' or ']'");
  }
}

/* With an index on every entry, the vectors in index order. */
static int order_by_index(Parser *P) {
  tide_EmbedAnswer *a = P->a;
  size_t i, n = a->count, size = a->dims * sizeof(float);
  const size_t *index = (const size_t *)P->index.data;
  tide_Buf sorted;
  if (P->with_index == 0) return 0;
  if (P->without_index > 0) {
    snprintf(a->err, sizeof a->err, "some entries of data have an index, "
             "others not");
    return P->rc = TIDE_EINVAL;
  }
  tide_buf_init(&sorted, a->floats.alloc, a->floats.ud);
  if (tide_buf_reserve(&sorted, n * size) != 0) return nomem(P);
  memset(sorted.data, 0xff, n * size); /* a NaN: a slot not filled */
  for (i = 0; i < n; i++) {
    uint32_t bits;
    if (index[i] >= n) {
      tide_buf_close(&sorted);
      snprintf(a->err, sizeof a->err, "index %zu in an answer of %zu "
               "vectors", index[i], n);
      return P->rc = TIDE_EINVAL;
    }
    memcpy(&bits, sorted.data + index[i] * size, sizeof bits);
    if (bits != 0xffffffffu) {
      tide_buf_close(&sorted);
      snprintf(a->err, sizeof a->err, "index %zu appears twice", index[i]);
      return P->rc = TIDE_EINVAL;
    }
    memcpy(sorted.data + index[i] * size, a->floats.data + i * size, size);
  }
  sorted.len = n * size;
  tide_buf_close(&a->floats);
  a->floats = sorted;
  return 0;
}

void tide_embed_answer_init(tide_EmbedAnswer *a, tide_Alloc alloc,
                            void *ud) {
  memset(a, 0, sizeof *a);
  tide_buf_init(&a->floats, alloc, ud);
}

void tide_embed_answer_close(tide_EmbedAnswer *a) {
  tide_buf_close(&a->floats);
}

int tide_embed_answer_read(tide_EmbedAnswer *a, const char *json,
                           size_t len) {
  Parser P;
  int found = 0, first = 1;
  memset(&P, 0, sizeof P);
  P.start = P.p = json;
  P.end = json + len;
  P.a = a;
  a->floats.len = 0;
  a->count = a->dims = 0;
  a->err[0] = '\0';
  tide_buf_init(&P.index, a->floats.alloc, a->floats.ud);
  if (expect(&P, '{', "a JSON object")) goto done;
  P.depth = 1;
  for (;;) {
    char name[16];
    size_t n;
    ws(&P);
    if (first && P.p < P.end && *P.p == '}') break;
    first = 0;
    if (read_string(&P, name, sizeof name, &n) || expect(&P, ':', "':'"))
      goto done;
    if ((n == 4 && memcmp(name, "data", 4) == 0) ||
        (n == 10 && memcmp(name, "embeddings", 10) == 0)) {
      if (found) {
        fail(&P, "two lists of vectors (data, embeddings)");
        goto done;
      }
      found = 1;
      P.depth++;
      if (read_list(&P, n == 4 ? read_entry : read_vector)) goto done;
      P.depth--;
    } else if (skip_value(&P)) {
      goto done;
    }
    ws(&P);
    if (P.p < P.end && *P.p == ',') {
      P.p++;
      continue;
    }
    if (expect(&P, '}', "',' or '}'")) goto done;
    break;
  }
  ws(&P);
  if (P.p != P.end) {
    fail(&P, "more after the JSON value");
    goto done;
  }
  if (!found) {
    snprintf(a->err, sizeof a->err, "no data or embeddings list");
    P.rc = TIDE_EINVAL;
    goto done;
  }
  order_by_index(&P);
done:
  tide_buf_close(&P.index);
  if (P.rc) {
    a->floats.len = 0;
    a->count = a->dims = 0;
  }
  return P.rc;
}
