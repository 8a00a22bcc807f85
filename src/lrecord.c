/*
** Record checks: the C half of tide.record, tide.check and friends.
**
** record_plan(type) compiles a type descriptor (record.lua's tables) into a
** plan, a flat array of nodes that a check walks without reading the
** descriptor's tables. record_check(plan, value) checks a value against a
** plan and returns the normalised copy; a record type's __call,
** record_caller(plan, explain), does the same and raises on a bad value.
** The success path makes no string: a failure comes back as a reason, the
** failing type's descriptor, the offending value and the path to it (field
** names and indices), and record.lua's explain words the message from
** them. Misuse (a wrong argument) raises; a value that does not fit its
** type is an answer, not misuse, except to a constructor, which raises.
*/
#include <float.h>
#include <math.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "cbor.h"
#include "lcore.h"
#include "utf8.h"

#define PLAN_TYPE "tide.RecordPlan"

/* Deeper than this, a value could not be encoded anyway. */
#define MAX_DEPTH TIDE_CBOR_MAX_DEPTH

enum {
  K_STRING, K_BYTES, K_INTEGER, K_NUMBER, K_BOOLEAN, K_JSON,
  K_LIST, K_VECTOR, K_OPTIONAL, K_RECORD
};

static const char *const kind_names[] = {
  "string", "integer", "number", "boolean", "bytes", "json",
  "list", "vector", "optional", "record", NULL
};
static const int kind_codes[] = {
  K_STRING, K_INTEGER, K_NUMBER, K_BOOLEAN, K_BYTES, K_JSON,
  K_LIST, K_VECTOR, K_OPTIONAL, K_RECORD
};

typedef struct {
  int kind;
  int desc;     /* anchor index of the descriptor; a record's metatable next */
  int elem;     /* list, optional: the element's node */
  int size;     /* vector: its length; record: its field count */
  int first;    /* record: its first field */
  int required; /* record: how many of its fields are not optional */
} Node;

typedef struct {
  const char *name; /* anchored in the plan's anchor table */
  size_t len;
  int node;
} Field;

/* A plan, with its fields and then its nodes in the same userdata;
** nodes[0] is the type itself. The userdata's user value is the anchor
** table: descriptors, record metatables and field names, by index. */
typedef struct {
  int nnodes, nfields;
  Field *fields;
  Node *nodes;
} Plan;

/* ---- compiling ---- */

typedef struct {
  lua_State *L;
  Plan *plan;    /* NULL while counting */
  int anchors;   /* stack index of the anchor table */
  int nanchors;
  int nnodes, nfields;
} Compiler;

static int anchor(Compiler *c, int idx) {
  if (c->plan) {
    lua_pushvalue(c->L, idx);
    lua_rawseti(c->L, c->anchors, c->nanchors + 1);
  }
  return ++c->nanchors;
}

/* Compiles the descriptor on top of the stack into the next node and the
** nodes after it, and returns that node's index; counts them only while
** c->plan is NULL. [-0, +0, e] */
static int compile(Compiler *c, int depth) {
  lua_State *L = c->L;
  int t = lua_gettop(L), n = c->nnodes++, kind;
  Node node = {0, 0, 0, 0, 0, 0};
  if (depth > MAX_DEPTH) luaL_error(L, "record type nested too deeply");
  if (c->plan && n >= c->plan->nnodes) luaL_error(L, "type changed");
  luaL_checkstack(L, 8, "record type nested too deeply");
  if (lua_type(L, t) != LUA_TTABLE) luaL_error(L, "not a type descriptor");
  lua_getfield(L, t, "kind");
  kind = kind_codes[luaL_checkoption(L, -1, NULL, kind_names)];
  lua_pop(L, 1);
  node.kind = kind;
  node.desc = anchor(c, t);
  if (kind == K_LIST || kind == K_OPTIONAL) {
    lua_getfield(L, t, "elem");
    node.elem = compile(c, depth + 1);
    lua_pop(L, 1);
  } else if (kind == K_VECTOR) {
    lua_getfield(L, t, "size");
    node.size = (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  } else if (kind == K_RECORD) {
    int i, nf;
    lua_getfield(L, t, "mt");
    anchor(c, lua_gettop(L)); /* at node.desc + 1 */
    lua_pop(L, 1);
    lua_getfield(L, t, "fields");
    nf = (int)luaL_len(L, -1);
    node.size = nf;
    node.first = c->nfields;
    c->nfields += nf;
    if (c->plan && c->nfields > c->plan->nfields)
      luaL_error(L, "type changed");
    for (i = 0; i < nf; i++) {
      int sub;
      lua_geti(L, -1, i + 1);
      lua_getfield(L, -1, "name");
      if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "field without name");
      anchor(c, lua_gettop(L));
      if (c->plan) {
        Field *f = &c->plan->fields[node.first + i];
        f->name = lua_tolstring(L, -1, &f->len);
      }
      lua_getfield(L, -2, "type");
      sub = compile(c, depth + 1);
      if (c->plan) {
        c->plan->fields[node.first + i].node = sub;
        if (c->plan->nodes[sub].kind != K_OPTIONAL) node.required++;
      }
      lua_pop(L, 3);
    }
    lua_pop(L, 1);
  }
  if (c->plan) c->plan->nodes[n] = node;
  return n;
}

static int record_plan(lua_State *L) {
  Compiler c = {L, NULL, 0, 0, 0, 0};
  Plan *p;
  size_t size;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  compile(&c, 0); /* counts */
  size = sizeof(Plan) + (size_t)c.nnodes * sizeof(Node) +
         (size_t)c.nfields * sizeof(Field);
  p = lua_newuserdatauv(L, size, 1);
  p->nnodes = c.nnodes;
  p->nfields = c.nfields;
  p->fields = (Field *)(p + 1);
  p->nodes = (Node *)(p->fields + c.nfields);
  luaL_setmetatable(L, PLAN_TYPE);
  lua_createtable(L, c.nanchors, 0);
  c.anchors = lua_gettop(L);
  c.plan = p;
  c.nanchors = c.nnodes = c.nfields = 0;
  lua_pushvalue(L, 1);
  compile(&c, 0);
  lua_pop(L, 1);
  lua_setiuservalue(L, 2, 1);
  return 1;
}

/* ---- checking ----
**
** Each check takes the value on top of the stack and, on success, leaves
** the normalised value in its place (a value that is already normal, most
** scalars, costs no stack operation) and returns 0. On failure it records
** the reason (fail) and returns -1, leaving the stack for record_check to
** reset. The success path makes no string.
*/

/* Stack slots of a check. S_BAD and S_SEGS are written by fail, S_SEEN by
** the first JSON table met; until then they hold anything. */
enum { S_VALUE = 2, S_BAD, S_SEEN, S_SEGS };

typedef struct {
  const char *name; /* NULL: an index */
  size_t len;
  lua_Integer index;
} Seg;

typedef struct {
  lua_State *L;
  const Plan *plan;
  int anchors;     /* index of the plan's anchor table */
  const char *why; /* the reason of a failure */
  int node;        /* the failing node */
  int seen;        /* S_SEEN holds the JSON tables being checked */
  int depth;
  Seg segs[MAX_DEPTH + 1];
} Check;

/* Records a failure at node with the offending value at idx (0: the value
** is already in S_BAD) and the path so far. Returns -1. */
static int fail(Check *c, const char *why, int node, int idx) {
  lua_State *L = c->L;
  int i;
  c->why = why;
  c->node = node;
  if (idx) lua_copy(L, idx, S_BAD);
  lua_createtable(L, c->depth, 0);
  for (i = 0; i < c->depth; i++) {
    if (c->segs[i].name)
      lua_pushlstring(L, c->segs[i].name, c->segs[i].len);
    else
      lua_pushinteger(L, c->segs[i].index);
    lua_rawseti(L, -2, i + 1);
  }
  lua_replace(L, S_SEGS);
  return -1;
}

static int fail_with(Check *c, const char *why, int node, lua_Integer bad) {
  lua_pushinteger(c->L, bad);
  lua_replace(c->L, S_BAD);
  return fail(c, why, node, 0);
}

/* Enters a field (name) or an index (name NULL) on the path. */
static int push_seg(Check *c, const char *name, size_t len,
                    lua_Integer index, int node) {
  if (c->depth >= MAX_DEPTH) return fail_with(c, "deep", node, MAX_DEPTH);
  c->segs[c->depth].name = name;
  c->segs[c->depth].len = len;
  c->segs[c->depth].index = index;
  c->depth++;
  return 0;
}

/* Replaces the value on top with x. */
static void replace_number(lua_State *L, lua_Number x) {
  lua_pop(L, 1);
  lua_pushnumber(L, x);
}

static int check_value(Check *c, int n);

/* JSON: strings, numbers, booleans and tables of them with string or
** integer keys, without cycles; the value itself is the result. The value
** is at v (the top, or a table's value during lua_next). */
static int check_json(Check *c, int n, int v) {
  lua_State *L = c->L;
  int type = lua_type(L, v);
  if (type == LUA_TSTRING || type == LUA_TNUMBER || type == LUA_TBOOLEAN)
    return 0;
  if (type != LUA_TTABLE) return fail(c, "type", n, v);
  if (!c->seen) {
    lua_newtable(L);
    lua_replace(L, S_SEEN);
    c->seen = 1;
  }
  if (lua_rawgetp(L, S_SEEN, lua_topointer(L, v)) != LUA_TNIL)
    return fail(c, "cycle", n, v);
  lua_pop(L, 1);
  luaL_checkstack(L, 6, "json value nested too deeply");
  lua_pushboolean(L, 1);
  lua_rawsetp(L, S_SEEN, lua_topointer(L, v));
  lua_pushnil(L);
  while (lua_next(L, v)) {
    int k = lua_gettop(L) - 1, rc;
    if (lua_type(L, k) == LUA_TSTRING) {
      size_t len;
      const char *s = lua_tolstring(L, k, &len);
      rc = push_seg(c, s, len, 0, n);
    } else if (lua_isinteger(L, k)) {
      rc = push_seg(c, NULL, 0, lua_tointeger(L, k), n);
    } else {
      return fail(c, "jsonkey", n, k);
    }
    if (rc != 0 || check_json(c, n, k + 1) != 0) return -1;
    c->depth--;
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  lua_rawsetp(L, S_SEEN, lua_topointer(L, v));
  return 0;
}

static int check_scalar(Check *c, int n) {
  lua_State *L = c->L;
  int kind = c->plan->nodes[n].kind, type = lua_type(L, -1);
  lua_Number x;
  switch (kind) {
  case K_STRING: {
    size_t len, bad;
    const char *s;
    if (type != LUA_TSTRING) return fail(c, "type", n, -1);
    s = lua_tolstring(L, -1, &len);
    if ((bad = tide_utf8_invalid_at((const uint8_t *)s, len)) != 0)
      return fail_with(c, "utf8", n, (lua_Integer)bad);
    return 0;
  }
  case K_BYTES:
    return type == LUA_TSTRING ? 0 : fail(c, "type", n, -1);
  case K_BOOLEAN:
    return type == LUA_TBOOLEAN ? 0 : fail(c, "type", n, -1);
  case K_INTEGER:
    if (type != LUA_TNUMBER) return fail(c, "type", n, -1);
    if (!lua_isinteger(L, -1)) {
      int ok;
      lua_Integer i = lua_tointegerx(L, -1, &ok); /* exact floats only */
      if (!ok) return fail(c, "type", n, -1);
      lua_pop(L, 1);
      lua_pushinteger(L, i);
    }
    return 0;
  case K_NUMBER:
    if (type != LUA_TNUMBER) return fail(c, "type", n, -1);
    x = lua_tonumber(L, -1);
    /* As x + 0.0 in Lua: an integer becomes a float, -0.0 becomes 0.0. */
    if (lua_isinteger(L, -1) || (x == 0 && signbit(x)))
      replace_number(L, x + 0.0);
    return 0;
  default: /* K_JSON */
    return check_json(c, n, lua_gettop(L));
  }
}

/* Whether the value at idx is a number a float32 can hold: a vector is
** stored as float32s, so NaN, infinities and values beyond FLT_MAX are
** refused (the comparison is false for NaN too). */
static int float32_at(lua_State *L, int idx, lua_Number *x) {
  if (lua_type(L, idx) != LUA_TNUMBER) return 0;
  *x = lua_tonumber(L, idx);
  return *x >= -FLT_MAX && *x <= FLT_MAX;
}

/* The key at idx as one of 1..len, or 0: a sequence has no other keys. */
static lua_Integer in_sequence(lua_State *L, int idx, lua_Integer len) {
  lua_Integer k;
  if (!lua_isinteger(L, idx)) return 0;
  k = lua_tointeger(L, idx);
  return k >= 1 && k <= len ? k : 0;
}

/* #v, as the length operator gives it. */
static lua_Integer length(lua_State *L, int v) {
  lua_Integer len;
  lua_len(L, v);
  len = lua_tointegerx(L, -1, NULL);
  lua_pop(L, 1);
  return len;
}

/* The first failure of the sequence at v in the order a reader expects: a
** stray key (in traversal order), then a vector's length, then a vector's
** first bad element (a list's elements are its caller's). Returns -1, or 0
** when there is none. */
static int sequence_failure(Check *c, int n, int v, lua_Integer len) {
  lua_State *L = c->L;
  lua_Integer i;
  lua_Number x;
  lua_pushnil(L);
  while (lua_next(L, v)) {
    if (in_sequence(L, -2, len) == 0)
      return fail(c, "key", n, lua_gettop(L) - 1);
    lua_pop(L, 1);
  }
  if (c->plan->nodes[n].kind != K_VECTOR) return 0;
  if (len != c->plan->nodes[n].size) return fail_with(c, "size", n, len);
  for (i = 1; i <= len; i++) {
    lua_geti(L, v, i);
    if (!float32_at(L, -1, &x)) {
      if (push_seg(c, NULL, 0, i, n) != 0) return -1;
      return fail(c, "element", n, -1);
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* The copy of a plain table whose keys are exactly 1..size and whose
** elements are float32s, as floats, in place of it; or 0 when the table is
** not one. In one traversal: each key in 1..size is stored at once, so
** size of them, keys being distinct, means each of 1..size and no other
** (a second pass of lua_rawgeti over the keys counted would cost as much
** again). */
static int vector_fast(lua_State *L, int v, lua_Integer size) {
  lua_Integer count = 0, k;
  lua_Number x;
  int out;
  /* A valid vector (keys 1..size, no other) has size as its only border:
  ** any other length fails here, before a copy the size of the type's is
  ** made (the traversal below checks the keys themselves). */
  if ((lua_Integer)lua_rawlen(L, v) != size) return 0;
  lua_createtable(L, (int)size, 0);
  out = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, v)) {
    if (!lua_isinteger(L, -2) || (k = lua_tointeger(L, -2)) < 1 ||
        k > size || lua_type(L, -1) != LUA_TNUMBER ||
        !((x = lua_tonumber(L, -1)) >= -FLT_MAX && x <= FLT_MAX))
      return 0;
    if (tide_may_be_integer(x) && lua_isinteger(L, -1)) replace_number(L, x);
    lua_rawseti(L, out, k);
    count++;
  }
  if (count != size) return 0;
  lua_replace(L, v);
  return 1;
}

/* A vector of size numbers, as floats. A table with a metatable, or one
** that vector_fast refuses, takes sequence_failure's path, which finds the
** failure (or, when an __index fills holes, none). */
static int check_vector(Check *c, int n, int v) {
  lua_State *L = c->L;
  lua_Integer size = c->plan->nodes[n].size, i;
  lua_Number x = 0;
  int out;
  if (!lua_getmetatable(L, v) && vector_fast(L, v, size)) return 0;
  lua_settop(L, v);
  if (sequence_failure(c, n, v, length(L, v)) != 0) return -1;
  lua_createtable(L, (int)size, 0);
  out = lua_gettop(L);
  for (i = 1; i <= size; i++) { /* holes an __index fills */
    lua_geti(L, v, i);
    float32_at(L, -1, &x);
    replace_number(L, x);
    lua_rawseti(L, out, i);
  }
  lua_replace(L, v);
  return 0;
}

/* A list or vector: a table whose keys are exactly 1..#v. */
static int check_sequence(Check *c, int n) {
  lua_State *L = c->L;
  const Node *node = &c->plan->nodes[n];
  int v = lua_gettop(L);
  lua_Integer len, i;
  if (lua_type(L, v) != LUA_TTABLE) return fail(c, "type", n, v);
  luaL_checkstack(L, 6, "value nested too deeply");
  if (node->kind == K_VECTOR) return check_vector(c, n, v);
  len = length(L, v);
  if (sequence_failure(c, n, v, len) != 0) return -1;
  lua_createtable(L, (int)len, 0);
  for (i = 1; i <= len; i++) {
    if (push_seg(c, NULL, 0, i, n) != 0) return -1;
    lua_geti(L, v, i);
    if (check_value(c, node->elem) != 0) return -1;
    c->depth--;
    lua_rawseti(L, v + 1, i);
  }
  lua_replace(L, v);
  return 0;
}

/* The field the key at idx names, or NULL. Field names are short strings
** Lua interns, so the same pointer is the usual match. */
static const Field *find_field(lua_State *L, const Field *fields, int nf,
                               int idx) {
  size_t len;
  const char *k;
  int i;
  if (lua_type(L, idx) != LUA_TSTRING) return NULL;
  k = lua_tolstring(L, idx, &len);
  for (i = 0; i < nf; i++)
    if (fields[i].name == k) return &fields[i];
  for (i = 0; i < nf; i++)
    if (fields[i].len == len && memcmp(fields[i].name, k, len) == 0)
      return &fields[i];
  return NULL;
}

/* Gives the record being built, on top of the stack, its type's metatable
** and puts it in place of the value at v. */
static void finish_record(Check *c, int n, int v) {
  lua_rawgeti(c->L, c->anchors, c->plan->nodes[n].desc + 1);
  lua_setmetatable(c->L, -2);
  lua_replace(c->L, v);
}

/* A record given as a table without a metatable, in one traversal: its
** fields are checked as they come and the result filled. Returns 0 when
** the record is made, -1 on a stray key (the first failure whatever the
** fields hold), 1 when a field is bad or missing: the ordered path then
** finds which comes first. */
static int record_fast(Check *c, int n, int v) {
  lua_State *L = c->L;
  const Node *node = &c->plan->nodes[n];
  const Field *fields = c->plan->fields + node->first;
  int out, required = 0, bad = 0, depth = c->depth;
  lua_createtable(L, 0, node->size);
  out = v + 1; /* check_record left the value on top */
  lua_pushnil(L);
  while (lua_next(L, v)) {
    const Field *f = find_field(L, fields, node->size, out + 1);
    if (f == NULL) return fail(c, "unknown", n, out + 1);
    if (bad) {
      lua_pop(L, 1);
      continue;
    }
    if (push_seg(c, f->name, f->len, 0, n) != 0 ||
        check_value(c, f->node) != 0) {
      bad = 1;
      c->depth = depth;
      lua_settop(L, out + 1);
      continue;
    }
    c->depth--;
    if (c->plan->nodes[f->node].kind != K_OPTIONAL) required++;
    /* Under the key lua_next gave, a string already made (lua_setfield
    ** would make it again from f->name). */
    lua_pushvalue(L, out + 1);
    lua_insert(L, -2);
    lua_rawset(L, out);
  }
  if (bad || required != node->required) return 1;
  finish_record(c, n, v);
  return 0;
}

/* A record, its fields read (through any __index) and checked in their
** declared order, after its keys. */
static int record_ordered(Check *c, int n, int v) {
  lua_State *L = c->L;
  const Node *node = &c->plan->nodes[n];
  const Field *fields = c->plan->fields + node->first;
  int i, out;
  lua_pushnil(L);
  while (lua_next(L, v)) {
    if (find_field(L, fields, node->size, -2) == NULL)
      return fail(c, "unknown", n, lua_gettop(L) - 1);
    lua_pop(L, 1);
  }
  lua_createtable(L, 0, node->size);
  out = lua_gettop(L);
  for (i = 0; i < node->size; i++) {
    const Field *f = &fields[i];
    if (push_seg(c, f->name, f->len, 0, n) != 0) return -1;
    lua_getfield(L, v, f->name);
    if (check_value(c, f->node) != 0) return -1;
    c->depth--;
    lua_setfield(L, out, f->name);
  }
  finish_record(c, n, v);
  return 0;
}

static int check_record(Check *c, int n) {
  lua_State *L = c->L;
  int v = lua_gettop(L), depth = c->depth, rc;
  if (lua_type(L, v) != LUA_TTABLE) return fail(c, "type", n, v);
  luaL_checkstack(L, 8, "value nested too deeply");
  if (!lua_getmetatable(L, v)) {
    if ((rc = record_fast(c, n, v)) <= 0) return rc;
    /* A bad field's check may have left JSON tables marked as seen. */
    c->seen = 0;
    c->depth = depth;
  }
  lua_settop(L, v);
  return record_ordered(c, n, v);
}

/* Checks the value on top of the stack against node n. */
static int check_value(Check *c, int n) {
  lua_State *L = c->L;
  const Node *node = &c->plan->nodes[n];
  while (node->kind == K_OPTIONAL) {
    if (lua_isnil(L, -1)) return 0;
    n = node->elem;
    node = &c->plan->nodes[n];
  }
  switch (node->kind) {
  case K_RECORD: /* each refuses a value that is not a table, nil too */
    return check_record(c, n);
  case K_LIST:
  case K_VECTOR:
    return check_sequence(c, n);
  default:
    return check_scalar(c, n);
  }
}

/* Checks the value at S_VALUE against plan, whose anchor table is at
** anchors; the stack is at S_SEGS or above. Returns 1 with the normalised
** value on top, or 5 with nil, the reason, the failing type's descriptor,
** the offending value and the path to it as a list of field names and
** indices. */
static int run_check(lua_State *L, const Plan *plan, int anchors) {
  Check c;
  c.L = L;
  c.plan = plan;
  c.anchors = anchors;
  c.seen = 0;
  c.depth = 0;
  lua_pushvalue(L, S_VALUE);
  if (check_value(&c, 0) == 0) return 1;
  luaL_pushfail(L);
  lua_pushstring(L, c.why);
  lua_rawgeti(L, anchors, plan->nodes[c.node].desc);
  lua_pushvalue(L, S_BAD);
  lua_pushvalue(L, S_SEGS);
  return 5;
}

/* record_check(plan, value): see run_check. */
static int record_check(lua_State *L) {
  lua_settop(L, S_VALUE);
  if (!lua_getmetatable(L, 1) || !lua_rawequal(L, -1, lua_upvalueindex(1)))
    luaL_typeerror(L, 1, "record plan");
  lua_settop(L, S_SEGS);
  lua_getiuservalue(L, 1, 1);
  return run_check(L, lua_touserdata(L, 1), S_SEGS + 1);
}

/* The __call of a record type: (type, value) -> record value, raising the
** message explain(type.name, reason, ..., true) words, at the caller's
** line. */
static int record_call(lua_State *L) {
  int top;
  lua_settop(L, S_SEGS);
  if (run_check(L, lua_touserdata(L, lua_upvalueindex(1)),
                lua_upvalueindex(2)) == 1)
    return 1;
  top = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(3));
  lua_getfield(L, 1, "name");
  lua_rotate(L, top - 3, 2); /* explain, name, why, desc, bad, segs */
  lua_pushboolean(L, 1);
  lua_call(L, 6, 1);
  luaL_where(L, 1);
  lua_insert(L, -2);
  lua_concat(L, 2);
  return lua_error(L);
}

/* record_caller(plan, explain): a record type's __call. */
static int record_caller(lua_State *L) {
  luaL_checkudata(L, 1, PLAN_TYPE);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_getiuservalue(L, 1, 1);
  lua_insert(L, 2);
  lua_pushcclosure(L, record_call, 3);
  return 1;
}

void tide_lrecord_open(lua_State *L) {
  lua_pushcfunction(L, record_plan);
  lua_setfield(L, -2, "record_plan");
  lua_pushcfunction(L, record_caller);
  lua_setfield(L, -2, "record_caller");
  luaL_newmetatable(L, PLAN_TYPE);
  lua_pushcclosure(L, record_check, 1);
  lua_setfield(L, -2, "record_check");
}
