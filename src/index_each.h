/*
** mount_each over a keyed source (tide.json.lines, sqlite.rows) for a
** memoized fn, decided in C: a source that reads its items in C hands each
** one here as its key and the canonical encoding of its value, and an item
** whose component is unchanged is carried over without entering Lua, as
** the walk does for files (index_walk.h). Only the other items come back
** to Lua as values.
**
** For an item with key K whose value encodes as V:
** 1. Its component path is base + "/" + K; the component index gives last
**    run's entry for it, if any.
** 2. Its input fingerprint is what core.fingerprint_args computes for
**    fn(value, extra...): BLAKE2b-128 over the head of an array of nargs
**    items, V, then the encodings of the extra arguments.
** 3. It is carried over when tide_index_may_carry holds for its entry and
**    the entry's input fingerprint is that one: the entry and every entry
**    below it are marked unchanged, and it is counted.
**
** An each also lists the keys the source gave, for the source to refuse a
** duplicate and name where the key first came (a line, a row): a key whose
** path has an entry is listed in a table of one number per entry, so that
** a run over a million unchanged items holds no second copy of their
** keys; any other key in a hash map.
*/
#ifndef TIDE_INDEX_EACH_H
#define TIDE_INDEX_EACH_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hashmap.h"
#include "index.h"

typedef struct tide_IndexEach {
  tide_Index *ix;          /* borrowed */
  tide_Buf path;           /* owned: base + "/", then the current key */
  size_t prefix_len;       /* of base + "/" */
  tide_IndexEntry *entry;  /* the current item's, or NULL */
  uint8_t logic[TIDE_FP_SIZE];
  uint8_t head[9];         /* the array head of nargs items */
  size_t head_len;
  tide_Buf extra;          /* owned: the extra arguments' encodings */
  size_t carried;          /* how many items were carried over */
  uint32_t *listed;        /* owned: per entry, its key's number, or 0 */
  size_t listed_count;
  tide_HashMap others;     /* owned: keys without an entry -> number */
  tide_Alloc alloc;
  void *ud;
} tide_IndexEach;

/* Starts an each over ix (borrowed; it must outlive the each) for
** components at base (base_len bytes, NUL allowed) of logic `logic`,
** called with nargs arguments whose extra ones (2..nargs) encode as the
** extra_len bytes at extra. TIDE_ENOMEM; the each must be closed
** whatever this returns. */
int tide_index_each_init(tide_IndexEach *c, tide_Index *ix,
                         const char *base, size_t base_len,
                         const uint8_t *logic, int nargs, const void *extra,
                         size_t extra_len, tide_Alloc alloc, void *ud);
void tide_index_each_close(tide_IndexEach *c);

/* Makes the item with this key the current one: its path, and its entry
** if it has one. TIDE_ENOMEM. */
int tide_index_each_find(tide_IndexEach *c, const char *key, size_t len);

/* The number the current item's key was listed with, or 0. */
int64_t tide_index_each_first(const tide_IndexEach *c);
/* Lists the current item's key with number n (> 0). TIDE_ENOMEM. */
int tide_index_each_list(tide_IndexEach *c, int64_t n);

/* The current item's entry number in the index, or -1 when it has none;
** tide_index_each_resume makes that entry the current item again (for a
** source that checks every item before it carries any over). */
int64_t tide_index_each_entry(const tide_IndexEach *c);
void tide_index_each_resume(tide_IndexEach *c, int64_t entry);

/* The input fingerprint of an item whose value encodes as the len bytes
** at value (step 2). */
void tide_index_each_input(const tide_IndexEach *c, const void *value,
                           size_t len, uint8_t *out);

/* Carries the current item over when its input fingerprint is `input`
** (step 3): 1 when it was, else 0 and nothing is marked. */
int tide_index_each_carry(tide_IndexEach *c, const uint8_t *input);

#endif
