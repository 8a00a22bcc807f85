/* The hash map: open addressing, linear probing (see hashmap.h). */
#include <string.h>

#include "hashmap.h"

#define MIN_CAP 16
#define MAX_CAP ((size_t)1 << 31) /* slot indexes come from 32 hash bits */
#define K1 0x9e3779b97f4a7c15u
#define K2 0xbf58476d1ce4e5b9u
#define K3 0x94d049bb133111ebu

/* splitmix64's finalizer: every input bit reaches every output bit. */
static uint64_t mix(uint64_t h) {
  h ^= h >> 30;
  h *= K2;
  h ^= h >> 27;
  h *= K3;
  return h ^ (h >> 31);
}

/* A word at a time, then the finalizer; the length is in the seed, so
** "a" and "a\0" differ. */
static uint64_t hash_bytes(const void *key, size_t len) {
  const uint8_t *p = key;
  uint64_t h = (uint64_t)len * K1, w;
  for (; len >= 8; p += 8, len -= 8) {
    memcpy(&w, p, 8);
    h = (h ^ w) * K1;
    h ^= h >> 32;
  }
  if (len > 0) {
    w = 0;
    memcpy(&w, p, len);
    h = (h ^ w) * K1;
    h ^= h >> 32;
  }
  return mix(h);
}

uint64_t tide_hashmap_hash(const void *key, size_t len) {
  return hash_bytes(key, len);
}

static uint32_t hash32(uint64_t h) { return (uint32_t)(h >> 32); }

void tide_hashmap_init(tide_HashMap *m, tide_Alloc alloc, void *ud) {
  if (alloc == NULL) alloc = tide_alloc_default;
  m->slots = NULL;
  m->cap = m->count = 0;
  m->alloc = alloc;
  m->ud = ud;
  tide_buf_init(&m->keys, alloc, ud);
}

void tide_hashmap_close(tide_HashMap *m) {
  if (m == NULL) return;
  if (m->slots) m->alloc(m->ud, m->slots, m->cap * sizeof *m->slots, 0);
  m->slots = NULL;
  m->cap = m->count = 0;
  tide_buf_close(&m->keys);
}

size_t tide_hashmap_count(const tide_HashMap *m) { return m->count; }

/* Places every used slot into a new array of cap slots. */
static int rehash(tide_HashMap *m, size_t cap) {
  tide_HashMapSlot *slots = m->alloc(m->ud, NULL, 0, cap * sizeof *slots);
  size_t i, mask = cap - 1;
  if (slots == NULL) return TIDE_ENOMEM;
  memset(slots, 0, cap * sizeof *slots);
  for (i = 0; i < m->cap; i++) {
    const tide_HashMapSlot *s = &m->slots[i];
    size_t at;
    if (!s->used) continue;
    for (at = s->hash & mask; slots[at].used; at = (at + 1) & mask) {
    }
    slots[at] = *s;
  }
  if (m->slots) m->alloc(m->ud, m->slots, m->cap * sizeof *m->slots, 0);
  m->slots = slots;
  m->cap = cap;
  return 0;
}

/* Whether one more key fits without growing. */
static int has_room(const tide_HashMap *m) {
  return m->count < m->cap / 4 * 3;
}

int tide_hashmap_reserve(tide_HashMap *m, size_t n) {
  size_t cap = m->cap ? m->cap : MIN_CAP;
  if (n > MAX_CAP / 4 * 3) return TIDE_ENOMEM;
  while (n > cap / 4 * 3) cap *= 2;
  return cap == m->cap ? 0 : rehash(m, cap);
}

/* The slot of a string key, or of the empty slot where it would go. */
static tide_HashMapSlot *find(const tide_HashMap *m, const void *key,
                              size_t len, uint32_t h) {
  size_t mask = m->cap - 1, at;
  for (at = h & mask;; at = (at + 1) & mask) {
    tide_HashMapSlot *s = &m->slots[at];
    if (!s->used ||
        (s->hash == h && s->used == len + 1 &&
         (len == 0 || memcmp(m->keys.data + s->key, key, len) == 0)))
      return s;
  }
}

static tide_HashMapSlot *find_id(const tide_HashMap *m, uint64_t id,
                                 uint32_t h) {
  size_t mask = m->cap - 1, at;
  for (at = h & mask;; at = (at + 1) & mask) {
    tide_HashMapSlot *s = &m->slots[at];
    if (!s->used || s->key == id) return s;
  }
}

int tide_hashmap_put(tide_HashMap *m, const void *key, size_t len,
                     uint64_t value, size_t *key_off) {
  tide_HashMapSlot *s;
  size_t off;
  uint32_t h;
  int rc;
  if (len > TIDE_HASHMAP_MAX_KEY) return TIDE_EINVAL;
  h = hash32(hash_bytes(key, len));
  if (!has_room(m) && (rc = tide_hashmap_reserve(m, m->count + 1)) != 0)
    return rc;
  s = find(m, key, len, h);
  if (s->used) {
    s->value = value;
    if (key_off) *key_off = (size_t)s->key;
    return 0;
  }
  off = m->keys.len;
  if ((rc = tide_buf_reserve(&m->keys, len + 1)) != 0) return rc;
  if (len) memcpy(m->keys.data + off, key, len);
  m->keys.data[off + len] = '\0';
  m->keys.len += len + 1;
  s->key = off;
  s->value = value;
  s->hash = h;
  s->used = (uint32_t)len + 1;
  m->count++;
  if (key_off) *key_off = off;
  return 0;
}

uint64_t *tide_hashmap_get(const tide_HashMap *m, const void *key,
                           size_t len) {
  tide_HashMapSlot *s;
  if (m->count == 0 || len > TIDE_HASHMAP_MAX_KEY) return NULL;
  s = find(m, key, len, hash32(hash_bytes(key, len)));
  return s->used ? &s->value : NULL;
}

int tide_hashmap_put_id(tide_HashMap *m, uint64_t id, uint64_t value) {
  uint32_t h = hash32(mix(id ^ K1));
  tide_HashMapSlot *s;
  int rc;
  if (!has_room(m) && (rc = tide_hashmap_reserve(m, m->count + 1)) != 0)
    return rc;
  s = find_id(m, id, h);
  if (!s->used) {
    s->key = id;
    s->hash = h;
    s->used = 1;
    m->count++;
  }
  s->value = value;
  return 0;
}

uint64_t *tide_hashmap_get_id(const tide_HashMap *m, uint64_t id) {
  tide_HashMapSlot *s;
  if (m->count == 0) return NULL;
  s = find_id(m, id, hash32(mix(id ^ K1)));
  return s->used ? &s->value : NULL;
}
