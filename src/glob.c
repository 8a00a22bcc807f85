/*
** Globs: patterns compiled to segments of tokens, matched one directory at
** a time through a small automaton per pattern (see glob.h).
*/
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "glob.h"
#include "utf8.h"

/* Token operations inside a segment. */
enum { TOK_LIT, TOK_ANY, TOK_STAR, TOK_CLASS };

/* Segment kinds: the common shapes get a direct test. */
enum { SEG_LIT, SEG_STAR, SEG_SUFFIX, SEG_PREFIX, SEG_GLOB, SEG_GLOBSTAR };

/* Marks a byte that starts no valid UTF-8 sequence: outside Unicode, so it
** is in no class and in every negated one. */
#define INVALID_CP 0x110000u

typedef struct {
  uint8_t op;
  uint8_t neg;  /* TOK_CLASS: the class is negated */
  uint32_t a;   /* TOK_LIT: offset in bytes; TOK_CLASS: first range */
  uint32_t b;   /* TOK_LIT: length; TOK_CLASS: number of ranges */
} Tok;

typedef struct {
  uint8_t kind;
  uint32_t tok, ntok; /* the segment's tokens */
  uint32_t lit, len;  /* SEG_LIT, SEG_SUFFIX, SEG_PREFIX: the literal */
} Seg;

typedef struct {
  uint32_t seg;       /* first segment */
  uint32_t nseg;
  uint8_t negated;
  uint8_t dir_only;
  uint64_t start;     /* the state of the walked directory */
  uint64_t globstar;  /* positions holding `**` */
  uint64_t inner;     /* positions holding a `**` that is not the last */
} Pat;

struct tide_GlobSet {
  tide_Alloc alloc;
  void *ud;
  size_t npat;
  tide_Buf pats, segs, toks, ranges, bytes; /* owned */
  /* Typed views of the buffers, set once compiling is done. */
  const Pat *pat;
  const Seg *seg;
  const Tok *tok;
  const uint32_t *range; /* pairs lo, hi */
  const uint8_t *byte;
};

/* Compiling. */

typedef struct {
  tide_GlobSet *set;
  const char *pattern; /* borrowed: the pattern as given, for messages */
  char *err;
  size_t errlen;
} Compiler;

static int fail(Compiler *c, const char *why) {
  snprintf(c->err, c->errlen, "bad pattern \"%s\": %s", c->pattern, why);
  return TIDE_EINVAL;
}

/* The code point at p (at most avail bytes) into *cp; returns its length. */
static size_t next_cp(const uint8_t *p, size_t avail, uint32_t *cp) {
  size_t n = tide_utf8_seqlen(p, avail);
  switch (n) {
  case 1: *cp = p[0]; return 1;
  case 2: *cp = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f); return 2;
  case 3:
    *cp = (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 |
          (p[2] & 0x3f);
    return 3;
  case 4:
    *cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
          (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
    return 4;
  default: *cp = INVALID_CP; return 1;
  }
}

/* The byte length of the character at p: one code point, or one byte that
** starts none. */
static size_t char_len(const uint8_t *p, size_t avail) {
  size_t n;
  if (p[0] < 0x80) return 1;
  n = tide_utf8_seqlen(p, avail);
  return n ? n : 1;
}

static int add_tok(Compiler *c, uint8_t op, uint8_t neg, uint32_t a,
                   uint32_t b) {
  Tok t;
  t.op = op;
  t.neg = neg;
  t.a = a;
  t.b = b;
  return tide_buf_append(&c->set->toks, &t, sizeof t);
}

static Tok *last_tok(Compiler *c, uint32_t first) {
  size_t n = c->set->toks.len / sizeof(Tok);
  return n > first ? (Tok *)c->set->toks.data + n - 1 : NULL;
}

/* Appends a literal byte, extending the previous literal token. */
static int add_lit(Compiler *c, uint32_t first, uint8_t byte) {
  Tok *t = last_tok(c, first);
  uint32_t at = (uint32_t)c->set->bytes.len;
  int rc = tide_buf_push(&c->set->bytes, byte);
  if (rc) return rc;
  if (t && t->op == TOK_LIT && t->a + t->b == at) {
    t->b++;
    return 0;
  }
  return add_tok(c, TOK_LIT, 0, at, 1);
}

/* Reads one class member (a code point, `\` escaping) at s[*i]. */
static int class_cp(Compiler *c, const uint8_t *s, size_t end, size_t *i,
                    uint32_t *cp) {
  if (s[*i] == '\\') {
    if (++*i >= end) return fail(c, "unclosed '['");
  }
  if (s[*i] == '/') return fail(c, "'/' inside '[...]'");
  *i += next_cp(s + *i, end - *i, cp);
  return 0;
}

/* Parses a class starting after its `[`; *i ends after the `]`. */
static int parse_class(Compiler *c, const uint8_t *s, size_t end,
                       size_t *i) {
  tide_GlobSet *set = c->set;
  uint32_t start = (uint32_t)(set->ranges.len / (2 * sizeof(uint32_t)));
  uint8_t neg = 0;
  int rc, members = 0;
  if (*i < end && (s[*i] == '!' || s[*i] == '^')) {
    neg = 1;
    ++*i;
  }
  for (;;) {
    uint32_t r[2];
    if (*i >= end) return fail(c, "unclosed '['");
    if (s[*i] == ']' && members > 0) break;
    if ((rc = class_cp(c, s, end, i, &r[0])) != 0) return rc;
    r[1] = r[0];
    if (*i + 1 < end && s[*i] == '-' && s[*i + 1] != ']') {
      ++*i;
      if ((rc = class_cp(c, s, end, i, &r[1])) != 0) return rc;
      if (r[1] < r[0]) return fail(c, "reversed range in '[...]'");
    }
    if ((rc = tide_buf_append(&set->ranges, r, sizeof r)) != 0) return rc;
    members++;
  }
  ++*i;
  return add_tok(c, TOK_CLASS, neg, start, (uint32_t)members);
}

/* Compiles the segment s[0..end) into tokens and a segment entry. */
static int parse_segment(Compiler *c, const uint8_t *s, size_t end) {
  tide_GlobSet *set = c->set;
  uint32_t first = (uint32_t)(set->toks.len / sizeof(Tok));
  const Tok *t;
  Seg seg;
  size_t i = 0;
  int rc = 0;
  memset(&seg, 0, sizeof seg);
  if (end == 2 && s[0] == '*' && s[1] == '*') {
    seg.kind = SEG_GLOBSTAR;
    return tide_buf_append(&set->segs, &seg, sizeof seg);
  }
  if ((end == 1 && s[0] == '.') || (end == 2 && s[0] == '.' && s[1] == '.'))
    return fail(c, "'.' and '..' segments never match");
  while (i < end && rc == 0) {
    Tok *prev = last_tok(c, first);
    switch (s[i]) {
    case '*':
      i++;
      if (!prev || prev->op != TOK_STAR) rc = add_tok(c, TOK_STAR, 0, 0, 0);
      break;
    case '?':
      i++;
      rc = add_tok(c, TOK_ANY, 0, 0, 0);
      break;
    case '[':
      i++;
      rc = parse_class(c, s, end, &i);
      break;
    case '\\':
      if (i + 1 >= end) return fail(c, "'\\' at the end");
      rc = add_lit(c, first, s[i + 1]);
      i += 2;
      break;
    default:
      rc = add_lit(c, first, s[i++]);
      break;
    }
  }
  if (rc) return rc;
  seg.tok = first;
  seg.ntok = (uint32_t)(set->toks.len / sizeof(Tok)) - first;
  t = (const Tok *)set->toks.data + first;
  seg.kind = SEG_GLOB;
  if (seg.ntok == 1 && t[0].op == TOK_LIT) {
    seg.kind = SEG_LIT;
    seg.lit = t[0].a;
    seg.len = t[0].b;
  } else if (seg.ntok == 1 && t[0].op == TOK_STAR) {
    seg.kind = SEG_STAR;
  } else if (seg.ntok == 2 && t[0].op == TOK_STAR && t[1].op == TOK_LIT) {
    seg.kind = SEG_SUFFIX;
    seg.lit = t[1].a;
    seg.len = t[1].b;
  } else if (seg.ntok == 2 && t[0].op == TOK_LIT && t[1].op == TOK_STAR) {
    seg.kind = SEG_PREFIX;
    seg.lit = t[0].a;
    seg.len = t[0].b;
  }
  return tide_buf_append(&set->segs, &seg, sizeof seg);
}

/* Whether the segment separator at s[i] is escaped: an odd run of `\`. */
static int escaped(const uint8_t *s, size_t i) {
  size_t n = 0;
  while (i > n && s[i - n - 1] == '\\') n++;
  return n % 2 == 1;
}

static uint64_t closure(const Pat *p, uint64_t s);

static int compile(Compiler *c) {
  tide_GlobSet *set = c->set;
  const uint8_t *s = (const uint8_t *)c->pattern;
  size_t len = strlen(c->pattern), i, seg_start;
  Pat pat;
  int rc;
  memset(&pat, 0, sizeof pat);
  pat.seg = (uint32_t)(set->segs.len / sizeof(Seg));
  if (len > 0 && s[0] == '!') {
    pat.negated = 1;
    s++;
    len--;
  }
  if (len > 0 && s[0] == '/') {
    s++;
    len--;
  } else if (len > 1 && s[0] == '.' && s[1] == '/') {
    s += 2;
    len -= 2;
  }
  while (len > 0 && s[len - 1] == '/' && !escaped(s, len - 1)) {
    pat.dir_only = 1;
    len--;
  }
  if (len == 0) return fail(c, "empty pattern");
  /* Splits at each `/` outside a class; an unclosed class is an error. */
  for (i = seg_start = 0; i <= len; i++) {
    if (i < len && s[i] == '[') {
      size_t j = i + 1;
      if (j < len && (s[j] == '!' || s[j] == '^')) j++;
      if (j < len && s[j] == ']') j++;
      while (j < len && s[j] != ']' && s[j] != '/') j += s[j] == '\\' ? 2 : 1;
      if (j < len && s[j] == ']') i = j;
      continue; /* parse_segment reports the unclosed or split class */
    }
    if (i < len && (s[i] != '/' || escaped(s, i))) continue;
    if (i > seg_start) {
      const Seg *prev = set->segs.len / sizeof(Seg) > pat.seg
                            ? (const Seg *)(set->segs.data + set->segs.len) - 1
                            : NULL;
      int globstar = i - seg_start == 2 && s[seg_start] == '*' &&
                     s[seg_start + 1] == '*';
      if (!(globstar && prev && prev->kind == SEG_GLOBSTAR)) {
        if ((rc = parse_segment(c, s + seg_start, i - seg_start)) != 0)
          return rc;
      }
    }
    seg_start = i + 1;
  }
  pat.nseg = (uint32_t)(set->segs.len / sizeof(Seg)) - pat.seg;
  if (pat.nseg > TIDE_GLOB_MAX_SEGMENTS) return fail(c, "too many segments");
  for (i = 0; i < pat.nseg; i++) {
    const Seg *seg = (const Seg *)set->segs.data + pat.seg + i;
    if (seg->kind != SEG_GLOBSTAR) continue;
    pat.globstar |= (uint64_t)1 << i;
    if (i + 1 < pat.nseg) pat.inner |= (uint64_t)1 << i;
  }
  pat.start = closure(&pat, 1);
  return tide_buf_append(&set->pats, &pat, sizeof pat);
}

int tide_glob_new(tide_GlobSet **out, const char *const *patterns, size_t n,
                  tide_Alloc alloc, void *ud, char *err, size_t errlen) {
  tide_GlobSet *set;
  Compiler c;
  size_t i;
  int rc = 0;
  *out = NULL;
  if (alloc == NULL) alloc = tide_alloc_default;
  if (n > (size_t)INT32_MAX) {
    snprintf(err, errlen, "too many patterns");
    return TIDE_EINVAL;
  }
  set = alloc(ud, NULL, 0, sizeof *set);
  if (set == NULL) {
    snprintf(err, errlen, "%s", tide_strerror(TIDE_ENOMEM));
    return TIDE_ENOMEM;
  }
  memset(set, 0, sizeof *set);
  set->alloc = alloc;
  set->ud = ud;
  tide_buf_init(&set->pats, alloc, ud);
  tide_buf_init(&set->segs, alloc, ud);
  tide_buf_init(&set->toks, alloc, ud);
  tide_buf_init(&set->ranges, alloc, ud);
  tide_buf_init(&set->bytes, alloc, ud);
  c.set = set;
  c.err = err;
  c.errlen = errlen;
  for (i = 0; i < n && rc == 0; i++) {
    c.pattern = patterns[i];
    rc = compile(&c);
  }
  if (rc) {
    if (rc == TIDE_ENOMEM) snprintf(err, errlen, "%s", tide_strerror(rc));
    tide_glob_free(set);
    return rc;
  }
  set->npat = n;
  set->pat = (const Pat *)set->pats.data;
  set->seg = (const Seg *)set->segs.data;
  set->tok = (const Tok *)set->toks.data;
  set->range = (const uint32_t *)set->ranges.data;
  set->byte = set->bytes.data;
  *out = set;
  return 0;
}

void tide_glob_free(tide_GlobSet *set) {
  if (set == NULL) return;
  tide_buf_close(&set->pats);
  tide_buf_close(&set->segs);
  tide_buf_close(&set->toks);
  tide_buf_close(&set->ranges);
  tide_buf_close(&set->bytes);
  set->alloc(set->ud, set, sizeof *set, 0);
}

size_t tide_glob_count(const tide_GlobSet *set) { return set->npat; }

int tide_glob_negated(const tide_GlobSet *set, int i) {
  return set->pat[i].negated;
}

/* Matching one segment. */

static int in_class(const tide_GlobSet *set, const Tok *t, uint32_t cp) {
  const uint32_t *r = set->range + 2 * (size_t)t->a;
  uint32_t i;
  for (i = 0; i < t->b; i++, r += 2) {
    if (cp >= r[0] && cp <= r[1]) return !t->neg;
  }
  return t->neg;
}

/* Whether the tokens of a segment match the whole of name: the classic
** two-pointer match, backtracking only to the last `*` (every other token
** matches a fixed text at a given place, so that is enough). */
static int match_tokens(const tide_GlobSet *set, const Seg *seg,
                        const uint8_t *name, size_t len) {
  const Tok *tok = set->tok + seg->tok;
  size_t ti = 0, si = 0, star_ti = 0, star_si = 0;
  int star = 0;
  while (si < len || ti < seg->ntok) {
    if (ti < seg->ntok) {
      const Tok *t = tok + ti;
      uint32_t cp;
      size_t n;
      switch (t->op) {
      case TOK_STAR:
        star = 1;
        star_ti = ti++;
        star_si = si;
        continue;
      case TOK_LIT:
        if (len - si >= t->b &&
            memcmp(name + si, set->byte + t->a, t->b) == 0) {
          si += t->b;
          ti++;
          continue;
        }
        break;
      case TOK_ANY:
        if (si < len) {
          si += char_len(name + si, len - si);
          ti++;
          continue;
        }
        break;
      default:
        if (si < len) {
          n = next_cp(name + si, len - si, &cp);
          if (in_class(set, t, cp)) {
            si += n;
            ti++;
            continue;
          }
        }
        break;
      }
    }
    if (!star || star_si >= len) return 0;
    star_si += char_len(name + star_si, len - star_si);
    si = star_si;
    ti = star_ti + 1;
  }
  return 1;
}

static int match_segment(const tide_GlobSet *set, const Seg *seg,
                         const uint8_t *name, size_t len) {
  switch (seg->kind) {
  case SEG_LIT:
    return len == seg->len && memcmp(name, set->byte + seg->lit, len) == 0;
  case SEG_STAR:
    return 1;
  case SEG_SUFFIX:
    return len >= seg->len &&
           memcmp(name + len - seg->len, set->byte + seg->lit, seg->len) == 0;
  case SEG_PREFIX:
    return len >= seg->len && memcmp(name, set->byte + seg->lit, seg->len) == 0;
  default:
    return match_tokens(set, seg, name, len);
  }
}

/* The automaton. A state is the set of positions j such that the
** segments before j can match the directory's path; bit nseg means the
** whole pattern matches it. */

static uint64_t below(const Pat *p) { return ((uint64_t)1 << p->nseg) - 1; }

/* Adds the positions reachable through `**` matching no segment. */
static uint64_t closure(const Pat *p, uint64_t s) {
  uint64_t m = s & p->inner;
  while (m) {
    int j = __builtin_ctzll(m);
    s |= (uint64_t)2 << j;
    m = s & p->inner & ~(((uint64_t)2 << j) - 1);
  }
  return s;
}

static uint64_t step(const tide_GlobSet *set, const Pat *p, uint64_t s,
                     const uint8_t *name, size_t len) {
  uint64_t next = 0, m = s & below(p);
  while (m) {
    int j = __builtin_ctzll(m);
    m &= m - 1;
    if (p->globstar >> j & 1) {
      next |= (uint64_t)1 << j;
      if ((uint32_t)j + 1 == p->nseg) next |= (uint64_t)1 << p->nseg;
    } else if (match_segment(set, set->seg + p->seg + j, name, len)) {
      next |= (uint64_t)2 << j;
    }
  }
  return closure(p, next);
}

void tide_glob_start(const tide_GlobSet *set, uint64_t *state) {
  size_t i;
  for (i = 0; i < set->npat; i++) state[i] = set->pat[i].start;
}

int tide_glob_enter(const tide_GlobSet *set, const uint64_t *cur,
                    const char *name, size_t len, uint64_t *next) {
  size_t i;
  int last = -1;
  for (i = 0; i < set->npat; i++) {
    const Pat *p = set->pat + i;
    next[i] = cur[i] ? step(set, p, cur[i], (const uint8_t *)name, len) : 0;
    if (next[i] >> p->nseg & 1) last = (int)i;
  }
  return last;
}

int tide_glob_match_file(const tide_GlobSet *set, const uint64_t *cur,
                         const char *name, size_t len, int floor) {
  int i;
  for (i = (int)set->npat - 1; i > floor; i--) {
    const Pat *p = set->pat + i;
    uint32_t j = p->nseg - 1;
    if (p->dir_only || !(cur[i] >> j & 1)) continue;
    if (p->globstar >> j & 1 ||
        match_segment(set, set->seg + p->seg + j, (const uint8_t *)name, len))
      return i;
  }
  return -1;
}

int tide_glob_could_match_under(const tide_GlobSet *set,
                                const uint64_t *cur, int floor, int negated) {
  size_t i;
  for (i = floor < 0 ? 0 : (size_t)floor + 1; i < set->npat; i++) {
    const Pat *p = set->pat + i;
    if ((p->negated != 0) == (negated != 0) && (cur[i] & below(p))) return 1;
  }
  return 0;
}

int tide_glob_decide(const tide_GlobSet *set, const char *path, size_t len,
                     int flags, int *winner) {
  uint64_t small[2 * 16], *base = small, *a, *b, *t;
  size_t n = set->npat, i = 0, end, next;
  int best = -1, m;
  if (n > 16) {
    base = set->alloc(set->ud, NULL, 0, 2 * n * sizeof *base);
    if (base == NULL) return TIDE_ENOMEM;
  }
  a = base;
  b = base + n;
  tide_glob_start(set, a);
  for (;;) {
    while (i < len && path[i] == '/') i++;
    if (i >= len) break;
    for (end = i; end < len && path[end] != '/'; end++) continue;
    for (next = end; next < len && path[next] == '/'; next++) continue;
    if (next < len || flags & TIDE_GLOB_DIR) { /* a directory */
      m = tide_glob_enter(set, a, path + i, end - i, b);
      if (next < len && !(flags & TIDE_GLOB_PARENTS)) m = -1;
      t = a;
      a = b;
      b = t;
    } else {
      m = tide_glob_match_file(set, a, path + i, end - i, best);
    }
    if (m > best) best = m;
    i = next;
  }
  if (base != small) set->alloc(set->ud, base, 2 * n * sizeof *base, 0);
  *winner = best;
  return 0;
}
