/*
** Tests of the state store's reads of many rows in one go, which the
** engine makes for a batch of components: memo references and unused memo
** entries, previous rows, target states read ahead, of many owners, their
** owners and intents, on files or on PostgreSQL (see store_fixture.h).
*/

#include "store_fixture.h"

static int collect_ref(void *arg, const uint8_t *key) {
  int *seen = arg;
  seen[key[0]]++;
  return 0;
}

static void test_memo_refs(void) {
  Tmp t;
  tide_Store *s;
  uint8_t k1[TIDE_FP_SIZE], k2[TIDE_FP_SIZE], k3[TIDE_FP_SIZE];
  int seen[256], used = -1;
  int64_t app, other;
  memset(k1, 1, sizeof k1);
  memset(k2, 2, sizeof k2);
  memset(k3, 3, sizeof k3);
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("a"), &app, NULL), 0);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("b"), &other, NULL), 0);
  /* Component 10 uses k1 and k2 (k1 twice), component 11 uses k2. */
  CHECK_EQ_INT(tide_store_memo_ref_add(s, app, 10, k1), 0);
  CHECK_EQ_INT(tide_store_memo_ref_add(s, app, 10, k1), 0);
  CHECK_EQ_INT(tide_store_memo_ref_add(s, app, 10, k2), 0);
  CHECK_EQ_INT(tide_store_memo_ref_add(s, app, 11, k2), 0);
  CHECK_EQ_INT(tide_store_memo_ref_add(s, other, 12, k3), 0);
  memset(seen, 0, sizeof seen);
  CHECK_EQ_INT(tide_store_memo_refs_each(s, 10, collect_ref, seen), 0);
  CHECK_EQ_INT(seen[1], 1);
  CHECK_EQ_INT(seen[2], 1);
  CHECK_EQ_INT(seen[3], 0);
  CHECK_EQ_INT(tide_store_memo_refs_clear(s, 10), 0);
  CHECK_EQ_INT(tide_store_memo_ref_exists(s, app, k1, &used), 0);
  CHECK_EQ_INT(used, 0);
  CHECK_EQ_INT(tide_store_memo_ref_exists(s, app, k2, &used), 0);
  CHECK_EQ_INT(used, 1);
  /* A clear is queued like the additions, and runs in call order with
  ** them: what was added before it goes, what comes after stays. */
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_memo_ref_add(s, app, 13, k1), 0);
  CHECK_EQ_INT(tide_store_memo_refs_clear(s, 13), 0);
  CHECK_EQ_INT(tide_store_memo_ref_add(s, app, 13, k3), 0);
  CHECK_EQ_INT(tide_store_batch_writes(s), 3);
  memset(seen, 0, sizeof seen);
  CHECK_EQ_INT(tide_store_memo_refs_each(s, 13, collect_ref, seen), 0);
  CHECK_EQ_INT(seen[1], 0);
  CHECK_EQ_INT(seen[3], 1);
  CHECK_EQ_INT(tide_store_memo_refs_clear(s, 13), 0);
  /* Another app's reference does not count. */
  CHECK_EQ_INT(tide_store_memo_ref_exists(s, app, k3, &used), 0);
  CHECK_EQ_INT(used, 0);
  CHECK_EQ_INT(tide_store_app_delete(s, other), 0);
  CHECK_EQ_INT(tide_store_memo_ref_exists(s, other, k3, &used), 0);
  CHECK_EQ_INT(used, 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

/* The memo entries among a list of keys that no component of the app
** uses are deleted, in one call; a read of an entry sees the entries
** written before it in the batch, and only those. */
static void test_memo_unused(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreMemo m, got;
  uint8_t keys[4 * TIDE_FP_SIZE];
  static const uint8_t value[] = { 0x01 };
  int64_t app, other;
  int i;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("a"), &app, NULL), 0);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("b"), &other, NULL), 0);
  memset(&m, 0, sizeof m);
  SET_STR(m.fn_name, "f");
  m.value = value;
  m.value_len = sizeof value;
  for (i = 0; i < 4; i++) {
    fp_fill(keys + i * TIDE_FP_SIZE, 40 + i);
    m.app_id = app;
    m.key = keys + i * TIDE_FP_SIZE;
    CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
    /* Read back before the batch's commit: the entries written so far
    ** answer, the next one not yet. */
    CHECK_EQ_INT(tide_store_memo_get(s, app, m.key, &got), 0);
    if (i < 3) {
      CHECK_EQ_INT(tide_store_memo_get(s, app, keys + (i + 1) * TIDE_FP_SIZE,
                                       &got), TIDE_ENOTFOUND);
    }
  }
  m.app_id = other;
  m.key = keys;
  CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
  /* Component 30 uses the second key; another app's component the
  ** first, which does not count for this app. */
  CHECK_EQ_INT(tide_store_memo_ref_add(s, app, 30, keys + TIDE_FP_SIZE), 0);
  CHECK_EQ_INT(tide_store_memo_ref_add(s, other, 31, keys), 0);
  /* The first three are listed: the first and third go, the second is
  ** used, the fourth was not listed. */
  CHECK_EQ_INT(tide_store_memo_delete_unused(s, app, keys, 3), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_memo_get(s, app, keys, &got), TIDE_ENOTFOUND);
  CHECK_EQ_INT(tide_store_memo_get(s, app, keys + TIDE_FP_SIZE, &got), 0);
  CHECK_EQ_INT(tide_store_memo_get(s, app, keys + 2 * TIDE_FP_SIZE, &got),
               TIDE_ENOTFOUND);
  CHECK_EQ_INT(tide_store_memo_get(s, app, keys + 3 * TIDE_FP_SIZE, &got), 0);
  CHECK_EQ_INT(tide_store_memo_get(s, other, keys, &got), 0);
  /* Nothing listed: nothing to do. */
  CHECK_EQ_INT(tide_store_memo_delete_unused(s, app, keys, 0), 0);
  /* The sweep (the list died with a process): every entry of the app no
  ** component of it uses, the fourth, goes; the other app's stays. */
  CHECK_EQ_INT(tide_store_memo_delete_unreferenced(s, app), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_memo_get(s, app, keys + TIDE_FP_SIZE, &got), 0);
  CHECK_EQ_INT(tide_store_memo_get(s, app, keys + 3 * TIDE_FP_SIZE, &got),
               TIDE_ENOTFOUND);
  CHECK_EQ_INT(tide_store_memo_get(s, other, keys, &got), 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

typedef struct {
  char text[256];
} Before;

static int before_state(void *arg, int64_t id, const void *state,
                        size_t len) {
  Before *b = arg;
  size_t at = strlen(b->text);
  snprintf(b->text + at, sizeof b->text - at, "s%lld:%zu ", (long long)id,
           state ? len : 0);
  return 0;
}

static int before_ref(void *arg, int64_t id, const uint8_t *key) {
  Before *b = arg;
  size_t at = strlen(b->text);
  snprintf(b->text + at, sizeof b->text - at, "r%lld:%d ", (long long)id,
           key[0]);
  return 0;
}

/* The previous rows a batch reads in one go: the same answers as the
** reads one by one, what the batch keeps included. */
static void test_components_before(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreComponent c;
  static const uint8_t st[] = { 0x81, 0x01, 0x02 };
  uint8_t k1[TIDE_FP_SIZE], k2[TIDE_FP_SIZE];
  int64_t app, a = 0, b = 0, ids[4];
  Before got;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("a"), &app, NULL), 0);
  memset(&c, 0, sizeof c);
  c.app_id = app;
  SET_STR(c.fn_name, "f");
  SET_STR(c.path, "/f/a");
  c.state = st;
  c.state_len = sizeof st;
  CHECK_EQ_INT(tide_store_component_put(s, &c, &a), 0);
  SET_STR(c.path, "/f/b");
  c.state = NULL;
  c.state_len = 0;
  CHECK_EQ_INT(tide_store_component_put(s, &c, &b), 0);
  memset(k1, 1, sizeof k1);
  memset(k2, 2, sizeof k2);
  CHECK_EQ_INT(tide_store_memo_ref_add(s, app, a, k2), 0);
  CHECK_EQ_INT(tide_store_memo_ref_add(s, app, a, k1), 0);
  CHECK_EQ_INT(tide_store_memo_ref_add(s, app, b, k1), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  /* b twice, and an id that is not there. */
  ids[0] = a;
  ids[1] = 999;
  ids[2] = b;
  ids[3] = b;
  memset(&got, 0, sizeof got);
  CHECK_EQ_INT(tide_store_components_before(s, ids, 4, before_state, NULL,
                                            &got), 0);
  {
    char want_a[32], want_b[32];
    snprintf(want_a, sizeof want_a, "s%lld:3 ", (long long)a);
    snprintf(want_b, sizeof want_b, "s%lld:0 ", (long long)b);
    CHECK(strstr(got.text, want_a) != NULL);
    CHECK(strstr(got.text, want_b) != NULL);
    CHECK(strstr(got.text, "s999") == NULL);
  }
  memset(&got, 0, sizeof got);
  CHECK_EQ_INT(tide_store_components_before(s, ids, 1, before_state,
                                            before_ref, &got), 0);
  {
    char want[64];
    snprintf(want, sizeof want, "s%lld:3 r%lld:1 r%lld:2 ", (long long)a,
             (long long)a, (long long)a);
    CHECK_STR_EQ(got.text, want);
  }
  /* What the batch keeps answers too: a's references cleared and one
  ** added, b's state set, not committed. */
  CHECK_EQ_INT(tide_store_memo_refs_clear(s, a), 0);
  CHECK_EQ_INT(tide_store_memo_ref_add(s, app, a, k2), 0);
  c.id = b;
  c.state = st;
  c.state_len = 2;
  CHECK_EQ_INT(tide_store_component_put(s, &c, &b), 0);
  memset(&got, 0, sizeof got);
  CHECK_EQ_INT(tide_store_components_before(s, ids + 2, 1, before_state,
                                            before_ref, &got), 0);
  {
    char want[64];
    snprintf(want, sizeof want, "s%lld:2 r%lld:1 ", (long long)b,
             (long long)b);
    CHECK_STR_EQ(got.text, want);
  }
  memset(&got, 0, sizeof got);
  CHECK_EQ_INT(tide_store_components_before(s, ids, 1, NULL, before_ref,
                                            &got), 0);
  {
    char want[64];
    snprintf(want, sizeof want, "r%lld:2 ", (long long)a);
    CHECK_STR_EQ(got.text, want);
  }
  CHECK_EQ_INT(tide_store_components_before(s, ids, 0, before_state,
                                            before_ref, &got), 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

static int count_pending(void *arg, const tide_StoreTarget *t) {
  (*(int *)arg) += t->pending != 0;
  return 0;
}

static void test_targets_mark_applied(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreTarget tg;
  int64_t app, c1, c2;
  int pending = 0;
  static const uint8_t fp[TIDE_FP_SIZE] = {7};
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("a"), &app, NULL), 0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, app, LIT("k"),
                                                  LIT("one"), &c1, NULL), 0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, app, LIT("k"),
                                                  LIT("two"), &c2, NULL), 0);
  memset(&tg, 0, sizeof tg);
  tg.owner_id = 1;
  tg.value_fp = fp;
  tg.key_len = 1;
  /* c1: two pending upserts and a pending delete; c2: a pending upsert. */
  tg.container_id = c1;
  tg.pending = TIDE_TARGET_UPSERT_PENDING;
  tg.key = "a";
  CHECK_EQ_INT(tide_store_target_put(s, &tg), 0);
  tg.key = "b";
  CHECK_EQ_INT(tide_store_target_put(s, &tg), 0);
  tg.key = "c";
  tg.pending = TIDE_TARGET_DELETE_PENDING;
  CHECK_EQ_INT(tide_store_target_put(s, &tg), 0);
  tg.container_id = c2;
  tg.pending = TIDE_TARGET_UPSERT_PENDING;
  tg.key = "a";
  CHECK_EQ_INT(tide_store_target_put(s, &tg), 0);
  CHECK_EQ_INT(tide_store_targets_mark_applied(s, c1), 0);
  CHECK_EQ_INT(tide_store_target_get(s, c1, "a", 1, &tg), 0);
  CHECK_EQ_INT(tg.pending, TIDE_TARGET_APPLIED);
  CHECK(tg.written_ns > 0);
  CHECK_EQ_INT(tide_store_target_get(s, c1, "c", 1, &tg), TIDE_ENOTFOUND);
  CHECK_EQ_INT(tide_store_target_each_by_container(s, c1, count_pending,
                                                   &pending), 0);
  CHECK_EQ_INT(pending, 0);
  /* The other container is untouched. */
  CHECK_EQ_INT(tide_store_target_get(s, c2, "a", 1, &tg), 0);
  CHECK_EQ_INT(tg.pending, TIDE_TARGET_UPSERT_PENDING);
  CHECK_EQ_INT(tg.written_ns, 0);
  /* A state written applied at once (under an intent) records the time;
  ** a later put that does not write it keeps that time. */
  memset(&tg, 0, sizeof tg);
  tg.container_id = c2;
  tg.owner_id = 1;
  tg.value_fp = fp;
  tg.key = "w";
  tg.key_len = 1;
  tg.written = 1;
  CHECK_EQ_INT(tide_store_target_put(s, &tg), 0);
  CHECK_EQ_INT(tide_store_target_get(s, c2, "w", 1, &tg), 0);
  CHECK_EQ_INT(tg.pending, TIDE_TARGET_APPLIED);
  CHECK(tg.written_ns > 0);
  {
    int64_t when = tg.written_ns;
    tg.written = 0;
    tg.owner_id = 2;
    tg.key = "w"; /* not the get's borrowed bytes */
    tg.value_fp = fp;
    CHECK_EQ_INT(tide_store_target_put(s, &tg), 0);
    CHECK_EQ_INT(tide_store_target_get(s, c2, "w", 1, &tg), 0);
    CHECK_EQ_INT(tg.written_ns, when);
    CHECK_EQ_INT(tg.owner_id, 2);
  }
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

static void put_state(tide_Store *s, int64_t container, const char *key,
                      int64_t owner) {
  static const uint8_t fp[TIDE_FP_SIZE] = {3};
  tide_StoreTarget tg;
  memset(&tg, 0, sizeof tg);
  tg.container_id = container;
  tg.key = key;
  tg.key_len = strlen(key);
  tg.owner_id = owner;
  tg.value_fp = fp;
  CHECK_EQ_INT(tide_store_target_put(s, &tg), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
}

static const char *owned_committed(tide_Store *s, int64_t owner,
                                   TextWalk *w) {
  memset(w, 0, sizeof *w);
  CHECK_EQ_INT(tide_store_target_each_by_owner_committed(s, owner,
                                                         walk_target, w), 0);
  return w->text;
}

/* States read ahead answer the committed reads of their owners once, as
** the store held them when read (on PostgreSQL, from what one statement
** read: a write since is not seen; SQLite reads nothing ahead), then the
** store answers again; a rollback or a forget lets them go. */
static void test_targets_read_ahead(void) {
  Tmp t;
  tide_Store *s;
  TextWalk w;
  int64_t app, c, ids[4] = { 1, 2, 3, 1 };
  int ahead = pg_base() != NULL;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("a"), &app, NULL), 0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, app, LIT("k"),
                                                  LIT("one"), &c, NULL), 0);
  put_state(s, c, "b", 1);
  put_state(s, c, "a", 1);
  put_state(s, c, "x", 2);
  CHECK_EQ_INT(tide_store_targets_read_ahead(s, ids, 4), 0);
  put_state(s, c, "y", 2);
  CHECK_STR_EQ(owned_committed(s, 1, &w), "1:a:1:0 1:b:1:0");
  CHECK_STR_EQ(owned_committed(s, 2, &w),
               ahead ? "1:x:2:0" : "1:x:2:0 1:y:2:0");
  CHECK_STR_EQ(owned_committed(s, 3, &w), "");
  /* Taken once: the store answers the next read. */
  CHECK_STR_EQ(owned_committed(s, 2, &w), "1:x:2:0 1:y:2:0");
  put_state(s, c, "c", 1);
  CHECK_STR_EQ(owned_committed(s, 1, &w), "1:a:1:0 1:b:1:0 1:c:1:0");
  /* Let go by a forget and by a rollback. */
  CHECK_EQ_INT(tide_store_targets_read_ahead(s, ids, 2), 0);
  tide_store_targets_forget_ahead(s);
  put_state(s, c, "d", 1);
  CHECK_STR_EQ(owned_committed(s, 1, &w),
               "1:a:1:0 1:b:1:0 1:c:1:0 1:d:1:0");
  CHECK_EQ_INT(tide_store_targets_read_ahead(s, ids, 2), 0);
  CHECK_EQ_INT(tide_store_rollback(s), 0);
  put_state(s, c, "z", 2);
  CHECK_STR_EQ(owned_committed(s, 2, &w), "1:x:2:0 1:y:2:0 1:z:2:0");
  /* An owner waiting is not read again; 500 owners in one read. */
  {
    int64_t many[500];
    int i;
    char key[16];
    CHECK_EQ_INT(tide_store_targets_read_ahead(s, ids, 1), 0);
    put_state(s, c, "e", 1);
    for (i = 0; i < 500; i++) {
      many[i] = 100 + i;
      snprintf(key, sizeof key, "m%03d", i);
      put_state(s, c, key, many[i]);
    }
    CHECK_EQ_INT(tide_store_targets_read_ahead(s, many, 500), 0);
    CHECK_EQ_INT(tide_store_targets_read_ahead(s, ids, 1), 0);
    CHECK_STR_EQ(owned_committed(s, 1, &w),
                 ahead ? "1:a:1:0 1:b:1:0 1:c:1:0 1:d:1:0"
                       : "1:a:1:0 1:b:1:0 1:c:1:0 1:d:1:0 1:e:1:0");
    CHECK_STR_EQ(owned_committed(s, 100, &w), "1:m000:100:0");
    CHECK_STR_EQ(owned_committed(s, 599, &w), "1:m499:599:0");
  }
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

/* The states of many owners, and of many keys of a container, read in
** one go: the answers of the reads one by one, in their order. */
static void test_targets_of_many(void) {
  Tmp t;
  tide_Store *s;
  TextWalk w;
  int64_t app, c, d, owners[4] = { 2, 9, 1, 2 };
  const char *keys[5] = { "b", "zz", "a", "b", "c" };
  size_t lens[5] = { 1, 2, 1, 1, 1 };
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("a"), &app, NULL), 0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, app, LIT("k"),
                                                  LIT("one"), &c, NULL), 0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, app, LIT("k"),
                                                  LIT("two"), &d, NULL), 0);
  put_state(s, c, "b", 1);
  put_state(s, c, "a", 1);
  put_state(s, d, "a", 1);
  put_state(s, c, "c", 2);
  put_state(s, d, "c", 3);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_target_each_by_owners(s, owners, 4, walk_target,
                                                &w), 0);
  CHECK_STR_EQ(w.text, "1:c:2:0 1:a:1:0 1:b:1:0 2:a:1:0 1:c:2:0");
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_target_each_by_owners(s, owners, 0, walk_target,
                                                &w), 0);
  CHECK_EQ_INT(w.count, 0);
  /* A state written and not yet committed is read too. */
  {
    static const uint8_t fp[TIDE_FP_SIZE] = {3};
    tide_StoreTarget tg;
    memset(&tg, 0, sizeof tg);
    tg.container_id = c;
    tg.key = "zz";
    tg.key_len = 2;
    tg.owner_id = 9;
    tg.value_fp = fp;
    CHECK_EQ_INT(tide_store_target_put(s, &tg), 0);
  }
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_target_each_of_keys(s, c, keys, lens, 5, 0,
                                              walk_target, &w), 0);
  CHECK_STR_EQ(w.text, "1:a:1:0 1:b:1:0 1:c:2:0 1:zz:9:0");
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_target_each_of_keys(s, d, keys, lens, 3, 0,
                                              walk_target, &w), 0);
  CHECK_STR_EQ(w.text, "2:a:1:0");
  /* Committed: the state written since may or may not be read. */
  CHECK_EQ_INT(tide_store_flush(s), 0);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_target_each_of_keys(s, c, keys, lens, 5, 1,
                                              walk_target, &w), 0);
  CHECK_STR_EQ(w.text, "1:a:1:0 1:b:1:0 1:c:2:0 1:zz:9:0");
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

typedef struct {
  int count;
  int seen[8]; /* by the key's seed */
} MemoOf;

static int walk_memo_of(void *arg, const tide_StoreMemo *m) {
  MemoOf *w = arg;
  w->count++;
  if (m->key[0] < 8 && m->value_len == 1 &&
      ((const uint8_t *)m->value)[0] == m->key[0])
    w->seen[m->key[0]]++;
  return 0;
}

/* The entries among many keys read in one go: each found once (a key
** given twice included), the missing left out, one kept for the batch
** and not yet committed read too. */
static void test_memos_of(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreMemo m;
  MemoOf w;
  uint8_t keys[5][TIDE_FP_SIZE], v[5];
  const uint8_t *ask[6];
  int i;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  for (i = 0; i < 5; i++) {
    memset(keys[i], 0, TIDE_FP_SIZE);
    keys[i][0] = (uint8_t)i;
    keys[i][15] = 0x5a;
    v[i] = (uint8_t)i;
  }
  memset(&m, 0, sizeof m);
  m.app_id = 1;
  SET_STR(m.fn_name, "f");
  m.value_len = 1;
  for (i = 1; i <= 3; i++) {
    m.key = keys[i];
    m.value = &v[i];
    CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
    if (i == 2) CHECK_EQ_INT(tide_store_flush(s), 0);
  }
  /* Another app's entry under key 4 is not this app's. */
  m.app_id = 2;
  m.key = keys[4];
  m.value = &v[4];
  CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
  ask[0] = keys[1];
  ask[1] = keys[0];
  ask[2] = keys[3];
  ask[3] = keys[1];
  ask[4] = keys[4];
  ask[5] = keys[2];
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_memo_each_of(s, 1, ask, 6, walk_memo_of, &w), 0);
  CHECK_EQ_INT(w.count, 3);
  CHECK_EQ_INT(w.seen[1], 1);
  CHECK_EQ_INT(w.seen[2], 1);
  CHECK_EQ_INT(w.seen[3], 1);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_memo_each_of(s, 1, ask, 0, walk_memo_of, &w), 0);
  CHECK_EQ_INT(w.count, 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

typedef struct {
  int count, ordered;
  char first[32], last[32];
  char text[128];
} PathWalk;

static int walk_path(void *arg, const char *path, size_t len) {
  PathWalk *w = arg;
  char here[32];
  snprintf(here, sizeof here, "%.*s", (int)len, path);
  if (w->count == 0) snprintf(w->first, sizeof w->first, "%s", here);
  else if (strcmp(w->last, here) >= 0) w->ordered = 0;
  snprintf(w->last, sizeof w->last, "%s", here);
  if (w->count < 4) {
    size_t n = strlen(w->text);
    snprintf(w->text + n, sizeof w->text - n, "%s%s", n ? " " : "", here);
  }
  w->count++;
  return 0;
}

static PathWalk owners_of(tide_Store *s, int64_t container, int held_only) {
  PathWalk w;
  memset(&w, 0, sizeof w);
  w.ordered = 1;
  CHECK_EQ_INT(tide_store_target_owner_each(s, container, held_only,
                                            walk_path, &w), 0);
  return w;
}

/* The owners of a container's states, each once and by path (of the
** states the target holds, or of all), and the container's states turned
** unknown at once; more owners than a page of the PostgreSQL store's. */
static void test_target_owners(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreComponent c;
  tide_StoreTarget tg;
  PathWalk w;
  int64_t app, c1, c2, big, ids[3];
  char path[32];
  int i;
  static const uint8_t fp[TIDE_FP_SIZE] = {7};
  static const char *const paths[] = { "/main/b", "/main/a", "/main/c" };
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("a"), &app, NULL), 0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, app, LIT("k"),
                                                  LIT("one"), &c1, NULL), 0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, app, LIT("k"),
                                                  LIT("two"), &c2, NULL), 0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, app, LIT("k"),
                                                  LIT("big"), &big, NULL), 0);
  memset(&c, 0, sizeof c);
  c.app_id = app;
  SET_STR(c.fn_name, "f");
  for (i = 0; i < 3; i++) {
    c.path = paths[i];
    c.path_len = strlen(paths[i]);
    CHECK_EQ_INT(tide_store_component_put(s, &c, &ids[i]), 0);
  }
  memset(&tg, 0, sizeof tg);
  tg.value_fp = fp;
  tg.key_len = 2;
  /* c1: /main/b owns two applied states, /main/a a released one, /main/c
  ** one being deleted and an unknown one; c2: /main/a, applied. */
  tg.container_id = c1;
  tg.owner_id = ids[0];
  tg.key = "k1";
  CHECK_EQ_INT(tide_store_target_put(s, &tg), 0);
  tg.key = "k2";
  tg.pending = TIDE_TARGET_UPSERT_PENDING;
  CHECK_EQ_INT(tide_store_target_put(s, &tg), 0);
  tg.owner_id = ids[1];
  tg.key = "k3";
  tg.pending = TIDE_TARGET_RELEASED;
  CHECK_EQ_INT(tide_store_target_put(s, &tg), 0);
  tg.owner_id = ids[2];
  tg.key = "k4";
  tg.pending = TIDE_TARGET_DELETE_PENDING;
  CHECK_EQ_INT(tide_store_target_put(s, &tg), 0);
  tg.container_id = c2;
  tg.owner_id = ids[1];
  tg.key = "k1";
  tg.pending = TIDE_TARGET_APPLIED;
  CHECK_EQ_INT(tide_store_target_put(s, &tg), 0);
  w = owners_of(s, c1, 0);
  CHECK_STR_EQ(w.text, "/main/a /main/b /main/c");
  w = owners_of(s, c1, 1);
  CHECK_STR_EQ(w.text, "/main/b");
  w = owners_of(s, c2, 1);
  CHECK_STR_EQ(w.text, "/main/a");
  CHECK_EQ_INT(tide_store_targets_mark_unknown(s, c1), 0);
  CHECK_EQ_INT(tide_store_target_get(s, c1, "k1", 2, &tg), 0);
  CHECK_EQ_INT(tg.pending, TIDE_TARGET_UNKNOWN);
  CHECK(tg.value_fp == NULL);
  CHECK_EQ_INT(tide_store_target_get(s, c1, "k2", 2, &tg), 0);
  CHECK_EQ_INT(tg.pending, TIDE_TARGET_UNKNOWN);
  CHECK_EQ_INT(tide_store_target_get(s, c1, "k3", 2, &tg), 0);
  CHECK_EQ_INT(tg.pending, TIDE_TARGET_RELEASED);
  CHECK(tg.value_fp != NULL);
  CHECK_EQ_INT(tide_store_target_get(s, c1, "k4", 2, &tg), 0);
  CHECK_EQ_INT(tg.pending, TIDE_TARGET_DELETE_PENDING);
  CHECK_EQ_INT(tide_store_target_get(s, c2, "k1", 2, &tg), 0);
  CHECK_EQ_INT(tg.pending, TIDE_TARGET_APPLIED);
  CHECK(tg.value_fp != NULL);
  /* 5000 owners, one state each, and one owner of two: each once. */
  memset(&tg, 0, sizeof tg);
  tg.container_id = big;
  tg.value_fp = fp;
  for (i = 0; i < 5000; i++) {
    snprintf(path, sizeof path, "/main/f/%05d", 4999 - i);
    c.id = TIDE_STORE_NEW_ID;
    c.path = path;
    c.path_len = strlen(path);
    CHECK_EQ_INT(tide_store_component_put(s, &c, &tg.owner_id), 0);
    tg.key = path;
    tg.key_len = c.path_len;
    CHECK_EQ_INT(tide_store_target_put(s, &tg), 0);
  }
  tg.key = "again";
  tg.key_len = 5;
  CHECK_EQ_INT(tide_store_target_put(s, &tg), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  w = owners_of(s, big, 1);
  CHECK_EQ_INT(w.count, 5000);
  CHECK_EQ_INT(w.ordered, 1);
  CHECK_STR_EQ(w.first, "/main/f/00000");
  CHECK_STR_EQ(w.last, "/main/f/04999");
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

typedef struct {
  int count;
  int64_t ids[4], containers[4];
  char keys[4][16];
  size_t lens[4];
} IntentWalk;

static int walk_intents(void *arg, const tide_StoreIntent *in) {
  IntentWalk *w = arg;
  if (w->count < 4 && in->keys_len <= sizeof w->keys[0]) {
    w->ids[w->count] = in->id;
    w->containers[w->count] = in->container_id;
    w->lens[w->count] = in->keys_len;
    memcpy(w->keys[w->count], in->keys, in->keys_len);
  }
  w->count++;
  return 0;
}

/* Intents are listed per app, oldest first, and go with their app and
** with their container. */
static void test_intents(void) {
  Tmp t;
  tide_Store *s;
  IntentWalk w;
  int64_t a, b, c1, c2, i1, i2, i3;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("a"), &a, NULL), 0);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("b"), &b, NULL), 0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, a, LIT("k"), LIT("one"),
                                                  &c1, NULL), 0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, a, LIT("k"), LIT("two"),
                                                  &c2, NULL), 0);
  CHECK_EQ_INT(tide_store_intent_add(s, a, c1, "\x81\x41x", 3, &i1), 0);
  CHECK_EQ_INT(tide_store_intent_add(s, a, c2, "\x80", 1, &i2), 0);
  CHECK_EQ_INT(tide_store_intent_add(s, b, c1, "\x80", 1, &i3), 0);
  CHECK(i1 > 0 && i2 > i1 && i3 > i2);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_intent_each(s, a, walk_intents, &w), 0);
  CHECK_EQ_INT(w.count, 2);
  CHECK_EQ_INT(w.ids[0], i1);
  CHECK_EQ_INT(w.containers[0], c1);
  CHECK_EQ_INT(w.lens[0], 3);
  CHECK(memcmp(w.keys[0], "\x81\x41x", 3) == 0);
  CHECK_EQ_INT(w.ids[1], i2);
  CHECK_EQ_INT(w.containers[1], c2);
  CHECK_EQ_INT(tide_store_intent_delete(s, i1), 0);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_intent_each(s, a, walk_intents, &w), 0);
  CHECK_EQ_INT(w.count, 1);
  CHECK_EQ_INT(w.ids[0], i2);
  CHECK_EQ_INT(tide_store_container_delete(s, c2), 0);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_intent_each(s, a, walk_intents, &w), 0);
  CHECK_EQ_INT(w.count, 0);
  CHECK_EQ_INT(tide_store_app_delete(s, b), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM intents"), 0);
  tide_store_close(s);
  tmp_close(&t);
}

static const CheckTest tests[] = {
  { "intents", test_intents },
  { "targets mark applied", test_targets_mark_applied },
  { "owners of a container's states, states made unknown",
    test_target_owners },
  { "target states read ahead", test_targets_read_ahead },
  { "target states of many owners and keys", test_targets_of_many },
  { "memo entries of many keys", test_memos_of },
  { "memo references", test_memo_refs },
  { "unused memo entries deleted", test_memo_unused },
  { "previous rows read in one go", test_components_before },
  { NULL, NULL },
};

int main(void) {
  return store_suite("store reads", tests, NULL, NULL);
}
