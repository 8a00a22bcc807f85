/* HTML to Markdown-ish text through gumbo (html_text.h). */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gumbo.h>

#include "html_depth.h"
#include "html_text.h"

/* ---- gumbo's memory ----
** Every block gumbo takes is linked in a list, so that all of them can be
** freed at once: after an allocation failure (gumbo checks none, so the
** allocator jumps back to parse) and instead of gumbo_destroy_output,
** which recurses once per level of the tree. */

typedef union Block {
  struct {
    union Block *prev, *next;
    size_t size;
  } h;
  max_align_t align;
} Block;

typedef struct {
  tide_Alloc alloc;
  void *ud;
  Block list; /* the sentinel of a circular list */
  jmp_buf failed;
} Arena;

static void *arena_alloc(void *ud, size_t n) {
  Arena *a = ud;
  Block *b = NULL;
  if (n <= SIZE_MAX - sizeof *b) b = a->alloc(a->ud, NULL, 0, sizeof *b + n);
  if (b == NULL) longjmp(a->failed, 1);
  b->h.size = sizeof *b + n;
  b->h.prev = &a->list;
  b->h.next = a->list.h.next;
  a->list.h.next->h.prev = b;
  a->list.h.next = b;
  return b + 1;
}

static void arena_free(void *ud, void *p) {
  Arena *a = ud;
  Block *b;
  if (p == NULL) return;
  b = (Block *)p - 1;
  b->h.prev->h.next = b->h.next;
  b->h.next->h.prev = b->h.prev;
  a->alloc(a->ud, b, b->h.size, 0);
}

static void arena_close(Arena *a) {
  while (a->list.h.next != &a->list) arena_free(a, a->list.h.next + 1);
}

/* The parse of n bytes at s, or NULL when an allocation failed. */
static GumboOutput *parse(Arena *a, const char *s, size_t n) {
  GumboOptions o = kGumboDefaultOptions;
  o.allocator = arena_alloc;
  o.deallocator = arena_free;
  o.userdata = a;
  o.max_errors = 0;
  if (setjmp(a->failed) != 0) return NULL;
  return gumbo_parse_with_options(&o, s, n);
}

/* ---- the writer ---- */

#define NONE SIZE_MAX

/* The indentation and quote marks of a line stop growing here, so that
** deep nesting cannot make the output quadratic. */
#define MAX_PREFIX 64

typedef struct {
  tide_Buf *out;
  tide_Buf prefix; /* each line's start: "> " and list indentation */
  tide_Buf open;   /* openers waiting for text: "[", "**", "## " */
  int failed;      /* an append failed */
  int need;        /* before the next text: 1 a newline, 2 a blank line */
  int space;       /* a space before the next text */
  int line_start;  /* nothing written on this line yet */
  int glue;        /* no space before the next text */
  int flat;        /* in a heading, a link or a cell: breaks are spaces */
  int pre;         /* in a <pre>: text verbatim */
  int items;       /* <li> open: breaks are at most a newline */
  int cells;       /* cells open: `|` escaped */
  size_t marker_at; /* prefix length the pending list marker ends at */
  size_t blank_at;  /* prefix length for the blank line asked for */
  char marker[24];
  size_t list, table, row; /* frames of the nearest ones, or NONE */
} Writer;

static void put(Writer *w, const void *p, size_t n) {
  if (!w->failed && tide_buf_append(w->out, p, n) != 0) w->failed = 1;
}

static void puts_(Writer *w, const char *s) { put(w, s, strlen(s)); }

static void put_prefix(Writer *w) {
  if (w->marker_at != NONE) {
    put(w, w->prefix.data, w->marker_at);
    puts_(w, w->marker);
    w->marker_at = NONE;
  } else {
    put(w, w->prefix.data, w->prefix.len);
  }
}

/* An empty line: the prefix without its trailing spaces, a newline. */
static void put_blank_line(Writer *w) {
  size_t n = w->marker_at != NONE ? w->marker_at : w->prefix.len;
  if (w->blank_at < n) n = w->blank_at;
  while (n > 0 && w->prefix.data[n - 1] == ' ') n--;
  put(w, w->prefix.data, n);
  put(w, "\n", 1);
}

/* Asks for a line break (1) or a blank line (2) before the next text. */
static void brk(Writer *w, int n) {
  if (w->flat > 0) {
    w->space = 1;
    return;
  }
  if (w->items > 0 && n > 1) n = 1;
  if (n == 2 && (w->need < 2 || w->prefix.len < w->blank_at))
    w->blank_at = w->prefix.len;
  if (n > w->need) w->need = n;
  w->space = 0;
}

/* Whatever must come before text: breaks, the prefix or a space, the
** openers waiting. */
static void begin(Writer *w) {
  if (w->need) {
    if (w->out->len > 0) {
      if (!w->line_start) put(w, "\n", 1);
      if (w->need == 2) put_blank_line(w);
      w->line_start = 1;
    }
    w->need = 0;
    w->space = 0;
  }
  if (w->line_start) {
    put_prefix(w);
    w->line_start = 0;
  } else if (w->space && !w->glue) {
    put(w, " ", 1);
  }
  w->space = w->glue = 0;
  if (w->open.len) {
    put(w, w->open.data, w->open.len);
    w->open.len = 0;
  }
}

static int is_space(int c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Text outside <pre>: white space collapsed. */
static void text(Writer *w, const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    if (is_space((unsigned char)s[i])) {
      while (i < n && is_space((unsigned char)s[i])) i++;
      w->space = 1;
      continue;
    }
    while (j < n && !is_space((unsigned char)s[j])) j++;
    begin(w);
    if (w->cells > 0) {
      size_t k;
      for (k = i; k < j; k++) {
        if (s[k] == '|') put(w, "\\", 1);
        put(w, s + k, 1);
      }
    } else {
      put(w, s + i, j - i);
    }
    i = j;
  }
}

/* Text inside <pre>, verbatim, the prefix at each line's start. */
static void pre_text(Writer *w, const char *s, size_t n) {
  while (n > 0) {
    const char *nl = memchr(s, '\n', n);
    size_t k = nl ? (size_t)(nl - s) + 1 : n;
    if (w->line_start && s[0] != '\n') {
      put_prefix(w);
      w->line_start = 0;
    }
    put(w, s, k);
    if (nl) w->line_start = 1;
    s += k;
    n -= k;
  }
}

/* Structure written as text is: "---", "| ". */
static void mark(Writer *w, const char *s) {
  begin(w);
  puts_(w, s);
}

static void push_open(Writer *w, const char *s) {
  if (!w->failed && tide_buf_append(&w->open, s, strlen(s)) != 0)
    w->failed = 1;
}

/* Adds a segment to the prefix unless it is long enough already; returns
** the length to go back to. */
static size_t push_prefix(Writer *w, const char *seg, size_t n) {
  size_t at = w->prefix.len;
  if (at + n <= MAX_PREFIX && !w->failed &&
      tide_buf_append(&w->prefix, seg, n) != 0)
    w->failed = 1;
  return at;
}

/* ---- elements ---- */

enum {
  K_INLINE, K_SKIP, K_LINE, K_PARA, K_HEADING, K_LIST, K_ITEM, K_PRE,
  K_QUOTE, K_TABLE, K_ROW, K_CELL, K_BR, K_HR, K_LINK, K_IMAGE, K_EM,
  K_STRONG, K_CODE
};

static int kind_of(GumboTag tag) {
  switch (tag) {
  case GUMBO_TAG_HEAD: case GUMBO_TAG_TITLE: case GUMBO_TAG_SCRIPT:
  case GUMBO_TAG_STYLE: case GUMBO_TAG_NOSCRIPT: case GUMBO_TAG_TEMPLATE:
  case GUMBO_TAG_NAV: case GUMBO_TAG_SVG: case GUMBO_TAG_CANVAS:
  case GUMBO_TAG_IFRAME: case GUMBO_TAG_OBJECT: case GUMBO_TAG_EMBED:
  case GUMBO_TAG_APPLET: case GUMBO_TAG_AUDIO: case GUMBO_TAG_VIDEO:
  case GUMBO_TAG_MAP: case GUMBO_TAG_BUTTON: case GUMBO_TAG_INPUT:
  case GUMBO_TAG_SELECT: case GUMBO_TAG_DATALIST: case GUMBO_TAG_TEXTAREA:
  case GUMBO_TAG_KEYGEN: case GUMBO_TAG_FRAMESET: case GUMBO_TAG_NOFRAMES:
  case GUMBO_TAG_NOEMBED: case GUMBO_TAG_RP:
    return K_SKIP;
  case GUMBO_TAG_H1: case GUMBO_TAG_H2: case GUMBO_TAG_H3:
  case GUMBO_TAG_H4: case GUMBO_TAG_H5: case GUMBO_TAG_H6:
    return K_HEADING;
  case GUMBO_TAG_P: case GUMBO_TAG_ADDRESS: case GUMBO_TAG_FIGURE:
  case GUMBO_TAG_FIELDSET: case GUMBO_TAG_DETAILS: case GUMBO_TAG_DL:
    return K_PARA;
  case GUMBO_TAG_DIV: case GUMBO_TAG_SECTION: case GUMBO_TAG_ARTICLE:
  case GUMBO_TAG_HEADER: case GUMBO_TAG_FOOTER: case GUMBO_TAG_MAIN:
  case GUMBO_TAG_ASIDE: case GUMBO_TAG_HGROUP: case GUMBO_TAG_FIGCAPTION:
  case GUMBO_TAG_SUMMARY: case GUMBO_TAG_CAPTION: case GUMBO_TAG_DT:
  case GUMBO_TAG_DD: case GUMBO_TAG_LEGEND: case GUMBO_TAG_FORM:
  case GUMBO_TAG_CENTER: case GUMBO_TAG_OPTION:
    return K_LINE;
  case GUMBO_TAG_UL: case GUMBO_TAG_OL: case GUMBO_TAG_MENU:
  case GUMBO_TAG_DIR:
    return K_LIST;
  case GUMBO_TAG_LI: return K_ITEM;
  case GUMBO_TAG_PRE: case GUMBO_TAG_LISTING: case GUMBO_TAG_XMP:
  case GUMBO_TAG_PLAINTEXT:
    return K_PRE;
  case GUMBO_TAG_BLOCKQUOTE: return K_QUOTE;
  case GUMBO_TAG_TABLE: return K_TABLE;
  case GUMBO_TAG_TR: return K_ROW;
  case GUMBO_TAG_TD: case GUMBO_TAG_TH: return K_CELL;
  case GUMBO_TAG_BR: return K_BR;
  case GUMBO_TAG_HR: return K_HR;
  case GUMBO_TAG_A: return K_LINK;
  case GUMBO_TAG_IMG: case GUMBO_TAG_IMAGE: return K_IMAGE;
  case GUMBO_TAG_EM: case GUMBO_TAG_I: case GUMBO_TAG_CITE:
  case GUMBO_TAG_DFN: case GUMBO_TAG_VAR:
    return K_EM;
  case GUMBO_TAG_STRONG: case GUMBO_TAG_B: return K_STRONG;
  case GUMBO_TAG_CODE: case GUMBO_TAG_KBD: case GUMBO_TAG_SAMP:
  case GUMBO_TAG_TT:
    return K_CODE;
  default: return K_INLINE;
  }
}

/* An element on the walk's stack. */
typedef struct {
  const GumboNode *node;
  unsigned next;      /* the next child to visit */
  int kind;
  size_t open_at;     /* w->open's length before its opener */
  size_t prefix_at;   /* w->prefix's length before its segment */
  size_t list, table, row; /* the writer's, to restore */
  long count;         /* list: the last number; table: rows; row: cells */
  int all_th;         /* row: every cell so far a <th> */
  int fence;          /* pre: the fence's length, 0 inside another pre */
  const char *href;   /* link: borrowed from the tree */
} Frame;

static const GumboVector *children(const GumboNode *n) {
  if (n->type == GUMBO_NODE_DOCUMENT) return &n->v.document.children;
  if (n->type == GUMBO_NODE_ELEMENT || n->type == GUMBO_NODE_TEMPLATE)
    return &n->v.element.children;
  return NULL;
}

static const char *attr(const GumboNode *n, const char *name) {
  const GumboAttribute *a = gumbo_get_attribute(&n->v.element.attributes,
                                                name);
  return a ? a->value : NULL;
}

/* The node after n in document order within root (n's subtree first), or
** NULL: a walk with no stack, through the parent links. */
static const GumboNode *next_node(const GumboNode *n, const GumboNode *root) {
  const GumboVector *kids = children(n);
  if (kids && kids->length > 0) return kids->data[0];
  while (n != root && n->parent != NULL) {
    const GumboVector *sib = children(n->parent);
    if (n->index_within_parent + 1 < sib->length)
      return sib->data[n->index_within_parent + 1];
    n = n->parent;
  }
  return NULL;
}

/* The fence for a <pre>: three backticks, or one more than the longest
** run in its text; 0 when it holds no visible text. */
static int fence_for(const GumboNode *pre) {
  const GumboNode *n;
  int longest = 0, visible = 0;
  for (n = next_node(pre, pre); n; n = next_node(n, pre)) {
    const char *s;
    int run = 0;
    if (n->type != GUMBO_NODE_TEXT && n->type != GUMBO_NODE_CDATA) continue;
    for (s = n->v.text.text; *s; s++) {
      if (!is_space((unsigned char)*s)) visible = 1;
      run = *s == '`' ? run + 1 : 0;
      if (run > longest) longest = run;
    }
  }
  if (!visible) return 0;
  return longest < 3 ? 3 : longest + 1;
}

/* The language a class attribute names ("language-lua", "lang-c"),
** copied to lang (size bytes), or 0. */
static int class_language(const char *cls, char *lang, size_t size) {
  while (cls && *cls) {
    const char *end = cls;
    size_t skip = 0, n;
    while (*end && !is_space((unsigned char)*end)) end++;
    if (strncmp(cls, "language-", 9) == 0) skip = 9;
    else if (strncmp(cls, "lang-", 5) == 0) skip = 5;
    n = (size_t)(end - cls) - skip;
    if (skip && n > 0 && n < size) {
      size_t i;
      for (i = 0; i < n; i++) {
        char c = cls[skip + i];
        if (c == '`' || c == '~') return 0;
        lang[i] = c;
      }
      lang[n] = '\0';
      return 1;
    }
    while (*end && is_space((unsigned char)*end)) end++;
    cls = end;
  }
  return 0;
}

/* The language of a <pre> or of its only element child's <code>. */
static void pre_language(const GumboNode *pre, char *lang, size_t size) {
  const GumboVector *kids = &pre->v.element.children;
  unsigned i;
  lang[0] = '\0';
  if (class_language(attr(pre, "class"), lang, size)) return;
  for (i = 0; i < kids->length; i++) {
    const GumboNode *c = kids->data[i];
    if (c->type == GUMBO_NODE_ELEMENT && c->v.element.tag == GUMBO_TAG_CODE) {
      class_language(attr(c, "class"), lang, size);
      return;
    }
  }
}

/* Whether a link's href leads somewhere outside the page. */
static int real_href(const char *href) {
  if (href == NULL) return 0;
  while (is_space((unsigned char)*href)) href++;
  return *href != '\0' && *href != '#' && strncmp(href, "javascript:", 11);
}

static void put_fence(Writer *w, int n) {
  int i;
  for (i = 0; i < n; i++) put(w, "`", 1);
}

/* Enters the element of frame f (its node set). */
static void enter(Writer *w, Frame *fs, size_t at) {
  Frame *f = &fs[at];
  const GumboNode *n = f->node;
  f->open_at = w->open.len;
  f->prefix_at = w->prefix.len;
  f->list = w->list;
  f->table = w->table;
  f->row = w->row;
  f->count = 0;
  f->kind = kind_of(n->v.element.tag);
  if (n->v.element.tag == GUMBO_TAG_UNKNOWN ||
      n->v.element.tag_namespace != GUMBO_NAMESPACE_HTML)
    f->kind = n->v.element.tag_namespace == GUMBO_NAMESPACE_SVG ? K_SKIP
                                                                : K_INLINE;
  if (attr(n, "hidden") != NULL) f->kind = K_SKIP;
  if (w->pre && f->kind != K_SKIP && f->kind != K_BR) f->kind = K_INLINE;
  switch (f->kind) {
  case K_LINE: brk(w, 1); break;
  case K_PARA: brk(w, 2); break;
  case K_HEADING: {
    static const char *const marks[] = {"# ", "## ", "### ", "#### ",
                                        "##### ", "###### "};
    brk(w, 2);
    push_open(w, marks[n->v.element.tag - GUMBO_TAG_H1]);
    w->flat++;
    break;
  }
  case K_LIST: {
    const char *start = attr(n, "start");
    brk(w, 2);
    f->count = 0;
    if (n->v.element.tag == GUMBO_TAG_OL) {
      f->count = start ? strtol(start, NULL, 10) - 1 : 0;
      f->all_th = 1; /* numbered */
    } else {
      f->all_th = 0;
    }
    w->list = at;
    break;
  }
  case K_ITEM: {
    size_t width;
    if (w->marker_at != NONE) {
      /* An item that holds only an item: its marker on a line of its own. */
      begin(w);
      w->need = 1;
    }
    brk(w, 1);
    if (w->list != NONE && fs[w->list].all_th)
      snprintf(w->marker, sizeof w->marker, "%ld. ", ++fs[w->list].count);
    else
      snprintf(w->marker, sizeof w->marker, "- ");
    width = strlen(w->marker);
    w->marker_at = w->prefix.len;
    push_prefix(w, "          ", width);
    w->items++;
    w->list = NONE;
    break;
  }
  case K_PRE: {
    char lang[33];
    if (w->flat > 0) {
      f->kind = K_INLINE;
      break;
    }
    if ((f->fence = fence_for(n)) == 0) {
      f->kind = K_SKIP;
      break;
    }
    pre_language(n, lang, sizeof lang);
    brk(w, 2);
    begin(w);
    put_fence(w, f->fence);
    puts_(w, lang);
    put(w, "\n", 1);
    w->line_start = 1;
    w->pre = 1;
    break;
  }
  case K_QUOTE:
    brk(w, 2);
    push_prefix(w, "> ", 2);
    break;
  case K_TABLE:
    if (w->flat > 0) {
      f->kind = K_INLINE;
      break;
    }
    brk(w, 2);
    w->table = at;
    w->row = NONE;
    break;
  case K_ROW:
    if (w->flat > 0 || w->table == NONE) {
      f->kind = K_INLINE;
      w->space = 1;
      break;
    }
    brk(w, 1);
    f->all_th = 1;
    w->row = at;
    break;
  case K_CELL:
    if (w->flat > 0 || w->row == NONE) {
      f->kind = K_INLINE;
      w->space = 1;
      break;
    }
    w->space = 0;
    mark(w, fs[w->row].count++ == 0 ? "| " : " | ");
    w->glue = 1;
    if (n->v.element.tag != GUMBO_TAG_TH) fs[w->row].all_th = 0;
    w->flat++;
    w->cells++;
    break;
  case K_BR:
    if (w->pre) pre_text(w, "\n", 1);
    else if (w->flat > 0) w->space = 1;
    else if (w->out->len > 0) brk(w, w->need == 0 ? 1 : 2);
    break;
  case K_HR:
    brk(w, 2);
    mark(w, "---");
    brk(w, 2);
    break;
  case K_LINK:
    f->href = attr(n, "href");
    if (!real_href(f->href)) {
      f->kind = K_INLINE;
      break;
    }
    push_open(w, "[");
    w->flat++;
    break;
  case K_IMAGE: {
    const char *alt = attr(n, "alt"), *src = attr(n, "src");
    size_t open_at = w->open.len;
    if (alt == NULL) break;
    if (src && *src && strncmp(src, "data:", 5) != 0) {
      push_open(w, "![");
      text(w, alt, strlen(alt));
      if (w->open.len > open_at) {
        w->open.len = open_at;
      } else {
        puts_(w, "](");
        puts_(w, src);
        puts_(w, ")");
      }
    } else {
      text(w, alt, strlen(alt));
    }
    break;
  }
  case K_EM: push_open(w, "*"); break;
  case K_STRONG: push_open(w, "**"); break;
  case K_CODE: push_open(w, "`"); break;
  default: break;
  }
}

/* Closes an inline element's opener: its closer when text came, else the
** opener is taken back. Returns whether text came. */
static int close_open(Writer *w, Frame *f, const char *closer) {
  if (w->open.len > f->open_at) {
    w->open.len = f->open_at;
    return 0;
  }
  puts_(w, closer);
  return 1;
}

static void leave(Writer *w, Frame *fs, size_t at) {
  Frame *f = &fs[at];
  switch (f->kind) {
  case K_LINE: brk(w, 1); break;
  case K_PARA: brk(w, 2); break;
  case K_HEADING:
    w->flat--;
    close_open(w, f, "");
    brk(w, 2);
    break;
  case K_LIST:
    w->list = f->list;
    brk(w, 2);
    break;
  case K_ITEM:
    w->items--;
    w->marker_at = NONE; /* an empty item shows nothing */
    w->prefix.len = f->prefix_at;
    w->list = f->list;
    brk(w, 1);
    break;
  case K_PRE:
    w->pre = 0;
    if (!w->line_start) put(w, "\n", 1);
    put_prefix(w);
    put_fence(w, f->fence);
    w->line_start = 0;
    w->need = 0;
    brk(w, 2);
    break;
  case K_QUOTE:
    w->prefix.len = f->prefix_at;
    brk(w, 2);
    break;
  case K_TABLE:
    w->table = f->table;
    w->row = f->row;
    brk(w, 2);
    break;
  case K_ROW:
    w->row = f->row;
    if (f->count > 0) {
      put(w, " |", 2);
      if (fs[w->table].count++ == 0 && f->all_th) {
        long i;
        put(w, "\n", 1);
        put_prefix(w);
        put(w, "|", 1);
        for (i = 0; i < f->count; i++) put(w, " --- |", 6);
      }
    }
    brk(w, 1);
    break;
  case K_CELL:
    w->flat--;
    w->cells--;
    w->space = 0;
    break;
  case K_LINK:
    w->flat--;
    if (w->open.len > f->open_at) {
      w->open.len = f->open_at;
    } else {
      int angle = strpbrk(f->href, " ()") != NULL;
      puts_(w, angle ? "](<" : "](");
      puts_(w, f->href);
      puts_(w, angle ? ">)" : ")");
    }
    break;
  case K_EM: close_open(w, f, "*"); break;
  case K_STRONG: close_open(w, f, "**"); break;
  case K_CODE: close_open(w, f, "`"); break;
  default: break;
  }
}

/* ---- the walk ---- */

typedef struct {
  Frame *data;
  size_t len, cap;
  tide_Alloc alloc;
  void *ud;
} Stack;

static Frame *stack_push(Stack *s) {
  if (s->len == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    Frame *p = s->alloc(s->ud, s->data, s->cap * sizeof *p, cap * sizeof *p);
    if (p == NULL) return NULL;
    s->data = p;
    s->cap = cap;
  }
  memset(&s->data[s->len], 0, sizeof s->data[0]);
  return &s->data[s->len++];
}

static int walk(Writer *w, Stack *st, const GumboNode *document) {
  Frame *f = stack_push(st);
  if (f == NULL) return TIDE_ENOMEM;
  f->node = document;
  f->kind = K_INLINE;
  while (st->len > 0 && !w->failed) {
    const GumboVector *kids;
    size_t at = st->len - 1;
    f = &st->data[at];
    kids = children(f->node);
    if (f->kind != K_SKIP && kids && f->next < kids->length) {
      const GumboNode *c = kids->data[f->next++];
      if (c->type == GUMBO_NODE_ELEMENT) {
        Frame *g = stack_push(st);
        if (g == NULL) return TIDE_ENOMEM;
        g->node = c;
        enter(w, st->data, st->len - 1);
      } else if (c->type == GUMBO_NODE_TEXT || c->type == GUMBO_NODE_CDATA ||
                 c->type == GUMBO_NODE_WHITESPACE) {
        const char *s = c->v.text.text;
        if (w->pre) pre_text(w, s, strlen(s));
        else text(w, s, strlen(s));
      }
      continue;
    }
    if (at > 0) leave(w, st->data, at);
    st->len--;
  }
  if (w->failed) return TIDE_ENOMEM;
  if (w->out->len > 0 && !w->line_start) put(w, "\n", 1);
  return w->failed ? TIDE_ENOMEM : 0;
}

/* The text of the first <title> in the <head>, collapsed, into title. */
static int find_title(const GumboOutput *doc, tide_Buf *title) {
  const GumboVector *top = &doc->root->v.element.children;
  unsigned i, j, k;
  for (i = 0; i < top->length; i++) {
    const GumboNode *head = top->data[i];
    const GumboVector *kids;
    if (head->type != GUMBO_NODE_ELEMENT ||
        head->v.element.tag != GUMBO_TAG_HEAD)
      continue;
    kids = &head->v.element.children;
    for (j = 0; j < kids->length; j++) {
      const GumboNode *t = kids->data[j];
      Writer w;
      if (t->type != GUMBO_NODE_ELEMENT ||
          t->v.element.tag != GUMBO_TAG_TITLE)
        continue;
      memset(&w, 0, sizeof w);
      w.out = title;
      w.line_start = 0;
      w.glue = 1;
      w.marker_at = NONE;
      tide_buf_init(&w.prefix, title->alloc, title->ud);
      tide_buf_init(&w.open, title->alloc, title->ud);
      for (k = 0; k < t->v.element.children.length; k++) {
        const GumboNode *c = t->v.element.children.data[k];
        if (c->type == GUMBO_NODE_TEXT || c->type == GUMBO_NODE_WHITESPACE)
          text(&w, c->v.text.text, strlen(c->v.text.text));
        w.glue = title->len == 0;
      }
      return w.failed ? TIDE_ENOMEM : 0;
    }
  }
  return 0;
}

int tide_html_text(const char *html, size_t len, tide_Buf *out,
                   tide_Buf *title, char *err, size_t size) {
  Arena arena;
  tide_Buf capped;
  GumboOutput *doc;
  Writer w;
  Stack st;
  int rc;
  if (len > TIDE_HTML_MAX_SIZE) {
    snprintf(err, size, "HTML of %zu bytes is over the limit of %zu", len,
             TIDE_HTML_MAX_SIZE);
    return TIDE_EINVAL;
  }
  tide_buf_init(&capped, out->alloc, out->ud);
  rc = tide_html_depth_cap(html, len, TIDE_HTML_MAX_DEPTH, &capped);
  if (rc < 0) {
    tide_buf_close(&capped);
    snprintf(err, size, "out of memory");
    return rc;
  }
  if (rc == 1) {
    html = (const char *)capped.data;
    len = capped.len;
  }
  arena.alloc = out->alloc;
  arena.ud = out->ud;
  arena.list.h.prev = arena.list.h.next = &arena.list;
  doc = parse(&arena, html ? html : "", len);
  if (doc == NULL) {
    arena_close(&arena);
    tide_buf_close(&capped);
    snprintf(err, size, "out of memory");
    return TIDE_ENOMEM;
  }
  memset(&w, 0, sizeof w);
  w.out = out;
  w.line_start = 1;
  w.marker_at = NONE;
  w.list = w.table = w.row = NONE;
  tide_buf_init(&w.prefix, out->alloc, out->ud);
  tide_buf_init(&w.open, out->alloc, out->ud);
  st.data = NULL;
  st.len = st.cap = 0;
  st.alloc = out->alloc;
  st.ud = out->ud;
  rc = walk(&w, &st, doc->document);
  if (rc == 0) rc = find_title(doc, title);
  if (st.data) st.alloc(st.ud, st.data, st.cap * sizeof *st.data, 0);
  tide_buf_close(&w.prefix);
  tide_buf_close(&w.open);
  arena_close(&arena);
  tide_buf_close(&capped);
  if (rc != 0) snprintf(err, size, "out of memory");
  return rc;
}
