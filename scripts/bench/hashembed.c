/*
** For bench_hash_embed.sh. `hashembed chunk IN OUT` cuts the text IN into
** chunks of 1-2 KB (each ends at the first newline after 1024 bytes, or at
** 2048 bytes) and writes them to OUT separated by NUL bytes (a NUL in IN
** becomes a space). `hashembed floor FILE RUNS` is the floor: it reads
** every byte of every chunk once and counts the ASCII letters, nothing
** more. `hashembed embed FILE RUNS DIMS` embeds every chunk with
** tide_hash_embed (hash_embed.h), in C alone. Both print the median time
** of a pass over all chunks in milliseconds, RUNS passes after one
** warm-up, then a checksum (so the work cannot be optimised away).
** Usage: hashembed chunk IN OUT | hashembed floor FILE RUNS |
**        hashembed embed FILE RUNS DIMS
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash_embed.h"

int main(int argc, char **argv);

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  long size;
  if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
      fseek(f, 0, SEEK_SET) != 0 ||
      (buf = malloc((size_t)size + 1)) == NULL ||
      fread(buf, 1, (size_t)size, f) != (size_t)size) {
    fprintf(stderr, "hashembed: cannot read %s\n", path);
    exit(1);
  }
  fclose(f);
  buf[size] = 0;
  *len = (size_t)size;
  return buf;
}

static int chunk(const char *in, const char *out) {
  size_t len, start = 0, i;
  char *text = slurp(in, &len);
  FILE *f = fopen(out, "wb");
  if (f == NULL) return 1;
  for (i = 0; i < len; i++)
    if (text[i] == 0) text[i] = ' ';
  while (start < len) {
    size_t end = start + 1024 < len ? start + 1024 : len;
    while (end < len && end - start < 2048 && text[end - 1] != '\n') end++;
    fwrite(text + start, 1, end - start, f);
    if (end < len) fputc(0, f);
    start = end;
  }
  free(text);
  return fclose(f) == 0 ? 0 : 1;
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

/* One pass over the chunks: floor (dims 0) or embed. */
static double pass(const char *text, size_t len, size_t dims, float *vec) {
  const char *p = text, *end = text + len;
  double check = 0;
  while (p < end) {
    const char *stop = memchr(p, 0, (size_t)(end - p));
    size_t n;
    if (stop == NULL) stop = end;
    n = (size_t)(stop - p);
    if (dims == 0) {
      size_t i, letters = 0;
      for (i = 0; i < n; i++)
        letters += (unsigned)(((unsigned char)p[i] | 0x20) - 'a') < 26;
      check += (double)letters;
    } else {
      tide_hash_embed(p, n, vec, dims);
      check += vec[0];
    }
    p = stop + 1;
  }
  return check;
}

static int timed(const char *path, int runs, size_t dims) {
  size_t len;
  char *text = slurp(path, &len);
  float *vec = malloc((dims ? dims : 1) * sizeof *vec);
  double times[101], check = 0;
  int r;
  if (vec == NULL) return 1;
  if (runs < 1 || runs > 100) runs = 5;
  for (r = 0; r <= runs; r++) {
    double t0 = now_ms();
    check += pass(text, len, dims, vec);
    if (r > 0) times[r - 1] = now_ms() - t0; /* the first warms up */
  }
  qsort(times, (size_t)runs, sizeof times[0], by_value);
  printf("%.3f %g\n", times[runs / 2], check);
  free(vec);
  free(text);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "chunk") == 0)
    return chunk(argv[2], argv[3]);
  if (argc == 4 && strcmp(argv[1], "floor") == 0)
    return timed(argv[2], atoi(argv[3]), 0);
  if (argc == 5 && strcmp(argv[1], "embed") == 0) {
    long dims = atol(argv[4]);
    if (dims < 1 || dims > TIDE_HASH_EMBED_MAX_DIMS) return 2;
    return timed(argv[2], atoi(argv[3]), (size_t)dims);
  }
  fprintf(stderr, "usage: hashembed chunk IN OUT | hashembed floor FILE "
                  "RUNS | hashembed embed FILE RUNS DIMS\n");
  return 2;
}
