/*
** Lua binding of globs, the walker and the file operations: the C half of
** tide.fs. Runtime failures return nil and a message (a file that cannot
** be read or written, a folder that cannot be walked, a bad pattern for
** fs_glob); misuse raises (a pattern or path that is not a string or
** holds a NUL byte, a set that failed to compile); out of memory raises.
*/
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <lua.h>

#include "buf.h"
#include "error.h"
#include "glob.h"
#include "lcore.h"
#include "utf8.h"
#include "walk.h"

#define GLOB_TYPE "tide.GlobSet"
#define WALK_TYPE "tide.WalkScratch"
#define BUF_TYPE "tide.ReadBuffer"

/* A path argument: a string without NUL bytes, which C would cut short.
** [-0, +0, v] */
static const char *check_path(lua_State *L, int idx) {
  size_t len;
  const char *s = luaL_checklstring(L, idx, &len);
  if (strlen(s) != len) luaL_argerror(L, idx, "path contains a NUL byte");
  return s;
}

static int push_fail(lua_State *L, const char *msg) {
  luaL_pushfail(L);
  lua_pushstring(L, msg);
  return 2;
}

/* Globs. */

typedef struct {
  tide_GlobSet *set; /* owned */
} Glob;

static int glob_gc(lua_State *L) {
  Glob *g = luaL_checkudata(L, 1, GLOB_TYPE);
  tide_glob_free(g->set);
  g->set = NULL;
  return 0;
}

static const tide_GlobSet *check_glob(lua_State *L, int idx) {
  Glob *g = luaL_checkudata(L, idx, GLOB_TYPE);
  luaL_argcheck(L, g->set != NULL, idx, "glob set failed to compile");
  return g->set;
}

/* set:match(path [, is_dir [, parents]]): whether the last pattern that
** matches the path (or, with parents, one of its parent directories) is
** not a negation (see glob.h). */
static int glob_match(lua_State *L) {
  const tide_GlobSet *set = check_glob(L, 1);
  size_t len;
  const char *path = luaL_checklstring(L, 2, &len);
  int flags = (lua_toboolean(L, 3) ? TIDE_GLOB_DIR : 0) |
              (lua_toboolean(L, 4) ? TIDE_GLOB_PARENTS : 0), winner;
  if (tide_glob_decide(set, path, len, flags, &winner) != 0)
    return luaL_error(L, "%s", tide_strerror(TIDE_ENOMEM));
  lua_pushboolean(L, winner >= 0 && !tide_glob_negated(set, winner));
  return 1;
}

/* fs_selects(include, exclude, path): whether fs_walk with these sets (nil
** for none) would report the file at the relative path. */
static int fs_selects(lua_State *L) {
  const tide_GlobSet *include = lua_isnil(L, 1) ? NULL : check_glob(L, 1);
  const tide_GlobSet *exclude = lua_isnil(L, 2) ? NULL : check_glob(L, 2);
  size_t len;
  const char *path = luaL_checklstring(L, 3, &len);
  int rc = tide_walk_selects(include, exclude, path, len);
  if (rc < 0) return luaL_error(L, "%s", tide_strerror(rc));
  lua_pushboolean(L, rc);
  return 1;
}

/* Compiles the list of patterns at idx into a new set userdata, pushed;
** returns NULL with the message in err when a pattern is bad. Misuse (a
** pattern that is not a string or holds a NUL) raises. The one place
** tide compiles globs. [-0, +1, e] */
static const tide_GlobSet *compile(lua_State *L, int idx, char *err,
                                   size_t errlen) {
  lua_Integer n, i;
  const char **patterns;
  Glob *g;
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  idx = lua_absindex(L, idx);
  n = luaL_len(L, idx);
  patterns = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *patterns,
                               0);
  for (i = 1; i <= n; i++) {
    size_t len;
    if (lua_geti(L, idx, i) != LUA_TSTRING)
      luaL_error(L, "pattern %d is a %s, not a string", (int)i,
                 luaL_typename(L, -1));
    patterns[i - 1] = lua_tolstring(L, -1, &len);
    if (strlen(patterns[i - 1]) != len)
      luaL_error(L, "pattern %d contains a NUL byte", (int)i);
    lua_pop(L, 1); /* the table keeps the string alive */
  }
  g = lua_newuserdatauv(L, sizeof *g, 0);
  g->set = NULL;
  if (luaL_newmetatable(L, GLOB_TYPE)) {
    lua_pushcfunction(L, glob_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    lua_pushcfunction(L, glob_match);
    lua_setfield(L, -2, "match");
    lua_setfield(L, -2, "__index");
  }
  lua_setmetatable(L, -2);
  lua_remove(L, -2); /* the pattern array */
  if (tide_glob_new(&g->set, patterns, (size_t)n, alloc, ud, err, errlen))
    return NULL;
  return g->set;
}

const tide_GlobSet *tide_lfs_globs(lua_State *L, int idx) {
  char err[512];
  const tide_GlobSet *set;
  idx = lua_absindex(L, idx);
  if (lua_isnoneornil(L, idx) ||
      (lua_type(L, idx) == LUA_TTABLE && luaL_len(L, idx) == 0)) {
    lua_pushnil(L);
    return NULL;
  }
  if (lua_type(L, idx) == LUA_TUSERDATA) {
    set = check_glob(L, idx);
    lua_pushvalue(L, idx);
    return set;
  }
  luaL_checktype(L, idx, LUA_TTABLE);
  if ((set = compile(L, idx, err, sizeof err)) == NULL)
    luaL_error(L, "%s", err);
  return set;
}

/* fs_glob(patterns): a compiled set, or nil and a message naming the bad
** pattern. */
static int fs_glob(lua_State *L) {
  char err[512];
  luaL_checktype(L, 1, LUA_TTABLE);
  if (compile(L, 1, err, sizeof err) == NULL) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

/* Walking. The walk first records its entries in C (a callback must not
** raise through the walker, which holds open directories), then builds the
** Lua objects. */

typedef struct {
  int kind, error;
  uint64_t size, inode, dev;
  int64_t mtime_ns;
  size_t len; /* the path's bytes follow the record, then padding */
} Record;

typedef struct {
  tide_Walker walker;
  tide_Buf records;
} Scratch;

static int scratch_gc(lua_State *L) {
  Scratch *s = luaL_checkudata(L, 1, WALK_TYPE);
  tide_walker_close(&s->walker);
  tide_buf_close(&s->records);
  return 0;
}

/* A record and its path, rounded up so the next record is aligned. */
static size_t record_size(size_t len) {
  size_t align = _Alignof(Record);
  return (sizeof(Record) + len + align - 1) / align * align;
}

static int record_entry(void *ud, const tide_WalkEntry *e) {
  tide_Buf *b = ud;
  size_t at = b->len, size = record_size(e->len);
  Record *r;
  int rc = tide_buf_reserve(b, size);
  if (rc) return rc;
  r = (Record *)(b->data + at);
  r->kind = e->kind;
  r->error = e->error;
  r->size = e->size;
  r->inode = e->inode;
  r->dev = e->dev;
  r->mtime_ns = e->mtime_ns;
  r->len = e->len;
  memcpy(r + 1, e->path, e->len);
  b->len += size;
  return 0;
}

static Scratch *new_scratch(lua_State *L) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  Scratch *s = lua_newuserdatauv(L, sizeof *s, 0);
  tide_walker_init(&s->walker, alloc, ud);
  tide_buf_init(&s->records, alloc, ud);
  if (luaL_newmetatable(L, WALK_TYPE)) {
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return s;
}

/* Pushes the file object of a record: a table with the file metatable at
** index mt, dir the walked directory at index dir. [-0, +1, m] */
static void push_file(lua_State *L, const Record *r, int dir, int mt) {
  size_t dirlen;
  const char *d = lua_tolstring(L, dir, &dirlen);
  lua_createtable(L, 0, 7); /* 7 fields: 8 hash slots, not 16 */
  lua_pushlstring(L, (const char *)(r + 1), r->len);
  lua_setfield(L, -2, "path");
  lua_pushvalue(L, dir);
  lua_setfield(L, -2, "dir");
  lua_pushvalue(L, dir);
  lua_pushstring(L, dirlen > 0 && d[dirlen - 1] == '/' ? "" : "/");
  lua_pushlstring(L, (const char *)(r + 1), r->len);
  lua_concat(L, 3);
  lua_setfield(L, -2, "abs");
  lua_pushinteger(L, (lua_Integer)r->size);
  lua_setfield(L, -2, "size");
  lua_pushnumber(L, (lua_Number)r->mtime_ns / 1e9);
  lua_setfield(L, -2, "mtime");
  lua_pushinteger(L, (lua_Integer)r->mtime_ns);
  lua_setfield(L, -2, "mtime_ns");
  lua_pushinteger(L, (lua_Integer)r->inode);
  lua_setfield(L, -2, "inode");
  lua_pushvalue(L, mt);
  lua_setmetatable(L, -2);
}

/* fs_walk(dir, include, exclude, follow, file_mt): the list of file
** objects in walk order and, when some directory or file could not be
** read, a list of { path, message }; or nil and a message when dir cannot
** be walked at all. include and exclude are compiled sets or nil. */
static int fs_walk(lua_State *L) {
  const char *dir = check_path(L, 1);
  const tide_GlobSet *include = lua_isnoneornil(L, 2) ? NULL
                                                      : check_glob(L, 2);
  const tide_GlobSet *exclude = lua_isnoneornil(L, 3) ? NULL
                                                      : check_glob(L, 3);
  int flags = lua_toboolean(L, 4) ? TIDE_WALK_FOLLOW_SYMLINKS : 0;
  Scratch *s;
  size_t at;
  lua_Integer nfiles = 0, nerrors = 0;
  int rc;
  luaL_checktype(L, 5, LUA_TTABLE);
  lua_settop(L, 5);
  s = new_scratch(L); /* 6 */
  rc = tide_walker_run(&s->walker, dir, include, exclude, flags,
                       record_entry, &s->records);
  if (rc == TIDE_ENOMEM) return luaL_error(L, "%s", tide_strerror(rc));
  if (rc != 0) return push_fail(L, s->walker.err);
  lua_newtable(L); /* 7: files */
  lua_newtable(L); /* 8: errors */
  for (at = 0; at < s->records.len;) {
    const Record *r = (const Record *)(s->records.data + at);
    if (r->kind == TIDE_WALK_FILE) {
      push_file(L, r, 1, 5);
      lua_rawseti(L, 7, ++nfiles);
    } else {
      char text[TIDE_ERRNO_TEXT_SIZE];
      lua_createtable(L, 0, 2);
      lua_pushlstring(L, (const char *)(r + 1), r->len);
      lua_setfield(L, -2, "path");
      lua_pushstring(L, tide_error_errno_text(r->error, text, sizeof text));
      lua_setfield(L, -2, "message");
      lua_rawseti(L, 8, ++nerrors);
    }
    at += record_size(r->len);
  }
  if (nerrors == 0) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  return 2;
}

/* fs_file(dir, relpath, file_mt): the file object of dir/relpath, as a
** walk of dir would make it (its state read by stat, following a
** symbolic link), or nil and "dir/relpath: reason" when it is not a
** regular file that can be read. What a worker of a shared update makes
** of an item another process listed. */
static int fs_file(lua_State *L) {
  size_t dirlen, len;
  const char *dir = luaL_checklstring(L, 1, &dirlen);
  const char *rel = luaL_checklstring(L, 2, &len);
  struct {
    Record r;
    char path[4096];
  } entry;
  struct stat st;
  char text[TIDE_ERRNO_TEXT_SIZE];
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  if (len >= sizeof entry.path || strlen(rel) != len)
    return luaL_argerror(L, 2, "a relative path expected");
  lua_pushfstring(L, "%s%s%s", dir,
                  dirlen > 0 && dir[dirlen - 1] == '/' ? "" : "/", rel);
  if (stat(lua_tostring(L, -1), &st) != 0)
    return push_fail(L, lua_pushfstring(L, "%s: %s", lua_tostring(L, -1),
                                        tide_error_errno_text(errno, text,
                                                              sizeof text)));
  if (!S_ISREG(st.st_mode))
    return push_fail(L, lua_pushfstring(L, "%s: not a regular file",
                                        lua_tostring(L, -1)));
  memset(&entry.r, 0, sizeof entry.r);
  entry.r.kind = TIDE_WALK_FILE;
  entry.r.size = (uint64_t)st.st_size;
  entry.r.inode = (uint64_t)st.st_ino;
  entry.r.dev = (uint64_t)st.st_dev;
  entry.r.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
                     st.st_mtim.tv_nsec;
  entry.r.len = len;
  memcpy(entry.path, rel, len);
  push_file(L, &entry.r, 1, 3);
  return 1;
}

/* File operations. */

static int buf_gc(lua_State *L) {
  tide_buf_close(luaL_checkudata(L, 1, BUF_TYPE));
  return 0;
}

/* fs_read(path): the file's bytes, or nil and "PATH: reason". */
static int fs_read(lua_State *L) {
  const char *path = check_path(L, 1);
  char err[512];
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  tide_Buf *b = lua_newuserdatauv(L, sizeof *b, 0);
  int rc;
  tide_buf_init(b, alloc, ud);
  if (luaL_newmetatable(L, BUF_TYPE)) {
    lua_pushcfunction(L, buf_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  if ((rc = tide_file_read(path, b, err, sizeof err)) != 0) {
    if (rc == TIDE_ENOMEM) return luaL_error(L, "%s", err);
    return push_fail(L, err);
  }
  lua_pushlstring(L, (const char *)b->data, b->len);
  tide_buf_close(b);
  return 1;
}

/* utf8_clean(s): s as UTF-8 text: a leading byte order mark dropped, each
** byte that starts no valid sequence replaced by U+FFFD. Valid text
** without a mark is s itself, not a copy (a file's whole content). */
static int utf8_clean(lua_State *L) {
  size_t len, i, n;
  const uint8_t *s = (const uint8_t *)luaL_checklstring(L, 1, &len);
  int bom = len >= 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf;
  luaL_Buffer b;
  if (bom) {
    s += 3;
    len -= 3;
  }
  if (tide_utf8_valid(s, len)) {
    if (bom)
      lua_pushlstring(L, (const char *)s, len);
    else
      lua_settop(L, 1);
    return 1;
  }
  luaL_buffinit(L, &b);
  for (i = 0; i < len; i += n) {
    n = tide_utf8_seqlen(s + i, len - i);
    if (n == 0) {
      luaL_addlstring(&b, "\xef\xbf\xbd", 3);
      n = 1;
    } else {
      luaL_addlstring(&b, (const char *)s + i, n);
    }
  }
  luaL_pushresult(&b);
  return 1;
}

/* fs_mkdir(path): mkdir -p; how many directories it created. */
static int fs_mkdir(lua_State *L) {
  const char *path = check_path(L, 1);
  char err[512];
  int created;
  if (tide_dir_make(path, &created, err, sizeof err) != 0)
    return push_fail(L, err);
  lua_pushinteger(L, created);
  return 1;
}

/* fs_remove(path): whether it removed the file (false: there was none). */
static int fs_remove(lua_State *L) {
  char err[512];
  int rc = tide_file_remove(check_path(L, 1), err, sizeof err);
  if (rc < 0) return push_fail(L, err);
  lua_pushboolean(L, rc);
  return 1;
}

/* fs_rmdir(path): whether it removed the directory (false: not empty or
** missing). */
static int fs_rmdir(lua_State *L) {
  char err[512];
  int rc = tide_dir_remove_if_empty(check_path(L, 1), err, sizeof err);
  if (rc < 0) return push_fail(L, err);
  lua_pushboolean(L, rc);
  return 1;
}

static int fs_abspath(lua_State *L) {
  const char *path = check_path(L, 1);
  char out[4096], err[512];
  if (tide_path_absolute(path, out, sizeof out, err, sizeof err) != 0)
    return push_fail(L, err);
  lua_pushstring(L, out);
  return 1;
}

void tide_lfs_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"fs_glob", fs_glob},
    {"fs_walk", fs_walk},
    {"fs_file", fs_file},
    {"fs_selects", fs_selects},
    {"fs_read", fs_read},
    {"fs_mkdir", fs_mkdir},
    {"fs_remove", fs_remove},
    {"fs_rmdir", fs_rmdir},
    {"fs_abspath", fs_abspath},
    {"utf8_clean", utf8_clean},
    {NULL, NULL},
  };
  luaL_setfuncs(L, funcs, 0);
}
