/* mount_each over a keyed source, decided in C (see index_each.h). */
#include <string.h>

#include <blake2.h>

#include "cbor.h"
#include "index_each.h"

int tide_index_each_init(tide_IndexEach *c, tide_Index *ix,
                         const char *base, size_t base_len,
                         const uint8_t *logic, int nargs, const void *extra,
                         size_t extra_len, tide_Alloc alloc, void *ud) {
  tide_Buf head;
  int rc;
  if (alloc == NULL) alloc = tide_alloc_default;
  memset(c, 0, sizeof *c);
  c->ix = ix;
  c->alloc = alloc;
  c->ud = ud;
  memcpy(c->logic, logic, TIDE_FP_SIZE);
  tide_buf_init(&c->path, alloc, ud);
  tide_buf_init(&c->extra, alloc, ud);
  tide_hashmap_init(&c->others, alloc, ud);
  /* The array head as the encoder writes it (fingerprint_args). */
  tide_buf_init(&head, alloc, ud);
  if ((rc = tide_cbor_put_head(&head, 4, (uint64_t)(nargs < 0 ? 0 : nargs)))
      == 0) {
    memcpy(c->head, head.data, head.len);
    c->head_len = head.len;
  }
  tide_buf_close(&head);
  if (rc != 0 || (rc = tide_buf_append(&c->path, base, base_len)) != 0 ||
      (rc = tide_buf_push(&c->path, '/')) != 0 ||
      (rc = tide_buf_append(&c->extra, extra, extra_len)) != 0)
    return rc;
  c->prefix_len = c->path.len;
  return 0;
}

void tide_index_each_close(tide_IndexEach *c) {
  tide_buf_close(&c->path);
  tide_buf_close(&c->extra);
  tide_hashmap_close(&c->others);
  if (c->listed)
    c->alloc(c->ud, c->listed, c->listed_count * sizeof *c->listed, 0);
  c->listed = NULL;
}

/* Sources often list their items in key order, which is path order:
** tide_index_find tries the entry after the last one found first. */
int tide_index_each_find(tide_IndexEach *c, const char *key, size_t len) {
  int rc;
  c->path.len = c->prefix_len;
  c->entry = NULL;
  if ((rc = tide_buf_append(&c->path, key, len)) != 0) return rc;
  c->entry = tide_index_find(c->ix, (const char *)c->path.data, c->path.len);
  return 0;
}

static size_t entry_number(const tide_IndexEach *c) {
  return (size_t)(c->entry - tide_index_at(c->ix, 0));
}

int64_t tide_index_each_first(const tide_IndexEach *c) {
  const uint64_t *n;
  const char *key = (const char *)c->path.data + c->prefix_len;
  if (c->entry) return c->listed ? c->listed[entry_number(c)] : 0;
  n = tide_hashmap_get(&c->others, key, c->path.len - c->prefix_len);
  return n ? (int64_t)*n : 0;
}

int tide_index_each_list(tide_IndexEach *c, int64_t n) {
  const char *key = (const char *)c->path.data + c->prefix_len;
  if (c->entry == NULL)
    return tide_hashmap_put(&c->others, key, c->path.len - c->prefix_len,
                            (uint64_t)n, NULL);
  if (c->listed == NULL) {
    size_t count = tide_index_count(c->ix);
    c->listed = c->alloc(c->ud, NULL, 0, count * sizeof *c->listed);
    if (c->listed == NULL) return TIDE_ENOMEM;
    memset(c->listed, 0, count * sizeof *c->listed);
    c->listed_count = count;
  }
  c->listed[entry_number(c)] = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
  return 0;
}

int64_t tide_index_each_entry(const tide_IndexEach *c) {
  return c->entry ? (int64_t)entry_number(c) : -1;
}

void tide_index_each_resume(tide_IndexEach *c, int64_t entry) {
  c->entry = entry < 0 ? NULL : tide_index_at(c->ix, (size_t)entry);
}

void tide_index_each_input(const tide_IndexEach *c, const void *value,
                           size_t len, uint8_t *out) {
  blake2b_state st;
  blake2b_init(&st, TIDE_FP_SIZE);
  blake2b_update(&st, c->head, c->head_len);
  blake2b_update(&st, value, len);
  if (c->extra.len) blake2b_update(&st, c->extra.data, c->extra.len);
  blake2b_final(&st, out, TIDE_FP_SIZE);
}

int tide_index_each_carry(tide_IndexEach *c, const uint8_t *input) {
  tide_IndexEntry *e = c->entry;
  if (!tide_index_may_carry(c->ix, e, c->logic) ||
      memcmp(e->input, input, TIDE_FP_SIZE) != 0)
    return 0;
  tide_index_keep(c->ix, e);
  c->carried++;
  return 1;
}
