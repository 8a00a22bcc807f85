/*
** Globs: a list of patterns compiled once, matched against many paths.
**
** A pattern matches a whole path relative to the walked directory, with
** `/` between segments. `*` matches any run of characters except `/`;
** `**` as a whole segment matches any number of segments, zero included,
** except as the last segment, where it matches one or more (so "docs" then
** `**` matches what is under docs but not docs itself); `?` matches one
** character (one UTF-8 code point) except `/`; `[abc]`, `[a-z]` and
** `[!a-z]` (or `[^a-z]`) match one code point in or out of a class; `\`
** makes the next character literal. A leading `!` makes the pattern a
** negation, a trailing `/` makes it match directories only, and a leading
** `/` is ignored (patterns are always anchored at the walked directory).
** Matching is case-sensitive.
**
** A set decides by the last pattern that matches: a path is selected when
** that pattern is not a negation, and not selected when none matches. In
** an exclude list a pattern also applies to everything under a directory
** it matches, as in a .gitignore file (TIDE_GLOB_PARENTS below).
**
** Matching runs one directory at a time, so a walk never matches the same
** parent segments twice: the state of a directory is one 64-bit word per
** pattern (the set of pattern positions its segments can reach), computed
** once from its parent's state, and a file is matched from its directory's
** state by its name alone.
*/
#ifndef TIDE_GLOB_H
#define TIDE_GLOB_H

#include <stddef.h>
#include <stdint.h>

#include "tide.h"

/* Segments per pattern, so that a state fits in 64 bits. */
#define TIDE_GLOB_MAX_SEGMENTS 63

typedef struct tide_GlobSet tide_GlobSet;

/* Compiles n patterns into *out (owned by the caller, freed with
** tide_glob_free). alloc NULL means tide_alloc_default. On failure returns
** TIDE_EINVAL with a message naming the pattern in err (`bad pattern
** "[ab": unclosed '['`), or TIDE_ENOMEM; *out is then NULL. */
int tide_glob_new(tide_GlobSet **out, const char *const *patterns, size_t n,
                  tide_Alloc alloc, void *ud, char *err, size_t errlen);

/* Frees a set; accepts NULL. */
void tide_glob_free(tide_GlobSet *set);

/* The number of patterns, which is also the number of words in a state. */
size_t tide_glob_count(const tide_GlobSet *set);

/* Whether pattern i (0-based, in the order given) is a `!` negation. */
int tide_glob_negated(const tide_GlobSet *set, int i);

/* Writes the state of the walked directory itself into state. */
void tide_glob_start(const tide_GlobSet *set, uint64_t *state);

/* Steps from the state of a directory into its subdirectory `name` (len
** bytes, no `/`): writes the subdirectory's state into next (which must not
** alias cur) and returns the index of the last pattern that matches the
** subdirectory itself, or -1. */
int tide_glob_enter(const tide_GlobSet *set, const uint64_t *cur,
                    const char *name, size_t len, uint64_t *next);

/* The index of the last pattern above `floor` that matches the file `name`
** in the directory whose state is cur, or -1 when none does. Pass the
** directory's winning index as floor to skip patterns that cannot win. */
int tide_glob_match_file(const tide_GlobSet *set, const uint64_t *cur,
                         const char *name, size_t len, int floor);

/* Whether a pattern above `floor`, negated or not as asked, could match
** some path strictly under the directory whose state is cur. A yes may be
** a false positive (it costs a descent), a no is exact. */
int tide_glob_could_match_under(const tide_GlobSet *set,
                                const uint64_t *cur, int floor, int negated);

#define TIDE_GLOB_DIR 1     /* the path names a directory */
#define TIDE_GLOB_PARENTS 2 /* patterns matching a parent directory apply */

/* The decision for a whole path, for callers outside a walk: the index of
** the last pattern that matches the path (or, with TIDE_GLOB_PARENTS, one
** of its parent directories) into *winner, or -1. Returns 0 or
** TIDE_ENOMEM. */
int tide_glob_decide(const tide_GlobSet *set, const char *path, size_t len,
                     int flags, int *winner);

#endif
