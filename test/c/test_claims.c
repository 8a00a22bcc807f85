/* C tests of a run's claims: a key claimed twice names its first
** claimant, containers and NUL bytes keep keys apart, a path is claimed
** once, and running out of memory leaves the set as it was. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "claims.h"

static int claimed_by(tide_Claims *c, int64_t cid, const char *key,
                      size_t key_len, const char *path, const char *want) {
  const char *other = NULL;
  size_t other_len = 0;
  int rc = tide_claims_take(c, cid, key, key_len, path, strlen(path), &other,
                            &other_len);
  if (want == NULL) return rc == 0;
  return rc == 1 && other_len == strlen(want) &&
         memcmp(other, want, other_len) == 0;
}

static void test_claims(void) {
  tide_Claims c;
  tide_claims_init(&c, NULL, NULL);
  CHECK(claimed_by(&c, 1, "k1", 2, "app/a", NULL));
  CHECK(claimed_by(&c, 1, "k2", 2, "app/a", NULL));
  CHECK(claimed_by(&c, 1, "k3", 2, "app/b", NULL));
  /* A second claim names the first claimant, itself or another. */
  CHECK(claimed_by(&c, 1, "k1", 2, "app/a", "app/a"));
  CHECK(claimed_by(&c, 1, "k2", 2, "app/b", "app/a"));
  CHECK(claimed_by(&c, 1, "k3", 2, "app/c", "app/b"));
  /* The same key in another container, and keys that differ after a NUL,
  ** are other states. */
  CHECK(claimed_by(&c, 2, "k1", 2, "app/c", NULL));
  CHECK(claimed_by(&c, 1, "k1\0x", 4, "app/c", NULL));
  CHECK(claimed_by(&c, 1, "k1\0y", 4, "app/d", NULL));
  CHECK(claimed_by(&c, 1, "k1\0x", 4, "app/e", "app/c"));
  CHECK_EQ_INT(tide_claims_count(&c), 6);
  /* Paths are claimed apart from states, and once. */
  CHECK_EQ_INT(tide_claims_take_path(&c, "k1", 2), 0);
  CHECK_EQ_INT(tide_claims_take_path(&c, "", 0), 0);
  CHECK_EQ_INT(tide_claims_take_path(&c, "k1", 2), 1);
  CHECK_EQ_INT(tide_claims_take_path(&c, "", 0), 1);
  CHECK_EQ_INT(tide_claims_take_path(&c, "k1\0", 3), 0);
  CHECK(claimed_by(&c, 1, "k1", 2, "app/f", "app/a"));
  CHECK_EQ_INT(tide_claims_count(&c), 9);
  /* Container ids are row ids: 0 is refused. */
  {
    const char *other;
    size_t other_len;
    CHECK_EQ_INT(tide_claims_take(&c, 0, "k1", 2, "app/a", 5, &other,
                                  &other_len), TIDE_EINVAL);
  }
  tide_claims_close(&c);
  tide_claims_close(&c); /* twice is fine */
  tide_claims_close(NULL);
}

static void test_many(void) {
  tide_Claims c;
  char key[32], path[32], want[32];
  int i, wrong = 0;
  tide_claims_init(&c, NULL, NULL);
  for (i = 0; i < 5000; i++) {
    snprintf(key, sizeof key, "key%d", i);
    snprintf(path, sizeof path, "app/%d", i / 3);
    if (!claimed_by(&c, i % 2 + 1, key, strlen(key), path, NULL)) wrong++;
  }
  for (i = 0; i < 5000; i++) {
    snprintf(key, sizeof key, "key%d", i);
    snprintf(want, sizeof want, "app/%d", i / 3);
    if (!claimed_by(&c, i % 2 + 1, key, strlen(key), "app/x", want)) wrong++;
  }
  CHECK_EQ_INT(wrong, 0);
  CHECK_EQ_INT(tide_claims_count(&c), 5000);
  tide_claims_close(&c);
}

static void test_out_of_memory(void) {
  int limit;
  for (limit = 0; limit < 16; limit++) {
    Budget b = {limit, 0};
    tide_Claims c;
    char key[32], path[32];
    int i, rc = 0, taken = 0, lost = 0;
    tide_claims_init(&c, budget_alloc, &b);
    for (i = 0; i < 300 && rc == 0; i++) {
      const char *other;
      size_t other_len;
      snprintf(key, sizeof key, "key%d", i);
      snprintf(path, sizeof path, "app/%d", i / 2);
      rc = tide_claims_take(&c, 1, key, strlen(key), path, strlen(path),
                            &other, &other_len);
      if (rc == 0) taken++;
    }
    CHECK(taken == 300 || rc == TIDE_ENOMEM);
    CHECK_EQ_INT(tide_claims_count(&c), taken);
    /* What was claimed before the failure still names its claimant. */
    b.budget = -1;
    for (i = 0; i < taken; i++) {
      char want[32];
      snprintf(key, sizeof key, "key%d", i);
      snprintf(want, sizeof want, "app/%d", i / 2);
      if (!claimed_by(&c, 1, key, strlen(key), "app/x", want)) lost++;
    }
    CHECK_EQ_INT(lost, 0);
    tide_claims_close(&c);
    CHECK_EQ_INT(b.live, 0);
  }
}

int main(void) {
  static const CheckTest tests[] = {
    {"a second claim names the first claimant", test_claims},
    {"many claims", test_many},
    {"out of memory leaves the claims as they were", test_out_of_memory},
    {NULL, NULL},
  };
  return check_run("claims", tests);
}
