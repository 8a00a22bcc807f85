/* A run's claims on target states (claims.h). */
#include <string.h>

#include "claims.h"

void tide_claims_init(tide_Claims *c, tide_Alloc alloc, void *ud) {
  tide_hashmap_init(&c->map, alloc, ud);
  tide_buf_init(&c->paths, alloc, ud);
  tide_buf_init(&c->scratch, alloc, ud);
  tide_buf_init(&c->diff, alloc, ud);
  c->last = SIZE_MAX;
}

void tide_claims_close(tide_Claims *c) {
  if (c == NULL) return;
  tide_hashmap_close(&c->map);
  tide_buf_close(&c->paths);
  tide_buf_close(&c->scratch);
  tide_buf_close(&c->diff);
  c->last = SIZE_MAX;
}

static void path_at(const tide_Claims *c, size_t off, const char **path,
                    size_t *len) {
  uint32_t n;
  memcpy(&n, c->paths.data + off, sizeof n);
  *path = (const char *)c->paths.data + off + sizeof n;
  *len = n;
}

/* The offset of path in paths: the last one stored when it is the same
** (a component declares its states one after another), else a new copy. */
static int store_path(tide_Claims *c, const char *path, size_t len,
                      size_t *off) {
  uint32_t n = (uint32_t)len;
  if (c->last != SIZE_MAX) {
    const char *last;
    size_t last_len;
    path_at(c, c->last, &last, &last_len);
    if (last_len == len && memcmp(last, path, len) == 0) {
      *off = c->last;
      return 0;
    }
  }
  if (len > UINT32_MAX - 1) return TIDE_EINVAL;
  if (tide_buf_reserve(&c->paths, sizeof n + len + 1) != 0)
    return TIDE_ENOMEM;
  *off = c->paths.len;
  memcpy(c->paths.data + c->paths.len, &n, sizeof n);
  memcpy(c->paths.data + c->paths.len + sizeof n, path, len);
  c->paths.data[c->paths.len + sizeof n + len] = 0;
  c->paths.len += sizeof n + len + 1;
  c->last = *off;
  return 0;
}

/* Sets the scratch key: id (8 bytes, little-endian), then len bytes. */
static int make_key(tide_Claims *c, uint64_t id, const void *p, size_t len) {
  uint8_t head[8];
  int i;
  for (i = 0; i < 8; i++) head[i] = (uint8_t)(id >> (8 * i));
  c->scratch.len = 0;
  if (tide_buf_append(&c->scratch, head, sizeof head) != 0 ||
      tide_buf_append(&c->scratch, p, len) != 0)
    return TIDE_ENOMEM;
  return 0;
}

int tide_claims_take(tide_Claims *c, int64_t container_id, const void *key,
                     size_t key_len, const char *path, size_t path_len,
                     const char **other, size_t *other_len) {
  uint64_t *found;
  size_t off, before;
  int rc;
  if (container_id <= 0) return TIDE_EINVAL;
  if (make_key(c, (uint64_t)container_id, key, key_len) != 0)
    return TIDE_ENOMEM;
  found = tide_hashmap_get(&c->map, c->scratch.data, c->scratch.len);
  if (found) {
    path_at(c, (size_t)*found, other, other_len);
    return 1;
  }
  before = c->paths.len;
  rc = store_path(c, path, path_len, &off);
  if (rc) return rc;
  rc = tide_hashmap_put(&c->map, c->scratch.data, c->scratch.len, off, NULL);
  if (rc) {
    /* A path stored for this claim alone is dropped again. */
    if (c->paths.len != before) {
      c->paths.len = before;
      c->last = SIZE_MAX;
    }
    return rc;
  }
  return 0;
}

int tide_claims_take_path(tide_Claims *c, const char *path, size_t len) {
  int rc;
  if (make_key(c, 0, path, len) != 0) return TIDE_ENOMEM;
  if (tide_hashmap_get(&c->map, c->scratch.data, c->scratch.len)) return 1;
  rc = tide_hashmap_put(&c->map, c->scratch.data, c->scratch.len, 0, NULL);
  return rc ? rc : 0;
}

size_t tide_claims_count(const tide_Claims *c) {
  return tide_hashmap_count(&c->map);
}
