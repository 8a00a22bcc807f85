/*
** Fuzzes the splitter: random text, sizes and languages (built-in ones,
** plain text, or separators taken from the input). Checks, against a
** reference computed here, that chunks tile the text, respect the size
** unless a single code point is longer, never start or end inside a
** UTF-8 sequence, start overlaps at a word, and carry exact positions.
** Any violation aborts.
**
** Input: byte 0-1 size, 2 min_size, 3 overlap, 4 language (>= 0xc0: the
** next byte is the length of a separator spec, NUL-separated, one level
** per separator modulo 4), then the text.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "language.h"
#include "split.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reference: code point length per RFC 3629, written independently of
** the library; an invalid byte is a code point of its own. */
static size_t ref_len(const uint8_t *t, size_t i, size_t n) {
  uint8_t c = t[i];
  size_t len, k;
  uint8_t lo = 0x80, hi = 0xbf;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) len = 2;
  else if (c >= 0xe0 && c <= 0xef) len = 3;
  else if (c >= 0xf0 && c <= 0xf4) len = 4;
  else return 1;
  if (c == 0xe0) lo = 0xa0;
  if (c == 0xed) hi = 0x9f;
  if (c == 0xf0) lo = 0x90;
  if (c == 0xf4) hi = 0x8f;
  if (i + len > n) return 1;
  if (t[i + 1] < lo || t[i + 1] > hi) return 1;
  for (k = 2; k < len; k++)
    if (t[i + k] < 0x80 || t[i + k] > 0xbf) return 1;
  return len;
}

typedef struct Ref {
  size_t *chr, *line, *column; /* of the code point holding each byte */
  uint8_t *boundary;           /* whether a code point starts at i */
  size_t *unit_end;            /* end of the code point holding byte i */
} Ref;

static void fail(const char *what, size_t k) {
  fprintf(stderr, "fuzz_split: %s (chunk %zu)\n", what, k);
  abort();
}

static int is_ws(uint8_t b) {
  return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' ||
         b == '\v';
}

static int after_cjk_punct(const uint8_t *t, size_t p) {
  static const uint8_t marks[][3] = {
    {0xe3, 0x80, 0x82}, {0xe3, 0x80, 0x81}, {0xef, 0xbc, 0x81},
    {0xef, 0xbc, 0x9f}, {0xef, 0xbc, 0x8e}, {0xef, 0xbc, 0x8c},
    {0xef, 0xbc, 0x9b}, {0xef, 0xbc, 0x9a}};
  size_t k;
  if (p < 3) return 0;
  for (k = 0; k < sizeof marks / sizeof marks[0]; k++)
    if (memcmp(t + p - 3, marks[k], 3) == 0) return 1;
  return 0;
}

static void check_pos(const Ref *r, const tide_SplitPos *p, size_t k) {
  size_t i = p->byte - 1;
  if (p->chr != r->chr[i] || p->line != r->line[i] ||
      p->column != r->column[i])
    fail("position differs from the reference", k);
}

static void check(const tide_Split *s, const uint8_t *t, size_t n,
                  const tide_SplitOptions *o, const Ref *r) {
  size_t k, prev_core = 0, prev_stop = 0;
  if ((n == 0) != (s->count == 0)) fail("chunk count", 0);
  for (k = 0; k < s->count; k++) {
    const tide_SplitChunk *c = &s->chunks[k];
    size_t start = c->start.byte - 1, end = c->stop.byte, core = prev_stop;
    if (c->start.byte < 1 || end > n || start >= end) fail("bounds", k);
    if (end <= prev_stop) fail("stops do not increase", k);
    if (start > core) fail("gap between chunks", k);
    if (start < prev_core) fail("overlap reaches past previous chunk", k);
    if (core - start > o->overlap) fail("overlap longer than asked", k);
    if (!r->boundary[start] || (end < n && !r->boundary[end]))
      fail("cut inside a UTF-8 sequence", k);
    if (end - start > o->size &&
        !(start == core && r->unit_end[core] == end))
      fail("chunk longer than size", k);
    if (start < core &&
        !(start > 0 && !is_ws(t[start]) &&
          (is_ws(t[start - 1]) || after_cjk_punct(t, start))))
      fail("overlap does not start at a word", k);
    check_pos(r, &c->start, k);
    check_pos(r, &c->stop, k);
    if (c->stop.byte != end || r->unit_end[end - 1] != end)
      fail("stop is not the last byte of a code point", k);
    prev_core = core;
    prev_stop = end;
  }
  if (n > 0 && prev_stop != n) fail("chunks do not cover the text", 0);
}

static void make_ref(Ref *r, const uint8_t *t, size_t n) {
  size_t i = 0, chr = 1, line = 1, column = 1, k;
  size_t m = n ? n : 1;
  r->chr = malloc(m * sizeof(size_t));
  r->line = malloc(m * sizeof(size_t));
  r->column = malloc(m * sizeof(size_t));
  r->unit_end = malloc(m * sizeof(size_t));
  r->boundary = calloc(m + 1, 1);
  if (!r->chr || !r->line || !r->column || !r->unit_end || !r->boundary)
    abort();
  while (i < n) {
    size_t len = ref_len(t, i, n);
    r->boundary[i] = 1;
    for (k = i; k < i + len; k++) {
      r->chr[k] = chr;
      r->line[k] = line;
      r->column[k] = column;
      r->unit_end[k] = i + len;
    }
    chr++;
    if (t[i] == '\n') {
      line++;
      column = 1;
    } else {
      column++;
    }
    i += len;
  }
}

static void free_ref(Ref *r) {
  free(r->chr);
  free(r->line);
  free(r->column);
  free(r->unit_end);
  free(r->boundary);
}

/* A language from a NUL-separated spec; NULL if the spec is invalid. */
static tide_SplitLang *user_lang(const uint8_t *spec, size_t len) {
  tide_SplitEntry entries[64];
  size_t count = 0, i = 0, bytes, bad;
  tide_SplitLang *lang;
  while (i <= len && count < 64) {
    size_t j = i;
    while (j < len && spec[j] != 0) j++;
    entries[count].text = (const char *)spec + i;
    entries[count].len = j - i;
    entries[count].kind = count % 7 == 5   ? TIDE_SPLIT_COMMENT
                          : count % 7 == 6 ? TIDE_SPLIT_FENCE
                                           : TIDE_SPLIT_SEP;
    entries[count].level = (int)(count % 4);
    count++;
    i = j + 1;
  }
  if (tide_splitlang_check(entries, count, &bad) != NULL) {
    if (bad >= count) abort();
    return NULL;
  }
  if ((bytes = tide_splitlang_size(entries, count)) == 0) abort();
  if ((lang = malloc(bytes)) == NULL) abort();
  if (tide_splitlang_build(lang, entries, count) != lang) abort();
  return lang;
}

static tide_SplitLang *builtin_lang(size_t i) {
  const tide_Language *l = tide_language_at(i);
  tide_SplitEntry *entries;
  tide_SplitLang *lang;
  size_t count;
  if (l == NULL) return NULL;
  count = tide_language_entries(l, NULL);
  entries = malloc((count ? count : 1) * sizeof *entries);
  if (entries == NULL) abort();
  tide_language_entries(l, entries);
  lang = malloc(tide_splitlang_size(entries, count));
  if (lang == NULL || tide_splitlang_build(lang, entries, count) != lang)
    abort();
  free(entries);
  return lang;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tide_SplitOptions o;
  tide_Split s;
  tide_SplitLang *lang = NULL;
  const uint8_t *text;
  size_t len, nlangs = 0;
  Ref r;
  int rc;
  if (size < 5) return 0;
  if (data[0] & 0x80) {
    o.size = 1 + data[1] % 16;
  } else {
    o.size = 1 + ((size_t)data[1] | (size_t)(data[0] & 0x7f) << 8) % 2000;
  }
  o.min_size = data[2] % (o.size + 1);
  o.overlap = o.min_size ? data[3] % (o.min_size + 1) : 0;
  if (o.overlap >= o.size) o.overlap = o.size - 1;
  text = data + 5;
  len = size - 5;
  while (tide_language_at(nlangs)) nlangs++;
  if (data[4] >= 0xc0 && len > 0) {
    size_t spec = text[0] % 64;
    if (spec > len - 1) spec = len - 1;
    lang = user_lang(text + 1, spec);
    text += 1 + spec;
    len -= 1 + spec;
  } else if (data[4] % (nlangs + 1) < nlangs) {
    lang = builtin_lang(data[4] % (nlangs + 1));
  }
  make_ref(&r, text, len);
  tide_split_init(&s, NULL, NULL);
  if ((rc = tide_split_run(&s, text, len, &o, lang)) != 0) abort();
  check(&s, text, len, &o, &r);
  /* Run again on the same splitter with no overlap: its memory is reused
  ** and the chunks must tile the text exactly. */
  o.overlap = 0;
  if ((rc = tide_split_run(&s, text, len, &o, lang)) != 0) abort();
  check(&s, text, len, &o, &r);
  tide_split_close(&s);
  free_ref(&r);
  free(lang);
  return 0;
}
