/* Watching folders for live mode (see watch.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "hashmap.h"
#include "watch.h"

#define WATCH_EVENTS                                                       \
  (IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB |       \
   IN_MOVED_FROM | IN_MOVED_TO | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

/* What a file's stat says of it, to tell a change from an event that
** changed nothing (a read that made and removed a side file). */
typedef struct {
  int exists;
  long long size, mtime_ns;
  unsigned long long ino;
} FileSig;

/* A folder root, or a file root: the file name (name_len > 0) in the
** folder path. wd is the watch descriptor of the folder root's own
** folder, or of the directory holding the file root's file; -1 when it
** was lost (deleted, moved away). sig: the file as it was when the file
** root was last added. */
typedef struct {
  size_t path_off, path_len; /* in strings: the absolute folder */
  int follow;
  size_t name_off, name_len; /* a file root's name, in strings */
  int wd;
  int lost; /* a folder root whose own folder was deleted or moved away */
  FileSig sig;
} Root;

/* A directory watched only for file roots has no folder root. */
#define NO_ROOT ((size_t)-1)

/* A watched directory, at index wd of dirs. */
typedef struct {
  int used;
  size_t root;             /* the folder root it is under, or NO_ROOT */
  size_t rel_off, rel_len; /* in strings: relative to the root ("" for it) */
} Dir;

/* A change waiting: its key in the pending set's arena. */
typedef struct {
  size_t key_off, key_len;
} Pending;

struct tide_Watch {
  tide_Alloc alloc;
  void *ud;
  uv_poll_t poll;
  int fd;
  int polling;
  tide_Buf roots;     /* Root */
  tide_Buf dirs;      /* Dir, indexed by watch descriptor */
  tide_Buf strings;   /* the roots' and directories' paths */
  tide_HashMap seen;  /* pending keys: the root's number (8 bytes), then
                      ** the path, or a NUL for the whole root */
  tide_Buf pending;   /* Pending, in the order they came */
  tide_Buf messages;  /* lines waiting */
  tide_Buf taken;     /* the lines the last tide_watch_messages gave */
  tide_Buf scratch;   /* paths being built */
  int draining;       /* reading the events waiting (drain) */
  char err[512];
};

static int watch_fail(tide_Watch *w, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->err, sizeof w->err, fmt, ap);
  va_end(ap);
  return code;
}

const char *tide_watch_errmsg(const tide_Watch *w) {
  return w ? w->err : "out of memory";
}

static const char *string_at(const tide_Watch *w, size_t off) {
  return (const char *)w->strings.data + off;
}

static Root *root_at(const tide_Watch *w, size_t i) {
  return (Root *)w->roots.data + i;
}

static size_t root_count(const tide_Watch *w) {
  return w->roots.len / sizeof(Root);
}

const char *tide_watch_root(const tide_Watch *w, size_t root) {
  return root < root_count(w) ? string_at(w, root_at(w, root)->path_off)
                              : NULL;
}

size_t tide_watch_count(const tide_Watch *w) {
  size_t wd, n = w->dirs.len / sizeof(Dir), count = 0;
  for (wd = 0; wd < n; wd++) {
    const Dir *d = (const Dir *)w->dirs.data + wd;
    if (d->used && d->root != NO_ROOT) count++;
  }
  return count;
}

size_t tide_watch_pending(const tide_Watch *w) {
  return w->pending.len / sizeof(Pending);
}

/* Appends s (len bytes) and a NUL to strings; *off receives where. */
static int keep_string(tide_Watch *w, const char *s, size_t len,
                       size_t *off) {
  int rc;
  *off = w->strings.len;
  if ((rc = tide_buf_append(&w->strings, s, len)) != 0) return rc;
  return tide_buf_push(&w->strings, '\0');
}

/* Adds a line to the messages. */
static void say(tide_Watch *w, const char *fmt, ...) {
  char line[PATH_MAX + 256];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
  if (w->messages.len > 0) (void)tide_buf_push(&w->messages, '\n');
  (void)tide_buf_append(&w->messages, line, (size_t)n);
}

/* Marks path (len bytes) of root changed; path NULL: the whole root. */
static int mark(tide_Watch *w, size_t root, const char *path, size_t len) {
  uint64_t r = root;
  size_t key_len = sizeof r + (path ? len : 1), key_off;
  Pending p;
  int rc;
  w->scratch.len = 0;
  if ((rc = tide_buf_append(&w->scratch, &r, sizeof r)) != 0 ||
      (rc = path ? tide_buf_append(&w->scratch, path, len)
                 : tide_buf_push(&w->scratch, '\0')) != 0)
    return rc;
  if (tide_hashmap_get(&w->seen, w->scratch.data, key_len)) return 0;
  if ((rc = tide_buf_reserve(&w->pending, sizeof p)) != 0 ||
      (rc = tide_hashmap_put(&w->seen, w->scratch.data, key_len, 1,
                             &key_off)) != 0)
    return rc;
  p.key_off = key_off;
  p.key_len = key_len;
  return tide_buf_append(&w->pending, &p, sizeof p); /* reserved above */
}

/* The root's folder + "/" + rel into scratch, NUL-terminated. */
static int absolute(tide_Watch *w, size_t root, const char *rel,
                    size_t len) {
  const Root *r = root_at(w, root);
  int rc;
  w->scratch.len = 0;
  if ((rc = tide_buf_append(&w->scratch, string_at(w, r->path_off),
                            r->path_len)) != 0 ||
      (len > 0 && ((rc = tide_buf_push(&w->scratch, '/')) != 0 ||
                   (rc = tide_buf_append(&w->scratch, rel, len)) != 0)) ||
      (rc = tide_buf_push(&w->scratch, '\0')) != 0)
    return rc;
  return 0;
}

/* Watches the directory rel (len bytes) of root: its watch descriptor
** maps to it. A failure is said and marks the root for a rescan. */
static int watch_dir(tide_Watch *w, size_t root, const char *rel,
                     size_t len) {
  Dir *d;
  size_t need, off;
  int wd, rc;
  if ((rc = absolute(w, root, rel, len)) != 0) return rc;
  /* The root itself is followed when it is a link, as a walk lists it. */
  wd = inotify_add_watch(w->fd, (const char *)w->scratch.data,
                         WATCH_EVENTS | (len == 0 || root_at(w, root)->follow
                                             ? 0
                                             : IN_DONT_FOLLOW));
  if (wd < 0) {
    int e = errno;
    char text[TIDE_ERRNO_TEXT_SIZE];
    if (e == ENOENT || e == ENOTDIR) return 0; /* gone meanwhile */
    say(w, "cannot watch %s: %s%s; it is rescanned now, and changes under "
        "it are found by the periodic rescan", (const char *)w->scratch.data,
        tide_error_errno_text(e, text, sizeof text),
        e == ENOSPC ? " (the limit of inotify watches, "
                      "fs.inotify.max_user_watches, is reached)" : "");
    return mark(w, root, NULL, 0);
  }
  need = ((size_t)wd + 1) * sizeof(Dir);
  if (w->dirs.len < need) {
    if ((rc = tide_buf_reserve(&w->dirs, need - w->dirs.len)) != 0)
      return rc;
    memset(w->dirs.data + w->dirs.len, 0, need - w->dirs.len);
    w->dirs.len = need;
  }
  if ((rc = keep_string(w, rel, len, &off)) != 0) return rc;
  d = (Dir *)w->dirs.data + wd;
  d->used = 1;
  d->root = root;
  d->rel_off = off;
  d->rel_len = len;
  if (len == 0) root_at(w, root)->wd = wd;
  return 0;
}

/* Watches rel and every directory under it. depth bounds the descent
** through symbolic links that loop back. */
static int watch_tree(tide_Watch *w, size_t root, const char *rel,
                      size_t len, int depth) {
  DIR *dir;
  struct dirent *de;
  tide_Buf sub;
  int rc;
  if (depth > 64) return 0;
  if ((rc = watch_dir(w, root, rel, len)) != 0) return rc;
  if ((rc = absolute(w, root, rel, len)) != 0) return rc;
  if ((dir = opendir((const char *)w->scratch.data)) == NULL) return 0;
  tide_buf_init(&sub, w->alloc, w->ud);
  while (rc == 0 && (de = readdir(dir)) != NULL) {
    const char *name = de->d_name;
    int is_dir = de->d_type == DT_DIR;
    size_t name_len = strlen(name);
    if (name[0] == '.' &&
        (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
      continue;
    if (de->d_type == DT_UNKNOWN ||
        (de->d_type == DT_LNK && root_at(w, root)->follow)) {
      struct stat st;
      int flags = root_at(w, root)->follow ? 0 : AT_SYMLINK_NOFOLLOW;
      is_dir = fstatat(dirfd(dir), name, &st, flags) == 0 &&
               S_ISDIR(st.st_mode);
    }
    if (!is_dir) continue;
    sub.len = 0;
    if ((len > 0 && ((rc = tide_buf_append(&sub, rel, len)) != 0 ||
                     (rc = tide_buf_push(&sub, '/')) != 0)) ||
        (rc = tide_buf_append(&sub, name, name_len)) != 0)
      break;
    /* rel may live in strings, which the descent grows: copied first. */
    rc = watch_tree(w, root, (const char *)sub.data, sub.len, depth + 1);
  }
  closedir(dir);
  tide_buf_close(&sub);
  return rc;
}

/* Whether a file root watches its file through directory wd. */
static int file_root_on(const tide_Watch *w, int wd) {
  size_t i;
  for (i = 0; i < root_count(w); i++)
    if (root_at(w, i)->name_len > 0 && root_at(w, i)->wd == wd) return 1;
  return 0;
}

/* Forgets the directory rel of root and every directory under it (the
** watch of one a file root uses stays, for it alone). */
static void forget_tree(tide_Watch *w, size_t root, const char *rel,
                        size_t len) {
  size_t wd, n = w->dirs.len / sizeof(Dir);
  for (wd = 0; wd < n; wd++) {
    Dir *d = (Dir *)w->dirs.data + wd;
    const char *p;
    if (!d->used || d->root != root || d->rel_len < len) continue;
    p = string_at(w, d->rel_off);
    if (memcmp(p, rel, len) != 0 ||
        (d->rel_len > len && (len > 0 && p[len] != '/')))
      continue;
    if (file_root_on(w, (int)wd)) {
      d->root = NO_ROOT;
      continue;
    }
    (void)inotify_rm_watch(w->fd, (int)wd);
    d->used = 0;
  }
}

/* An empty file is as good as none: a reader of an SQLite database in
** WAL mode leaves an empty log behind, which holds no change. */
static FileSig file_sig(const char *path) {
  FileSig s;
  struct stat st;
  memset(&s, 0, sizeof s);
  if (stat(path, &st) != 0 || st.st_size == 0) return s;
  s.exists = 1;
  s.size = (long long)st.st_size;
  s.mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL +
               st.st_mtim.tv_nsec;
  s.ino = (unsigned long long)st.st_ino;
  return s;
}

static int same_sig(const FileSig *a, const FileSig *b) {
  return a->exists == b->exists && a->size == b->size &&
         a->mtime_ns == b->mtime_ns && a->ino == b->ino;
}

/* The file of file root r, into out (PATH_MAX bytes). */
static void file_path(const tide_Watch *w, const Root *r, char *out) {
  snprintf(out, PATH_MAX, "%s/%s",
           r->path_len == 1 ? "" : string_at(w, r->path_off),
           string_at(w, r->name_off));
}

/* An event on name in directory wd marks the file roots of that name
** there whose file is not as it was when they were last added; the
** directory gone (lost: name NULL) marks every file root it held whole,
** its watch lost until the file root is added again. */
static int mark_files(tide_Watch *w, int wd, const char *name) {
  size_t i, len = name ? strlen(name) : 0;
  int rc = 0;
  for (i = 0; i < root_count(w) && rc == 0; i++) {
    Root *r = root_at(w, i);
    char path[PATH_MAX];
    FileSig now;
    if (r->name_len == 0 || r->wd != wd) continue;
    if (name == NULL) {
      r->wd = -1;
      rc = mark(w, i, NULL, 0);
      continue;
    }
    if (r->name_len != len || memcmp(string_at(w, r->name_off), name, len))
      continue;
    file_path(w, r, path);
    now = file_sig(path);
    if (!same_sig(&now, &r->sig)) rc = mark(w, i, name, len);
  }
  return rc;
}

/* A folder root whose own folder was deleted or moved away: its watches
** go, it is marked whole, and the place it was at is watched as a file
** root, so that a folder made or moved back there is an event (the
** engine then lists the walk, which adds the root again: watched again,
** tide_watch_add). */
static int lose_root(tide_Watch *w, size_t root) {
  size_t at;
  int rc;
  root_at(w, root)->wd = -1;
  root_at(w, root)->lost = 1;
  forget_tree(w, root, "", 0);
  if ((rc = mark(w, root, NULL, 0)) != 0) return rc;
  if ((rc = absolute(w, root, "", 0)) != 0) return rc;
  if (tide_watch_add_file(w, (const char *)w->scratch.data, &at) != 0)
    say(w, "%s; it is found again by the periodic rescan", w->err);
  return 0;
}

/* Whether directory wd is the own folder of a folder root (*root). */
static int root_folder(const tide_Watch *w, int wd, const Dir *d,
                       size_t *root) {
  if (d->root == NO_ROOT || d->rel_len != 0) return 0;
  if (root_at(w, d->root)->wd != wd) return 0;
  *root = d->root;
  return 1;
}

/* One event: its path marked, directories watched or forgotten. */
static int on_event(tide_Watch *w, const struct inotify_event *ev) {
  Dir *d;
  size_t name_len, n = w->dirs.len / sizeof(Dir), i;
  tide_Buf path;
  int rc = 0;
  if (ev->mask & IN_Q_OVERFLOW) {
    say(w, "events were lost (the kernel's inotify queue overflowed): "
        "every watched folder is rescanned");
    for (i = 0; i < root_count(w) && rc == 0; i++)
      rc = mark(w, i, NULL, 0);
    return rc;
  }
  if (ev->wd < 0 || (size_t)ev->wd >= n) return 0;
  d = (Dir *)w->dirs.data + ev->wd;
  if (!d->used) return 0;
  if (ev->mask & (IN_IGNORED | IN_MOVE_SELF)) {
    /* Deleted (the kernel dropped the watch), or moved away (the watch
    ** would follow it elsewhere): forgotten, with the file roots in it,
    ** and a folder root's own folder lost. */
    size_t root;
    int top = root_folder(w, ev->wd, d, &root);
    if (ev->mask & IN_MOVE_SELF) {
      /* A folder below a root: its parent's events say where it went. */
      if (!top && d->root != NO_ROOT) return 0;
      (void)inotify_rm_watch(w->fd, ev->wd);
    }
    d->used = 0;
    if ((rc = mark_files(w, ev->wd, NULL)) != 0) return rc;
    return top ? lose_root(w, root) : 0;
  }
  if (ev->len == 0) return 0; /* an event on the directory itself */
  if ((rc = mark_files(w, ev->wd, ev->name)) != 0) return rc;
  if (d->root == NO_ROOT) return 0; /* watched for file roots only */
  name_len = strlen(ev->name);
  tide_buf_init(&path, w->alloc, w->ud);
  if ((d->rel_len > 0 &&
       ((rc = tide_buf_append(&path, string_at(w, d->rel_off),
                              d->rel_len)) != 0 ||
        (rc = tide_buf_push(&path, '/')) != 0)) ||
      (rc = tide_buf_append(&path, ev->name, name_len)) != 0) {
    tide_buf_close(&path);
    return rc;
  }
  if (ev->mask & IN_ISDIR) {
    size_t root = d->root; /* d moves when dirs grows */
    if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
      forget_tree(w, root, (const char *)path.data, path.len);
    if (ev->mask & (IN_CREATE | IN_MOVED_TO))
      rc = watch_tree(w, root, (const char *)path.data, path.len, 0);
    if (rc == 0) rc = mark(w, root, (const char *)path.data, path.len);
  } else {
    rc = mark(w, d->root, (const char *)path.data, path.len);
  }
  tide_buf_close(&path);
  return rc;
}

/* Reads and takes every event waiting (the descriptor does not block).
** Not again from inside: an event's handling that adds a file root does
** not read the next events before the rest of those read already. */
static void drain(tide_Watch *w) {
  /* Aligned for struct inotify_event, as inotify(7) shows. */
  _Alignas(struct inotify_event) char buf[64 * 1024];
  if (w->draining) return;
  w->draining = 1;
  for (;;) {
    ssize_t got = read(w->fd, buf, sizeof buf), at = 0;
    if (got <= 0) break;
    while (at < got) {
      const struct inotify_event *ev = (const void *)(buf + at);
      if (on_event(w, ev) == TIDE_ENOMEM) {
        say(w, "out of memory while taking file events: every watched "
            "folder is rescanned");
        /* Lost events: rescans are marked once memory allows. */
      }
      at += (ssize_t)(sizeof *ev + ev->len);
    }
  }
  w->draining = 0;
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  if (status < 0) return;
  drain(handle->data);
}

int tide_watch_new(tide_Watch **out, uv_loop_t *loop, tide_Alloc alloc,
                   void *ud) {
  tide_Watch *w;
  int rc;
  if (alloc == NULL) alloc = tide_alloc_default;
  *out = w = alloc(ud, NULL, 0, sizeof *w);
  if (w == NULL) return TIDE_ENOMEM;
  memset(w, 0, sizeof *w);
  w->alloc = alloc;
  w->ud = ud;
  tide_buf_init(&w->roots, alloc, ud);
  tide_buf_init(&w->dirs, alloc, ud);
  tide_buf_init(&w->strings, alloc, ud);
  tide_hashmap_init(&w->seen, alloc, ud);
  tide_buf_init(&w->pending, alloc, ud);
  tide_buf_init(&w->messages, alloc, ud);
  tide_buf_init(&w->taken, alloc, ud);
  tide_buf_init(&w->scratch, alloc, ud);
  if ((w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
    char text[TIDE_ERRNO_TEXT_SIZE];
    int e = errno;
    return watch_fail(w, TIDE_EIO, "cannot watch files: %s%s",
                      tide_error_errno_text(e, text, sizeof text),
                      e == EMFILE ? " (the limit of inotify instances, "
                                    "fs.inotify.max_user_instances, is "
                                    "reached)" : "");
  }
  if ((rc = uv_poll_init(loop, &w->poll, w->fd)) != 0)
    return watch_fail(w, TIDE_EIO, "cannot watch files: %s",
                      uv_strerror(rc));
  w->polling = 1;
  w->poll.data = w;
  if ((rc = uv_poll_start(&w->poll, UV_READABLE, on_readable)) != 0)
    return watch_fail(w, TIDE_EIO, "cannot watch files: %s",
                      uv_strerror(rc));
  return 0;
}

static void release(tide_Watch *w) {
  if (w->fd >= 0) close(w->fd);
  tide_buf_close(&w->roots);
  tide_buf_close(&w->dirs);
  tide_buf_close(&w->strings);
  tide_hashmap_close(&w->seen);
  tide_buf_close(&w->pending);
  tide_buf_close(&w->messages);
  tide_buf_close(&w->taken);
  tide_buf_close(&w->scratch);
  w->alloc(w->ud, w, sizeof *w, 0);
}

static void on_closed(uv_handle_t *handle) { release(handle->data); }

void tide_watch_free(tide_Watch *w) {
  if (w == NULL) return;
  if (w->polling)
    uv_close((uv_handle_t *)&w->poll, on_closed);
  else
    release(w);
}

int tide_watch_add(tide_Watch *w, const char *dir, int follow_symlinks,
                   size_t *root) {
  size_t i, len = strlen(dir), at;
  struct stat st;
  Root r;
  int rc;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return watch_fail(w, TIDE_ENOTFOUND, "cannot watch %s: not a folder",
                      dir);
  for (i = 0; i < root_count(w); i++) {
    Root *have = root_at(w, i);
    if (have->name_len == 0 && have->path_len == len &&
        memcmp(string_at(w, have->path_off), dir, len) == 0) {
      have->follow = follow_symlinks;
      *root = i;
      if (!have->lost) return 0;
      /* Lost, and there again: watched again, and walked whole; the
      ** place it was watched at meanwhile takes it as it is now. */
      have->lost = 0;
      if ((rc = watch_tree(w, i, "", 0, 0)) != 0 ||
          (rc = mark(w, i, NULL, 0)) != 0)
        return watch_fail(w, rc, "out of memory");
      (void)tide_watch_add_file(w, dir, &at);
      return 0;
    }
  }
  memset(&r, 0, sizeof r);
  r.path_len = len;
  r.follow = follow_symlinks;
  r.wd = -1;
  if ((rc = keep_string(w, dir, len, &r.path_off)) != 0 ||
      (rc = tide_buf_append(&w->roots, &r, sizeof r)) != 0)
    return watch_fail(w, rc, "out of memory");
  *root = root_count(w) - 1;
  if ((rc = watch_tree(w, *root, "", 0, 0)) != 0)
    return watch_fail(w, rc, "out of memory");
  return 0;
}

/* Watches directory dir (a C string) for the file root root: its watch
** descriptor goes to the root, and to a Dir of no folder root unless one
** watches it already. */
static int watch_file_dir(tide_Watch *w, size_t root, const char *dir) {
  Dir *d;
  size_t need, off;
  int wd = inotify_add_watch(w->fd, dir, WATCH_EVENTS), rc, old;
  if (wd < 0) {
    char text[TIDE_ERRNO_TEXT_SIZE];
    int e = errno;
    return watch_fail(w, TIDE_EIO, "cannot watch %s: %s%s", dir,
                      tide_error_errno_text(e, text, sizeof text),
                      e == ENOSPC ? " (the limit of inotify watches, "
                                    "fs.inotify.max_user_watches, is "
                                    "reached)" : "");
  }
  need = ((size_t)wd + 1) * sizeof(Dir);
  if (w->dirs.len < need) {
    if ((rc = tide_buf_reserve(&w->dirs, need - w->dirs.len)) != 0)
      return watch_fail(w, rc, "out of memory");
    memset(w->dirs.data + w->dirs.len, 0, need - w->dirs.len);
    w->dirs.len = need;
  }
  d = (Dir *)w->dirs.data + wd;
  if (!d->used) {
    /* (Only then: a file root is added again at every listing.) */
    if ((rc = keep_string(w, "", 0, &off)) != 0)
      return watch_fail(w, rc, "out of memory");
    d->used = 1;
    d->root = NO_ROOT;
    d->rel_off = off;
    d->rel_len = 0;
  }
  old = root_at(w, root)->wd;
  root_at(w, root)->wd = wd;
  /* The directory it watched before, moved elsewhere, when nothing else
  ** watches it now. */
  if (old >= 0 && old != wd && !file_root_on(w, old)) {
    Dir *was = (Dir *)w->dirs.data + old;
    if (was->used && was->root == NO_ROOT) {
      (void)inotify_rm_watch(w->fd, old);
      was->used = 0;
    }
  }
  return 0;
}

int tide_watch_add_file(tide_Watch *w, const char *file, size_t *root) {
  const char *slash = strrchr(file, '/');
  size_t i, dir_len, name_len;
  struct stat st;
  char dir[PATH_MAX];
  Root r;
  int rc;
  if (slash == NULL || slash[1] == '\0')
    return watch_fail(w, TIDE_EINVAL, "cannot watch %s: not an absolute "
                      "path to a file", file);
  dir_len = slash == file ? 1 : (size_t)(slash - file);
  name_len = strlen(slash + 1);
  if (dir_len + 1 + name_len >= PATH_MAX)
    return watch_fail(w, TIDE_EINVAL, "cannot watch %s: name too long",
                      file);
  memcpy(dir, file, dir_len);
  dir[dir_len] = '\0';
  /* A change made before the stat below is compared with the file as it
  ** was last added, not with what the stat finds. */
  drain(w);
  for (i = 0; i < root_count(w); i++) {
    Root *have = root_at(w, i);
    if (have->name_len == name_len && have->path_len == dir_len &&
        memcmp(string_at(w, have->name_off), slash + 1, name_len) == 0 &&
        memcmp(string_at(w, have->path_off), dir, dir_len) == 0) {
      *root = i;
      have->sig = file_sig(file);
      break;
    }
  }
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return watch_fail(w, TIDE_ENOTFOUND, "cannot watch %s: its folder is "
                      "not there", file);
  /* Watched again every time: the directory may be another one now (made
  ** again), or the watch may have gone with it (moved away). */
  if (i < root_count(w)) return watch_file_dir(w, i, dir);
  memset(&r, 0, sizeof r);
  r.path_len = dir_len;
  r.name_len = name_len;
  r.wd = -1;
  r.sig = file_sig(file);
  if ((rc = keep_string(w, dir, dir_len, &r.path_off)) != 0 ||
      (rc = keep_string(w, slash + 1, name_len, &r.name_off)) != 0 ||
      (rc = tide_buf_append(&w->roots, &r, sizeof r)) != 0)
    return watch_fail(w, rc, "out of memory");
  *root = root_count(w) - 1;
  return watch_file_dir(w, *root, dir);
}

int tide_watch_take(tide_Watch *w, tide_WatchFn fn, void *arg) {
  size_t i, n = tide_watch_pending(w);
  int rc = 0;
  for (i = 0; i < n && rc == 0; i++) {
    const Pending *p = (const Pending *)w->pending.data + i;
    const char *key = tide_hashmap_key(&w->seen, p->key_off);
    tide_WatchChange c;
    uint64_t r;
    memcpy(&r, key, sizeof r);
    c.root = (size_t)r;
    c.len = p->key_len - sizeof r;
    c.path = key + sizeof r;
    if (c.len == 1 && c.path[0] == '\0') {
      c.path = NULL;
      c.len = 0;
    }
    rc = fn(arg, &c);
  }
  w->pending.len = 0;
  tide_hashmap_close(&w->seen);
  tide_hashmap_init(&w->seen, w->alloc, w->ud);
  return rc;
}

const char *tide_watch_messages(tide_Watch *w) {
  tide_Buf t = w->taken;
  w->taken = w->messages;
  w->messages = t;
  w->messages.len = 0;
  if (tide_buf_push(&w->taken, '\0') != 0) return "";
  w->taken.len--;
  return (const char *)w->taken.data;
}
