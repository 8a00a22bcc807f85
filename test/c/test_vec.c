/* C tests of the vector distances (vec.h) and their SQL functions
** (sqlite_vec.h), against references computed here in doubles. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "check.h"
#include "sqlite_vec.h"
#include "vec.h"

int main(void);

#define CHECK_NEAR(a, b, tol) CHECK(fabs((double)(a) - (double)(b)) <= (tol))

/* n float32s, little-endian, from doubles. */
static void pack(unsigned char *out, const double *x, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    float f = (float)x[i];
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    out[4 * i] = (unsigned char)u;
    out[4 * i + 1] = (unsigned char)(u >> 8);
    out[4 * i + 2] = (unsigned char)(u >> 16);
    out[4 * i + 3] = (unsigned char)(u >> 24);
  }
}

static void test_distances(void) {
  static const double a[] = {1, 2, 3}, b[] = {4, -5, 6};
  unsigned char pa[12], pb[12], zero[12] = {0};
  int undefined = -1;
  double cos_ref = (4 - 10 + 18) / (sqrt(14.0) * sqrt(77.0));
  pack(pa, a, 3);
  pack(pb, b, 3);
  CHECK_EQ_INT(tide_vec_dims(12), 3);
  CHECK_EQ_INT(tide_vec_dims(13), -1);
  CHECK_EQ_INT(tide_vec_dims(0), 0);
  CHECK_NEAR(tide_vec_at(pa, 2), 3, 0);
  CHECK_NEAR(tide_vec_dot(pa, pb, 3), 12, 1e-12);
  CHECK_NEAR(tide_vec_l2(pa, pb, 3), sqrt(9.0 + 49 + 9), 1e-12);
  CHECK_NEAR(tide_vec_cosine(pa, pb, 3, &undefined), 1 - cos_ref, 1e-12);
  CHECK_EQ_INT(undefined, 0);
  /* The same vector: 0, even where rounding would give a hair below. */
  CHECK_NEAR(tide_vec_cosine(pa, pa, 3, &undefined), 0, 1e-15);
  CHECK(tide_vec_cosine(pa, pa, 3, &undefined) >= 0);
  /* A vector of zeros has no direction. */
  tide_vec_cosine(pa, zero, 3, &undefined);
  CHECK_EQ_INT(undefined, 1);
  CHECK_NEAR(tide_vec_dot(pa, pb, 0), 0, 0);
}

/* Random 384-dimension vectors: every distance within 1e-6 of a reference
** taken in doubles from the same float32 values. */
static void test_against_reference(void) {
  enum { N = 384 };
  double x[N], y[N], dot = 0, na = 0, nb = 0, l2 = 0;
  unsigned char px[4 * N], py[4 * N];
  int i, undefined;
  srand(7);
  for (i = 0; i < N; i++) {
    x[i] = (float)(rand() / (double)RAND_MAX * 2 - 1);
    y[i] = (float)(rand() / (double)RAND_MAX * 2 - 1);
    dot += x[i] * y[i];
    na += x[i] * x[i];
    nb += y[i] * y[i];
    l2 += (x[i] - y[i]) * (x[i] - y[i]);
  }
  pack(px, x, N);
  pack(py, y, N);
  CHECK_NEAR(tide_vec_dot(px, py, N), dot, 1e-6);
  CHECK_NEAR(tide_vec_l2(px, py, N), sqrt(l2), 1e-6);
  CHECK_NEAR(tide_vec_cosine(px, py, N, &undefined),
             1 - dot / (sqrt(na) * sqrt(nb)), 1e-6);
}

/* One value of sql on db as text ("NULL" for NULL), or the error. */
static const char *eval(sqlite3 *db, const char *sql, char *out, size_t n) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    snprintf(out, n, "error: %s", sqlite3_errmsg(db));
    return out;
  }
  if (sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(out, n, "%s", t ? (const char *)t : "NULL");
  } else {
    snprintf(out, n, "error: %s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(st);
  return out;
}

static void test_sql(void) {
  sqlite3 *db;
  char v[200];
  CHECK_EQ_INT(sqlite3_open(":memory:", &db), SQLITE_OK);
  CHECK_EQ_INT(tide_sqlite_vec_register(db), SQLITE_OK);
  CHECK(strcmp(eval(db, "SELECT vec_dot('[1,2,3]', '[4,5,6]')", v,
                    sizeof v), "32.0") == 0);
  CHECK(strcmp(eval(db, "SELECT vec_distance_l2('[0,0]', x'0000404000008040')",
                    v, sizeof v), "5.0") == 0);
  CHECK(strcmp(eval(db, "SELECT vec_distance_cosine('[1,0]', '[0,2]')", v,
                    sizeof v), "1.0") == 0);
  CHECK(strcmp(eval(db, "SELECT vec_distance_cosine('[0,0]', '[1,1]')", v,
                    sizeof v), "NULL") == 0);
  CHECK(strcmp(eval(db, "SELECT vec_dot(NULL, '[1]')", v, sizeof v),
               "NULL") == 0);
  CHECK(strcmp(eval(db, "SELECT vec_json(x'0000803f0000c0bf')", v, sizeof v),
               "[1,-1.5]") == 0);
  CHECK(strcmp(eval(db, "SELECT vec_json(' [ 0.1 , 3.14159265 ] ')", v,
                    sizeof v), "[0.1,3.1415927]") == 0);
  CHECK(strcmp(eval(db, "SELECT vec_json('[]')", v, sizeof v), "[]") == 0);
  CHECK_STR_CONTAINS(eval(db, "SELECT vec_dot('[1,2]', '[1]')", v, sizeof v),
                     "vec_dot: vectors of 2 and 1 dimensions");
  CHECK_STR_CONTAINS(eval(db, "SELECT vec_distance_l2(x'000000', '[1]')", v,
                          sizeof v),
                     "vec_distance_l2: argument 1 is not a vector: 3 bytes");
  CHECK_STR_CONTAINS(eval(db, "SELECT vec_dot('[1]', 7)", v, sizeof v),
                     "argument 2 is not a vector (a BLOB of float32s or a "
                     "JSON array), got integer");
  CHECK_STR_CONTAINS(eval(db, "SELECT vec_json('[1,2')", v, sizeof v),
                     "text that is not a JSON array of numbers");
  CHECK_STR_CONTAINS(eval(db, "SELECT vec_json('[0x10]')", v, sizeof v),
                     "text that is not a JSON array of numbers");
  CHECK_STR_CONTAINS(eval(db, "SELECT vec_json('[1e39]')", v, sizeof v),
                     "a number is not a finite float32");
  sqlite3_close(db);
}

int main(void) {
  static const CheckTest tests[] = {
    {"distances and their edge cases", test_distances},
    {"agree with a reference in doubles", test_against_reference},
    {"SQL functions, their NULLs and their errors", test_sql},
    {NULL, NULL},
  };
  return check_run("vec", tests);
}
