/*
** The scheduler's C core: the ready queue of tasks, the waits a task is
** suspended on, and the counts that bound and report a cycle's work. The
** engine owns one per session (engine.h); lsched.c runs the Lua
** coroutines it queues, and lwait.c and the later waits (HTTP, database
** sockets, worker results) suspend tasks on it.
**
** The model:
** - A task is a Lua coroutine running a component (or, later, an item of
**   a concurrent map). The binding gives every task that is queued or
**   suspended a number, an anchor, under which it keeps the task alive;
**   the queue and the waits hold only numbers, so a libuv callback makes
**   a task ready without touching Lua.
** - The ready queue is a ring of anchors, first in first out, that grows
**   by doubling; a task that was taken off and could not run (a stop was
**   requested) goes back to the front.
** - A wait is a request of the caller's own type that begins with a
**   tide_Wait. tide_sched_wait_begin links it to the scheduler; when what
**   it waits for is over and its handles are closed, its code calls
**   tide_wait_done, which queues the task; the task, resumed, reads the
**   outcome and calls tide_sched_wait_end, which unlinks and releases it.
**   A wait whose task never comes back for it (a stop, a cycle given up)
**   is cancelled and released by tide_sched_reset or tide_sched_free, so
**   no handle outlives the scheduler and no request is leaked.
** - Counts: tasks in flight (spawned, not finished); those holding a slot
**   (in flight and not parked waiting for another task or for a slot) are
**   bounded by max_inflight, so a parent waiting for its children gives
**   its slot up and even one slot cannot deadlock;
**   and, for the progress line, how many were spawned, finished, carried
**   over without a task, announced by a source and not spawned yet, and
**   how many sources are listing an unknown number of items.
**
** Memory comes from the engine's allocator; calls that can allocate
** return 0 or TIDE_ENOMEM. A scheduler is used by one thread.
*/
#ifndef TIDE_SCHEDULER_H
#define TIDE_SCHEDULER_H

#include <stddef.h>

#include <uv.h>

#include "tide.h"

typedef struct tide_Sched tide_Sched;
typedef struct tide_Wait tide_Wait;

struct tide_Wait {
  tide_Sched *sched;       /* NULL once released, or for a blocking wait */
  tide_Wait *prev, *next;  /* the scheduler's list of linked waits */
  int task;                /* the waiting task's anchor */
  int done;                /* the outcome is in */
  /* Stops what it waits for early: closes its handles, kills its
  ** process; tide_wait_done must follow once the handles are closed. */
  void (*cancel)(tide_Wait *w);
  /* Frees the request (its handles are closed by then). */
  void (*release)(tide_Wait *w);
};

/* The counts of a cycle (read and written by the binding). A task in
** flight (spawned, not finished) holds a slot unless it is parked: waiting
** for another task, or for a slot. */
typedef struct tide_SchedCounts {
  size_t inflight, parked, max_inflight;
  size_t spawned, finished, carried, expected, open;
} tide_SchedCounts;

int tide_sched_new(tide_Sched **out, uv_loop_t *loop, tide_Alloc alloc,
                   void *ud);
/* Cancels and releases the waits left, then frees. Accepts NULL. */
void tide_sched_free(tide_Sched *s);
/* A new cycle: the waits left are cancelled and released, the queue and
** the anchors emptied, the counts zeroed (max_inflight is kept). */
void tide_sched_reset(tide_Sched *s);

uv_loop_t *tide_sched_loop(tide_Sched *s);
/* The session's HTTP client on the scheduler's loop (http.h), made on
** first use and kept until tide_sched_free, so that connections outlive
** a request and a cycle. 0, TIDE_ENOMEM or TIDE_EIO. */
struct tide_Http;
int tide_sched_http(tide_Sched *s, struct tide_Http **out);
tide_SchedCounts *tide_sched_counts(tide_Sched *s);

/* Anchors: a free number (> 0), or 0 when out of memory; given back once
** the task is taken off the queue or its wait is over. The highest number
** ever handed out is tide_sched_anchors (the binding sizes its table). */
int tide_sched_anchor(tide_Sched *s);
void tide_sched_unanchor(tide_Sched *s, int anchor);

/* The ready queue. push and push_front return 0 or TIDE_ENOMEM; pop
** returns the first anchor, or 0 when the queue is empty. */
int tide_sched_push(tide_Sched *s, int anchor);
int tide_sched_push_front(tide_Sched *s, int anchor);
int tide_sched_pop(tide_Sched *s);
/* Moves anchor, when it is in the ready queue, to its front, the others
** keeping their order; returns whether it was there. A scan of the queue:
** for a rare hurry, not for every step. */
int tide_sched_promote(tide_Sched *s, int anchor);
size_t tide_sched_ready(const tide_Sched *s);

/* Links w (its cancel and release set) for the task anchored at anchor. */
void tide_sched_wait_begin(tide_Sched *s, tide_Wait *w, int anchor);
/* What w waited for is over (its handles closed): its task is queued. A
** blocking wait (no scheduler) is only marked done. Returns 0 or
** TIDE_ENOMEM (the queue could not grow: the task stays suspended). */
int tide_wait_done(tide_Wait *w);
/* The task took w's outcome: w is unlinked and released. */
void tide_sched_wait_end(tide_Wait *w);
/* Waits linked and not done: while there are some, an empty queue means
** the loop must be run to make progress. */
size_t tide_sched_waiting(const tide_Sched *s);

/* Watches fd, which becomes readable when a stop is requested (a signal's
** self-pipe), so that a loop blocked for the waits wakes up; the watch
** does not keep the loop alive, and what fd holds is read and dropped.
** Once per scheduler: later calls do nothing. 0 or TIDE_EIO. */
int tide_sched_watch_stop(tide_Sched *s, int fd);

#endif
