/*
** A thread that runs one job at a time for its owner: the owner hands a
** job over (tide_job_send) and goes on; it learns the job's outcome when
** it waits (tide_job_wait). What the job reads and writes belongs to the
** thread from the send to the end of the wait, and to the owner
** otherwise; the mutex that hands it over makes each side see the other's
** writes.
**
** The thread is started at the first send and blocks every signal (they
** belong to the owner's thread). A job must not allocate through the
** host's allocator, which need not be thread-safe.
**
** Edge cases: a send while a job is out waits for it first (its outcome
** is then lost: an owner that needs it waits before sending); a wait with
** no job out returns 0 at once; stop waits for the job out, then ends the
** thread, and a later send starts another.
*/
#ifndef TIDE_JOB_H
#define TIDE_JOB_H

#include <uv.h>

typedef int (*tide_JobFn)(void *arg);

typedef struct tide_Job {
  uv_thread_t thread;
  uv_mutex_t lock;
  uv_cond_t wake; /* a job was handed over, or stop */
  uv_cond_t idle; /* the job handed over is done */
  tide_JobFn fn;
  void *arg;
  int started;
  int busy;       /* a job is handed over and not done */
  int stop;
  int rc;         /* the outcome of the last job */
} tide_Job;

/* A job that was never sent: all zero. */
#define TIDE_JOB_INIT {0}

/* Hands fn(arg) to the thread, starting it if needed. 0, or TIDE_ENOMEM
** when the thread cannot start (nothing was handed over: the caller may
** run the job itself). */
int tide_job_send(tide_Job *j, tide_JobFn fn, void *arg);

/* Waits for the job out, if any; its outcome (fn's return), or 0. */
int tide_job_wait(tide_Job *j);

/* Waits for the job out, then ends the thread. Accepts a job never sent. */
void tide_job_stop(tide_Job *j);

#endif
