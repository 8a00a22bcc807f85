/* C tests of watching folders (watch.h) with real inotify on a real
** folder: changes marked once each, folders made later watched, folders
** removed forgotten, a root that is not a folder refused, files watched
** through their folder, and nothing left on the loop once freed. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "watch.h"

static char dir[64];

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *ftw) {
  (void)st;
  (void)type;
  (void)ftw;
  return remove(path);
}

static void put(const char *rel, const char *text) {
  char path[256];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  f = fopen(path, "w");
  CHECK(f != NULL);
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

static void make_dir(const char *rel) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  CHECK_EQ_INT(mkdir(path, 0755), 0);
}

/* The changes taken, as "path" or "*" for a whole root, joined by ' '. */
typedef struct {
  char text[1024];
} Taken;

static int collect(void *arg, const tide_WatchChange *c) {
  Taken *t = arg;
  size_t at = strlen(t->text);
  snprintf(t->text + at, sizeof t->text - at, "%s%.*s", at ? " " : "",
           c->path ? (int)c->len : 1, c->path ? c->path : "*");
  return 0;
}

/* Runs the loop until the watch has changes waiting (at most 2 s), then a
** little longer, so that the events of one step all arrive. */
static void settle(uv_loop_t *loop, tide_Watch *w) {
  int i;
  for (i = 0; i < 200 && tide_watch_pending(w) == 0; i++) {
    uv_run(loop, UV_RUN_NOWAIT);
    usleep(10000);
  }
  for (i = 0; i < 5; i++) {
    usleep(10000);
    uv_run(loop, UV_RUN_NOWAIT);
  }
}

/* How many of the space-separated words of text are word. */
static int count(const char *text, const char *word) {
  size_t n = strlen(word);
  int found = 0;
  while (*text) {
    size_t len = strcspn(text, " ");
    if (len == n && memcmp(text, word, n) == 0) found++;
    text += len;
    if (*text == ' ') text++;
  }
  return found;
}

static void take(tide_Watch *w, Taken *t) {
  t->text[0] = '\0';
  CHECK_EQ_INT(tide_watch_take(w, collect, t), 0);
  CHECK_EQ_INT(tide_watch_pending(w), 0);
}

static void test_changes(void) {
  uv_loop_t loop;
  tide_Watch *w;
  size_t root, again;
  Taken t;
  CHECK_EQ_INT(uv_loop_init(&loop), 0);
  CHECK_EQ_INT(tide_watch_new(&w, &loop, NULL, NULL), 0);
  make_dir("sub");
  CHECK_EQ_INT(tide_watch_add(w, dir, 0, &root), 0);
  CHECK_EQ_INT(tide_watch_count(w), 2);
  CHECK_EQ_INT(tide_watch_add(w, dir, 0, &again), 0);
  CHECK_EQ_INT(again, root);
  /* Added again while watched: nothing to walk. */
  CHECK_EQ_INT(tide_watch_pending(w), 0);
  CHECK(strcmp(tide_watch_root(w, root), dir) == 0);
  CHECK(tide_watch_root(w, root + 1) == NULL);

  /* A file written, then written again: one change. */
  put("a.md", "1");
  put("a.md", "2");
  put("sub/b.md", "3");
  settle(&loop, w);
  take(w, &t);
  CHECK_EQ_INT(count(t.text, "a.md"), 1);
  CHECK_EQ_INT(count(t.text, "sub/b.md"), 1);

  /* A folder made now: marked, watched, and a file in it seen. */
  make_dir("new");
  settle(&loop, w);
  take(w, &t);
  CHECK(strcmp(t.text, "new") == 0);
  CHECK_EQ_INT(tide_watch_count(w), 3);
  put("new/c.md", "4");
  settle(&loop, w);
  take(w, &t);
  CHECK(strcmp(t.text, "new/c.md") == 0);

  /* A file renamed: both names; a folder removed: forgotten. */
  {
    char from[256], to[256];
    snprintf(from, sizeof from, "%s/a.md", dir);
    snprintf(to, sizeof to, "%s/d.md", dir);
    CHECK_EQ_INT(rename(from, to), 0);
    settle(&loop, w);
    take(w, &t);
    CHECK_EQ_INT(count(t.text, "a.md"), 1);
    CHECK_EQ_INT(count(t.text, "d.md"), 1);
    snprintf(from, sizeof from, "%s/new/c.md", dir);
    CHECK_EQ_INT(remove(from), 0);
    snprintf(from, sizeof from, "%s/new", dir);
    CHECK_EQ_INT(rmdir(from), 0);
    settle(&loop, w);
    take(w, &t);
    CHECK_EQ_INT(count(t.text, "new"), 1);
    CHECK_EQ_INT(tide_watch_count(w), 2);
  }
  CHECK(strcmp(tide_watch_messages(w), "") == 0);

  /* A root that is a link to a folder: watched through it, as a walk
  ** lists it. */
  {
    char link[256], target[256], file[300];
    size_t r;
    FILE *f;
    snprintf(target, sizeof target, "%s.other", dir);
    snprintf(link, sizeof link, "%s.link", dir);
    snprintf(file, sizeof file, "%s/e.md", target);
    CHECK_EQ_INT(mkdir(target, 0755), 0);
    CHECK_EQ_INT(symlink(target, link), 0);
    CHECK_EQ_INT(tide_watch_add(w, link, 0, &r), 0);
    CHECK_EQ_INT(tide_watch_count(w), 3);
    f = fopen(file, "w");
    CHECK(f != NULL);
    if (f) fclose(f);
    settle(&loop, w);
    take(w, &t);
    CHECK(strcmp(t.text, "e.md") == 0);
    CHECK_EQ_INT(remove(file), 0);
    CHECK_EQ_INT(unlink(link), 0);
    CHECK_EQ_INT(rmdir(target), 0);
  }

  /* Not a folder. */
  {
    char file[256];
    size_t r;
    snprintf(file, sizeof file, "%s/d.md", dir);
    CHECK_EQ_INT(tide_watch_add(w, file, 0, &r), TIDE_ENOTFOUND);
    CHECK_STR_CONTAINS(tide_watch_errmsg(w), "not a folder");
  }

  /* Freed: its handle closes on the loop's next turn, and nothing is left
  ** on the loop. */
  tide_watch_free(w);
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ_INT(uv_loop_alive(&loop), 0);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

/* Runs the loop for 100 ms: what arrives in that time is waiting. */
static void quiet(uv_loop_t *loop) {
  int i;
  for (i = 0; i < 10; i++) {
    usleep(10000);
    uv_run(loop, UV_RUN_NOWAIT);
  }
}

static void test_file_roots(void) {
  uv_loop_t loop;
  tide_Watch *w;
  size_t root, again, tree;
  char path[256], folder[256];
  Taken t;
  FILE *f;
  CHECK_EQ_INT(uv_loop_init(&loop), 0);
  CHECK_EQ_INT(tide_watch_new(&w, &loop, NULL, NULL), 0);
  make_dir("files");
  make_dir("files/below");
  put("files/items.jsonl", "{}\n");
  snprintf(path, sizeof path, "%s/files/items.jsonl", dir);
  snprintf(folder, sizeof folder, "%s/files", dir);
  CHECK_EQ_INT(tide_watch_add_file(w, path, &root), 0);
  CHECK_EQ_INT(tide_watch_add_file(w, path, &again), 0);
  CHECK_EQ_INT(again, root);
  CHECK(strcmp(tide_watch_root(w, root), folder) == 0);
  /* Folders are counted, not a file's. */
  CHECK_EQ_INT(tide_watch_count(w), 0);

  /* Written: its name, once. */
  put("files/items.jsonl", "{}\n{}\n");
  put("files/items.jsonl", "{}\n{}\n{}\n");
  settle(&loop, w);
  take(w, &t);
  CHECK(strcmp(t.text, "items.jsonl") == 0);
  /* As a cycle's source adds it again before it reads it. */
  CHECK_EQ_INT(tide_watch_add_file(w, path, &again), 0);

  /* Written, and added again before the loop read the event: the change
  ** is still one (the event is compared with the file as it was). */
  put("files/items.jsonl", "{}\n{}\n{}\n{}\n");
  CHECK_EQ_INT(tide_watch_add_file(w, path, &again), 0);
  settle(&loop, w);
  take(w, &t);
  CHECK(strcmp(t.text, "items.jsonl") == 0);

  /* Other names beside it, what is below, a read: nothing. */
  put("files/other.txt", "x");
  put("files/below/deep.txt", "x");
  make_dir("files/made");
  f = fopen(path, "r");
  CHECK(f != NULL);
  if (f) fclose(f);
  quiet(&loop);
  CHECK_EQ_INT(tide_watch_pending(w), 0);

  /* An event that leaves it as it was last added (opened for writing,
  ** closed unwritten) is not a change. */
  f = fopen(path, "a");
  CHECK(f != NULL);
  if (f) fclose(f);
  quiet(&loop);
  CHECK_EQ_INT(tide_watch_pending(w), 0);

  /* Replaced by a rename, as editors save: a change. */
  put("files/items.tmp", "{}\n");
  snprintf(folder, sizeof folder, "%s/files/items.tmp", dir);
  CHECK_EQ_INT(rename(folder, path), 0);
  settle(&loop, w);
  take(w, &t);
  CHECK_EQ_INT(count(t.text, "items.jsonl"), 1);
  CHECK_EQ_INT(count(t.text, "items.tmp"), 0);

  /* Deleted, then made again. */
  CHECK_EQ_INT(tide_watch_add_file(w, path, &again), 0);
  CHECK_EQ_INT(remove(path), 0);
  settle(&loop, w);
  take(w, &t);
  CHECK(strcmp(t.text, "items.jsonl") == 0);
  CHECK_EQ_INT(tide_watch_add_file(w, path, &again), 0);
  put("files/items.jsonl", "{}\n");
  settle(&loop, w);
  take(w, &t);
  CHECK(strcmp(t.text, "items.jsonl") == 0);

  /* The folder also walked: one watch serves both, and a folder root
  ** that forgets it leaves the file root its watch. */
  snprintf(folder, sizeof folder, "%s/files", dir);
  CHECK_EQ_INT(tide_watch_add(w, folder, 0, &tree), 0);
  CHECK(tree != root);
  CHECK_EQ_INT(tide_watch_count(w), 3);
  put("files/items.jsonl", "{}\n{}\n");
  settle(&loop, w);
  take(w, &t);
  CHECK_EQ_INT(count(t.text, "items.jsonl"), 2);

  /* Its folder deleted: the whole file root, and the whole folder root,
  ** whose own folder it was. */
  CHECK_EQ_INT(nftw(folder, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
  settle(&loop, w);
  take(w, &t);
  CHECK_EQ_INT(count(t.text, "*"), 2);
  CHECK_EQ_INT(tide_watch_count(w), 0);
  CHECK_EQ_INT(tide_watch_add_file(w, path, &again), TIDE_ENOTFOUND);
  CHECK(strstr(tide_watch_errmsg(w), "its folder is not there") != NULL);
  CHECK_EQ_INT(tide_watch_add(w, folder, 0, &again), TIDE_ENOTFOUND);
  /* Made again: the folder root's place is watched, so that says so. */
  make_dir("files");
  settle(&loop, w);
  take(w, &t);
  CHECK(strcmp(t.text, "files") == 0);
  /* Added again, as the engine's next walk and read do: watched again,
  ** the folder root marked whole (it is walked whole). */
  CHECK_EQ_INT(tide_watch_add_file(w, path, &again), 0);
  CHECK_EQ_INT(again, root);
  CHECK_EQ_INT(tide_watch_add(w, folder, 0, &again), 0);
  CHECK_EQ_INT(again, tree);
  CHECK_EQ_INT(tide_watch_count(w), 1);
  take(w, &t);
  CHECK(strcmp(t.text, "*") == 0);
  put("files/items.jsonl", "back");
  put("files/below.txt", "x");
  settle(&loop, w);
  take(w, &t);
  CHECK_EQ_INT(count(t.text, "items.jsonl"), 2);
  CHECK_EQ_INT(count(t.text, "below.txt"), 1);

  /* Moved away: the same, and moved back, the same again. */
  snprintf(path, sizeof path, "%s/moved", dir);
  CHECK_EQ_INT(rename(folder, path), 0);
  settle(&loop, w);
  take(w, &t);
  CHECK_EQ_INT(count(t.text, "*"), 2);
  put("moved/after.txt", "x");
  quiet(&loop);
  CHECK_EQ_INT(tide_watch_pending(w), 0);
  CHECK_EQ_INT(rename(path, folder), 0);
  settle(&loop, w);
  take(w, &t);
  CHECK(strcmp(t.text, "files") == 0);
  CHECK_EQ_INT(tide_watch_add(w, folder, 0, &again), 0);
  take(w, &t);
  put("files/back.txt", "x");
  settle(&loop, w);
  take(w, &t);
  CHECK(strcmp(t.text, "back.txt") == 0);

  /* Its folder, below a folder root, moved away (no event of its own says
  ** so) and made again: added again, it is watched where it is now. */
  make_dir("files/deep");
  put("files/deep/rows.jsonl", "1");
  snprintf(path, sizeof path, "%s/files/deep/rows.jsonl", dir);
  CHECK_EQ_INT(tide_watch_add_file(w, path, &again), 0);
  settle(&loop, w);
  take(w, &t);
  snprintf(folder, sizeof folder, "%s/files/deep", dir);
  snprintf(path, sizeof path, "%s/files/gone", dir);
  CHECK_EQ_INT(rename(folder, path), 0);
  make_dir("files/deep");
  put("files/deep/rows.jsonl", "2");
  settle(&loop, w);
  take(w, &t);
  snprintf(path, sizeof path, "%s/files/deep/rows.jsonl", dir);
  CHECK_EQ_INT(tide_watch_add_file(w, path, &again), 0);
  put("files/gone/rows.jsonl", "elsewhere");
  quiet(&loop);
  take(w, &t);
  CHECK_EQ_INT(count(t.text, "rows.jsonl"), 0);
  put("files/deep/rows.jsonl", "3");
  settle(&loop, w);
  take(w, &t);
  CHECK_EQ_INT(count(t.text, "rows.jsonl"), 1);

  CHECK_EQ_INT(tide_watch_add_file(w, "items.jsonl", &again), TIDE_EINVAL);
  tide_watch_free(w);
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ_INT(uv_loop_alive(&loop), 0);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void) {
  static const CheckTest tests[] = {
    {"changes, folders made and removed", test_changes},
    {"files watched through their folder", test_file_roots},
    {NULL, NULL},
  };
  int rc;
  snprintf(dir, sizeof dir, "/tmp/tide-watch-XXXXXX");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  rc = check_run("watch", tests);
  nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  return rc;
}
