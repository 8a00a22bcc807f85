/*
** Lua binding of the worker pool (workers.h): engine:workers(n, path,
** cpath) returns the engine's pool of n worker threads, whose Lua states
** find tide's modules through path and cpath (the main state's
** package.path and package.cpath) and run tide.worker's job runner.
**
** pool:call(head, what, n, ...) -> answer | nil, message
**   Hands a call to the first idle worker. The request is the CBOR array
**   [file, fn name, logic, n, args...] (worker.lua): head is the
**   encoding of [file, fn name, logic], whose items are copied, and the n
**   arguments are encoded here, straight into the job (what names them in
**   messages). n = -1 is followed by one table, the arguments packed (for
**   arguments that hold nil, which an array cannot). The worker's answer
**   is decoded straight from the job. Inside a component's task the task
**   waits on the scheduler and the others run; elsewhere the caller
**   waits on the loop. A worker whose state could not be made, or a job
**   cancelled by a stop, gives nil and the message.
** pool:batch(head, what) -> batch
**   For many calls of one function from one task (tide.map):
**   batch:submit(n, ...) sends a call as pool:call does and returns at
**   once (true, or nil and the message of an argument that cannot be
**   encoded: nothing went out); batch:next() returns the answers in the
**   order the calls went out, as pool:call does, the task waiting for
**   each only while it is not in.
** pool:count() -> n; pool:close() (also its __gc): stops the threads.
**
** Misuse raises (a closed pool, a bad head or count); an argument that
** cannot be encoded raises its encoder's message.
*/
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "cbor.h"
#include "lcore.h"
#include "tide.h"
#include "workers.h"

#define POOL_TYPE "tide.Workers"
#define BATCH_TYPE "tide.WorkerBatch"

/* What every worker's setup reads: the module paths. Owned by the Box,
** freed after the threads stopped. */
typedef struct {
  char *path, *cpath;
} SetupArg;

typedef struct {
  tide_Workers *p; /* NULL once closed */
  SetupArg arg;
  lua_Alloc alloc;
  void *ud;
} Box;

/* encode_message(value, what): raises the encoder's message for value. */
static int encode_message(lua_State *L) {
  size_t len;
  tide_lcbor_encode(L, 1, luaL_optstring(L, 2, "result"), &len);
  return 0;
}

/* Pushes the message for the value at stack index idx that cannot be
** encoded, named "<what> <position>" as a memoized call names its
** arguments ("embed argument 2.opts: cannot encode a function"), or
** "<what>" for position 0. A packed list (packed: a table of the values,
** n and all, as table.pack makes) names the first of its values that
** cannot be encoded by its position. [-0, +1] */
static void push_encode_message(lua_State *L, int idx, const char *what,
                                int position, int packed) {
  size_t len;
  idx = lua_absindex(L, idx);
  if (packed && lua_istable(L, idx)) {
    lua_Integer i, n;
    lua_getfield(L, idx, "n");
    n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      if (tide_lcbor_encode_try(L, -1, what, &len) == NULL) {
        lua_pop(L, 1); /* the encoder */
        push_encode_message(L, -1, what, (int)i, 0);
        lua_remove(L, -2);
        return;
      }
      lua_pop(L, 2);
    }
  }
  lua_pushcfunction(L, encode_message);
  lua_pushvalue(L, idx);
  if (position > 0)
    lua_pushfstring(L, "%s %d", what, position);
  else
    lua_pushstring(L, what);
  lua_pcall(L, 2, 1, 0);
  if (lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushfstring(L, "%s: cannot be encoded", what);
  }
}

/* A worker's job runner: the request decoded straight from the job,
** tide.worker's run (the upvalue) called on it, and the answer it returns
** encoded straight into the job; an answer that cannot be encoded becomes
** { error = why }. */
static int run_job(lua_State *L) {
  tide_Job *job = lua_touserdata(L, 1);
  char err[160];
  size_t len;
  const uint8_t *p;
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(1));
  if (tide_cbor_decode(L, job->in.data, job->in.len, err, sizeof err) != 0)
    return luaL_error(L, "a request cannot be read: %s", err);
  lua_call(L, 1, 2); /* answer, what the answer is called in messages */
  p = tide_lcbor_encode_try(L, 1, luaL_optstring(L, 2, "result"), &len);
  if (p != NULL) {
    if (tide_buf_append(&job->out, p, len) != 0)
      return luaL_error(L, "not enough memory");
    return 0;
  }
  /* Encoded again for its message, in protected mode: the results are
  ** packed, each named by its position ("split result 2"). */
  lua_pop(L, 1);
  push_encode_message(L, 1, luaL_optstring(L, 2, "result"), 0, 1);
  {
    size_t mlen;
    const char *m = lua_tolstring(L, -1, &mlen);
    int rc = tide_cbor_put_head(&job->out, 5, 1);
    rc |= tide_cbor_put_string(&job->out, "error", 5);
    rc |= tide_cbor_put_string(&job->out, m ? m : "cannot encode",
                               m ? mlen : 13);
    if (rc != 0) return luaL_error(L, "not enough memory");
  }
  return 0;
}

/* A worker's state: the standard libraries, tide.core preloaded, the
** main state's module paths, and tide.worker's runner returned. */
static int setup(lua_State *L) {
  SetupArg *arg = lua_touserdata(L, 1);
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_tide_core);
  lua_setfield(L, -2, "tide.core");
  lua_pop(L, 1);
  lua_getglobal(L, "package");
  lua_pushstring(L, arg->path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, arg->cpath);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "tide.worker");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "enter");
  lua_call(L, 0, 0);
  lua_getfield(L, -1, "run");
  lua_pushcclosure(L, run_job, 1);
  return 1;
}

static char *copy(Box *b, const char *s) {
  size_t n = strlen(s) + 1;
  char *c = b->alloc(b->ud, NULL, 0, n);
  if (c) memcpy(c, s, n);
  return c;
}

static void drop(Box *b, char **s) {
  if (*s) b->alloc(b->ud, *s, strlen(*s) + 1, 0);
  *s = NULL;
}

static void close_box(Box *b) {
  tide_workers_free(b->p);
  b->p = NULL;
  drop(b, &b->arg.path);
  drop(b, &b->arg.cpath);
}

void tide_lworkers_push(lua_State *L, uv_loop_t *loop, int n,
                        const char *path, const char *cpath) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  Box *b = lua_newuserdatauv(L, sizeof *b, 0);
  int rc;
  memset(b, 0, sizeof *b);
  b->alloc = alloc;
  b->ud = ud;
  luaL_setmetatable(L, POOL_TYPE);
  b->arg.path = copy(b, path);
  b->arg.cpath = copy(b, cpath);
  if (b->arg.path == NULL || b->arg.cpath == NULL) {
    close_box(b);
    luaL_error(L, "not enough memory");
  }
  rc = tide_workers_new(&b->p, loop, n, setup, &b->arg, (tide_Alloc)alloc,
                        ud);
  if (rc != 0) {
    close_box(b);
    luaL_error(L, "cannot start %d worker threads: %s", n,
               tide_strerror(rc));
  }
}

static Box *check_box(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, POOL_TYPE);
  if (b->p == NULL) luaL_error(L, "worker pool is closed");
  return b;
}

/* The outcome of a finished job, pushed; the job is released. */
static int job_result(lua_State *L, tide_Job *job) {
  int n = 1;
  char err[160];
  if (job->cancelled) {
    luaL_pushfail(L);
    lua_pushliteral(L, "the call was cancelled before a worker took it");
    n = 2;
  } else if (job->failed) {
    luaL_pushfail(L);
    lua_pushlstring(L, (const char *)job->out.data, job->out.len);
    n = 2;
  } else if (tide_cbor_decode(L, job->out.data, job->out.len, err,
                              sizeof err) != 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "a worker's answer cannot be read: %s", err);
    n = 2;
  }
  tide_sched_wait_end(&job->w);
  return n;
}

/* The request of pool:call, written into job->in (see above), with the
** count arguments from stack index first. 0, or 1 when an argument cannot
** be encoded: the job is freed and the message pushed. Out of memory
** raises (the job freed first). */
static int write_request(lua_State *L, tide_Job *job, const char *head,
                         size_t head_len, const char *what, int n,
                         int first, int count) {
  int i, rc = 0;
  tide_Buf *in = &job->in;
  rc |= tide_cbor_put_head(in, 4, 4 + (uint64_t)count);
  rc |= tide_buf_append(in, head + 1, head_len - 1);
  if (n >= 0)
    rc |= tide_cbor_put_head(in, 0, (uint64_t)n);
  else
    rc |= tide_cbor_put_head(in, 1, 0); /* -1: one packed table follows */
  for (i = 0; i < count && rc == 0; i++) {
    size_t len;
    const uint8_t *p = tide_lcbor_encode_try(L, first + i, what, &len);
    if (p == NULL) {
      /* The message, from the raising encoder in protected mode. */
      lua_pop(L, 1);
      push_encode_message(L, first + i, what, n < 0 ? 0 : i + 1, n < 0);
      tide_job_free(job);
      return 1;
    }
    rc |= tide_buf_append(in, p, len);
    lua_pop(L, 1);
  }
  if (rc != 0) {
    tide_job_free(job);
    luaL_error(L, "not enough memory");
  }
  return 0;
}

/* The count check shared by pool:call and batch:submit. */
static void check_count(lua_State *L, int arg, lua_Integer n, int count) {
  luaL_argcheck(L, (n >= 0 && n == count) || (n == -1 && count == 1), arg,
                "must be the number of arguments that follow, or -1 before "
                "one packed table");
}

static void check_head(lua_State *L, int arg, const char *head,
                       size_t head_len) {
  luaL_argcheck(L, head_len > 0 && (uint8_t)head[0] == 0x83, arg,
                "expected the encoding of [file, name, logic]");
}

static int call_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return job_result(L, (tide_Job *)ctx);
}

/* pool:call(head, what, n, ...) */
static int pool_call(lua_State *L) {
  Box *b = check_box(L);
  size_t head_len;
  const char *head = luaL_checklstring(L, 2, &head_len);
  const char *what = luaL_checkstring(L, 3);
  lua_Integer n = luaL_checkinteger(L, 4);
  int anchor, count = lua_gettop(L) - 4;
  tide_Sched *s;
  tide_Job *job;
  check_head(L, 2, head, head_len);
  check_count(L, 4, n, count);
  job = tide_job_new(b->p);
  if (job == NULL) return luaL_error(L, "not enough memory");
  if (write_request(L, job, head, head_len, what, (int)n, 5, count))
    return lua_error(L);
  /* Once the request is written: what raises before leaves no anchor. */
  s = tide_lsched_suspend(L, &anchor);
  lua_settop(L, 1);
  if (s != NULL) {
    tide_sched_wait_begin(s, &job->w, anchor);
    tide_workers_submit(b->p, job);
    return tide_lsched_yield(L, (lua_KContext)job, call_k);
  }
  tide_workers_submit(b->p, job);
  tide_workers_wait(b->p, job);
  return job_result(L, job);
}

/* ---- Batches: many calls out at once, answered in order ---- */

/* The jobs of a batch, in the order they were submitted: a ring. Each is
** linked to the scheduler when submitted, with no task waiting on it
** (anchor 0), so that a batch its task gives up (a stop, an error) leaves
** its jobs to the scheduler, which cancels and releases them at the end
** of the cycle; next() puts the task on the first one. The batch itself
** never frees a job: one it has handed out is released by job_result. */
typedef struct {
  tide_Workers *p;
  tide_Sched *s;
  tide_Job **ring;
  size_t head, count, cap;
  lua_Alloc alloc;
  void *ud;
} Batch;

enum { BATCH_POOL = 1, BATCH_HEAD, BATCH_WHAT, BATCH_SLOTS = BATCH_WHAT };

static int batch_gc(lua_State *L) {
  Batch *t = luaL_checkudata(L, 1, BATCH_TYPE);
  if (t->ring) t->alloc(t->ud, t->ring, t->cap * sizeof *t->ring, 0);
  t->ring = NULL;
  t->count = t->cap = 0;
  return 0;
}

/* pool:batch(head, what): calls of one function, from a component's task
** (misuse raises outside one). */
static int pool_batch(lua_State *L) {
  Box *b = check_box(L);
  size_t head_len;
  const char *head = luaL_checklstring(L, 2, &head_len);
  tide_Sched *s = tide_lsched_running(L);
  Batch *t;
  luaL_checkstring(L, 3);
  check_head(L, 2, head, head_len);
  if (s == NULL) return luaL_error(L, "a batch of calls needs a cycle");
  t = lua_newuserdatauv(L, sizeof *t, BATCH_SLOTS);
  memset(t, 0, sizeof *t);
  t->alloc = lua_getallocf(L, &t->ud);
  t->p = b->p;
  t->s = s;
  luaL_setmetatable(L, BATCH_TYPE);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, BATCH_POOL);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, BATCH_HEAD);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, -2, BATCH_WHAT);
  return 1;
}

static Batch *check_batch(lua_State *L) {
  Batch *t = luaL_checkudata(L, 1, BATCH_TYPE);
  lua_getiuservalue(L, 1, BATCH_POOL);
  if (((Box *)lua_touserdata(L, -1))->p != t->p)
    luaL_error(L, "worker pool is closed");
  lua_pop(L, 1);
  return t;
}

/* batch:submit(n, ...) -> true | nil, message: the call goes out now; a
** message when an argument cannot be encoded (nothing went out). */
static int batch_submit(lua_State *L) {
  Batch *t = check_batch(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  int count = lua_gettop(L) - 2;
  size_t head_len;
  const char *head, *what;
  tide_Job *job;
  check_count(L, 2, n, count);
  if (t->count == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 16, i;
    tide_Job **ring = t->alloc(t->ud, NULL, 0, cap * sizeof *ring);
    if (ring == NULL) return luaL_error(L, "not enough memory");
    for (i = 0; i < t->count; i++) ring[i] = t->ring[(t->head + i) % t->cap];
    if (t->ring) t->alloc(t->ud, t->ring, t->cap * sizeof *t->ring, 0);
    t->ring = ring;
    t->cap = cap;
    t->head = 0;
  }
  lua_getiuservalue(L, 1, BATCH_HEAD);
  head = lua_tolstring(L, -1, &head_len);
  lua_getiuservalue(L, 1, BATCH_WHAT);
  what = lua_tostring(L, -1);
  lua_pop(L, 2); /* both stay anchored by the batch */
  job = tide_job_new(t->p);
  if (job == NULL) return luaL_error(L, "not enough memory");
  if (write_request(L, job, head, head_len, what, (int)n, 3, count)) {
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
  }
  tide_sched_wait_begin(t->s, &job->w, 0);
  tide_workers_submit(t->p, job);
  t->ring[(t->head + t->count) % t->cap] = job;
  t->count++;
  lua_pushboolean(L, 1);
  return 1;
}

/* batch:next() -> answer | nil, message: the answer of the first call
** not handed out yet, as pool:call returns it; the task waits for it. */
static int batch_next(lua_State *L) {
  Batch *t = check_batch(L);
  tide_Job *job;
  int anchor;
  if (t->count == 0) return luaL_error(L, "no call of the batch is out");
  job = t->ring[t->head];
  t->head = (t->head + 1) % t->cap;
  t->count--;
  if (job->w.done) return job_result(L, job);
  if (tide_lsched_suspend(L, &anchor) != NULL) {
    job->w.task = anchor;
    return tide_lsched_yield(L, (lua_KContext)job, call_k);
  }
  /* Where the task cannot yield (a coroutine of the user's own). */
  tide_workers_wait(t->p, job);
  return job_result(L, job);
}

static int pool_count(lua_State *L) {
  lua_pushinteger(L, tide_workers_count(check_box(L)->p));
  return 1;
}

static int pool_close(lua_State *L) {
  close_box(luaL_checkudata(L, 1, POOL_TYPE));
  return 0;
}

void tide_lworkers_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"call", pool_call}, {"batch", pool_batch}, {"count", pool_count},
    {"close", pool_close}, {NULL, NULL},
  };
  static const luaL_Reg batch_methods[] = {
    {"submit", batch_submit}, {"next", batch_next}, {NULL, NULL},
  };
  if (luaL_newmetatable(L, POOL_TYPE)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, pool_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, BATCH_TYPE)) {
    luaL_newlib(L, batch_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, batch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}
