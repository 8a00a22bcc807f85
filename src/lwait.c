/*
** Lua binding of the calls that wait without blocking: core.exec (a
** program run through libuv, no shell), core.sleep, and the reads and
** hashes of large files on libuv's thread pool. Inside a
** component's task they suspend the task on the engine's scheduler
** (scheduler.h) and let the other tasks run; anywhere else (outside a
** component, in a coroutine of the user's own, where the call cannot
** yield) they block the caller, exec on a loop of its own.
**
** exec(argv, opts) -> { status, signal, stdout, stderr } | nil, message
**   argv: a list of strings, argv[1] the program (found through PATH when
**   it has no slash). opts: stdin (a string written to the program, then
**   closed; without it the program reads nothing), cwd, env (a table of
**   NAME = value added to the inherited environment; false removes one),
**   timeout (seconds: the program is killed with SIGKILL once it is over,
**   and the call returns nil and a message saying so). status is the exit
**   status (nil when a signal ended it), signal the signal's number.
**   The whole output is kept: a program writing gigabytes needs a file.
** sleep(seconds)
** read_file(path [, with_fp]) -> bytes [, fingerprint] | nil, message
**   The whole file, read (and, with with_fp, fingerprinted as
**   fingerprint_bytes does) on libuv's thread pool: for large files, whose
**   reading and hashing would hold every other component up. Its buffer
**   comes from realloc, not the host's allocator, since a pool thread
**   fills it.
** hash_file(path) -> fingerprint | nil, message
**   The file's content fingerprint (16 raw bytes, as fingerprint_file
**   computes it), hashed on libuv's thread pool as it is read, without
**   keeping the bytes: for a large file whose content only decides
**   whether its component runs.
**
** Misuse raises (argv or an option of the wrong type, an unknown option);
** a program that cannot be started or that timed out returns nil and a
** message naming the program.
**
** Writing a program's stdin when it exits without reading it would raise
** SIGPIPE in this process, whose default action ends it: the first exec
** with stdin ignores SIGPIPE (as Python and Node do) unless the host set
** a handler of its own.
*/
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "buf.h"
#include "fingerprint.h"
#include "lcore.h"
#include "scheduler.h"
#include "walk.h"

extern char **environ;

/* ---- exec ---- */

typedef struct {
  tide_Wait w;
  lua_Alloc alloc;
  void *ud;
  uv_process_t proc;
  uv_pipe_t in, out, err;
  uv_timer_t timer;
  uv_write_t write_req;
  char *input;         /* a copy of stdin's bytes, owned */
  size_t input_len;
  tide_Buf out_buf, err_buf;
  int handles;         /* handles not closed yet */
  int exited, timed_out;
  int overflow;        /* an append failed: the output is incomplete */
  int spawn_error;     /* a libuv error code, or 0 */
  int64_t status;
  int term_signal;
  double timeout;
  char chunk[65536];   /* what one read hands over */
} Exec;

static void *buf_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  Exec *x = ud;
  return x->alloc(x->ud, ptr, osize, nsize);
}

static void exec_closed(uv_handle_t *h) {
  Exec *x = h->data;
  if (--x->handles == 0) tide_wait_done(&x->w);
}

static void close_once(Exec *x, uv_handle_t *h) {
  (void)x;
  if (!uv_is_closing(h)) uv_close(h, exec_closed);
}

static void exec_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  Exec *x = h->data;
  (void)hint;
  buf->base = x->chunk;
  buf->len = sizeof x->chunk;
}

static void exec_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  Exec *x = s->data;
  tide_Buf *to = s == (uv_stream_t *)&x->out ? &x->out_buf : &x->err_buf;
  if (n > 0) {
    /* Out of memory drops the rest: the result says so. */
    if (!x->overflow && tide_buf_append(to, buf->base, (size_t)n) != 0)
      x->overflow = 1;
  } else if (n < 0) {
    close_once(x, (uv_handle_t *)s);
  }
}

static void exec_written(uv_write_t *req, int status) {
  Exec *x = req->data;
  (void)status; /* a program that exits without reading: its choice */
  close_once(x, (uv_handle_t *)&x->in);
}

static void exec_exited(uv_process_t *p, int64_t status, int sig) {
  Exec *x = p->data;
  x->exited = 1;
  x->status = status;
  x->term_signal = sig;
  close_once(x, (uv_handle_t *)&x->timer);
  close_once(x, (uv_handle_t *)p);
  if (x->timed_out) {
    /* What it left running may hold the pipes open: not waited for. */
    close_once(x, (uv_handle_t *)&x->out);
    close_once(x, (uv_handle_t *)&x->err);
    if (x->input) close_once(x, (uv_handle_t *)&x->in);
  }
}

static void exec_timed_out(uv_timer_t *t) {
  Exec *x = t->data;
  x->timed_out = 1;
  if (!x->exited) uv_process_kill(&x->proc, SIGKILL);
}

static void exec_cancel(tide_Wait *w) {
  Exec *x = (Exec *)w;
  x->timed_out = 1;
  if (!x->exited && !uv_is_closing((uv_handle_t *)&x->proc))
    uv_process_kill(&x->proc, SIGKILL);
  close_once(x, (uv_handle_t *)&x->out);
  close_once(x, (uv_handle_t *)&x->err);
  if (x->input) close_once(x, (uv_handle_t *)&x->in);
}

static void exec_release(tide_Wait *w) {
  Exec *x = (Exec *)w;
  tide_buf_close(&x->out_buf);
  tide_buf_close(&x->err_buf);
  if (x->input) x->alloc(x->ud, x->input, x->input_len, 0);
  x->alloc(x->ud, x, sizeof *x, 0);
}

/* The strings of argv (the table at idx) as a NULL-terminated array in a
** userdata it pushes; the strings stay on the table, which the caller
** keeps. */
static char **check_argv(lua_State *L, int idx) {
  lua_Integer i, n;
  char **argv;
  luaL_checktype(L, idx, LUA_TTABLE);
  n = (lua_Integer)lua_rawlen(L, idx);
  luaL_argcheck(L, n >= 1, idx, "argv must list the program and its "
                "arguments");
  argv = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *argv, 0);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *s;
    if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
      luaL_error(L, "tide.exec: argv[%d] must be a string, got %s", (int)i,
                 luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &len);
    if (strlen(s) != len)
      luaL_error(L, "tide.exec: argv[%d] holds a NUL byte", (int)i);
    argv[i - 1] = (char *)s;
    lua_pop(L, 1); /* the table keeps the string */
  }
  argv[n] = NULL;
  return argv;
}

/* The environment for opts.env (the table at idx): the inherited one with
** its names replaced, added or removed. Pushes a table that keeps the
** strings and a userdata holding the array. */
static char **build_env(lua_State *L, int idx) {
  size_t n = 0, i, k = 0;
  char **env;
  int keep;
  lua_newtable(L); /* NAME -> "NAME=value", or false */
  keep = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    size_t nl;
    const char *name;
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "tide.exec: env names must be strings");
    name = lua_tolstring(L, -2, &nl);
    if (nl == 0 || strchr(name, '=') || strlen(name) != nl)
      luaL_error(L, "tide.exec: env name %s is not a variable name", name);
    if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) {
      lua_pushvalue(L, -2);
      lua_pushboolean(L, 0);
    } else if (lua_type(L, -1) == LUA_TSTRING ||
               lua_type(L, -1) == LUA_TNUMBER) {
      size_t vl;
      const char *v = lua_tolstring(L, -1, &vl);
      if (strlen(v) != vl)
        luaL_error(L, "tide.exec: env %s holds a NUL byte", name);
      lua_pushvalue(L, -2);
      lua_pushfstring(L, "%s=%s", name, v);
    } else {
      luaL_error(L, "tide.exec: env %s must be a string, a number or false",
                 name);
    }
    lua_rawset(L, keep);
    lua_pop(L, 1);
  }
  for (i = 0; environ[i]; i++) n++;
  lua_pushnil(L);
  while (lua_next(L, keep) != 0) {
    n++;
    lua_pop(L, 1);
  }
  env = lua_newuserdatauv(L, (n + 1) * sizeof *env, 0);
  for (i = 0; environ[i]; i++) {
    const char *eq = strchr(environ[i], '=');
    if (eq != NULL) {
      lua_pushlstring(L, environ[i], (size_t)(eq - environ[i]));
      if (lua_rawget(L, keep) != LUA_TNIL) {
        lua_pop(L, 1);
        continue; /* replaced or removed */
      }
      lua_pop(L, 1);
    }
    env[k++] = environ[i];
  }
  lua_pushnil(L);
  while (lua_next(L, keep) != 0) {
    if (lua_type(L, -1) == LUA_TSTRING) env[k++] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  env[k] = NULL;
  return env;
}

static void ignore_sigpipe(void) {
  struct sigaction old;
  if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);
}

/* The result of a finished exec, pushed: the table, or nil and a
** message. Releases x. */
static int exec_result(lua_State *L, Exec *x, const char *program) {
  int n;
  if (x->spawn_error) {
    luaL_pushfail(L);
    lua_pushfstring(L, "tide.exec: cannot run %s: %s", program,
                    uv_strerror(x->spawn_error));
    n = 2;
  } else if (x->timed_out) {
    luaL_pushfail(L);
    lua_pushfstring(L, "tide.exec: %s did not finish within %f s and was "
                    "killed", program, x->timeout);
    n = 2;
  } else if (x->overflow) {
    luaL_pushfail(L);
    lua_pushfstring(L, "tide.exec: the output of %s does not fit in memory",
                    program);
    n = 2;
  } else {
    lua_createtable(L, 0, 4);
    if (x->term_signal == 0) {
      lua_pushinteger(L, (lua_Integer)x->status);
      lua_setfield(L, -2, "status");
    } else {
      lua_pushinteger(L, x->term_signal);
      lua_setfield(L, -2, "signal");
    }
    lua_pushlstring(L, (const char *)x->out_buf.data, x->out_buf.len);
    lua_setfield(L, -2, "stdout");
    lua_pushlstring(L, (const char *)x->err_buf.data, x->err_buf.len);
    lua_setfield(L, -2, "stderr");
    n = 1;
  }
  tide_sched_wait_end(&x->w);
  return n;
}

/* Starts x on loop: the program runs, or x->spawn_error says why not; in
** both cases x is done once its handles are closed. */
static void exec_start(Exec *x, uv_loop_t *loop, char **argv, char **env,
                       const char *cwd) {
  uv_process_options_t o;
  uv_stdio_container_t stdio[3];
  int rc;
  memset(&o, 0, sizeof o);
  uv_pipe_init(loop, &x->out, 0);
  uv_pipe_init(loop, &x->err, 0);
  uv_timer_init(loop, &x->timer);
  x->out.data = x->err.data = x->timer.data = x->proc.data = x;
  x->write_req.data = x;
  x->handles = 4; /* out, err, timer, process */
  if (x->input) {
    uv_pipe_init(loop, &x->in, 0);
    x->in.data = x;
    x->handles++;
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&x->in;
  } else {
    stdio[0].flags = UV_IGNORE;
  }
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&x->out;
  stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[2].data.stream = (uv_stream_t *)&x->err;
  o.file = argv[0];
  o.args = argv;
  o.env = env;
  o.cwd = cwd;
  o.stdio = stdio;
  o.stdio_count = 3;
  o.exit_cb = exec_exited;
  rc = uv_spawn(loop, &x->proc, &o);
  if (rc != 0) {
    x->spawn_error = rc;
    uv_close((uv_handle_t *)&x->proc, exec_closed);
    uv_close((uv_handle_t *)&x->timer, exec_closed);
    uv_close((uv_handle_t *)&x->out, exec_closed);
    uv_close((uv_handle_t *)&x->err, exec_closed);
    if (x->input) uv_close((uv_handle_t *)&x->in, exec_closed);
    return;
  }
  uv_read_start((uv_stream_t *)&x->out, exec_alloc, exec_read);
  uv_read_start((uv_stream_t *)&x->err, exec_alloc, exec_read);
  if (x->input) {
    uv_buf_t b = uv_buf_init(x->input, (unsigned)x->input_len);
    if (uv_write(&x->write_req, (uv_stream_t *)&x->in, &b, 1,
                 exec_written) != 0)
      close_once(x, (uv_handle_t *)&x->in);
  }
  if (x->timeout > 0) {
    uv_update_time(x->timer.loop); /* a timeout from now (see sleep_for) */
    uv_timer_start(&x->timer, exec_timed_out,
                   (uint64_t)(x->timeout * 1000.0 + 0.999), 0);
  }
}

static int exec_k(lua_State *L, int status, lua_KContext ctx) {
  Exec *x = (Exec *)ctx;
  (void)status;
  return exec_result(L, x, lua_tostring(L, 3));
}

static const char *const exec_options[] = {"stdin", "cwd", "env", "timeout",
                                           NULL};

/* exec(argv [, opts]) */
static int exec(lua_State *L) {
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  char **argv, **env = NULL;
  const char *cwd = NULL, *input = NULL;
  size_t input_len = 0;
  double timeout = 0;
  tide_Sched *s;
  int anchor;
  Exec *x;
  lua_settop(L, 2);
  argv = check_argv(L, 1);
  /* 3: the program, for messages (kept across the wait); 4: argv. */
  lua_rawgeti(L, 1, 1);
  lua_insert(L, 3);
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2) != 0) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                      : NULL;
      int i, known = 0;
      for (i = 0; k && exec_options[i]; i++)
        if (strcmp(k, exec_options[i]) == 0) known = 1;
      if (!known)
        return luaL_error(L, "tide.exec: unknown option %s",
                          k ? k : luaL_typename(L, -2));
      lua_pop(L, 1);
    }
    if (lua_getfield(L, 2, "stdin") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "tide.exec: stdin must be a string");
      input = lua_tolstring(L, -1, &input_len);
    }
    if (lua_getfield(L, 2, "cwd") != LUA_TNIL) {
      size_t len;
      if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "tide.exec: cwd must be a string");
      cwd = lua_tolstring(L, -1, &len);
      if (strlen(cwd) != len)
        return luaL_error(L, "tide.exec: cwd holds a NUL byte");
    }
    if (lua_getfield(L, 2, "timeout") != LUA_TNIL) {
      if (!lua_isnumber(L, -1) || !(lua_tonumber(L, -1) > 0) ||
          lua_tonumber(L, -1) > 1e9)
        return luaL_error(L, "tide.exec: timeout must be a positive number "
                          "of seconds");
      timeout = (double)lua_tonumber(L, -1);
    }
    if (lua_getfield(L, 2, "env") != LUA_TNIL) {
      if (!lua_istable(L, -1))
        return luaL_error(L, "tide.exec: env must be a table");
      env = build_env(L, lua_gettop(L));
    }
  }
  /* Before anything is allocated: it may raise. */
  s = tide_lsched_suspend(L, &anchor);
  x = alloc(ud, NULL, 0, sizeof *x);
  if (x == NULL) return luaL_error(L, "not enough memory");
  memset(x, 0, offsetof(Exec, chunk));
  x->alloc = alloc;
  x->ud = ud;
  x->timeout = timeout;
  x->w.cancel = exec_cancel;
  x->w.release = exec_release;
  tide_buf_init(&x->out_buf, buf_alloc, x);
  tide_buf_init(&x->err_buf, buf_alloc, x);
  if (input != NULL) {
    x->input = alloc(ud, NULL, 0, input_len ? input_len : 1);
    if (x->input == NULL) {
      alloc(ud, x, sizeof *x, 0);
      return luaL_error(L, "not enough memory");
    }
    memcpy(x->input, input, input_len);
    x->input_len = input_len;
    ignore_sigpipe();
  }
  if (s != NULL) {
    tide_sched_wait_begin(s, &x->w, anchor);
    exec_start(x, tide_sched_loop(s), argv, env, cwd);
    lua_settop(L, 3);
    return tide_lsched_yield(L, (lua_KContext)x, exec_k);
  }
  {
    /* Outside a task: the caller blocks, on a loop of its own. */
    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    if (rc != 0) {
      exec_release(&x->w);
      luaL_pushfail(L);
      lua_pushfstring(L, "tide.exec: cannot create an event loop: %s",
                      uv_strerror(rc));
      return 2;
    }
    exec_start(x, &loop, argv, env, cwd);
    while (!x->w.done) uv_run(&loop, UV_RUN_ONCE);
    uv_loop_close(&loop);
    lua_settop(L, 3);
    return exec_result(L, x, lua_tostring(L, 3));
  }
}

/* ---- sleep ---- */

typedef struct {
  tide_Wait w;
  lua_Alloc alloc;
  void *ud;
  uv_timer_t timer;
} Sleep;

static void sleep_closed(uv_handle_t *h) { tide_wait_done(h->data); }

static void sleep_over(uv_timer_t *t) {
  uv_close((uv_handle_t *)t, sleep_closed);
}

static void sleep_cancel(tide_Wait *w) {
  Sleep *z = (Sleep *)w;
  if (!uv_is_closing((uv_handle_t *)&z->timer))
    uv_close((uv_handle_t *)&z->timer, sleep_closed);
}

static void sleep_release(tide_Wait *w) {
  Sleep *z = (Sleep *)w;
  z->alloc(z->ud, z, sizeof *z, 0);
}

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  tide_sched_wait_end((tide_Wait *)ctx);
  lua_settop(L, 0);
  return 0;
}

/* sleep(seconds) */
static int sleep_for(lua_State *L) {
  lua_Number seconds = luaL_checknumber(L, 1);
  uint64_t ms;
  tide_Sched *s;
  int anchor;
  luaL_argcheck(L, seconds >= 0 && seconds < 1e9, 1,
                "must be a number of seconds, 0 or more");
  ms = (uint64_t)(seconds * 1000.0 + 0.5);
  s = tide_lsched_suspend(L, &anchor);
  if (s != NULL) {
    void *ud;
    lua_Alloc alloc = lua_getallocf(L, &ud);
    Sleep *z = alloc(ud, NULL, 0, sizeof *z);
    if (z == NULL) return luaL_error(L, "not enough memory");
    memset(z, 0, sizeof *z);
    z->alloc = alloc;
    z->ud = ud;
    z->w.cancel = sleep_cancel;
    z->w.release = sleep_release;
    uv_timer_init(tide_sched_loop(s), &z->timer);
    z->timer.data = z;
    tide_sched_wait_begin(s, &z->w, anchor);
    /* From now, not from the loop's cached time: Lua that ran long
    ** since the loop last looked at the clock would shorten the sleep. */
    uv_update_time(tide_sched_loop(s));
    uv_timer_start(&z->timer, sleep_over, ms, 0);
    return tide_lsched_yield(L, (lua_KContext)z, sleep_k);
  }
  uv_sleep((unsigned)ms);
  return 0;
}

/* ---- read_file and hash_file ---- */

enum { READ_BYTES, READ_WITH_FP, READ_FP_ONLY };

typedef struct {
  tide_Wait w;
  lua_Alloc alloc;
  void *ud;
  uv_work_t req;
  char *path;          /* a copy, owned */
  size_t path_len;
  int mode;            /* READ_BYTES, READ_WITH_FP or READ_FP_ONLY */
  tide_Buf buf;        /* filled by a pool thread: realloc's */
  tide_Fp fp;
  int rc;
  char err[512];
} Read;

/* On a pool thread: nothing here touches Lua or the loop. */
static void read_work(uv_work_t *req) {
  Read *r = req->data;
  if (r->mode == READ_FP_ONLY) {
    r->rc = tide_fp_file(&r->fp, r->path, r->err, sizeof r->err);
    return;
  }
  r->rc = tide_file_read(r->path, &r->buf, r->err, sizeof r->err);
  if (r->rc == 0 && r->mode == READ_WITH_FP)
    tide_fp_bytes(&r->fp, r->buf.data, r->buf.len);
}

static void read_after(uv_work_t *req, int status) {
  Read *r = req->data;
  if (status == UV_ECANCELED) {
    r->rc = TIDE_EIO;
    snprintf(r->err, sizeof r->err, "%s: the read was cancelled", r->path);
  }
  tide_wait_done(&r->w);
}

/* Cancelled: a read no thread took yet is dropped (read_after follows);
** one under way runs to its end. */
static void read_cancel(tide_Wait *w) {
  Read *r = (Read *)w;
  uv_cancel((uv_req_t *)&r->req);
}

static void read_release(tide_Wait *w) {
  Read *r = (Read *)w;
  tide_buf_close(&r->buf);
  r->alloc(r->ud, r->path, r->path_len + 1, 0);
  r->alloc(r->ud, r, sizeof *r, 0);
}

/* The outcome of a finished read, pushed; r is released. */
static int read_result(lua_State *L, Read *r) {
  int n;
  if (r->rc != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, r->err);
    n = 2;
  } else if (r->mode == READ_FP_ONLY) {
    lua_pushlstring(L, (const char *)r->fp.bytes, TIDE_FP_SIZE);
    n = 1;
  } else {
    lua_pushlstring(L, (const char *)r->buf.data, r->buf.len);
    n = 1;
    if (r->mode == READ_WITH_FP) {
      lua_pushlstring(L, (const char *)r->fp.bytes, TIDE_FP_SIZE);
      n = 2;
    }
  }
  tide_sched_wait_end(&r->w);
  return n;
}

static int read_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return read_result(L, (Read *)ctx);
}

/* Reads or hashes the file at argument 1 on the pool (inside a task) or
** here (anywhere else). */
static int read_on_pool(lua_State *L, int mode) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  int anchor;
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  tide_Sched *s;
  Read *r;
  luaL_argcheck(L, strlen(path) == len, 1, "holds a NUL byte");
  /* Before anything is allocated: it may raise. */
  s = tide_lsched_suspend(L, &anchor);
  r = alloc(ud, NULL, 0, sizeof *r);
  if (r == NULL) return luaL_error(L, "not enough memory");
  memset(r, 0, sizeof *r);
  r->alloc = alloc;
  r->ud = ud;
  r->path = alloc(ud, NULL, 0, len + 1);
  if (r->path == NULL) {
    alloc(ud, r, sizeof *r, 0);
    return luaL_error(L, "not enough memory");
  }
  memcpy(r->path, path, len + 1);
  r->path_len = len;
  r->mode = mode;
  r->w.cancel = read_cancel;
  r->w.release = read_release;
  r->req.data = r;
  tide_buf_init(&r->buf, tide_alloc_default, NULL);
  if (s != NULL &&
      uv_queue_work(tide_sched_loop(s), &r->req, read_work, read_after) == 0) {
    tide_sched_wait_begin(s, &r->w, anchor);
    return tide_lsched_yield(L, (lua_KContext)r, read_k);
  }
  /* Outside a task (or the pool refused): read here. */
  read_work(&r->req);
  r->w.done = 1;
  return read_result(L, r);
}

/* read_file(path [, with_fp]) */
static int read_file(lua_State *L) {
  return read_on_pool(L, lua_toboolean(L, 2) ? READ_WITH_FP : READ_BYTES);
}

/* hash_file(path) */
static int hash_file(lua_State *L) { return read_on_pool(L, READ_FP_ONLY); }

void tide_lwait_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"exec", exec},
    {"sleep", sleep_for},
    {"read_file", read_file},
    {"hash_file", hash_file},
    {NULL, NULL},
  };
  luaL_setfuncs(L, funcs, 0);
  lua_pushinteger(L, TIDE_LARGE_FILE);
  lua_setfield(L, -2, "large_file");
}
