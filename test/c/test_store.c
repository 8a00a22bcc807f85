/*
** Tests of the state store on real files in a temporary directory, or,
** when TIDE_TEST_PG names a PostgreSQL database as a location
** (postgresql://...), in a fresh schema of it per test: one suite, two
** backends. A few tests are of one backend only (files, SQLite's format
** history; the schemas of PostgreSQL). The writer-lock tests run second
** processes: this binary re-executes itself with "--child MODE PATH FD"
** (see child_main), so each child is a fresh process with its own
** connection.
*/
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "buf.h"
#include "check.h"
#include "index.h"
#include "store.h"

/* ---- Helpers ---- */

typedef struct {
  char dir[64];
  char path[512];
  char schema[64]; /* PostgreSQL: the test's schema */
} Tmp;

/* TIDE_TEST_PG, or NULL: the tests then run on files. */
static const char *pg_base(void) {
  const char *base = getenv("TIDE_TEST_PG");
  return base && base[0] ? base : NULL;
}

/* Runs sql (no result) on the database of TIDE_TEST_PG in schema, or
** with no schema set when schema is NULL; 0 or -1. */
static int pg_exec(const char *schema, const char *sql);

static void tmp_init(Tmp *t, const char *name) {
  static int made;
  snprintf(t->dir, sizeof t->dir, "/tmp/tide-store-XXXXXX");
  if (mkdtemp(t->dir) == NULL) {
    perror("mkdtemp");
    exit(2);
  }
  t->schema[0] = '\0';
  if (pg_base()) {
    snprintf(t->schema, sizeof t->schema, "test_store_%ld_%d",
             (long)getpid(), ++made);
    snprintf(t->path, sizeof t->path, "%s%cschema=%s", pg_base(),
             strchr(pg_base(), '?') ? '&' : '?', t->schema);
    return;
  }
  snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
}

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *ftw) {
  (void)st;
  (void)type;
  (void)ftw;
  return remove(path);
}

static void tmp_close(Tmp *t) {
  char sql[128];
  nftw(t->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  if (t->schema[0]) {
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", t->schema);
    pg_exec(NULL, sql);
  }
}

/* ---- PostgreSQL: the same reads and writes as on files ---- */

/* A connection to TIDE_TEST_PG's database in the schema of location (its
** schema= parameter, which libpq does not know, left out). */
static PGconn *pg_connect(const char *schema) {
  char info[512], sql[128], *p;
  PGconn *conn;
  snprintf(info, sizeof info, "%s", pg_base());
  if ((p = strstr(info, "schema=")) != NULL) p[-1] = '\0';
  conn = PQconnectdb(info);
  if (PQstatus(conn) != CONNECTION_OK) {
    fprintf(stderr, "  %s", PQerrorMessage(conn));
    exit(2);
  }
  PQclear(PQexec(conn, "SET client_min_messages = warning"));
  if (schema) {
    snprintf(sql, sizeof sql, "SET search_path TO %s", schema);
    PQclear(PQexec(conn, sql));
  }
  return conn;
}

/* The schema= of a test's location. */
static const char *schema_of(const char *location, char *buf, size_t cap) {
  const char *p = strstr(location, "schema=");
  snprintf(buf, cap, "%s", p ? p + 7 : "tide");
  buf[strcspn(buf, "&")] = '\0';
  return buf;
}

static int pg_exec(const char *schema, const char *sql) {
  PGconn *conn = pg_connect(schema);
  PGresult *r = PQexec(conn, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
           PQresultStatus(r) == PGRES_TUPLES_OK;
  PQclear(r);
  PQfinish(conn);
  return ok ? 0 : -1;
}

/* The first column of the first row of sql, as text into buf. */
static const char *pg_text(const char *location, const char *sql, char *buf,
                           size_t cap) {
  char schema[64];
  PGconn *conn = pg_connect(schema_of(location, schema, sizeof schema));
  PGresult *r = PQexec(conn, sql);
  snprintf(buf, cap, "(error)");
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
    snprintf(buf, cap, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(conn);
  return buf;
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static void write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
    perror(path);
    exit(2);
  }
}

/* Reads up to cap - 1 bytes of a file; returns the length, -1 on error. */
static long read_file(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n;
  if (f == NULL) return -1;
  n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return (long)n;
}

/* The first column of the first row of sql, as an integer; -1 on error. */
static int64_t sql_int(const char *path, const char *sql) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int64_t v = -1;
  if (pg_base()) {
    char text[64], *end;
    pg_text(path, sql, text, sizeof text);
    v = strtoll(text, &end, 10);
    return *end == '\0' && end != text ? v : -1;
  }
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return v;
}

/* The first column of the first row of sql, as text into buf. */
static const char *sql_text(const char *path, const char *sql, char *buf,
                            size_t cap) {
  sqlite3 *db;
  sqlite3_stmt *st;
  if (pg_base()) return pg_text(path, sql, buf, cap);
  snprintf(buf, cap, "(error)");
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW)
      snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return buf;
}

/* The format version a store's meta table records, in buf. */
static const char *meta_version(const char *path, char *buf, size_t cap) {
  return sql_text(path, "SELECT value FROM meta WHERE key = 'version'", buf,
                  cap);
}

/* Runs sql on the file with a plain read-write connection. */
static int sql_exec(const char *path, const char *sql) {
  sqlite3 *db;
  int rc;
  if (pg_base()) {
    char schema[64];
    return pg_exec(schema_of(path, schema, sizeof schema), sql) == 0
             ? SQLITE_OK : SQLITE_ERROR;
  }
  rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
                           SQLITE_OPEN_CREATE, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  sqlite3_close(db);
  return rc;
}

static void fp_fill(uint8_t *fp, int seed) {
  int i;
  for (i = 0; i < TIDE_FP_SIZE; i++) fp[i] = (uint8_t)(seed + i * 31);
}

static int fp_equal(const uint8_t *a, const uint8_t *b) {
  return a && b && memcmp(a, b, TIDE_FP_SIZE) == 0;
}

static int blob_equal(const void *a, size_t alen, const void *b,
                      size_t blen) {
  return a && b && alen == blen && memcmp(a, b, alen) == 0;
}

static int str_equal(const char *a, const char *b) {
  return a && b && strcmp(a, b) == 0;
}

/* A string literal as the (pointer, length) pair the store takes. */
#define LIT(text) text, (sizeof(text) - 1)

/* Sets a string field of a store struct and its _len field from a C
** string, or to NULL. */
#define SET_STR(field, v) \
  ((field) = (v), field##_len = (field) ? strlen(field) : 0)

#define CHECK_STR_EQ(a, b)                                                \
  do {                                                                    \
    const char *check_s_ = (a);                                           \
    if (!str_equal(check_s_, (b))) {                                      \
      fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n",          \
              __FILE__, __LINE__, #a, check_s_ ? check_s_ : "(null)",     \
              (b));                                                       \
      check_failures_in_test++;                                           \
    }                                                                     \
  } while (0)

static tide_Store *open_ok(const char *path, int flags) {
  tide_Store *s = NULL;
  int rc = tide_store_open(&s, path, flags, NULL, NULL);
  if (rc != 0) {
    fprintf(stderr, "  open %s: %s\n", path, tide_store_errmsg(s));
    check_failures_in_test++;
  }
  return s;
}

/* Opens, expects code rc and message msg, closes. */
static void check_open_fails(const char *path, int flags, int rc,
                             const char *msg) {
  tide_Store *s = NULL;
  CHECK_EQ_INT(tide_store_open(&s, path, flags, NULL, NULL), rc);
  CHECK(s != NULL);
  CHECK_STR_EQ(tide_store_errmsg(s), msg);
  CHECK_EQ_INT(tide_store_close(s), 0);
}

static void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* ---- Second processes ---- */

/*
** A child: opens the store at path in a mode and reports through fd.
** "write": opens for writing, writes the open's message, exits with -rc.
** "read": opens read-only, writes what it sees of apps "docs" and
**   "pending", exits with -rc.
** "hold": opens for writing, writes "ready\n", and sleeps until killed.
*/
static int child_main(const char *mode, const char *path, int fd) {
  tide_Store *s = NULL;
  tide_StoreApp app;
  char text[512];
  int rc, n;
  int flags = strcmp(mode, "read") == 0 ? TIDE_STORE_READ : TIDE_STORE_WRITE;
  rc = tide_store_open(&s, path, flags, NULL, NULL);
  if (rc == 0 && strcmp(mode, "read") == 0) {
    rc = tide_store_app_lookup(s, LIT("docs"), &app);
    n = snprintf(text, sizeof text, "docs=%lld",
                 rc == 0 ? (long long)app.id : (long long)rc);
    rc = tide_store_app_lookup(s, LIT("pending"), &app);
    snprintf(text + n, sizeof text - (size_t)n, " pending=%lld",
             rc == 0 ? (long long)app.id : (long long)rc);
    rc = 0;
  } else if (rc == 0 && strcmp(mode, "hold") == 0) {
    snprintf(text, sizeof text, "ready\n");
  } else {
    snprintf(text, sizeof text, "%s", tide_store_errmsg(s));
  }
  if (write(fd, text, strlen(text)) < 0) rc = TIDE_EIO;
  if (rc == 0 && strcmp(mode, "hold") == 0)
    for (;;) pause();
  tide_store_close(s);
  return -rc;
}

/* Starts this binary as a child in mode; *fd receives the pipe's read
** end. Returns the child's pid. */
static pid_t spawn(const char *mode, const char *path, int *fd) {
  char self[1024], fdtext[16];
  int p[2];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  pid_t pid;
  if (n < 0 || pipe(p) != 0) {
    perror("spawn");
    exit(2);
  }
  self[n] = '\0';
  pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(2);
  }
  if (pid == 0) {
    close(p[0]);
    snprintf(fdtext, sizeof fdtext, "%d", p[1]);
    execl(self, self, "--child", mode, path, fdtext, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  *fd = p[0];
  return pid;
}

/* Reads what the child wrote until it closes the pipe or a newline. */
static void read_child(int fd, char *buf, size_t cap, int until_newline) {
  size_t len = 0;
  ssize_t n;
  while (len < cap - 1) {
    n = read(fd, buf + len, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len++;
    if (until_newline && buf[len - 1] == '\n') break;
  }
  buf[len] = '\0';
}

static int wait_exit(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs a child to its end; returns its exit code, its report in buf. */
static int run_child(const char *mode, const char *path, char *buf,
                     size_t cap) {
  int fd;
  pid_t pid = spawn(mode, path, &fd);
  read_child(fd, buf, cap, 0);
  close(fd);
  return wait_exit(pid);
}

/* ---- Opening, format and version ---- */

static void test_create_and_reopen(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreApp app;
  tide_StoreComponent c;
  uint8_t fp[TIDE_FP_SIZE];
  char path[160];
  int64_t id = 0, cid = 0;
  int created = -1;
  tmp_init(&t, "unused");
  /* The parent directories are created too. */
  snprintf(path, sizeof path, "%s/a/b/state.db", t.dir);
  s = open_ok(path, TIDE_STORE_WRITE);
  CHECK_STR_EQ(tide_store_path(s), path);
  CHECK_STR_EQ(tide_store_errmsg(s), "");
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, &created), 0);
  CHECK_EQ_INT(id, 1);
  CHECK_EQ_INT(created, 1);
  fp_fill(fp, 1);
  memset(&c, 0, sizeof c);
  c.app_id = id;
  SET_STR(c.path, "/process_file/a.md");
  SET_STR(c.fn_name, "process_file");
  c.logic_fp = fp;
  CHECK_EQ_INT(tide_store_component_put(s, &c, &cid), 0);
  CHECK_EQ_INT(cid, 1);
  CHECK_EQ_INT(tide_store_close(s), 0);
  /* Read back with a reader, then with a writer again. */
  s = open_ok(path, TIDE_STORE_READ);
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("docs"), &app), 0);
  CHECK_EQ_INT(app.id, 1);
  CHECK_STR_EQ(app.name, "docs");
  CHECK_EQ_INT(tide_store_component_get(s, 1, LIT("/process_file/a.md"), &c),
               0);
  CHECK_EQ_INT(c.id, 1);
  CHECK_STR_EQ(c.fn_name, "process_file");
  CHECK(fp_equal(c.logic_fp, fp));
  tide_store_close(s);
  s = open_ok(path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, &created), 0);
  CHECK_EQ_INT(id, 1);
  CHECK_EQ_INT(created, 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM apps"), 1);
  CHECK_EQ_INT(tide_store_close(NULL), 0);
  CHECK_STR_EQ(tide_store_errmsg(NULL), "out of memory");
  tmp_close(&t);
}

static void test_version_recorded(void) {
  Tmp t;
  char text[64];
  tmp_init(&t, "state.db");
  tide_store_close(open_ok(t.path, TIDE_STORE_WRITE));
  CHECK_STR_EQ(sql_text(t.path, "SELECT value FROM meta WHERE key = 'format'",
                        text, sizeof text),
               "tide-state");
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "3");
  CHECK_STR_EQ(sql_text(t.path,
                        "SELECT value FROM meta WHERE key = 'created_by'",
                        text, sizeof text),
               "tide " TIDE_VERSION);
  CHECK_EQ_INT(sql_int(t.path, "PRAGMA user_version"), 3);
  CHECK_EQ_INT(sql_int(t.path, "PRAGMA application_id"), 0x54494445);
  CHECK_STR_EQ(sql_text(t.path, "PRAGMA journal_mode", text, sizeof text),
               "wal");
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM sqlite_master"
                               " WHERE type = 'table'"),
               10);
  tmp_close(&t);
}

/* A version 1 store (no intents table) is read as it is and upgraded by
** the first write open, with what it holds. */
static void test_version_upgraded(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreApp found;
  char text[64];
  int64_t app;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("kept"), &app, NULL), 0);
  tide_store_close(s);
  CHECK_EQ_INT(sql_exec(t.path, "DROP TABLE intents;"
                                "UPDATE meta SET value = '1'"
                                " WHERE key = 'version';"
                                "PRAGMA user_version = 1"),
               SQLITE_OK);
  s = open_ok(t.path, TIDE_STORE_READ);
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("kept"), &found), 0);
  CHECK_EQ_INT(found.id, app);
  tide_store_close(s);
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "1");
  tide_store_close(open_ok(t.path, TIDE_STORE_WRITE));
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "3");
  CHECK_EQ_INT(sql_int(t.path, "PRAGMA user_version"), 3);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM intents"), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM apps"
                               " WHERE name = 'kept'"), 1);
  tmp_close(&t);
}

/* A version 2 store, whose memos table was WITHOUT ROWID, is read as it
** is; a write open makes memos a rowid table with the same entries. */
static void test_version_2_upgraded(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreMemo m, got;
  uint8_t key[TIDE_FP_SIZE], other[TIDE_FP_SIZE];
  static const uint8_t value[] = { 0x82, 0xfa, 0x3f, 0x00, 0x00, 0x01, 0x07 };
  char text[64];
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  fp_fill(key, 9);
  fp_fill(other, 10);
  memset(&m, 0, sizeof m);
  m.app_id = 1;
  m.key = key;
  SET_STR(m.fn_name, "embed");
  m.value = value;
  m.value_len = sizeof value;
  CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
  m.key = other;
  CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
  tide_store_close(s);
  /* Version 2's memos, holding the same rows. */
  CHECK_EQ_INT(sql_exec(t.path,
                        "ALTER TABLE memos RENAME TO m3;"
                        "CREATE TABLE memos(app_id INTEGER NOT NULL,"
                        " key BLOB NOT NULL, fn_name TEXT NOT NULL,"
                        " value BLOB, deps BLOB, targets BLOB,"
                        " updated_ns INTEGER, PRIMARY KEY(app_id, key))"
                        " WITHOUT ROWID;"
                        "INSERT INTO memos SELECT app_id, key, fn_name, value,"
                        " deps, targets, updated_ns FROM m3;"
                        "DROP TABLE m3;"
                        "UPDATE meta SET value = '2' WHERE key = 'version';"
                        "PRAGMA user_version = 2"),
               SQLITE_OK);
  s = open_ok(t.path, TIDE_STORE_READ);
  CHECK_EQ_INT(tide_store_memo_get(s, 1, key, &got), 0);
  CHECK(blob_equal(got.value, got.value_len, value, sizeof value));
  tide_store_close(s);
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "2");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_memo_get(s, 1, key, &got), 0);
  CHECK_STR_EQ(got.fn_name, "embed");
  CHECK(blob_equal(got.value, got.value_len, value, sizeof value));
  CHECK_EQ_INT(tide_store_memo_get(s, 1, other, &got), 0);
  /* The upgraded table takes new entries and replaces old ones. */
  m.value_len = 2;
  CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
  CHECK_EQ_INT(tide_store_memo_get(s, 1, other, &got), 0);
  CHECK_EQ_INT((int)got.value_len, 2);
  tide_store_close(s);
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "3");
  CHECK_EQ_INT(sql_int(t.path, "PRAGMA user_version"), 3);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM memos"), 2);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM sqlite_master"
                               " WHERE name = 'memos'"
                               " AND sql LIKE '%WITHOUT ROWID%'"), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM sqlite_master"
                               " WHERE name = 'memos_v2'"), 0);
  tmp_close(&t);
}

static void test_unknown_version_refused(void) {
  Tmp t;
  char msg[768], text[64];
  tmp_init(&t, "state.db");
  tide_store_close(open_ok(t.path, TIDE_STORE_WRITE));
  CHECK_EQ_INT(sql_exec(t.path, "UPDATE meta SET value = '7'"
                                " WHERE key = 'version'"),
               SQLITE_OK);
  snprintf(msg, sizeof msg,
           "%s: state store format version 7 is not supported by this tide"
           " (supports 1 to 3)", t.path);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_EVERSION, msg);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_EVERSION, msg);
  /* Refused, not rebuilt: the version is still 7. */
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "7");
  CHECK_EQ_INT(sql_exec(t.path, "UPDATE meta SET value = 'x'"
                                " WHERE key = 'version'"),
               SQLITE_OK);
  snprintf(msg, sizeof msg,
           "%s: not a tide state store (no valid format version)", t.path);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTSTORE, msg);
  tmp_close(&t);
}

static void test_foreign_sqlite_refused(void) {
  Tmp t;
  char msg[768], lock[600], text[64];
  tmp_init(&t, "other.db");
  snprintf(lock, sizeof lock, "%s-lock", t.path);
  CHECK_EQ_INT(sql_exec(t.path, "CREATE TABLE t(x); INSERT INTO t VALUES(1)"),
               SQLITE_OK);
  snprintf(msg, sizeof msg, "%s: not a tide state store", t.path);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_ENOTSTORE, msg);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTSTORE, msg);
  /* The file was left alone: no schema, no WAL mode, no lock file. */
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM sqlite_master"), 1);
  CHECK_STR_EQ(sql_text(t.path, "PRAGMA journal_mode", text, sizeof text),
               "delete");
  CHECK(!file_exists(lock));
  /* A meta table of someone else's format is not ours either. */
  CHECK_EQ_INT(sql_exec(t.path, "CREATE TABLE meta(key, value);"
                                "INSERT INTO meta VALUES('format', 'x');"
                                "INSERT INTO meta VALUES('version', '1')"),
               SQLITE_OK);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_ENOTSTORE, msg);
  /* A store with its tables missing is reported as damaged. */
  tmp_close(&t);
  tmp_init(&t, "state.db");
  tide_store_close(open_ok(t.path, TIDE_STORE_WRITE));
  CHECK_EQ_INT(sql_exec(t.path, "DROP TABLE runs"), SQLITE_OK);
  snprintf(msg, sizeof msg,
           "%s: state store is damaged (tables are missing)", t.path);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTSTORE, msg);
  tmp_close(&t);
}

static void test_garbage_refused(void) {
  Tmp t;
  char msg[768], data[5000], back[6000];
  size_t i;
  tmp_init(&t, "garbage.db");
  for (i = 0; i < sizeof data; i++) data[i] = (char)('a' + i % 26);
  write_file(t.path, data, sizeof data);
  snprintf(msg, sizeof msg,
           "%s: not a tide state store (file is not a database)", t.path);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_ENOTSTORE, msg);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTSTORE, msg);
  /* Never rebuilt: the bytes are the same. */
  CHECK_EQ_INT(read_file(t.path, back, sizeof back), (long)sizeof data);
  CHECK(memcmp(back, data, sizeof data) == 0);
  /* A file shorter than an SQLite header too. */
  write_file(t.path, "hello world\n", 12);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_ENOTSTORE, msg);
  CHECK_EQ_INT(read_file(t.path, back, sizeof back), 12);
  tmp_close(&t);
}

/* Workers share an update through a PostgreSQL store only. */
static void test_sqlite_not_shared(void) {
  Tmp t;
  tide_Store *s;
  char msg[768];
  int64_t id;
  tmp_init(&t, "state.db");
  snprintf(msg, sizeof msg, "%s: an update shared by workers needs a "
           "PostgreSQL state store (--db postgresql://...)", t.path);
  check_open_fails(t.path, TIDE_STORE_SHARED, TIDE_EINVAL, msg);
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_update_open(s, 1, &id), TIDE_EINVAL);
  CHECK_STR_EQ(tide_store_errmsg(s), msg);
  CHECK_EQ_INT(tide_store_workers_alive(s, 1, 1000, &id), TIDE_EINVAL);
  CHECK_STR_EQ(tide_store_errmsg(s), msg);
  CHECK_EQ_INT(tide_store_claim_send(s, 1, 1, 1), TIDE_EINVAL);
  CHECK_STR_EQ(tide_store_errmsg(s), msg);
  CHECK_EQ_INT(tide_store_worker_count(s, 1, LIT("components.added"), 1),
               TIDE_EINVAL);
  CHECK_STR_EQ(tide_store_errmsg(s), msg);
  CHECK_EQ_INT(tide_store_claim_socket(s), -1);
  tide_store_close(s);
  tmp_close(&t);
}

static void test_missing_and_empty(void) {
  Tmp t;
  tide_Store *s;
  char msg[768];
  int64_t id = 0;
  tmp_init(&t, "state.db");
  snprintf(msg, sizeof msg, "%s: no such state store", t.path);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTFOUND, msg);
  CHECK(!file_exists(t.path));
  write_file(t.path, "", 0);
  snprintf(msg, sizeof msg, "%s: state store is empty", t.path);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTFOUND, msg);
  /* A writer creates the schema in an empty file. */
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, NULL), 0);
  CHECK_EQ_INT(id, 1);
  tide_store_close(s);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM apps"), 1);
  tmp_close(&t);
}

static void test_bad_arguments(void) {
  Tmp t;
  char msg[768];
  tmp_init(&t, "state.db");
  snprintf(msg, sizeof msg, "%s: invalid open flags 7", t.path);
  check_open_fails(t.path, 7, TIDE_EINVAL, msg);
  check_open_fails("", TIDE_STORE_READ, TIDE_EINVAL,
                   "state store path is empty");
  CHECK_EQ_INT(tide_store_open(NULL, t.path, TIDE_STORE_READ, NULL, NULL),
               TIDE_EINVAL);
  tmp_close(&t);
}

/* ---- The writer lock ---- */

static void test_second_writer_locked(void) {
  Tmp t;
  tide_Store *s;
  char msg[768], report[512];
  int64_t id;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, NULL), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("pending"), &id, NULL), 0);
  /* Another process cannot write... */
  snprintf(msg, sizeof msg, "%s: locked by another running update (pid %ld)",
           t.path, (long)getpid());
  CHECK_EQ_INT(run_child("write", t.path, report, sizeof report),
               -TIDE_ELOCKED);
  CHECK_STR_EQ(report, msg);
  /* ...but can read what was committed, and only that. */
  CHECK_EQ_INT(run_child("read", t.path, report, sizeof report), 0);
  snprintf(msg, sizeof msg, "docs=1 pending=%d", TIDE_ENOTFOUND);
  CHECK_STR_EQ(report, msg);
  /* In this process too, a second writer is refused; a SQLite store
  ** says it is this process (a PostgreSQL one cannot tell a pid of
  ** another machine from its own). */
  if (tide_store_is_postgres(t.path))
    snprintf(msg, sizeof msg, "%s: locked by another running update"
             " (pid %ld)", t.path, (long)getpid());
  else
    snprintf(msg, sizeof msg, "%s: locked by another running update in"
             " this process (another app's, on the same store)", t.path);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_ELOCKED, msg);
  CHECK_EQ_INT(tide_store_close(s), 0);
  /* Once the holder has closed, the lock is free. */
  CHECK_EQ_INT(run_child("write", t.path, report, sizeof report), 0);
  CHECK_STR_EQ(report, "");
  CHECK_EQ_INT(run_child("read", t.path, report, sizeof report), 0);
  CHECK_STR_EQ(report, "docs=1 pending=2");
  tmp_close(&t);
}

static void test_lock_freed_by_kill(void) {
  Tmp t;
  tide_Store *s;
  char msg[768], report[64];
  int fd;
  pid_t pid;
  tmp_init(&t, "state.db");
  pid = spawn("hold", t.path, &fd);
  read_child(fd, report, sizeof report, 1);
  CHECK_STR_EQ(report, "ready\n");
  snprintf(msg, sizeof msg, "%s: locked by another running update (pid %ld)",
           t.path, (long)pid);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_ELOCKED, msg);
  CHECK_EQ_INT(kill(pid, SIGKILL), 0);
  CHECK_EQ_INT(wait_exit(pid), -1);
  close(fd);
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK(s != NULL);
  tide_store_close(s);
  tmp_close(&t);
}

static void test_reader_refuses_writes(void) {
  Tmp t;
  tide_Store *s;
  char msg[768];
  int64_t id = 0;
  tmp_init(&t, "state.db");
  tide_store_close(open_ok(t.path, TIDE_STORE_WRITE));
  s = open_ok(t.path, TIDE_STORE_READ);
  snprintf(msg, sizeof msg, "%s: state store is open read-only", t.path);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, NULL),
               TIDE_EINVAL);
  CHECK_STR_EQ(tide_store_errmsg(s), msg);
  CHECK_EQ_INT(tide_store_run_begin(s, 1, &id), TIDE_EINVAL);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

/* A store opened again (a thread's own connection, the index's load)
** reads what its first open reaches, read-only, and shows the same
** location; a SQLite store opened by a relative path cannot be. */
static void test_open_again(void) {
  Tmp t;
  tide_Store *s, *again = NULL;
  int64_t app = 0, got = 0, count = -1;
  char cwd[512];
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &app, NULL), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_open_again(&again, s, TIDE_STORE_READ), 0);
  CHECK_STR_EQ(tide_store_path(again), tide_store_path(s));
  CHECK_EQ_INT(tide_store_app_get_or_create(again, LIT("docs"), &got, NULL),
               0);
  CHECK_EQ_INT(got, app);
  CHECK_EQ_INT(tide_store_app_get_or_create(again, LIT("other"), &got, NULL),
               TIDE_EINVAL); /* read-only */
  CHECK_EQ_INT(tide_store_component_count(again, app, 0, &count), 0);
  CHECK_EQ_INT(count, 0);
  CHECK_EQ_INT(tide_store_close(again), 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  if (!pg_base() && getcwd(cwd, sizeof cwd) != NULL) {
    /* Relative to a folder the caller may leave. */
    CHECK_EQ_INT(chdir(t.dir), 0);
    s = open_ok("relative.db", TIDE_STORE_WRITE);
    again = s; /* set to NULL by the call */
    CHECK_EQ_INT(tide_store_open_again(&again, s, TIDE_STORE_READ),
                 TIDE_EINVAL);
    CHECK(again == NULL);
    tide_store_close(s);
    CHECK_EQ_INT(chdir(cwd), 0);
  }
  tmp_close(&t);
}

/* The index loads on a thread of its own through the store opened again,
** reading the file states of every source besides (a load at once reads
** none): always from a SQLite file, from PostgreSQL only for an app of
** 20000 components or more (below, the thread's connection would cost
** more than the load). Either way it equals a load at once. */
static int64_t put_many(tide_Store *s, const char *app_name, int n) {
  tide_StoreComponent c;
  tide_StoreSourceItem item;
  uint8_t fp[TIDE_FP_SIZE];
  char path[32];
  int64_t app = 0;
  int i;
  CHECK_EQ_INT(tide_store_app_get_or_create(s, app_name, strlen(app_name),
                                            &app, NULL), 0);
  memset(&c, 0, sizeof c);
  SET_STR(c.fn_name, "f");
  c.input_fp = fp;
  c.app_id = app;
  for (i = 0; i < n; i++) {
    snprintf(path, sizeof path, "/f/%05d", (int)(((int64_t)i * 7919) % n));
    fp_fill(fp, i % 200);
    SET_STR(c.path, path);
    CHECK_EQ_INT(tide_store_component_put(s, &c, NULL), 0);
  }
  memset(&item, 0, sizeof item);
  item.app_id = app;
  SET_STR(item.source, "fs:docs");
  SET_STR(item.key, "a.md");
  item.size = 1;
  item.mtime_ns = 2;
  item.inode = 3;
  item.content_fp = fp;
  CHECK_EQ_INT(tide_store_source_put(s, &item), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  return app;
}

static void check_index_load(tide_Store *s, int64_t app, int on_thread) {
  tide_Index *now, *ix;
  size_t i;
  CHECK_EQ_INT(tide_index_new(&now, NULL, NULL), 0);
  CHECK_EQ_INT(tide_index_load(now, s, app), 0);
  CHECK_EQ_INT(tide_index_new(&ix, NULL, NULL), 0);
  CHECK_EQ_INT(tide_index_load_async(ix, s, app), 0);
  CHECK_EQ_INT(tide_index_wait(ix), 0);
  CHECK_EQ_INT(tide_index_count(ix), tide_index_count(now));
  for (i = 0; i < tide_index_count(ix) && i < tide_index_count(now); i++) {
    tide_IndexEntry *x = tide_index_at(ix, i), *y = tide_index_at(now, i);
    CHECK(x->id == y->id && x->path_len == y->path_len &&
          memcmp(x->input, y->input, TIDE_FP_SIZE) == 0 &&
          memcmp(tide_index_path(ix, x), tide_index_path(now, y),
                 x->path_len) == 0);
  }
  CHECK_EQ_INT(tide_index_file_fp(ix, LIT("fs:docs"), LIT("a.md"), 1, 2, 3)
                 != NULL, on_thread);
  tide_index_free(ix);
  tide_index_free(now);
}

static void test_index_on_a_thread(void) {
  Tmp t;
  tide_Store *s;
  int64_t small, big, count = -1;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  small = put_many(s, "small", 19999);
  big = put_many(s, "big", 20000);
  /* A count that stops at its bound. */
  CHECK_EQ_INT(tide_store_component_count(s, big, 0, &count), 0);
  CHECK_EQ_INT(count, 20000);
  CHECK_EQ_INT(tide_store_component_count(s, big, 100, &count), 0);
  CHECK_EQ_INT(count, 100);
  CHECK_EQ_INT(tide_store_component_count(s, small, 30000, &count), 0);
  CHECK_EQ_INT(count, 19999);
  check_index_load(s, small, !pg_base());
  check_index_load(s, big, 1);
  tide_store_close(s);
  tmp_close(&t);
}

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

typedef struct {
  int count;
  char text[256];
} TextWalk;

static int walk_container(void *arg, const tide_StoreContainer *c) {
  TextWalk *w = arg;
  size_t n = strlen(w->text);
  snprintf(w->text + n, sizeof w->text - n, "%s%lld:%s:%s", n ? " " : "",
           (long long)c->id, c->kind, c->identity);
  w->count++;
  return 0;
}

static int walk_target(void *arg, const tide_StoreTarget *t) {
  TextWalk *w = arg;
  size_t n = strlen(w->text);
  snprintf(w->text + n, sizeof w->text - n, "%s%lld:%.*s:%lld:%d",
           n ? " " : "", (long long)t->container_id, (int)t->key_len,
           (const char *)t->key, (long long)t->owner_id, t->pending);
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

/* ---- Allocation ---- */

typedef struct {
  long live;      /* blocks allocated and not freed */
  long calls;     /* allocations so far */
  long fail_at;   /* the allocation that fails, or -1 */
} Counting;

static void *counting_alloc(void *ud, void *ptr, size_t osize,
                            size_t nsize) {
  Counting *c = ud;
  if (nsize == 0) {
    if (ptr) c->live--;
    free(ptr);
    return NULL;
  }
  if (c->calls++ == c->fail_at) return NULL;
  ptr = realloc(ptr, nsize);
  if (ptr && osize == 0) c->live++;
  return ptr;
}

static void test_allocator(void) {
  Tmp t;
  tide_Store *s;
  Counting c;
  tide_StoreComponent comp;
  int64_t id;
  long i;
  int rc, saw_nomem = 0, saw_ok = 0;
  tmp_init(&t, "state.db");
  /* Every allocation failing in turn: ENOMEM or success, never a leak. */
  for (i = 0; i < 12; i++) {
    c.live = c.calls = 0;
    c.fail_at = i;
    s = NULL;
    rc = tide_store_open(&s, t.path, TIDE_STORE_WRITE, counting_alloc, &c);
    if (rc == TIDE_ENOMEM) {
      saw_nomem++;
      CHECK_STR_EQ(tide_store_errmsg(s), "out of memory");
    } else {
      CHECK_EQ_INT(rc, 0);
      saw_ok++;
    }
    if (rc == TIDE_ENOMEM && s == NULL) CHECK_EQ_INT(c.live, 0);
    tide_store_close(s);
    CHECK_EQ_INT(c.live, 0);
  }
  CHECK(saw_nomem >= 3);
  CHECK(saw_ok >= 1);
  /* Operations and their error messages allocate through it too. */
  c.live = c.calls = 0;
  c.fail_at = -1;
  s = NULL;
  CHECK_EQ_INT(tide_store_open(&s, t.path, TIDE_STORE_WRITE, counting_alloc,
                               &c),
               0);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, NULL), 0);
  memset(&comp, 0, sizeof comp);
  comp.app_id = id;
  SET_STR(comp.path, "/x");
  CHECK_EQ_INT(tide_store_component_put(s, &comp, NULL), TIDE_ESTORE);
  if (pg_base()) {
    CHECK_STR_CONTAINS(tide_store_errmsg(s), "violates not-null");
    /* store, conninfo, location, the pipeline's queue, msg (grown once
    ** for the longer message), and the failure kept as the lost batch's
    ** (tide_store_lost_message), freed by the close */
    CHECK_EQ_INT(c.calls, 7);
    CHECK_EQ_INT(c.live, 6);
  } else {
    CHECK_STR_CONTAINS(tide_store_errmsg(s), "NOT NULL constraint failed");
    CHECK_EQ_INT(c.calls, 4); /* store, path, lock path, msg */
    CHECK_EQ_INT(c.live, 3);
  }
  tide_store_close(s);
  CHECK_EQ_INT(c.live, 0);
  tmp_close(&t);
}

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

/* ---- PostgreSQL's schemas ---- */

static int64_t pg_tables(const Tmp *t) {
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_tables"
           " WHERE schemaname = '%s'", t->schema);
  return sql_int(t->path, sql);
}

static void test_pg_schema(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreApp app;
  tide_StoreComponent c;
  char text[64];
  uint8_t fp[TIDE_FP_SIZE];
  int64_t id = 0, cid = 0;
  int created = -1;
  tmp_init(&t, "unused");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_STR_EQ(tide_store_path(s), t.path);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, &created), 0);
  CHECK(id > 0);
  CHECK_EQ_INT(created, 1);
  fp_fill(fp, 1);
  memset(&c, 0, sizeof c);
  c.app_id = id;
  SET_STR(c.path, "/process_file/a.md");
  SET_STR(c.fn_name, "process_file");
  c.logic_fp = fp;
  CHECK_EQ_INT(tide_store_component_put(s, &c, &cid), 0);
  CHECK(cid > 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  CHECK_EQ_INT(pg_tables(&t), 14);
  CHECK_STR_EQ(sql_text(t.path, "SELECT value FROM meta WHERE key = 'format'",
                        text, sizeof text), "tide-state");
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "4");
  CHECK_STR_EQ(sql_text(t.path, "SELECT value FROM meta"
                        " WHERE key = 'created_by'", text, sizeof text),
               "tide " TIDE_VERSION);
  s = open_ok(t.path, TIDE_STORE_READ);
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("docs"), &app), 0);
  CHECK_EQ_INT(app.id, id);
  CHECK_EQ_INT(tide_store_component_get(s, id, LIT("/process_file/a.md"), &c),
               0);
  CHECK_EQ_INT(c.id, cid);
  CHECK(fp_equal(c.logic_fp, fp));
  tide_store_close(s);
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, &created), 0);
  CHECK_EQ_INT(created, 0);
  tide_store_close(s);
  tmp_close(&t);
}

static void test_pg_refused(void) {
  Tmp t;
  char msg[768], sql[256], bad[600];
  tmp_init(&t, "unused");
  snprintf(msg, sizeof msg, "%s: no such state store", t.path);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTFOUND, msg);
  /* A schema of someone else's tables is left as it is. */
  snprintf(sql, sizeof sql, "CREATE SCHEMA %s; CREATE TABLE %s.t(x int)",
           t.schema, t.schema);
  CHECK_EQ_INT(pg_exec(NULL, sql), 0);
  snprintf(msg, sizeof msg, "%s: not a tide state store (schema %s holds "
           "other tables)", t.path, t.schema);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_ENOTSTORE, msg);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTSTORE, msg);
  CHECK_EQ_INT(pg_tables(&t), 1);
  tmp_close(&t);
  /* A store with a table missing is damaged; one of another version is
  ** refused, not rebuilt. */
  tmp_init(&t, "unused");
  tide_store_close(open_ok(t.path, TIDE_STORE_WRITE));
  CHECK_EQ_INT(sql_exec(t.path, "UPDATE meta SET value = '7'"
                                " WHERE key = 'version'"), SQLITE_OK);
  snprintf(msg, sizeof msg, "%s: state store format version 7 is not "
           "supported by this tide (supports 2 to 4)", t.path);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_EVERSION, msg);
  CHECK_EQ_INT(sql_exec(t.path, "UPDATE meta SET value = '4'"
                                " WHERE key = 'version'; DROP TABLE runs"),
               SQLITE_OK);
  snprintf(msg, sizeof msg, "%s: state store is damaged (tables are "
           "missing)", t.path);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTSTORE, msg);
  tmp_close(&t);
  /* Schema names tide makes need no quoting. */
  snprintf(bad, sizeof bad, "%s%cschema=Bad-Name", pg_base(),
           strchr(pg_base(), '?') ? '&' : '?');
  check_open_fails(bad, TIDE_STORE_WRITE, TIDE_EINVAL,
                   "state store location: the schema must be lowercase "
                   "letters, digits and underscores, not starting with a "
                   "digit");
}

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
  /* Counted on PostgreSQL, where a worker's lost batch makes it leave,
  ** with its failure kept for the worker to tell. */
  CHECK(tide_store_lost_message(s) == NULL || pg_base());
  if (pg_base()) {
    CHECK_EQ_INT(tide_store_batches_lost(s), 1);
    CHECK(strstr(tide_store_lost_message(s),
                 ": cannot record a component: ") != NULL);
    CHECK(strstr(tide_store_lost_message(s), "rolled back") == NULL);
  }
  /* The store goes on; a rollback of the caller's own is not a loss. */
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("kept"), &b, NULL), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("kept"), &app), 0);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("dropped"), &b, NULL), 0);
  CHECK_EQ_INT(tide_store_rollback(s), 0);
  if (pg_base()) CHECK_EQ_INT(tide_store_batches_lost(s), 1);
  /* Another failure after it, in no batch, keeps the lost one's. */
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("dropped"), &app),
               TIDE_ENOTFOUND);
  if (pg_base())
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

/* The location's password never reaches the path or a message. */
static void test_pg_password(void) {
  Tmp t;
  tide_Store *s = NULL, *again = NULL;
  char location[700];
  tmp_init(&t, "unused");
  snprintf(location, sizeof location, "%s&password=s3cret-word", t.path);
  s = open_ok(location, TIDE_STORE_WRITE);
  CHECK_STR_EQ(tide_store_path(s), t.path);
  /* Opened again as it was reached, shown as it was. */
  CHECK_EQ_INT(tide_store_open_again(&again, s, TIDE_STORE_READ), 0);
  CHECK_STR_EQ(tide_store_path(again), t.path);
  tide_store_close(again);
  tide_store_close(s);
  s = NULL;
  CHECK_EQ_INT(tide_store_open(&s, "postgresql://tide:s3cret-word@/postgres"
                               "?host=/nonexistent&schema=x",
                               TIDE_STORE_WRITE, NULL, NULL), TIDE_EIO);
  CHECK(strstr(tide_store_errmsg(s), "s3cret") == NULL);
  CHECK(strncmp(tide_store_errmsg(s), "postgresql://tide@/postgres"
                "?host=/nonexistent&schema=x: cannot connect: ", 68) == 0);
  tide_store_close(s);
  tmp_close(&t);
}


/* Work items: claimed by one worker at a time, done once, taken over when
** a worker's lease runs out, freed when it leaves. */
typedef struct {
  int count;
  int64_t ids[16];
} Claimed;

static int see_item(void *arg, const tide_StoreWorkItem *w) {
  Claimed *c = arg;
  if (c->count < 16) c->ids[c->count] = w->id;
  c->count++;
  return 0;
}

static Claimed claim(tide_Store *s, int64_t u, int64_t worker, int max,
                     int64_t lease_ms, int64_t *open) {
  Claimed c;
  memset(&c, 0, sizeof c);
  CHECK_EQ_INT(tide_store_work_claim(s, u, worker, max, lease_ms, see_item,
                                     &c, open), 0);
  return c;
}

typedef struct {
  int count;
  int64_t done[4], claimed[4];
  int left[4];
} Workers;

static int see_worker(void *arg, const tide_StoreWorker *w) {
  Workers *k = arg;
  if (k->count < 4) {
    k->done[k->count] = w->done;
    k->claimed[k->count] = w->claimed;
    k->left[k->count] = w->left;
  }
  k->count++;
  return 0;
}

/* A writer's store holding a listed update of the app "docs" with items
** work items (info, NUL-terminated, or NULL, for its workers). */
static tide_Store *listed_update(const char *path, int items,
                                 const char *info, int64_t *app,
                                 int64_t *u) {
  tide_Store *s = open_ok(path, TIDE_STORE_WRITE);
  int i;
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), app, NULL), 0);
  CHECK_EQ_INT(tide_store_update_open(s, *app, u), 0);
  for (i = 0; i < items; i++)
    CHECK_EQ_INT(tide_store_work_add(s, *u, LIT("/f/x"), LIT("item")), 0);
  CHECK_EQ_INT(tide_store_update_set(s, *u, TIDE_UPDATE_LISTED, info,
                                     info ? strlen(info) : 0), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  return s;
}

static void test_pg_work(void) {
  Tmp t;
  tide_Store *s, *a, *b;
  Claimed got;
  Workers k;
  int64_t app, u, wa, wb, open = -1, cur, alive = -1;
  const void *info;
  size_t info_len;
  int state, i;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 5, "info", &app, &u);
  /* Workers write without the writer lock, which s holds. */
  a = open_ok(t.path, TIDE_STORE_SHARED);
  b = open_ok(t.path, TIDE_STORE_SHARED);
  CHECK_EQ_INT(tide_store_update_current(a, app, &cur, &state, &info,
                                         &info_len), 0);
  CHECK_EQ_INT(cur, u);
  CHECK_EQ_INT(state, TIDE_UPDATE_LISTED);
  CHECK(blob_equal(info, info_len, "info", 4));
  CHECK_EQ_INT(tide_store_worker_join(a, u, LIT("here"), 11, &wa), 0);
  CHECK_EQ_INT(tide_store_worker_join(b, u, LIT("there"), 22, &wb), 0);
  CHECK_EQ_INT(tide_store_workers_alive(s, u, 60000, &alive), 0);
  CHECK_EQ_INT(alive, 2);
  got = claim(a, u, wa, 2, 60000, &open);
  CHECK_EQ_INT(got.count, 2);
  CHECK_EQ_INT(open, -1);
  got = claim(b, u, wb, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 3);
  got = claim(b, u, wb, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 0);
  /* Done once: by its holder, in the batch that records its work. */
  CHECK_EQ_INT(tide_store_work_done(a, 1, wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  CHECK_EQ_INT(tide_store_work_done(b, 1, wb), 0);
  CHECK_EQ_INT(tide_store_flush(b), TIDE_ESTORE);
  CHECK_STR_CONTAINS(tide_store_errmsg(b), "no longer this worker's");
  /* a stops beating: with a lease of 1 ms, b takes a's other item over,
  ** and a can no longer mark it done. */
  sleep_ms(20);
  CHECK_EQ_INT(tide_store_workers_alive(s, u, 5, &alive), 0);
  CHECK_EQ_INT(alive, 0);
  got = claim(b, u, wb, 10, 1, &open);
  CHECK_EQ_INT(got.count, 1);
  CHECK_EQ_INT(got.ids[0], 2);
  CHECK_EQ_INT(open, -1);
  CHECK_EQ_INT(tide_store_work_done(a, 2, wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), TIDE_ESTORE);
  /* b leaves: what it holds is a's to claim at once (the items after
  ** the last a claimed first, then the one before). */
  CHECK_EQ_INT(tide_store_worker_leave(b, wb, LIT("{}")), 0);
  CHECK_EQ_INT(tide_store_workers_alive(s, u, 60000, &alive), 0);
  CHECK_EQ_INT(alive, 1);
  got = claim(a, u, wa, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 3);
  CHECK_EQ_INT(got.ids[0], 3);
  CHECK_EQ_INT(open, -1);
  for (i = 0; i < got.count && i < 16; i++)
    CHECK_EQ_INT(tide_store_work_done(a, got.ids[i], wa), 0);
  got = claim(a, u, wa, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 1);
  CHECK_EQ_INT(got.ids[0], 2);
  CHECK_EQ_INT(tide_store_work_done(a, 2, wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  got = claim(a, u, wa, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 0);
  CHECK_EQ_INT(open, 0);
  memset(&k, 0, sizeof k);
  CHECK_EQ_INT(tide_store_worker_each(s, u, see_worker, &k), 0);
  CHECK_EQ_INT(k.count, 2);
  CHECK_EQ_INT(k.done[0], 5);
  CHECK_EQ_INT(k.done[1], 0);
  CHECK_EQ_INT(k.left[1], 1);
  CHECK_EQ_INT(tide_store_update_set(s, u, TIDE_UPDATE_FINISHED, NULL, 0), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_update_current(a, app, &cur, &state, &info,
                                         &info_len), TIDE_ENOTFOUND);
  /* A finished update's items are gone; its workers keep their counts. */
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM work_items"), 0);
  memset(&k, 0, sizeof k);
  CHECK_EQ_INT(tide_store_worker_each(s, u, see_worker, &k), 0);
  CHECK_EQ_INT(k.done[0], 5);
  /* So are those of an update left open, once the next one opens. */
  CHECK_EQ_INT(tide_store_update_open(s, app, &u), 0);
  CHECK_EQ_INT(tide_store_work_add(s, u, LIT("/f/y"), LIT("item")), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM work_items"), 1);
  CHECK_EQ_INT(tide_store_update_open(s, app, &cur), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK(cur > u);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM work_items"), 0);
  tide_store_close(a);
  tide_store_close(b);
  tide_store_close(s);
  tmp_close(&t);
}

/* The log of shared updates keeps each app's latest TIDE_STORE_LOG_KEPT,
** finished ones only going, with their workers and their counts. */
static void test_pg_log_kept(void) {
  Tmp t;
  tide_Store *s;
  int64_t app, u = 0, first = 0, w;
  int i;
  tmp_init(&t, "unused");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &app, NULL), 0);
  for (i = 0; i < TIDE_STORE_LOG_KEPT + 10; i++) {
    CHECK_EQ_INT(tide_store_update_open(s, app, &u), 0);
    if (i == 0) first = u;
    CHECK_EQ_INT(tide_store_worker_join(s, u, LIT("here"), 11, &w), 0);
    CHECK_EQ_INT(tide_store_worker_count(s, w, LIT("components.added"), 3),
                 0);
    /* The last but one is left open: it is ended, not dropped. */
    if (i != TIDE_STORE_LOG_KEPT + 8)
      CHECK_EQ_INT(tide_store_update_set(s, u, TIDE_UPDATE_FINISHED, NULL,
                                         0), 0);
    CHECK_EQ_INT(tide_store_flush(s), 0);
  }
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM updates"),
               TIDE_STORE_LOG_KEPT);
  CHECK_EQ_INT(sql_int(t.path, "SELECT min(id) FROM updates"),
               u - TIDE_STORE_LOG_KEPT + 1);
  CHECK(u - TIDE_STORE_LOG_KEPT + 1 > first);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM workers"),
               TIDE_STORE_LOG_KEPT);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM worker_counts"),
               TIDE_STORE_LOG_KEPT);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM workers w WHERE NOT"
                               " EXISTS (SELECT 1 FROM updates u"
                               " WHERE u.id = w.update_id)"), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM updates"
                               " WHERE state < 2"), 0);
  tide_store_close(s);
  tmp_close(&t);
}

/* Whether fd becomes readable within ms. */
static int readable_within(int fd, int ms) {
  struct pollfd p;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* A claim sent and read later: its answer makes the socket readable; a
** call of the store in between reads it first and keeps the items for
** the claim's read; a claim that finds none says so, and the next claim
** goes on after the last item claimed; a SQLite store refuses it. */
static void test_pg_claim_later(void) {
  Tmp t;
  tide_Store *s, *a;
  Claimed got;
  int64_t app, u, wa, open = -1;
  int fd, count = -1;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 5, NULL, &app, &u);
  a = open_ok(t.path, TIDE_STORE_SHARED);
  CHECK_EQ_INT(tide_store_worker_join(a, u, LIT("here"), 11, &wa), 0);
  CHECK_EQ_INT(tide_store_claim_socket(a), -1);
  CHECK_EQ_INT(tide_store_claim_send(a, u, wa, 2), 0);
  fd = tide_store_claim_socket(a);
  CHECK(fd >= 0);
  CHECK(readable_within(fd, 5000));
  memset(&got, 0, sizeof got);
  CHECK_EQ_INT(tide_store_claim_read(a, see_item, &got, &count), 0);
  CHECK_EQ_INT(count, 2);
  CHECK_EQ_INT(got.count, 2);
  CHECK_EQ_INT(got.ids[0], 1);
  CHECK_EQ_INT(got.ids[1], 2);
  CHECK_EQ_INT(tide_store_claim_socket(a), -1);
  /* Committed when it was read: another session sees them held. */
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM work_items"
                               " WHERE worker_id IS NOT NULL"), 2);
  /* Read by the next call of the store, which needs the connection. */
  CHECK_EQ_INT(tide_store_claim_send(a, u, wa, 2), 0);
  CHECK_EQ_INT(tide_store_work_done(a, 1, wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  CHECK_EQ_INT(tide_store_claim_socket(a), -1);
  memset(&got, 0, sizeof got);
  CHECK_EQ_INT(tide_store_claim_read(a, see_item, &got, &count), 0);
  CHECK_EQ_INT(count, 2);
  CHECK_EQ_INT(got.ids[0], 3);
  CHECK_EQ_INT(got.ids[1], 4);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM work_items"
                               " WHERE state = 2"), 1);
  /* The last item, then none: the claim goes on after the last. */
  CHECK_EQ_INT(tide_store_claim_send(a, u, wa, 10), 0);
  memset(&got, 0, sizeof got);
  CHECK_EQ_INT(tide_store_claim_read(a, see_item, &got, &count), 0);
  CHECK_EQ_INT(count, 1);
  CHECK_EQ_INT(got.ids[0], 5);
  CHECK_EQ_INT(tide_store_claim_send(a, u, wa, 10), 0);
  memset(&got, 0, sizeof got);
  CHECK_EQ_INT(tide_store_claim_read(a, see_item, &got, &count), 0);
  CHECK_EQ_INT(count, 0);
  got = claim(a, u, wa, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 0);
  CHECK_EQ_INT(open, 4);
  /* A claim read twice finds no answer the second time. */
  CHECK_EQ_INT(tide_store_claim_read(a, see_item, &got, &count), TIDE_ESTORE);
  CHECK_STR_CONTAINS(tide_store_errmsg(a), "no result");
  tide_store_close(a);
  tide_store_close(s);
  tmp_close(&t);
}

/* An item its worker ran but must still finish is neither open nor
** claimable, even once the worker's lease runs out; its worker marks it
** done (counted once), or, once no worker is left, the lead makes such
** items ready again. */
static void test_pg_work_ran(void) {
  Tmp t;
  tide_Store *s, *a, *b;
  Claimed got;
  Workers k;
  int64_t app, u, wa, wb, open = -1, n = -1;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 3, NULL, &app, &u);
  a = open_ok(t.path, TIDE_STORE_SHARED);
  b = open_ok(t.path, TIDE_STORE_SHARED);
  CHECK_EQ_INT(tide_store_worker_join(a, u, LIT("here"), 1, &wa), 0);
  CHECK_EQ_INT(tide_store_worker_join(b, u, LIT("there"), 2, &wb), 0);
  got = claim(a, u, wa, 3, 60000, &open);
  CHECK_EQ_INT(got.count, 3);
  CHECK_EQ_INT(tide_store_work_ran(a, 1, wa), 0);
  CHECK_EQ_INT(tide_store_work_done(a, 2, wa), 0);
  CHECK_EQ_INT(tide_store_work_ran(a, 3, wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  CHECK_EQ_INT(tide_store_work_open(s, u, &open), 0);
  CHECK_EQ_INT(open, 0);
  /* Only its worker finishes it. */
  CHECK_EQ_INT(tide_store_work_done(b, 1, wb), 0);
  CHECK_EQ_INT(tide_store_flush(b), TIDE_ESTORE);
  CHECK_EQ_INT(tide_store_work_done(a, 1, wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  memset(&k, 0, sizeof k);
  CHECK_EQ_INT(tide_store_worker_each(s, u, see_worker, &k), 0);
  CHECK_EQ_INT(k.done[0], 2);
  /* a dies with item 3 run: no claim takes it, however old a's lease. */
  sleep_ms(20);
  got = claim(b, u, wb, 10, 1, &open);
  CHECK_EQ_INT(got.count, 0);
  CHECK_EQ_INT(open, 0);
  CHECK_EQ_INT(tide_store_work_reopen(s, u, &n), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(n, 1);
  got = claim(b, u, wb, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 1);
  CHECK_EQ_INT(got.ids[0], 3);
  CHECK_EQ_INT(tide_store_work_done(b, 3, wb), 0);
  CHECK_EQ_INT(tide_store_flush(b), 0);
  CHECK_EQ_INT(tide_store_work_reopen(s, u, &n), 0);
  CHECK_EQ_INT(n, 0);
  memset(&k, 0, sizeof k);
  CHECK_EQ_INT(tide_store_worker_each(s, u, see_worker, &k), 0);
  CHECK_EQ_INT(k.done[0], 2);
  CHECK_EQ_INT(k.done[1], 1);
  tide_store_close(a);
  tide_store_close(b);
  tide_store_close(s);
  tmp_close(&t);
}

/* What tide_store_worker_counts hands over: up to 4 counts. */
typedef struct {
  int count;
  int64_t worker[4], n[4];
  char name[4][32];
  size_t name_len[4];
} Counts;

static int see_count(void *arg, int64_t worker_id, const char *name,
                     size_t name_len, int64_t n) {
  Counts *c = arg;
  if (c->count < 4 && name_len <= sizeof c->name[0]) {
    c->worker[c->count] = worker_id;
    memcpy(c->name[c->count], name, name_len);
    c->name_len[c->count] = name_len;
    c->n[c->count] = n;
  }
  c->count++;
  return 0;
}

/* A memo entry of app, function "f", whose value is the byte at value. */
static void one_byte_memo(tide_StoreMemo *m, int64_t app,
                          const uint8_t *value) {
  memset(m, 0, sizeof *m);
  m->app_id = app;
  SET_STR(m->fn_name, "f");
  m->value_len = 1;
  m->value = value;
}

/* Two processes record the same memo entries in one batch each, in
** opposite orders, with a read between their two entries: had each
** upserted its first entry at the read, each commit would wait for an
** entry the other holds, and the server would roll one back (a
** deadlock). A batch's entries go at its commit, in key order, so both
** commit. */
static void test_pg_memos_alike(void) {
  Tmp t;
  tide_Store *s, *a, *b;
  tide_StoreMemo m, got;
  uint8_t k1[TIDE_FP_SIZE], k2[TIDE_FP_SIZE], va = 'a', vb = 'b', first;
  int64_t app, u, cur;
  const void *info;
  size_t info_len;
  int state;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 0, NULL, &app, &u);
  a = open_ok(t.path, TIDE_STORE_SHARED);
  b = open_ok(t.path, TIDE_STORE_SHARED);
  memset(k1, 1, sizeof k1);
  memset(k2, 2, sizeof k2);
  one_byte_memo(&m, app, &va);
  m.key = k2;
  CHECK_EQ_INT(tide_store_memo_put(a, &m), 0);
  CHECK_EQ_INT(tide_store_update_current(a, app, &cur, &state, &info,
                                         &info_len), 0);
  m.value = &vb;
  m.key = k1;
  CHECK_EQ_INT(tide_store_memo_put(b, &m), 0);
  CHECK_EQ_INT(tide_store_update_current(b, app, &cur, &state, &info,
                                         &info_len), 0);
  m.value = &va;
  CHECK_EQ_INT(tide_store_memo_put(a, &m), 0);
  m.value = &vb;
  m.key = k2;
  CHECK_EQ_INT(tide_store_memo_put(b, &m), 0);
  /* Both commits under way at once: b's waits for a's. */
  CHECK_EQ_INT(tide_store_flush_send(a), 0);
  CHECK_EQ_INT(tide_store_flush_send(b), 0);
  CHECK_EQ_INT(tide_store_flush_wait(a), 0);
  CHECK_EQ_INT(tide_store_flush_wait(b), 0);
  CHECK_EQ_INT(tide_store_batches_lost(a) + tide_store_batches_lost(b), 0);
  /* One batch waited for the other, whose entries its own replaced:
  ** both entries hold one batch's values. */
  CHECK_EQ_INT(tide_store_memo_get(s, app, k1, &got), 0);
  CHECK_EQ_INT(got.value_len, 1);
  first = *(const uint8_t *)got.value;
  CHECK(first == 'a' || first == 'b');
  CHECK_EQ_INT(tide_store_memo_get(s, app, k2, &got), 0);
  CHECK(blob_equal(got.value, got.value_len, &first, 1));
  CHECK_EQ_INT(tide_store_close(a), 0);
  CHECK_EQ_INT(tide_store_close(b), 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

/* Store b's side of test_pg_memos_early, in a thread of its own: an
** entry sent early (the delete of another entry sends it), a read, which
** waits for the server, then a second entry and the commit. */
typedef struct {
  tide_Store *s;
  int64_t app;
  int rc[4];
  int read_done; /* set by the thread, atomically */
} EarlySide;

static void *early_side(void *arg) {
  EarlySide *e = arg;
  tide_StoreMemo m;
  uint8_t k1[TIDE_FP_SIZE], k2[TIDE_FP_SIZE], k9[TIDE_FP_SIZE], vb = 'b';
  int64_t cur;
  const void *info;
  size_t info_len;
  int state;
  memset(k1, 1, sizeof k1);
  memset(k2, 2, sizeof k2);
  memset(k9, 9, sizeof k9);
  one_byte_memo(&m, e->app, &vb);
  m.key = k1;
  e->rc[0] = tide_store_memo_put(e->s, &m);
  e->rc[1] = tide_store_memo_delete(e->s, e->app, k9);
  e->rc[2] = tide_store_update_current(e->s, e->app, &cur, &state, &info,
                                       &info_len);
  __atomic_store_n(&e->read_done, 1, __ATOMIC_SEQ_CST);
  m.key = k2;
  if (e->rc[0] == 0) e->rc[0] = tide_store_memo_put(e->s, &m);
  e->rc[3] = tide_store_flush(e->s);
  return NULL;
}

/* Two processes each send a memo entry before their commit (a delete of
** another entry makes them go), the other's entry at the commit: had
** both held their first entry at once, each commit would wait for the
** other's (a deadlock, which the server ends by rolling one back). The
** batch that sends entries early takes the memo lock alone, so the
** second waits for the first's end before it holds any entry. */
static void test_pg_memos_early(void) {
  Tmp t;
  tide_Store *s, *a;
  tide_StoreMemo m, got;
  EarlySide b;
  pthread_t thread;
  uint8_t k1[TIDE_FP_SIZE], k2[TIDE_FP_SIZE], k8[TIDE_FP_SIZE], va = 'a';
  int64_t app, u, cur;
  const void *info;
  size_t info_len;
  int state, i, waited = 0;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 0, NULL, &app, &u);
  a = open_ok(t.path, TIDE_STORE_SHARED);
  memset(&b, 0, sizeof b);
  b.s = open_ok(t.path, TIDE_STORE_SHARED);
  b.app = app;
  memset(k1, 1, sizeof k1);
  memset(k2, 2, sizeof k2);
  memset(k8, 8, sizeof k8);
  one_byte_memo(&m, app, &va);
  m.key = k2;
  CHECK_EQ_INT(tide_store_memo_put(a, &m), 0);
  CHECK_EQ_INT(tide_store_memo_delete(a, app, k8), 0);
  CHECK_EQ_INT(tide_store_update_current(a, app, &cur, &state, &info,
                                         &info_len), 0);
  /* a holds its first entry; b's early entry waits for a's end. */
  CHECK_EQ_INT(pthread_create(&thread, NULL, early_side, &b), 0);
  for (i = 0; i < 50 && !waited; i++) {
    sleep_ms(10);
    waited = __atomic_load_n(&b.read_done, __ATOMIC_SEQ_CST);
  }
  CHECK_EQ_INT(waited, 0);
  m.key = k1;
  CHECK_EQ_INT(tide_store_memo_put(a, &m), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  CHECK_EQ_INT(pthread_join(thread, NULL), 0);
  for (i = 0; i < 4; i++) CHECK_EQ_INT(b.rc[i], 0);
  CHECK_EQ_INT(tide_store_batches_lost(a) + tide_store_batches_lost(b.s), 0);
  /* b committed after a: its values hold. */
  CHECK_EQ_INT(tide_store_memo_get(s, app, k1, &got), 0);
  CHECK(blob_equal(got.value, got.value_len, "b", 1));
  CHECK_EQ_INT(tide_store_memo_get(s, app, k2, &got), 0);
  CHECK(blob_equal(got.value, got.value_len, "b", 1));
  CHECK_EQ_INT(tide_store_close(a), 0);
  CHECK_EQ_INT(tide_store_close(b.s), 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

/* A worker's counts go with the batch that records what they count: a
** batch rolled back takes its counts with it; names are bytes. */
static void test_pg_worker_counts(void) {
  Tmp t;
  tide_Store *s, *a, *b;
  Counts c;
  int64_t app, u, u2, wa, wb, wc;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 4, NULL, &app, &u);
  a = open_ok(t.path, TIDE_STORE_SHARED);
  b = open_ok(t.path, TIDE_STORE_SHARED);
  CHECK_EQ_INT(tide_store_worker_join(a, u, LIT("here"), 1, &wa), 0);
  CHECK_EQ_INT(tide_store_worker_join(b, u, LIT("there"), 2, &wb), 0);
  /* Summed within a batch and across batches. */
  CHECK_EQ_INT(tide_store_worker_count(a, wa, LIT("components.added"), 2),
               0);
  CHECK_EQ_INT(tide_store_worker_count(a, wa, LIT("components.added"), 3),
               0);
  CHECK_EQ_INT(tide_store_worker_count(a, wa, "functions.calls.x\0y", 17,
                                       4), 0);
  CHECK_EQ_INT(tide_store_worker_count(b, wb, LIT("components.added"), 1),
               0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  CHECK_EQ_INT(tide_store_flush(b), 0);
  CHECK_EQ_INT(tide_store_worker_count(a, wa, LIT("components.added"), 10),
               0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  /* Not committed: not counted. */
  CHECK_EQ_INT(tide_store_worker_count(a, wa, LIT("components.added"), 100),
               0);
  CHECK_EQ_INT(tide_store_rollback(a), 0);
  /* Another update's workers are not this one's. */
  CHECK_EQ_INT(tide_store_update_set(s, u, TIDE_UPDATE_FINISHED, NULL, 0),
               0);
  CHECK_EQ_INT(tide_store_update_open(s, app, &u2), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_worker_join(b, u2, LIT("there"), 2, &wc), 0);
  CHECK_EQ_INT(tide_store_worker_count(b, wc, LIT("components.added"), 1000),
               0);
  CHECK_EQ_INT(tide_store_flush(b), 0);
  memset(&c, 0, sizeof c);
  CHECK_EQ_INT(tide_store_worker_counts(s, u, see_count, &c), 0);
  CHECK_EQ_INT(c.count, 3);
  CHECK_EQ_INT(c.worker[0], wa);
  CHECK(blob_equal(c.name[0], c.name_len[0], "components.added", 16));
  CHECK_EQ_INT(c.n[0], 15);
  CHECK_EQ_INT(c.worker[1], wa);
  CHECK(blob_equal(c.name[1], c.name_len[1], "functions.calls.x\0y", 17));
  CHECK_EQ_INT(c.n[1], 4);
  CHECK_EQ_INT(c.worker[2], wb);
  CHECK_EQ_INT(c.n[2], 1);
  memset(&c, 0, sizeof c);
  CHECK_EQ_INT(tide_store_worker_counts(s, u2, see_count, &c), 0);
  CHECK_EQ_INT(c.count, 1);
  CHECK_EQ_INT(c.n[0], 1000);
  tide_store_close(a);
  tide_store_close(b);
  tide_store_close(s);
  tmp_close(&t);
}

/* A version 2 store (claimed items in state 1, an index of items by
** worker, no done counts) is read by no one until a writer opens it,
** which upgrades it in one transaction: its claims, done counts and
** leases carry over. */
static void test_pg_upgrade(void) {
  Tmp t;
  tide_Store *s, *a;
  Claimed got;
  Workers k;
  char msg[768], text[64];
  int64_t app, u, wa, open = -1;
  int i;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 4, NULL, &app, &u);
  a = open_ok(t.path, TIDE_STORE_SHARED);
  CHECK_EQ_INT(tide_store_worker_join(a, u, LIT("here"), 1, &wa), 0);
  got = claim(a, u, wa, 2, 60000, &open);
  CHECK_EQ_INT(got.count, 2);
  CHECK_EQ_INT(tide_store_work_done(a, got.ids[0], wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  tide_store_close(a);
  tide_store_close(s);
  /* As version 2 wrote it: the item claimed and not done in state 1. */
  CHECK_EQ_INT(sql_exec(t.path,
                        "UPDATE work_items SET state = 1 WHERE state = 0"
                        " AND worker_id IS NOT NULL;"
                        "ALTER TABLE workers DROP COLUMN done;"
                        "CREATE INDEX work_items_worker"
                        " ON work_items(worker_id);"
                        "ALTER TABLE work_items RESET (fillfactor);"
                        "INSERT INTO updates(id, app_id, state, started_ns)"
                        " VALUES(100, 1, 2, 0);"
                        "INSERT INTO work_items(update_id, path, state)"
                        " VALUES(100, 'kept by version 2', 2);"
                        "DROP TABLE worker_counts;"
                        "UPDATE meta SET value = '2'"
                        " WHERE key = 'version'"), SQLITE_OK);
  snprintf(msg, sizeof msg, "%s: state store format version 2 is older "
           "than this tide's (4): an update with this tide upgrades it",
           t.path);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_EVERSION, msg);
  check_open_fails(t.path, TIDE_STORE_SHARED, TIDE_EVERSION, msg);
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "4");
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM worker_counts"), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM pg_indexes WHERE"
                       " schemaname = current_schema()"
                       " AND indexname = 'work_items_worker'"), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM pg_class WHERE"
                       " relname = 'work_items' AND relnamespace ="
                       " current_schema()::regnamespace AND"
                       " 'fillfactor=50' = ANY(reloptions)"), 1);
  /* The finished update's items are gone, the one under way's kept. */
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM work_items"
                       " WHERE update_id = 100"), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM work_items"), 4);
  memset(&k, 0, sizeof k);
  CHECK_EQ_INT(tide_store_worker_each(s, u, see_worker, &k), 0);
  CHECK_EQ_INT(k.count, 1);
  CHECK_EQ_INT(k.done[0], 1);
  CHECK_EQ_INT(k.claimed[0], 1);
  /* The worker still holds its item (only it can mark it done), and the
  ** two ready ones are claimed as before. */
  a = open_ok(t.path, TIDE_STORE_SHARED);
  got = claim(a, u, wa, 10, 60000, &open);
  CHECK_EQ_INT(got.count, 2);
  CHECK_EQ_INT(tide_store_work_done(a, 2, wa), 0);
  for (i = 0; i < got.count; i++)
    CHECK_EQ_INT(tide_store_work_done(a, got.ids[i], wa), 0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  CHECK_EQ_INT(tide_store_work_open(s, u, &open), 0);
  CHECK_EQ_INT(open, 0);
  memset(&k, 0, sizeof k);
  CHECK_EQ_INT(tide_store_worker_each(s, u, see_worker, &k), 0);
  CHECK_EQ_INT(k.done[0], 4);
  CHECK_EQ_INT(k.claimed[0], 0);
  tide_store_close(a);
  tide_store_close(s);
  tmp_close(&t);
}

/* A version 3 store (no worker_counts) is upgraded by a writer: its
** workers' counts are kept from then on. */
static void test_pg_upgrade_3(void) {
  Tmp t;
  tide_Store *s, *a;
  Counts c;
  char msg[768], text[64];
  int64_t app, u, wa;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 2, NULL, &app, &u);
  tide_store_close(s);
  CHECK_EQ_INT(sql_exec(t.path, "DROP TABLE worker_counts;"
                        "UPDATE meta SET value = '3'"
                        " WHERE key = 'version'"), SQLITE_OK);
  snprintf(msg, sizeof msg, "%s: state store format version 3 is older "
           "than this tide's (4): an update with this tide upgrades it",
           t.path);
  check_open_fails(t.path, TIDE_STORE_SHARED, TIDE_EVERSION, msg);
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "4");
  a = open_ok(t.path, TIDE_STORE_SHARED);
  CHECK_EQ_INT(tide_store_worker_join(a, u, LIT("here"), 1, &wa), 0);
  CHECK_EQ_INT(tide_store_worker_count(a, wa, LIT("targets.inserted"), 2),
               0);
  CHECK_EQ_INT(tide_store_flush(a), 0);
  memset(&c, 0, sizeof c);
  CHECK_EQ_INT(tide_store_worker_counts(s, u, see_count, &c), 0);
  CHECK_EQ_INT(c.count, 1);
  CHECK_EQ_INT(c.n[0], 2);
  tide_store_close(a);
  tide_store_close(s);
  tmp_close(&t);
}

/* A worker's heartbeat renews its lease while it works; stopped, the
** lease runs out and its items go to another. */
static void test_pg_beat(void) {
  Tmp t;
  tide_Store *s, *a, *b;
  tide_StoreBeat *beat = NULL;
  Claimed got;
  int64_t app, u, wa, wb, open;
  tmp_init(&t, "unused");
  s = listed_update(t.path, 1, NULL, &app, &u);
  a = open_ok(t.path, TIDE_STORE_SHARED);
  b = open_ok(t.path, TIDE_STORE_SHARED);
  CHECK_EQ_INT(tide_store_worker_join(a, u, LIT("here"), 1, &wa), 0);
  CHECK_EQ_INT(tide_store_worker_join(b, u, LIT("there"), 2, &wb), 0);
  got = claim(a, u, wa, 1, 60000, &open);
  CHECK_EQ_INT(got.count, 1);
  CHECK_EQ_INT(tide_store_beat_start(a, wa, 10, &beat), 0);
  sleep_ms(1000);
  /* a's thread beats every 10 ms: a lease of 500 ms holds after a
  ** second (and would not without it). */
  got = claim(b, u, wb, 1, 500, &open);
  CHECK_EQ_INT(got.count, 0);
  tide_store_beat_stop(beat);
  sleep_ms(1000);
  got = claim(b, u, wb, 1, 500, &open);
  CHECK_EQ_INT(got.count, 1);
  tide_store_beat_stop(NULL);
  tide_store_close(a);
  tide_store_close(b);
  tide_store_close(s);
  tmp_close(&t);
}

/* On either backend. */
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
  { "bad arguments", test_bad_arguments },
  { "second writer locked", test_second_writer_locked },
  { "lock freed by kill -9", test_lock_freed_by_kill },
  { "reader refuses writes", test_reader_refuses_writes },
  { "a store opened again", test_open_again },
  { "the index loaded on a thread", test_index_on_a_thread },
  { "apps", test_apps },
  { "components", test_components },
  { "component bulk iteration", test_component_each_bulk },
  { "components under paths", test_component_each_under },
  { "memos", test_memos },
  { "containers", test_containers },
  { "target states", test_targets },
  { "source items", test_sources },
  { "runs", test_runs },
  { "group commit", test_group_commit },
  { "commits sent, waited for later", test_flush_send },
  { "app delete", test_app_delete },
  { "text with NUL bytes", test_nul_bytes },
  { "failed statement", test_failed_statement },
  { "allocator", test_allocator },
  { "a batch that fails is rolled back", test_failed_batch },
  { "a batch sent that fails", test_failed_send },
  { "ids not waited for", test_known_ids },
  { NULL, NULL },
};

/* Of files and SQLite's format history. */
static const CheckTest sqlite_tests[] = {
  { "a read opens a batch while the store holds its lock",
    test_read_opens_batch },
  { "reads of the committed state beside a batch in flight",
    test_committed_reads },
  { "version upgraded", test_version_upgraded },
  { "version 2 upgraded", test_version_2_upgraded },
  { "create and reopen", test_create_and_reopen },
  { "version recorded", test_version_recorded },
  { "unknown version refused", test_unknown_version_refused },
  { "foreign sqlite file refused", test_foreign_sqlite_refused },
  { "garbage file refused", test_garbage_refused },
  { "missing and empty files", test_missing_and_empty },
  { "no shared updates", test_sqlite_not_shared },
  { NULL, NULL },
};

/* Of PostgreSQL's schemas. */
static const CheckTest pg_tests[] = {
  { "schema created, read and reopened", test_pg_schema },
  { "schemas that are not stores refused", test_pg_refused },
  { "a batch sent on a lost connection", test_pg_lost_send },
  { "the password never shown", test_pg_password },
  { "work items shared by workers", test_pg_work },
  { "a claim read once its answer is in", test_pg_claim_later },
  { "a worker's heartbeat", test_pg_beat },
  { "a version 2 store upgraded", test_pg_upgrade },
  { "a version 3 store upgraded", test_pg_upgrade_3 },
  { "a worker's counts committed with its batches", test_pg_worker_counts },
  { "work items run, finished by their worker or reopened",
    test_pg_work_ran },
  { "the log of updates keeps the latest", test_pg_log_kept },
  { "memo entries two processes record alike", test_pg_memos_alike },
  { "memo entries two processes send early", test_pg_memos_early },
  { NULL, NULL },
};

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "--child") == 0)
    return child_main(argv[2], argv[3], atoi(argv[4]));
  {
    CheckTest all[64];
    const CheckTest *more = pg_base() ? pg_tests : sqlite_tests;
    size_t n = 0, i;
    for (i = 0; tests[i].name; i++) all[n++] = tests[i];
    for (i = 0; more[i].name; i++) all[n++] = more[i];
    all[n].name = NULL;
    all[n].fn = NULL;
    return check_run(pg_base() ? "store (PostgreSQL)" : "store", all);
  }
}
