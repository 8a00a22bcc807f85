/*
** The answer of an embeddings endpoint read in C: the vectors of a batch,
** without making a Lua value for every number of the document (a batch
** of 64 vectors of 384 numbers is 25k numbers; lua-cjson reads them
** through strtod at ~150 ns each and ai.lua then walked them again).
**
** The two shapes read:
** - OpenAI-compatible (OpenAI, vLLM, llama.cpp, LM Studio, Ollama's /v1):
**   {"data": [{"embedding": [numbers], "index": i, ...}, ...], ...};
** - Ollama's /api/embed: {"embeddings": [[numbers], ...], ...}.
** Members not named here are skipped (checked, not kept). With "index" on
** every entry, vector i is the entry of index i (each index 0..n-1 once);
** without it on any entry, entries are in document order; a mix is an
** error.
**
** Strictness: the whole document is RFC 8259 JSON (the whitespace of the
** RFC; no trailing commas, comments, NaN, leading zeros or bare control
** characters in strings; escapes checked, \u included); nesting at most
** TIDE_EMBED_ANSWER_MAX_DEPTH; nothing but whitespace after the value.
** String contents are not checked for valid UTF-8 (they are skipped, but
** for the member names compared).
**
** Numbers: read exactly as strtod reads them, then rounded to float32 (a
** tide.vector's element): a decimal of at most 19 significant digits and
** a power of ten within 10^22 whose digits fit in 2^53 is one exact
** double operation (Clinger's fast path); any other goes through strtod.
** A number that is not finite as a float32 is an error naming its
** vector and element. Every vector has the same count of numbers, at
** least one.
**
** Errors are TIDE_EINVAL with a message (the byte offset of a syntax
** error: "offset 1234: expected ',' or ']'"), or TIDE_ENOMEM.
*/
#ifndef TIDE_EMBED_ANSWER_H
#define TIDE_EMBED_ANSWER_H

#include <stddef.h>

#include "buf.h"

#define TIDE_EMBED_ANSWER_MAX_DEPTH 64

typedef struct tide_EmbedAnswer {
  tide_Buf floats;   /* owned: count * dims floats, vector after vector */
  size_t count;      /* vectors */
  size_t dims;       /* numbers in each */
  char err[256];
} tide_EmbedAnswer;

void tide_embed_answer_init(tide_EmbedAnswer *a, tide_Alloc alloc, void *ud);
void tide_embed_answer_close(tide_EmbedAnswer *a);

/* Reads the len bytes of json into a (emptied first). 0, TIDE_EINVAL
** with a->err, or TIDE_ENOMEM. */
int tide_embed_answer_read(tide_EmbedAnswer *a, const char *json,
                           size_t len);

#endif
