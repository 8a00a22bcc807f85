/*
** A hash map for the engine's in-memory lookups: a component by its path
** or its row id, a file's state by its relative path, a dependency set by
** its fingerprint.
**
** Keys are byte strings (pointer, length: any bytes, NUL included, so two
** keys that differ only after a NUL are different) or 64-bit ids; a map
** holds one kind or the other, as its first put decides. Values are 64-bit
** numbers: an index into the caller's array, or a pointer the caller
** casts.
**
** The algorithm: open addressing with linear probing over a power-of-two
** array of slots, kept at most 3/4 full. A slot holds the key (an id, or
** where the key's bytes lie), the value, and 32 bits of the key's hash, so
** that a probe compares key bytes only when those bits agree, and growing
** (doubling, then placing every slot again) never hashes a key twice.
** String keys are hashed 8 bytes at a time and mixed at the end; ids are
** mixed the same way, so sequential ids spread over the slots.
**
** The map copies the bytes of a string key into its own arena, followed
** by a NUL its length does not count, and gives back where: a caller
** such as the component index keeps no second copy of its paths. There is
** no delete: the engine's maps are built, looked up, extended and freed
** whole. Putting a key that is there replaces its value.
**
** Memory comes from the tide_Alloc given at init; every call that can
** allocate returns 0 or TIDE_ENOMEM and leaves the map as it was on
** failure. A map is used by one thread at a time.
*/
#ifndef TIDE_HASHMAP_H
#define TIDE_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "tide.h"

/* The longest string key, in bytes. */
#define TIDE_HASHMAP_MAX_KEY ((size_t)UINT32_MAX - 1)

typedef struct tide_HashMapSlot {
  uint64_t key;   /* the id, or the key's offset in the arena */
  uint64_t value;
  uint32_t hash;  /* the high 32 bits of the key's hash */
  uint32_t used;  /* 0: empty; else the string key's length + 1 (1 for an id) */
} tide_HashMapSlot;

typedef struct tide_HashMap {
  tide_HashMapSlot *slots; /* owned: cap slots, or NULL while empty */
  size_t cap;              /* 0 or a power of two */
  size_t count;
  tide_Buf keys;           /* owned: the string keys' bytes, each + NUL */
  tide_Alloc alloc;
  void *ud;
} tide_HashMap;

/* alloc NULL means tide_alloc_default. Allocates nothing. */
void tide_hashmap_init(tide_HashMap *m, tide_Alloc alloc, void *ud);
/* Frees the slots and the keys; accepts NULL. The map can be used again
** after another init. */
void tide_hashmap_close(tide_HashMap *m);

/* Makes room for n keys in all, so that the next puts up to that count
** do not grow the slots. */
int tide_hashmap_reserve(tide_HashMap *m, size_t n);

/* The number of keys. */
size_t tide_hashmap_count(const tide_HashMap *m);

/* ---- String keys ---- */

/* Maps the len bytes at key to value, replacing the value when the key is
** there. *key_off (may be NULL) receives where the map keeps the key's
** bytes (see tide_hashmap_key); the key's first put decides it. A key
** longer than TIDE_HASHMAP_MAX_KEY gives TIDE_EINVAL. */
int tide_hashmap_put(tide_HashMap *m, const void *key, size_t len,
                     uint64_t value, size_t *key_off);

/* The value of the key, as a pointer the caller may write through, or
** NULL when the key is not there. Valid until the next put. */
uint64_t *tide_hashmap_get(const tide_HashMap *m, const void *key,
                           size_t len);

/* The bytes of a key the map holds, from the offset a put gave, followed
** by a NUL. Borrowed: valid until the next put. Inline: the index's
** binary search reads a path per step. */
static inline const char *tide_hashmap_key(const tide_HashMap *m,
                                           size_t key_off) {
  return (const char *)m->keys.data + key_off;
}

/* The 64-bit hash the map gives len bytes: for a caller that keeps a
** table of its own over bytes it already holds (the component index). */
uint64_t tide_hashmap_hash(const void *key, size_t len);

/* ---- Id keys ---- */

int tide_hashmap_put_id(tide_HashMap *m, uint64_t id, uint64_t value);
uint64_t *tide_hashmap_get_id(const tide_HashMap *m, uint64_t id);

#endif
