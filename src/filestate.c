/* The file-state cache of one walked source (see filestate.h). */
#include <string.h>

#include "buf.h"
#include "filestate.h"
#include "hashmap.h"

typedef struct {
  int64_t size, mtime_ns, inode;
  size_t key;            /* the path's offset in by_path's keys */
  uint32_t key_len;
  uint8_t fp[TIDE_FP_SIZE];
  uint8_t has_fp;
} FileState;

struct tide_FileStates {
  tide_Alloc alloc;
  void *ud;
  char *name;            /* owned: name_len bytes and a NUL */
  size_t name_len;
  tide_Buf states;       /* FileState, loaded in path order */
  tide_HashMap by_path;  /* relative path -> index in states */
  size_t next;           /* the state after the last one found */
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
  tide_buf_init(&fs->states, alloc, ud);
  tide_hashmap_init(&fs->by_path, alloc, ud);
  *out = fs;
  return 0;
}

void tide_filestates_free(tide_FileStates *fs) {
  if (fs == NULL) return;
  tide_buf_close(&fs->states);
  tide_hashmap_close(&fs->by_path);
  fs->alloc(fs->ud, fs->name, fs->name_len + 1, 0);
  fs->alloc(fs->ud, fs, sizeof *fs, 0);
}

const char *tide_filestates_source(const tide_FileStates *fs, size_t *len) {
  *len = fs->name_len;
  return fs->name;
}

/* A walk asks for the files in about the order the store loaded them
** (path order): the state after the last one found is tried first, which
** reads memory in order where a hash lookup would jump. */
static FileState *find(tide_FileStates *fs, const char *path, size_t len) {
  FileState *states = (FileState *)fs->states.data;
  size_t n = fs->states.len / sizeof *states;
  const uint64_t *i;
  if (fs->next < n) {
    FileState *f = &states[fs->next];
    if (f->key_len == len &&
        memcmp(tide_hashmap_key(&fs->by_path, f->key), path, len) == 0) {
      fs->next++;
      return f;
    }
  }
  i = tide_hashmap_get(&fs->by_path, path, len);
  if (i == NULL) return NULL;
  fs->next = (size_t)*i + 1;
  return &states[*i];
}

/* Adds a state for a path the cache does not have; *added (may be NULL)
** is valid until the next add. On failure nothing is added. */
static int add(tide_FileStates *fs, const char *path, size_t len,
               const FileState *f, FileState **added) {
  uint64_t i = fs->states.len / sizeof *f;
  size_t off;
  FileState *at;
  int rc;
  if (len > UINT32_MAX) return TIDE_ENOMEM;
  if ((rc = tide_buf_append(&fs->states, f, sizeof *f)) != 0) return rc;
  if ((rc = tide_hashmap_put(&fs->by_path, path, len, i, &off)) != 0) {
    fs->states.len -= sizeof *f;
    return rc == TIDE_EINVAL ? TIDE_ENOMEM : rc;
  }
  at = (FileState *)fs->states.data + i;
  at->key = off;
  at->key_len = (uint32_t)len;
  if (added) *added = at;
  return 0;
}

static int add_item(void *arg, const tide_StoreSourceItem *item) {
  tide_FileStates *fs = arg;
  FileState f;
  memset(&f, 0, sizeof f);
  f.size = item->size;
  f.mtime_ns = item->mtime_ns;
  f.inode = item->inode;
  if (item->content_fp) {
    memcpy(f.fp, item->content_fp, TIDE_FP_SIZE);
    f.has_fp = 1;
  }
  return add(fs, item->key, item->key_len, &f, NULL);
}

int tide_filestates_load(tide_FileStates *fs, tide_Store *s,
                         int64_t app_id) {
  return tide_store_source_each(s, app_id, fs->name, fs->name_len, add_item,
                                fs);
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
  FileState *f = find(fs, path, len);
  tide_StoreSourceItem item;
  int rc;
  if (f == NULL) {
    FileState fresh;
    memset(&fresh, 0, sizeof fresh);
    if ((rc = add(fs, path, len, &fresh, &f)) != 0) return rc;
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
