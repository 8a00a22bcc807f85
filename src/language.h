/*
** Languages: the built-in table (which file names and extensions each
** one covers, and its separator levels) and the compiled form of a
** language's separators that the splitter runs on.
*/
#ifndef TIDE_LANGUAGE_H
#define TIDE_LANGUAGE_H

#include <stddef.h>
#include <stdint.h>

#include "split.h"

/* At most this many language levels (structural levels plus blank lines). */
#define TIDE_SPLIT_MAXLEVELS 32

/* At most this many bytes in one separator. */
#define TIDE_SPLIT_MAXSEP 255

/* What a language entry is. */
enum {
  TIDE_SPLIT_SEP,     /* a separator at `level` */
  TIDE_SPLIT_COMMENT, /* a comment prefix: such lines stay with what follows */
  TIDE_SPLIT_FENCE    /* a fence: lines between two of them stay together */
};

/*
** One entry of a language definition; the text is borrowed. A separator
** is a plain string, not a pattern: a leading '^' (or '\n') anchors it
** at the start of a line (column 1), else it matches anywhere; the cut
** goes before the match, and where several match at one place the
** longest decides the level. The separator "\n\n" stands for blank
** lines and places them at its level instead of after the structural
** ones. A comment prefix matches at the start of a line after optional
** indentation, a fence at column 1.
*/
typedef struct tide_SplitEntry {
  const char *text;
  size_t len;
  int kind;
  int level;
} tide_SplitEntry;

/*
** Checks entries: NULL when they are valid, else why one is not (a
** static string such as "is empty") with its index in *bad. An entry is
** invalid when it is empty (also after its anchor), longer than
** TIDE_SPLIT_MAXSEP, starts with a UTF-8 continuation byte (so that a
** match never starts inside a code point), or is a separator at a level
** outside 0 .. TIDE_SPLIT_MAXLEVELS - 1.
*/
const char *tide_splitlang_check(const tide_SplitEntry *entries,
                                 size_t count, size_t *bad);

/* The bytes a compiled language of these entries needs; 0 if invalid. */
size_t tide_splitlang_size(const tide_SplitEntry *entries, size_t count);

/*
** Compiles the entries into mem, which must hold tide_splitlang_size()
** bytes and be aligned for any type (malloc's or a userdata's memory).
** Returns mem as a language, or NULL when the entries are invalid.
*/
tide_SplitLang *tide_splitlang_build(void *mem, const tide_SplitEntry *entries,
                                     size_t count);

/* A pattern of a compiled language; its text is in the same block. */
typedef struct tide_SplitPattern {
  const uint8_t *text;
  size_t len;
  int level;
} tide_SplitPattern;

/* A compiled language: one block of memory, no pointers out of it. */
struct tide_SplitLang {
  int nlevels; /* language levels, blank lines included */
  int blank;   /* the level of blank lines */
  size_t nanchored, nloose, ncomments, nfences;
  /* Patterns starting with byte b are at [at[b], at[b + 1]). */
  uint32_t anchored_at[257];
  uint32_t loose_at[257];
  tide_SplitPattern *anchored, *loose, *comments, *fences;
};

/*
** A built-in language. All lists are NULL-terminated and static.
** `extensions` are lower case, without the dot; `filenames` are whole
** base names, compared without regard to case. `levels` runs coarse to
** fine, each level a list of separators (see tide_SplitEntry).
*/
typedef struct tide_Language {
  const char *name;
  const char *const *extensions;
  const char *const *filenames;
  const char *const *const *levels;
  const char *const *comments;
  const char *const *fences;
} tide_Language;

/* The i-th built-in language (from 0), or NULL past the last one. */
const tide_Language *tide_language_at(size_t i);

/* The built-in language of that name, or NULL. */
const tide_Language *tide_language_find(const char *name, size_t len);

/*
** The key a file name is looked up by: its base name (what follows the
** last '/') lower-cased into name, and the extension (after the base
** name's last '.', when that dot is not the first byte) as a pointer
** into name, or NULL when there is none. Returns 0, or -1 when the base
** name is empty or does not fit in cap bytes with its terminating zero.
*/
int tide_language_key(const char *path, size_t len, char *name, size_t cap,
                      const char **ext);

/* The built-in language of a lower-cased base name, or NULL. */
const tide_Language *tide_language_by_filename(const char *name);

/* The built-in language of a lower-cased extension, or NULL. */
const tide_Language *tide_language_by_extension(const char *ext);

/*
** Writes the language's separator, comment and fence entries to out
** (when not NULL) and returns how many there are.
*/
size_t tide_language_entries(const tide_Language *lang, tide_SplitEntry *out);

#endif
