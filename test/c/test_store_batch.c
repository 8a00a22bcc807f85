/*
** Tests of the state store's batches: group commit, a commit sent and
** waited for later, an app deleted whole, keys with NUL bytes, a failed
** statement or batch, reads beside a batch in flight, and ids not waited
** for, on files or on PostgreSQL (see store_fixture.h).
*/

#include "store_fixture.h"

/* ---- Group commit ---- */

static int count_source(void *arg, const tide_StoreSourceItem *item) {
  (void)item;
  (*(int *)arg)++;
  return 0;
}

static int visible(tide_Store *r) {
  int n = 0;
  if (tide_store_source_each(r, 1, LIT("s"), count_source, &n) != 0) return -1;
  return n;
}

static void put_items(tide_Store *s, int from, int count) {
  tide_StoreSourceItem item;
  char key[16];
  int i;
  memset(&item, 0, sizeof item);
  item.app_id = 1;
  SET_STR(item.source, "s");
  for (i = from; i < from + count; i++) {
    snprintf(key, sizeof key, "k%03d", i);
    SET_STR(item.key, key);
    item.size = i;
    CHECK_EQ_INT(tide_store_source_put(s, &item), 0);
  }
}

static void test_group_commit(void) {
  Tmp t;
  tide_Store *s, *r;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  r = open_ok(t.path, TIDE_STORE_READ);
  /* Ten writes make one batch, invisible to others until flushed. */
  put_items(s, 0, 10);
  CHECK_EQ_INT(tide_store_batch_writes(s), 10);
  CHECK_EQ_INT(visible(r), 0);
  CHECK_EQ_INT(visible(s), 10);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_batch_writes(s), 0);
  CHECK_EQ_INT(visible(r), 10);
  /* maybe_flush commits at the write count... */
  tide_store_set_batch_limits(s, 5, 60000);
  put_items(s, 10, 4);
  CHECK_EQ_INT(tide_store_maybe_flush(s), 0);
  CHECK_EQ_INT(tide_store_batch_writes(s), 4);
  CHECK_EQ_INT(visible(r), 10);
  put_items(s, 14, 1);
  CHECK_EQ_INT(tide_store_maybe_flush(s), 0);
  CHECK_EQ_INT(tide_store_batch_writes(s), 0);
  CHECK_EQ_INT(visible(r), 15);
  /* ...or at the batch's age. */
  tide_store_set_batch_limits(s, 1000000, 20);
  put_items(s, 15, 1);
  CHECK_EQ_INT(tide_store_maybe_flush(s), 0);
  CHECK_EQ_INT(visible(r), 15);
  sleep_ms(30);
  CHECK_EQ_INT(tide_store_maybe_flush(s), 0);
  CHECK_EQ_INT(visible(r), 16);
  /* Defaults come back with 0. */
  tide_store_set_batch_limits(s, 0, 0);
  put_items(s, 16, 3);
  CHECK_EQ_INT(tide_store_maybe_flush(s), 0);
  CHECK_EQ_INT(tide_store_batch_writes(s), 3);
  /* A rollback discards the batch. */
  CHECK_EQ_INT(tide_store_rollback(s), 0);
  CHECK_EQ_INT(visible(s), 16);
  /* Close commits what is left. */
  put_items(s, 16, 2);
  CHECK_EQ_INT(tide_store_close(s), 0);
  CHECK_EQ_INT(visible(r), 18);
  tide_store_close(r);
  tmp_close(&t);
}

/* Fills an app with one or more rows of every kind; returns its id. */
static int64_t fill_app(tide_Store *s, const char *name, int n) {
  tide_StoreComponent c;
  tide_StoreMemo m;
  tide_StoreTarget ts;
  tide_StoreSourceItem item;
  uint8_t key[TIDE_FP_SIZE];
  char text[32];
  int64_t app = 0, cid = 0, run = 0;
  int i;
  CHECK_EQ_INT(tide_store_app_get_or_create(s, name, strlen(name), &app,
                                            NULL),
               0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, app, LIT("t"),
                                                  LIT("x"), &cid, NULL),
               0);
  memset(&c, 0, sizeof c);
  memset(&m, 0, sizeof m);
  memset(&ts, 0, sizeof ts);
  memset(&item, 0, sizeof item);
  for (i = 0; i < n; i++) {
    snprintf(text, sizeof text, "/c/%d", i);
    c.app_id = app;
    SET_STR(c.path, text);
    SET_STR(c.fn_name, "f");
    CHECK_EQ_INT(tide_store_component_put(s, &c, NULL), 0);
    fp_fill(key, i);
    m.app_id = app;
    m.key = key;
    SET_STR(m.fn_name, "f");
    CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
    ts.container_id = cid;
    ts.key = text;
    ts.key_len = strlen(text);
    ts.owner_id = 1;
    CHECK_EQ_INT(tide_store_target_put(s, &ts), 0);
    item.app_id = app;
    SET_STR(item.source, "src");
    SET_STR(item.key, text);
    CHECK_EQ_INT(tide_store_source_put(s, &item), 0);
    CHECK_EQ_INT(tide_store_run_begin(s, app, &run), 0);
  }
  return app;
}

static int64_t count_rows(const char *path, const char *table,
                          int64_t app) {
  char sql[256];
  if (strcmp(table, "target_states") == 0)
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM target_states WHERE container_id IN"
             " (SELECT id FROM containers WHERE app_id = %lld)",
             (long long)app);
  else if (strcmp(table, "apps") == 0)
    snprintf(sql, sizeof sql, "SELECT count(*) FROM apps WHERE id = %lld",
             (long long)app);
  else
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE app_id = %lld",
             table, (long long)app);
  return sql_int(path, sql);
}

/* A commit sent and not waited for: the next call reads its outcome. */
static void test_flush_send(void) {
  Tmp t;
  tide_Store *s, *r;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  r = open_ok(t.path, TIDE_STORE_READ);
  put_items(s, 0, 10);
  CHECK_EQ_INT(tide_store_flush_send(s), 0);
  CHECK_EQ_INT(tide_store_batch_writes(s), 0);
  /* Writes after it make the next batch... */
  put_items(s, 10, 5);
  CHECK_EQ_INT(tide_store_batch_writes(s), 5);
  CHECK_EQ_INT(tide_store_flush_wait(s), 0);
  CHECK_EQ_INT(tide_store_flush_wait(s), 0);
  CHECK_EQ_INT(visible(r), 10);
  /* ...whose rollback leaves the batch sent committed. */
  CHECK_EQ_INT(tide_store_rollback(s), 0);
  CHECK_EQ_INT(visible(s), 10);
  /* A read after a commit sent sees what it committed. */
  put_items(s, 10, 3);
  CHECK_EQ_INT(tide_store_flush_send(s), 0);
  CHECK_EQ_INT(visible(s), 13);
  CHECK_EQ_INT(tide_store_flush_wait(s), 0);
  CHECK_EQ_INT(visible(r), 13);
  /* With no batch open, it sends nothing and waits for nothing. */
  CHECK_EQ_INT(tide_store_flush_send(s), 0);
  CHECK_EQ_INT(tide_store_flush_wait(s), 0);
  /* Close reads the last one. */
  put_items(s, 13, 2);
  CHECK_EQ_INT(tide_store_flush_send(s), 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  CHECK_EQ_INT(visible(r), 15);
  tide_store_close(r);
  tmp_close(&t);
}

static void test_app_delete(void) {
  static const char *const tables[] = {
    "apps", "components", "memos", "containers", "target_states",
    "source_items", "runs", NULL,
  };
  static const int64_t b_counts[] = { 1, 3, 3, 1, 3, 3, 3 };
  Tmp t;
  tide_Store *s;
  int64_t a, b;
  int i;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  a = fill_app(s, "a", 2);
  b = fill_app(s, "b", 3);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(count_rows(t.path, "target_states", a), 2);
  CHECK_EQ_INT(tide_store_app_delete(s, a), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  for (i = 0; tables[i]; i++) {
    CHECK_EQ_INT(count_rows(t.path, tables[i], a), 0);
    CHECK_EQ_INT(count_rows(t.path, tables[i], b), b_counts[i]);
  }
  /* Nothing of a is left anywhere, by any id. */
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM target_states"), 3);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM memos"), 3);
  tide_store_close(s);
  tmp_close(&t);
}

/* A batch holds the memo lock alone on PostgreSQL once it deletes a memo
** entry or sends entries before its commit (the delete sends those kept),
** until its commit is sent; one that only keeps entries for its commit
** does not. SQLite has no such lock. */
static void test_memo_lock_held(void) {
  static const uint8_t value = 7;
  uint8_t k1[TIDE_FP_SIZE], k2[TIDE_FP_SIZE];
  tide_StoreMemo m;
  Tmp t;
  tide_Store *s;
  int64_t app;
  int alone = pg_base() != NULL;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("a"), &app, NULL), 0);
  CHECK_EQ_INT(tide_store_holds_memo_lock(s), 0);
  fp_fill(k1, 1);
  fp_fill(k2, 2);
  memset(&m, 0, sizeof m);
  m.app_id = app;
  SET_STR(m.fn_name, "f");
  m.value = &value;
  m.value_len = 1;
  m.key = k1;
  CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
  CHECK_EQ_INT(tide_store_holds_memo_lock(s), 0);
  CHECK_EQ_INT(tide_store_memo_delete(s, app, k2), 0);
  CHECK_EQ_INT(tide_store_holds_memo_lock(s), alone);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_holds_memo_lock(s), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM memos"), 1);
  /* A commit sent lets it go at once, answered or not. */
  CHECK_EQ_INT(tide_store_memo_delete(s, app, k2), 0);
  CHECK_EQ_INT(tide_store_holds_memo_lock(s), alone);
  CHECK_EQ_INT(tide_store_flush_send(s), 0);
  CHECK_EQ_INT(tide_store_holds_memo_lock(s), 0);
  CHECK_EQ_INT(tide_store_flush_wait(s), 0);
  tide_store_close(s);
  tmp_close(&t);
}

/* Keys are bytes: text that differs only after a NUL is other text. */
typedef struct {
  int count;
  size_t lens[4];
  char bytes[4][16];
} BytesWalk;

static int walk_component_bytes(void *arg, const tide_StoreComponent *c) {
  BytesWalk *w = arg;
  if (w->count < 4 && c->path_len <= sizeof w->bytes[0]) {
    w->lens[w->count] = c->path_len;
    memcpy(w->bytes[w->count], c->path, c->path_len);
  }
  w->count++;
  return 0;
}

static int walk_source_bytes(void *arg, const tide_StoreSourceItem *item) {
  BytesWalk *w = arg;
  if (w->count < 4 && item->key_len <= sizeof w->bytes[0]) {
    w->lens[w->count] = item->key_len;
    memcpy(w->bytes[w->count], item->key, item->key_len);
  }
  w->count++;
  return 0;
}

static void test_nul_bytes(void) {
  static const char nul_path[] = "/f/a\0b";
  static const char nul_key[] = "a\0b";
  Tmp t;
  tide_Store *s;
  tide_StoreComponent c, got;
  tide_StoreSourceItem item, got_item;
  tide_StoreContainer container;
  BytesWalk w;
  int64_t app = 0, id1 = 0, id2 = 0, c1 = 0, c2 = 0;
  int created = -1;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &app, NULL), 0);
  /* Two components: at "/f/a" and at "/f/a" NUL "b". */
  memset(&c, 0, sizeof c);
  c.app_id = app;
  SET_STR(c.fn_name, "f");
  SET_STR(c.path, "/f/a");
  CHECK_EQ_INT(tide_store_component_put(s, &c, &id1), 0);
  c.path = nul_path;
  c.path_len = sizeof nul_path - 1;
  c.source_key = nul_key;
  c.source_key_len = sizeof nul_key - 1;
  CHECK_EQ_INT(tide_store_component_put(s, &c, &id2), 0);
  CHECK(id1 != id2);
  CHECK_EQ_INT(tide_store_component_get(s, app, nul_path,
                                        sizeof nul_path - 1, &got),
               0);
  CHECK_EQ_INT(got.id, id2);
  CHECK(blob_equal(got.path, got.path_len, nul_path, sizeof nul_path - 1));
  CHECK(blob_equal(got.source_key, got.source_key_len, nul_key,
                   sizeof nul_key - 1));
  CHECK_EQ_INT(got.path[got.path_len], '\0');
  CHECK_EQ_INT(tide_store_component_get(s, app, LIT("/f/a"), &got), 0);
  CHECK_EQ_INT(got.id, id1);
  CHECK_EQ_INT(got.path_len, 4);
  CHECK(got.source_key == NULL && got.source_key_len == 0);
  /* In bytewise order, NUL bytes and all. */
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_component_each(s, app, walk_component_bytes, &w),
               0);
  CHECK_EQ_INT(w.count, 2);
  CHECK(blob_equal(w.bytes[0], w.lens[0], "/f/a", 4));
  CHECK(blob_equal(w.bytes[1], w.lens[1], nul_path, sizeof nul_path - 1));
  /* Source items. */
  memset(&item, 0, sizeof item);
  item.app_id = app;
  SET_STR(item.source, "json.lines:items.jsonl");
  SET_STR(item.key, "a");
  CHECK_EQ_INT(tide_store_source_put(s, &item), 0);
  item.key = nul_key;
  item.key_len = sizeof nul_key - 1;
  item.size = 7;
  CHECK_EQ_INT(tide_store_source_put(s, &item), 0);
  CHECK_EQ_INT(tide_store_source_get(s, app, LIT("json.lines:items.jsonl"),
                                     nul_key, sizeof nul_key - 1,
                                     &got_item),
               0);
  CHECK_EQ_INT(got_item.size, 7);
  CHECK(blob_equal(got_item.key, got_item.key_len, nul_key,
                   sizeof nul_key - 1));
  CHECK_EQ_INT(tide_store_source_get(s, app, LIT("json.lines:items.jsonl"),
                                     LIT("a"), &got_item),
               0);
  CHECK_EQ_INT(got_item.size, 0);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_source_each(s, app, LIT("json.lines:items.jsonl"),
                                      walk_source_bytes, &w),
               0);
  CHECK_EQ_INT(w.count, 2);
  CHECK(blob_equal(w.bytes[1], w.lens[1], nul_key, sizeof nul_key - 1));
  CHECK_EQ_INT(tide_store_source_delete(s, app, LIT("json.lines:items.jsonl"),
                                        nul_key, sizeof nul_key - 1),
               0);
  CHECK_EQ_INT(tide_store_source_get(s, app, LIT("json.lines:items.jsonl"),
                                     LIT("a"), &got_item),
               0);
  /* Container identities (a default identity is a raw fingerprint). */
  CHECK_EQ_INT(tide_store_container_get_or_create(s, app, LIT("kv"), LIT("a"),
                                                  &c1, &created),
               0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, app, LIT("kv"),
                                                  nul_key,
                                                  sizeof nul_key - 1, &c2,
                                                  &created),
               0);
  CHECK_EQ_INT(created, 1);
  CHECK(c1 != c2);
  CHECK_EQ_INT(tide_store_container_get(s, c2, &container), 0);
  CHECK(blob_equal(container.identity, container.identity_len, nul_key,
                   sizeof nul_key - 1));
  tide_store_close(s);
  CHECK_EQ_INT(sql_int(t.path, pg_base()
                                 ? "SELECT count(*) FROM components WHERE"
                                   " path = '\\x2f662f610062'::bytea"
                                 : "SELECT count(*) FROM components"
                                   " WHERE path = '/f/a' || char(0, 98)"),
               1);
  tmp_close(&t);
}

/* A statement that fails: SQLite fails it alone and the batch goes on;
** PostgreSQL's transaction is aborted, so the batch is rolled back and the
** message says so. Either way the store goes on. */
static void test_failed_statement(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreComponent c;
  char msg[768];
  int64_t id = 0;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  memset(&c, 0, sizeof c);
  c.app_id = 1;
  SET_STR(c.path, "/good/1");
  SET_STR(c.fn_name, "f");
  CHECK_EQ_INT(tide_store_component_put(s, &c, &id), 0);
  SET_STR(c.path, "/bad");
  SET_STR(c.fn_name, NULL);
  CHECK_EQ_INT(tide_store_component_put(s, &c, &id), TIDE_ESTORE);
  if (pg_base()) {
    snprintf(msg, sizeof msg,
             "%s: cannot record a component: null value in column "
             "\"fn_name\" of relation \"components\" violates not-null "
             "constraint (the uncommitted batch was rolled back)", t.path);
    CHECK_STR_EQ(tide_store_errmsg(s), msg);
    CHECK_EQ_INT(tide_store_batch_writes(s), 0);
  } else {
    snprintf(msg, sizeof msg,
             "%s: cannot record a component: NOT NULL constraint failed: "
             "components.fn_name", t.path);
    CHECK_STR_EQ(tide_store_errmsg(s), msg);
    /* The batch survives the failed statement. */
    CHECK_EQ_INT(tide_store_batch_writes(s), 1);
  }
  SET_STR(c.path, "/good/2");
  SET_STR(c.fn_name, "f");
  CHECK_EQ_INT(tide_store_component_put(s, &c, &id), 0);
  if (!pg_base()) CHECK_EQ_INT(id, 2);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  tide_store_close(s);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM components"),
               pg_base() ? 1 : 2);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM components"
                               " WHERE path = '/good/2'"), 1);
  CHECK_EQ_INT(sql_int(t.path, pg_base()
                                 ? "SELECT count(*) FROM components"
                                   " WHERE path = '/bad'::bytea"
                                 : "SELECT count(*) FROM components"
                                   " WHERE path = '/bad'"),
               0);
  if (!pg_base())
    CHECK_STR_EQ(sql_text(t.path, "PRAGMA integrity_check", msg,
                          sizeof msg), "ok");
  tmp_close(&t);
}

/* ---- Reads beside a batch ---- */

/* Whether another connection can take the database's write lock now. */
static int writable_by_another(const char *path) {
  sqlite3 *db;
  int rc;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    return -1;
  }
  rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc == SQLITE_OK) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(db);
  return rc == SQLITE_OK;
}

/* A read outside a batch opens one, as a write would (one snapshot and
** one set of locks for the reads that follow), only while the store holds
** its writer lock; the batch ends at a flush, and nothing opens one once
** the store has let its lock go. */
static void test_read_opens_batch(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreApp a;
  int64_t app;
  int changed = 0;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("a"), &app, NULL), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(writable_by_another(t.path), 1);
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("a"), &a), 0);
  CHECK_EQ_INT(a.id, app);
  CHECK_EQ_INT(writable_by_another(t.path), 0);
  CHECK_EQ_INT(tide_store_batch_writes(s), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(writable_by_another(t.path), 1);
  /* Unlocked, a read is a read only. */
  CHECK_EQ_INT(tide_store_unlock(s), 0);
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("a"), &a), 0);
  CHECK_EQ_INT(writable_by_another(t.path), 1);
  CHECK_EQ_INT(tide_store_relock(s, &changed), 0);
  CHECK_EQ_INT(changed, 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  /* A read-only store never opens one. */
  s = open_ok(t.path, TIDE_STORE_READ);
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("a"), &a), 0);
  CHECK_EQ_INT(writable_by_another(t.path), 1);
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

/* Sends the store's batch while another connection holds SQLite's write
** lock, so that the batch stays in flight until unlock_and_wait. */
static sqlite3 *send_while_locked(tide_Store *s, const char *path) {
  sqlite3 *other = NULL;
  CHECK_EQ_INT(sqlite3_open_v2(path, &other, SQLITE_OPEN_READWRITE, NULL),
               SQLITE_OK);
  CHECK_EQ_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL),
               SQLITE_OK);
  CHECK_EQ_INT(tide_store_flush_send(s), 0);
  return other;
}

static void unlock_and_wait(tide_Store *s, sqlite3 *other) {
  sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(other);
  CHECK_EQ_INT(tide_store_flush_wait(s), 0);
}

/* A read of the committed state does not wait for a batch in flight: it
** answers from what was committed before it (here the batch cannot
** commit, another connection holding SQLite's write lock, and would fail
** had the read waited out the lock's timeout); once the batch is waited
** for, it answers from what the batch wrote. */
static void test_committed_reads(void) {
  static const uint8_t fp[TIDE_FP_SIZE] = {7};
  Tmp t;
  tide_Store *s;
  tide_StoreTarget ts, got;
  TextWalk w;
  sqlite3 *other;
  int64_t app, c;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("a"), &app, NULL), 0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, app, LIT("t"),
                                                  LIT("one"), &c, NULL), 0);
  memset(&ts, 0, sizeof ts);
  ts.container_id = c;
  ts.key_len = 1;
  ts.owner_id = 5;
  ts.value_fp = fp;
  ts.key = "a";
  CHECK_EQ_INT(tide_store_target_put(s, &ts), 0);
  ts.key = "b";
  CHECK_EQ_INT(tide_store_target_put(s, &ts), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  /* The batch sent gives "a" to 6 and adds "c", owned by 6. */
  ts.owner_id = 6;
  ts.key = "a";
  CHECK_EQ_INT(tide_store_target_put(s, &ts), 0);
  ts.key = "c";
  CHECK_EQ_INT(tide_store_target_put(s, &ts), 0);
  other = send_while_locked(s, t.path);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_target_each_by_owner_committed(s, 5, walk_target,
                                                         &w), 0);
  CHECK_STR_EQ(w.text, "1:a:5:0 1:b:5:0");
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_target_each_by_owner_committed(s, 6, walk_target,
                                                         &w), 0);
  CHECK_EQ_INT(w.count, 0);
  CHECK_EQ_INT(tide_store_target_get_committed(s, c, "a", 1, &got), 0);
  CHECK_EQ_INT(got.owner_id, 5);
  CHECK(blob_equal(got.key, got.key_len, "a", 1));
  CHECK(fp_equal(got.value_fp, fp));
  CHECK_EQ_INT(tide_store_target_get_committed(s, c, "c", 1, &got),
               TIDE_ENOTFOUND);
  unlock_and_wait(s, other);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_target_each_by_owner_committed(s, 6, walk_target,
                                                         &w), 0);
  CHECK_STR_EQ(w.text, "1:a:6:0 1:c:6:0");
  /* A second batch in flight (the read above opened the batch, which
  ** takes SQLite's write lock: flushed first): the reader's snapshot is a
  ** new one, taken after the first batch committed. */
  CHECK_EQ_INT(tide_store_flush(s), 0);
  ts.owner_id = 7;
  ts.key = "b";
  CHECK_EQ_INT(tide_store_target_put(s, &ts), 0);
  other = send_while_locked(s, t.path);
  CHECK_EQ_INT(tide_store_target_get_committed(s, c, "c", 1, &got), 0);
  CHECK_EQ_INT(got.owner_id, 6);
  CHECK_EQ_INT(tide_store_target_get_committed(s, c, "b", 1, &got), 0);
  CHECK_EQ_INT(got.owner_id, 5);
  unlock_and_wait(s, other);
  CHECK_EQ_INT(tide_store_target_get_committed(s, c, "b", 1, &got), 0);
  CHECK_EQ_INT(got.owner_id, 7);
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

/* ---- Batches that fail ---- */

/* A write's failure is found at the next synchronisation (here the
** commit): the batch is rolled back and the store usable again. */
static void test_failed_batch(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreComponent c;
  tide_StoreApp app;
  int64_t app_id, a = 0, b = 0;
  tmp_init(&t, "unused");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &app_id, NULL),
               0);
  memset(&c, 0, sizeof c);
  c.app_id = app_id;
  SET_STR(c.fn_name, "f");
  SET_STR(c.path, "/f/a");
  CHECK_EQ_INT(tide_store_component_put(s, &c, &a), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  /* In one batch: an app, then a component that claims a's id for
  ** another path. */
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("lost"), &b, NULL), 0);
  c.id = a;
  SET_STR(c.path, "/f/b");
  CHECK_EQ_INT(tide_store_component_put(s, &c, &b), 0);
  CHECK_EQ_INT(tide_store_batches_lost(s), 0);
  CHECK_EQ_INT(tide_store_flush(s), TIDE_ESTORE);
  CHECK(strstr(tide_store_errmsg(s), ": cannot record a component: ") !=
        NULL);
  CHECK(strstr(tide_store_errmsg(s), "(the uncommitted batch was rolled "
               "back)") != NULL);
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("lost"), &app), TIDE_ENOTFOUND);
  /* Counted, with its failure kept: a worker whose batch is lost leaves
  ** its update, and one process records nothing more in its run. */
  CHECK_EQ_INT(tide_store_batches_lost(s), 1);
  CHECK(tide_store_lost_message(s) != NULL &&
        strstr(tide_store_lost_message(s),
               ": cannot record a component: ") != NULL);
  if (pg_base())
    CHECK(strstr(tide_store_lost_message(s), "rolled back") == NULL);
  /* The store goes on; a rollback of the caller's own is not a loss. */
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("kept"), &b, NULL), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("kept"), &app), 0);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("dropped"), &b, NULL), 0);
  CHECK_EQ_INT(tide_store_rollback(s), 0);
  CHECK_EQ_INT(tide_store_batches_lost(s), 1);
  /* Another failure after it, in no batch, keeps the lost one's. */
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("dropped"), &app),
               TIDE_ENOTFOUND);
  CHECK(strstr(tide_store_lost_message(s), "cannot record") != NULL);
  tide_store_close(s);
  tmp_close(&t);
}

/* A batch sent with tide_store_flush_send that fails: the next call on
** the store fails with it, tide_store_flush_wait tells it, and the store
** goes on. */
static void test_failed_send(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreComponent c;
  tide_StoreApp app;
  int64_t app_id, a = 0, b = 0;
  int round;
  tmp_init(&t, "unused");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &app_id, NULL),
               0);
  memset(&c, 0, sizeof c);
  c.app_id = app_id;
  SET_STR(c.fn_name, "f");
  SET_STR(c.path, "/f/a");
  CHECK_EQ_INT(tide_store_component_put(s, &c, &a), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  /* Round 0 waits at once; round 1 calls the store first. */
  for (round = 0; round < 2; round++) {
    CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("lost"), &b, NULL), 0);
    c.id = a;
    SET_STR(c.path, "/f/b");
    CHECK_EQ_INT(tide_store_component_put(s, &c, &b), 0);
    CHECK_EQ_INT(tide_store_flush_send(s), 0);
    if (round == 1) {
      CHECK_EQ_INT(tide_store_app_lookup(s, LIT("docs"), &app), TIDE_ESTORE);
      CHECK(strstr(tide_store_errmsg(s), "(the uncommitted batch was "
                   "rolled back)") != NULL);
    }
    CHECK_EQ_INT(tide_store_flush_wait(s), TIDE_ESTORE);
    CHECK(strstr(tide_store_errmsg(s), ": cannot record a component: ") !=
          NULL);
    CHECK(strstr(tide_store_errmsg(s), "(the uncommitted batch was rolled "
                 "back)") != NULL);
    CHECK_EQ_INT(tide_store_app_lookup(s, LIT("lost"), &app),
                 TIDE_ENOTFOUND);
    /* The store goes on. */
    CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("kept"), &b, NULL), 0);
    CHECK_EQ_INT(tide_store_flush_send(s), 0);
    CHECK_EQ_INT(tide_store_flush_wait(s), 0);
    CHECK_EQ_INT(tide_store_app_lookup(s, LIT("kept"), &app), 0);
  }
  tide_store_close(s);
  tmp_close(&t);
}

/* A commit sent on a connection the server has closed: the batch is
** lost, and the store says so when it sends or when it is waited for. */
static void test_pg_lost_send(void) {
  Tmp t;
  tide_Store *s, *r;
  char sql[192];
  int rc;
  tmp_init(&t, "unused");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  put_items(s, 0, 3);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  put_items(s, 3, 3);
  snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(pid) FROM "
           "pg_stat_activity WHERE application_name = 'tide pid %ld'",
           (long)getpid());
  CHECK_EQ_INT(pg_exec(NULL, sql), 0);
  rc = tide_store_flush_send(s);
  if (rc == 0) rc = tide_store_flush_wait(s);
  CHECK_EQ_INT(rc, TIDE_ESTORE);
  /* The server's last word, when it had time to say it. */
  CHECK(strstr(tide_store_errmsg(s), "terminating connection due to "
               "administrator command") != NULL ||
        strstr(tide_store_errmsg(s), "lost its connection") != NULL);
  CHECK_EQ_INT(tide_store_flush_wait(s), TIDE_ESTORE);
  tide_store_close(s);
  r = open_ok(t.path, TIDE_STORE_READ);
  CHECK_EQ_INT(visible(r), 3);
  tide_store_close(r);
  tmp_close(&t);
}

/* Puts that give what they know of the id are not waited for, and come
** back with the same ids as puts that wait. */
static void test_known_ids(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreComponent c, got;
  int64_t app_id, a = 0, b = 0, again = 0;
  tmp_init(&t, "unused");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &app_id, NULL),
               0);
  memset(&c, 0, sizeof c);
  c.app_id = app_id;
  SET_STR(c.fn_name, "f");
  c.id = TIDE_STORE_NEW_ID;
  SET_STR(c.path, "/f/a");
  CHECK_EQ_INT(tide_store_component_put(s, &c, &a), 0);
  CHECK_STR_EQ(tide_store_errmsg(s), "");
  SET_STR(c.path, "/f/b");
  CHECK_EQ_INT(tide_store_component_put(s, &c, &b), 0);
  CHECK(a > 0 && b > 0 && a != b);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_component_get(s, app_id, LIT("/f/b"), &got), 0);
  CHECK_EQ_INT(got.id, b);
  /* An update by the id read, and one that waits: the same row. */
  c.id = b;
  c.status = 2;
  CHECK_EQ_INT(tide_store_component_put(s, &c, &again), 0);
  CHECK_EQ_INT(again, b);
  c.id = 0;
  CHECK_EQ_INT(tide_store_component_put(s, &c, &again), 0);
  CHECK_EQ_INT(again, b);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM components"), 2);
  /* A component's state read while its new row waits in the batch is
  ** that row's; another's, read beside it, its own. */
  {
    static const uint8_t st1[] = { 0x81, 0x01 }, st2[] = { 0x81, 0x02 };
    const void *state;
    size_t len;
    c.id = b;
    c.state = st1;
    c.state_len = sizeof st1;
    CHECK_EQ_INT(tide_store_component_put(s, &c, &again), 0);
    CHECK_EQ_INT(tide_store_component_state(s, a, &state, &len), 0);
    CHECK(state == NULL && len == 0);
    CHECK_EQ_INT(tide_store_component_state(s, b, &state, &len), 0);
    CHECK(blob_equal(state, len, st1, sizeof st1));
    c.state = st2;
    CHECK_EQ_INT(tide_store_component_put(s, &c, &again), 0);
    CHECK_EQ_INT(tide_store_component_state(s, b, &state, &len), 0);
    CHECK(blob_equal(state, len, st2, sizeof st2));
    CHECK_EQ_INT(tide_store_flush(s), 0);
    c.state = NULL;
    c.state_len = 0;
  }
  /* A new component whose path is there already fails its batch. */
  c.id = TIDE_STORE_NEW_ID;
  CHECK_EQ_INT(tide_store_component_put(s, &c, &again), 0);
  CHECK_EQ_INT(tide_store_flush(s), TIDE_ESTORE);
  CHECK(strstr(tide_store_errmsg(s), "recorded under another id") != NULL);
  tide_store_close(s);
  tmp_close(&t);
}

static const CheckTest tests[] = {
  { "group commit", test_group_commit },
  { "commits sent, waited for later", test_flush_send },
  { "app delete", test_app_delete },
  { "the memo lock held alone", test_memo_lock_held },
  { "text with NUL bytes", test_nul_bytes },
  { "failed statement", test_failed_statement },
  { "a batch that fails is rolled back", test_failed_batch },
  { "a batch sent that fails", test_failed_send },
  { "ids not waited for", test_known_ids },
  { NULL, NULL },
};

/* On files only. */
static const CheckTest file_tests[] = {
  { "a read opens a batch while the store holds its lock",
    test_read_opens_batch },
  { "reads of the committed state beside a batch in flight",
    test_committed_reads },
  { NULL, NULL },
};

/* On PostgreSQL only. */
static const CheckTest pg_tests[] = {
  { "a batch sent on a lost connection", test_pg_lost_send },
  { NULL, NULL },
};

int main(void) {
  return store_suite("store batches", tests, file_tests, pg_tests);
}
