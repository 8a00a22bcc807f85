/*
** Parallel Lua: a pool of worker threads, each with a Lua state of its
** own, that run calls of `parallel` tide.fn functions (DESIGN.md
** section 5). The engine's loop thread hands a job in and is told on the
** loop when it is done; a job's bytes go in and come out as canonical CBOR
** (what they mean is lworkers.c's and worker.lua's business).
**
** The model:
** - N threads (libuv threads), each owning one Lua state for its whole
**   life: a state is never touched by two threads. A state is made by the
**   thread itself through the pool's setup function, before its first
**   job; a state that cannot be made fails every job it takes, with the
**   setup's message.
** - Jobs wait in one queue (first in, first out) under a mutex; an idle
**   thread takes the first. A finished job goes to the done list and the
**   loop thread collects it: woken through a uv_async_t when the queue
**   has run dry, and otherwise by a 1 ms tick that runs while jobs are
**   out (so a run of short jobs wakes it once a millisecond, not once a
**   job, and no answer waits for another job to end); the pool calls
**   tide_wait_done for each, so the task that waits for it is queued (a
**   job is a tide_Wait: scheduler.h).
** - The async handle and the tick keep the loop alive only while jobs are
**   out, so an idle pool never keeps a cycle (or the host's loop)
**   running.
** - A job cancelled before a thread took it is done at once, with no
**   output; one already running cannot be stopped: it is done when the
**   thread finishes it.
** - tide_workers_free stops the threads after their current job, joins
**   them and closes their states; jobs still queued are done, cancelled.
**
** Memory: the pool and the jobs' buffers come from the allocator given at
** creation, which the threads share: it must be thread-safe (the default,
** realloc, is). A job released after its pool is gone frees itself.
*/
#ifndef TIDE_WORKERS_H
#define TIDE_WORKERS_H

#include <stddef.h>

#include <lua.h>
#include <uv.h>

#include "buf.h"
#include "scheduler.h"

typedef struct tide_Workers tide_Workers;

/* Makes a worker's state ready, on the worker's thread, in protected
** mode: called with the pool's arg as a light userdata, it returns the
** job runner, a function called with a job (a tide_Job *, as a light
** userdata) that reads job->in and fills job->out; an error it raises
** fails the job with its message. */
typedef lua_CFunction tide_WorkerSetup;

typedef struct tide_Job {
  tide_Wait w;           /* first: the scheduler's view of the job */
  struct tide_Job *next; /* in the queue, the done list or the spares */
  struct tide_Job *live_prev, *live_next; /* the pool's jobs not released */
  tide_Workers *pool;    /* NULL once the pool is gone */
  tide_Alloc alloc;      /* what the job was allocated with */
  void *ud;
  tide_Buf in, out;      /* out is filled by the thread */
  int failed;            /* out holds a message, not the runner's output */
  int cancelled;
} tide_Job;

/* A pool of n threads on loop (the loop thread's). setup(L, arg) makes
** each state, on its thread. Returns 0, TIDE_ENOMEM, or TIDE_EIO when a
** thread cannot be started (*out is then NULL and nothing is left). */
int tide_workers_new(tide_Workers **out, uv_loop_t *loop, int n,
                     tide_WorkerSetup setup, void *arg, tide_Alloc alloc,
                     void *ud);
void tide_workers_free(tide_Workers *p);
int tide_workers_count(const tide_Workers *p);

/* A new job (its input empty, to be filled), or NULL when out of memory.
** Released jobs are kept by the pool and handed out again, buffers and
** all: a call costs no allocation once the pool is warm. */
tide_Job *tide_job_new(tide_Workers *p);
/* Queues job. Link it to a scheduler first (tide_sched_wait_begin) to
** have its task queued when it is done; otherwise wait with
** tide_workers_wait. Its release frees it (tide_sched_wait_end, or
** tide_job_free for one that was never linked). */
void tide_workers_submit(tide_Workers *p, tide_Job *job);
/* Runs the loop until job is done (a caller that cannot yield). */
void tide_workers_wait(tide_Workers *p, tide_Job *job);
void tide_job_free(tide_Job *job);

#endif
