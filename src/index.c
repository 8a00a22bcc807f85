/* The component index (see index.h). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "hashmap.h"
#include "index.h"

typedef struct {
  uint8_t fp[TIDE_FP_SIZE];
  int valid; /* -1 unknown, 0, 1 */
  size_t example;
} Deps;

/* A set of equal fingerprints (logic, deps) shared by many entries: each
** distinct one is held once, and the last one seen is looked up first
** (entries of one function come in runs). */
typedef struct {
  tide_HashMap by_fp; /* fingerprint -> 1 + its number */
  uint8_t last[TIDE_FP_SIZE];
  uint32_t last_set;  /* 1 + the number of last, or 0 */
} FpSets;

/* A slot of the table of paths: 8 bytes, so that a million paths take a
** table of 16 MB; the path's bytes are the entry's. */
typedef struct {
  uint32_t entry; /* 1 + the entry's index; 0 for an empty slot */
  uint32_t hash;  /* the high 32 bits of the path's hash */
} PathSlot;

struct tide_Index {
  tide_Alloc alloc;
  void *ud;
  tide_Buf entries;     /* tide_IndexEntry, in path order */
  tide_Buf paths;       /* the paths' bytes, each followed by a NUL */
  PathSlot *slots;      /* path -> entry: open addressing, linear probing */
  size_t cap;           /* slots: 0 or a power of two, at most 3/4 used */
  tide_HashMap by_id;   /* row id -> entry index, made on first use */
  FpSets logics;        /* distinct logic fingerprints */
  tide_Buf logic_fps;   /* their bytes, TIDE_FP_SIZE each, in order */
  FpSets deps_sets;     /* distinct deps fingerprints */
  tide_Buf deps;        /* Deps */
  tide_Buf sources;     /* tide_FileStates *, owned */
  size_t next;          /* the entry after the last one found */
  struct {              /* a load on a thread of its own */
    int running;        /* started, not joined yet */
    uv_thread_t thread;
    int64_t app_id;
    tide_Store *store;  /* the caller's: opened again by the thread, and
                        ** loaded through on its failure */
    int rc;             /* the thread's result */
    atomic_int done;    /* the thread has ended (join is then at once) */
  } async;
  int scoped;           /* tide_index_scope: loaded under paths only */
  struct {              /* kept up to date across cycles */
    int on;             /* loaded whole from store for app_id, and the
                        ** store notes its component writes since */
    tide_Store *store;
    int64_t app_id;
  } warm;
  char err[512];
};

int tide_index_fail(tide_Index *ix, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ix->err, sizeof ix->err, fmt, ap);
  va_end(ap);
  return code;
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
  tide_hashmap_init(&ix->by_id, alloc, ud);
  tide_hashmap_init(&ix->logics.by_fp, alloc, ud);
  tide_buf_init(&ix->logic_fps, alloc, ud);
  tide_hashmap_init(&ix->deps_sets.by_fp, alloc, ud);
  tide_buf_init(&ix->deps, alloc, ud);
  tide_buf_init(&ix->sources, alloc, ud);
  return 0;
}

static void free_sources(tide_Index *ix) {
  size_t i;
  for (i = 0; i < ix->sources.len / sizeof(tide_FileStates *); i++)
    tide_filestates_free(((tide_FileStates **)ix->sources.data)[i]);
  ix->sources.len = 0;
}

/* Forgets what a previous load held (an engine loads once per cycle). */
static void free_slots(tide_Index *ix) {
  if (ix->slots) ix->alloc(ix->ud, ix->slots, ix->cap * sizeof *ix->slots, 0);
  ix->slots = NULL;
  ix->cap = 0;
}

static void index_reset(tide_Index *ix) {
  ix->scoped = 0;
  free_sources(ix);
  free_slots(ix);
  ix->entries.len = 0;
  ix->paths.len = 0;
  ix->deps.len = 0;
  ix->next = 0;
  ix->logic_fps.len = 0;
  ix->logics.last_set = ix->deps_sets.last_set = 0;
  tide_hashmap_close(&ix->by_id);
  tide_hashmap_close(&ix->logics.by_fp);
  tide_hashmap_close(&ix->deps_sets.by_fp);
  tide_hashmap_init(&ix->by_id, ix->alloc, ix->ud);
  tide_hashmap_init(&ix->logics.by_fp, ix->alloc, ix->ud);
  tide_hashmap_init(&ix->deps_sets.by_fp, ix->alloc, ix->ud);
}

static void join_load(tide_Index *ix);

void tide_index_free(tide_Index *ix) {
  if (ix == NULL) return;
  join_load(ix);
  free_sources(ix);
  free_slots(ix);
  tide_buf_close(&ix->entries);
  tide_buf_close(&ix->paths);
  tide_hashmap_close(&ix->by_id);
  tide_hashmap_close(&ix->logics.by_fp);
  tide_buf_close(&ix->logic_fps);
  tide_hashmap_close(&ix->deps_sets.by_fp);
  tide_buf_close(&ix->deps);
  tide_buf_close(&ix->sources);
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

/* The number (1 + index) of fp in sets; *added says whether it is new,
** numbered count + 1. */
static int fp_set(FpSets *sets, const uint8_t *fp, uint32_t count,
                  uint32_t *set, int *added) {
  uint64_t *have;
  int rc;
  *added = 0;
  if (sets->last_set && memcmp(sets->last, fp, TIDE_FP_SIZE) == 0) {
    *set = sets->last_set;
    return 0;
  }
  have = tide_hashmap_get(&sets->by_fp, fp, TIDE_FP_SIZE);
  if (have) {
    *set = (uint32_t)*have;
  } else {
    if (count >= UINT32_MAX - 1) return TIDE_ENOMEM;
    *set = count + 1;
    if ((rc = tide_hashmap_put(&sets->by_fp, fp, TIDE_FP_SIZE, *set,
                               NULL)) != 0)
      return rc;
    *added = 1;
  }
  memcpy(sets->last, fp, TIDE_FP_SIZE);
  sets->last_set = *set;
  return 0;
}

/* ---- The table of paths ---- */

static uint32_t path_hash(const char *path, size_t len) {
  return (uint32_t)(tide_hashmap_hash(path, len) >> 32);
}

/* The slot of the path (len bytes, hash h), or the empty one where it
** would go. */
static PathSlot *slot_of(const tide_Index *ix, const char *path, size_t len,
                         uint32_t h) {
  size_t mask = ix->cap - 1, at;
  for (at = h & mask;; at = (at + 1) & mask) {
    PathSlot *s = &ix->slots[at];
    const tide_IndexEntry *e;
    if (s->entry == 0) return s;
    if (s->hash != h) continue;
    e = (const tide_IndexEntry *)ix->entries.data + (s->entry - 1);
    if (e->path_len == len &&
        memcmp(ix->paths.data + e->path_off, path, len) == 0)
      return s;
  }
}

/* Makes room for n paths in all. */
static int slots_reserve(tide_Index *ix, size_t n) {
  size_t cap = ix->cap ? ix->cap : 16, i;
  PathSlot *slots;
  if (n > (size_t)UINT32_MAX / 4 * 3) return TIDE_ENOMEM;
  while (n > cap / 4 * 3) cap *= 2;
  if (cap == ix->cap) return 0;
  slots = ix->alloc(ix->ud, NULL, 0, cap * sizeof *slots);
  if (slots == NULL) return TIDE_ENOMEM;
  memset(slots, 0, cap * sizeof *slots);
  for (i = 0; i < ix->cap; i++) {
    size_t at;
    if (ix->slots[i].entry == 0) continue;
    for (at = ix->slots[i].hash & (cap - 1); slots[at].entry;
         at = (at + 1) & (cap - 1)) {
    }
    slots[at] = ix->slots[i];
  }
  free_slots(ix);
  ix->slots = slots;
  ix->cap = cap;
  return 0;
}

/* The hash of entry i's path. */
static uint32_t entry_hash(const tide_Index *ix, size_t i) {
  const tide_IndexEntry *e = tide_index_at((tide_Index *)ix, i);
  return path_hash(tide_index_path(ix, e), e->path_len);
}

#define AHEAD 16

/* Places every entry's path in the table, once all are loaded: the slot
** of the entry AHEAD places on is fetched into the cache while one is
** placed, so that a large table costs no wait per entry. Paths are
** unique (the store's), so a placed path is never met again. */
static int place_paths(tide_Index *ix) {
  size_t n = tide_index_count(ix), i, mask;
  uint32_t ahead[AHEAD]; /* the hashes of entries i .. i + AHEAD - 1 */
  int rc;
  if (n == 0) return 0;
  if ((rc = slots_reserve(ix, n)) != 0) return rc;
  mask = ix->cap - 1;
  for (i = 0; i < n && i < AHEAD; i++) ahead[i] = entry_hash(ix, i);
  for (i = 0; i < n; i++) {
    uint32_t h = ahead[i % AHEAD];
    size_t at;
    if (i + AHEAD < n) {
      uint32_t later = entry_hash(ix, i + AHEAD);
      ahead[i % AHEAD] = later;
#if defined(__GNUC__)
      __builtin_prefetch(&ix->slots[later & mask], 1);
#endif
    }
    for (at = h & mask; ix->slots[at].entry; at = (at + 1) & mask) {
    }
    ix->slots[at].entry = (uint32_t)i + 1;
    ix->slots[at].hash = h;
  }
  return 0;
}

/* Adds a component: its path goes into paths (the table comes after);
** a distinct logic or deps fingerprint is numbered (and a deps one gets a
** Deps record). */
static int add_entry(void *arg, const tide_StoreComponent *c) {
  tide_Index *ix = arg;
  tide_IndexEntry e;
  uint64_t i = tide_index_count(ix);
  size_t off;
  int rc, added;
  memset(&e, 0, sizeof e);
  e.id = c->id;
  e.path_len = (uint32_t)c->path_len;
  if (c->input_fp) memcpy(e.input, c->input_fp, TIDE_FP_SIZE);
  e.has_input = c->input_fp != NULL;
  e.status = (uint8_t)c->status;
  if (c->path_len > UINT32_MAX || i >= UINT32_MAX) return TIDE_ENOMEM;
  off = ix->paths.len;
  if (off > UINT32_MAX) return TIDE_ENOMEM;
  if ((rc = tide_buf_reserve(&ix->paths, c->path_len + 1)) != 0) return rc;
  if (c->path_len) memcpy(ix->paths.data + off, c->path, c->path_len);
  ix->paths.data[off + c->path_len] = '\0';
  ix->paths.len += c->path_len + 1;
  e.path_off = (uint32_t)off;
  if (c->logic_fp) {
    uint32_t count = (uint32_t)(ix->logic_fps.len / TIDE_FP_SIZE);
    if ((rc = fp_set(&ix->logics, c->logic_fp, count, &e.logic_set,
                     &added)) != 0 ||
        (added && (rc = tide_buf_append(&ix->logic_fps, c->logic_fp,
                                        TIDE_FP_SIZE)) != 0))
      return rc;
  }
  if (c->deps_fp) {
    uint32_t count = (uint32_t)tide_index_deps_count(ix);
    if ((rc = fp_set(&ix->deps_sets, c->deps_fp, count, &e.deps_set,
                     &added)) != 0)
      return rc;
    if (added) {
      Deps d;
      memcpy(d.fp, c->deps_fp, TIDE_FP_SIZE);
      d.valid = -1;
      d.example = (size_t)i;
      if ((rc = tide_buf_append(&ix->deps, &d, sizeof d)) != 0) return rc;
    }
  }
  return tide_buf_append(&ix->entries, &e, sizeof e);
}

/* Entries i and j in path order: bytewise, shorter first on a tie
** (SQLite's BINARY collation). */
static int entry_order(tide_Index *ix, size_t i, size_t j) {
  const tide_IndexEntry *x = tide_index_at(ix, i), *y = tide_index_at(ix, j);
  int c = memcmp(tide_index_path(ix, x), tide_index_path(ix, y),
                 x->path_len < y->path_len ? x->path_len : y->path_len);
  if (c != 0) return c;
  return (x->path_len > y->path_len) - (x->path_len < y->path_len);
}

/* Numbers the dependency sets again in path order, each with the first
** entry that has it as its example, as a load in path order would; the
** entries are in path order already. */
static int renumber_deps(tide_Index *ix) {
  size_t n = tide_index_count(ix), nd = tide_index_deps_count(ix), i;
  size_t next = 0, *moved;
  const Deps *old = (const Deps *)ix->deps.data;
  tide_Buf deps;
  int rc = 0;
  if (nd == 0) return 0;
  moved = ix->alloc(ix->ud, NULL, 0, nd * sizeof *moved);
  if (moved == NULL) return TIDE_ENOMEM;
  for (i = 0; i < nd; i++) moved[i] = SIZE_MAX;
  tide_buf_init(&deps, ix->alloc, ix->ud);
  for (i = 0; i < n && rc == 0; i++) {
    tide_IndexEntry *e = tide_index_at(ix, i);
    size_t was;
    if (e->deps_set == 0) continue;
    was = e->deps_set - 1;
    if (moved[was] == SIZE_MAX) {
      Deps d = old[was];
      d.example = i;
      moved[was] = next++;
      *tide_hashmap_get(&ix->deps_sets.by_fp, d.fp, TIDE_FP_SIZE) =
        moved[was] + 1;
      rc = tide_buf_append(&deps, &d, sizeof d);
    }
    e->deps_set = (uint32_t)moved[was] + 1;
  }
  ix->alloc(ix->ud, moved, nd * sizeof *moved, 0);
  if (rc != 0) {
    tide_buf_close(&deps);
    return rc;
  }
  tide_buf_close(&ix->deps);
  ix->deps = deps;
  ix->deps_sets.last_set = 0;
  return 0;
}

/* The end of the ascending run of v that starts at a. */
static size_t run_end(tide_Index *ix, const uint32_t *v, size_t a,
                      size_t n) {
  while (a + 1 < n && entry_order(ix, v[a], v[a + 1]) < 0) a++;
  return a + 1;
}

/* Sorts the entry numbers v (n of them) by path, tmp being as large:
** each pass merges neighbouring ascending runs, so rows in a few runs (a
** parent is recorded after its children) take a few linear passes, and
** any order at most log2 n. Returns v or tmp, whichever ends sorted. */
static uint32_t *sort_numbers(tide_Index *ix, uint32_t *v, uint32_t *tmp,
                              size_t n) {
  for (;;) {
    size_t a = 0, runs = 0;
    uint32_t *t;
    while (a < n) {
      size_t mid = run_end(ix, v, a, n);
      size_t b = mid < n ? run_end(ix, v, mid, n) : n, x = a, y = mid;
      while (x < mid && y < b)
        *tmp++ = entry_order(ix, v[y], v[x]) < 0 ? v[y++] : v[x++];
      while (x < mid) *tmp++ = v[x++];
      while (y < b) *tmp++ = v[y++];
      runs++;
      a = b;
    }
    tmp -= n;
    t = v;
    v = tmp;
    tmp = t;
    if (runs == 1) return v;
  }
}

/* Puts the entries, loaded in the table's row order, in path order, and
** numbers the dependency sets again. Rows are mostly recorded in path
** order already, which is checked first. Memory: two numbers per entry;
** the entries move in place, along the cycles of the permutation. */
static int sort_entries(tide_Index *ix) {
  size_t n = tide_index_count(ix), i, bytes;
  uint32_t *v, *sorted;
  for (i = 1; i < n; i++)
    if (entry_order(ix, i - 1, i) > 0) break;
  if (i >= n) return 0;
  bytes = 2 * n * sizeof *v;
  v = ix->alloc(ix->ud, NULL, 0, bytes);
  if (v == NULL) return TIDE_ENOMEM;
  for (i = 0; i < n; i++) v[i] = (uint32_t)i;
  sorted = sort_numbers(ix, v, v + n, n);
  /* Entry sorted[k] goes to k. */
  for (i = 0; i < n; i++) {
    tide_IndexEntry saved;
    size_t j = i;
    if (sorted[i] == i) continue;
    saved = *tide_index_at(ix, i);
    while (sorted[j] != i) {
      size_t from = sorted[j];
      *tide_index_at(ix, j) = *tide_index_at(ix, from);
      sorted[j] = (uint32_t)j;
      j = from;
    }
    *tide_index_at(ix, j) = saved;
    sorted[j] = (uint32_t)j;
  }
  ix->alloc(ix->ud, v, bytes, 0);
  return renumber_deps(ix);
}

/* Whether s keeps its state in PostgreSQL. */
static int on_postgres(const tide_Store *s) {
  return tide_store_is_postgres(tide_store_path(s));
}

int tide_index_load(tide_Index *ix, tide_Store *s, int64_t app_id) {
  int64_t count = 0;
  int rc = 0;
  index_reset(ix);
  /* Room for every entry at once, when counting them is cheap: a SQLite
  ** file's index, read in the process. (PostgreSQL counts by reading the
  ** rows until it has vacuumed them: 20-70 ms at 100k; the entries grow
  ** as they come instead.) */
  if (!on_postgres(s)) rc = tide_store_component_count(s, app_id, 0, &count);
  if (rc == 0 && count > 0 && (uint64_t)count < UINT32_MAX &&
      ((rc = tide_buf_reserve(&ix->entries,
                              (size_t)count * sizeof(tide_IndexEntry))) !=
           0))
    return tide_index_fail(ix, rc, "out of memory");
  if (rc == 0) rc = tide_store_component_each_brief(s, app_id, add_entry, ix);
  if (rc == 0) rc = sort_entries(ix);
  if (rc == 0) rc = place_paths(ix);
  if (rc == TIDE_ENOMEM) return tide_index_fail(ix, rc, "out of memory");
  if (rc) return tide_index_fail(ix, rc, "%s", tide_store_errmsg(s));
  return 0;
}

/* ---- Loading on a thread of its own ---- */

typedef struct {
  tide_Index *ix;
  tide_FileStates *at; /* the cache of the source being read */
} SourceLoad;

/* Adds a stored file state to its source's cache, made when the source
** changes (items come by source, then key). */
static int add_source_item(void *arg, const tide_StoreSourceItem *item) {
  SourceLoad *l = arg;
  tide_Index *ix = l->ix;
  tide_FileStates *fs = l->at;
  size_t len = 0;
  const char *name = fs ? tide_filestates_source(fs, &len) : NULL;
  int rc;
  if (fs == NULL || len != item->source_len ||
      memcmp(name, item->source, len) != 0) {
    if ((rc = tide_buf_reserve(&ix->sources, sizeof fs)) != 0 ||
        (rc = tide_filestates_new(&fs, item->source, item->source_len,
                                  ix->alloc, ix->ud)) != 0)
      return rc;
    tide_buf_append(&ix->sources, &fs, sizeof fs); /* reserved above */
    l->at = fs;
  }
  return tide_filestates_add(fs, item);
}

/* The thread: its own read-only connection, the index, then the file
** states of every source of the app. Touches nothing but ix (of the
** caller's store, only what its open fixed). */
static void load_thread(void *arg) {
  tide_Index *ix = arg;
  tide_Store *reader = NULL;
  SourceLoad l;
  int rc = tide_store_open_again(&reader, ix->async.store, TIDE_STORE_READ);
  l.ix = ix;
  l.at = NULL;
  if (rc == 0) rc = tide_index_load(ix, reader, ix->async.app_id);
  if (rc == 0)
    rc = tide_store_source_each_app(reader, ix->async.app_id,
                                    add_source_item, &l);
  tide_store_close(reader);
  ix->async.rc = rc;
  atomic_store(&ix->async.done, 1);
}

/* Waits for the thread, if one runs; its result stays in async.rc. */
static void join_load(tide_Index *ix) {
  if (!ix->async.running) return;
  uv_thread_join(&ix->async.thread);
  ix->async.running = 0;
}

/* A whole load on the caller's thread; the index is warm after it. */
static int load_now(tide_Index *ix, tide_Store *s, int64_t app_id) {
  int rc = tide_index_load(ix, s, app_id);
  ix->warm.on = rc == 0;
  return rc;
}

/* ---- Kept up to date across cycles ---- */

/* The store's notes: each path written once (notes by id become the path
** the index knows for it). */
typedef struct {
  tide_Index *ix;
  tide_HashMap paths;
} Notes;

static int take_note(void *arg, const char *path, size_t len, int64_t id) {
  Notes *n = arg;
  if (path == NULL) {
    tide_IndexEntry *e = tide_index_find_id(n->ix, id);
    if (e == NULL) return 0; /* not one of this app's */
    path = tide_index_path(n->ix, e);
    len = e->path_len;
  }
  return tide_hashmap_put(&n->paths, path, len, 1, NULL);
}

void tide_index_view(const tide_Index *ix, const tide_IndexEntry *e,
                     tide_StoreComponent *c) {
  memset(c, 0, sizeof *c);
  c->id = e->id;
  c->path = tide_index_path(ix, e);
  c->path_len = e->path_len;
  c->logic_fp = e->logic_set ? ix->logic_fps.data +
                                   (size_t)(e->logic_set - 1) * TIDE_FP_SIZE
                             : NULL;
  c->input_fp = e->has_input ? e->input : NULL;
  c->deps_fp = e->deps_set ? ((const Deps *)ix->deps.data)[e->deps_set - 1].fp
                           : NULL;
  c->status = e->status;
}

/* Swaps what fresh loaded into ix; fresh leaves with ix's old parts. */
static void take_over(tide_Index *ix, tide_Index *fresh) {
  tide_Index old = *ix;
  ix->entries = fresh->entries;
  ix->paths = fresh->paths;
  ix->slots = fresh->slots;
  ix->cap = fresh->cap;
  ix->by_id = fresh->by_id;
  ix->logics = fresh->logics;
  ix->logic_fps = fresh->logic_fps;
  ix->deps_sets = fresh->deps_sets;
  ix->deps = fresh->deps;
  ix->next = 0;
  fresh->entries = old.entries;
  fresh->paths = old.paths;
  fresh->slots = old.slots;
  fresh->cap = old.cap;
  fresh->by_id = old.by_id;
  fresh->logics = old.logics;
  fresh->logic_fps = old.logic_fps;
  fresh->deps_sets = old.deps_sets;
  fresh->deps = old.deps;
}

/* The common case of a live cycle: every noted component is one the
** index has, and the store still has: each is updated where it is, and
** every mark cleared. Returns 1, having changed nothing, when one was
** added or deleted (the caller rebuilds), else 0 or a code. */
static int update_in_place(tide_Index *ix, tide_Store *s, int64_t app_id,
                           const tide_HashMap *noted) {
  size_t i, n = tide_index_count(ix);
  int rc;
  for (i = 0; i < noted->cap; i++) {
    const tide_HashMapSlot *slot = noted->slots + i;
    if (slot->used &&
        tide_index_find(ix, tide_hashmap_key(noted, slot->key),
                        slot->used - 1) == NULL)
      return 1;
  }
  for (i = 0; i < noted->cap; i++) {
    const tide_HashMapSlot *slot = noted->slots + i;
    const char *path;
    tide_IndexEntry *e;
    tide_StoreComponent c;
    int added;
    uint32_t set = 0;
    if (!slot->used) continue;
    path = tide_hashmap_key(noted, slot->key);
    rc = tide_store_component_get(s, app_id, path, slot->used - 1, &c);
    if (rc == TIDE_ENOTFOUND) return 1; /* deleted: rebuilt, as read */
    if (rc != 0) return rc;
    e = tide_index_find(ix, path, slot->used - 1);
    if (e->deps_set != 0) {
      const Deps *was = (const Deps *)ix->deps.data + (e->deps_set - 1);
      /* The example a set is checked by leaves it: rebuilt (a rebuild
      ** reads every noted component again, these included). */
      if (was->example == (size_t)(e - tide_index_at(ix, 0)) &&
          (c.deps_fp == NULL ||
           memcmp(was->fp, c.deps_fp, TIDE_FP_SIZE) != 0))
        return 1;
    }
    e->id = c.id;
    e->status = (uint8_t)c.status;
    e->has_input = c.input_fp != NULL;
    if (c.input_fp) memcpy(e->input, c.input_fp, TIDE_FP_SIZE);
    if (c.logic_fp) {
      uint32_t count = (uint32_t)(ix->logic_fps.len / TIDE_FP_SIZE);
      if ((rc = fp_set(&ix->logics, c.logic_fp, count, &set, &added)) != 0 ||
          (added && (rc = tide_buf_append(&ix->logic_fps, c.logic_fp,
                                          TIDE_FP_SIZE)) != 0))
        return rc;
    }
    e->logic_set = set;
    set = 0;
    if (c.deps_fp) {
      uint32_t count = (uint32_t)tide_index_deps_count(ix);
      if ((rc = fp_set(&ix->deps_sets, c.deps_fp, count, &set, &added)) != 0)
        return rc;
      if (added) {
        Deps d;
        memcpy(d.fp, c.deps_fp, TIDE_FP_SIZE);
        d.valid = -1;
        d.example = (size_t)(e - tide_index_at(ix, 0));
        if ((rc = tide_buf_append(&ix->deps, &d, sizeof d)) != 0) return rc;
      }
    }
    e->deps_set = set;
  }
  /* The by-id map may hold an id that changed: made again on use. */
  tide_hashmap_close(&ix->by_id);
  tide_hashmap_init(&ix->by_id, ix->alloc, ix->ud);
  for (i = 0; i < n; i++) {
    tide_IndexEntry *e = tide_index_at(ix, i);
    e->seen = TIDE_SEEN_NONE;
    e->forced = 0;
  }
  ix->next = 0;
  return 0;
}

/* A refresh that would read again more than this many components, and
** more than this share of the index, loads it whole instead. */
#define REFRESH_WHOLE_MIN 512
#define REFRESH_WHOLE_SHARE 4

/* Brings the index up to date with the components the store noted as
** written: the others are kept as they are (their marks cleared), the
** noted ones read again (gone when the store no longer has them).
** *whole is set instead when the store says everything must be read. */
static int refresh(tide_Index *ix, tide_Store *s, int64_t app_id,
                   int *whole) {
  Notes notes;
  tide_Index *fresh;
  size_t i, n = tide_index_count(ix);
  int rc;
  notes.ix = ix;
  tide_hashmap_init(&notes.paths, ix->alloc, ix->ud);
  if ((rc = tide_store_written(s, whole, take_note, &notes)) != 0 ||
      *whole) {
    tide_hashmap_close(&notes.paths);
    return rc == TIDE_EINVAL ? TIDE_ENOMEM : rc;
  }
  /* Many components written (a cold run's): reading them one by one
  ** costs more than a whole load, which runs on a thread. */
  if (notes.paths.count > REFRESH_WHOLE_MIN &&
      notes.paths.count > n / REFRESH_WHOLE_SHARE) {
    tide_hashmap_close(&notes.paths);
    *whole = 1;
    return 0;
  }
  rc = update_in_place(ix, s, app_id, &notes.paths);
  if (rc != 1) {
    tide_hashmap_close(&notes.paths);
    return rc;
  }
  if ((rc = tide_index_new(&fresh, ix->alloc, ix->ud)) != 0) {
    tide_hashmap_close(&notes.paths);
    return rc;
  }
  if ((rc = tide_buf_reserve(&fresh->entries,
                             n * sizeof(tide_IndexEntry))) == 0)
    rc = tide_buf_reserve(&fresh->paths, ix->paths.len);
  for (i = 0; i < n && rc == 0; i++) {
    const tide_IndexEntry *e = tide_index_at(ix, i);
    tide_StoreComponent c;
    if (tide_hashmap_get(&notes.paths, tide_index_path(ix, e), e->path_len))
      continue;
    tide_index_view(ix, e, &c);
    rc = add_entry(fresh, &c);
  }
  for (i = 0; i < notes.paths.cap && rc == 0; i++) {
    const tide_HashMapSlot *slot = notes.paths.slots + i;
    tide_StoreComponent c;
    if (!slot->used) continue;
    rc = tide_store_component_get(s, app_id,
                                  tide_hashmap_key(&notes.paths, slot->key),
                                  slot->used - 1, &c);
    if (rc == TIDE_ENOTFOUND) {
      rc = 0;
    } else if (rc == 0) {
      rc = add_entry(fresh, &c);
    }
  }
  if (rc == 0) rc = sort_entries(fresh);
  if (rc == 0) rc = place_paths(fresh);
  if (rc == 0) take_over(ix, fresh);
  tide_index_free(fresh);
  tide_hashmap_close(&notes.paths);
  return rc;
}

void tide_index_cool(tide_Index *ix) {
  /* A load under way would turn it warm when waited for. */
  (void)tide_index_wait(ix);
  ix->warm.on = 0;
}

/* A PostgreSQL store's index loads on a thread from this many
** components: below, the thread's own connection (a server process
** started, the store checked: 20-30 ms on a 2-core machine) costs more
** than it saves (no-change runs paired with loads at once: 1.10 of the
** wall time at 10k components, 0.94 at 30k, 0.84 at 100k). */
#define THREAD_MIN_PG 20000

/* Whether a whole load goes to a thread, where the store can be opened
** again (tide_store_open_again) and is large enough for it. */
static int worth_a_thread(tide_Store *s, int64_t app_id) {
  int64_t count = 0;
  if (!on_postgres(s)) return tide_store_path(s)[0] == '/';
  return tide_store_component_count(s, app_id, THREAD_MIN_PG, &count) == 0 &&
         count >= THREAD_MIN_PG;
}

int tide_index_load_async(tide_Index *ix, tide_Store *s, int64_t app_id) {
  int whole = 0, rc;
  /* A load under way (the one a live cycle starts for the next) ends
  ** first: the index is warm after it. */
  if (tide_index_wait(ix) != 0) ix->warm.on = 0;
  if (ix->warm.on && ix->warm.store == s && ix->warm.app_id == app_id) {
    rc = refresh(ix, s, app_id, &whole);
    if (rc == 0 && !whole) return 0;
    if (rc == TIDE_ENOMEM) return tide_index_fail(ix, rc, "out of memory");
    if (rc != 0) return tide_index_fail(ix, rc, "%s", tide_store_errmsg(s));
  }
  /* Read whole: what the store noted until now is in what is read. */
  ix->warm.on = 0;
  ix->warm.store = s;
  ix->warm.app_id = app_id;
  tide_store_track_components(s, 1);
  (void)tide_store_written(s, &whole, NULL, NULL);
  /* Only the default allocator is known to be thread-safe. */
  if (ix->alloc != tide_alloc_default || !worth_a_thread(s, app_id))
    return load_now(ix, s, app_id);
  ix->async.app_id = app_id;
  ix->async.store = s;
  ix->async.rc = 0;
  atomic_store(&ix->async.done, 0);
  if (uv_thread_create(&ix->async.thread, load_thread, ix) != 0)
    return load_now(ix, s, app_id);
  ix->async.running = 1;
  return 0;
}

int tide_index_loading(tide_Index *ix) {
  return ix->async.running && !atomic_load(&ix->async.done);
}

int tide_index_wait(tide_Index *ix) {
  if (!ix->async.running) return 0;
  join_load(ix);
  /* Whatever stopped the thread (its connection could not be opened),
  ** the load is made again through the caller's connection; the file
  ** states then load per source, on first use. */
  if (ix->async.rc != 0)
    return load_now(ix, ix->async.store, ix->async.app_id);
  ix->warm.on = 1;
  return 0;
}

/* ---- Scoped: loaded under paths ---- */

void tide_index_scope(tide_Index *ix) {
  (void)tide_index_wait(ix); /* a load under way ends first */
  index_reset(ix);
  ix->warm.on = 0;
  ix->scoped = 1;
}

/* Adds a component read under the paths unless the index holds it. */
static int add_under(void *arg, const tide_StoreComponent *c) {
  tide_Index *ix = arg;
  if (tide_index_find(ix, c->path, c->path_len) != NULL) return 0;
  return add_entry(ix, c);
}

/* Whether path b (blen bytes) is a, or below it. */
static int at_or_below(const char *a, size_t alen, const char *b,
                       size_t blen) {
  return blen >= alen && memcmp(a, b, alen) == 0 &&
         (blen == alen || b[alen] == '/');
}

/* The paths given that are not at or below another one given (a path
** below another is read with it, not twice: a row read twice would be two
** entries), with their lengths, in path order; allocated (roots_free). */
typedef struct {
  const char **paths;
  size_t *lens, n, bytes;
} Roots;

typedef struct {
  const char *path;
  size_t len;
} Root;

/* Bytewise, but '/' before every other byte: a path's subtree then
** follows it at once, before its siblings that extend it ("P.x", "P" NUL
** "x"). */
static int root_cmp(const void *pa, const void *pb) {
  const Root *a = pa, *b = pb;
  size_t i, n = a->len < b->len ? a->len : b->len;
  for (i = 0; i < n; i++) {
    int x = (unsigned char)a->path[i], y = (unsigned char)b->path[i];
    if (x == y) continue;
    return (x == '/' ? -1 : x) - (y == '/' ? -1 : y);
  }
  return (a->len > b->len) - (a->len < b->len);
}

static int roots_of(tide_Index *ix, const char *const *paths,
                    const size_t *lens, size_t n, Roots *r) {
  Root *sorted;
  size_t i;
  r->n = 0;
  r->bytes = n * (sizeof *r->paths + sizeof *r->lens + sizeof *sorted);
  r->paths = ix->alloc(ix->ud, NULL, 0, r->bytes);
  if (r->paths == NULL) return TIDE_ENOMEM;
  r->lens = (size_t *)(r->paths + n);
  sorted = (Root *)(r->lens + n);
  for (i = 0; i < n; i++) {
    sorted[i].path = paths[i];
    sorted[i].len = lens[i];
  }
  qsort(sorted, n, sizeof *sorted, root_cmp);
  for (i = 0; i < n; i++) {
    if (r->n > 0 && at_or_below(r->paths[r->n - 1], r->lens[r->n - 1],
                                sorted[i].path, sorted[i].len))
      continue;
    r->paths[r->n] = sorted[i].path;
    r->lens[r->n++] = sorted[i].len;
  }
  return 0;
}

static void roots_free(tide_Index *ix, Roots *r) {
  ix->alloc(ix->ud, r->paths, r->bytes, 0);
}

int tide_index_load_under(tide_Index *ix, tide_Store *s, int64_t app_id,
                          const char *const *paths, const size_t *lens,
                          size_t n) {
  Roots r;
  size_t before = tide_index_count(ix);
  int rc;
  if (n == 0) return 0;
  if (roots_of(ix, paths, lens, n, &r) != 0)
    return tide_index_fail(ix, TIDE_ENOMEM, "out of memory");
  (void)tide_index_wait(ix);
  rc = tide_store_component_each_under(s, app_id, r.paths, r.lens, r.n,
                                       add_under, ix);
  roots_free(ix, &r);
  if (tide_index_count(ix) > before) {
    /* In path order again, the table of paths and the map by id made
    ** anew: the entries moved. (Also after a failure: what was read
    ** before it is in the store, and the index stays whole.) */
    int placed = sort_entries(ix);
    if (placed == 0) {
      free_slots(ix);
      placed = place_paths(ix);
    }
    tide_hashmap_close(&ix->by_id);
    tide_hashmap_init(&ix->by_id, ix->alloc, ix->ud);
    ix->next = 0;
    if (rc == 0) rc = placed;
  }
  if (rc == TIDE_ENOMEM) return tide_index_fail(ix, rc, "out of memory");
  if (rc) return tide_index_fail(ix, rc, "%s", tide_store_errmsg(s));
  return 0;
}

int tide_index_reload_under(tide_Index *ix, tide_Store *s, int64_t app_id,
                            const char *const *paths, const size_t *lens,
                            size_t n) {
  Roots r;
  tide_Index *fresh = NULL;
  uint8_t *drop = NULL;
  size_t i, j, count;
  int rc;
  if (n == 0) return 0;
  (void)tide_index_wait(ix);
  count = tide_index_count(ix);
  if (!ix->warm.on || ix->warm.store != s || ix->warm.app_id != app_id)
    return 0; /* its next load reads it whole anyway */
  if (roots_of(ix, paths, lens, n, &r) != 0)
    return tide_index_fail(ix, TIDE_ENOMEM, "out of memory");
  /* Many subtrees (a cold cycle's items): read whole, on the thread. */
  if (r.n > REFRESH_WHOLE_MIN && r.n > count / REFRESH_WHOLE_SHARE) {
    roots_free(ix, &r);
    ix->warm.on = 0;
    return 0;
  }
  /* The entries at and below each root are dropped, the others kept. */
  rc = (drop = ix->alloc(ix->ud, NULL, 0, count + 1)) ? 0 : TIDE_ENOMEM;
  if (rc == 0) {
    memset(drop, 0, count + 1);
    for (i = 0; i < r.n; i++) {
      tide_IndexEntry *self = tide_index_find(ix, r.paths[i], r.lens[i]);
      if (self) drop[self - tide_index_at(ix, 0)] = 1;
      for (j = tide_index_below_first(ix, r.paths[i], r.lens[i]);
           j < count && tide_index_is_below(ix, tide_index_at(ix, j),
                                            r.paths[i], r.lens[i]); j++)
        drop[j] = 1;
    }
    rc = tide_index_new(&fresh, ix->alloc, ix->ud);
  }
  if (rc == 0) rc = tide_buf_reserve(&fresh->entries,
                                     count * sizeof(tide_IndexEntry));
  for (i = 0; i < count && rc == 0; i++) {
    tide_StoreComponent c;
    if (drop[i]) continue;
    tide_index_view(ix, tide_index_at(ix, i), &c);
    rc = add_entry(fresh, &c);
  }
  if (rc == 0)
    rc = tide_store_component_each_under(s, app_id, r.paths, r.lens, r.n,
                                         add_entry, fresh);
  if (rc == 0) rc = sort_entries(fresh);
  if (rc == 0) rc = place_paths(fresh);
  if (rc == 0) take_over(ix, fresh);
  if (drop) ix->alloc(ix->ud, drop, count + 1, 0);
  if (fresh) tide_index_free(fresh);
  roots_free(ix, &r);
  if (rc == 0) return 0;
  /* Left as it was, but stale: its next load reads it whole. */
  ix->warm.on = 0;
  if (rc == TIDE_ENOMEM) return tide_index_fail(ix, rc, "out of memory");
  return tide_index_fail(ix, rc, "%s", tide_store_errmsg(s));
}

/* ---- Lookups and subtrees ---- */

tide_IndexEntry *tide_index_find(tide_Index *ix, const char *path,
                                 size_t len) {
  const PathSlot *s;
  if (ix->cap == 0 || len > UINT32_MAX) return NULL;
  if (ix->next < tide_index_count(ix)) {
    tide_IndexEntry *e = tide_index_at(ix, ix->next);
    if (e->path_len == len &&
        memcmp(tide_index_path(ix, e), path, len) == 0) {
      ix->next++;
      return e;
    }
  }
  s = slot_of(ix, path, len, path_hash(path, len));
  if (s->entry == 0) return NULL;
  ix->next = s->entry;
  return tide_index_at(ix, s->entry - 1);
}

tide_IndexEntry *tide_index_find_id(tide_Index *ix, int64_t id) {
  const uint64_t *i;
  size_t n = tide_index_count(ix), k;
  if (tide_hashmap_count(&ix->by_id) < n) {
    /* Made on first use; out of memory, a scan answers. */
    if (tide_hashmap_reserve(&ix->by_id, n) == 0) {
      for (k = 0; k < n; k++)
        tide_hashmap_put_id(&ix->by_id, (uint64_t)tide_index_at(ix, k)->id,
                            k); /* room reserved: cannot fail */
    } else {
      for (k = 0; k < n; k++)
        if (tide_index_at(ix, k)->id == id) return tide_index_at(ix, k);
      return NULL;
    }
  }
  i = tide_hashmap_get_id(&ix->by_id, (uint64_t)id);
  return i ? tide_index_at(ix, (size_t)*i) : NULL;
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

/* The first entry that does not sort before path + "/". Entries are in
** path order, so the entries below path are the run from there while
** tide_index_is_below holds. */
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

/* Marks the entries below path unchanged, unless already marked, from
** entry i on (the first one below path, or one after the last); returns
** how many it marked. */
static size_t keep_below(tide_Index *ix, const char *path, size_t len,
                         size_t i) {
  size_t marked = 0;
  for (; i < tide_index_count(ix); i++) {
    tide_IndexEntry *e = tide_index_at(ix, i);
    if (!tide_index_is_below(ix, e, path, len)) break;
    if (e->seen == TIDE_SEEN_NONE) {
      e->seen = TIDE_SEEN_UNCHANGED;
      marked++;
    }
  }
  return marked;
}

/* The first entry below e's path. The entries below an entry usually
** follow it at once (or none does), which one comparison tells; a
** sibling that sorts between them (path + ".x") takes a binary search. */
static size_t first_below(tide_Index *ix, const tide_IndexEntry *e) {
  size_t i = (size_t)(e - tide_index_at(ix, 0)) + 1;
  const char *path = tide_index_path(ix, e);
  if (i < tide_index_count(ix)) {
    const tide_IndexEntry *next = tide_index_at(ix, i);
    if (below_cmp(tide_index_path(ix, next), next->path_len, path,
                  e->path_len) < 0)
      return tide_index_below_first(ix, path, e->path_len);
  }
  return i;
}

size_t tide_index_keep_subtree(tide_Index *ix, const char *path,
                               size_t len) {
  tide_IndexEntry *self = tide_index_find(ix, path, len);
  size_t marked = 0;
  if (self == NULL)
    return keep_below(ix, path, len, tide_index_below_first(ix, path, len));
  if (self->seen == TIDE_SEEN_NONE) {
    self->seen = TIDE_SEEN_UNCHANGED;
    marked++;
  }
  return marked + keep_below(ix, path, len, first_below(ix, self));
}

/* Moves the entry at path and those below it from seen state from to
** state to. */
static void remark_subtree(tide_Index *ix, const char *path, size_t len,
                           uint8_t from, uint8_t to) {
  tide_IndexEntry *self = tide_index_find(ix, path, len);
  size_t i = self ? first_below(ix, self)
                  : tide_index_below_first(ix, path, len);
  if (self && self->seen == from) self->seen = to;
  for (; i < tide_index_count(ix); i++) {
    tide_IndexEntry *e = tide_index_at(ix, i);
    if (!tide_index_is_below(ix, e, path, len)) break;
    if (e->seen == from) e->seen = to;
  }
}

void tide_index_unkeep_below(tide_Index *ix, const char *path, size_t len) {
  size_t i = tide_index_below_first(ix, path, len);
  for (; i < tide_index_count(ix); i++) {
    tide_IndexEntry *e = tide_index_at(ix, i);
    if (!tide_index_is_below(ix, e, path, len)) break;
    if (e->seen == TIDE_SEEN_UNCHANGED) e->seen = TIDE_SEEN_NONE;
  }
}

size_t tide_index_failed_below(tide_Index *ix, const char *path,
                               size_t len) {
  size_t i = tide_index_below_first(ix, path, len), n = 0;
  for (; i < tide_index_count(ix); i++) {
    const tide_IndexEntry *e = tide_index_at(ix, i);
    if (!tide_index_is_below(ix, e, path, len)) break;
    if (e->seen == TIDE_SEEN_NONE && e->status != 0) n++;
  }
  return n;
}

/* Not a state a run gives: what keep_below_except holds back. */
#define SEEN_HELD 0xff

size_t tide_index_keep_below_except(tide_Index *ix, const char *path,
                                    size_t len, const char *const *except,
                                    const size_t *lens, size_t n) {
  size_t i, kept = 0;
  for (i = 0; i < n; i++)
    remark_subtree(ix, except[i], lens[i], TIDE_SEEN_NONE, SEEN_HELD);
  /* Keeping an entry keeps what is below it: the entries the pass finds
  ** unmarked are the tops of what it keeps. */
  for (i = tide_index_below_first(ix, path, len);
       i < tide_index_count(ix); i++) {
    tide_IndexEntry *e = tide_index_at(ix, i);
    if (!tide_index_is_below(ix, e, path, len)) break;
    if (e->seen != TIDE_SEEN_NONE) continue;
    tide_index_keep(ix, e);
    kept++;
  }
  for (i = 0; i < n; i++)
    remark_subtree(ix, except[i], lens[i], SEEN_HELD, TIDE_SEEN_NONE);
  return kept;
}

void tide_index_keep(tide_Index *ix, tide_IndexEntry *e) {
  if (e->seen == TIDE_SEEN_NONE) e->seen = TIDE_SEEN_UNCHANGED;
  keep_below(ix, tide_index_path(ix, e), e->path_len, first_below(ix, e));
}

/* ---- Dependency sets ---- */

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

int tide_index_deps_checked(const tide_Index *ix, size_t i) {
  return ((const Deps *)ix->deps.data)[i].valid != -1;
}

int tide_index_deps_valid(const tide_Index *ix, const tide_IndexEntry *e) {
  return e->deps_set != 0 &&
         ((const Deps *)ix->deps.data)[e->deps_set - 1].valid == 1;
}

int tide_index_may_carry(const tide_Index *ix, const tide_IndexEntry *e,
                         const uint8_t *logic) {
  return e != NULL && !e->forced && e->status == 0 &&
         e->seen == TIDE_SEEN_NONE && e->logic_set != 0 && e->has_input &&
         memcmp(ix->logic_fps.data + (size_t)(e->logic_set - 1) *
                                         TIDE_FP_SIZE,
                logic, TIDE_FP_SIZE) == 0 &&
         tide_index_deps_valid(ix, e);
}

int tide_index_carry(tide_Index *ix, const char *path, size_t len,
                     const uint8_t *logic, const uint8_t *input) {
  tide_IndexEntry *e = tide_index_find(ix, path, len);
  if (!tide_index_may_carry(ix, e, logic) ||
      memcmp(e->input, input, TIDE_FP_SIZE) != 0)
    return 0;
  tide_index_keep(ix, e);
  return 1;
}

/* ---- File states, one cache per source ---- */

static tide_FileStates *source_find(const tide_Index *ix, const char *name,
                                    size_t len) {
  size_t i;
  for (i = 0; i < ix->sources.len / sizeof(tide_FileStates *); i++) {
    tide_FileStates *fs = ((tide_FileStates **)ix->sources.data)[i];
    size_t have_len;
    const char *have = tide_filestates_source(fs, &have_len);
    if (have_len == len && memcmp(have, name, len) == 0) return fs;
  }
  return NULL;
}

int tide_index_source(tide_Index *ix, tide_Store *s, int64_t app_id,
                      const char *source, size_t len,
                      tide_FileStates **out) {
  tide_FileStates *fs;
  int rc;
  if ((*out = source_find(ix, source, len)) != NULL) return 0;
  if ((rc = tide_buf_reserve(&ix->sources, sizeof fs)) != 0 ||
      (rc = tide_filestates_new(&fs, source, len, ix->alloc, ix->ud)) != 0)
    return tide_index_fail(ix, rc, "out of memory");
  /* Scoped, a source starts empty: its states are the files' puts. */
  if (!ix->scoped && (rc = tide_filestates_load(fs, s, app_id)) != 0) {
    tide_filestates_free(fs);
    if (rc == TIDE_ENOMEM) return tide_index_fail(ix, rc, "out of memory");
    return tide_index_fail(ix, rc, "%s", tide_store_errmsg(s));
  }
  tide_buf_append(&ix->sources, &fs, sizeof fs); /* reserved above */
  *out = fs;
  return 0;
}

int tide_index_load_source(tide_Index *ix, tide_Store *s, int64_t app_id,
                           const char *source, size_t len) {
  tide_FileStates *fs;
  return tide_index_source(ix, s, app_id, source, len, &fs);
}

const uint8_t *tide_index_file_fp(tide_Index *ix, const char *source,
                                  size_t source_len, const char *path,
                                  size_t len, int64_t size, int64_t mtime_ns,
                                  int64_t inode) {
  tide_FileStates *fs = source_find(ix, source, source_len);
  return fs ? tide_filestates_match(fs, path, len, size, mtime_ns, inode)
            : NULL;
}

int tide_index_file_put(tide_Index *ix, tide_Store *s, int64_t app_id,
                        const char *source, size_t source_len,
                        const char *path, size_t len, int64_t size,
                        int64_t mtime_ns, int64_t inode, const uint8_t *fp) {
  tide_FileStates *fs = source_find(ix, source, source_len);
  int rc;
  if (fs == NULL)
    return tide_index_fail(ix, TIDE_EINVAL, "source %.*s not loaded",
                           (int)(source_len < 256 ? source_len : 256),
                           source);
  rc = tide_filestates_put(fs, s, app_id, path, len, size, mtime_ns, inode,
                           fp);
  if (rc == TIDE_ENOMEM) return tide_index_fail(ix, rc, "out of memory");
  if (rc) return tide_index_fail(ix, rc, "%s", tide_store_errmsg(s));
  return 0;
}
