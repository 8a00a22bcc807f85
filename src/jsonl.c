/* JSON Lines in C (see jsonl.h). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cbor.h"
#include "error.h"
#include "jsonl.h"

enum { MAJOR_UINT = 0, MAJOR_NINT = 1, MAJOR_ARRAY = 4, MAJOR_MAP = 5 };

#define READ_SIZE (64 * 1024)
#define EXACT 9007199254740992.0 /* 2^53 */

/* ---- Reading a file one line at a time ---- */

static int file_fail(tide_JsonlFile *f, int e) {
  char text[TIDE_ERRNO_TEXT_SIZE];
  snprintf(f->err, sizeof f->err, "%s: %s", f->path ? f->path : "?",
           tide_error_errno_text(e, text, sizeof text));
  return e == ENOENT ? TIDE_ENOTFOUND : TIDE_EIO;
}

int tide_jsonl_open(tide_JsonlFile *f, const char *path, tide_Alloc alloc,
                    void *ud) {
  size_t len = strlen(path);
  if (alloc == NULL) alloc = tide_alloc_default;
  memset(f, 0, sizeof *f);
  f->fd = -1;
  f->alloc = alloc;
  f->ud = ud;
  tide_buf_init(&f->buf, alloc, ud);
  f->path = alloc(ud, NULL, 0, len + 1);
  if (f->path == NULL) {
    snprintf(f->err, sizeof f->err, "out of memory");
    return TIDE_ENOMEM;
  }
  memcpy(f->path, path, len + 1);
  f->path_size = len + 1;
  f->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (f->fd < 0) return file_fail(f, errno);
  return 0;
}

void tide_jsonl_close(tide_JsonlFile *f) {
  if (f->fd >= 0) close(f->fd);
  f->fd = -1;
  if (f->path) f->alloc(f->ud, f->path, f->path_size, 0);
  f->path = NULL;
  tide_buf_close(&f->buf);
}

/* Reads more bytes after what buf holds, first moving the unread ones to
** its start. */
static int fill(tide_JsonlFile *f) {
  tide_Buf *b = &f->buf;
  ssize_t got;
  int rc;
  if (f->start > 0) {
    memmove(b->data, b->data + f->start, b->len - f->start);
    b->len -= f->start;
    f->start = 0;
  }
  if ((rc = tide_buf_reserve(b, READ_SIZE)) != 0) {
    snprintf(f->err, sizeof f->err, "out of memory");
    return rc;
  }
  do {
    got = read(f->fd, b->data + b->len, b->cap - b->len);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return file_fail(f, errno);
  if (got == 0) f->eof = 1;
  b->len += (size_t)got;
  return 0;
}

int tide_jsonl_next(tide_JsonlFile *f, const char **line, size_t *len) {
  tide_Buf *b = &f->buf;
  int rc;
  if (f->fd < 0) return 0;
  while (!f->bom_checked) {
    if (b->len - f->start >= 3 || f->eof) {
      if (b->len - f->start >= 3 &&
          memcmp(b->data + f->start, "\xef\xbb\xbf", 3) == 0)
        f->start += 3;
      f->bom_checked = 1;
    } else if ((rc = fill(f)) != 0) {
      return rc;
    }
  }
  for (;;) {
    uint8_t *from = b->data + f->start + f->scanned;
    size_t avail = b->len - f->start - f->scanned;
    uint8_t *nl = avail ? memchr(from, '\n', avail) : NULL;
    if (nl != NULL) {
      *line = (const char *)b->data + f->start;
      *len = (size_t)(nl - (b->data + f->start));
      f->start += *len + 1;
      f->scanned = 0;
      return 1;
    }
    f->scanned += avail;
    if (f->eof) {
      if (f->start == b->len) return 0;
      *line = (const char *)b->data + f->start;
      *len = b->len - f->start;
      f->start = b->len;
      f->scanned = 0;
      return 1;
    }
    if ((rc = fill(f)) != 0) return rc;
  }
}

/* ---- Reading a line ---- */

void tide_jsonl_value_init(tide_JsonlValue *v, tide_Alloc alloc, void *ud) {
  tide_buf_init(&v->out, alloc, ud);
  tide_buf_init(&v->scratch, alloc, ud);
  tide_buf_init(&v->str, alloc, ud);
  tide_buf_init(&v->key, alloc, ud);
}

void tide_jsonl_value_close(tide_JsonlValue *v) {
  tide_buf_close(&v->out);
  tide_buf_close(&v->scratch);
  tide_buf_close(&v->str);
  tide_buf_close(&v->key);
}

/* Every parse function returns 1 (read), 0 (a line the reader does not
** take) or TIDE_ENOMEM. */
typedef struct {
  const char *p, *end;
  tide_JsonlValue *v;
  int depth;
  const char *field;
  size_t field_len;
  int key_state; /* 0 not seen, 1 a usable key, -1 one that is not */
} Parser;

/* One object field: where its key and value lie in out, from the start
** of the object's body; a null value is absent (len == klen). */
typedef tide_CborEntry Entry;

static void skip_space(Parser *P) {
  while (P->p < P->end &&
         (*P->p == ' ' || *P->p == '\t' || *P->p == '\r' || *P->p == '\n'))
    P->p++;
}

static int hex_digit(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The 4 hex digits at p (end bounds them), or -1. */
static int hex4(const char *p, const char *end) {
  int i, v = 0;
  if (end - p < 4) return -1;
  for (i = 0; i < 4; i++) {
    int d = hex_digit((unsigned char)p[i]);
    if (d < 0) return -1;
    v = v << 4 | d;
  }
  return v;
}

/* Appends code point cp as UTF-8, as lua-cjson writes it. */
static int put_utf8(tide_Buf *b, int cp) {
  uint8_t u[4];
  size_t n;
  if (cp <= 0x7f) {
    u[0] = (uint8_t)cp;
    n = 1;
  } else if (cp <= 0x7ff) {
    u[0] = (uint8_t)(cp >> 6 | 0xc0);
    u[1] = (uint8_t)((cp & 0x3f) | 0x80);
    n = 2;
  } else if (cp <= 0xffff) {
    u[0] = (uint8_t)(cp >> 12 | 0xe0);
    u[1] = (uint8_t)((cp >> 6 & 0x3f) | 0x80);
    u[2] = (uint8_t)((cp & 0x3f) | 0x80);
    n = 3;
  } else {
    u[0] = (uint8_t)(cp >> 18 | 0xf0);
    u[1] = (uint8_t)((cp >> 12 & 0x3f) | 0x80);
    u[2] = (uint8_t)((cp >> 6 & 0x3f) | 0x80);
    u[3] = (uint8_t)((cp & 0x3f) | 0x80);
    n = 4;
  }
  return tide_buf_append(b, u, n);
}

/* The string at P->p (its opening quote): *s and *len are its bytes after
** unescaping, in the line itself when it has no escape, else in v->str. */
static int read_string(Parser *P, const char **s, size_t *len) {
  const char *p = ++P->p, *end = P->end;
  tide_Buf *str = &P->v->str;
  int rc;
  while (p < end && *p != '"' && *p != '\\' && *p != '\0') p++;
  if (p < end && *p == '"') { /* no escape: the common case */
    *s = P->p;
    *len = (size_t)(p - P->p);
    P->p = p + 1;
    return 1;
  }
  str->len = 0;
  if ((rc = tide_buf_append(str, P->p, (size_t)(p - P->p))) != 0) return rc;
  while (p < end && *p != '"') {
    if (*p == '\0') return 0;
    if (*p != '\\') {
      const char *run = p;
      while (p < end && *p != '"' && *p != '\\' && *p != '\0') p++;
      if ((rc = tide_buf_append(str, run, (size_t)(p - run))) != 0)
        return rc;
      continue;
    }
    if (end - p < 2) return 0;
    switch (p[1]) {
    case '"': rc = tide_buf_push(str, '"'); break;
    case '\\': rc = tide_buf_push(str, '\\'); break;
    case '/': rc = tide_buf_push(str, '/'); break;
    case 'b': rc = tide_buf_push(str, '\b'); break;
    case 'f': rc = tide_buf_push(str, '\f'); break;
    case 'n': rc = tide_buf_push(str, '\n'); break;
    case 'r': rc = tide_buf_push(str, '\r'); break;
    case 't': rc = tide_buf_push(str, '\t'); break;
    case 'u': {
      int cp = hex4(p + 2, end), low;
      if (cp < 0) return 0;
      if ((cp & 0xf800) == 0xd800) { /* a surrogate: a pair, high first */
        if (cp & 0x400) return 0;
        if (end - p < 12 || p[6] != '\\' || p[7] != 'u') return 0;
        low = hex4(p + 8, end);
        if (low < 0 || (low & 0xfc00) != 0xdc00) return 0;
        cp = (((cp & 0x3ff) << 10) | (low & 0x3ff)) + 0x10000;
        p += 6;
      }
      rc = put_utf8(str, cp);
      p += 4;
      break;
    }
    default: return 0;
    }
    if (rc) return rc;
    p += 2;
  }
  if (p >= end) return 0;
  *s = (const char *)str->data;
  *len = str->len;
  P->p = p + 1;
  return 1;
}

/* A number as lua-cjson then normalize make it: *is_int with *i, or the
** float *d. Strict JSON syntax only; strtod must read it exactly. */
static int read_number(Parser *P, int *is_int, int64_t *i, double *d) {
  const char *p = P->p, *end = P->end, *digits;
  int integral = 1;
  char buf[64], *stop;
  size_t n;
  if (p < end && *p == '-') p++;
  digits = p;
  if (p < end && *p == '0') {
    p++;
  } else if (p < end && *p >= '1' && *p <= '9') {
    while (p < end && *p >= '0' && *p <= '9') p++;
  } else {
    return 0;
  }
  if (p < end && *p == '.') {
    integral = 0;
    if (++p >= end || *p < '0' || *p > '9') return 0;
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    integral = 0;
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || *p < '0' || *p > '9') return 0;
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  n = (size_t)(p - P->p);
  if (integral && p - digits <= 15) { /* exact, and below 2^53 */
    int64_t v = 0;
    const char *q;
    for (q = digits; q < p; q++) v = v * 10 + (*q - '0');
    *is_int = 1;
    *i = P->p[0] == '-' ? -v : v; /* -0 is 0, as tointeger(-0.0) */
    P->p = p;
    return 1;
  }
  if (n >= sizeof buf) return 0;
  memcpy(buf, P->p, n);
  buf[n] = '\0';
  errno = 0;
  *d = strtod(buf, &stop);
  if (stop != buf + n || errno == ERANGE || !isfinite(*d)) return 0;
  *is_int = *d == floor(*d) && *d >= -EXACT && *d <= EXACT;
  if (*is_int) *i = (int64_t)*d;
  P->p = p;
  return 1;
}

static int read_value(Parser *P, int *null, int is_key);

/* Moves the head just appended at out[at..] in front of the body that
** starts at `body` (everything from body to at). */
static void head_first(tide_Buf *out, size_t body, size_t at) {
  uint8_t h[9];
  size_t hlen = out->len - at;
  memcpy(h, out->data + at, hlen);
  memmove(out->data + body + hlen, out->data + body, at - body);
  memcpy(out->data + body, h, hlen);
}

/* Lays the object's fields out again in key order, nulls left out, under
** their head; a key twice is a line for Lua (its last value wins there). */
static int finish_object(Parser *P, size_t body, size_t first, size_t n) {
  tide_Buf *out = &P->v->out, *scratch = &P->v->scratch;
  size_t total = out->len - body, i, count = 0, at;
  Entry *ent;
  uint8_t *copy;
  int rc;
  if (n == 0) { /* {}: the empty table, an empty array */
    rc = tide_cbor_put_head(out, MAJOR_ARRAY, 0);
    return rc ? rc : 1;
  }
  /* After the n entries: room for the sort's second array, then for a
  ** copy of the body. */
  if ((rc = tide_buf_reserve(scratch, n * sizeof(Entry) + total)) != 0)
    return rc;
  ent = (Entry *)(scratch->data + first);
  tide_cbor_sort_entries(out->data + body, ent, ent + n, n);
  for (i = 0; i < n; i++) {
    if (i > 0 && ent[i].klen == ent[i - 1].klen &&
        memcmp(out->data + body + ent[i].off,
               out->data + body + ent[i - 1].off, ent[i].klen) == 0)
      return 0;
    if (ent[i].len > ent[i].klen) count++;
  }
  copy = scratch->data + first + 2 * n * sizeof(Entry);
  memcpy(copy, out->data + body, total);
  out->len = body;
  if ((rc = count == 0 ? tide_cbor_put_head(out, MAJOR_ARRAY, 0)
                       : tide_cbor_put_head(out, MAJOR_MAP, count)) != 0)
    return rc;
  at = out->len;
  if ((rc = tide_buf_reserve(out, total)) != 0) return rc;
  for (i = 0; i < n; i++) {
    if (ent[i].len == ent[i].klen) continue;
    memcpy(out->data + at, copy + ent[i].off, ent[i].len);
    at += ent[i].len;
  }
  out->len = at;
  return 1;
}

/* After an element of an object or an array: 1 when a ',' starts another,
** 0 when the closing byte ends it (either consumed), -1 for anything
** else. */
static int after_element(Parser *P, char close) {
  skip_space(P);
  if (P->p < P->end && *P->p == ',') {
    P->p++;
    skip_space(P);
    return 1;
  }
  if (P->p < P->end && *P->p == close) {
    P->p++;
    return 0;
  }
  return -1;
}

static int read_object(Parser *P) {
  tide_Buf *out = &P->v->out, *scratch = &P->v->scratch;
  size_t body = out->len, first = scratch->len, n = 0;
  int top = P->depth == 0, rc, more;
  if (++P->depth > TIDE_JSONL_MAX_DEPTH) return 0;
  P->p++;
  skip_space(P);
  if (P->p < P->end && *P->p == '}') {
    P->p++;
  } else {
    for (;;) {
      Entry e;
      const char *k;
      size_t klen;
      int is_key = 0, null;
      if (P->p >= P->end || *P->p != '"') return 0;
      e.off = out->len - body;
      if ((rc = read_string(P, &k, &klen)) != 1 ||
          (rc = tide_cbor_put_string(out, k, klen)) != 0)
        return rc;
      e.klen = out->len - body - e.off;
      if (top && klen == P->field_len && memcmp(k, P->field, klen) == 0)
        is_key = 1;
      skip_space(P);
      if (P->p >= P->end || *P->p != ':') return 0;
      P->p++;
      skip_space(P);
      if ((rc = read_value(P, &null, is_key)) != 1) return rc;
      e.len = out->len - body - e.off;
      if ((rc = tide_buf_append(scratch, &e, sizeof e)) != 0) return rc;
      n++;
      if ((more = after_element(P, '}')) < 0) return 0;
      if (!more) break;
    }
  }
  rc = finish_object(P, body, first, n);
  scratch->len = first;
  P->depth--;
  return rc;
}

static int read_array(Parser *P) {
  tide_Buf *out = &P->v->out;
  size_t body = out->len, n = 0, at;
  int rc, more;
  if (++P->depth > TIDE_JSONL_MAX_DEPTH) return 0;
  P->p++;
  skip_space(P);
  if (P->p < P->end && *P->p == ']') {
    P->p++;
  } else {
    for (;;) {
      int null;
      if ((rc = read_value(P, &null, 0)) != 1) return rc;
      if (null) return 0; /* an error in Lua, naming the element */
      n++;
      if ((more = after_element(P, ']')) < 0) return 0;
      if (!more) break;
    }
  }
  at = out->len;
  if ((rc = tide_cbor_put_head(out, MAJOR_ARRAY, n)) != 0) return rc;
  head_first(out, body, at);
  P->depth--;
  return 1;
}

/* Notes the key field's value: a non-empty string or an integer. */
static int note_key(Parser *P, const char *s, size_t len, int is_int,
                    int64_t i) {
  tide_Buf *key = &P->v->key;
  char num[24];
  int rc;
  key->len = 0;
  if (s == NULL && !is_int) {
    P->key_state = -1;
    return 1;
  }
  if (s == NULL) {
    len = (size_t)snprintf(num, sizeof num, "%lld", (long long)i);
    s = num;
  }
  if (len == 0) {
    P->key_state = -1;
    return 1;
  }
  if ((rc = tide_buf_append(key, s, len)) != 0) return rc;
  P->key_state = 1;
  return 1;
}

static int literal(Parser *P, const char *word, size_t len) {
  if ((size_t)(P->end - P->p) < len || memcmp(P->p, word, len) != 0)
    return 0;
  P->p += len;
  return 1;
}

static int read_value(Parser *P, int *null, int is_key) {
  tide_Buf *out = &P->v->out;
  int rc;
  *null = 0;
  if (P->p >= P->end) return 0;
  switch (*P->p) {
  case '{':
  case '[':
    rc = *P->p == '{' ? read_object(P) : read_array(P);
    if (rc == 1 && is_key) rc = note_key(P, NULL, 0, 0, 0);
    return rc;
  case '"': {
    const char *s;
    size_t len;
    if ((rc = read_string(P, &s, &len)) != 1) return rc;
    if (is_key && (rc = note_key(P, s, len, 0, 0)) != 1) return rc;
    return tide_cbor_put_string(out, s, len) == 0 ? 1 : TIDE_ENOMEM;
  }
  case 't':
  case 'f': {
    int yes = *P->p == 't';
    if (!literal(P, yes ? "true" : "false", yes ? 4 : 5)) return 0;
    if (is_key) note_key(P, NULL, 0, 0, 0);
    return tide_buf_push(out, yes ? 0xf5 : 0xf4) == 0 ? 1 : TIDE_ENOMEM;
  }
  case 'n':
    if (!literal(P, "null", 4)) return 0;
    if (is_key) note_key(P, NULL, 0, 0, 0);
    *null = 1;
    return 1;
  default: {
    int is_int;
    int64_t i = 0;
    double d = 0;
    if ((rc = read_number(P, &is_int, &i, &d)) != 1) return rc;
    if (is_key && (rc = note_key(P, NULL, 0, is_int, i)) != 1) return rc;
    if (!is_int) return tide_cbor_put_float(out, d) == 0 ? 1 : TIDE_ENOMEM;
    rc = i >= 0 ? tide_cbor_put_head(out, MAJOR_UINT, (uint64_t)i)
                : tide_cbor_put_head(out, MAJOR_NINT, ~(uint64_t)i);
    return rc == 0 ? 1 : rc;
  }
  }
}

int tide_jsonl_read(tide_JsonlValue *v, const char *line, size_t len,
                    const char *field, size_t field_len) {
  Parser P;
  int rc;
  P.p = line;
  P.end = line + len;
  P.v = v;
  P.depth = 0;
  P.field = field;
  P.field_len = field_len;
  P.key_state = 0;
  v->out.len = v->scratch.len = v->key.len = 0;
  skip_space(&P);
  if (P.p >= P.end || *P.p != '{') return 0;
  if ((rc = read_object(&P)) != 1) return rc;
  skip_space(&P);
  if (P.p != P.end || P.key_state != 1) return 0;
  return 1;
}
