/* Logic fingerprints from Lua 5.4 bytecode dumps. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blake2.h>
#include <lauxlib.h>

#include "logic.h"
#include "tide.h"

/* Deeper dependency chains are cut with a fixed marker. */
#define MAX_DEPTH 100

/* Lua 5.4's OP_GETTABUP: R[A] := UpValue[B][K[C]:shortstring];
** OP_GETFIELD: R[A] := R[B][K[C]:shortstring]; OP_SELF: R[A+1] := R[B];
** R[A] := R[B][RK(C):string] (K[C] when the k bit is set). */
#define OP_GETTABUP 11
#define OP_GETFIELD 14
#define OP_SELF 20

/* Constant tags in a 5.4 dump (lobject.h's makevariant values). */
enum { K_NIL = 0, K_FALSE = 1, K_TRUE = 17, K_INT = 3, K_FLT = 19,
       K_SHRSTR = 4, K_LNGSTR = 20 };

typedef struct {
  lua_State *L;
  int cache;       /* stack index: function -> fingerprint bytes */
  int own;         /* stack index: tide's own module tables -> true */
  int depth;
  int low;         /* lowest stack level a back-reference reached */
  const void *stack[MAX_DEPTH];
  char *err;
  size_t errlen;
  int failed;
  int self_only;   /* only the function's own code, not what it reaches */
} Logic;

typedef struct {
  const uint8_t *p, *end;
  size_t int_size, num_size;
  int ok;
} Reader;

/* libb2 takes uint8_t pointers; this takes any bytes. */
static void feed(blake2b_state *st, const void *p, size_t n) {
  blake2b_update(st, (const uint8_t *)p, n);
}

/* ---- Reading a dump -------------------------------------------------- */

static size_t read_size(Reader *r) {
  size_t x = 0;
  int b;
  do {
    if (r->p >= r->end || x > (SIZE_MAX >> 7)) {
      r->ok = 0;
      return 0;
    }
    b = *r->p++;
    x = (x << 7) | (size_t)(b & 0x7f);
  } while ((b & 0x80) == 0);
  return x;
}

static const uint8_t *skip(Reader *r, size_t n) {
  const uint8_t *at = r->p;
  if (!r->ok || (size_t)(r->end - r->p) < n) {
    r->ok = 0;
    return NULL;
  }
  r->p += n;
  return at;
}

static void skip_string(Reader *r) {
  size_t n = read_size(r);
  if (n > 0) skip(r, n - 1);
}

/* Records in names (stack index) a name, once, in order of first
** appearance: each global read through an upvalue that is _ENV, or each
** member name read from a register (a.b.c, obj:method()). [-0, +0, m] */
static void note_name(lua_State *L, int names, const uint8_t *s,
                      size_t len) {
  lua_pushlstring(L, (const char *)s, len);
  if (lua_rawget(L, names) == LUA_TNIL) {
    lua_pushlstring(L, (const char *)s, len);
    lua_pushboolean(L, 1);
    lua_rawset(L, names);
    lua_pushlstring(L, (const char *)s, len);
    lua_rawseti(L, names, (lua_Integer)lua_rawlen(L, names) + 1);
  }
  lua_pop(L, 1);
}

/* Records in fields (stack index) each constant key read from the
** outermost closure's upvalue number up (from 0) that is not _ENV
** (util.head, where util is a module table), once, as "up\0key". The
** keys the closure's functions read from such a table are the helpers it
** reaches there. [-0, +0, m] */
static void note_field(lua_State *L, int fields, int up, const uint8_t *s,
                       size_t len) {
  luaL_Buffer b;
  char num[8];
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, num, (size_t)snprintf(num, sizeof num, "%d", up));
  luaL_addchar(&b, '\0');
  luaL_addlstring(&b, (const char *)s, len);
  luaL_pushresult(&b);
  lua_pushvalue(L, -1);
  if (lua_rawget(L, fields) == LUA_TNIL) {
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, fields);
    lua_pushvalue(L, -2);
    lua_rawseti(L, fields, (lua_Integer)lua_rawlen(L, fields) + 1);
  }
  lua_pop(L, 2);
}

/* Hashes one function prototype without its source name, line numbers and
** debug information, and notes the globals it reads, the keys it reads
** from the closure's other upvalues and the member names it reads from
** values in registers (members). For the outermost prototype (top),
** env[i] says whether its upvalue i is the closure's _ENV (up is unused:
** its upvalue i is the closure's i); for a nested one, env and up are its parent's, and its own follow
** from its upvalue descriptors (up: the closure's upvalue a nested one's
** is, or -1 for a local of its parent, whose value a dump cannot tell). */
static void read_proto(Logic *lg, Reader *r, blake2b_state *st,
                       const uint8_t *env, const int16_t *up, int top,
                       int names, int fields, int members) {
  size_t ncode, nk, nup, nproto, i, n;
  const uint8_t *code, *from;
  uint8_t my_env[256];
  int16_t my_up[256];
  const uint8_t **kstr;
  size_t *klen;

  skip_string(r); /* source */
  read_size(r);   /* linedefined */
  read_size(r);   /* lastlinedefined */
  from = r->p;
  skip(r, 3);     /* numparams, is_vararg, maxstacksize */
  ncode = read_size(r);
  if (!r->ok || ncode > (size_t)(r->end - r->p) / 4) {
    r->ok = 0;
    return;
  }
  code = skip(r, ncode * 4);
  nk = read_size(r);
  if (!r->ok || nk > (size_t)(r->end - r->p)) {
    r->ok = 0;
    return;
  }
  /* Where each string constant lies, for the GETTABUP scan. */
  kstr = lua_newuserdatauv(lg->L, nk * (sizeof *kstr + sizeof *klen) + 1, 0);
  klen = (size_t *)(kstr + nk);
  for (i = 0; i < nk && r->ok; i++) {
    int tag = r->p < r->end ? *r->p : -1;
    skip(r, 1);
    kstr[i] = NULL;
    if (tag == K_FLT) skip(r, r->num_size);
    else if (tag == K_INT) skip(r, r->int_size);
    else if (tag == K_SHRSTR || tag == K_LNGSTR) {
      n = read_size(r);
      klen[i] = n ? n - 1 : 0;
      kstr[i] = n ? skip(r, n - 1) : NULL;
    } else if (tag != K_NIL && tag != K_FALSE && tag != K_TRUE) {
      r->ok = 0;
    }
  }
  nup = read_size(r);
  if (!r->ok || nup > 255) {
    r->ok = 0;
    lua_pop(lg->L, 1);
    return;
  }
  for (i = 0; i < nup && r->ok; i++) {
    const uint8_t *u = skip(r, 3); /* instack, idx, kind */
    if (u == NULL) break;
    my_env[i] = top ? env[i] : (uint8_t)(u[0] == 0 && env[u[1]]);
    my_up[i] = top ? (int16_t)i : u[0] == 0 ? up[u[1]] : -1;
  }
  if (!r->ok) {
    lua_pop(lg->L, 1);
    return;
  }
  feed(st, from, (size_t)(r->p - from));
  for (i = 0; i < ncode; i++) {
    uint32_t ins;
    memcpy(&ins, code + 4 * i, 4);
    uint32_t op = ins & 0x7f;
    size_t b = (ins >> 16) & 0xff, c = (ins >> 24) & 0xff;
    if (op == OP_GETTABUP) {
      if (b < nup && c < nk && kstr[c] && my_env[b])
        note_name(lg->L, names, kstr[c], klen[c]);
      else if (b < nup && c < nk && kstr[c] && my_up[b] >= 0)
        note_field(lg->L, fields, my_up[b], kstr[c], klen[c]);
    } else if ((op == OP_GETFIELD || (op == OP_SELF && (ins >> 15) & 1)) &&
               c < nk && kstr[c]) {
      note_name(lg->L, members, kstr[c], klen[c]);
    }
  }
  lua_pop(lg->L, 1);
  nproto = read_size(r);
  for (i = 0; i < nproto && r->ok; i++)
    read_proto(lg, r, st, my_env, my_up, 0, names, fields, members);
  /* Debug information: absent when stripped, skipped in any case. */
  n = read_size(r);
  skip(r, n);
  n = read_size(r);
  for (i = 0; i < n && r->ok; i++) read_size(r), read_size(r);
  n = read_size(r);
  for (i = 0; i < n && r->ok; i++)
    skip_string(r), read_size(r), read_size(r);
  n = read_size(r);
  for (i = 0; i < n && r->ok; i++) skip_string(r);
}

/* A dump's text, gathered as lstrlib's string.dump does: the buffer is
** opened at the first piece, above the function being dumped, so that
** the buffer's box stays on top of the stack as it grows (a buffer opened
** below the function would grow into the function's slot once the dump
** passed LUAL_BUFFERSIZE bytes). */
typedef struct {
  luaL_Buffer b;
  int open;
} Dump;

static int dump_writer(lua_State *L, const void *p, size_t n, void *ud) {
  Dump *d = ud;
  if (!d->open) {
    d->open = 1;
    luaL_buffinit(L, &d->b);
  }
  luaL_addlstring(&d->b, (const char *)p, n);
  return 0;
}

/* ---- The dependency walk --------------------------------------------- */

static void fp_value(Logic *lg, int idx, blake2b_state *st, char kind,
                     const char *name, size_t name_len);

static void fp_marker(uint8_t out[TIDE_FP_SIZE], const char *what, int n) {
  char text[64];
  int len = snprintf(text, sizeof text, "%s %d", what, n);
  blake2b(out, text, NULL, TIDE_FP_SIZE, (size_t)len, 0);
}

/* The top-level prototype's _ENV upvalues, by the closure's names. */
static void closure_env(lua_State *L, int f, uint8_t env[256], int *env_up) {
  int i;
  const char *name;
  memset(env, 0, 256);
  *env_up = 0;
  for (i = 1; i <= 255 && (name = lua_getupvalue(L, f, i)) != NULL; i++) {
    lua_pop(L, 1);
    if (strcmp(name, "_ENV") == 0) {
      env[i - 1] = 1;
      if (*env_up == 0) *env_up = i;
    }
  }
}

/* Pushes the global named by the string at `name` as seen from the table
** at env, following __index tables but never calling a metamethod.
** [-0, +1, -] */
static void lookup_global(lua_State *L, int env, int name) {
  int hops;
  lua_pushvalue(L, env);
  for (hops = 0;; hops++) {
    lua_pushvalue(L, name);
    if (lua_rawget(L, -2) != LUA_TNIL || hops == 8) break;
    lua_pop(L, 1);
    if (!lua_getmetatable(L, -1)) {
      lua_pushnil(L);
      break;
    }
    lua_pushliteral(L, "__index");
    if (lua_rawget(L, -2) != LUA_TTABLE) {
      lua_pop(L, 2);
      lua_pushnil(L);
      break;
    }
    lua_remove(L, -2); /* the metatable */
    lua_remove(L, -2); /* the table that missed */
  }
  lua_remove(L, -2);
}

/* Adds the Lua functions the table at t holds under the member names the
** function reads (members: a.b.c, obj:method()), each by its fingerprint,
** after where (which table it is): a class's methods, a sub-module's
** helpers. Read raw, so no metamethod runs and no __index leads into
** tide's own classes; nothing for one of tide's own modules or a value
** with __tide_logic, nor for C functions, which are not the pipeline's
** logic. [-0, +0, m] */
static void fp_members(Logic *lg, int t, int members, blake2b_state *st,
                       const char *where, size_t where_len) {
  lua_State *L = lg->L;
  lua_Integer k, count = (lua_Integer)lua_rawlen(L, members);
  if (count == 0 || lua_type(L, t) != LUA_TTABLE) return;
  lua_pushvalue(L, t);
  if (lua_rawget(L, lg->own) != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  if (luaL_getmetafield(L, t, "__tide_logic") != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  for (k = 1; k <= count; k++) {
    size_t len;
    const char *name;
    lua_rawgeti(L, members, k);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, t) == LUA_TFUNCTION && !lua_iscfunction(L, -1)) {
      name = lua_tolstring(L, -2, &len);
      feed(st, "m", 1);
      feed(st, where, where_len);
      feed(st, "", 1);
      fp_value(lg, lua_gettop(L), st, 'm', name, len);
    }
    lua_pop(L, 2);
  }
}

static void fp_function(Logic *lg, int f, uint8_t out[TIDE_FP_SIZE]) {
  lua_State *L = lg->L;
  const void *self = lua_topointer(L, f);
  blake2b_state st;
  Dump dump;
  Reader r;
  uint8_t env[256];
  int i, env_up = 0, names, fields, members, saved_low, level;
  size_t len;

  if (lua_rawgetp(L, lg->cache, self) == LUA_TSTRING) {
    memcpy(out, lua_tostring(L, -1), TIDE_FP_SIZE);
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  for (i = 0; i < lg->depth; i++) {
    if (lg->stack[i] == self) {
      if (i < lg->low) lg->low = i;
      fp_marker(out, "cycle", lg->depth - i);
      return;
    }
  }
  if (lg->depth >= MAX_DEPTH || !lua_checkstack(L, 24)) {
    fp_marker(out, "deep", 0);
    return;
  }
  level = lg->depth;
  lg->stack[lg->depth++] = self;
  saved_low = lg->low;
  lg->low = INT_MAX;

  blake2b_init(&st, TIDE_FP_SIZE);
  feed(&st, "tide-logic/1 function", 21);
  lua_pushvalue(L, f);
  dump.open = 0;
  lua_dump(L, dump_writer, &dump, 1);
  if (!dump.open) luaL_buffinit(L, &dump.b);
  luaL_pushresult(&dump.b);
  lua_remove(L, -2); /* the function */
  lua_newtable(L);
  names = lua_gettop(L);
  lua_newtable(L);
  fields = lua_gettop(L);
  lua_newtable(L);
  members = lua_gettop(L);
  r.p = (const uint8_t *)lua_tolstring(L, -4, &len);
  r.end = r.p + len;
  r.ok = len > 32 && memcmp(r.p, "\x1bLua\x54\x00", 6) == 0;
  if (r.ok) {
    r.int_size = r.p[13];
    r.num_size = r.p[14];
    r.p += 15 + r.int_size + r.num_size + 1; /* header, main's nupvalues */
    closure_env(L, f, env, &env_up);
    read_proto(lg, &r, &st, env, NULL, 1, names, fields, members);
  }
  if (!r.ok && !lg->failed) {
    lg->failed = 1;
    snprintf(lg->err, lg->errlen, "cannot read the bytecode of a function");
  }
  /* Upvalues: functions by their fingerprint, scalars by value. */
  for (i = 1; !lg->self_only && lua_getupvalue(L, f, i) != NULL; i++) {
    char tag[16];
    int n = snprintf(tag, sizeof tag, "upvalue %d", i);
    fp_value(lg, lua_gettop(L), &st, 'u', tag, (size_t)n);
    lua_pop(L, 1);
  }
  /* Globals read through _ENV, resolved by name. */
  if (r.ok && env_up > 0 && !lg->self_only) {
    lua_getupvalue(L, f, env_up);
    if (lua_type(L, -1) == LUA_TTABLE) {
      int envt = lua_gettop(L);
      lua_Integer k, count = (lua_Integer)lua_rawlen(L, names);
      for (k = 1; k <= count; k++) {
        const char *gname;
        size_t glen;
        lua_rawgeti(L, names, k);
        gname = lua_tolstring(L, -1, &glen);
        lookup_global(L, envt, lua_gettop(L));
        fp_value(lg, lua_gettop(L), &st, 'g', gname, glen);
        lua_pop(L, 2);
      }
    }
    lua_pop(L, 1);
  }
  /* Functions read by key from a table upvalue (util.head): a module's
  ** helpers, each by its fingerprint. Its other values are not logic: a
  ** table a function reads is often one it writes too (a counter). */
  if (r.ok && !lg->self_only) {
    lua_Integer k, count = (lua_Integer)lua_rawlen(L, fields);
    for (k = 1; k <= count; k++) {
      size_t flen, ulen;
      const char *field;
      lua_rawgeti(L, fields, k);
      field = lua_tolstring(L, -1, &flen);
      ulen = strlen(field);
      lua_getupvalue(L, f, atoi(field) + 1);
      lua_pushvalue(L, -1);
      if (lua_rawget(L, lg->own) != LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushnil(L); /* tide's own code is not the pipeline's logic */
        lua_replace(L, -2);
      } else {
        lua_pop(L, 1);
      }
      if (lua_type(L, -1) == LUA_TTABLE &&
          luaL_getmetafield(L, -1, "__tide_logic") == LUA_TNIL) {
        lua_pushlstring(L, field + ulen + 1, flen - ulen - 1);
        lookup_global(L, lua_gettop(L) - 1, lua_gettop(L));
        if (lua_type(L, -1) == LUA_TFUNCTION)
          fp_value(lg, lua_gettop(L), &st, 'f', field, flen);
        else /* a sub-module: util.text.clean */
          fp_members(lg, lua_gettop(L), members, &st, field, flen);
        lua_pop(L, 2);
      } else if (lua_type(L, -1) == LUA_TTABLE) {
        lua_pop(L, 1); /* the metafield */
      }
      lua_pop(L, 2);
    }
  }
  /* A class's methods and a table's helpers read through a register
  ** (Parser.new(s):parse(), where Parser is a table upvalue). */
  if (r.ok && !lg->self_only) {
    for (i = 1; i <= 255 && lua_getupvalue(L, f, i) != NULL; i++) {
      char tag[16];
      int n = snprintf(tag, sizeof tag, "upvalue %d", i);
      if (!env[i - 1]) fp_members(lg, lua_gettop(L), members, &st, tag,
                                  (size_t)n);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 4); /* dump, names, fields, members */
  blake2b_final(&st, out, TIDE_FP_SIZE);
  lg->depth--;
  if (lg->low >= level) {
    lua_pushlstring(L, (const char *)out, TIDE_FP_SIZE);
    lua_rawsetp(L, lg->cache, self);
  }
  if (saved_low < lg->low) lg->low = saved_low;
}

/* Adds a dependency's contribution: the kind, its name, and its content. */
static void fp_value(Logic *lg, int idx, blake2b_state *st, char kind,
                     const char *name, size_t name_len) {
  lua_State *L = lg->L;
  uint8_t fp[TIDE_FP_SIZE];
  int type = lua_type(L, idx);
  feed(st, &kind, 1);
  feed(st, name, name_len);
  feed(st, "", 1);
  if (type == LUA_TFUNCTION) {
    if (lua_iscfunction(L, idx)) {
      feed(st, "C", 1);
    } else {
      fp_function(lg, idx, fp);
      feed(st, "F", 1);
      feed(st, fp, TIDE_FP_SIZE);
    }
  } else if (type == LUA_TTABLE || type == LUA_TUSERDATA) {
    if (luaL_getmetafield(L, idx, "__tide_logic") != LUA_TNIL) {
      size_t len;
      const char *s;
      lua_pushvalue(L, idx);
      if (lua_pcall(L, 1, 1, 0) != LUA_OK ||
          (s = lua_tolstring(L, -1, &len)) == NULL) {
        if (!lg->failed) {
          lg->failed = 1;
          snprintf(lg->err, lg->errlen, "__tide_logic of %s failed: %s",
                   name, lua_type(L, -1) == LUA_TSTRING
                             ? lua_tostring(L, -1) : "no string returned");
        }
      } else {
        feed(st, "L", 1);
        feed(st, s, len);
      }
      lua_pop(L, 1);
    } else {
      feed(st, type == LUA_TTABLE ? "T" : "U", 1);
    }
  } else if (type == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    uint64_t n = len;
    feed(st, "S", 1);
    feed(st, &n, sizeof n);
    feed(st, s, len);
  } else if (type == LUA_TNUMBER && lua_isinteger(L, idx)) {
    lua_Integer v = lua_tointeger(L, idx);
    feed(st, "I", 1);
    feed(st, &v, sizeof v);
  } else if (type == LUA_TNUMBER) {
    lua_Number v = lua_tonumber(L, idx);
    feed(st, "N", 1);
    feed(st, &v, sizeof v);
  } else if (type == LUA_TBOOLEAN) {
    feed(st, lua_toboolean(L, idx) ? "t" : "f", 1);
  } else {
    feed(st, type == LUA_TNIL ? "-" : "?", 1);
  }
}

/* Pushes a set of the module tables package.loaded holds under "tide" and
** "tide.*": a pipeline reaches tide's functions through them (fs.walk,
** text.split), whose code, and whose state in upvalues, are tide's, not
** the pipeline's logic. [-0, +1, m] */
static void own_modules(lua_State *L) {
  lua_newtable(L);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      size_t len;
      const char *name = lua_type(L, -2) == LUA_TSTRING
                           ? lua_tolstring(L, -2, &len) : NULL;
      if (name && lua_type(L, -1) == LUA_TTABLE &&
          ((len == 4 && memcmp(name, "tide", 4) == 0) ||
           (len > 5 && memcmp(name, "tide.", 5) == 0))) {
        lua_pushboolean(L, 1);
        lua_rawset(L, -5);
      } else {
        lua_pop(L, 1);
      }
    }
  }
  lua_pop(L, 1);
}

int tide_logic_fingerprint(lua_State *L, int idx, int self_only,
                           tide_Fp *fp, char *err, size_t errlen) {
  Logic lg;
  blake2b_state st;
  idx = lua_absindex(L, idx);
  lg.L = L;
  lg.depth = 0;
  lg.low = INT_MAX;
  lg.err = err;
  lg.errlen = errlen;
  lg.failed = 0;
  lg.self_only = self_only;
  if (lua_type(L, idx) != LUA_TFUNCTION &&
      luaL_getmetafield(L, idx, "__tide_logic") == LUA_TNIL) {
    snprintf(err, errlen, "expected a function, got %s",
             luaL_typename(L, idx));
    return TIDE_EINVAL;
  } else if (lua_type(L, idx) != LUA_TFUNCTION) {
    lua_pop(L, 1);
  }
  lua_newtable(L);
  lg.cache = lua_gettop(L);
  own_modules(L);
  lg.own = lua_gettop(L);
  blake2b_init(&st, TIDE_FP_SIZE);
  feed(&st, LUA_RELEASE, sizeof LUA_RELEASE - 1);
  fp_value(&lg, idx, &st, 'r', "", 0);
  blake2b_final(&st, fp->bytes, TIDE_FP_SIZE);
  lua_pop(L, 2);
  return lg.failed ? TIDE_EINVAL : 0;
}
