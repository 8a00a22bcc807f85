/*
** Tests of the state store's space: a store whose pages are mostly free
** gives them back (tide_store_reclaim), on real files in a temporary
** directory.
*/
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "check.h"
#include "store.h"

#define VALUE_SIZE 3000

typedef struct {
  char dir[64];
  char path[128];
} Tmp;

static void tmp_init(Tmp *t) {
  snprintf(t->dir, sizeof t->dir, "/tmp/tide-space-XXXXXX");
  if (mkdtemp(t->dir) == NULL) {
    perror("mkdtemp");
    exit(2);
  }
  snprintf(t->path, sizeof t->path, "%s/state.db", t->dir);
}

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *ftw) {
  (void)st;
  (void)type;
  (void)ftw;
  return remove(path);
}

static void tmp_close(Tmp *t) {
  nftw(t->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static long long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static tide_Store *open_ok(const char *path, int flags) {
  tide_Store *s = NULL;
  int rc = tide_store_open(&s, path, flags, NULL, NULL);
  if (rc != 0) {
    fprintf(stderr, "  open %s: %s\n", path, tide_store_errmsg(s));
    exit(2);
  }
  return s;
}

static void key_of(uint8_t *key, int i) {
  memset(key, 0, TIDE_FP_SIZE);
  memcpy(key, &i, sizeof i);
}

/* Puts memo entries first..last of app 1, each VALUE_SIZE bytes. */
static void fill(tide_Store *s, int first, int last) {
  static uint8_t value[VALUE_SIZE];
  uint8_t key[TIDE_FP_SIZE];
  tide_StoreMemo m;
  int i;
  memset(&m, 0, sizeof m);
  m.app_id = 1;
  m.fn_name = "f";
  m.fn_name_len = 1;
  m.value = value;
  m.value_len = sizeof value;
  for (i = first; i <= last; i++) {
    memset(value, i & 0xff, sizeof value);
    key_of(key, i);
    m.key = key;
    CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
  }
  CHECK_EQ_INT(tide_store_flush(s), 0);
}

static void drop(tide_Store *s, int first, int last) {
  uint8_t key[TIDE_FP_SIZE];
  int i;
  for (i = first; i <= last; i++) {
    key_of(key, i);
    CHECK_EQ_INT(tide_store_memo_delete(s, 1, key), 0);
  }
  CHECK_EQ_INT(tide_store_flush(s), 0);
}

/* Entry i is there, whole. */
static int entry_ok(tide_Store *s, int i) {
  uint8_t key[TIDE_FP_SIZE];
  tide_StoreMemo m;
  key_of(key, i);
  return tide_store_memo_get(s, 1, key, &m) == 0 &&
         m.value_len == VALUE_SIZE &&
         ((const uint8_t *)m.value)[VALUE_SIZE - 1] == (i & 0xff);
}

static void test_new_store_gives_back(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreSpace sp;
  int64_t freed = -1;
  long long full, small;
  tmp_init(&t);
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_space(s, &sp), 0);
  CHECK_EQ_INT(sp.incremental, 1);
  fill(s, 1, 4000);
  CHECK_EQ_INT(tide_store_reclaim(s, &freed), 0);
  CHECK_EQ_INT(freed, 0); /* nothing free */
  drop(s, 1, 3600);
  CHECK_EQ_INT(tide_store_space(s, &sp), 0);
  CHECK(sp.free_pages * 100 > sp.pages * 80);
  full = file_size(t.path);
  CHECK(full > 12000000);
  CHECK_EQ_INT(tide_store_reclaim(s, &freed), 0);
  /* The free pages, and the pointer-map pages that tracked them. */
  CHECK(freed >= sp.free_pages);
  CHECK(freed < sp.free_pages + sp.free_pages / 50);
  small = file_size(t.path);
  CHECK(small > 0 && small * 5 < full);
  CHECK_EQ_INT(tide_store_space(s, &sp), 0);
  CHECK_EQ_INT(sp.free_pages, 0);
  CHECK_EQ_INT(small, sp.pages * sp.page_size);
  CHECK(entry_ok(s, 3601) && entry_ok(s, 4000));
  /* The store goes on as before. */
  fill(s, 5000, 5100);
  CHECK(entry_ok(s, 5100));
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

static void test_below_thresholds(void) {
  Tmp t;
  tide_Store *s;
  int64_t freed = -1;
  long long before;
  tmp_init(&t);
  s = open_ok(t.path, TIDE_STORE_WRITE);
  /* A fifth of the pages free: under the share. */
  fill(s, 1, 2000);
  drop(s, 1, 400);
  before = file_size(t.path);
  CHECK_EQ_INT(tide_store_reclaim(s, &freed), 0);
  CHECK_EQ_INT(freed, 0);
  CHECK_EQ_INT(file_size(t.path), before);
  CHECK_EQ_INT(tide_store_close(s), 0);
  /* Most pages free, but less than the minimum in bytes. */
  tmp_close(&t);
  tmp_init(&t);
  s = open_ok(t.path, TIDE_STORE_WRITE);
  fill(s, 1, 200);
  drop(s, 1, 190);
  CHECK_EQ_INT(tide_store_reclaim(s, &freed), 0);
  CHECK_EQ_INT(freed, 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

/* A store made before auto_vacuum was set is compacted once by VACUUM,
** which switches it to incremental vacuum. */
static void test_old_store_switched(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreSpace sp;
  sqlite3 *db;
  int64_t freed = 0;
  long long full;
  tmp_init(&t);
  tide_store_close(open_ok(t.path, TIDE_STORE_WRITE));
  CHECK_EQ_INT(sqlite3_open(t.path, &db), SQLITE_OK);
  CHECK_EQ_INT(sqlite3_exec(db, "PRAGMA auto_vacuum = NONE; VACUUM", NULL,
                            NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_space(s, &sp), 0);
  CHECK_EQ_INT(sp.incremental, 0);
  fill(s, 1, 3000);
  drop(s, 1, 2700);
  full = file_size(t.path);
  CHECK_EQ_INT(tide_store_reclaim(s, &freed), 0);
  CHECK(freed > 0);
  CHECK(file_size(t.path) * 5 < full);
  CHECK_EQ_INT(tide_store_space(s, &sp), 0);
  CHECK_EQ_INT(sp.incremental, 1);
  CHECK_EQ_INT(sp.free_pages, 0);
  CHECK(entry_ok(s, 2701) && entry_ok(s, 3000));
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

/* A reader on an older snapshot neither makes reclaim wait nor fail: the
** file shrinks at a later checkpoint, here the last connection's close. */
static void test_reader_does_not_block(void) {
  Tmp t;
  tide_Store *s;
  sqlite3 *db;
  sqlite3_stmt *st;
  int64_t freed = 0;
  long long full;
  double t0;
  tmp_init(&t);
  s = open_ok(t.path, TIDE_STORE_WRITE);
  fill(s, 1, 3000);
  drop(s, 1, 2700);
  full = file_size(t.path);
  CHECK_EQ_INT(sqlite3_open_v2(t.path, &db, SQLITE_OPEN_READONLY, NULL),
               SQLITE_OK);
  CHECK_EQ_INT(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
  CHECK_EQ_INT(sqlite3_prepare_v2(db, "SELECT count(*) FROM memos", -1, &st,
                                  NULL), SQLITE_OK);
  CHECK_EQ_INT(sqlite3_step(st), SQLITE_ROW);
  CHECK_EQ_INT(sqlite3_column_int64(st, 0), 300);
  t0 = now_s();
  CHECK_EQ_INT(tide_store_reclaim(s, &freed), 0);
  CHECK(now_s() - t0 < 2.0);
  CHECK(freed > 0);
  CHECK(entry_ok(s, 3000));
  sqlite3_finalize(st);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  sqlite3_close(db);
  CHECK_EQ_INT(tide_store_close(s), 0);
  CHECK(file_size(t.path) * 5 < full);
  tmp_close(&t);
}

static void test_read_only_refused(void) {
  Tmp t;
  tide_Store *s;
  int64_t freed = -1;
  tmp_init(&t);
  tide_store_close(open_ok(t.path, TIDE_STORE_WRITE));
  s = open_ok(t.path, TIDE_STORE_READ);
  CHECK_EQ_INT(tide_store_reclaim(s, &freed), TIDE_EINVAL);
  CHECK_EQ_INT(freed, 0);
  CHECK_STR_CONTAINS(tide_store_errmsg(s), "state store is open read-only");
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

static const CheckTest tests[] = {
  { "a new store gives free pages back", test_new_store_gives_back },
  { "below the thresholds nothing moves", test_below_thresholds },
  { "an old store is compacted and switched", test_old_store_switched },
  { "a reader does not block reclaim", test_reader_does_not_block },
  { "a read-only store refuses", test_read_only_refused },
  { NULL, NULL },
};

int main(void) { return check_run("store space", tests); }
