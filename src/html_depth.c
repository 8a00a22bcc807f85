/* A nesting cap for HTML before it reaches the parser (html_depth.h). */
#include <string.h>

#include "html_depth.h"

/* An open element that counts: its name, in the input. */
typedef struct {
  const char *name;
  size_t len;
} Open;

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int is_space(int c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static int is_alpha(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Whether the n bytes at s are, ignoring case, the name in list, a string
** of names each followed by a space. */
static int name_in(const char *s, size_t n, const char *list) {
  const char *p = list;
  while (*p) {
    const char *e = strchr(p, ' ');
    size_t i;
    if ((size_t)(e - p) == n) {
      for (i = 0; i < n && lower((unsigned char)s[i]) == p[i]; i++) {}
      if (i == n) return 1;
    }
    p = e + 1;
  }
  return 0;
}

static int same_name(const char *a, size_t an, const char *b, size_t bn) {
  size_t i;
  if (an != bn) return 0;
  for (i = 0; i < an; i++)
    if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return 0;
  return 1;
}

/* Elements that never count: void ones, and those the parser closes when
** a sibling starts or never nests. */
static const char never_count[] =
  "area base br col embed hr img image input keygen link meta param "
  "source track wbr basefont bgsound frame menuitem isindex "
  "p li dt dd tr td th thead tbody tfoot caption colgroup option optgroup "
  "rb rt rp rtc a button form nobr html head body ";

/* Elements whose content is raw text, read up to their end tag. */
static const char raw_text[] =
  "script style textarea title xmp iframe noembed noframes noscript "
  "plaintext ";

/* The position after the first occurrence of the n bytes of what at or
** after from, or len when there is none. */
static size_t skip_past(const char *s, size_t len, size_t from,
                        const char *what, size_t n) {
  size_t i;
  for (i = from; i + n <= len; i++)
    if (s[i] == what[0] && memcmp(s + i, what, n) == 0) return i + n;
  return len;
}

/* The position of the end tag `</name` (any case) at or after from, or
** len. */
static size_t find_end_tag(const char *s, size_t len, size_t from,
                           const char *name, size_t n) {
  size_t i;
  for (i = from; i + n + 2 <= len; i++)
    if (s[i] == '<' && s[i + 1] == '/' && same_name(s + i + 2, n, name, n))
      return i;
  return len;
}

typedef struct {
  const char *s;
  size_t from;  /* input copied up to here */
  int copied;   /* whether copy holds anything */
  tide_Buf *copy;
} Out;

/* Leaves out the bytes [at, end) of the input. */
static int drop(Out *o, size_t at, size_t end) {
  if (tide_buf_append(o->copy, o->s + o->from, at - o->from) != 0)
    return TIDE_ENOMEM;
  o->from = end;
  o->copied = 1;
  return 0;
}

int tide_html_depth_cap(const char *s, size_t len, int cap,
                        tide_Buf *copy) {
  Open stack[TIDE_HTML_MAX_DEPTH];
  int depth = 0, foreign = 0; /* foreign: depth of the svg or math, or 0 */
  size_t over = 0;            /* elements open beyond the cap */
  size_t i = 0;
  Out o;
  o.s = s;
  o.from = 0;
  o.copied = 0;
  o.copy = copy;
  if (cap < 1 || cap > TIDE_HTML_MAX_DEPTH) cap = TIDE_HTML_MAX_DEPTH;
  while (i < len) {
    const char *lt = memchr(s + i, '<', len - i);
    size_t at, k, name, name_len, end;
    int closing = 0, self_closing = 0;
    if (lt == NULL) break;
    at = i = (size_t)(lt - s);
    if (i + 1 >= len) break;
    if (s[i + 1] == '!') {
      if (i + 3 < len && s[i + 2] == '-' && s[i + 3] == '-')
        i = skip_past(s, len, i + 4, "-->", 3);
      else
        i = skip_past(s, len, i + 2, ">", 1);
      continue;
    }
    if (s[i + 1] == '?') {
      i = skip_past(s, len, i + 2, ">", 1);
      continue;
    }
    k = i + 1;
    if (s[k] == '/') {
      closing = 1;
      k++;
    }
    if (k >= len || !is_alpha((unsigned char)s[k])) {
      i++;
      continue;
    }
    name = k;
    while (k < len && !is_space((unsigned char)s[k]) && s[k] != '/' &&
           s[k] != '>')
      k++;
    name_len = k - name;
    /* The attributes: a quote delimits only a value after `=`. */
    while (k < len && s[k] != '>') {
      if (s[k] == '=') {
        k++;
        while (k < len && is_space((unsigned char)s[k])) k++;
        if (k < len && (s[k] == '"' || s[k] == '\'')) {
          const char *q = memchr(s + k + 1, s[k], len - k - 1);
          k = q ? (size_t)(q - s) + 1 : len;
        } else {
          while (k < len && !is_space((unsigned char)s[k]) && s[k] != '>')
            k++;
        }
        self_closing = 0;
        continue;
      }
      self_closing = s[k] == '/';
      k++;
    }
    end = i = k < len ? k + 1 : len;
    if (!closing && name_in(s + name, name_len, raw_text)) {
      i = find_end_tag(s, len, i, s + name, name_len);
      continue;
    }
    if (name_in(s + name, name_len, never_count)) continue;
    if (!closing) {
      if (self_closing && foreign) continue;
      if (depth < cap) {
        stack[depth].name = s + name;
        stack[depth].len = name_len;
        depth++;
        if (!foreign && name_in(s + name, name_len, "svg math "))
          foreign = depth;
      } else {
        over++;
        if (drop(&o, at, end) != 0) return TIDE_ENOMEM;
      }
    } else if (over > 0) {
      over--;
      if (drop(&o, at, end) != 0) return TIDE_ENOMEM;
    } else {
      int d;
      for (d = depth - 1; d >= 0; d--)
        if (same_name(stack[d].name, stack[d].len, s + name, name_len))
          break;
      if (d >= 0) depth = d;
      if (foreign > depth) foreign = 0;
    }
  }
  if (!o.copied) return 0;
  if (tide_buf_append(copy, s + o.from, len - o.from) != 0)
    return TIDE_ENOMEM;
  return 1;
}
