/*
** The fixture of the state store's C tests (test_store*.c): a temporary
** store per test, on files or, when TIDE_TEST_PG names a PostgreSQL
** database as a location (postgresql://...), in a fresh schema of it; SQL
** reads beside the store's own; the suite runner that picks the tests of
** the backend in use. One suite, two backends: scripts/run-tests.sh runs
** each binary on files, then again on a server of its own. Each binary
** includes this header once; its functions are static inline so that one
** that a binary does not use costs nothing and warns of nothing.
*/
#ifndef TIDE_STORE_FIXTURE_H
#define TIDE_STORE_FIXTURE_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "check.h"
#include "store.h"

typedef struct {
  char dir[64];
  char path[512];
  char schema[64]; /* PostgreSQL: the test's schema */
} Tmp;

/* TIDE_TEST_PG, or NULL: the tests then run on files. */
static inline const char *pg_base(void) {
  const char *base = getenv("TIDE_TEST_PG");
  return base && base[0] ? base : NULL;
}

/* Runs sql (no result) on the database of TIDE_TEST_PG in schema, or
** with no schema set when schema is NULL; 0 or -1. */
static inline int pg_exec(const char *schema, const char *sql);

static inline void tmp_init(Tmp *t, const char *name) {
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

static inline int remove_entry(const char *path, const struct stat *st,
                               int type, struct FTW *ftw) {
  (void)st;
  (void)type;
  (void)ftw;
  return remove(path);
}

static inline void tmp_close(Tmp *t) {
  char sql[128];
  nftw(t->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  if (t->schema[0]) {
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", t->schema);
    pg_exec(NULL, sql);
  }
}

/* A connection to TIDE_TEST_PG's database in the schema of location (its
** schema= parameter, which libpq does not know, left out). */
static inline PGconn *pg_connect(const char *schema) {
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
static inline const char *schema_of(const char *location, char *buf,
                                    size_t cap) {
  const char *p = strstr(location, "schema=");
  snprintf(buf, cap, "%s", p ? p + 7 : "tide");
  buf[strcspn(buf, "&")] = '\0';
  return buf;
}

static inline int pg_exec(const char *schema, const char *sql) {
  PGconn *conn = pg_connect(schema);
  PGresult *r = PQexec(conn, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
           PQresultStatus(r) == PGRES_TUPLES_OK;
  PQclear(r);
  PQfinish(conn);
  return ok ? 0 : -1;
}

/* The first column of the first row of sql, as text into buf. */
static inline const char *pg_text(const char *location, const char *sql,
                                  char *buf, size_t cap) {
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

static inline int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static inline void write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
    perror(path);
    exit(2);
  }
}

/* Reads up to cap - 1 bytes of a file; returns the length, -1 on error. */
static inline long read_file(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n;
  if (f == NULL) return -1;
  n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return (long)n;
}

/* The first column of the first row of sql, as an integer; -1 on error. */
static inline int64_t sql_int(const char *path, const char *sql) {
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
static inline const char *sql_text(const char *path, const char *sql,
                                   char *buf, size_t cap) {
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
static inline const char *meta_version(const char *path, char *buf,
                                       size_t cap) {
  return sql_text(path, "SELECT value FROM meta WHERE key = 'version'", buf,
                  cap);
}

/* Runs sql on the file with a plain read-write connection. */
static inline int sql_exec(const char *path, const char *sql) {
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

static inline void fp_fill(uint8_t *fp, int seed) {
  int i;
  for (i = 0; i < TIDE_FP_SIZE; i++) fp[i] = (uint8_t)(seed + i * 31);
}

static inline int fp_equal(const uint8_t *a, const uint8_t *b) {
  return a && b && memcmp(a, b, TIDE_FP_SIZE) == 0;
}

static inline int blob_equal(const void *a, size_t alen, const void *b,
                             size_t blen) {
  return a && b && alen == blen && memcmp(a, b, alen) == 0;
}

static inline int str_equal(const char *a, const char *b) {
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

static inline tide_Store *open_ok(const char *path, int flags) {
  tide_Store *s = NULL;
  int rc = tide_store_open(&s, path, flags, NULL, NULL);
  if (rc != 0) {
    fprintf(stderr, "  open %s: %s\n", path, tide_store_errmsg(s));
    check_failures_in_test++;
  }
  return s;
}

/* Opens, expects code rc and message msg, closes. */
static inline void check_open_fails(const char *path, int flags, int rc,
                                    const char *msg) {
  tide_Store *s = NULL;
  CHECK_EQ_INT(tide_store_open(&s, path, flags, NULL, NULL), rc);
  CHECK(s != NULL);
  CHECK_STR_EQ(tide_store_errmsg(s), msg);
  CHECK_EQ_INT(tide_store_close(s), 0);
}

static inline void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

typedef struct {
  int count;
  char text[256];
} TextWalk;

static inline int walk_target(void *arg, const tide_StoreTarget *t) {
  TextWalk *w = arg;
  size_t n = strlen(w->text);
  snprintf(w->text + n, sizeof w->text - n, "%s%lld:%.*s:%lld:%d",
           n ? " " : "", (long long)t->container_id, (int)t->key_len,
           (const char *)t->key, (long long)t->owner_id, t->pending);
  w->count++;
  return 0;
}

/* Runs the suite named name: the tests of both backends, then those of
** the backend TIDE_TEST_PG chooses (files when it is unset); a list may
** be NULL. */
static inline int store_suite(const char *name, const CheckTest *both,
                              const CheckTest *files, const CheckTest *pg) {
  CheckTest all[64];
  const CheckTest *more = pg_base() ? pg : files;
  char title[128];
  size_t n = 0, i;
  for (i = 0; both && both[i].name; i++) all[n++] = both[i];
  for (i = 0; more && more[i].name; i++) all[n++] = more[i];
  all[n].name = NULL;
  all[n].fn = NULL;
  snprintf(title, sizeof title, "%s%s", name,
           pg_base() ? " (PostgreSQL)" : "");
  return check_run(title, all);
}

#endif
