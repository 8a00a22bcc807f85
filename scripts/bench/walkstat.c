/*
** The floor for walk benchmarks: a plain C walk of a tree, with readdir,
** d_type and one fstatat per regular file (no sorting, no globs, nothing
** from tide). Prints the number of files and the elapsed microseconds:
** "FILES US". Usage: walkstat DIR
*/
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv);

/* Walks the directory open as fd (and closes it); counts files. */
static long walk(int fd) {
  DIR *d = fdopendir(fd);
  struct dirent *de;
  long files = 0;
  if (d == NULL) {
    close(fd);
    return 0;
  }
  while ((de = readdir(d)) != NULL) {
    struct stat st;
    unsigned char type = de->d_type;
    const char *name = de->d_name;
    if (name[0] == '.' &&
        (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
      continue;
    if (type == DT_UNKNOWN) {
      if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      type = S_ISREG(st.st_mode) ? DT_REG : S_ISDIR(st.st_mode) ? DT_DIR : 0;
    }
    if (type == DT_REG) {
      if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISREG(st.st_mode))
        files++;
    } else if (type == DT_DIR) {
      int sub = openat(dirfd(d), name,
                       O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
      if (sub >= 0) files += walk(sub);
    }
  }
  closedir(d);
  return files;
}

int main(int argc, char **argv) {
  struct timespec t0, t1;
  long files;
  int fd;
  if (argc != 2) {
    fprintf(stderr, "usage: walkstat DIR\n");
    return 2;
  }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if ((fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
    perror(argv[1]);
    return 1;
  }
  files = walk(fd);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%ld %ld\n", files,
         (long)((t1.tv_sec - t0.tv_sec) * 1000000 +
                (t1.tv_nsec - t0.tv_nsec) / 1000));
  return 0;
}
