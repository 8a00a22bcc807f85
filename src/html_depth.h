/*
** A nesting cap for HTML before it reaches the parser. gumbo (like the
** HTML parsing algorithm it implements) searches the stack of open
** elements on most tags, so its time grows with the square of the
** nesting: 100,000 nested <div>s take it 25 s. Browsers cap the tree's
** depth for the same reason (Blink at 512). This scan estimates the depth
** of each tag the way the parser will nest it, and drops the start and end
** tags of elements beyond the cap, keeping every byte of text: a document
** nested deeper than the cap is read with its deepest structure flattened.
**
** The estimate follows the parser where it matters: void elements, those
** whose end tag may be left out or that cannot nest (p, li, dt, dd, tr, td,
** th, option, a, ...) never count; an end tag closes the nearest open
** element of its name and those above it, and is ignored when there is
** none; raw text (script, style, textarea, title, comments) is skipped;
** `/>` closes an element only inside svg or math, as in HTML.
*/
#ifndef TIDE_HTML_DEPTH_H
#define TIDE_HTML_DEPTH_H

#include <stddef.h>

#include "buf.h"

/* The default cap on the nesting of elements that count. */
#define TIDE_HTML_MAX_DEPTH 512

/* Scans the len bytes at html. When some tag is nested deeper than cap
** (at least 1, at most TIDE_HTML_MAX_DEPTH), appends the document without
** those tags to copy (the caller's, closed by the caller) and returns 1;
** returns 0 when nothing is that deep (copy untouched), TIDE_ENOMEM when
** an append fails. */
int tide_html_depth_cap(const char *html, size_t len, int cap,
                        tide_Buf *copy);

#endif
