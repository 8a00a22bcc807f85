/* C tests of HTML to text (html_text.h) and of the nesting cap before the
** parser (html_depth.h): what the cap drops and keeps, and allocation
** failures at every step, gumbo's included, without leaks. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "html_depth.h"
#include "html_text.h"

int main(void);

/* The cap's copy of html as a string ("" when it made none). */
static const char *capped(const char *html, int cap, tide_Buf *copy,
                          int *rc) {
  tide_buf_init(copy, NULL, NULL);
  *rc = tide_html_depth_cap(html, strlen(html), cap, copy);
  tide_buf_push(copy, 0);
  return (const char *)copy->data;
}

static void test_depth_cap(void) {
  tide_Buf copy;
  int rc;
  const char *s;
  s = capped("<div><div><div>x</div></div></div>", 2, &copy, &rc);
  CHECK_EQ_INT(rc, 1);
  CHECK(strcmp(s, "<div><div>x</div></div>") == 0);
  tide_buf_close(&copy);
  /* Elements that do not nest, void ones and raw text do not count. */
  s = capped("<div><p>a<p>b<li>c<br><img src=x><script><div><div>"
             "</script></div>", 1, &copy, &rc);
  CHECK_EQ_INT(rc, 0);
  tide_buf_close(&copy);
  /* An end tag closes what is open above its element. */
  s = capped("<div><span></div><div><b>x</b></div>", 2, &copy, &rc);
  CHECK_EQ_INT(rc, 0);
  tide_buf_close(&copy);
  /* A quoted `>` is inside the tag; `/>` closes only inside svg. */
  s = capped("<div title='a>b'><x/><y/>t", 2, &copy, &rc);
  CHECK_EQ_INT(rc, 1);
  CHECK(strcmp(s, "<div title='a>b'><x/>t") == 0);
  tide_buf_close(&copy);
  s = capped("<svg><path/><path/><path/></svg><div></div>", 2, &copy, &rc);
  CHECK_EQ_INT(rc, 0);
  tide_buf_close(&copy);
  s = capped("<!-- <div><div><div> --><div>", 1, &copy, &rc);
  CHECK_EQ_INT(rc, 0);
  tide_buf_close(&copy);
}

static int convert(const char *html, tide_Buf *out, tide_Buf *title) {
  char err[128];
  tide_buf_init(out, NULL, NULL);
  tide_buf_init(title, NULL, NULL);
  return tide_html_text(html, strlen(html), out, title, err, sizeof err);
}

static int is(const tide_Buf *b, const char *s) {
  return b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

static void test_text(void) {
  tide_Buf out, title;
  CHECK_EQ_INT(convert("<title>T</title><h2>A <i>b</i></h2><ul><li>x<ol>"
                       "<li>y</ol></ul>", &out, &title), 0);
  CHECK(is(&out, "## A *b*\n\n- x\n  1. y\n"));
  CHECK(is(&title, "T"));
  tide_buf_close(&out);
  tide_buf_close(&title);
  CHECK_EQ_INT(convert("", &out, &title), 0);
  CHECK_EQ_INT(out.len, 0);
  CHECK_EQ_INT(title.len, 0);
  tide_buf_close(&out);
  tide_buf_close(&title);
}

static void test_allocation_failures(void) {
  static const char html[] =
    "<html><head><title>x</title></head><body><h1>Head</h1><p>para "
    "<a href='u'>link</a></p><ul><li>a<li>b</ul><table><tr><td>1<td>2"
    "</table><pre>code</pre></body></html>";
  long k;
  int ok = 0;
  for (k = 0; k < 5000 && !ok; k++) {
    Budget b = {k, 0};
    tide_Buf out, title;
    char err[128];
    int rc;
    tide_buf_init(&out, budget_alloc, &b);
    tide_buf_init(&title, budget_alloc, &b);
    rc = tide_html_text(html, sizeof html - 1, &out, &title, err, sizeof err);
    if (rc == 0) ok = 1;
    else CHECK_EQ_INT(rc, TIDE_ENOMEM);
    tide_buf_close(&out);
    tide_buf_close(&title);
    CHECK_EQ_INT(b.live, 0);
  }
  CHECK(ok);
}

int main(void) {
  static const CheckTest tests[] = {
    {"depth cap", test_depth_cap},
    {"text", test_text},
    {"allocation failures", test_allocation_failures},
    {NULL, NULL},
  };
  return check_run("html_text", tests);
}
