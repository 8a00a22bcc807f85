/* Parallel Lua's worker threads (workers.h). */
#include <string.h>

#include <lauxlib.h>

#include "workers.h"

typedef struct Worker {
  tide_Workers *pool;
  uv_thread_t thread;
  int started;
} Worker;

/* How often the loop thread looks for finished jobs while some are out,
** in ms: a worker wakes the loop itself only when its queue runs dry. */
#define TICK_MS 1

/* The largest buffer a spare job keeps, in bytes. */
#define SPARE_BUF_MAX (64u * 1024u)

/* The loop handles, allocated apart from the pool: their memory must
** outlive the pool until both close callbacks ran. */
typedef struct {
  uv_async_t h;
  uv_timer_t tick;
  int open;            /* handles not closed yet */
  tide_Alloc alloc;
  void *ud;
} Async;

struct tide_Workers {
  tide_Alloc alloc;
  void *ud;
  uv_loop_t *loop;
  uv_async_t *async;     /* an Async's handle */
  uv_mutex_t lock;       /* guards queue, done, stopping */
  uv_cond_t ready;       /* a job was queued, or stop */
  tide_Job *queue, *queue_tail, *done;
  uv_timer_t *tick;      /* the Async's timer */
  tide_Job *spares;      /* released jobs, kept for the next calls */
  tide_Job live;         /* sentinel: jobs handed out, not released */
  int stopping;
  size_t out;            /* jobs submitted and not delivered (loop thread) */
  tide_WorkerSetup setup;
  void *arg;
  int n;
  Worker *workers;
};

/* A released job goes to the spares, or is freed once its pool is gone. */
/* One job fewer out: the loop is no longer kept for the pool once none
** is. Loop thread only. */
static void one_less(tide_Workers *p) {
  if (--p->out == 0) {
    uv_unref((uv_handle_t *)p->async);
    uv_timer_stop(p->tick);
  }
}

static void job_release(tide_Wait *w) {
  tide_Job *job = (tide_Job *)w;
  tide_Workers *p = job->pool;
  if (p == NULL) {
    tide_job_free(job);
    return;
  }
  job->live_prev->live_next = job->live_next;
  job->live_next->live_prev = job->live_prev;
  /* A spare keeps small buffers only: one large call does not hold its
  ** memory for the session. */
  if (job->in.cap > SPARE_BUF_MAX) tide_buf_close(&job->in);
  if (job->out.cap > SPARE_BUF_MAX) tide_buf_close(&job->out);
  job->next = p->spares;
  p->spares = job;
}

/* Cancelled: taken off the queue if no thread took it yet. */
static void job_cancel(tide_Wait *w) {
  tide_Job *job = (tide_Job *)w, **p;
  tide_Workers *pool = job->pool;
  int found = 0;
  uv_mutex_lock(&pool->lock);
  for (p = &pool->queue; *p; p = &(*p)->next) {
    if (*p == job) {
      *p = job->next;
      found = 1;
      break;
    }
  }
  if (found) {
    pool->queue_tail = NULL;
    for (p = &pool->queue; *p; p = &(*p)->next) pool->queue_tail = *p;
  }
  uv_mutex_unlock(&pool->lock);
  if (found) {
    job->cancelled = 1;
    one_less(pool);
    tide_wait_done(&job->w);
  }
}

tide_Job *tide_job_new(tide_Workers *p) {
  tide_Job *job = p->spares;
  if (job != NULL) {
    p->spares = job->next;
    job->in.len = job->out.len = 0;
  } else {
    job = p->alloc(p->ud, NULL, 0, sizeof *job);
    if (job == NULL) return NULL;
    memset(job, 0, sizeof *job);
    job->alloc = p->alloc;
    job->ud = p->ud;
    tide_buf_init(&job->in, p->alloc, p->ud);
    tide_buf_init(&job->out, p->alloc, p->ud);
  }
  memset(&job->w, 0, sizeof job->w);
  job->w.cancel = job_cancel;
  job->w.release = job_release;
  job->next = NULL;
  job->failed = job->cancelled = 0;
  job->pool = p;
  job->live_next = p->live.live_next;
  job->live_prev = &p->live;
  p->live.live_next->live_prev = job;
  p->live.live_next = job;
  return job;
}

void tide_job_free(tide_Job *job) {
  if (job->pool != NULL) { /* never released: off the live list */
    job->live_prev->live_next = job->live_next;
    job->live_next->live_prev = job->live_prev;
  }
  tide_buf_close(&job->in);
  tide_buf_close(&job->out);
  job->alloc(job->ud, job, sizeof *job, 0);
}

/* The loop thread: delivers the jobs the threads finished, in order. */
static void on_done(uv_async_t *a) {
  tide_Workers *p = a->data;
  tide_Job *list, *rev = NULL;
  uv_mutex_lock(&p->lock);
  list = p->done;
  p->done = NULL;
  uv_mutex_unlock(&p->lock);
  while (list) { /* the done list is newest first */
    tide_Job *next = list->next;
    list->next = rev;
    rev = list;
    list = next;
  }
  while (rev) {
    tide_Job *next = rev->next;
    one_less(p);
    tide_wait_done(&rev->w);
    rev = next;
  }
}

static void fail_job(tide_Job *job, const char *msg) {
  job->failed = 1;
  job->out.len = 0;
  tide_buf_append(&job->out, msg, strlen(msg));
}

/* Runs one job in L, whose stack holds the runner (or, when the state
** could not be made, its message) at index 1: runner(job), the job as a
** light userdata, fills job->out. */
static void run_job(lua_State *L, int ready, tide_Job *job) {
  const char *s;
  if (!ready) {
    fail_job(job, lua_tostring(L, 1));
    return;
  }
  job->out.len = 0;
  lua_pushvalue(L, 1);
  lua_pushlightuserdata(L, job);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    s = lua_tostring(L, -1);
    fail_job(job, s ? s : "the worker's runner failed");
  }
  lua_settop(L, 1);
}

static void worker_main(void *arg) {
  Worker *w = arg;
  tide_Workers *p = w->pool;
  lua_State *L = lua_newstate((lua_Alloc)p->alloc, p->ud);
  int ready = 0, notify;
  if (L != NULL) {
    lua_pushcfunction(L, p->setup);
    lua_pushlightuserdata(L, p->arg);
    ready = lua_pcall(L, 1, 1, 0) == LUA_OK && lua_isfunction(L, -1);
    if (!ready && !lua_isstring(L, -1)) {
      lua_settop(L, 0);
      lua_pushliteral(L, "the worker's setup returned no runner");
    }
  }
  for (;;) {
    tide_Job *job;
    uv_mutex_lock(&p->lock);
    while (p->queue == NULL && !p->stopping) uv_cond_wait(&p->ready, &p->lock);
    if (p->stopping) {
      uv_mutex_unlock(&p->lock);
      break;
    }
    job = p->queue;
    p->queue = job->next;
    if (p->queue == NULL) p->queue_tail = NULL;
    uv_mutex_unlock(&p->lock);
    if (L == NULL)
      fail_job(job, "not enough memory for a worker's Lua state");
    else
      run_job(L, ready, job);
    uv_mutex_lock(&p->lock);
    job->next = p->done;
    p->done = job;
    /* The loop is woken at once when the queue ran dry; otherwise its
    ** tick collects the answers within TICK_MS: a run of short jobs wakes
    ** it once a tick, not once a job, and no answer waits for another
    ** job to end. */
    notify = p->queue == NULL || p->stopping;
    uv_mutex_unlock(&p->lock);
    if (notify) uv_async_send(p->async);
  }
  if (L != NULL) lua_close(L);
}

static void async_closed(uv_handle_t *h) {
  Async *a = h->data;
  if (--a->open == 0) a->alloc(a->ud, a, sizeof *a, 0);
}

static void on_tick(uv_timer_t *t) { on_done(t->data); }

int tide_workers_new(tide_Workers **out, uv_loop_t *loop, int n,
                     tide_WorkerSetup setup, void *arg, tide_Alloc alloc,
                     void *ud) {
  tide_Workers *p;
  int i;
  *out = NULL;
  p = alloc(ud, NULL, 0, sizeof *p);
  if (p == NULL) return TIDE_ENOMEM;
  memset(p, 0, sizeof *p);
  p->alloc = alloc;
  p->ud = ud;
  p->loop = loop;
  p->setup = setup;
  p->arg = arg;
  p->n = n;
  p->live.live_next = p->live.live_prev = &p->live;
  {
    Async *a = alloc(ud, NULL, 0, sizeof *a);
    p->workers = alloc(ud, NULL, 0, (size_t)n * sizeof *p->workers);
    if (p->workers == NULL || a == NULL) {
      if (p->workers)
        alloc(ud, p->workers, (size_t)n * sizeof *p->workers, 0);
      if (a) alloc(ud, a, sizeof *a, 0);
      alloc(ud, p, sizeof *p, 0);
      return TIDE_ENOMEM;
    }
    a->alloc = alloc;
    a->ud = ud;
    a->open = 2;
    p->async = &a->h;
    p->tick = &a->tick;
  }
  memset(p->workers, 0, (size_t)n * sizeof *p->workers);
  uv_mutex_init(&p->lock);
  uv_cond_init(&p->ready);
  uv_async_init(loop, p->async, on_done);
  p->async->data = p;
  uv_unref((uv_handle_t *)p->async);
  uv_timer_init(loop, p->tick);
  p->tick->data = p->async;
  for (i = 0; i < n; i++) {
    p->workers[i].pool = p;
    if (uv_thread_create(&p->workers[i].thread, worker_main,
                         &p->workers[i]) != 0) {
      tide_workers_free(p);
      return TIDE_EIO;
    }
    p->workers[i].started = 1;
  }
  *out = p;
  return 0;
}

void tide_workers_free(tide_Workers *p) {
  int i;
  tide_Job *job;
  if (p == NULL) return;
  uv_mutex_lock(&p->lock);
  p->stopping = 1;
  uv_cond_broadcast(&p->ready);
  uv_mutex_unlock(&p->lock);
  for (i = 0; i < p->n; i++)
    if (p->workers[i].started) uv_thread_join(&p->workers[i].thread);
  /* What the threads finished, then what none took. */
  on_done(p->async);
  while ((job = p->queue) != NULL) {
    p->queue = job->next;
    job->cancelled = 1;
    one_less(p);
    tide_wait_done(&job->w);
  }
  /* The jobs not released yet outlive the pool: they free themselves. */
  for (job = p->live.live_next; job != &p->live; job = job->live_next)
    job->pool = NULL;
  while ((job = p->spares) != NULL) {
    p->spares = job->next;
    job->pool = NULL;
    tide_job_free(job);
  }
  /* Both close callbacks find the Async through data. */
  p->tick->data = p->async->data = (Async *)p->async;
  uv_close((uv_handle_t *)p->tick, async_closed);
  uv_close((uv_handle_t *)p->async, async_closed);
  uv_cond_destroy(&p->ready);
  uv_mutex_destroy(&p->lock);
  p->alloc(p->ud, p->workers, (size_t)p->n * sizeof *p->workers, 0);
  p->alloc(p->ud, p, sizeof *p, 0);
}

int tide_workers_count(const tide_Workers *p) { return p->n; }

void tide_workers_submit(tide_Workers *p, tide_Job *job) {
  job->next = NULL;
  if (p->out++ == 0) {
    uv_ref((uv_handle_t *)p->async);
    uv_timer_start(p->tick, on_tick, TICK_MS, TICK_MS);
  }
  uv_mutex_lock(&p->lock);
  if (p->queue_tail)
    p->queue_tail->next = job;
  else
    p->queue = job;
  p->queue_tail = job;
  uv_cond_signal(&p->ready);
  uv_mutex_unlock(&p->lock);
}

void tide_workers_wait(tide_Workers *p, tide_Job *job) {
  while (!job->w.done) uv_run(p->loop, UV_RUN_ONCE);
}
