/*
** Tests of the state store's rows one kind at a time: apps, components
** (one by one, in bulk, under paths), memo entries, containers, target
** states, source items and runs, on files or on PostgreSQL (see
** store_fixture.h).
*/

#include "store_fixture.h"

/* ---- Operations ---- */

typedef struct {
  int count;
  int stop_after;
  char names[8][16];
  int64_t ids[8];
} Seen;

static int see_app(void *arg, const tide_StoreApp *app) {
  Seen *seen = arg;
  if (seen->count < 8) {
    snprintf(seen->names[seen->count], 16, "%s", app->name);
    seen->ids[seen->count] = app->id;
  }
  seen->count++;
  return 0;
}

static void test_apps(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreApp app;
  Seen seen;
  int64_t a = 0, b = 0, c = 0, before = 0;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  before = (int64_t)time(NULL) * 1000000000;
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("beta"), &b, NULL), 0);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("alpha"), &a, NULL), 0);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("gamma"), &c, NULL), 0);
  CHECK_EQ_INT(b, 1);
  CHECK_EQ_INT(a, 2);
  CHECK_EQ_INT(c, 3);
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("alpha"), &app), 0);
  CHECK_EQ_INT(app.id, 2);
  CHECK_STR_EQ(app.name, "alpha");
  CHECK(app.created_ns >= before);
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("delta"), &app), TIDE_ENOTFOUND);
  memset(&seen, 0, sizeof seen);
  CHECK_EQ_INT(tide_store_app_each(s, see_app, &seen), 0);
  CHECK_EQ_INT(seen.count, 3);
  CHECK_STR_EQ(seen.names[0], "alpha");
  CHECK_STR_EQ(seen.names[1], "beta");
  CHECK_STR_EQ(seen.names[2], "gamma");
  CHECK_EQ_INT(seen.ids[0], 2);
  CHECK_EQ_INT(tide_store_app_delete(s, b), 0);
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("beta"), &app), TIDE_ENOTFOUND);
  memset(&seen, 0, sizeof seen);
  CHECK_EQ_INT(tide_store_app_each(s, see_app, &seen), 0);
  CHECK_EQ_INT(seen.count, 2);
  tide_store_close(s);
  tmp_close(&t);
}

static void test_components(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreComponent c, got;
  uint8_t lfp[TIDE_FP_SIZE], ifp[TIDE_FP_SIZE];
  static const uint8_t keys[] = { 0x82, 0x41, 0x01, 0x41, 0x02 };
  int64_t app = 0, id = 0, id2 = 0, child = 0;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &app, NULL), 0);
  fp_fill(lfp, 1);
  fp_fill(ifp, 2);
  memset(&c, 0, sizeof c);
  c.app_id = app;
  SET_STR(c.path, "/main");
  SET_STR(c.fn_name, "main");
  CHECK_EQ_INT(tide_store_component_put(s, &c, &id), 0);
  SET_STR(c.path, "/main/process_file/a.md");
  c.parent_id = id;
  SET_STR(c.fn_name, "process_file");
  c.logic_fp = lfp;
  c.input_fp = ifp;
  SET_STR(c.source_key, "a.md");
  c.state = keys;
  c.state_len = sizeof keys;
  c.status = 3;
  SET_STR(c.error, "boom");
  CHECK_EQ_INT(tide_store_component_put(s, &c, &child), 0);
  CHECK_EQ_INT(id, 1);
  CHECK_EQ_INT(child, 2);
  CHECK_EQ_INT(tide_store_component_get(s, app, c.path, c.path_len, &got),
               0);
  CHECK_EQ_INT(got.id, 2);
  CHECK_EQ_INT(got.app_id, app);
  CHECK_STR_EQ(got.path, "/main/process_file/a.md");
  CHECK_EQ_INT(got.parent_id, 1);
  CHECK_STR_EQ(got.fn_name, "process_file");
  CHECK(fp_equal(got.logic_fp, lfp));
  CHECK(fp_equal(got.input_fp, ifp));
  CHECK_STR_EQ(got.source_key, "a.md");
  CHECK(blob_equal(got.state, got.state_len, keys, sizeof keys));
  CHECK_EQ_INT(got.status, 3);
  CHECK_STR_EQ(got.error, "boom");
  CHECK(got.updated_ns > 0);
  /* Its state alone, by row id: NULL for the root, which has none. */
  {
    const void *state;
    size_t len;
    CHECK_EQ_INT(tide_store_component_state(s, child, &state, &len), 0);
    CHECK(blob_equal(state, len, keys, sizeof keys));
    CHECK_EQ_INT(tide_store_component_state(s, id, &state, &len), 0);
    CHECK(state == NULL && len == 0);
    CHECK_EQ_INT(tide_store_component_state(s, 999, &state, &len),
                 TIDE_ENOTFOUND);
  }
  /* The root has NULLs and no parent. */
  CHECK_EQ_INT(tide_store_component_get(s, app, LIT("/main"), &got), 0);
  CHECK_EQ_INT(got.parent_id, 0);
  CHECK(got.logic_fp == NULL && got.input_fp == NULL);
  CHECK(got.source_key == NULL && got.error == NULL);
  CHECK(got.state == NULL && got.state_len == 0);
  /* An update keeps the id; an empty blob stays empty, not NULL. */
  c.status = 0;
  SET_STR(c.error, NULL);
  c.input_fp = lfp;
  c.state_len = 0;
  CHECK_EQ_INT(tide_store_component_put(s, &c, &id2), 0);
  CHECK_EQ_INT(id2, 2);
  {
    const char *path;
    size_t len;
    CHECK_EQ_INT(tide_store_component_path(s, id2, &path, &len), 0);
    CHECK(len == c.path_len && memcmp(path, c.path, len) == 0);
    CHECK_EQ_INT(tide_store_component_path(s, 999, &path, &len),
                 TIDE_ENOTFOUND);
  }
  CHECK_EQ_INT(tide_store_component_get(s, app, c.path, c.path_len, &got),
               0);
  CHECK_EQ_INT(got.status, 0);
  CHECK(got.error == NULL);
  CHECK(fp_equal(got.input_fp, lfp));
  CHECK(got.state != NULL);
  CHECK_EQ_INT(got.state_len, 0);
  /* Another app's component at the same path is another row. */
  c.app_id = app + 1;
  CHECK_EQ_INT(tide_store_component_put(s, &c, &id2), 0);
  /* SQLite's ids are dense; a sequence's go up, with gaps. */
  if (pg_base())
    CHECK(id2 > child);
  else
    CHECK_EQ_INT(id2, 3);
  CHECK_EQ_INT(tide_store_component_delete(s, child), 0);
  CHECK_EQ_INT(tide_store_component_get(s, app, c.path, c.path_len, &got),
               TIDE_ENOTFOUND);
  CHECK_EQ_INT(tide_store_component_get(s, app + 1, c.path, c.path_len,
                                        &got),
               0);
  CHECK_EQ_INT(tide_store_component_delete(s, child), 0);
  /* Many at once: the root and the other app's, with one gone already;
  ** none is no matter. */
  {
    int64_t ids[3];
    ids[0] = id;
    ids[1] = child;
    ids[2] = id2;
    CHECK_EQ_INT(tide_store_components_delete(s, ids, 3), 0);
    CHECK_EQ_INT(tide_store_components_delete(s, ids, 0), 0);
    CHECK_EQ_INT(tide_store_flush(s), 0);
    CHECK_EQ_INT(tide_store_component_get(s, app, LIT("/main"), &got),
                 TIDE_ENOTFOUND);
    CHECK_EQ_INT(tide_store_component_get(s, app + 1, c.path, c.path_len,
                                          &got),
                 TIDE_ENOTFOUND);
  }
  tide_store_close(s);
  tmp_close(&t);
}

typedef struct {
  tide_Store *s;
  int count;
  int stop_after;
  int ordered;
  int fields_ok;
  int nested_rc;
  char last[64];
} ComponentWalk;

static int walk_component(void *arg, const tide_StoreComponent *c) {
  ComponentWalk *w = arg;
  char want[64];
  uint8_t fp[TIDE_FP_SIZE];
  int i;
  if (w->count > 0 && strcmp(w->last, c->path) >= 0) w->ordered = 0;
  snprintf(w->last, sizeof w->last, "%s", c->path);
  /* Paths are /f/NNNN with status NNNN and fn_name "f". */
  i = atoi(c->path + 3);
  snprintf(want, sizeof want, "/f/%04d", i);
  fp_fill(fp, i);
  if (strcmp(want, c->path) != 0 || c->status != i ||
      !str_equal(c->fn_name, "f") || !fp_equal(c->input_fp, fp))
    w->fields_ok = 0;
  w->count++;
  if (w->count == 1 && w->s)
    w->nested_rc = tide_store_component_each(w->s, 1, walk_component, w);
  return w->stop_after && w->count == w->stop_after ? 1 : 0;
}

static void test_component_each_bulk(void) {
  Tmp t;
  tide_Store *s, *r;
  tide_StoreComponent c;
  ComponentWalk w;
  uint8_t fp[TIDE_FP_SIZE];
  char path[32];
  int64_t app = 0, other = 0;
  int i;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &app, NULL), 0);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("other"), &other, NULL), 0);
  memset(&c, 0, sizeof c);
  SET_STR(c.fn_name, "f");
  c.input_fp = fp;
  /* Inserted in a scrambled order, 1000 for the app, 10 for the other. */
  for (i = 0; i < 1000; i++) {
    int n = (i * 7919) % 1000;
    snprintf(path, sizeof path, "/f/%04d", n);
    fp_fill(fp, n);
    c.app_id = app;
    SET_STR(c.path, path);
    c.status = n;
    CHECK_EQ_INT(tide_store_component_put(s, &c, NULL), 0);
    if (i < 10) {
      c.app_id = other;
      CHECK_EQ_INT(tide_store_component_put(s, &c, NULL), 0);
    }
  }
  CHECK_EQ_INT(tide_store_flush(s), 0);
  r = open_ok(t.path, TIDE_STORE_READ);
  memset(&w, 0, sizeof w);
  w.ordered = w.fields_ok = 1;
  CHECK_EQ_INT(tide_store_component_each(r, app, walk_component, &w), 0);
  CHECK_EQ_INT(w.count, 1000);
  CHECK(w.ordered);
  CHECK(w.fields_ok);
  CHECK_STR_EQ(w.last, "/f/0999");
  memset(&w, 0, sizeof w);
  w.ordered = w.fields_ok = 1;
  CHECK_EQ_INT(tide_store_component_each(r, other, walk_component, &w), 0);
  CHECK_EQ_INT(w.count, 10);
  /* A callback stops the walk by returning non-zero; starting the same
  ** walk again from inside the callback is refused. */
  memset(&w, 0, sizeof w);
  w.s = r;
  w.stop_after = 5;
  CHECK_EQ_INT(tide_store_component_each(r, app, walk_component, &w), 1);
  CHECK_EQ_INT(w.count, 5);
  CHECK_EQ_INT(w.nested_rc, TIDE_EINVAL);
  CHECK_STR_CONTAINS(tide_store_errmsg(r), "nested use");
  /* After the early stop the statement is usable again. */
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_component_each(r, app, walk_component, &w), 0);
  CHECK_EQ_INT(w.count, 1000);
  tide_store_close(r);
  tide_store_close(s);
  tmp_close(&t);
}

/* The paths a walk under paths met, as a string: each path (a NUL shown
** as "~"), sorted, then " " after each. */
typedef struct {
  int count;
  char names[16][16];
} UnderWalk;

static int walk_under(void *arg, const tide_StoreComponent *c) {
  UnderWalk *w = arg;
  size_t i;
  if (w->count < 16 && c->path_len < sizeof w->names[0]) {
    for (i = 0; i < c->path_len; i++)
      w->names[w->count][i] = c->path[i] ? c->path[i] : '~';
    w->names[w->count][c->path_len] = '\0';
    if (c->logic_fp == NULL || c->status != 7 || c->app_id == 0) return 1;
  }
  w->count++;
  return 0;
}

static int name_order(const void *a, const void *b) {
  return strcmp(a, b);
}

static const char *under(tide_Store *s, int64_t app, const char *const *paths,
                         const size_t *lens, size_t n) {
  static char out[256];
  UnderWalk w;
  int i;
  memset(&w, 0, sizeof w);
  out[0] = '\0';
  if (tide_store_component_each_under(s, app, paths, lens, n, walk_under,
                                      &w) != 0)
    return tide_store_errmsg(s);
  qsort(w.names, (size_t)(w.count < 16 ? w.count : 16), sizeof w.names[0],
        name_order);
  for (i = 0; i < w.count && i < 16; i++) {
    strcat(out, w.names[i]);
    strcat(out, " ");
  }
  return out;
}

/* The components at and below given paths, in one call: not a sibling
** that sorts between a path and what is below it ("/a.x", "/a" NUL "x"),
** nor one that only starts the same ("/ab"), nor another app's. */
static void test_component_each_under(void) {
  static const struct { const char *p; size_t len; } all[] = {
    {"/a", 2}, {"/a\0x", 4}, {"/a.x", 4}, {"/a/b", 4}, {"/a/b/c", 6},
    {"/a/\0", 4}, {"/ab", 3}, {"/b/c", 4}, {"/q", 2},
  };
  const char *two[] = { "/a", "/b" }, *nested[] = { "/a", "/a/b" };
  const char *nul[] = { "/a\0x" }, *none[] = { "/zz" };
  size_t two_lens[] = { 2, 2 }, nested_lens[] = { 2, 4 }, nul_lens[] = { 4 };
  size_t none_lens[] = { 3 };
  Tmp t;
  tide_Store *s;
  tide_StoreComponent c;
  uint8_t fp[TIDE_FP_SIZE];
  int64_t app = 0, other = 0;
  size_t i;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &app, NULL), 0);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("other"), &other, NULL), 0);
  fp_fill(fp, 3);
  memset(&c, 0, sizeof c);
  SET_STR(c.fn_name, "f");
  c.logic_fp = fp;
  c.status = 7;
  for (i = 0; i < sizeof all / sizeof all[0]; i++) {
    c.app_id = app;
    c.path = all[i].p;
    c.path_len = all[i].len;
    CHECK_EQ_INT(tide_store_component_put(s, &c, NULL), 0);
  }
  c.app_id = other;
  SET_STR(c.path, "/a/other");
  CHECK_EQ_INT(tide_store_component_put(s, &c, NULL), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_STR_EQ(under(s, app, two, two_lens, 2),
               "/a /a/b /a/b/c /a/~ /b/c ");
  /* A path below another one given comes twice: the caller's to avoid. */
  CHECK_STR_EQ(under(s, app, nested, nested_lens, 2),
               "/a /a/b /a/b /a/b/c /a/b/c /a/~ ");
  CHECK_STR_EQ(under(s, app, nul, nul_lens, 1), "/a~x ");
  CHECK_STR_EQ(under(s, app, none, none_lens, 1), "");
  CHECK_STR_EQ(under(s, app, two, two_lens, 0), "");
  CHECK_STR_EQ(under(s, other, two, two_lens, 1), "/a/other ");
  tide_store_close(s);
  tmp_close(&t);
}

typedef struct {
  int count;
  int bad;
  int seen[64];
} MemoWalk;

static int walk_memo(void *arg, const uint8_t *key, const char *fn_name,
                     size_t fn_name_len) {
  MemoWalk *w = arg;
  uint8_t want[TIDE_FP_SIZE];
  int seed = key ? key[0] : -1; /* fp_fill(key, seed) starts with seed */
  fp_fill(want, seed);
  if (seed < 0 || seed >= 64 || !fp_equal(key, want) ||
      !str_equal(fn_name, seed % 2 ? "odd" : "even") ||
      fn_name_len != strlen(fn_name))
    w->bad++;
  else
    w->seen[seed]++;
  w->count++;
  return 0;
}

static void test_memos(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreMemo m, got;
  MemoWalk w;
  uint8_t key[TIDE_FP_SIZE], other[TIDE_FP_SIZE];
  static const uint8_t value[] = { 0xa1, 0x61, 0x78, 0x01 };
  static const uint8_t deps[] = { 0x80 };
  static const uint8_t targets[] = { 0x81, 0x02 };
  int64_t app = 1;
  int i;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  fp_fill(key, 5);
  memset(&m, 0, sizeof m);
  m.app_id = app;
  m.key = key;
  SET_STR(m.fn_name, "odd");
  m.value = value;
  m.value_len = sizeof value;
  m.deps = deps;
  m.deps_len = sizeof deps;
  m.targets = targets;
  m.targets_len = sizeof targets;
  CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
  CHECK_EQ_INT(tide_store_memo_get(s, app, key, &got), 0);
  CHECK_EQ_INT(got.app_id, 1);
  CHECK(fp_equal(got.key, key));
  CHECK_STR_EQ(got.fn_name, "odd");
  CHECK(blob_equal(got.value, got.value_len, value, sizeof value));
  CHECK(blob_equal(got.deps, got.deps_len, deps, sizeof deps));
  CHECK(blob_equal(got.targets, got.targets_len, targets, sizeof targets));
  CHECK(got.updated_ns > 0);
  /* The same key in another app is another entry. */
  CHECK_EQ_INT(tide_store_memo_get(s, 2, key, &got), TIDE_ENOTFOUND);
  fp_fill(other, 6);
  CHECK_EQ_INT(tide_store_memo_get(s, app, other, &got), TIDE_ENOTFOUND);
  /* Replacing. */
  m.value_len = 2;
  m.deps = NULL;
  m.deps_len = 0;
  CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
  CHECK_EQ_INT(tide_store_memo_get(s, app, key, &got), 0);
  CHECK(blob_equal(got.value, got.value_len, value, 2));
  CHECK(got.deps == NULL && got.deps_len == 0);
  /* Bulk keys. */
  for (i = 0; i < 40; i++) {
    fp_fill(key, i);
    m.key = key;
    SET_STR(m.fn_name, i % 2 ? "odd" : "even");
    CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
  }
  m.app_id = 2;
  CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_memo_each_key(s, app, walk_memo, &w), 0);
  CHECK_EQ_INT(w.count, 40);
  CHECK_EQ_INT(w.bad, 0);
  for (i = 0; i < 40; i++) CHECK_EQ_INT(w.seen[i], 1);
  fp_fill(key, 7);
  CHECK_EQ_INT(tide_store_memo_delete(s, app, key), 0);
  CHECK_EQ_INT(tide_store_memo_get(s, app, key, &got), TIDE_ENOTFOUND);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_memo_each_key(s, app, walk_memo, &w), 0);
  CHECK_EQ_INT(w.count, 39);
  CHECK_EQ_INT(w.seen[7], 0);
  tide_store_close(s);
  tmp_close(&t);
}

static int walk_container(void *arg, const tide_StoreContainer *c) {
  TextWalk *w = arg;
  size_t n = strlen(w->text);
  snprintf(w->text + n, sizeof w->text - n, "%s%lld:%s:%s", n ? " " : "",
           (long long)c->id, c->kind, c->identity);
  w->count++;
  return 0;
}

static void test_containers(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreContainer c, got;
  tide_StoreTarget ts;
  TextWalk w;
  uint8_t fp[TIDE_FP_SIZE];
  static const uint8_t spec[] = { 0xa0 };
  int64_t a = 0, b = 0, again = 0, other = 0;
  int created = -1;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, 1, LIT("sqlite.table"),
                                                  LIT("out.db#chunks"), &a,
                                                  &created),
               0);
  CHECK_EQ_INT(a, 1);
  CHECK_EQ_INT(created, 1);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, 1, LIT("fs.dir"),
                                                  LIT("out/"), &b, NULL),
               0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, 1, LIT("sqlite.table"),
                                                  LIT("out.db#chunks"), &again,
                                                  &created),
               0);
  CHECK_EQ_INT(again, 1);
  CHECK_EQ_INT(created, 0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, 2, LIT("sqlite.table"),
                                                  LIT("out.db#chunks"), &other,
                                                  &created),
               0);
  CHECK_EQ_INT(other, 3);
  CHECK_EQ_INT(created, 1);
  CHECK_EQ_INT(tide_store_container_get(s, a, &got), 0);
  CHECK_EQ_INT(got.app_id, 1);
  CHECK_STR_EQ(got.kind, "sqlite.table");
  CHECK_STR_EQ(got.identity, "out.db#chunks");
  CHECK(got.spec == NULL && got.schema_fp == NULL);
  CHECK_EQ_INT(got.owner_id, 0);
  CHECK_EQ_INT(got.state, 0);
  fp_fill(fp, 9);
  memset(&c, 0, sizeof c);
  c.id = a;
  c.spec = spec;
  c.spec_len = sizeof spec;
  c.schema_fp = fp;
  c.owner_id = 42;
  c.state = 2;
  CHECK_EQ_INT(tide_store_container_update(s, &c), 0);
  CHECK_EQ_INT(tide_store_container_get(s, a, &got), 0);
  CHECK(blob_equal(got.spec, got.spec_len, spec, sizeof spec));
  CHECK(fp_equal(got.schema_fp, fp));
  CHECK_EQ_INT(got.owner_id, 42);
  CHECK_EQ_INT(got.state, 2);
  c.id = 99;
  CHECK_EQ_INT(tide_store_container_update(s, &c), TIDE_ENOTFOUND);
  CHECK_EQ_INT(tide_store_container_get(s, 99, &got), TIDE_ENOTFOUND);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_container_each(s, 1, walk_container, &w), 0);
  CHECK_STR_EQ(w.text, "2:fs.dir:out/ 1:sqlite.table:out.db#chunks");
  /* Deleting a container deletes its target states, and only those. */
  memset(&ts, 0, sizeof ts);
  ts.container_id = a;
  ts.key = "k1";
  ts.key_len = 2;
  ts.owner_id = 5;
  CHECK_EQ_INT(tide_store_target_put(s, &ts), 0);
  ts.container_id = b;
  CHECK_EQ_INT(tide_store_target_put(s, &ts), 0);
  CHECK_EQ_INT(tide_store_container_delete(s, a), 0);
  CHECK_EQ_INT(tide_store_container_get(s, a, &got), TIDE_ENOTFOUND);
  CHECK_EQ_INT(tide_store_target_get(s, a, "k1", 2, &ts), TIDE_ENOTFOUND);
  CHECK_EQ_INT(tide_store_target_get(s, b, "k1", 2, &ts), 0);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_container_each(s, 1, walk_container, &w), 0);
  CHECK_STR_EQ(w.text, "2:fs.dir:out/");
  tide_store_close(s);
  tmp_close(&t);
}

static void test_targets(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreTarget ts, got;
  TextWalk w;
  uint8_t fp[TIDE_FP_SIZE];
  int64_t app = 0, other = 0, c1 = 0, c2 = 0, c3 = 0;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &app, NULL), 0);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("other"), &other, NULL), 0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, app, LIT("t"),
                                                  LIT("one"), &c1, NULL),
               0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, app, LIT("t"),
                                                  LIT("two"), &c2, NULL),
               0);
  CHECK_EQ_INT(tide_store_container_get_or_create(s, other, LIT("t"),
                                                  LIT("one"), &c3, NULL),
               0);
  fp_fill(fp, 3);
  memset(&ts, 0, sizeof ts);
  ts.container_id = c1;
  ts.key = "b";
  ts.key_len = 1;
  ts.owner_id = 10;
  ts.value_fp = fp;
  ts.pending = TIDE_TARGET_UPSERT_PENDING;
  CHECK_EQ_INT(tide_store_target_put(s, &ts), 0);
  CHECK_EQ_INT(tide_store_target_get(s, c1, "b", 1, &got), 0);
  CHECK_EQ_INT(got.container_id, c1);
  CHECK(blob_equal(got.key, got.key_len, "b", 1));
  CHECK_EQ_INT(got.owner_id, 10);
  CHECK(fp_equal(got.value_fp, fp));
  CHECK_EQ_INT(got.pending, TIDE_TARGET_UPSERT_PENDING);
  CHECK_EQ_INT(got.written_ns, 0);
  ts.key = "a";
  ts.pending = TIDE_TARGET_APPLIED;
  CHECK_EQ_INT(tide_store_target_put(s, &ts), 0);
  ts.container_id = c2;
  ts.owner_id = 11;
  ts.pending = TIDE_TARGET_DELETE_PENDING;
  CHECK_EQ_INT(tide_store_target_put(s, &ts), 0);
  ts.container_id = c3;
  ts.pending = TIDE_TARGET_UPSERT_PENDING;
  CHECK_EQ_INT(tide_store_target_put(s, &ts), 0);
  /* Pending rows of the app only, by container then key. */
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_target_each_pending(s, app, walk_target, &w), 0);
  CHECK_STR_EQ(w.text, "1:b:10:1 2:a:11:2");
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_target_each_by_owner(s, 10, walk_target, &w), 0);
  CHECK_STR_EQ(w.text, "1:a:10:0 1:b:10:1");
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_target_each_by_owner(s, 11, walk_target, &w), 0);
  CHECK_STR_EQ(w.text, "2:a:11:2 3:a:11:1");
  /* With no batch in flight, the committed state's reads see what the
  ** store holds, queued writes included. */
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_target_each_by_owner_committed(s, 11, walk_target,
                                                         &w), 0);
  CHECK_STR_EQ(w.text, "2:a:11:2 3:a:11:1");
  CHECK_EQ_INT(tide_store_target_get_committed(s, c1, "b", 1, &got), 0);
  CHECK_EQ_INT(got.owner_id, 10);
  CHECK_EQ_INT(got.pending, TIDE_TARGET_UPSERT_PENDING);
  CHECK_EQ_INT(tide_store_target_get_committed(s, c1, "z", 1, &got),
               TIDE_ENOTFOUND);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_target_each_by_container(s, c1, walk_target, &w),
               0);
  CHECK_STR_EQ(w.text, "1:a:10:0 1:b:10:1");
  /* Applying: an upsert becomes applied, a delete goes away. */
  CHECK_EQ_INT(tide_store_target_mark_applied(s, c1, "b", 1), 0);
  CHECK_EQ_INT(tide_store_target_get(s, c1, "b", 1, &got), 0);
  CHECK_EQ_INT(got.pending, TIDE_TARGET_APPLIED);
  CHECK(got.written_ns > 0);
  CHECK_EQ_INT(tide_store_target_mark_applied(s, c2, "a", 1), 0);
  CHECK_EQ_INT(tide_store_target_get(s, c2, "a", 1, &got), TIDE_ENOTFOUND);
  CHECK_EQ_INT(tide_store_target_mark_applied(s, c2, "zz", 2), 0);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_target_each_pending(s, app, walk_target, &w), 0);
  CHECK_EQ_INT(w.count, 0);
  /* A put of an applied row makes it pending again, keeping written_ns. */
  ts.container_id = c1;
  ts.key = "b";
  ts.owner_id = 12;
  ts.value_fp = NULL;
  ts.pending = TIDE_TARGET_UPSERT_PENDING;
  CHECK_EQ_INT(tide_store_target_put(s, &ts), 0);
  CHECK_EQ_INT(tide_store_target_get(s, c1, "b", 1, &got), 0);
  CHECK_EQ_INT(got.owner_id, 12);
  CHECK(got.value_fp == NULL);
  CHECK_EQ_INT(got.pending, TIDE_TARGET_UPSERT_PENDING);
  CHECK(got.written_ns > 0);
  CHECK_EQ_INT(tide_store_target_delete(s, c1, "b", 1), 0);
  CHECK_EQ_INT(tide_store_target_get(s, c1, "b", 1, &got), TIDE_ENOTFOUND);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_target_each_by_container(s, c1, walk_target, &w),
               0);
  CHECK_STR_EQ(w.text, "1:a:10:0");
  tide_store_close(s);
  tmp_close(&t);
}

static int walk_source(void *arg, const tide_StoreSourceItem *item) {
  TextWalk *w = arg;
  size_t n = strlen(w->text);
  snprintf(w->text + n, sizeof w->text - n, "%s%s:%lld:%lld:%lld:%d",
           n ? " " : "", item->key, (long long)item->size,
           (long long)item->mtime_ns, (long long)item->inode,
           item->content_fp ? item->content_fp[0] : -1);
  w->count++;
  return 0;
}

static void test_sources(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreSourceItem item, got;
  TextWalk w;
  uint8_t fp[TIDE_FP_SIZE];
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  fp_fill(fp, 1);
  memset(&item, 0, sizeof item);
  item.app_id = 1;
  SET_STR(item.source, "docs");
  SET_STR(item.key, "b.md");
  item.size = 100;
  item.mtime_ns = 1700000000123456789;
  item.inode = 77;
  item.content_fp = fp;
  CHECK_EQ_INT(tide_store_source_put(s, &item), 0);
  CHECK_EQ_INT(tide_store_source_get(s, 1, LIT("docs"), LIT("b.md"), &got), 0);
  CHECK_EQ_INT(got.app_id, 1);
  CHECK_STR_EQ(got.source, "docs");
  CHECK_STR_EQ(got.key, "b.md");
  CHECK_EQ_INT(got.size, 100);
  CHECK_EQ_INT(got.mtime_ns, 1700000000123456789);
  CHECK_EQ_INT(got.inode, 77);
  CHECK(fp_equal(got.content_fp, fp));
  CHECK_EQ_INT(tide_store_source_get(s, 1, LIT("other"), LIT("b.md"), &got),
               TIDE_ENOTFOUND);
  SET_STR(item.key, "a.md");
  item.content_fp = NULL;
  CHECK_EQ_INT(tide_store_source_put(s, &item), 0);
  SET_STR(item.source, "other");
  CHECK_EQ_INT(tide_store_source_put(s, &item), 0);
  item.app_id = 2;
  SET_STR(item.source, "docs");
  CHECK_EQ_INT(tide_store_source_put(s, &item), 0);
  /* An update replaces the stat fields. */
  item.app_id = 1;
  SET_STR(item.key, "b.md");
  item.size = 5;
  item.content_fp = fp;
  CHECK_EQ_INT(tide_store_source_put(s, &item), 0);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_source_each(s, 1, LIT("docs"), walk_source, &w), 0);
  CHECK_STR_EQ(w.text, "a.md:100:1700000000123456789:77:-1 "
                       "b.md:5:1700000000123456789:77:1");
  CHECK_EQ_INT(tide_store_source_delete(s, 1, LIT("docs"), LIT("a.md")), 0);
  CHECK_EQ_INT(tide_store_source_get(s, 1, LIT("docs"), LIT("a.md"), &got),
               TIDE_ENOTFOUND);
  CHECK_EQ_INT(tide_store_source_get(s, 1, LIT("other"), LIT("a.md"), &got), 0);
  CHECK_EQ_INT(tide_store_source_get(s, 2, LIT("docs"), LIT("a.md"), &got), 0);
  tide_store_close(s);
  tmp_close(&t);
}

static int walk_run(void *arg, const tide_StoreRun *r) {
  TextWalk *w = arg;
  size_t n = strlen(w->text);
  snprintf(w->text + n, sizeof w->text - n, "%s%lld:%s:%d:%s", n ? " " : "",
           (long long)r->id, r->finished_ns > r->started_ns ? "done" : "open",
           r->status, r->stats ? r->stats : "-");
  w->count++;
  return 0;
}

static void test_runs(void) {
  Tmp t;
  tide_Store *s;
  TextWalk w;
  int64_t r1 = 0, r2 = 0, r3 = 0, r4 = 0, last = 0;
  int i;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_run_begin(s, 1, &r1), 0);
  CHECK_EQ_INT(tide_store_run_begin(s, 1, &r2), 0);
  CHECK_EQ_INT(tide_store_run_begin(s, 2, &r3), 0);
  CHECK_EQ_INT(tide_store_run_begin(s, 1, &r4), 0);
  CHECK_EQ_INT(r1, 1);
  CHECK_EQ_INT(r3, 3);
  CHECK_EQ_INT(r4, 4);
  sleep_ms(2);
  CHECK_EQ_INT(tide_store_run_finish(s, r1, 0, LIT("{\"a\":1}")), 0);
  CHECK_EQ_INT(tide_store_run_finish(s, r2, 1, NULL, 0), 0);
  CHECK_EQ_INT(tide_store_run_finish(s, 99, 0, NULL, 0), TIDE_ENOTFOUND);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_run_each_latest(s, 1, 10, walk_run, &w), 0);
  CHECK_STR_EQ(w.text, "4:open:0:- 2:done:1:- 1:done:0:{\"a\":1}");
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_run_each_latest(s, 1, 2, walk_run, &w), 0);
  CHECK_STR_EQ(w.text, "4:open:0:- 2:done:1:-");
  /* The log keeps each app's latest TIDE_STORE_LOG_KEPT runs, in the
  ** transaction that begins the next. */
  for (i = 0; i < TIDE_STORE_LOG_KEPT + 20; i++)
    CHECK_EQ_INT(tide_store_run_begin(s, 1, &last), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_run_each_latest(s, 1, 1000, walk_run, &w), 0);
  CHECK_EQ_INT(w.count, TIDE_STORE_LOG_KEPT);
  CHECK_EQ_INT(sql_int(t.path, "SELECT min(id) FROM runs WHERE app_id = 1"),
               last - TIDE_STORE_LOG_KEPT + 1);
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(tide_store_run_each_latest(s, 2, 1000, walk_run, &w), 0);
  CHECK_EQ_INT(w.count, 1);
  tide_store_close(s);
  tmp_close(&t);
}

/* The status of the component at path, read back after a flush. */
static int status_at(tide_Store *s, int64_t app, const char *path) {
  tide_StoreComponent got;
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_component_get(s, app, path, strlen(path), &got),
               0);
  return got.status;
}

static int count_note(void *arg, const char *path, size_t len, int64_t id) {
  (void)path, (void)len, (void)id;
  ++*(int *)arg;
  return 0;
}

/* A hold marks an ok component incomplete and leaves the rest of its row;
** a failed one stays failed; a put after it in the batch wins; a hold is
** noted for a tracked index. */
static void test_component_hold(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreComponent c, got;
  static const uint8_t state[] = { 0xa0 };
  int64_t app = 0, ok_id = 0, failed_id = 0;
  int all = 0, notes = 0;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &app, NULL), 0);
  memset(&c, 0, sizeof c);
  c.app_id = app;
  SET_STR(c.fn_name, "f");
  c.state = state;
  c.state_len = sizeof state;
  SET_STR(c.path, "/f/ok");
  CHECK_EQ_INT(tide_store_component_put(s, &c, &ok_id), 0);
  SET_STR(c.path, "/f/failed");
  c.status = 1;
  CHECK_EQ_INT(tide_store_component_put(s, &c, &failed_id), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  tide_store_track_components(s, 1);
  CHECK_EQ_INT(tide_store_component_hold(s, ok_id, LIT("/f/ok")), 0);
  CHECK_EQ_INT(tide_store_component_hold(s, failed_id, LIT("/f/failed")),
               0);
  CHECK_EQ_INT(status_at(s, app, "/f/ok"), 2);
  CHECK_EQ_INT(status_at(s, app, "/f/failed"), 1);
  CHECK_EQ_INT(tide_store_component_get(s, app, LIT("/f/ok"), &got), 0);
  CHECK(blob_equal(got.state, got.state_len, state, sizeof state));
  CHECK_STR_EQ(got.fn_name, "f");
  CHECK_EQ_INT(tide_store_written(s, &all, count_note, &notes), 0);
  CHECK_EQ_INT(all, 0);
  CHECK_EQ_INT(notes, 2);
  tide_store_track_components(s, 0);
  /* Held, then recorded ok again in the same batch. */
  SET_STR(c.path, "/f/ok");
  c.status = 0;
  c.id = ok_id;
  CHECK_EQ_INT(tide_store_component_put(s, &c, NULL), 0);
  CHECK_EQ_INT(status_at(s, app, "/f/ok"), 0);
  CHECK_EQ_INT(tide_store_component_hold(s, ok_id, LIT("/f/ok")), 0);
  CHECK_EQ_INT(tide_store_component_put(s, &c, NULL), 0);
  CHECK_EQ_INT(status_at(s, app, "/f/ok"), 0);
  tide_store_close(s);
  tmp_close(&t);
}

static const CheckTest tests[] = {
  { "apps", test_apps },
  { "components", test_components },
  { "component hold", test_component_hold },
  { "component bulk iteration", test_component_each_bulk },
  { "components under paths", test_component_each_under },
  { "memos", test_memos },
  { "containers", test_containers },
  { "target states", test_targets },
  { "source items", test_sources },
  { "runs", test_runs },
  { NULL, NULL },
};

int main(void) {
  return store_suite("store rows", tests, NULL, NULL);
}
