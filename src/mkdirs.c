/* mkdir -p (see mkdirs.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "mkdirs.h"
#include "tide.h"

/* "PATH: reason"; the code for errno e. */
static int fail(const char *path, int e, char *err, size_t errlen) {
  char text[TIDE_ERRNO_TEXT_SIZE];
  snprintf(err, errlen, "%s: %s", path,
           tide_error_errno_text(e, text, sizeof text));
  return e == ENOENT ? TIDE_ENOTFOUND : TIDE_EIO;
}

/* Copies path into buf (PATH_MAX bytes) without its trailing slashes; 0,
** or TIDE_EIO with the message when it is too long. */
static int copy_path(char *buf, const char *path, char *err,
                     size_t errlen) {
  size_t len = strlen(path);
  if (len >= PATH_MAX) {
    char text[TIDE_ERRNO_TEXT_SIZE];
    snprintf(err, errlen, "%.200s...: %s", path,
             tide_error_errno_text(ENAMETOOLONG, text, sizeof text));
    return TIDE_EIO;
  }
  memcpy(buf, path, len + 1);
  while (len > 1 && buf[len - 1] == '/') buf[--len] = '\0';
  return 0;
}

/* mkdir, counting a creation; a directory already there is fine. Returns
** 0 or an errno value. */
static int make_one(const char *dir, int *created) {
  struct stat st;
  if (mkdir(dir, 0777) == 0) {
    ++*created;
    return 0;
  }
  if (errno != EEXIST) return errno;
  return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

/* mkdir -p on buf (modified in place, restored), counting creations. On
** failure returns the errno and leaves in failed (failed_len bytes) the
** directory that could not be made. */
static int make_dirs(char *buf, int *created, char *failed,
                     size_t failed_len) {
  char *slash;
  int e = make_one(buf, created);
  if (e == ENOENT || e == ENOTDIR) { /* the parent is missing or in the way */
    slash = strrchr(buf, '/');
    while (slash && slash > buf && slash[-1] == '/') slash--;
    if (slash != NULL && slash != buf) {
      *slash = '\0';
      e = make_dirs(buf, created, failed, failed_len);
      *slash = '/';
      if (e) return e;
      e = make_one(buf, created);
    }
  }
  if (e) snprintf(failed, failed_len, "%s", buf);
  return e;
}

int tide_dir_make(const char *path, int *created, char *err, size_t errlen) {
  char buf[PATH_MAX], failed[PATH_MAX];
  int count = 0, e;
  if (created) *created = 0;
  if ((e = copy_path(buf, path, err, errlen)) != 0) return e;
  e = make_dirs(buf, &count, failed, sizeof failed);
  if (created) *created = count;
  return e ? fail(path, e, err, errlen) : 0;
}

int tide_dir_make_parent(const char *path, int *created, char *err,
                         size_t errlen) {
  char buf[PATH_MAX], failed[PATH_MAX];
  char *slash;
  int count = 0, e;
  if (created) *created = 0;
  if ((e = copy_path(buf, path, err, errlen)) != 0) return e;
  slash = strrchr(buf, '/');
  while (slash && slash > buf && slash[-1] == '/') slash--;
  if (slash == NULL || slash == buf) return 0; /* in "." or "/" */
  *slash = '\0';
  e = make_dirs(buf, &count, failed, sizeof failed);
  if (created) *created = count;
  return e ? fail(failed, e, err, errlen) : 0;
}
