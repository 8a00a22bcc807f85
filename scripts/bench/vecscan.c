/*
** For bench_vector.sh. `vecscan make DB N DIMS` writes a table docs(id
** INTEGER PRIMARY KEY, v BLOB) of N random vectors of DIMS float32s
** (seeded: the same bytes every time), as tide stores a tide.vector.
** `vecscan scan DB RUNS` is the floor of a search: it reads every BLOB
** of the table and touches its first byte, nothing more, RUNS times on
** one connection, and prints the median time of a scan in milliseconds.
** Usage: vecscan make DB N DIMS | vecscan scan DB RUNS
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

int main(int argc, char **argv);

static int fail(sqlite3 *db, const char *what) {
  fprintf(stderr, "vecscan: %s: %s\n", what, sqlite3_errmsg(db));
  return 1;
}

static int make(const char *path, long n, int dims) {
  sqlite3 *db;
  sqlite3_stmt *st;
  unsigned char *blob = malloc((size_t)dims * 4);
  uint64_t x = 88172645463325252u;
  long i;
  int j;
  if (blob == NULL || sqlite3_open(path, &db) != SQLITE_OK) return 1;
  if (sqlite3_exec(db, "PRAGMA journal_mode = WAL; CREATE TABLE docs (id "
                   "INTEGER PRIMARY KEY, v BLOB NOT NULL); BEGIN", NULL,
                   NULL, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "INSERT INTO docs (v) VALUES (?)", -1, &st,
                         NULL) != SQLITE_OK)
    return fail(db, "make");
  for (i = 0; i < n; i++) {
    for (j = 0; j < dims; j++) {
      float f;
      uint32_t u;
      x ^= x << 13; /* xorshift64 */
      x ^= x >> 7;
      x ^= x << 17;
      f = (float)((double)(x >> 11) / 9007199254740992.0 * 2 - 1);
      memcpy(&u, &f, 4);
      blob[4 * j] = (unsigned char)u;
      blob[4 * j + 1] = (unsigned char)(u >> 8);
      blob[4 * j + 2] = (unsigned char)(u >> 16);
      blob[4 * j + 3] = (unsigned char)(u >> 24);
    }
    sqlite3_bind_blob(st, 1, blob, dims * 4, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) return fail(db, "insert");
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    return fail(db, "commit");
  free(blob);
  return sqlite3_close(db) == SQLITE_OK ? 0 : 1;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int scan(const char *path, int runs) {
  sqlite3 *db;
  sqlite3_stmt *st;
  double times[101];
  unsigned sum = 0;
  int r;
  if (runs < 1 || runs > 101) runs = 5;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT v FROM docs", -1, &st, NULL) !=
          SQLITE_OK)
    return fail(db, "scan");
  for (r = 0; r < runs; r++) {
    double t0 = now_ms();
    while (sqlite3_step(st) == SQLITE_ROW) {
      const unsigned char *b = sqlite3_column_blob(st, 0);
      if (b != NULL && sqlite3_column_bytes(st, 0) > 0) sum += b[0];
    }
    sqlite3_reset(st);
    times[r] = now_ms() - t0;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  qsort(times, (size_t)runs, sizeof times[0], by_value);
  printf("%.3f %u\n", times[runs / 2], sum & 1);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "make") == 0)
    return make(argv[2], atol(argv[3]), atoi(argv[4]));
  if (argc == 4 && strcmp(argv[1], "scan") == 0)
    return scan(argv[2], atoi(argv[3]));
  fprintf(stderr, "usage: vecscan make DB N DIMS | vecscan scan DB RUNS\n");
  return 2;
}
