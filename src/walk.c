/* Walking a directory tree; whole-file reads, atomic writes, removals. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "mkdirs.h"
#include "walk.h"

/* One entry of a directory being walked. Names live in w->names, which
** grows while subdirectories are walked, so entries keep offsets; name is
** only set (and only valid) while the entries are sorted. */
typedef struct {
  const char *name;
  size_t off;
  size_t len;
  unsigned char type;
} Ent;

typedef struct {
  int64_t dev, ino;
} DirId;

/* One walk. A frame of glob states per depth sits in w->states: the
** exclude set's winning pattern so far (the last one matching the
** directory or one of its parents), then the include states and the
** exclude states (see glob.h). */
typedef struct {
  tide_Walker *w;
  const tide_GlobSet *inc, *exc;
  size_t ninc, nexc, frame_words;
  int follow;
  tide_WalkFn fn;
  void *ud;
} Walk;

/* Puts "PATH: reason" in err; the code for errno value e. */
static int io_fail(const char *path, int e, char *err, size_t errlen) {
  char text[TIDE_ERRNO_TEXT_SIZE];
  snprintf(err, errlen, "%s: %s", path,
           tide_error_errno_text(e, text, sizeof text));
  return e == ENOENT ? TIDE_ENOTFOUND : TIDE_EIO;
}

void tide_walker_init(tide_Walker *w, tide_Alloc alloc, void *ud) {
  if (alloc == NULL) alloc = tide_alloc_default;
  w->alloc = alloc;
  w->ud = ud;
  tide_buf_init(&w->path, alloc, ud);
  tide_buf_init(&w->names, alloc, ud);
  tide_buf_init(&w->ents, alloc, ud);
  tide_buf_init(&w->states, alloc, ud);
  tide_buf_init(&w->dirs, alloc, ud);
  w->err[0] = '\0';
}

void tide_walker_close(tide_Walker *w) {
  if (w == NULL) return;
  tide_buf_close(&w->path);
  tide_buf_close(&w->names);
  tide_buf_close(&w->ents);
  tide_buf_close(&w->states);
  tide_buf_close(&w->dirs);
}

static uint64_t *frame(Walk *k, size_t depth) {
  return (uint64_t *)k->w->states.data + depth * k->frame_words;
}

static int frame_win(const uint64_t *f) { return (int)(int64_t)f[0]; }

static uint64_t *inc_states(uint64_t *f) { return f + 1; }

static uint64_t *exc_states(Walk *k, uint64_t *f) { return f + 1 + k->ninc; }

/* Makes sure the frame at depth exists. */
static int reserve_frame(Walk *k, size_t depth) {
  tide_Buf *b = &k->w->states;
  size_t need = (depth + 1) * k->frame_words * sizeof(uint64_t);
  int rc;
  if (b->len >= need) return 0;
  if ((rc = tide_buf_reserve(b, need - b->len)) != 0) return rc;
  b->len = need;
  return 0;
}

static int selected_by(const tide_GlobSet *set, int win) {
  return win >= 0 && !tide_glob_negated(set, win);
}

/* Whether the file `name` in the directory at depth is selected. The
** include set matches the file's own path; the exclude set applies to the
** directories on the way too, whose winner the frame carries. */
static int file_selected(Walk *k, size_t depth, const char *name,
                         size_t len) {
  uint64_t *f = frame(k, depth);
  int win, m;
  if (k->inc &&
      !selected_by(k->inc, tide_glob_match_file(k->inc, inc_states(f), name,
                                                len, -1)))
    return 0;
  if (k->exc) {
    win = frame_win(f);
    m = tide_glob_match_file(k->exc, exc_states(k, f), name, len, win);
    if (selected_by(k->exc, m > win ? m : win)) return 0;
  }
  return 1;
}

/* Fills the frame at depth + 1 for the subdirectory `name` and says
** whether anything under it could be selected: some include pattern could
** match under it, and it is not excluded or a later `!` pattern could
** match under it. */
static int enter_dir(Walk *k, size_t depth, const char *name, size_t len) {
  uint64_t *f = frame(k, depth), *c = frame(k, depth + 1);
  int win, m;
  if (k->inc) {
    tide_glob_enter(k->inc, inc_states(f), name, len, inc_states(c));
    if (!tide_glob_could_match_under(k->inc, inc_states(c), -1, 0)) return 0;
  }
  if (k->exc) {
    win = frame_win(f);
    m = tide_glob_enter(k->exc, exc_states(k, f), name, len,
                        exc_states(k, c));
    if (m > win) win = m;
    c[0] = (uint64_t)(int64_t)win;
    if (selected_by(k->exc, win) &&
        !tide_glob_could_match_under(k->exc, exc_states(k, c), win, 1))
      return 0;
  }
  return 1;
}

static int emit_error(Walk *k, size_t pathlen, int error) {
  tide_WalkEntry e;
  char *path = (char *)k->w->path.data;
  memset(&e, 0, sizeof e);
  path[pathlen] = '\0';
  e.kind = TIDE_WALK_ERROR;
  e.path = path;
  e.len = pathlen;
  e.error = error;
  return k->fn(k->ud, &e);
}

static int emit_file(Walk *k, size_t pathlen, const struct stat *st) {
  tide_WalkEntry e;
  e.kind = TIDE_WALK_FILE;
  e.path = (const char *)k->w->path.data;
  e.len = pathlen;
  e.size = (uint64_t)st->st_size;
  e.mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
  e.inode = (uint64_t)st->st_ino;
  e.dev = (uint64_t)st->st_dev;
  e.error = 0;
  return k->fn(k->ud, &e);
}

static int compare_ents(const void *a, const void *b) {
  return strcmp(((const Ent *)a)->name, ((const Ent *)b)->name);
}

/* Reads the entries of d into w->names and w->ents (from their current
** lengths on), sorted by name. Returns the count, or a negative code. */
static long read_entries(Walk *k, DIR *d, size_t pathlen, int *stop) {
  tide_Walker *w = k->w;
  size_t ents_mark = w->ents.len, n, i;
  struct dirent *de;
  Ent *ents;
  int rc;
  for (;;) {
    Ent ent;
    errno = 0;
    if ((de = readdir(d)) == NULL) break;
    if (de->d_name[0] == '.' &&
        (de->d_name[1] == '\0' ||
         (de->d_name[1] == '.' && de->d_name[2] == '\0')))
      continue;
    ent.name = NULL;
    ent.off = w->names.len;
    ent.len = strlen(de->d_name);
    ent.type = de->d_type;
    if ((rc = tide_buf_append(&w->names, de->d_name, ent.len + 1)) != 0 ||
        (rc = tide_buf_append(&w->ents, &ent, sizeof ent)) != 0)
      return rc;
  }
  if (errno != 0) { /* report, then walk what was read */
    int rc2 = emit_error(k, pathlen, errno);
    if (rc2) {
      *stop = rc2;
      return 0;
    }
  }
  n = (w->ents.len - ents_mark) / sizeof(Ent);
  if (n == 0) return 0; /* an empty first directory: no buffer yet */
  ents = (Ent *)(w->ents.data + ents_mark);
  for (i = 0; i < n; i++)
    ents[i].name = (const char *)w->names.data + ents[i].off;
  qsort(ents, n, sizeof(Ent), compare_ents);
  return (long)n;
}

/* Whether (dev, ino) is one of the directories from the root to depth. */
static int on_path(Walk *k, size_t depth, const struct stat *st) {
  const DirId *ids = (const DirId *)k->w->dirs.data;
  size_t i;
  for (i = 0; i <= depth; i++) {
    if (ids[i].dev == (int64_t)st->st_dev && ids[i].ino == (int64_t)st->st_ino)
      return 1;
  }
  return 0;
}

static int push_dir_id(Walk *k, size_t depth, const struct stat *st) {
  tide_Buf *b = &k->w->dirs;
  DirId id;
  id.dev = (int64_t)st->st_dev;
  id.ino = (int64_t)st->st_ino;
  b->len = depth * sizeof id;
  return tide_buf_append(b, &id, sizeof id);
}

static int walk_dir(Walk *k, int fd, size_t depth, size_t pathlen);

/* Handles the subdirectory `name` of the directory open as dirfd; its path
** is already in w->path, pathlen bytes long. A directory already on the
** path from the root (a cycle through a followed link) is skipped. */
static int walk_subdir(Walk *k, int dirfd, size_t depth, const char *name,
                       size_t len, size_t pathlen) {
  int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC, fd, rc;
  struct stat st;
  if (!enter_dir(k, depth, name, len)) return 0;
  if (!k->follow) flags |= O_NOFOLLOW;
  if ((fd = openat(dirfd, name, flags)) < 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) return 0;
    return emit_error(k, pathlen, errno);
  }
  if (k->follow) {
    if (fstat(fd, &st) != 0) {
      rc = errno;
      close(fd);
      return emit_error(k, pathlen, rc);
    }
    if (on_path(k, depth, &st)) {
      close(fd);
      return 0;
    }
    if ((rc = push_dir_id(k, depth + 1, &st)) != 0) {
      close(fd);
      return rc;
    }
  }
  return walk_dir(k, fd, depth + 1, pathlen);
}

/* Walks the directory open as fd (taking it over) at depth, whose relative
** path is the first pathlen bytes of w->path. */
static int walk_dir(Walk *k, int fd, size_t depth, size_t pathlen) {
  tide_Walker *w = k->w;
  size_t names_mark = w->names.len, ents_mark = w->ents.len, i;
  long n;
  int rc = 0, stop = 0;
  DIR *d;
  if ((rc = reserve_frame(k, depth + 1)) != 0) {
    close(fd);
    return rc;
  }
  if ((d = fdopendir(fd)) == NULL) {
    rc = errno;
    close(fd);
    return emit_error(k, pathlen, rc);
  }
  n = read_entries(k, d, pathlen, &stop);
  if (n < 0) rc = (int)n;
  if (stop) rc = stop;
  for (i = 0; rc == 0 && i < (size_t)(n < 0 ? 0 : n); i++) {
    const Ent *ent = (const Ent *)(w->ents.data + ents_mark) + i;
    const char *name = (const char *)w->names.data + ent->off;
    size_t len = ent->len, sub = pathlen + (pathlen > 0) + len;
    unsigned char type = ent->type;
    struct stat st;
    int have_st = 0;
    char *path;
    w->path.len = pathlen;
    if ((rc = tide_buf_reserve(&w->path, len + 2)) != 0) break;
    path = (char *)w->path.data;
    if (pathlen > 0) path[pathlen] = '/';
    memcpy(path + sub - len, name, len + 1);
    if (type == DT_UNKNOWN || (type == DT_LNK && k->follow)) {
      if (fstatat(dirfd(d), name, &st,
                  k->follow ? 0 : AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) rc = emit_error(k, sub, errno);
        continue;
      }
      have_st = 1;
      type = S_ISREG(st.st_mode) ? DT_REG
             : S_ISDIR(st.st_mode) ? DT_DIR
                                   : DT_UNKNOWN;
    }
    if (type == DT_REG) {
      if (!file_selected(k, depth, name, len)) continue;
      if (!have_st &&
          fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) rc = emit_error(k, sub, errno);
        continue;
      }
      if (S_ISREG(st.st_mode)) rc = emit_file(k, sub, &st);
    } else if (type == DT_DIR) {
      rc = walk_subdir(k, dirfd(d), depth, name, len, sub);
    }
  }
  closedir(d);
  w->names.len = names_mark;
  w->ents.len = ents_mark;
  return rc;
}

int tide_walker_run(tide_Walker *w, const char *root,
                    const tide_GlobSet *include, const tide_GlobSet *exclude,
                    int flags, tide_WalkFn fn, void *ud) {
  Walk k;
  uint64_t *f;
  int fd, rc;
  w->err[0] = '\0';
  k.w = w;
  k.inc = include;
  k.exc = exclude;
  k.ninc = include ? tide_glob_count(include) : 0;
  k.nexc = exclude ? tide_glob_count(exclude) : 0;
  k.frame_words = 1 + k.ninc + k.nexc;
  k.follow = (flags & TIDE_WALK_FOLLOW_SYMLINKS) != 0;
  k.fn = fn;
  k.ud = ud;
  w->path.len = w->names.len = w->ents.len = w->states.len = 0;
  w->dirs.len = 0;
  if ((rc = reserve_frame(&k, 0)) != 0 ||
      (rc = tide_buf_reserve(&w->path, 1)) != 0) {
    snprintf(w->err, sizeof w->err, "%s", tide_strerror(rc));
    return rc;
  }
  w->path.data[0] = '\0';
  f = frame(&k, 0);
  f[0] = (uint64_t)(int64_t)-1;
  if (include) tide_glob_start(include, inc_states(f));
  if (exclude) tide_glob_start(exclude, exc_states(&k, f));
  if ((fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
    int e = errno;
    return io_fail(root, e, w->err, sizeof w->err);
  }
  if (k.follow) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
      int e = errno;
      close(fd);
      io_fail(root, e, w->err, sizeof w->err);
      return TIDE_EIO;
    }
    if ((rc = push_dir_id(&k, 0, &st)) != 0) {
      close(fd);
      snprintf(w->err, sizeof w->err, "%s", tide_strerror(rc));
      return rc;
    }
  }
  rc = walk_dir(&k, fd, 0, 0);
  if (rc == TIDE_ENOMEM && w->err[0] == '\0')
    snprintf(w->err, sizeof w->err, "%s", tide_strerror(rc));
  return rc;
}

int tide_walk_selects(const tide_GlobSet *include,
                      const tide_GlobSet *exclude, const char *path,
                      size_t len) {
  int win, rc;
  if (include) {
    if ((rc = tide_glob_decide(include, path, len, 0, &win)) != 0) return rc;
    if (!selected_by(include, win)) return 0;
  }
  if (exclude) {
    rc = tide_glob_decide(exclude, path, len, TIDE_GLOB_PARENTS, &win);
    if (rc != 0) return rc;
    if (selected_by(exclude, win)) return 0;
  }
  return 1;
}

int tide_walk(const char *root, const tide_GlobSet *include,
              const tide_GlobSet *exclude, int flags, tide_WalkFn fn,
              void *ud, char *err, size_t errlen) {
  tide_Walker w;
  int rc;
  tide_walker_init(&w, NULL, NULL);
  rc = tide_walker_run(&w, root, include, exclude, flags, fn, ud);
  if (rc < 0 && err && errlen) snprintf(err, errlen, "%s", w.err);
  tide_walker_close(&w);
  return rc;
}

/* File operations. */

int tide_file_read(const char *path, tide_Buf *out, char *err,
                   size_t errlen) {
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
  if (fd < 0) return io_fail(path, errno, err, errlen);
  /* Room for the whole file and one more byte, so that the read seeing
  ** its end needs no growth. */
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
      (rc = tide_buf_reserve(out, (size_t)st.st_size + 1)) != 0) {
    close(fd);
    snprintf(err, errlen, "%s: %s", path, tide_strerror(rc));
    return rc;
  }
  for (;;) {
    ssize_t got;
    if (out->len == out->cap &&
        (rc = tide_buf_reserve(out, 64 * 1024)) != 0) {
      close(fd);
      snprintf(err, errlen, "%s: %s", path, tide_strerror(rc));
      return rc;
    }
    got = read(fd, out->data + out->len, out->cap - out->len);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      int e = errno;
      close(fd);
      return io_fail(path, e, err, errlen);
    }
    if (got == 0) break;
    out->len += (size_t)got;
  }
  close(fd);
  return 0;
}

/* Copies path into buf (PATH_MAX bytes), or fails with ENAMETOOLONG. */
static int copy_path(char *buf, const char *path, char *err, size_t errlen) {
  size_t len = strlen(path);
  if (len >= PATH_MAX) {
    char text[TIDE_ERRNO_TEXT_SIZE];
    snprintf(err, errlen, "%.200s...: %s", path,
             tide_error_errno_text(ENAMETOOLONG, text, sizeof text));
    return TIDE_EIO;
  }
  memcpy(buf, path, len + 1);
  return 0;
}

/* Opens a new temporary file in dir (a buffer of PATH_MAX bytes holding
** the directory, "" for the working one); its name goes to tmp. */
static int open_temp(const char *dir, char *tmp, int *error) {
  struct timespec ts;
  int attempt, fd;
  clock_gettime(CLOCK_REALTIME, &ts);
  for (attempt = 0; attempt < 100; attempt++) {
    int n = snprintf(tmp, PATH_MAX, "%s%s.tide-tmp-%ld-%lx-%d", dir,
                     dir[0] ? "/" : "", (long)getpid(),
                     (unsigned long)ts.tv_nsec, attempt);
    if (n < 0 || n >= PATH_MAX) {
      *error = ENAMETOOLONG;
      return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) {
      *error = errno;
      return fd;
    }
  }
  *error = EEXIST;
  return -1;
}

static int write_all(int fd, const uint8_t *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int tide_file_write_atomic(const char *path, const void *data, size_t len,
                           int *created, char *err, size_t errlen) {
  char dir[PATH_MAX], tmp[PATH_MAX];
  char *slash;
  int fd, e = 0, rc;
  if (created) *created = 0;
  if ((rc = copy_path(dir, path, err, errlen)) != 0) return rc;
  slash = strrchr(dir, '/');
  if (slash == dir) slash[1] = '\0';
  else if (slash) *slash = '\0';
  else dir[0] = '\0';
  fd = open_temp(dir, tmp, &e);
  if (fd < 0 && e == ENOENT && dir[0]) {
    if ((rc = tide_dir_make(dir, created, err, errlen)) != 0) return rc;
    fd = open_temp(dir, tmp, &e);
  }
  if (fd < 0) return io_fail(path, e, err, errlen);
  e = write_all(fd, data, len);
  if (e == 0 && fsync(fd) != 0) e = errno;
  if (close(fd) != 0 && e == 0) e = errno;
  if (e == 0 && rename(tmp, path) != 0) e = errno;
  if (e) {
    unlink(tmp);
    return io_fail(path, e, err, errlen);
  }
  return 0;
}

int tide_dir_sync(const char *path, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), e = 0;
  if (fd < 0) return io_fail(path, errno, err, errlen);
  if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS) e = errno;
  close(fd);
  return e ? io_fail(path, e, err, errlen) : 0;
}

int tide_file_remove(const char *path, char *err, size_t errlen) {
  if (unlink(path) == 0) return 1;
  if (errno == ENOENT) return 0;
  return io_fail(path, errno, err, errlen);
}

int tide_dir_remove_if_empty(const char *path, char *err, size_t errlen) {
  if (rmdir(path) == 0) return 1;
  if (errno == ENOTEMPTY || errno == EEXIST || errno == ENOENT) return 0;
  return io_fail(path, errno, err, errlen);
}

int tide_path_absolute(const char *path, char *out, size_t outlen,
                       char *err, size_t errlen) {
  char text[TIDE_ERRNO_TEXT_SIZE];
  size_t len = 0, i = 0;
  if (outlen < 2) {
    io_fail(path, ENAMETOOLONG, err, errlen);
    return TIDE_EINVAL;
  }
  if (path[0] == '/') {
    out[len++] = '/';
  } else if (getcwd(out, outlen) == NULL) {
    if (errno == ERANGE) {
      io_fail(path, ENAMETOOLONG, err, errlen);
      return TIDE_EINVAL;
    }
    io_fail("getcwd", errno, err, errlen);
    return TIDE_EIO;
  } else {
    len = strlen(out);
  }
  for (;;) {
    size_t end;
    while (path[i] == '/') i++;
    if (path[i] == '\0') break;
    for (end = i; path[end] && path[end] != '/'; end++) continue;
    if (end - i == 1 && path[i] == '.') {
      /* Stays. */
    } else if (end - i == 2 && path[i] == '.' && path[i + 1] == '.') {
      while (len > 1 && out[len - 1] != '/') len--;
      if (len > 1) len--;
    } else {
      size_t need = (len > 1) + (end - i);
      if (len + need + 1 > outlen) {
        snprintf(err, errlen, "%.200s: %s", path,
                 tide_error_errno_text(ENAMETOOLONG, text, sizeof text));
        return TIDE_EINVAL;
      }
      if (len > 1) out[len++] = '/';
      memcpy(out + len, path + i, end - i);
      len += end - i;
    }
    i = end;
  }
  out[len] = '\0';
  return 0;
}
