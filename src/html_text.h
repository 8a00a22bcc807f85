/*
** HTML to Markdown-ish text, through gumbo (the HTML5 parsing algorithm,
** entities decoded), for text.from_html. What it keeps:
**
** - headings as `# ...` to `###### ...`; paragraphs, separated by a blank
**   line; div-like blocks and <br> as line breaks;
** - lists as `- item` and `1. item` (an ol's start honoured), nested ones
**   indented under their item; blockquotes as `> `; <hr> as `---`;
** - links as `[text](href)` (a link to `#...`, `javascript:` or with no
**   href keeps only its text); images with an alt text as `![alt](src)`;
**   <em>/<i> as `*...*`, <strong>/<b> as `**...**`, <code> as `` `...` ``;
** - <pre> verbatim in a fenced block (```lang when it or its <code> has a
**   class language-lang or lang-lang; a longer fence when the text holds
**   backticks);
** - tables as rows `| a | b |`, with a `| --- |` line after a first row
**   of header cells; `|` in a cell is written `\|`.
**
** What it drops: <head> (the <title> is returned on its own), script,
** style, noscript, template, nav, svg, canvas, iframe, object, embed,
** audio, video, forms' controls (button, input, select, textarea),
** elements with a hidden attribute, and comments. Outside <pre>, white
** space collapses as a browser's does: runs become one space, none at the
** start or end of a line. The text is not escaped as Markdown: it is meant
** for reading, chunking and embedding, not for a Markdown renderer.
** Nesting deeper than TIDE_HTML_MAX_DEPTH is flattened (html_depth.h) and
** the tree is walked with a heap stack, never the C stack.
**
** The input is taken as UTF-8 (bytes that are not become U+FFFD).
*/
#ifndef TIDE_HTML_TEXT_H
#define TIDE_HTML_TEXT_H

#include <stddef.h>

#include "buf.h"

/* The largest input, in bytes: gumbo counts positions in unsigned ints. */
#define TIDE_HTML_MAX_SIZE ((size_t)1 << 30)

/* Appends the text of the len bytes of HTML at html to out, and the
** document's title (white space collapsed; nothing when it has none) to
** title. Both buffers are the caller's, who closes them whatever the
** result; every allocation, gumbo's included, goes through out's
** allocator. The text ends with one newline unless it is empty. Returns
** 0, TIDE_EINVAL when the input is larger than TIDE_HTML_MAX_SIZE, or
** TIDE_ENOMEM; err (size bytes, at least 1) says which. An allocation
** that fails inside gumbo, which cannot report one, returns here through
** longjmp: every block gumbo holds is then freed with the rest. */
int tide_html_text(const char *html, size_t len, tide_Buf *out,
                   tide_Buf *title, char *err, size_t size);

#endif
