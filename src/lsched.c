/*
** Lua binding of the scheduler (scheduler.h): the engine's scheduler as a Lua
** object, which runs a cycle's tasks as coroutines. sched.lua gives it its
** Lua shape (the worker function a coroutine runs, the task of a
** coroutine); engine.lua spawns and waits for component tasks through it.
**
** A task is a Lua table: a component frame, or an item of a concurrent
** map (task.item set: not counted as a component). The scheduler sets on
** it co
** (its coroutine, from its first run; false once it is done) and done,
** and for the few that need them waiters, expecting and listing. Every
** task runs runner(task) on a worker coroutine, and a coroutine whose
** task returned is kept for the next task. A task whose own code yields
** to the scheduler is failed through on_abort(task, message).
**
** sched:run([task]) resumes ready tasks in order until the queue is empty
** and no task waits on the loop (or until the given task is done), or
** until a stop is requested (lsignal.c): then the tasks not started stay
** queued. Between tasks the loop is polled when it has handles; when the
** queue is empty and tasks wait, the loop runs until one is ready.
**
** Waits from C (lwait.c): tide_lsched_suspend anchors the running task and
** returns the scheduler, the C function links its request and yields
** through tide_lsched_yield; the request's callback queues the task.
**
** sched:run_ready() is the same without ever waiting on the loop: for
** tasks that live across cycles (live sources' watch functions, on a
** scheduler of their own from core.sched_new, run between cycles).
**
** The object borrows the engine's scheduler (engine:cycle_begin hands it
** out); its close lets go of it. One from core.sched_new owns its
** scheduler; its close cancels the waits left and frees it. Misuse raises (a closed scheduler, a task
** that is not a table); the runner's own failures are the runner's to
** report.
*/
#include <lauxlib.h>
#include <lua.h>

#include "engine.h"
#include "lcore.h"
#include "scheduler.h"

#define SCHED_TYPE "tide.Sched"

/* Uservalue slots. */
enum {
  UV_ANCHORS = 1, /* anchor number -> task */
  UV_PARKED,      /* tasks waiting for a slot, a stack */
  UV_TASKS,       /* coroutine -> task (weak keys; sched.lua's task_of) */
  UV_POOL,        /* idle worker coroutines */
  UV_WORKER,      /* the function a worker coroutine runs */
  UV_RUNNER,
  UV_ABORT,
  UV_PROGRESS,
  UV_COUNT = UV_PROGRESS
};

/* What tasks yield to the scheduler: light userdata no user code has. */
static const char done_mark = 0, wait_mark = 0;
#define DONE ((void *)&done_mark)
#define WAIT ((void *)&wait_mark)

/* Registry key of the scheduler object whose run is innermost. */
static const char running_key = 0;
/* A wait_any registration, in the waiters of the tasks it watches, is a
** table whose [&any_key] is the task waiting (armed), or false once one
** of them woke it. One is kept in the list of tasks it watches (list
** [&any_key]), and a task watched holds it once (task[&held_key]). */
static const char any_key = 0;
static const char held_key = 0;

/* Idle worker coroutines kept: a coroutine is a thread and a stack for the
** collector to make and sweep. */
#define POOL_MAX 256

/* Tasks resumed between two polls of a loop that has handles. */
#define POLL_EVERY 64

typedef struct {
  tide_Sched *s; /* the engine's, or its own; NULL once let go of */
  int owned;     /* s is its own (core.sched_new): freed on close */
  int nowait;    /* in run_ready: an empty queue ends the run */
  int stopped;   /* a stop came while it ran */
  /* A host's step (live.lua): past deadline (uv_hrtime), or with nothing
  ** ready, run in driver gives the step back by yielding driver, once
  ** the step made some progress (a budget of 0 still moves the cycle on
  ** by one task or one part a step, instead of never). */
  uint64_t deadline;
  int progressed;
  lua_State *driver;
} Box;

static Box *check_box(lua_State *L, int idx) {
  Box *b = luaL_checkudata(L, idx, SCHED_TYPE);
  if (b->s == NULL) luaL_error(L, "scheduler is closed");
  return b;
}

static void enomem(lua_State *L) {
  lua_pushliteral(L, "not enough memory");
  lua_error(L);
}

/* Pushes uservalue slot uv of the scheduler at idx. */
static int slot(lua_State *L, int idx, int uv) {
  return lua_getiuservalue(L, idx, uv);
}

/* Pushes the task of the running coroutine of L, or nil; returns its
** type. The scheduler is at idx. */
static int push_current(lua_State *L, int idx) {
  slot(L, idx, UV_TASKS);
  lua_pushthread(L);
  lua_rawget(L, -2);
  lua_remove(L, -2);
  return lua_type(L, -1);
}

/* Anchors the task at tidx and queues it (front: back where it was);
** returns its anchor. */
static int queue(lua_State *L, Box *b, int idx, int tidx, int front) {
  int anchor = tide_sched_anchor(b->s);
  tidx = lua_absindex(L, tidx);
  if (anchor == 0) enomem(L);
  slot(L, idx, UV_ANCHORS);
  lua_pushvalue(L, tidx);
  lua_rawseti(L, -2, anchor);
  lua_pop(L, 1);
  if ((front ? tide_sched_push_front(b->s, anchor)
             : tide_sched_push(b->s, anchor)) != 0) {
    tide_sched_unanchor(b->s, anchor);
    enomem(L);
  }
  return anchor;
}

/* Pushes the task anchored at anchor and gives the anchor back. */
static void unanchor(lua_State *L, Box *b, int idx, int anchor) {
  slot(L, idx, UV_ANCHORS);
  lua_rawgeti(L, -1, anchor);
  lua_pushnil(L);
  lua_rawseti(L, -3, anchor);
  lua_remove(L, -2);
  tide_sched_unanchor(b->s, anchor);
}

static lua_Integer int_field(lua_State *L, int t, const char *k) {
  lua_Integer v;
  lua_getfield(L, t, k);
  v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Slots: while a slot is free and a task waits for one, the last task to
** park (the deepest spawner) takes it and is queued. */
static void give_slots(lua_State *L, Box *b, int idx) {
  tide_SchedCounts *c = tide_sched_counts(b->s);
  lua_Unsigned n;
  slot(L, idx, UV_PARKED);
  while (c->inflight - c->parked < c->max_inflight &&
         (n = lua_rawlen(L, -1)) > 0) {
    lua_rawgeti(L, -1, (lua_Integer)n);
    lua_pushnil(L);
    lua_rawseti(L, -3, (lua_Integer)n);
    c->parked--;
    queue(L, b, idx, -1, 0);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* The task at t parks (it yields next): its slot is given up, and it is
** marked, so that only one wake queues it again. */
static void park_task(lua_State *L, Box *b, int idx, int t) {
  lua_pushboolean(L, 1);
  lua_setfield(L, t, "parked");
  tide_sched_counts(b->s)->parked++;
  give_slots(L, b, idx);
}

/* Wakes the parked task at t: it needs a slot again, and waits for one
** (last in, first served, with the spawners) when none is free. */
static void wake_task(lua_State *L, Box *b, int idx, int t) {
  tide_SchedCounts *c = tide_sched_counts(b->s);
  t = lua_absindex(L, t);
  if (lua_getfield(L, t, "parked") != LUA_TBOOLEAN) {
    luaL_error(L, "scheduler: a task that is not parked was woken");
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setfield(L, t, "parked");
  if (c->inflight - c->parked < c->max_inflight) {
    c->parked--;
    queue(L, b, idx, t, 0);
  } else {
    slot(L, idx, UV_PARKED);
    lua_pushvalue(L, t);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
  }
}

/* The task at t no longer counts what it announced (sched:expect). */
static void listed(lua_State *L, tide_SchedCounts *c, int t) {
  lua_Integer expecting = int_field(L, t, "expecting");
  if (expecting > 0) {
    c->expected -= (size_t)expecting;
    lua_pushnil(L);
    lua_setfield(L, t, "expecting");
  }
  if (lua_getfield(L, t, "listing") != LUA_TNIL) {
    lua_pushnil(L);
    lua_setfield(L, t, "listing");
    c->open--;
  }
  lua_pop(L, 1);
}

/* Whether the task at t is an item of a concurrent map (task.item): not
** a component, so not in the progress counts. */
static int is_item(lua_State *L, int t) {
  int item;
  lua_getfield(L, t, "item");
  item = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return item;
}

/* Whether the task at t is done. */
static int is_done(lua_State *L, int t) {
  int done;
  lua_getfield(L, t, "done");
  done = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return done;
}

/* The task at t is done: counted, its waiters queued, its coroutine no
** longer its own. */
static void finish(lua_State *L, Box *b, int idx, int t) {
  tide_SchedCounts *c = tide_sched_counts(b->s);
  lua_pushboolean(L, 1);
  lua_setfield(L, t, "done");
  c->inflight--;
  if (is_item(L, t)) {
    lua_pushnil(L); /* no progress to report */
  } else {
    c->finished++;
    listed(L, c, t);
    slot(L, idx, UV_PROGRESS);
  }
  if (lua_isfunction(L, -1)) {
    /* done, total, components this cycle processed (for the rate), and
    ** whether the total is still a lower bound. */
    lua_pushinteger(L, (lua_Integer)(c->finished + c->carried));
    lua_pushinteger(L, (lua_Integer)(c->spawned + c->expected + c->carried));
    lua_pushinteger(L, (lua_Integer)c->finished);
    lua_pushboolean(L, c->open > 0);
    lua_call(L, 4, 0);
  } else {
    lua_pop(L, 1);
  }
  if (lua_getfield(L, t, "waiters") == LUA_TTABLE) {
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, -1);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      if (lua_rawgetp(L, -1, &any_key) == LUA_TNIL) {
        lua_pop(L, 1);
        wake_task(L, b, idx, -1);
      } else if (lua_istable(L, -1)) {
        /* The first of the tasks a wait_any names to end wakes it. */
        wake_task(L, b, idx, -1);
        lua_pushboolean(L, 0);
        lua_rawsetp(L, -3, &any_key);
        lua_pop(L, 1);
      } else {
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
    lua_pushnil(L);
    lua_setfield(L, t, "waiters");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, t, "co") == LUA_TTHREAD) {
    slot(L, idx, UV_TASKS);
    lua_pushvalue(L, -2);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_pushboolean(L, 0);
    lua_setfield(L, t, "co");
  }
  lua_pop(L, 1);
  give_slots(L, b, idx);
}

/* Pushes a worker coroutine for the task at t (an idle one, else a new
** one) and records it as the task's. */
static lua_State *take_worker(lua_State *L, int idx, int t) {
  lua_State *co;
  lua_Unsigned n;
  slot(L, idx, UV_POOL);
  n = lua_rawlen(L, -1);
  if (n > 0) {
    lua_rawgeti(L, -1, (lua_Integer)n);
    lua_pushnil(L);
    lua_rawseti(L, -3, (lua_Integer)n);
    co = lua_tothread(L, -1);
  } else {
    co = lua_newthread(L);
    slot(L, idx, UV_WORKER);
    lua_xmove(L, co, 1);
  }
  lua_remove(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, t, "co");
  slot(L, idx, UV_TASKS);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, t);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  return co;
}

/* Keeps the worker coroutine at -1 for the next task (pops it). */
static void keep_worker(lua_State *L, int idx) {
  lua_Unsigned n;
  slot(L, idx, UV_POOL);
  n = lua_rawlen(L, -1);
  if (n < POOL_MAX) {
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, (lua_Integer)n + 1);
  }
  lua_pop(L, 2);
}

static void abort_task(lua_State *L, int idx, int t, lua_State *co) {
  lua_resetthread(co);
  slot(L, idx, UV_ABORT);
  lua_pushvalue(L, t);
  lua_pushliteral(L, "coroutine.yield() was called outside a coroutine "
                  "the component created: component code cannot yield to "
                  "tide");
  lua_call(L, 2, 0);
}

/* Resumes the task at t once. */
static void step(lua_State *L, Box *b, int idx, int t) {
  lua_State *co;
  int nres = 0, status, fresh = lua_getfield(L, t, "co") != LUA_TTHREAD;
  void *what = NULL;
  if (fresh) {
    lua_pop(L, 1);
    co = take_worker(L, idx, t);
    /* The worker's arguments (a new one) or what its yield returns (an
    ** idle one): the runner and the task. */
    slot(L, idx, UV_RUNNER);
    lua_pushvalue(L, t);
    lua_xmove(L, co, 2);
    status = tide_lsignal_resume(co, L, 2, &nres);
  } else {
    co = lua_tothread(L, -1);
    status = tide_lsignal_resume(co, L, 0, &nres);
  }
  /* The coroutine is at the top of L's stack. */
  if (status == LUA_YIELD && nres > 0) what = lua_touserdata(co, -1);
  if (status == LUA_YIELD) lua_pop(co, nres);
  if (status == LUA_YIELD && what == DONE) {
    finish(L, b, idx, t);
    keep_worker(L, idx);
    return;
  }
  if (status != LUA_YIELD) {
    /* Returned or raised: the coroutine is dead (a runner's failure is
    ** its own to report). */
    finish(L, b, idx, t);
  } else if (what != WAIT) {
    /* The task's own code yielded to the scheduler: it cannot be resumed
    ** meaningfully, so it fails (and its owner is told). */
    finish(L, b, idx, t);
    abort_task(L, idx, t, co);
  }
  /* Otherwise it waits: a finishing task or a callback queues it. */
  lua_pop(L, 1);
}

/* Whether run, in a host's step, must give the step back now. */
static int step_over(lua_State *L, Box *b) {
  return b->driver == L && lua_isyieldable(L) && b->progressed &&
         uv_hrtime() >= b->deadline;
}

/* Runs tasks until the one at until is done (or none is left). Returns 1
** when a host's step must be given back first (sched_run yields). */
static int run_tasks(lua_State *L, Box *b, int until, int base) {
  unsigned steps = 0;
  uv_loop_t *loop = tide_sched_loop(b->s);
  while (!(until && is_done(L, until))) {
    int anchor;
    if (step_over(L, b)) return 1;
    anchor = tide_sched_pop(b->s);
    if (anchor == 0) {
      /* Tasks wait on the loop: it runs until one is ready, or until a
      ** stop comes (the signal wakes it: tide_sched_watch_stop). In a
      ** host's step it is only polled, and the step given back. */
      if (tide_sched_waiting(b->s) == 0 || tide_stop_requested()) break;
      if (b->nowait) {
        uv_run(loop, UV_RUN_NOWAIT);
        if (tide_sched_ready(b->s) == 0) break;
        continue;
      }
      if (b->driver == L && lua_isyieldable(L)) {
        uv_run(loop, UV_RUN_NOWAIT);
        if (tide_sched_ready(b->s) == 0) return 1;
        continue;
      }
      uv_run(loop, UV_RUN_ONCE);
      continue;
    }
    if (tide_stop_requested()) {
      tide_sched_push_front(b->s, anchor); /* its slot was just freed */
      break;
    }
    unanchor(L, b, 1, anchor);
    b->progressed = 1;
    step(L, b, 1, base + 1);
    lua_settop(L, base);
    /* The loop is polled once the ready tasks ran (and every POLL_EVERY
    ** steps meanwhile, so that a long queue does not hold back a
    ** finished wait), and only when it has handles: not a system call
    ** per task. */
    if (++steps % POLL_EVERY == 0 || tide_sched_ready(b->s) == 0) {
      if (uv_loop_alive(loop)) uv_run(loop, UV_RUN_NOWAIT);
    }
  }
  return 0;
}

static int run_on(lua_State *L, Box *b, int until, int base);

/* A run resumed by the host's next step: the innermost running one
** again. */
static int run_resumed(lua_State *L, int status, lua_KContext base) {
  (void)status;
  lua_pushvalue(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &running_key);
  return run_on(L, check_box(L, 1), lua_istable(L, 2) ? 2 : 0, (int)base);
}

static int run_on(lua_State *L, Box *b, int until, int base) {
  int yield = run_tasks(L, b, until, base);
  /* The scheduler that ran before is the innermost running one again
  ** (also while this one is given back to the host). */
  lua_pushvalue(L, base);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &running_key);
  if (yield) return lua_yieldk(L, 0, (lua_KContext)base, run_resumed);
  if (tide_stop_requested()) b->stopped = 1;
  return 0;
}

/* sched:run([task]) */
static int sched_run(lua_State *L) {
  Box *b = check_box(L, 1);
  int until = lua_istable(L, 2) ? 2 : 0;
  lua_settop(L, 2);
  /* A stop must end a wait on the loop (without the watch, it would wait
  ** for the waits to end). */
  if (tide_stop_fd() >= 0) (void)tide_sched_watch_stop(b->s, tide_stop_fd());
  /* This scheduler is the innermost running one until it returns. */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &running_key);
  lua_pushvalue(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &running_key);
  return run_on(L, b, until, lua_gettop(L));
}

/* sched:run_ready(): resumes the tasks that are ready, and those the
** loop, polled without blocking, makes ready meanwhile; returns once none
** is, leaving the others waiting. For tasks that live across cycles (a
** live source's watch function, live.lua): never waits on the loop. */
static int sched_run_ready(lua_State *L) {
  Box *b = check_box(L, 1);
  int base;
  lua_settop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &running_key);
  base = lua_gettop(L);
  lua_pushvalue(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &running_key);
  b->nowait = 1;
  (void)run_tasks(L, b, 0, base);
  b->nowait = 0;
  lua_pushvalue(L, base);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &running_key);
  return 0;
}

/* sched:give_back(): in a host's step past its budget, yields the driver
** (the step ends; the next one goes on from here); else does nothing. For
** the parts of a cycle between runs of tasks. */
static int sched_give_back(lua_State *L) {
  Box *b = check_box(L, 1);
  if (step_over(L, b)) return lua_yield(L, 0);
  b->progressed = 1; /* the part that follows runs in this step */
  return 0;
}

/* sched:step(driver, budget_ms) before a host's step resumes driver, the
** coroutine of its live mode; sched:step() after. In between, a run in
** driver gives the step back (yields driver) once budget_ms have passed,
** or when its tasks all wait. */
static int sched_step(lua_State *L) {
  Box *b = check_box(L, 1);
  if (lua_isnoneornil(L, 2)) {
    b->driver = NULL;
    b->deadline = 0;
    return 0;
  }
  luaL_checktype(L, 2, LUA_TTHREAD);
  b->driver = lua_tothread(L, 2);
  b->deadline = uv_hrtime() + (uint64_t)(luaL_checknumber(L, 3) * 1e6);
  b->progressed = 0;
  return 0;
}

/* sched:spawn(task) -> task: queued; counted in flight until it ends. */
static int sched_spawn(lua_State *L) {
  Box *b = check_box(L, 1);
  tide_SchedCounts *c = tide_sched_counts(b->s);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  c->inflight++;
  if (is_item(L, 2)) {
    queue(L, b, 1, 2, 0);
    return 1;
  }
  c->spawned++;
  if (push_current(L, 1) == LUA_TTABLE) {
    /* One of the tasks its parent announced: already in the total. */
    lua_Integer expecting = int_field(L, 3, "expecting");
    if (expecting > 0) {
      c->expected--;
      if (expecting == 1)
        lua_pushnil(L);
      else
        lua_pushinteger(L, expecting - 1);
      lua_setfield(L, 3, "expecting");
    }
  }
  queue(L, b, 1, 2, 0);
  lua_settop(L, 2);
  return 1;
}

/* Appends the value at w (a waiting task, or a wait_any registration)
** to the waiters of the task at t, which finish wakes. */
static void add_waiter(lua_State *L, int t, int w) {
  if (lua_getfield(L, t, "waiters") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, t, "waiters");
  }
  lua_pushvalue(L, w);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 1);
}

/* sched:wait(task): returns once task is done. Inside a task it waits
** its turn (yields); outside, it runs the scheduler until then. */
static int sched_wait(lua_State *L) {
  Box *b = check_box(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  if (is_done(L, 2)) return 0;
  if (push_current(L, 1) != LUA_TTABLE) {
    lua_settop(L, 2);
    return sched_run(L);
  }
  add_waiter(L, 2, 3);
  /* Its slot goes to whoever waits for one meanwhile. */
  park_task(L, b, 1, 3);
  lua_pushlightuserdata(L, WAIT);
  return lua_yield(L, 1);
}

/* sched:wait_any(tasks[, n]): returns once one of tasks[1..n] (n: all of
** them) is done, inside a task (which gives its slot up meanwhile, as
** sched:wait does). The first of them to end wakes it; the others find
** the registration spent. The list keeps its registration from one wait
** to the next (a worker's running items, most of them watched already),
** so a wait costs a look at each task and an entry for the new ones. */
static int sched_wait_any(lua_State *L) {
  Box *b = check_box(L, 1);
  lua_Integer i, n;
  luaL_checktype(L, 2, LUA_TTABLE);
  n = luaL_optinteger(L, 3, (lua_Integer)lua_rawlen(L, 2));
  lua_settop(L, 2);
  if (n == 0 || push_current(L, 1) != LUA_TTABLE)   /* [3] the waiter */
    return luaL_error(L, "sched:wait_any: tasks to wait for, inside a "
                      "task, expected");
  if (lua_rawgetp(L, 2, &any_key) != LUA_TTABLE) {  /* [4] registration */
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, 2, &any_key);
  }
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);                           /* [5] a task */
    luaL_argcheck(L, lua_istable(L, 5), 2, "tasks expected");
    if (is_done(L, 5)) return 0;
    lua_rawgetp(L, 5, &held_key);
    if (!lua_rawequal(L, -1, 4)) {
      add_waiter(L, 5, 4);
      lua_pushvalue(L, 4);
      lua_rawsetp(L, 5, &held_key);
    }
    lua_settop(L, 4);
  }
  lua_pushvalue(L, 3);
  lua_rawsetp(L, 4, &any_key);                      /* armed */
  park_task(L, b, 1, 3);
  lua_pushlightuserdata(L, WAIT);
  return lua_yield(L, 1);
}

/* sched:throttle(): a task that spawns many children, once more tasks
** hold slots than max_inflight allows, parks until a slot is free (giving
** its own up meanwhile), so that they can finish. */
static int sched_throttle(lua_State *L) {
  Box *b = check_box(L, 1);
  tide_SchedCounts *c = tide_sched_counts(b->s);
  lua_settop(L, 1);
  if (c->inflight - c->parked <= c->max_inflight ||
      push_current(L, 1) != LUA_TTABLE)
    return 0;
  slot(L, 1, UV_PARKED);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  c->parked++;
  lua_pushlightuserdata(L, WAIT);
  return lua_yield(L, 1);
}

/* sched:park(): the current task waits, its slot given up, until
** sched:wake(task) queues it; whoever will wake it keeps it meanwhile (a
** function's callers waiting for a free call, a batch's callers). */
static int sched_park(lua_State *L) {
  Box *b = check_box(L, 1);
  lua_settop(L, 1);
  if (push_current(L, 1) != LUA_TTABLE)
    return luaL_error(L, "sched:park: not inside a task");
  park_task(L, b, 1, 2);
  lua_pushlightuserdata(L, WAIT);
  return lua_yield(L, 1);
}

/* sched:pass(): the current task goes to the back of the ready queue, so
** that the tasks ready now run first (a batch's leader lets the callers
** that are about to call join its batch), unless sched:hurry brings it
** back to the front before they all ran. */
static int sched_pass(lua_State *L) {
  Box *b = check_box(L, 1);
  lua_settop(L, 1);
  if (push_current(L, 1) != LUA_TTABLE) return 0;
  lua_pushinteger(L, queue(L, b, 1, 2, 0));
  lua_setfield(L, 2, "passed");
  lua_pushlightuserdata(L, WAIT);
  return lua_yield(L, 1);
}

/* sched:hurry(task): a task that passed and is still in the ready queue
** runs next (a batch's leader whose batch is full). Returns whether it
** was there. */
static int sched_hurry(lua_State *L) {
  Box *b = check_box(L, 1);
  lua_Integer anchor;
  int moved = 0;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  anchor = lua_getfield(L, 2, "passed") == LUA_TNUMBER
               ? lua_tointeger(L, -1) : 0;
  lua_pushnil(L);
  lua_setfield(L, 2, "passed");
  if (anchor > 0) {
    slot(L, 1, UV_ANCHORS);
    /* The anchor is the task's only while the task is queued under it. */
    if (lua_rawgeti(L, -1, anchor) == LUA_TTABLE && lua_rawequal(L, -1, 2))
      moved = tide_sched_promote(b->s, (int)anchor);
  }
  lua_pushboolean(L, moved);
  return 1;
}

/* sched:wake(task): queues a task that parked, once a slot is free. */
static int sched_wake(lua_State *L) {
  Box *b = check_box(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  wake_task(L, b, 1, 2);
  return 0;
}

/* sched:expect([n]): the current task is about to spawn n tasks, one per
** item a source listed (n known), or an unknown number of them (n nil);
** the total counts the n at once. What it announced and did not spawn is
** dropped by sched:listed or when it ends. */
static int sched_expect(lua_State *L) {
  Box *b = check_box(L, 1);
  tide_SchedCounts *c = tide_sched_counts(b->s);
  lua_Integer n = luaL_optinteger(L, 2, -1);
  lua_settop(L, 2);
  if (push_current(L, 1) != LUA_TTABLE) return 0;
  if (n < 0) {
    if (lua_getfield(L, 3, "listing") == LUA_TNIL) {
      lua_pushboolean(L, 1);
      lua_setfield(L, 3, "listing");
      c->open++;
    }
  } else if (n > 0) {
    lua_pushinteger(L, int_field(L, 3, "expecting") + n);
    lua_setfield(L, 3, "expecting");
    c->expected += (size_t)n;
  }
  return 0;
}

/* sched:listed(): the current task spawned all it announced. */
static int sched_listed(lua_State *L) {
  Box *b = check_box(L, 1);
  lua_settop(L, 1);
  if (push_current(L, 1) == LUA_TTABLE)
    listed(L, tide_sched_counts(b->s), 2);
  return 0;
}

/* sched:carry(n): n components settled without a task (carried over by
** the C index) count as done and in the total. */
static int sched_carry(lua_State *L) {
  Box *b = check_box(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "must not be negative");
  tide_sched_counts(b->s)->carried += (size_t)n;
  return 0;
}

/* sched:reset{ worker, task_of, runner, on_abort, on_progress,
** max_inflight }: a new cycle. */
static int sched_reset(lua_State *L) {
  Box *b = check_box(L, 1);
  lua_Integer max;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_getfield(L, 2, "max_inflight");
  max = luaL_optinteger(L, -1, 1024);
  luaL_argcheck(L, max >= 1, 2, "max_inflight must be at least 1");
  lua_pop(L, 1);
  tide_sched_reset(b->s);
  tide_sched_counts(b->s)->max_inflight = (size_t)max;
  b->stopped = 0;
  lua_newtable(L);
  lua_setiuservalue(L, 1, UV_ANCHORS);
  lua_newtable(L);
  lua_setiuservalue(L, 1, UV_PARKED);
  lua_getfield(L, 2, "task_of");
  luaL_argcheck(L, lua_istable(L, -1), 2, "task_of must be a table");
  lua_setiuservalue(L, 1, UV_TASKS);
  if (slot(L, 1, UV_POOL) != LUA_TTABLE) {
    lua_newtable(L);
    lua_setiuservalue(L, 1, UV_POOL);
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "worker");
  luaL_argcheck(L, lua_isfunction(L, -1), 2, "worker must be a function");
  lua_setiuservalue(L, 1, UV_WORKER);
  lua_getfield(L, 2, "runner");
  luaL_argcheck(L, lua_isfunction(L, -1), 2, "runner must be a function");
  lua_setiuservalue(L, 1, UV_RUNNER);
  lua_getfield(L, 2, "on_abort");
  luaL_argcheck(L, lua_isfunction(L, -1), 2, "on_abort must be a function");
  lua_setiuservalue(L, 1, UV_ABORT);
  lua_getfield(L, 2, "on_progress");
  lua_setiuservalue(L, 1, UV_PROGRESS);
  return 0;
}

static int sched_inflight(lua_State *L) {
  lua_pushinteger(L,
    (lua_Integer)tide_sched_counts(check_box(L, 1)->s)->inflight);
  return 1;
}

/* sched:limit() -> max_inflight */
static int sched_limit(lua_State *L) {
  lua_pushinteger(L,
    (lua_Integer)tide_sched_counts(check_box(L, 1)->s)->max_inflight);
  return 1;
}

static int sched_stopped(lua_State *L) {
  lua_pushboolean(L, check_box(L, 1)->stopped);
  return 1;
}

/* sched:trim(keep): keeps at most keep idle worker coroutines. Between
** cycles: a coroutine keeps the stack its deepest task grew, which every
** full collection walks (a cold run's pool held megabytes). */
static int sched_trim(lua_State *L) {
  lua_Integer keep = luaL_checkinteger(L, 2), n;
  (void)check_box(L, 1);
  luaL_argcheck(L, keep >= 0, 2, "keep must not be negative");
  if (slot(L, 1, UV_POOL) != LUA_TTABLE) return 0;
  for (n = (lua_Integer)lua_rawlen(L, -1); n > keep; n--) {
    lua_pushnil(L);
    lua_rawseti(L, -2, n);
  }
  return 0;
}

/* sched:close(): lets go of the engine's scheduler (the engine frees it),
** or frees its own, cancelling the waits left. */
static int sched_close(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, SCHED_TYPE);
  if (b->owned && b->s != NULL) tide_sched_free(b->s);
  b->s = NULL;
  return 0;
}

/* The collector's close: a scheduler of its own that still has waits is
** let go of, not freed, since freeing runs the loop until they end, and
** a finalizer may run inside a run of that loop (or after its engine
** closed it, which closed their handles). live.lua closes its own. */
static int sched_gc(lua_State *L) {
  Box *b = luaL_checkudata(L, 1, SCHED_TYPE);
  if (b->owned && b->s != NULL && tide_sched_waiting(b->s) == 0)
    tide_sched_free(b->s);
  b->s = NULL;
  return 0;
}

static Box *push_box(lua_State *L, tide_Sched *s) {
  Box *b = lua_newuserdatauv(L, sizeof *b, UV_COUNT);
  b->s = s;
  b->owned = 0;
  b->nowait = 0;
  b->stopped = 0;
  b->deadline = 0;
  b->progressed = 0;
  b->driver = NULL;
  luaL_setmetatable(L, SCHED_TYPE);
  return b;
}

void tide_lsched_push_borrowed(lua_State *L, tide_Sched *s) {
  (void)push_box(L, s);
}

/* core.sched_new(loop) -> a scheduler of its own on the loop object's
** loop, apart from the engine's: for tasks that outlive a cycle. The
** caller closes it before the loop's engine closes. */
static int sched_new(lua_State *L) {
  uv_loop_t *loop = tide_lloop_check(L, 1);
  void *ud;
  lua_Alloc alloc = lua_getallocf(L, &ud);
  Box *b = push_box(L, NULL);
  if (tide_sched_new(&b->s, loop, alloc, ud) != 0) enomem(L);
  b->owned = 1;
  return 1;
}

tide_Sched *tide_lsched_suspend(lua_State *L, int *anchor) {
  Box *b;
  int a;
  *anchor = 0;
  if (!lua_isyieldable(L)) return NULL;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &running_key) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    return NULL;
  }
  b = luaL_testudata(L, -1, SCHED_TYPE);
  if (b == NULL || b->s == NULL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (push_current(L, -1) != LUA_TTABLE) {
    lua_pop(L, 2);
    return NULL;
  }
  a = tide_sched_anchor(b->s);
  if (a == 0) enomem(L);
  slot(L, -2, UV_ANCHORS);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, a);
  lua_pop(L, 3);
  *anchor = a;
  return b->s;
}

tide_Sched *tide_lsched_running(lua_State *L) {
  Box *b;
  tide_Sched *s = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &running_key);
  b = luaL_testudata(L, -1, SCHED_TYPE);
  if (b != NULL) s = b->s;
  lua_pop(L, 1);
  return s;
}

int tide_lsched_yield(lua_State *L, lua_KContext ctx, lua_KFunction k) {
  lua_pushlightuserdata(L, WAIT);
  return lua_yieldk(L, 1, ctx, k);
}

void tide_lsched_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"reset", sched_reset}, {"spawn", sched_spawn}, {"run", sched_run},
    {"step", sched_step}, {"give_back", sched_give_back},
    {"run_ready", sched_run_ready}, {"trim", sched_trim},
    {"wait", sched_wait}, {"wait_any", sched_wait_any},
    {"throttle", sched_throttle},
    {"park", sched_park}, {"wake", sched_wake}, {"pass", sched_pass},
    {"hurry", sched_hurry},
    {"expect", sched_expect}, {"listed", sched_listed},
    {"carry", sched_carry}, {"inflight", sched_inflight},
    {"limit", sched_limit},
    {"stopped", sched_stopped}, {"close", sched_close},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, SCHED_TYPE)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, sched_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushlightuserdata(L, DONE);
  lua_setfield(L, -2, "SCHED_DONE");
  lua_pushcfunction(L, sched_new);
  lua_setfield(L, -2, "sched_new");
}
