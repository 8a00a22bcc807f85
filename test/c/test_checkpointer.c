/*
** Tests of the checkpointer (checkpointer.h): a writer's log copied back
** on libuv's thread pool, on a real database file and a real loop.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "buf.h"
#include "check.h"
#include "checkpointer.h"

#define BLOB 8192

typedef struct {
  char dir[64];
  char path[128], wal[160];
} Tmp;

static void tmp_init(Tmp *t) {
  snprintf(t->dir, sizeof t->dir, "/tmp/tide-ckpt-XXXXXX");
  if (mkdtemp(t->dir) == NULL) {
    perror("mkdtemp");
    exit(2);
  }
  snprintf(t->path, sizeof t->path, "%s/db", t->dir);
  snprintf(t->wal, sizeof t->wal, "%s/db-wal", t->dir);
}

static void tmp_close(Tmp *t) {
  char shm[160];
  snprintf(shm, sizeof shm, "%s-shm", t->path);
  unlink(t->wal);
  unlink(shm);
  unlink(t->path);
  rmdir(t->dir);
}

static long long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

static sqlite3 *open_writer(const char *path) {
  sqlite3 *db = NULL;
  CHECK_EQ_INT(sqlite3_open_v2(path, &db,
                               SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX, NULL), SQLITE_OK);
  CHECK_EQ_INT(sqlite3_exec(db, "PRAGMA journal_mode = WAL; "
                            "PRAGMA synchronous = NORMAL; "
                            "CREATE TABLE t (v BLOB)", NULL, NULL, NULL),
               SQLITE_OK);
  return db;
}

/* One commit of a BLOB-byte row (two pages and more). */
static void commit_row(sqlite3 *db) {
  sqlite3_stmt *st;
  CHECK_EQ_INT(sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?)", -1, &st,
                                  NULL), SQLITE_OK);
  sqlite3_bind_zeroblob(st, 1, BLOB);
  CHECK_EQ_INT(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
}

static long long count_rows(const char *path) {
  sqlite3 *db;
  sqlite3_stmt *st;
  long long n = -1;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) ==
        SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close_v2(db);
  return n;
}

/* A new database's writer, with a checkpointer on loop attached. */
static tide_Ckpt *attached(Tmp *t, uv_loop_t *loop, sqlite3 **db) {
  tide_Ckpt *c = NULL;
  tmp_init(t);
  CHECK_EQ_INT(uv_loop_init(loop), 0);
  *db = open_writer(t->path);
  CHECK_EQ_INT(tide_ckpt_attach(&c, *db, t->path, loop, tide_alloc_default,
                                NULL), 0);
  return c;
}

/* With the loop run after every commit (so each checkpoint finishes before
** the next commit), the log never grows far past the threshold; SQLite's
** own automatic checkpoint is off, so without the pool's the log would
** hold every row. */
static void test_the_log_stays_bounded(void) {
  Tmp t;
  uv_loop_t loop;
  tide_Ckpt *c;
  sqlite3 *db;
  long long max_wal = 0, rows = 2000, i;
  c = attached(&t, &loop, &db);
  for (i = 0; i < rows; i++) {
    long long n;
    commit_row(db);
    tide_ckpt_poll(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    n = file_size(t.wal);
    if (n > max_wal) max_wal = n;
  }
  CHECK(tide_ckpt_done(c) >= 3);
  CHECK_EQ_INT(tide_ckpt_failed(c), 0);
  /* The threshold, one commit's frames and the log's headers. */
  CHECK(max_wal <= (TIDE_CKPT_PAGES + 8) * (4096 + 24) + 32);
  CHECK(max_wal < rows * BLOB / 2);
  tide_ckpt_detach(c);
  CHECK_EQ_INT(sqlite3_close_v2(db), SQLITE_OK);
  CHECK_EQ_INT(count_rows(t.path), rows);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
  tmp_close(&t);
}

/* A writer that closes while its checkpoint is queued or running: the
** checkpoint finishes, and its memory is freed when the loop runs. */
static void test_detached_while_busy(void) {
  Tmp t;
  uv_loop_t loop;
  tide_Ckpt *c;
  sqlite3 *db;
  int i;
  c = attached(&t, &loop, &db);
  /* Past the threshold without running the loop: one checkpoint queued. */
  for (i = 0; i < 600; i++) {
    commit_row(db);
    tide_ckpt_poll(c);
  }
  tide_ckpt_detach(c);
  CHECK_EQ_INT(sqlite3_close_v2(db), SQLITE_OK);
  CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
  CHECK_EQ_INT(count_rows(t.path), 600);
  tmp_close(&t);
}

/* The hook only notes the log's size (a commit may run on a thread that
** must not touch the loop): nothing is queued until the loop's thread
** polls, and then one checkpoint. */
static void test_queued_only_when_polled(void) {
  Tmp t;
  uv_loop_t loop;
  tide_Ckpt *c;
  sqlite3 *db;
  int i;
  c = attached(&t, &loop, &db);
  for (i = 0; i < 600; i++) commit_row(db);
  CHECK_EQ_INT(uv_loop_alive(&loop), 0);
  tide_ckpt_poll(c);
  tide_ckpt_poll(c);
  CHECK(uv_loop_alive(&loop) != 0);
  CHECK_EQ_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
  CHECK_EQ_INT(tide_ckpt_done(c), 1);
  CHECK(file_size(t.wal) > 0);
  tide_ckpt_detach(c);
  CHECK_EQ_INT(sqlite3_close_v2(db), SQLITE_OK);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
  CHECK_EQ_INT(count_rows(t.path), 600);
  tmp_close(&t);
}

/* Detached with nothing under way: freed at once, the writer's own
** checkpoint takes over. */
static void test_detached_when_idle(void) {
  Tmp t;
  uv_loop_t loop;
  tide_Ckpt *c;
  sqlite3 *db;
  c = attached(&t, &loop, &db);
  commit_row(db);
  CHECK_EQ_INT(tide_ckpt_done(c), 0);
  tide_ckpt_detach(c);
  CHECK_EQ_INT(uv_loop_alive(&loop), 0);
  CHECK_EQ_INT(sqlite3_close_v2(db), SQLITE_OK);
  /* The last connection's close wrote the log back and removed it. */
  CHECK_EQ_INT(file_size(t.wal), 0);
  CHECK_EQ_INT(count_rows(t.path), 1);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
  tmp_close(&t);
}

int main(void) {
  static const CheckTest tests[] = {
    {"the log stays bounded", test_the_log_stays_bounded},
    {"detached while busy", test_detached_while_busy},
    {"detached when idle", test_detached_when_idle},
    {"queued only when polled", test_queued_only_when_polled},
    {NULL, NULL},
  };
  return check_run("checkpointer", tests);
}
