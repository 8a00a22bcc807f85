/* Distances between tide's float32 vectors (vec.h). */
#include "vec.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

long tide_vec_dims(size_t size) {
  return size % 4 == 0 ? (long)(size / 4) : -1;
}

/* Little-endian on every machine: on a little-endian one the bytes are
** the float; elsewhere they are assembled. */
static float load(const unsigned char *p) {
  float f;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(&f, p, sizeof f);
#else
  uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
               (uint32_t)p[3] << 24;
  memcpy(&f, &u, sizeof f);
#endif
  return f;
}

double tide_vec_at(const void *v, size_t i) {
  return load((const unsigned char *)v + 4 * i);
}

/* The sums of x*y, x*x and y*y over two vectors, in doubles. Four
** running sums each, so that the additions do not wait on one another
** (the order of a float sum is fixed by the code, not left to the
** compiler); the result is the same on every machine. */
static void sums(const void *a, const void *b, size_t n, double *xy,
                 double *xx, double *yy) {
  const unsigned char *p = a, *q = b;
  double s[3][4] = {{0}};
  size_t i;
  int k;
  for (i = 0; i + 4 <= n; i += 4) {
    for (k = 0; k < 4; k++) {
      double x = load(p + 4 * (i + k)), y = load(q + 4 * (i + k));
      s[0][k] += x * y;
      s[1][k] += x * x;
      s[2][k] += y * y;
    }
  }
  for (k = 0; i < n; i++, k++) {
    double x = load(p + 4 * i), y = load(q + 4 * i);
    s[0][k] += x * y;
    s[1][k] += x * x;
    s[2][k] += y * y;
  }
  *xy = (s[0][0] + s[0][1]) + (s[0][2] + s[0][3]);
  *xx = (s[1][0] + s[1][1]) + (s[1][2] + s[1][3]);
  *yy = (s[2][0] + s[2][1]) + (s[2][2] + s[2][3]);
}

double tide_vec_dot(const void *a, const void *b, size_t n) {
  const unsigned char *p = a, *q = b;
  double s[4] = {0, 0, 0, 0};
  size_t i;
  int k;
  for (i = 0; i + 4 <= n; i += 4)
    for (k = 0; k < 4; k++)
      s[k] += (double)load(p + 4 * (i + k)) * load(q + 4 * (i + k));
  for (k = 0; i < n; i++, k++)
    s[k] += (double)load(p + 4 * i) * load(q + 4 * i);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

double tide_vec_l2(const void *a, const void *b, size_t n) {
  const unsigned char *p = a, *q = b;
  double s[4] = {0, 0, 0, 0};
  size_t i;
  int k;
  for (i = 0; i + 4 <= n; i += 4)
    for (k = 0; k < 4; k++) {
      double d = (double)load(p + 4 * (i + k)) - load(q + 4 * (i + k));
      s[k] += d * d;
    }
  for (k = 0; i < n; i++, k++) {
    double d = (double)load(p + 4 * i) - load(q + 4 * i);
    s[k] += d * d;
  }
  return sqrt((s[0] + s[1]) + (s[2] + s[3]));
}

double tide_vec_cosine(const void *a, const void *b, size_t n,
                       int *undefined) {
  double dot, na, nb, cos;
  sums(a, b, n, &dot, &na, &nb);
  *undefined = na == 0 || nb == 0;
  if (*undefined) return 0;
  cos = dot / (sqrt(na) * sqrt(nb));
  /* Rounding can take |cos| a hair past 1. */
  if (cos > 1) cos = 1;
  if (cos < -1) cos = -1;
  return 1 - cos;
}
