/*
** A C line scan for context beside the splitter benchmark: counts the
** lines of each file with memchr and prints its MB/s, the median of 5
** runs. Usage: bench_split_floor FILE...
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv);

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int i, run;
  for (i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    char *data;
    long size;
    double times[5];
    size_t lines = 0;
    if (f == NULL) return perror(argv[i]), 1;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc(size > 0 ? (size_t)size : 1);
    if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size)
      return fprintf(stderr, "%s: cannot read\n", argv[i]), 1;
    fclose(f);
    for (run = 0; run < 5; run++) {
      const char *p = data, *end = data + size;
      double t0 = now();
      lines = 0;
      while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        lines++;
        p++;
      }
      times[run] = now() - t0;
    }
    qsort(times, 5, sizeof times[0], by_value);
    printf("%s: %zu lines, C memchr scan %.1f MB/s\n", argv[i], lines,
           (double)size / 1e6 / times[2]);
    free(data);
  }
  return 0;
}
