/*
** Replays fuzz inputs without libFuzzer: each argument is a file or a
** folder of files, fed to LLVMFuzzerTestOneInput one at a time.
*/
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int main(int argc, char **argv);

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t *data;
  long size;
  if (f == NULL) return perror(path), 1;
  fseek(f, 0, SEEK_END);
  size = ftell(f);
  fseek(f, 0, SEEK_SET);
  data = malloc(size > 0 ? (size_t)size : 1);
  if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size) {
    fclose(f);
    free(data);
    return fprintf(stderr, "%s: cannot read\n", path), 1;
  }
  fclose(f);
  LLVMFuzzerTestOneInput(data, (size_t)size);
  free(data);
  return 0;
}

int main(int argc, char **argv) {
  int i, count = 0, errors = 0;
  for (i = 1; i < argc; i++) {
    struct stat st;
    DIR *dir;
    struct dirent *e;
    char path[4096];
    if (stat(argv[i], &st) != 0) continue;
    if (!S_ISDIR(st.st_mode)) {
      errors += replay_file(argv[i]);
      count++;
      continue;
    }
    if ((dir = opendir(argv[i])) == NULL) continue;
    while ((e = readdir(dir)) != NULL) {
      if (e->d_name[0] == '.') continue;
      snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
      errors += replay_file(path);
      count++;
    }
    closedir(dir);
  }
  /* Reaching here means no input crashed or tripped an assertion. */
  printf("%d passed, %d failed\n", count - errors, errors);
  return errors ? 1 : 0;
}
