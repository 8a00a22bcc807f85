/* The walk fast path of mount_each over fs.walk (see index_walk.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <blake2.h>

#include "cbor.h"
#include "filestate.h"
#include "fingerprint.h"
#include "index.h"

int tide_index_file_input(tide_Buf *scratch, const tide_IndexWalk *spec,
                          const char *abs, size_t abs_len,
                          const uint8_t *content_fp, uint8_t *out) {
  int rc;
  scratch->len = 0;
  /* [file, extra...] where file is tag 27 [type name, [abs, content]],
  ** as the encoder writes a value whose __tide_key gives {abs, content}. */
  if ((rc = tide_cbor_put_head(scratch, 4, (uint64_t)spec->nargs)) != 0 ||
      (rc = tide_cbor_put_head(scratch, 6, TIDE_CBOR_TAG_TYPED)) != 0 ||
      (rc = tide_cbor_put_head(scratch, 4, 2)) != 0 ||
      (rc = tide_cbor_put_string(scratch, spec->file_type,
                                 spec->file_type_len)) != 0 ||
      (rc = tide_cbor_put_head(scratch, 4, 2)) != 0 ||
      (rc = tide_cbor_put_string(scratch, abs, abs_len)) != 0 ||
      (rc = tide_cbor_put_string(scratch, content_fp, TIDE_FP_SIZE)) != 0 ||
      (rc = tide_buf_append(scratch, spec->extra, spec->extra_len)) != 0)
    return rc;
  blake2b(out, scratch->data, NULL, TIDE_FP_SIZE, scratch->len, 0);
  return 0;
}

typedef struct {
  tide_Index *ix;
  const tide_IndexWalk *spec;
  tide_FileStates *files; /* the source's file states */
  tide_Buf *out;
  tide_Buf path;    /* the component path being built */
  tide_Buf abs;     /* the absolute file path */
  tide_Buf scratch; /* the input encoding */
  size_t unchanged;
  int failed;       /* the message on the index is this walk's */
} WalkState;

/* Appends a record for the engine; fp and input may be NULL (a walk
** error, a file that could not be read, or a deferred one). */
static int push_changed(WalkState *ws, const tide_WalkEntry *e,
                        const uint8_t *fp, const uint8_t *input,
                        int deferred) {
  tide_IndexChanged c;
  static const char pad[8] = {0};
  size_t total;
  int rc;
  memset(&c, 0, sizeof c);
  c.kind = e->kind;
  c.error = e->error;
  c.size = (int64_t)e->size;
  c.mtime_ns = e->mtime_ns;
  c.inode = (int64_t)e->inode;
  c.len = e->len;
  c.deferred = deferred;
  if (fp && input) {
    c.has_fp = 1;
    memcpy(c.fp, fp, TIDE_FP_SIZE);
    memcpy(c.input, input, TIDE_FP_SIZE);
  }
  total = sizeof c + e->len + 1;
  if ((rc = tide_buf_append(ws->out, &c, sizeof c)) != 0 ||
      (rc = tide_buf_append(ws->out, e->path, e->len + 1)) != 0)
    return rc;
  return tide_buf_append(ws->out, pad, (8 - total % 8) % 8);
}


static int walk_one(void *arg, const tide_WalkEntry *e) {
  WalkState *ws = arg;
  tide_Index *ix = ws->ix;
  const tide_IndexWalk *spec = ws->spec;
  const uint8_t *fp;
  uint8_t input[TIDE_FP_SIZE], content_fp[TIDE_FP_SIZE];
  tide_IndexEntry *entry;
  int rc;
  if (e->kind != TIDE_WALK_FILE) return push_changed(ws, e, NULL, NULL, 0);
  ws->path.len = spec->base_len + 1;
  if ((rc = tide_buf_append(&ws->path, e->path, e->len)) != 0) return rc;
  entry = tide_index_find(ix, (const char *)ws->path.data, ws->path.len);
  /* Step 2 of the algorithm: whether last run's entry may be unchanged. */
  if (!tide_index_may_carry(ix, entry, spec->logic)) entry = NULL;
  ws->abs.len = strlen(spec->dir) + 1;
  if ((rc = tide_buf_append(&ws->abs, e->path, e->len + 1)) != 0) return rc;
  fp = tide_filestates_match(ws->files, e->path, e->len, (int64_t)e->size,
                             e->mtime_ns, (int64_t)e->inode);
  if (fp == NULL && entry == NULL) {
    /* Step 3: its component runs whatever the content. */
    return push_changed(ws, e, NULL, NULL, 1);
  }
  if (fp == NULL && (int64_t)e->size >= TIDE_LARGE_FILE) {
    /* Touched and large: hashed by its component on the thread pool
    ** (where the unchanged check is the engine's), so that the walk
    ** never holds the loop for it. */
    return push_changed(ws, e, NULL, NULL, 0);
  }
  if (fp == NULL) {
    /* Touched: hash it and record its state. An unreadable file is the
    ** component's error, reported when it runs. */
    tide_Fp content;
    char err[256];
    if (tide_fp_file(&content, (const char *)ws->abs.data, err,
                     sizeof err) != 0)
      return push_changed(ws, e, NULL, NULL, 0);
    memcpy(content_fp, content.bytes, TIDE_FP_SIZE);
    rc = tide_filestates_put(ws->files, spec->store, spec->app_id, e->path,
                             e->len, (int64_t)e->size, e->mtime_ns,
                             (int64_t)e->inode, content_fp);
    if (rc == TIDE_ENOMEM) return rc;
    if (rc != 0) {
      ws->failed = 1;
      return tide_index_fail(ix, rc, "%s", tide_store_errmsg(spec->store));
    }
  } else {
    memcpy(content_fp, fp, TIDE_FP_SIZE); /* the cache may grow */
  }
  if ((rc = tide_index_file_input(&ws->scratch, spec,
                                  (const char *)ws->abs.data,
                                  ws->abs.len - 1, content_fp, input)) != 0)
    return rc;
  if (entry == NULL || memcmp(input, entry->input, TIDE_FP_SIZE) != 0)
    return push_changed(ws, e, content_fp, input, 0);
  ws->unchanged++;
  tide_index_keep(ix, entry);
  return 0;
}

/* ---- Listing first, while the index loads ---- */

/* A listed entry: this struct, then the path's bytes and a NUL, padded
** to 8. */
typedef struct {
  int kind, error;
  uint64_t size, inode;
  int64_t mtime_ns;
  size_t len;
} Listed;

static size_t listed_size(size_t len) {
  size_t total = sizeof(Listed) + len + 1;
  return total + (8 - total % 8) % 8;
}

static int list_one(void *arg, const tide_WalkEntry *e) {
  tide_Buf *listing = arg;
  Listed l;
  static const char pad[8] = {0};
  size_t total = sizeof l + e->len + 1;
  int rc;
  memset(&l, 0, sizeof l);
  l.kind = e->kind;
  l.error = e->error;
  l.size = e->size;
  l.inode = e->inode;
  l.mtime_ns = e->mtime_ns;
  l.len = e->len;
  if ((rc = tide_buf_append(listing, &l, sizeof l)) != 0 ||
      (rc = tide_buf_append(listing, e->path, e->len + 1)) != 0)
    return rc;
  return tide_buf_append(listing, pad, (8 - total % 8) % 8);
}

int tide_index_list(tide_Walker *w, const tide_IndexWalk *spec,
                    tide_IndexListing *out) {
  out->entries.len = 0;
  out->rc = tide_walker_run(w, spec->dir, spec->include, spec->exclude,
                            spec->flags, list_one, &out->entries);
  return out->rc;
}

/* Hands every listed entry to walk_one, as the walker would have. */
static int replay(WalkState *ws, const tide_IndexListing *listed) {
  size_t at = 0;
  while (at < listed->entries.len) {
    Listed l;
    tide_WalkEntry e;
    int rc;
    memcpy(&l, listed->entries.data + at, sizeof l);
    memset(&e, 0, sizeof e);
    e.kind = l.kind;
    e.error = l.error;
    e.size = l.size;
    e.inode = l.inode;
    e.mtime_ns = l.mtime_ns;
    e.len = l.len;
    e.path = (const char *)listed->entries.data + at + sizeof l;
    if ((rc = walk_one(ws, &e)) != 0) return rc;
    at += listed_size(l.len);
  }
  return listed->rc;
}

/* Sets a walk up: its paths' prefixes and the source's file states.
** Returns 0, or a code with the message on the index (ws is then still
** to be ended). */
static int walk_begin(WalkState *ws, tide_Index *ix, tide_Walker *w,
                      const tide_IndexWalk *spec, tide_Buf *out) {
  int rc;
  ws->ix = ix;
  ws->spec = spec;
  ws->out = out;
  ws->unchanged = 0;
  ws->failed = 0;
  tide_buf_init(&ws->path, w->alloc, w->ud);
  tide_buf_init(&ws->abs, w->alloc, w->ud);
  tide_buf_init(&ws->scratch, w->alloc, w->ud);
  if ((rc = tide_buf_append(&ws->path, spec->base, spec->base_len)) != 0 ||
      (rc = tide_buf_push(&ws->path, '/')) != 0 ||
      (rc = tide_buf_append(&ws->abs, spec->dir, strlen(spec->dir))) != 0 ||
      (rc = tide_buf_push(&ws->abs, '/')) != 0)
    return tide_index_fail(ix, rc, "out of memory");
  return tide_index_source(ix, spec->store, spec->app_id, spec->source,
                           spec->source_len, &ws->files);
}

/* Ends a walk: its count, its scratch freed. */
static void walk_end(WalkState *ws, size_t *unchanged) {
  tide_buf_close(&ws->path);
  tide_buf_close(&ws->abs);
  tide_buf_close(&ws->scratch);
  *unchanged = ws->unchanged;
}

int tide_index_walk(tide_Index *ix, tide_Walker *w,
                    const tide_IndexWalk *spec,
                    const tide_IndexListing *listed, tide_Buf *out,
                    size_t *unchanged) {
  WalkState ws;
  int rc = walk_begin(&ws, ix, w, spec, out);
  if (rc == 0) {
    rc = listed ? replay(&ws, listed)
                : tide_walker_run(w, spec->dir, spec->include, spec->exclude,
                                  spec->flags, walk_one, &ws);
    if (rc == TIDE_ENOMEM) rc = tide_index_fail(ix, rc, "out of memory");
    else if (rc < 0 && !ws.failed)
      rc = tide_index_fail(ix, rc, "%s", w->err);
  }
  walk_end(&ws, unchanged);
  return rc;
}

/* ---- Only what changed (live mode) ---- */

/* Marks the entries a changed path (path: base + "/" + the change)
** touches, its component and everything below it, as seen. */
static void touch(tide_Index *ix, const tide_Buf *path, int seen) {
  const char *p = (const char *)path->data;
  size_t i = tide_index_below_first(ix, p, path->len);
  tide_IndexEntry *e = tide_index_find(ix, p, path->len);
  if (e) e->seen = (uint8_t)seen;
  for (; i < tide_index_count(ix); i++) {
    e = tide_index_at(ix, i);
    if (!tide_index_is_below(ix, e, p, path->len)) break;
    e->seen = (uint8_t)seen;
  }
}

/* Keeps every component below the base that no changed path touches and
** that may be carried over, counting in *kept the file components it
** kept. One that may not (it failed last cycle, or is incomplete, or a
** file it read changed) runs again, as a whole walk would run it: its
** path, relative to the walk's folder, is added to rerun (each followed
** by a NUL) for the caller to walk as a changed one. The touched ones,
** and those, are marked (as ran) first, so that the pass over the others
** compares nothing, and unmarked after it. Returns 0 or TIDE_ENOMEM (the
** walk then fails, and so does the run). */
static int keep_untouched(tide_Index *ix, const tide_IndexWalk *spec,
                          const char *const *paths, const size_t *lens,
                          size_t n, tide_Buf *path, tide_Buf *rerun,
                          size_t *kept) {
  size_t i, touched, count = tide_index_count(ix), at;
  int rc = 0;
  *kept = 0;
  for (i = 0; i < n && rc == 0; i++) {
    path->len = spec->base_len + 1;
    if ((rc = tide_buf_append(path, paths[i], lens[i])) == 0)
      touch(ix, path, TIDE_SEEN_RAN);
  }
  touched = rc ? i - 1 : n;
  for (i = tide_index_below_first(ix, spec->base, spec->base_len);
       rc == 0 && i < count; i++) {
    tide_IndexEntry *e = tide_index_at(ix, i);
    const char *p;
    if (!tide_index_is_below(ix, e, spec->base, spec->base_len)) break;
    if (e->seen != TIDE_SEEN_NONE) continue;
    if (tide_index_may_carry(ix, e, spec->logic)) {
      tide_index_keep(ix, e);
      (*kept)++;
      continue;
    }
    p = tide_index_path(ix, e);
    at = rerun->len;
    path->len = 0;
    if ((rc = tide_buf_append(rerun, p + spec->base_len + 1,
                              e->path_len - spec->base_len - 1)) != 0 ||
        (rc = tide_buf_push(rerun, '\0')) != 0 ||
        (rc = tide_buf_append(path, p, e->path_len)) != 0) {
      rerun->len = at; /* each path in it whole, and marked */
      break;
    }
    touch(ix, path, TIDE_SEEN_RAN);
  }
  for (i = 0; i < touched; i++) {
    /* The buffer held these already: no allocation, no failure. */
    path->len = spec->base_len + 1;
    (void)tide_buf_append(path, paths[i], lens[i]);
    touch(ix, path, TIDE_SEEN_NONE);
  }
  for (at = 0; at < rerun->len; at += strlen((char *)rerun->data + at) + 1) {
    path->len = spec->base_len + 1;
    (void)tide_buf_append(path, rerun->data + at,
                          strlen((char *)rerun->data + at));
    touch(ix, path, TIDE_SEEN_NONE);
  }
  if (rc != 0) rerun->len = 0;
  path->len = spec->base_len + 1;
  return rc;
}

/* Hands one changed path to walk_one as the walk would have met it: a
** regular file the sets select, or a walk error; nothing when it is gone
** or not listed. Returns 1 when it is a folder now (the caller walks). */
static int walk_changed(WalkState *ws, int root_fd, const char *rel,
                        size_t len) {
  const tide_IndexWalk *spec = ws->spec;
  tide_WalkEntry e;
  struct stat st;
  int sel;
  memset(&e, 0, sizeof e);
  e.path = rel;
  e.len = len;
  if (fstatat(root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return 0;
    e.kind = TIDE_WALK_ERROR;
    e.error = errno;
    return walk_one(ws, &e);
  }
  if (S_ISDIR(st.st_mode)) return 1;
  if (!S_ISREG(st.st_mode)) return 0; /* a link, a FIFO: never listed */
  sel = tide_walk_selects(spec->include, spec->exclude, rel, len);
  if (sel <= 0) return sel;
  e.kind = TIDE_WALK_FILE;
  e.size = (uint64_t)st.st_size;
  e.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  e.inode = (uint64_t)st.st_ino;
  e.dev = (uint64_t)st.st_dev;
  return walk_one(ws, &e);
}

int tide_index_walk_changes(tide_Index *ix, tide_Walker *w,
                            const tide_IndexWalk *spec,
                            const char *const *paths, const size_t *lens,
                            size_t n, tide_Buf *out, size_t *unchanged) {
  WalkState ws;
  tide_Buf rerun; /* the components that may not be carried over */
  size_t i, at, len;
  int rc, root_fd;
  *unchanged = 0;
  /* A walk that follows links may reach a file by two paths. */
  if (spec->flags & TIDE_WALK_FOLLOW_SYMLINKS) return 1;
  if ((root_fd = open(spec->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    return 1;
  /* First, whether a changed path is a folder now: then the whole walk,
  ** before anything is marked. */
  for (i = 0; i < n; i++) {
    struct stat st;
    if (fstatat(root_fd, paths[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISDIR(st.st_mode)) {
      close(root_fd);
      return 1;
    }
  }
  tide_buf_init(&rerun, w->alloc, w->ud);
  if ((rc = walk_begin(&ws, ix, w, spec, out)) == 0) {
    rc = keep_untouched(ix, spec, paths, lens, n, &ws.path, &rerun,
                        &ws.unchanged);
    for (i = 0; i < n && rc == 0; i++)
      rc = walk_changed(&ws, root_fd, paths[i], lens[i]);
    for (at = 0; at < rerun.len && rc == 0; at += len + 1) {
      len = strlen((char *)rerun.data + at);
      rc = walk_changed(&ws, root_fd, (char *)rerun.data + at, len);
    }
    if (rc == 1) rc = 0; /* became a folder since: the next event says */
    if (rc == TIDE_ENOMEM) rc = tide_index_fail(ix, rc, "out of memory");
  }
  close(root_fd);
  tide_buf_close(&rerun);
  walk_end(&ws, unchanged);
  return rc;
}
