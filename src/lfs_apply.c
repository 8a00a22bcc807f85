/*
** core.fs_apply: a folder target's batch of writes and removals, done on
** libuv's thread pool. Each write is a temporary file, fsync and rename,
** so a batch waits on the disk; inside a component's task the task
** waits for it (scheduler.h) and the other components run meanwhile;
** anywhere else the batch is done in the caller.
**
** fs_apply(steps, syncs, rmdirs) -> true | nil, message
**   steps: a list of { path, content, sync }: content a string writes the
**     file atomically (tide_file_write_atomic), false removes it; sync is
**     the index in syncs of its parent folder, which is synced only when
**     the step changed something (a file already gone changes nothing,
**     and its folder may be gone too).
**   syncs: folders to fsync, so that the renames and removals last.
**   rmdirs: folders removed when empty, in the order given (deepest
**     first is the caller's to decide).
**   The steps run in order and the first failure stops the batch: the
**   message is "PATH: reason". Every step is idempotent, so a batch
**   stopped half-way (or killed) is simply applied again.
**
** Everything the pool thread reads is copied into the job first: the
** caller's strings may be collected while the job runs (its task may be
** abandoned), and nothing on the pool touches Lua or the loop.
** Misuse raises (a table of the wrong shape, a path with a NUL byte).
*/
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "buf.h"
#include "error.h"
#include "lcore.h"
#include "scheduler.h"
#include "walk.h"

#define HOLDER_TYPE "tide.FsApplyJob"

typedef struct {
  size_t path;     /* offset of the NUL-terminated path in bytes */
  size_t data;     /* offset of the content */
  size_t data_len;
  int remove;      /* remove the file instead of writing it */
  lua_Integer sync; /* 1-based index into syncs, 0 for none */
} Step;

typedef struct {
  tide_Wait w;
  lua_Alloc alloc;
  void *ud;
  uv_work_t req;
  tide_Buf bytes;   /* paths and contents */
  tide_Buf steps;   /* Step */
  tide_Buf syncs;   /* size_t offsets of folder paths */
  tide_Buf rmdirs;  /* size_t offsets of folder paths */
  tide_Buf touched; /* one byte per sync: whether a step changed it */
  int rc;
  char err[512];
} Apply;

static void *buf_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  return ((Apply *)ud)->alloc(((Apply *)ud)->ud, ptr, osize, nsize);
}

static const char *at(const Apply *a, size_t off) {
  return (const char *)a->bytes.data + off;
}

/* On a pool thread (or in the caller): the batch, in order. */
static void apply_work(uv_work_t *req) {
  Apply *a = req->data;
  const Step *steps = (const Step *)a->steps.data;
  const size_t *syncs = (const size_t *)a->syncs.data;
  const size_t *rmdirs = (const size_t *)a->rmdirs.data;
  size_t nsteps = a->steps.len / sizeof *steps;
  size_t nsyncs = a->syncs.len / sizeof *syncs;
  size_t nrmdirs = a->rmdirs.len / sizeof *rmdirs, i;
  int created;
  for (i = 0; i < nsteps; i++) {
    const Step *s = &steps[i];
    int changed = 1;
    if (s->remove) {
      int rc = tide_file_remove(at(a, s->path), a->err, sizeof a->err);
      if (rc < 0) { a->rc = TIDE_EIO; return; }
      changed = rc;
    } else if (tide_file_write_atomic(at(a, s->path), at(a, s->data),
                                      s->data_len, &created, a->err,
                                      sizeof a->err) != 0) {
      a->rc = TIDE_EIO;
      return;
    }
    if (changed && s->sync > 0) a->touched.data[s->sync - 1] = 1;
  }
  for (i = 0; i < nsyncs; i++) {
    if (a->touched.data[i] &&
        tide_dir_sync(at(a, syncs[i]), a->err, sizeof a->err) != 0) {
      a->rc = TIDE_EIO;
      return;
    }
  }
  for (i = 0; i < nrmdirs; i++) {
    if (tide_dir_remove_if_empty(at(a, rmdirs[i]), a->err,
                                 sizeof a->err) < 0) {
      a->rc = TIDE_EIO;
      return;
    }
  }
}

static void apply_after(uv_work_t *req, int status) {
  Apply *a = req->data;
  if (status == UV_ECANCELED) {
    a->rc = TIDE_EIO;
    snprintf(a->err, sizeof a->err, "the writes were cancelled");
  }
  tide_wait_done(&a->w);
}

/* A batch no thread took yet is dropped; one under way runs to its end. */
static void apply_cancel(tide_Wait *w) {
  uv_cancel((uv_req_t *)&((Apply *)w)->req);
}

static void apply_free(Apply *a) {
  tide_buf_close(&a->bytes);
  tide_buf_close(&a->steps);
  tide_buf_close(&a->syncs);
  tide_buf_close(&a->rmdirs);
  tide_buf_close(&a->touched);
  a->alloc(a->ud, a, sizeof *a, 0);
}

static void apply_release(tide_Wait *w) { apply_free((Apply *)w); }

/* The outcome of a finished batch, pushed; a is released. */
static int apply_result(lua_State *L, Apply *a) {
  int n = 1;
  if (a->rc != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, a->err);
    n = 2;
  } else {
    lua_pushboolean(L, 1);
  }
  tide_sched_wait_end(&a->w);
  return n;
}

static int apply_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return apply_result(L, (Apply *)ctx);
}

/* Copies the string at idx (a path: no NUL byte) into the job; its
** offset in *off. Out of memory raises after the job is freed. */
static int copy_string(lua_State *L, Apply *a, int idx, int is_path,
                       size_t *off, size_t *len) {
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  if (is_path && strlen(s) != n) return TIDE_EINVAL;
  *off = a->bytes.len;
  if (len) *len = n;
  if (tide_buf_append(&a->bytes, s, n) != 0 ||
      tide_buf_push(&a->bytes, 0) != 0)
    return TIDE_ENOMEM;
  return 0;
}

/* Reads the folder list at idx into out; 0, or a failure code with the
** message in a->err. */
static int copy_folders(lua_State *L, Apply *a, int idx, const char *what,
                        tide_Buf *out) {
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
  for (i = 1; i <= n; i++) {
    size_t off;
    int rc;
    if (lua_rawgeti(L, idx, i) != LUA_TSTRING) {
      snprintf(a->err, sizeof a->err, "%s[%lld] must be a string", what,
               (long long)i);
      return TIDE_EINVAL;
    }
    rc = copy_string(L, a, -1, 1, &off, NULL);
    lua_pop(L, 1);
    if (rc == TIDE_EINVAL)
      snprintf(a->err, sizeof a->err, "%s[%lld] holds a NUL byte", what,
               (long long)i);
    if (rc == 0) rc = tide_buf_append(out, &off, sizeof off);
    if (rc != 0) return rc;
  }
  return 0;
}

/* Reads one step, the table at the top; 0 or a failure code with the
** message in a->err. */
static int copy_step(lua_State *L, Apply *a, lua_Integer i,
                     lua_Integer nsyncs) {
  Step s;
  int rc, t;
  memset(&s, 0, sizeof s);
  if (!lua_istable(L, -1)) {
    snprintf(a->err, sizeof a->err, "steps[%lld] must be a table",
             (long long)i);
    return TIDE_EINVAL;
  }
  if (lua_rawgeti(L, -1, 1) != LUA_TSTRING) {
    lua_pop(L, 1);
    snprintf(a->err, sizeof a->err, "steps[%lld][1] must be a path",
             (long long)i);
    return TIDE_EINVAL;
  }
  rc = copy_string(L, a, -1, 1, &s.path, NULL);
  lua_pop(L, 1);
  if (rc == TIDE_EINVAL)
    snprintf(a->err, sizeof a->err, "steps[%lld][1] holds a NUL byte",
             (long long)i);
  if (rc != 0) return rc;
  t = lua_rawgeti(L, -1, 2);
  if (t == LUA_TSTRING) {
    rc = copy_string(L, a, -1, 0, &s.data, &s.data_len);
  } else if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    s.remove = 1;
  } else {
    snprintf(a->err, sizeof a->err,
             "steps[%lld][2] must be the content or false", (long long)i);
    rc = TIDE_EINVAL;
  }
  lua_pop(L, 1);
  if (rc != 0) return rc;
  t = lua_rawgeti(L, -1, 3);
  if (t != LUA_TNIL) {
    int ok;
    s.sync = lua_tointegerx(L, -1, &ok);
    if (!ok || s.sync < 1 || s.sync > nsyncs) {
      lua_pop(L, 1);
      snprintf(a->err, sizeof a->err,
               "steps[%lld][3] must be an index into syncs", (long long)i);
      return TIDE_EINVAL;
    }
  }
  lua_pop(L, 1);
  return tide_buf_append(&a->steps, &s, sizeof s);
}

static int copy_batch(lua_State *L, Apply *a) {
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, 1);
  lua_Integer nsyncs = (lua_Integer)lua_rawlen(L, 2);
  int rc;
  if ((rc = copy_folders(L, a, 2, "syncs", &a->syncs)) != 0 ||
      (rc = copy_folders(L, a, 3, "rmdirs", &a->rmdirs)) != 0)
    return rc;
  for (i = 0; i < nsyncs; i++)
    if ((rc = tide_buf_push(&a->touched, 0)) != 0) return rc;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    rc = copy_step(L, a, i, nsyncs);
    lua_pop(L, 1);
    if (rc != 0) return rc;
  }
  return 0;
}

/* The job until the scheduler owns it: a raise on the way (a bad step,
** out of memory) leaves the holder to the collector, which frees it. */
typedef struct {
  Apply *a;
} Holder;

static int holder_gc(lua_State *L) {
  Holder *h = lua_touserdata(L, 1);
  if (h->a) apply_free(h->a);
  h->a = NULL;
  return 0;
}

/* fs_apply(steps, syncs, rmdirs) */
static int fs_apply(lua_State *L) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  tide_Sched *s;
  Holder *h;
  Apply *a;
  int anchor, rc;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  h = lua_newuserdatauv(L, sizeof *h, 0);
  h->a = NULL;
  luaL_setmetatable(L, HOLDER_TYPE);
  a = alloc(ud, NULL, 0, sizeof *a);
  if (a == NULL) return luaL_error(L, "not enough memory");
  memset(a, 0, sizeof *a);
  h->a = a;
  a->alloc = alloc;
  a->ud = ud;
  tide_buf_init(&a->bytes, buf_alloc, a);
  tide_buf_init(&a->steps, buf_alloc, a);
  tide_buf_init(&a->syncs, buf_alloc, a);
  tide_buf_init(&a->rmdirs, buf_alloc, a);
  tide_buf_init(&a->touched, buf_alloc, a);
  if ((rc = copy_batch(L, a)) != 0) {
    if (rc == TIDE_ENOMEM) snprintf(a->err, sizeof a->err, "not enough memory");
    return luaL_error(L, "fs_apply: %s", a->err);
  }
  a->w.cancel = apply_cancel;
  a->w.release = apply_release;
  a->req.data = a;
  s = tide_lsched_suspend(L, &anchor);
  h->a = NULL; /* nothing below raises: the wait or the caller frees it */
  if (s != NULL &&
      uv_queue_work(tide_sched_loop(s), &a->req, apply_work, apply_after) == 0) {
    tide_sched_wait_begin(s, &a->w, anchor);
    return tide_lsched_yield(L, (lua_KContext)a, apply_k);
  }
  apply_work(&a->req);
  a->w.done = 1;
  return apply_result(L, a);
}

void tide_lfs_apply_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"fs_apply", fs_apply},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, HOLDER_TYPE)) {
    lua_pushcfunction(L, holder_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, funcs, 0);
}
