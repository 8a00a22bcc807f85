/*
** The text splitter: cuts a byte buffer into chunks of at most `size`
** bytes at the coarsest boundaries a language offers. Pure C, no Lua.
**
** Boundaries come in levels, coarse to fine: the language's structural
** levels (with blank lines placed among them, by default after them;
** see language.h for the separator format), then line breaks, sentence
** ends, clause punctuation, spaces, and last code point boundaries. A
** cut is never placed inside a UTF-8 sequence; an invalid byte counts as
** one code point of its own.
**
** Positions follow Lua's string.sub: byte offsets are 1-based and a
** chunk's stop is inclusive, so the chunk's text is
** s:sub(start.byte, stop.byte). `chr` counts code points from 1; `line`
** and `column` are 1-based, the column counted in code points. A stop
** position describes the chunk's last code point: its byte is that code
** point's last byte, its chr, line and column those of the code point.
*/
#ifndef TIDE_SPLIT_H
#define TIDE_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "tide.h"

/* A language's separators, compiled (language.h); NULL for plain text. */
typedef struct tide_SplitLang tide_SplitLang;

/* A position in the text; see the header comment for the convention. */
typedef struct tide_SplitPos {
  size_t byte;
  size_t chr;
  size_t line;
  size_t column;
} tide_SplitPos;

typedef struct tide_SplitChunk {
  tide_SplitPos start;
  tide_SplitPos stop;
} tide_SplitChunk;

/*
** Options, in bytes. overlap <= min_size <= size and overlap < size;
** size > 0. min_size is the length under which a chunk is penalised.
*/
typedef struct tide_SplitOptions {
  size_t size;
  size_t overlap;
  size_t min_size;
} tide_SplitOptions;

/*
** A splitter: the result of the last run plus its scratch memory, all
** owned and allocated through `alloc`. A caller-owned struct:
** tide_split_init, any number of runs, tide_split_close.
*/
typedef struct tide_Split {
  tide_SplitChunk *chunks; /* owned; `count` chunks after a run */
  size_t count;
  size_t chunks_cap;
  struct tide_SplitScratch *scratch; /* owned, private to split.c */
  tide_Alloc alloc;
  void *ud;
} tide_Split;

void tide_split_init(tide_Split *s, tide_Alloc alloc, void *ud);

/* Frees everything the splitter holds; accepts NULL. */
void tide_split_close(tide_Split *s);

/*
** Splits text (len bytes, borrowed) with the options and the language
** (borrowed; NULL for plain text). Returns 0 with the chunks in s, in
** order, or TIDE_EINVAL for options out of range, or TIDE_ENOMEM. Empty
** text gives no chunks. With overlap 0 the chunks tile the text exactly.
*/
int tide_split_run(tide_Split *s, const uint8_t *text, size_t len,
                   const tide_SplitOptions *opt, const tide_SplitLang *lang);

#endif
