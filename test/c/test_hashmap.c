/* C tests of the hash map: string keys (NUL bytes included), id keys,
** growth, reserve, and out-of-memory leaving the map usable. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hashmap.h"

static void test_empty(void) {
  tide_HashMap m;
  tide_hashmap_init(&m, NULL, NULL);
  CHECK(tide_hashmap_get(&m, "a", 1) == NULL);
  CHECK(tide_hashmap_get(&m, NULL, 0) == NULL);
  CHECK(tide_hashmap_get_id(&m, 7) == NULL);
  CHECK_EQ_INT(tide_hashmap_count(&m), 0);
  tide_hashmap_close(&m);
  tide_hashmap_close(&m); /* twice is fine */
  tide_hashmap_close(NULL);
}

static void test_strings(void) {
  tide_HashMap m;
  size_t off_a, off_nul, off_again, off_empty;
  uint64_t *v;
  tide_hashmap_init(&m, NULL, NULL);
  CHECK_EQ_INT(tide_hashmap_put(&m, "a", 1, 1, &off_a), 0);
  CHECK_EQ_INT(tide_hashmap_put(&m, "a\0", 2, 2, &off_nul), 0);
  CHECK_EQ_INT(tide_hashmap_put(&m, "a\0b", 3, 3, NULL), 0);
  CHECK_EQ_INT(tide_hashmap_put(&m, "", 0, 4, &off_empty), 0);
  CHECK_EQ_INT(tide_hashmap_count(&m), 4);
  /* Keys that differ only after a NUL are different keys. */
  v = tide_hashmap_get(&m, "a", 1);
  CHECK(v != NULL && *v == 1);
  v = tide_hashmap_get(&m, "a\0", 2);
  CHECK(v != NULL && *v == 2);
  v = tide_hashmap_get(&m, "a\0b", 3);
  CHECK(v != NULL && *v == 3);
  v = tide_hashmap_get(&m, "", 0);
  CHECK(v != NULL && *v == 4);
  CHECK(tide_hashmap_get(&m, "a\0c", 3) == NULL);
  CHECK(tide_hashmap_get(&m, "b", 1) == NULL);
  /* The map keeps the bytes, followed by a NUL. */
  CHECK(memcmp(tide_hashmap_key(&m, off_a), "a", 2) == 0);
  CHECK(memcmp(tide_hashmap_key(&m, off_nul), "a\0\0", 3) == 0);
  CHECK(tide_hashmap_key(&m, off_empty)[0] == '\0');
  /* A second put replaces the value and keeps the first key's bytes. */
  CHECK_EQ_INT(tide_hashmap_put(&m, "a", 1, 10, &off_again), 0);
  CHECK_EQ_INT(off_again, off_a);
  CHECK_EQ_INT(tide_hashmap_count(&m), 4);
  CHECK_EQ_INT(*tide_hashmap_get(&m, "a", 1), 10);
  /* The value can be written through the pointer get gives. */
  *tide_hashmap_get(&m, "a\0b", 3) = 30;
  CHECK_EQ_INT(*tide_hashmap_get(&m, "a\0b", 3), 30);
  tide_hashmap_close(&m);
}

static void test_growth(void) {
  enum { N = 100000 };
  tide_HashMap m;
  size_t *offs = malloc(N * sizeof *offs);
  char key[64];
  int i, missing = 0, wrong = 0;
  tide_hashmap_init(&m, NULL, NULL);
  for (i = 0; i < N; i++) {
    /* Long shared prefixes, as component paths have. */
    int len = snprintf(key, sizeof key, "/process_file/docs/d%d/f%d.md",
                       i % 97, i);
    CHECK_EQ_INT(tide_hashmap_put(&m, key, (size_t)len, (uint64_t)i,
                                  &offs[i]), 0);
  }
  CHECK_EQ_INT(tide_hashmap_count(&m), N);
  CHECK(m.cap >= N + N / 3 && m.cap <= 4 * (size_t)N);
  for (i = 0; i < N; i++) {
    int len = snprintf(key, sizeof key, "/process_file/docs/d%d/f%d.md",
                       i % 97, i);
    uint64_t *v = tide_hashmap_get(&m, key, (size_t)len);
    if (v == NULL) missing++;
    else if (*v != (uint64_t)i) wrong++;
    if (strcmp(tide_hashmap_key(&m, offs[i]), key) != 0) wrong++;
  }
  CHECK_EQ_INT(missing, 0);
  CHECK_EQ_INT(wrong, 0);
  CHECK(tide_hashmap_get(&m, "/process_file/docs/d1/f97.md", 28) == NULL);
  tide_hashmap_close(&m);
  free(offs);
}

static void test_ids(void) {
  tide_HashMap m;
  uint64_t i;
  int missing = 0;
  tide_hashmap_init(&m, NULL, NULL);
  CHECK_EQ_INT(tide_hashmap_put_id(&m, 0, 100), 0);
  CHECK_EQ_INT(tide_hashmap_put_id(&m, UINT64_MAX, 200), 0);
  for (i = 1; i <= 50000; i++)
    CHECK_EQ_INT(tide_hashmap_put_id(&m, i, i * 2), 0);
  CHECK_EQ_INT(tide_hashmap_count(&m), 50002);
  CHECK_EQ_INT(*tide_hashmap_get_id(&m, 0), 100);
  CHECK(*tide_hashmap_get_id(&m, UINT64_MAX) == 200);
  for (i = 1; i <= 50000; i++) {
    uint64_t *v = tide_hashmap_get_id(&m, i);
    if (v == NULL || *v != i * 2) missing++;
  }
  CHECK_EQ_INT(missing, 0);
  CHECK(tide_hashmap_get_id(&m, 50001) == NULL);
  CHECK_EQ_INT(tide_hashmap_put_id(&m, 7, 70), 0);
  CHECK_EQ_INT(tide_hashmap_count(&m), 50002);
  CHECK_EQ_INT(*tide_hashmap_get_id(&m, 7), 70);
  tide_hashmap_close(&m);
}

static void test_reserve(void) {
  tide_HashMap m;
  size_t cap;
  int i;
  tide_hashmap_init(&m, NULL, NULL);
  CHECK_EQ_INT(tide_hashmap_reserve(&m, 1000), 0);
  cap = m.cap;
  CHECK(cap >= 1000 + 1000 / 3);
  for (i = 0; i < 1000; i++) tide_hashmap_put_id(&m, (uint64_t)i, 0);
  CHECK_EQ_INT(m.cap, cap); /* no growth up to the reserved count */
  CHECK_EQ_INT(tide_hashmap_reserve(&m, 10), 0); /* never shrinks */
  CHECK_EQ_INT(m.cap, cap);
  tide_hashmap_close(&m);
}

/* An allocator that fails once `budget` allocations have been made. */
static int budget;

static void *limited(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (budget-- <= 0) return NULL;
  return realloc(ptr, nsize);
}

static void test_out_of_memory(void) {
  int limit;
  /* Whatever allocation fails, the put says so and the map keeps every
  ** key put before. */
  for (limit = 0; limit < 12; limit++) {
    tide_HashMap m;
    char key[32];
    int i, put = 0, rc = 0, missing = 0;
    budget = limit;
    tide_hashmap_init(&m, limited, NULL);
    for (i = 0; i < 200 && rc == 0; i++) {
      int len = snprintf(key, sizeof key, "key%d", i);
      rc = tide_hashmap_put(&m, key, (size_t)len, (uint64_t)i, NULL);
      if (rc == 0) put++;
    }
    CHECK(put == 200 || rc == TIDE_ENOMEM);
    CHECK_EQ_INT(tide_hashmap_count(&m), put);
    for (i = 0; i < put; i++) {
      int len = snprintf(key, sizeof key, "key%d", i);
      uint64_t *v = tide_hashmap_get(&m, key, (size_t)len);
      if (v == NULL || *v != (uint64_t)i) missing++;
    }
    CHECK_EQ_INT(missing, 0);
    tide_hashmap_close(&m);
  }
}

int main(void) {
  static const CheckTest tests[] = {
    {"an empty map finds nothing", test_empty},
    {"string keys, NUL bytes included", test_strings},
    {"growth keeps every key", test_growth},
    {"id keys", test_ids},
    {"reserve", test_reserve},
    {"out of memory leaves the map usable", test_out_of_memory},
    {NULL, NULL},
  };
  return check_run("hashmap", tests);
}
