/* The file-state cache of one walked source (see filestate.h). */
#include <string.h>

#include "buf.h"
#include "filestate.h"
#include "hashmap.h"

typedef struct {
  int64_t size, mtime_ns, inode;
  size_t key;            /* the path's offset in paths */
  uint32_t key_len;
  uint8_t fp[TIDE_FP_SIZE];
  uint8_t has_fp;
} FileState;

struct tide_FileStates {
  tide_Alloc alloc;
  void *ud;
  char *name;            /* owned: name_len bytes and a NUL */
  size_t name_len;
  tide_Buf states;       /* FileState: the sorted run (those loaded, and
                         ** those added after them in path order), then
                         ** those added out of order in this run */
  size_t loaded;         /* how many states the sorted run holds */
  tide_Buf paths;        /* every state's path, each followed by a NUL */
  tide_HashMap added;    /* path -> index in states, for the others */
  size_t next;           /* the state after the last loaded one found */
};

int tide_filestates_new(tide_FileStates **out, const char *source,
                        size_t len, tide_Alloc alloc, void *ud) {
  tide_FileStates *fs;
  if (alloc == NULL) alloc = tide_alloc_default;
  *out = NULL;
  if (len == SIZE_MAX) return TIDE_ENOMEM;
  fs = alloc(ud, NULL, 0, sizeof *fs);
  if (fs == NULL) return TIDE_ENOMEM;
  fs->name = alloc(ud, NULL, 0, len + 1);
  if (fs->name == NULL) {
    alloc(ud, fs, sizeof *fs, 0);
    return TIDE_ENOMEM;
  }
  if (len) memcpy(fs->name, source, len);
  fs->name[len] = '\0';
  fs->name_len = len;
  fs->alloc = alloc;
  fs->ud = ud;
  fs->loaded = fs->next = 0;
  tide_buf_init(&fs->states, alloc, ud);
  tide_buf_init(&fs->paths, alloc, ud);
  tide_hashmap_init(&fs->added, alloc, ud);
  *out = fs;
  return 0;
}

void tide_filestates_free(tide_FileStates *fs) {
  if (fs == NULL) return;
  tide_buf_close(&fs->states);
  tide_buf_close(&fs->paths);
  tide_hashmap_close(&fs->added);
  fs->alloc(fs->ud, fs->name, fs->name_len + 1, 0);
  fs->alloc(fs->ud, fs, sizeof *fs, 0);
}

const char *tide_filestates_source(const tide_FileStates *fs, size_t *len) {
  *len = fs->name_len;
  return fs->name;
}

/* Bytewise, shorter first on a tie: SQLite's BINARY collation, the order
** the store hands the states in. */
static int compare(const tide_FileStates *fs, const FileState *f,
                   const char *path, size_t len) {
  int c = memcmp(fs->paths.data + f->key, path,
                 f->key_len < len ? f->key_len : len);
  if (c != 0) return c;
  return (f->key_len > len) - (f->key_len < len);
}

static FileState *find(tide_FileStates *fs, const char *path, size_t len) {
  FileState *states = (FileState *)fs->states.data;
  size_t lo = 0, hi = fs->loaded;
  const uint64_t *i;
  if (fs->next < hi && compare(fs, &states[fs->next], path, len) == 0)
    return &states[fs->next++];
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = compare(fs, &states[mid], path, len);
    if (c == 0) {
      fs->next = mid + 1;
      return &states[mid];
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  i = tide_hashmap_get(&fs->added, path, len);
  return i ? &states[*i] : NULL;
}

/* Appends a state and its path; *added (may be NULL) is valid until the
** next add. On failure nothing is added. */
static int append(tide_FileStates *fs, const char *path, size_t len,
                  const FileState *f, FileState **added) {
  size_t off = fs->paths.len, was = fs->states.len;
  FileState *at;
  int rc;
  if (len > UINT32_MAX) return TIDE_ENOMEM;
  if ((rc = tide_buf_append(&fs->states, f, sizeof *f)) != 0) return rc;
  if ((rc = tide_buf_append(&fs->paths, path, len)) != 0 ||
      (rc = tide_buf_push(&fs->paths, '\0')) != 0) {
    fs->states.len = was;
    fs->paths.len = off;
    return rc;
  }
  at = (FileState *)(fs->states.data + was);
  at->key = off;
  at->key_len = (uint32_t)len;
  if (added) *added = at;
  return 0;
}

/* Whether a path not in the cache would keep the sorted run in order if
** appended to it: every state is in the run, and the path sorts after
** the last. A walk's files come in path order, so a cold run's do. */
static int after_sorted_run(const tide_FileStates *fs, const char *path,
                            size_t len) {
  return fs->loaded == fs->states.len / sizeof(FileState) &&
         (fs->loaded == 0 ||
          compare(fs, (const FileState *)fs->states.data + fs->loaded - 1,
                  path, len) < 0);
}

/* Appends a state that the binary search does not reach (a file first
** seen in this run), with its path in the map. */
static int add_unsorted(tide_FileStates *fs, const char *path, size_t len,
                        const FileState *f, FileState **added) {
  uint64_t i = fs->states.len / sizeof *f;
  int rc;
  if ((rc = append(fs, path, len, f, added)) != 0) return rc;
  if ((rc = tide_hashmap_put(&fs->added, path, len, i, NULL)) != 0) {
    fs->states.len -= sizeof *f;
    fs->paths.len -= len + 1;
    return rc == TIDE_EINVAL ? TIDE_ENOMEM : rc;
  }
  return 0;
}

int tide_filestates_add(tide_FileStates *fs,
                        const tide_StoreSourceItem *item) {
  FileState f;
  int rc;
  memset(&f, 0, sizeof f);
  f.size = item->size;
  f.mtime_ns = item->mtime_ns;
  f.inode = item->inode;
  if (item->content_fp) {
    memcpy(f.fp, item->content_fp, TIDE_FP_SIZE);
    f.has_fp = 1;
  }
  /* In path order, as the store promises, states join the sorted run the
  ** binary search reads; should one not be (and every one after it), it
  ** is reached through the map instead. */
  if (after_sorted_run(fs, item->key, item->key_len)) {
    if ((rc = append(fs, item->key, item->key_len, &f, NULL)) != 0)
      return rc;
    fs->loaded++;
    return 0;
  }
  return add_unsorted(fs, item->key, item->key_len, &f, NULL);
}

static int add_item(void *arg, const tide_StoreSourceItem *item) {
  return tide_filestates_add(arg, item);
}

int tide_filestates_load(tide_FileStates *fs, tide_Store *s,
                         int64_t app_id) {
  int rc;
  if (fs->states.len > 0) return TIDE_EINVAL;
  rc = tide_store_source_each(s, app_id, fs->name, fs->name_len, add_item,
                              fs);
  if (rc != 0) {
    fs->states.len = fs->paths.len = 0;
    fs->loaded = 0;
  }
  return rc;
}

const uint8_t *tide_filestates_match(tide_FileStates *fs,
                                     const char *path, size_t len,
                                     int64_t size, int64_t mtime_ns,
                                     int64_t inode) {
  const FileState *f = find(fs, path, len);
  if (f == NULL || !f->has_fp || f->size != size || f->mtime_ns != mtime_ns ||
      f->inode != inode)
    return NULL;
  return f->fp;
}

int tide_filestates_put(tide_FileStates *fs, tide_Store *s, int64_t app_id,
                        const char *path, size_t len, int64_t size,
                        int64_t mtime_ns, int64_t inode, const uint8_t *fp) {
  FileState *f = NULL, fresh;
  tide_StoreSourceItem item;
  int rc;
  memset(&fresh, 0, sizeof fresh);
  /* A path after every state is new and joins the sorted run, without a
  ** search; any other is looked for first. */
  if (after_sorted_run(fs, path, len)) {
    if ((rc = append(fs, path, len, &fresh, &f)) != 0) return rc;
    fs->loaded++;
  } else if ((f = find(fs, path, len)) == NULL &&
             (rc = add_unsorted(fs, path, len, &fresh, &f)) != 0) {
    return rc;
  }
  f->size = size;
  f->mtime_ns = mtime_ns;
  f->inode = inode;
  memcpy(f->fp, fp, TIDE_FP_SIZE);
  f->has_fp = 1;
  item.app_id = app_id;
  item.source = fs->name;
  item.source_len = fs->name_len;
  item.key = path;
  item.key_len = len;
  item.size = size;
  item.mtime_ns = mtime_ns;
  item.inode = inode;
  item.content_fp = fp;
  return tide_store_source_put(s, &item);
}
