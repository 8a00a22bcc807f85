/*
** The text splitter. Three passes over the text:
**
** 1. A line scan (memchr per line) marks the structural candidates: line
**    starts matching a language separator (moved up over comment lines
**    directly above), lines after blank lines, lines after a closing
**    fence, and unanchored separator matches.
** 2. Refinement picks the candidates the choice may use, top-down: a
**    stretch between two chosen candidates that is longer than a chunk
**    may be gets the candidates of the next finer level inside it, down
**    to line starts, sentence ends, clause punctuation, spaces and code
**    point boundaries, each found only where needed. Candidates of one
**    level closer than `step` bytes are thinned out, so a chunk-sized
**    window holds a bounded number of them.
** 3. A dynamic program over the chosen candidates minimises the total
**    cost (see chunk_cost) with three monotone queues, one per piece of
**    the piecewise-linear size cost, in time linear in the candidates.
**
** Then overlaps are found and positions computed in one forward walk.
*/
#include <limits.h>
#include <string.h>

#include "buf.h"
#include "language.h"
#include "split.h"
#include "utf8.h"

/* Plain text: no patterns, blank lines the only language level. */
static const tide_SplitLang plain_text = {1, 0, 0, 0, 0, 0, {0}, {0},
                                          NULL, NULL, NULL, NULL};

/* ---- Scratch memory ---------------------------------------------- */

/* A candidate cut: a byte offset (0-based, between bytes) and a level. */
typedef struct Cand {
  size_t pos;
  int level;
} Cand;

typedef struct CandVec {
  Cand *at;
  size_t len, cap;
} CandVec;

struct tide_SplitScratch {
  CandVec marks; /* structural candidates from the line scan */
  CandVec stack; /* finer candidates of the stretches being refined */
  CandVec cands; /* the candidates the choice runs on, in order */
  double *cost;  /* per candidate: least total cost of a cut there */
  size_t *from;  /* per candidate: the previous cut of that best */
  size_t *queue; /* three monotone queues of candidate indices */
  size_t cost_cap, from_cap, queue_cap;
};

/* Grows an array of `elem`-byte items to hold `need`; 0 or TIDE_ENOMEM. */
static int grow(tide_Split *s, void **p, size_t *cap, size_t need,
                size_t elem) {
  size_t ncap = *cap ? *cap : 64;
  void *np;
  if (need <= *cap) return 0;
  while (ncap < need) {
    if (ncap > SIZE_MAX / 2 / elem) return TIDE_ENOMEM;
    ncap *= 2;
  }
  np = s->alloc(s->ud, *p, *cap * elem, ncap * elem);
  if (np == NULL) return TIDE_ENOMEM;
  *p = np;
  *cap = ncap;
  return 0;
}

static int push(tide_Split *s, CandVec *v, size_t pos, int level) {
  if (v->len == v->cap) {
    void *p = v->at;
    int rc = grow(s, &p, &v->cap, v->len + 1, sizeof(Cand));
    if (rc) return rc;
    v->at = p;
  }
  v->at[v->len].pos = pos;
  v->at[v->len].level = level;
  v->len++;
  return 0;
}

static void release(tide_Split *s, void *p, size_t bytes) {
  if (p) s->alloc(s->ud, p, bytes, 0);
}

void tide_split_init(tide_Split *s, tide_Alloc alloc, void *ud) {
  s->chunks = NULL;
  s->count = s->chunks_cap = 0;
  s->scratch = NULL;
  s->alloc = alloc ? alloc : tide_alloc_default;
  s->ud = ud;
}

void tide_split_close(tide_Split *s) {
  struct tide_SplitScratch *w;
  if (s == NULL) return;
  w = s->scratch;
  release(s, s->chunks, s->chunks_cap * sizeof(tide_SplitChunk));
  if (w) {
    release(s, w->marks.at, w->marks.cap * sizeof(Cand));
    release(s, w->stack.at, w->stack.cap * sizeof(Cand));
    release(s, w->cands.at, w->cands.cap * sizeof(Cand));
    release(s, w->cost, w->cost_cap * sizeof(double));
    release(s, w->from, w->from_cap * sizeof(size_t));
    release(s, w->queue, w->queue_cap * sizeof(size_t));
    release(s, w, sizeof *w);
  }
  s->chunks = NULL;
  s->scratch = NULL;
  s->count = s->chunks_cap = 0;
}

/* ---- The run's context ------------------------------------------- */

/* Generic levels after the language's: line starts and finer. */
enum { LINE, SENTENCE, CLAUSE, SPACE, CHAR, NGENERIC };

typedef struct Ctx {
  tide_Split *s;
  struct tide_SplitScratch *w;
  const tide_SplitLang *lang;
  const uint8_t *t;
  size_t n;
  size_t size;    /* the longest chunk, overlap included */
  size_t core;    /* the longest chunk after the first, overlap excluded */
  size_t min;     /* the length under which a chunk is penalised */
  size_t overlap;
  size_t target;  /* the chunk length the balance term pulls toward */
  size_t step;    /* thinning distance for candidates of one level */
  int line;       /* the level of plain line starts; finer ones follow */
  double weight[TIDE_SPLIT_MAXLEVELS + 1 + NGENERIC];
  double w_chunk, w_dev, w_small;
} Ctx;

/* The longest a chunk starting at lo may be, overlap excluded. */
static size_t smax(const Ctx *c, size_t lo) {
  return lo == 0 ? c->size : c->core;
}

static int emit(Ctx *c, size_t pos, int level) {
  return push(c->s, &c->w->cands, pos, level);
}

/* Length of the code point at t[i], an invalid byte counting as one. */
static size_t unit_len(const uint8_t *t, size_t i, size_t n) {
  size_t len;
  if (t[i] < 0x80) return 1;
  len = tide_utf8_seqlen(t + i, n - i);
  return len ? len : 1;
}

/* ---- Pass 1: the line scan --------------------------------------- */

static int is_space(uint8_t b) {
  return b == ' ' || b == '\t' || b == '\r' || b == '\f' || b == '\v';
}

static int is_blank(const uint8_t *p, size_t len) {
  size_t i;
  for (i = 0; i < len; i++)
    if (!is_space(p[i])) return 0;
  return 1;
}

/* The level of the longest pattern of the group matching at t[p], or -1;
** of two equally long, the coarser. */
static int match_group(const tide_SplitPattern *group, const uint32_t *at,
                       const uint8_t *t, size_t p, size_t n) {
  uint32_t k = at[t[p]], end = at[t[p] + 1];
  size_t best_len = 0;
  int best = -1;
  for (; k < end; k++) {
    const tide_SplitPattern *q = &group[k];
    if (q->len > n - p || memcmp(t + p, q->text, q->len) != 0) continue;
    if (q->len > best_len || (q->len == best_len && q->level < best)) {
      best_len = q->len;
      best = q->level;
    }
  }
  return best;
}

/* Whether one of the patterns is a prefix of t[p .. end). */
static const tide_SplitPattern *match_prefix(const tide_SplitPattern *list,
                                             size_t count, const uint8_t *t,
                                             size_t p, size_t end) {
  size_t k;
  for (k = 0; k < count; k++)
    if (list[k].len <= end - p && memcmp(t + p, list[k].text, list[k].len) == 0)
      return &list[k];
  return NULL;
}

static int is_comment(const tide_SplitLang *g, const uint8_t *t, size_t p,
                      size_t end) {
  while (p < end && (t[p] == ' ' || t[p] == '\t')) p++;
  return match_prefix(g->comments, g->ncomments, t, p, end) != NULL;
}

/* Gives the mark of the comment run starting at pos (index at when it
** exists, else inserted there) a structural level. */
static int attach(Ctx *c, size_t at, size_t pos, int level) {
  CandVec *m = &c->w->marks;
  int rc;
  if (pos == 0) return 0;
  if (at < m->len && m->at[at].pos == pos) {
    if (level < m->at[at].level) m->at[at].level = level;
    return 0;
  }
  if ((rc = push(c->s, m, 0, 0))) return rc;
  memmove(&m->at[at + 1], &m->at[at], (m->len - 1 - at) * sizeof(Cand));
  m->at[at].pos = pos;
  m->at[at].level = level;
  return 0;
}

/* Marks unanchored separator matches in the line [p, end). */
static int scan_loose(Ctx *c, size_t p, size_t end) {
  const tide_SplitLang *g = c->lang;
  CandVec *m = &c->w->marks;
  size_t i;
  int level, rc;
  for (i = p; i < end; i++) {
    uint8_t b = c->t[i];
    if (g->loose_at[b] == g->loose_at[b + 1]) continue;
    if ((level = match_group(g->loose, g->loose_at, c->t, i, c->n)) < 0)
      continue;
    if (i == 0) continue;
    if (m->len > 0 && m->at[m->len - 1].pos == i) {
      if (level < m->at[m->len - 1].level) m->at[m->len - 1].level = level;
    } else if ((rc = push(c->s, m, i, level))) {
      return rc;
    }
  }
  return 0;
}

static int scan_lines(Ctx *c) {
  const tide_SplitLang *g = c->lang;
  const uint8_t *t = c->t;
  const tide_SplitPattern *fence = NULL; /* the open fence */
  size_t n = c->n, p = 0, attach_pos = 0, attach_at = 0;
  int prev_blank = 0, after_fence = 0, fence_level = 0, attaching = 0, rc;
  while (p < n) {
    const uint8_t *eol = memchr(t + p, '\n', n - p);
    size_t end = eol ? (size_t)(eol - t) : n;
    int blank = is_blank(t + p, end - p), level = c->line;
    int fenced = fence != NULL, s;
    if (fenced) {
      if (match_prefix(g->fences, g->nfences, t, p, end) == fence) {
        fence = NULL;
        after_fence = 1;
      }
      attaching = 0;
    } else {
      if (after_fence) level = fence_level;
      after_fence = 0;
      if (!blank && prev_blank && g->blank < level) level = g->blank;
      s = g->nanchored ? match_group(g->anchored, g->anchored_at, t, p, n)
                       : -1;
      if ((fence = match_prefix(g->fences, g->nfences, t, p, end)) != NULL)
        fence_level = s >= 0 ? s : g->blank;
      if (s >= 0 && attaching) {
        if ((rc = attach(c, attach_at, attach_pos, s))) return rc;
      } else if (s >= 0 && s < level) {
        level = s;
      }
      if (blank) {
        attaching = 0;
      } else if (g->ncomments && is_comment(g, t, p, end)) {
        if (!attaching) {
          attaching = 1;
          attach_pos = p;
          attach_at = c->w->marks.len;
        }
      } else {
        attaching = 0;
      }
    }
    if (level < c->line && p > 0 &&
        (rc = push(c->s, &c->w->marks, p, level)))
      return rc;
    if (g->nloose && !fenced && (rc = scan_loose(c, p, end))) return rc;
    prev_blank = blank;
    p = eol ? end + 1 : n;
  }
  return 0;
}

/* ---- Pass 2: refinement ------------------------------------------ */

/*
** Thinning of one level's candidates in a stretch: a candidate closer
** than `step` to the last kept one is skipped, unless skipping it would
** leave a gap longer than a chunk may be.
*/
typedef struct Thin {
  size_t last;      /* position of the last kept candidate */
  size_t pend;      /* the latest skipped candidate's position ... */
  size_t pend_item; /* ... and the caller's handle for it */
  int has_pend;
} Thin;

/* Feeds the candidate (pos, item), or at the end the stretch's end, and
** writes those to keep, in order, to kept (positions) and items (the
** caller's handles); returns how many (0 to 2). */
static int thin_feed(const Ctx *c, Thin *th, size_t pos, size_t item,
                     int at_end, size_t kept[2], size_t items[2]) {
  int n = 0;
  if (th->has_pend && pos - th->last > smax(c, th->last)) {
    kept[n] = th->pend;
    items[n++] = th->pend_item;
    th->last = th->pend;
    th->has_pend = 0;
  }
  if (at_end) return n;
  if (pos - th->last >= c->step) {
    kept[n] = pos;
    items[n++] = item;
    th->last = pos;
    th->has_pend = 0;
  } else {
    th->pend = pos;
    th->pend_item = item;
    th->has_pend = 1;
  }
  return n;
}

static const uint8_t ascii_sentence[] = ".?!";
static const uint8_t ascii_clause[] = ",;:";

/* The level of a cut after the full-width punctuation at t[i] (3 bytes),
** or -1. */
static int cjk_level(const Ctx *c, const uint8_t *t) {
  if (t[0] == 0xe3 && t[1] == 0x80) {
    if (t[2] == 0x82) return c->line + SENTENCE; /* 。 */
    if (t[2] == 0x81) return c->line + CLAUSE;   /* 、 */
    return -1;
  }
  if (t[0] == 0xef && t[1] == 0xbc) {
    switch (t[2]) {
    case 0x81: /* ！ */
    case 0x9f: /* ？ */
    case 0x8e: /* ． */
      return c->line + SENTENCE;
    case 0x8c: /* ， */
    case 0x9b: /* ； */
    case 0x9a: /* ： */
      return c->line + CLAUSE;
    default: return -1;
    }
  }
  return -1;
}

/* Pushes a candidate through the thinning onto the stack. */
static int feed(Ctx *c, Thin *th, size_t pos, int level, int at_end) {
  size_t kept[2], levels[2];
  int k, nk = thin_feed(c, th, pos, (size_t)level, at_end, kept, levels);
  int rc;
  for (k = 0; k < nk; k++)
    if ((rc = push(c->s, &c->w->stack, kept[k], (int)levels[k]))) return rc;
  return 0;
}

/* Pushes, thinned, the candidates of the given generic level strictly
** inside (lo, hi) onto the stack. The stretch holds no line start unless
** level is LINE. */
static int scan_level(Ctx *c, size_t lo, size_t hi, int generic) {
  const uint8_t *t = c->t;
  int level = c->line + generic, rc;
  size_t i = lo;
  Thin th = {lo, 0, 0, 0};
  if (generic == LINE) {
    const uint8_t *eol;
    while (i + 1 < hi && (eol = memchr(t + i, '\n', hi - 1 - i)) != NULL) {
      i = (size_t)(eol - t) + 1;
      if ((rc = feed(c, &th, i, level, 0))) return rc;
    }
  } else if (generic == CHAR) {
    while ((i += unit_len(t, i, c->n)) < hi)
      if ((rc = feed(c, &th, i, level, 0))) return rc;
  } else {
    while (i < hi) {
      uint8_t b = t[i];
      if (b == ' ' || b == '\t') {
        size_t j = i + 1;
        int l = c->line + SPACE;
        while (j < hi && (t[j] == ' ' || t[j] == '\t')) j++;
        if (i > 0 && memchr(ascii_sentence, t[i - 1], 3)) {
          l = c->line + SENTENCE;
        } else if (i > 0 && memchr(ascii_clause, t[i - 1], 3)) {
          l = c->line + CLAUSE;
        }
        if (j < hi && t[j] != '\n' && t[j] != '\r' && l <= level &&
            (rc = feed(c, &th, j, l, 0)))
          return rc;
        i = j;
      } else if ((b == 0xe3 || b == 0xef) && hi - i > 3) {
        int l = cjk_level(c, t + i);
        if (l >= 0 && l <= level && (rc = feed(c, &th, i + 3, l, 0)))
          return rc;
        i += l >= 0 ? 3 : 1;
      } else {
        i++;
      }
    }
  }
  return feed(c, &th, hi, level, 1);
}

/* Refines (lo, hi) with generic levels from `generic` on. */
static int refine_inline(Ctx *c, size_t lo, size_t hi, int generic) {
  CandVec *st = &c->w->stack;
  size_t base = st->len, top, k, prev = lo;
  int rc;
  if (hi - lo <= smax(c, lo) || generic >= NGENERIC) return 0;
  if ((rc = scan_level(c, lo, hi, generic))) return rc;
  top = st->len;
  for (k = base; k < top; k++) {
    size_t pos = st->at[k].pos;
    int level = st->at[k].level;
    if ((rc = refine_inline(c, prev, pos, generic + 1))) return rc;
    if ((rc = emit(c, pos, level))) return rc;
    prev = pos;
  }
  rc = refine_inline(c, prev, hi, generic + 1);
  st->len = base;
  return rc;
}

/* Refines (lo, hi), whose structural marks are marks[i0 .. i1). */
static int refine_marks(Ctx *c, size_t i0, size_t i1, size_t lo, size_t hi) {
  const CandVec *m = &c->w->marks;
  size_t i, start = i0, prev = lo;
  int level = INT_MAX, rc;
  Thin th = {lo, 0, 0, 0};
  if (hi - lo <= smax(c, lo)) return 0;
  if (i0 == i1) return refine_inline(c, lo, hi, LINE);
  for (i = i0; i < i1; i++)
    if (m->at[i].level < level) level = m->at[i].level;
  for (i = i0; i <= i1; i++) {
    size_t kept[2], items[2];
    int k, nk;
    if (i < i1 && m->at[i].level != level) continue;
    nk = thin_feed(c, &th, i < i1 ? m->at[i].pos : hi, i, i == i1, kept,
                   items);
    for (k = 0; k < nk; k++) {
      size_t j = items[k], pos = kept[k];
      if ((rc = refine_marks(c, start, j, prev, pos))) return rc;
      if ((rc = emit(c, pos, level))) return rc;
      prev = pos;
      start = j + 1;
    }
  }
  return refine_marks(c, start, i1, prev, hi);
}

/* ---- Pass 3: the choice ------------------------------------------ */

/*
** The cost of a chunk of len bytes, without the cut at its end: a small
** constant per chunk (fewer chunks are better), a balance term pulling
** toward the target length (at most w_dev * core), and, under min_size,
** a penalty growing to the weight of a blank-line cut at length 0.
** The cut at a chunk's end adds the weight of its level, 3^level, so
** each finer level costs three times the one above it.
*/
static double chunk_cost(const Ctx *c, size_t len) {
  double cost = c->w_chunk;
  cost += c->w_dev *
          (double)(len > c->target ? len - c->target : c->target - len);
  if (len < c->min)
    cost += c->w_small * (double)(c->min - len) / (double)c->min;
  return cost;
}

/* A monotone queue over candidate indices: keys increase front to back. */
typedef struct Queue {
  size_t *at;
  size_t head, tail, next;
  double slope; /* key = cost[i] + slope * pos[i] */
} Queue;

static double key(const Ctx *c, const Queue *q, size_t i) {
  return c->w->cost[i] + q->slope * (double)c->w->cands.at[i].pos;
}

static void queue_push(const Ctx *c, Queue *q, size_t i) {
  double k = key(c, q, i);
  while (q->tail > q->head && key(c, q, q->at[q->tail - 1]) >= k) q->tail--;
  q->at[q->tail++] = i;
}

/* Runs the dynamic program; the chosen cuts are then reachable from the
** last candidate through `from`. */
static int choose(Ctx *c) {
  struct tide_SplitScratch *w = c->w;
  const Cand *cd = w->cands.at;
  size_t count = w->cands.len, j, r;
  double min = (double)c->min, target = (double)c->target;
  Queue q[3];
  void *p = w->cost;
  int rc;
  if ((rc = grow(c->s, &p, &w->cost_cap, count, sizeof(double)))) return rc;
  w->cost = p;
  p = w->from;
  if ((rc = grow(c->s, &p, &w->from_cap, count, sizeof(size_t)))) return rc;
  w->from = p;
  p = w->queue;
  if ((rc = grow(c->s, &p, &w->queue_cap, 3 * count, sizeof(size_t))))
    return rc;
  w->queue = p;
  /* The queues hold the chunk starts that make a chunk shorter than
  ** min_size, from min_size to the target, and longer than the target. */
  for (r = 0; r < 3; r++) {
    q[r].at = w->queue + r * count;
    q[r].head = q[r].tail = 0;
    q[r].next = 1;
  }
  q[0].slope = c->w_dev + (c->min ? c->w_small / min : 0);
  q[1].slope = c->w_dev;
  q[2].slope = -c->w_dev;
  w->cost[0] = 0;
  w->from[0] = 0;
  for (j = 1; j < count; j++) {
    size_t qpos = cd[j].pos, best_from = j - 1;
    double best = -1, v, x = (double)qpos;
    if (qpos <= c->size) {
      best = chunk_cost(c, qpos);
      best_from = 0;
    }
    if (c->min > 0) {
      while (q[0].next < j) queue_push(c, &q[0], q[0].next++);
      while (q[0].tail > q[0].head &&
             cd[q[0].at[q[0].head]].pos + c->min <= qpos)
        q[0].head++;
    }
    while (q[1].next < j && cd[q[1].next].pos + c->min <= qpos)
      queue_push(c, &q[1], q[1].next++);
    while (q[1].tail > q[1].head &&
           cd[q[1].at[q[1].head]].pos + c->target < qpos)
      q[1].head++;
    while (q[2].next < j && cd[q[2].next].pos + c->target < qpos)
      queue_push(c, &q[2], q[2].next++);
    while (q[2].tail > q[2].head &&
           cd[q[2].at[q[2].head]].pos + c->core < qpos)
      q[2].head++;
    for (r = 0; r < 3; r++) {
      size_t i;
      if (q[r].tail == q[r].head) continue;
      i = q[r].at[q[r].head];
      v = key(c, &q[r], i) + c->w_chunk;
      if (r == 0) {
        v += c->w_dev * (target - x) + c->w_small * (1 - x / min);
      } else if (r == 1) {
        v += c->w_dev * (target - x);
      } else {
        v += c->w_dev * (x - target);
      }
      if (best < 0 || v < best) {
        best = v;
        best_from = i;
      }
    }
    /* Only a code point longer than a chunk leaves no choice: it is
    ** a chunk of its own. */
    if (best < 0)
      best = w->cost[j - 1] + chunk_cost(c, qpos - cd[j - 1].pos);
    w->cost[j] = best + (j + 1 < count ? c->weight[cd[j].level] : 0);
    w->from[j] = best_from;
  }
  return 0;
}

/* ---- Chunks, overlaps and positions ------------------------------ */

static int is_word_space(uint8_t b) { return b == '\n' || is_space(b); }

/* Whether a chunk may start at p (0 < p < n) when it repeats text of
** the one before: at a word after white space or CJK punctuation. */
static int word_start(const Ctx *c, size_t p) {
  const uint8_t *t = c->t;
  if (is_word_space(t[p])) return 0;
  if (is_word_space(t[p - 1])) return 1;
  return p >= 3 && cjk_level(c, t + p - 3) >= 0;
}

/* A forward walk keeping the position of the code point at x. */
typedef struct Walk {
  size_t x, chr, line, column;
} Walk;

/* The end of the run of ASCII bytes from i, at most to end; eight bytes
** at a time while it can. */
static size_t ascii_run(const uint8_t *t, size_t i, size_t end) {
  uint64_t word;
  while (end - i >= 8) {
    memcpy(&word, t + i, 8);
    if (word & 0x8080808080808080u) break;
    i += 8;
  }
  while (i < end && t[i] < 0x80) i++;
  return i;
}

/* Walks to the last code point starting at or before target. */
static void walk_to(const uint8_t *t, size_t n, Walk *k, size_t target) {
  while (k->x < target) {
    size_t len, end = ascii_run(t, k->x, target);
    const uint8_t *nl;
    /* ASCII: one code point per byte, lines found with memchr. */
    while ((nl = memchr(t + k->x, '\n', end - k->x)) != NULL) {
      k->chr += (size_t)(nl - t) + 1 - k->x;
      k->x = (size_t)(nl - t) + 1;
      k->line++;
      k->column = 1;
    }
    k->chr += end - k->x;
    k->column += end - k->x;
    k->x = end;
    if (end == target) break;
    len = unit_len(t, k->x, n);
    if (k->x + len > target) break;
    k->x += len;
    k->chr++;
    k->column++;
  }
}

static void set_pos(tide_SplitPos *p, size_t byte, const Walk *k) {
  p->byte = byte;
  p->chr = k->chr;
  p->line = k->line;
  p->column = k->column;
}

/* Turns the chosen cuts into chunks with overlaps and positions. */
static int make_chunks(Ctx *c) {
  tide_Split *s = c->s;
  struct tide_SplitScratch *w = c->w;
  size_t count = 0, j, k, a, b;
  Walk walk = {0, 1, 1, 1};
  int rc;
  for (j = w->cands.len - 1; j > 0; j = w->from[j]) count++;
  if (count > s->chunks_cap) {
    void *p = s->chunks;
    if ((rc = grow(s, &p, &s->chunks_cap, count, sizeof(tide_SplitChunk))))
      return rc;
    s->chunks = p;
  }
  /* First the bytes: [start.byte, stop.byte) is the chunk without its
  ** overlap. */
  k = count;
  for (j = w->cands.len - 1; j > 0; j = w->from[j]) {
    k--;
    s->chunks[k].start.byte = w->cands.at[w->from[j]].pos;
    s->chunks[k].stop.byte = w->cands.at[j].pos;
  }
  s->count = count;
  /* Overlaps, last to first so each chunk still knows where the one
  ** before it begins without its own overlap. */
  for (k = count; k-- > 1;) {
    size_t core = s->chunks[k].start.byte, end = s->chunks[k].stop.byte;
    size_t lo = core > c->overlap ? core - c->overlap : 0, p;
    if (lo < s->chunks[k - 1].start.byte) lo = s->chunks[k - 1].start.byte;
    if (end > c->size && lo < end - c->size) lo = end - c->size;
    for (p = lo; p < core; p++)
      if (p > 0 && word_start(c, p)) break;
    s->chunks[k].start.byte = p < core ? p : core;
  }
  /* Positions in one forward walk: starts never decrease, ends
  ** increase, and each is reached in turn. */
  for (a = b = 0; a < count || b < count;) {
    size_t start = a < count ? s->chunks[a].start.byte : SIZE_MAX;
    size_t last = b < count ? s->chunks[b].stop.byte - 1 : SIZE_MAX;
    if (start <= last) {
      walk_to(c->t, c->n, &walk, start);
      set_pos(&s->chunks[a].start, start + 1, &walk);
      a++;
    } else {
      walk_to(c->t, c->n, &walk, last);
      set_pos(&s->chunks[b].stop, last + 1, &walk);
      b++;
    }
  }
  return 0;
}

int tide_split_run(tide_Split *s, const uint8_t *text, size_t len,
                   const tide_SplitOptions *opt, const tide_SplitLang *lang) {
  Ctx c;
  struct tide_SplitScratch *w;
  size_t chunks;
  int level, rc;
  if (opt->size == 0 || opt->overlap >= opt->size ||
      opt->min_size > opt->size || opt->overlap > opt->min_size)
    return TIDE_EINVAL;
  s->count = 0;
  if (len == 0) return 0;
  if ((w = s->scratch) == NULL) {
    if ((w = s->alloc(s->ud, NULL, 0, sizeof *w)) == NULL) return TIDE_ENOMEM;
    memset(w, 0, sizeof *w);
    s->scratch = w;
  }
  w->marks.len = w->stack.len = w->cands.len = 0;
  c.s = s;
  c.w = w;
  c.lang = lang ? lang : &plain_text;
  c.t = text;
  c.n = len;
  c.size = opt->size;
  c.overlap = opt->overlap;
  c.core = opt->size - opt->overlap;
  c.min = opt->min_size < c.core ? opt->min_size : c.core;
  chunks = len <= c.size ? 1 : 1 + (len - c.size + c.core - 1) / c.core;
  c.target = (len + chunks - 1) / chunks;
  if (c.target > c.core) c.target = c.core;
  if (c.target < c.min) c.target = c.min;
  if (c.target == 0) c.target = 1;
  c.step = c.core / 32 ? c.core / 32 : 1;
  c.line = c.lang->nlevels;
  c.weight[0] = 1;
  for (level = 1; level < c.line + NGENERIC; level++)
    c.weight[level] = 3 * c.weight[level - 1];
  c.w_chunk = 0.25;
  c.w_dev = 0.25 / (double)c.core;
  c.w_small = c.weight[c.lang->blank];
  if ((rc = emit(&c, 0, 0))) return rc;
  if (len > c.size) {
    if ((rc = scan_lines(&c))) return rc;
    if ((rc = refine_marks(&c, 0, w->marks.len, 0, len))) return rc;
  }
  if ((rc = emit(&c, len, 0))) return rc;
  if ((rc = choose(&c))) return rc;
  return make_chunks(&c);
}
