/*
** Lua binding of the component index: core.index_new() returns an index
** the engine loads from the store once per run and asks, per component,
** whether it is unchanged; index:walk runs the fast path of mount_each
** over an fs.walk source, index:each makes the each that a keyed source
** read in C (ljsonl.c, lsqlite.c) carries its unchanged items over with.
** index:load loads on a thread of its own when it can: every method
** waits for that load first, but index:walk lists its folder meanwhile.
** Misuse raises; a store that cannot be read raises its message.
*/
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "index.h"
#include "index_each.h"
#include "lcore.h"
#include "readahead.h"

#define INDEX_TYPE "tide.Index"
#define CHANGED_TYPE "tide.IndexChanged"
#define EACH_TYPE "tide.IndexEach"

typedef struct {
  tide_Index *ix;     /* owned unless borrowed */
  int borrowed;       /* an engine's index: __gc lets go of it */
  tide_Walker walker; /* reused by every walk */
  tide_Buf changed;   /* the last walk's records */
} Box;

/* Waits for a load under way; raises when it failed. */
static void wait_loaded(lua_State *L, Box *b) {
  if (tide_index_wait(b->ix) != 0)
    luaL_error(L, "%s", tide_index_errmsg(b->ix));
}

/* What a walk hands the engine: its records (index_walk.h), read one at a
** time. */
typedef struct {
  tide_Buf records; /* the walk's buffer, taken over from the index */
  size_t at;        /* the next record's offset */
  size_t files;     /* how many records are files */
  /* What a component's input is computed from (tide_index_file_input),
  ** for the files the walk did not read; the strings follow the records. */
  tide_IndexWalk spec;
  tide_Buf scratch;
  /* The files the walk did not read, read ahead of changed:next. */
  tide_ReadAhead ahead;
  size_t ahead_at;  /* the next record the read-ahead has not seen */
  int ahead_on;     /* ahead was initialized */
} Changed;

/* A record's size: the struct, the path and its NUL, padded to 8. */
static size_t record_size(const tide_IndexChanged *c) {
  size_t total = sizeof *c + c->len + 1;
  return total + (8 - total % 8) % 8;
}

/* The read-ahead's candidates (readahead.h): the files the walk did not
** read, small enough to be read in one go, keyed by their record's
** offset. */
static int ahead_next(void *ud, size_t *key, const char **path, size_t *len,
                      int64_t *size) {
  Changed *cur = ud;
  while (cur->ahead_at < cur->records.len) {
    tide_IndexChanged c;
    size_t at = cur->ahead_at;
    memcpy(&c, cur->records.data + at, sizeof c);
    cur->ahead_at += record_size(&c);
    if (c.kind == TIDE_WALK_FILE && c.deferred && c.size < TIDE_LARGE_FILE) {
      *key = at;
      *path = (const char *)cur->records.data + at + sizeof c;
      *len = c.len;
      *size = c.size;
      return 1;
    }
  }
  return 0;
}

/* The index at 1, once loaded; walk_box does not wait. */
static Box *walk_box(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, INDEX_TYPE);
  if (b->ix == NULL) luaL_error(L, "index is closed");
  return b;
}

static Box *check_box(lua_State *L) {
  Box *b = walk_box(L);
  wait_loaded(L, b);
  return b;
}

static int index_gc(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, INDEX_TYPE);
  if (b->ix) {
    if (!b->borrowed) tide_index_free(b->ix);
    tide_walker_close(&b->walker);
    tide_buf_close(&b->changed);
    b->ix = NULL;
  }
  return 0;
}

static int index_new(lua_State *L) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  Box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->ix = NULL;
  b->borrowed = 0;
  luaL_setmetatable(L, INDEX_TYPE);
  if (tide_index_new(&b->ix, alloc, ud) != 0)
    return luaL_error(L, "out of memory");
  tide_walker_init(&b->walker, alloc, ud);
  tide_buf_init(&b->changed, alloc, ud);
  return 1;
}

void tide_lindex_push_borrowed(lua_State *L, tide_Index *ix) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  Box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->ix = ix;
  b->borrowed = 1;
  tide_walker_init(&b->walker, alloc, ud);
  tide_buf_init(&b->changed, alloc, ud);
  luaL_setmetatable(L, INDEX_TYPE);
}

/* index:load(store, app_id): starts the load (index.h,
** tide_index_load_async); the store must outlive it. */
static int index_load(lua_State *L) {
  Box *b = walk_box(L);
  tide_Store *s = tide_lstore_check(L, 2);
  if (tide_index_load_async(b->ix, s, luaL_checkinteger(L, 3)) != 0)
    return luaL_error(L, "%s", tide_index_errmsg(b->ix));
  return 0;
}

/* index:cool(): the next index:load reads the store whole (other
** connections wrote it: tide_index_cool). */
static int index_cool(lua_State *L) {
  tide_index_cool(walk_box(L)->ix);
  return 0;
}

/* index:scope(): empties the index, which then loads under the items a
** worker claims (index.h, tide_index_scope). */
static int index_scope(lua_State *L) {
  tide_index_scope(walk_box(L)->ix);
  return 0;
}

typedef int (*UnderFn)(tide_Index *ix, tide_Store *s, int64_t app_id,
                       const char *const *paths, const size_t *lens,
                       size_t n);

/* Calls fn with the store at 2, the app id at 3 and the list of paths
** (strings) at 4. */
static int under(lua_State *L, UnderFn fn) {
  Box *b = check_box(L);
  tide_Store *s = tide_lstore_check(L, 2);
  lua_Integer app_id = luaL_checkinteger(L, 3);
  lua_Integer i, n;
  const char **paths;
  size_t *lens;
  luaL_checktype(L, 4, LUA_TTABLE);
  n = (lua_Integer)lua_rawlen(L, 4);
  paths = lua_newuserdatauv(L, (size_t)n * (sizeof *paths + sizeof *lens)
                               + 1, 0);
  lens = (size_t *)(paths + n);
  for (i = 0; i < n; i++) { /* the strings stay in the list meanwhile */
    lua_rawgeti(L, 4, i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_argerror(L, 4, "a list of paths (strings) expected");
    paths[i] = lua_tolstring(L, -1, &lens[i]);
    lua_pop(L, 1);
  }
  if (fn(b->ix, s, app_id, paths, lens, (size_t)n) != 0)
    return luaL_error(L, "%s", tide_index_errmsg(b->ix));
  return 0;
}

/* index:load_under(store, app_id, paths): adds the components at and
** below each of the paths (a list of strings) that it does not hold. */
static int index_load_under(lua_State *L) {
  return under(L, tide_index_load_under);
}

/* index:reload_under(store, app_id, paths): what it holds at and below
** each of the paths is read again (tide_index_reload_under). */
static int index_reload_under(lua_State *L) {
  return under(L, tide_index_reload_under);
}

/* index:count() -> the number of components loaded */
static int index_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)tide_index_count(check_box(L)->ix));
  return 1;
}

static const char *const seen_names[] = {"none", "unchanged", "ran",
                                         "failed", NULL};

static void push_entry(lua_State *L, tide_Index *ix, tide_IndexEntry *e) {
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)e->id);
  lua_setfield(L, -2, "id");
  lua_pushlstring(L, tide_index_path(ix, e), e->path_len);
  lua_setfield(L, -2, "path");
  lua_pushinteger(L, e->status);
  lua_setfield(L, -2, "status");
  lua_pushstring(L, seen_names[e->seen]);
  lua_setfield(L, -2, "seen");
  lua_pushboolean(L, e->forced);
  lua_setfield(L, -2, "forced");
}

/* index:prev(path) -> nil, or what the store recorded of the component
** when the index loaded it: { id, path, status, logic, input, deps_fp },
** the fingerprints as 16 raw bytes or nil. */
static int index_prev(lua_State *L) {
  Box *b = check_box(L);
  size_t len;
  const char *path = luaL_checklstring(L, 2, &len);
  tide_IndexEntry *e = tide_index_find(b->ix, path, len);
  tide_StoreComponent c;
  if (e == NULL) return 0;
  tide_index_view(b->ix, e, &c);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, (lua_Integer)c.id);
  lua_setfield(L, -2, "id");
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "path");
  lua_pushinteger(L, c.status);
  lua_setfield(L, -2, "status");
  if (c.logic_fp) {
    lua_pushlstring(L, (const char *)c.logic_fp, TIDE_FP_SIZE);
    lua_setfield(L, -2, "logic");
  }
  if (c.input_fp) {
    lua_pushlstring(L, (const char *)c.input_fp, TIDE_FP_SIZE);
    lua_setfield(L, -2, "input");
  }
  if (c.deps_fp) {
    lua_pushlstring(L, (const char *)c.deps_fp, TIDE_FP_SIZE);
    lua_setfield(L, -2, "deps_fp");
  }
  return 1;
}

/* index:path_of(id) -> path or nil */
static int index_path_of(lua_State *L) {
  Box *b = check_box(L);
  tide_IndexEntry *e = tide_index_find_id(b->ix, luaL_checkinteger(L, 2));
  if (e == NULL) return 0;
  lua_pushlstring(L, tide_index_path(b->ix, e), e->path_len);
  return 1;
}

/* index:seen(path) -> "none" | "unchanged" | "ran" | "failed" | nil */
static int index_seen(lua_State *L) {
  Box *b = check_box(L);
  size_t len;
  const char *path = luaL_checklstring(L, 2, &len);
  tide_IndexEntry *e = tide_index_find(b->ix, path, len);
  if (e == NULL) return 0;
  lua_pushstring(L, seen_names[e->seen]);
  return 1;
}

/* index:mark(path, state) -> whether the path is in the index */
static int index_mark(lua_State *L) {
  Box *b = check_box(L);
  size_t len;
  const char *path = luaL_checklstring(L, 2, &len);
  int state = luaL_checkoption(L, 3, NULL, seen_names);
  tide_IndexEntry *e = tide_index_find(b->ix, path, len);
  if (e) e->seen = (uint8_t)state;
  lua_pushboolean(L, e != NULL);
  return 1;
}

/* index:force(path): the component must run again */
static int index_force(lua_State *L) {
  Box *b = check_box(L);
  size_t len;
  const char *path = luaL_checklstring(L, 2, &len);
  tide_IndexEntry *e = tide_index_find(b->ix, path, len);
  if (e) e->forced = 1;
  return 0;
}

/* index:keep_subtree(path) -> how many entries it marked unchanged */
static int index_keep_subtree(lua_State *L) {
  Box *b = check_box(L);
  size_t len;
  const char *path = luaL_checklstring(L, 2, &len);
  lua_pushinteger(L, (lua_Integer)tide_index_keep_subtree(b->ix, path, len));
  return 1;
}

/* index:failed_below(path) -> how many components below path, not marked
** in this run, were not recorded ok (tide_index_failed_below) */
static int index_failed_below(lua_State *L) {
  Box *b = check_box(L);
  size_t len;
  const char *path = luaL_checklstring(L, 2, &len);
  lua_pushinteger(L, (lua_Integer)tide_index_failed_below(b->ix, path, len));
  return 1;
}

/* index:unkeep_below(path): what is below path and kept is not marked
** any more (tide_index_unkeep_below) */
static int index_unkeep_below(lua_State *L) {
  Box *b = check_box(L);
  size_t len;
  const char *path = luaL_checklstring(L, 2, &len);
  tide_index_unkeep_below(b->ix, path, len);
  return 0;
}

/* index:keep_below(path, except) -> how many subtrees below path it kept,
** leaving those of the paths in the list except as they are
** (tide_index_keep_below_except). */
static int index_keep_below(lua_State *L) {
  Box *b = check_box(L);
  size_t len, n, i;
  const char *path = luaL_checklstring(L, 2, &len);
  const char **except;
  size_t *lens;
  luaL_checktype(L, 3, LUA_TTABLE);
  n = (size_t)lua_rawlen(L, 3);
  /* Scratch in a userdata: freed by the collector if a check raises. */
  except = lua_newuserdatauv(L, n * (sizeof *except + sizeof *lens) + 1, 0);
  lens = (size_t *)(except + n);
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, 3, (lua_Integer)i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "index:keep_below: except[%d] is not a path",
                 (int)i + 1);
    /* The strings stay alive in the table at 3. */
    except[i] = lua_tolstring(L, -1, &lens[i]);
    lua_pop(L, 1);
  }
  lua_pushinteger(L, (lua_Integer)tide_index_keep_below_except(
                         b->ix, path, len, except, lens, n));
  return 1;
}

/* index:unseen() -> { { id, path }, ... } of entries no run marked */
/* index:carry(path, logic, input) -> whether the component at path was
** carried over unchanged (with its subtree): the verdict is C's
** (tide_index_carry), for a component of any source. */
static int index_carry(lua_State *L) {
  Box *b = check_box(L);
  size_t len, ll, il;
  const char *path = luaL_checklstring(L, 2, &len);
  const char *logic = luaL_checklstring(L, 3, &ll);
  const char *input = luaL_checklstring(L, 4, &il);
  luaL_argcheck(L, ll == TIDE_FP_SIZE, 3, "16-byte fingerprint expected");
  luaL_argcheck(L, il == TIDE_FP_SIZE, 4, "16-byte fingerprint expected");
  lua_pushboolean(L, tide_index_carry(b->ix, path, len,
                                      (const uint8_t *)logic,
                                      (const uint8_t *)input));
  return 1;
}

static int index_unseen(lua_State *L) {
  Box *b = check_box(L);
  size_t i, n = tide_index_count(b->ix);
  lua_Integer k = 0;
  lua_newtable(L);
  for (i = 0; i < n; i++) {
    tide_IndexEntry *e = tide_index_at(b->ix, i);
    if (e->seen != TIDE_SEEN_NONE) continue;
    push_entry(L, b->ix, e);
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

/* index:holds(path) -> whether the index has path or some entry below it
** (what a shared update's lead tells a worker: nothing stored to read). */
static int index_holds(lua_State *L) {
  Box *b = check_box(L);
  size_t len, i;
  const char *path = luaL_checklstring(L, 2, &len);
  if (tide_index_find(b->ix, path, len) != NULL) {
    lua_pushboolean(L, 1);
    return 1;
  }
  i = tide_index_below_first(b->ix, path, len);
  lua_pushboolean(L, i < tide_index_count(b->ix) &&
                       tide_index_is_below(b->ix, tide_index_at(b->ix, i),
                                           path, len));
  return 1;
}

/* index:has_unseen_below(path) -> whether some entry below path (path +
** "/" and more) is not marked yet. Called when a component is recorded,
** after its children ran: true means it no longer mounts some of them
** (or, when keys hold "/", a sibling whose path extends its own has not
** run yet). */
static int index_has_unseen_below(lua_State *L) {
  Box *b = check_box(L);
  size_t len, i;
  const char *path = luaL_checklstring(L, 2, &len);
  for (i = tide_index_below_first(b->ix, path, len);
       i < tide_index_count(b->ix); i++) {
    tide_IndexEntry *e = tide_index_at(b->ix, i);
    if (!tide_index_is_below(b->ix, e, path, len)) break;
    if (e->seen == TIDE_SEEN_NONE) {
      lua_pushboolean(L, 1);
      return 1;
    }
  }
  lua_pushboolean(L, 0);
  return 1;
}

/* index:deps([unchecked]) -> { { fp, example_path, number }, ... } of
** distinct dependency sets (with unchecked, only those not said valid or
** not yet), number being what index:set_deps_valid takes */
static int index_deps(lua_State *L) {
  Box *b = check_box(L);
  size_t i, n = tide_index_deps_count(b->ix);
  int unchecked = lua_toboolean(L, 2);
  lua_Integer k = 0;
  lua_createtable(L, unchecked ? 0 : (int)n, 0);
  for (i = 0; i < n; i++) {
    const tide_IndexEntry *example;
    const uint8_t *fp = tide_index_deps_at(b->ix, i, &example);
    if (unchecked && tide_index_deps_checked(b->ix, i)) continue;
    lua_createtable(L, 3, 0);
    lua_pushlstring(L, (const char *)fp, TIDE_FP_SIZE);
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, tide_index_path(b->ix, example), example->path_len);
    lua_rawseti(L, -2, 2);
    lua_pushinteger(L, (lua_Integer)i + 1);
    lua_rawseti(L, -2, 3);
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

static int index_set_deps_valid(lua_State *L) {
  Box *b = check_box(L);
  lua_Integer i = luaL_checkinteger(L, 2);
  luaL_argcheck(L, i >= 1 && (size_t)i <= tide_index_deps_count(b->ix), 2,
                "no such dependency set");
  tide_index_deps_set_valid(b->ix, (size_t)i - 1, lua_toboolean(L, 3));
  return 0;
}

/* index:file_fp(store, app_id, source, path, size, mtime_ns, inode) ->
** the stored content fingerprint while the state matches, else nil */
static int index_file_fp(lua_State *L) {
  Box *b = check_box(L);
  tide_Store *s = tide_lstore_check(L, 2);
  size_t source_len, len;
  const char *source = luaL_checklstring(L, 4, &source_len);
  const char *path = luaL_checklstring(L, 5, &len);
  const uint8_t *fp;
  if (tide_index_load_source(b->ix, s, luaL_checkinteger(L, 3), source,
                             source_len) != 0)
    return luaL_error(L, "%s", tide_index_errmsg(b->ix));
  fp = tide_index_file_fp(b->ix, source, source_len, path, len,
                          luaL_checkinteger(L, 6), luaL_checkinteger(L, 7),
                          luaL_checkinteger(L, 8));
  if (fp == NULL) return 0;
  lua_pushlstring(L, (const char *)fp, TIDE_FP_SIZE);
  return 1;
}

/* index:file_put(store, app_id, source, path, size, mtime_ns, inode, fp) */
static int index_file_put(lua_State *L) {
  Box *b = check_box(L);
  tide_Store *s = tide_lstore_check(L, 2);
  lua_Integer app_id = luaL_checkinteger(L, 3);
  size_t source_len, path_len, fp_len;
  const char *source = luaL_checklstring(L, 4, &source_len);
  const char *path = luaL_checklstring(L, 5, &path_len);
  const char *fp = luaL_checklstring(L, 9, &fp_len);
  luaL_argcheck(L, fp_len == TIDE_FP_SIZE, 9, "16-byte fingerprint expected");
  if (tide_index_load_source(b->ix, s, app_id, source, source_len) != 0 ||
      tide_index_file_put(b->ix, s, app_id, source, source_len, path,
                          path_len, luaL_checkinteger(L, 6),
                          luaL_checkinteger(L, 7), luaL_checkinteger(L, 8),
                          (const uint8_t *)fp) != 0)
    return luaL_error(L, "%s", tide_index_errmsg(b->ix));
  return 0;
}

/* A required string field of the table at t and its length, which counts
** any NUL bytes in it. [-0, +0, v] */
static const char *field_string(lua_State *L, int t, const char *k,
                                size_t *len) {
  const char *v;
  lua_getfield(L, t, k);
  v = luaL_optlstring(L, -1, NULL, len);
  lua_pop(L, 1); /* the table keeps the string */
  if (v == NULL) luaL_error(L, "index:walk: field %s is required", k);
  return v;
}

/* index:walk{ store, app_id, dir, source, base, logic, file_type, extra,
** nargs, include, exclude, follow_symlinks, ready, changes, read_ahead }
** -> changed, unchanged
** where changed is a cursor over the files the engine must mount (a copy
** of the walk's compact records: a Lua table is made per file only when
** the engine takes it, changed:next), which also computes the input of a
** file the walk did not read (changed:input), and unchanged the number of
** files carried over. include and exclude are the walk's compiled sets
** (fs.Walk:globs()), or pattern lists compiled here. ready, a function,
** is called once the index is loaded, before the walk reads it: while it
** loads, the folder is listed. changes, a list of relative paths, makes
** it the live walk of what changed (tide_index_walk_changes), which walks
** the whole folder when it must. read_ahead = false: changed:next does
** not read the files ahead (readahead.h). */
static int index_walk(lua_State *L) {
  Box *b = walk_box(L);
  tide_IndexWalk spec;
  tide_IndexListing listing, *listed = NULL;
  int changes = 0, read_ahead;
  size_t dir_len, logic_len, unchanged = 0, at;
  tide_IndexChanged c;
  Changed *cur;
  int rc;
  luaL_checktype(L, 2, LUA_TTABLE);
  memset(&spec, 0, sizeof spec);
  lua_getfield(L, 2, "store");
  spec.store = tide_lstore_check(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 2, "app_id");
  spec.app_id = luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  spec.dir = field_string(L, 2, "dir", &dir_len);
  if (strlen(spec.dir) != dir_len)
    luaL_error(L, "index:walk: dir contains a NUL byte");
  spec.source = field_string(L, 2, "source", &spec.source_len);
  spec.base = field_string(L, 2, "base", &spec.base_len);
  spec.file_type = field_string(L, 2, "file_type", &spec.file_type_len);
  lua_getfield(L, 2, "logic");
  spec.logic = (const uint8_t *)luaL_checklstring(L, -1, &logic_len);
  luaL_argcheck(L, logic_len == TIDE_FP_SIZE, 2, "logic: 16 bytes expected");
  lua_pop(L, 1);
  lua_getfield(L, 2, "extra");
  spec.extra = luaL_optlstring(L, -1, "", &spec.extra_len);
  lua_pop(L, 1);
  lua_getfield(L, 2, "nargs");
  spec.nargs = (int)luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 2, "follow_symlinks");
  spec.flags = lua_toboolean(L, -1) ? TIDE_WALK_FOLLOW_SYMLINKS : 0;
  lua_pop(L, 1);
  lua_getfield(L, 2, "read_ahead");
  read_ahead = lua_isnil(L, -1) || lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 2, "include");
  spec.include = tide_lfs_globs(L, -1);
  lua_getfield(L, 2, "exclude");
  spec.exclude = tide_lfs_globs(L, -1);
  lua_getfield(L, 2, "changes");
  if (!lua_isnil(L, -1)) {
    luaL_checktype(L, -1, LUA_TTABLE);
    changes = lua_gettop(L);
  }
  b->changed.len = 0;
  if (!changes && tide_index_loading(b->ix)) {
    void *ud;
    lua_Alloc alloc = lua_getallocf(L, &ud);
    tide_buf_init(&listing.entries, alloc, ud);
    if (tide_index_list(&b->walker, &spec, &listing) == TIDE_ENOMEM) {
      tide_buf_close(&listing.entries);
      return luaL_error(L, "out of memory");
    }
    listed = &listing;
  }
  if (tide_index_wait(b->ix) != 0) {
    if (listed) tide_buf_close(&listing.entries);
    return luaL_error(L, "%s", tide_index_errmsg(b->ix));
  }
  lua_getfield(L, 2, "ready");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
  } else if (listed) {
    /* The listing must be freed should ready raise. */
    int ok = lua_pcall(L, 0, 0, 0) == LUA_OK;
    if (!ok) {
      tide_buf_close(&listing.entries);
      return lua_error(L);
    }
  } else {
    lua_call(L, 0, 0);
  }
  rc = 1;
  if (changes) {
    size_t n = (size_t)luaL_len(L, changes), i;
    const char **paths = lua_newuserdatauv(
      L, (n ? n : 1) * (sizeof *paths + sizeof(size_t)), 0);
    size_t *lens = (size_t *)(paths + (n ? n : 1));
    for (i = 0; i < n; i++) {
      if (lua_geti(L, changes, (lua_Integer)i + 1) != LUA_TSTRING)
        return luaL_error(L, "index:walk: changes[%d] is not a string",
                          (int)i + 1);
      paths[i] = lua_tolstring(L, -1, &lens[i]);
      lua_pop(L, 1); /* the table keeps the string */
    }
    rc = tide_index_walk_changes(b->ix, &b->walker, &spec, paths, lens, n,
                                 &b->changed, &unchanged);
  }
  if (rc == 1)
    rc = tide_index_walk(b->ix, &b->walker, &spec, listed, &b->changed,
                         &unchanged);
  if (listed) tide_buf_close(&listing.entries);
  if (rc != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, tide_index_errmsg(b->ix));
    return 2;
  }
  cur = lua_newuserdatauv(L, sizeof *cur + spec.file_type_len
                                + spec.extra_len, 0);
  memset(cur, 0, sizeof *cur);
  luaL_setmetatable(L, CHANGED_TYPE);
  {
    /* The records move to the cursor, which frees them when collected;
    ** the index starts the next walk with an empty buffer. */
    void *ud;
    lua_Alloc alloc = lua_getallocf(L, &ud);
    cur->records = b->changed;
    tide_buf_init(&b->changed, alloc, ud);
    tide_buf_init(&cur->scratch, alloc, ud);
  }
  {
    char *strings = (char *)(cur + 1);
    memcpy(strings, spec.file_type, spec.file_type_len);
    if (spec.extra_len > 0)
      memcpy(strings + spec.file_type_len, spec.extra, spec.extra_len);
    cur->spec.file_type = strings;
    cur->spec.file_type_len = spec.file_type_len;
    cur->spec.extra = strings + spec.file_type_len;
    cur->spec.extra_len = spec.extra_len;
    cur->spec.nargs = spec.nargs;
  }
  for (at = 0; at < cur->records.len; at += record_size(&c)) {
    memcpy(&c, cur->records.data + at, sizeof c);
    if (c.kind == TIDE_WALK_FILE) cur->files++;
  }
  if (read_ahead) {
    void *ud;
    lua_Alloc alloc = lua_getallocf(L, &ud);
    /* Without its memory the files are read as they are taken. */
    cur->ahead_on = 1;
    tide_readahead_init(&cur->ahead, spec.dir, dir_len, ahead_next, cur,
                        alloc, ud);
  }
  lua_pushinteger(L, (lua_Integer)unchanged);
  return 2;
}

static int changed_gc(lua_State *L) {
  Changed *cur = luaL_checkudata(L, 1, CHANGED_TYPE);
  if (cur->ahead_on) tide_readahead_close(&cur->ahead);
  cur->ahead_on = 0;
  tide_buf_close(&cur->records);
  tide_buf_close(&cur->scratch);
  return 0;
}

/* changed:input(abs, content_fp) -> the input fingerprint of the
** component of the file at abs with that content, computed as the walk
** computes it for the files it reads (tide_index_file_input). */
static int changed_input(lua_State *L) {
  Changed *cur = luaL_checkudata(L, 1, CHANGED_TYPE);
  size_t abs_len, fp_len;
  const char *abs = luaL_checklstring(L, 2, &abs_len);
  const char *fp = luaL_checklstring(L, 3, &fp_len);
  uint8_t input[TIDE_FP_SIZE];
  luaL_argcheck(L, fp_len == TIDE_FP_SIZE, 3, "16 bytes expected");
  if (tide_index_file_input(&cur->scratch, &cur->spec, abs, abs_len,
                            (const uint8_t *)fp, input) != 0)
    return luaL_error(L, "out of memory");
  lua_pushlstring(L, (const char *)input, TIDE_FP_SIZE);
  return 1;
}

/* changed:files() -> how many records are files (the others are errors). */
static int changed_files(lua_State *L) {
  Changed *cur = luaL_checkudata(L, 1, CHANGED_TYPE);
  lua_pushinteger(L, (lua_Integer)cur->files);
  return 1;
}

/* changed:next(File, dir) -> the next file as a File (metatable File) {
** path, dir, abs, size, mtime, mtime_ns, inode, _walk }, where _walk is
** true for a file the walk did not read, else the component's input
** fingerprint (absent for a file that could not be read: its component
** fails reading it); a file the walk did not read but the read-ahead did
** has its bytes in _content and their fingerprint in _content_fp (fs.lua
** reads them from there); or false, path, errno for a part the walk
** could not read;
** or nil at the end. */
static int changed_next(lua_State *L) {
  Changed *cur = luaL_checkudata(L, 1, CHANGED_TYPE);
  size_t dir_len;
  const char *dir = luaL_checklstring(L, 3, &dir_len);
  const unsigned char *data = cur->records.data;
  tide_IndexChanged c;
  const char *path;
  luaL_Buffer abs;
  size_t at;
  luaL_checktype(L, 2, LUA_TTABLE);
  if (cur->at >= cur->records.len) {
    /* The end: the read-ahead's thread and buffers go now. */
    if (cur->ahead_on) tide_readahead_close(&cur->ahead);
    cur->ahead_on = 0;
    return 0;
  }
  at = cur->at;
  memcpy(&c, data + at, sizeof c);
  path = (const char *)data + at + sizeof c;
  cur->at += record_size(&c);
  if (c.kind != TIDE_WALK_FILE) {
    lua_pushboolean(L, 0);
    lua_pushlstring(L, path, c.len);
    lua_pushinteger(L, c.error);
    return 3;
  }
  lua_createtable(L, 0, c.deferred ? 10 : 8);
  lua_pushlstring(L, path, c.len);
  lua_setfield(L, -2, "path");
  lua_pushvalue(L, 3);
  lua_setfield(L, -2, "dir");
  luaL_buffinit(L, &abs);
  luaL_addlstring(&abs, dir, dir_len);
  luaL_addchar(&abs, '/');
  luaL_addlstring(&abs, path, c.len);
  luaL_pushresult(&abs);
  lua_setfield(L, -2, "abs");
  lua_pushinteger(L, c.size);
  lua_setfield(L, -2, "size");
  lua_pushnumber(L, (lua_Number)c.mtime_ns / 1e9);
  lua_setfield(L, -2, "mtime");
  lua_pushinteger(L, c.mtime_ns);
  lua_setfield(L, -2, "mtime_ns");
  lua_pushinteger(L, c.inode);
  lua_setfield(L, -2, "inode");
  if (c.deferred) {
    const uint8_t *bytes, *fp;
    size_t len;
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "_walk");
    if (cur->ahead_on &&
        tide_readahead_take(&cur->ahead, at, &bytes, &len, &fp)) {
      lua_pushlstring(L, (const char *)bytes, len);
      lua_setfield(L, -2, "_content");
      lua_pushlstring(L, (const char *)fp, TIDE_FP_SIZE);
      lua_setfield(L, -2, "_content_fp");
    }
  } else if (c.has_fp) {
    lua_pushlstring(L, (const char *)c.input, TIDE_FP_SIZE);
    lua_setfield(L, -2, "_walk");
  }
  lua_pushvalue(L, 2);
  lua_setmetatable(L, -2);
  return 1;
}

/* ---- Eaches: mount_each over a keyed source (index_each.h) ---- */

typedef struct {
  tide_IndexEach each;
  int open;
} EachBox;

static int each_gc(lua_State *L) {
  EachBox *e = luaL_checkudata(L, 1, EACH_TYPE);
  if (e->open) tide_index_each_close(&e->each);
  e->open = 0;
  return 0;
}

tide_IndexEach *tide_lindex_check_each(lua_State *L, int idx) {
  EachBox *e = luaL_checkudata(L, idx, EACH_TYPE);
  Box *b;
  lua_getiuservalue(L, idx, 1);
  b = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!e->open || b == NULL || b->ix != e->each.ix)
    luaL_error(L, "the index of this each is closed");
  return &e->each;
}

/* index:each(base, logic, nargs, extra) -> an each for mount_each over a
** keyed source: components at base of a fn of that logic fingerprint,
** called with nargs arguments whose extra ones encode as extra. */
static int index_each(lua_State *L) {
  Box *b = check_box(L);
  size_t base_len, logic_len, extra_len;
  const char *base = luaL_checklstring(L, 2, &base_len);
  const char *logic = luaL_checklstring(L, 3, &logic_len);
  lua_Integer nargs = luaL_checkinteger(L, 4);
  const char *extra = luaL_checklstring(L, 5, &extra_len);
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  EachBox *e;
  luaL_argcheck(L, logic_len == TIDE_FP_SIZE, 3,
                "16-byte fingerprint expected");
  luaL_argcheck(L, nargs >= 1 && nargs <= 0xffff, 4, "bad count");
  e = lua_newuserdatauv(L, sizeof *e, 1);
  e->open = 0;
  luaL_setmetatable(L, EACH_TYPE);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1); /* the index outlives the each */
  e->open = 1;
  if (tide_index_each_init(&e->each, b->ix, base, base_len,
                           (const uint8_t *)logic, (int)nargs, extra,
                           extra_len, alloc, ud) != 0)
    return luaL_error(L, "out of memory");
  return 1;
}

/* each:count() -> how many items were carried over */
static int each_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)tide_lindex_check_each(L, 1)->carried);
  return 1;
}

/* each:first(key) -> the number key was listed with, or nil */
static int each_first(lua_State *L) {
  tide_IndexEach *c = tide_lindex_check_each(L, 1);
  size_t len;
  const char *key = luaL_checklstring(L, 2, &len);
  int64_t n;
  if (tide_index_each_find(c, key, len) != 0)
    return luaL_error(L, "out of memory");
  n = tide_index_each_first(c);
  if (n == 0) return 0;
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* each:list(key, n): key came from line or row n (> 0) */
static int each_list(lua_State *L) {
  tide_IndexEach *c = tide_lindex_check_each(L, 1);
  size_t len;
  const char *key = luaL_checklstring(L, 2, &len);
  lua_Integer n = luaL_checkinteger(L, 3);
  luaL_argcheck(L, n > 0, 3, "positive number expected");
  if (tide_index_each_find(c, key, len) != 0 ||
      tide_index_each_list(c, (int64_t)n) != 0)
    return luaL_error(L, "out of memory");
  return 0;
}

void tide_lindex_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"load", index_load}, {"count", index_count}, {"prev", index_prev},
    {"path_of", index_path_of},
    {"close", index_gc},
    {"seen", index_seen}, {"mark", index_mark}, {"force", index_force},
    {"keep_subtree", index_keep_subtree}, {"keep_below", index_keep_below},
    {"unkeep_below", index_unkeep_below},
    {"failed_below", index_failed_below},
    {"unseen", index_unseen},
    {"carry", index_carry},
    {"has_unseen_below", index_has_unseen_below},
    {"holds", index_holds},
    {"deps", index_deps}, {"set_deps_valid", index_set_deps_valid},
    {"cool", index_cool}, {"scope", index_scope},
    {"load_under", index_load_under}, {"reload_under", index_reload_under},
    {"file_fp", index_file_fp}, {"file_put", index_file_put},
    {"walk", index_walk}, {"each", index_each}, {NULL, NULL},
  };
  static const luaL_Reg each_methods[] = {
    {"count", each_count}, {"first", each_first}, {"list", each_list},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, INDEX_TYPE)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, index_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, CHANGED_TYPE)) {
    static const luaL_Reg changed_methods[] = {
      {"next", changed_next}, {"files", changed_files},
      {"input", changed_input}, {NULL, NULL},
    };
    luaL_newlib(L, changed_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, changed_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, EACH_TYPE)) {
    luaL_newlib(L, each_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, each_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, index_new);
  lua_setfield(L, -2, "index_new");
}
