/* C tests of mkdir -p: what it makes and counts, what is in the way, and
** which directory a failure names. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "mkdirs.h"
#include "tide.h"

static char root[64];

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *ftw) {
  (void)st;
  (void)type;
  (void)ftw;
  chmod(path, 0700);
  return remove(path);
}

static const char *at(const char *rel) {
  static char path[2][512];
  static int which;
  which = !which;
  snprintf(path[which], sizeof path[which], "%s/%s", root, rel);
  return path[which];
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_make(void) {
  char err[512];
  int created = -1;
  CHECK_EQ_INT(tide_dir_make(at("a/b/c"), &created, err, sizeof err), 0);
  CHECK_EQ_INT(created, 3);
  CHECK(is_dir(at("a/b/c")));
  CHECK_EQ_INT(tide_dir_make(at("a/b/c"), &created, err, sizeof err), 0);
  CHECK_EQ_INT(created, 0);
  /* Repeated and trailing slashes. */
  CHECK_EQ_INT(tide_dir_make(at("a//b/d///"), &created, err, sizeof err), 0);
  CHECK_EQ_INT(created, 1);
  CHECK(is_dir(at("a/b/d")));
  CHECK_EQ_INT(tide_dir_make("/", &created, err, sizeof err), 0);
  CHECK_EQ_INT(tide_dir_make(".", NULL, err, sizeof err), 0);
}

static void test_make_parent(void) {
  char err[512];
  int created = -1;
  CHECK_EQ_INT(tide_dir_make_parent(at("p/q/state.db"), &created, err,
                                    sizeof err), 0);
  CHECK_EQ_INT(created, 2);
  CHECK(is_dir(at("p/q")));
  CHECK(!is_dir(at("p/q/state.db")));
  CHECK_EQ_INT(tide_dir_make_parent(at("p/q/state.db"), &created, err,
                                    sizeof err), 0);
  CHECK_EQ_INT(created, 0);
  /* Nothing to make in "." or "/". */
  CHECK_EQ_INT(tide_dir_make_parent("state.db", &created, err, sizeof err),
               0);
  CHECK_EQ_INT(created, 0);
  CHECK_EQ_INT(tide_dir_make_parent("/state.db", &created, err, sizeof err),
               0);
}

static void test_in_the_way(void) {
  char err[512], want[600];
  FILE *f = fopen(at("plain"), "w");
  CHECK(f != NULL);
  if (f) fclose(f);
  /* tide_dir_make names the path asked for, make_parent the directory
  ** that could not be made. */
  CHECK_EQ_INT(tide_dir_make(at("plain/sub"), NULL, err, sizeof err),
               TIDE_EIO);
  snprintf(want, sizeof want, "%s: not a directory", at("plain/sub"));
  CHECK(strcmp(err, want) == 0);
  CHECK_EQ_INT(tide_dir_make_parent(at("plain/sub/x/state.db"), NULL, err,
                                    sizeof err), TIDE_EIO);
  snprintf(want, sizeof want, "%s: not a directory", at("plain"));
  CHECK(strcmp(err, want) == 0);
  if (geteuid() != 0) { /* root writes anywhere */
    CHECK_EQ_INT(tide_dir_make(at("ro"), NULL, err, sizeof err), 0);
    chmod(at("ro"), 0500);
    CHECK_EQ_INT(tide_dir_make_parent(at("ro/x/y/state.db"), NULL, err,
                                      sizeof err), TIDE_EIO);
    snprintf(want, sizeof want, "%s: permission denied", at("ro/x"));
    CHECK(strcmp(err, want) == 0);
  }
}

static void test_too_long(void) {
  char *path = malloc(8000), err[512];
  memset(path, 'a', 7999);
  path[7999] = '\0';
  CHECK_EQ_INT(tide_dir_make(path, NULL, err, sizeof err), TIDE_EIO);
  CHECK_STR_CONTAINS(err, "...: file name too long");
  CHECK_EQ_INT(tide_dir_make_parent(path, NULL, err, sizeof err), TIDE_EIO);
  free(path);
}

int main(void) {
  static const CheckTest tests[] = {
    {"makes and counts", test_make},
    {"makes a file's parents", test_make_parent},
    {"names what is in the way", test_in_the_way},
    {"refuses a path too long", test_too_long},
    {NULL, NULL},
  };
  int rc;
  snprintf(root, sizeof root, "/tmp/tide-mkdirs-XXXXXX");
  if (mkdtemp(root) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  rc = check_run("mkdirs", tests);
  nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  return rc;
}
