/* Files read and hashed a window ahead of their consumer (readahead.h):
** every candidate taken whole, in order, across many windows; what
** changed size, cannot be read, or was never a candidate left to the
** consumer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "readahead.h"

static char dir[64];

/* Candidates: files f000..f(n-1), key i + 1, the size each was written
** with (or a size given in sizes[]). */
typedef struct {
  int n, at;
  char names[300][8];
  int64_t sizes[300];
  int skip_every; /* every skip_every-th file is not a candidate */
} Source;

static int next(void *ud, size_t *key, const char **path, size_t *len,
                int64_t *size) {
  Source *s = ud;
  while (s->at < s->n) {
    int i = s->at++;
    if (s->skip_every && i % s->skip_every == 0) continue;
    *key = (size_t)i + 1;
    *path = s->names[i];
    *len = strlen(s->names[i]);
    *size = s->sizes[i];
    return 1;
  }
  return 0;
}

static void write_file(const char *name, const char *text) {
  char path[128];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

static void content_of(int i, char *out, size_t len) {
  snprintf(out, len, "file %d\n%.*s", i, i % 50, "abcdefghijklmnopqrstuvwxyz"
           "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
}

static void make_files(Source *s, int n) {
  int i;
  char text[128];
  memset(s, 0, sizeof *s);
  s->n = n;
  for (i = 0; i < n; i++) {
    snprintf(s->names[i], sizeof s->names[i], "f%03d", i);
    content_of(i, text, sizeof text);
    write_file(s->names[i], text);
    s->sizes[i] = (int64_t)strlen(text);
  }
}

static void test_all_windows(void) {
  Source s;
  tide_ReadAhead ra;
  int i, taken = 0;
  make_files(&s, 300); /* more than four windows of 64 */
  CHECK_EQ_INT(tide_readahead_init(&ra, dir, strlen(dir), next, &s, NULL,
                                   NULL), 0);
  for (i = 0; i < 300; i++) {
    const uint8_t *data, *fp;
    size_t len;
    char text[128];
    tide_Fp want;
    content_of(i, text, sizeof text);
    tide_fp_bytes(&want, text, strlen(text));
    if (tide_readahead_take(&ra, (size_t)i + 1, &data, &len, &fp)) {
      taken++;
      CHECK_EQ_INT(len, strlen(text));
      CHECK(memcmp(data, text, len) == 0);
      CHECK(memcmp(fp, want.bytes, TIDE_FP_SIZE) == 0);
    }
  }
  CHECK_EQ_INT(taken, 300);
  tide_readahead_close(&ra);
}

static void test_left_to_the_consumer(void) {
  Source s;
  tide_ReadAhead ra;
  const uint8_t *data, *fp;
  size_t len;
  char path[128];
  make_files(&s, 100);
  s.skip_every = 10;      /* 0, 10, 20...: not candidates */
  s.sizes[3] += 1;        /* changed size since the walk */
  s.sizes[4] -= 1;
  snprintf(path, sizeof path, "%s/f005", dir);
  CHECK_EQ_INT(unlink(path), 0); /* gone */
  CHECK_EQ_INT(tide_readahead_init(&ra, dir, strlen(dir), next, &s, NULL,
                                   NULL), 0);
  CHECK_EQ_INT(tide_readahead_take(&ra, 1, &data, &len, &fp), 0);
  CHECK_EQ_INT(tide_readahead_take(&ra, 2, &data, &len, &fp), 1);
  CHECK_EQ_INT(tide_readahead_take(&ra, 4, &data, &len, &fp), 0);
  CHECK_EQ_INT(tide_readahead_take(&ra, 5, &data, &len, &fp), 0);
  CHECK_EQ_INT(tide_readahead_take(&ra, 6, &data, &len, &fp), 0);
  CHECK_EQ_INT(tide_readahead_take(&ra, 7, &data, &len, &fp), 1);
  /* Skipping ahead past whole windows. */
  CHECK_EQ_INT(tide_readahead_take(&ra, 99, &data, &len, &fp), 1);
  CHECK_EQ_INT(len, strlen("file 98\n") + 48);
  CHECK_EQ_INT(tide_readahead_take(&ra, 101, &data, &len, &fp), 0);
  tide_readahead_close(&ra);
}

static void test_nothing(void) {
  Source s;
  tide_ReadAhead ra;
  const uint8_t *data, *fp;
  size_t len;
  memset(&s, 0, sizeof s);
  CHECK_EQ_INT(tide_readahead_init(&ra, dir, strlen(dir), next, &s, NULL,
                                   NULL), 0);
  CHECK_EQ_INT(tide_readahead_take(&ra, 1, &data, &len, &fp), 0);
  tide_readahead_close(&ra);
  /* Closed without a take: the thread never started. */
  CHECK_EQ_INT(tide_readahead_init(&ra, dir, strlen(dir), next, &s, NULL,
                                   NULL), 0);
  tide_readahead_close(&ra);
}

int main(void) {
  static const CheckTest tests[] = {
    {"every window", test_all_windows},
    {"left to the consumer", test_left_to_the_consumer},
    {"nothing to read", test_nothing},
    {NULL, NULL},
  };
  char cmd[96];
  int rc;
  snprintf(dir, sizeof dir, "/tmp/tide-readahead.XXXXXX");
  if (mkdtemp(dir) == NULL) return perror("mkdtemp"), 1;
  rc = check_run("readahead", tests);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return rc;
}
