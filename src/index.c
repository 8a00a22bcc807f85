/* The component index: previous components and file states in memory. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <blake2.h>

#include "cbor.h"
#include "index.h"

typedef struct {
  int64_t size, mtime_ns, inode;
  uint8_t fp[TIDE_FP_SIZE];
  uint8_t has_fp;
  uint32_t path_off, path_len;
} FileState;

/* An open-addressing table of uint32 slots (0 = empty, else index + 1). */
typedef struct {
  uint32_t *slots;
  size_t cap; /* a power of two */
} Table;

typedef struct {
  char *name; /* owned, name_len bytes and a NUL */
  size_t name_len;
  tide_Buf states; /* FileState */
  tide_Buf paths;
  Table table;
} Source;

typedef struct {
  uint8_t fp[TIDE_FP_SIZE];
  int valid; /* -1 unknown, 0, 1 */
  size_t example;
} Deps;

struct tide_Index {
  tide_Alloc alloc;
  void *ud;
  tide_Buf entries; /* tide_IndexEntry, in path order */
  tide_Buf paths;   /* the path arena */
  Table by_path, by_id;
  tide_Buf deps;    /* Deps */
  tide_Buf sources; /* Source */
  tide_Buf scratch; /* the input encoding and the absolute path */
  char err[512];
};

static int fail(tide_Index *ix, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ix->err, sizeof ix->err, fmt, ap);
  va_end(ap);
  return code;
}

static uint64_t hash_bytes(const void *p, size_t n) {
  const uint8_t *s = p;
  uint64_t h = 1469598103934665603u; /* FNV-1a */
  size_t i;
  for (i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211u;
  return h ^ (h >> 29);
}

static int table_init(tide_Index *ix, Table *t, size_t n) {
  size_t cap = 16;
  while (cap < 2 * n + 2) cap *= 2;
  t->slots = ix->alloc(ix->ud, NULL, 0, cap * sizeof *t->slots);
  if (t->slots == NULL) return TIDE_ENOMEM;
  memset(t->slots, 0, cap * sizeof *t->slots);
  t->cap = cap;
  return 0;
}

static void table_free(tide_Index *ix, Table *t) {
  if (t->slots) ix->alloc(ix->ud, t->slots, t->cap * sizeof *t->slots, 0);
  t->slots = NULL;
  t->cap = 0;
}

int tide_index_new(tide_Index **out, tide_Alloc alloc, void *ud) {
  tide_Index *ix;
  if (alloc == NULL) alloc = tide_alloc_default;
  *out = ix = alloc(ud, NULL, 0, sizeof *ix);
  if (ix == NULL) return TIDE_ENOMEM;
  memset(ix, 0, sizeof *ix);
  ix->alloc = alloc;
  ix->ud = ud;
  tide_buf_init(&ix->entries, alloc, ud);
  tide_buf_init(&ix->paths, alloc, ud);
  tide_buf_init(&ix->deps, alloc, ud);
  tide_buf_init(&ix->sources, alloc, ud);
  tide_buf_init(&ix->scratch, alloc, ud);
  return 0;
}

static void free_sources(tide_Index *ix) {
  size_t i;
  for (i = 0; i < ix->sources.len / sizeof(Source); i++) {
    Source *src = (Source *)ix->sources.data + i;
    ix->alloc(ix->ud, src->name, src->name_len + 1, 0);
    tide_buf_close(&src->states);
    tide_buf_close(&src->paths);
    table_free(ix, &src->table);
  }
  ix->sources.len = 0;
}

/* Forgets what a previous load held (an engine loads once per cycle);
** the buffers keep their room. */
static void index_reset(tide_Index *ix) {
  free_sources(ix);
  ix->entries.len = 0;
  ix->paths.len = 0;
  ix->deps.len = 0;
  table_free(ix, &ix->by_path);
  table_free(ix, &ix->by_id);
}

void tide_index_free(tide_Index *ix) {
  if (ix == NULL) return;
  free_sources(ix);
  tide_buf_close(&ix->entries);
  tide_buf_close(&ix->paths);
  tide_buf_close(&ix->deps);
  tide_buf_close(&ix->sources);
  tide_buf_close(&ix->scratch);
  table_free(ix, &ix->by_path);
  table_free(ix, &ix->by_id);
  ix->alloc(ix->ud, ix, sizeof *ix, 0);
}

const char *tide_index_errmsg(const tide_Index *ix) {
  return ix ? ix->err : "out of memory";
}

size_t tide_index_count(const tide_Index *ix) {
  return ix->entries.len / sizeof(tide_IndexEntry);
}

tide_IndexEntry *tide_index_at(tide_Index *ix, size_t i) {
  return (tide_IndexEntry *)ix->entries.data + i;
}

const char *tide_index_path(const tide_Index *ix, const tide_IndexEntry *e) {
  return (const char *)ix->paths.data + e->path_off;
}

/* ---- Loading ---- */

static int add_entry(void *arg, const tide_StoreComponent *c) {
  tide_Index *ix = arg;
  tide_IndexEntry e;
  size_t len = c->path_len;
  int rc;
  memset(&e, 0, sizeof e);
  e.id = c->id;
  e.path_off = (uint32_t)ix->paths.len;
  e.path_len = (uint32_t)len;
  if (c->logic_fp) memcpy(e.logic, c->logic_fp, TIDE_FP_SIZE);
  if (c->input_fp) memcpy(e.input, c->input_fp, TIDE_FP_SIZE);
  if (c->deps_fp) memcpy(e.deps, c->deps_fp, TIDE_FP_SIZE);
  e.has_logic = c->logic_fp != NULL;
  e.has_input = c->input_fp != NULL;
  e.has_deps = c->deps_fp != NULL;
  e.status = (uint8_t)c->status;
  if ((rc = tide_buf_append(&ix->paths, c->path, len)) != 0 ||
      (rc = tide_buf_push(&ix->paths, '\0')) != 0)
    return rc;
  return tide_buf_append(&ix->entries, &e, sizeof e);
}

static size_t deps_find(tide_Index *ix, const uint8_t *fp) {
  size_t i, n = ix->deps.len / sizeof(Deps);
  for (i = 0; i < n; i++) {
    if (memcmp(((Deps *)ix->deps.data)[i].fp, fp, TIDE_FP_SIZE) == 0)
      return i;
  }
  return n;
}

int tide_index_load(tide_Index *ix, tide_Store *s, int64_t app_id) {
  size_t i, n;
  int rc;
  index_reset(ix);
  rc = tide_store_component_each(s, app_id, add_entry, ix);
  if (rc == TIDE_ENOMEM) return fail(ix, rc, "out of memory");
  if (rc) return fail(ix, rc, "%s", tide_store_errmsg(s));
  n = tide_index_count(ix);
  if ((rc = table_init(ix, &ix->by_path, n)) != 0 ||
      (rc = table_init(ix, &ix->by_id, n)) != 0)
    return fail(ix, rc, "out of memory");
  for (i = 0; i < n; i++) {
    tide_IndexEntry *e = tide_index_at(ix, i);
    size_t mask = ix->by_path.cap - 1;
    size_t h = hash_bytes(tide_index_path(ix, e), e->path_len) & mask;
    while (ix->by_path.slots[h]) h = (h + 1) & mask;
    ix->by_path.slots[h] = (uint32_t)i + 1;
    h = hash_bytes(&e->id, sizeof e->id) & mask;
    while (ix->by_id.slots[h]) h = (h + 1) & mask;
    ix->by_id.slots[h] = (uint32_t)i + 1;
    if (e->has_deps &&
        deps_find(ix, e->deps) == ix->deps.len / sizeof(Deps)) {
      Deps d;
      memcpy(d.fp, e->deps, TIDE_FP_SIZE);
      d.valid = -1;
      d.example = i;
      if ((rc = tide_buf_append(&ix->deps, &d, sizeof d)) != 0)
        return fail(ix, rc, "out of memory");
    }
  }
  return 0;
}

tide_IndexEntry *tide_index_find(tide_Index *ix, const char *path,
                                 size_t len) {
  size_t mask, h;
  uint32_t slot;
  if (ix->by_path.cap == 0) return NULL;
  mask = ix->by_path.cap - 1;
  h = hash_bytes(path, len) & mask;
  while ((slot = ix->by_path.slots[h]) != 0) {
    tide_IndexEntry *e = tide_index_at(ix, slot - 1);
    if (e->path_len == len && memcmp(tide_index_path(ix, e), path, len) == 0)
      return e;
    h = (h + 1) & mask;
  }
  return NULL;
}

tide_IndexEntry *tide_index_find_id(tide_Index *ix, int64_t id) {
  size_t mask, h;
  uint32_t slot;
  if (ix->by_id.cap == 0) return NULL;
  mask = ix->by_id.cap - 1;
  h = hash_bytes(&id, sizeof id) & mask;
  while ((slot = ix->by_id.slots[h]) != 0) {
    tide_IndexEntry *e = tide_index_at(ix, slot - 1);
    if (e->id == id) return e;
    h = (h + 1) & mask;
  }
  return NULL;
}

/* Compares p with path + "/" in bytewise order, as SQLite's BINARY
** collation sorts the paths, without building the prefix: negative when
** p sorts before it, 0 when p starts with it, positive when p sorts after
** every path that starts with it. */
static int below_cmp(const char *p, size_t plen, const char *path,
                     size_t len) {
  int c;
  if (plen <= len) {
    c = memcmp(p, path, plen);
    return c != 0 ? c : -1;
  }
  c = memcmp(p, path, len);
  if (c != 0) return c;
  return (int)(unsigned char)p[len] - '/';
}

/* Marks the entries below path (path + "/" and more) unchanged, unless
** already marked; returns how many it marked. Entries are in path order,
** so they are the run of entries from the first one that does not sort
** before path + "/". They need not follow the entry at path at once: a
** sibling such as path + "\0x" or path + ".x" sorts between them. */
size_t tide_index_below_first(tide_Index *ix, const char *path,
                              size_t len) {
  size_t lo = 0, hi = tide_index_count(ix);
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    tide_IndexEntry *e = tide_index_at(ix, mid);
    if (below_cmp(tide_index_path(ix, e), e->path_len, path, len) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

int tide_index_is_below(tide_Index *ix, const tide_IndexEntry *e,
                        const char *path, size_t len) {
  return below_cmp(tide_index_path(ix, e), e->path_len, path, len) == 0;
}

static size_t keep_below(tide_Index *ix, const char *path, size_t len) {
  size_t marked = 0, i;
  for (i = tide_index_below_first(ix, path, len);
       i < tide_index_count(ix); i++) {
    tide_IndexEntry *e = tide_index_at(ix, i);
    if (!tide_index_is_below(ix, e, path, len)) break;
    if (e->seen == TIDE_SEEN_NONE) {
      e->seen = TIDE_SEEN_UNCHANGED;
      marked++;
    }
  }
  return marked;
}

size_t tide_index_keep_subtree(tide_Index *ix, const char *path,
                               size_t len) {
  tide_IndexEntry *self = tide_index_find(ix, path, len);
  size_t marked = 0;
  if (self && self->seen == TIDE_SEEN_NONE) {
    self->seen = TIDE_SEEN_UNCHANGED;
    marked++;
  }
  return marked + keep_below(ix, path, len);
}

size_t tide_index_deps_count(const tide_Index *ix) {
  return ix->deps.len / sizeof(Deps);
}

const uint8_t *tide_index_deps_at(const tide_Index *ix, size_t i,
                                  const tide_IndexEntry **example) {
  const Deps *d = (const Deps *)ix->deps.data + i;
  *example = (const tide_IndexEntry *)ix->entries.data + d->example;
  return d->fp;
}

void tide_index_deps_set_valid(tide_Index *ix, size_t i, int valid) {
  ((Deps *)ix->deps.data)[i].valid = valid ? 1 : 0;
}

static int deps_valid(tide_Index *ix, const tide_IndexEntry *e) {
  size_t i;
  if (!e->has_deps) return 0;
  i = deps_find(ix, e->deps);
  return i < tide_index_deps_count(ix) &&
         ((Deps *)ix->deps.data)[i].valid == 1;
}

/* ---- File states ---- */

static Source *source_find(tide_Index *ix, const char *name, size_t len) {
  size_t i;
  for (i = 0; i < ix->sources.len / sizeof(Source); i++) {
    Source *src = (Source *)ix->sources.data + i;
    if (src->name_len == len && memcmp(src->name, name, len) == 0)
      return src;
  }
  return NULL;
}

static FileState *state_at(Source *src, uint32_t slot) {
  return (FileState *)src->states.data + (slot - 1);
}

static FileState *state_find(Source *src, const char *path, size_t len) {
  size_t mask, h;
  uint32_t slot;
  if (src->table.cap == 0) return NULL;
  mask = src->table.cap - 1;
  h = hash_bytes(path, len) & mask;
  while ((slot = src->table.slots[h]) != 0) {
    FileState *f = state_at(src, slot);
    if (f->path_len == len &&
        memcmp(src->paths.data + f->path_off, path, len) == 0)
      return f;
    h = (h + 1) & mask;
  }
  return NULL;
}

/* Rebuilds the source's table when it is more than half full. */
static int source_rehash(tide_Index *ix, Source *src) {
  size_t n = src->states.len / sizeof(FileState), i;
  int rc;
  table_free(ix, &src->table);
  if ((rc = table_init(ix, &src->table, n)) != 0) return rc;
  for (i = 0; i < n; i++) {
    FileState *f = (FileState *)src->states.data + i;
    size_t mask = src->table.cap - 1;
    size_t h = hash_bytes(src->paths.data + f->path_off, f->path_len) & mask;
    while (src->table.slots[h]) h = (h + 1) & mask;
    src->table.slots[h] = (uint32_t)i + 1;
  }
  return 0;
}

static int state_add(tide_Index *ix, Source *src, const char *path,
                     size_t len, FileState *f) {
  int rc;
  f->path_off = (uint32_t)src->paths.len;
  f->path_len = (uint32_t)len;
  if ((rc = tide_buf_append(&src->paths, path, len)) != 0 ||
      (rc = tide_buf_push(&src->paths, '\0')) != 0 ||
      (rc = tide_buf_append(&src->states, f, sizeof *f)) != 0)
    return rc;
  if (src->table.cap < 2 * (src->states.len / sizeof *f) + 2)
    return source_rehash(ix, src);
  {
    size_t mask = src->table.cap - 1, h = hash_bytes(path, len) & mask;
    while (src->table.slots[h]) h = (h + 1) & mask;
    src->table.slots[h] = (uint32_t)(src->states.len / sizeof *f);
  }
  return 0;
}

typedef struct {
  tide_Index *ix;
  Source *src;
} LoadSource;

static int add_state(void *arg, const tide_StoreSourceItem *item) {
  LoadSource *ls = arg;
  FileState f;
  memset(&f, 0, sizeof f);
  f.size = item->size;
  f.mtime_ns = item->mtime_ns;
  f.inode = item->inode;
  if (item->content_fp) {
    memcpy(f.fp, item->content_fp, TIDE_FP_SIZE);
    f.has_fp = 1;
  }
  return state_add(ls->ix, ls->src, item->key, item->key_len, &f);
}

int tide_index_load_source(tide_Index *ix, tide_Store *s, int64_t app_id,
                           const char *source, size_t len) {
  Source src;
  LoadSource ls;
  int rc;
  if (source_find(ix, source, len)) return 0;
  memset(&src, 0, sizeof src);
  src.name = ix->alloc(ix->ud, NULL, 0, len + 1);
  if (src.name == NULL) return fail(ix, TIDE_ENOMEM, "out of memory");
  memcpy(src.name, source, len);
  src.name[len] = '\0';
  src.name_len = len;
  tide_buf_init(&src.states, ix->alloc, ix->ud);
  tide_buf_init(&src.paths, ix->alloc, ix->ud);
  if ((rc = tide_buf_append(&ix->sources, &src, sizeof src)) != 0) {
    ix->alloc(ix->ud, src.name, len + 1, 0);
    return fail(ix, rc, "out of memory");
  }
  ls.ix = ix;
  ls.src = (Source *)(ix->sources.data + ix->sources.len) - 1;
  if ((rc = table_init(ix, &ls.src->table, 0)) != 0)
    return fail(ix, rc, "out of memory");
  rc = tide_store_source_each(s, app_id, source, len, add_state, &ls);
  if (rc == TIDE_ENOMEM) return fail(ix, rc, "out of memory");
  if (rc) return fail(ix, rc, "%s", tide_store_errmsg(s));
  return 0;
}

const uint8_t *tide_index_file_fp(tide_Index *ix, const char *source,
                                  size_t source_len, const char *path,
                                  size_t len, int64_t size, int64_t mtime_ns,
                                  int64_t inode) {
  Source *src = source_find(ix, source, source_len);
  FileState *f = src ? state_find(src, path, len) : NULL;
  if (f == NULL || !f->has_fp || f->size != size || f->mtime_ns != mtime_ns ||
      f->inode != inode)
    return NULL;
  return f->fp;
}

int tide_index_file_put(tide_Index *ix, tide_Store *s, int64_t app_id,
                        const char *source, size_t source_len,
                        const char *path, size_t len, int64_t size,
                        int64_t mtime_ns, int64_t inode, const uint8_t *fp) {
  Source *src = source_find(ix, source, source_len);
  FileState *f;
  tide_StoreSourceItem item;
  int rc;
  if (src == NULL)
    return fail(ix, TIDE_EINVAL, "source %.*s not loaded",
                (int)(source_len < 256 ? source_len : 256), source);
  if ((f = state_find(src, path, len)) == NULL) {
    FileState fresh;
    memset(&fresh, 0, sizeof fresh);
    if ((rc = state_add(ix, src, path, len, &fresh)) != 0)
      return fail(ix, rc, "out of memory");
    f = state_find(src, path, len);
  }
  f->size = size;
  f->mtime_ns = mtime_ns;
  f->inode = inode;
  memcpy(f->fp, fp, TIDE_FP_SIZE);
  f->has_fp = 1;
  item.app_id = app_id;
  item.source = src->name;
  item.source_len = src->name_len;
  item.key = path;
  item.key_len = len;
  item.size = size;
  item.mtime_ns = mtime_ns;
  item.inode = inode;
  item.content_fp = fp;
  if ((rc = tide_store_source_put(s, &item)) != 0)
    return fail(ix, rc, "%s", tide_store_errmsg(s));
  return 0;
}

/* Marks an entry unchanged with the entries below it. */
static void keep_entry(tide_Index *ix, tide_IndexEntry *e) {
  if (e->seen == TIDE_SEEN_NONE) e->seen = TIDE_SEEN_UNCHANGED;
  keep_below(ix, tide_index_path(ix, e), e->path_len);
}

/* ---- The fast path ---- */

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
  tide_Buf *out;
  tide_Buf path;  /* the component path being built */
  tide_Buf abs;   /* the absolute file path */
  size_t unchanged;
} WalkState;

/* Appends a record for the engine; fp and input may be NULL (a walk
** error, or a file that could not be read). */
static int push_changed(WalkState *ws, const tide_WalkEntry *e,
                        const uint8_t *fp, const uint8_t *input) {
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
  int rc, candidate;
  if (e->kind != TIDE_WALK_FILE) return push_changed(ws, e, NULL, NULL);
  ws->path.len = spec->base_len + 1;
  if ((rc = tide_buf_append(&ws->path, e->path, e->len)) != 0) return rc;
  entry = tide_index_find(ix, (const char *)ws->path.data, ws->path.len);
  candidate = entry != NULL && !entry->forced && entry->status == 0 &&
              entry->seen == TIDE_SEEN_NONE && entry->has_logic &&
              entry->has_input &&
              memcmp(entry->logic, spec->logic, TIDE_FP_SIZE) == 0 &&
              deps_valid(ix, entry);
  ws->abs.len = strlen(spec->dir) + 1;
  if ((rc = tide_buf_append(&ws->abs, e->path, e->len + 1)) != 0) return rc;
  fp = tide_index_file_fp(ix, spec->source, spec->source_len, e->path,
                          e->len, (int64_t)e->size, e->mtime_ns,
                          (int64_t)e->inode);
  if (fp == NULL) {
    /* New or touched: hash it and record its state. An unreadable file
    ** is the component's error, reported when it runs. */
    tide_Fp content;
    char err[256];
    if (tide_fp_file(&content, (const char *)ws->abs.data, err,
                     sizeof err) != 0)
      return push_changed(ws, e, NULL, NULL);
    memcpy(content_fp, content.bytes, TIDE_FP_SIZE);
    fp = content_fp;
    if ((rc = tide_index_file_put(ix, spec->store, spec->app_id,
                                  spec->source, spec->source_len, e->path,
                                  e->len, (int64_t)e->size, e->mtime_ns,
                                  (int64_t)e->inode, fp)) != 0)
      return rc;
  } else {
    memcpy(content_fp, fp, TIDE_FP_SIZE); /* the state table may grow */
    fp = content_fp;
  }
  if ((rc = tide_index_file_input(&ix->scratch, spec,
                                  (const char *)ws->abs.data,
                                  ws->abs.len - 1, fp, input)) != 0)
    return rc;
  if (!candidate || memcmp(input, entry->input, TIDE_FP_SIZE) != 0)
    return push_changed(ws, e, fp, input);
  ws->unchanged++;
  keep_entry(ix, entry);
  return 0;
}

int tide_index_walk(tide_Index *ix, tide_Walker *w,
                    const tide_IndexWalk *spec, tide_Buf *out,
                    size_t *unchanged) {
  WalkState ws;
  size_t dir_len = strlen(spec->dir);
  int rc;
  ws.ix = ix;
  ws.spec = spec;
  ws.out = out;
  ws.unchanged = 0;
  tide_buf_init(&ws.path, ix->alloc, ix->ud);
  tide_buf_init(&ws.abs, ix->alloc, ix->ud);
  if ((rc = tide_buf_append(&ws.path, spec->base, spec->base_len)) != 0 ||
      (rc = tide_buf_push(&ws.path, '/')) != 0 ||
      (rc = tide_buf_append(&ws.abs, spec->dir, dir_len)) != 0 ||
      (rc = tide_buf_push(&ws.abs, '/')) != 0) {
    rc = fail(ix, rc, "out of memory");
  } else if ((rc = tide_index_load_source(ix, spec->store, spec->app_id,
                                          spec->source,
                                          spec->source_len)) == 0) {
    rc = tide_walker_run(w, spec->dir, spec->include, spec->exclude,
                         spec->flags, walk_one, &ws);
    if (rc == TIDE_ENOMEM) rc = fail(ix, rc, "out of memory");
    else if (rc < 0) rc = fail(ix, rc, "%s", w->err);
  }
  tide_buf_close(&ws.path);
  tide_buf_close(&ws.abs);
  *unchanged = ws.unchanged;
  return rc;
}
