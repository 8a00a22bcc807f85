/* C tests of the walker and the file operations, on real temporary trees. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "glob.h"
#include "walk.h"

static char root[64];

static void make_root(void) {
  strcpy(root, "/tmp/tide-walk-XXXXXX");
  CHECK(mkdtemp(root) != NULL);
  chmod(root, 0755); /* so the unprivileged runs below can enter it */
}

static void remove_root(void) {
  char cmd[192];
  snprintf(cmd, sizeof cmd, "chmod -R u+rwx %s; rm -rf %s", root, root);
  CHECK_EQ_INT(system(cmd), 0);
}

static void full(char *out, size_t outlen, const char *rel) {
  snprintf(out, outlen, "%s/%s", root, rel);
}

static void put(const char *rel, const char *content) {
  char path[4096], err[256];
  full(path, sizeof path, rel);
  CHECK_EQ_INT(tide_file_write_atomic(path, content, strlen(content), NULL,
                                      err, sizeof err), 0);
}

static void mkdir_rel(const char *rel) {
  char path[512], err[256];
  full(path, sizeof path, rel);
  CHECK_EQ_INT(tide_dir_make(path, NULL, err, sizeof err), 0);
}

static void link_rel(const char *target, const char *rel) {
  char path[512];
  full(path, sizeof path, rel);
  CHECK_EQ_INT(symlink(target, path), 0);
}

/* What a walk reported: file paths one per line, errors as "!path:errno". */
typedef struct {
  char out[4096];
  int files, errors;
  int stop_at;           /* return 7 from the callback at this file */
  const char *vanish_on; /* when this file is seen, delete vanish */
  const char *vanish;
  tide_WalkEntry last;
} Seen;

static int collect(void *ud, const tide_WalkEntry *e) {
  Seen *s = ud;
  size_t at = strlen(s->out);
  CHECK_EQ_INT(strlen(e->path), e->len);
  if (e->kind == TIDE_WALK_ERROR) {
    snprintf(s->out + at, sizeof s->out - at, "!%s:%d\n", e->path, e->error);
    s->errors++;
    return 0;
  }
  snprintf(s->out + at, sizeof s->out - at, "%s\n", e->path);
  s->last = *e;
  if (s->vanish_on && strcmp(e->path, s->vanish_on) == 0) {
    char path[512];
    full(path, sizeof path, s->vanish);
    CHECK_EQ_INT(unlink(path), 0);
  }
  if (++s->files == s->stop_at) return 7;
  return 0;
}

static tide_GlobSet *globs(const char *const *patterns) {
  tide_GlobSet *set = NULL;
  char err[256];
  size_t n = 0;
  while (patterns[n]) n++;
  if (tide_glob_new(&set, patterns, n, NULL, NULL, err, sizeof err) != 0)
    fprintf(stderr, "  %s\n", err);
  CHECK(set != NULL);
  return set;
}

/* Walks root with include and exclude (NULL-terminated lists or NULL). */
static int walk(Seen *s, const char *const *include,
                const char *const *exclude, int flags) {
  tide_GlobSet *inc = include ? globs(include) : NULL;
  tide_GlobSet *exc = exclude ? globs(exclude) : NULL;
  char err[256] = "";
  int rc;
  s->out[0] = '\0';
  s->files = s->errors = 0;
  rc = tide_walk(root, inc, exc, flags, collect, s, err, sizeof err);
  if (rc < 0) fprintf(stderr, "  walk: %s\n", err);
  tide_glob_free(inc);
  tide_glob_free(exc);
  return rc;
}

static void expect(const Seen *s, const char *expected) {
  if (strcmp(s->out, expected) != 0)
    fprintf(stderr, "  walked:\n%s  expected:\n%s", s->out, expected);
  CHECK(strcmp(s->out, expected) == 0);
}

/* Runs fn as an unprivileged user when the tests run as root, so that
** file permissions apply to it. */
static void as_user(void (*fn)(void)) {
  pid_t pid;
  int status = 0;
  if (geteuid() != 0) {
    fn();
    return;
  }
  fflush(NULL);
  if ((pid = fork()) == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(100);
    check_failures_in_test = 0;
    fn();
    fflush(NULL);
    _exit(check_failures_in_test > 99 ? 99 : check_failures_in_test);
  }
  CHECK(pid > 0);
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK_EQ_INT(WEXITSTATUS(status), 0);
}

static void test_sorted_order(void) {
  Seen s;
  memset(&s, 0, sizeof s);
  make_root();
  put("b.md", "b");
  put("a/z.md", "z");
  put("a/b.md", "b");
  put("A.md", "A");
  put("c/d/e.txt", "e");
  put("a.md", "a");
  put("a-b.md", "ab");
  mkdir_rel("empty");
  CHECK_EQ_INT(walk(&s, NULL, NULL, 0), 0);
  /* Sorted within each directory, files and directories interleaved. */
  expect(&s, "A.md\na/b.md\na/z.md\na-b.md\na.md\nb.md\nc/d/e.txt\n");
  remove_root();
}

/* A fresh walker on an empty folder (fs.dir's recover after a kill
** before its first file): nothing, and no arithmetic on empty buffers
** (UBSan caught it). */
static void test_empty_root(void) {
  Seen s;
  memset(&s, 0, sizeof s);
  make_root();
  CHECK_EQ_INT(walk(&s, NULL, NULL, 0), 0);
  expect(&s, "");
  remove_root();
}

static void test_entry_fields(void) {
  Seen s;
  struct stat st;
  char path[512];
  memset(&s, 0, sizeof s);
  make_root();
  put("dir/f.txt", "hello world");
  full(path, sizeof path, "dir/f.txt");
  CHECK_EQ_INT(stat(path, &st), 0);
  CHECK_EQ_INT(walk(&s, NULL, NULL, 0), 0);
  CHECK_EQ_INT(s.files, 1);
  CHECK_EQ_INT(s.last.kind, TIDE_WALK_FILE);
  CHECK_EQ_INT(s.last.len, 9);
  CHECK_EQ_INT(s.last.size, 11);
  CHECK_EQ_INT(s.last.inode, st.st_ino);
  CHECK_EQ_INT(s.last.dev, st.st_dev);
  CHECK_EQ_INT(s.last.mtime_ns,
               (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
  remove_root();
}

static void test_globs(void) {
  const char *md[] = {"**/*.md", NULL};
  const char *not_a[] = {"a", NULL};
  const char *docs[] = {"docs/**/*.md", NULL};
  const char *reinclude[] = {"build", "!build/keep/**", NULL};
  const char *top[] = {"*", NULL};
  const char *drafts[] = {"**/*.md", "!drafts/**", NULL};
  Seen s;
  memset(&s, 0, sizeof s);
  make_root();
  put("a.md", "");
  put("a/x.md", "");
  put("b/y.md", "");
  put("b/y.txt", "");
  put("docs/d.md", "");
  put("docs/sub/e.md", "");
  put("docs/sub/e.txt", "");
  put("drafts/f.md", "");
  put("build/out.o", "");
  put("build/keep/k.md", "");
  CHECK_EQ_INT(walk(&s, md, not_a, 0), 0);
  expect(&s, "a.md\nb/y.md\nbuild/keep/k.md\ndocs/d.md\ndocs/sub/e.md\n"
             "drafts/f.md\n");
  CHECK_EQ_INT(walk(&s, docs, NULL, 0), 0);
  expect(&s, "docs/d.md\ndocs/sub/e.md\n");
  CHECK_EQ_INT(walk(&s, NULL, reinclude, 0), 0);
  expect(&s, "a/x.md\na.md\nb/y.md\nb/y.txt\nbuild/keep/k.md\ndocs/d.md\n"
             "docs/sub/e.md\ndocs/sub/e.txt\ndrafts/f.md\n");
  CHECK_EQ_INT(walk(&s, top, NULL, 0), 0);
  expect(&s, "a.md\n");
  CHECK_EQ_INT(walk(&s, drafts, NULL, 0), 0);
  expect(&s, "a/x.md\na.md\nb/y.md\nbuild/keep/k.md\ndocs/d.md\n"
             "docs/sub/e.md\n");
  remove_root();
}

static void test_selects_agrees_with_the_walk(void) {
  const char *inc_p[] = {"**/*.md", "!drafts/**", NULL};
  const char *exc_p[] = {"build", "!build/keep/**", NULL};
  tide_GlobSet *inc = globs(inc_p), *exc = globs(exc_p);
  static const struct {
    const char *path;
    int expected;
  } cases[] = {
    {"a.md", 1}, {"x/y/a.md", 1}, {"a.txt", 0}, {"drafts/a.md", 0},
    {"build/a.md", 0}, {"build/keep/a.md", 1}, {"build/keep/a.txt", 0},
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *p = cases[i].path;
    CHECK_EQ_INT(tide_walk_selects(inc, exc, p, strlen(p)),
                 cases[i].expected);
  }
  CHECK_EQ_INT(tide_walk_selects(NULL, NULL, "any", 3), 1);
  tide_glob_free(inc);
  tide_glob_free(exc);
}

/* Run with locked/ unreadable. */
static void unreadable_dir_is_reported(void) {
  char expected[128];
  Seen s;
  memset(&s, 0, sizeof s);
  CHECK_EQ_INT(walk(&s, NULL, NULL, 0), 0);
  snprintf(expected, sizeof expected, "a.md\nbuild/keep/k.md\n"
           "build/other/o.md\n!locked:%d\nz.md\n", EACCES);
  expect(&s, expected);
  CHECK_EQ_INT(s.errors, 1);
}

/* Run with locked/ and build/other/ unreadable. */
static void excluded_dirs_are_not_opened(void) {
  const char *exclude[] = {"locked", "build", "!build/keep/**", NULL};
  const char *top_md[] = {"*.md", NULL};
  Seen s;
  memset(&s, 0, sizeof s);
  CHECK_EQ_INT(walk(&s, NULL, exclude, 0), 0);
  expect(&s, "a.md\nbuild/keep/k.md\nz.md\n");
  CHECK_EQ_INT(s.errors, 0);
  /* Nothing under them could match an include pattern. */
  CHECK_EQ_INT(walk(&s, top_md, NULL, 0), 0);
  expect(&s, "a.md\nz.md\n");
  CHECK_EQ_INT(s.errors, 0);
}

static void test_excluded_dirs_are_not_opened(void) {
  char path[512];
  make_root();
  put("a.md", "");
  put("z.md", "");
  put("locked/x.md", "");
  put("build/other/o.md", "");
  put("build/keep/k.md", "");
  full(path, sizeof path, "locked");
  CHECK_EQ_INT(chmod(path, 0), 0);
  as_user(unreadable_dir_is_reported);
  full(path, sizeof path, "build/other");
  CHECK_EQ_INT(chmod(path, 0), 0);
  as_user(excluded_dirs_are_not_opened);
  remove_root();
}

static void test_symlinks(void) {
  Seen s;
  memset(&s, 0, sizeof s);
  make_root();
  put("a/f.md", "12345");
  put("b.md", "b");
  link_rel("b.md", "l.md");
  link_rel("a", "ld");
  link_rel("..", "a/up");  /* a cycle back to the root */
  link_rel("nowhere", "dangling");
  CHECK_EQ_INT(walk(&s, NULL, NULL, 0), 0);
  expect(&s, "a/f.md\nb.md\n");
  CHECK_EQ_INT(walk(&s, NULL, NULL, TIDE_WALK_FOLLOW_SYMLINKS), 0);
  expect(&s, "a/f.md\nb.md\nl.md\nld/f.md\n");
  CHECK_EQ_INT(s.errors, 0);
  CHECK_EQ_INT(s.last.size, 5); /* ld/f.md: the target's size */
  remove_root();
}

static void test_vanished_files_are_skipped(void) {
  Seen s;
  memset(&s, 0, sizeof s);
  make_root();
  put("a.md", "");
  put("b.md", "");
  put("c.md", "");
  s.vanish_on = "a.md";
  s.vanish = "b.md"; /* listed by readdir, gone before its fstatat */
  CHECK_EQ_INT(walk(&s, NULL, NULL, 0), 0);
  expect(&s, "a.md\nc.md\n");
  CHECK_EQ_INT(s.errors, 0);
  remove_root();
}

static void test_callback_stops_the_walk(void) {
  Seen s;
  memset(&s, 0, sizeof s);
  make_root();
  put("a/1", "");
  put("a/2", "");
  put("b", "");
  s.stop_at = 2;
  CHECK_EQ_INT(walk(&s, NULL, NULL, 0), 7);
  expect(&s, "a/1\na/2\n");
  remove_root();
}

static void test_root_errors(void) {
  char err[256], path[512];
  Seen s;
  memset(&s, 0, sizeof s);
  make_root();
  put("file", "x");
  full(path, sizeof path, "missing");
  CHECK_EQ_INT(tide_walk(path, NULL, NULL, 0, collect, &s, err, sizeof err),
               TIDE_ENOTFOUND);
  CHECK_STR_CONTAINS(err, "/missing: no such file or directory");
  full(path, sizeof path, "file");
  CHECK_EQ_INT(tide_walk(path, NULL, NULL, 0, collect, &s, err, sizeof err),
               TIDE_EIO);
  CHECK_STR_CONTAINS(err, "/file: not a directory");
  remove_root();
}

/* Long names and deep trees grow the path buffer; a walker is reusable. */
static void test_deep_tree_and_reuse(void) {
  char rel[2048], name[201], expected[2100];
  tide_Walker w;
  Seen s;
  int i, run;
  memset(&s, 0, sizeof s);
  make_root();
  memset(name, 'n', 200);
  name[200] = '\0';
  rel[0] = '\0';
  for (i = 0; i < 9; i++) {
    strcat(rel, name);
    strcat(rel, "/");
  }
  strcat(rel, "leaf.md");
  put(rel, "deep");
  snprintf(expected, sizeof expected, "%s\n", rel);
  tide_walker_init(&w, NULL, NULL);
  for (run = 0; run < 2; run++) {
    s.out[0] = '\0';
    CHECK_EQ_INT(tide_walker_run(&w, root, NULL, NULL, 0, collect, &s), 0);
    expect(&s, expected);
  }
  tide_walker_close(&w);
  tide_walker_close(NULL);
  remove_root();
}

static void test_file_operations(void) {
  char path[512], err[256], dir[512];
  tide_Buf b;
  struct stat st;
  Seen s;
  int created = -1;
  mode_t mask = umask(022);
  umask(mask);
  memset(&s, 0, sizeof s);
  make_root();
  full(path, sizeof path, "x/y/z/f.txt");
  CHECK_EQ_INT(tide_file_write_atomic(path, "one", 3, &created, err,
                                      sizeof err), 0);
  CHECK_EQ_INT(created, 3);
  CHECK_EQ_INT(tide_file_write_atomic(path, "second", 6, &created, err,
                                      sizeof err), 0);
  CHECK_EQ_INT(created, 0);
  CHECK_EQ_INT(stat(path, &st), 0);
  CHECK_EQ_INT(st.st_mode & 0777, 0666 & ~mask);
  tide_buf_init(&b, NULL, NULL);
  CHECK_EQ_INT(tide_file_read(path, &b, err, sizeof err), 0);
  CHECK(b.len == 6 && memcmp(b.data, "second", 6) == 0);
  tide_buf_close(&b);
  /* No temporary file is left behind. */
  CHECK_EQ_INT(walk(&s, NULL, NULL, 0), 0);
  expect(&s, "x/y/z/f.txt\n");
  full(dir, sizeof dir, "x/y");
  CHECK_EQ_INT(tide_dir_sync(dir, err, sizeof err), 0);
  CHECK_EQ_INT(tide_dir_remove_if_empty(dir, err, sizeof err), 0);
  CHECK_EQ_INT(tide_file_remove(dir, err, sizeof err), TIDE_EIO);
  CHECK_STR_CONTAINS(err, "/x/y: is a directory");
  CHECK_EQ_INT(tide_file_remove(path, err, sizeof err), 1);
  CHECK_EQ_INT(tide_file_remove(path, err, sizeof err), 0);
  full(dir, sizeof dir, "x/y/z");
  CHECK_EQ_INT(tide_dir_remove_if_empty(dir, err, sizeof err), 1);
  CHECK_EQ_INT(tide_dir_remove_if_empty(dir, err, sizeof err), 0);
  CHECK_EQ_INT(tide_dir_make(dir, &created, err, sizeof err), 0);
  CHECK_EQ_INT(created, 1);
  CHECK_EQ_INT(tide_dir_make(dir, &created, err, sizeof err), 0);
  CHECK_EQ_INT(created, 0);
  tide_buf_init(&b, NULL, NULL);
  CHECK_EQ_INT(tide_file_read(path, &b, err, sizeof err), TIDE_ENOTFOUND);
  CHECK_STR_CONTAINS(err, "/f.txt: no such file or directory");
  tide_buf_close(&b);
  /* A file where a parent directory should be. */
  put("plain", "p");
  full(path, sizeof path, "plain/sub/f");
  CHECK_EQ_INT(tide_file_write_atomic(path, "x", 1, &created, err,
                                      sizeof err), TIDE_EIO);
  CHECK_STR_CONTAINS(err, "not a directory");
  remove_root();
}

static void test_path_absolute(void) {
  char out[512], err[256], cwd[512], want[600];
  CHECK(getcwd(cwd, sizeof cwd) != NULL);
  CHECK_EQ_INT(tide_path_absolute("/a/./b//c/../d/", out, sizeof out, err,
                                  sizeof err), 0);
  CHECK(strcmp(out, "/a/b/d") == 0);
  CHECK_EQ_INT(tide_path_absolute("/../..", out, sizeof out, err,
                                  sizeof err), 0);
  CHECK(strcmp(out, "/") == 0);
  CHECK_EQ_INT(tide_path_absolute("docs/x", out, sizeof out, err,
                                  sizeof err), 0);
  snprintf(want, sizeof want, "%s/docs/x", strcmp(cwd, "/") ? cwd : "");
  CHECK(strcmp(out, want) == 0);
  CHECK_EQ_INT(tide_path_absolute(".", out, sizeof out, err, sizeof err), 0);
  CHECK(strcmp(out, cwd) == 0);
  CHECK_EQ_INT(tide_path_absolute("/abc", out, 4, err, sizeof err),
               TIDE_EINVAL);
}

int main(void) {
  static const CheckTest tests[] = {
    {"sorted order", test_sorted_order},
    {"empty root", test_empty_root},
    {"entry fields", test_entry_fields},
    {"globs", test_globs},
    {"selects agrees with the walk", test_selects_agrees_with_the_walk},
    {"excluded dirs are not opened", test_excluded_dirs_are_not_opened},
    {"symlinks", test_symlinks},
    {"vanished files are skipped", test_vanished_files_are_skipped},
    {"callback stops the walk", test_callback_stops_the_walk},
    {"root errors", test_root_errors},
    {"deep tree and reuse", test_deep_tree_and_reuse},
    {"file operations", test_file_operations},
    {"path absolute", test_path_absolute},
    {NULL, NULL},
  };
  return check_run("walk", tests);
}
