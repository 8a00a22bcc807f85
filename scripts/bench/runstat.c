/*
** Times a command for the benchmark scripts: runs it, waits for it with
** wait4 and appends one line "US KB" to OUT, the elapsed wall-clock
** microseconds and the child's peak resident set size (ru_maxrss, in
** kilobytes). The command's own output is left alone. Exits with the
** command's status (128 + the signal when a signal ended it).
** Usage: runstat OUT CMD [ARG...]
*/
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv);

int main(int argc, char **argv) {
  struct timespec t0, t1;
  struct rusage ru;
  int status;
  pid_t pid;
  FILE *out;
  if (argc < 3) {
    fprintf(stderr, "usage: runstat OUT CMD [ARG...]\n");
    return 2;
  }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid = fork();
  if (pid < 0) {
    perror("runstat: fork");
    return 2;
  }
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    fprintf(stderr, "runstat: %s: %s\n", argv[2], strerror(errno));
    _exit(127);
  }
  if (wait4(pid, &status, 0, &ru) < 0) {
    perror("runstat: wait4");
    return 2;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if ((out = fopen(argv[1], "a")) == NULL) {
    perror(argv[1]);
    return 2;
  }
  fprintf(out, "%ld %ld\n",
          (long)((t1.tv_sec - t0.tv_sec) * 1000000 +
                 (t1.tv_nsec - t0.tv_nsec) / 1000),
          (long)ru.ru_maxrss);
  fclose(out);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}
