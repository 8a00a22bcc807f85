/* The SQLite connector's C layer: connections, batches, queries, and
** batches sent to a connection's own thread. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "sqlite_db.h"
#include "sqlite_send.h"

static char dir[64];

static const char *path_of(const char *name) {
  static char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

static tide_SqlValue text(const char *s) {
  tide_SqlValue v = {TIDE_SQL_TEXT, 0, 0, s, strlen(s)};
  return v;
}

static tide_SqlValue integer(int64_t i) {
  tide_SqlValue v = {TIDE_SQL_INTEGER, i, 0, NULL, 0};
  return v;
}

/* The rows of a query as "a|b\n" lines, into out. */
static int dump(tide_SqliteDb *db, const char *sql, char *out, size_t len) {
  tide_SqliteQuery q;
  tide_SqlValue v;
  size_t n = 0;
  int rc, i;
  out[0] = '\0';
  if ((rc = tide_sqlite_query_begin(&q, db, sql)) != 0) {
    tide_sqlite_query_close(&q);
    return rc;
  }
  while ((rc = tide_sqlite_query_next(&q)) == 1) {
    for (i = 0; i < q.ncols && n < len; i++) {
      tide_sqlite_query_value(&q, i, &v);
      if (v.type == TIDE_SQL_INTEGER)
        n += (size_t)snprintf(out + n, len - n, "%s%lld", i ? "|" : "",
                              (long long)v.i);
      else
        n += (size_t)snprintf(out + n, len - n, "%s%.*s", i ? "|" : "",
                              (int)v.len, v.p ? (const char *)v.p : "");
    }
    if (n < len) n += (size_t)snprintf(out + n, len - n, "\n");
  }
  tide_sqlite_query_close(&q);
  return rc;
}

static const char *const columns[] = {"id", "n", "body"};
static const int keys[] = {0};

static void test_open_modes(void) {
  tide_SqliteDb *db;
  char out[256];
  CHECK_EQ_INT(tide_sqlite_db_open(&db, path_of("none.db"),
                                   TIDE_SQLITE_WRITE, NULL, NULL),
               TIDE_ENOTFOUND);
  CHECK_STR_CONTAINS(tide_sqlite_db_errmsg(db), "no such file");
  tide_sqlite_db_close(db);
  CHECK(access(path_of("none.db"), F_OK) != 0);
  CHECK_EQ_INT(tide_sqlite_db_open(&db, path_of("sub/dir/a.db"),
                                   TIDE_SQLITE_CREATE, NULL, NULL), 0);
  /* WAL mode: a write goes to the -wal file beside the database. */
  CHECK_EQ_INT(tide_sqlite_db_exec(db, "CREATE TABLE x (a)"), 0);
  CHECK(access(path_of("sub/dir/a.db-wal"), F_OK) == 0);
  CHECK_EQ_INT(dump(db, "SELECT name FROM sqlite_master", out, sizeof out),
               0);
  CHECK(strcmp(out, "x\n") == 0);
  CHECK_EQ_INT(tide_sqlite_db_stale(db), 0);
  tide_sqlite_db_close(db);
  tide_sqlite_db_close(NULL);
}

static void batch_table(int staged) {
  tide_SqliteTable t = {"t", columns, 3, keys, 1, staged};
  tide_SqliteDb *db;
  tide_SqlValue row[3], key[1];
  char out[256];
  CHECK_EQ_INT(tide_sqlite_db_open(&db, path_of(staged ? "s.db" : "b.db"),
                                   TIDE_SQLITE_CREATE, NULL, NULL), 0);
  CHECK_EQ_INT(tide_sqlite_db_exec(db, "CREATE TABLE t (id TEXT NOT NULL, "
               "n INTEGER NOT NULL, body BLOB, PRIMARY KEY (id))"), 0);
  CHECK_EQ_INT(tide_sqlite_batch_begin(db, &t), 0);
  row[0] = text("a"), row[1] = integer(1), row[2] = text("x");
  CHECK_EQ_INT(tide_sqlite_batch_upsert(db, row), 0);
  row[0] = text("b"), row[1] = integer(2), row[2].type = TIDE_SQL_NULL;
  CHECK_EQ_INT(tide_sqlite_batch_upsert(db, row), 0);
  row[0] = text("a"), row[1] = integer(3), row[2] = text("y");
  CHECK_EQ_INT(tide_sqlite_batch_upsert(db, row), 0);
  key[0] = text("zz");
  CHECK_EQ_INT(tide_sqlite_batch_delete(db, key), 0);
  CHECK_EQ_INT(tide_sqlite_batch_commit(db), 0);
  CHECK_EQ_INT(dump(db, "SELECT id, n, coalesce(body, '-') FROM t ORDER BY "
               "id", out, sizeof out), 0);
  CHECK(strcmp(out, "a|3|y\nb|2|-\n") == 0);
  /* Deletes, and a failed batch leaves nothing behind. */
  CHECK_EQ_INT(tide_sqlite_batch_begin(db, &t), 0);
  key[0] = text("a");
  CHECK_EQ_INT(tide_sqlite_batch_delete(db, key), 0);
  CHECK_EQ_INT(tide_sqlite_batch_commit(db), 0);
  CHECK_EQ_INT(tide_sqlite_batch_begin(db, &t), 0);
  CHECK_EQ_INT(tide_sqlite_batch_delete(db, (key[0] = text("b"), key)), 0);
  row[0] = text("c"), row[1].type = TIDE_SQL_NULL;
  if (staged) {
    CHECK_EQ_INT(tide_sqlite_batch_upsert(db, row), 0);
    CHECK_EQ_INT(tide_sqlite_batch_commit(db), TIDE_EIO);
  } else {
    CHECK_EQ_INT(tide_sqlite_batch_upsert(db, row), TIDE_EIO);
    tide_sqlite_batch_rollback(db);
  }
  CHECK_STR_CONTAINS(tide_sqlite_db_errmsg(db), "NOT NULL constraint");
  CHECK_EQ_INT(dump(db, "SELECT id FROM t", out, sizeof out), 0);
  CHECK(strcmp(out, "b\n") == 0);
  CHECK_EQ_INT(dump(db, "SELECT count(*) FROM sqlite_temp_master", out,
                    sizeof out), 0);
  CHECK(strcmp(out, "0\n") == 0);
  tide_sqlite_db_close(db);
}

static void test_batch(void) { batch_table(0); }
static void test_batch_staged(void) { batch_table(1); }

static void test_misuse(void) {
  tide_SqliteTable none = {"t", columns, 3, keys, 0, 0};
  tide_SqliteDb *db;
  tide_SqliteQuery q;
  tide_SqlValue row[3];
  CHECK_EQ_INT(tide_sqlite_db_open(&db, path_of("m.db"), TIDE_SQLITE_CREATE,
                                   NULL, NULL), 0);
  CHECK_EQ_INT(tide_sqlite_batch_begin(db, &none), TIDE_EINVAL);
  CHECK_EQ_INT(tide_sqlite_batch_upsert(db, row), TIDE_EINVAL);
  CHECK_EQ_INT(tide_sqlite_batch_commit(db), TIDE_EINVAL);
  CHECK_EQ_INT(tide_sqlite_query_begin(&q, db, "CREATE TABLE x (a)"),
               TIDE_EINVAL);
  CHECK_STR_CONTAINS(tide_sqlite_db_errmsg(db), "must only read");
  tide_sqlite_query_close(&q);
  CHECK_EQ_INT(tide_sqlite_query_begin(&q, db, "SELECT 1; SELECT 2"),
               TIDE_EINVAL);
  tide_sqlite_query_close(&q);
  CHECK_EQ_INT(tide_sqlite_query_begin(&q, db, "SELECT 1 ; "), 0);
  tide_sqlite_query_close(&q);
  CHECK_EQ_INT(tide_sqlite_query_begin(&q, db, "SELECT * FROM nope"),
               TIDE_EIO);
  CHECK_STR_CONTAINS(tide_sqlite_db_errmsg(db), "no such table: nope");
  tide_sqlite_query_close(&q);
  CHECK_EQ_INT(tide_sqlite_db_exec(db, "bogus"), TIDE_EIO);
  CHECK_STR_CONTAINS(tide_sqlite_db_errmsg(db), "syntax error");
  tide_sqlite_db_close(db);
}

static void test_stale(void) {
  tide_SqliteDb *db;
  char from[128];
  CHECK_EQ_INT(tide_sqlite_db_open(&db, path_of("st.db"), TIDE_SQLITE_CREATE,
                                   NULL, NULL), 0);
  CHECK_EQ_INT(tide_sqlite_db_stale(db), 0);
  snprintf(from, sizeof from, "%s", path_of("st.db"));
  CHECK_EQ_INT(rename(from, path_of("moved.db")), 0);
  CHECK_EQ_INT(tide_sqlite_db_stale(db), 1);
  tide_sqlite_db_close(db);
}

/* A batch sent to the connection's thread: its rows copied at once, its
** outcome kept through a settle and reported once, a second batch refused
** until then. */
static void test_send(void) {
  tide_SqliteTable t = {"t", columns, 3, keys, 1, 0};
  tide_SqliteDb *db;
  tide_SqliteSend s;
  tide_SqlValue row[3], key[1];
  char id[8], out[256];
  int i;
  CHECK_EQ_INT(tide_sqlite_db_open(&db, path_of("send.db"),
                                   TIDE_SQLITE_CREATE, NULL, NULL), 0);
  CHECK_EQ_INT(tide_sqlite_db_exec(db, "CREATE TABLE t (id TEXT NOT NULL, "
               "n INTEGER NOT NULL CHECK (n < 100), body BLOB, PRIMARY KEY "
               "(id))"), 0);
  tide_sqlite_send_init(&s, db, NULL, NULL);
  CHECK_EQ_INT(tide_sqlite_send_wait(&s), 0); /* nothing sent yet */
  CHECK_EQ_INT(tide_sqlite_send_begin(&s, &t), 0);
  for (i = 0; i < 50; i++) {
    /* The same buffer for every row: the sender copies it. */
    snprintf(id, sizeof id, "r%02d", i);
    row[0] = text(id), row[1] = integer(i), row[2].type = TIDE_SQL_NULL;
    CHECK_EQ_INT(tide_sqlite_send_row(&s, 0, row), 0);
  }
  key[0] = text("r07");
  CHECK_EQ_INT(tide_sqlite_send_row(&s, 1, key), 0);
  CHECK_EQ_INT(tide_sqlite_send_go(&s), 0);
  CHECK_EQ_INT(tide_sqlite_send_wait(&s), 0);
  CHECK_EQ_INT(dump(db, "SELECT count(*), sum(n) FROM t", out, sizeof out),
               0);
  CHECK(strcmp(out, "49|1218\n") == 0);
  /* A row the database refuses: nothing of the batch is written. */
  CHECK_EQ_INT(tide_sqlite_send_begin(&s, &t), 0);
  row[0] = text("new"), row[1] = integer(1);
  CHECK_EQ_INT(tide_sqlite_send_row(&s, 0, row), 0);
  row[0] = text("big"), row[1] = integer(100);
  CHECK_EQ_INT(tide_sqlite_send_row(&s, 0, row), 0);
  CHECK_EQ_INT(tide_sqlite_send_go(&s), 0);
  tide_sqlite_send_settle(&s);
  CHECK_EQ_INT(dump(db, "SELECT count(*) FROM t WHERE id IN ('new', 'big')",
                    out, sizeof out), 0);
  CHECK(strcmp(out, "0\n") == 0);
  CHECK_EQ_INT(tide_sqlite_send_begin(&s, &t), TIDE_EINVAL);
  CHECK_EQ_INT(tide_sqlite_send_wait(&s), TIDE_EIO);
  CHECK_STR_CONTAINS(s.msg, "CHECK constraint failed");
  CHECK_EQ_INT(tide_sqlite_send_wait(&s), 0);
  /* Usable again; a batch begun and never sent is dropped at close. */
  CHECK_EQ_INT(tide_sqlite_send_begin(&s, &t), 0);
  CHECK_EQ_INT(tide_sqlite_send_row(&s, 0, row), 0);
  tide_sqlite_send_close(&s);
  CHECK_EQ_INT(dump(db, "SELECT count(*) FROM t", out, sizeof out), 0);
  CHECK(strcmp(out, "49\n") == 0);
  tide_sqlite_db_close(db);
}

/* A connection in a write transaction, ended by a thread 100 ms later. */
static void *commit_later(void *db) {
  usleep(100 * 1000);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  return NULL;
}

/* A new database's switch to WAL while another connection writes it (two
** processes setting up tables in one file): SQLite refuses it at once,
** without its busy handler; the switch waits for the writer instead. */
static void test_wal_switch_waits(void) {
  const char *path = path_of("busy.db");
  char msg[TIDE_SQLITE_MSG_SIZE];
  sqlite3 *writer, *db = NULL;
  pthread_t t;
  CHECK_EQ_INT(SQLITE_OK, sqlite3_open(path, &writer));
  CHECK_EQ_INT(SQLITE_OK, sqlite3_exec(writer, "CREATE TABLE t(x);"
    " BEGIN IMMEDIATE; INSERT INTO t VALUES (1)", NULL, NULL, NULL));
  CHECK_EQ_INT(0, tide_sqlite_conn_open(&db, path, TIDE_SQLITE_CREATE,
                                        "database", msg, sizeof msg));
  CHECK_EQ_INT(0, pthread_create(&t, NULL, commit_later, writer));
  CHECK_EQ_INT(0, tide_sqlite_conn_settle(db, path, TIDE_SQLITE_CREATE,
                                          "database", msg, sizeof msg));
  pthread_join(t, NULL);
  sqlite3_close_v2(db);
  sqlite3_close_v2(writer);
}

int main(void) {
  static const CheckTest tests[] = {
    {"WAL switch waits for a writer", test_wal_switch_waits},
    {"open modes", test_open_modes},
    {"batch", test_batch},
    {"staged batch", test_batch_staged},
    {"misuse", test_misuse},
    {"stale", test_stale},
    {"send", test_send},
    {NULL, NULL},
  };
  char cmd[96];
  int rc;
  snprintf(dir, sizeof dir, "/tmp/tide-sqlite-db.XXXXXX");
  if (mkdtemp(dir) == NULL) return perror("mkdtemp"), 1;
  rc = check_run("sqlite_db", tests);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return rc;
}
