/* C tests of the component index and the file-state cache, over a real
** store in a temporary directory: lookups, subtrees with siblings that
** sort between a path and its children, dependency sets, file states,
** a load on a thread of its own. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "fingerprint.h"
#include "index.h"
#include "index_each.h"

static char dir[64], db[128];
static tide_Store *store;
static int64_t app;

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *ftw) {
  (void)st;
  (void)type;
  (void)ftw;
  return remove(path);
}

/* The paths, in the order the store sorts them (bytewise): "/a\0x" and
** "/a.x" sort between "/a" and its children; "/q" has children but no
** entry of its own. */
static const struct {
  const char *path;
  size_t len;
  int deps; /* 0 none, 1 set A, 2 set B */
} paths[] = {
  {"/a", 2, 1},     {"/a\0x", 4, 1}, {"/a.x", 4, 2},  {"/a/b", 4, 0},
  {"/a/b/c", 6, 0}, {"/a/c", 4, 1},  {"/ab", 3, 0},   {"/b", 2, 2},
  {"/q/1", 4, 0},   {"/q/2", 4, 0},
};
#define NPATHS (sizeof paths / sizeof paths[0])

static int64_t ids[NPATHS];

static void setup(void) {
  static const uint8_t fp_a[TIDE_FP_SIZE] = {1}, fp_b[TIDE_FP_SIZE] = {2};
  size_t i;
  snprintf(dir, sizeof dir, "/tmp/tide-index-XXXXXX");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    exit(2);
  }
  snprintf(db, sizeof db, "%s/state.db", dir);
  if (tide_store_open(&store, db, TIDE_STORE_WRITE, NULL, NULL) != 0 ||
      tide_store_app_get_or_create(store, "app", 3, &app, NULL) != 0) {
    fprintf(stderr, "store: %s\n", tide_store_errmsg(store));
    exit(2);
  }
  /* Put in reverse order: the index must come back in path order. */
  for (i = NPATHS; i-- > 0;) {
    tide_StoreComponent c;
    memset(&c, 0, sizeof c);
    c.app_id = app;
    c.path = paths[i].path;
    c.path_len = paths[i].len;
    c.fn_name = "f";
    c.fn_name_len = 1;
    c.deps_fp = paths[i].deps == 1 ? fp_a : paths[i].deps == 2 ? fp_b : NULL;
    if (tide_store_component_put(store, &c, &ids[i]) != 0) {
      fprintf(stderr, "put: %s\n", tide_store_errmsg(store));
      exit(2);
    }
  }
}

static void teardown(void) {
  tide_store_close(store);
  nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static tide_Index *loaded(void) {
  tide_Index *ix;
  CHECK_EQ_INT(tide_index_new(&ix, NULL, NULL), 0);
  CHECK_EQ_INT(tide_index_load(ix, store, app), 0);
  return ix;
}

static int seen(tide_Index *ix, const char *path, size_t len) {
  tide_IndexEntry *e = tide_index_find(ix, path, len);
  return e ? e->seen : -1;
}

static void test_lookups(void) {
  tide_Index *ix = loaded();
  size_t i;
  CHECK_EQ_INT(tide_index_count(ix), NPATHS);
  for (i = 0; i < NPATHS; i++) {
    tide_IndexEntry *e = tide_index_at(ix, i);
    /* In path order, and each found by path and by id. */
    CHECK_EQ_INT(e->path_len, paths[i].len);
    CHECK(memcmp(tide_index_path(ix, e), paths[i].path, paths[i].len) == 0);
    CHECK(tide_index_path(ix, e)[e->path_len] == '\0');
    CHECK(tide_index_find(ix, paths[i].path, paths[i].len) == e);
    CHECK(tide_index_find_id(ix, ids[i]) == e);
    CHECK_EQ_INT(e->id, ids[i]);
  }
  /* Out of order too (a binary search, not the next entry), and paths
  ** between, before and after the entries. */
  for (i = NPATHS; i-- > 0;)
    CHECK(tide_index_find(ix, paths[i].path, paths[i].len) ==
          tide_index_at(ix, i));
  CHECK(tide_index_find(ix, paths[3].path, paths[3].len) ==
        tide_index_at(ix, 3));
  CHECK(tide_index_find(ix, "", 0) == NULL);
  CHECK(tide_index_find(ix, "/", 1) == NULL);
  CHECK(tide_index_find(ix, "/a/bb", 5) == NULL);
  CHECK(tide_index_find(ix, "/z", 2) == NULL);
  /* "/a\0x" is not "/a" cut at the NUL. */
  CHECK(tide_index_find(ix, "/a\0y", 4) == NULL);
  CHECK(tide_index_find(ix, "/q", 2) == NULL);
  CHECK(tide_index_find_id(ix, 0) == NULL);
  tide_index_free(ix);
}

static void test_subtrees(void) {
  tide_Index *ix = loaded();
  tide_IndexEntry *e;
  /* "/a" and its three descendants; not its siblings "/a\0x", "/a.x",
  ** "/ab". */
  CHECK_EQ_INT(tide_index_keep_subtree(ix, "/a", 2), 4);
  CHECK_EQ_INT(seen(ix, "/a/b/c", 6), TIDE_SEEN_UNCHANGED);
  CHECK_EQ_INT(seen(ix, "/a/c", 4), TIDE_SEEN_UNCHANGED);
  CHECK_EQ_INT(seen(ix, "/a\0x", 4), TIDE_SEEN_NONE);
  CHECK_EQ_INT(seen(ix, "/a.x", 4), TIDE_SEEN_NONE);
  CHECK_EQ_INT(seen(ix, "/ab", 3), TIDE_SEEN_NONE);
  CHECK_EQ_INT(tide_index_keep_subtree(ix, "/a", 2), 0); /* marked once */
  /* A path without an entry of its own still keeps its children. */
  CHECK_EQ_INT(tide_index_keep_subtree(ix, "/q", 2), 2);
  /* tide_index_keep: a leaf, then an entry whose children follow it. */
  e = tide_index_find(ix, "/b", 2);
  tide_index_keep(ix, e);
  CHECK_EQ_INT(e->seen, TIDE_SEEN_UNCHANGED);
  CHECK_EQ_INT(seen(ix, "/ab", 3), TIDE_SEEN_NONE);
  tide_index_free(ix);
  ix = loaded();
  e = tide_index_find(ix, "/a/b", 4);
  e->seen = TIDE_SEEN_RAN; /* a mark is never overwritten */
  tide_index_keep(ix, e);
  CHECK_EQ_INT(e->seen, TIDE_SEEN_RAN);
  CHECK_EQ_INT(seen(ix, "/a/b/c", 6), TIDE_SEEN_UNCHANGED);
  CHECK_EQ_INT(seen(ix, "/a/c", 4), TIDE_SEEN_NONE);
  /* And one whose children come after siblings. */
  tide_index_keep(ix, tide_index_find(ix, "/a", 2));
  CHECK_EQ_INT(seen(ix, "/a/c", 4), TIDE_SEEN_UNCHANGED);
  CHECK_EQ_INT(seen(ix, "/a.x", 4), TIDE_SEEN_NONE);
  /* below_first / is_below give the same run. */
  {
    size_t i = tide_index_below_first(ix, "/a", 2), n = 0;
    for (; i < tide_index_count(ix) &&
           tide_index_is_below(ix, tide_index_at(ix, i), "/a", 2);
         i++)
      n++;
    CHECK_EQ_INT(n, 3);
  }
  tide_index_free(ix);
}

/* Keeping below a live source's base, except the items it changed. */
static void test_keep_below_except(void) {
  static const char *const except_a[] = {"/a/b"};
  static const size_t lens_a[] = {4};
  static const char *const except_q[] = {"/q/2", "/q/9"};
  static const size_t lens_q[] = {4, 4};
  tide_Index *ix = loaded();
  tide_index_find(ix, "/a/b/c", 6)->seen = TIDE_SEEN_RAN;
  /* One subtree kept ("/a/c"); "/a" itself and its siblings untouched;
  ** what was excepted stays as it was, marked or not. */
  CHECK_EQ_INT(tide_index_keep_below_except(ix, "/a", 2, except_a, lens_a,
                                            1), 1);
  CHECK_EQ_INT(seen(ix, "/a/c", 4), TIDE_SEEN_UNCHANGED);
  CHECK_EQ_INT(seen(ix, "/a/b", 4), TIDE_SEEN_NONE);
  CHECK_EQ_INT(seen(ix, "/a/b/c", 6), TIDE_SEEN_RAN);
  CHECK_EQ_INT(seen(ix, "/a", 2), TIDE_SEEN_NONE);
  CHECK_EQ_INT(seen(ix, "/a.x", 4), TIDE_SEEN_NONE);
  CHECK_EQ_INT(seen(ix, "/ab", 3), TIDE_SEEN_NONE);
  /* A base without an entry of its own; an excepted path without one. */
  CHECK_EQ_INT(tide_index_keep_below_except(ix, "/q", 2, except_q, lens_q,
                                            2), 1);
  CHECK_EQ_INT(seen(ix, "/q/1", 4), TIDE_SEEN_UNCHANGED);
  CHECK_EQ_INT(seen(ix, "/q/2", 4), TIDE_SEEN_NONE);
  /* Nothing excepted: everything below, once. */
  CHECK_EQ_INT(tide_index_keep_below_except(ix, "/q", 2, NULL, NULL, 0), 1);
  CHECK_EQ_INT(tide_index_keep_below_except(ix, "/q", 2, NULL, NULL, 0), 0);
  tide_index_free(ix);
}

/* The components below a base whose last record is not ok, not counting
** those marked in this run. */
static void test_failed_below(void) {
  tide_Index *ix = loaded();
  CHECK_EQ_INT(tide_index_failed_below(ix, "/a", 2), 0);
  tide_index_find(ix, "/a/c", 4)->status = 1;    /* failed */
  tide_index_find(ix, "/a/b/c", 6)->status = 2;  /* incomplete */
  tide_index_find(ix, "/a.x", 4)->status = 1;    /* not below /a */
  CHECK_EQ_INT(tide_index_failed_below(ix, "/a", 2), 2);
  tide_index_find(ix, "/a/c", 4)->seen = TIDE_SEEN_RAN;
  CHECK_EQ_INT(tide_index_failed_below(ix, "/a", 2), 1);
  CHECK_EQ_INT(tide_index_failed_below(ix, "/q", 2), 0);
  tide_index_free(ix);
}

static void test_deps(void) {
  tide_Index *ix = loaded();
  const tide_IndexEntry *example;
  size_t a, b;
  CHECK_EQ_INT(tide_index_deps_count(ix), 2);
  /* Numbered in path order: set A first ("/a"), then B ("/a.x"). */
  a = 0;
  b = 1;
  CHECK_EQ_INT(tide_index_deps_at(ix, a, &example)[0], 1);
  CHECK(memcmp(tide_index_path(ix, example), "/a", 3) == 0);
  CHECK_EQ_INT(tide_index_deps_at(ix, b, &example)[0], 2);
  /* Unknown until the engine says. */
  CHECK(!tide_index_deps_valid(ix, tide_index_find(ix, "/a/c", 4)));
  tide_index_deps_set_valid(ix, a, 1);
  tide_index_deps_set_valid(ix, b, 0);
  CHECK(tide_index_deps_valid(ix, tide_index_find(ix, "/a/c", 4)));
  CHECK(tide_index_deps_valid(ix, tide_index_find(ix, "/a\0x", 4)));
  CHECK(!tide_index_deps_valid(ix, tide_index_find(ix, "/b", 2)));
  CHECK(!tide_index_deps_valid(ix, tide_index_find(ix, "/a/b", 4)));
  tide_index_free(ix);
}

static void test_file_states(void) {
  static const uint8_t fp[TIDE_FP_SIZE] = {7, 7, 7};
  tide_Index *ix = loaded();
  const uint8_t *got;
  CHECK_EQ_INT(tide_index_file_put(ix, store, app, "fs:x", 4, "a.md", 4, 1,
                                   2, 3, fp), TIDE_EINVAL);
  CHECK_STR_CONTAINS(tide_index_errmsg(ix), "source fs:x not loaded");
  CHECK_EQ_INT(tide_index_load_source(ix, store, app, "fs:x", 4), 0);
  CHECK(tide_index_file_fp(ix, "fs:x", 4, "a.md", 4, 1, 2, 3) == NULL);
  CHECK_EQ_INT(tide_index_file_put(ix, store, app, "fs:x", 4, "a\0.md", 5,
                                   1, 2, 3, fp), 0);
  got = tide_index_file_fp(ix, "fs:x", 4, "a\0.md", 5, 1, 2, 3);
  CHECK(got != NULL && memcmp(got, fp, TIDE_FP_SIZE) == 0);
  /* Any of size, mtime, inode differing: read it again. */
  CHECK(tide_index_file_fp(ix, "fs:x", 4, "a\0.md", 5, 9, 2, 3) == NULL);
  CHECK(tide_index_file_fp(ix, "fs:x", 4, "a\0.md", 5, 1, 9, 3) == NULL);
  CHECK(tide_index_file_fp(ix, "fs:x", 4, "a\0.md", 5, 1, 2, 9) == NULL);
  CHECK(tide_index_file_fp(ix, "fs:x", 4, "a", 1, 1, 2, 3) == NULL);
  CHECK(tide_index_file_fp(ix, "fs:y", 4, "a\0.md", 5, 1, 2, 3) == NULL);
  tide_index_free(ix);
  /* The put went to the store: a new index finds it. */
  ix = loaded();
  CHECK_EQ_INT(tide_index_load_source(ix, store, app, "fs:x", 4), 0);
  CHECK(tide_index_file_fp(ix, "fs:x", 4, "a\0.md", 5, 1, 2, 3) != NULL);
  tide_index_free(ix);
}

/* States loaded in path order are found in any order, and so are those
** added after the load; a state changed after the load is found changed. */
static void test_file_states_order(void) {
  static const struct {
    const char *path;
    size_t len;
  } files[] = {{"b.md", 4}, {"a/z.md", 6}, {"a.md", 4}, {"a", 1},
               {"a\0b", 3}, {"c/d/e.md", 8}};
  enum { NFILES = sizeof files / sizeof files[0] };
  static const uint8_t fp[TIDE_FP_SIZE] = {5};
  tide_Index *ix = loaded();
  size_t i;
  CHECK_EQ_INT(tide_index_load_source(ix, store, app, "fs:o", 4), 0);
  for (i = 0; i < NFILES; i++)
    CHECK_EQ_INT(tide_index_file_put(ix, store, app, "fs:o", 4,
                                     files[i].path, files[i].len,
                                     (int64_t)i, 2, 3, fp), 0);
  /* Found in the index that added them, some in its sorted run ("b.md",
  ** then "c/d/e.md"), the others through its map. */
  for (i = 0; i < NFILES; i++)
    CHECK(tide_index_file_fp(ix, "fs:o", 4, files[i].path, files[i].len,
                             (int64_t)i, 2, 3) != NULL);
  CHECK(tide_index_file_fp(ix, "fs:o", 4, "c", 1, 0, 2, 3) == NULL);
  CHECK_EQ_INT(tide_store_flush(store), 0);
  tide_index_free(ix);
  ix = loaded();
  CHECK_EQ_INT(tide_index_load_source(ix, store, app, "fs:o", 4), 0);
  for (i = NFILES; i-- > 0;)
    CHECK(tide_index_file_fp(ix, "fs:o", 4, files[i].path, files[i].len,
                             (int64_t)i, 2, 3) != NULL);
  for (i = 0; i < NFILES; i++)
    CHECK(tide_index_file_fp(ix, "fs:o", 4, files[i].path, files[i].len,
                             (int64_t)i, 2, 3) != NULL);
  CHECK(tide_index_file_fp(ix, "fs:o", 4, "a/", 2, 0, 2, 3) == NULL);
  CHECK(tide_index_file_fp(ix, "fs:o", 4, "0", 1, 0, 2, 3) == NULL);
  CHECK(tide_index_file_fp(ix, "fs:o", 4, "z", 1, 0, 2, 3) == NULL);
  /* Added after the load, and a loaded one changed. */
  CHECK_EQ_INT(tide_index_file_put(ix, store, app, "fs:o", 4, "a/b.md", 6,
                                   9, 2, 3, fp), 0);
  CHECK_EQ_INT(tide_index_file_put(ix, store, app, "fs:o", 4, "b.md", 4, 8,
                                   2, 3, fp), 0);
  CHECK(tide_index_file_fp(ix, "fs:o", 4, "a/b.md", 6, 9, 2, 3) != NULL);
  CHECK(tide_index_file_fp(ix, "fs:o", 4, "b.md", 4, 8, 2, 3) != NULL);
  CHECK(tide_index_file_fp(ix, "fs:o", 4, "b.md", 4, 0, 2, 3) == NULL);
  CHECK(tide_index_file_fp(ix, "fs:o", 4, "a.md", 4, 2, 2, 3) != NULL);
  CHECK_EQ_INT(tide_store_flush(store), 0);
  tide_index_free(ix);
}

/* Files added in path order (a cold run's walk) join the sorted run one
** after another; one that sorts before them, and a second put of one of
** them, are found as well, each with its last state. */
static void test_file_states_added_in_order(void) {
  static const uint8_t fp[TIDE_FP_SIZE] = {6};
  char path[32];
  tide_Index *ix = loaded();
  int i;
  CHECK_EQ_INT(tide_index_load_source(ix, store, app, "fs:n", 4), 0);
  for (i = 0; i < 300; i++) {
    snprintf(path, sizeof path, "d%02d/f%04d.md", i / 100, i);
    CHECK_EQ_INT(tide_index_file_put(ix, store, app, "fs:n", 4, path,
                                     strlen(path), i, 2, 3, fp), 0);
  }
  CHECK_EQ_INT(tide_index_file_put(ix, store, app, "fs:n", 4, "a.md", 4,
                                   7, 2, 3, fp), 0);
  CHECK_EQ_INT(tide_index_file_put(ix, store, app, "fs:n", 4,
                                   "d01/f0150.md", 12, 1000, 2, 3, fp), 0);
  for (i = 0; i < 300; i++) {
    snprintf(path, sizeof path, "d%02d/f%04d.md", i / 100, i);
    CHECK(tide_index_file_fp(ix, "fs:n", 4, path, strlen(path),
                             i == 150 ? 1000 : i, 2, 3) != NULL);
  }
  CHECK(tide_index_file_fp(ix, "fs:n", 4, "d01/f0150.md", 12, 150, 2, 3) ==
        NULL);
  CHECK(tide_index_file_fp(ix, "fs:n", 4, "a.md", 4, 7, 2, 3) != NULL);
  CHECK(tide_index_file_fp(ix, "fs:n", 4, "d00", 3, 0, 2, 3) == NULL);
  CHECK_EQ_INT(tide_store_flush(store), 0);
  tide_index_free(ix);
  /* The store has one state per path, the last. */
  ix = loaded();
  CHECK_EQ_INT(tide_index_load_source(ix, store, app, "fs:n", 4), 0);
  CHECK(tide_index_file_fp(ix, "fs:n", 4, "d01/f0150.md", 12, 1000, 2, 3) !=
        NULL);
  CHECK(tide_index_file_fp(ix, "fs:n", 4, "d02/f0299.md", 12, 299, 2, 3) !=
        NULL);
  tide_index_free(ix);
}

/* An each over components /e/k1, /e/k2 (logic L, deps set A valid) and
** /e/k3 (logic M): inputs as core.fingerprint_args computes them. */
static void test_each(void) {
  static const uint8_t logic_l[TIDE_FP_SIZE] = {9}, logic_m[TIDE_FP_SIZE] =
    {8}, deps[TIDE_FP_SIZE] = {1};
  static const uint8_t value[] = {0xa1, 0x61, 0x61, 0x01}; /* {a = 1} */
  static const uint8_t extra[] = {0x60};                   /* "" */
  static const uint8_t want_head[] = {0x82};
  tide_IndexEach c;
  tide_Index *ix;
  uint8_t input[TIDE_FP_SIZE], other[TIDE_FP_SIZE];
  tide_Fp fp;
  uint8_t bytes[sizeof want_head + sizeof value + sizeof extra];
  const char *keys[] = {"k1", "k2", "k3", "k1/sub"};
  size_t i;
  tide_IndexEntry *e;
  memcpy(bytes, want_head, sizeof want_head);
  memcpy(bytes + sizeof want_head, value, sizeof value);
  memcpy(bytes + sizeof want_head + sizeof value, extra, sizeof extra);
  tide_fp_bytes(&fp, bytes, sizeof bytes);
  memset(other, 5, sizeof other);
  for (i = 0; i < 4; i++) {
    tide_StoreComponent comp;
    char path[16];
    memset(&comp, 0, sizeof comp);
    snprintf(path, sizeof path, "/e/%s", keys[i]);
    comp.app_id = app;
    comp.path = path;
    comp.path_len = strlen(path);
    comp.fn_name = "f";
    comp.fn_name_len = 1;
    comp.logic_fp = i == 2 ? logic_m : logic_l;
    comp.input_fp = i == 1 ? other : fp.bytes;
    comp.deps_fp = deps;
    CHECK_EQ_INT(tide_store_component_put(store, &comp, NULL), 0);
  }
  ix = loaded();
  for (i = 0; i < tide_index_deps_count(ix); i++) {
    const tide_IndexEntry *example;
    tide_index_deps_at(ix, i, &example);
    tide_index_deps_set_valid(ix, i, 1);
  }
  CHECK_EQ_INT(tide_index_each_init(&c, ix, "/e", 2, logic_l, 2, extra,
                                    sizeof extra, NULL, NULL), 0);
  tide_index_each_input(&c, value, sizeof value, input);
  CHECK(memcmp(input, fp.bytes, TIDE_FP_SIZE) == 0);
  /* k1: same logic, same input: carried with its child k1/sub. */
  CHECK_EQ_INT(tide_index_each_find(&c, "k1", 2), 0);
  CHECK(tide_index_each_entry(&c) >= 0);
  CHECK_EQ_INT(tide_index_each_first(&c), 0);
  CHECK_EQ_INT(tide_index_each_carry(&c, input), 1);
  CHECK_EQ_INT(tide_index_each_list(&c, 3), 0);
  e = tide_index_find(ix, "/e/k1/sub", 9);
  CHECK(e != NULL && e->seen == TIDE_SEEN_UNCHANGED);
  /* Listed: found again by key, the second time a duplicate. */
  CHECK_EQ_INT(tide_index_each_find(&c, "k1", 2), 0);
  CHECK_EQ_INT(tide_index_each_first(&c), 3);
  CHECK_EQ_INT(tide_index_each_carry(&c, input), 0); /* marked already */
  /* k2: another input; k3: another logic; k9: no entry. */
  CHECK_EQ_INT(tide_index_each_find(&c, "k2", 2), 0);
  CHECK_EQ_INT(tide_index_each_carry(&c, input), 0);
  CHECK_EQ_INT(tide_index_each_find(&c, "k3", 2), 0);
  CHECK_EQ_INT(tide_index_each_carry(&c, input), 0);
  CHECK_EQ_INT(tide_index_each_find(&c, "k9", 2), 0);
  CHECK_EQ_INT(tide_index_each_entry(&c), -1);
  CHECK_EQ_INT(tide_index_each_carry(&c, input), 0);
  CHECK_EQ_INT(tide_index_each_first(&c), 0);
  CHECK_EQ_INT(tide_index_each_list(&c, 7), 0);
  CHECK_EQ_INT(tide_index_each_find(&c, "k9", 2), 0);
  CHECK_EQ_INT(tide_index_each_first(&c), 7);
  CHECK_EQ_INT(tide_index_each_find(&c, "k2", 2), 0);
  CHECK_EQ_INT(tide_index_each_first(&c), 0);
  CHECK_EQ_INT(c.carried, 1);
  e = tide_index_find(ix, "/e/k2", 5);
  CHECK(e != NULL && e->seen == TIDE_SEEN_NONE);
  /* resume: the entry of an item found earlier becomes current again. */
  CHECK_EQ_INT(tide_index_each_find(&c, "k2", 2), 0);
  {
    int64_t k2 = tide_index_each_entry(&c);
    CHECK_EQ_INT(tide_index_each_find(&c, "k9", 2), 0);
    tide_index_each_resume(&c, k2);
    CHECK(tide_index_each_entry(&c) == k2);
  }
  tide_index_each_close(&c);
  tide_index_free(ix);
}

/* Rows recorded in any order come back in path order: many runs (every
** row out of place: a general sort) and a few (a root recorded after its
** children: runs merged). */
static void put_paths(int64_t in_app, const char *fmt, int from, int to,
                      int step) {
  int i;
  for (i = from; i != to; i += step) {
    char path[32];
    tide_StoreComponent c;
    memset(&c, 0, sizeof c);
    c.app_id = in_app;
    snprintf(path, sizeof path, fmt, i);
    c.path = path;
    c.path_len = strlen(path);
    c.fn_name = "f";
    c.fn_name_len = 1;
    CHECK_EQ_INT(tide_store_component_put(store, &c, NULL), 0);
  }
}

static void check_sorted(int64_t in_app, size_t want) {
  tide_Index *ix;
  size_t i;
  CHECK_EQ_INT(tide_index_new(&ix, NULL, NULL), 0);
  CHECK_EQ_INT(tide_index_load(ix, store, in_app), 0);
  CHECK_EQ_INT(tide_index_count(ix), want);
  for (i = 0; i < tide_index_count(ix); i++) {
    tide_IndexEntry *e = tide_index_at(ix, i);
    if (i > 0) {
      tide_IndexEntry *p = tide_index_at(ix, i - 1);
      size_t n = p->path_len < e->path_len ? p->path_len : e->path_len;
      int c = memcmp(tide_index_path(ix, p), tide_index_path(ix, e), n);
      CHECK(c < 0 || (c == 0 && p->path_len < e->path_len));
    }
    CHECK(tide_index_find(ix, tide_index_path(ix, e), e->path_len) == e);
  }
  tide_index_free(ix);
}

static void test_load_orders(void) {
  int64_t many, few;
  CHECK_EQ_INT(tide_store_app_get_or_create(store, "many", 4, &many, NULL),
               0);
  CHECK_EQ_INT(tide_store_app_get_or_create(store, "few", 3, &few, NULL), 0);
  put_paths(many, "/p/%02d", 39, -1, -1);
  put_paths(few, "/x/%02d", 0, 30, 1);
  put_paths(few, "/a/%d", 0, 3, 1);
  put_paths(few, "%.0d", 0, 1, 1); /* "": the root, last */
  CHECK_EQ_INT(tide_store_flush(store), 0);
  check_sorted(many, 40);
  check_sorted(few, 34);
}

/* Entries of two indexes are the same, in the same order. */
static void check_same(tide_Index *a, tide_Index *b) {
  size_t i;
  CHECK_EQ_INT(tide_index_count(a), tide_index_count(b));
  for (i = 0; i < tide_index_count(a) && i < tide_index_count(b); i++) {
    tide_IndexEntry *x = tide_index_at(a, i), *y = tide_index_at(b, i);
    CHECK(x->id == y->id && x->path_len == y->path_len &&
          x->status == y->status && x->has_input == y->has_input &&
          memcmp(x->input, y->input, TIDE_FP_SIZE) == 0);
    CHECK(memcmp(tide_index_path(a, x), tide_index_path(b, y),
                 x->path_len) == 0);
  }
  CHECK_EQ_INT(tide_index_deps_count(a), tide_index_deps_count(b));
}

/* An allocator that is not the default one (only that one is known to be
** thread-safe). */
static void *other_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  return tide_alloc_default(ud, ptr, osize, nsize);
}

/* A load on a thread of its own gives what a load at once gives, and the
** file states of every source of the app besides; freeing waits for it;
** a thread that cannot open the store loads again through the caller's
** connection; another allocator loads at once. */
static void test_load_async(void) {
  static const uint8_t fp[TIDE_FP_SIZE] = {9};
  tide_Index *ix, *now = loaded();
  char moved[160];
  CHECK_EQ_INT(tide_index_load_source(now, store, app, "fs:p", 4), 0);
  CHECK_EQ_INT(tide_index_load_source(now, store, app, "fs:r", 4), 0);
  CHECK_EQ_INT(tide_index_file_put(now, store, app, "fs:p", 4, "x.md", 4, 1,
                                   2, 3, fp), 0);
  CHECK_EQ_INT(tide_index_file_put(now, store, app, "fs:r", 4, "y\0z", 3, 4,
                                   5, 6, fp), 0);
  /* The thread reads what is committed. */
  CHECK_EQ_INT(tide_store_flush(store), 0);

  CHECK_EQ_INT(tide_index_new(&ix, NULL, NULL), 0);
  CHECK_EQ_INT(tide_index_load_async(ix, store, app), 0);
  CHECK_EQ_INT(tide_index_wait(ix), 0);
  CHECK(!tide_index_loading(ix));
  CHECK_EQ_INT(tide_index_wait(ix), 0);
  check_same(ix, now);
  /* Found without a load of the source: the thread read them. */
  CHECK(tide_index_file_fp(ix, "fs:p", 4, "x.md", 4, 1, 2, 3) != NULL);
  CHECK(tide_index_file_fp(ix, "fs:r", 4, "y\0z", 3, 4, 5, 6) != NULL);
  CHECK(tide_index_file_fp(ix, "fs:r", 4, "x.md", 4, 1, 2, 3) == NULL);
  /* A second load forgets the first. */
  CHECK_EQ_INT(tide_index_load_async(ix, store, app), 0);
  CHECK_EQ_INT(tide_index_wait(ix), 0);
  check_same(ix, now);
  CHECK(tide_index_file_fp(ix, "fs:p", 4, "x.md", 4, 1, 2, 3) != NULL);
  /* Freed while it loads. */
  CHECK_EQ_INT(tide_index_load_async(ix, store, app), 0);
  tide_index_free(ix);

  /* The file is not where the thread looks: the caller's connection,
  ** which has it open, loads it instead. */
  snprintf(moved, sizeof moved, "%s/moved.db", dir);
  CHECK_EQ_INT(rename(db, moved), 0);
  CHECK_EQ_INT(tide_index_new(&ix, NULL, NULL), 0);
  CHECK_EQ_INT(tide_index_load_async(ix, store, app), 0);
  CHECK_EQ_INT(tide_index_wait(ix), 0);
  CHECK_EQ_INT(rename(moved, db), 0);
  check_same(ix, now);
  CHECK(tide_index_file_fp(ix, "fs:p", 4, "x.md", 4, 1, 2, 3) == NULL);
  CHECK_EQ_INT(tide_index_load_source(ix, store, app, "fs:p", 4), 0);
  CHECK(tide_index_file_fp(ix, "fs:p", 4, "x.md", 4, 1, 2, 3) != NULL);
  tide_index_free(ix);

  CHECK_EQ_INT(tide_index_new(&ix, other_alloc, NULL), 0);
  CHECK_EQ_INT(tide_index_load_async(ix, store, app), 0);
  CHECK(!tide_index_loading(ix));
  check_same(ix, now);
  tide_index_free(ix);
  tide_index_free(now);
}

/* An index loaded whole keeps up with the component writes the store
** notes: an update in place, an add, a delete, a put whose deps set moves
** away from the set's example; each load after them equals a load from
** scratch, and its marks are cleared. Another connection's write is not
** noted: after tide_index_cool the index reads it whole. */
static void put_component(const char *path, const uint8_t *input,
                          const uint8_t *deps, int64_t *id) {
  tide_StoreComponent c;
  memset(&c, 0, sizeof c);
  c.app_id = app;
  c.path = path;
  c.path_len = strlen(path);
  c.fn_name = "f";
  c.fn_name_len = 1;
  c.input_fp = input;
  c.deps_fp = deps;
  CHECK_EQ_INT(tide_store_component_put(store, &c, id), 0);
}

static void check_warm(tide_Index *warm) {
  tide_Index *now = loaded();
  size_t i;
  CHECK_EQ_INT(tide_index_load_async(warm, store, app), 0);
  CHECK(!tide_index_loading(warm));
  check_same(warm, now);
  for (i = 0; i < tide_index_count(warm); i++) {
    CHECK_EQ_INT(tide_index_at(warm, i)->seen, TIDE_SEEN_NONE);
    CHECK_EQ_INT(tide_index_at(warm, i)->forced, 0);
  }
  tide_index_free(now);
}

static void test_warm(void) {
  static const uint8_t in1[TIDE_FP_SIZE] = {41}, in2[TIDE_FP_SIZE] = {42},
                       deps_c[TIDE_FP_SIZE] = {43};
  tide_Index *warm;
  int64_t id;
  CHECK_EQ_INT(tide_store_flush(store), 0);
  CHECK_EQ_INT(tide_index_new(&warm, NULL, NULL), 0);
  CHECK_EQ_INT(tide_index_load_async(warm, store, app), 0);
  CHECK_EQ_INT(tide_index_wait(warm), 0);
  tide_index_keep_subtree(warm, "/a", 2);
  /* In place: /b gets an input. */
  put_component("/b", in1, NULL, NULL);
  check_warm(warm);
  CHECK(memcmp(tide_index_find(warm, "/b", 2)->input, in1,
               TIDE_FP_SIZE) == 0);
  /* Added, then deleted, in one cycle; and one added to stay. */
  put_component("/w/new", in2, NULL, &id);
  CHECK_EQ_INT(tide_store_component_delete(store, id), 0);
  put_component("/w/kept", in2, deps_c, NULL);
  check_warm(warm);
  CHECK(tide_index_find(warm, "/w/new", 6) == NULL);
  CHECK(tide_index_find(warm, "/w/kept", 7) != NULL);
  /* /a is the example of its deps set; it moves to another set. */
  put_component("/a", in1, deps_c, NULL);
  check_warm(warm);
  /* Deleted by id only. */
  CHECK_EQ_INT(tide_store_component_delete(store,
                                           tide_index_find(warm, "/w/kept",
                                                           7)->id), 0);
  check_warm(warm);
  CHECK(tide_index_find(warm, "/w/kept", 7) == NULL);
  /* Rolled back: read as the store holds it. */
  CHECK_EQ_INT(tide_store_flush(store), 0);
  put_component("/b", in2, NULL, NULL);
  CHECK_EQ_INT(tide_store_rollback(store), 0);
  check_warm(warm);
  CHECK(memcmp(tide_index_find(warm, "/b", 2)->input, in1,
               TIDE_FP_SIZE) == 0);
  /* Another connection's write: seen once cooled. */
  {
    sqlite3 *other;
    tide_Index *now;
    char sql[160];
    CHECK_EQ_INT(tide_store_flush(store), 0);
    CHECK_EQ_INT(sqlite3_open(db, &other), SQLITE_OK);
    snprintf(sql, sizeof sql, "INSERT INTO components(app_id, path, fn_name)"
             " VALUES(%lld, '/foreign', 'f')", (long long)app);
    CHECK_EQ_INT(sqlite3_exec(other, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    CHECK_EQ_INT(tide_index_load_async(warm, store, app), 0);
    CHECK(tide_index_find(warm, "/foreign", 8) == NULL); /* not noted */
    tide_index_cool(warm);
    CHECK_EQ_INT(tide_index_load_async(warm, store, app), 0);
    CHECK_EQ_INT(tide_index_wait(warm), 0);
    now = loaded();
    check_same(warm, now);
    CHECK(tide_index_find(warm, "/foreign", 8) != NULL);
    tide_index_free(now);
  }
  tide_index_free(warm);
}

/* Runs sql on another connection to the store (a worker's writes, which
** this connection's notes lack). */
static void other_writes(const char *sql) {
  sqlite3 *other;
  char *err = NULL;
  CHECK_EQ_INT(tide_store_flush(store), 0);
  CHECK_EQ_INT(sqlite3_open(db, &other), SQLITE_OK);
  CHECK_EQ_INT(sqlite3_exec(other, sql, NULL, NULL, &err), SQLITE_OK);
  if (err) fprintf(stderr, "sql: %s\n", err);
  sqlite3_free(err);
  sqlite3_close(other);
}

/* A shared update's lead reads again below the items it handed out: those
** subtrees come as the store now holds them (added, deleted, changed), the
** rest as the index held it; many items cool it instead. */
static void test_reload_under(void) {
  static const char *const items[] = { "/r", "/s/1", "/r/x" };
  static const size_t item_lens[] = { 2, 4, 4 };
  static const char *const rest[] = { "/t", "/r.x" };
  static const size_t rest_lens[] = { 2, 4 };
  static char many_paths[600][8];
  static const char *many[600];
  static size_t many_lens[600];
  tide_Index *warm, *now;
  char sql[600];
  size_t i;
  put_component("/r", NULL, NULL, NULL);
  put_component("/r/gone", NULL, NULL, NULL);
  put_component("/s/1", NULL, NULL, NULL);
  CHECK_EQ_INT(tide_store_flush(store), 0);
  CHECK_EQ_INT(tide_index_new(&warm, NULL, NULL), 0);
  CHECK_EQ_INT(tide_index_load_async(warm, store, app), 0);
  CHECK_EQ_INT(tide_index_wait(warm), 0);
  tide_index_find(warm, "/r", 2)->seen = TIDE_SEEN_RAN;
  snprintf(sql, sizeof sql,
           "INSERT INTO components(app_id, path, fn_name) VALUES"
           " (%lld, '/r/new', 'f'), (%lld, '/r.x', 'f'), (%lld, '/t', 'f');"
           "DELETE FROM components WHERE path = '/r/gone';"
           "UPDATE components SET status = 3 WHERE path = '/s/1';",
           (long long)app, (long long)app, (long long)app);
  other_writes(sql);
  CHECK_EQ_INT(tide_index_reload_under(warm, store, app, items, item_lens, 3),
               0);
  CHECK(tide_index_find(warm, "/r/new", 6) != NULL);
  CHECK(tide_index_find(warm, "/r/gone", 7) == NULL);
  CHECK(tide_index_find(warm, "/s/1", 4) != NULL &&
        tide_index_find(warm, "/s/1", 4)->status == 3);
  CHECK_EQ_INT(seen(warm, "/r", 2), TIDE_SEEN_NONE);
  /* Not below the items: not read. */
  CHECK(tide_index_find(warm, "/t", 2) == NULL);
  CHECK(tide_index_find(warm, "/r.x", 4) == NULL);
  CHECK(tide_index_find(warm, "/a/b", 4) != NULL);
  /* Those read too, it holds what a whole load gives. */
  CHECK_EQ_INT(tide_index_reload_under(warm, store, app, rest, rest_lens, 2),
               0);
  now = loaded();
  check_same(warm, now);
  tide_index_free(now);
  /* Many items: cooled, its next load reads it whole. */
  for (i = 0; i < 600; i++) {
    many_lens[i] = (size_t)snprintf(many_paths[i], sizeof many_paths[i],
                                    "/z/%zu", i);
    many[i] = many_paths[i];
  }
  snprintf(sql, sizeof sql, "INSERT INTO components(app_id, path, fn_name)"
           " VALUES (%lld, '/u', 'f')", (long long)app);
  other_writes(sql);
  CHECK_EQ_INT(tide_index_reload_under(warm, store, app, many, many_lens,
                                       600), 0);
  CHECK(tide_index_find(warm, "/u", 2) == NULL);
  CHECK_EQ_INT(tide_index_load_async(warm, store, app), 0);
  CHECK_EQ_INT(tide_index_wait(warm), 0);
  CHECK(tide_index_find(warm, "/u", 2) != NULL);
  /* A cold index is left as it is. */
  other_writes("DELETE FROM components WHERE path = '/u'");
  tide_index_cool(warm);
  CHECK_EQ_INT(tide_index_reload_under(warm, store, app, rest, rest_lens, 2),
               0);
  CHECK(tide_index_find(warm, "/u", 2) != NULL);
  tide_index_free(warm);
}

static void check_same_fp(const uint8_t *a, const uint8_t *b) {
  CHECK((a == NULL) == (b == NULL));
  if (a && b) CHECK(memcmp(a, b, TIDE_FP_SIZE) == 0);
}

/* What the index holds of a component is what the store recorded: the
** engine takes a component's id, status and fingerprints from it
** (Run:prev_row) without reading the store. */
static void test_view(void) {
  static const uint8_t logic[TIDE_FP_SIZE] = {7}, input[TIDE_FP_SIZE] = {8},
                       deps[TIDE_FP_SIZE] = {9};
  static const struct {
    const char *path;
    size_t len;
    int status, fps;
  } rows[] = {{"/bare", 5, 1, 0}, {"/full", 5, 2, 1}, {"/k\0ey", 6, 0, 1}};
  int64_t other;
  tide_Index *ix;
  size_t i;
  CHECK_EQ_INT(tide_store_app_get_or_create(store, "view", 4, &other, NULL),
               0);
  for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    tide_StoreComponent c;
    int64_t id;
    memset(&c, 0, sizeof c);
    c.app_id = other;
    c.path = rows[i].path;
    c.path_len = rows[i].len;
    c.fn_name = "f";
    c.fn_name_len = 1;
    c.status = rows[i].status;
    if (rows[i].fps) {
      c.logic_fp = logic;
      c.input_fp = input;
      c.deps_fp = deps;
    }
    CHECK_EQ_INT(tide_store_component_put(store, &c, &id), 0);
  }
  CHECK_EQ_INT(tide_index_new(&ix, NULL, NULL), 0);
  CHECK_EQ_INT(tide_index_load(ix, store, other), 0);
  CHECK_EQ_INT(tide_index_count(ix), 3);
  for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    tide_IndexEntry *e = tide_index_find(ix, rows[i].path, rows[i].len);
    tide_StoreComponent v, got;
    CHECK(e != NULL);
    if (e == NULL) continue;
    tide_index_view(ix, e, &v);
    CHECK_EQ_INT(tide_store_component_get(store, other, rows[i].path,
                                          rows[i].len, &got), 0);
    CHECK_EQ_INT(v.id, got.id);
    CHECK_EQ_INT(v.status, got.status);
    CHECK_EQ_INT(v.status, rows[i].status);
    CHECK_EQ_INT(v.path_len, rows[i].len);
    CHECK(memcmp(v.path, rows[i].path, rows[i].len) == 0);
    check_same_fp(v.logic_fp, got.logic_fp);
    check_same_fp(v.input_fp, got.input_fp);
    check_same_fp(v.deps_fp, got.deps_fp);
    CHECK((v.logic_fp != NULL) == rows[i].fps);
    CHECK(v.fn_name == NULL && v.state == NULL && v.error == NULL);
  }
  tide_index_free(ix);
  CHECK_EQ_INT(tide_store_app_delete(store, other), 0);
}

/* A scoped index (a worker's) holds only what was loaded under paths:
** entries already held keep their marks, new dependency sets come
** unchecked, a path below another one given is read once, and file states
** come only from puts. */
static void test_load_under(void) {
  static const uint8_t fp[TIDE_FP_SIZE] = {5};
  static const char *const a[] = { "/a" };
  static const char *const more[] = { "/q/1", "/a/b", "/b", "/q", "/q/2" };
  static const size_t a_lens[] = { 2 }, more_lens[] = { 4, 4, 2, 2, 4 };
  tide_Index *ix = loaded();
  const tide_IndexEntry *example;
  tide_IndexEntry *e;
  size_t i;
  tide_index_scope(ix);
  CHECK_EQ_INT(tide_index_count(ix), 0);
  CHECK(tide_index_find(ix, "/a", 2) == NULL);
  CHECK_EQ_INT(tide_index_load_under(ix, store, app, a, a_lens, 1), 0);
  /* Not "/a" NUL "x", "/a.x" nor "/ab": siblings, not below. */
  CHECK_EQ_INT(tide_index_count(ix), 4);
  CHECK(tide_index_find(ix, "/a\0x", 4) == NULL);
  CHECK(tide_index_find(ix, "/a.x", 4) == NULL);
  CHECK_EQ_INT(tide_index_deps_count(ix), 1);
  CHECK(!tide_index_deps_checked(ix, 0));
  tide_index_deps_set_valid(ix, 0, 1);
  CHECK(tide_index_deps_checked(ix, 0));
  tide_index_find(ix, "/a/b", 4)->seen = TIDE_SEEN_RAN;
  tide_index_find(ix, "/a/c", 4)->seen = TIDE_SEEN_FAILED;
  CHECK_EQ_INT(tide_index_load_under(ix, store, app, more, more_lens, 5), 0);
  /* "/q/1" and "/q/2" once each, under "/q" given too; "/a/b" kept. */
  CHECK_EQ_INT(tide_index_count(ix), 7);
  CHECK_EQ_INT(seen(ix, "/a/b", 4), TIDE_SEEN_RAN);
  CHECK_EQ_INT(seen(ix, "/a/c", 4), TIDE_SEEN_FAILED);
  CHECK_EQ_INT(seen(ix, "/b", 2), TIDE_SEEN_NONE);
  CHECK_EQ_INT(seen(ix, "/a/b/c", 6), TIDE_SEEN_NONE);
  for (i = 1; i < tide_index_count(ix); i++) {
    const tide_IndexEntry *x = tide_index_at(ix, i - 1);
    const tide_IndexEntry *y = tide_index_at(ix, i);
    size_t n = x->path_len < y->path_len ? x->path_len : y->path_len;
    int c = memcmp(tide_index_path(ix, x), tide_index_path(ix, y), n);
    CHECK(c < 0 || (c == 0 && x->path_len < y->path_len));
  }
  e = tide_index_find_id(ix, ids[7]); /* "/b", by id */
  CHECK(e != NULL && e->path_len == 2);
  /* Set A checked and valid still; B ("/b"'s) new, unchecked. */
  CHECK_EQ_INT(tide_index_deps_count(ix), 2);
  for (i = 0; i < 2; i++) {
    const uint8_t *set = tide_index_deps_at(ix, i, &example);
    CHECK_EQ_INT(tide_index_deps_checked(ix, i), set[0] == 1);
  }
  CHECK(tide_index_deps_valid(ix, tide_index_find(ix, "/a/c", 4)));
  CHECK(!tide_index_deps_valid(ix, tide_index_find(ix, "/b", 2)));
  CHECK_EQ_INT(tide_index_keep_subtree(ix, "/q", 2), 2);
  /* Entries read later that sort first: the sets are numbered again in
  ** path order, each keeping what was said of it. */
  tide_index_scope(ix);
  CHECK_EQ_INT(tide_index_load_under(ix, store, app, more + 2, more_lens + 2,
                                     1), 0); /* "/b": set B */
  tide_index_deps_set_valid(ix, 0, 0);
  tide_index_find(ix, "/b", 2)->seen = TIDE_SEEN_RAN;
  CHECK_EQ_INT(tide_index_load_under(ix, store, app, a, a_lens, 1), 0);
  CHECK_EQ_INT(tide_index_count(ix), 5);
  CHECK_EQ_INT(tide_index_deps_count(ix), 2);
  CHECK_EQ_INT(tide_index_deps_at(ix, 0, &example)[0], 1); /* A, new */
  CHECK(!tide_index_deps_checked(ix, 0));
  CHECK_EQ_INT(tide_index_deps_at(ix, 1, &example)[0], 2);
  CHECK(tide_index_deps_checked(ix, 1));
  CHECK(example == tide_index_find(ix, "/b", 2));
  CHECK_EQ_INT(seen(ix, "/b", 2), TIDE_SEEN_RAN);
  tide_index_deps_set_valid(ix, 0, 1);
  CHECK(tide_index_deps_valid(ix, tide_index_find(ix, "/a/c", 4)));
  CHECK(!tide_index_deps_valid(ix, tide_index_find(ix, "/b", 2)));
  /* File states: the store's are not read, puts are kept. */
  CHECK_EQ_INT(tide_index_load_source(ix, store, app, "fs:s", 4), 0);
  CHECK(tide_index_file_fp(ix, "fs:s", 4, "k", 1, 1, 2, 3) == NULL);
  CHECK_EQ_INT(tide_index_file_put(ix, store, app, "fs:s", 4, "k", 1, 1, 2,
                                   3, fp), 0);
  CHECK(tide_index_file_fp(ix, "fs:s", 4, "k", 1, 1, 2, 3) != NULL);
  tide_index_free(ix);
  ix = loaded();
  CHECK_EQ_INT(tide_index_load_source(ix, store, app, "fs:s", 4), 0);
  CHECK(tide_index_file_fp(ix, "fs:s", 4, "k", 1, 1, 2, 3) != NULL);
  CHECK_EQ_INT(tide_index_file_put(ix, store, app, "fs:s", 4, "j", 1, 1, 2,
                                   3, fp), 0);
  /* Scoped again: what a whole load held is forgotten. */
  tide_index_scope(ix);
  CHECK_EQ_INT(tide_index_count(ix), 0);
  /* Siblings that sort between a path and its subtree, given with them
  ** in any order: each read once. */
  {
    static const char *const mixed[] = { "/a/b", "/a.x", "/a", "/a\0x" };
    static const size_t mixed_lens[] = { 4, 4, 2, 4 };
    CHECK_EQ_INT(tide_index_load_under(ix, store, app, mixed, mixed_lens, 4),
                 0);
    CHECK_EQ_INT(tide_index_count(ix), 6);
    CHECK(tide_index_find(ix, "/a\0x", 4) != NULL);
    CHECK(tide_index_find(ix, "/a/b/c", 6) != NULL);
    tide_index_scope(ix);
  }
  CHECK_EQ_INT(tide_index_load_source(ix, store, app, "fs:s", 4), 0);
  CHECK(tide_index_file_fp(ix, "fs:s", 4, "j", 1, 1, 2, 3) == NULL);
  /* A whole load ends the scope. */
  CHECK_EQ_INT(tide_index_load(ix, store, app), 0);
  CHECK_EQ_INT(tide_index_count(ix), NPATHS);
  CHECK_EQ_INT(tide_index_load_source(ix, store, app, "fs:s", 4), 0);
  CHECK(tide_index_file_fp(ix, "fs:s", 4, "j", 1, 1, 2, 3) != NULL);
  tide_index_free(ix);
}

int main(void) {
  static const CheckTest tests[] = {
    {"lookups by path and id", test_lookups},
    {"subtrees and siblings between", test_subtrees},
    {"keeping below a base except some paths", test_keep_below_except},
    {"counting what failed below a base", test_failed_below},
    {"dependency sets", test_deps},
    {"scoped: loaded under paths", test_load_under},
    {"file states", test_file_states},
    {"file states in any order", test_file_states_order},
    {"file states added in path order", test_file_states_added_in_order},
    {"rows loaded in any order", test_load_orders},
    {"mount_each over a keyed source", test_each},
    {"a load on a thread of its own", test_load_async},
    {"kept up to date across cycles", test_warm},
    {"read again under the items workers ran", test_reload_under},
    {"what an entry holds is what the store recorded", test_view},
    {NULL, NULL},
  };
  int rc;
  setup();
  rc = check_run("index", tests);
  teardown();
  return rc;
}
