/*
** The live-mode latency probe of bench_live.sh. Writes N different
** Markdown files of a tree, one every INTERVAL milliseconds whether or not
** the earlier ones were seen, each with a new first line "# lat I NONCE",
** and measures for each the time until it is seen:
** - tide DB: until the row docs(path, title) of a `tide live` running in
**   another process holds the new title, read by polling DB about every
**   100 us through a read-only connection;
** - floor: until an inotify watch on every directory of the tree, in this
**   process, reports the write: the time an event takes to reach a bare
**   C watcher.
** Prints one latency in microseconds per line. A file is given up after
** 10 s (printed as 10000000).
** Usage: livelat TREE N INTERVAL_MS tide DB | livelat TREE N INTERVAL_MS floor
*/
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

int main(int argc, char **argv);

#define GIVE_UP_US 10000000LL

static long long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* The relative paths of the tree's .md files, up to max of them. */
static int list(const char *root, const char *rel, char **out, int n,
                int max) {
  char path[4096];
  DIR *d;
  struct dirent *de;
  snprintf(path, sizeof path, "%s%s%s", root, rel[0] ? "/" : "", rel);
  if ((d = opendir(path)) == NULL) return n;
  while (n < max && (de = readdir(d)) != NULL) {
    char sub[4096];
    size_t len = strlen(de->d_name);
    if (de->d_name[0] == '.') continue;
    snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
    if (de->d_type == DT_DIR) {
      n = list(root, sub, out, n, max);
    } else if (len > 3 && strcmp(de->d_name + len - 3, ".md") == 0) {
      out[n++] = strdup(sub);
    }
  }
  closedir(d);
  return n;
}

/* Watches every directory of the tree (IN_MODIFY: the first write). */
static void watch_all(int fd, const char *path) {
  DIR *d;
  struct dirent *de;
  inotify_add_watch(fd, path, IN_CLOSE_WRITE | IN_MODIFY | IN_CREATE);
  if ((d = opendir(path)) == NULL) return;
  while ((de = readdir(d)) != NULL) {
    char sub[4096];
    if (de->d_type != DT_DIR || de->d_name[0] == '.') continue;
    snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
    watch_all(fd, sub);
  }
  closedir(d);
}

typedef struct {
  const char *rel, *base;
  char title[64];
  long long t0, lat; /* lat < 0: not seen yet */
} Probe;

/* Marks the probes whose file an inotify event names. */
static void read_events(int fd, Probe *p, int written) {
  _Alignas(struct inotify_event) char buf[65536];
  struct pollfd pf = {fd, POLLIN, 0};
  ssize_t got, at = 0;
  if (poll(&pf, 1, 0) <= 0) return;
  got = read(fd, buf, sizeof buf);
  while (at < got) {
    const struct inotify_event *ev = (const void *)(buf + at);
    int i;
    for (i = 0; i < written && ev->len > 0; i++)
      if (p[i].lat < 0 && strcmp(ev->name, p[i].base) == 0)
        p[i].lat = now_us() - p[i].t0;
    at += (ssize_t)(sizeof *ev + ev->len);
  }
}

/* Marks the probes whose row holds their title. */
static void read_rows(sqlite3_stmt *st, Probe *p, int written) {
  int i;
  for (i = 0; i < written; i++) {
    if (p[i].lat >= 0) continue;
    sqlite3_bind_text(st, 1, p[i].rel, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
      const char *t = (const char *)sqlite3_column_text(st, 0);
      if (t && strcmp(t, p[i].title) == 0) p[i].lat = now_us() - p[i].t0;
    }
    sqlite3_reset(st);
  }
}

int main(int argc, char **argv) {
  static char *files[100000];
  const char *tree;
  int n, interval, count, i, fd = -1;
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  if (argc < 5 || (strcmp(argv[4], "tide") == 0 && argc != 6)) {
    fprintf(stderr, "usage: livelat TREE N INTERVAL_MS tide DB | "
                    "livelat TREE N INTERVAL_MS floor\n");
    return 2;
  }
  tree = argv[1];
  n = atoi(argv[2]);
  interval = atoi(argv[3]);
  count = list(tree, "", files, 0, 100000);
  if (count == 0) {
    fprintf(stderr, "livelat: no .md file under %s\n", tree);
    return 2;
  }
  if (strcmp(argv[4], "tide") == 0) {
    if (sqlite3_open_v2(argv[5], &db, SQLITE_OPEN_READONLY, NULL) != 0 ||
        sqlite3_busy_timeout(db, 5000) != 0 ||
        sqlite3_prepare_v2(db, "SELECT title FROM docs WHERE path = ?1", -1,
                           &st, NULL) != 0) {
      fprintf(stderr, "livelat: %s: %s\n", argv[5], sqlite3_errmsg(db));
      return 2;
    }
  } else {
    fd = inotify_init1(IN_CLOEXEC);
    watch_all(fd, tree);
  }
  {
    /* Files written at start + i * interval, each a different file; every
    ** one not seen yet is looked for between writes. */
    Probe *p = calloc((size_t)n, sizeof *p);
    long long start = now_us();
    int written = 0, seen = 0;
    if (p == NULL || n > count) {
      fprintf(stderr, "livelat: %d files asked, %d in the tree\n", n, count);
      return 2;
    }
    for (i = 0; i < n; i++) {
      p[i].rel = files[(i * 7919) % count];
      p[i].base = strrchr(p[i].rel, '/') ? strrchr(p[i].rel, '/') + 1
                                         : p[i].rel;
      p[i].lat = -1;
    }
    while (seen < n) {
      long long now = now_us();
      if (written < n && now >= start + (long long)written * interval * 1000) {
        Probe *w = &p[written++];
        char path[4096];
        FILE *f;
        snprintf(path, sizeof path, "%s/%s", tree, w->rel);
        snprintf(w->title, sizeof w->title, "lat %d %lld", written, now);
        w->t0 = now_us();
        if ((f = fopen(path, "w")) == NULL) return 2;
        fprintf(f, "# %s\n\nbody\n", w->title);
        fclose(f);
      }
      if (db) read_rows(st, p, written);
      else read_events(fd, p, written);
      for (seen = 0, i = 0; i < written; i++) {
        if (p[i].lat < 0 && now_us() - p[i].t0 > GIVE_UP_US)
          p[i].lat = GIVE_UP_US;
        if (p[i].lat >= 0) seen++;
      }
      usleep(100);
    }
    for (i = 0; i < n; i++) printf("%lld\n", p[i].lat);
    free(p);
  }
  if (st) sqlite3_finalize(st);
  if (db) sqlite3_close(db);
  return 0;
}
